//! The service: one single-writer task per sale, group commit, timers from
//! the clock port, restart by replay. Time is a `ManualClock`: no sleeps.
#![allow(clippy::unwrap_used, reason = "a test fails at the first surprise")]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use flashsale_core::service::{CallError, Ports, ServiceError};
use flashsale_core::testkit::{
    ManualClock, broadcast_sink_with_probe, sink_conformance, storage_conformance,
};
use flashsale_core::{
    Admission, BroadcastSink, BuyError, Event, EventKind, MemoryStorage, PaidError, PaidOutcome,
    Place, SaleConfig, SaleId, SequentialIds, Service, Storage, StorageError, Timestamp, TxState,
};

const T0: Timestamp = Timestamp::from_millis(1_700_000_000_000);

fn sale(n: u8) -> SaleId {
    SaleId::from(bson::oid::ObjectId::from_bytes([n; 12]))
}

/// A status without its estimate: the grant rate behind it is measured by
/// the running engine, and unknown again after a restart.
fn unmeasured(status: flashsale_core::Status) -> flashsale_core::Status {
    flashsale_core::Status {
        estimate: None,
        ..status
    }
}

fn config(n: u8, quantity: u64) -> SaleConfig {
    SaleConfig::new(
        sale(n),
        quantity,
        T0,
        T0.saturating_add(Duration::from_secs(3600)),
    )
}

struct Rig {
    clock: ManualClock,
    storage: Arc<dyn Storage>,
    sink: BroadcastSink,
}

impl Rig {
    fn new(storage: Arc<dyn Storage>) -> Self {
        Rig {
            clock: ManualClock::new(T0),
            storage,
            sink: BroadcastSink::new(1 << 16),
        }
    }

    fn ports(&self) -> Ports {
        Ports {
            clock: Arc::new(self.clock.clone()),
            storage: self.storage.clone(),
            sink: Arc::new(self.sink.clone()),
            ids: Arc::new(|| Box::new(SequentialIds::default())),
        }
    }
}

#[tokio::test]
async fn memory_storage_passes_the_conformance_suite() {
    storage_conformance(|| async { MemoryStorage::new() }).await;
}

#[tokio::test]
async fn broadcast_sink_passes_the_conformance_suite() {
    sink_conformance(broadcast_sink_with_probe).await;
}

/// A sale of one unit with ana holding the slot and bob waiting, and a
/// receiver of its events from the start.
async fn one_unit_two_buyers() -> (
    Rig,
    tokio::sync::broadcast::Receiver<Event>,
    Service,
    Admission,
    Admission,
) {
    let rig = Rig::new(Arc::new(MemoryStorage::new()));
    let events = rig.sink.subscribe();
    let service = Service::open(rig.ports()).await.unwrap();
    service.create_sale(config(1, 1)).await.unwrap();
    let ana = service.buy(sale(1), "ana").await.unwrap();
    let bob = service.buy(sale(1), "bob").await.unwrap();
    (rig, events, service, ana, bob)
}

