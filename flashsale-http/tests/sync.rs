//! The transaction service's start-up sync against a real backend: the sale
//! and the buyers who already paid come over HTTP and the engine counts them
//! as sold.
#![allow(clippy::unwrap_used, reason = "a test fails at the first surprise")]

use std::time::Duration;

use flashsale_core::service::Ports;
use flashsale_core::{
    BuyError, BuyerName, Catalogue, NewSale, SequentialIds, Timestamp, TxMessage, TxMessageKind,
    TxState,
};
use flashsale_http::{InProcess, sync};

const T0: Timestamp = Timestamp::from_millis(1_767_225_600_000);

#[tokio::test]
async fn the_sale_and_its_paid_buyers_come_from_the_backend() {
    let mut catalogue = Catalogue::new(Box::new(SequentialIds::starting_after(0x5a1e_0000)));
    let sale = catalogue
        .create(
            T0,
            NewSale::new("Hat", 3, T0, T0.saturating_add(Duration::from_secs(3600))),
        )
        .unwrap();
    let ana_tx = "5f00000000000000000000aa".parse().unwrap();
    catalogue
        .apply(
            T0,
            &TxMessage {
                transaction_id: ana_tx,
                buyer_name: BuyerName::parse("ana").unwrap(),
                sale_id: sale.id,
                kind: TxMessageKind::Paid,
            },
        )
        .unwrap();
    let (ports, _) = Ports::in_memory();
    let backend = InProcess::open(ports, catalogue).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let router = backend.backend_router("*");
    tokio::spawn(async move { axum::serve(listener, router).await });

    let http = reqwest::Client::new();
    let (body, buyers) = sync::fetch(&http, &base, sale.id).await.unwrap();
    assert_eq!((body.product_qty, buyers.len()), (2, 1));
    let mut engine = sync::engine(
        T0,
        &body,
        &buyers,
        Duration::from_secs(30),
        Box::new(SequentialIds::default()),
    )
    .unwrap();
    assert_eq!((engine.config().quantity, engine.sold()), (3, 1));
    assert_eq!(engine.status(ana_tx).unwrap().state, TxState::Paid);
    assert!(matches!(
        engine.buy(T0, "ana"),
        Err(BuyError::AlreadyJoined { .. })
    ));
    engine.buy(T0, "bob").unwrap();
    engine.buy(T0, "cy").unwrap();
    assert_eq!(engine.available(), 0, "two units left, two slots");

    // An unknown sale and an unreachable backend are errors that say why.
    let unknown = "5f0000000000000000000099".parse().unwrap();
    let e = sync::fetch(&http, &base, unknown).await.unwrap_err();
    assert!(e.contains("404"), "{e}");
    let e = sync::fetch(&http, "http://127.0.0.1:9", sale.id)
        .await
        .unwrap_err();
    assert!(e.contains("unreachable"), "{e}");
}
