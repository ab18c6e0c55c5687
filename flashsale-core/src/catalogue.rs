//! The sales catalogue (the reference's "Backend"): sales, their buyers,
//! eligibility, and the `paid`/`switch` messages from the engines, each paid
//! transaction applied once however often it is delivered.

use std::collections::BTreeMap;
use std::time::Duration;

use hashbrown::{HashMap, HashSet};
use serde::{Deserialize, Serialize};

use crate::engine::{
    ConfigError, DEFAULT_MAX_JOINS_PER_BUYER, DEFAULT_PAYMENT_TIMEOUT, Event, EventKind,
    PrequeueOrder, SaleConfig,
};
use crate::id::{IdGenerator, SaleId, TxId};
use crate::name::{BuyerKey, BuyerName, NameError};
use crate::time::Timestamp;

/// The longest product name accepted, in characters.
pub const MAX_PRODUCT_NAME_CHARS: usize = 200;

/// How many sales a catalogue holds unless told otherwise: each costs a
/// task, memory, and a line in every sales list.
pub const DEFAULT_MAX_SALES: usize = 1_000;

/// What it takes to create a sale.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSale {
    /// What is sold.
    pub product_name: String,
    /// Units for sale (at least one).
    pub quantity: u64,
    /// Buying opens.
    pub starts_at: Timestamp,
    /// Buying closes (after `starts_at`).
    pub ends_at: Timestamp,
    /// How long a payment slot is held.
    pub payment_timeout: Duration,
    /// At most this many payment slots at once; `None`: unsold stock.
    pub max_payment_slots: Option<u64>,
    /// How many times one buyer may join; `None`: without limit.
    pub max_joins_per_buyer: Option<u32>,
    /// Buyers may queue from then (a pre-queue); `None`: from the start.
    pub prequeue_opens_at: Option<Timestamp>,
    /// How the pre-queue is ordered at the start.
    pub prequeue_order: PrequeueOrder,
    /// At most this many new payment slots a minute; `None`: unlimited.
    pub admissions_per_minute: Option<u64>,
}

impl NewSale {
    /// A sale with the default payment timeout and no slot limit.
    pub fn new(
        product_name: &str,
        quantity: u64,
        starts_at: Timestamp,
        ends_at: Timestamp,
    ) -> Self {
        NewSale {
            product_name: product_name.to_owned(),
            quantity,
            starts_at,
            ends_at,
            payment_timeout: DEFAULT_PAYMENT_TIMEOUT,
            max_payment_slots: None,
            max_joins_per_buyer: Some(DEFAULT_MAX_JOINS_PER_BUYER),
            prequeue_opens_at: None,
            prequeue_order: PrequeueOrder::Shuffle,
            admissions_per_minute: None,
        }
    }
}

impl NewSale {
    /// The engine settings of this sale under the id `id`.
    pub fn config(&self, id: SaleId) -> SaleConfig {
        SaleConfig {
            id,
            product_name: self.product_name.clone(),
            quantity: self.quantity,
            starts_at: self.starts_at,
            ends_at: self.ends_at,
            payment_timeout: self.payment_timeout,
            max_payment_slots: self.max_payment_slots,
            max_joins_per_buyer: self.max_joins_per_buyer,
            prequeue_opens_at: self.prequeue_opens_at,
            prequeue_order: self.prequeue_order,
            admissions_per_minute: self.admissions_per_minute,
        }
    }
}

/// A sale as the catalogue knows it: its settings (what is sold, how many,
/// when) and how many units are left.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Sale {
    /// The settings its engine runs with (id, product name, quantity,
    /// schedule, payment timeout, slot cap).
    #[serde(flatten)]
    pub config: SaleConfig,
    /// Units not yet sold.
    pub remaining: u64,
}

impl Sale {
    /// Its id.
    pub fn id(&self) -> SaleId {
        self.config.id
    }
}

