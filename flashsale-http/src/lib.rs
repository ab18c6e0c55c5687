//! flashsale-http: the reference's REST API over [`flashsale_core`], with
//! axum.
//!
//! An [`App`] is the parts a server serves; [`App::router`] puts them on
//! one router:
//!
//! | route | part | answer |
//! |---|---|---|
//! | `GET /sales` | catalogue | `[Sale]` |
//! | `POST /sales` `{productName, quantity, saleStart, saleEnd, paymentTimeoutMs?, maxPaymentSlots?}` | catalogue | 201 `Sale` |
//! | `GET /sales/{id}` | catalogue | `Sale`, 404 |
//! | `GET /sales/{id}/buyers` | catalogue | `[Buyer]`, 404 |
//! | `POST /sales/{id}/eligible` `{buyerName}` | catalogue | `{eligible: true}`, 400 sold out / already participated |
//! | `POST /buy` `{buyerName}` (the default sale), `POST /sales/{id}/buy` | service | `{transactionId, state}`, 400 |
//! | `POST /paid` `{transactionId}` (any sale), `POST /sales/{id}/paid` | service | `{success: true}`, 400 |
//! | `GET /transactions/{id}` | service | state, exact position, payment deadline; 404 |
//! | `POST /transactions/{id}/leave` | service | `{success: true}`, 400, 404 |
//! | `POST /pay` `{transactionId, quantity: 1}` | payment | `{success: true}` after calling back `/paid`; the callback's refusal passed on |
//! | `GET /` | web page | the buyer's web page, see [`web`] |
//! | `GET /healthz` | always | `ok`: the process lives |
//! | `GET /readyz` | always | `ready`, or 503 while the service cannot commit |
//! | `GET /openapi.json` | always | the OpenAPI 3 description of the routes served ([`App::openapi`]) |
//! | `/socket.io/` | [`InProcess::router`] | live events, see [`live`]; `/socket.io/socket.io.js` is the browser client |
//!
//! With [`App::with_payment_secret`], `/paid` requires an HMAC-SHA256
//! signature of its body ([`signature`]); the payment stand-in signs with
//! the same secret.
//!
//! Every error — core refusals, malformed or oversized bodies, bad ids,
//! unknown routes — answers in the reference's shape plus a stable code,
//! `{"statusCode":400,"message":"…","error":"Bad Request","code":"sold_out"}`,
//! mapped in one place ([`ApiError`], codes in [`ErrorCode`]). Where the
//! reference refuses the same thing, `message` is its exact text.
//!
//! # Layout
//!
//! - `app` — [`App`]: which parts a server serves.
//! - `backend` — the backend's routes, over a catalogue.
//! - `transaction` — the transaction routes, over a service.
//! - [`Payment`] (`payment`) — the payment stand-in.
//! - `in_process` — [`InProcess`]: the all-in-one wiring and its tasks.
//! - `extract` — JSON bodies and signed callbacks ([`ApiJson`], [`SignedJson`]).
//! - `layers` — CORS, limits, 404/405, `/healthz`, `/readyz`, `/openapi.json`.
//! - `openapi` — the OpenAPI description, from the handlers' annotations.
//! - `error` — [`ApiError`] and its [`ErrorCode`]s.
//! - [`wire`] — request and response bodies; [`events`] — the Socket.IO
//!   payloads; [`live`] — Socket.IO rooms and forwarding;
//!   [`web`] — the buyer's page; [`signature`]; [`tokens`] — buyer
//!   capabilities; [`sync`].
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use flashsale_core::{Catalogue, ObjectIdGenerator};
//! use flashsale_core::service::Ports;
//! use flashsale_http::InProcess;
//! use flashsale_http::tokens::TokenKey;
//!
//! let (ports, _) = Ports::in_memory();
//! let catalogue = Catalogue::new(Box::new(ObjectIdGenerator::random()));
//! let stack = InProcess::open(ports, catalogue, TokenKey::random()).await?;
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! axum::serve(listener, stack.router("*")).await?;
//! stack.shutdown().await; // commits what is queued
//! # Ok(())
//! # }
//! ```

mod app;
pub mod auth;
mod backend;
mod error;
pub mod events;
mod extract;
mod in_process;
mod layers;
pub mod live;
pub mod metrics;
mod openapi;
pub mod operator;
mod payment;
pub mod ratelimit;
pub mod server;
pub mod signature;
pub mod sync;
pub mod tokens;
mod transaction;
pub mod web;
pub mod wire;

pub use app::App;
pub use error::{ApiError, ErrorCode};
pub use extract::{ApiJson, ApiQuery, PaymentSecret, SignedJson};
pub use in_process::InProcess;
pub use layers::{MAX_BODY_BYTES, Readiness, RequestLimits, finish};
pub use payment::Payment;
pub use web::WebPage;
