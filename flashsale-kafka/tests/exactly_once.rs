//! Each payment reaches the `transactions` topic once, across restarts and
//! crashes: the reference's backend lowers its stock on every `paid` it
//! reads. Against a real Kafka-protocol broker (tansu) on loopback.
#![allow(clippy::unwrap_used, reason = "a test fails at the first surprise")]

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use flashsale_core::service::Ports;
use flashsale_core::{
    Event, EventKind, MemoryStorage, SaleConfig, SaleId, Service, Storage, StorageError, Timestamp,
    TxMessage, TxMessageKind,
};
use flashsale_kafka::{KafkaConfig, KafkaSink};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};

mod common;
use common::brokers;

const PARTITIONS: i32 = 3;

/// A journal that loses every delivery marker: as if each crash came
/// between a publish and the marker that would have recorded it.
#[derive(Clone, Default)]
struct LosesMarkers(MemoryStorage);

#[async_trait]
impl Storage for LosesMarkers {
    async fn append(&self, sale: SaleId, events: &[Event]) -> Result<(), StorageError> {
        let kept: Vec<Event> = events
            .iter()
            .filter(|e| !matches!(e.kind, EventKind::Delivered { .. }))
            .cloned()
            .collect();
        self.0.append(sale, &kept).await
    }
    async fn read(&self, sale: SaleId) -> Result<Vec<Event>, StorageError> {
        self.0.read(sale).await
    }
    async fn sales(&self) -> Result<Vec<SaleId>, StorageError> {
        self.0.sales().await
    }
}

/// How many `paid` records of each transaction the topic holds.
fn paid_records(topic: &str) -> HashMap<String, usize> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers())
        .set("group.id", format!("{topic}-count"))
        .set("enable.partition.eof", "true")
        .set("fetch.wait.max.ms", "10")
        .create()
        .unwrap();
    let mut list = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        list.add_partition_offset(topic, p, Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&list).unwrap();
    let mut counts = HashMap::new();
    let mut ended = 0;
    while ended < PARTITIONS {
        match consumer
            .poll(Duration::from_secs(30))
            .expect("a record or an end")
        {
            Err(rdkafka::error::KafkaError::PartitionEOF(_)) => ended += 1,
            Err(e) => panic!("{e}"),
            Ok(m) => {
                let message: TxMessage = serde_json::from_slice(m.payload().unwrap()).unwrap();
                if message.kind == TxMessageKind::Paid {
                    *counts
                        .entry(message.transaction_id.to_string())
                        .or_default() += 1;
                }
            }
        }
    }
    counts
}

async fn service(storage: Arc<dyn Storage>, topic: &str) -> Service {
    let config = KafkaConfig::new(&brokers(), topic);
    let (mut ports, _) = Ports::in_memory();
    ports.storage = storage;
    ports.sink = Arc::new(KafkaSink::connect(&config, PARTITIONS).await.unwrap());
    Service::open(ports).await.unwrap()
}

async fn sell(service: &Service, sale: SaleId, names: std::ops::Range<usize>) {
    for i in names {
        let a = service.buy(sale, &format!("buyer-{i}")).await.unwrap();
        service.paid(sale, a.tx).await.unwrap();
    }
}

fn counted(topic: &str) -> (usize, usize) {
    let counts = paid_records(topic);
    (counts.len(), counts.values().sum())
}

async fn counted_async(topic: &str) -> (usize, usize) {
    let topic = topic.to_owned();
    tokio::task::spawn_blocking(move || counted(&topic))
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarts_never_put_a_payment_on_the_topic_twice() {
    let payments: usize = std::env::var("FLASHSALE_RESUME_PAYMENTS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(600);
    let topic = format!("exactly-once-{}", std::process::id());
    let sale = SaleId::from_bytes([0x5e; 12]);
    let now = Timestamp::from(std::time::SystemTime::now());
    let mut config = SaleConfig::new(
        sale,
        payments as u64 + 10,
        now,
        now.saturating_add(Duration::from_secs(3600)),
    );
    config.payment_timeout = Duration::from_secs(3600);

    // Every marker lost: the restart must read the topic to know.
    let journal = LosesMarkers::default();
    let first = service(Arc::new(journal.clone()), &topic).await;
    first.create_sale(config).await.unwrap();
    sell(&first, sale, 0..payments).await;
    first.shutdown().await;
    assert_eq!(counted_async(&topic).await, (payments, payments));

    let started = std::time::Instant::now();
    let second = service(Arc::new(journal.clone()), &topic).await;
    second.flush().await;
    eprintln!(
        "restart after {payments} payments, no marker: {:?}",
        started.elapsed()
    );
    assert_eq!(
        counted_async(&topic).await,
        (payments, payments),
        "a payment was published again"
    );
    // A new payment goes out, once.
    sell(&second, sale, payments..payments + 1).await;
    second.shutdown().await;
    assert_eq!(counted_async(&topic).await, (payments + 1, payments + 1));

    // With markers journaled (the normal case) the restart reads only the
    // tail: the same count, and a new payment still goes out.
    let marked = MemoryStorage::new();
    for event in journal.0.read(sale).await.unwrap() {
        marked.append(sale, &[event]).await.unwrap();
    }
    let third = service(Arc::new(marked.clone()), &topic).await;
    sell(&third, sale, payments + 1..payments + 3).await;
    third.shutdown().await;
    assert!(
        marked
            .read(sale)
            .await
            .unwrap()
            .iter()
            .any(|e| matches!(e.kind, EventKind::Delivered { .. })),
        "the sale journals how far the sink got"
    );
    let fourth = service(Arc::new(marked), &topic).await;
    fourth.flush().await;
    fourth.shutdown().await;
    assert_eq!(counted_async(&topic).await, (payments + 3, payments + 3));
}
