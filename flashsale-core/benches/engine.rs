//! Engine operations at 1k, 100k, 1M and 10M joined buyers.
//!
//! Every sale here caps payment slots at `SLOTS`, so nearly every joined
//! buyer is waiting: the hard case for positions, promotion and memory.
//!
//! Run: `cargo bench -p flashsale-core --bench engine`
//! (one size: `FLASHSALE_BENCH_SIZES=1000000 cargo bench … -- buy`)
#![allow(
    clippy::unwrap_used,
    reason = "a benchmark stops at the first surprise"
)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use flashsale_core::{Engine, SaleConfig, SaleId, SequentialIds, Timestamp, TxId};

const SLOTS: u64 = 100;
/// Buys applied together after one `Engine::prefetch_buyers`, as the service does.
const BATCH: usize = 64;
const TIMEOUT: Duration = Duration::from_secs(60);
const T0: Timestamp = Timestamp::from_millis(1_700_000_000_000);

fn sizes() -> Vec<usize> {
    std::env::var("FLASHSALE_BENCH_SIZES")
        .ok()
        .map(|s| s.split(',').filter_map(|n| n.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![1_000, 100_000, 1_000_000, 10_000_000])
}

/// An engine with `n` joined buyers: `SLOTS` holding payment slots, the
/// rest waiting, and their ids in join order.
struct Sale {
    engine: Engine,
    txs: Vec<TxId>,
    /// Index in `txs` of the oldest slot holder.
    front: usize,
    now: Timestamp,
    /// Buyers who joined since it was built.
    joined: usize,
    /// Waiting buyers who left since it was built.
    left: usize,
    size: usize,
}

impl Sale {
    fn new(n: usize) -> Self {
        let mut config = SaleConfig::new(
            SaleId::from(bson::oid::ObjectId::from_bytes([1; 12])),
            u64::MAX / 2,
            T0,
            Timestamp::MAX,
        );
        config.payment_timeout = TIMEOUT;
        config.max_payment_slots = Some(SLOTS);
        let mut engine = Engine::new(T0, config, Box::new(SequentialIds::default())).unwrap();
        let mut txs = Vec::with_capacity(n);
        let mut name = String::new();
        for i in 0..n {
            name.clear();
            use std::fmt::Write;
            write!(name, "buyer-{i:08}").unwrap();
            txs.push(engine.buy(T0, &name).unwrap().tx);
            if i % 4096 == 0 {
                engine.drain_events().for_each(drop);
            }
        }
        engine.drain_events().for_each(drop);
        Sale {
            engine,
            txs,
            front: 0,
            now: T0,
            joined: 0,
            left: 0,
            size: n,
        }
    }

    /// Buyers still waiting behind the slot holders, and not left.
    fn waiting(&self) -> usize {
        self.txs.len() - self.front - SLOTS as usize - self.left
    }

    /// The `l`-th waiting buyer to leave: stepping through the queue by a
    /// prime that does not divide its length visits each buyer once.
    fn leaver(&self, l: usize) -> TxId {
        let first = self.front + SLOTS as usize;
        let len = self.txs.len() - first;
        let stride = if len.is_multiple_of(7_919) {
            7_907
        } else {
            7_919
        };
        self.txs[first + (l * stride) % len]
    }

    /// Whether `need` more operations keep it near its size: enough
    /// waiting buyers, and no more than 10% more joined.
    fn fits(&self, need: usize) -> bool {
        self.waiting() > need && self.joined + need <= self.size / 10 + 1
    }
}

/// Runs `op` `iters` times on a sale of `n`, each call using up at most
/// `need` waiting buyers or adding one joined buyer; rebuilds the sale
/// (untimed) before it drifts from its size.
fn timed(
    sale: &mut Option<Sale>,
    n: usize,
    iters: u64,
    need: usize,
    mut op: impl FnMut(&mut Sale),
) -> Duration {
    let mut total = Duration::ZERO;
    let mut left = iters;
    while left > 0 {
        if sale.as_ref().is_none_or(|s| !s.fits(need)) {
            *sale = Some(Sale::new(n));
        }
        let s = sale.as_mut().unwrap();
        let room = (s.waiting() - 1) / need;
        let room = room.min((s.size / 10 + 1 - s.joined).max(1));
        let batch = left.min(room as u64).max(1);
        let start = Instant::now();
        for k in 0..batch {
            op(s);
            // Drain as the service does after each batch of commands.
            if k % 1024 == 1023 {
                s.engine.drain_events().for_each(drop);
            }
        }
        s.engine.drain_events().for_each(drop);
        total += start.elapsed();
        left -= batch;
    }
    total
}

fn bench(c: &mut Criterion) {
    for n in sizes() {
        let mut group = c.benchmark_group(format!("engine/{n}"));
        if n >= 1_000_000 {
            group.sample_size(10);
            group.warm_up_time(Duration::from_millis(500));
            group.measurement_time(Duration::from_secs(3));
        }
        let mut sale = Some(Sale::new(n));
        group.throughput(Throughput::Elements(1));

        // Criterion may call a bench closure more than once: keep the name
        // counter outside so names never repeat within a sale.
        let mut next = 0;
        let mut names = Vec::new();
        for (label, batch) in [("buy", 1), ("buy, batched", BATCH)] {
            group.bench_function(BenchmarkId::new(label, n), |b| {
                b.iter_custom(|iters| {
                    // Names made up front, outside the timing.
                    names.clear();
                    names.extend((0..iters).map(|i| format!("new-{}", next + i)));
                    next += iters;
                    let mut k: usize = 0;
                    timed(&mut sale, n, iters, 1, |s| {
                        if batch > 1 && k.is_multiple_of(batch) {
                            let ahead = &names[k..(k + batch).min(names.len())];
                            s.engine.prefetch_buyers(ahead.iter().map(String::as_str));
                        }
                        s.joined += 1;
                        s.txs
                            .push(black_box(s.engine.buy(s.now, &names[k]).unwrap()).tx);
                        k += 1;
                    })
                })
            });
        }

        group.bench_function(BenchmarkId::new("paid", n), |b| {
            b.iter_custom(|iters| {
                timed(&mut sale, n, iters, 1, |s| {
                    // The oldest slot holder pays; the next waiting buyer is promoted.
                    black_box(s.engine.paid(s.now, s.txs[s.front]).unwrap());
                    s.front += 1;
                })
            })
        });

        group.bench_function(BenchmarkId::new("leave", n), |b| {
            b.iter_custom(|iters| {
                timed(&mut sale, n, iters, 1, |s| {
                    let tx = s.leaver(s.left);
                    s.left += 1;
                    s.engine.leave(s.now, tx).unwrap();
                })
            })
        });
        // Leaves scattered holes that `front` does not know of.
        sale = None;

        group.throughput(Throughput::Elements(SLOTS));
        group.bench_function(BenchmarkId::new("expiry", n), |b| {
            b.iter_custom(|iters| {
                timed(&mut sale, n, iters, SLOTS as usize, |s| {
                    // Every slot's deadline passes: SLOTS expiries, SLOTS promotions.
                    s.now = s.now.saturating_add(TIMEOUT);
                    s.engine.handle_timeout(s.now);
                    s.front += SLOTS as usize;
                })
            })
        });
        group.throughput(Throughput::Elements(1));

        let s = sale.get_or_insert_with(|| Sale::new(n));
        group.bench_function(BenchmarkId::new("status", n), |b| {
            // A buyer anywhere in the sale, a large prime stride apart.
            let mut k: usize = 0;
            b.iter(|| {
                k = k.wrapping_add(7_919);
                let i = s.front + (k % (s.txs.len() - s.front));
                black_box(s.engine.status(s.txs[i]))
            })
        });

        // Steady state: one buyer joins, the oldest slot holder pays and the
        // next waiting buyer is promoted; the queue's length stays put.
        group.bench_function(BenchmarkId::new("buy+paid cycle", n), |b| {
            b.iter_custom(|iters| {
                timed(&mut sale, n, iters, 1, |s| {
                    let name = format!("cycle-{}", s.joined);
                    s.joined += 1;
                    s.txs.push(s.engine.buy(s.now, &name).unwrap().tx);
                    black_box(s.engine.paid(s.now, s.txs[s.front]).unwrap());
                    s.front += 1;
                })
            })
        });
        group.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
