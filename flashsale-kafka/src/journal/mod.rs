//! [`KafkaStorage`]: each sale's engine journal on a Kafka topic of its own.
//!
//! A sale's journal is the single-partition topic `{prefix}{sale id}`
//! (e.g. `flashsale-journal-65a1…`), kept for ever (`retention.ms=-1`).
//! One [`Storage::append`] is one *batch*: its events as JSON, cut into
//! records of at most [`MAX_PART_BYTES`] (see [`framing`]), each framed as
//! `{"seq":S,"part":P,"parts":N,"events":[…]}`, where `S` is the number of
//! events in the journal before the batch.
//!
//! That framing makes appends all-or-nothing and exactly-once on replay
//! without Kafka transactions:
//! - a batch whose parts did not all arrive (the writer died, or gave up
//!   and retried) is dropped when the next batch starts;
//! - a batch written twice (an append that failed to hear its
//!   acknowledgement and was retried) is kept once: its copy's `seq` no
//!   longer matches the journal's length.
//!
//! One writer per sale is assumed (the [`Service`](flashsale_core::Service)
//! runs one task per sale, and one transaction service per sale runs).

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

mod framing;

use async_trait::async_trait;
use flashsale_core::{Event, SaleId, Storage, StorageError};
use rdkafka::client::ClientContext;
use rdkafka::consumer::{Consumer, ConsumerContext, StreamConsumer};
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Message, Offset, TopicPartitionList};

use crate::admin::ensure_topic_with;
use crate::config::{KafkaConfig, KafkaError, blocking, err, unreachable_brokers};
use framing::{Assembler, Note, frame};

/// The topic name prefix unless told otherwise.
pub const DEFAULT_JOURNAL_PREFIX: &str = "flashsale-journal-";

/// The most JSON bytes of events in one record (librdkafka's and Kafka's
/// default message limit is about 1 MB).
pub const MAX_PART_BYTES: usize = 256 * 1024;

/// How long a readiness check waits for the brokers.
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// How long a read waits for the next record it knows is there.
const READ_TIMEOUT: Duration = Duration::from_secs(30);

/// A [`Storage`] that journals each sale to a Kafka topic of its own.
///
/// ```no_run
/// # async fn f() -> Result<(), Box<dyn std::error::Error>> {
/// use std::sync::Arc;
/// use flashsale_core::service::Ports;
/// use flashsale_kafka::{DEFAULT_JOURNAL_PREFIX, KafkaConfig, KafkaStorage};
///
/// let config = KafkaConfig::new("127.0.0.1:9092", "transactions");
/// let (mut ports, _) = Ports::in_memory();
/// ports.storage = Arc::new(KafkaStorage::connect(&config, DEFAULT_JOURNAL_PREFIX).await?);
/// // Replays every sale journaled under the prefix.
/// let service = flashsale_core::Service::open(ports).await?;
/// # Ok(()) }
/// ```
pub struct KafkaStorage {
    config: KafkaConfig,
    prefix: String,
    producer: FutureProducer,
    /// Per sale: the journal's length once known, behind a lock that also
    /// keeps one sale's appends in order.
    lengths: Mutex<hashbrown::HashMap<SaleId, Arc<tokio::sync::Mutex<Option<u64>>>>>,
}

impl std::fmt::Debug for KafkaStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaStorage")
            .field("brokers", &self.config.brokers)
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

/// The journal reader's client context: the end of a partition is how a
/// read knows it is done, not an error worth logging as one (librdkafka
/// also reports it through the client's error callback).
struct ReaderContext;

impl ClientContext for ReaderContext {
    fn error(&self, error: rdkafka::error::KafkaError, reason: &str) {
        if matches!(error, rdkafka::error::KafkaError::PartitionEOF(_))
            || error.rdkafka_error_code() == Some(RDKafkaErrorCode::PartitionEOF)
        {
            tracing::debug!(%reason, "journal read reached the end of its partition");
        } else {
            tracing::error!(%error, %reason, "librdkafka");
        }
    }
}

impl ConsumerContext for ReaderContext {}

type Reader = StreamConsumer<ReaderContext>;

fn storage_error(e: KafkaError) -> StorageError {
    StorageError(Box::new(e))
}