/// A buyer who paid. Its id is the paid transaction's id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Buyer {
    /// The paid transaction.
    #[cfg_attr(feature = "openapi", schema(value_type = String, pattern = "^[0-9a-f]{24}$"))]
    pub id: TxId,
    /// The sale.
    #[cfg_attr(feature = "openapi", schema(value_type = String, pattern = "^[0-9a-f]{24}$"))]
    pub sale_id: SaleId,
    /// Who.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub buyer_name: BuyerName,
}

/// The message an engine sends the catalogue: the reference's Kafka
/// `transactions` value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TxMessage {
    /// The transaction.
    pub transaction_id: TxId,
    /// Who. Read leniently ([`crate::name::lenient`]): a message records a
    /// payment that already happened, so an odd name is cleaned for
    /// display, never a reason to drop the payment.
    #[serde(deserialize_with = "crate::name::lenient", default = "no_name")]
    pub buyer_name: BuyerName,
    /// The sale.
    pub sale_id: SaleId,
    /// The buyer's verified account, when buyers sign in (ours, additive:
    /// absent otherwise, and ignored by the reference's consumer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// Paid or switched to payment.
    #[serde(rename = "type")]
    pub kind: TxMessageKind,
}

fn no_name() -> BuyerName {
    BuyerName::from_record("")
}

/// What a [`TxMessage`] says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TxMessageKind {
    /// The transaction was paid.
    Paid,
    /// The transaction moved from waiting to payment.
    Switch,
}

impl TxMessage {
    /// The message for an engine event, if the catalogue is to hear of it:
    /// `Paid` → `paid`, `Promoted` → `switch`, nothing else (the reference's
    /// consumer takes any other type for a payment).
    pub fn from_event(event: &Event) -> Option<TxMessage> {
        let (tx, buyer, account, kind) = match &event.kind {
            EventKind::Paid { tx, buyer, account } => (tx, buyer, account, TxMessageKind::Paid),
            EventKind::Promoted { tx, buyer, .. } => (tx, buyer, &None, TxMessageKind::Switch),
            _ => return None,
        };
        Some(TxMessage {
            transaction_id: *tx,
            buyer_name: buyer.clone(),
            sale_id: event.sale,
            account: account.clone(),
            kind,
        })
    }
}

/// What the catalogue announces: the reference's broadcasts, as domain
/// events (adapters choose the wire form).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Notice {
    /// A sale was added to the catalogue (`sale_created`, an addition to
    /// the reference's events: live lists show new sales).
    SaleCreated {
        /// The sale.
        sale: SaleId,
    },
    /// A unit was sold (`sale_update`).
    SaleUpdated {
        /// The sale.
        sale: SaleId,
        /// Units left.
        remaining: u64,
        /// Who bought it.
        buyer: BuyerName,
    },
    /// The sale opened (`sale_started`, and `sale_event` "start").
    SaleStarted {
        /// The sale.
        sale: SaleId,
        /// Its start time.
        starts_at: Timestamp,
    },
    /// The sale closed (`sale_ended`, and `sale_event` "end").
    SaleEnded {
        /// The sale.
        sale: SaleId,
        /// Its end time.
        ends_at: Timestamp,
    },
    /// The operator paused the sale's queue (`queue_paused`).
    QueuePaused {
        /// The sale.
        sale: SaleId,
    },
    /// The operator resumed the sale's queue (`queue_resumed`).
    QueueResumed {
        /// The sale.
        sale: SaleId,
    },
    /// The operator changed the sale's settings: stock, end, limits
    /// (`sale_changed`; lists fetch the sale again).
    SaleChanged {
        /// The sale.
        sale: SaleId,
    },
    /// A waiting buyer got a payment slot (`queue_switch`).
    QueueSwitch {
        /// The sale.
        sale: SaleId,
        /// The transaction.
        tx: TxId,
        /// Who.
        buyer: BuyerName,
    },
}

