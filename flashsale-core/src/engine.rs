//! One sale's engine: payment slots, the FIFO waiting queue, expiry, and the
//! sale's start and end (the reference's "Transaction" service).
//!
//! Every command decides which [`Event`]s happen and then applies them with
//! one function, the only place that changes state. Replaying a journal of
//! those events therefore rebuilds exactly the same engine
//! ([`Engine::replay`]).

use std::collections::VecDeque;
use std::hash::BuildHasher;
use std::time::Duration;

use hashbrown::{HashMap, HashTable};
use serde::{Deserialize, Serialize};

use crate::positions::Positions;
use bson::oid::ObjectId;

use crate::id::{IdGenerator, SaleId, TxId};
use crate::name::{BuyerKey, BuyerName, NameError};
use crate::time::{Timestamp, millis};
use compact_str::CompactString;

/// How long a payment slot is held when a sale does not say: one minute, as
/// in the reference.
pub const DEFAULT_PAYMENT_TIMEOUT: Duration = Duration::from_secs(60);

/// How many times one buyer may join a sale when it does not say (the
/// reference lets an expired buyer rejoin without limit).
pub const DEFAULT_MAX_JOINS_PER_BUYER: u32 = 3;

/// A sale's settings: what its engine runs by, and what it sells.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SaleConfig {
    /// The sale.
    pub id: SaleId,
    /// What is sold (for the catalogue and people; the engine does not
    /// read it). Empty in journals written before it was recorded.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub product_name: String,
    /// Units for sale.
    pub quantity: u64,
    /// Buying opens at this time…
    pub starts_at: Timestamp,
    /// …and closes at this one (exclusive).
    pub ends_at: Timestamp,
    /// How long a buyer holds a payment slot before it expires.
    #[serde(with = "millis")]
    pub payment_timeout: Duration,
    /// At most this many payment slots at once (a payment gateway's
    /// capacity, say). `None`: as many as there is unsold stock.
    pub max_payment_slots: Option<u64>,
    /// How many times one buyer may join (an expired or departed buyer may
    /// join again, up to this). `None`: without limit, as journals written
    /// before the setting existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_joins_per_buyer: Option<u32>,
    /// Buyers may queue from this time (at or before `starts_at`): a
    /// pre-queue, ordered at the start by `prequeue_order`. `None`: no
    /// pre-queue, buys before the start are refused (journal format 4).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prequeue_opens_at: Option<Timestamp>,
    /// How the pre-queue is ordered at the start.
    #[serde(default, skip_serializing_if = "PrequeueOrder::is_default")]
    pub prequeue_order: PrequeueOrder,
    /// At most this many new payment slots in any minute (plus a burst of
    /// [`admission_burst`]); `None`: as fast as slots free up (format 4).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admissions_per_minute: Option<u64>,
}

/// How a pre-queue is ordered when the sale starts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum PrequeueOrder {
    /// Drawn by lot: a uniformly random order, fixed by a seed recorded in
    /// the journal ([`EventKind::Drawn`]).
    #[default]
    Shuffle,
    /// In arrival order.
    Fifo,
}

impl PrequeueOrder {
    fn is_default(&self) -> bool {
        *self == PrequeueOrder::default()
    }
}

/// The order a pre-queue of `len` buyers (in join order) is served in,
/// drawn with `seed`: a uniformly random permutation of `0..len` (a
/// Fisher–Yates shuffle driven by ChaCha20 seeded with `seed`). Fixed by
/// its inputs, on every platform and version of this crate: a journal's
/// [`EventKind::Drawn`] replays into the same order, and anyone holding the
/// seed can check the order a sale served.
pub fn draw_order(seed: u64, len: usize) -> Vec<usize> {
    use rand::SeedableRng;
    use rand::seq::SliceRandom;
    let mut order: Vec<usize> = (0..len).collect();
    order.shuffle(&mut rand_chacha::ChaCha20Rng::seed_from_u64(seed));
    order
}

/// The burst an admission rate allows on top of its steady rate: one
/// second's worth, at least one. Slots granted in any 60-second window
/// never exceed `per_minute + admission_burst(per_minute)`.
pub fn admission_burst(per_minute: u64) -> u64 {
    per_minute.div_ceil(60).max(1)
}

/// One admission in the bucket's units: a bucket of rate `r` a minute
/// fills by `r` units a millisecond.
const TOKEN: u64 = 60_000;

impl SaleConfig {
    /// A sale of `quantity` units open in `[starts_at, ends_at)`, with the
    /// default payment timeout and no limit on payment slots but stock.
    pub fn new(id: SaleId, quantity: u64, starts_at: Timestamp, ends_at: Timestamp) -> Self {
        SaleConfig {
            id,
            product_name: String::new(),
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

    /// Checks the settings make a sale that can run.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.ends_at <= self.starts_at {
            return Err(ConfigError::EndsBeforeStart);
        }
        if self.payment_timeout.is_zero() {
            return Err(ConfigError::ZeroPaymentTimeout);
        }
        if self.max_payment_slots == Some(0) {
            return Err(ConfigError::ZeroPaymentSlots);
        }
        if self.max_joins_per_buyer == Some(0) {
            return Err(ConfigError::ZeroJoins);
        }
        if self.prequeue_opens_at.is_some_and(|p| p > self.starts_at) {
            return Err(ConfigError::PrequeueAfterStart);
        }
        if self.admissions_per_minute == Some(0) {
            return Err(ConfigError::ZeroAdmissions);
        }
        Ok(())
    }
}

/// Why a [`SaleConfig`] was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// `ends_at` is not after `starts_at`.
    #[error("sale must end after it starts")]
    EndsBeforeStart,
    /// A zero payment timeout would expire every slot at once.
    #[error("payment timeout must be positive")]
    ZeroPaymentTimeout,
    /// A limit of zero payment slots would sell nothing.
    #[error("payment slot limit must be positive")]
    ZeroPaymentSlots,
    /// A limit of zero joins per buyer would let nobody in.
    #[error("joins per buyer must be positive")]
    ZeroJoins,
    /// The pre-queue opens after the sale starts.
    #[error("the pre-queue must open at or before the sale's start")]
    PrequeueAfterStart,
    /// An admission rate of zero would let nobody in.
    #[error("admissions per minute must be positive")]
    ZeroAdmissions,
}

/// Where a transaction stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum TxState {
    /// Holds a payment slot until its deadline.
    Payment,
    /// In the waiting queue.
    Waiting,
    /// Paid: one unit sold to this buyer.
    Paid,
    /// The payment slot's deadline passed unpaid.
    Expired,
    /// The buyer gave up a slot or a place.
    Left,
    /// Was waiting when the sale sold out.
    RejectedSoldOut,
    /// Was waiting when the sale ended.
    RejectedSaleEnded,
}

impl TxState {
    /// Payment or waiting: the buyer is still in the sale.
    pub fn is_live(self) -> bool {
        matches!(self, TxState::Payment | TxState::Waiting)
    }

    /// Live or paid: the buyer may not join again.
    pub fn blocks_rejoin(self) -> bool {
        self.is_live() || self == TxState::Paid
    }
}

/// Why a waiting buyer was let go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DropReason {
    /// Every unit was sold.
    SoldOut,
    /// The sale ended.
    SaleEnded,
}

/// The journal format this engine writes, in every journal's
/// [`EventKind::Opened`]. See the crate docs' *Journal compatibility*.
///
/// - 1: the first.
/// - 2: [`EventKind::Joined`] and [`EventKind::Paid`] may carry the buyer's
///   `account`, which makes the buyer that account (a format-1 engine would
///   key it by name).
/// - 3: the service's [`EventKind::Delivered`] markers.
/// - 4: pre-queues ([`EventKind::Drawn`]) and the operator's controls
///   (pause, slot and admission limits, restock, a new end, joining closed).
pub const JOURNAL_FORMAT: u32 = 4;

fn first_format() -> u32 {
    1
}

/// Something that happened in a sale. The engine's only output besides
/// return values, and the unit of its journal.
///
/// Serialized, it is a persistent format (journals outlive the process that
/// wrote them): see the crate docs' *Journal compatibility* for what may
/// change. A journal's format version is in its first event,
/// [`EventKind::Opened`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// The sale it happened in.
    pub sale: SaleId,
    /// When (the engine's time, which never goes backwards).
    pub at: Timestamp,
    /// What happened.
    pub kind: EventKind,
}

