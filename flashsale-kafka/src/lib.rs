//! flashsale-kafka: the reference's `transactions` topic over Kafka
//! (rdkafka), byte-compatible, so its services and ours can be mixed.
//!
//! - [`KafkaSink`] — an [`EventSink`](flashsale_core::EventSink) for the transaction service: publishes
//!   `paid` and `switch` (and nothing else: the reference's consumer takes
//!   any other type for a payment) as `{transactionId, buyerName, saleId,
//!   type}`, key = transactionId. Idempotent producer, `acks=all`, no
//!   message timeout: while the broker is down events wait, in order, and
//!   are delivered when it returns. With several partitions, each sale is
//!   pinned to one, so a sale's events stay in order. It remembers what it
//!   published ([`EventSink::remembers`](flashsale_core::EventSink::remembers)):
//!   after a restart each journaled payment is published again only if the
//!   sale's partition does not hold it, so it reaches the topic once.
//! - [`consume`] — the backend's consumer loop: applies each message, then
//!   commits its offset (at least once; the catalogue applies a `paid` once
//!   however often it arrives). A message that is not valid JSON, misses
//!   fields or has an unknown type is logged, counted and skipped.
//!   (Its tests run on a real broker: on librdkafka's mock broker, stored
//!   offsets and commits hang.)
//! - [`KafkaStorage`] — a [`Storage`](flashsale_core::Storage) for the
//!   transaction service: each sale's engine journal on a topic of its own,
//!   replayed at start, so a killed service comes back with its payment
//!   slots, queue, sold count and buyer names. The process that replays a
//!   journal claims it, fencing any other writer; a standby follows it
//!   ([`KafkaStorage::wait_until_silent`]) and takes over when it falls
//!   silent.
//! - [`ensure_topic`] — creates the topic if it is missing.
//!
//! # Layout
//!
//! - `config` — [`KafkaConfig`], [`KafkaError`].
//! - `admin` — [`ensure_topic`].
//! - `sink` — [`KafkaSink`], [`encode`].
//! - `consumer` — [`consume`] and the consumers it reads from.
//! - `journal` — [`KafkaStorage`], the writing side (claims, appends,
//!   snapshots, beats); `journal::read`, the reading side (to the end, or
//!   following as a standby); `journal::framing`, the batch framing, a pure
//!   unit tested without a broker.

mod admin;
mod config;
mod consumer;
mod journal;
mod sink;

pub use admin::ensure_topic;
pub use config::{DEFAULT_TOPIC, KafkaConfig, KafkaError};
pub use consumer::{
    ConsumerStats, LagContext, TxConsumer, assigned_consumer, consume, consumer, replay_consumer,
    resume_consumer,
};
pub use journal::{DEFAULT_JOURNAL_PREFIX, KafkaStorage, MAX_PART_BYTES};
pub use sink::{KafkaSink, encode};
