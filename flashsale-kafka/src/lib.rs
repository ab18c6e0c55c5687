//! flashsale-kafka: the reference's `transactions` topic over Kafka
//! (rdkafka), byte-compatible, so its services and ours can be mixed.
//!
//! - [`KafkaSink`] — an [`EventSink`] for the transaction service: publishes
//!   `paid` and `switch` (and nothing else: the reference's consumer takes
//!   any other type for a payment) as `{transactionId, buyerName, saleId,
//!   type}`, key = transactionId. Idempotent producer, `acks=all`, no
//!   message timeout: while the broker is down events wait, in order, and
//!   are delivered when it returns. With several partitions, each sale is
//!   pinned to one, so a sale's events stay in order.
//! - [`consume`] — the backend's consumer loop: applies each message, then
//!   commits its offset (at least once; the catalogue applies a `paid` once
//!   however often it arrives). A message that is not valid JSON, misses
//!   fields or has an unknown type is logged, counted and skipped.
//!   (Its tests run on a real broker: on librdkafka's mock broker, stored
//!   offsets and commits hang.)
//! - [`KafkaStorage`] — a [`Storage`](flashsale_core::Storage) for the
//!   transaction service: each sale's engine journal on a topic of its own,
//!   replayed at start, so a killed service comes back with its payment
//!   slots, queue, sold count and buyer names.
//! - [`ensure_topic`] — creates the topic if it is missing.

mod journal;

pub use journal::{DEFAULT_JOURNAL_PREFIX, KafkaStorage, MAX_PART_BYTES};

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use flashsale_core::{Event, EventSink, SaleId, SinkError, TxMessage};
use rdkafka::ClientConfig;
use rdkafka::Message;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::producer::{FutureProducer, FutureRecord};

/// The reference's topic name.
pub const DEFAULT_TOPIC: &str = "transactions";

/// How long to wait for the brokers when starting (a clear error after).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// What every client needs: brokers, and extra librdkafka settings.
#[derive(Debug, Clone)]
pub struct KafkaConfig {
    /// `host:port,host:port`.
    pub brokers: String,
    /// The topic (`KAFKA_TOPIC`, default `transactions`).
    pub topic: String,
    /// Further librdkafka settings (`security.protocol`, …).
    pub extra: Vec<(String, String)>,
}

impl KafkaConfig {
    /// Brokers and topic, no extra settings.
    pub fn new(brokers: &str, topic: &str) -> Self {
        KafkaConfig {
            brokers: brokers.to_owned(),
            topic: topic.to_owned(),
            extra: Vec::new(),
        }
    }

    /// The brokers, then `tuning` (defaults the operator's `extra`
    /// settings override). Callers set what correctness needs after this,
    /// so no extra setting can turn it off.
    fn client(&self, tuning: &[(&str, &str)]) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", &self.brokers);
        for (k, v) in tuning {
            c.set(*k, *v);
        }
        for (k, v) in &self.extra {
            c.set(k, v);
        }
        c
    }
}

/// An error talking to Kafka, in words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KafkaError(pub String);

impl std::fmt::Display for KafkaError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for KafkaError {}

/// Runs one of librdkafka's blocking calls (metadata, watermarks: they
/// wait up to their timeout) off the async workers, so that other sales'
/// writers on the same worker do not stall meanwhile.
pub(crate) async fn blocking<T: Send + 'static>(
    call: impl FnOnce() -> Result<T, KafkaError> + Send + 'static,
) -> Result<T, KafkaError> {
    tokio::task::spawn_blocking(call)
        .await
        .map_err(|e| err("a blocking Kafka call", e))?
}

fn err(what: &str, e: impl std::fmt::Display) -> KafkaError {
    KafkaError(format!("{what}: {e}"))
}

/// Creates `config.topic` with `partitions` partitions if it does not
/// exist, and returns how many partitions it has.
pub async fn ensure_topic(config: &KafkaConfig, partitions: i32) -> Result<i32, KafkaError> {
    ensure_topic_with(config, partitions, &[]).await
}

/// [`ensure_topic`], with topic settings (`retention.ms`, …) for a topic it
/// creates.
async fn ensure_topic_with(
    config: &KafkaConfig,
    partitions: i32,
    settings: &[(&str, &str)],
) -> Result<i32, KafkaError> {
    let admin: Arc<AdminClient<DefaultClientContext>> = Arc::new(
        config
            .client(&[])
            .create()
            .map_err(|e| err("kafka admin client", e))?,
    );
    let existing = partition_count(&admin, config).await?;
    if existing > 0 {
        return Ok(existing);
    }
    let topic = settings.iter().fold(
        NewTopic::new(&config.topic, partitions, TopicReplication::Fixed(1)),
        |topic, (k, v)| topic.set(k, v),
    );
    let opts = AdminOptions::new().operation_timeout(Some(CONNECT_TIMEOUT));
    let results = admin
        .create_topics([&topic], &opts)
        .await
        .map_err(|e| unreachable_brokers(config, e))?;
    for r in results {
        match r {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((t, code)) => return Err(err(&format!("cannot create topic {t}"), code)),
        }
    }
    match partition_count(&admin, config).await? {
        0 => Err(KafkaError(format!(
            "topic {} has no partitions",
            config.topic
        ))),
        n => Ok(n),
    }
}

/// The error for brokers that did not answer.
pub(crate) fn unreachable_brokers(config: &KafkaConfig, e: impl std::fmt::Display) -> KafkaError {
    err(
        &format!("cannot reach the Kafka brokers at {}", config.brokers),
        e,
    )
}

