//! Request and response bodies as the reference has them (camelCase JSON,
//! ids as 24-character hex, times as ISO-8601 UTC with milliseconds).

use std::time::Duration;

use flashsale_core::catalogue::Sale;
use flashsale_core::{NewSale, PrequeueOrder};
use flashsale_core::{Status, Timestamp, TxState};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use utoipa::ToSchema;

use crate::error::{ApiError, ErrorCode};

/// `2025-01-31T12:00:00.000Z`, as JavaScript's `Date.toISOString()`.
pub fn iso(t: Timestamp) -> String {
    let format =
        format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(t.as_millis()) * 1_000_000)
        .ok()
        .and_then(|d| d.format(&format).ok())
        .unwrap_or_else(|| "9999-12-31T23:59:59.999Z".to_owned())
}

/// Parses an RFC 3339 time (`2025-01-31T12:00:00Z`, any offset, optional
/// fraction), for input.
pub fn parse_iso(field: &str, s: &str) -> Result<Timestamp, ApiError> {
    let bad = || {
        ApiError::bad_request(
            ErrorCode::InvalidSale,
            format!("{field} must be an ISO-8601 date-time"),
        )
    };
    let d = OffsetDateTime::parse(s, &Rfc3339).map_err(|_| bad())?;
    let ms = d.unix_timestamp_nanos() / 1_000_000;
    u64::try_from(ms)
        .map(Timestamp::from_millis)
        .map_err(|_| bad())
}

/// A sale on the wire: `{id, productName, productQty, saleStart, saleEnd}`,
/// `productQty` being the units not yet sold; plus (ours, additive)
/// `paymentTimeoutMs` and `maxPaymentSlots`, so that a transaction service
/// syncing the sale runs it with the same settings. Both are optional when
/// read: the reference's backend does not send them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = Sale)]
pub struct SaleBody {
    /// The sale.
    #[schema(pattern = "^[0-9a-f]{24}$")]
    pub id: String,
    /// What is sold.
    pub product_name: String,
    /// Units not yet sold.
    pub product_qty: u64,
    /// Opens.
    #[schema(format = DateTime)]
    pub sale_start: String,
    /// Closes.
    #[schema(format = DateTime)]
    pub sale_end: String,
    /// How long a payment slot is held, in ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_timeout_ms: Option<u64>,
    /// At most this many payment slots at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_payment_slots: Option<u64>,
    /// Buyers may queue from then: the pre-queue.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(format = DateTime)]
    pub prequeue_opens_at: Option<String>,
    /// How the pre-queue is ordered at the start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prequeue_order: Option<PrequeueOrder>,
    /// At most this many new payment slots a minute.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admissions_per_minute: Option<u64>,
}

impl From<&Sale> for SaleBody {
    fn from(s: &Sale) -> Self {
        SaleBody {
            id: s.id().to_string(),
            product_name: s.config.product_name.clone(),
            product_qty: s.remaining,
            sale_start: iso(s.config.starts_at),
            sale_end: iso(s.config.ends_at),
            payment_timeout_ms: u64::try_from(s.config.payment_timeout.as_millis()).ok(),
            max_payment_slots: s.config.max_payment_slots,
            prequeue_opens_at: s.config.prequeue_opens_at.map(iso),
            prequeue_order: s.config.prequeue_opens_at.map(|_| s.config.prequeue_order),
            admissions_per_minute: s.config.admissions_per_minute,
        }
    }
}

/// `{eligible: true}`: the answer to an eligibility check that passed.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Eligible {
    /// Always true (refusals are error answers).
    pub eligible: bool,
}

/// `POST /sales`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateSale {
    /// What is sold: 1–200 characters once trimmed.
    #[schema(min_length = 1, max_length = 200, pattern = r"\S")]
    pub product_name: String,
    /// Units for sale, at least 1.
    #[schema(minimum = 1)]
    pub quantity: u64,
    /// Opens (ISO-8601).
    #[schema(format = DateTime)]
    pub sale_start: String,
    /// Closes (ISO-8601), after it opens.
    #[schema(format = DateTime)]
    pub sale_end: String,
    /// How long a payment slot is held, in ms (default 60,000).
    #[schema(minimum = 1)]
    pub payment_timeout_ms: Option<u64>,
    /// At most this many payment slots at once (default: unsold stock).
    #[schema(minimum = 1)]
    pub max_payment_slots: Option<u64>,
    /// How many times one buyer may join (default 3).
    #[schema(minimum = 1)]
    pub max_joins_per_buyer: Option<u32>,
    /// Buyers may queue from then (ISO-8601, at or before `saleStart`): a
    /// pre-queue, ordered at the start by `prequeueOrder`.
    #[schema(format = DateTime)]
    pub prequeue_opens_at: Option<String>,
    /// `shuffle` (drawn by lot; the default with a pre-queue) or `fifo`.
    pub prequeue_order: Option<PrequeueOrder>,
    /// At most this many new payment slots in any minute (default:
    /// unlimited).
    #[schema(minimum = 1)]
    pub admissions_per_minute: Option<u64>,
}

