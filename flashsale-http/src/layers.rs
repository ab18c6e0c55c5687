//! What every server's router shares: CORS, the body limit, request
//! tracing, 404/405 answers in the reference's error shape, and the health
//! routes.

use axum::Router;
use axum::body::Bytes;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;

use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::trace::TraceLayer;

use crate::error::{ApiError, ErrorCode};
use crate::signature::SIGNATURE_HEADER;

/// The largest request body accepted. Every body here is a few fields.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// Request-level bounds, applied to every route of an app.
#[derive(Debug, Clone)]
pub struct RequestLimits {
    /// A request not answered this long after it arrived is answered 408
    /// (its command may still take effect). Default 30 s.
    pub timeout: Duration,
    /// Requests handled at once; past that, new ones are answered 503 with
    /// `Retry-After` at once (load shedding: no queue). Default 4,096.
    pub max_in_flight: usize,
}

impl Default for RequestLimits {
    fn default() -> Self {
        RequestLimits {
            timeout: Duration::from_secs(30),
            max_in_flight: 4096,
        }
    }
}

/// Sheds load past the in-flight cap and times out slow requests, in the
/// reference's error shape.
async fn bound(
    State((limits, in_flight)): State<(RequestLimits, Arc<Semaphore>)>,
    request: Request,
    next: Next,
) -> Response {
    let Ok(_permit) = in_flight.try_acquire_owned() else {
        return ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::Unavailable,
            "too many requests in flight, try again",
        )
        .into_response();
    };
    match tokio::time::timeout(limits.timeout, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            ErrorCode::RequestTimeout,
            "the request took too long; it may still take effect",
        )
        .into_response(),
    }
}

/// Says whether a server can do its work now (for `GET /readyz`).
pub type Readiness =
    std::sync::Arc<dyn Fn() -> std::pin::Pin<Box<dyn Future<Output = bool> + Send>> + Send + Sync>;

/// `routes` with `/healthz` (the process answers), `/readyz` (`ready` says
/// it can commit: 200, else 503), `/openapi.json` (`description`), the
/// 404/405 fallbacks, the body limit, CORS for `cors_origin` (`*`, or
/// origins separated by commas) and request tracing.
pub fn finish(
    routes: Router,
    ready: Readiness,
    description: &utoipa::openapi::OpenApi,
    limits: &RequestLimits,
    cors_origin: &str,
) -> Router {
    let in_flight = Arc::new(Semaphore::new(limits.max_in_flight.max(1)));
    // Serialized once: the description does not change while serving.
    let description = Bytes::from(description.to_json().unwrap_or_default());
    routes
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz).with_state(ready))
        .route("/openapi.json", get(openapi_json).with_state(description))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(middleware::from_fn_with_state(
            (limits.clone(), in_flight),
            bound,
        ))
        .layer(cors(cors_origin))
        .layer(TraceLayer::new_for_http())
}

/// Liveness: the process answers.
#[utoipa::path(get, path = "/healthz", tag = "health",
    responses((status = 200, description = "`ok`", body = String, content_type = "text/plain")))]
pub(crate) async fn healthz() -> &'static str {
    "ok"
}

/// Readiness: the server can commit (its journal takes appends; its
/// catalogue runs).
#[utoipa::path(get, path = "/readyz", tag = "health",
    responses(
        (status = 200, description = "`ready`", body = String, content_type = "text/plain"),
        (status = 503, description = "`not ready`", body = String, content_type = "text/plain"),
    ))]
pub(crate) async fn readyz(State(ready): State<Readiness>) -> Response {
    if ready().await {
        "ready".into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready").into_response()
    }
}

/// This description.
#[utoipa::path(get, path = "/openapi.json", tag = "health",
    responses((status = 200, description = "The OpenAPI 3 description of this server's routes",
        body = Object, content_type = "application/json")))]
pub(crate) async fn openapi_json(State(description): State<Bytes>) -> Response {
    ([(CONTENT_TYPE, "application/json")], description).into_response()
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
        .allow_methods([Method::GET, Method::POST, Method::PATCH])
        .allow_headers([
            CONTENT_TYPE,
            AUTHORIZATION,
            HeaderName::from_static(SIGNATURE_HEADER),
        ])
}

async fn not_found(method: Method, uri: Uri) -> ApiError {
    ApiError::not_found(
        ErrorCode::RouteNotFound,
        format!("Cannot {method} {}", uri.path()),
    )
}

async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        ErrorCode::MethodNotAllowed,
        format!("Cannot {method} {}", uri.path()),
    )
}
