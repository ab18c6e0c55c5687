//! Finding a transaction's sale from its id alone: `Service::status_of` and
//! `Service::paid_tx` on a transaction of the last sale created, with 1 and
//! with 1,000 sales running. Each call is one round trip to one sale's task
//! (current-thread runtime, in-memory journal), whatever the number of
//! sales; `probe_every_sale` is what the routes did before the prefix map
//! (ask every sale in turn), for comparison.
//!
//! Run: `cargo bench -p flashsale-core --bench lookup`
#![allow(
    clippy::unwrap_used,
    reason = "a benchmark stops at the first surprise"
)]

use std::sync::Arc;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use flashsale_core::service::Ports;
use flashsale_core::{
    BroadcastSink, MemoryStorage, ObjectIdGenerator, SaleConfig, SaleId, Service, SystemClock,
    Timestamp, TxId,
};

/// A service running `sales` sales of a million units each, and a
/// transaction in the last one.
fn setup(rt: &tokio::runtime::Runtime, sales: usize) -> (Service, TxId) {
    rt.block_on(async {
        let ports = Ports {
            clock: Arc::new(SystemClock),
            storage: Arc::new(MemoryStorage::new()),
            // Nobody listens: publishing costs nothing.
            sink: Arc::new(BroadcastSink::new(16)),
            ids: Arc::new(|| Box::new(ObjectIdGenerator::random())),
        };
        let service = Service::open(ports).await.unwrap();
        let now = Timestamp::from(std::time::SystemTime::now());
        let mut last = None;
        for _ in 0..sales {
            let id = SaleId::from(bson::oid::ObjectId::new());
            let config = SaleConfig::new(
                id,
                1_000_000,
                now,
                now.saturating_add(Duration::from_secs(3600)),
            );
            service.create_sale(config).await.unwrap();
            last = Some(id);
        }
        let tx = service.buy(last.unwrap(), "ana").await.unwrap().tx;
        (service, tx)
    })
}

fn lookup(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut group = c.benchmark_group("lookup");
    for sales in [1, 1000] {
        let (service, tx) = setup(&rt, sales);
        group.bench_with_input(BenchmarkId::new("status_of", sales), &tx, |b, &tx| {
            b.iter(|| rt.block_on(service.status_of(tx)).unwrap());
        });
        // Idempotent after the first: every call asks the engine again.
        group.bench_with_input(BenchmarkId::new("paid_tx", sales), &tx, |b, &tx| {
            b.iter(|| rt.block_on(service.paid_tx(tx)).unwrap());
        });
        // What the HTTP routes did before: ask every sale in turn.
        group.bench_with_input(
            BenchmarkId::new("probe_every_sale", sales),
            &tx,
            |b, &tx| {
                b.iter(|| {
                    rt.block_on(async {
                        for sale in service.sale_ids() {
                            if let Ok(status) = service.status(sale, tx).await {
                                return status;
                            }
                        }
                        unreachable!("the transaction exists")
                    })
                });
            },
        );
        rt.block_on(service.shutdown());
    }
    group.finish();
}

criterion_group!(benches, lookup);
criterion_main!(benches);
