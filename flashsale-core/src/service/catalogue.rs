//! [`CatalogueService`]: the one owner of a [`Catalogue`], a single-writer
//! task like each sale's in [`Service`].

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use hashbrown::HashSet;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use super::{Service, ServiceError};
use crate::catalogue::{
    Applied, Buyer, Catalogue, CatalogueState, EligibilityError, NewSale, Notice, Sale, SaleError,
    TxMessage,
};
use crate::engine::{Event, EventKind, SaleConfig};
use crate::id::{SaleId, TxId};
use crate::time::Timestamp;

/// A page of buyers, and the cursor of the next page.
pub type BuyersPage = (Vec<Buyer>, Option<TxId>);
use crate::ports::{BroadcastSink, Clock, EventSink, SinkError};

/// How many commands may queue before callers wait.
const QUEUE_DEPTH: usize = 4096;
/// The most commands handled between two looks at the clock.
const MAX_BATCH: usize = 256;

type Reply<T> = oneshot::Sender<T>;

enum Command {
    /// Checks a new sale and reserves its id, without adding it.
    Prepare(Option<SaleId>, NewSale, Reply<Result<Sale, SaleError>>),
    /// Adds a prepared (or synced) sale.
    Insert(Sale, Reply<Result<Sale, SaleError>>),
    /// Drops a reservation whose engine could not start.
    Release(SaleId),
    Apply(Vec<TxMessage>, Reply<Vec<Notice>>),
    /// Committed engine events: sales opened (restored unless known) and
    /// paid or switch messages, in journal order.
    Feed(Vec<Fed>, Reply<()>),
    List(Reply<Vec<Sale>>),
    Save(Reply<CatalogueState>),
    Get(SaleId, Reply<Option<Sale>>),
    Buyers(SaleId, Option<TxId>, usize, Reply<Option<BuyersPage>>),
    Eligible(
        SaleId,
        String,
        Option<String>,
        Reply<Result<(), EligibilityError>>,
    ),
    Stop,
}

/// Why a [`CatalogueService`] call was not answered: a refused sale, an
/// engine that could not start, or a catalogue that has stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CatalogueError {
    /// The sale's settings are refused.
    #[error(transparent)]
    Invalid(#[from] SaleError),
    /// The sale's engine could not start (e.g. its journal cannot be
    /// written); the catalogue kept nothing.
    #[error("the sale's engine could not start: {0}")]
    Engine(#[from] ServiceError),
    /// The catalogue has stopped.
    #[error("catalogue unavailable")]
    Unavailable,
}

impl Command {
    /// Whether it may change what the catalogue lists.
    fn may_change(&self) -> bool {
        matches!(
            self,
            Command::Insert(..) | Command::Apply(..) | Command::Feed(..)
        )
    }
}

/// What the catalogue takes from an engine's committed events.
enum Fed {
    Opened(SaleConfig),
    /// An operator's change to the sale ([`Catalogue::follows`]).
    Change(Event),
    Message(TxMessage),
}

struct Shared {
    commands: mpsc::Sender<Command>,
    task: Mutex<Option<JoinHandle<()>>>,
    /// Bumped after every batch that changed the catalogue.
    version: Arc<AtomicU64>,
}

/// Owns a [`Catalogue`] in a task of its own: sale creation (with the
/// sale's engine, atomically, when it runs engines), `paid` and `switch`
/// messages, queries, and the catalogue's timers (sale starts and ends).
/// Every notice goes out on the broadcast given at [`CatalogueService::open`].
/// Cheap to clone.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use flashsale_core::service::{CatalogueService, Ports};
/// use flashsale_core::{BroadcastSink, Catalogue, NewSale, ObjectIdGenerator, Service, Timestamp};
/// use std::sync::Arc;
///
/// let (mut ports, _) = Ports::in_memory();
/// let notices = BroadcastSink::new(64);
/// let catalogue = CatalogueService::open(
///     ports.clock.clone(),
///     Catalogue::new(Box::new(ObjectIdGenerator::random())),
///     notices.clone(),
/// );
/// ports.sink = Arc::new(catalogue.feed()); // paid and switch reach the catalogue
/// let engines = Service::open(ports).await.unwrap();
/// let catalogue = catalogue.with_engines(engines.clone());
///
/// let now = Timestamp::from(std::time::SystemTime::now());
/// let new = NewSale::new("Sneakers", 2, now, now.saturating_add(std::time::Duration::from_secs(60)));
/// let sale = catalogue.create_sale(None, new).await.unwrap(); // catalogue entry + engine
/// let ana = engines.buy(sale.id(), "ana").await.unwrap();
/// engines.paid(sale.id(), ana.tx).await.unwrap();
/// engines.clone().shutdown().await; // flushes the payment to the catalogue
/// assert_eq!(catalogue.get(sale.id()).await.unwrap().unwrap().remaining, 1);
/// catalogue.shutdown().await;
/// # }
/// ```
#[derive(Clone)]
pub struct CatalogueService {
    shared: Arc<Shared>,
    engines: Option<Service>,
}

impl std::fmt::Debug for CatalogueService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CatalogueService")
            .field("engines", &self.engines.is_some())
            .finish_non_exhaustive()
    }
}

