//! The application layer: [`Service`] runs many sales' engines, one
//! single-writer task per sale; [`CatalogueService`] owns the catalogue the
//! same way.
//!
//! A sale's task owns its [`Engine`]. It takes every command waiting in its
//! channel as one batch, applies them at one `now`, appends the batch's
//! events to [`Storage`] in one call (group commit), hands them to the
//! [`EventSink`] through a publisher task of its own (so a slow sink does
//! not stall the engine until the publisher's bounded queue fills), and
//! only then replies. Between batches it sleeps until the engine's
//! [`Engine::poll_timeout`] or the next command.
//!
//! A sale replayed at start offers its journal's payments to the sink
//! again: a payment journaled but not yet handed on when the process died
//! still reaches the catalogue, which applies each payment once.
//!
//! # Errors
//!
//! Every call answers `Result<T, CallError<E>>`: [`CallError::Refused`]
//! carries the engine's own refusal `E` (sold out, slot expired, …);
//! [`CallError::UnknownSale`] and [`CallError::Unavailable`] are the
//! service's (no such sale; the sale could not commit within
//! [`ServiceConfig::commit_timeout`], or is stopping). An `Unavailable`
//! command's outcome is unknown: it may still be committed later, so a
//! caller asks again (a buy that went through answers "already joined").
//!
//! # Finding a transaction's sale
//!
//! Each sale's transaction ids carry its [`sale_prefix`] in bytes 4..8
//! (the service wraps every engine's id generator in [`SalePrefixed`]), and
//! the service keeps a map from prefix to sales, so
//! [`Service::status_of`], [`Service::paid_tx`] and [`Service::leave_tx`]
//! ask one sale, whatever the number of sales. Ids not made here (imported
//! from the reference's backend, or replayed from a journal written by an
//! older version) are found the same way: at start each sale registers every
//! prefix its transactions carry.

mod catalogue;
mod measure;
mod sale_task;

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use hashbrown::HashMap;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

pub use catalogue::{BuyersPage, CatalogueError, CatalogueFeed, CatalogueService};

use crate::engine::{
    Admission, BuyError, ConfigError, Control, ControlError, Engine, Event, EventKind, LeaveError,
    PaidError, PaidOutcome, ReplayError, SaleConfig, Status, StatusError,
};
use crate::id::{
    IdGenerator, ObjectIdGenerator, SaleId, SalePrefixed, TxId, sale_prefix, tx_prefix,
};
use crate::ports::{
    BroadcastSink, Clock, EventSink, MemoryStorage, Storage, StorageError, SystemClock,
};
use crate::time::Timestamp;
use sale_task::{Command, Health, Reply, run_sale};

/// How many commands may queue for one sale before callers wait.
const QUEUE_DEPTH: usize = 16 * 1024;

/// Makes a new id generator for each engine.
pub type IdFactory = Arc<dyn Fn() -> Box<dyn IdGenerator> + Send + Sync>;

/// What a [`Service`] is built from.
#[derive(Clone)]
pub struct Ports {
    /// The time.
    pub clock: Arc<dyn Clock>,
    /// The journal.
    pub storage: Arc<dyn Storage>,
    /// Where committed events go.
    pub sink: Arc<dyn EventSink>,
    /// Id generators for the engines.
    pub ids: IdFactory,
}

impl Ports {
    /// The system clock, an in-memory journal, a broadcast sink of 4096
    /// events (subscribe through the returned handle) and random ObjectIds.
    pub fn in_memory() -> (Self, BroadcastSink) {
        let sink = BroadcastSink::new(4096);
        let ports = Ports {
            clock: Arc::new(SystemClock),
            storage: Arc::new(MemoryStorage::new()),
            sink: Arc::new(sink.clone()),
            ids: Arc::new(|| Box::new(ObjectIdGenerator::random())),
        };
        (ports, sink)
    }
}

impl std::fmt::Debug for Ports {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ports").finish_non_exhaustive()
    }
}

/// Why a service could not open or a sale could not be created.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServiceError {
    /// The journal could not be read or written.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// A sale's journal does not replay.
    #[error("sale {sale}: {source}")]
    Replay {
        /// The sale.
        sale: SaleId,
        /// What went wrong.
        source: ReplayError,
    },
    /// The sale's settings are invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A sale with this id is already running.
    #[error("sale {0} exists already")]
    DuplicateSale(SaleId),
}

