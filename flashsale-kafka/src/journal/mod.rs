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
//! **Fencing.** Two processes may try to write one sale's journal (a
//! rolling deploy, an operator's mistake, a standby taking over). The one
//! that reads the journal to replay it then writes a *claim* with a new
//! epoch (see [`framing`]); from there on, records of older epochs are
//! dropped on replay. A writer acknowledges an append only when its records
//! landed at the offsets right after its own previous record — the topic
//! has one partition, so nothing, and in particular no claim, came between
//! — and otherwise refuses it for good with [`StorageError::fenced`]: the
//! older writer stops at its next append, before acknowledging anything
//! the newer one will not replay. (Kafka's transactional producer would
//! fence by `transactional.id`, but tansu 0.6 has no `EndTxn`: see
//! `tests/transactions.rs`.)
//!
//! **Snapshots.** [`Storage::snapshot`] writes the engine's snapshot as one
//! batch marked `snapshot` (replay takes it for the journal so far), notes
//! its offset on the sale's index topic `{prefix}{sale id}.snapshots`, from
//! which a restart starts reading, and asks the broker to delete the
//! records before it (tansu 0.6 does not: they stay, unread).

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

mod framing;
mod read;

use async_trait::async_trait;
use flashsale_core::{Event, SaleId, Storage, StorageError};
use rdkafka::admin::{AdminClient, AdminOptions};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::Consumer;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};

use crate::admin::ensure_topic_with;
use crate::config::{KafkaConfig, KafkaError, blocking, err, unreachable_brokers};
use framing::{beat, claim, frame, frame_snapshot};
use read::Followed;

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
    /// Per sale: this writer's hold on the journal, behind a lock that
    /// also keeps one sale's appends in order.
    writers: Mutex<hashbrown::HashMap<SaleId, Arc<tokio::sync::Mutex<Writer>>>>,
    /// Beats topics known to exist.
    beats_ready: Mutex<hashbrown::HashSet<String>>,
}

/// This process's hold on one sale's journal.
#[derive(Debug, Default)]
struct Writer {
    /// Known while the last write went as expected.
    held: Option<Held>,
    /// The epoch this writer claimed, once it has.
    epoch: Option<u64>,
    /// The journal's length before an append that failed: if a re-read
    /// finds that append landed after all, its retry is done.
    retrying_from: Option<u64>,
    /// Another writer took the journal: every append is refused.
    fenced: bool,
    /// What a standby has read so far, to take over from.
    followed: Option<Followed>,
}

impl Writer {
    /// Refuses for good once another writer has taken the journal.
    fn check(&self, topic: &str) -> Result<(), StorageError> {
        if self.fenced {
            return Err(StorageError::fenced(format!(
                "{topic} belongs to another writer"
            )));
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy)]
struct Held {
    /// Events in the journal.
    length: u64,
    /// The offset the next record must land at.
    next_offset: i64,
}

impl std::fmt::Debug for KafkaStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaStorage")
            .field("brokers", &self.config.brokers)
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

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
            writers: Mutex::default(),
            beats_ready: Mutex::default(),
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

    /// Writes records and waits for every acknowledgement: the offset each
    /// landed at.
    async fn write(&self, topic: &str, records: &[Vec<u8>]) -> Result<Vec<i64>, KafkaError> {
        let mut deliveries = Vec::with_capacity(records.len());
        for value in records {
            let record = FutureRecord::<(), _>::to(topic).payload(value).partition(0);
            deliveries.push(
                self.producer
                    .send_result(record)
                    .map_err(|(e, _)| err("kafka enqueue", e))?,
            );
        }
        let mut offsets = Vec::with_capacity(deliveries.len());
        for d in deliveries {
            match d.await {
                Ok(Ok(delivery)) => offsets.push(delivery.offset),
                Ok(Err((e, _))) => return Err(err(&format!("append to {topic}"), e)),
                Err(_) => return Err(KafkaError("kafka producer dropped a delivery".into())),
            }
        }
        Ok(offsets)
    }

    /// Makes sure `topic` exists: one partition, kept for ever.
    async fn ensure_kept(&self, topic: &str) -> Result<(), KafkaError> {
        let config = KafkaConfig {
            topic: topic.to_owned(),
            ..self.config.clone()
        };
        ensure_topic_with(
            &config,
            1,
            &[("retention.ms", "-1"), ("retention.bytes", "-1")],
        )
        .await
        .map(drop)
    }

    /// The topic a sale's writer beats on when it has nothing to append.
    fn beats_topic(&self, sale: SaleId) -> String {
        format!("{}{sale}.beats", self.prefix)
    }

