//! The Kafka journal ([`KafkaStorage`]) against a real Kafka-protocol broker
//! (tansu) on loopback, started by `scripts/test.sh`.
#![allow(clippy::unwrap_used, reason = "a test fails at the first surprise")]

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use flashsale_core::service::Ports;
use flashsale_core::testkit::{sample_journal, storage_conformance};
use flashsale_core::{Event, Place, SaleConfig, SaleId, Service, Storage, Timestamp, TxState};
use flashsale_kafka::{KafkaConfig, KafkaStorage, MAX_PART_BYTES};
use rdkafka::producer::{FutureProducer, FutureRecord};

mod common;
use common::brokers;

/// A prefix no other test (or earlier run on the same broker) uses.
fn fresh_prefix(what: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "journal-{what}-{}-{}-",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

async fn storage(prefix: &str) -> KafkaStorage {
    KafkaStorage::connect(&KafkaConfig::new(&brokers(), "unused"), prefix)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_journal_passes_the_core_storage_conformance_suite() {
    storage_conformance(|| async { storage(&fresh_prefix("conformance")).await }).await;
}

/// A batch as the storage frames it, written by hand (by the writer of
/// the first claim, epoch 1).
fn frame(seq: u64, part: u32, parts: u32, events: &[Event]) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "seq": seq, "part": part, "parts": parts, "epoch": 1, "events": events,
    }))
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn torn_and_repeated_batches_are_read_once_and_appends_follow_on() {
    let prefix = fresh_prefix("torn");
    let sale = "5f0000000000000000000001".parse::<SaleId>().unwrap();
    let journal = sample_journal(sale, 90);
    let (a, rest) = journal.split_at(10);
    let (b, c) = rest.split_at(rest.len() / 2);
    let (b1, b2) = b.split_at(b.len() / 2);

    // The first append makes the topic; then write, by hand, what a writer
    // that died mid-batch and one that retried an acknowledged batch leave.
    let s = storage(&prefix).await;
    s.append(sale, a).await.unwrap();
    let producer: FutureProducer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", brokers())
        .create()
        .unwrap();
    let topic = format!("{prefix}{sale}");
    let seq = a.len() as u64;
    for record in [
        frame(seq, 0, 2, b1), // torn: its part 1 never came
        frame(seq, 0, 2, b1), // the retry, whole
        frame(seq, 1, 2, b2),
        frame(seq, 0, 1, b), // written again after a lost acknowledgement
        frame(99, 1, 2, b2), // a stray part of no batch
    ] {
        producer
            .send(
                FutureRecord::<(), _>::to(&topic).payload(&record),
                Duration::from_secs(10),
            )
            .await
            .unwrap();
    }

    // A new storage (a restarted process) reads a and b once each, and its
    // next append follows on: a batch big enough to need several records.
    let s = storage(&prefix).await;
    assert_eq!(s.read(sale).await.unwrap(), [a, b].concat());
    let big = sample_journal(sale, 6_000);
    assert!(serde_json::to_vec(&big).unwrap().len() > 2 * MAX_PART_BYTES);
    s.append(sale, c).await.unwrap();
    assert_eq!(s.read(sale).await.unwrap(), journal);
    assert_eq!(s.sales().await.unwrap(), vec![sale]);

    // Appending without reading first also finds where the journal ends.
    let fresh = storage(&prefix).await;
    fresh.append(sale, &big).await.unwrap();
    let read = storage(&prefix).await.read(sale).await.unwrap();
    assert_eq!(read.len(), journal.len() + big.len());
    assert!(read == [journal.as_slice(), &big].concat());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_service_recovers_slots_queue_sold_count_and_names() {
    let prefix = fresh_prefix("restart");
    let sale = "5f0000000000000000000001".parse::<SaleId>().unwrap();
    let ports = || async {
        let (mut ports, _) = Ports::in_memory();
        ports.storage = Arc::new(storage(&prefix).await);
        ports
    };
    let service = Service::open(ports().await).await.unwrap();
    let now = Timestamp::from(std::time::SystemTime::now());
    let mut config = SaleConfig::new(sale, 3, now, now.saturating_add(Duration::from_secs(3600)));
    config.payment_timeout = Duration::from_secs(3600);
    service.create_sale(config).await.unwrap();
    let mut txs = Vec::new();
    for i in 0..8 {
        txs.push(service.buy(sale, &format!("buyer-{i}")).await.unwrap());
    }
    service.paid(sale, txs[0].tx).await.unwrap();
    service.leave(sale, txs[4].tx).await.unwrap();
    let mut before = Vec::new();
    for a in &txs {
        before.push(unmeasured(service.status(sale, a.tx).await.unwrap()));
    }
    let stats = service.stats(sale).await.unwrap();
    service.shutdown().await;

    let service = Service::open(ports().await).await.unwrap();
    assert_eq!(service.stats(sale).await.unwrap(), stats);
    for (a, was) in txs.iter().zip(&before) {
        assert_eq!(&service.status(sale, a.tx).await.unwrap(), was);
    }
    assert_eq!(stats.sold, 1);
    assert!(matches!(txs[3].place, Place::Waiting { position: 1 }));
    assert_eq!(before[4].state, TxState::Left);
    // Names are remembered: the same buyer cannot join twice.
    assert!(service.buy(sale, "buyer-2").await.is_err());
    // And the queue goes on where it was.
    let next = service.buy(sale, "buyer-8").await.unwrap();
    assert_eq!(next.place, Place::Waiting { position: 5 });
    service.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_writer_fences_the_first_at_its_next_append() {
    let prefix = fresh_prefix("fence");
    let sale = "5f0000000000000000000002".parse::<SaleId>().unwrap();
    let journal = sample_journal(sale, 60);
    let (a, rest) = journal.split_at(20);
    let (b, c) = rest.split_at(20);
    let first = storage(&prefix).await;
    first.append(sale, a).await.unwrap();
    // A second process reads the journal to replay it: it claims it.
    let second = storage(&prefix).await;
    assert_eq!(second.read(sale).await.unwrap(), a);
    let refused = first.append(sale, b).await.unwrap_err();
    assert!(refused.is_fenced(), "{refused}");
    // For good: the first writer does not come back by retrying.
    assert!(first.append(sale, b).await.unwrap_err().is_fenced());
    second.append(sale, b).await.unwrap();
    second.append(sale, c).await.unwrap();
    assert_eq!(storage(&prefix).await.read(sale).await.unwrap(), journal);
}

/// Two transaction services on one 10-unit sale: the second to start
/// fences the first, which refuses everything from then on; after both
/// restart, at most 10 are sold and every acknowledged payment is paid.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_services_on_one_sale_never_both_commit() {
    let prefix = fresh_prefix("two-services");
    let sale = "5f0000000000000000000003".parse::<SaleId>().unwrap();
    let ports = || async {
        let (mut ports, _) = Ports::in_memory();
        ports.storage = Arc::new(storage(&prefix).await);
        ports
    };
    let one = Service::open(ports().await).await.unwrap();
    let now = Timestamp::from(std::time::SystemTime::now());
    let mut config = SaleConfig::new(sale, 10, now, now.saturating_add(Duration::from_secs(3600)));
    config.payment_timeout = Duration::from_secs(3600);
    one.create_sale(config).await.unwrap();
    let mut acknowledged = Vec::new();
    for i in 0..4 {
        let a = one.buy(sale, &format!("one-{i}")).await.unwrap();
        one.paid(sale, a.tx).await.unwrap();
        acknowledged.push(a.tx);
    }
    // A second service for the same sale starts (a rolling deploy).
    let two = Service::open(ports().await).await.unwrap();
    assert!(one.is_ready());
    // The first one's next commit finds out, and refuses from then on.
    assert!(matches!(
        one.buy(sale, "one-late").await,
        Err(flashsale_core::CallError::Unavailable)
    ));
    one.fenced().await;
    assert!(!one.is_ready(), "a fenced service is not ready");
    assert!(one.buy(sale, "one-later").await.is_err());
    for i in 0..10 {
        let Ok(a) = two.buy(sale, &format!("two-{i}")).await else {
            continue;
        };
        if two.paid(sale, a.tx).await.is_ok() {
            acknowledged.push(a.tx);
        }
    }
    assert_eq!(acknowledged.len(), 10, "4 by the first, 6 by the second");
    one.shutdown().await;
    two.shutdown().await;

    let again = Service::open(ports().await).await.unwrap();
    let stats = again.stats(sale).await.unwrap();
    assert_eq!(stats.sold, 10);
    for tx in acknowledged {
        assert_eq!(again.status(sale, tx).await.unwrap().state, TxState::Paid);
    }
    again.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_starts_the_topic_and_a_restart_reads_from_it() {
    use flashsale_core::{Engine, SequentialIds};
    let prefix = fresh_prefix("snapshot");
    let sale = "5f0000000000000000000004".parse::<SaleId>().unwrap();
    let journal = sample_journal(sale, 2_000);
    let (history, tail) = journal.split_at(journal.len() - 30);
    let snapshot = Engine::replay(history, Box::new(SequentialIds::default()))
        .unwrap()
        .snapshot();
    let first = storage(&prefix).await;
    for chunk in history.chunks(100) {
        first.append(sale, chunk).await.unwrap();
    }
    assert!(
        first
            .snapshot(sale, history.len() as u64, &snapshot)
            .await
            .unwrap()
    );
    first.append(sale, tail).await.unwrap();
    // The snapshot's index says where it starts: past the history.
    let index = format!("{prefix}{sale}.snapshots");
    let indexed = tokio::task::spawn_blocking(move || {
        use rdkafka::Message;
        use rdkafka::consumer::{BaseConsumer, Consumer};
        let c: BaseConsumer = rdkafka::ClientConfig::new()
            .set("bootstrap.servers", brokers())
            .set("group.id", "index-check")
            .set("enable.partition.eof", "true")
            .create()
            .unwrap();
        let mut list = rdkafka::TopicPartitionList::new();
        list.add_partition_offset(&index, 0, rdkafka::Offset::Beginning)
            .unwrap();
        c.assign(&list).unwrap();
        let mut seen = Vec::new();
        loop {
            match c.poll(Duration::from_secs(30)).unwrap() {
                Err(_) => return seen,
                Ok(m) => seen.push(String::from_utf8(m.payload().unwrap().to_vec()).unwrap()),
            }
        }
    })
    .await
    .unwrap();
    assert_eq!(indexed.len(), 1, "{indexed:?}");
    let at: serde_json::Value = serde_json::from_str(&indexed[0]).unwrap();
    assert!(at["offset"].as_i64().unwrap() > 20, "{at}");
    // A new process reads the snapshot and what followed (from the
    // snapshot on: its index says where), into the same engine.
    let second = storage(&prefix).await;
    assert_eq!(
        second.read(sale).await.unwrap(),
        [snapshot.as_slice(), tail].concat()
    );
    let replayed = Engine::replay(
        second.read(sale).await.unwrap(),
        Box::new(SequentialIds::default()),
    )
    .unwrap();
    let whole = Engine::replay(&journal, Box::new(SequentialIds::default())).unwrap();
    assert!(replayed.transactions().eq(whole.transactions()));
}

/// The service snapshots a sale journaled on Kafka, and a restarted
/// service reads the snapshot and what followed into the same state.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_snapshots_its_kafka_journal_and_comes_back_the_same() {
    let prefix = fresh_prefix("service-snapshot");
    let sale = "5f0000000000000000000005".parse::<SaleId>().unwrap();
    let mut settings = flashsale_core::service::ServiceConfig::default();
    settings.snapshot_after = Some(40);
    let open = || async {
        let (mut ports, _) = Ports::in_memory();
        ports.storage = Arc::new(storage(&prefix).await);
        Service::open_with(ports, settings.clone()).await.unwrap()
    };
    let service = open().await;
    let now = Timestamp::from(std::time::SystemTime::now());
    let mut config = SaleConfig::new(
        sale,
        100,
        now,
        now.saturating_add(Duration::from_secs(3600)),
    );
    config.payment_timeout = Duration::from_secs(3600);
    config.max_payment_slots = Some(2);
    service.create_sale(config).await.unwrap();
    // A queue behind two slots, paid in order: three events a buyer.
    let mut txs = Vec::new();
    for i in 0..60 {
        txs.push(service.buy(sale, &format!("b{i}")).await.unwrap().tx);
    }
    for tx in &txs[..45] {
        service.paid(sale, *tx).await.unwrap();
    }
    let mut before = Vec::new();
    for tx in &txs {
        before.push(unmeasured(service.status(sale, *tx).await.unwrap()));
    }
    let stats = service.stats(sale).await.unwrap();
    service.shutdown().await;
    let journal = storage(&prefix).await.read(sale).await.unwrap();
    assert!(
        journal.len() < 2 + 60 + 45 + 45,
        "snapshotted: {} events",
        journal.len()
    );

    let service = open().await;
    assert_eq!(service.stats(sale).await.unwrap(), stats);
    for (tx, was) in txs.iter().zip(&before) {
        assert_eq!(&service.status(sale, *tx).await.unwrap(), was);
    }
    service.shutdown().await;
}

/// A status without its estimate: the promotion rate behind it is measured
/// by the running service, and unknown again after a restart.
fn unmeasured(status: flashsale_core::Status) -> flashsale_core::Status {
    flashsale_core::Status {
        estimate: None,
        ..status
    }
}
