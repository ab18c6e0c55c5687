//! The transaction service's start-up sync against a real backend: the sale
//! and the buyers who already paid come over HTTP and the engine counts them
//! as sold.
#![allow(clippy::unwrap_used, reason = "a test fails at the first surprise")]

use std::time::Duration;

use std::sync::Arc;

use axum::routing::get;
use flashsale_core::{
    BuyError, BuyerName, Catalogue, NewSale, SequentialIds, SystemClock, Timestamp, TxId,
    TxMessage, TxMessageKind, TxState,
};
use flashsale_http::tokens::TokenKey;
use flashsale_http::{InProcess, sync};
use serde_json::json;

/// Serves `router` on a free loopback port; returns its base URL.
async fn serve(router: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });
    base
}

const T0: Timestamp = Timestamp::from_millis(1_767_225_600_000);

/// Records in `catalogue` that `buyer` paid `tx` in `sale`.
fn paid(catalogue: &mut Catalogue, sale: flashsale_core::SaleId, tx: TxId, buyer: &str) {
    let message = TxMessage {
        transaction_id: tx,
        buyer_name: BuyerName::parse(buyer).unwrap(),
        sale_id: sale,
        account: None,
        kind: TxMessageKind::Paid,
    };
    catalogue.apply(T0, &message).unwrap();
}

#[tokio::test]
async fn the_sale_and_its_paid_buyers_come_from_the_backend() {
    let mut catalogue = Catalogue::new(Box::new(SequentialIds::starting_after(0x5a1e_0000)));
    let mut new = NewSale::new("Hat", 3, T0, T0.saturating_add(Duration::from_secs(3600)));
    new.payment_timeout = Duration::from_secs(45);
    new.max_payment_slots = Some(2);
    let sale = catalogue.create(T0, new).unwrap();
    let ana_tx = "5f00000000000000000000aa".parse().unwrap();
    paid(&mut catalogue, sale.id(), ana_tx, "ana");
    let backend = InProcess::catalogue_only(Arc::new(SystemClock), catalogue, TokenKey::random());
    let base = serve(backend.router("*")).await;

    let http = reqwest::Client::new();
    let (body, buyers) = sync::fetch(&http, &base, sale.id()).await.unwrap();
    assert_eq!((body.product_qty, buyers.len()), (2, 1));
    let mut engine = sync::engine(
        T0,
        &body,
        &buyers,
        Duration::from_secs(30),
        Box::new(SequentialIds::default()),
    )
    .unwrap()
    .engine;
    assert_eq!((engine.config().quantity, engine.sold()), (3, 1));
    // The sale's own settings, not the service's default.
    assert_eq!(engine.config().payment_timeout, Duration::from_secs(45));
    assert_eq!(engine.config().max_payment_slots, Some(2));
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
    let e = sync::fetch(&http, "http://127.0.0.1:9", sale.id())
        .await
        .unwrap_err();
    assert!(e.contains("unreachable"), "{e}");
}

/// The reference's backend lists whatever names its transaction service
/// sent: too long, empty, with a control character, not a string, and two
/// equal once trimmed. None of them stops the sync: what cannot be a buyer
/// here is skipped, and the stock left to sell is still the backend's.
#[tokio::test]
async fn a_buyer_list_with_odd_names_syncs_tolerantly() {
    let sale = "5f00000000000000000000a1";
    let buyers = json!([
        {"id": "65a000000000000000000001", "saleId": sale, "buyerName": "ana"},
        {"id": "65a000000000000000000002", "saleId": sale, "buyerName": " ana "},
        {"id": "65a000000000000000000003", "saleId": sale, "buyerName": "x".repeat(80)},
        {"id": "65a000000000000000000004", "saleId": sale, "buyerName": ""},
        {"id": "65a000000000000000000005", "saleId": sale, "buyerName": "tab\there"},
        {"id": "65a000000000000000000006", "saleId": sale, "buyerName": 42},
        {"id": "65a000000000000000000007", "saleId": sale, "buyerName": "bob"},
    ]);
    // The reference's sale body: no payment timeout, no slot cap.
    let body = json!({
        "id": sale, "productName": "Hat", "productQty": 3,
        "saleStart": "2026-01-01T00:00:00.000Z", "saleEnd": "2026-01-01T01:00:00.000Z",
    });
    let router = axum::Router::new()
        .route(
            &format!("/sales/{sale}"),
            get(move || async move { axum::Json(body) }),
        )
        .route(
            &format!("/sales/{sale}/buyers"),
            get(move || async move { axum::Json(buyers) }),
        );
    let base = serve(router).await;
    let http = reqwest::Client::new();
    let (body, listed) = sync::fetch(&http, &base, sale.parse().unwrap())
        .await
        .unwrap();
    assert_eq!(listed.len(), 7);
    let synced = sync::engine(
        T0,
        &body,
        &listed,
        Duration::from_secs(30),
        Box::new(SequentialIds::default()),
    )
    .unwrap();
    assert_eq!((synced.imported, synced.skipped.len()), (2, 5));
    let engine = synced.engine;
    // remaining + imported: three units still to sell.
    assert_eq!(engine.config().quantity, 5);
    assert_eq!(engine.available(), 3);
    assert_eq!(engine.config().payment_timeout, Duration::from_secs(30));
}

/// The buyer list comes a page at a time (1,000 at most), the `Link`
/// header naming the next; the sync follows the pages to the end.
#[tokio::test]
async fn the_buyer_list_is_paginated_and_the_sync_reads_every_page() {
    let mut catalogue = Catalogue::new(Box::new(SequentialIds::starting_after(0x5a1e_0000)));
    let sale = catalogue
        .create(
            T0,
            NewSale::new(
                "Hat",
                5_000,
                T0,
                T0.saturating_add(Duration::from_secs(3600)),
            ),
        )
        .unwrap();
    for n in 1..=2_500u32 {
        let tx = format!("65a0000000000000{n:08x}").parse().unwrap();
        paid(&mut catalogue, sale.id(), tx, &format!("b{n}"));
    }
    let backend = InProcess::catalogue_only(Arc::new(SystemClock), catalogue, TokenKey::random());
    let base = serve(backend.router("*")).await;
    let http = reqwest::Client::new();

    let first = http
        .get(format!("{base}/sales/{}/buyers?limit=5000", sale.id()))
        .send()
        .await
        .unwrap();
    let link = first.headers()["link"].to_str().unwrap().to_owned();
    let page: Vec<serde_json::Value> = first.json().await.unwrap();
    assert_eq!(page.len(), 1_000, "a page is 1,000 at most");
    assert!(
        link.contains(r#"rel="next""#) && link.contains("after="),
        "{link}"
    );
    let bad = http
        .get(format!("{base}/sales/{}/buyers?after=nope", sale.id()))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), reqwest::StatusCode::BAD_REQUEST);

    let (_, buyers) = sync::fetch(&http, &base, sale.id()).await.unwrap();
    let names: Vec<&str> = buyers
        .iter()
        .map(|b| b.buyer_name.as_str().unwrap())
        .collect();
    let expected: Vec<String> = (1..=2_500).map(|n| format!("b{n}")).collect();
    assert_eq!(names, expected);
}