/// What happened; see [`Event`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum EventKind {
    /// The sale was set up with this configuration (a journal's first entry).
    Opened {
        /// The sale's settings.
        config: SaleConfig,
        /// The journal's format ([`JOURNAL_FORMAT`] when written here; 1
        /// for journals written before the field existed).
        #[serde(default = "first_format")]
        format: u32,
    },
    /// The sale's start time was reached.
    Started,
    /// The sale's end time was reached.
    Ended,
    /// A buyer joined: with a payment slot if `deadline` is set, else waiting.
    Joined {
        /// The new transaction.
        tx: TxId,
        /// Who.
        buyer: BuyerName,
        /// The payment deadline when admitted straight to payment.
        deadline: Option<Timestamp>,
        /// The verified account that joined, when buyers sign in: the
        /// buyer is then that account, whatever the name (journal format 2).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        account: Option<String>,
    },
    /// A waiting buyer got a payment slot (the reference's `switch`).
    Promoted {
        /// The transaction.
        tx: TxId,
        /// Who.
        buyer: BuyerName,
        /// Pay by then.
        deadline: Timestamp,
    },
    /// A payment slot was paid: one unit sold (the reference's `paid`).
    Paid {
        /// The transaction.
        tx: TxId,
        /// Who.
        buyer: BuyerName,
        /// The buyer's verified account, when buyers sign in (format 2): the
        /// catalogue then knows the account bought, whatever the name.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        account: Option<String>,
    },
    /// A payment slot's deadline passed unpaid.
    Expired {
        /// The transaction.
        tx: TxId,
        /// Who.
        buyer: BuyerName,
    },
    /// A buyer gave up a slot or a place.
    Left {
        /// The transaction.
        tx: TxId,
        /// Who.
        buyer: BuyerName,
    },
    /// The last unit was sold.
    SoldOut,
    /// A waiting buyer was let go: the sale sold out or ended.
    Dropped {
        /// The transaction.
        tx: TxId,
        /// Who.
        buyer: BuyerName,
        /// Why.
        reason: DropReason,
    },
    /// A buyer who paid elsewhere before this engine started (synced from
    /// the catalogue): one unit sold, and the name may not buy again.
    Imported {
        /// Their transaction, as the catalogue knows it.
        tx: TxId,
        /// Who.
        buyer: BuyerName,
    },
    /// A payment arrived for a slot that had expired or been left: the
    /// money must go back.
    RefundDue {
        /// The transaction.
        tx: TxId,
        /// Who.
        buyer: BuyerName,
    },
    /// Bookkeeping of the service, not of the sale (the engine never emits
    /// it, and replay passes over it): every event before the journal's
    /// `upto`-th had been handed to a sink that remembers what it was given
    /// (a Kafka topic), at its position `receipt`. A restart offers that
    /// sink only what came after (journal format 3).
    Delivered {
        /// How many of the journal's events had been delivered.
        upto: u64,
        /// Where the sink was, in its own terms (for Kafka,
        /// `partition:offset` after the sale's last record), if it said.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        receipt: Option<String>,
    },
    /// The pre-queue's order was drawn by lot, just before the start: the
    /// buyers then pre-queued, in join order, are served in
    /// [`draw_order`]`(seed, n)` (format 4).
    Drawn {
        /// The draw's seed, from the operating system's randomness.
        seed: u64,
    },
    /// The operator paused the queue: no slot is granted until `Resumed`.
    Paused,
    /// The operator resumed the queue.
    Resumed,
    /// The operator changed the limit on payment slots held at once.
    SlotsLimited {
        /// The new limit; `None`: as many as there is unsold stock.
        max_payment_slots: Option<u64>,
    },
    /// The operator changed the admission rate.
    AdmissionsLimited {
        /// The new rate; `None`: unlimited.
        admissions_per_minute: Option<u64>,
        /// The bucket's level in sixty-thousandths of an admission; `None`
        /// (an operator's change): full. Set by snapshots.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        level: Option<u64>,
    },
    /// The operator changed the stock (never below sold and held units).
    Restocked {
        /// Units for sale from now on.
        quantity: u64,
    },
    /// The operator moved the sale's end.
    Rescheduled {
        /// The new end.
        ends_at: Timestamp,
    },
    /// The operator closed joining: buys are refused, the queue drains.
    JoiningClosed,
    /// The operator opened joining again.
    JoiningOpened,
}

/// An operator's change to a running sale: one [`Engine::control`]
/// command, one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Control {
    /// Grant no slot until resumed; places and deadlines are kept, payments
    /// still count, joins still queue.
    Pause,
    /// Grant slots again.
    Resume,
    /// Hold at most this many payment slots at once (`None`: stock).
    MaxPaymentSlots(Option<u64>),
    /// Grant at most this many slots a minute (`None`: unlimited).
    AdmissionsPerMinute(Option<u64>),
    /// Sell this many units in all (at least sold + held, and one).
    Quantity(u64),
    /// End the sale at this time (after its start and now).
    EndsAt(Timestamp),
    /// Open or close joining; a closed sale's queue still drains.
    Joining(bool),
    /// End the sale now: waiting buyers are let go, open slots may pay.
    End,
}

/// Why an operator's change was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ControlError {
    /// The sale has ended: nothing about it changes any more.
    #[error("the sale has ended")]
    Ended,
    /// A limit of zero.
    #[error("the limit must be positive")]
    Zero,
    /// The stock would fall below what is sold and held (or zero).
    #[error("quantity {quantity} is below {committed}: the units sold or held, and at least one")]
    BelowCommitted {
        /// The stock asked for.
        quantity: u64,
        /// Sold plus held in payment slots, at least one: the least stock.
        committed: u64,
    },
    /// The new end is not after both the start and now.
    #[error("the sale must end after it starts and after now")]
    EndTooEarly,
}

/// The answer to a successful [`Engine::buy`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Admission {
    /// The new transaction.
    pub tx: TxId,
    /// Payment or waiting.
    pub place: Place,
}

/// Where a new buyer was put.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    /// A payment slot, to be paid by `deadline`.
    Payment {
        /// Pay by then.
        deadline: Timestamp,
    },
    /// The waiting queue, at `position` (1 = next to be promoted).
    Waiting {
        /// 1-based place in the queue.
        position: u64,
    },
    /// The pre-queue: a place in the queue is drawn at `starts_at`.
    Prequeued {
        /// When the sale starts and the order is drawn.
        starts_at: Timestamp,
    },
}

/// The answer to a successful [`Engine::paid`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PaidOutcome {
    /// The slot became a sale.
    Paid,
    /// It was already paid; nothing changed.
    AlreadyPaid,
}

/// A transaction as it stands now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    /// The transaction.
    pub tx: TxId,
    /// Who.
    pub buyer: BuyerName,
    /// Where it stands.
    pub state: TxState,
    /// 1-based place in the waiting queue, while waiting.
    pub position: Option<u64>,
    /// The payment deadline, while holding a slot.
    pub deadline: Option<Timestamp>,
    /// While waiting: the latest time this buyer reaches a payment slot if
    /// every slot now held runs to its deadline and as many slots stay in
    /// use — an upper bound for an estimated wait. Earlier when buyers
    /// ahead pay, leave or time out sooner; never reached when the sale
    /// sells out or ends first.
    pub turn_by: Option<Timestamp>,
    /// Waiting in the pre-queue: no position until the sale starts and
    /// the pre-queue's order is drawn.
    pub prequeued: bool,
    /// While waiting: the estimated turn ([`Engine::estimate`]), from the
    /// measured grant rate; `None` while unknown. Given by
    /// [`Engine::status`] only ([`Engine::transactions`] leaves it out:
    /// the rate is measured, not journaled).
    pub estimate: Option<Timestamp>,
    /// The operator paused the sale's queue: no slot is granted for now.
    pub queue_paused: bool,
    /// While pre-queued: when the sale starts and the order is drawn.
    pub starts_at: Option<Timestamp>,
}

/// Why a buy was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BuyError {
    /// The buyer name is not acceptable.
    #[error(transparent)]
    InvalidName(#[from] NameError),
    /// Before the sale's start.
    #[error("sale is not active: it has not started")]
    NotStarted {
        /// When it starts.
        starts_at: Timestamp,
    },
    /// At or after the sale's end.
    #[error("sale is not active: it has ended")]
    Ended {
        /// When it ended.
        ended_at: Timestamp,
    },
    /// Every unit is sold.
    #[error("sold out")]
    SoldOut,
    /// The buyer already has a live or paid transaction in this sale.
    #[error("buyer already joined this sale")]
    AlreadyJoined {
        /// That transaction.
        tx: TxId,
        /// Its state.
        state: TxState,
    },
    /// The verified account is not one (empty, too long, control
    /// characters).
    #[error("the buyer's account id is not acceptable")]
    InvalidAccount,
    /// The buyer joined (and expired or left) as often as the sale allows.
    #[error("buyer joined this sale {max} times, the most allowed")]
    TooManyJoins {
        /// The sale's limit.
        max: u32,
    },
    /// The operator closed joining.
    #[error("the sale is not taking new buyers")]
    JoiningClosed,
}

/// Why a payment was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PaidError {
    /// No such transaction in this sale.
    #[error("transaction not found")]
    UnknownTransaction,
    /// The slot expired before the payment arrived; a refund is due.
    #[error("payment slot expired; the payment must be refunded")]
    SlotExpired,
    /// The buyer left the slot before the payment arrived; a refund is due.
    #[error("buyer left the payment slot; the payment must be refunded")]
    SlotLeft,
    /// The transaction does not hold a payment slot (waiting, or let go).
    #[error("transaction is not in the payment queue")]
    NotInPayment {
        /// Its state.
        state: TxState,
    },
}

