//! The routes: backend (sales, buyers, eligibility) and transaction (buy,
//! paid, status, leave), over one [`Service`] and one [`Catalogue`].

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRequest, Path, Request, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderValue, Method, StatusCode, Uri};
use axum::routing::{get, post};
use axum::{Json, Router};
use flashsale_core::catalogue::{Buyer, Sale};
use flashsale_core::ports::FanOut;
use flashsale_core::service::{Ports, ServiceError};
use flashsale_core::{
    BroadcastSink, BuyError, Catalogue, Clock, Event, EventSink, NewSale, Notice, PaidError,
    SaleId, Service, SinkError, StatusError, Timestamp, TxId, TxMessage,
};
use serde::de::DeserializeOwned;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::trace::TraceLayer;

use crate::ApiError;
use crate::payment::Payment;
use crate::signature::{SIGNATURE_HEADER, verify};
use crate::web::WebPage;
use crate::wire::{
    BuyAnswer, BuyerBody, CreateSale, SaleBody, StatusBody, Success, TransactionBody, parse_iso,
};

/// The largest request body accepted. Every body here is a few fields.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// A JSON body whose rejections answer in the reference's error shape.
#[derive(FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct ApiJson<T>(pub T);

/// A JSON body that, when the app has a payment secret, must carry a valid
/// [`SIGNATURE_HEADER`] (else 401). The signature is checked before the body
/// is parsed.
pub struct SignedJson<T>(pub T);

impl<T: DeserializeOwned> FromRequest<App> for SignedJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, app: &App) -> Result<Self, ApiError> {
        let (is_json, signature) = {
            let header = |name: &str| {
                req.headers()
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned)
            };
            let is_json = header(CONTENT_TYPE.as_str()).is_some_and(|ct| {
                let essence = ct
                    .split(';')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_ascii_lowercase();
                essence == "application/json" || essence.ends_with("+json")
            });
            (is_json, header(SIGNATURE_HEADER))
        };
        if !is_json {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "Expected request with `Content-Type: application/json`",
            ));
        }
        let body = Bytes::from_request(req, app)
            .await
            .map_err(|e| ApiError::new(e.status(), e.body_text()))?;
        if let Some(secret) = &app.payment_secret
            && !signature.is_some_and(|s| verify(secret, &body, &s))
        {
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "missing or invalid payment signature",
            ));
        }
        let Json(value) = Json::<T>::from_bytes(&body)?;
        Ok(SignedJson(value))
    }
}

/// Everything the routes share. Cheap to clone.
#[derive(Clone)]
pub struct App {
    service: Service,
    catalogue: Arc<Mutex<Catalogue>>,
    clock: Arc<dyn Clock>,
    default_sale: Option<SaleId>,
    payment_secret: Option<Arc<[u8]>>,
    payment: Option<Payment>,
    web: Option<WebPage>,
    /// Wakes the catalogue's timer task when a sale is added.
    sales_changed: Arc<Notify>,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("default_sale", &self.default_sale)
            .finish_non_exhaustive()
    }
}

impl App {
    /// Routes over `service` and `catalogue`. `default_sale` is the sale
    /// behind the reference's one-sale routes `POST /buy` and `POST /paid`.
    pub fn new(
        service: Service,
        catalogue: Arc<Mutex<Catalogue>>,
        clock: Arc<dyn Clock>,
        default_sale: Option<SaleId>,
    ) -> Self {
        App {
            service,
            catalogue,
            clock,
            default_sale,
            payment_secret: None,
            payment: None,
            web: None,
            sales_changed: Arc::new(Notify::new()),
        }
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

    /// Also serves the buyer's web page at `/` (see [`crate::web`]).
    pub fn with_web_page(mut self, page: WebPage) -> Self {
        self.web = Some(page);
        self
    }

    /// Sets the sale behind `POST /buy` and `POST /paid`.
    pub fn with_default_sale(mut self, sale: SaleId) -> Self {
        self.default_sale = Some(sale);
        self
    }

    /// Applies a `paid` or `switch` message from elsewhere (e.g. a Kafka
    /// consumer) to the catalogue, and returns the notices it caused.
    pub fn apply_message(&self, message: TxMessage) -> Vec<Notice> {
        apply_messages(&self.catalogue, self.clock.now(), [message])
    }

    /// The service running the sales.
    pub fn service(&self) -> &Service {
        &self.service
    }

    fn catalogue(&self) -> std::sync::MutexGuard<'_, Catalogue> {
        self.catalogue
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Creates a sale in the catalogue and starts its engine.
    pub async fn create_sale(&self, new: NewSale) -> Result<Sale, ApiError> {
        let sale = self.catalogue().create(self.clock.now(), new)?;
        self.service
            .create_sale(sale.engine_config())
            .await
            .map_err(|e| {
                tracing::error!(sale = %sale.id, error = %e, "could not start the sale's engine");
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "could not start the sale")
            })?;
        self.sales_changed.notify_one();
        Ok(sale)
    }

