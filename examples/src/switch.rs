//! A standby's routes, switched once to the active ones.

use std::sync::Arc;

/// A standby's routes, switched once to the active ones: until
/// [`Switch::activate`], `/healthz` answers 200 (the process lives) and
/// everything else — `/readyz` included — 503, so a load balancer routing
/// by `/readyz` sends it nothing.
#[derive(Clone, Default)]
pub struct Switch(Arc<std::sync::RwLock<Option<axum::Router>>>);

impl Switch {
    /// The router to serve: the standby's answers, then the active ones.
    pub fn router(&self) -> axum::Router {
        use tower::ServiceExt;
        let current = self.0.clone();
        let routes = tower::service_fn(move |request: axum::extract::Request| {
            let active = current
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clone();
            async move {
                Ok::<_, std::convert::Infallible>(match active {
                    Some(router) => router.oneshot(request).await?,
                    None if request.uri().path() == "/healthz" => {
                        axum::response::IntoResponse::into_response("ok")
                    }
                    None => {
                        axum::response::IntoResponse::into_response(flashsale_http::ApiError::new(
                            axum::http::StatusCode::SERVICE_UNAVAILABLE,
                            flashsale_http::ErrorCode::Unavailable,
                            "standby: another instance serves this sale",
                        ))
                    }
                })
            }
        });
        axum::Router::new().fallback_service(routes)
    }

    /// Serves `router` from now on.
    pub fn activate(&self, router: axum::Router) {
        *self
            .0
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(router);
    }
}
