//! [`App`]: which parts a server serves — the backend's routes over a
//! catalogue, the transaction routes over a service, the payment stand-in,
//! the web page — on one router with the shared layers.

use std::sync::Arc;

use axum::Router;
use flashsale_core::service::CatalogueService;
use flashsale_core::{SaleId, Service};

use crate::auth::BuyerAuth;
use crate::backend::{self, Backend};
use crate::layers::{Readiness, RequestLimits, finish};
use crate::openapi::{self, Parts};
use crate::payment::Payment;
use crate::ratelimit::{ClientLimiter, limit_scoped};
use crate::tokens::{AdminToken, TokenKey};
use crate::transaction::{self, Transactions};
use crate::web::WebPage;
use axum::middleware;

/// The parts a server serves. Cheap to clone; build it with the `with_*`
/// methods, then take its [`App::router`].
///
/// | part | routes |
/// |---|---|
/// | [`App::with_catalogue`] | the backend's: `/sales…`, eligibility |
/// | [`App::with_service`] | the transaction service's: buy, paid, status, leave |
/// | [`App::with_payment`] | the payment stand-in's `POST /pay` |
/// | [`App::with_web_page`] | the buyer's page at `/` |
///
/// Every router also answers `GET /healthz` (the process lives),
/// `GET /readyz` (it can commit: the service's journal takes appends and
/// the catalogue runs) and `GET /openapi.json` ([`App::openapi`]).
#[derive(Clone)]
pub struct App {
    catalogue: Option<CatalogueService>,
    /// `GET /sales`'s cached answer.
    sales: Arc<backend::SalesCache>,
    service: Option<Service>,
    default_sale: Option<SaleId>,
    payment_secret: Option<Arc<[u8]>>,
    payment: Option<Payment>,
    web: Option<WebPage>,
    /// Makes and checks buyer tokens.
    tokens: TokenKey,
    /// Guards operator routes.
    admin: AdminToken,
    /// Bounds every request.
    limits: RequestLimits,
    /// Per-client limits on buys, eligibility, transaction routes and live
    /// connections; none by default (the demo profile).
    rate_limit: Option<ClientLimiter>,
    /// When buyers sign in: their JWTs' checks.
    auth: Option<BuyerAuth>,
    /// Serves `GET /metrics` (admin token) and times every request.
    metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
    /// Its description lists the socket.io browser client, which
    /// [`crate::InProcess`] serves beside it (outside its Socket.IO layer).
    socket_io_client: bool,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("catalogue", &self.catalogue.is_some())
            .field("service", &self.service.is_some())
            .field("default_sale", &self.default_sale)
            .finish_non_exhaustive()
    }
}

impl Default for App {
    fn default() -> Self {
        Self::new()
    }
}

impl App {
    /// Serves nothing yet but `/healthz`, `/readyz` and `/openapi.json`.
    /// Buyer tokens use a random key until [`App::with_token_key`].
    pub fn new() -> Self {
        App {
            catalogue: None,
            sales: Arc::new(backend::SalesCache::new()),
            service: None,
            default_sale: None,
            payment_secret: None,
            payment: None,
            web: None,
            tokens: TokenKey::random(),
            admin: AdminToken::random().0,
            limits: RequestLimits::default(),
            rate_limit: None,
            auth: None,
            metrics: None,
            socket_io_client: false,
        }
    }

    /// Bounds every request by `limits` instead of the defaults.
    pub fn with_request_limits(mut self, limits: RequestLimits) -> Self {
        self.limits = limits;
        self
    }

    /// Limits each client address on `/buy`, `/eligible`, the transaction
    /// routes and new Socket.IO connections (429 past it).
    pub fn with_rate_limit(mut self, limiter: ClientLimiter) -> Self {
        self.rate_limit = Some(limiter);
        self
    }

    /// Buyers sign in: `/buy` and `/eligible` need `Authorization: Bearer
    /// <jwt>` checked by `auth`, and the buyer is the token's `sub` (see
    /// [`crate::auth`]).
    pub fn with_buyer_auth(mut self, auth: BuyerAuth) -> Self {
        self.auth = Some(auth);
        self
    }

    /// The per-client limiter, if any.
    pub fn rate_limit(&self) -> Option<&ClientLimiter> {
        self.rate_limit.as_ref()
    }

    /// Operator routes (`POST /sales`) need `Authorization: Bearer <token>`.
    /// Until this is called, the token is random and known to nobody.
    pub fn with_admin_token(mut self, token: AdminToken) -> Self {
        self.admin = token;
        self
    }

    /// Makes and checks buyer tokens with `key` (see [`crate::tokens`]).
    pub fn with_token_key(mut self, key: TokenKey) -> Self {
        self.tokens = key;
        self
    }