/// Partitions of `config.topic` (0: no such topic), from the cluster's
/// metadata.
async fn partition_count(
    admin: &Arc<AdminClient<DefaultClientContext>>,
    config: &KafkaConfig,
) -> Result<i32, KafkaError> {
    let (admin, config) = (admin.clone(), config.clone());
    blocking(move || {
        let metadata = admin
            .inner()
            .fetch_metadata(Some(&config.topic), CONNECT_TIMEOUT)
            .map_err(|e| unreachable_brokers(&config, e))?;
        Ok(metadata
            .topics()
            .first()
            .filter(|t| t.error().is_none())
            .map_or(0, |t| t.partitions().len() as i32))
    })
    .await
}

/// The reference's message for an engine event, as the bytes it puts on
/// the topic: `Some((key, value))` for `paid` and `switch`.
pub fn encode(event: &Event) -> Option<(String, Vec<u8>)> {
    let m = TxMessage::from_event(event)?;
    let value = serde_json::to_vec(&m).ok()?;
    Some((m.transaction_id.to_string(), value))
}

/// Publishes a transaction service's `paid` and `switch` events.
pub struct KafkaSink {
    producer: FutureProducer,
    topic: String,
    partitions: i32,
}

impl std::fmt::Debug for KafkaSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaSink")
            .field("topic", &self.topic)
            .field("partitions", &self.partitions)
            .finish()
    }
}

impl KafkaSink {
    /// Connects, creating the topic with `partitions` if missing; a clear
    /// error if the brokers cannot be reached.
    pub async fn connect(config: &KafkaConfig, partitions: i32) -> Result<Self, KafkaError> {
        let partitions = ensure_topic(config, partitions).await?;
        let producer: FutureProducer = config
            .client(&[("linger.ms", "2")])
            .set("enable.idempotence", "true")
            .set("acks", "all")
            // Never give up on a message: an outage delays, never drops.
            .set("message.timeout.ms", "0")
            .create()
            .map_err(|e| err("kafka producer", e))?;
        Ok(KafkaSink {
            producer,
            topic: config.topic.clone(),
            partitions,
        })
    }

    /// The partition a sale's events go to: stable, so a sale's events stay
    /// in order whatever their keys.
    fn partition(&self, sale: SaleId) -> i32 {
        let b = sale.bytes();
        let h = u32::from_be_bytes([b[8], b[9], b[10], b[11]])
            ^ u32::from_be_bytes([b[4], b[5], b[6], b[7]]);
        (h % self.partitions as u32) as i32
    }
}

#[async_trait]
impl EventSink for KafkaSink {
    async fn publish(&self, events: &[Event]) -> Result<(), SinkError> {
        // Enqueue the whole batch first (in order), then await deliveries:
        // the idempotent producer keeps them in order per partition.
        let mut deliveries = Vec::new();
        for event in events {
            let Some((key, value)) = encode(event) else {
                continue;
            };
            let record = FutureRecord::to(&self.topic)
                .key(&key)
                .payload(&value)
                .partition(self.partition(event.sale));
            let delivery = self
                .producer
                .send_result(record)
                .map_err(|(e, _)| SinkError::msg(format!("kafka enqueue: {e}")))?;
            deliveries.push(delivery);
        }
        for d in deliveries {
            match d.await {
                Ok(Ok(_)) => {}
                Ok(Err((e, _))) => return Err(SinkError::msg(format!("kafka delivery: {e}"))),
                Err(_) => return Err(SinkError::msg("kafka producer dropped a delivery")),
            }
        }
        Ok(())
    }
}

/// What a consumer did, for logs and metrics.
#[derive(Debug, Default)]
pub struct ConsumerStats {
    /// Messages applied.
    pub applied: AtomicU64,
    /// Messages skipped because they could not be read.
    pub skipped: AtomicU64,
}

/// A consumer in `group` that commits only what it was told to, reading
/// from the start when the group has no offset yet.
fn new_consumer(config: &KafkaConfig, group: &str) -> Result<StreamConsumer, KafkaError> {
    config
        // A broker that does not answer a waiting fetch when data arrives
        // (tansu) would otherwise add up to 500 ms to every sale_update.
        .client(&[("fetch.wait.max.ms", "20")])
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .create()
        .map_err(|e| err("kafka consumer", e))
}

/// A consumer of the topic in consumer group `group` that commits only
/// what it has applied.
pub fn consumer(config: &KafkaConfig, group: &str) -> Result<StreamConsumer, KafkaError> {
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
) -> Result<StreamConsumer, KafkaError> {
    assign(config, group, partitions, rdkafka::Offset::Stored)
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
) -> Result<StreamConsumer, KafkaError> {
    assign(config, group, partitions, rdkafka::Offset::Beginning)
}

fn assign(
    config: &KafkaConfig,
    group: &str,
    partitions: i32,
    from: rdkafka::Offset,
) -> Result<StreamConsumer, KafkaError> {
    let c = new_consumer(config, group)?;
    let mut list = rdkafka::TopicPartitionList::new();
    for p in 0..partitions {
        list.add_partition_offset(&config.topic, p, from)
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
pub async fn consume<F, Fut>(consumer: &StreamConsumer, stats: Arc<ConsumerStats>, mut apply: F)
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
        if let Err(e) = consumer.commit_message(&message, CommitMode::Async) {
            tracing::warn!(error = %e, "kafka commit failed; the message may be applied again");
        }
    }
}