/// Why leaving was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LeaveError {
    /// No such transaction in this sale.
    #[error("transaction not found")]
    UnknownTransaction,
    /// Already paid: nothing to leave.
    #[error("transaction is already paid")]
    AlreadyPaid,
    /// Already over (expired or let go).
    #[error("transaction is no longer in the sale")]
    NotLive {
        /// Its state.
        state: TxState,
    },
}

/// Why a paid buyer could not be imported.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ImportError {
    /// The buyer name is not acceptable.
    #[error(transparent)]
    InvalidName(#[from] NameError),
    /// The sale has no unit left for it, the name already bought or holds
    /// a place, or the id belongs to another transaction.
    #[error("imported buyer conflicts with the sale's state")]
    Conflict,
}

/// Why a status was not given.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StatusError {
    /// No such transaction in this sale.
    #[error("transaction not found")]
    UnknownTransaction,
}

/// The buyer key of a `Joined` event: its account, else its name's.
fn joined_key(buyer: &BuyerName, account: Option<&str>) -> Result<BuyerKey, &'static str> {
    match account {
        Some(id) => BuyerKey::account(id).ok_or("joined with an unacceptable account"),
        None => Ok(buyer.key()),
    }
}

/// Why a journal could not be replayed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReplayError {
    /// The journal is empty or does not start with `Opened`.
    #[error("journal does not start with the sale's Opened event")]
    NotOpened,
    /// The journal was written in a newer format than this engine reads
    /// (a downgrade); nothing was replayed.
    #[error("journal format {found} is newer than this engine's ({JOURNAL_FORMAT})")]
    UnsupportedFormat {
        /// The journal's format.
        found: u32,
    },
    /// The opening configuration is invalid.
    #[error("journal opens an invalid sale: {0}")]
    Config(#[from] ConfigError),
    /// An event does not fit the state the journal built so far.
    #[error("journal entry {index} does not fit the sale's state: {reason}")]
    Inconsistent {
        /// 0-based position in the journal.
        index: usize,
        /// What was wrong.
        reason: &'static str,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Tx {
    id: TxId,
    name: BuyerName,
    state: TxState,
    /// The hash of the name's [`BuyerKey`] in `by_name`.
    key_hash: u64,
    /// How many times this buyer has joined, this one included.
    joins: u32,
    /// When it joined, in milliseconds after the engine's first event
    /// (saturating; for measures, not rules). Fits in `Tx`'s padding.
    joined: u32,
    /// Waiting: the position's index in `positions` (0 while pre-queued).
    /// Payment: the deadline in milliseconds. [`LEFT_PREQUEUE`] for one
    /// that ended in the pre-queue. Otherwise unused.
    key: u64,
}

fn push_fate(push: &mut impl FnMut(EventKind), fate: Option<EventKind>) {
    if let Some(kind) = fate {
        push(kind);
    }
}

/// [`Tx::key`] of a transaction that ended (left, or was let go) before
/// the pre-queue was drawn: the draw did not include it.
const LEFT_PREQUEUE: u64 = u64::MAX;

/// The admission rate's token bucket, in sixty-thousandths of an
/// admission: it fills by `per_minute` a millisecond up to
/// `admission_burst(per_minute)` admissions, and each slot granted takes
/// one admission ([`TOKEN`]). Its level is a function of the events'
/// times, so replay rebuilds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Bucket {
    per_minute: u64,
    level: u64,
    at: Timestamp,
}

impl Bucket {
    fn full(per_minute: u64, at: Timestamp) -> Self {
        Bucket {
            per_minute,
            level: Self::capacity(per_minute),
            at,
        }
    }

    fn capacity(per_minute: u64) -> u64 {
        admission_burst(per_minute).saturating_mul(TOKEN)
    }

    fn level_at(&self, now: Timestamp) -> u64 {
        let elapsed = now.as_millis().saturating_sub(self.at.as_millis());
        self.level
            .saturating_add(elapsed.saturating_mul(self.per_minute))
            .min(Self::capacity(self.per_minute))
    }

    /// Admissions available at `now`.
    fn tokens(&self, now: Timestamp) -> u64 {
        self.level_at(now) / TOKEN
    }

    /// When the next admission is available, if none is at `now`.
    fn next_at(&self, now: Timestamp) -> Option<Timestamp> {
        let level = self.level_at(now);
        (level < TOKEN).then(|| {
            let wait = (TOKEN - level).div_ceil(self.per_minute);
            Timestamp::from_millis(now.as_millis().saturating_add(wait))
        })
    }

    fn take(&mut self, now: Timestamp) {
        self.level = self.level_at(now).saturating_sub(TOKEN);
        self.at = now;
    }
}

/// Promotions (the queue's exits) per second over the last
/// [`RATE_WINDOW_SECS`] seconds, for the waiting buyers' estimates. Measured by this engine's commands
/// only (replay does not count): after a restart it is unknown until slots
/// are granted again.
#[derive(Debug, Clone)]
struct GrantRate {
    /// Promotions per second, by `second % RATE_WINDOW_SECS`.
    counts: [u32; RATE_WINDOW_SECS as usize],
    /// Their sum: the window ending at `latest`.
    total: u64,
    /// The second of the latest promotion.
    latest: u64,
    /// The second of the first promotion measured.
    first: Option<u64>,
}

/// The window behind a waiting buyer's estimate.
const RATE_WINDOW_SECS: u64 = 60;

impl Default for GrantRate {
    fn default() -> Self {
        GrantRate {
            counts: [0; RATE_WINDOW_SECS as usize],
            total: 0,
            latest: 0,
            first: None,
        }
    }
}

impl GrantRate {
    fn slot(second: u64) -> usize {
        (second % RATE_WINDOW_SECS) as usize
    }

    fn record(&mut self, at: Timestamp) {
        let second = at.as_millis() / 1000;
        if second > self.latest {
            // The seconds since the latest promotion had none, and those
            // they push out of the window are forgotten.
            let gap = (second - self.latest).min(RATE_WINDOW_SECS);
            for s in 1..=gap {
                let slot = &mut self.counts[Self::slot(self.latest + s)];
                self.total -= u64::from(*slot);
                *slot = 0;
            }
            self.latest = second;
        }
        self.first.get_or_insert(second);
        let slot = &mut self.counts[Self::slot(self.latest)];
        *slot = slot.saturating_add(1);
        self.total += 1;
    }

    /// Promotions per second at `now`, over the window (or since the first
    /// promotion, if sooner); `None` without one in the window. O(1) while
    /// promotions keep coming (O(seconds since the latest) otherwise).
    fn per_second(&self, now: Timestamp) -> Option<f64> {
        let first = self.first?;
        let second = (now.as_millis() / 1000).max(self.latest);
        let age = second - self.latest;
        if age >= RATE_WINDOW_SECS {
            return None;
        }
        // The window at `now` has lost the `age` oldest seconds of the
        // window at `latest`.
        let lost: u64 = (1..=age)
            .map(|k| u64::from(self.counts[Self::slot(self.latest + k)]))
            .sum();
        let total = self.total - lost;
        let span = (second - first + 1).min(RATE_WINDOW_SECS);
        (total > 0).then(|| total as f64 / span as f64)
    }
}

/// One sale's engine. Deterministic: no I/O, no clock; time comes in as
/// `now` on every call and events go out through [`Engine::drain_events`].
///
/// ```
/// use flashsale_core::{Engine, EventKind, SaleConfig, SaleId, SequentialIds, Timestamp, Place};
///
/// let t0 = Timestamp::from_millis(1_000);
/// let sale = SaleConfig::new(SaleId::from(bson::oid::ObjectId::from_bytes([1; 12])), 1, t0,
///                            Timestamp::from_millis(100_000));
/// let mut engine = Engine::new(t0, sale, Box::new(SequentialIds::default())).unwrap();
/// let ana = engine.buy(t0, "ana").unwrap();
/// let bob = engine.buy(t0, "bob").unwrap();
/// assert!(matches!(ana.place, Place::Payment { .. }));
/// assert_eq!(bob.place, Place::Waiting { position: 1 });
/// engine.paid(t0, ana.tx).unwrap();
/// assert_eq!(engine.sold(), 1);
/// // bob was told the sale sold out.
/// assert!(engine.drain_events().any(|e| matches!(e.kind, EventKind::Dropped { .. })));
/// ```
pub struct Engine {
    config: SaleConfig,
    ids: Box<dyn IdGenerator>,
    now: Timestamp,
    /// The time of the engine's first event (its opening, or its
    /// snapshot's).
    opened: Timestamp,
    started: bool,
    ended: bool,
    sold: u64,
    /// Live payment slots.
    slots: u64,
    /// Live waiting buyers.
    waiting: u64,
    /// Every transaction, in join order. A transaction id's last four bytes
    /// are its index here plus one, so finding one needs no map.
    txs: Vec<Tx>,
    /// Ids that do not carry their index (from a journal written elsewhere).
    foreign: HashMap<TxId, u32>,
    /// The key of the buyer whose `Joined` [`Engine::buy_as`] is applying,
    /// so that a buy computes it once; replay computes it from the event.
    joining: Option<BuyerKey>,
    /// The verified accounts of the transactions bought by one (only when
    /// buyers sign in).
    accounts: HashMap<u32, CompactString>,
    /// Dead transactions whose late payment was already answered with a
    /// `RefundDue`.
    refunds: hashbrown::HashSet<u32>,
    /// Indices into `txs`, hashed by buyer key: each buyer's latest
    /// transaction.
    by_name: HashTable<u32>,
    by_name_hasher: hashbrown::DefaultHashBuilder,
    /// Payment slots in deadline order; the front and the back are always
    /// live.
    deadlines: VecDeque<u32>,
    /// Waiting buyers in join order; the front is always live.
    queue: VecDeque<u32>,
    /// A set bit per live waiting buyer, in queue order: ranks are
    /// positions.
    positions: Positions,
    /// Pre-queued transactions in join order (some may have ended since),
    /// until the start moves them to `queue`.
    prequeue: Vec<u32>,
    /// Live pre-queued buyers (counted in `waiting` too).
    prequeued: u64,
    /// How many transactions joined before the start (all pre-queued).
    joined_before_start: u32,
    /// The pre-queue draw's seed, once drawn.
    seed: Option<u64>,
    /// The operator paused the queue.
    paused: bool,
    /// The operator closed joining.
    joining_closed: bool,
    /// The admission rate's bucket, when the sale has a rate.
    bucket: Option<Bucket>,
    /// Promotions lately, for estimates (boxed: 256 bytes the hot paths
    /// do not read).
    rate: Box<GrantRate>,
    events: Vec<Event>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("config", &self.config)
            .field("now", &self.now)
            .field("sold", &self.sold)
            .field("payment_slots", &self.slots)
            .field("waiting", &self.waiting)
            .field("transactions", &self.txs.len())
            .finish_non_exhaustive()
    }
}

