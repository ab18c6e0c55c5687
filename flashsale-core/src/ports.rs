//! Ports: what the engine's driver needs from the world — a [`Clock`], a
//! [`Storage`] journal and an [`EventSink`] — and in-memory implementations.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use tokio::sync::broadcast;

use crate::engine::Event;
use crate::id::SaleId;
use crate::time::Timestamp;

/// Tells the time and waits for it. Only drivers read it; engines are given
/// `now`.
#[async_trait]
pub trait Clock: Send + Sync + 'static {
    /// The current time.
    fn now(&self) -> Timestamp;
    /// Returns once [`Clock::now`] has reached `deadline`.
    async fn sleep_until(&self, deadline: Timestamp);
}

/// The system's wall clock, with tokio's timer for waiting.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

#[async_trait]
impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        std::time::SystemTime::now().into()
    }

    async fn sleep_until(&self, deadline: Timestamp) {
        // Re-check after waking: the wall clock may have been adjusted.
        loop {
            let now = self.now();
            if now >= deadline {
                return;
            }
            tokio::time::sleep(now.until(deadline)).await;
        }
    }
}

/// A storage failure. The service retries appends until they succeed, so a
/// failure delays answers but never loses or reorders events.
#[derive(Debug, thiserror::Error)]
#[error("storage: {0}")]
pub struct StorageError(pub Box<dyn std::error::Error + Send + Sync>);

impl StorageError {
    /// An error with a message.
    pub fn msg(message: impl Into<String>) -> Self {
        StorageError(message.into().into())
    }

    /// Another writer has taken the sale's journal: this writer must stop
    /// (see [`Fenced`]).
    pub fn fenced(message: impl Into<String>) -> Self {
        StorageError(Box::new(Fenced(message.into())))
    }

    /// Whether this is [`StorageError::fenced`]: retrying cannot help.
    pub fn is_fenced(&self) -> bool {
        self.0.downcast_ref::<Fenced>().is_some()
    }
}

/// Why an append was refused for good: another writer has taken the
/// sale's journal (a second service started for the same sale, or a
/// standby took over). The service stops the sale at once: what this
/// writer decided after the other took over is not acknowledged, and
/// never will be.
#[derive(Debug, thiserror::Error)]
#[error("fenced: {0}")]
pub struct Fenced(pub String);

/// An append-only journal of engine events per sale. A sale's state is the
/// fold of its journal ([`crate::Engine::replay`]).
///
/// The rules, method by method:
/// - `append`: all-or-nothing, in order after every earlier append of the
///   sale, and it returns `Ok` only once the events would survive what the
///   implementation promises to survive (a process crash, a disk's power
///   loss, a broker's restart). A failed append may be retried with the
///   same events; it must not then appear twice.
/// - **One writer per sale**: callers serialize a sale's appends (one task
///   per sale, one process per journal); implementations may rely on it and
///   need not detect a second writer unless they say so. One that does
///   (a shared journal such as Kafka's) refuses the older writer's appends
///   with [`StorageError::fenced`], which the service takes as final.
/// - `read`: the whole journal of every append that returned `Ok`, in
///   order.
///
/// The testkit's
/// [`storage_conformance`](crate::testkit::storage_conformance) checks the
/// observable part.
#[async_trait]
pub trait Storage: Send + Sync + 'static {
    /// Appends `events` (all of one sale, in order) to `sale`'s journal.
    async fn append(&self, sale: SaleId, events: &[Event]) -> Result<(), StorageError>;
    /// `sale`'s whole journal, oldest first; empty for an unknown sale.
    async fn read(&self, sale: SaleId) -> Result<Vec<Event>, StorageError>;
    /// Every sale with a journal.
    async fn sales(&self) -> Result<Vec<SaleId>, StorageError>;
    /// Whether appends can succeed now (the disk is there, the broker
    /// answers), for readiness probes: a cheap check, bounded in time. The
    /// default says yes.
    async fn check(&self) -> Result<(), StorageError> {
        Ok(())
    }
    /// Replaces the first `covers` events of `sale`'s journal with
    /// `snapshot` ([`Engine::snapshot`](crate::Engine::snapshot) of the
    /// engine those events replay into): [`Storage::read`] then returns the
    /// snapshot followed by the events after the first `covers`, which
    /// replays into the same engine. All or nothing; appends may go on
    /// meanwhile. Returns whether the journal was shortened: the default
    /// keeps the whole journal (as valid, only longer) and says no.
    async fn snapshot(
        &self,
        sale: SaleId,
        covers: u64,
        snapshot: &[Event],
    ) -> Result<bool, StorageError> {
        let _ = (sale, covers, snapshot);
        Ok(false)
    }
    /// Tells whoever watches the journal that its writer is alive though
    /// it has nothing to append (a standby takes over a journal that falls
    /// silent); called when a sale has been idle for
    /// [`ServiceConfig::keep_alive`](crate::service::ServiceConfig). May
    /// find that the writer is fenced. The default does nothing.
    async fn keep_alive(&self, sale: SaleId) -> Result<(), StorageError> {
        let _ = sale;
        Ok(())
    }
}

/// A journal in memory: survives a restart of the service within the same
/// process (clones share it), not of the process.
#[derive(Debug, Clone, Default)]
pub struct MemoryStorage {
    journals: Arc<Mutex<BTreeMap<SaleId, Vec<Event>>>>,
}

impl MemoryStorage {
    /// An empty journal.
    pub fn new() -> Self {
        Self::default()
    }

