//! What every client needs: [`KafkaConfig`], [`KafkaError`], and running
//! librdkafka's blocking calls off the async workers.

use std::time::Duration;

use rdkafka::ClientConfig;

/// The reference's topic name.
pub const DEFAULT_TOPIC: &str = "transactions";

/// How long to wait for the brokers when starting (a clear error after).
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

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
    pub(crate) fn client(&self, tuning: &[(&str, &str)]) -> ClientConfig {
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

pub(crate) fn err(what: &str, e: impl std::fmt::Display) -> KafkaError {
    KafkaError(format!("{what}: {e}"))
}

/// The error for brokers that did not answer.
pub(crate) fn unreachable_brokers(config: &KafkaConfig, e: impl std::fmt::Display) -> KafkaError {
    err(
        &format!("cannot reach the Kafka brokers at {}", config.brokers),
        e,
    )
}
