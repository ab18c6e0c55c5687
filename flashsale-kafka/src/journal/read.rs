//! The reading side of the journal: a sale's records read back through the
//! [`Assembler`], to the end (a restart) or until they stop coming (a
//! standby), from the newest snapshot when the index names one.

use std::sync::Arc;
use std::time::Duration;

use flashsale_core::{Event, SaleId, StorageError};
use rdkafka::client::ClientContext;
use rdkafka::consumer::{Consumer, ConsumerContext, StreamConsumer};
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::{Message, Offset, TopicPartitionList};

use super::framing::{Assembler, Note};
use super::{KafkaStorage, READ_TIMEOUT, storage_error};
use crate::config::{KafkaError, blocking, err};

/// What has been read of a journal, to go on from.
#[derive(Debug, Default)]
pub(super) struct Followed {
    assembler: Assembler,
    /// The offset after the last record read.
    end: i64,
}

/// A reader going through one sale's journal.
struct Tail {
    consumer: Reader,
    topic: String,
    /// A beats topic read beside it, if any.
    beats: Option<String>,
    followed: Followed,
}

impl Tail {
    /// Reads the next record: `Some(true)` for a record, `Some(false)` at
    /// the partition's end, `None` if neither came within `wait`.
    async fn next(&mut self, wait: Duration) -> Result<Option<bool>, KafkaError> {
        let topic = &self.topic;
        let message = match tokio::time::timeout(wait, self.consumer.recv()).await {
            Err(_) => return Ok(None),
            Ok(Err(rdkafka::error::KafkaError::PartitionEOF(_))) => return Ok(Some(false)),
            Ok(Err(e)) => return Err(err(&format!("read {topic}"), e)),
            Ok(Ok(m)) => m,
        };
        if self.beats.as_deref() == Some(message.topic()) {
            return Ok(Some(true)); // alive, nothing to journal
        }
        let offset = message.offset();
        self.followed.end = offset + 1;
        let note = self
            .followed
            .assembler
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
            Some(Note::DroppedFenced) => {
                tracing::info!(%topic, offset, "dropping a fenced writer's journal record");
            }
        }
        Ok(Some(true))
    }
}

/// A journal read back to its end.
pub(super) struct ReadBack {
    pub(super) events: Vec<Event>,
    /// The latest claim's epoch.
    pub(super) epoch: u64,
    /// The offset after the last record.
    pub(super) end: i64,
}

/// The journal reader's client context: the end of a partition is how a
/// read knows it is done, not an error worth logging as one (librdkafka
/// also reports it through the client's error callback).
pub(super) struct ReaderContext;

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

pub(super) type Reader = StreamConsumer<ReaderContext>;

