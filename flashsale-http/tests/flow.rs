//! The whole flow on the all-in-one stack (what the `flashsale` server
//! runs), over HTTP on a free port, with a manual clock: slots fill, the
//! rest wait, some pay, some slots expire, waiting buyers are promoted in
//! order, the sale sells out at exactly its quantity, latecomers are
//! refused, and the catalogue agrees with the engine.
#![allow(clippy::unwrap_used, reason = "a test fails at the first surprise")]

use std::time::Duration;

use flashsale_core::Notice;
use reqwest::StatusCode;
use serde_json::{Value, json};

mod common;
use common::{manual_stack, serve};

#[tokio::test]
async fn a_whole_sale_from_first_buyer_to_sold_out() {
    let (stack, clock) = manual_stack().await;
    let mut notices = stack.notices.subscribe();
    let base = serve(stack.router("*")).await;
    let http = reqwest::Client::new();
    let post = |path: String, body: Value| {
        let (http, url) = (http.clone(), format!("{base}{path}"));
        async move { common::post(&http, url, &body).await }
    };
    let get = |path: String| {
        let (http, url) = (http.clone(), format!("{base}{path}"));
        async move { common::get(&http, url).await.1 }
    };

    let (status, sale) = post(
        "/sales".into(),
        json!({
            "productName": "Sneakers", "quantity": 5, "paymentTimeoutMs": 30_000,
            "saleStart": "2026-01-01T00:00:00Z", "saleEnd": "2026-01-01T01:00:00Z",
        }),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let sale = sale["id"].as_str().unwrap().to_owned();

    // Twelve buyers: five get the five slots, seven wait in order.
    let mut txs = Vec::new();
    for i in 0..12 {
        let (status, answer) = post(
            format!("/sales/{sale}/buy"),
            json!({ "buyerName": format!("b{i}") }),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        assert_eq!(
            answer["state"],
            if i < 5 { "payment" } else { "waiting" },
            "b{i}"
        );
        txs.push(answer["transactionId"].as_str().unwrap().to_owned());
    }
    for (i, tx) in txs.iter().enumerate().skip(5) {
        assert_eq!(get(format!("/transactions/{tx}")).await["position"], i - 4);
    }

    // Two pay; three let their slots expire.
    for tx in &txs[..2] {
        let (status, _) = post(
            format!("/sales/{sale}/paid"),
            json!({ "transactionId": tx }),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
    }
    clock.advance(Duration::from_secs(30));
    // The first three waiting buyers, in join order, now hold the slots.
    for (i, tx) in txs.iter().enumerate() {
        let state = get(format!("/transactions/{tx}")).await["state"].clone();
        let expected = match i {
            0 | 1 => "paid",
            2..=4 => "expired",
            5..=7 => "payment",
            _ => "waiting",
        };
        assert_eq!(state, expected, "b{i}");
    }
    assert_eq!(
        get(format!("/transactions/{}", txs[8])).await["position"],
        1
    );

    // They pay: sold out at exactly five; the last four are let go.
    for tx in &txs[5..8] {
        let (status, _) = post(
            format!("/sales/{sale}/paid"),
            json!({ "transactionId": tx }),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
    }
    for tx in &txs[8..] {
        assert_eq!(
            get(format!("/transactions/{tx}")).await["state"],
            "rejected_sold_out"
        );
    }
    let (status, answer) = post(format!("/sales/{sale}/buy"), json!({ "buyerName": "late" })).await;
    assert_eq!(
        (status, answer["message"].clone()),
        (StatusCode::BAD_REQUEST, json!("Sale is sold out"))
    );
    // An expired buyer's late payment is refused, not sold.
    let (status, _) = post(
        format!("/sales/{sale}/paid"),
        json!({ "transactionId": txs[2] }),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // The catalogue caught up with every payment: wait for the fifth sale.
    let mut updates = 0;
    while updates < 5 {
        let n = tokio::time::timeout(Duration::from_secs(10), notices.recv())
            .await
            .unwrap()
            .unwrap();
        updates += usize::from(matches!(n, Notice::SaleUpdated { .. }));
    }
    assert_eq!(get(format!("/sales/{sale}")).await["productQty"], 0);
    let buyers = get(format!("/sales/{sale}/buyers")).await;
    let mut names: Vec<&str> = buyers
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["buyerName"].as_str().unwrap())
        .collect();
    names.sort_unstable();
    assert_eq!(names, ["b0", "b1", "b5", "b6", "b7"]);
}