impl CatalogueService {
    /// Starts the catalogue's task. Must run inside a tokio runtime.
    pub fn open(
        clock: Arc<dyn Clock>,
        catalogue: Catalogue,
        notices: BroadcastSink<Notice>,
    ) -> Self {
        let (commands, receiver) = mpsc::channel(QUEUE_DEPTH);
        let version = Arc::new(AtomicU64::new(0));
        let task = tokio::spawn(run(catalogue, receiver, clock, notices, version.clone()));
        CatalogueService {
            shared: Arc::new(Shared {
                commands,
                task: Mutex::new(Some(task)),
                version,
            }),
            engines: None,
        }
    }

    /// This handle, starting each new sale's engine in `engines` too.
    pub fn with_engines(mut self, engines: Service) -> Self {
        self.engines = Some(engines);
        self
    }

    /// The [`EventSink`] that feeds committed engine events to this
    /// catalogue: each `Paid` and `Promoted` as a `paid` or `switch`
    /// message (what the reference does over Kafka).
    pub fn feed(&self) -> CatalogueFeed {
        CatalogueFeed {
            catalogue: self.clone(),
        }
    }

    /// A number that changes whenever the catalogue may have changed (a
    /// sale added or changed, a unit sold, a start or end announced): what
    /// [`CatalogueService::list`] answered for one version, it answers
    /// again while the version stays. For caching the sales list.
    pub fn version(&self) -> u64 {
        self.shared.version.load(Ordering::Acquire)
    }

    /// Whether the catalogue's task still runs.
    pub fn is_running(&self) -> bool {
        !self.shared.commands.is_closed()
    }

    /// Creates a sale — with the id `id`, or a new one — and, when this
    /// handle runs engines, starts its engine. Atomic: when the engine
    /// cannot start, the catalogue keeps nothing; a caller that stops
    /// waiting does not cut it in half.
    pub async fn create_sale(
        &self,
        id: Option<SaleId>,
        new: NewSale,
    ) -> Result<Sale, CatalogueError> {
        let this = self.clone();
        tokio::spawn(async move { this.create(id, new).await })
            .await
            .map_err(|_| CatalogueError::Unavailable)?
    }

    async fn create(&self, id: Option<SaleId>, new: NewSale) -> Result<Sale, CatalogueError> {
        let sale = self.ask(|r| Command::Prepare(id, new, r)).await??;
        if let Some(engines) = &self.engines
            && let Err(e) = engines.create_sale(sale.config.clone()).await
        {
            tracing::error!(sale = %sale.id(), error = %e, "could not start the sale's engine");
            let _ = self.shared.commands.send(Command::Release(sale.id())).await;
            return Err(e.into());
        }
        Ok(self.ask(|r| Command::Insert(sale, r)).await??)
    }

