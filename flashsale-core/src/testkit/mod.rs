//! For tests: a [`ManualClock`], and conformance suites that any
//! [`Storage`] or [`EventSink`] implementation runs in one `#[test]`:
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! use flashsale_core::MemoryStorage;
//! use flashsale_core::testkit::storage_conformance;
//!
//! storage_conformance(|| async { MemoryStorage::new() }).await;
//! # }
//! ```

pub mod invariants;
mod scenario;

pub use invariants::Checker;
pub use scenario::{Op, Scenario, scenario_config, with_opening};

use std::future::Future;
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::watch;

use crate::catalogue::TxMessage;
use crate::engine::{Engine, Event, SaleConfig};
use crate::id::{SaleId, SequentialIds, TxId};
use crate::ports::{BroadcastSink, Clock, EventSink, Storage};
use crate::time::Timestamp;

/// A clock that moves only when told to. Sleepers wake when it passes their
/// deadline, so tests drive time without sleeping.
#[derive(Debug, Clone)]
pub struct ManualClock {
    now: watch::Sender<Timestamp>,
}

impl ManualClock {
    /// A clock showing `start`.
    pub fn new(start: Timestamp) -> Self {
        ManualClock {
            now: watch::Sender::new(start),
        }
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        self.now.send_modify(|t| *t = t.saturating_add(by));
    }

    /// Sets the clock to `to` (never backwards).
    pub fn set(&self, to: Timestamp) {
        self.now.send_modify(|t| *t = (*t).max(to));
    }
}

#[async_trait]
impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        *self.now.borrow()
    }

    async fn sleep_until(&self, deadline: Timestamp) {
        let mut rx = self.now.subscribe();
        // The sender lives in `self`, so this only ends when time comes.
        let _ = rx.wait_for(|now| *now >= deadline).await;
    }
}

fn sale(n: u8) -> SaleId {
    SaleId::from(bson::oid::ObjectId::from_bytes([n; 12]))
}

/// A realistic journal for one sale: buys, payments, expiries, leaves and a
/// sell-out, as an engine wrote it.
pub fn sample_journal(id: SaleId, buyers: usize) -> Vec<Event> {
    let t0 = Timestamp::from_millis(1_000_000);
    let mut config = SaleConfig::new(id, (buyers / 3).max(1) as u64, t0, Timestamp::MAX);
    config.payment_timeout = Duration::from_millis(50);
    config.max_payment_slots = Some(3);
    let mut engine =
        Engine::new(t0, config, Box::new(SequentialIds::default())).expect("valid config");
    let mut txs: Vec<TxId> = Vec::new();
    for i in 0..buyers {
        let now = t0.saturating_add(Duration::from_millis(i as u64 * 7));
        if let Ok(a) = engine.buy(now, &format!("buyer-{i}")) {
            txs.push(a.tx);
        }
        match i % 4 {
            0 => drop(engine.paid(now, txs[i / 2 % txs.len()])),
            1 => drop(engine.leave(now, txs[txs.len() - 1])),
            _ => engine.handle_timeout(now),
        }
    }
    engine.drain_events().collect()
}

/// Checks the observable contract of a [`Storage`]: per-sale order, sales
/// kept apart, empty appends harmless, concurrent appends kept, and a
/// journal that replays into the engine that wrote it. `make` returns a new,
/// empty storage each call.
pub async fn storage_conformance<S, F, Fut>(mut make: F)
where
    S: Storage,
    F: FnMut() -> Fut,
    Fut: Future<Output = S>,
{
    // An empty storage knows nothing.
    let storage = make().await;
    assert!(storage.sales().await.expect("sales").is_empty());
    assert!(storage.read(sale(1)).await.expect("read").is_empty());

    // Batches of two sales, interleaved, come back per sale in order.
    let (a, b) = (sale(1), sale(2));
    let ja = sample_journal(a, 60);
    let jb = sample_journal(b, 40);
    storage.append(a, &[]).await.expect("empty append");
    for (ca, cb) in ja.chunks(7).zip(jb.chunks(5)) {
        storage.append(a, ca).await.expect("append a");
        storage.append(b, cb).await.expect("append b");
    }
    let rest_b = jb.chunks(5).skip(ja.chunks(7).len()).flatten().cloned();
    storage
        .append(b, &rest_b.collect::<Vec<_>>())
        .await
        .expect("append rest of b");
    let rest_a: Vec<Event> = ja
        .chunks(7)
        .skip(jb.chunks(5).len())
        .flatten()
        .cloned()
        .collect();
    storage.append(a, &rest_a).await.expect("append rest of a");
    assert_eq!(
        storage.read(a).await.expect("read a"),
        ja,
        "sale a's journal"
    );
    assert_eq!(
        storage.read(b).await.expect("read b"),
        jb,
        "sale b's journal"
    );
    let mut sales = storage.sales().await.expect("sales");
    sales.sort();
    assert_eq!(sales, vec![a, b]);

    // The journal replays into the same engine.
    let replayed = Engine::replay(
        storage.read(a).await.expect("read"),
        Box::new(SequentialIds::default()),
    )
    .expect("replay");
    let original = Engine::replay(&ja, Box::new(SequentialIds::default())).expect("replay");
    assert!(
        replayed.transactions().eq(original.transactions()),
        "replay rebuilds the same transactions"
    );
    assert_eq!(replayed.sold(), original.sold());

    // Concurrent appends to different sales are all kept, each in order.
    let storage = std::sync::Arc::new(make().await);
    let journals: Vec<(SaleId, Vec<Event>)> = (10..18)
        .map(|n| (sale(n), sample_journal(sale(n), 30)))
        .collect();
    let writers = journals.iter().cloned().map(|(id, journal)| {
        let storage = storage.clone();
        async move {
            for chunk in journal.chunks(3) {
                storage.append(id, chunk).await.expect("concurrent append");
            }
        }
    });
    futures_join_all(writers).await;
    for (id, journal) in &journals {
        assert_eq!(
            &storage.read(*id).await.expect("read"),
            journal,
            "sale {id}"
        );
    }

    // A large batch goes in whole.
    let storage = make().await;
    let big = sample_journal(sale(3), 5_000);
    storage.append(sale(3), &big).await.expect("large append");
    assert_eq!(storage.read(sale(3)).await.expect("read"), big);

    // A snapshot replaces what it covers (if the storage keeps snapshots),
    // appends go on after it, a second one covers the first, and the
    // journal replays into the same engine whatever the storage did.
    let (s4, journal) = (sale(4), sample_journal(sale(4), 300));
    let (first, rest) = journal.split_at(journal.len() / 2);
    let (second, third) = rest.split_at(rest.len() / 2);
    let storage = make().await;
    storage.append(s4, first).await.expect("append");
    let replay = |events: &[Event]| {
        Engine::replay(events, Box::new(SequentialIds::default())).expect("replay")
    };
    let snap = replay(first).snapshot();
    let kept = storage
        .snapshot(s4, first.len() as u64, &snap)
        .await
        .expect("snapshot");
    storage
        .append(s4, second)
        .await
        .expect("append after a snapshot");
    let read = storage.read(s4).await.expect("read");
    let expected = if kept {
        [snap.as_slice(), second].concat()
    } else {
        [first, second].concat()
    };
    assert_eq!(read, expected, "the snapshot, then what came after");
    let snap2 = replay(&read).snapshot();
    let kept = storage
        .snapshot(s4, read.len() as u64, &snap2)
        .await
        .expect("a second snapshot");
    storage.append(s4, third).await.expect("append");
    let read = storage.read(s4).await.expect("read");
    let (a, b) = (replay(&read), replay(&journal));
    assert!(a.transactions().eq(b.transactions()), "same engine");
    assert_eq!((a.sold(), a.poll_timeout()), (b.sold(), b.poll_timeout()));
    if kept {
        assert_eq!(read, [snap2.as_slice(), third].concat());
    }
    assert!(storage.sales().await.expect("sales").contains(&s4));
}