impl KafkaStorage {
    /// Connects to `config.brokers` (`config.topic` is not used: each sale
    /// has the topic `{prefix}{sale id}`); a clear error if the brokers
    /// cannot be reached. `prefix` may hold only ASCII letters, digits,
    /// `.`, `_` and `-`.
    pub async fn connect(config: &KafkaConfig, prefix: &str) -> Result<Self, KafkaError> {
        if !prefix
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
            || prefix.len() > 200
        {
            return Err(KafkaError(format!(
                "journal topic prefix {prefix:?}: use at most 200 ASCII letters, digits, '.', '_' or '-'"
            )));
        }
        let producer: FutureProducer = config
            .client(&[("linger.ms", "1")])
            .set("enable.idempotence", "true")
            .set("acks", "all")
            // An append that cannot be delivered fails after this long;
            // the service retries it (the framing drops any duplicate).
            .set("message.timeout.ms", "30000")
            .create()
            .map_err(|e| err("kafka producer", e))?;
        let storage = KafkaStorage {
            config: config.clone(),
            prefix: prefix.to_owned(),
            producer,
            lengths: Mutex::default(),
        };
        // Fail now, clearly, if the brokers are not there.
        storage.journal_topics().await?;
        Ok(storage)
    }

    fn topic(&self, sale: SaleId) -> String {
        format!("{}{sale}", self.prefix)
    }

    /// The journal topics' sales, from the cluster's metadata.
    async fn journal_topics(&self) -> Result<Vec<SaleId>, KafkaError> {
        let (consumer, config, prefix) = (self.reader()?, self.config.clone(), self.prefix.clone());
        blocking(move || {
            let metadata = consumer
                .fetch_metadata(None, READ_TIMEOUT)
                .map_err(|e| unreachable_brokers(&config, e))?;
            Ok(metadata
                .topics()
                .iter()
                .filter(|t| t.error().is_none())
                .filter_map(|t| t.name().strip_prefix(&prefix)?.parse().ok())
                .collect())
        })
        .await
    }

    fn reader(&self) -> Result<Reader, KafkaError> {
        self.config
            .client(&[])
            .set("group.id", format!("{}reader", self.prefix))
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("enable.partition.eof", "true")
            // Reads end at the end: do not let the broker sit on an empty fetch.
            .set("fetch.wait.max.ms", "10")
            .create_with_context(ReaderContext)
            .map_err(|e| err("kafka consumer", e))
    }

    /// Whether the sale's topic holds any record. (Only that: tansu 0.6
    /// answers ListOffsets(latest) with the last batch's first offset + 1,
    /// so the end is read from fetch responses instead.)
    async fn has_records(consumer: &Arc<Reader>, topic: &str) -> Result<bool, KafkaError> {
        let (consumer, topic) = (consumer.clone(), topic.to_owned());
        blocking(
            move || match consumer.fetch_watermarks(&topic, 0, READ_TIMEOUT) {
                Ok((_, high)) => Ok(high > 0),
                Err(e)
                    if matches!(
                        e.rdkafka_error_code(),
                        Some(
                            RDKafkaErrorCode::UnknownTopicOrPartition
                                | RDKafkaErrorCode::UnknownPartition
                                | RDKafkaErrorCode::UnknownTopic
                        )
                    ) =>
                {
                    Ok(false)
                }
                Err(e) => Err(err(&format!("watermarks of {topic}"), e)),
            },
        )
        .await
    }

    /// Reads a sale's journal: every complete batch whose `seq` follows on.
    async fn read_journal(&self, sale: SaleId) -> Result<Vec<Event>, KafkaError> {
        let topic = self.topic(sale);
        let consumer = Arc::new(self.reader()?);
        if !Self::has_records(&consumer, &topic).await? {
            return Ok(Vec::new());
        }
        let mut list = TopicPartitionList::new();
        list.add_partition_offset(&topic, 0, Offset::Beginning)
            .map_err(|e| err("assign", e))?;
        consumer
            .assign(&list)
            .map_err(|e| err(&format!("assign {topic}"), e))?;
        let mut assembler = Assembler::default();
        loop {
            // The end is where a fetch response says the partition ends.
            let message = match tokio::time::timeout(READ_TIMEOUT, consumer.recv()).await {
                Err(_) => {
                    return Err(KafkaError(format!(
                        "{topic}: no record for {READ_TIMEOUT:?}"
                    )));
                }
                Ok(Err(rdkafka::error::KafkaError::PartitionEOF(_))) => {
                    return Ok(assembler.finish());
                }
                Ok(Err(e)) => return Err(err(&format!("read {topic}"), e)),
                Ok(Ok(m)) => m,
            };
            let offset = message.offset();
            let note = assembler
                .push(message.payload().unwrap_or_default())
                .map_err(|e| {
                    err(
                        &format!("{topic} offset {offset} is not a journal record"),
                        e,
                    )
                })?;
            match note {
                None => {}
                Some(Note::DroppedIncomplete) => {
                    tracing::warn!(%topic, offset, "dropping an incomplete journal batch");
                }
                Some(Note::SkippedDuplicate) => {
                    tracing::info!(%topic, offset, "skipping a journal batch written twice");
                }
                Some(Note::DroppedOutOfBatch) => {
                    tracing::warn!(%topic, offset, "dropping a journal record out of its batch");
                }
            }
        }
    }