/// Why a call on a sale was not answered with its result: the engine's own
/// refusal, or the service's (in the style of openraft's `RaftError<E>`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CallError<E> {
    /// The sale's engine refused, for its own reason.
    #[error(transparent)]
    Refused(E),
    /// No such sale runs here.
    #[error("sale not found")]
    UnknownSale,
    /// The sale could not commit within the commit timeout (its journal is
    /// failing), or it is stopping. The command may still take effect.
    #[error("sale service unavailable")]
    Unavailable,
}

/// A service's settings beyond its [`Ports`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ServiceConfig {
    /// How long a call waits for its command to be committed (journaled)
    /// before answering [`CallError::Unavailable`]. Read from the
    /// [`Clock`]. Default 10 s.
    pub commit_timeout: Duration,
    /// How many committed batches may wait for the [`EventSink`] per sale.
    /// When the queue is full the sale waits for the sink before it
    /// replies: a sink that is down stalls the sale (and calls answer
    /// `Unavailable` after the commit timeout) instead of filling memory.
    /// Default 1024.
    pub publish_queue: usize,
    /// When a sale has written nothing to its journal for this long, it
    /// calls [`Storage::keep_alive`]: a standby watching the journal takes
    /// a silent one for dead. Read from the [`Clock`]. Default: never.
    pub keep_alive: Option<Duration>,
    /// A sale whose journal has grown by this many events since its last
    /// snapshot, and is at least a fifth longer than its snapshot would be,
    /// replaces it by the snapshot ([`Engine::snapshot`],
    /// [`Storage::snapshot`]): disk and restart time follow the crowd, not
    /// the history. The sale waits while it is written — and with the disk
    /// journal, every sale does: 5.6 s for a 1M-buyer sale on the project's
    /// machine (BENCHMARKS.md), so choose a quiet moment. Default: `None`,
    /// never.
    pub snapshot_after: Option<u64>,
}

impl Default for ServiceConfig {
    fn default() -> Self {
        ServiceConfig {
            commit_timeout: Duration::from_secs(10),
            publish_queue: 1024,
            keep_alive: None,
            snapshot_after: None,
        }
    }
}

/// A sale's counters at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SaleStats {
    /// Units sold.
    pub sold: u64,
    /// Live payment slots.
    pub payment_slots: u64,
    /// Buyers waiting.
    pub waiting: u64,
    /// Units neither sold nor held.
    pub available: u64,
    /// Transactions ever made.
    pub transactions: u64,
}

/// Everything an operator sees of a running sale: its settings as they
/// are now, its counters, the operator's controls, the pre-queue's draw,
/// the queue's head, and what this process measured since it started the
/// sale (counts, recent times in queue).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct SaleReport {
    /// The settings as they are now (the operator may have changed them).
    pub config: SaleConfig,
    /// The counters.
    pub stats: SaleStats,
    /// The engine's time.
    pub now: Timestamp,
    /// Started and not ended.
    pub active: bool,
    /// Ended.
    pub ended: bool,
    /// Paused by the operator.
    pub paused: bool,
    /// Joining open.
    pub joining_open: bool,
    /// Buyers in the pre-queue, before the draw.
    pub prequeued: u64,
    /// The pre-queue draw's seed, once drawn (the audit).
    pub draw_seed: Option<u64>,
    /// Admissions the rate allows at once now, under a rate.
    pub admissions_available: Option<u64>,
    /// Waiting buyers promoted a second over the last minute, once measured.
    pub promotion_rate: Option<f64>,
    /// The next waiting buyers, in the order they will be served.
    pub queue_head: Vec<Status>,
    /// What this process measured since it started the sale.
    pub measured: Measured,
}

/// What a sale's task measured since it started the sale (a restart starts
/// again from zero: replay is not counted).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Measured {
    /// Buyers let in.
    pub joins: u64,
    /// Waiting buyers given a slot.
    pub promotions: u64,
    /// Payments.
    pub payments: u64,
    /// Slots expired unpaid.
    pub expiries: u64,
    /// Buyers who left.
    pub leaves: u64,
    /// Buys refused.
    pub refusals: u64,
    /// The median of the latest (up to 1,024) times in queue.
    pub time_in_queue_p50: Option<Duration>,
    /// Their 90th percentile.
    pub time_in_queue_p90: Option<Duration>,
}

/// How many waiting buyers a [`SaleReport`] lists.
pub const QUEUE_HEAD: usize = 10;

