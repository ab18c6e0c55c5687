//! One sale's single-writer task: the only code that touches its
//! [`Engine`], and its publisher task.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use super::measure::Measures;
use super::{Ports, SaleReport, SaleStats, ServiceConfig};
use crate::engine::{
    Admission, BuyError, Control, ControlError, Engine, Event, EventKind, LeaveError, PaidError,
    PaidOutcome, Status, StatusError,
};
use crate::id::{SaleId, TxId};
use crate::ports::{EventSink, StorageError};
use crate::time::Timestamp;

/// The most commands applied in one batch.
const MAX_BATCH: usize = 1024;

/// How long a sale waits for its journal to take a keep-alive beat before
/// it goes on without (the commands behind it wait that long at most).
const BEAT_WAIT: Duration = Duration::from_millis(100);

pub(super) type Reply<T> = oneshot::Sender<T>;

/// What a caller asks of a sale's task.
pub(super) enum Command {
    Buy(String, Option<String>, Reply<Result<Admission, BuyError>>),
    Paid(TxId, Reply<Result<PaidOutcome, PaidError>>),
    Leave(TxId, Reply<Result<(), LeaveError>>),
    Status(TxId, Reply<Result<Status, StatusError>>),
    Statuses(Vec<TxId>, Reply<Vec<Option<Status>>>),
    Stats(Reply<SaleStats>),
    Report(Reply<SaleReport>),
    Control(Control, Reply<Result<(), ControlError>>),
    /// Answered once everything committed before it has been published.
    Flush(Reply<()>),
}

/// What the sale's task hands its publisher.
enum Publish {
    /// Committed events, in journal order, and the journal's length after
    /// them.
    Events(Vec<Event>, u64),
    /// Answer this once everything before it has been published.
    Flushed(Reply<()>),
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
    Statuses(Reply<Vec<Option<Status>>>, Vec<Option<Status>>),
    Report(Reply<SaleReport>, Box<SaleReport>),
    Control(Reply<Result<(), ControlError>>, Result<(), ControlError>),
    /// Goes to the publisher, behind the batch's events.
    Flush(Reply<()>),
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
            Done::Statuses(r, v) => r.send(v).map_err(drop),
            Done::Report(r, v) => r.send(*v).map_err(drop),
            Done::Control(r, v) => r.send(v).map_err(drop),
            Done::Flush(r) => r.send(()).map_err(drop),
        };
    }
}

fn execute(engine: &mut Engine, measures: &mut Measures, now: Timestamp, command: Command) -> Done {
    match command {
        Command::Buy(name, account, r) => {
            let answer = engine.buy_as(now, &name, account.as_deref());
            if let Err(e) = &answer {
                measures.refused(e);
            }
            Done::Buy(r, answer)
        }
        Command::Report(r) => Done::Report(r, Box::new(SaleReport::of(engine, measures))),
        Command::Control(control, r) => Done::Control(r, engine.control(now, control)),
        Command::Paid(tx, r) => Done::Paid(r, engine.paid(now, tx)),
        Command::Leave(tx, r) => Done::Leave(r, engine.leave(now, tx)),
        Command::Status(tx, r) => {
            Done::Status(r, engine.status(tx).ok_or(StatusError::UnknownTransaction))
        }
        Command::Stats(r) => Done::Stats(r, SaleStats::of(engine)),
        Command::Statuses(txs, r) => {
            Done::Statuses(r, txs.into_iter().map(|tx| engine.status(tx)).collect())
        }
        Command::Flush(r) => Done::Flush(r),
    }
}

/// How a sale's task reports that its journal cannot be written.
#[derive(Debug, Default)]
pub(super) struct Health {
    /// Sales whose latest journal append failed, or has been under way
    /// longer than a quarter of the commit timeout.
    pub(super) failing_appends: AtomicUsize,
    /// Sales stopped because another writer took their journal.
    pub(super) fenced: AtomicUsize,
    /// Woken when a sale is fenced.
    pub(super) on_fenced: tokio::sync::Notify,
}

/// Counts one in `failing` while alive.
struct Failing<'a>(&'a AtomicUsize);

