//! What every server's router shares: CORS, the body limit, request
//! tracing, 404/405 answers in the reference's error shape, and the health
//! routes.

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::response::IntoResponse;
use axum::routing::get;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::trace::TraceLayer;

use crate::error::{ApiError, codes};
use crate::signature::SIGNATURE_HEADER;

/// The largest request body accepted. Every body here is a few fields.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// Says whether a server can do its work now (for `GET /readyz`).
pub type Readiness = std::sync::Arc<dyn Fn() -> bool + Send + Sync>;

/// `routes` with `/healthz` (the process answers), `/readyz` (`ready` says
/// it can commit: 200, else 503), the 404/405 fallbacks, the body limit,
/// CORS for `cors_origin` (`*`, or origins separated by commas) and request
/// tracing.
pub fn finish(routes: Router, ready: Readiness, cors_origin: &str) -> Router {
    routes
        .route("/healthz", get(|| async { "ok" }))
        .route(
            "/readyz",
            get(move || async move {
                if ready() {
                    "ready".into_response()
                } else {
                    (StatusCode::SERVICE_UNAVAILABLE, "not ready").into_response()
                }
            }),
        )
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(cors(cors_origin))
        .layer(TraceLayer::new_for_http())
}

fn cors(origin: &str) -> CorsLayer {
    let origins = if origin.trim() == "*" {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(
            origin
                .split(',')
                .filter_map(|o| HeaderValue::from_str(o.trim()).ok()),
        )
    };
    CorsLayer::new()
        .allow_origin(origins)
        .allow_methods([Method::GET, Method::POST])
        .allow_headers([CONTENT_TYPE, HeaderName::from_static(SIGNATURE_HEADER)])
}

async fn not_found(method: Method, uri: Uri) -> ApiError {
    ApiError::not_found(
        codes::ROUTE_NOT_FOUND,
        format!("Cannot {method} {}", uri.path()),
    )
}

async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        codes::METHOD_NOT_ALLOWED,
        format!("Cannot {method} {}", uri.path()),
    )
}