/// Why a sale could not be created or a message applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SaleError {
    /// No such sale.
    #[error("sale not found")]
    UnknownSale,
    /// Empty product name.
    #[error("productName must not be empty")]
    EmptyProductName,
    /// Product name over [`MAX_PRODUCT_NAME_CHARS`].
    #[error("productName must be at most {MAX_PRODUCT_NAME_CHARS} characters")]
    ProductNameTooLong,
    /// Product name with a control or bidirectional-control character, or
    /// nothing visible: refused like a buyer name.
    #[error(
        "productName must not contain control or bidirectional-control characters, and must show something"
    )]
    ProductNameControl,
    /// The catalogue holds as many sales as it may.
    #[error("the catalogue holds {max} sales, the most it may")]
    TooManySales {
        /// The limit.
        max: usize,
    },
    /// Zero quantity.
    #[error("quantity must be at least 1")]
    ZeroQuantity,
    /// A sale with this id exists already.
    #[error("a sale with this id exists already")]
    Duplicate,
    /// The schedule or payment settings are invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A saved catalogue of a format this version does not read.
    #[error(
        "a saved catalogue of format {found}; this version reads {}",
        CatalogueState::VERSION
    )]
    UnsupportedState {
        /// Its format.
        found: u32,
    },
}

/// Why a buyer is not eligible.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EligibilityError {
    /// No such sale.
    #[error("sale not found")]
    UnknownSale,
    /// The buyer name is not acceptable.
    #[error(transparent)]
    InvalidName(#[from] NameError),
    /// Nothing left.
    #[error("sold out")]
    SoldOut,
    /// This buyer already bought in this sale.
    #[error("buyer already participated in this sale")]
    AlreadyParticipated,
    /// The buyer's verified account id is not acceptable.
    #[error("the buyer's account id is not acceptable")]
    InvalidAccount,
}

/// What applying a [`TxMessage`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// Applied now.
    Applied,
    /// Already applied earlier: nothing changed.
    Duplicate,
    /// Recorded, but the sale had no units left: the engine and the
    /// catalogue disagree about the stock. Worth an alarm.
    Oversold,
}

/// A catalogue's whole state, to save and load again: a backend that keeps
/// its catalogue between restarts reads only the messages after it
/// ([`Catalogue::save`], [`Catalogue::load`]). Serialized, it is a
/// persistent format: `version` says which.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CatalogueState {
    /// The format ([`CatalogueState::VERSION`] when written here).
    pub version: u32,
    sales: Vec<SavedSale>,
}

impl CatalogueState {
    /// The format this version writes and reads.
    pub const VERSION: u32 = 1;
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct SavedSale {
    sale: Sale,
    /// In the order their payments were applied.
    buyers: Vec<Buyer>,
    /// Who bought (buyer keys as computed when applied).
    names: Vec<SavedKey>,
    started: bool,
    ended: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum SavedKey {
    Name(String),
    Account(String),
}

#[derive(Debug, Clone)]
struct Entry {
    sale: Sale,
    buyers: Vec<Buyer>,
    /// The buyers' keys: one purchase per person.
    names: HashSet<BuyerKey>,
    /// Each applied payment's place in `buyers`.
    applied: HashMap<TxId, usize>,
    started: bool,
    ended: bool,
}

/// The sales catalogue. Deterministic like the engine: time comes in as
/// `now`, notices go out through [`Catalogue::drain_notices`].
///
/// ```
/// use flashsale_core::{Catalogue, NewSale, SequentialIds, Timestamp, TxMessage, TxMessageKind};
///
/// let t = Timestamp::from_millis(0);
/// let mut catalogue = Catalogue::new(Box::new(SequentialIds::default()));
/// let sale = catalogue
///     .create(t, NewSale::new("Sneakers", 2, t, Timestamp::from_millis(60_000)))
///     .unwrap();
/// let paid = TxMessage {
///     transaction_id: "0000000000000000000000aa".parse().unwrap(),
///     buyer_name: flashsale_core::BuyerName::parse("ana").unwrap(),
///     sale_id: sale.id(),
///     account: None,
///     kind: TxMessageKind::Paid,
/// };
/// catalogue.apply(t, &paid).unwrap();
/// catalogue.apply(t, &paid).unwrap(); // redelivered: applied once
/// assert_eq!(catalogue.get(sale.id()).unwrap().remaining, 1);
/// assert!(catalogue.eligible(sale.id(), "ana").is_err());
/// ```
pub struct Catalogue {
    sales: BTreeMap<SaleId, Entry>,
    ids: Box<dyn IdGenerator>,
    max_sales: usize,
    now: Timestamp,
    /// The earliest start or end still to announce (`MAX`: none).
    due: Timestamp,
    notices: Vec<Notice>,
}

impl std::fmt::Debug for Catalogue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Catalogue")
            .field("sales", &self.sales.len())
            .field("now", &self.now)
            .finish_non_exhaustive()
    }
}