    /// Announces each sale's start and end on `notices` when their time
    /// comes (the catalogue's timers), until the runtime stops.
    pub fn spawn_catalogue_timers(&self, notices: BroadcastSink<Notice>) -> JoinHandle<()> {
        let app = self.clone();
        tokio::spawn(async move {
            loop {
                let due = app.catalogue().poll_timeout();
                tokio::select! {
                    () = async {
                        match due {
                            Some(t) => app.clock.sleep_until(t).await,
                            None => std::future::pending().await,
                        }
                    } => {}
                    () = app.sales_changed.notified() => {}
                }
                let due: Vec<Notice> = {
                    let mut catalogue = app.catalogue();
                    catalogue.handle_timeout(app.clock.now());
                    catalogue.drain_notices().collect()
                };
                let _ = notices.publish(&due).await;
            }
        })
    }

    /// Every route (backend, transaction, and `/pay` when configured),
    /// with CORS for `cors_origin` (`*`, or origins separated by commas), a
    /// body limit, request tracing, and 404/405 answers in the reference's
    /// error shape.
    pub fn router(&self, cors_origin: &str) -> Router {
        self.finish(backend_routes().merge(transaction_routes()), cors_origin)
    }

    /// The reference's Backend service alone: sales, buyers, eligibility.
    pub fn backend_router(&self, cors_origin: &str) -> Router {
        self.finish(backend_routes(), cors_origin)
    }

    /// The reference's Transaction service alone: buy, paid, status, leave.
    pub fn transaction_router(&self, cors_origin: &str) -> Router {
        self.finish(transaction_routes(), cors_origin)
    }

    fn finish(&self, routes: Router<App>, cors_origin: &str) -> Router {
        let payment = self
            .payment
            .as_ref()
            .map_or_else(Router::new, Payment::routes);
        let web = self.web.as_ref().map_or_else(Router::new, WebPage::routes);
        routes
            .route("/healthz", get(|| async { "ok" }))
            .merge(payment)
            .merge(web)
            .fallback(not_found)
            .method_not_allowed_fallback(method_not_allowed)
            .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
            .layer(cors(cors_origin))
            .layer(TraceLayer::new_for_http())
            .with_state(self.clone())
    }
}

fn backend_routes() -> Router<App> {
    Router::new()
        .route("/sales", get(list_sales).post(create_sale))
        .route("/sales/{id}", get(get_sale))
        .route("/sales/{id}/buyers", get(sale_buyers))
        .route("/sales/{id}/eligible", post(eligible))
}

fn transaction_routes() -> Router<App> {
    Router::new()
        .route("/sales/{id}/buy", post(buy_in))
        .route("/sales/{id}/paid", post(paid_in))
        .route("/buy", post(buy_default))
        .route("/paid", post(paid_default))
        .route("/transactions/{id}", get(transaction_status))
        .route("/transactions/{id}/leave", post(leave))
}

pub(crate) fn cors(origin: &str) -> CorsLayer {
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
        .allow_headers([
            CONTENT_TYPE,
            axum::http::HeaderName::from_static(SIGNATURE_HEADER),
        ])
}

pub(crate) async fn not_found(method: Method, uri: Uri) -> ApiError {
    ApiError::not_found(format!("Cannot {method} {}", uri.path()))
}

pub(crate) async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        format!("Cannot {method} {}", uri.path()),
    )
}

fn sale_id(raw: &str) -> Result<SaleId, ApiError> {
    Ok(raw.parse()?)
}

fn tx_id(raw: &str) -> Result<TxId, ApiError> {
    raw.trim()
        .parse()
        .map_err(|_| ApiError::bad_request("transactionId must be a 24-character hex ObjectId"))
}

async fn list_sales(State(app): State<App>) -> Json<Vec<SaleBody>> {
    Json(app.catalogue().list().map(SaleBody::from).collect())
}

async fn get_sale(
    State(app): State<App>,
    Path(id): Path<String>,
) -> Result<Json<SaleBody>, ApiError> {
    let id = sale_id(&id)?;
    let catalogue = app.catalogue();
    let sale = catalogue
        .get(id)
        .ok_or_else(|| ApiError::not_found("sale not found"))?;
    Ok(Json(SaleBody::from(sale)))
}

