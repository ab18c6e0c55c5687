//! The reference's Backend service: the sales list, a sale, its buyers,
//! eligibility, and (ours) sale creation — over a [`CatalogueService`].

use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use flashsale_core::NewSale;
use flashsale_core::catalogue::Buyer;
use flashsale_core::service::CatalogueService;

use crate::error::{ApiError, eligibility};
use crate::extract::{ApiJson, sale_id};
use crate::wire::{BuyerBody, CreateSale, Eligible, SaleBody, parse_iso};

/// The backend's routes' state: the catalogue.
#[derive(Debug, Clone)]
pub(crate) struct Backend {
    pub(crate) catalogue: CatalogueService,
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

async fn list_sales(State(b): State<Backend>) -> Result<Json<Vec<SaleBody>>, ApiError> {
    let sales = b.catalogue.list().await?;
    Ok(Json(sales.iter().map(SaleBody::from).collect()))
}

async fn get_sale(
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

async fn sale_buyers(
    State(b): State<Backend>,
    Path(id): Path<String>,
) -> Result<Json<Vec<Buyer>>, ApiError> {
    let id = sale_id(&id)?;
    let buyers = b
        .catalogue
        .buyers(id)
        .await?
        .ok_or_else(|| ApiError::sale_not_found(id))?;
    Ok(Json(buyers))
}

async fn eligible(
    State(b): State<Backend>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<BuyerBody>,
) -> Result<Json<Eligible>, ApiError> {
    let id = sale_id(&id)?;
    b.catalogue
        .eligible(id, &body.buyer_name)
        .await?
        .map_err(|e| eligibility(id, e))?;
    Ok(Json(Eligible { eligible: true }))
}

async fn create_sale(
    State(b): State<Backend>,
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
    let sale = b.catalogue.create_sale(None, new).await?;
    Ok((StatusCode::CREATED, Json(SaleBody::from(&sale))))
}
