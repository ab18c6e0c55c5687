//! The operator's routes over a running sale, all behind the admin bearer
//! token (`ADMIN_TOKEN`): pause, resume, live changes, end, and its
//! figures. Each change is one engine command (see
//! [`flashsale_core::Control`]); this module only translates.
//!
//! | route | what |
//! |---|---|
//! | `POST /sales/{id}/pause` | grant no slot until resumed |
//! | `POST /sales/{id}/resume` | grant slots again |
//! | `PATCH /sales/{id}` | `{maxPaymentSlots?, admissionsPerMinute?, quantity?, saleEnd?, joining?}` |
//! | `POST /sales/{id}/end` | end the sale now |
//! | `GET /sales/{id}/stats` | live figures, the queue head, the draw's seed |
//!
//! Each answers the sale's figures after the change ([`SaleStatsBody`]).

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::routing::{get, post};
use axum::{Json, Router};
use flashsale_core::{Control, PrequeueOrder, SaleId, SaleReport, Service};
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;

use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, sale_id};
use crate::openapi::SalePath;
use crate::tokens::AdminToken;
use crate::wire::{iso, parse_iso};

/// The operator routes' state.
#[derive(Debug, Clone)]
pub(crate) struct Operator {
    pub(crate) service: Service,
    pub(crate) admin: AdminToken,
}

/// The operator's routes (see the module docs).
pub(crate) fn routes(operator: Operator) -> Router {
    Router::new()
        .route("/sales/{id}/pause", post(pause))
        .route("/sales/{id}/resume", post(resume))
        .route("/sales/{id}/end", post(end))
        .route("/sales/{id}/stats", get(stats))
        .route("/sales/{id}", axum::routing::patch(change))
        .with_state(operator)
}

/// Open or closed to new buyers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Joining {
    /// New buyers may join.
    Open,
    /// Buys are refused (`joining_closed`); the queue still drains.
    Closed,
}

/// `PATCH /sales/{id}`: the changes to make, each optional; applied in
/// this order, each as its own command: a refusal stops there (the changes
/// before it stay).
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ChangeSale {
    /// Units for sale in all: at least sold + held in payment slots.
    #[schema(minimum = 1)]
    pub quantity: Option<u64>,
    /// At most this many payment slots at once; `null`: unsold stock.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<u64>, minimum = 1)]
    pub max_payment_slots: Option<Option<u64>>,
    /// At most this many new slots in any minute (plus a burst of one
    /// second's worth); `null`: unlimited. Setting it refills the bucket.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<u64>, minimum = 1)]
    pub admissions_per_minute: Option<Option<u64>>,
    /// The new end (ISO-8601), after the start and now.
    #[schema(format = DateTime)]
    pub sale_end: Option<String>,
    /// `open` or `closed`.
    pub joining: Option<Joining>,
}

/// A field that may be `null`: absent is `None`, `null` is `Some(None)`.
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// A waiting buyer at the head of the queue.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct QueueHeadEntry {
    /// The transaction.
    pub transaction_id: String,
    /// Who.
    pub buyer_name: String,
    /// 1-based place.
    pub position: u64,
}