impl<'a> Failing<'a> {
    fn new(failing: &'a AtomicUsize) -> Self {
        failing.fetch_add(1, Ordering::Relaxed);
        Failing(failing)
    }
}

impl Drop for Failing<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Retries `attempt` with capped exponential backoff until it succeeds,
/// or fails in a way `fatal` says no retry can mend.
async fn retry<F, Fut, T, E>(
    what: &str,
    sale: SaleId,
    mut attempt: F,
    mut failed: impl FnMut(),
    fatal: impl Fn(&E) -> bool,
) -> Result<T, E>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
    E: std::fmt::Display,
{
    let mut backoff = Duration::from_millis(10);
    loop {
        match attempt().await {
            Ok(done) => return Ok(done),
            Err(e) if fatal(&e) => return Err(e),
            Err(e) => {
                tracing::warn!(%sale, error = %e, retry_in = ?backoff, "{what} failed; retrying");
            }
        }
        failed();
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

/// Appends `events` to the sale's journal, retrying until it succeeds or
/// the journal says this writer is fenced. While an append has failed, or
/// has taken longer than `stalled_after` (a broker that does not answer),
/// the service reports itself not ready.
async fn append(
    ports: &Ports,
    health: &Health,
    stalled_after: Duration,
    sale: SaleId,
    events: &[Event],
) -> Result<(), StorageError> {
    let mut failing: Option<Failing<'_>> = None;
    let deadline = ports.clock.now().saturating_add(stalled_after);
    let attempts = retry(
        "journal append",
        sale,
        || ports.storage.append(sale, events),
        || {
            failing.get_or_insert_with(|| Failing::new(&health.failing_appends));
        },
        StorageError::is_fenced,
    );
    tokio::pin!(attempts);
    tokio::select! {
        result = &mut attempts => return result,
        () = ports.clock.sleep_until(deadline) => {}
    }
    let _stalled = Failing::new(&health.failing_appends);
    attempts.await
}

/// The sale's task: takes every waiting command as one batch, applies it at
/// one `now`, appends the batch's events to storage once, hands them to the
/// publisher, and only then replies. Between batches it sleeps until the
/// engine's `poll_timeout` or the next command. Ends when every sender is
/// gone, after committing and publishing what it has.
pub(super) async fn run_sale(
    mut engine: Engine,
    mut commands: mpsc::Receiver<Command>,
    ports: Ports,
    health: Arc<Health>,
    config: ServiceConfig,
    (backlog, mut journaled): (Vec<Event>, u64),
) {
    let sale = engine.config().id;
    // An append still under way after a quarter of the commit timeout
    // makes the service not ready: before callers start getting 503s, and
    // until it has gone through (a broker that came back may take a while
    // to reconnect).
    let stalled_after = config.commit_timeout / 4;
    let (publish, batches) = mpsc::channel::<Publish>(config.publish_queue.max(1));
    let progress = Arc::new(Mutex::new(Delivered {
        upto: journaled,
        receipt: None,
    }));
    let remembers = ports.sink.remembers();
    // The journal's last marker said at most this much.
    let mut marked = if remembers { 0 } else { u64::MAX };
    let publisher = tokio::spawn(run_publisher(
        sale,
        batches,
        ports.sink.clone(),
        progress.clone(),
    ));
    if !backlog.is_empty() {
        // The publisher lives as long as this task; a send cannot fail.
        let _ = publish.send(Publish::Events(backlog, journaled)).await;
    }
    let mut snapshots = Snapshots {
        sale,
        every: config.snapshot_after,
        wait: stalled_after,
        remembers,
        progress: &progress,
        publish: &publish,
        base: 0,
    };
    snapshots
        .maybe(&mut engine, &ports, &mut journaled, &mut marked)
        .await;
    let mut measures = Measures::new(sale);
    measures.gauges(&engine);
    let mut batch = Vec::with_capacity(MAX_BATCH);
    let mut done = Vec::with_capacity(MAX_BATCH);
    let mut last_write = ports.clock.now();
    // Set when another writer took the journal: this one writes no more.
    let mut fenced_off = false;
    loop {
        let beat = config
            .keep_alive
            .map(|every| last_write.saturating_add(every));
        let wake = match (engine.poll_timeout(), beat) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
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
        done.extend(
            batch
                .drain(..)
                .map(|c| execute(&mut engine, &mut measures, now, c)),
        );
        let mut events: Vec<Event> = engine.drain_events().collect();
        if !events.is_empty() {
            // Say how far the sink has got, with the batch (no append of
            // its own): a restart offers it only what came after.
            if let Some(marker) = progress_marker(&engine, &progress, &mut marked) {
                events.push(marker);
            }
            let appending = std::time::Instant::now();
            let appended = append(&ports, &health, stalled_after, sale, &events).await;
            measures.appended(appending.elapsed());
            if let Err(e) = appended {
                // Another writer has the journal: nothing decided here
                // since may be acknowledged. Callers get "unavailable".
                fenced(&health, sale, &e);
                fenced_off = true;
                break;
            }
            last_write = now;
            journaled += events.len() as u64;
            measures.committed(&engine, &events);
            // Waits while the publisher's queue is full: a sink that cannot
            // keep up slows the sale down instead of filling memory.
            let _ = publish.send(Publish::Events(events, journaled)).await;
        }
        for answer in done.drain(..) {
            match answer {
                Done::Flush(r) => drop(snapshots.publish.send(Publish::Flushed(r)).await),
                answer => answer.send(),
            }
        }
        // Idle past the keep-alive interval: tell the journal, after the
        // replies. Briefly: a beat that does not land at once is no loss,
        // and commands must not wait for it.
        if let Some(beat) = beat
            && last_write < now
            && now >= beat
        {
            last_write = now;
            let answered = tokio::select! {
                r = ports.storage.keep_alive(sale) => r,
                () = ports.clock.sleep_until(now.saturating_add(BEAT_WAIT)) => {
                    Err(StorageError::msg("the journal did not take a beat at once"))
                }
            };
            match answered {
                Ok(()) => {}
                Err(e) if e.is_fenced() => {
                    fenced(&health, sale, &e);
                    fenced_off = true;
                    break;
                }
                Err(e) => tracing::debug!(%sale, error = %e, "journal keep-alive failed"),
            }
        }
        snapshots
            .maybe(&mut engine, &ports, &mut journaled, &mut marked)
            .await;
    }
    drop(publish);
    if let Err(e) = publisher.await {
        tracing::error!(%sale, error = %e, "publisher task failed");
    }
    // Stopping: everything is published; one last marker saves the next
    // start from asking the sink about the tail.
    if !fenced_off
        && let Some(marker) = progress_marker(&engine, &progress, &mut marked)
        && let Err(e) = ports.storage.append(sale, &[marker]).await
    {
        tracing::warn!(%sale, error = %e, "could not journal the sink's progress at shutdown");
    }
}

/// When and how a sale's journal is replaced by a snapshot.
struct Snapshots<'a> {
    sale: SaleId,
    every: Option<u64>,
    /// How long to wait for a sink that remembers to catch up first.
    wait: Duration,
    /// The journal's length at the last snapshot (`MAX`: the storage keeps
    /// none).
    base: u64,
    remembers: bool,
    progress: &'a Mutex<Delivered>,
    publish: &'a mpsc::Sender<Publish>,
}

impl Snapshots<'_> {
    /// Replaces the journal by the engine's snapshot once it has grown by
    /// `every` events since the last one and the snapshot would be at
    /// least a fifth shorter (a history, not a crowd). A sink that remembers is let
    /// catch up first, and the snapshot ends with its marker: everything in
    /// it was delivered. Blocks the sale meanwhile (measured in
    /// BENCHMARKS.md). A storage that keeps no snapshots is not asked again.
    async fn maybe(
        &mut self,
        // `&mut`: an `&Engine` is not `Send` (its id generator is not `Sync`).
        engine: &mut Engine,
        ports: &Ports,
        journaled: &mut u64,
        marked: &mut u64,
    ) {
        let base = &mut self.base;
        let Some(every) = self.every else { return };
        let shorter = (engine.snapshot_len() as u64 + 1).saturating_mul(5) / 4;
        if *base == u64::MAX || *journaled < base.saturating_add(every) || *journaled < shorter {
            return;
        }
        let sale = self.sale;
        if self.remembers {
            // A sink that is down must not hold the sale: no snapshot then,
            // another try after `every` more events.
            let (flushed, published) = oneshot::channel();
            let deadline = ports.clock.now().saturating_add(self.wait);
            let caught_up = self.publish.send(Publish::Flushed(flushed)).await.is_ok()
                && tokio::select! {
                    r = published => r.is_ok(),
                    () = ports.clock.sleep_until(deadline) => false,
                };
            if !caught_up {
                tracing::info!(%sale, "snapshot put off: the sink is behind");
                *base = *journaled;
                return;
            }
        }
        let started = std::time::Instant::now();
        let mut snapshot = engine.snapshot();
        if self.remembers {
            let receipt = self
                .progress
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .receipt
                .clone();
            snapshot.push(Event {
                sale,
                at: engine.now(),
                kind: EventKind::Delivered {
                    upto: snapshot.len() as u64,
                    receipt,
                },
            });
        }
        match ports.storage.snapshot(sale, *journaled, &snapshot).await {
            Ok(true) => {
                tracing::info!(%sale, replaced = *journaled, by = snapshot.len(),
                    took = ?started.elapsed(), "journal snapshot");
                *journaled = snapshot.len() as u64;
                *base = *journaled;
                if self.remembers {
                    *marked = *journaled;
                    self.progress
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .upto = *journaled;
                }
            }
            Ok(false) => *base = u64::MAX,
            Err(e) => {
                // The journal is whole as it was: try again later.
                tracing::warn!(%sale, error = %e, "journal snapshot failed");
                *base = *journaled;
            }
        }
    }
}

