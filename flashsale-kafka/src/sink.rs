//! [`KafkaSink`]: the transaction service's `paid` and `switch` on the
//! reference's topic, each payment once even across a crash.
//!
//! The topic remembers what it was given, so the sink says so
//! ([`EventSink::remembers`]): with each publish it reports where the
//! sale's partition ended (`partition:offset`), the service journals that
//! with its next batch, and after a restart [`EventSink::resume`] reads the
//! partition from there to its end and drops every journaled payment it
//! finds — those published before a crash cut the journal's marker short.
//! The reference's backend lowers its stock on every `paid` it reads: a
//! payment published twice would sell a unit twice.

use std::collections::HashSet;
use std::time::Duration;

use async_trait::async_trait;
use flashsale_core::{Event, EventSink, SaleId, SinkError, TxId, TxMessage, TxMessageKind};
use rdkafka::Message;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};

use crate::admin::ensure_topic;
use crate::config::{KafkaConfig, KafkaError, blocking, err};

/// How long the scan at a restart waits for the next record or the end.
const SCAN_TIMEOUT: Duration = Duration::from_secs(30);

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
    config: KafkaConfig,
    partitions: i32,
}

impl std::fmt::Debug for KafkaSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaSink")
            .field("topic", &self.config.topic)
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
            config: config.clone(),
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

/// The `paid` transactions of `sale` on the topic's `partition`, from
/// `from` to its end.
fn paid_on_topic(
    config: &KafkaConfig,
    sale: SaleId,
    partition: i32,
    from: Offset,
) -> Result<HashSet<TxId>, KafkaError> {
    let topic = &config.topic;
    let consumer: BaseConsumer = config
        .client(&[("fetch.wait.max.ms", "10")])
        .set("group.id", format!("{topic}-resume"))
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true")
        .create()
        .map_err(|e| err("kafka consumer", e))?;
    let mut list = TopicPartitionList::new();
    list.add_partition_offset(topic, partition, from)
        .map_err(|e| err("assign", e))?;
    consumer
        .assign(&list)
        .map_err(|e| err(&format!("assign {topic}"), e))?;
    let mut paid = HashSet::new();
    loop {
        match consumer.poll(SCAN_TIMEOUT) {
            None => {
                return Err(KafkaError(format!(
                    "{topic}: no record nor end for {SCAN_TIMEOUT:?}"
                )));
            }
            Some(Err(rdkafka::error::KafkaError::PartitionEOF(_))) => return Ok(paid),
            Some(Err(e)) => return Err(err(&format!("read {topic}"), e)),
            Some(Ok(m)) => {
                let Some(Ok(message)) = m.payload().map(serde_json::from_slice::<TxMessage>) else {
                    continue;
                };
                if message.sale_id == sale && message.kind == TxMessageKind::Paid {
                    paid.insert(message.transaction_id);
                }
            }
        }
    }
}

#[async_trait]
impl EventSink for KafkaSink {
    async fn publish(&self, events: &[Event]) -> Result<(), SinkError> {
        self.publish_receipted(events).await.map(drop)
    }

    fn remembers(&self) -> bool {
        true
    }

    /// Publishes, and says where the sale's partition ends after its last
    /// record: `partition:offset`.
    async fn publish_receipted(&self, events: &[Event]) -> Result<Option<String>, SinkError> {
        // Enqueue the whole batch first (in order), then await deliveries:
        // the idempotent producer keeps them in order per partition.
        let mut deliveries = Vec::new();
        for event in events {
            let Some((key, value)) = encode(event) else {
                continue;
            };
            let record = FutureRecord::to(&self.config.topic)
                .key(&key)
                .payload(&value)
                .partition(self.partition(event.sale));
            let delivery = self
                .producer
                .send_result(record)
                .map_err(|(e, _)| SinkError::msg(format!("kafka enqueue: {e}")))?;
            deliveries.push(delivery);
        }
        let mut end = None;
        for d in deliveries {
            match d.await {
                Ok(Ok(delivery)) => {
                    end = Some(format!("{}:{}", delivery.partition, delivery.offset + 1));
                }
                Ok(Err((e, _))) => return Err(SinkError::msg(format!("kafka delivery: {e}"))),
                Err(_) => return Err(SinkError::msg("kafka producer dropped a delivery")),
            }
        }
        Ok(end)
    }

    /// Reads the sale's partition from `since` (from its start without
    /// one) and keeps the payments it does not find there.
    async fn resume(
        &self,
        sale: SaleId,
        pending: Vec<Event>,
        since: Option<&str>,
    ) -> Result<Vec<Event>, SinkError> {
        if pending.is_empty() {
            return Ok(pending);
        }
        let partition = self.partition(sale);
        let from = since
            .and_then(|r| r.split_once(':'))
            .and_then(|(p, o)| Some((p.parse::<i32>().ok()?, o.parse::<i64>().ok()?)))
            .filter(|(p, _)| *p == partition)
            .map_or(Offset::Beginning, |(_, o)| Offset::Offset(o));
        let config = self.config.clone();
        let there = blocking(move || paid_on_topic(&config, sale, partition, from))
            .await
            .map_err(|e| SinkError(Box::new(e)))?;
        Ok(pending
            .into_iter()
            .filter(|e| match TxMessage::from_event(e) {
                Some(m) => !there.contains(&m.transaction_id),
                None => false,
            })
            .collect())
    }
}
