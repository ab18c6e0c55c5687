//! Topic administration: [`ensure_topic`].

use std::sync::Arc;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::RDKafkaErrorCode;

use crate::config::{CONNECT_TIMEOUT, KafkaConfig, KafkaError, blocking, err, unreachable_brokers};

/// Creates `config.topic` with `partitions` partitions if it does not
/// exist, and returns how many partitions it has.
pub async fn ensure_topic(config: &KafkaConfig, partitions: i32) -> Result<i32, KafkaError> {
    ensure_topic_with(config, partitions, &[]).await
}

/// [`ensure_topic`], with topic settings (`retention.ms`, …) for a topic it
/// creates.
pub(crate) async fn ensure_topic_with(
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
