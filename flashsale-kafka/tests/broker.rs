//! The adapter against a real Kafka-protocol broker (tansu) on loopback,
//! started by `scripts/test.sh`, which sets `FLASHSALE_KAFKA_BROKERS`.
#![allow(clippy::unwrap_used, reason = "a test fails at the first surprise")]

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use flashsale_core::catalogue::Applied;
use flashsale_core::testkit::sink_conformance;
use flashsale_core::{Catalogue, NewSale, SaleId, SequentialIds, Timestamp, TxMessage};
use flashsale_kafka::{
    ConsumerStats, KafkaConfig, KafkaSink, assigned_consumer, consume, ensure_topic,
};
use rdkafka::producer::{FutureProducer, FutureRecord};
use tokio::sync::mpsc;

const T0: Timestamp = Timestamp::from_millis(1_767_225_600_000);

mod common;
use common::brokers;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topics_are_created_with_the_asked_partitions_once() {
    let config = KafkaConfig::new(&brokers(), &format!("created-{}", std::process::id()));
    assert_eq!(ensure_topic(&config, 3).await.unwrap(), 3);
    // Already there: kept as it is.
    assert_eq!(ensure_topic(&config, 5).await.unwrap(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sink_passes_the_core_conformance_suite_on_a_real_broker() {
    let run = std::process::id();
    let mut n = 0;
    sink_conformance(|| {
        n += 1;
        let config = KafkaConfig::new(&brokers(), &format!("conformance-{run}-{n}"));
        async move {
            let sink = KafkaSink::connect(&config, 3).await.unwrap();
            let consumer = assigned_consumer(&config, &format!("probe-{run}-{n}"), 3).unwrap();
            (sink, common::TopicProbe(consumer))
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
        .id();
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redelivered_paid_changes_the_catalogue_once() {
    let config = KafkaConfig::new(&brokers(), &format!("redelivery-{}", std::process::id()));
    ensure_topic(&config, 1).await.unwrap();
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poison_messages_are_skipped_and_the_next_good_one_applied() {
    let config = KafkaConfig::new(&brokers(), &format!("poison-{}", std::process::id()));
    ensure_topic(&config, 1).await.unwrap();
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
    // One partition, in order: all five were skipped before bob arrived.
    // (`applied` is counted after the apply returns, so it is not read here.)
    assert_eq!(stats.skipped.load(Ordering::Relaxed), 5);
}

/// The reference's transaction service publishes names our HTTP rules
/// refuse. A payment on the topic already happened: every one is applied,
/// its name cleaned for display.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payments_with_the_references_odd_names_are_all_applied() {
    let config = KafkaConfig::new(&brokers(), &format!("odd-names-{}", std::process::id()));
    ensure_topic(&config, 1).await.unwrap();
    let (sale, stats, mut applied) = backend(&config).await;
    let long = "z".repeat(80);
    let odd = |n: u8, name: &str| {
        format!(
            r#"{{"transactionId":"{n:024x}","buyerName":{name},"saleId":"{sale}","type":"paid"}}"#
        )
        .into_bytes()
    };
    let payloads = [
        odd(1, &format!("\"{long}\"")),
        odd(2, r#""""#),
        odd(3, r#""tab\there""#),
        odd(4, "42"),
    ];
    let refs: Vec<&[u8]> = payloads.iter().map(Vec::as_slice).collect();
    produce(&config, &refs).await;
    let mut names = Vec::new();
    for _ in 0..4 {
        let (m, outcome, _) = tokio::time::timeout(Duration::from_secs(20), applied.recv())
            .await
            .unwrap()
            .unwrap();
        // The backend's sale has 3 units; the 4th is recorded as oversold,
        // never dropped.
        assert_ne!(outcome, Applied::Duplicate);
        names.push(m.buyer_name.to_string());
    }
    assert_eq!(
        names,
        [
            "z".repeat(64),
            "(no name)".into(),
            "tabhere".into(),
            "42".into()
        ]
    );
    assert_eq!(stats.skipped.load(Ordering::Relaxed), 0);
}