async fn sale_buyers(
    State(app): State<App>,
    Path(id): Path<String>,
) -> Result<Json<Vec<Buyer>>, ApiError> {
    let id = sale_id(&id)?;
    let catalogue = app.catalogue();
    let buyers = catalogue
        .buyers(id)
        .ok_or_else(|| ApiError::not_found("sale not found"))?;
    Ok(Json(buyers.to_vec()))
}

async fn eligible(
    State(app): State<App>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<BuyerBody>,
) -> Result<Json<serde_json::Value>, ApiError> {
    app.catalogue().eligible(sale_id(&id)?, &body.buyer_name)?;
    Ok(Json(serde_json::json!({ "eligible": true })))
}

async fn create_sale(
    State(app): State<App>,
    ApiJson(body): ApiJson<CreateSale>,
) -> Result<(StatusCode, Json<SaleBody>), ApiError> {
    let mut new = NewSale::new(
        &body.product_name,
        body.quantity,
        parse_iso("saleStart", &body.sale_start)?,
        parse_iso("saleEnd", &body.sale_end)?,
    );
    if let Some(ms) = body.payment_timeout_ms {
        new.payment_timeout = Duration::from_millis(ms);
    }
    new.max_payment_slots = body.max_payment_slots;
    let sale = app.create_sale(new).await?;
    Ok((StatusCode::CREATED, Json(SaleBody::from(&sale))))
}

async fn buy(
    app: &App,
    sale: Option<SaleId>,
    body: BuyerBody,
) -> Result<Json<BuyAnswer>, ApiError> {
    let sale = sale.ok_or(BuyError::UnknownSale)?;
    let admission = app.service.buy(sale, &body.buyer_name).await?;
    let state = match admission.place {
        flashsale_core::Place::Payment { .. } => flashsale_core::TxState::Payment,
        flashsale_core::Place::Waiting { .. } => flashsale_core::TxState::Waiting,
    };
    Ok(Json(BuyAnswer {
        transaction_id: admission.tx.to_string(),
        state,
    }))
}

async fn buy_default(
    State(app): State<App>,
    ApiJson(body): ApiJson<BuyerBody>,
) -> Result<Json<BuyAnswer>, ApiError> {
    buy(&app, app.default_sale, body).await
}

async fn buy_in(
    State(app): State<App>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<BuyerBody>,
) -> Result<Json<BuyAnswer>, ApiError> {
    buy(&app, Some(sale_id(&id)?), body).await
}

fn paid_tx(body: &TransactionBody) -> Result<TxId, ApiError> {
    if body.transaction_id.trim().is_empty() {
        return Err(ApiError::bad_request("transactionId is required"));
    }
    tx_id(&body.transaction_id)
}

/// `POST /paid`: the default sale's transaction, or else whichever sale
/// holds it (the payment stand-in calls this one route for every sale).
async fn paid_default(
    State(app): State<App>,
    SignedJson(body): SignedJson<TransactionBody>,
) -> Result<Json<Success>, ApiError> {
    let tx = paid_tx(&body)?;
    let first = match app.default_sale {
        Some(sale) => app.service.paid(sale, tx).await,
        None => Err(PaidError::UnknownSale),
    };
    if let Err(PaidError::UnknownSale | PaidError::UnknownTransaction) = first
        && let Ok((sale, _)) = locate(&app, tx).await
    {
        app.service.paid(sale, tx).await?;
    } else {
        first?;
    }
    Ok(Json(Success { success: true }))
}

async fn paid_in(
    State(app): State<App>,
    Path(id): Path<String>,
    SignedJson(body): SignedJson<TransactionBody>,
) -> Result<Json<Success>, ApiError> {
    let tx = paid_tx(&body)?;
    app.service.paid(sale_id(&id)?, tx).await?;
    Ok(Json(Success { success: true }))
}

