//! The reference's Transaction service: buy and paid, plus (ours) a sale's
//! own buy and paid routes, a transaction's status and leave — over a
//! [`Service`]. Every transaction route finds the transaction's sale from
//! its id in one call ([`Service::status_of`]).

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use flashsale_core::{Place, SaleId, Service, TxState};

use crate::error::{ApiError, codes};
use crate::extract::{ApiJson, PaymentSecret, SignedJson, sale_id, tx_id};
use crate::wire::{BuyAnswer, BuyerBody, StatusBody, Success, TransactionBody};

/// The transaction routes' state.
#[derive(Clone)]
pub(crate) struct Transactions {
    pub(crate) service: Service,
    /// The sale behind the reference's one-sale `POST /buy`.
    pub(crate) default_sale: Option<SaleId>,
    pub(crate) payment_secret: Option<Arc<[u8]>>,
}

impl PaymentSecret for Transactions {
    fn payment_secret(&self) -> Option<&[u8]> {
        self.payment_secret.as_deref()
    }
}

/// `POST /buy`, `POST /paid`, `POST /sales/{id}/buy`,
/// `POST /sales/{id}/paid`, `GET /transactions/{id}`,
/// `POST /transactions/{id}/leave`.
pub(crate) fn routes(transactions: Transactions) -> Router {
    Router::new()
        .route("/sales/{id}/buy", post(buy_in))
        .route("/sales/{id}/paid", post(paid_in))
        .route("/buy", post(buy_default))
        .route("/paid", post(paid))
        .route("/transactions/{id}", get(status))
        .route("/transactions/{id}/leave", post(leave))
        .with_state(transactions)
}

async fn buy(t: &Transactions, sale: SaleId, body: BuyerBody) -> Result<Json<BuyAnswer>, ApiError> {
    let admission = t.service.buy(sale, &body.buyer_name).await?;
    let state = match admission.place {
        Place::Payment { .. } => TxState::Payment,
        Place::Waiting { .. } => TxState::Waiting,
    };
    Ok(Json(BuyAnswer {
        transaction_id: admission.tx.to_string(),
        state,
    }))
}

async fn buy_default(
    State(t): State<Transactions>,
    ApiJson(body): ApiJson<BuyerBody>,
) -> Result<Json<BuyAnswer>, ApiError> {
    let sale = t.default_sale.ok_or_else(|| {
        ApiError::bad_request(codes::SALE_NOT_INITIALIZED, "Sale not initialized")
    })?;
    buy(&t, sale, body).await
}

async fn buy_in(
    State(t): State<Transactions>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<BuyerBody>,
) -> Result<Json<BuyAnswer>, ApiError> {
    buy(&t, sale_id(&id)?, body).await
}

fn paid_tx(body: &TransactionBody) -> Result<flashsale_core::TxId, ApiError> {
    if body.transaction_id.trim().is_empty() {
        return Err(ApiError::bad_request(
            codes::TRANSACTION_ID_REQUIRED,
            "transactionId is required",
        ));
    }
    tx_id(&body.transaction_id)
}

/// `POST /paid`: whichever sale holds the transaction (the payment
/// stand-in calls this one route for every sale).
async fn paid(
    State(t): State<Transactions>,
    SignedJson(body): SignedJson<TransactionBody>,
) -> Result<Json<Success>, ApiError> {
    t.service.paid_tx(paid_tx(&body)?).await?;
    Ok(Json(Success { success: true }))
}

async fn paid_in(
    State(t): State<Transactions>,
    Path(id): Path<String>,
    SignedJson(body): SignedJson<TransactionBody>,
) -> Result<Json<Success>, ApiError> {
    let tx = paid_tx(&body)?;
    t.service.paid(sale_id(&id)?, tx).await?;
    Ok(Json(Success { success: true }))
}

async fn status(
    State(t): State<Transactions>,
    Path(id): Path<String>,
) -> Result<Json<StatusBody>, ApiError> {
    let (sale, status) = t.service.status_of(tx_id(&id)?).await?;
    Ok(Json(StatusBody::new(sale, &status)))
}

async fn leave(
    State(t): State<Transactions>,
    Path(id): Path<String>,
) -> Result<Json<Success>, ApiError> {
    t.service.leave_tx(tx_id(&id)?).await?;
    Ok(Json(Success { success: true }))
}
