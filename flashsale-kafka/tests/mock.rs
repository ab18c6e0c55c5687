//! The adapter against librdkafka's in-process mock broker (a Kafka
//! protocol broker on loopback): fast checks of the wire bytes, delivery
//! order, redelivery and poison messages.
#![allow(clippy::unwrap_used, reason = "a test fails at the first surprise")]

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use flashsale_core::catalogue::Applied;
use flashsale_core::testkit::sink_conformance;
use flashsale_core::{
    BuyerName, Catalogue, Event, EventKind, NewSale, SaleId, SequentialIds, Timestamp, TxId,
    TxMessage,
};
use flashsale_kafka::{ConsumerStats, KafkaConfig, KafkaSink, assigned_consumer, consume, encode};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{FutureProducer, FutureRecord};
use tokio::sync::mpsc;

const T0: Timestamp = Timestamp::from_millis(1_767_225_600_000);

fn config(
    cluster: &MockCluster<'static, rdkafka::producer::DefaultProducerContext>,
    topic: &str,
) -> KafkaConfig {
    KafkaConfig::new(&cluster.bootstrap_servers(), topic)
}

fn sale() -> SaleId {
    "5f0000000000000000000001".parse().unwrap()
}

fn tx(n: u8) -> TxId {
    format!("{n:024x}").parse().unwrap()
}

#[test]
fn the_bytes_on_the_topic_are_the_references() {
    let event = |kind| Event {
        sale: sale(),
        at: T0,
        kind,
    };
    let buyer = BuyerName::parse("ana").unwrap();
    let (key, value) = encode(&event(EventKind::Paid {
        tx: tx(0xaa),
        buyer: buyer.clone(),
    }))
    .unwrap();
    assert_eq!(key, "0000000000000000000000aa");
    assert_eq!(
        String::from_utf8(value).unwrap(),
        r#"{"transactionId":"0000000000000000000000aa","buyerName":"ana","saleId":"5f0000000000000000000001","type":"paid"}"#
    );
    let (_, value) = encode(&event(EventKind::Promoted {
        tx: tx(0xbb),
        buyer: buyer.clone(),
        deadline: T0,
    }))
    .unwrap();
    assert_eq!(
        String::from_utf8(value).unwrap(),
        r#"{"transactionId":"0000000000000000000000bb","buyerName":"ana","saleId":"5f0000000000000000000001","type":"switch"}"#
    );
    // Nothing else goes on the topic: the reference reads any other type as paid.
    for kind in [
        EventKind::Joined {
            tx: tx(1),
            buyer: buyer.clone(),
            deadline: None,
        },
        EventKind::Expired {
            tx: tx(1),
            buyer: buyer.clone(),
        },
        EventKind::RefundDue { tx: tx(1), buyer },
        EventKind::SoldOut,
    ] {
        assert!(encode(&event(kind)).is_none());
    }
}

mod common;
use common::TopicProbe;

#[tokio::test]
async fn the_sink_passes_the_core_conformance_suite() {
    let cluster = MockCluster::new(1).unwrap();
    let mut n = 0;
    sink_conformance(|| {
        n += 1;
        let config = config(&cluster, &format!("conformance-{n}"));
        cluster.create_topic(&config.topic, 3, 1).unwrap();
        async move {
            let sink = KafkaSink::connect(&config, 3).await.unwrap();
            let probe = TopicProbe(assigned_consumer(&config, "probe", 3).unwrap());
            (sink, probe)
        }
    })
    .await;
}

async fn produce(config: &KafkaConfig, payloads: &[&[u8]]) {
    let producer: FutureProducer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", &config.brokers)
        .create()
        .unwrap();
    for p in payloads {
        producer
            .send(
                FutureRecord::<(), [u8]>::to(&config.topic).payload(p),
                Duration::from_secs(10),
            )
            .await
            .unwrap();
    }
}

