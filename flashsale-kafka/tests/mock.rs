//! The adapter against librdkafka's in-process mock broker (a Kafka
//! protocol broker on loopback): fast checks of the wire bytes and of
//! delivery. The consumer's tests run on the real broker (`broker.rs`).
#![allow(clippy::unwrap_used, reason = "a test fails at the first surprise")]

use flashsale_core::testkit::sink_conformance;
use flashsale_core::{BuyerName, Event, EventKind, SaleId, Timestamp, TxId};
use flashsale_kafka::{KafkaConfig, KafkaSink, assigned_consumer, encode};
use rdkafka::mocking::MockCluster;

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
        account: None,
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
            account: None,
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

#[tokio::test]
async fn unreachable_brokers_are_a_clear_error_at_start() {
    let config = KafkaConfig::new("127.0.0.1:9", "transactions");
    let e = KafkaSink::connect(&config, 1).await.unwrap_err();
    assert!(e.0.contains("127.0.0.1:9"), "{e}");
}
