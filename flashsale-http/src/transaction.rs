//! The reference's Transaction service: buy and paid, plus (ours) a sale's
//! own buy and paid routes, a transaction's status and leave — over a
//! [`Service`]. Every transaction route finds the transaction's sale from
//! its id in one call ([`Service::status_of`]).

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::routing::{get, post};
use axum::{Json, Router};
use flashsale_core::{Place, SaleId, Service, TxState};

use crate::auth::BuyerAuth;
use crate::error::{ApiError, ErrorBody, ErrorCode};
use crate::extract::{ApiJson, PaymentSecret, SignedJson, sale_id, tx_id};
use crate::openapi::{BuyResponses, PaidResponses, SalePath, TransactionPath};
use crate::tokens::TokenKey;
use crate::wire::{BuyAnswer, BuyerBody, StatusBody, Success, TransactionBody};

/// The transaction routes' state.
#[derive(Clone)]
pub(crate) struct Transactions {
    pub(crate) service: Service,
    /// The sale behind the reference's one-sale `POST /buy`.
    pub(crate) default_sale: Option<SaleId>,
    pub(crate) payment_secret: Option<Arc<[u8]>>,
    /// Makes and checks buyer tokens.
    pub(crate) tokens: TokenKey,
    /// When buyers sign in: checks their JWT; the buyer is its `sub`.
    pub(crate) auth: Option<BuyerAuth>,
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

async fn buy(
    t: &Transactions,
    sale: SaleId,
    headers: &HeaderMap,
    body: BuyerBody,
) -> Result<Json<BuyAnswer>, ApiError> {
    let account = t.auth.as_ref().map(|a| a.account(headers)).transpose()?;
    let admission = t
        .service
        .buy_as(sale, &body.buyer_name, account.as_deref())
        .await?;
    let state = match admission.place {
        Place::Payment { .. } => TxState::Payment,
        Place::Waiting { .. } | Place::Prequeued { .. } => TxState::Waiting,
    };
    Ok(Json(BuyAnswer {
        transaction_id: admission.tx.to_string(),
        buyer_token: t.tokens.token(admission.tx),
        state,
    }))
}

/// The reference's buy, in the server's default sale.
#[utoipa::path(post, path = "/buy", tag = "transaction", request_body = BuyerBody,
    responses(BuyResponses))]
pub(crate) async fn buy_default(
    State(t): State<Transactions>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<BuyerBody>,
) -> Result<Json<BuyAnswer>, ApiError> {
    let sale = t.default_sale.ok_or_else(|| {
        ApiError::bad_request(ErrorCode::SaleNotInitialized, "Sale not initialized")
    })?;
    buy(&t, sale, &headers, body).await
}

/// Buy in any sale.
#[utoipa::path(post, path = "/sales/{id}/buy", tag = "transaction", params(SalePath),
    request_body = BuyerBody,
    responses(BuyResponses))]
pub(crate) async fn buy_in(
    State(t): State<Transactions>,
    Path(id): Path<String>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<BuyerBody>,
) -> Result<Json<BuyAnswer>, ApiError> {
    buy(&t, sale_id(&id)?, &headers, body).await
}

fn paid_tx(body: &TransactionBody) -> Result<flashsale_core::TxId, ApiError> {
    if body.transaction_id.trim().is_empty() {
        return Err(ApiError::bad_request(
            ErrorCode::TransactionIdRequired,
            "transactionId is required",
        ));
    }
    tx_id(&body.transaction_id)
}

/// The reference's payment callback: whichever sale holds the transaction
/// (the payment stand-in calls this one route for every sale).
#[utoipa::path(post, path = "/paid", tag = "transaction", request_body = TransactionBody,
    params(("x-flashsale-signature" = Option<String>, Header,
        description = "`sha256=<hex HMAC-SHA256(secret, body)>`, required when the server has a payment secret")),
    responses(PaidResponses))]
pub(crate) async fn paid(
    State(t): State<Transactions>,
    SignedJson(body): SignedJson<TransactionBody>,
) -> Result<Json<Success>, ApiError> {
    t.service.paid_tx(paid_tx(&body)?).await?;
    Ok(Json(Success { success: true }))
}

/// A payment for a transaction of this sale.
#[utoipa::path(post, path = "/sales/{id}/paid", tag = "transaction", params(SalePath,
        ("x-flashsale-signature" = Option<String>, Header,
        description = "required when the server has a payment secret")),
    request_body = TransactionBody,
    responses(PaidResponses))]
pub(crate) async fn paid_in(
    State(t): State<Transactions>,
    Path(id): Path<String>,
    SignedJson(body): SignedJson<TransactionBody>,
) -> Result<Json<Success>, ApiError> {
    let tx = paid_tx(&body)?;
    t.service.paid(sale_id(&id)?, tx).await?;
    Ok(Json(Success { success: true }))
}

/// Where a transaction stands: state, exact waiting position, deadlines.
/// Only for the holder of its buyer token.
#[utoipa::path(get, path = "/transactions/{id}", tag = "transaction", params(TransactionPath),
    security(("buyerToken" = [])),
    responses(
        (status = 200, description = "Its state", body = StatusBody),
        (status = 400, description = "`invalid_id`", body = ErrorBody),
        (status = 401, description = "`bad_token`: no buyer token, or not this transaction's", body = ErrorBody),
        (status = 404, description = "`transaction_not_found`", body = ErrorBody),
        (status = 503, description = "`unavailable`", body = ErrorBody),
    ))]
pub(crate) async fn status(
    State(t): State<Transactions>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Json<StatusBody>, ApiError> {
    let tx = tx_id(&id)?;
    t.tokens.check(tx, &headers)?;
    let (sale, status) = t.service.status_of(tx).await?;
    Ok(Json(StatusBody::new(sale, &status)))
}

/// The buyer gives up a payment slot or a place; the next in line moves up.
/// Only for the holder of its buyer token.
#[utoipa::path(post, path = "/transactions/{id}/leave", tag = "transaction", params(TransactionPath),
    security(("buyerToken" = [])),
    responses(
        (status = 200, description = "Left (again: still success)", body = Success),
        (status = 400, description = "`already_paid`, `not_live`, `invalid_id`", body = ErrorBody),
        (status = 401, description = "`bad_token`: no buyer token, or not this transaction's", body = ErrorBody),
        (status = 404, description = "`transaction_not_found`", body = ErrorBody),
        (status = 503, description = "`unavailable`", body = ErrorBody),
    ))]
pub(crate) async fn leave(
    State(t): State<Transactions>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Json<Success>, ApiError> {
    let tx = tx_id(&id)?;
    t.tokens.check(tx, &headers)?;
    t.service.leave_tx(tx).await?;
    Ok(Json(Success { success: true }))
}
