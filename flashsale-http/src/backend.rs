//! The reference's Backend service: the sales list, a sale, its buyers,
//! eligibility, and (ours) sale creation — over a [`CatalogueService`].

use axum::extract::{Path, State};
use axum::http::header::LINK;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use flashsale_core::catalogue::Buyer;
use flashsale_core::service::CatalogueService;

use crate::auth::BuyerAuth;
use crate::error::{ApiError, ErrorBody, eligibility};
use crate::extract::{ApiJson, ApiQuery, sale_id, tx_id};
use crate::openapi::SalePath;
use crate::tokens::AdminToken;
use crate::wire::{BuyerBody, BuyersQuery, CreateSale, Eligible, MAX_PAGE, SaleBody};

/// The backend's routes' state: the catalogue.
#[derive(Debug, Clone)]
pub(crate) struct Backend {
    pub(crate) catalogue: CatalogueService,
    /// Guards sale creation.
    pub(crate) admin: AdminToken,
    /// When buyers sign in, eligibility needs their JWT too.
    pub(crate) auth: Option<BuyerAuth>,
}

/// `GET /sales`, `POST /sales`, `GET /sales/{id}`, `GET /sales/{id}/buyers`,
/// `POST /sales/{id}/eligible`.
pub(crate) fn routes(backend: Backend) -> Router {
    Router::new()
        .route("/sales", get(list_sales).post(create_sale))
        .route("/sales/{id}", get(get_sale))
        .route("/sales/{id}/buyers", get(sale_buyers))
        .route("/sales/{id}/eligible", post(eligible))
        .with_state(backend)
}

/// Every sale, by id (which ascends with creation time).
#[utoipa::path(get, path = "/sales", tag = "backend",
    responses(
        (status = 200, description = "The sales", body = [SaleBody]),
        (status = 503, description = "`unavailable`", body = ErrorBody),
    ))]
pub(crate) async fn list_sales(State(b): State<Backend>) -> Result<Json<Vec<SaleBody>>, ApiError> {
    let sales = b.catalogue.list().await?;
    Ok(Json(sales.iter().map(SaleBody::from).collect()))
}

/// One sale; `productQty` is the units not yet sold.
#[utoipa::path(get, path = "/sales/{id}", tag = "backend", params(SalePath),
    responses(
        (status = 200, description = "The sale", body = SaleBody),
        (status = 400, description = "`invalid_id`", body = ErrorBody),
        (status = 404, description = "`sale_not_found`: \"Sale not found: <id>\"", body = ErrorBody),
        (status = 503, description = "`unavailable`", body = ErrorBody),
    ))]
pub(crate) async fn get_sale(
    State(b): State<Backend>,
    Path(id): Path<String>,
) -> Result<Json<SaleBody>, ApiError> {
    let id = sale_id(&id)?;
    let sale = b
        .catalogue
        .get(id)
        .await?
        .ok_or_else(|| ApiError::sale_not_found(id))?;
    Ok(Json(SaleBody::from(&sale)))
}

/// A sale's buyers, in the order their payments were applied, a page at a
/// time. A buyer's id is its paid transaction's id. When more follow, the
/// `Link` header names the next page (`rel="next"`).
#[utoipa::path(get, path = "/sales/{id}/buyers", tag = "backend", params(SalePath, BuyersQuery),
    responses(
        (status = 200, description = "A page of buyers", body = [Buyer],
            headers(("link" = String, description = "`</sales/{id}/buyers?after=…&limit=…>; rel=\"next\"` when more buyers follow"))),
        (status = 400, description = "`invalid_id`", body = ErrorBody),
        (status = 404, description = "`sale_not_found`", body = ErrorBody),
        (status = 503, description = "`unavailable`", body = ErrorBody),
    ))]
pub(crate) async fn sale_buyers(
    State(b): State<Backend>,
    Path(id): Path<String>,
    ApiQuery(query): ApiQuery<BuyersQuery>,
) -> Result<Response, ApiError> {
    let id = sale_id(&id)?;
    let after = query.after.as_deref().map(tx_id).transpose()?;
    let limit = query.limit.unwrap_or(MAX_PAGE).clamp(1, MAX_PAGE);
    let (buyers, next) = b
        .catalogue
        .buyers(id, after, limit)
        .await?
        .ok_or_else(|| ApiError::sale_not_found(id))?;
    let mut response = Json(buyers).into_response();
    if let Some(next) = next
        && let Ok(link) = HeaderValue::from_str(&format!(
            "</sales/{id}/buyers?after={next}&limit={limit}>; rel=\"next\""
        ))
    {
        response.headers_mut().insert(LINK, link);
    }
    Ok(response)
}

/// Whether a buyer may still buy: not sold out, and has not bought.
#[utoipa::path(post, path = "/sales/{id}/eligible", tag = "backend", params(SalePath),
    request_body = BuyerBody,
    responses(
        (status = 200, description = "Eligible", body = Eligible),
        (status = 400, description = "`sold_out` (\"Sale is sold out\"), `already_participated` (\"You have already participated in this sale\"), `invalid_name`, `invalid_id`, `invalid_body`", body = ErrorBody),
        (status = 401, description = "`bad_jwt`: buyers sign in here, and the token is missing or bad", body = ErrorBody),
        (status = 404, description = "`sale_not_found`", body = ErrorBody),
        (status = 413, description = "`payload_too_large`", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`", body = ErrorBody),
        (status = 429, description = "`rate_limited`", body = ErrorBody),
        (status = 503, description = "`unavailable`", body = ErrorBody),
    ))]
pub(crate) async fn eligible(
    State(b): State<Backend>,
    Path(id): Path<String>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<BuyerBody>,
) -> Result<Json<Eligible>, ApiError> {
    let id = sale_id(&id)?;
    let account = b.auth.as_ref().map(|a| a.account(&headers)).transpose()?;
    b.catalogue
        .eligible(id, &body.buyer_name, account.as_deref())
        .await?
        .map_err(|e| eligibility(id, e))?;
    Ok(Json(Eligible { eligible: true }))
}

/// Creates a sale (ours: the reference seeds its sales by hand) and starts
/// its engine where this server runs engines. Operators only.
#[utoipa::path(post, path = "/sales", tag = "backend",
    request_body = CreateSale,
    security(("adminToken" = [])),
    responses(
        (status = 201, description = "The new sale", body = SaleBody),
        (status = 400, description = "`invalid_sale` (also: `MAX_SALES` reached), `invalid_body`", body = ErrorBody),
        (status = 401, description = "`bad_admin_token`", body = ErrorBody),
        (status = 413, description = "`payload_too_large`", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`", body = ErrorBody),
        (status = 503, description = "`unavailable`: the sale's engine could not start", body = ErrorBody),
    ))]
pub(crate) async fn create_sale(
    State(b): State<Backend>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<CreateSale>,
) -> Result<(StatusCode, Json<SaleBody>), ApiError> {
    b.admin.check(&headers)?;
    let sale = b.catalogue.create_sale(None, body.new_sale()?).await?;
    Ok((StatusCode::CREATED, Json(SaleBody::from(&sale))))
}