impl KafkaStorage {
    pub(super) fn reader(&self) -> Result<Reader, KafkaError> {
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
    pub(super) async fn has_records(
        consumer: &Arc<Reader>,
        topic: &str,
    ) -> Result<bool, KafkaError> {
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

    /// Reads a sale's journal: every complete batch whose `seq` follows on,
    /// of the latest claim's writer. Continues from `followed` (what a
    /// standby has read already) when given.
    pub(super) async fn read_journal(
        &self,
        sale: SaleId,
        followed: Option<Followed>,
    ) -> Result<ReadBack, KafkaError> {
        let mut tail = match followed {
            Some(followed) => self.tail(sale, followed)?,
            None => {
                let consumer = Arc::new(self.reader()?);
                if !Self::has_records(&consumer, &self.topic(sale)).await? {
                    return Ok(ReadBack {
                        events: Vec::new(),
                        epoch: 0,
                        end: 0,
                    });
                }
                // From the newest snapshot, if there is one.
                let start = self.latest_snapshot(sale).await?.unwrap_or(0);
                self.tail(
                    sale,
                    Followed {
                        end: start,
                        ..Followed::default()
                    },
                )?
            }
        };
        loop {
            match tail.next(READ_TIMEOUT).await? {
                Some(true) => {}
                // The end is where a fetch response says the partition ends.
                Some(false) => {
                    return Ok(ReadBack {
                        epoch: tail.followed.assembler.epoch(),
                        end: tail.followed.end,
                        events: tail.followed.assembler.finish(),
                    });
                }
                None => {
                    return Err(KafkaError(format!(
                        "{}: no record for {READ_TIMEOUT:?}",
                        tail.topic
                    )));
                }
            }
        }
    }

    /// A reader of the sale's journal from where `followed` ends.
    fn tail(&self, sale: SaleId, followed: Followed) -> Result<Tail, KafkaError> {
        self.tail_with(sale, followed, None)
    }

    /// [`KafkaStorage::tail`], also reading the new records of `beats`
    /// (signs of life, not journal records).
    fn tail_with(
        &self,
        sale: SaleId,
        followed: Followed,
        beats: Option<String>,
    ) -> Result<Tail, KafkaError> {
        let topic = self.topic(sale);
        let consumer = self.reader()?;
        let mut list = TopicPartitionList::new();
        list.add_partition_offset(&topic, 0, Offset::Offset(followed.end))
            .map_err(|e| err("assign", e))?;
        if let Some(beats) = &beats {
            list.add_partition_offset(beats, 0, Offset::End)
                .map_err(|e| err("assign", e))?;
        }
        consumer
            .assign(&list)
            .map_err(|e| err(&format!("assign {topic}"), e))?;
        Ok(Tail {
            consumer,
            topic,
            beats,
            followed,
        })
    }

    /// For a standby: follows the sale's journal (keeping what it read, so
    /// that taking over reads only the rest) and its beats topic, and
    /// returns once nothing has come on either for `silence` — its writer,
    /// who beats at least every
    /// [`ServiceConfig::keep_alive`](flashsale_core::service::ServiceConfig)
    /// when it has nothing to append, is taken for dead.
    pub async fn wait_until_silent(
        &self,
        sale: SaleId,
        silence: Duration,
    ) -> Result<(), StorageError> {
        let writer = self.writer_of(sale);
        let followed = writer.lock().await.followed.take();
        let followed = match followed {
            Some(followed) => followed,
            // From the newest snapshot, if there is one.
            None => Followed {
                end: self
                    .latest_snapshot(sale)
                    .await
                    .map_err(storage_error)?
                    .unwrap_or(0),
                ..Followed::default()
            },
        };
        let beats = self.beats_topic(sale);
        self.ensure_beats(&beats).await.map_err(storage_error)?;
        let mut tail = self
            .tail_with(sale, followed, Some(beats))
            .map_err(storage_error)?;
        let mut quiet_since = tokio::time::Instant::now();
        loop {
            let left = silence.saturating_sub(quiet_since.elapsed());
            match tail.next(left).await.map_err(storage_error)? {
                Some(true) => quiet_since = tokio::time::Instant::now(),
                Some(false) => {}
                None => break,
            }
        }
        tracing::info!(topic = %tail.topic, ?silence, read = tail.followed.end,
            "the journal fell silent: its writer is taken for dead");
        writer.lock().await.followed = Some(tail.followed);
        Ok(())
    }

    /// Where the sale's newest snapshot starts on its journal topic, if it
    /// has one: the last record of its index.
    async fn latest_snapshot(&self, sale: SaleId) -> Result<Option<i64>, KafkaError> {
        #[derive(serde::Deserialize)]
        struct Indexed {
            offset: i64,
        }
        let topic = self.index_topic(sale);
        let consumer = Arc::new(self.reader()?);
        if !Self::has_records(&consumer, &topic).await? {
            return Ok(None);
        }
        let mut list = TopicPartitionList::new();
        list.add_partition_offset(&topic, 0, Offset::Beginning)
            .map_err(|e| err("assign", e))?;
        consumer
            .assign(&list)
            .map_err(|e| err(&format!("assign {topic}"), e))?;
        let mut latest = None;
        loop {
            match tokio::time::timeout(READ_TIMEOUT, consumer.recv()).await {
                Err(_) => {
                    return Err(KafkaError(format!(
                        "{topic}: no record for {READ_TIMEOUT:?}"
                    )));
                }
                Ok(Err(rdkafka::error::KafkaError::PartitionEOF(_))) => return Ok(latest),
                Ok(Err(e)) => return Err(err(&format!("read {topic}"), e)),
                Ok(Ok(m)) => {
                    if let Some(Ok(i)) = m.payload().map(serde_json::from_slice::<Indexed>) {
                        latest = Some(i.offset);
                    }
                }
            }
        }
    }
}
