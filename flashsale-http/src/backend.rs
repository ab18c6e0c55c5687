//! The reference's Backend service: the sales list, a sale, its buyers,
//! eligibility, and (ours) sale creation — over a [`CatalogueService`].

use axum::extract::{Path, State};
use std::sync::{Arc, PoisonError, RwLock};

use axum::body::Bytes;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, ETAG, IF_NONE_MATCH, LINK};
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
    /// `GET /sales`'s last answer, by catalogue version.
    pub(crate) sales: Arc<SalesCache>,
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

/// `GET /sales`'s answer, serialized once per catalogue version: the
/// reference's page asks for the whole list on every `sale_update`, so a
/// crowd's re-fetches must cost a lookup, not a serialization (or, with
/// `If-None-Match`, nothing but a 304).
#[derive(Debug)]
pub(crate) struct SalesCache {
    /// Tells this process's versions from another's (a restart starts the
    /// catalogue's version again).
    boot: u32,
    last: RwLock<Option<CachedList>>,
}

#[derive(Debug, Clone)]
struct CachedList {
    version: u64,
    etag: HeaderValue,
    body: Bytes,
}

impl SalesCache {
    pub(crate) fn new() -> Self {
        let mut boot = [0u8; 4];
        getrandom::fill(&mut boot).unwrap_or_else(|e| panic!("no OS randomness: {e}"));
        SalesCache {
            boot: u32::from_ne_bytes(boot),
            last: RwLock::new(None),
        }
    }
}

/// Whether `If-None-Match` names `etag` (or is `*`); weak tags compare by
/// their opaque part, as RFC 9110 says for `If-None-Match`.
fn not_modified(headers: &HeaderMap, etag: &HeaderValue) -> bool {
    let ours = etag.to_str().unwrap_or_default().trim_start_matches("W/");
    headers
        .get_all(IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|tag| tag.trim().trim_start_matches("W/"))
        .any(|tag| tag == "*" || tag == ours)
}

/// Every sale, by id (which ascends with creation time). The answer carries
/// an `ETag`; asked again with `If-None-Match` and nothing changed, it is a
/// bodiless 304.
#[utoipa::path(get, path = "/sales", tag = "backend",
    params(("if-none-match" = Option<String>, Header, description = "The `ETag` of a list already held")),
    responses(
        (status = 200, description = "The sales", body = [SaleBody],
            headers(("etag" = String, description = "Changes whenever the list may have"))),
        (status = 304, description = "Not modified: the list is still the one `If-None-Match` names",
            headers(("etag" = String))),
        (status = 503, description = "`unavailable`", body = ErrorBody),
    ))]
pub(crate) async fn list_sales(
    State(b): State<Backend>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let version = b.catalogue.version();
    let cached = b
        .sales
        .last
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .clone()
        .filter(|c| c.version == version);
    let list = match cached {
        Some(list) => list,
        None => {
            let sales = b.catalogue.list().await?;
            let bodies: Vec<SaleBody> = sales.iter().map(SaleBody::from).collect();
            let body = serde_json::to_vec(&bodies).map_err(|_| ApiError::unavailable())?;
            let etag = HeaderValue::from_str(&format!("\"{:08x}-{version}\"", b.sales.boot))
                .map_err(|_| ApiError::unavailable())?;
            let list = CachedList {
                version,
                etag,
                body: Bytes::from(body),
            };
            *b.sales.last.write().unwrap_or_else(PoisonError::into_inner) = Some(list.clone());
            list
        }
    };
    let cache_headers = [
        (ETAG, list.etag.clone()),
        (CACHE_CONTROL, HeaderValue::from_static("no-cache")),
    ];
    if not_modified(&headers, &list.etag) {
        return Ok((StatusCode::NOT_MODIFIED, cache_headers).into_response());
    }
    let json = (CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Ok((cache_headers, [json], list.body).into_response())
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
