//! flashsale-core: a deterministic flash-sale engine — no I/O, no clock.
//!
//! A limited stock goes on sale at a set time to a crowd that arrives all at
//! once. The first buyers get a payment slot with a deadline; the rest wait
//! in a fair FIFO queue and are promoted the moment a slot frees up (a
//! payment when slots are capped, an expired slot, a buyer who left). Nobody
//! is sold stock that is not there, and nobody waits for stock that is gone.
//!
//! Everything here is a pure state machine in the style of `quinn-proto`:
//! calls are timestamped inputs, results and [`Event`]s are outputs, and
//! timers are outputs too ([`Engine::poll_timeout`]). The caller owns the
//! clock, the storage and the network.
//!
//! ```text
//!   buy / paid / leave (now, …) ──►┌──────────┐──► Result<Admission | PaidOutcome | …>
//!   handle_timeout(now) ──────────►│  Engine  │──► drain_events(): Event journal
//!                                  │ (1 sale) │──► poll_timeout(): next deadline
//!                                  └──────────┘
//!   paid / switch messages ───────►┌───────────┐──► Notice (sale_update, queue_switch,
//!   handle_timeout(now) ──────────►│ Catalogue │      sale_started, sale_ended)
//!                                  └───────────┘──► poll_timeout()
//! ```
//!
//! The `service` feature (on by default) adds the ports — [`Clock`],
//! [`Storage`], [`EventSink`] — and [`Service`], which runs one single-writer
//! task per sale with group commit: apply a batch of commands, append its
//! events to storage once, publish, reply.
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
//! - [`id`] — [`SaleId`], [`TxId`] and the injectable [`IdGenerator`].
//! - [`name`] — [`BuyerName`] validation.
//! - [`time`] — [`Timestamp`], milliseconds since the epoch.
//! - `ports` (feature `service`) — [`Clock`], [`Storage`], [`EventSink`] and
//!   their in-memory implementations.
//! - `service` (feature `service`) — [`Service`], the single-writer driver.
//! - `testkit` (feature `testkit`) — a manual clock and conformance suites
//!   for `Storage` and `EventSink` implementations.

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
    Catalogue, EligibilityError, NewSale, Notice, Sale, SaleError, TxMessage, TxMessageKind,
};
pub use engine::{
    Admission, BuyError, ConfigError, DropReason, Engine, Event, EventKind, ImportError,
    JOURNAL_FORMAT, LeaveError, PaidError, PaidOutcome, Place, ReplayError, SaleConfig, Status,
    StatusError, TxState,
};
pub use id::{IdGenerator, InvalidId, ObjectIdGenerator, SaleId, SequentialIds, TxId};
pub use name::{BuyerName, NameError};
#[cfg(feature = "service")]
pub use ports::{
    BroadcastSink, Clock, EventSink, MemoryStorage, SinkError, Storage, StorageError, SystemClock,
};
#[cfg(feature = "service")]
pub use service::{CallError, CatalogueService, Service};
pub use time::Timestamp;