impl Catalogue {
    /// An empty catalogue; `ids` makes sale ids.
    pub fn new(ids: Box<dyn IdGenerator>) -> Self {
        Catalogue {
            sales: BTreeMap::new(),
            ids,
            max_sales: DEFAULT_MAX_SALES,
            now: Timestamp::ZERO,
            due: Timestamp::MAX,
            notices: Vec::new(),
        }
    }

    /// This catalogue, holding at most `max` sales.
    pub fn with_max_sales(mut self, max: usize) -> Self {
        self.max_sales = max;
        self
    }

    /// The most sales it may hold.
    pub fn max_sales(&self) -> usize {
        self.max_sales
    }

    /// How many sales it holds.
    pub fn len(&self) -> usize {
        self.sales.len()
    }

    /// Whether it holds no sale.
    pub fn is_empty(&self) -> bool {
        self.sales.is_empty()
    }

    /// Creates a sale with a new id.
    pub fn create(&mut self, now: Timestamp, new: NewSale) -> Result<Sale, SaleError> {
        let sale = self.prepare(now, None, new)?;
        self.insert(sale)
    }

    /// Creates a sale with a chosen id (e.g. one that other services are
    /// configured with).
    pub fn create_with_id(&mut self, id: SaleId, new: NewSale) -> Result<Sale, SaleError> {
        let sale = self.prepare(self.now, Some(id), new)?;
        self.insert(sale)
    }

    /// The sale that [`Catalogue::create`] would add — with the id `id`, or
    /// a new one — checked, but not added: a caller that must also start
    /// its engine adds it with [`Catalogue::insert`] once that worked.
    pub fn prepare(
        &mut self,
        now: Timestamp,
        id: Option<SaleId>,
        new: NewSale,
    ) -> Result<Sale, SaleError> {
        self.advance(now);
        let id = id.unwrap_or_else(|| SaleId(self.ids.next_id(now)));
        self.check(Sale {
            config: new.config(id),
            remaining: new.quantity,
        })
    }

    /// Checks a sale like a new one: its name trimmed and bounded, some
    /// stock, a valid schedule, an id not taken.
    fn check(&self, mut sale: Sale) -> Result<Sale, SaleError> {
        let name = sale.config.product_name.trim();
        if name.is_empty() {
            return Err(SaleError::EmptyProductName);
        }
        if name.chars().count() > MAX_PRODUCT_NAME_CHARS {
            return Err(SaleError::ProductNameTooLong);
        }
        if name
            .chars()
            .any(|c| c.is_control() || crate::name::is_bidi_control(c))
            || BuyerKey::of(name).as_str().chars().all(char::is_whitespace)
        {
            return Err(SaleError::ProductNameControl);
        }
        sale.config.product_name = name.to_owned();
        if sale.config.quantity == 0 {
            return Err(SaleError::ZeroQuantity);
        }
        sale.config.validate()?;
        if self.sales.contains_key(&sale.id()) {
            return Err(SaleError::Duplicate);
        }
        if self.sales.len() >= self.max_sales {
            return Err(SaleError::TooManySales {
                max: self.max_sales,
            });
        }
        sale.remaining = sale.remaining.min(sale.config.quantity);
        Ok(sale)
    }

