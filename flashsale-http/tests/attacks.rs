//! Attacks as real requests against a real server on loopback, one named
//! test each: every one asserts the refusal **and** that the victim's state
//! is untouched.
#![allow(clippy::unwrap_used, reason = "a test fails at the first surprise")]

use reqwest::StatusCode;
use serde_json::{Value, json};

mod common;
use common::{manual_stack, serve};

/// A raw request: no helper adds anyone's token.
async fn send(request: reqwest::RequestBuilder, token: Option<&str>) -> (StatusCode, Value) {
    let request = match token {
        Some(token) => request.bearer_auth(token),
        None => request,
    };
    let r = request.send().await.unwrap();
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// A buyer at the back of a 1-unit sale derives the others' ids from its
/// own and tries to evict them (the ids ascend), then to read where they
/// stand: without their tokens nothing happens to them.
#[tokio::test]
async fn evicting_or_spying_on_another_buyer_without_their_token_is_refused() {
    let (stack, _) = manual_stack().await;
    let base = serve(stack.router("*")).await;
    let http = reqwest::Client::new();
    let (_, sale) = common::post(
        &http,
        format!("{base}/sales"),
        &json!({
            "productName": "Hat", "quantity": 1,
            "saleStart": "2026-01-01T00:00:00Z", "saleEnd": "2026-01-01T01:00:00Z",
        }),
    )
    .await;
    let sale = sale["id"].as_str().unwrap().to_owned();
    let mut bought = Vec::new();
    for who in ["ana", "bob", "cy", "mallory"] {
        let (status, answer) = send(
            http.post(format!("{base}/sales/{sale}/buy"))
                .json(&json!({ "buyerName": who })),
            None,
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(answer["buyerToken"].as_str().unwrap().len(), 64);
        bought.push(answer);
    }
    let tx = |a: &Value| {
        (
            a["transactionId"].as_str().unwrap().to_owned(),
            a["buyerToken"].as_str().unwrap().to_owned(),
        )
    };
    let mallory = tx(&bought[3]);
    let forged = "0".repeat(64);
    for victim in &bought[..3] {
        let (victim_tx, _) = tx(victim);
        for token in [None, Some(mallory.1.as_str()), Some(forged.as_str())] {
            let (status, body) = send(
                http.post(format!("{base}/transactions/{victim_tx}/leave")),
                token,
            )
            .await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
            assert_eq!(body["code"], "bad_token");
            let (status, _) =
                send(http.get(format!("{base}/transactions/{victim_tx}")), token).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED);
        }
    }
    // Everyone kept their place, as their own tokens show.
    let mut seen = Vec::new();
    for buyer in &bought {
        let (id, own) = tx(buyer);
        let (status, body) = send(http.get(format!("{base}/transactions/{id}")), Some(&own)).await;
        assert_eq!(status, StatusCode::OK);
        seen.push((body["state"].clone(), body["position"].clone()));
    }
    assert_eq!(
        seen,
        [
            (json!("payment"), Value::Null),
            (json!("waiting"), json!(1)),
            (json!("waiting"), json!(2)),
            (json!("waiting"), json!(3)),
        ]
    );
}
