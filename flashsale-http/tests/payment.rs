//! The payment stand-in against a real server: `/pay` calls back `/paid`
//! over HTTP, signed when a secret is set; unsigned `/paid` calls are then
//! refused.
#![allow(clippy::unwrap_used, reason = "a test fails at the first surprise")]

mod common;

use std::time::Duration;

use flashsale_core::service::Ports;
use flashsale_core::{Catalogue, NewSale, Notice, ObjectIdGenerator, Timestamp};
use flashsale_http::signature::{SIGNATURE_HEADER, sign};
use flashsale_http::tokens::AdminToken;
use flashsale_http::{InProcess, Payment};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::sync::broadcast;

struct Server {
    base: String,
    http: reqwest::Client,
    notices: broadcast::Receiver<Notice>,
}

/// The all-in-one app with a sale of 1 as its default sale and `/pay`
/// calling back its own `/paid`, signed with `secret` if given.
async fn start(secret: Option<&str>) -> Server {
    start_with(secret, false).await
}

/// [`start`]; `in_process`: `/pay` calls the service itself, as the
/// all-in-one server's stand-in does.
async fn start_with(secret: Option<&str>, in_process: bool) -> Server {
    let (ports, _) = Ports::in_memory();
    let catalogue = Catalogue::new(Box::new(ObjectIdGenerator::random()));
    let mut stack = InProcess::open(ports, catalogue, common::test_tokens())
        .await
        .unwrap();
    let notices = stack.notices.subscribe();
    let now = Timestamp::from(std::time::SystemTime::now());
    let sale = stack
        .catalogue
        .create_sale(
            None,
            NewSale::new("Hat", 1, now, now.saturating_add(Duration::from_secs(600))),
        )
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let secret = secret.map(str::as_bytes);
    stack.app = stack
        .app
        .with_default_sale(sale.id())
        .with_admin_token(AdminToken::new(common::ADMIN_TOKEN))
        .with_payment(if in_process {
            Payment::in_process(stack.service.clone().unwrap())
        } else {
            Payment::new(&format!("{base}/paid"), secret).unwrap()
        });
    if let Some(secret) = secret {
        stack.app = stack.app.with_payment_secret(secret);
    }
    let router = stack.router("*");
    tokio::spawn(async move { axum::serve(listener, router).await });
    Server {
        base,
        http: reqwest::Client::new(),
        notices,
    }
}

impl Server {
    async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        common::post(&self.http, format!("{}{path}", self.base), &body).await
    }

    async fn buy(&self, who: &str) -> String {
        let (status, body) = self.post("/buy", json!({ "buyerName": who })).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["transactionId"].as_str().unwrap().to_owned()
    }
}

/// Both ways of paying — a request to `/paid`, or the service in process —
/// answer alike.
#[tokio::test]
async fn pay_calls_back_paid_and_the_sale_is_made() {
    for in_process in [false, true] {
        pay_and_refusal(start_with(None, in_process).await).await;
    }
}

async fn pay_and_refusal(mut s: Server) {
    let ana = s.buy("ana").await;
    let bob = s.buy("bob").await;
    let (status, body) = s
        .post("/pay", json!({ "transactionId": ana, "quantity": 1 }))
        .await;
    assert_eq!((status, body), (StatusCode::OK, json!({ "success": true })));
    let sold = async {
        loop {
            match s.notices.recv().await.unwrap() {
                Notice::SaleUpdated { remaining, .. } => break remaining,
                _ => continue, // the sale's start, announced first
            }
        }
    };
    assert_eq!(
        tokio::time::timeout(Duration::from_secs(10), sold)
            .await
            .unwrap(),
        0
    );
    // Paying again is harmless; paying for a buyer who never got a slot is
    // refused with the transaction service's own answer.
    let (status, _) = s
        .post("/pay", json!({ "transactionId": ana, "quantity": 1 }))
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = s
        .post("/pay", json!({ "transactionId": bob, "quantity": 1 }))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["statusCode"], 400);
    assert!(
        body["message"].as_str().unwrap().contains("payment queue"),
        "{body}"
    );
}

