//! The transaction service's start-up sync (as the reference's): fetch the
//! sale and the buyers who already paid from the backend, and build the
//! sale's engine with those buyers imported as sold.

use std::time::Duration;

use flashsale_core::catalogue::Buyer;
use flashsale_core::{Engine, IdGenerator, SaleConfig, SaleId, Timestamp};

use crate::wire::{SaleBody, parse_iso};

/// Fetches `sale` and its buyers from the backend at `base_url`
/// (e.g. `http://127.0.0.1:3001`).
pub async fn fetch(
    http: &reqwest::Client,
    base_url: &str,
    sale: SaleId,
) -> Result<(SaleBody, Vec<Buyer>), String> {
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
    let buyers: Vec<Buyer> =
        serde_json::from_slice(&body).map_err(|_| parse("buyer list", &body))?;
    Ok((sale_body, buyers))
}

/// The engine for a synced sale: its quantity is what remains plus what was
/// already bought, and every buyer who paid is imported as sold.
pub fn engine(
    now: Timestamp,
    sale: &SaleBody,
    buyers: &[Buyer],
    payment_timeout: Duration,
    ids: Box<dyn IdGenerator>,
) -> Result<Engine, String> {
    let id: SaleId = sale
        .id
        .parse()
        .map_err(|_| "the backend's sale id is not an ObjectId")?;
    let mut config = SaleConfig::new(
        id,
        sale.product_qty + buyers.len() as u64,
        parse_iso("saleStart", &sale.sale_start).map_err(|e| e.message)?,
        parse_iso("saleEnd", &sale.sale_end).map_err(|e| e.message)?,
    );
    config.payment_timeout = payment_timeout;
    let mut engine = Engine::new(now, config, ids).map_err(|e| e.to_string())?;
    for b in buyers {
        engine
            .import_paid(now, b.id, b.buyer_name.as_str())
            .map_err(|e| format!("buyer {:?}: {e}", b.buyer_name))?;
    }
    Ok(engine)
}