/// The sale holding `tx`: the default sale first, then the others.
async fn locate(app: &App, tx: TxId) -> Result<(SaleId, flashsale_core::Status), ApiError> {
    let mut sales = app.service.sale_ids();
    if let Some(d) = app.default_sale {
        sales.retain(|s| *s != d);
        sales.insert(0, d);
    }
    for sale in sales {
        match app.service.status(sale, tx).await {
            Ok(status) => return Ok((sale, status)),
            Err(StatusError::UnknownTransaction | StatusError::UnknownSale) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Err(StatusError::UnknownTransaction.into())
}

async fn transaction_status(
    State(app): State<App>,
    Path(id): Path<String>,
) -> Result<Json<StatusBody>, ApiError> {
    let (sale, status) = locate(&app, tx_id(&id)?).await?;
    Ok(Json(StatusBody::new(sale, &status)))
}

async fn leave(State(app): State<App>, Path(id): Path<String>) -> Result<Json<Success>, ApiError> {
    let tx = tx_id(&id)?;
    let (sale, _) = locate(&app, tx).await?;
    app.service.leave(sale, tx).await?;
    Ok(Json(Success { success: true }))
}

/// Feeds committed engine events to an in-process catalogue (what the
/// reference does over Kafka): each `paid` and `switch` is applied, and the
/// catalogue's notices are published for live clients.
pub struct CatalogueFeed {
    catalogue: Arc<Mutex<Catalogue>>,
    clock: Arc<dyn Clock>,
    notices: BroadcastSink<Notice>,
}

impl CatalogueFeed {
    /// A feed into `catalogue`, announcing on `notices`.
    pub fn new(
        catalogue: Arc<Mutex<Catalogue>>,
        clock: Arc<dyn Clock>,
        notices: BroadcastSink<Notice>,
    ) -> Self {
        CatalogueFeed {
            catalogue,
            clock,
            notices,
        }
    }
}

/// Applies engine messages to `catalogue` (logging refusals and
/// oversells) and returns the notices they caused.
fn apply_messages(
    catalogue: &Mutex<Catalogue>,
    now: Timestamp,
    messages: impl IntoIterator<Item = TxMessage>,
) -> Vec<Notice> {
    let mut catalogue = catalogue.lock().unwrap_or_else(PoisonError::into_inner);
    for message in messages {
        match catalogue.apply(now, &message) {
            Ok(flashsale_core::catalogue::Applied::Oversold) => {
                tracing::error!(?message, "catalogue recorded a sale beyond its stock");
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(?message, error = %e, "catalogue refused a message"),
        }
    }
    catalogue.drain_notices().collect()
}

#[async_trait]
impl EventSink for CatalogueFeed {
    async fn publish(&self, events: &[Event]) -> Result<(), SinkError> {
        let messages = events.iter().filter_map(TxMessage::from_event);
        let notices = apply_messages(&self.catalogue, self.clock.now(), messages);
        self.notices.publish(&notices).await
    }
}

/// Everything in one process, wired: engines → (catalogue feed, engine
/// event broadcast) → Socket.IO; catalogue timers announcing starts and
/// ends. What the `flashsale` server runs.
pub struct InProcess {
    /// The routes' state.
    pub app: App,
    /// Catalogue notices (sale_update, starts, ends, queue_switch).
    pub notices: BroadcastSink<Notice>,
    /// Committed engine events.
    pub events: BroadcastSink<Event>,
}

impl InProcess {
    /// Opens the service over `ports` (its sink is replaced by the feed and
    /// broadcasts; anything else goes too, through a [`FanOut`]) with
    /// `catalogue`.
    pub async fn open(mut ports: Ports, catalogue: Catalogue) -> Result<Self, ServiceError> {
        let catalogue = Arc::new(Mutex::new(catalogue));
        let notices = BroadcastSink::new(4096);
        let events = BroadcastSink::new(4096);
        let feed = CatalogueFeed::new(catalogue.clone(), ports.clock.clone(), notices.clone());
        ports.sink = Arc::new(FanOut(vec![
            ports.sink.clone(),
            Arc::new(feed),
            Arc::new(events.clone()),
        ]));
        let clock = ports.clock.clone();
        let service = Service::open(ports).await?;
        Ok(InProcess {
            app: App::new(service, catalogue, clock, None),
            notices,
            events,
        })
    }

    /// The routes plus Socket.IO, with the live forwarder and the catalogue
    /// timers started (they run until the runtime stops).
    pub fn router(&self, cors_origin: &str) -> Router {
        self.live(self.app.router(cors_origin))
    }

    /// The backend's routes plus Socket.IO (the split deployment's
    /// `backend`), with the live forwarder and the catalogue timers started.
    pub fn backend_router(&self, cors_origin: &str) -> Router {
        self.live(self.app.backend_router(cors_origin))
    }

    fn live(&self, routes: Router) -> Router {
        let (layer, io) = crate::live::layer();
        crate::live::spawn_forwarder(io, self.notices.subscribe(), self.events.subscribe());
        self.app.spawn_catalogue_timers(self.notices.clone());
        crate::web::socket_io_client().merge(routes.layer(layer))
    }
}
