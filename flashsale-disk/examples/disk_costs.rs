//! What the on-disk journal costs on this machine: an append's `fsync` by
//! group size (against a plain file's `write` + `fdatasync`, the floor any
//! durable log pays), the journal's bytes per buyer, the restart time of a
//! sale with N joined buyers (read the journal, replay the engine), and of
//! a sale of N buyers through a queue, with and without a snapshot.
//!
//! `cargo run --release -p flashsale-disk --example disk_costs -- [buyers, default 1000000] [dir]`
//!
//! `dir` defaults to a temporary directory under `$TMPDIR`: give one on the
//! disk you mean to measure. `ONLY_QUEUED=1` runs the last part alone (at
//! 10M buyers it needs ~12 GB of disk).
#![allow(
    clippy::unwrap_used,
    reason = "a measurement stops at the first surprise"
)]

use std::io::Write;
use std::time::{Duration, Instant};

use flashsale_core::{Engine, SaleConfig, SaleId, SequentialIds, Storage, Timestamp};
use flashsale_disk::DiskStorage;

const GROUPS: [usize; 3] = [1, 16, 128];
const COMMITS: usize = 300;

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let buyers: usize = args.next().map_or(1_000_000, |n| n.parse().unwrap());
    let tmp = tempfile::tempdir().unwrap();
    let dir = args
        .next()
        .map_or_else(|| tmp.path().to_owned(), Into::into);
    std::fs::create_dir_all(&dir).unwrap();

    let t0 = Timestamp::from_millis(1_700_000_000_000);
    let sale = SaleId::from_bytes([7; 12]);
    let config = SaleConfig::new(sale, u64::MAX / 2, t0, Timestamp::MAX);
    let mut engine = Engine::new(t0, config, Box::new(SequentialIds::default())).unwrap();
    let opened: Vec<_> = engine.drain_events().collect();

    if std::env::var_os("ONLY_QUEUED").is_none() {
        fsync_and_joined(&dir, buyers, sale, engine, opened, t0).await;
    }
    queued(&dir, buyers).await;
}

/// The first two parts: append + fsync by group size; a join-only sale.
async fn fsync_and_joined(
    dir: &std::path::Path,
    buyers: usize,
    sale: SaleId,
    mut engine: Engine,
    opened: Vec<flashsale_core::Event>,
    t0: Timestamp,
) {
    println!("== append + fsync, by events per commit ({COMMITS} commits each)");
    {
        let storage = DiskStorage::open(dir.join("fsync")).unwrap();
        storage.append(sale, &opened).await.unwrap();
        let mut n = 0;
        for group in GROUPS {
            let batches: Vec<Vec<_>> = (0..COMMITS)
                .map(|_| {
                    for _ in 0..group {
                        engine.buy(t0, &format!("f{n}")).unwrap();
                        n += 1;
                    }
                    engine.drain_events().collect()
                })
                .collect();
            let start = Instant::now();
            for batch in &batches {
                storage.append(sale, batch).await.unwrap();
            }
            let took = start.elapsed();
            let file = plain_file(dir, group, batches[0].len() * 200);
            println!(
                "redb:  {group:>3} events/commit: {:>7.1} µs/commit, {:>6.2} µs/event | plain file + fdatasync: {:>7.1} µs/commit",
                micros(took) / COMMITS as f64,
                micros(took) / (COMMITS * group) as f64,
                micros(file) / COMMITS as f64,
            );
        }
    }

    println!("== a sale with {buyers} joined buyers");
    let storage = DiskStorage::open(dir.join("restart")).unwrap();
    let mut engine = Engine::new(
        t0,
        engine.config().clone(),
        Box::new(SequentialIds::default()),
    )
    .unwrap();
    let start = Instant::now();
    let mut joined = 0;
    while joined < buyers {
        let n = 1024.min(buyers - joined);
        for i in joined..joined + n {
            engine.buy(t0, &format!("buyer-{i}")).unwrap();
        }
        joined += n;
        let batch: Vec<_> = engine.drain_events().collect();
        storage.append(sale, &batch).await.unwrap();
    }
    println!(
        "written in {:.1} s (batches of 1,024)",
        start.elapsed().as_secs_f64()
    );
    drop(storage);
    let bytes = std::fs::metadata(dir.join("restart").join(flashsale_disk::FILE_NAME))
        .unwrap()
        .len();
    println!(
        "journal: {bytes} bytes, {} bytes per buyer",
        bytes / buyers.max(1) as u64
    );

    let start = Instant::now();
    let storage = DiskStorage::open(dir.join("restart")).unwrap();
    let opened_in = start.elapsed();
    let journal = storage.read(sale).await.unwrap();
    let read_in = start.elapsed();
    let replayed = Engine::replay(&journal, Box::new(SequentialIds::default())).unwrap();
    let total = start.elapsed();
    assert_eq!(replayed.transactions().count(), buyers);
    println!(
        "restart: open {:.2} s, read {} events {:.2} s, replay {:.2} s — {:.2} s in all",
        opened_in.as_secs_f64(),
        journal.len(),
        (read_in - opened_in).as_secs_f64(),
        (total - read_in).as_secs_f64(),
        total.as_secs_f64()
    );
}

