//! flashsale-core: a deterministic flash-sale engine — no I/O, no clock —
//! and the application layer that drives it.
//!
//! A limited stock goes on sale at a set time to a crowd that arrives all at
//! once. The first buyers get a payment slot with a deadline; the rest wait
//! in a fair FIFO queue and are promoted the moment a slot frees up (a
//! payment when slots are capped, an expired slot, a buyer who left). Nobody
//! is sold stock that is not there, and nobody waits for stock that is gone.
//!
//! # The model
//!
//! - An [`Engine`] is one sale: a pure state machine in the style of
//!   `quinn-proto`. Calls are timestamped inputs (`buy`, `paid`, `leave`,
//!   `handle_timeout`, each with `now`); results and [`Event`]s are
//!   outputs; timers are outputs too ([`Engine::poll_timeout`]). Every state
//!   change is an event, applied by one function, so replaying the journal
//!   of events rebuilds the same engine ([`Engine::replay`]).
//! - The [`Catalogue`] is the sales list (the reference's "Backend"):
//!   sales, buyers who paid, eligibility. It hears of engines' payments and
//!   promotions as [`TxMessage`]s (the reference's Kafka payload), applies
//!   each payment once however often it is delivered, and announces what
//!   browsers should hear as [`Notice`]s.
//! - The `service` feature (on by default) adds the ports — [`Clock`],
//!   [`Storage`], [`EventSink`] — and the application layer: [`Service`]
//!   runs one single-writer task per sale with group commit and finds a
//!   transaction's sale from its id; [`CatalogueService`] owns the catalogue
//!   the same way and creates a sale and its engine atomically.
//!
//! ```text
//!             HTTP / Kafka adapters (translate only)
//!                 │                         │
//!   buy/paid/leave/status             create sale, queries, paid/switch
//!                 ▼                         ▼
//!   ┌─────────────────────────┐   ┌────────────────────────┐
//!   │ Service                 │   │ CatalogueService       │
//!   │ one task per sale:      │   │ one task:              │──► Notice broadcast
//!   │ batch → Engine → events │   │ Catalogue + its timers │    (sale_update, …)
//!   │ → Storage.append (once) │   └────────────────────────┘
//!   │ → reply → EventSink     │──► CatalogueFeed (in process) or Kafka
//!   └─────────────────────────┘
//!        ▲ Clock (now, sleep_until)   ▲ Storage (journal; replay at open)
//! ```
//!
//! # What a driver must do
//!
//! [`Service`] does all of this; whoever drives an [`Engine`] by hand must
//! too, in this order, after **every** call (the single-mutation rule):
//!
//! 1. Read `now` from a [`Clock`] once per batch of calls; the engine never
//!    reads a clock (a call with an older `now` counts as the engine's
//!    latest time).
//! 2. [`Engine::drain_events`] — also after a call that returned an error: a
//!    refused `paid` (the slot expired, or the buyer left) still emits
//!    [`EventKind::RefundDue`], and money must go back.
//! 3. Append the events to [`Storage`] and wait for it **before** answering
//!    anyone: an answer that depends on an event the journal does not hold
//!    is a promise a crash breaks.
//! 4. Publish them, in journal order, at least once (an [`EventSink`]).
//! 5. Re-read [`Engine::poll_timeout`] and call [`Engine::handle_timeout`]
//!    when it comes (early or twice is harmless).
//!
//! One writer per sale, always: one task owns an engine, and one process
//! owns a sale's journal. [`Storage`] implementations may assume appends to
//! a sale are serialized. One that a second process can reach (Kafka) fences
//! the older writer: its appends fail with [`StorageError::fenced`], and
//! the service stops that sale at once ([`Service::fenced`]). A journal a
//! standby watches wants [`service::ServiceConfig::keep_alive`]: an idle
//! sale then calls [`Storage::keep_alive`] so that silence means death.
//!
//! # When things fail
//!
//! - **Errors are refusals or the world**, never bugs: an engine's typed
//!   errors ([`BuyError`], [`PaidError`], …) are its own refusals; a
//!   [`Service`] call answers [`CallError`], which adds the service's own
//!   (unknown sale, unavailable). Bad input is an error, never a panic.
//! - **A panic is a bug**: a broken invariant. Library code has no
//!   `unwrap`; the few indexings into the engine's tables rely on indices
//!   the engine itself keeps (every one points at a transaction), and a
//!   poisoned lock is recovered, its data being whole at every await.
//! - **Outages do not hang callers**: a command that cannot be committed
//!   within [`service::ServiceConfig::commit_timeout`] answers
//!   [`CallError::Unavailable`] (its outcome unknown: it may still be
//!   committed), [`Service::ready`] says whether the service can commit now,
//!   and the publisher's queue is bounded (when the sink falls that far
//!   behind, the sale waits for it).
//!
//! # Journal compatibility
//!
//! A serialized [`Event`] is a persistent format: journals outlive the
//! process that wrote them. Within a format version ([`JOURNAL_FORMAT`],
//! recorded in each journal's [`EventKind::Opened`]) only additive changes
//! are made: a new optional field with a default, read as before from old
//! journals. Anything an older engine would misread — a new event kind, a
//! field whose meaning changes, a field removed or renamed — needs a new
//! version; an engine refuses to replay a journal of a newer version
//! ([`ReplayError::UnsupportedFormat`]) rather than guess, and keeps reading
//! every older one.
//!
//! Format 2 lets `Joined` and `Paid` events carry the buyer's verified
//! account, which makes the buyer that account. Format 3 (now) adds the
//! service's [`EventKind::Delivered`] markers (how far a sink that remembers
//! has got), which replay passes over; an older version fails to read them
//! rather than misread them.
//!
//! The version is the one the sale was opened with: a journal opened by an
//! older version and continued by this one says the older version, and is
//! replayed as before.
//!
//! Replay also recomputes what is derived from the journal, so those
//! functions are part of the format: who is the same buyer is
//! [`BuyerKey`], pinned to the Unicode data (18.0) of the locked
//! `unicode-normalization`, `unicode-security` and `caseless` crates —
//! upgrading them, or changing the key, is a format change; and a
//! transaction id's sale prefix is [`id::sale_prefix`].
//!
//! # Driving an engine by hand
//!
//! ```
//! use flashsale_core::{Engine, EventKind, Place, SaleConfig, SaleId, SequentialIds, Timestamp};
//! use std::time::Duration;
//!
//! let start = Timestamp::from_millis(1_700_000_000_000);
//! let mut config = SaleConfig::new(SaleId::from(bson::oid::ObjectId::new()), 1, start,
//!                                  start.saturating_add(Duration::from_secs(3600)));
//! config.payment_timeout = Duration::from_secs(60);
//! let mut engine = Engine::new(start, config, Box::new(SequentialIds::default())).unwrap();
//! let mut journal = Vec::new();
//!
//! let ana = engine.buy(start, "ana").unwrap();   // gets the only slot
//! let bob = engine.buy(start, "bob").unwrap();   // waits
//! assert_eq!(bob.place, Place::Waiting { position: 1 });
//!
//! // The run loop: sleep until the engine's next timer, then let it act.
//! let mut now = start;
//! while let Some(due) = engine.poll_timeout() {
//!     if engine.status(bob.tx).unwrap().deadline.is_some() { break }
//!     now = due;                       // a real driver sleeps until `due`
//!     engine.handle_timeout(now);      // ana's slot expires; bob is promoted
//!     journal.extend(engine.drain_events());
//! }
//! assert!(journal.iter().any(|e| matches!(&e.kind, EventKind::Promoted { tx, .. } if *tx == bob.tx)));
//! engine.paid(now, bob.tx).unwrap();
//! assert_eq!(engine.sold(), 1);
//! ```
//!
//! # Layout
//!
//! - [`engine`] — one sale: [`Engine`], its [`Event`]s, errors and statuses.
//! - [`catalogue`] — the sales list, buyers, eligibility, applying paid
//!   transactions exactly once: [`Catalogue`].
//! - [`id`] — [`SaleId`], [`TxId`], the injectable [`IdGenerator`] and the
//!   per-sale id prefix.
//! - [`name`] — [`BuyerName`] validation (strict for input, lenient for
//!   records of what already happened).
//! - [`sync`] — the rule for starting a sale's engine from what a backend
//!   knows.
//! - [`time`] — [`Timestamp`], milliseconds since the epoch.
//! - `ports` (feature `service`) — [`Clock`], [`Storage`], [`EventSink`] and
//!   their in-memory implementations.
//! - `service` (feature `service`) — [`Service`], [`CatalogueService`],
//!   [`CallError`]: the application layer.
//! - `testkit` (feature `testkit`) — a manual clock, the invariant checker,
//!   and conformance suites for `Storage` and `EventSink` implementations.