impl SaleReport {
    fn of(engine: &Engine, measures: &measure::Measures) -> Self {
        SaleReport {
            config: engine.config().clone(),
            stats: SaleStats::of(engine),
            now: engine.now(),
            active: engine.is_active(),
            ended: engine.has_ended(),
            paused: engine.is_paused(),
            joining_open: engine.is_joining_open(),
            prequeued: engine.prequeued(),
            draw_seed: engine.draw_seed(),
            admissions_available: engine.admissions_available(),
            promotion_rate: engine.promotion_rate(),
            queue_head: engine.queue_head(QUEUE_HEAD),
            measured: measures.measured(),
        }
    }
}

impl SaleStats {
    fn of(engine: &Engine) -> Self {
        SaleStats {
            sold: engine.sold(),
            payment_slots: engine.payment_slots(),
            waiting: engine.waiting(),
            available: engine.available(),
            transactions: engine.transaction_count() as u64,
        }
    }
}

/// The running sales: their task's channel, and which sales made ids with
/// which prefix.
#[derive(Default)]
struct Registry {
    senders: HashMap<SaleId, mpsc::Sender<Command>>,
    /// Usually one sale per prefix; more only on a hash collision or for
    /// ids imported from elsewhere.
    by_prefix: HashMap<[u8; 4], Vec<SaleId>>,
}

impl Registry {
    fn register_prefix(&mut self, prefix: [u8; 4], sale: SaleId) {
        let sales = self.by_prefix.entry(prefix).or_default();
        if !sales.contains(&sale) {
            sales.push(sale);
        }
    }
}

struct Inner {
    ports: Ports,
    config: ServiceConfig,
    registry: RwLock<Registry>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    health: Arc<Health>,
}

/// Runs sales. Cheap to clone; every clone drives the same sales.
///
/// # The driver's obligations, kept here
///
/// Whoever drives an [`Engine`] by hand must do what this type does:
/// 1. apply commands with one `now` per batch, read from the [`Clock`]
///    (never from the engine);
/// 2. after every call, [`Engine::drain_events`] and append them to
///    [`Storage`] **before** answering anyone — an answer that depends on
///    an event not yet journaled could be lost by a crash;
/// 3. publish the journaled events in order (at least once);
/// 4. re-read [`Engine::poll_timeout`] after every call and call
///    [`Engine::handle_timeout`] when it comes (a spurious call is a no-op);
/// 5. keep one writer per sale: one task, and one process per journal.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use flashsale_core::{Place, SaleConfig, SaleId, Service, Timestamp};
/// use flashsale_core::service::Ports;
/// use std::time::Duration;
///
/// let (ports, events) = Ports::in_memory();
/// let mut live = events.subscribe();
/// let service = Service::open(ports).await.unwrap();
/// let now = Timestamp::from(std::time::SystemTime::now());
/// let sale = SaleId::from(bson::oid::ObjectId::new());
/// service
///     .create_sale(SaleConfig::new(sale, 10, now, now.saturating_add(Duration::from_secs(60))))
///     .await
///     .unwrap();
/// let admission = service.buy(sale, "ana").await.unwrap();
/// assert!(matches!(admission.place, Place::Payment { .. }));
/// // The transaction id alone finds its sale.
/// service.paid_tx(admission.tx).await.unwrap();
/// assert_eq!(service.stats(sale).await.unwrap().sold, 1);
/// assert!(live.recv().await.is_ok()); // Opened, Started, Joined, Paid…
/// service.shutdown().await;
/// # }
/// ```
#[derive(Clone)]
pub struct Service {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Service")
            .field("sales", &self.sale_ids().len())
            .finish_non_exhaustive()
    }
}

impl Service {
    /// Starts a service with default settings, replaying every sale the
    /// journal holds. Must run inside a tokio runtime.
    pub async fn open(ports: Ports) -> Result<Self, ServiceError> {
        Self::open_with(ports, ServiceConfig::default()).await
    }