impl Engine {
    /// A new engine for `config`, opened at `now`. Its first event is
    /// [`EventKind::Opened`]: a journal's first entry.
    pub fn new(
        now: Timestamp,
        config: SaleConfig,
        ids: Box<dyn IdGenerator>,
    ) -> Result<Self, ConfigError> {
        config.validate()?;
        let mut engine = Self::empty(now, config, ids);
        let config = engine.config.clone();
        engine.events.push(Event {
            sale: config.id,
            at: now,
            kind: EventKind::Opened {
                config,
                format: JOURNAL_FORMAT,
            },
        });
        Ok(engine)
    }

    fn empty(now: Timestamp, config: SaleConfig, ids: Box<dyn IdGenerator>) -> Self {
        let bucket = config.admissions_per_minute.map(|r| Bucket::full(r, now));
        Engine {
            config,
            ids,
            now,
            opened: now,
            started: false,
            ended: false,
            sold: 0,
            slots: 0,
            waiting: 0,
            txs: Vec::new(),
            foreign: HashMap::new(),
            refunds: hashbrown::HashSet::new(),
            accounts: HashMap::new(),
            joining: None,
            by_name: HashTable::new(),
            by_name_hasher: hashbrown::DefaultHashBuilder::default(),
            deadlines: VecDeque::new(),
            queue: VecDeque::new(),
            positions: Positions::default(),
            prequeue: Vec::new(),
            prequeued: 0,
            joined_before_start: 0,
            seed: None,
            paused: false,
            joining_closed: false,
            bucket,
            rate: Box::default(),
            events: Vec::new(),
        }
    }

    /// Rebuilds an engine from its journal: the events it emitted, in order,
    /// starting with [`EventKind::Opened`]. The result is the same engine
    /// that wrote the journal, minus undrained events. `ids` makes the ids of
    /// transactions from now on. Journals written elsewhere may use any
    /// unique ids; a journal that breaks the sale's rules (more slots than
    /// stock, a buyer twice, an event out of place) is refused.
    pub fn replay<I>(journal: I, ids: Box<dyn IdGenerator>) -> Result<Self, ReplayError>
    where
        I: IntoIterator,
        I::Item: std::borrow::Borrow<Event>,
    {
        use std::borrow::Borrow;
        let mut journal = journal.into_iter();
        let first = journal.next().ok_or(ReplayError::NotOpened)?;
        let EventKind::Opened { config, format } = &first.borrow().kind else {
            return Err(ReplayError::NotOpened);
        };
        if *format > JOURNAL_FORMAT {
            return Err(ReplayError::UnsupportedFormat { found: *format });
        }
        config.validate()?;
        let mut engine = Self::empty(first.borrow().at, config.clone(), ids);
        for (index, event) in journal.enumerate() {
            let event = event.borrow();
            if event.sale != engine.config.id {
                return Err(ReplayError::Inconsistent {
                    index: index + 1,
                    reason: "event of another sale",
                });
            }
            engine
                .admissible(event)
                .and_then(|()| engine.apply(event))
                .map_err(|reason| ReplayError::Inconsistent {
                    index: index + 1,
                    reason,
                })?;
        }
        Ok(engine)
    }

    // ----- commands ---------------------------------------------------------

    /// A buyer joins: a payment slot if one is free, else the waiting queue.
    pub fn buy(&mut self, now: Timestamp, buyer: &str) -> Result<Admission, BuyError> {
        self.buy_as(now, buyer, None)
    }

    /// [`Engine::buy`] by a verified `account` (a JWT's `sub`, say): the
    /// buyer is the account, whatever name it types — one place per
    /// account. `None`: the buyer is its name's [`BuyerKey`].
    pub fn buy_as(
        &mut self,
        now: Timestamp,
        buyer: &str,
        account: Option<&str>,
    ) -> Result<Admission, BuyError> {
        let now = self.advance(now);
        let buyer = BuyerName::parse(buyer)?;
        let key = match account {
            Some(id) => BuyerKey::account(id).ok_or(BuyError::InvalidAccount)?,
            None => buyer.key(),
        };
        if !self.started && self.config.prequeue_opens_at.is_none_or(|p| now < p) {
            return Err(BuyError::NotStarted {
                starts_at: self.config.starts_at,
            });
        }
        if self.ended {
            return Err(BuyError::Ended {
                ended_at: self.config.ends_at,
            });
        }
        if self.joining_closed {
            return Err(BuyError::JoiningClosed);
        }
        if self.sold >= self.config.quantity {
            return Err(BuyError::SoldOut);
        }
        if let Some(tx) = self.latest_of_key(&key) {
            if tx.state.blocks_rejoin() {
                return Err(BuyError::AlreadyJoined {
                    tx: tx.id,
                    state: tx.state,
                });
            }
            if let Some(max) = self.config.max_joins_per_buyer
                && tx.joins >= max
            {
                return Err(BuyError::TooManyJoins { max });
            }
        }
        let tx = self.fresh_id(now);
        let deadline =
            (self.free_slots() > 0).then(|| now.saturating_add(self.config.payment_timeout));
        // Computed once: the `Joined` about to be applied is this buyer's.
        self.joining = Some(key);
        self.emit(
            now,
            EventKind::Joined {
                tx,
                buyer,
                deadline,
                account: account.map(str::to_owned),
            },
        );
        let place = match deadline {
            Some(deadline) => Place::Payment { deadline },
            None if !self.started => Place::Prequeued {
                starts_at: self.config.starts_at,
            },
            None => Place::Waiting {
                position: self.waiting,
            },
        };
        Ok(Admission { tx, place })
    }

    /// A payment arrived for `tx`: its slot becomes a sale. Idempotent: a
    /// second call for a paid transaction changes nothing.
    pub fn paid(&mut self, now: Timestamp, tx: TxId) -> Result<PaidOutcome, PaidError> {
        let now = self.advance(now);
        let i = self.index(tx).ok_or(PaidError::UnknownTransaction)?;
        let t = &self.txs[i];
        let buyer = t.name.clone();
        match t.state {
            TxState::Payment => {
                let account = self.accounts.get(&(i as u32)).map(|a| a.to_string());
                self.emit(now, EventKind::Paid { tx, buyer, account });
                if self.sold == self.config.quantity {
                    self.emit(now, EventKind::SoldOut);
                }
                self.settle(now);
                Ok(PaidOutcome::Paid)
            }
            TxState::Paid => Ok(PaidOutcome::AlreadyPaid),
            state @ (TxState::Expired | TxState::Left) => {
                // Said once per transaction: a repeated late payment is the
                // same refund, and must not grow the journal.
                if !self.refunds.contains(&(i as u32)) {
                    self.emit(now, EventKind::RefundDue { tx, buyer });
                }
                Err(if state == TxState::Expired {
                    PaidError::SlotExpired
                } else {
                    PaidError::SlotLeft
                })
            }
            state => Err(PaidError::NotInPayment { state }),
        }
    }

    /// The buyer of `tx` gives up a payment slot or a waiting place; a freed
    /// slot goes to the next waiting buyer. Leaving twice is a no-op.
    pub fn leave(&mut self, now: Timestamp, tx: TxId) -> Result<(), LeaveError> {
        let now = self.advance(now);
        let i = self.index(tx).ok_or(LeaveError::UnknownTransaction)?;
        let t = &self.txs[i];
        match t.state {
            TxState::Payment | TxState::Waiting => {
                let buyer = t.name.clone();
                self.emit(now, EventKind::Left { tx, buyer });
                self.settle(now);
                Ok(())
            }
            TxState::Left => Ok(()),
            TxState::Paid => Err(LeaveError::AlreadyPaid),
            state => Err(LeaveError::NotLive { state }),
        }
    }

