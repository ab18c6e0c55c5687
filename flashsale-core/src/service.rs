//! [`Service`]: runs many sales' engines, one single-writer task per sale.
//!
//! A sale's task owns its [`Engine`]. It takes every command waiting in its
//! channel as one batch, applies them at one `now`, appends the batch's
//! events to [`Storage`] in one call (group commit), hands them to the
//! [`EventSink`] through a publisher task of its own (so a slow sink never
//! stalls the engine), and only then replies. Before applying a batch it
//! calls [`Engine::prefetch_buyers`], so the batch's cache misses overlap.
//! Between batches it sleeps until the engine's [`Engine::poll_timeout`] or
//! the next command.
//!
//! A sale replayed at start offers its journal's payments to the sink
//! again: a payment journaled but not yet handed on when the process died
//! still reaches the catalogue, which applies each payment once.

use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use hashbrown::HashMap;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::engine::{
    Admission, BuyError, ConfigError, Engine, Event, EventKind, LeaveError, PaidError, PaidOutcome,
    ReplayError, SaleConfig, Status, StatusError,
};
use crate::id::{IdGenerator, ObjectIdGenerator, SaleId, TxId};
use crate::ports::{
    BroadcastSink, Clock, EventSink, MemoryStorage, Storage, StorageError, SystemClock,
};

/// The most commands applied in one batch.
const MAX_BATCH: usize = 1024;
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

type Reply<T> = oneshot::Sender<T>;

enum Command {
    Buy(String, Reply<Result<Admission, BuyError>>),
    Paid(TxId, Reply<Result<PaidOutcome, PaidError>>),
    Leave(TxId, Reply<Result<(), LeaveError>>),
    Status(TxId, Reply<Result<Status, StatusError>>),
    Stats(Reply<SaleStats>),
}

/// A command's answer, held until the batch is committed.
enum Done {
    Buy(
        Reply<Result<Admission, BuyError>>,
        Result<Admission, BuyError>,
    ),
    Paid(
        Reply<Result<PaidOutcome, PaidError>>,
        Result<PaidOutcome, PaidError>,
    ),
    Leave(Reply<Result<(), LeaveError>>, Result<(), LeaveError>),
    Status(
        Reply<Result<Status, StatusError>>,
        Result<Status, StatusError>,
    ),
    Stats(Reply<SaleStats>, SaleStats),
}

impl Done {
    fn send(self) {
        // A caller that gave up waiting is no error.
        let _ = match self {
            Done::Buy(r, v) => r.send(v).map_err(drop),
            Done::Paid(r, v) => r.send(v).map_err(drop),
            Done::Leave(r, v) => r.send(v).map_err(drop),
            Done::Status(r, v) => r.send(v).map_err(drop),
            Done::Stats(r, v) => r.send(v).map_err(drop),
        };
    }
}

fn execute(engine: &mut Engine, now: crate::Timestamp, command: Command) -> Done {
    match command {
        Command::Buy(name, r) => Done::Buy(r, engine.buy(now, &name)),
        Command::Paid(tx, r) => Done::Paid(r, engine.paid(now, tx)),
        Command::Leave(tx, r) => Done::Leave(r, engine.leave(now, tx)),
        Command::Status(tx, r) => {
            Done::Status(r, engine.status(tx).ok_or(StatusError::UnknownTransaction))
        }
        Command::Stats(r) => Done::Stats(
            r,
            SaleStats {
                sold: engine.sold(),
                payment_slots: engine.payment_slots(),
                waiting: engine.waiting(),
                available: engine.available(),
                transactions: engine.transaction_count() as u64,
            },
        ),
    }
}