    /// Applies `paid` and `switch` messages (each paid transaction once,
    /// however often delivered) and returns the notices they caused, which
    /// also went out on the notices broadcast. Refusals are logged.
    pub async fn apply(&self, messages: Vec<TxMessage>) -> Result<Vec<Notice>, CatalogueError> {
        self.ask(|r| Command::Apply(messages, r)).await
    }

    /// The catalogue's whole state, to save ([`Catalogue::save`]): every
    /// message applied before this call is in it.
    pub async fn save(&self) -> Result<CatalogueState, CatalogueError> {
        self.ask(Command::Save).await
    }

    /// Every sale, by id.
    pub async fn list(&self) -> Result<Vec<Sale>, CatalogueError> {
        self.ask(Command::List).await
    }

    /// The newest sale (ids ascend with creation time), if any: the one a
    /// restarted server carries on with.
    pub async fn newest(&self) -> Result<Option<Sale>, CatalogueError> {
        Ok(self.list().await?.pop())
    }

    /// One sale; `None` if unknown.
    pub async fn get(&self, sale: SaleId) -> Result<Option<Sale>, CatalogueError> {
        self.ask(|r| Command::Get(sale, r)).await
    }

    /// Up to `limit` of a sale's buyers after the buyer `after`, and the
    /// cursor of the next page; see [`Catalogue::buyers_page`]. `None` for
    /// an unknown sale. The page is copied out: the catalogue's task is not
    /// held for longer than `limit` buyers take.
    pub async fn buyers(
        &self,
        sale: SaleId,
        after: Option<TxId>,
        limit: usize,
    ) -> Result<Option<BuyersPage>, CatalogueError> {
        self.ask(|r| Command::Buyers(sale, after, limit, r)).await
    }

    /// See [`Catalogue::eligible_as`]: `account` for a signed-in buyer.
    pub async fn eligible(
        &self,
        sale: SaleId,
        buyer: &str,
        account: Option<&str>,
    ) -> Result<Result<(), EligibilityError>, CatalogueError> {
        let account = account.map(str::to_owned);
        self.ask(|r| Command::Eligible(sale, buyer.to_owned(), account, r))
            .await
    }

    /// Stops the task once what is queued is done, and waits for it.
    /// Shut the engines down first: their last payments reach the
    /// catalogue through its feed.
    pub async fn shutdown(self) {
        let _ = self.shared.commands.send(Command::Stop).await;
        let task = self
            .shared
            .task
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(task) = task
            && let Err(e) = task.await
        {
            tracing::error!(error = %e, "catalogue task failed");
        }
    }

    async fn ask<T>(&self, command: impl FnOnce(Reply<T>) -> Command) -> Result<T, CatalogueError> {
        let (reply, answer) = oneshot::channel();
        self.shared
            .commands
            .send(command(reply))
            .await
            .map_err(|_| CatalogueError::Unavailable)?;
        answer.await.map_err(|_| CatalogueError::Unavailable)
    }
}

/// Feeds committed engine events to a [`CatalogueService`]; see
/// [`CatalogueService::feed`].
#[derive(Debug, Clone)]
pub struct CatalogueFeed {
    catalogue: CatalogueService,
}

#[async_trait]
impl EventSink for CatalogueFeed {
    async fn publish(&self, events: &[Event]) -> Result<(), SinkError> {
        let fed: Vec<Fed> = events
            .iter()
            .filter_map(|e| match &e.kind {
                EventKind::Opened { config, .. } => Some(Fed::Opened(config.clone())),
                _ if Catalogue::follows(e) => Some(Fed::Change(e.clone())),
                _ => TxMessage::from_event(e).map(Fed::Message),
            })
            .collect();
        if fed.is_empty() {
            return Ok(());
        }
        if self.catalogue.ask(|r| Command::Feed(fed, r)).await.is_err() {
            // Stopped for good: retrying would only hold up the sale.
            tracing::warn!("catalogue stopped; engine events not applied");
        }
        Ok(())
    }
}