/// A catalogue holding one sale of 3, fed by a consumer task; every applied
/// message's outcome comes back on the returned channel.
async fn backend(
    config: &KafkaConfig,
) -> (
    SaleId,
    Arc<ConsumerStats>,
    mpsc::UnboundedReceiver<(TxMessage, Applied, u64)>,
) {
    let mut catalogue = Catalogue::new(Box::new(SequentialIds::default()));
    let sale = catalogue
        .create(
            T0,
            NewSale::new("Hat", 3, T0, T0.saturating_add(Duration::from_secs(3600))),
        )
        .unwrap()
        .id;
    let stats = Arc::new(ConsumerStats::default());
    let (tx, rx) = mpsc::unbounded_channel();
    let consumer = assigned_consumer(config, "backend", 1).unwrap();
    let task_stats = stats.clone();
    tokio::spawn(async move {
        consume(&consumer, task_stats, |m: TxMessage| {
            let applied = catalogue.apply(T0, &m).unwrap();
            let remaining = catalogue.get(m.sale_id).unwrap().remaining;
            let _ = tx.send((m, applied, remaining));
            std::future::ready(())
        })
        .await;
    });
    (sale, stats, rx)
}

fn paid(sale: SaleId, n: u8, who: &str) -> Vec<u8> {
    format!(
        r#"{{"transactionId":"{:024x}","buyerName":"{who}","saleId":"{sale}","type":"paid"}}"#,
        n
    )
    .into_bytes()
}

// Ignored until fixed (issue 4): the consumer loop sometimes never
// receives here and blocks its runtime thread, so even the test's own
// timeout does not fire; it passed once on a multi-threaded runtime, then
// hung in the next run. Suspects: `Offset::Stored` with the mock's group
// coordinator, or the async commit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "consumer hangs on the mock broker; see the comment above"]
async fn a_redelivered_paid_changes_the_catalogue_once() {
    let cluster = MockCluster::new(1).unwrap();
    let config = config(&cluster, "redelivery");
    cluster.create_topic(&config.topic, 1, 1).unwrap();
    let (sale, _, mut applied) = backend(&config).await;
    let once = paid(sale, 1, "ana");
    produce(&config, &[&once, &once, &paid(sale, 2, "bob")]).await;
    let outcomes: Vec<(Applied, u64)> = {
        let mut v = Vec::new();
        for _ in 0..3 {
            let (_, a, r) = tokio::time::timeout(Duration::from_secs(20), applied.recv())
                .await
                .unwrap()
                .unwrap();
            v.push((a, r));
        }
        v
    };
    assert_eq!(
        outcomes,
        [
            (Applied::Applied, 2),
            (Applied::Duplicate, 2),
            (Applied::Applied, 1)
        ]
    );
}

// Ignored until fixed (issue 4): the consumer loop sometimes never
// receives here and blocks its runtime thread, so even the test's own
// timeout does not fire; it passed once on a multi-threaded runtime, then
// hung in the next run. Suspects: `Offset::Stored` with the mock's group
// coordinator, or the async commit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "consumer hangs on the mock broker; see the comment above"]
async fn poison_messages_are_skipped_and_the_next_good_one_applied() {
    let cluster = MockCluster::new(1).unwrap();
    let config = config(&cluster, "poison");
    cluster.create_topic(&config.topic, 1, 1).unwrap();
    let (sale, stats, mut applied) = backend(&config).await;
    let truncated = &paid(sale, 1, "ana")[..30];
    let unknown = String::from_utf8(paid(sale, 1, "ana"))
        .unwrap()
        .replace("\"paid\"", "\"refund\"");
    let missing = format!(r#"{{"transactionId":"{:024x}","type":"paid"}}"#, 1);
    produce(
        &config,
        &[
            b"\xff\x00garbage",
            truncated,
            unknown.as_bytes(),
            missing.as_bytes(),
            b"",
            &paid(sale, 2, "bob"),
        ],
    )
    .await;
    let (m, outcome, remaining) = tokio::time::timeout(Duration::from_secs(20), applied.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (m.buyer_name.as_str(), outcome, remaining),
        ("bob", Applied::Applied, 2)
    );
    assert_eq!(stats.skipped.load(Ordering::Relaxed), 5);
    assert_eq!(stats.applied.load(Ordering::Relaxed), 1);
}

#[tokio::test]
async fn unreachable_brokers_are_a_clear_error_at_start() {
    let config = KafkaConfig::new("127.0.0.1:9", "transactions");
    let e = KafkaSink::connect(&config, 1).await.unwrap_err();
    assert!(e.0.contains("127.0.0.1:9"), "{e}");
}