    /// An operator's change to the sale, as one event (see [`Control`]).
    /// What it frees (slots, admissions) goes to waiting buyers at once;
    /// a stock lowered to what is sold, or the sale's end, lets them go.
    /// Asking for what already holds changes nothing.
    pub fn control(&mut self, now: Timestamp, control: Control) -> Result<(), ControlError> {
        let now = self.advance(now);
        if self.ended {
            return Err(ControlError::Ended);
        }
        let kind = match control {
            Control::Pause if !self.paused => EventKind::Paused,
            Control::Resume if self.paused => EventKind::Resumed,
            Control::Pause | Control::Resume => return Ok(()),
            Control::MaxPaymentSlots(Some(0)) | Control::AdmissionsPerMinute(Some(0)) => {
                return Err(ControlError::Zero);
            }
            Control::MaxPaymentSlots(max) if max == self.config.max_payment_slots => return Ok(()),
            Control::MaxPaymentSlots(max_payment_slots) => {
                EventKind::SlotsLimited { max_payment_slots }
            }
            // Always applied: it also refills the bucket.
            Control::AdmissionsPerMinute(admissions_per_minute) => EventKind::AdmissionsLimited {
                admissions_per_minute,
                level: None,
            },
            Control::Quantity(quantity) => {
                let committed = self.sold + self.slots;
                if quantity < committed.max(1) {
                    return Err(ControlError::BelowCommitted {
                        quantity,
                        committed,
                    });
                }
                if quantity == self.config.quantity {
                    return Ok(());
                }
                EventKind::Restocked { quantity }
            }
            Control::EndsAt(ends_at) => {
                if ends_at <= self.config.starts_at || ends_at <= now {
                    return Err(ControlError::EndTooEarly);
                }
                if ends_at == self.config.ends_at {
                    return Ok(());
                }
                EventKind::Rescheduled { ends_at }
            }
            Control::Joining(open) if open != self.joining_closed => return Ok(()),
            Control::Joining(true) => EventKind::JoiningOpened,
            Control::Joining(false) => EventKind::JoiningClosed,
            // Its end becomes now (if after the start), then it ends.
            Control::End if now > self.config.starts_at => EventKind::Rescheduled { ends_at: now },
            Control::End => EventKind::Ended,
        };
        let restocked = matches!(kind, EventKind::Restocked { .. });
        self.emit(now, kind);
        if !self.ended && now >= self.config.ends_at {
            self.emit(now, EventKind::Ended);
        }
        if restocked && self.sold == self.config.quantity {
            self.emit(now, EventKind::SoldOut);
        }
        self.settle(now);
        Ok(())
    }