/// `GET /sales/{id}/stats`: a running sale as its operator sees it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SaleStatsBody {
    /// The sale.
    pub sale_id: String,
    /// What is sold.
    pub product_name: String,
    /// The server's time for these figures (ISO-8601).
    pub now: String,
    /// Units for sale in all.
    pub quantity: u64,
    /// Units sold.
    pub sold: u64,
    /// Units not sold.
    pub remaining: u64,
    /// Payment slots held.
    pub payment_slots: u64,
    /// Buyers waiting (the pre-queue included).
    pub waiting: u64,
    /// Buyers in the pre-queue, before the draw.
    pub prequeued: u64,
    /// Units neither sold nor held.
    pub available: u64,
    /// Transactions ever made.
    pub transactions: u64,
    /// Started and not ended.
    pub active: bool,
    /// Ended.
    pub ended: bool,
    /// Paused by the operator.
    pub paused: bool,
    /// `open` or `closed`.
    pub joining: Joining,
    /// Opens (ISO-8601).
    pub sale_start: String,
    /// Closes (ISO-8601).
    pub sale_end: String,
    /// The pre-queue opens (ISO-8601), if the sale has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prequeue_opens_at: Option<String>,
    /// How it is ordered at the start.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prequeue_order: Option<PrequeueOrder>,
    /// The draw's seed (decimal, as a string: it exceeds JSON's safe
    /// integers), once drawn: with the pre-queue's join order it fixes the
    /// order served (`flashsale_core::draw_order`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub draw_seed: Option<String>,
    /// The slot limit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_payment_slots: Option<u64>,
    /// The admission rate.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub admissions_per_minute: Option<u64>,
    /// Admissions the rate allows at once now.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub admissions_available: Option<u64>,
    /// Waiting buyers promoted a second over the last minute (the queue's
    /// exit rate behind the estimates), once measured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub promotion_rate: Option<f64>,
    /// Since this server started the sale: joins (buys let in).
    pub joins: u64,
    /// … waiting buyers given a slot.
    pub promotions: u64,
    /// … payments.
    pub payments: u64,
    /// … slots expired unpaid.
    pub expiries: u64,
    /// … buyers who left.
    pub leaves: u64,
    /// … buys refused.
    pub refusals: u64,
    /// Median time in queue of the latest promotions, in ms.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time_in_queue_p50_ms: Option<u64>,
    /// Their 90th percentile, in ms.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time_in_queue_p90_ms: Option<u64>,
    /// The next waiting buyers, in the order they will be served.
    pub queue_head: Vec<QueueHeadEntry>,
}

impl From<&SaleReport> for SaleStatsBody {
    fn from(r: &SaleReport) -> Self {
        let (c, m) = (&r.config, &r.measured);
        let ms = |d: Option<std::time::Duration>| d.map(|d| d.as_millis() as u64);
        SaleStatsBody {
            sale_id: c.id.to_string(),
            product_name: c.product_name.clone(),
            now: iso(r.now),
            quantity: c.quantity,
            sold: r.stats.sold,
            remaining: c.quantity - r.stats.sold,
            payment_slots: r.stats.payment_slots,
            waiting: r.stats.waiting,
            prequeued: r.prequeued,
            available: r.stats.available,
            transactions: r.stats.transactions,
            active: r.active,
            ended: r.ended,
            paused: r.paused,
            joining: if r.joining_open {
                Joining::Open
            } else {
                Joining::Closed
            },
            sale_start: iso(c.starts_at),
            sale_end: iso(c.ends_at),
            prequeue_opens_at: c.prequeue_opens_at.map(iso),
            prequeue_order: c.prequeue_opens_at.map(|_| c.prequeue_order),
            draw_seed: r.draw_seed.map(|s| s.to_string()),
            max_payment_slots: c.max_payment_slots,
            admissions_per_minute: c.admissions_per_minute,
            admissions_available: r.admissions_available,
            promotion_rate: r.promotion_rate,
            joins: m.joins,
            promotions: m.promotions,
            payments: m.payments,
            expiries: m.expiries,
            leaves: m.leaves,
            refusals: m.refusals,
            time_in_queue_p50_ms: ms(m.time_in_queue_p50),
            time_in_queue_p90_ms: ms(m.time_in_queue_p90),
            queue_head: r
                .queue_head
                .iter()
                .map(|s| QueueHeadEntry {
                    transaction_id: s.tx.to_string(),
                    buyer_name: s.buyer.to_string(),
                    position: s.position.unwrap_or_default(),
                })
                .collect(),
        }
    }
}

impl Operator {
    /// The sale's figures, or 404.
    async fn report(&self, sale: SaleId) -> Result<Json<SaleStatsBody>, ApiError> {
        let report = self
            .service
            .report(sale)
            .await
            .ok_or_else(|| ApiError::sale_not_found(sale))?;
        Ok(Json(SaleStatsBody::from(&report)))
    }

    /// Checks the token, applies `controls` in order, answers the figures.
    async fn apply(
        &self,
        headers: &HeaderMap,
        id: &str,
        controls: impl IntoIterator<Item = Control>,
    ) -> Result<Json<SaleStatsBody>, ApiError> {
        self.admin.check(headers)?;
        let sale = sale_id(id)?;
        for control in controls {
            self.service
                .control(sale, control)
                .await
                .map_err(|e| match e {
                    flashsale_core::CallError::UnknownSale => ApiError::sale_not_found(sale),
                    e => e.into(),
                })?;
        }
        self.report(sale).await
    }
}