    fn journals(&self) -> std::sync::MutexGuard<'_, BTreeMap<SaleId, Vec<Event>>> {
        // A panic while holding this lock cannot leave a half-done append
        // (extend_from_slice of clones), so the data is still good.
        self.journals.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[async_trait]
impl Storage for MemoryStorage {
    async fn append(&self, sale: SaleId, events: &[Event]) -> Result<(), StorageError> {
        if !events.is_empty() {
            self.journals()
                .entry(sale)
                .or_default()
                .extend_from_slice(events);
        }
        Ok(())
    }

    async fn read(&self, sale: SaleId) -> Result<Vec<Event>, StorageError> {
        Ok(self.journals().get(&sale).cloned().unwrap_or_default())
    }

    async fn sales(&self) -> Result<Vec<SaleId>, StorageError> {
        Ok(self.journals().keys().copied().collect())
    }

    /// Memory stays bounded by the sales' states, not their histories.
    async fn snapshot(
        &self,
        sale: SaleId,
        covers: u64,
        snapshot: &[Event],
    ) -> Result<bool, StorageError> {
        let mut journals = self.journals();
        let journal = journals.entry(sale).or_default();
        let covers = usize::try_from(covers)
            .ok()
            .filter(|&c| c <= journal.len())
            .ok_or_else(|| StorageError::msg("a snapshot beyond the journal's end"))?;
        journal.splice(..covers, snapshot.iter().cloned());
        Ok(true)
    }
}

/// A failure to hand events on.
#[derive(Debug, thiserror::Error)]
#[error("event sink: {0}")]
pub struct SinkError(pub Box<dyn std::error::Error + Send + Sync>);

impl SinkError {
    /// An error with a message.
    pub fn msg(message: impl Into<String>) -> Self {
        SinkError(message.into().into())
    }
}

/// Where events go once they are in the journal: an in-process broadcast,
/// Kafka, or several ([`FanOut`]). Called by one task per sale, in journal
/// order; a failed batch is offered again, so an implementation that
/// delivers part of a batch may deliver those events twice (at least once).
#[async_trait]
pub trait EventSink<E = Event>: Send + Sync + 'static
where
    E: Send + Sync + 'static,
{
    /// Hands `events` on, in order.
    async fn publish(&self, events: &[E]) -> Result<(), SinkError>;

    /// Whether what this sink was given outlives this process (a Kafka
    /// topic does; an in-process broadcast does not). For such a sink the
    /// service journals how far it has delivered ([`EventKind::Delivered`]
    /// markers) and a restart offers it only what came after, through
    /// [`EventSink::resume`]; any other sink is offered every sale's
    /// opening and payments again. Default: no.
    ///
    /// [`EventKind::Delivered`]: crate::EventKind::Delivered
    fn remembers(&self) -> bool {
        false
    }

    /// [`EventSink::publish`], and where the sink is now, in its own terms
    /// (journaled with the next [`Delivered`](crate::EventKind::Delivered)
    /// marker and given back to [`EventSink::resume`]). Default: publishes,
    /// no position.
    async fn publish_receipted(&self, events: &[E]) -> Result<Option<String>, SinkError> {
        self.publish(events).await.map(|()| None)
    }

    /// After a restart: of `pending` (a sale's journaled payments that may
    /// or may not have been delivered before a crash, in order), those
    /// that were not, to be published again. `since` is the position of
    /// the sale's last journaled marker (`None`: from the start). Default:
    /// all of them (at least once).
    async fn resume(
        &self,
        sale: SaleId,
        pending: Vec<E>,
        since: Option<&str>,
    ) -> Result<Vec<E>, SinkError> {
        let _ = (sale, since);
        Ok(pending)
    }
}

/// An in-process broadcast (tokio's): every subscriber sees every event
/// published after it subscribed. Never blocks; a subscriber that falls more
/// than `capacity` events behind misses the oldest and is told so by tokio.
#[derive(Debug, Clone)]
pub struct BroadcastSink<E = Event> {
    sender: broadcast::Sender<E>,
}

impl<E: Clone> BroadcastSink<E> {
    /// A broadcast keeping up to `capacity` events for slow subscribers.
    pub fn new(capacity: usize) -> Self {
        BroadcastSink {
            sender: broadcast::channel(capacity).0,
        }
    }

    /// A receiver of every event published from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<E> {
        self.sender.subscribe()
    }
}

#[async_trait]
impl<E: Clone + Send + Sync + 'static> EventSink<E> for BroadcastSink<E> {
    async fn publish(&self, events: &[E]) -> Result<(), SinkError> {
        // No subscriber is not an error: nobody is listening (yet). Nothing
        // is copied for nobody (the all-in-one server's engine events have
        // no subscriber of their own: every buy would pay for a clone).
        if self.sender.receiver_count() == 0 {
            return Ok(());
        }
        for e in events {
            let _ = self.sender.send(e.clone());
        }
        Ok(())
    }
}

/// Publishes to several sinks in turn; fails if any fails.
pub struct FanOut<E = Event>(pub Vec<Arc<dyn EventSink<E>>>);

impl<E> std::fmt::Debug for FanOut<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "FanOut({} sinks)", self.0.len())
    }
}

#[async_trait]
impl<E: Send + Sync + 'static> EventSink<E> for FanOut<E> {
    async fn publish(&self, events: &[E]) -> Result<(), SinkError> {
        for sink in &self.0 {
            sink.publish(events).await?;
        }
        Ok(())
    }
}
