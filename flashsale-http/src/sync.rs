//! The transaction service's start-up sync (as the reference's): fetch the
//! sale and the buyers who already paid from the backend over HTTP. The
//! rule for building the engine from them is the core's
//! ([`flashsale_core::sync`]).

use std::time::Duration;

use flashsale_core::sync::{ListedBuyer, Synced, synced_engine};
use flashsale_core::{IdGenerator, SaleConfig, SaleId, Timestamp};
use serde::Deserialize;

use crate::wire::{SaleBody, parse_iso};

/// A buyer as a backend lists it, read without judging it: the reference's
/// backend may list names our rules refuse, or ones that are not strings.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RawBuyer {
    /// The paid transaction's id, as listed.
    #[serde(default)]
    pub id: serde_json::Value,
    /// The name, as listed.
    #[serde(default)]
    pub buyer_name: serde_json::Value,
}

/// Fetches `sale` and its buyers from the backend at `base_url`
/// (e.g. `http://127.0.0.1:3001`).
pub async fn fetch(
    http: &reqwest::Client,
    base_url: &str,
    sale: SaleId,
) -> Result<(SaleBody, Vec<RawBuyer>), String> {
    let base = base_url.trim_end_matches('/');
    let get = |path: String| async move {
        let r = http
            .get(format!("{base}{path}"))
            .send()
            .await
            .map_err(|e| format!("backend unreachable: {e}"))?;
        if !r.status().is_success() {
            return Err(format!("backend answered {} for {path}", r.status()));
        }
        r.bytes()
            .await
            .map_err(|e| format!("backend answer cut short: {e}"))
    };
    let parse = |what, bytes: &[u8]| {
        format!(
            "backend sent a {what} we cannot read: {}",
            String::from_utf8_lossy(&bytes[..bytes.len().min(200)])
        )
    };
    let body = get(format!("/sales/{sale}")).await?;
    let sale_body: SaleBody = serde_json::from_slice(&body).map_err(|_| parse("sale", &body))?;
    let body = get(format!("/sales/{sale}/buyers")).await?;
    let buyers: Vec<RawBuyer> =
        serde_json::from_slice(&body).map_err(|_| parse("buyer list", &body))?;
    Ok((sale_body, buyers))
}

/// The engine for a synced sale ([`synced_engine`]): the backend's payment
/// timeout and slot cap when it sends them, else `default_payment_timeout`
/// and no cap. Skipped buyers are logged.
pub fn engine(
    now: Timestamp,
    sale: &SaleBody,
    buyers: &[RawBuyer],
    default_payment_timeout: Duration,
    ids: Box<dyn IdGenerator>,
) -> Result<Synced, String> {
    let id: SaleId = sale
        .id
        .parse()
        .map_err(|_| "the backend's sale id is not an ObjectId")?;
    let mut config = SaleConfig::new(
        id,
        0,
        parse_iso("saleStart", &sale.sale_start).map_err(|e| e.message)?,
        parse_iso("saleEnd", &sale.sale_end).map_err(|e| e.message)?,
    );
    config.payment_timeout = sale
        .payment_timeout_ms
        .map_or(default_payment_timeout, Duration::from_millis);
    config.max_payment_slots = sale.max_payment_slots;
    let listed = buyers.iter().map(|b| ListedBuyer {
        id: b.id.as_str().unwrap_or_default(),
        name: b.buyer_name.as_str(),
    });
    let synced =
        synced_engine(now, config, sale.product_qty, listed, ids).map_err(|e| e.to_string())?;
    for s in &synced.skipped {
        tracing::warn!(id = %s.id, name = ?s.name, reason = %s.reason, "synced buyer skipped");
    }
    Ok(synced)
}