#[tokio::test]
async fn pay_refuses_bad_input() {
    for in_process in [false, true] {
        refuses_bad_input(start_with(None, in_process).await).await;
    }
}

async fn refuses_bad_input(s: Server) {
    let ana = s.buy("ana").await;
    for body in [
        json!({ "transactionId": ana, "quantity": 2 }),
        json!({ "transactionId": ana, "quantity": 0 }),
        json!({ "transactionId": ana }),
        json!({ "transactionId": "", "quantity": 1 }),
        json!({ "transactionId": "zz", "quantity": 1 }),
    ] {
        let (status, answer) = s.post("/pay", body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body} → {answer}");
        assert_eq!(answer["error"], "Bad Request");
    }
}

#[tokio::test]
async fn with_a_secret_only_signed_callbacks_count() {
    let s = start(Some("s3cret")).await;
    let ana = s.buy("ana").await;
    let body = json!({ "transactionId": ana }).to_string();
    let paid = |signature: Option<String>| {
        let mut r = s
            .http
            .post(format!("{}/paid", s.base))
            .header("content-type", "application/json")
            .body(body.clone());
        if let Some(sig) = signature {
            r = r.header(SIGNATURE_HEADER, sig);
        }
        r.send()
    };
    for forged in [
        None,
        Some("sha256=00".to_owned()),
        Some(sign(b"guess", body.as_bytes())),
    ] {
        let r = paid(forged).await.unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        let answer: Value = r.json().await.unwrap();
        assert_eq!(answer["statusCode"], 401, "{answer}");
    }
    // The payment stand-in signs, so paying through it works.
    let (status, answer) = s
        .post("/pay", json!({ "transactionId": ana, "quantity": 1 }))
        .await;
    assert_eq!(
        (status, answer),
        (StatusCode::OK, json!({ "success": true }))
    );
    // And a correctly signed direct call is accepted (and idempotent).
    let r = paid(Some(sign(b"s3cret", body.as_bytes()))).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}

#[tokio::test]
async fn an_unreachable_transaction_service_is_a_bad_gateway() {
    // Port 9 (discard) on loopback: nothing listens there in CI.
    let payment = Payment::new("http://127.0.0.1:9/paid", None).unwrap();
    let router: axum::Router = payment.routes();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });
    let r = reqwest::Client::new()
        .post(format!("{base}/pay"))
        .json(&json!({ "transactionId": "0000000000000000000000aa", "quantity": 1 }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_GATEWAY);
    let answer: Value = r.json().await.unwrap();
    assert_eq!(answer["error"], "Bad Gateway");
    assert!(Payment::new("https://example.invalid/paid", None).is_err());
}

/// `/pay` calls back the one `/paid` route; a transaction of a sale other
/// than the default one is found and paid all the same.
#[tokio::test]
async fn pay_reaches_a_sale_other_than_the_default_one() {
    let s = start(None).await;
    let now = Timestamp::from(std::time::SystemTime::now());
    let (status, sale) = s
        .post(
            "/sales",
            json!({
                "productName": "Scarf",
                "quantity": 2,
                "saleStart": flashsale_http::wire::iso(now),
                "saleEnd": flashsale_http::wire::iso(now.saturating_add(Duration::from_secs(600))),
            }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{sale}");
    let sale = sale["id"].as_str().unwrap();
    let (_, bought) = s
        .post(&format!("/sales/{sale}/buy"), json!({ "buyerName": "ana" }))
        .await;
    let tx = bought["transactionId"].as_str().unwrap();
    let (status, body) = s
        .post("/pay", json!({ "transactionId": tx, "quantity": 1 }))
        .await;
    assert_eq!((status, body), (StatusCode::OK, json!({ "success": true })));
    let state = s
        .http
        .get(format!("{}/transactions/{tx}", s.base))
        .bearer_auth(bought["buyerToken"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(state["state"], "paid");
    // An id no sale knows is still the reference's 400.
    let (status, _) = s
        .post(
            "/paid",
            json!({ "transactionId": "5f00000000000000000000ff" }),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}