    /// [`Service::open`] with settings.
    pub async fn open_with(ports: Ports, config: ServiceConfig) -> Result<Self, ServiceError> {
        let service = Service {
            inner: Arc::new(Inner {
                ports,
                config,
                registry: RwLock::new(Registry::default()),
                tasks: Mutex::new(Vec::new()),
                health: Arc::new(Health::default()),
            }),
        };
        let storage = &service.inner.ports.storage;
        for sale in storage.sales().await? {
            let journal = storage.read(sale).await?;
            if journal.is_empty() {
                // A journal whose opening never got in (its claim did).
                tracing::warn!(%sale, "empty journal skipped");
                continue;
            }
            let engine = Engine::replay(&journal, (service.inner.ports.ids)())
                .map_err(|source| ServiceError::Replay { sale, source })?;
            tracing::info!(%sale, events = journal.len(), "sale replayed from journal");
            let length = journal.len() as u64;
            let backlog = service.undelivered(sale, journal).await;
            service.spawn(engine, backlog, length)?;
        }
        Ok(service)
    }

    /// Opens a new sale and starts its task.
    pub async fn create_sale(&self, config: SaleConfig) -> Result<(), ServiceError> {
        let ports = &self.inner.ports;
        self.adopt(Engine::new(ports.clock.now(), config, (ports.ids)())?)
            .await
    }

    /// Runs an engine built by hand — e.g. a new one into which buyers who
    /// paid elsewhere were imported ([`Engine::import_paid`]): its undrained
    /// events (its journal so far) are appended to storage, then handed to
    /// the sale's publisher first (a sink that is down does not hold up the
    /// sale's creation).
    pub async fn adopt(&self, mut engine: Engine) -> Result<(), ServiceError> {
        let id = engine.config().id;
        if self.sender(id).is_some() {
            return Err(ServiceError::DuplicateSale(id));
        }
        let journal: Vec<Event> = engine.drain_events().collect();
        self.inner.ports.storage.append(id, &journal).await?;
        let length = journal.len() as u64;
        self.spawn(engine, journal, length)
    }

    /// What a restarted sale offers its sink again. A crash between the
    /// journal append and the sink loses the hand-over, not the payment.
    /// A sink that forgets (in process) gets the sale's opening and every
    /// payment (a catalogue restores the sale unless it knows it, and
    /// applies each payment once); one that remembers (Kafka) gets the
    /// payments after the last [`EventKind::Delivered`] marker, less those
    /// it says it has ([`EventSink::resume`]).
    async fn undelivered(&self, sale: SaleId, journal: Vec<Event>) -> Vec<Event> {
        let sink = &self.inner.ports.sink;
        if !sink.remembers() {
            return journal
                .into_iter()
                .filter(|e| {
                    matches!(e.kind, EventKind::Opened { .. } | EventKind::Paid { .. })
                        || crate::Catalogue::follows(e)
                })
                .collect();
        }
        let (upto, since) = journal
            .iter()
            .rev()
            .find_map(|e| match &e.kind {
                EventKind::Delivered { upto, receipt } => Some((*upto, receipt.clone())),
                _ => None,
            })
            .unwrap_or((0, None));
        let pending: Vec<Event> = journal
            .into_iter()
            .skip(usize::try_from(upto).unwrap_or(usize::MAX))
            .filter(|e| matches!(e.kind, EventKind::Paid { .. }))
            .collect();
        let offered = pending.len();
        match sink.resume(sale, pending.clone(), since.as_deref()).await {
            Ok(left) => {
                tracing::info!(%sale, after = upto, offered, again = left.len(),
                    "payments the sink may not have: published again unless it has them");
                left
            }
            Err(e) => {
                // At least once rather than not at all.
                tracing::warn!(%sale, error = %e, "could not ask the sink what it has; offering all");
                pending
            }
        }
    }

    /// The ids of the running sales.
    pub fn sale_ids(&self) -> Vec<SaleId> {
        self.registry().senders.keys().copied().collect()
    }

    /// Whether the service can commit, as far as it knows without asking
    /// the journal: no sale is retrying a failed append or waiting on one
    /// for over a quarter of the commit timeout, and no sale was fenced
    /// (another writer took its journal: for good).
    pub fn is_ready(&self) -> bool {
        let health = &self.inner.health;
        health.failing_appends.load(Ordering::Relaxed) == 0
            && health.fenced.load(Ordering::Relaxed) == 0
    }

    /// Whether a sale of this service was fenced: another writer took its
    /// journal, and this service stopped serving it.
    pub fn is_fenced(&self) -> bool {
        self.inner.health.fenced.load(Ordering::Relaxed) > 0
    }

    /// Returns once a sale of this service is fenced (at once if one is):
    /// a server may then exit, for its replacement or standby to serve.
    pub async fn fenced(&self) {
        let health = &self.inner.health;
        loop {
            let woken = health.on_fenced.notified();
            if self.is_fenced() {
                return;
            }
            woken.await;
        }
    }