async fn run(
    mut catalogue: Catalogue,
    mut commands: mpsc::Receiver<Command>,
    clock: Arc<dyn Clock>,
    notices: BroadcastSink<Notice>,
    version: Arc<AtomicU64>,
) {
    let mut reserved = HashSet::new();
    let mut batch = Vec::with_capacity(MAX_BATCH);
    let mut stop = false;
    while !stop {
        let due = catalogue.poll_timeout();
        tokio::select! {
            biased;
            n = commands.recv_many(&mut batch, MAX_BATCH) => if n == 0 { break },
            () = async {
                match due {
                    Some(t) => clock.sleep_until(t).await,
                    None => std::future::pending().await,
                }
            } => {}
        }
        let now = clock.now();
        catalogue.handle_timeout(now);
        let mut out: Vec<Notice> = catalogue.drain_notices().collect();
        // The version moves before the batch that may change the catalogue
        // runs (and so before anyone hears of the change): a list asked for
        // after a reader saw the new version is answered after this batch.
        if !out.is_empty() || batch.iter().any(Command::may_change) {
            version.fetch_add(1, Ordering::Release);
        }
        for command in batch.drain(..) {
            // A caller that gave up waiting is no error.
            match command {
                Command::Prepare(id, new, r) => {
                    // Sales being created count too.
                    let max = catalogue.max_sales();
                    let full = catalogue.len() + reserved.len() >= max;
                    let sale = if full {
                        Err(SaleError::TooManySales { max })
                    } else {
                        catalogue.prepare(now, id, new)
                    };
                    let sale = sale.and_then(|sale| {
                        if reserved.insert(sale.id()) {
                            Ok(sale)
                        } else {
                            Err(SaleError::Duplicate)
                        }
                    });
                    let _ = r.send(sale);
                }
                Command::Insert(sale, r) => {
                    reserved.remove(&sale.id());
                    // The engine's opening may have restored it already.
                    let inserted = match catalogue.get(sale.id()) {
                        Some(known) if known.config == sale.config => Ok(known.clone()),
                        _ => catalogue.insert(sale),
                    };
                    let _ = r.send(inserted);
                }
                Command::Release(id) => {
                    reserved.remove(&id);
                }
                Command::Apply(messages, r) => {
                    for message in &messages {
                        apply(&mut catalogue, now, message);
                    }
                    let caused: Vec<Notice> = catalogue.drain_notices().collect();
                    out.extend(caused.iter().cloned());
                    let _ = r.send(caused);
                }
                Command::Feed(fed, r) => {
                    for item in fed {
                        match item {
                            Fed::Opened(config) => {
                                let id = config.id;
                                if catalogue.restore(config) {
                                    tracing::debug!(sale = %id, "catalogue: sale restored");
                                }
                            }
                            Fed::Message(message) => apply(&mut catalogue, now, &message),
                            Fed::Change(event) => catalogue.follow(now, &event),
                        }
                    }
                    let _ = r.send(());
                }
                Command::List(r) => {
                    let _ = r.send(catalogue.list().cloned().collect());
                }
                Command::Save(r) => {
                    let _ = r.send(catalogue.save());
                }
                Command::Get(id, r) => {
                    let _ = r.send(catalogue.get(id).cloned());
                }
                Command::Buyers(id, after, limit, r) => {
                    let page = catalogue
                        .buyers_page(id, after, limit)
                        .map(|(buyers, next)| (buyers.to_vec(), next));
                    let _ = r.send(page);
                }
                Command::Eligible(id, name, account, r) => {
                    let _ = r.send(catalogue.eligible_as(id, &name, account.as_deref()));
                }
                Command::Stop => stop = true,
            }
            out.extend(catalogue.drain_notices());
        }
        // A broadcast never blocks: publishing cannot stall the catalogue.
        let _ = notices.publish(&out).await;
    }
}

fn apply(catalogue: &mut Catalogue, now: Timestamp, message: &TxMessage) {
    match catalogue.apply(now, message) {
        Ok(Applied::Oversold) => {
            tracing::error!(?message, "catalogue recorded a sale beyond its stock");
        }
        Ok(_) => {}
        Err(e) => tracing::warn!(?message, error = %e, "catalogue refused a message"),
    }
}