struct Inner {
    ports: Ports,
    sales: RwLock<HashMap<SaleId, mpsc::Sender<Command>>>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

/// Runs sales. Cheap to clone; every clone drives the same sales.
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
/// service.paid(sale, admission.tx).await.unwrap();
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
    /// Starts a service, replaying every sale the journal holds. Must run
    /// inside a tokio runtime.
    pub async fn open(ports: Ports) -> Result<Self, ServiceError> {
        let service = Service {
            inner: Arc::new(Inner {
                ports,
                sales: RwLock::new(HashMap::new()),
                tasks: Mutex::new(Vec::new()),
            }),
        };
        let storage = &service.inner.ports.storage;
        for sale in storage.sales().await? {
            let journal = storage.read(sale).await?;
            let engine = Engine::replay(&journal, (service.inner.ports.ids)())
                .map_err(|source| ServiceError::Replay { sale, source })?;
            tracing::info!(%sale, events = journal.len(), "sale replayed from journal");
            // A crash between the journal append and the sink loses the
            // hand-over, not the payment: offer every payment again (the
            // catalogue applies each once).
            let paid = journal
                .into_iter()
                .filter(|e| matches!(e.kind, EventKind::Paid { .. }))
                .collect();
            service.spawn(engine, paid)?;
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
    /// events (its journal so far) are appended to storage and published
    /// first.
    pub async fn adopt(&self, mut engine: Engine) -> Result<(), ServiceError> {
        let id = engine.config().id;
        if self.sender(id).is_some() {
            return Err(ServiceError::DuplicateSale(id));
        }
        let ports = &self.inner.ports;
        let journal: Vec<Event> = engine.drain_events().collect();
        ports.storage.append(id, &journal).await?;
        ports.sink.publish(&journal).await.unwrap_or_else(|e| {
            tracing::warn!(sale = %id, error = %e, "could not publish the sale's opening");
        });
        self.spawn(engine, Vec::new())
    }

    /// The ids of the running sales.
    pub fn sale_ids(&self) -> Vec<SaleId> {
        self.inner
            .sales
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .keys()
            .copied()
            .collect()
    }

    /// A buyer joins a sale. See [`Engine::buy`].
    pub async fn buy(&self, sale: SaleId, buyer: &str) -> Result<Admission, BuyError> {
        self.call(sale, |r| Command::Buy(buyer.to_owned(), r))
            .await
            .unwrap_or_else(|e| Err(e.into_buy()))
    }

    /// A payment arrived. See [`Engine::paid`].
    pub async fn paid(&self, sale: SaleId, tx: TxId) -> Result<PaidOutcome, PaidError> {
        self.call(sale, |r| Command::Paid(tx, r))
            .await
            .unwrap_or_else(|e| Err(e.into_paid()))
    }

    /// A buyer gives up. See [`Engine::leave`].
    pub async fn leave(&self, sale: SaleId, tx: TxId) -> Result<(), LeaveError> {
        self.call(sale, |r| Command::Leave(tx, r))
            .await
            .unwrap_or_else(|e| Err(e.into_leave()))
    }

    /// Where a transaction stands. See [`Engine::status`].
    pub async fn status(&self, sale: SaleId, tx: TxId) -> Result<Status, StatusError> {
        self.call(sale, |r| Command::Status(tx, r))
            .await
            .unwrap_or_else(|e| Err(e.into_status()))
    }

    /// A sale's counters; `None` for an unknown or stopped sale.
    pub async fn stats(&self, sale: SaleId) -> Option<SaleStats> {
        self.call(sale, Command::Stats).await.ok()
    }

    /// Stops taking commands, lets every sale finish what it has queued,
    /// commit and publish it, and waits for that.
    pub async fn shutdown(self) {
        self.sales_mut().clear();
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

    fn sales_mut(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<SaleId, mpsc::Sender<Command>>> {
        self.inner
            .sales
            .write()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn sender(&self, sale: SaleId) -> Option<mpsc::Sender<Command>> {
        self.inner
            .sales
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&sale)
            .cloned()
    }

    async fn call<T>(
        &self,
        sale: SaleId,
        command: impl FnOnce(Reply<T>) -> Command,
    ) -> Result<T, CallError> {
        let sender = self.sender(sale).ok_or(CallError::UnknownSale)?;
        let (reply, answer) = oneshot::channel();
        sender
            .send(command(reply))
            .await
            .map_err(|_| CallError::Unavailable)?;
        answer.await.map_err(|_| CallError::Unavailable)
    }

    /// Starts a sale's task; `backlog` is published before anything new.
    fn spawn(&self, engine: Engine, backlog: Vec<Event>) -> Result<(), ServiceError> {
        let id = engine.config().id;
        let (sender, receiver) = mpsc::channel(QUEUE_DEPTH);
        {
            let mut sales = self.sales_mut();
            if sales.contains_key(&id) {
                return Err(ServiceError::DuplicateSale(id));
            }
            sales.insert(id, sender);
        }
        let task = tokio::spawn(run_sale(
            engine,
            receiver,
            self.inner.ports.clone(),
            backlog,
        ));
        self.inner
            .tasks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(task);
        Ok(())
    }
}

enum CallError {
    UnknownSale,
    Unavailable,
}

impl CallError {
    fn into_buy(self) -> BuyError {
        match self {
            CallError::UnknownSale => BuyError::UnknownSale,
            CallError::Unavailable => BuyError::Unavailable,
        }
    }
    fn into_paid(self) -> PaidError {
        match self {
            CallError::UnknownSale => PaidError::UnknownSale,
            CallError::Unavailable => PaidError::Unavailable,
        }
    }
    fn into_leave(self) -> LeaveError {
        match self {
            CallError::UnknownSale => LeaveError::UnknownSale,
            CallError::Unavailable => LeaveError::Unavailable,
        }
    }
    fn into_status(self) -> StatusError {
        match self {
            CallError::UnknownSale => StatusError::UnknownSale,
            CallError::Unavailable => StatusError::Unavailable,
        }
    }
}

/// Retries `attempt` with capped exponential backoff until it succeeds.
async fn retry<F, Fut, E>(what: &str, sale: SaleId, mut attempt: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(), E>>,
    E: std::fmt::Display,
{
    let mut backoff = Duration::from_millis(10);
    while let Err(e) = attempt().await {
        tracing::warn!(%sale, error = %e, retry_in = ?backoff, "{what} failed; retrying");
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

async fn run_sale(
    mut engine: Engine,
    mut commands: mpsc::Receiver<Command>,
    ports: Ports,
    backlog: Vec<Event>,
) {
    let sale = engine.config().id;
    let (publish, batches) = mpsc::unbounded_channel::<Vec<Event>>();
    if !backlog.is_empty() {
        let _ = publish.send(backlog);
    }
    let publisher = tokio::spawn(run_publisher(sale, batches, ports.sink.clone()));
    let mut batch = Vec::with_capacity(MAX_BATCH);
    let mut done = Vec::with_capacity(MAX_BATCH);
    loop {
        let wake = engine.poll_timeout();
        tokio::select! {
            biased;
            n = commands.recv_many(&mut batch, MAX_BATCH) => if n == 0 { break },
            () = async {
                match wake {
                    Some(t) => ports.clock.sleep_until(t).await,
                    None => std::future::pending().await,
                }
            } => {}
        }
        let now = ports.clock.now();
        engine.handle_timeout(now);
        if batch.len() > 1 {
            engine.prefetch_buyers(batch.iter().filter_map(|c| match c {
                Command::Buy(name, _) => Some(name.as_str()),
                _ => None,
            }));
        }
        done.extend(batch.drain(..).map(|c| execute(&mut engine, now, c)));
        let events: Vec<Event> = engine.drain_events().collect();
        if !events.is_empty() {
            retry("journal append", sale, || {
                ports.storage.append(sale, &events)
            })
            .await;
            // The publisher lives as long as this task; a send cannot fail.
            let _ = publish.send(events);
        }
        done.drain(..).for_each(Done::send);
    }
    drop(publish);
    if let Err(e) = publisher.await {
        tracing::error!(%sale, error = %e, "publisher task failed");
    }
}

async fn run_publisher(
    sale: SaleId,
    mut batches: mpsc::UnboundedReceiver<Vec<Event>>,
    sink: Arc<dyn EventSink>,
) {
    // Everything queued while the last publish was under way goes out as
    // one: a sink with a round trip per publish (Kafka) keeps up with any
    // rate, its batches growing instead of its queue.
    let mut queued = Vec::new();
    while batches.recv_many(&mut queued, MAX_BATCH).await > 0 {
        let events: Vec<Event> = queued.drain(..).flatten().collect();
        retry("publish", sale, || sink.publish(&events)).await;
    }
}