    /// The key behind buyer tokens.
    pub fn token_key(&self) -> &TokenKey {
        &self.tokens
    }

    /// Serves the backend's routes over `catalogue`.
    pub fn with_catalogue(mut self, catalogue: CatalogueService) -> Self {
        self.catalogue = Some(catalogue);
        self
    }

    /// Serves the transaction routes over `service`.
    pub fn with_service(mut self, service: Service) -> Self {
        self.service = Some(service);
        self
    }

    /// Sets the sale behind the reference's one-sale `POST /buy`.
    pub fn with_default_sale(mut self, sale: SaleId) -> Self {
        self.default_sale = Some(sale);
        self
    }

    /// Requires `/paid` calls to be signed with `secret` (see
    /// [`crate::signature`]).
    pub fn with_payment_secret(mut self, secret: &[u8]) -> Self {
        self.payment_secret = Some(Arc::from(secret));
        self
    }

    /// Also serves the payment stand-in's `POST /pay`.
    pub fn with_payment(mut self, payment: Payment) -> Self {
        self.payment = Some(payment);
        self
    }

    /// Serves `GET /metrics` from `handle` behind the admin token, and
    /// records every request's duration (see [`crate::metrics`]).
    pub fn with_metrics(mut self, handle: metrics_exporter_prometheus::PrometheusHandle) -> Self {
        self.metrics = Some(handle);
        self
    }

    /// Also serves the buyer's web page at `/` (see [`crate::web`]).
    pub fn with_web_page(mut self, page: WebPage) -> Self {
        self.web = Some(page);
        self
    }

    /// Lists the socket.io browser client in the description: the caller
    /// serves it beside this app's router.
    pub(crate) fn with_socket_io_client(mut self) -> Self {
        self.socket_io_client = true;
        self
    }

    /// The OpenAPI description of the routes this app serves (what
    /// `GET /openapi.json` answers).
    pub fn openapi(&self) -> utoipa::openapi::OpenApi {
        openapi::description(Parts {
            backend: self.catalogue.is_some(),
            transaction: self.service.is_some(),
            payment: self.payment.is_some(),
            web: self.web.is_some(),
            socket_io_client: self.socket_io_client,
            metrics: self.metrics.is_some(),
        })
    }

    /// The catalogue behind the backend's routes.
    pub fn catalogue(&self) -> Option<&CatalogueService> {
        self.catalogue.as_ref()
    }

    /// The service behind the transaction routes.
    pub fn service(&self) -> Option<&Service> {
        self.service.as_ref()
    }

    /// Every part this app has, with CORS for `cors_origin` (`*`, or
    /// origins separated by commas), a body limit, request tracing, and
    /// 404/405 answers in the reference's error shape.
    pub fn router(&self, cors_origin: &str) -> Router {
        let mut routes = Router::new();
        if let Some(catalogue) = &self.catalogue {
            routes = routes.merge(backend::routes(Backend {
                catalogue: catalogue.clone(),
                sales: self.sales.clone(),
                admin: self.admin.clone(),
                auth: self.auth.clone(),
            }));
        }
        if let Some(service) = &self.service {
            routes = routes.merge(crate::operator::routes(crate::operator::Operator {
                service: service.clone(),
                admin: self.admin.clone(),
            }));
            routes = routes.merge(transaction::routes(Transactions {
                service: service.clone(),
                default_sale: self.default_sale,
                payment_secret: self.payment_secret.clone(),
                tokens: self.tokens.clone(),
                auth: self.auth.clone(),
            }));
        }
        if let Some(payment) = &self.payment {
            routes = routes.merge(payment.routes());
        }
        if let Some(web) = &self.web {
            routes = routes.merge(web.routes());
        }
        if let Some(handle) = &self.metrics {
            routes = routes
                .merge(crate::metrics::guarded(handle.clone(), self.admin.clone()))
                .route_layer(middleware::from_fn(crate::metrics::time_requests));
        }
        let (catalogue, service) = (self.catalogue.clone(), self.service.clone());
        let ready: Readiness = Arc::new(move || {
            let (catalogue, service) = (catalogue.clone(), service.clone());
            Box::pin(async move {
                catalogue.as_ref().is_none_or(CatalogueService::is_running)
                    && match &service {
                        Some(service) => service.ready().await,
                        None => true,
                    }
            })
        });
        let router = finish(routes, ready, &self.openapi(), &self.limits, cors_origin);
        // Beside Socket.IO (`InProcess`), the caller puts this one layer
        // outside both, so that handshakes count too.
        match (&self.rate_limit, self.socket_io_client) {
            (Some(limiter), false) => router.layer(middleware::from_fn_with_state(
                limiter.clone(),
                limit_scoped,
            )),
            _ => router,
        }
    }
}