    /// Makes sure the beats topic exists (once per topic and process).
    async fn ensure_beats(&self, topic: &str) -> Result<(), KafkaError> {
        if self
            .beats_ready
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(topic)
        {
            return Ok(());
        }
        let config = KafkaConfig {
            topic: topic.to_owned(),
            ..self.config.clone()
        };
        // Beats are only ever read as they come: an hour of them is plenty.
        ensure_topic_with(&config, 1, &[("retention.ms", "3600000")]).await?;
        self.beats_ready
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(topic.to_owned());
        Ok(())
    }

    /// The topic that indexes a sale's snapshots: one record
    /// `{"offset":X}` per snapshot, X where its batch starts.
    fn index_topic(&self, sale: SaleId) -> String {
        format!("{}{sale}.snapshots", self.prefix)
    }

    async fn index_snapshot(&self, sale: SaleId, offset: i64) -> Result<(), KafkaError> {
        let topic = self.index_topic(sale);
        self.ensure_kept(&topic).await?;
        self.write(&topic, &[format!(r#"{{"offset":{offset}}}"#).into_bytes()])
            .await
            .map(drop)
    }

    /// Deletes the journal topic's records before `offset`.
    async fn delete_before(&self, topic: &str, offset: i64) -> Result<(), KafkaError> {
        let admin: AdminClient<DefaultClientContext> = self
            .config
            .client(&[])
            .create()
            .map_err(|e| err("kafka admin client", e))?;
        let mut list = TopicPartitionList::new();
        list.add_partition_offset(topic, 0, Offset::Offset(offset))
            .map_err(|e| err("delete records", e))?;
        let done = admin
            .delete_records(
                &list,
                &AdminOptions::new().operation_timeout(Some(READ_TIMEOUT)),
            )
            .await
            .map_err(|e| err(&format!("delete records of {topic}"), e))?;
        for element in done.elements() {
            if let Err(e) = element.error() {
                return Err(err(&format!("delete records of {topic}"), e));
            }
        }
        Ok(())
    }

    fn writer_of(&self, sale: SaleId) -> Arc<tokio::sync::Mutex<Writer>> {
        self.writers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(sale)
            .or_default()
            .clone()
    }

    /// Reads the journal to its end and takes hold of it: with a new claim
    /// the first time (fencing whoever wrote before), or, after a failed
    /// write, by checking that nobody has claimed it since.
    async fn take(&self, sale: SaleId, writer: &mut Writer) -> Result<Vec<Event>, StorageError> {
        let topic = self.topic(sale);
        self.ensure_kept(&topic).await.map_err(storage_error)?;
        // A claim loses a race with a record written between our read and
        // it: read again (a bounded number of times).
        for _ in 0..16 {
            let read = self
                .read_journal(sale, writer.followed.take())
                .await
                .map_err(storage_error)?;
            let length = read.events.len() as u64;
            if let Some(mine) = writer.epoch {
                if read.epoch != mine {
                    writer.fenced = true;
                    return Err(fenced(&topic, read.epoch, mine));
                }
                writer.held = Some(Held {
                    length,
                    next_offset: read.end,
                });
                return Ok(read.events);
            }
            let epoch = read.epoch + 1;
            let landed = self
                .write(&topic, &[claim(epoch)])
                .await
                .map_err(storage_error)?;
            if landed == [read.end] {
                tracing::info!(%topic, epoch, events = length, "journal claimed");
                writer.epoch = Some(epoch);
                writer.held = Some(Held {
                    length,
                    next_offset: read.end + 1,
                });
                return Ok(read.events);
            }
        }
        Err(StorageError::msg(format!(
            "{topic}: could not claim the journal: other writers keep writing to it"
        )))
    }
}

fn fenced(topic: &str, theirs: u64, mine: u64) -> StorageError {
    StorageError::fenced(format!(
        "{topic} was claimed by another writer (epoch {theirs}; ours {mine})"
    ))
}

#[async_trait]
impl Storage for KafkaStorage {
    /// Appends one framed batch; see the module docs for the fencing rule.
    async fn append(&self, sale: SaleId, events: &[Event]) -> Result<(), StorageError> {
        if events.is_empty() {
            return Ok(());
        }
        let writer = self.writer_of(sale);
        let mut writer = writer.lock().await;
        let topic = self.topic(sale);
        writer.check(&topic)?;
        let held = match writer.held {
            Some(held) => held,
            None => {
                self.take(sale, &mut writer).await?;
                let held = writer.held.unwrap_or(Held {
                    length: 0,
                    next_offset: 0,
                });
                if let Some(before) = writer.retrying_from.take()
                    && held.length == before + events.len() as u64
                {
                    // The failed write landed whole after all.
                    return Ok(());
                }
                held
            }
        };
        let epoch = writer.epoch.unwrap_or(0);
        let records = frame(held.length, epoch, events, MAX_PART_BYTES)
            .map_err(|e| storage_error(err("encode event", e)))?;
        let landed = match self.write(&topic, &records).await {
            Ok(landed) => landed,
            Err(e) => {
                // Where it landed, if at all, is unknown: read it back
                // before the next write.
                writer.held = None;
                writer.retrying_from = Some(held.length);
                return Err(storage_error(e));
            }
        };
        let expected = (held.next_offset..).take(records.len());
        if !landed.iter().copied().eq(expected) {
            // Someone else wrote to the journal since our last record: a
            // newer writer's claim (we are fenced), or a fenced writer's
            // late records (dropped on replay). Read back which.
            tracing::info!(%topic, ?landed, expected = held.next_offset,
                "journal records landed after another writer's: reading it back");
            writer.held = None;
            self.take(sale, &mut writer).await?;
            return match writer.held {
                Some(now) if now.length == held.length + events.len() as u64 => Ok(()),
                _ => {
                    writer.held = None;
                    writer.retrying_from = Some(held.length);
                    Err(StorageError::msg(format!(
                        "{topic}: an append did not read back whole; retrying"
                    )))
                }
            };
        }
        writer.held = Some(Held {
            length: held.length + events.len() as u64,
            next_offset: held.next_offset + records.len() as i64,
        });
        Ok(())
    }

    /// Reads the journal and, if it has one, claims it for this writer:
    /// any other writer of the sale is fenced from here on.
    async fn read(&self, sale: SaleId) -> Result<Vec<Event>, StorageError> {
        let writer = self.writer_of(sale);
        let mut writer = writer.lock().await;
        let consumer = Arc::new(self.reader().map_err(storage_error)?);
        // An empty journal may have no topic yet: leave it to the first
        // append to make sure of it.
        if !Self::has_records(&consumer, &self.topic(sale))
            .await
            .map_err(storage_error)?
        {
            return Ok(Vec::new());
        }
        writer.epoch = None;
        writer.fenced = false;
        self.take(sale, &mut writer).await
    }

    /// Writes the snapshot on the journal's topic as one batch (replay
    /// takes it for the journal so far), then deletes the records before it
    /// (best effort: the topic's start moves up to the snapshot, so a
    /// restart reads from there). Checked like an append.
    async fn snapshot(
        &self,
        sale: SaleId,
        covers: u64,
        snapshot: &[Event],
    ) -> Result<bool, StorageError> {
        let writer = self.writer_of(sale);
        let mut writer = writer.lock().await;
        let topic = self.topic(sale);
        writer.check(&topic)?;
        if writer.held.is_none() {
            self.take(sale, &mut writer).await?;
        }
        let held = writer
            .held
            .ok_or_else(|| StorageError::msg(format!("{topic}: no journal to snapshot")))?;
        if covers != held.length {
            return Err(StorageError::msg(format!(
                "{topic}: a snapshot must cover the whole journal ({covers} of {})",
                held.length
            )));
        }
        let epoch = writer.epoch.unwrap_or(0);
        let records = frame_snapshot(covers, epoch, snapshot, MAX_PART_BYTES)
            .map_err(|e| storage_error(err("encode event", e)))?;
        writer.held = None; // until it is known where it landed
        let landed = self.write(&topic, &records).await.map_err(storage_error)?;
        if !landed
            .iter()
            .copied()
            .eq((held.next_offset..).take(records.len()))
        {
            // Another writer's records came between: read back whether the
            // snapshot took.
            self.take(sale, &mut writer).await?;
            return match writer.held {
                Some(now) if now.length == snapshot.len() as u64 => Ok(true),
                _ => Err(StorageError::msg(format!(
                    "{topic}: a snapshot did not read back whole"
                ))),
            };
        }
        writer.held = Some(Held {
            length: snapshot.len() as u64,
            next_offset: held.next_offset + records.len() as i64,
        });
        // Where a restart starts reading; without it, it reads from the
        // topic's start (still right, only longer).
        if let Err(e) = self.index_snapshot(sale, held.next_offset).await {
            tracing::warn!(%topic, error = %e, "could not index a snapshot");
        }
        if let Err(e) = self.delete_before(&topic, held.next_offset).await {
            // tansu 0.6 does not delete records: the topic keeps them.
            tracing::info!(%topic, error = %e, "the records a snapshot replaces stay on the topic");
        }
        Ok(true)
    }

    /// Writes a beat on the sale's beats topic (see
    /// [`KafkaStorage::wait_until_silent`]): beside the journal, so that a
    /// beat neither waits for appends nor moves their offsets.
    async fn keep_alive(&self, sale: SaleId) -> Result<(), StorageError> {
        let writer = self.writer_of(sale);
        let epoch = {
            let writer = writer.lock().await;
            writer.check(&self.topic(sale))?;
            match writer.epoch {
                Some(epoch) => epoch,
                None => return Ok(()), // not writing this journal
            }
        };
        let topic = self.beats_topic(sale);
        self.ensure_beats(&topic).await.map_err(storage_error)?;
        self.write(&topic, &[beat(epoch)])
            .await
            .map(drop)
            .map_err(storage_error)
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
