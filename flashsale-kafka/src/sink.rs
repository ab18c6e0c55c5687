//! [`KafkaSink`]: the transaction service's `paid` and `switch` on the
//! reference's topic.

use async_trait::async_trait;
use flashsale_core::{Event, EventSink, SaleId, SinkError, TxMessage};
use rdkafka::producer::{FutureProducer, FutureRecord};

use crate::admin::ensure_topic;
use crate::config::{KafkaConfig, KafkaError, err};

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