    /// Writes one batch as framed records and waits for every
    /// acknowledgement.
    async fn write_batch(&self, topic: &str, seq: u64, events: &[Event]) -> Result<(), KafkaError> {
        let records = frame(seq, events, MAX_PART_BYTES).map_err(|e| err("encode event", e))?;
        let mut deliveries = Vec::with_capacity(records.len());
        for value in &records {
            let record = FutureRecord::<(), _>::to(topic).payload(value).partition(0);
            deliveries.push(
                self.producer
                    .send_result(record)
                    .map_err(|(e, _)| err("kafka enqueue", e))?,
            );
        }
        for d in deliveries {
            match d.await {
                Ok(Ok(_)) => {}
                Ok(Err((e, _))) => return Err(err(&format!("append to {topic}"), e)),
                Err(_) => return Err(KafkaError("kafka producer dropped a delivery".into())),
            }
        }
        Ok(())
    }

    fn length_of(&self, sale: SaleId) -> Arc<tokio::sync::Mutex<Option<u64>>> {
        self.lengths
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(sale)
            .or_default()
            .clone()
    }
}

#[async_trait]
impl Storage for KafkaStorage {
    async fn append(&self, sale: SaleId, events: &[Event]) -> Result<(), StorageError> {
        if events.is_empty() {
            return Ok(());
        }
        let length = self.length_of(sale);
        let mut length = length.lock().await;
        let topic = self.topic(sale);
        let seq = match *length {
            Some(n) => n,
            None => {
                let config = KafkaConfig {
                    topic: topic.clone(),
                    ..self.config.clone()
                };
                ensure_topic_with(
                    &config,
                    1,
                    &[("retention.ms", "-1"), ("retention.bytes", "-1")],
                )
                .await
                .map_err(storage_error)?;
                let n = self.read_journal(sale).await.map_err(storage_error)?.len() as u64;
                *length = Some(n);
                n
            }
        };
        self.write_batch(&topic, seq, events)
            .await
            .map_err(storage_error)?;
        *length = Some(seq + events.len() as u64);
        Ok(())
    }

    async fn read(&self, sale: SaleId) -> Result<Vec<Event>, StorageError> {
        let length = self.length_of(sale);
        let mut length = length.lock().await;
        let journal = self.read_journal(sale).await.map_err(storage_error)?;
        // An empty journal may have no topic yet: leave it to the first
        // append to make sure of it.
        if !journal.is_empty() {
            *length = Some(journal.len() as u64);
        }
        Ok(journal)
    }

    /// The brokers answer a metadata request within a few seconds.
    async fn check(&self) -> Result<(), StorageError> {
        let (consumer, config) = (self.reader().map_err(storage_error)?, self.config.clone());
        blocking(move || {
            consumer
                .fetch_metadata(None, CHECK_TIMEOUT)
                .map(drop)
                .map_err(|e| unreachable_brokers(&config, e))
        })
        .await
        .map_err(storage_error)
    }

    async fn sales(&self) -> Result<Vec<SaleId>, StorageError> {
        let mut sales = Vec::new();
        let consumer = Arc::new(self.reader().map_err(storage_error)?);
        for sale in self.journal_topics().await.map_err(storage_error)? {
            // A topic made by a metadata request but never written to
            // holds no journal.
            if Self::has_records(&consumer, &self.topic(sale))
                .await
                .map_err(storage_error)?
            {
                sales.push(sale);
            }
        }
        Ok(sales)
    }
}