/// The last part: a queued sale's restart with and without a snapshot.
async fn queued(dir: &std::path::Path, buyers: usize) {
    println!("== a sale of {buyers} buyers through a capped queue: with and without a snapshot");
    let history = queued_history(buyers);
    let sale = history[0].sale;
    let dir = dir.join("queued");
    let storage = DiskStorage::open(&dir).unwrap();
    for batch in history.chunks(4096) {
        storage.append(sale, batch).await.unwrap();
    }
    let snapshot = Engine::replay(&history, Box::new(SequentialIds::default()))
        .unwrap()
        .snapshot();
    drop(storage);
    let size = || {
        std::fs::metadata(dir.join(flashsale_disk::FILE_NAME))
            .unwrap()
            .len()
    };
    let (events, read, replay) = restart(&dir, sale).await;
    println!(
        "journal of {events} events, {} bytes: restart read {read:.2} s + replay {replay:.2} s = {:.2} s",
        size(),
        read + replay
    );
    let storage = DiskStorage::open(&dir).unwrap();
    let start = Instant::now();
    storage
        .snapshot(sale, history.len() as u64, &snapshot)
        .await
        .unwrap();
    println!(
        "snapshot of {} events written in {:.2} s",
        snapshot.len(),
        start.elapsed().as_secs_f64()
    );
    drop(storage);
    let (events, read, replay) = restart(&dir, sale).await;
    println!(
        "snapshot of {events} events, file {} bytes: restart read {read:.2} s + replay {replay:.2} s = {:.2} s",
        size(),
        read + replay
    );
}

/// A sale's history through a capped queue: `buyers` join behind 500
/// payment slots (500 more waiting); every 500 joins, each slot holder pays (85%) or leaves
/// and the next in line is promoted. About three events a buyer (joined
/// waiting, promoted, paid or left) for a snapshot's two.
fn queued_history(buyers: usize) -> Vec<flashsale_core::Event> {
    use flashsale_core::{EventKind, Place, TxId};
    let t0 = Timestamp::from_millis(1_700_000_000_000);
    let mut config = SaleConfig::new(
        SaleId::from_bytes([8; 12]),
        buyers as u64,
        t0,
        Timestamp::MAX,
    );
    config.max_payment_slots = Some(500);
    config.payment_timeout = Duration::from_secs(3600);
    let mut engine = Engine::new(t0, config, Box::new(SequentialIds::default())).unwrap();
    let mut journal: Vec<_> = engine.drain_events().collect();
    let mut holders: Vec<TxId> = Vec::new();
    let mut now = t0;
    for i in 0..buyers {
        if let Ok(a) = engine.buy(now, &format!("buyer-{i}"))
            && matches!(a.place, Place::Payment { .. })
        {
            holders.push(a.tx);
        }
        if i % 500 == 499 && i >= 999 {
            now = now.saturating_add(Duration::from_millis(1));
            for (n, tx) in std::mem::take(&mut holders).into_iter().enumerate() {
                if n % 20 < 17 {
                    let _ = engine.paid(now, tx);
                } else {
                    let _ = engine.leave(now, tx);
                }
            }
            for e in engine.drain_events() {
                if let EventKind::Promoted { tx, .. } = e.kind {
                    holders.push(tx);
                }
                journal.push(e);
            }
        }
    }
    journal.extend(engine.drain_events());
    journal
}

/// Restart time (open, read, replay) of the one sale in `dir`.
async fn restart(dir: &std::path::Path, sale: SaleId) -> (usize, f64, f64) {
    let start = Instant::now();
    let storage = DiskStorage::open(dir).unwrap();
    let journal = storage.read(sale).await.unwrap();
    let read = start.elapsed();
    Engine::replay(&journal, Box::new(SequentialIds::default())).unwrap();
    let total = start.elapsed();
    (
        journal.len(),
        read.as_secs_f64(),
        (total - read).as_secs_f64(),
    )
}

/// `COMMITS` appends of `bytes` each to a plain file, each followed by
/// `fdatasync`.
fn plain_file(dir: &std::path::Path, group: usize, bytes: usize) -> Duration {
    let path = dir.join(format!("plain-{group}.log"));
    let mut file = std::fs::File::create(&path).unwrap();
    let block = vec![b'x'; bytes];
    let start = Instant::now();
    for _ in 0..COMMITS {
        file.write_all(&block).unwrap();
        file.sync_data().unwrap();
    }
    start.elapsed()
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}