impl CreateSale {
    /// The sale it asks for; 400 for a time that is not ISO-8601.
    pub fn new_sale(&self) -> Result<NewSale, ApiError> {
        let mut new = NewSale::new(
            &self.product_name,
            self.quantity,
            parse_iso("saleStart", &self.sale_start)?,
            parse_iso("saleEnd", &self.sale_end)?,
        );
        if let Some(ms) = self.payment_timeout_ms {
            new.payment_timeout = Duration::from_millis(ms);
        }
        new.max_payment_slots = self.max_payment_slots;
        if self.max_joins_per_buyer.is_some() {
            new.max_joins_per_buyer = self.max_joins_per_buyer;
        }
        new.prequeue_opens_at = self
            .prequeue_opens_at
            .as_deref()
            .map(|t| parse_iso("prequeueOpensAt", t))
            .transpose()?;
        if self.prequeue_order.is_some() && new.prequeue_opens_at.is_none() {
            return Err(ApiError::bad_request(
                ErrorCode::InvalidSale,
                "prequeueOrder needs prequeueOpensAt",
            ));
        }
        new.prequeue_order = self.prequeue_order.unwrap_or_default();
        new.admissions_per_minute = self.admissions_per_minute;
        Ok(new)
    }
}

/// The most buyers in one page of `GET /sales/{id}/buyers`, and the
/// default.
pub const MAX_PAGE: usize = 1_000;

/// `GET /sales/{id}/buyers?limit=&after=`.
#[derive(Debug, Clone, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct BuyersQuery {
    /// Buyers per page: 1 to 1,000 (default 1,000; more is read as 1,000).
    pub limit: Option<usize>,
    /// The cursor: the id of the last buyer of the previous page.
    #[param(pattern = "^[0-9a-fA-F]{24}$")]
    pub after: Option<String>,
}

/// `{buyerName}`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BuyerBody {
    /// Who: 1–64 characters once trimmed, no control characters. White
    /// space around it (tabs and line ends included) is trimmed away, so
    /// the pattern says the length of what is left, not `maxLength`.
    #[schema(
        min_length = 1,
        pattern = r"^[\s\u0085]*[^\s\u0000-\u001F\u007F-\u009F](?:[^\u0000-\u001F\u007F-\u009F]{0,62}[^\s\u0000-\u001F\u007F-\u009F])?[\s\u0085]*$"
    )]
    pub buyer_name: String,
}

/// `{transactionId}`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TransactionBody {
    /// The transaction (24 hex characters).
    #[schema(pattern = "^[0-9a-fA-F]{24}$")]
    pub transaction_id: String,
}

/// The answer to a buy: `{transactionId, state: "payment"|"waiting"}`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BuyAnswer {
    /// The new transaction.
    pub transaction_id: String,
    /// Its capability: send it as `Authorization: Bearer <buyerToken>` to
    /// `GET /transactions/{id}` and `POST /transactions/{id}/leave`, and in
    /// the Socket.IO `join` of the transaction's room (ours, additive).
    pub buyer_token: String,
    /// `payment` or `waiting`.
    pub state: TxState,
}

/// `{success: true}`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Success {
    /// Always true (failures are error answers).
    pub success: bool,
}

/// `GET /transactions/{id}`: where a transaction stands, so a client that
/// missed an event can resume.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(as = TransactionStatus)]
#[serde(rename_all = "camelCase")]
pub struct StatusBody {
    /// The transaction.
    pub transaction_id: String,
    /// Its sale.
    pub sale_id: String,
    /// Who.
    pub buyer_name: String,
    /// `payment`, `waiting`, `paid`, `expired`, `left`, `rejected_sold_out`
    /// or `rejected_sale_ended`.
    pub state: TxState,
    /// 1-based place in the queue, while waiting.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub position: Option<u64>,
    /// Pay by then (ISO-8601), while holding a slot.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(format = DateTime)]
    pub payment_deadline: Option<String>,
    /// While waiting: a slot comes by then at the latest if the slots now
    /// held run to their deadlines (ISO-8601; see `Status::turn_by`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(format = DateTime)]
    pub turn_by: Option<String>,
    /// While waiting: the estimated turn (ISO-8601) — the people ahead ÷
    /// the sale's measured promotion rate over the last minute, never
    /// after `turnBy`; absent while no rate is measured ("unknown").
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(format = DateTime)]
    pub estimated_at: Option<String>,
    /// In the pre-queue: no position until the start, when the order is
    /// drawn.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub prequeued: bool,
    /// When a pre-queued buyer's sale starts (ISO-8601).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(format = DateTime)]
    pub starts_at: Option<String>,
    /// The operator paused the queue: no slot is granted for now.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub queue_paused: bool,
}

impl StatusBody {
    /// The wire form of `status` in `sale`.
    pub fn new(sale: flashsale_core::SaleId, status: &Status) -> Self {
        StatusBody {
            transaction_id: status.tx.to_string(),
            sale_id: sale.to_string(),
            buyer_name: status.buyer.to_string(),
            state: status.state,
            position: status.position,
            payment_deadline: status.deadline.map(iso),
            turn_by: status.turn_by.map(iso),
            estimated_at: status.estimate.map(iso),
            prequeued: status.prequeued,
            starts_at: status.starts_at.map(iso),
            queue_paused: status.queue_paused && status.state == TxState::Waiting,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_look_like_javascript_iso_strings() {
        assert_eq!(iso(Timestamp::from_millis(0)), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            iso(Timestamp::from_millis(1_735_689_600_123)),
            "2025-01-01T00:00:00.123Z"
        );
        assert_eq!(
            parse_iso("t", "2025-01-01T01:00:00.123+01:00").unwrap(),
            Timestamp::from_millis(1_735_689_600_123)
        );
        assert!(parse_iso("t", "yesterday").is_err());
        assert!(parse_iso("t", "1969-12-31T23:59:59Z").is_err());
    }
}
