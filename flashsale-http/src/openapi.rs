//! The OpenAPI 3 description of the routes, generated from the handlers'
//! annotations and the wire types: each server serves, at
//! `GET /openapi.json`, the description of the routes it serves
//! ([`crate::App::openapi`]). Socket.IO (`/socket.io/`) is not REST and is
//! described in [`crate::live`] and [`crate::events`] instead.

use utoipa::openapi::content::ContentBuilder;
use utoipa::openapi::path::{HttpMethod, Operation, OperationBuilder};
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{IntoParams, IntoResponses, Modify, OpenApi};

use crate::error::ErrorBody;
use crate::wire::{BuyAnswer, Success};
use crate::{backend, layers, operator, payment, transaction};

/// A sale's id in the path.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub(crate) struct SalePath {
    /// The sale (24 hex characters).
    #[param(pattern = "^[0-9a-fA-F]{24}$")]
    #[allow(dead_code, reason = "read by the OpenAPI derive only")]
    id: String,
}

/// A transaction's id in the path.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub(crate) struct TransactionPath {
    /// The transaction (24 hex characters), as `/buy` returned it.
    #[param(pattern = "^[0-9a-fA-F]{24}$")]
    #[allow(dead_code, reason = "read by the OpenAPI derive only")]
    id: String,
}

/// The answers to a buy (`/buy`, `/sales/{id}/buy`).
#[derive(IntoResponses)]
#[allow(dead_code, reason = "read by the OpenAPI derive only")]
pub(crate) enum BuyResponses {
    /// A payment slot (`payment`) or a place in the queue (`waiting`).
    #[response(status = 200)]
    Admitted(BuyAnswer),
    /// `sale_not_initialized` ("Sale not initialized"), `sold_out` ("Sale is
    /// sold out"), `sale_not_started` / `sale_ended` ("Sale is not active"),
    /// `already_joined` ("Buyer already has a transaction for this sale"),
    /// `invalid_name`, `invalid_id`, `invalid_body`.
    #[response(status = 400)]
    Refused(ErrorBody<'static>),
    /// `bad_jwt`: buyers sign in here, and the token is missing or bad.
    #[response(status = 401)]
    Unsigned(ErrorBody<'static>),
    /// `payload_too_large`.
    #[response(status = 413)]
    TooLarge(ErrorBody<'static>),
    /// `unsupported_media_type`.
    #[response(status = 415)]
    NotJson(ErrorBody<'static>),
    /// `rate_limited`: too many requests from this address.
    #[response(status = 429)]
    Limited(ErrorBody<'static>),
    /// `unavailable`: not committed in time; ask again.
    #[response(status = 503)]
    Unavailable(ErrorBody<'static>),
}

/// The answers to a payment callback (`/paid`, `/sales/{id}/paid`).
#[derive(IntoResponses)]
#[allow(dead_code, reason = "read by the OpenAPI derive only")]
pub(crate) enum PaidResponses {
    /// Paid (again: still success, sold once).
    #[response(status = 200)]
    Paid(Success),
    /// `transaction_id_required` ("transactionId is required"),
    /// `not_in_payment` / `transaction_not_found` ("Transaction not in
    /// payment queue"), `slot_expired` / `slot_left` (a refund is due),
    /// `sale_not_initialized`, `invalid_id`, `invalid_body`.
    #[response(status = 400)]
    Refused(ErrorBody<'static>),
    /// `bad_signature`: the server requires a signed callback.
    #[response(status = 401)]
    Unsigned(ErrorBody<'static>),
    /// `payload_too_large`.
    #[response(status = 413)]
    TooLarge(ErrorBody<'static>),
    /// `unsupported_media_type`.
    #[response(status = 415)]
    NotJson(ErrorBody<'static>),
    /// `unavailable`: not committed in time; ask again.
    #[response(status = 503)]
    Unavailable(ErrorBody<'static>),
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "flashsale",
        description = "A flash sale's REST API: the NestJS reference's routes and error shape \
            (`{statusCode, message, error}`) plus a stable `code` in every error body. \
            Live events travel over Socket.IO at `/socket.io/`."
    ),
    paths(layers::healthz, layers::readyz, layers::openapi_json),
    modifiers(&BearerSchemes)
)]
struct CommonApi;

/// The bearer credentials routes ask for.
struct BearerSchemes;

impl Modify for BearerSchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "adminToken",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("The operator's `ADMIN_TOKEN`"))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "buyerToken",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "The `buyerToken` `/buy` answered with the transaction",
                    ))
                    .build(),
            ),
        );
    }
}

#[derive(OpenApi)]
#[openapi(paths(
    backend::list_sales,
    backend::create_sale,
    backend::get_sale,
    backend::sale_buyers,
    backend::eligible
))]
struct BackendApi;

