//! flashsale-http: the reference's REST API over [`flashsale_core`], with
//! axum.
//!
//! [`App::router`] serves, on one router:
//!
//! | route | answer |
//! |---|---|
//! | `GET /sales` | `[Sale]` |
//! | `POST /sales` `{productName, quantity, saleStart, saleEnd, paymentTimeoutMs?, maxPaymentSlots?}` | 201 `Sale` |
//! | `GET /sales/{id}` | `Sale`, 404 |
//! | `GET /sales/{id}/buyers` | `[Buyer]`, 404 |
//! | `POST /sales/{id}/eligible` `{buyerName}` | 200, 400 sold out / already participated |
//! | `POST /buy` `{buyerName}` (the default sale), `POST /sales/{id}/buy` | `{transactionId, state}`, 400 |
//! | `POST /paid` `{transactionId}`, `POST /sales/{id}/paid` | `{success: true}`, 400 |
//! | `GET /transactions/{id}` | state, exact position, payment deadline; 404 |
//! | `POST /transactions/{id}/leave` | `{success: true}`, 400, 404 |
//! | `POST /pay` `{transactionId, quantity: 1}` (with [`App::with_payment`]) | `{success: true}` after calling back `/paid`; the callback's refusal passed on |
//! | `GET /healthz` | `ok` |
//! | `/socket.io/` (with [`InProcess::router`]) | live events, see [`live`]; `/socket.io/socket.io.js` is the browser client |
//! | `GET /` (with [`App::with_web_page`]) | the buyer's web page, see [`web`] |
//!
//! With [`App::with_payment_secret`], `/paid` requires an HMAC-SHA256
//! signature of its body ([`signature`]); the payment stand-in signs with
//! the same secret.
//!
//! Every error — core refusals, malformed or oversized bodies, bad ids,
//! unknown routes — answers in the reference's shape
//! `{"statusCode":400,"message":"…","error":"Bad Request"}`, mapped in one
//! place ([`ApiError`]).
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use flashsale_core::{Catalogue, ObjectIdGenerator};
//! use flashsale_core::service::Ports;
//! use flashsale_http::InProcess;
//!
//! let (ports, _) = Ports::in_memory();
//! let stack = InProcess::open(ports, Catalogue::new(Box::new(ObjectIdGenerator::random()))).await?;
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! axum::serve(listener, stack.router("*")).await?;
//! # Ok(())
//! # }
//! ```

mod app;
mod error;
pub mod live;
mod payment;
pub mod signature;
pub mod sync;
pub mod web;
pub mod wire;

pub use app::{ApiJson, App, CatalogueFeed, InProcess, MAX_BODY_BYTES, SignedJson};
pub use error::ApiError;
pub use payment::Payment;
pub use web::WebPage;