    /// Whether the service can commit: [`Service::is_ready`], and the
    /// journal's own [`Storage::check`] passes. A process that lives but
    /// cannot commit is alive, not ready.
    pub async fn ready(&self) -> bool {
        self.is_ready() && self.inner.ports.storage.check().await.is_ok()
    }

    /// A buyer joins a sale. See [`Engine::buy`].
    pub async fn buy(&self, sale: SaleId, buyer: &str) -> Result<Admission, CallError<BuyError>> {
        self.buy_as(sale, buyer, None).await
    }

    /// A signed-in buyer joins a sale as `account`. See [`Engine::buy_as`].
    pub async fn buy_as(
        &self,
        sale: SaleId,
        buyer: &str,
        account: Option<&str>,
    ) -> Result<Admission, CallError<BuyError>> {
        let account = account.map(str::to_owned);
        self.call(sale, |r| Command::Buy(buyer.to_owned(), account, r))
            .await
    }

    /// A payment arrived. See [`Engine::paid`].
    pub async fn paid(&self, sale: SaleId, tx: TxId) -> Result<PaidOutcome, CallError<PaidError>> {
        self.call(sale, |r| Command::Paid(tx, r)).await
    }

    /// A buyer gives up. See [`Engine::leave`].
    pub async fn leave(&self, sale: SaleId, tx: TxId) -> Result<(), CallError<LeaveError>> {
        self.call(sale, |r| Command::Leave(tx, r)).await
    }

    /// Where a transaction stands. See [`Engine::status`].
    pub async fn status(&self, sale: SaleId, tx: TxId) -> Result<Status, CallError<StatusError>> {
        self.call(sale, |r| Command::Status(tx, r)).await
    }

    /// The sales that may hold `tx`, from its id's prefix: one, nearly
    /// always; none for an id no running sale made or imported.
    pub fn sales_of(&self, tx: TxId) -> Vec<SaleId> {
        self.registry()
            .by_prefix
            .get(&tx_prefix(tx))
            .cloned()
            .unwrap_or_default()
    }

    /// Where `tx` stands, in whichever sale holds it.
    pub async fn status_of(&self, tx: TxId) -> Result<(SaleId, Status), CallError<StatusError>> {
        self.on_tx(tx, StatusError::UnknownTransaction, |r| {
            Command::Status(tx, r)
        })
        .await
    }

    /// A payment for `tx`, in whichever sale holds it. See [`Engine::paid`].
    pub async fn paid_tx(&self, tx: TxId) -> Result<(SaleId, PaidOutcome), CallError<PaidError>> {
        self.on_tx(tx, PaidError::UnknownTransaction, |r| Command::Paid(tx, r))
            .await
    }

    /// The buyer of `tx` gives up, in whichever sale holds it.
    pub async fn leave_tx(&self, tx: TxId) -> Result<(SaleId, ()), CallError<LeaveError>> {
        self.on_tx(tx, LeaveError::UnknownTransaction, |r| {
            Command::Leave(tx, r)
        })
        .await
    }

    /// A sale's counters; `None` for an unknown or stopped sale.
    pub async fn stats(&self, sale: SaleId) -> Option<SaleStats> {
        self.call_raw::<_, ()>(sale, Command::Stats).await.ok()
    }

    /// Where each of `txs` stands in `sale`, in one command (`None` for an
    /// id the sale does not hold), with estimates; `None` if the sale does
    /// not run here.
    pub async fn statuses(&self, sale: SaleId, txs: Vec<TxId>) -> Option<Vec<Option<Status>>> {
        self.call_raw::<_, ()>(sale, |r| Command::Statuses(txs, r))
            .await
            .ok()
    }

    /// What an operator sees of `sale` (see [`SaleReport`]); `None` if it
    /// does not run here.
    pub async fn report(&self, sale: SaleId) -> Option<SaleReport> {
        self.call_raw::<_, ()>(sale, Command::Report).await.ok()
    }

    /// An operator's change to `sale` (see [`Control`]), committed before
    /// it answers.
    pub async fn control(
        &self,
        sale: SaleId,
        control: Control,
    ) -> Result<(), CallError<ControlError>> {
        self.call(sale, |r| Command::Control(control, r)).await
    }

