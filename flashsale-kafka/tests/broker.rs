//! The adapter against a real Kafka-protocol broker (tansu) on loopback,
//! started by `scripts/test.sh`, which sets `FLASHSALE_KAFKA_BROKERS`.
#![allow(clippy::unwrap_used, reason = "a test fails at the first surprise")]

use flashsale_core::testkit::sink_conformance;
use flashsale_kafka::{KafkaConfig, KafkaSink, assigned_consumer, ensure_topic};

mod common;

fn brokers() -> String {
    std::env::var("FLASHSALE_KAFKA_BROKERS").expect(
        "FLASHSALE_KAFKA_BROKERS names the test broker; scripts/test.sh starts one and sets it",
    )
}

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