#[tokio::test]
async fn buy_pay_and_status_through_the_service() {
    let (_rig, mut events, service, ana, bob) = one_unit_two_buyers().await;
    assert!(matches!(ana.place, Place::Payment { .. }));
    assert_eq!(bob.place, Place::Waiting { position: 1 });
    assert_eq!(service.paid(sale(1), ana.tx).await, Ok(PaidOutcome::Paid));
    assert_eq!(
        service.status(sale(1), bob.tx).await.unwrap().state,
        TxState::RejectedSoldOut
    );
    assert_eq!(
        service.buy(sale(1), "cy").await,
        Err(CallError::Refused(BuyError::SoldOut))
    );
    assert_eq!(
        service.buy(sale(9), "cy").await,
        Err(CallError::UnknownSale)
    );
    assert_eq!(
        service.paid(sale(9), ana.tx).await,
        Err(CallError::UnknownSale)
    );
    assert_eq!(
        service.status(sale(9), ana.tx).await,
        Err(CallError::UnknownSale)
    );
    service.shutdown().await;

    // Committed events were published, in order.
    let mut kinds = Vec::new();
    while let Ok(e) = events.try_recv() {
        kinds.push(
            serde_json::to_value(&e.kind).unwrap()["type"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    assert_eq!(
        kinds,
        [
            "opened", "started", "joined", "joined", "paid", "sold_out", "dropped"
        ]
    );
}

#[tokio::test]
async fn the_clock_expires_slots_and_promotes_the_next_buyer() {
    let (rig, mut events, service, ana, bob) = one_unit_two_buyers().await;

    rig.clock.advance(Duration::from_secs(60));
    // The sale's task wakes by itself: wait for the promotion to be published.
    let promoted = loop {
        let e = events.recv().await.unwrap();
        if let EventKind::Promoted { tx, deadline, .. } = e.kind {
            break (tx, deadline);
        }
    };
    assert_eq!(
        promoted,
        (bob.tx, T0.saturating_add(Duration::from_secs(120)))
    );
    assert_eq!(
        service.status(sale(1), ana.tx).await.unwrap().state,
        TxState::Expired
    );
    assert_eq!(
        service.paid(sale(1), ana.tx).await,
        Err(CallError::Refused(PaidError::SlotExpired))
    );
    assert_eq!(service.paid(sale(1), bob.tx).await, Ok(PaidOutcome::Paid));
    service.shutdown().await;
}

#[tokio::test]
async fn a_restarted_service_replays_every_sale_from_storage() {
    let storage: Arc<dyn Storage> = Arc::new(MemoryStorage::new());
    let rig = Rig::new(storage.clone());
    let service = Service::open(rig.ports()).await.unwrap();
    service.create_sale(config(1, 2)).await.unwrap();
    service.create_sale(config(2, 5)).await.unwrap();
    let mut waiting = Vec::new();
    for i in 0..6 {
        let a = service.buy(sale(1), &format!("b{i}")).await.unwrap();
        if i == 0 {
            service.paid(sale(1), a.tx).await.unwrap();
        }
        waiting.push(a.tx);
    }
    service.buy(sale(2), "solo").await.unwrap();
    let before: Vec<_> = {
        let mut v = Vec::new();
        for tx in &waiting {
            v.push(unmeasured(service.status(sale(1), *tx).await.unwrap()));
        }
        v
    };
    let stats = service.stats(sale(1)).await.unwrap();
    service.shutdown().await;

    let mut live = rig.sink.subscribe();
    let service = Service::open(rig.ports()).await.unwrap();
    // Each sale's opening and the journal's payment are offered to the
    // sink again, and nothing else.
    let mut again = Vec::new();
    for _ in 0..3 {
        let e = live.recv().await.unwrap();
        again.push(match e.kind {
            EventKind::Opened { config, .. } => format!("opened {}", config.id),
            EventKind::Paid { tx, .. } => format!("paid {tx}"),
            other => format!("{other:?}"),
        });
    }
    again.sort();
    let mut expected = vec![
        format!("opened {}", sale(1)),
        format!("opened {}", sale(2)),
        format!("paid {}", waiting[0]),
    ];
    expected.sort();
    assert_eq!(again, expected);
    let mut ids = service.sale_ids();
    ids.sort();
    assert_eq!(ids, vec![sale(1), sale(2)]);
    assert_eq!(service.stats(sale(1)).await.unwrap(), stats);
    assert_eq!(service.stats(sale(2)).await.unwrap().sold, 0);
    assert!(live.try_recv().is_err());
    for (tx, status) in waiting.iter().zip(before) {
        assert_eq!(service.status(sale(1), *tx).await.unwrap(), status);
    }
    // Names are remembered across the restart.
    assert!(matches!(
        service.buy(sale(1), "b3").await,
        Err(CallError::Refused(BuyError::AlreadyJoined { .. }))
    ));
    // New ids do not collide with replayed ones.
    let fresh = service.buy(sale(1), "new").await.unwrap();
    assert!(!waiting.contains(&fresh.tx));
    assert!(matches!(
        service.create_sale(config(1, 2)).await,
        Err(ServiceError::DuplicateSale(_))
    ));
    service.shutdown().await;
}

/// A storage that counts appends and can be told to fail the next few.
#[derive(Default)]
struct Flaky {
    inner: MemoryStorage,
    appends: AtomicUsize,
    failures_left: AtomicUsize,
}

#[async_trait]
impl Storage for Flaky {
    async fn append(&self, sale: SaleId, events: &[Event]) -> Result<(), StorageError> {
        self.appends.fetch_add(1, Ordering::SeqCst);
        let fail = self
            .failures_left
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if fail {
            return Err(StorageError::msg("disk on fire"));
        }
        self.inner.append(sale, events).await
    }
    async fn read(&self, sale: SaleId) -> Result<Vec<Event>, StorageError> {
        self.inner.read(sale).await
    }
    async fn sales(&self) -> Result<Vec<SaleId>, StorageError> {
        self.inner.sales().await
    }
}

#[tokio::test(flavor = "current_thread")]
async fn concurrent_commands_share_one_journal_append() {
    let storage = Arc::new(Flaky::default());
    let rig = Rig::new(storage.clone());
    let service = Service::open(rig.ports()).await.unwrap();
    service.create_sale(config(1, 1_000)).await.unwrap();
    let before = storage.appends.load(Ordering::SeqCst);
    let buyers: Vec<_> = (0..200)
        .map(|i| {
            let service = service.clone();
            tokio::spawn(async move { service.buy(sale(1), &format!("b{i}")).await })
        })
        .collect();
    for b in buyers {
        b.await.unwrap().unwrap();
    }
    let appends = storage.appends.load(Ordering::SeqCst) - before;
    assert!(
        appends < 200,
        "200 buys took {appends} appends: no group commit"
    );
    let journal = storage.inner.read(sale(1)).await.unwrap();
    let joins = journal
        .iter()
        .filter(|e| matches!(e.kind, EventKind::Joined { .. }))
        .count();
    assert_eq!(joins, 200, "every buy journaled");
    service.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_failing_journal_delays_answers_but_loses_nothing() {
    let storage = Arc::new(Flaky::default());
    let rig = Rig::new(storage.clone());
    let service = Service::open(rig.ports()).await.unwrap();
    service.create_sale(config(1, 10)).await.unwrap();
    storage.failures_left.store(3, Ordering::SeqCst);
    let before = storage.appends.load(Ordering::SeqCst);
    // Answered only once the journal took it, after three failed appends.
    let ana = service.buy(sale(1), "ana").await.unwrap();
    assert_eq!(storage.appends.load(Ordering::SeqCst) - before, 4);
    service.shutdown().await;
    let replayed = Service::open(Rig::new(Arc::new(storage.inner.clone())).ports())
        .await
        .unwrap();
    assert_eq!(
        replayed.status(sale(1), ana.tx).await.unwrap().state,
        TxState::Payment
    );
    replayed.shutdown().await;
}

#[tokio::test]
async fn a_transaction_id_alone_finds_its_sale_among_many() {
    let rig = Rig::new(Arc::new(MemoryStorage::new()));
    let service = Service::open(rig.ports()).await.unwrap();
    for n in 1..=50 {
        service.create_sale(config(n, 5)).await.unwrap();
    }
    let last = service.buy(sale(50), "ana").await.unwrap();
    let first = service.buy(sale(1), "ana").await.unwrap();
    assert_ne!(last.tx, first.tx);
    // One candidate each: the lookup asks one sale, not fifty.
    assert_eq!(service.sales_of(last.tx), vec![sale(50)]);
    assert_eq!(service.sales_of(first.tx), vec![sale(1)]);
    let (found, status) = service.status_of(last.tx).await.unwrap();
    assert_eq!((found, status.state), (sale(50), TxState::Payment));
    assert_eq!(
        service.paid_tx(last.tx).await,
        Ok((sale(50), PaidOutcome::Paid))
    );
    assert_eq!(service.leave_tx(first.tx).await, Ok((sale(1), ())));
    assert_eq!(
        service.status_of(first.tx).await.unwrap().1.state,
        TxState::Left
    );
    // An id nobody made asks nobody.
    let stranger: flashsale_core::TxId = "ffffffffffffffffffffffff".parse().unwrap();
    assert!(service.sales_of(stranger).is_empty());
    assert_eq!(
        service.status_of(stranger).await,
        Err(CallError::Refused(
            flashsale_core::StatusError::UnknownTransaction
        ))
    );
    service.shutdown().await;
}

#[tokio::test]
async fn ids_made_by_another_generator_are_still_found() {
    let rig = Rig::new(Arc::new(MemoryStorage::new()));
    let service = Service::open(rig.ports()).await.unwrap();
    service.create_sale(config(1, 5)).await.unwrap();
    // An engine built elsewhere: a buyer imported from the reference's
    // backend, and one who joined under that engine's own generator.
    let mut engine = flashsale_core::Engine::new(
        T0,
        config(2, 5),
        Box::new(flashsale_core::ObjectIdGenerator::with_seed(
            0xabcd_0000_0000,
        )),
    )
    .unwrap();
    let imported: flashsale_core::TxId = "65a1b2c3d4e5f60718293a4b".parse().unwrap();
    engine.import_paid(T0, imported, "old").unwrap();
    let joined = engine.buy(T0, "ana").unwrap().tx;
    service.adopt(engine).await.unwrap();
    let made_here = service.buy(sale(2), "bob").await.unwrap().tx;
    for (tx, state) in [
        (imported, TxState::Paid),
        (joined, TxState::Payment),
        (made_here, TxState::Payment),
    ] {
        let (found, status) = service.status_of(tx).await.unwrap();
        assert_eq!((found, status.state), (sale(2), state), "{tx}");
    }
    service.shutdown().await;

    // After a restart, replayed ids are found the same way.
    let service = Service::open(rig.ports()).await.unwrap();
    assert_eq!(service.status_of(imported).await.unwrap().0, sale(2));
    assert_eq!(service.status_of(made_here).await.unwrap().0, sale(2));
    service.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_journal_that_cannot_commit_answers_unavailable_and_is_not_ready() {
    let storage = Arc::new(Flaky::default());
    let rig = Rig::new(storage.clone());
    let service = Service::open(rig.ports()).await.unwrap();
    service.create_sale(config(1, 10)).await.unwrap();
    assert!(service.is_ready());
    storage.failures_left.store(usize::MAX, Ordering::SeqCst);
    let buy = tokio::spawn({
        let service = service.clone();
        async move { service.buy(sale(1), "ana").await }
    });
    while service.is_ready() {
        tokio::task::yield_now().await;
    }
    // The commit timeout runs on the service's clock.
    rig.clock.advance(Duration::from_secs(11));
    assert_eq!(buy.await.unwrap(), Err(CallError::Unavailable));
    assert!(!service.is_ready());
    // The journal comes back: the buy was committed after all, and says so.
    storage.failures_left.store(0, Ordering::SeqCst);
    assert!(matches!(
        service.buy(sale(1), "ana").await,
        Err(CallError::Refused(BuyError::AlreadyJoined { .. }))
    ));
    assert!(service.is_ready());
    service.shutdown().await;
}

/// A journal that counts keep-alives and, once told, refuses every write
/// as fenced (another writer took it).
#[derive(Default)]
struct Watched {
    inner: MemoryStorage,
    beats: AtomicUsize,
    taken: std::sync::atomic::AtomicBool,
}

#[async_trait]
impl Storage for Watched {
    async fn append(&self, sale: SaleId, events: &[Event]) -> Result<(), StorageError> {
        if self.taken.load(Ordering::SeqCst) {
            return Err(StorageError::fenced("taken"));
        }
        self.inner.append(sale, events).await
    }
    async fn read(&self, sale: SaleId) -> Result<Vec<Event>, StorageError> {
        self.inner.read(sale).await
    }
    async fn sales(&self) -> Result<Vec<SaleId>, StorageError> {
        self.inner.sales().await
    }
    async fn keep_alive(&self, _: SaleId) -> Result<(), StorageError> {
        self.beats.fetch_add(1, Ordering::SeqCst);
        if self.taken.load(Ordering::SeqCst) {
            return Err(StorageError::fenced("taken"));
        }
        Ok(())
    }
}

#[tokio::test]
async fn an_idle_sale_keeps_its_journal_alive_and_stops_once_fenced() {
    let storage = Arc::new(Watched::default());
    let rig = Rig::new(storage.clone());
    let mut settings = flashsale_core::service::ServiceConfig::default();
    settings.keep_alive = Some(Duration::from_secs(1));
    let service = Service::open_with(rig.ports(), settings).await.unwrap();
    service.create_sale(config(1, 5)).await.unwrap();
    service.buy(sale(1), "ana").await.unwrap();
    // Busy: no beat needed.
    assert_eq!(storage.beats.load(Ordering::SeqCst), 0);
    // Idle for a second of the clock: one beat; the stats call waits for
    // the sale's task to have gone round.
    rig.clock.advance(Duration::from_millis(1_001));
    for _ in 0..10_000 {
        if storage.beats.load(Ordering::SeqCst) > 0 {
            break;
        }
        service.stats(sale(1)).await.unwrap();
        tokio::task::yield_now().await;
    }
    assert!(storage.beats.load(Ordering::SeqCst) > 0, "a beat");
    assert!(service.is_ready());
    // Another writer takes the journal: the next beat finds out, and the
    // sale stops at once (its commands are refused), not at its next buy.
    storage.taken.store(true, Ordering::SeqCst);
    rig.clock.advance(Duration::from_millis(1_001));
    service.fenced().await;
    assert!(!service.is_ready());
    assert!(matches!(
        service.buy(sale(1), "bo").await,
        Err(CallError::Unavailable)
    ));
}

#[tokio::test]
async fn a_long_journal_is_replaced_by_its_snapshot_and_replays_the_same() {
    let storage = MemoryStorage::new();
    let rig = Rig::new(Arc::new(storage.clone()));
    let mut published = rig.sink.subscribe();
    let mut settings = flashsale_core::service::ServiceConfig::default();
    settings.snapshot_after = Some(40);
    let service = Service::open_with(rig.ports(), settings.clone())
        .await
        .unwrap();
    let mut capped = config(1, 100);
    capped.max_payment_slots = Some(2);
    service.create_sale(capped).await.unwrap();
    // A queue behind two slots: each holder pays or leaves, and the next
    // in line is promoted — a history of about three events a buyer.
    let mut txs = Vec::new();
    for i in 0..80 {
        txs.push(service.buy(sale(1), &format!("b{i}")).await.unwrap().tx);
    }
    for (i, tx) in txs.iter().enumerate().take(60) {
        if i % 4 == 0 {
            service.leave(sale(1), *tx).await.unwrap();
        } else {
            service.paid(sale(1), *tx).await.unwrap();
        }
    }
    let mut before = Vec::new();
    for tx in &txs {
        before.push(unmeasured(service.status(sale(1), *tx).await.unwrap()));
    }
    let stats = service.stats(sale(1)).await.unwrap();
    service.shutdown().await;
    let mut history = 0;
    while published.try_recv().is_ok() {
        history += 1;
    }
    let journal = storage.read(sale(1)).await.unwrap();
    assert!(
        journal.len() < history,
        "{} events kept of {history}",
        journal.len()
    );
    assert_eq!(
        journal
            .iter()
            .filter(|e| matches!(e.kind, EventKind::Paid { .. }))
            .count(),
        45,
        "every payment is still a Paid event"
    );

    let service = Service::open_with(rig.ports(), settings).await.unwrap();
    assert_eq!(service.stats(sale(1)).await.unwrap(), stats);
    for (tx, was) in txs.iter().zip(&before) {
        assert_eq!(&service.status(sale(1), *tx).await.unwrap(), was);
    }
    // Names are remembered through the snapshot.
    assert!(matches!(
        service.buy(sale(1), "b1").await,
        Err(CallError::Refused(BuyError::AlreadyJoined { .. }))
    ));
    service.shutdown().await;
}

/// A sink that remembers what it was given, and is down: nothing it is
/// handed is ever published.
struct DownSink;

#[async_trait]
impl flashsale_core::EventSink for DownSink {
    async fn publish(&self, _: &[Event]) -> Result<(), flashsale_core::SinkError> {
        std::future::pending().await
    }
    fn remembers(&self) -> bool {
        true
    }
}

#[tokio::test]
async fn a_sink_that_is_down_does_not_hold_the_sale_for_a_snapshot() {
    let rig = Rig::new(Arc::new(MemoryStorage::new()));
    let mut ports = rig.ports();
    ports.sink = Arc::new(DownSink);
    let mut settings = flashsale_core::service::ServiceConfig::default();
    settings.snapshot_after = Some(10);
    let service = Service::open_with(ports, settings).await.unwrap();
    let mut capped = config(1, 100);
    capped.max_payment_slots = Some(1);
    service.create_sale(capped).await.unwrap();
    let mut txs = Vec::new();
    for i in 0..20 {
        txs.push(service.buy(sale(1), &format!("b{i}")).await.unwrap().tx);
    }
    // Each leave promotes the next: a history long enough to snapshot,
    // which would first wait for the sink. The clock moves on meanwhile.
    let leaving = {
        let service = service.clone();
        tokio::spawn(async move {
            let mut answers = Vec::new();
            for tx in &txs[..18] {
                answers.push(service.leave(sale(1), *tx).await);
            }
            answers
        })
    };
    // At most an hour of the clock: a sale held by the sink never finishes.
    for _ in 0..7_200 {
        if leaving.is_finished() {
            break;
        }
        rig.clock.advance(Duration::from_millis(500));
        tokio::task::yield_now().await;
    }
    assert!(leaving.is_finished(), "the leaves never finished");
    let answers = leaving.await.unwrap();
    assert!(answers.iter().all(Result::is_ok), "{answers:?}");
}
