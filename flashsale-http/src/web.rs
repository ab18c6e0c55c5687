//! The buyer's web page: sign in, live sales list, sale page, waiting room
//! and payment, in plain HTML, CSS and JavaScript embedded in the binary
//! (the files are in `flashsale-http/web/`; no build step).
//!
//! | route | what |
//! |---|---|
//! | `GET /`, `GET /index.html` | the page (its views are `#/`, `#/sales/{id}` and `#/tx/{id}`) |
//! | `GET /app.js`, `GET /app.css` | its script and style |
//! | `GET /common.js` | what the page and the dashboard share (the error log, DOM helpers) |
//! | `GET /config.json` | `{transactionUrl, paymentUrl}`: where it buys and pays (`""`: this server) |
//! | `GET /socket.io/socket.io.js` | the socket.io-client 4.8 browser bundle (MIT), as Node's Socket.IO server serves it |
//! | `GET /admin` | the operator dashboard: sign in with `ADMIN_TOKEN` (kept for the tab only), live figures and charts, the controls |
//! | `GET /admin/admin.js`, `/admin/admin.css`, `/admin/uPlot.js`, `/admin/uPlot.css` | its script, style and chart library (uPlot 1.6, MIT) |
//!
//! The dashboard calls the operator routes at `transactionUrl` (where the
//! sales' engines run) with the token; the page itself holds no secret.
//!
//! The page reads sales from the server that serves it, listens to its
//! Socket.IO events, buys and asks `GET /transactions/{id}` at
//! `transactionUrl`, and pays with `POST /pay` at `paymentUrl`: the
//! all-in-one server serves everything itself, the split deployment's
//! `backend` points at the transaction and payment services.
//!
//! ```
//! use flashsale_http::WebPage;
//!
//! // The split deployment's backend: buys and payments go elsewhere.
//! let page = WebPage::new("http://localhost:3099/", "http://localhost:3100");
//! let config = page.config_json(); // trailing slashes dropped
//! assert!(config.contains(r#""transactionUrl":"http://localhost:3099""#));
//! assert!(config.contains(r#""paymentUrl":"http://localhost:3100""#));
//! ```

use axum::Router;
use axum::http::HeaderValue;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

const INDEX_HTML: &str = include_str!("../web/index.html");
const APP_JS: &str = include_str!("../web/app.js");
const APP_CSS: &str = include_str!("../web/app.css");
const COMMON_JS: &str = include_str!("../web/common.js");
const SOCKET_IO_JS: &str = include_str!("../web/vendor/socket.io.min.js");
const ADMIN_HTML: &str = include_str!("../web/admin.html");
const ADMIN_JS: &str = include_str!("../web/admin.js");
const ADMIN_CSS: &str = include_str!("../web/admin.css");
const UPLOT_JS: &str = include_str!("../web/vendor/uPlot.iife.min.js");
const UPLOT_CSS: &str = include_str!("../web/vendor/uPlot.min.css");

const HTML: &str = "text/html; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
const JSON: &str = "application/json";

/// Where Node's Socket.IO server serves its browser client, and so do we.
pub const SOCKET_IO_CLIENT_PATH: &str = "/socket.io/socket.io.js";

/// The page's settings: where it buys and where it pays.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WebPage {
    transaction_url: String,
    payment_url: String,
}

impl WebPage {
    /// A page whose server also serves the transaction routes and `/pay`
    /// (the all-in-one `flashsale` server).
    pub fn same_origin() -> Self {
        WebPage::default()
    }

    /// A page that buys at `transaction_url` and pays at `payment_url`
    /// (base URLs as the browser reaches them; those services must allow
    /// the page's origin in `CORS_ORIGIN`).
    pub fn new(transaction_url: &str, payment_url: &str) -> Self {
        let base = |u: &str| u.trim().trim_end_matches('/').to_owned();
        WebPage {
            transaction_url: base(transaction_url),
            payment_url: base(payment_url),
        }
    }

    /// The body of `GET /config.json`.
    pub fn config_json(&self) -> String {
        serde_json::json!({
            "transactionUrl": self.transaction_url,
            "paymentUrl": self.payment_url,
        })
        .to_string()
    }

    /// The page's routes (everything but [`socket_io_client`], which must
    /// sit outside the Socket.IO layer).
    pub(crate) fn routes<S: Clone + Send + Sync + 'static>(&self) -> Router<S> {
        let config = axum::body::Bytes::from(self.config_json());
        Router::new()
            .route("/", get(|| async { asset(HTML, INDEX_HTML) }))
            .route("/index.html", get(|| async { asset(HTML, INDEX_HTML) }))
            .route("/app.js", get(|| async { asset(JS, APP_JS) }))
            .route("/app.css", get(|| async { asset(CSS, APP_CSS) }))
            .route("/common.js", get(|| async { asset(JS, COMMON_JS) }))
            .route("/admin", get(|| async { asset(HTML, ADMIN_HTML) }))
            .route("/admin/admin.js", get(|| async { asset(JS, ADMIN_JS) }))
            .route("/admin/admin.css", get(|| async { asset(CSS, ADMIN_CSS) }))
            .route("/admin/uPlot.js", get(|| async { asset(JS, UPLOT_JS) }))
            .route("/admin/uPlot.css", get(|| async { asset(CSS, UPLOT_CSS) }))
            .route(
                "/config.json",
                get(move || std::future::ready(asset(JSON, config.clone()))),
            )
    }
}

/// `GET /socket.io/socket.io.js`. The Socket.IO layer takes every path
/// under `/socket.io/`, so this route must be merged outside it.
pub(crate) fn socket_io_client() -> Router {
    Router::new().route(
        SOCKET_IO_CLIENT_PATH,
        get(|| async { asset(JS, SOCKET_IO_JS) }),
    )
}

/// A text asset, revalidated on each load (it changes with the binary).
fn asset(content_type: &'static str, body: impl IntoResponse) -> Response {
    let header = HeaderValue::from_static;
    (
        [
            (CONTENT_TYPE, header(content_type)),
            (CACHE_CONTROL, header("no-cache")),
            (X_CONTENT_TYPE_OPTIONS, header("nosniff")),
            (REFERRER_POLICY, header("same-origin")),
        ],
        body,
    )
        .into_response()
}