/// Pauses the queue: no slot is granted; waiting buyers keep their places,
/// slot holders their deadlines, payments still count, joins still queue.
#[utoipa::path(post, path = "/sales/{id}/pause", tag = "operator", params(SalePath),
    security(("adminToken" = [])), responses(OperatorResponses))]
pub(crate) async fn pause(
    State(o): State<Operator>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Json<SaleStatsBody>, ApiError> {
    o.apply(&headers, &id, [Control::Pause]).await
}

/// Resumes the queue: freed slots go to the waiting buyers at once.
#[utoipa::path(post, path = "/sales/{id}/resume", tag = "operator", params(SalePath),
    security(("adminToken" = [])), responses(OperatorResponses))]
pub(crate) async fn resume(
    State(o): State<Operator>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Json<SaleStatsBody>, ApiError> {
    o.apply(&headers, &id, [Control::Resume]).await
}

/// Ends the sale now: waiting buyers are let go (`rejected_sale_ended`);
/// slots already held may still be paid until their deadlines.
#[utoipa::path(post, path = "/sales/{id}/end", tag = "operator", params(SalePath),
    security(("adminToken" = [])), responses(OperatorResponses))]
pub(crate) async fn end(
    State(o): State<Operator>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Json<SaleStatsBody>, ApiError> {
    o.apply(&headers, &id, [Control::End]).await
}

/// Changes a running sale (see [`ChangeSale`]).
#[utoipa::path(patch, path = "/sales/{id}", tag = "operator", params(SalePath),
    request_body = ChangeSale, security(("adminToken" = [])), responses(OperatorResponses))]
pub(crate) async fn change(
    State(o): State<Operator>,
    Path(id): Path<String>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<ChangeSale>,
) -> Result<Json<SaleStatsBody>, ApiError> {
    let mut controls = Vec::new();
    controls.extend(body.quantity.map(Control::Quantity));
    controls.extend(body.max_payment_slots.map(Control::MaxPaymentSlots));
    controls.extend(body.admissions_per_minute.map(Control::AdmissionsPerMinute));
    if let Some(end) = &body.sale_end {
        controls.push(Control::EndsAt(parse_iso("saleEnd", end)?));
    }
    controls.extend(body.joining.map(|j| Control::Joining(j == Joining::Open)));
    o.apply(&headers, &id, controls).await
}

/// A running sale's live figures, its queue's head and its draw's seed.
#[utoipa::path(get, path = "/sales/{id}/stats", tag = "operator", params(SalePath),
    security(("adminToken" = [])), responses(OperatorResponses))]
pub(crate) async fn stats(
    State(o): State<Operator>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Json<SaleStatsBody>, ApiError> {
    o.apply(&headers, &id, []).await
}

/// What the operator routes answer.
#[derive(utoipa::IntoResponses)]
#[allow(
    dead_code,
    clippy::large_enum_variant,
    reason = "never built: it describes responses for the OpenAPI document"
)]
pub(crate) enum OperatorResponses {
    /// The sale's figures after the change.
    #[response(status = 200)]
    Ok(#[to_schema] SaleStatsBody),
    /// `invalid_id`, `invalid_body`, `invalid_change`.
    #[response(status = 400)]
    BadRequest(#[to_schema] ErrorBody<'static>),
    /// `bad_admin_token`.
    #[response(status = 401)]
    Unauthorized(ErrorBody<'static>),
    /// `sale_not_found`: the sale does not run here.
    #[response(status = 404)]
    NotFound(ErrorBody<'static>),
    /// `payload_too_large` (`PATCH` only).
    #[response(status = 413)]
    TooLarge(ErrorBody<'static>),
    /// `unsupported_media_type`: a `PATCH` body that is not JSON.
    #[response(status = 415)]
    NotJson(ErrorBody<'static>),
    /// `sale_ended`, or `invalid_change` (a stock below what is sold and
    /// held).
    #[response(status = 409)]
    Conflict(ErrorBody<'static>),
    /// `unavailable`.
    #[response(status = 503)]
    Unavailable(ErrorBody<'static>),
}