    /// Adds a sale that already has an id (prepared, or synced from another
    /// service). It is checked like a new sale.
    pub fn insert(&mut self, sale: Sale) -> Result<Sale, SaleError> {
        let sale = self.check(sale)?;
        self.add(sale.clone());
        Ok(sale)
    }

    /// Adds the sale an engine runs, as its journal opened it, unless the
    /// catalogue has it already: how a catalogue is rebuilt from the
    /// engines' journals after a restart (their payments follow as
    /// messages). Not checked like a new sale nor held to
    /// [`Catalogue::max_sales`]: the engine runs whatever the catalogue
    /// thinks. Returns whether it was added.
    pub fn restore(&mut self, mut config: SaleConfig) -> bool {
        if self.sales.contains_key(&config.id) {
            return false;
        }
        if config.product_name.trim().is_empty() {
            // Journals written before the name was recorded.
            config.product_name = format!("sale {}", config.id);
        }
        let remaining = config.quantity;
        self.add(Sale { config, remaining });
        true
    }

    fn add(&mut self, sale: Sale) {
        self.due = self.due.min(sale.config.starts_at);
        let id = sale.id();
        self.sales.insert(
            id,
            Entry {
                sale,
                buyers: Vec::new(),
                names: HashSet::new(),
                applied: HashMap::new(),
                started: false,
                ended: false,
            },
        );
        self.notices.push(Notice::SaleCreated { sale: id });
        self.advance(self.now);
    }

    /// The whole state: sales, their buyers and who bought, and which
    /// starts and ends were announced.
    pub fn save(&self) -> CatalogueState {
        let sales = self
            .sales
            .values()
            .map(|e| SavedSale {
                sale: e.sale.clone(),
                buyers: e.buyers.clone(),
                names: e
                    .names
                    .iter()
                    .map(|k| match k {
                        BuyerKey::Name(k) => SavedKey::Name(k.to_string()),
                        BuyerKey::Account(k) => SavedKey::Account(k.to_string()),
                    })
                    .collect(),
                started: e.started,
                ended: e.ended,
            })
            .collect();
        CatalogueState {
            version: CatalogueState::VERSION,
            sales,
        }
    }

    /// Takes a saved state in, at start (on a catalogue that has announced
    /// nothing yet): its sales replace any of the same id here, and
    /// nothing they announced before is announced again. Refuses a state
    /// of another format version.
    pub fn load(&mut self, state: CatalogueState) -> Result<(), SaleError> {
        if state.version != CatalogueState::VERSION {
            return Err(SaleError::UnsupportedState {
                found: state.version,
            });
        }
        for saved in state.sales {
            let id = saved.sale.id();
            self.add(saved.sale);
            let Some(entry) = self.sales.get_mut(&id) else {
                continue;
            };
            entry.applied = saved
                .buyers
                .iter()
                .enumerate()
                .map(|(i, b)| (b.id, i))
                .collect();
            entry.buyers = saved.buyers;
            entry.names = saved
                .names
                .into_iter()
                .map(|k| match k {
                    SavedKey::Name(k) => BuyerKey::Name(k.into()),
                    SavedKey::Account(k) => BuyerKey::Account(k.into()),
                })
                .collect();
            entry.started = saved.started;
            entry.ended = saved.ended;
        }
        // Announce nothing twice: only what falls due from here on.
        self.notices.clear();
        self.due = self.next_due();
        Ok(())
    }

    /// Every sale, by id (which ascends with creation time).
    pub fn list(&self) -> impl Iterator<Item = &Sale> {
        self.sales.values().map(|e| &e.sale)
    }

