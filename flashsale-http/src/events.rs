//! The Socket.IO payloads, as structs: the live contract, as explicit as
//! the REST one in [`crate::wire`]. Field names are the reference's
//! (camelCase), ids are 24-character hex strings, times ISO-8601 UTC.

use flashsale_core::{BuyerName, DropReason, SaleId, Timestamp, TxId};
use serde::Serialize;

use crate::wire::iso;

/// `sale_update`, to everyone: a unit was sold.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SaleUpdate<'a> {
    /// The sale.
    pub sale_id: SaleId,
    /// Units left.
    pub remaining_qty: u64,
    /// Who bought it.
    pub buyer_name: &'a BuyerName,
}

/// `sale_started`, to everyone.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SaleStarted {
    /// The sale.
    pub sale_id: SaleId,
    /// Its start time.
    pub starts_at: String,
}

/// `sale_ended`, to everyone.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SaleEnded {
    /// The sale.
    pub sale_id: SaleId,
    /// Its end time.
    pub ends_at: String,
}

/// Which edge of the sale a [`SaleEvent`] announces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SaleEdge {
    /// It opened.
    Start,
    /// It closed.
    End,
}

/// `sale_event`, to everyone, beside `sale_started` and `sale_ended`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SaleEvent {
    /// The sale.
    pub sale_id: SaleId,
    /// `start` or `end`.
    pub event: SaleEdge,
    /// When.
    pub at: String,
}

impl SaleEvent {
    /// The event for `edge` of `sale` at `at`.
    pub fn new(sale_id: SaleId, event: SaleEdge, at: Timestamp) -> Self {
        SaleEvent {
            sale_id,
            event,
            at: iso(at),
        }
    }
}

/// `queue_switch` (to everyone, as the reference does), `slot_expired` and
/// `refund_due` (to the transaction's room): something happened to one
/// buyer's transaction.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TxNotice<'a> {
    /// The transaction.
    pub transaction_id: TxId,
    /// Who.
    pub buyer_name: &'a BuyerName,
    /// The sale.
    pub sale_id: SaleId,
}

/// `queue_closed`, to the transaction's room: a waiting buyer was let go.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct QueueClosed<'a> {
    /// The transaction.
    pub transaction_id: TxId,
    /// Who.
    pub buyer_name: &'a BuyerName,
    /// The sale.
    pub sale_id: SaleId,
    /// `sold_out` or `sale_ended`.
    pub reason: DropReason,
}

/// `sale_created` (to everyone), `queue_moved` and `sold_out` (to the
/// sale's room): something happened to a sale; ask the REST API for more.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SaleRef {
    /// The sale.
    pub sale_id: SaleId,
}

/// `queue_position`: a waiting buyer's exact place and estimate, pushed
/// to its transaction's room.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct QueuePosition {
    /// The transaction.
    pub transaction_id: TxId,
    /// Its sale.
    pub sale_id: SaleId,
    /// 1-based place in the queue.
    pub position: u64,
    /// The estimated turn (ISO-8601), once the queue's exit rate is known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub estimated_at: Option<String>,
    /// A slot comes by then at the latest (ISO-8601).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub turn_by: Option<String>,
}
