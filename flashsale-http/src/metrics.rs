//! `GET /metrics` in the Prometheus text format: the `flashsale_*` figures
//! the core records (sales' gauges and counters, time in queue, time to
//! pay, journal appends), the live clients, and every request's duration
//! by route and status.
//!
//! Install the recorder once per process with [`install`]; then either
//! serve [`crate::App::with_metrics`] (the route needs the admin token on
//! the public listener) or [`router`] on a listener of its own
//! (`METRICS_ADDR`), unauthenticated, for a scraper on a private network.

use std::collections::HashMap;
use std::sync::{OnceLock, PoisonError, RwLock};
use std::time::Instant;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::error::{ApiError, ErrorBody};
use crate::tokens::AdminToken;

/// How often histograms' samples are folded into their buckets.
const UPKEEP: std::time::Duration = std::time::Duration::from_secs(2);

/// Histogram buckets of the `_seconds` metrics: 1 ms to 10 minutes.
const BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
    120.0, 300.0, 600.0,
];

/// The process's Prometheus recorder, installed on the first call: every
/// later call answers the same handle.
pub fn install() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), BUCKETS)
                .unwrap_or_else(|e| unreachable!("fixed buckets are valid: {e}"));
            match builder.install_recorder() {
                Ok(handle) => {
                    // Histograms keep their samples until an upkeep folds
                    // them into buckets: without a scraper, memory would grow.
                    let upkeep = handle.clone();
                    std::thread::Builder::new()
                        .name("metrics-upkeep".into())
                        .spawn(move || {
                            loop {
                                std::thread::sleep(UPKEEP);
                                upkeep.run_upkeep();
                            }
                        })
                        .unwrap_or_else(|e| panic!("cannot start the metrics upkeep: {e}"));
                    handle
                }
                // Another recorder is installed (a test harness, say): this
                // one renders only what it was given.
                Err(e) => {
                    tracing::warn!(error = %e, "a metrics recorder was already installed");
                    PrometheusBuilder::new().build_recorder().handle()
                }
            }
        })
        .clone()
}

/// The text of every metric, with its content type.
fn render(handle: &PrometheusHandle) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        handle.render(),
    )
        .into_response()
}

/// `GET /metrics` without credentials, for a listener of its own.
pub fn router(handle: PrometheusHandle) -> Router {
    Router::new()
        .route(
            "/metrics",
            get(async |State(h): State<PrometheusHandle>| render(&h)),
        )
        .with_state(handle)
}

/// `GET /metrics` behind the admin token, for the public listener.
pub(crate) fn guarded(handle: PrometheusHandle, admin: AdminToken) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .with_state((handle, admin))
}

/// Every `flashsale_*` metric in the Prometheus text format (the operator's
/// guide in the README lists them).
#[utoipa::path(get, path = "/metrics", tag = "operator", security(("adminToken" = [])),
    responses(
        (status = 200, description = "The metrics", content_type = "text/plain", body = String),
        (status = 401, description = "`bad_admin_token`", body = ErrorBody),
    ))]
pub(crate) async fn metrics(
    State((handle, admin)): State<(PrometheusHandle, AdminToken)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    admin.check(&headers)?;
    Ok(render(&handle))
}

/// Records `flashsale_http_request_duration_seconds{route, status}`: the
/// route is the matched pattern (`/sales/{id}/buy`), never the raw path,
/// so that ids do not make a series each.
pub(crate) async fn time_requests(request: Request, next: Next) -> Response {
    let route = request.extensions().get::<MatchedPath>().cloned();
    let started = Instant::now();
    let response = next.run(request).await;
    let route = route.as_ref().map_or("unmatched", MatchedPath::as_str);
    duration_histogram(route, response.status().as_u16()).record(started.elapsed().as_secs_f64());
    response
}

/// The histogram of `route` and `status`, made once: a lookup under a read
/// lock, with no allocation, instead of building the metric's key on each
/// request (measured: 10% of `/buy`'s throughput).
fn duration_histogram(route: &str, status: u16) -> ::metrics::Histogram {
    type Handles = HashMap<Box<str>, Vec<(u16, ::metrics::Histogram)>>;
    static HANDLES: OnceLock<RwLock<Handles>> = OnceLock::new();
    let handles = HANDLES.get_or_init(Default::default);
    let find = |h: &Handles| {
        h.get(route)
            .and_then(|by_status| by_status.iter().find(|(s, _)| *s == status))
            .map(|(_, histogram)| histogram.clone())
    };
    if let Some(histogram) = find(&handles.read().unwrap_or_else(PoisonError::into_inner)) {
        return histogram;
    }
    let mut handles = handles.write().unwrap_or_else(PoisonError::into_inner);
    if let Some(histogram) = find(&handles) {
        return histogram;
    }
    let labels = [("route", route.to_owned()), ("status", status.to_string())];
    let histogram = ::metrics::histogram!("flashsale_http_request_duration_seconds", &labels);
    handles
        .entry(route.into())
        .or_default()
        .push((status, histogram.clone()));
    histogram
}