    /// One sale.
    pub fn get(&self, sale: SaleId) -> Option<&Sale> {
        self.sales.get(&sale).map(|e| &e.sale)
    }

    /// Up to `limit` of a sale's buyers, in the order their payments were
    /// applied, after the buyer `after` (from the start without one), and
    /// the cursor for the next page when there is one. `None` for an
    /// unknown sale; an unknown cursor starts nowhere (an empty page).
    pub fn buyers_page(
        &self,
        sale: SaleId,
        after: Option<TxId>,
        limit: usize,
    ) -> Option<(&[Buyer], Option<TxId>)> {
        let entry = self.sales.get(&sale)?;
        let start = match after {
            None => 0,
            Some(tx) => entry
                .applied
                .get(&tx)
                .map_or(entry.buyers.len(), |&i| i + 1),
        };
        let page = &entry.buyers[start..(start.saturating_add(limit)).min(entry.buyers.len())];
        let more = start + page.len() < entry.buyers.len();
        Some((page, more.then(|| page.last().map(|b| b.id)).flatten()))
    }

    /// A sale's buyers, in the order their payments were applied.
    pub fn buyers(&self, sale: SaleId) -> Option<&[Buyer]> {
        self.sales.get(&sale).map(|e| e.buyers.as_slice())
    }

    /// Whether `buyer` may still buy in `sale`: not sold out, and has not
    /// bought already.
    pub fn eligible(&self, sale: SaleId, buyer: &str) -> Result<(), EligibilityError> {
        self.eligible_as(sale, buyer, None)
    }

    /// [`Catalogue::eligible`] for a signed-in buyer: whether the `account`
    /// has bought, whatever the name.
    pub fn eligible_as(
        &self,
        sale: SaleId,
        buyer: &str,
        account: Option<&str>,
    ) -> Result<(), EligibilityError> {
        let entry = self.sales.get(&sale).ok_or(EligibilityError::UnknownSale)?;
        let name = BuyerName::parse(buyer)?;
        let key = match account {
            Some(id) => BuyerKey::account(id).ok_or(EligibilityError::InvalidAccount)?,
            None => name.key(),
        };
        if entry.sale.remaining == 0 {
            return Err(EligibilityError::SoldOut);
        }
        if entry.names.contains(&key) {
            return Err(EligibilityError::AlreadyParticipated);
        }
        Ok(())
    }

    /// Applies a message from an engine. A `paid` is applied once per
    /// transaction id, however often it is delivered: the buyer is recorded
    /// and the remaining quantity falls by one. A `switch` is passed on.
    pub fn apply(&mut self, now: Timestamp, msg: &TxMessage) -> Result<Applied, SaleError> {
        self.advance(now);
        let entry = self
            .sales
            .get_mut(&msg.sale_id)
            .ok_or(SaleError::UnknownSale)?;
        match msg.kind {
            TxMessageKind::Switch => {
                self.notices.push(Notice::QueueSwitch {
                    sale: msg.sale_id,
                    tx: msg.transaction_id,
                    buyer: msg.buyer_name.clone(),
                });
                Ok(Applied::Applied)
            }
            TxMessageKind::Paid => {
                if entry.applied.contains_key(&msg.transaction_id) {
                    return Ok(Applied::Duplicate);
                }
                entry.applied.insert(msg.transaction_id, entry.buyers.len());
                let outcome = if entry.sale.remaining == 0 {
                    Applied::Oversold
                } else {
                    entry.sale.remaining -= 1;
                    Applied::Applied
                };
                let key = msg
                    .account
                    .as_deref()
                    .and_then(BuyerKey::account)
                    .unwrap_or_else(|| msg.buyer_name.key());
                entry.names.insert(key);
                entry.buyers.push(Buyer {
                    id: msg.transaction_id,
                    sale_id: msg.sale_id,
                    buyer_name: msg.buyer_name.clone(),
                });
                self.notices.push(Notice::SaleUpdated {
                    sale: msg.sale_id,
                    remaining: entry.sale.remaining,
                    buyer: msg.buyer_name.clone(),
                });
                Ok(outcome)
            }
        }
    }