    /// Looks up each of a batch of buyers' names before the batch is
    /// applied. At millions of buyers each name lookup in [`Engine::buy`]
    /// waits for main memory; done back to back here, the lookups are
    /// independent and the CPU overlaps their waits, so the buys that follow
    /// find the names' table entries in cache (measured: 22% off `buy` at
    /// 10M joined, when a name was its own key). Since buyers are keyed by
    /// [`BuyerKey`], each lookup first computes a key, which the buy then
    /// computes again: the service no longer calls this (see
    /// BENCHMARKS.md). Changes nothing. Returns how many names have joined.
    pub fn prefetch_buyers<'a>(&self, names: impl IntoIterator<Item = &'a str>) -> usize {
        let found = names
            .into_iter()
            .filter_map(|raw| BuyerName::parse(raw).ok())
            .filter(|name| self.latest_of(name).is_some())
            .count();
        std::hint::black_box(found)
    }

    /// Records a buyer who paid before this engine existed (the reference's
    /// transaction service syncs them from the backend at start): one unit
    /// sold, and the name may not buy again. Importing the same transaction
    /// twice is a no-op.
    pub fn import_paid(
        &mut self,
        now: Timestamp,
        tx: TxId,
        buyer: &str,
    ) -> Result<(), ImportError> {
        let now = self.advance(now);
        let buyer = BuyerName::parse(buyer)?;
        if let Some(i) = self.index(tx) {
            let t = &self.txs[i];
            return if t.state == TxState::Paid && t.name == buyer {
                Ok(())
            } else {
                Err(ImportError::Conflict)
            };
        }
        let event = Event {
            sale: self.config.id,
            at: now,
            kind: EventKind::Imported { tx, buyer },
        };
        self.admissible(&event).map_err(|_| ImportError::Conflict)?;
        self.emit(now, event.kind);
        if self.sold == self.config.quantity {
            self.emit(now, EventKind::SoldOut);
        }
        self.settle(now);
        Ok(())
    }

    /// Where `tx` stands: state, waiting position, payment deadline.
    pub fn status(&self, tx: TxId) -> Option<Status> {
        self.index(tx).map(|i| {
            let mut status = self.status_at(i);
            status.estimate = status.position.and_then(|p| self.estimate(p));
            status
        })
    }

    /// The earliest time at which [`Engine::handle_timeout`] has work: the
    /// sale's start or end, or the first payment deadline. `None`: nothing
    /// is scheduled.
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        let start = (!self.started && !self.ended).then_some(self.config.starts_at);
        let end = (!self.ended).then_some(self.config.ends_at);
        let deadline = self
            .deadlines
            .front()
            .map(|&i| Timestamp::from_millis(self.txs[i as usize].key));
        // The bucket's next admission, when a waiting buyer needs it.
        let admission = self
            .bucket
            .filter(|_| self.started && !self.paused && !self.queue.is_empty())
            .and_then(|b| b.next_at(self.now));
        [start, end, deadline, admission]
            .into_iter()
            .flatten()
            .min()
    }

    /// Does what is due at `now`: starts or ends the sale, expires every
    /// payment slot whose deadline is at or before `now`, and backfills
    /// freed slots from the waiting queue in join order. Calling it early or
    /// twice is harmless. Every command does this first by itself.
    pub fn handle_timeout(&mut self, now: Timestamp) {
        self.advance(now);
    }

    /// Takes the events produced since the last call, oldest first.
    pub fn drain_events(&mut self) -> std::vec::Drain<'_, Event> {
        self.events.drain(..)
    }

    // ----- queries ----------------------------------------------------------

    /// The sale's settings.
    pub fn config(&self) -> &SaleConfig {
        &self.config
    }

    /// Units sold.
    pub fn sold(&self) -> u64 {
        self.sold
    }

    /// Units neither sold nor held in a payment slot.
    pub fn available(&self) -> u64 {
        self.config.quantity - self.sold - self.slots
    }

    /// Live payment slots.
    pub fn payment_slots(&self) -> u64 {
        self.slots
    }

    /// Buyers in the waiting queue.
    pub fn waiting(&self) -> u64 {
        self.waiting
    }

    /// Payment slots that could be handed out now.
    pub fn free_slots(&self) -> u64 {
        self.free_slots_at(self.now)
    }

    /// Payment slots that could be handed out at `now`: none before the
    /// start or while paused; no more than stock, the slot limit and the
    /// admission bucket allow.
    fn free_slots_at(&self, now: Timestamp) -> u64 {
        if !self.started || self.paused {
            return 0;
        }
        let unsold = self.config.quantity.saturating_sub(self.sold);
        let capacity = self
            .config
            .max_payment_slots
            .map_or(unsold, |m| m.min(unsold));
        let free = capacity.saturating_sub(self.slots);
        self.bucket.map_or(free, |b| free.min(b.tokens(now)))
    }

    /// Whether the sale has ended (its end time, or the operator's end).
    pub fn has_ended(&self) -> bool {
        self.ended
    }

    /// Whether the operator paused the queue.
    pub fn is_paused(&self) -> bool {
        self.paused
    }

    /// Whether new buyers may join (the operator may close joining).
    pub fn is_joining_open(&self) -> bool {
        !self.joining_closed
    }

    /// Buyers in the pre-queue, waiting for the draw (counted in
    /// [`Engine::waiting`] too).
    pub fn prequeued(&self) -> u64 {
        self.prequeued
    }

    /// The pre-queue draw's seed, once drawn: with the pre-queue's join
    /// order, it fixes the order served ([`draw_order`]).
    pub fn draw_seed(&self) -> Option<u64> {
        self.seed
    }

    /// The admissions the rate allows at once now, if the sale has a rate.
    pub fn admissions_available(&self) -> Option<u64> {
        self.bucket.map(|b| b.tokens(self.now))
    }

    /// Waiting buyers promoted per second lately — the queue's exit rate,
    /// over the last minute, by this engine's own commands; `None` while
    /// unmeasured.
    pub fn promotion_rate(&self) -> Option<f64> {
        self.rate.per_second(self.now)
    }

    /// When `tx` joined (from a snapshot: when the snapshot was taken).
    /// For measures such as time in queue.
    pub fn joined_at(&self, tx: TxId) -> Option<Timestamp> {
        let t = &self.txs[self.index(tx)?];
        Some(
            self.opened
                .saturating_add(Duration::from_millis(u64::from(t.joined))),
        )
    }

    /// When `tx` was given its payment slot, if it holds one, paid or let
    /// it expire (not for imported payments). For measures such as time
    /// to pay.
    pub fn slot_given_at(&self, tx: TxId) -> Option<Timestamp> {
        let t = &self.txs[self.index(tx)?];
        let had_slot = matches!(t.state, TxState::Payment | TxState::Paid | TxState::Expired);
        (had_slot && t.key != 0 && t.key != LEFT_PREQUEUE).then(|| {
            Timestamp::from_millis(
                t.key
                    .saturating_sub(self.config.payment_timeout.as_millis() as u64),
            )
        })
    }

    /// The next `n` waiting buyers, in the order they will be served.
    pub fn queue_head(&self, n: usize) -> Vec<Status> {
        self.queue
            .iter()
            .filter(|&&i| self.txs[i as usize].state == TxState::Waiting)
            .take(n)
            .map(|&i| self.status_at(i as usize))
            .collect()
    }

    /// A waiting buyer's estimated turn at `position`: people ahead ÷ the
    /// queue's measured exit rate ([`Engine::promotion_rate`]), never later than
    /// [`Status::turn_by`]; `None` (unknown) while no rate is measured.
    pub fn estimate(&self, position: u64) -> Option<Timestamp> {
        let rate = self.promotion_rate()?;
        let wait_ms = (position as f64 / rate * 1000.0).min(u64::MAX as f64 / 2.0) as u64;
        let eta = Timestamp::from_millis(self.now.as_millis().saturating_add(wait_ms));
        Some(self.turn_by(position).map_or(eta, |bound| eta.min(bound)))
    }

    /// Whether the sale's start / end have been reached.
    pub fn is_active(&self) -> bool {
        self.started && !self.ended
    }

    /// The engine's time: the latest `now` it was given.
    pub fn now(&self) -> Timestamp {
        self.now
    }

    /// The number of transactions ever made (every state).
    pub fn transaction_count(&self) -> usize {
        self.txs.len()
    }

    /// Every transaction's id, in join order.
    pub fn transaction_ids(&self) -> impl Iterator<Item = TxId> + '_ {
        self.txs.iter().map(|t| t.id)
    }

    /// Makes the ids of transactions from now on with `ids`. Always safe:
    /// an id's last four bytes are its transaction's number in the sale,
    /// which no generator chooses, so ids stay unique.
    pub fn replace_id_generator(&mut self, ids: Box<dyn IdGenerator>) {
        self.ids = ids;
    }

    /// How many events [`Engine::snapshot`] would give at most, without
    /// making it.
    pub fn snapshot_len(&self) -> usize {
        // Two events a transaction (join and fate, or join and promotion),
        // one for those waiting, one more for a pre-queued one's promotion;
        // the opening, draw, start, end, controls and refunds.
        2 * self.txs.len() - self.waiting as usize
            + self.joined_before_start as usize
            + self.refunds.len()
            + 9
    }

    /// A snapshot: the shortest journal this engine knows that replays
    /// into its state — the sale's opening (with its settings as they are
    /// now), the pre-queue and its draw, its start (and end), each
    /// transaction's join and fate in join order, then the live payment
    /// slots in deadline order, the refunds owed and the operator's
    /// controls. At most three events a transaction, however long the
    /// history, all at [`Engine::now`]. [`Engine::replay`] of it followed
    /// by what this engine does next gives what this engine gives (see the
    /// `snapshot` property test); a [`Storage`](crate::Storage) may
    /// replace a journal's prefix with it.
    pub fn snapshot(&self) -> Vec<Event> {
        let at = self.now;
        let sale = self.config.id;
        let mut out = Vec::with_capacity(self.txs.len() + 8);
        let mut push = |kind| out.push(Event { sale, at, kind });
        // The limits are restored last: the slots replayed in join order
        // were granted under the limits of their time (a stock or a slot
        // limit lowered since, a bucket since drawn).
        let config = SaleConfig {
            quantity: self.config.quantity.saturating_add(self.txs.len() as u64),
            max_payment_slots: None,
            admissions_per_minute: None,
            ..self.config.clone()
        };
        push(EventKind::Opened {
            config,
            format: JOURNAL_FORMAT,
        });
        let prefix = if self.started {
            self.joined_before_start as usize
        } else {
            self.txs.len()
        };
        let account = |i: usize| self.accounts.get(&(i as u32)).map(|a| a.to_string());
        let fate = |t: &Tx, account: Option<String>| {
            let (tx, buyer) = (t.id, t.name.clone());
            match t.state {
                TxState::Paid => Some(EventKind::Paid { tx, buyer, account }),
                TxState::Expired => Some(EventKind::Expired { tx, buyer }),
                TxState::Left => Some(EventKind::Left { tx, buyer }),
                TxState::RejectedSoldOut => Some(EventKind::Dropped {
                    tx,
                    buyer,
                    reason: DropReason::SoldOut,
                }),
                TxState::RejectedSaleEnded => Some(EventKind::Dropped {
                    tx,
                    buyer,
                    reason: DropReason::SaleEnded,
                }),
                TxState::Payment | TxState::Waiting => None,
            }
        };
        // The pre-queue: everyone who joined before the start, and the fate
        // of those who were out before the draw, so that the draw replays
        // over the same buyers.
        for (i, t) in self.txs[..prefix].iter().enumerate() {
            let (tx, buyer) = (t.id, t.name.clone());
            if t.key == LEFT_PREQUEUE && t.state == TxState::Paid {
                push(EventKind::Imported { tx, buyer });
                continue;
            }
            push(EventKind::Joined {
                tx,
                buyer,
                deadline: None,
                account: account(i),
            });
            if t.key == LEFT_PREQUEUE {
                push(fate(t, account(i)).expect("ended before the draw"));
            }
        }
        if self.started {
            if let Some(seed) = self.seed {
                push(EventKind::Drawn { seed });
            }
            push(EventKind::Started);
        }
        for (i, t) in self.txs.iter().enumerate() {
            let (tx, buyer) = (t.id, t.name.clone());
            if i < prefix {
                // Drawn into the queue: a slot paid or run out was a
                // promotion first.
                if t.key == LEFT_PREQUEUE {
                    continue;
                }
                if matches!(t.state, TxState::Paid | TxState::Expired) {
                    push(EventKind::Promoted {
                        tx,
                        buyer,
                        deadline: at,
                    });
                }
                push_fate(&mut push, fate(t, account(i)));
                continue;
            }
            // Live slots join waiting and are promoted below, in deadline
            // order; any other ended slot joins with one and gives it up.
            // (A payment stays a `Paid` event, never an `Imported` one:
            // whoever reads the journal for payments finds them all.)
            let held = matches!(t.state, TxState::Paid | TxState::Expired).then_some(at);
            push(EventKind::Joined {
                tx,
                buyer,
                deadline: held,
                account: account(i),
            });
            push_fate(&mut push, fate(t, account(i)));
        }
        for &j in &self.deadlines {
            let t = &self.txs[j as usize];
            if t.state == TxState::Payment {
                push(EventKind::Promoted {
                    tx: t.id,
                    buyer: t.name.clone(),
                    deadline: Timestamp::from_millis(t.key),
                });
            }
        }
        let mut refunds: Vec<u32> = self.refunds.iter().copied().collect();
        refunds.sort_unstable();
        for i in refunds {
            let t = &self.txs[i as usize];
            push(EventKind::RefundDue {
                tx: t.id,
                buyer: t.name.clone(),
            });
        }
        if self.ended {
            push(EventKind::Ended);
        }
        push(EventKind::Restocked {
            quantity: self.config.quantity,
        });
        if self.config.max_payment_slots.is_some() {
            push(EventKind::SlotsLimited {
                max_payment_slots: self.config.max_payment_slots,
            });
        }
        if self.paused {
            push(EventKind::Paused);
        }
        if self.joining_closed {
            push(EventKind::JoiningClosed);
        }
        if let Some(bucket) = self.bucket {
            push(EventKind::AdmissionsLimited {
                admissions_per_minute: Some(bucket.per_minute),
                level: Some(bucket.level_at(at)),
            });
        }
        out
    }

    /// Every transaction, in join order.
    pub fn transactions(&self) -> impl Iterator<Item = Status> + '_ {
        (0..self.txs.len()).map(|i| self.status_at(i))
    }

    // ----- internals --------------------------------------------------------

    fn status_at(&self, i: usize) -> Status {
        let t = &self.txs[i];
        let prequeued = t.state == TxState::Waiting && t.key == 0;
        let (position, deadline) = match t.state {
            TxState::Waiting if prequeued => (None, None),
            TxState::Waiting => (Some(self.positions.rank(t.key as usize)), None),
            TxState::Payment => (None, Some(Timestamp::from_millis(t.key))),
            _ => (None, None),
        };
        Status {
            tx: t.id,
            buyer: t.name.clone(),
            state: t.state,
            position,
            deadline,
            turn_by: position.and_then(|p| self.turn_by(p)),
            prequeued,
            estimate: None,
            queue_paused: self.paused,
            starts_at: prequeued.then_some(self.config.starts_at),
        }
    }

    /// The bound behind [`Status::turn_by`] for waiting position `p`
    /// (1-based). Slots are handed out in deadline order, so with `k` slots
    /// held the buyer at `p` takes over a slot in round `(p - 1) / k`, each
    /// round lasting at most one payment timeout after the latest deadline
    /// now held (the back of `deadlines`, live or not, is never earlier).
    fn turn_by(&self, p: u64) -> Option<Timestamp> {
        let latest = self.deadlines.back()?;
        let rounds = u32::try_from((p - 1) / self.slots.max(1)).unwrap_or(u32::MAX);
        let wait = self.config.payment_timeout.saturating_mul(rounds);
        Some(Timestamp::from_millis(self.txs[*latest as usize].key).saturating_add(wait))
    }

    fn index(&self, tx: TxId) -> Option<usize> {
        let b = tx.bytes();
        let n = u32::from_be_bytes([b[8], b[9], b[10], b[11]]) as usize;
        if let Some(i) = n.checked_sub(1)
            && self.txs.get(i).is_some_and(|t| t.id == tx)
        {
            return Some(i);
        }
        if self.foreign.is_empty() {
            return None;
        }
        self.foreign.get(&tx).map(|&i| i as usize)
    }

    fn key_hash(&self, key: &BuyerKey) -> u64 {
        self.by_name_hasher.hash_one(key)
    }

    /// Who transaction `i`'s buyer is.
    fn key_of(&self, i: u32) -> BuyerKey {
        match self.accounts.get(&i) {
            Some(account) => BuyerKey::Account(account.clone()),
            None => self.txs[i as usize].name.key(),
        }
    }

    /// The latest transaction of the buyer `key`. A candidate's key is
    /// recomputed only when its hash matches (a real rejoin, nearly always).
    fn latest_of_key(&self, key: &BuyerKey) -> Option<&Tx> {
        let txs = &self.txs;
        let hash = self.key_hash(key);
        self.by_name
            .find(hash, |&i| {
                txs[i as usize].key_hash == hash && self.key_of(i) == *key
            })
            .map(|&i| &txs[i as usize])
    }

    fn latest_of(&self, name: &BuyerName) -> Option<&Tx> {
        self.latest_of_key(&name.key())
    }

    /// The generator's id with its last four bytes replaced by the new
    /// transaction's index plus one: unique within the sale by construction.
    fn fresh_id(&mut self, now: Timestamp) -> TxId {
        let number = (self.txs.len() as u32).wrapping_add(1).to_be_bytes();
        loop {
            let mut bytes = self.ids.next_id(now).bytes();
            bytes[8..].copy_from_slice(&number);
            let id = TxId(ObjectId::from_bytes(bytes));
            if !self.foreign.contains_key(&id) {
                return id;
            }
        }
    }

    /// Moves time forward (never back) and does what is due.
    fn advance(&mut self, now: Timestamp) -> Timestamp {
        let now = now.max(self.now);
        self.now = now;
        if !self.started && !self.ended && now >= self.config.starts_at {
            if self.config.prequeue_opens_at.is_some()
                && self.config.prequeue_order == PrequeueOrder::Shuffle
            {
                let seed = self.ids.draw_seed();
                self.emit(now, EventKind::Drawn { seed });
            }
            self.emit(now, EventKind::Started);
        }
        if !self.ended && now >= self.config.ends_at {
            self.emit(now, EventKind::Ended);
        }
        while let Some(&i) = self.deadlines.front() {
            let t = &self.txs[i as usize];
            if t.key > now.as_millis() {
                break;
            }
            let (tx, buyer) = (t.id, t.name.clone());
            self.emit(now, EventKind::Expired { tx, buyer });
        }
        self.settle(now);
        now
    }

    /// Restores invariants 2 and 6 after any change: fills free slots from
    /// the waiting queue, or lets every waiting buyer go when the sale sold
    /// out or ended.
    fn settle(&mut self, now: Timestamp) {
        let reason = if self.sold >= self.config.quantity {
            Some(DropReason::SoldOut)
        } else if self.ended {
            Some(DropReason::SaleEnded)
        } else {
            None
        };
        if let Some(reason) = reason.filter(|_| self.prequeued > 0) {
            let live: Vec<u32> = self
                .prequeue
                .iter()
                .copied()
                .filter(|&i| self.txs[i as usize].state == TxState::Waiting)
                .collect();
            for i in live {
                let t = &self.txs[i as usize];
                let (tx, buyer) = (t.id, t.name.clone());
                self.emit(now, EventKind::Dropped { tx, buyer, reason });
            }
        }
        while let Some(&i) = self.queue.front() {
            if reason.is_none() && self.free_slots() == 0 {
                break;
            }
            let t = &self.txs[i as usize];
            let (tx, buyer) = (t.id, t.name.clone());
            let kind = match reason {
                Some(reason) => EventKind::Dropped { tx, buyer, reason },
                None => EventKind::Promoted {
                    tx,
                    buyer,
                    deadline: now.saturating_add(self.config.payment_timeout),
                },
            };
            self.emit(now, kind);
        }
    }

    fn emit(&mut self, at: Timestamp, kind: EventKind) {
        let event = Event {
            sale: self.config.id,
            at,
            kind,
        };
        let applied = self.apply(&event);
        debug_assert_eq!(applied, Ok(()), "engine emitted an event it cannot apply");
        // The queue's exit rate: promotions, not buyers let straight in.
        if matches!(event.kind, EventKind::Promoted { .. }) {
            self.rate.record(at);
        }
        self.events.push(event);
    }

    /// The only place state changes. Commands reach it through `emit`,
    /// replays directly.
    fn apply(&mut self, event: &Event) -> Result<(), &'static str> {
        if event.at < self.now {
            return Err("time went backwards");
        }
        self.now = event.at;
        match &event.kind {
            EventKind::Opened { .. } => return Err("sale opened twice"),
            EventKind::Started => {
                self.started = true;
                if self.config.prequeue_opens_at.is_some() {
                    self.joined_before_start = self.txs.len() as u32;
                }
                // A FIFO pre-queue (a drawn one is empty by now).
                let order: Vec<usize> = (0..self.prequeued as usize).collect();
                self.enqueue_prequeue(&order);
            }
            EventKind::Drawn { seed } => {
                self.seed = Some(*seed);
                self.enqueue_prequeue(&draw_order(*seed, self.prequeued as usize));
            }
            EventKind::Ended => self.ended = true,
            EventKind::Paused => self.paused = true,
            EventKind::Resumed => self.paused = false,
            EventKind::JoiningClosed => self.joining_closed = true,
            EventKind::JoiningOpened => self.joining_closed = false,
            EventKind::SlotsLimited { max_payment_slots } => {
                if *max_payment_slots == Some(0) {
                    return Err("a slot limit of zero");
                }
                self.config.max_payment_slots = *max_payment_slots;
            }
            EventKind::AdmissionsLimited {
                admissions_per_minute,
                level,
            } => {
                if *admissions_per_minute == Some(0) {
                    return Err("an admission rate of zero");
                }
                self.config.admissions_per_minute = *admissions_per_minute;
                self.bucket = admissions_per_minute.map(|r| {
                    let mut bucket = Bucket::full(r, event.at);
                    bucket.level = level.map_or(bucket.level, |l| l.min(bucket.level));
                    bucket
                });
            }
            EventKind::Restocked { quantity } => {
                if *quantity < (self.sold + self.slots).max(1) {
                    return Err("restocked below what is sold and held");
                }
                self.config.quantity = *quantity;
            }
            EventKind::Rescheduled { ends_at } => {
                if *ends_at <= self.config.starts_at {
                    return Err("rescheduled to end before the start");
                }
                self.config.ends_at = *ends_at;
            }
            EventKind::SoldOut | EventKind::Delivered { .. } => {}
            EventKind::RefundDue { tx, .. } => {
                let i = self.index(*tx).ok_or("unknown transaction")?;
                self.refunds.insert(i as u32);
            }
            EventKind::Joined {
                tx,
                buyer,
                deadline,
                account,
            } => {
                let i = self.next_index(*tx)?;
                let buyer_key = match self.joining.take() {
                    Some(key) => key,
                    None => joined_key(buyer, account.as_deref())?,
                };
                let key = match deadline {
                    Some(deadline) => {
                        self.slots += 1;
                        self.deadlines.push_back(i);
                        self.take_admission(event.at);
                        deadline.as_millis()
                    }
                    None if !self.started => {
                        self.waiting += 1;
                        self.prequeued += 1;
                        self.prequeue.push(i);
                        0
                    }
                    None => {
                        self.waiting += 1;
                        self.queue.push_back(i);
                        self.positions.push() as u64
                    }
                };
                let (key_hash, joins) = self.remember(buyer_key, i);
                if let Some(account) = account {
                    self.accounts.insert(i, CompactString::new(account));
                }
                let joined = self.since_opened(event.at);
                self.txs.push(Tx {
                    id: *tx,
                    name: buyer.clone(),
                    key_hash,
                    joins,
                    joined,
                    state: if deadline.is_some() {
                        TxState::Payment
                    } else {
                        TxState::Waiting
                    },
                    key,
                });
            }
            EventKind::Imported { tx, buyer } => {
                if self.sold + self.slots >= self.config.quantity {
                    return Err("imported a sale beyond the stock");
                }
                let i = self.next_index(*tx)?;
                self.sold += 1;
                let (key_hash, joins) = self.remember(buyer.key(), i);
                let joined = self.since_opened(event.at);
                self.txs.push(Tx {
                    id: *tx,
                    name: buyer.clone(),
                    key_hash,
                    joins,
                    joined,
                    state: TxState::Paid,
                    // Before the start, it is no part of the draw.
                    key: if self.started { 0 } else { LEFT_PREQUEUE },
                });
            }
            EventKind::Promoted { tx, deadline, .. } => {
                let i = self.live(*tx, TxState::Waiting)?;
                self.leave_queue(i);
                self.slots += 1;
                self.deadlines.push_back(i as u32);
                self.take_admission(event.at);
                let t = &mut self.txs[i];
                t.state = TxState::Payment;
                t.key = deadline.as_millis();
            }
            EventKind::Paid { tx, .. } => {
                let i = self.live(*tx, TxState::Payment)?;
                self.sold += 1;
                self.release_slot(i, TxState::Paid);
            }
            EventKind::Expired { tx, .. } => {
                let i = self.live(*tx, TxState::Payment)?;
                self.release_slot(i, TxState::Expired);
            }
            EventKind::Left { tx, .. } => {
                let i = self.index(*tx).ok_or("unknown transaction")?;
                match self.txs[i].state {
                    TxState::Payment => self.release_slot(i, TxState::Left),
                    TxState::Waiting => {
                        self.leave_queue(i);
                        self.txs[i].state = TxState::Left;
                    }
                    _ => return Err("left a transaction that was not live"),
                }
            }
            EventKind::Dropped { tx, reason, .. } => {
                let i = self.live(*tx, TxState::Waiting)?;
                self.leave_queue(i);
                self.txs[i].state = match reason {
                    DropReason::SoldOut => TxState::RejectedSoldOut,
                    DropReason::SaleEnded => TxState::RejectedSaleEnded,
                };
            }
        }
        Ok(())
    }

    /// The business rules a journal from elsewhere must keep, which the
    /// engine's own commands keep by construction: no slot or import without
    /// free stock, one live entry per buyer. Checked on replay and import.
    fn admissible(&self, event: &Event) -> Result<(), &'static str> {
        let takes_slot = match &event.kind {
            EventKind::Imported { buyer, .. } => {
                if self
                    .latest_of(buyer)
                    .is_some_and(|t| t.state.blocks_rejoin())
                {
                    return Err("buyer joined twice");
                }
                if self.available() == 0 {
                    return Err("imported a sale beyond the stock");
                }
                false
            }
            EventKind::Joined {
                buyer,
                deadline,
                account,
                ..
            } => {
                let key = joined_key(buyer, account.as_deref())?;
                if self
                    .latest_of_key(&key)
                    .is_some_and(|t| t.state.blocks_rejoin())
                {
                    return Err("buyer joined twice");
                }
                if !self.started && self.config.prequeue_opens_at.is_none() {
                    return Err("joined before the start without a pre-queue");
                }
                deadline.is_some()
            }
            EventKind::Promoted { .. } => true,
            EventKind::Drawn { .. } => {
                if self.started || self.seed.is_some() || self.config.prequeue_opens_at.is_none() {
                    return Err("a draw out of place");
                }
                false
            }
            _ => false,
        };
        if takes_slot && self.free_slots_at(event.at) == 0 {
            return Err("payment slot without free stock");
        }
        Ok(())
    }

    /// The index the next transaction gets, if `tx` may have it; an id
    /// that does not carry that index is remembered as foreign.
    fn next_index(&mut self, tx: TxId) -> Result<u32, &'static str> {
        let i = u32::try_from(self.txs.len())
            .ok()
            .filter(|&i| i < u32::MAX)
            .ok_or("too many transactions")?;
        if self.index(tx).is_some() {
            return Err("transaction id used twice");
        }
        if tx.bytes()[8..] != (i + 1).to_be_bytes() {
            self.foreign.insert(tx, i);
        }
        Ok(i)
    }

    /// Points `buyer`'s name at transaction `i`, its latest.
    /// Makes `i` the latest transaction of the buyer `key`; returns the
    /// key's hash and how many times the buyer has joined, `i` included.
    fn remember(&mut self, key: BuyerKey, i: u32) -> (u64, u32) {
        let hash = self.key_hash(&key);
        let (txs, accounts) = (&self.txs, &self.accounts);
        let key_of = |j: u32| match accounts.get(&j) {
            Some(account) => BuyerKey::Account(account.clone()),
            None => txs[j as usize].name.key(),
        };
        let joins = match self.by_name.entry(
            hash,
            |&j| txs[j as usize].key_hash == hash && key_of(j) == key,
            |&j| txs[j as usize].key_hash,
        ) {
            hashbrown::hash_table::Entry::Occupied(mut e) => {
                let joins = txs[*e.get() as usize].joins.saturating_add(1);
                *e.get_mut() = i;
                joins
            }
            hashbrown::hash_table::Entry::Vacant(e) => {
                e.insert(i);
                1
            }
        };
        (hash, joins)
    }

    fn live(&self, tx: TxId, state: TxState) -> Result<usize, &'static str> {
        let i = self.index(tx).ok_or("unknown transaction")?;
        if self.txs[i].state != state {
            return Err("transaction is not in the expected state");
        }
        Ok(i)
    }

    /// Takes waiting transaction `i` out of the queue's counts; the queue
    /// entry itself is dropped lazily once it reaches the front.
    fn leave_queue(&mut self, i: usize) {
        self.waiting -= 1;
        if self.txs[i].key == 0 {
            // Pre-queued: out of the draw (`prequeue` is tidied there).
            self.prequeued -= 1;
            self.txs[i].key = LEFT_PREQUEUE;
            self.txs[i].state = TxState::Left;
            return;
        }
        self.positions.clear(self.txs[i].key as usize);
        // Mark it no longer waiting before tidying the front.
        self.txs[i].state = TxState::Left;
        while let Some(&j) = self.queue.front() {
            if self.txs[j as usize].state == TxState::Waiting {
                break;
            }
            self.queue.pop_front();
        }
    }

    /// Moves the pre-queue's live buyers to the queue: the `k`-th served
    /// is the `order[k]`-th of them in join order.
    fn enqueue_prequeue(&mut self, order: &[usize]) {
        let live: Vec<u32> = std::mem::take(&mut self.prequeue)
            .into_iter()
            .filter(|&i| self.txs[i as usize].state == TxState::Waiting)
            .collect();
        debug_assert_eq!(order.len(), live.len());
        for &i in order.iter().filter_map(|&k| live.get(k)) {
            self.txs[i as usize].key = self.positions.push() as u64;
            self.queue.push_back(i);
        }
        self.prequeued = 0;
    }

    fn since_opened(&self, at: Timestamp) -> u32 {
        u32::try_from(at.as_millis().saturating_sub(self.opened.as_millis())).unwrap_or(u32::MAX)
    }

    /// A slot was granted at `at`: one admission from the bucket.
    fn take_admission(&mut self, at: Timestamp) {
        if let Some(bucket) = &mut self.bucket {
            bucket.take(at);
        }
    }

    /// Ends payment slot `i` in `state`; stale deadline entries at the
    /// front are dropped so the front is always a live slot.
    fn release_slot(&mut self, i: usize, state: TxState) {
        self.slots -= 1;
        self.txs[i].state = state;
        // Both ends stay live: the front is the next to expire, the back
        // bounds a waiting buyer's turn (`turn_by`).
        let live = |txs: &[Tx], j: &u32| txs[*j as usize].state == TxState::Payment;
        while self.deadlines.front().is_some_and(|j| !live(&self.txs, j)) {
            self.deadlines.pop_front();
        }
        while self.deadlines.back().is_some_and(|j| !live(&self.txs, j)) {
            self.deadlines.pop_back();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// The measured rate is the promotions in the window ending at
        /// `now` (the last 60 seconds, or since the first promotion),
        /// counted by hand.
        #[test]
        fn the_promotion_rate_counts_the_window(
            steps in prop::collection::vec((0u64..5_000, 0u8..4), 1..200),
            probe in 0u64..90_000,
        ) {
            let mut rate = GrantRate::default();
            let (mut t, mut at) = (1_000_000u64, Vec::new());
            for (dt, n) in steps {
                t += dt;
                for _ in 0..n {
                    rate.record(Timestamp::from_millis(t));
                    at.push(t / 1000);
                }
            }
            let now = t + probe;
            let second = now / 1000;
            let in_window = at.iter().filter(|&&s| s + RATE_WINDOW_SECS > second).count() as u64;
            let expected = at.first().filter(|_| in_window > 0).map(|&first| {
                in_window as f64 / (second - first + 1).min(RATE_WINDOW_SECS) as f64
            });
            prop_assert_eq!(rate.per_second(Timestamp::from_millis(now)), expected);
        }
    }
}
