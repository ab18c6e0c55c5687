//! `CatalogueService`: the catalogue's single writer — atomic sale creation
//! with the sale's engine, the feed from committed engine events, and the
//! catalogue's timers on the clock port.
#![allow(clippy::unwrap_used, reason = "a test fails at the first surprise")]

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use flashsale_core::service::{CatalogueError, CatalogueService, Ports};
use flashsale_core::testkit::ManualClock;
use flashsale_core::{
    BroadcastSink, Catalogue, Event, MemoryStorage, NewSale, Notice, SaleId, SequentialIds,
    Service, Storage, StorageError, Timestamp,
};

const T0: Timestamp = Timestamp::from_millis(1_700_000_000_000);

/// A journal that refuses every append.
struct Broken;

#[async_trait]
impl Storage for Broken {
    async fn append(&self, _: SaleId, _: &[Event]) -> Result<(), StorageError> {
        Err(StorageError::msg("disk on fire"))
    }
    async fn read(&self, _: SaleId) -> Result<Vec<Event>, StorageError> {
        Ok(Vec::new())
    }
    async fn sales(&self) -> Result<Vec<SaleId>, StorageError> {
        Ok(Vec::new())
    }
}

/// A catalogue running engines over `storage`, on a manual clock.
async fn stack(
    storage: Arc<dyn Storage>,
) -> (
    CatalogueService,
    Service,
    ManualClock,
    BroadcastSink<Notice>,
) {
    let clock = ManualClock::new(T0);
    let notices = BroadcastSink::new(256);
    let catalogue = CatalogueService::open(
        Arc::new(clock.clone()),
        Catalogue::new(Box::new(SequentialIds::starting_after(0x5a1e))),
        notices.clone(),
    );
    let ports = Ports {
        clock: Arc::new(clock.clone()),
        storage,
        sink: Arc::new(catalogue.feed()),
        ids: Arc::new(|| Box::new(SequentialIds::default())),
    };
    let engines = Service::open(ports).await.unwrap();
    (
        catalogue.with_engines(engines.clone()),
        engines,
        clock,
        notices,
    )
}

fn new_sale(quantity: u64, starts_in: Duration) -> NewSale {
    let start = T0.saturating_add(starts_in);
    NewSale::new(
        "Sneakers",
        quantity,
        start,
        start.saturating_add(Duration::from_secs(3600)),
    )
}

#[tokio::test]
async fn a_sale_whose_engine_cannot_start_leaves_nothing_behind() {
    let (catalogue, engines, _, _) = stack(Arc::new(Broken)).await;
    let refused = catalogue
        .create_sale(None, new_sale(3, Duration::ZERO))
        .await;
    assert!(
        matches!(refused, Err(CatalogueError::Engine(_))),
        "{refused:?}"
    );
    assert!(catalogue.list().await.unwrap().is_empty());
    assert!(engines.sale_ids().is_empty());
    // Invalid settings start no engine either.
    let mut bad = new_sale(3, Duration::ZERO);
    bad.quantity = 0;
    assert!(matches!(
        catalogue.create_sale(None, bad).await,
        Err(CatalogueError::Invalid(_))
    ));
    assert!(engines.sale_ids().is_empty());
}

#[tokio::test]
async fn created_sales_sell_and_the_catalogue_hears_of_it() {
    let (catalogue, engines, _, notices) = stack(Arc::new(MemoryStorage::new())).await;
    let mut notices = notices.subscribe();
    let sale = catalogue
        .create_sale(None, new_sale(2, Duration::ZERO))
        .await
        .unwrap();
    assert_eq!(engines.sale_ids(), vec![sale.id()]);
    // The same id twice: refused, and the running engine is untouched.
    assert!(matches!(
        catalogue
            .create_sale(Some(sale.id()), new_sale(2, Duration::ZERO))
            .await,
        Err(CatalogueError::Invalid(_))
    ));
    let ana = engines.buy(sale.id(), "ana").await.unwrap();
    engines.paid_tx(ana.tx).await.unwrap();
    engines.clone().shutdown().await;
    assert_eq!(
        catalogue.get(sale.id()).await.unwrap().unwrap().remaining,
        1
    );
    assert!(
        catalogue
            .eligible(sale.id(), "ana", None)
            .await
            .unwrap()
            .is_err()
    );
    let mut seen = Vec::new();
    while let Ok(n) = notices.try_recv() {
        seen.push(n);
    }
    assert!(
        seen.contains(&Notice::SaleCreated { sale: sale.id() }),
        "{seen:?}"
    );
    assert!(
        seen.iter()
            .any(|n| matches!(n, Notice::SaleUpdated { remaining: 1, .. })),
        "{seen:?}"
    );
    catalogue.shutdown().await;
}

#[tokio::test]
async fn a_restart_rebuilds_the_catalogue_from_the_engines_journals() {
    let storage = MemoryStorage::new();
    let (catalogue, engines, _, _) = stack(Arc::new(storage.clone())).await;
    let sale = catalogue
        .create_sale(None, new_sale(3, Duration::ZERO))
        .await
        .unwrap();
    for name in ["ana", "bo"] {
        let a = engines.buy(sale.id(), name).await.unwrap();
        engines.paid_tx(a.tx).await.unwrap();
    }
    engines.buy(sale.id(), "cy").await.unwrap();
    engines.shutdown().await;
    let before = (
        catalogue.list().await.unwrap(),
        catalogue.buyers(sale.id(), None, 10).await.unwrap(),
    );
    catalogue.shutdown().await;

    // A new process: a fresh catalogue over the same journal.
    let (catalogue, engines, _, _) = stack(Arc::new(storage)).await;
    engines.flush().await; // the re-offered opening and payments are in
    let after = (
        catalogue.list().await.unwrap(),
        catalogue.buyers(sale.id(), None, 10).await.unwrap(),
    );
    assert_eq!(after, before, "same sale, figures and buyers");
    assert_eq!(after.0[0].config.product_name, "Sneakers");
    assert_eq!(after.0[0].remaining, 1);
    assert!(
        catalogue
            .eligible(sale.id(), "bo", None)
            .await
            .unwrap()
            .is_err()
    );
    catalogue.shutdown().await;
}

#[tokio::test]
async fn the_catalogue_announces_starts_and_ends_on_its_clock() {
    let (catalogue, _engines, clock, notices) = stack(Arc::new(MemoryStorage::new())).await;
    let mut notices = notices.subscribe();
    let sale = catalogue
        .create_sale(None, new_sale(2, Duration::from_secs(60)))
        .await
        .unwrap();
    assert_eq!(
        notices.recv().await.unwrap(),
        Notice::SaleCreated { sale: sale.id() }
    );
    clock.advance(Duration::from_secs(60));
    assert_eq!(
        notices.recv().await.unwrap(),
        Notice::SaleStarted {
            sale: sale.id(),
            starts_at: sale.config.starts_at
        }
    );
    clock.advance(Duration::from_secs(3600));
    assert_eq!(
        notices.recv().await.unwrap(),
        Notice::SaleEnded {
            sale: sale.id(),
            ends_at: sale.config.ends_at
        }
    );
    catalogue.shutdown().await;
}