    /// Returns once every event committed so far, in every sale, has been
    /// handed to the sink: e.g. once a restarted service's re-offered
    /// openings and payments have reached an in-process catalogue. A sale
    /// that does not answer within the commit timeout is not waited for.
    pub async fn flush(&self) {
        for sale in self.sale_ids() {
            let _ = self.call_raw::<_, ()>(sale, Command::Flush).await;
        }
    }

    /// Stops taking commands, lets every sale finish what it has queued,
    /// commit and publish it, and waits for that.
    pub async fn shutdown(self) {
        *self.registry_mut() = Registry::default();
        let tasks = std::mem::take(
            &mut *self
                .inner
                .tasks
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        );
        for task in tasks {
            if let Err(e) = task.await {
                tracing::error!(error = %e, "sale task failed");
            }
        }
    }

    fn registry(&self) -> std::sync::RwLockReadGuard<'_, Registry> {
        self.inner
            .registry
            .read()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn registry_mut(&self) -> std::sync::RwLockWriteGuard<'_, Registry> {
        self.inner
            .registry
            .write()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn sender(&self, sale: SaleId) -> Option<mpsc::Sender<Command>> {
        self.registry().senders.get(&sale).cloned()
    }

    /// Sends a command to the sale that made (or imported) `tx`; a sale
    /// that answers `unknown` passes it to the next candidate.
    async fn on_tx<T, E: PartialEq>(
        &self,
        tx: TxId,
        unknown: E,
        command: impl Fn(Reply<Result<T, E>>) -> Command,
    ) -> Result<(SaleId, T), CallError<E>> {
        for sale in self.sales_of(tx) {
            match self.call(sale, &command).await {
                Err(CallError::Refused(e)) if e == unknown => {}
                // Stopped between the lookup and the call.
                Err(CallError::UnknownSale) => {}
                answer => return answer.map(|t| (sale, t)),
            }
        }
        Err(CallError::Refused(unknown))
    }

    async fn call<T, E>(
        &self,
        sale: SaleId,
        command: impl FnOnce(Reply<Result<T, E>>) -> Command,
    ) -> Result<T, CallError<E>> {
        self.call_raw(sale, command)
            .await?
            .map_err(CallError::Refused)
    }

    async fn call_raw<T, E>(
        &self,
        sale: SaleId,
        command: impl FnOnce(Reply<T>) -> Command,
    ) -> Result<T, CallError<E>> {
        let sender = self.sender(sale).ok_or(CallError::UnknownSale)?;
        let (reply, answer) = oneshot::channel();
        let clock = &self.inner.ports.clock;
        let deadline = clock.now().saturating_add(self.inner.config.commit_timeout);
        let exchange = async {
            sender
                .send(command(reply))
                .await
                .map_err(|_| CallError::Unavailable)?;
            answer.await.map_err(|_| CallError::Unavailable)
        };
        tokio::select! {
            answer = exchange => answer,
            () = clock.sleep_until(deadline) => {
                tracing::warn!(%sale, "command not committed within the commit timeout");
                Err(CallError::Unavailable)
            }
        }
    }

    /// Starts a sale's task; `backlog` is published before anything new.
    /// Starts the sale's task; `journaled` events are in its journal.
    fn spawn(
        &self,
        mut engine: Engine,
        backlog: Vec<Event>,
        journaled: u64,
    ) -> Result<(), ServiceError> {
        let id = engine.config().id;
        let ports = &self.inner.ports;
        engine.replace_id_generator(Box::new(SalePrefixed::new(id, (ports.ids)())));
        let (sender, receiver) = mpsc::channel(QUEUE_DEPTH);
        {
            let mut registry = self.registry_mut();
            if registry.senders.contains_key(&id) {
                return Err(ServiceError::DuplicateSale(id));
            }
            registry.senders.insert(id, sender);
            registry.register_prefix(sale_prefix(id), id);
            // Ids made by another generator (imported, or journaled by an
            // older version): a handful of prefixes, found once.
            let mut seen = hashbrown::HashSet::new();
            for tx in engine.transaction_ids() {
                if seen.insert(tx_prefix(tx)) {
                    registry.register_prefix(tx_prefix(tx), id);
                }
            }
        }
        let task = tokio::spawn(run_sale(
            engine,
            receiver,
            ports.clone(),
            self.inner.health.clone(),
            self.inner.config.clone(),
            (backlog, journaled),
        ));
        self.inner
            .tasks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(task);
        Ok(())
    }
}
