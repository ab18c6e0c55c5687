//! How long a transaction service takes to read its sale's Kafka journal
//! at restart, with and without a snapshot: a sale of N buyers through a
//! queue behind 500 slots (each holder pays, 85%, or leaves; the next in
//! line is promoted: about three events a buyer).
//!
//! `FLASHSALE_KAFKA_BROKERS=host:port cargo run --release -p flashsale-kafka --example restart_costs -- [buyers, default 100000]`
#![allow(
    clippy::unwrap_used,
    reason = "a measurement stops at the first surprise"
)]

use std::time::{Duration, Instant};

use flashsale_core::{
    Engine, EventKind, Place, SaleConfig, SaleId, SequentialIds, Storage, Timestamp, TxId,
};
use flashsale_kafka::{KafkaConfig, KafkaStorage};

#[tokio::main]
async fn main() {
    let buyers: usize = std::env::args()
        .nth(1)
        .map_or(100_000, |n| n.parse().unwrap());
    let brokers = std::env::var("FLASHSALE_KAFKA_BROKERS").expect("FLASHSALE_KAFKA_BROKERS");
    let config = KafkaConfig::new(&brokers, "unused");
    let prefix = format!("restart-costs-{}-", std::process::id());
    let storage = || async { KafkaStorage::connect(&config, &prefix).await.unwrap() };

    let t0 = Timestamp::from_millis(1_700_000_000_000);
    let sale = SaleId::from_bytes([9; 12]);
    let mut sale_config = SaleConfig::new(sale, buyers as u64, t0, Timestamp::MAX);
    sale_config.max_payment_slots = Some(500);
    sale_config.payment_timeout = Duration::from_secs(3600);
    let mut engine = Engine::new(t0, sale_config, Box::new(SequentialIds::default())).unwrap();
    let writer = storage().await;
    let mut holders: Vec<TxId> = Vec::new();
    let mut written = 0;
    for i in 0..buyers {
        if let Ok(a) = engine.buy(t0, &format!("buyer-{i}"))
            && matches!(a.place, Place::Payment { .. })
        {
            holders.push(a.tx);
        }
        if i % 500 == 499 && i >= 999 {
            for (n, tx) in std::mem::take(&mut holders).into_iter().enumerate() {
                if n % 20 < 17 {
                    let _ = engine.paid(t0, tx);
                } else {
                    let _ = engine.leave(t0, tx);
                }
            }
        }
        if i % 500 == 499 || i + 1 == buyers {
            let batch: Vec<_> = engine.drain_events().collect();
            for e in &batch {
                if let EventKind::Promoted { tx, .. } = e.kind {
                    holders.push(tx);
                }
            }
            written += batch.len();
            writer.append(sale, &batch).await.unwrap();
        }
    }
    println!("journal of {written} events for {buyers} buyers on the broker");

    let start = Instant::now();
    let read = storage().await.read(sale).await.unwrap();
    println!(
        "restart without a snapshot: read {} events in {:.2} s",
        read.len(),
        start.elapsed().as_secs_f64()
    );
    let snapshot = Engine::replay(&read, Box::new(SequentialIds::default()))
        .unwrap()
        .snapshot();
    // The reading storage holds the journal now (it claimed it).
    let holder = storage().await;
    let length = holder.read(sale).await.unwrap().len() as u64;
    let start = Instant::now();
    holder.snapshot(sale, length, &snapshot).await.unwrap();
    println!(
        "snapshot of {} events written in {:.2} s",
        snapshot.len(),
        start.elapsed().as_secs_f64()
    );
    let start = Instant::now();
    let read = storage().await.read(sale).await.unwrap();
    println!(
        "restart from the snapshot: read {} events in {:.2} s",
        read.len(),
        start.elapsed().as_secs_f64()
    );
}