/// Stops a sale whose journal another writer took: reported as not ready,
/// for good.
fn fenced(health: &Health, sale: SaleId, e: &StorageError) {
    tracing::error!(%sale, error = %e,
        "another writer took this sale's journal: this service stops serving the sale");
    health.fenced.fetch_add(1, Ordering::Relaxed);
    health.on_fenced.notify_waiters();
}

/// How far the publisher got, as the sale task last heard.
#[derive(Debug)]
struct Delivered {
    upto: u64,
    receipt: Option<String>,
}

/// A [`EventKind::Delivered`] marker if the sink has got further than the
/// journal last said (only for a sink that remembers: `marked` is `MAX`
/// otherwise).
fn progress_marker(
    engine: &Engine,
    progress: &Mutex<Delivered>,
    marked: &mut u64,
) -> Option<Event> {
    let now = progress.lock().unwrap_or_else(PoisonError::into_inner);
    if *marked == u64::MAX || now.upto <= *marked {
        return None;
    }
    *marked = now.upto;
    Some(Event {
        sale: engine.config().id,
        at: engine.now(),
        kind: EventKind::Delivered {
            upto: now.upto,
            receipt: now.receipt.clone(),
        },
    })
}

async fn run_publisher(
    sale: SaleId,
    mut batches: mpsc::Receiver<Publish>,
    sink: Arc<dyn EventSink>,
    progress: Arc<Mutex<Delivered>>,
) {
    // Everything queued while the last publish was under way goes out as
    // one: a sink with a round trip per publish (Kafka) keeps up with any
    // rate, its batches growing instead of its queue.
    let mut queued = Vec::new();
    let mut events = Vec::new();
    let mut flushed = Vec::new();
    let mut end = None;
    while batches.recv_many(&mut queued, MAX_BATCH).await > 0 {
        for item in queued.drain(..) {
            match item {
                Publish::Events(batch, upto) => {
                    events.extend(batch);
                    end = Some(upto);
                }
                Publish::Flushed(r) => flushed.push(r),
            }
        }
        if !events.is_empty() {
            // Nothing is fatal to a publish: it is retried until it goes.
            let receipt = retry(
                "publish",
                sale,
                || sink.publish_receipted(&events),
                || {},
                |_| false,
            )
            .await
            .ok()
            .flatten();
            events.clear();
            let mut now = progress.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(upto) = end.take() {
                now.upto = now.upto.max(upto);
            }
            if receipt.is_some() {
                now.receipt = receipt;
            }
        }
        for r in flushed.drain(..) {
            let _ = r.send(());
        }
    }
}