/// Reads back what an [`EventSink`] delivered, as the catalogue would see
/// it.
#[async_trait]
pub trait SinkProbe: Send {
    /// The next delivered message; `None` if none will come.
    async fn next(&mut self) -> Option<TxMessage>;
}

#[async_trait]
impl SinkProbe for tokio::sync::broadcast::Receiver<Event> {
    async fn next(&mut self) -> Option<TxMessage> {
        loop {
            match self.recv().await {
                Ok(e) => {
                    if let Some(m) = TxMessage::from_event(&e) {
                        return Some(m);
                    }
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
            }
        }
    }
}

/// Checks the observable contract of an [`EventSink`]: every `paid` and
/// `switch` published is delivered once, in order per sale, whatever else
/// is published around them. `make` returns a sink and a probe that reads
/// what it delivered (subscribed before anything is published).
pub async fn sink_conformance<S, P, F, Fut>(mut make: F)
where
    S: EventSink,
    P: SinkProbe,
    F: FnMut() -> Fut,
    Fut: Future<Output = (S, P)>,
{
    let (sink, mut probe) = make().await;
    let journals = [sample_journal(sale(1), 200), sample_journal(sale(2), 120)];
    sink.publish(&[]).await.expect("empty publish");
    // Interleave the two sales' batches as two engines would.
    let mut chunks: Vec<&[Event]> = Vec::new();
    let (mut a, mut b) = (journals[0].chunks(9), journals[1].chunks(4));
    loop {
        match (a.next(), b.next()) {
            (None, None) => break,
            (x, y) => chunks.extend(x.into_iter().chain(y)),
        }
    }
    for chunk in chunks {
        sink.publish(chunk).await.expect("publish");
    }
    let expected: Vec<Vec<TxMessage>> = journals
        .iter()
        .map(|j| j.iter().filter_map(TxMessage::from_event).collect())
        .collect();
    let total: usize = expected.iter().map(Vec::len).sum();
    let mut got = Vec::with_capacity(total);
    while got.len() < total {
        match tokio::time::timeout(Duration::from_secs(30), probe.next()).await {
            Ok(Some(m)) => got.push(m),
            Ok(None) => panic!("sink closed after {} of {total} messages", got.len()),
            Err(_) => panic!("only {} of {total} messages arrived in 30 s", got.len()),
        }
    }
    for (journal, expected) in journals.iter().zip(&expected) {
        assert!(!expected.is_empty());
        let sale = journal[0].sale;
        let got: Vec<&TxMessage> = got.iter().filter(|m| m.sale_id == sale).collect();
        assert!(
            got.iter().copied().eq(expected.iter()),
            "sale {sale}: every paid and switch once, in order"
        );
    }
}

/// Joins futures without pulling in the `futures` crate.
async fn futures_join_all<F: Future<Output = ()> + Send + 'static>(
    futures: impl Iterator<Item = F>,
) {
    let handles: Vec<_> = futures.map(tokio::spawn).collect();
    for h in handles {
        h.await.expect("task panicked");
    }
}

/// The in-memory sink and a probe for it, for [`sink_conformance`].
pub async fn broadcast_sink_with_probe() -> (BroadcastSink, tokio::sync::broadcast::Receiver<Event>)
{
    let sink = BroadcastSink::new(1 << 16);
    let probe = sink.subscribe();
    (sink, probe)
}
