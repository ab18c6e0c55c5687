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
/// (e.g. `http://127.0.0.1:3001`), following the buyer list's pages (ours
/// is paginated; the reference's answers all at once).
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
        let next = r
            .headers()
            .get(reqwest::header::LINK)
            .and_then(|l| l.to_str().ok())
            .and_then(next_after);
        let body = r
            .bytes()
            .await
            .map_err(|e| format!("backend answer cut short: {e}"))?;
        Ok((body, next))
    };
    let parse = |what, bytes: &[u8]| {
        format!(
            "backend sent a {what} we cannot read: {}",
            String::from_utf8_lossy(&bytes[..bytes.len().min(200)])
        )
    };
    let (body, _) = get(format!("/sales/{sale}")).await?;
    let sale_body: SaleBody = serde_json::from_slice(&body).map_err(|_| parse("sale", &body))?;
    let mut buyers = Vec::new();
    let mut path = format!("/sales/{sale}/buyers");
    loop {
        let (body, next) = get(path).await?;
        let page: Vec<RawBuyer> =
            serde_json::from_slice(&body).map_err(|_| parse("buyer list", &body))?;
        buyers.extend(page);
        match next {
            Some(after) => path = format!("/sales/{sale}/buyers?after={after}"),
            None => break,
        }
    }
    Ok((sale_body, buyers))
}

/// The `after` cursor of a `Link: <…?after=X&limit=N>; rel="next"` header.
fn next_after(link: &str) -> Option<String> {
    let (target, rel) = link.split_once(';')?;
    if !rel.contains("rel=\"next\"") {
        return None;
    }
    let query = target.trim().trim_start_matches('<').trim_end_matches('>');
    let (_, query) = query.split_once('?')?;
    query
        .split('&')
        .find_map(|kv| kv.strip_prefix("after="))
        .map(str::to_owned)
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
    config.product_name.clone_from(&sale.product_name);
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