pub mod catalogue;
pub mod engine;
pub mod id;
pub mod name;
#[cfg(feature = "service")]
pub mod ports;
mod positions;
#[cfg(feature = "service")]
pub mod service;
pub mod sync;
#[cfg(feature = "testkit")]
pub mod testkit;
pub mod time;

pub use catalogue::{
    Catalogue, CatalogueState, EligibilityError, NewSale, Notice, Sale, SaleError, TxMessage,
    TxMessageKind,
};
pub use engine::{
    Admission, BuyError, ConfigError, Control, ControlError, DropReason, Engine, Event, EventKind,
    ImportError, JOURNAL_FORMAT, LeaveError, PaidError, PaidOutcome, Place, PrequeueOrder,
    ReplayError, SaleConfig, Status, StatusError, TxState, admission_burst, draw_order,
};
pub use id::{IdGenerator, InvalidId, ObjectIdGenerator, SaleId, SequentialIds, TxId};
pub use name::{BuyerKey, BuyerName, NameError};
#[cfg(feature = "service")]
pub use ports::{
    BroadcastSink, Clock, EventSink, MemoryStorage, SinkError, Storage, StorageError, SystemClock,
};
#[cfg(feature = "service")]
pub use service::{CallError, CatalogueService, SaleReport, Service};
pub use time::Timestamp;