#[derive(OpenApi)]
#[openapi(
    paths(
        transaction::buy_default,
        transaction::buy_in,
        transaction::paid,
        transaction::paid_in,
        transaction::status,
        transaction::leave
    ),
    // Named by the response sets above, which do not collect them.
    components(schemas(BuyAnswer, Success))
)]
struct TransactionApi;

#[derive(OpenApi)]
#[openapi(paths(payment::pay))]
struct PaymentApi;

#[derive(OpenApi)]
#[openapi(paths(
    operator::pause,
    operator::resume,
    operator::change,
    operator::end,
    operator::stats
))]
struct OperatorApi;

#[derive(OpenApi)]
#[openapi(paths(crate::metrics::metrics))]
struct MetricsApi;

/// Which parts a description covers.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Parts {
    pub(crate) backend: bool,
    pub(crate) transaction: bool,
    pub(crate) payment: bool,
    pub(crate) web: bool,
    pub(crate) socket_io_client: bool,
    pub(crate) metrics: bool,
}

/// The description of `parts`' routes, plus `/healthz`, `/readyz` and
/// `/openapi.json`.
pub(crate) fn description(parts: Parts) -> utoipa::openapi::OpenApi {
    let mut doc = CommonApi::openapi();
    doc.info.version = env!("CARGO_PKG_VERSION").to_owned();
    if parts.backend {
        doc.merge(BackendApi::openapi());
    }
    if parts.transaction {
        doc.merge(TransactionApi::openapi());
        doc.merge(OperatorApi::openapi());
    }
    if parts.payment {
        doc.merge(PaymentApi::openapi());
    }
    if parts.metrics {
        doc.merge(MetricsApi::openapi());
    }
    let mut text = Vec::new();
    if parts.web {
        text.extend([
            ("/", "text/html", "The buyer's web page"),
            ("/index.html", "text/html", "The buyer's web page"),
            ("/app.js", "text/javascript", "The page's script"),
            ("/app.css", "text/css", "The page's style"),
            (
                "/common.js",
                "text/javascript",
                "What the page and the dashboard share",
            ),
            ("/admin", "text/html", "The operator dashboard"),
            (
                "/admin/admin.js",
                "text/javascript",
                "The dashboard's script",
            ),
            ("/admin/admin.css", "text/css", "The dashboard's style"),
            (
                "/admin/uPlot.js",
                "text/javascript",
                "uPlot, the dashboard's charts",
            ),
            ("/admin/uPlot.css", "text/css", "uPlot's style"),
            (
                "/config.json",
                "application/json",
                "`{transactionUrl, paymentUrl}`: where the page buys and pays",
            ),
        ]);
    }
    if parts.socket_io_client {
        text.push((
            crate::web::SOCKET_IO_CLIENT_PATH,
            "text/javascript",
            "The socket.io-client browser bundle",
        ));
    }
    for (path, media, what) in text {
        doc.paths
            .add_path_operation(path, vec![HttpMethod::Get], asset(media, what));
    }
    doc
}

/// `GET` of a static asset of type `media` (JSON: an object).
fn asset(media: &str, what: &str) -> Operation {
    let kind = if media == "application/json" {
        Type::Object
    } else {
        Type::String
    };
    let body = ContentBuilder::new()
        .schema(Some(ObjectBuilder::new().schema_type(kind)))
        .build();
    let ok = ResponseBuilder::new()
        .description(what)
        .content(media, body)
        .build();
    OperationBuilder::new()
        .tag("web")
        .summary(Some(what))
        .response("200", ok)
        .build()
}