    /// Follows an operator's change that an engine journaled (see
    /// [`Catalogue::follows`]): the sale's settings as the engine runs
    /// them, and the notices buyers hear. Others are ignored.
    pub fn follow(&mut self, now: Timestamp, event: &Event) {
        self.advance(now);
        let Some(entry) = self.sales.get_mut(&event.sale) else {
            return;
        };
        let sale = event.sale;
        let config = &mut entry.sale.config;
        let notice = match &event.kind {
            EventKind::Paused => Notice::QueuePaused { sale },
            EventKind::Resumed => Notice::QueueResumed { sale },
            EventKind::Restocked { quantity } => {
                let sold = config.quantity.saturating_sub(entry.sale.remaining);
                config.quantity = *quantity;
                entry.sale.remaining = quantity.saturating_sub(sold);
                Notice::SaleChanged { sale }
            }
            EventKind::Rescheduled { ends_at } => {
                config.ends_at = *ends_at;
                self.due = self.due.min(*ends_at);
                Notice::SaleChanged { sale }
            }
            EventKind::SlotsLimited { max_payment_slots } => {
                config.max_payment_slots = *max_payment_slots;
                Notice::SaleChanged { sale }
            }
            EventKind::AdmissionsLimited {
                admissions_per_minute,
                ..
            } => {
                config.admissions_per_minute = *admissions_per_minute;
                Notice::SaleChanged { sale }
            }
            // Ended by the operator before its end time (an end at or
            // after it is announced by `advance`).
            EventKind::Ended if !entry.ended && event.at < config.ends_at => {
                entry.ended = true;
                Notice::SaleEnded {
                    sale,
                    ends_at: event.at,
                }
            }
            _ => return,
        };
        self.notices.push(notice);
        self.advance(now);
    }

    /// Whether [`Catalogue::follow`] takes `event` into account.
    pub fn follows(event: &Event) -> bool {
        matches!(
            event.kind,
            EventKind::Paused
                | EventKind::Resumed
                | EventKind::Restocked { .. }
                | EventKind::Rescheduled { .. }
                | EventKind::SlotsLimited { .. }
                | EventKind::AdmissionsLimited { .. }
                | EventKind::Ended
        )
    }

    /// The next sale start or end to announce.
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        (self.due != Timestamp::MAX).then_some(self.due)
    }

    fn next_due(&self) -> Timestamp {
        self.sales
            .values()
            .filter_map(|e| {
                if !e.started {
                    Some(e.sale.config.starts_at)
                } else if !e.ended {
                    Some(e.sale.config.ends_at)
                } else {
                    None
                }
            })
            .min()
            .unwrap_or(Timestamp::MAX)
    }

    /// Announces every start and end due at `now`. Harmless early or twice.
    pub fn handle_timeout(&mut self, now: Timestamp) {
        self.advance(now);
    }

    /// Takes the notices produced since the last call, oldest first.
    pub fn drain_notices(&mut self) -> std::vec::Drain<'_, Notice> {
        self.notices.drain(..)
    }

    fn advance(&mut self, now: Timestamp) {
        let now = now.max(self.now);
        self.now = now;
        if now < self.due {
            return;
        }
        for e in self.sales.values_mut() {
            let config = &e.sale.config;
            if !e.started && now >= config.starts_at {
                e.started = true;
                self.notices.push(Notice::SaleStarted {
                    sale: config.id,
                    starts_at: config.starts_at,
                });
            }
            if !e.ended && now >= config.ends_at {
                e.ended = true;
                self.notices.push(Notice::SaleEnded {
                    sale: config.id,
                    ends_at: config.ends_at,
                });
            }
        }
        self.due = self.next_due();
    }
}
