//! The rule for a transaction service that starts from what a backend
//! knows (the reference's start-up sync): the sale's settings, the units
//! still unsold, and the buyers who already paid.
//!
//! The backend may be the reference's, whose buyer list can hold names our
//! rules refuse (empty, too long, with control characters, not a string) or
//! two names that are equal once trimmed. Those cannot be buyers here: they
//! are skipped, each with a reason, and the engine's stock is the unsold
//! units plus the buyers imported — the skipped ones already bought their
//! unit, so the stock left to sell stays right.

use hashbrown::HashSet;

use crate::engine::{ConfigError, Engine, SaleConfig};
use crate::id::{IdGenerator, TxId};
use crate::name::BuyerName;
use crate::time::Timestamp;

/// A buyer as the backend lists it: its id and name as they came.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListedBuyer<'a> {
    /// The paid transaction's id (a 24-character hex ObjectId, if the
    /// backend is well behaved).
    pub id: &'a str,
    /// The name; `None` if it was not a string.
    pub name: Option<&'a str>,
}

/// A listed buyer that could not be imported, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// The id as listed.
    pub id: String,
    /// The name as listed (empty when it was not a string).
    pub name: String,
    /// Why it was skipped.
    pub reason: String,
}

/// A synced sale's new engine.
#[derive(Debug)]
pub struct Synced {
    /// The engine, its journal so far undrained (give it to
    /// [`crate::Service::adopt`]).
    pub engine: Engine,
    /// Buyers imported as sold.
    pub imported: u64,
    /// Buyers skipped.
    pub skipped: Vec<Skipped>,
}

/// Builds the engine of a sale known to a backend: `config`'s quantity is
/// replaced by `remaining` plus the buyers imported, and every listed buyer
/// who can be one here is imported as sold. See the module docs.
pub fn synced_engine<'a>(
    now: Timestamp,
    mut config: SaleConfig,
    remaining: u64,
    buyers: impl IntoIterator<Item = ListedBuyer<'a>>,
    ids: Box<dyn IdGenerator>,
) -> Result<Synced, ConfigError> {
    let mut skipped = Vec::new();
    let mut accepted: Vec<(TxId, BuyerName)> = Vec::new();
    let (mut seen_ids, mut seen_names) = (HashSet::new(), HashSet::new());
    for b in buyers {
        let skip = |reason: String| Skipped {
            id: b.id.to_owned(),
            name: b.name.unwrap_or_default().to_owned(),
            reason,
        };
        let Ok(id) = b.id.trim().parse::<TxId>() else {
            skipped.push(skip("id is not an ObjectId".into()));
            continue;
        };
        let Some(raw) = b.name else {
            skipped.push(skip("name is not a string".into()));
            continue;
        };
        let name = match BuyerName::parse(raw) {
            Ok(name) => name,
            Err(e) => {
                skipped.push(skip(e.to_string()));
                continue;
            }
        };
        if !seen_ids.insert(id) {
            skipped.push(skip("id listed twice".into()));
        } else if !seen_names.insert(name.clone()) {
            skipped.push(skip("name listed twice".into()));
        } else {
            accepted.push((id, name));
        }
    }
    config.quantity = remaining.saturating_add(accepted.len() as u64);
    let mut engine = Engine::new(now, config, ids)?;
    let mut imported = 0;
    for (id, name) in accepted {
        // Distinct ids and names, and stock for each: cannot conflict.
        match engine.import_paid(now, id, name.as_str()) {
            Ok(()) => imported += 1,
            Err(e) => skipped.push(Skipped {
                id: id.to_string(),
                name: name.to_string(),
                reason: e.to_string(),
            }),
        }
    }
    Ok(Synced {
        engine,
        imported,
        skipped,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::id::{SaleId, SequentialIds};

    #[test]
    fn odd_buyers_are_skipped_and_the_stock_still_adds_up() {
        let t = Timestamp::from_millis(1_000);
        let config = SaleConfig::new(
            SaleId::from(bson::oid::ObjectId::from_bytes([7; 12])),
            999,
            t,
            Timestamp::from_millis(100_000),
        );
        let long = "x".repeat(65);
        let listed = [
            ("0000000000000000000000a1", Some("ana")),
            ("0000000000000000000000a2", Some(" ana ")), // ana again, once trimmed
            ("0000000000000000000000a3", Some(long.as_str())),
            ("0000000000000000000000a4", Some("")),
            ("0000000000000000000000a5", Some("bad\u{7}bell")),
            ("0000000000000000000000a6", None),
            ("not-an-id", Some("cy")),
            ("0000000000000000000000a7", Some("bob")),
        ];
        let synced = synced_engine(
            t,
            config,
            5,
            listed.iter().map(|&(id, name)| ListedBuyer { id, name }),
            Box::new(SequentialIds::default()),
        )
        .unwrap();
        assert_eq!(synced.imported, 2);
        assert_eq!(synced.skipped.len(), 6, "{:?}", synced.skipped);
        let engine = synced.engine;
        assert_eq!(engine.sold(), 2);
        assert_eq!(engine.available(), 5);
        assert_eq!(engine.config().quantity, 7);
    }
}
