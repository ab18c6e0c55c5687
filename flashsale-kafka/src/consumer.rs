//! The backend's side of the topic: consumers and the [`consume`] loop.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use flashsale_core::TxMessage;
use rdkafka::Message;
use rdkafka::consumer::{CommitMode, Consumer, ConsumerContext, StreamConsumer};
use rdkafka::{ClientContext, Statistics};

use crate::config::{KafkaConfig, KafkaError, err};

/// What a consumer did, for logs and metrics.
#[derive(Debug, Default)]
pub struct ConsumerStats {
    /// Messages applied.
    pub applied: AtomicU64,
    /// Messages skipped because they could not be read.
    pub skipped: AtomicU64,
    /// Per partition, the offset after the last message done with (applied
    /// or skipped): where a consumer resumes from a state saved now.
    pub next: Mutex<BTreeMap<i32, i64>>,
}

/// Our consumers' context: librdkafka's statistics, every five seconds,
/// become the gauge `flashsale_kafka_consumer_lag{topic, partition}` (the
/// messages on the broker not yet read).
#[derive(Debug, Clone, Copy, Default)]
pub struct LagContext;

impl ClientContext for LagContext {
    fn stats(&self, statistics: Statistics) {
        for (topic, t) in &statistics.topics {
            for (partition, p) in &t.partitions {
                // -1: the internal "unassigned" partition, or no lag known yet.
                if *partition >= 0 && p.consumer_lag >= 0 {
                    let labels = [
                        ("topic", topic.clone()),
                        ("partition", partition.to_string()),
                    ];
                    metrics::gauge!("flashsale_kafka_consumer_lag", &labels)
                        .set(p.consumer_lag as f64);
                }
            }
        }
    }
}

impl ConsumerContext for LagContext {}

/// The consumers this crate makes.
pub type TxConsumer = StreamConsumer<LagContext>;

/// A consumer in `group` that commits only what it was told to, reading
/// from the start when the group has no offset yet.
fn new_consumer(config: &KafkaConfig, group: &str) -> Result<TxConsumer, KafkaError> {
    config
        // A broker that does not answer a waiting fetch when data arrives
        // (tansu) would otherwise add up to 500 ms to every sale_update.
        .client(&[("fetch.wait.max.ms", "20")])
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("statistics.interval.ms", "5000")
        .create_with_context(LagContext)
        .map_err(|e| err("kafka consumer", e))
}

/// A consumer of the topic in consumer group `group` that commits only
/// what it has applied.
pub fn consumer(config: &KafkaConfig, group: &str) -> Result<TxConsumer, KafkaError> {
    let c = new_consumer(config, group)?;
    c.subscribe(&[&config.topic])
        .map_err(|e| err(&format!("subscribe to {}", config.topic), e))?;
    Ok(c)
}

/// Like [`consumer`], but reading partitions `0..partitions` directly
/// instead of joining the group's rebalancing, from the offsets committed
/// to `group`: for tests, where group joins are slow.
pub fn assigned_consumer(
    config: &KafkaConfig,
    group: &str,
    partitions: i32,
) -> Result<TxConsumer, KafkaError> {
    assign(config, group, partitions, |_| rdkafka::Offset::Stored)
}

/// A consumer of partitions `0..partitions` from their first message,
/// whatever `group` committed: for a service whose state is a fold of the
/// topic kept in memory (the backend's catalogue), to rebuild it at every
/// start. Each such service reads every message — each backend broadcasts
/// to browsers of its own — and applying a `paid` again changes nothing.
/// [`consume`] still commits to `group`, as progress to watch the lag by.
pub fn replay_consumer(
    config: &KafkaConfig,
    group: &str,
    partitions: i32,
) -> Result<TxConsumer, KafkaError> {
    assign(config, group, partitions, |_| rdkafka::Offset::Beginning)
}

/// Like [`replay_consumer`], but resuming each partition at `from` (a
/// state saved with [`ConsumerStats::next`]); partitions it does not name
/// are read from their first message.
pub fn resume_consumer(
    config: &KafkaConfig,
    group: &str,
    partitions: i32,
    from: &BTreeMap<i32, i64>,
) -> Result<TxConsumer, KafkaError> {
    assign(config, group, partitions, |p| {
        from.get(&p)
            .map_or(rdkafka::Offset::Beginning, |&o| rdkafka::Offset::Offset(o))
    })
}

fn assign(
    config: &KafkaConfig,
    group: &str,
    partitions: i32,
    from: impl Fn(i32) -> rdkafka::Offset,
) -> Result<TxConsumer, KafkaError> {
    let c = new_consumer(config, group)?;
    let mut list = rdkafka::TopicPartitionList::new();
    for p in 0..partitions {
        list.add_partition_offset(&config.topic, p, from(p))
            .map_err(|e| err("assign", e))?;
    }
    c.assign(&list)
        .map_err(|e| err(&format!("assign {}", config.topic), e))?;
    Ok(c)
}

/// Reads messages for ever: each readable one goes to `apply`, then its
/// offset is committed; an unreadable one is logged, counted and its offset
/// committed (it would never become readable). Broker errors are logged and
/// the loop goes on (librdkafka reconnects by itself).
pub async fn consume<F, Fut>(consumer: &TxConsumer, stats: Arc<ConsumerStats>, mut apply: F)
where
    F: FnMut(TxMessage) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    loop {
        let message = match consumer.recv().await {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(error = %e, "kafka receive failed; retrying");
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        match message.payload().map(serde_json::from_slice::<TxMessage>) {
            Some(Ok(m)) => {
                apply(m).await;
                stats.applied.fetch_add(1, Ordering::Relaxed);
            }
            other => {
                let why = match other {
                    Some(Err(e)) => e.to_string(),
                    _ => "empty message".to_owned(),
                };
                stats.skipped.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    partition = message.partition(),
                    offset = message.offset(),
                    error = %why,
                    "skipping an unreadable message"
                );
            }
        }
        stats
            .next
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(message.partition(), message.offset() + 1);
        if let Err(e) = consumer.commit_message(&message, CommitMode::Async) {
            tracing::warn!(error = %e, "kafka commit failed; the message may be applied again");
        }
    }
}
