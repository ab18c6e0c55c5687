//! The two profiles of the `flashsale` server, as processes: production
//! refuses to start without its secrets, and once started serves no
//! stand-in gateway and refuses unsigned payments and anonymous sale
//! creation; the demo keeps the reference's open flow.
#![allow(clippy::unwrap_used, reason = "a test fails at the first surprise")]

use serde_json::{Value, json};

mod process;

fn command(env: &[(&str, &str)]) -> tokio::process::Command {
    process::command("flashsale", env)
}

/// Starts the server; its base URL.
async fn start(env: &[(&str, &str)]) -> (tokio::process::Child, String) {
    let (child, addr) = process::start("flashsale", env).await;
    (child, format!("http://{addr}"))
}

async fn post(base: &str, path: &str, body: Value, token: Option<&str>) -> (u16, Value) {
    let mut r = reqwest::Client::new()
        .post(format!("{base}{path}"))
        .json(&body);
    if let Some(token) = token {
        r = r.bearer_auth(token);
    }
    let r = r.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn the_production_profile_refuses_to_start_without_its_secrets() {
    for (env, missing) in [
        (vec![], vec!["PAYMENT_SECRET", "ADMIN_TOKEN", "CORS_ORIGIN"]),
        (
            vec![
                ("PAYMENT_SECRET", "s3cret"),
                ("CORS_ORIGIN", "https://shop.example"),
            ],
            vec!["ADMIN_TOKEN"],
        ),
        (
            vec![("PAYMENT_SECRET", "s3cret"), ("ADMIN_TOKEN", "op")],
            vec!["CORS_ORIGIN"],
        ),
    ] {
        let mut env = env;
        env.push(("PRODUCTION", "true"));
        let out = command(&env).output().await.unwrap();
        assert!(!out.status.success(), "{env:?} started");
        let said = String::from_utf8_lossy(&out.stderr);
        for m in missing {
            assert!(said.contains(m), "{env:?}: {said}");
        }
        assert!(!String::from_utf8_lossy(&out.stdout).contains("listening"));
    }
}

#[tokio::test]
async fn production_serves_no_gateway_and_refuses_unsigned_payments_and_anonymous_sales() {
    let (_server, base) = start(&[
        ("PRODUCTION", "true"),
        ("PAYMENT_SECRET", "s3cret"),
        ("ADMIN_TOKEN", "operator"),
        ("CORS_ORIGIN", "https://shop.example"),
    ])
    .await;
    let (status, bought) = post(&base, "/buy", json!({ "buyerName": "ana" }), None).await;
    assert_eq!(status, 200);
    let tx = bought["transactionId"].as_str().unwrap();
    // No stand-in gateway to pay for anyone…
    let (status, _) = post(
        &base,
        "/pay",
        json!({ "transactionId": tx, "quantity": 1 }),
        None,
    )
    .await;
    assert_eq!(status, 404);
    // …and /paid wants the gateway's signature.
    let (status, body) = post(&base, "/paid", json!({ "transactionId": tx }), None).await;
    assert_eq!((status, &body["code"]), (401, &json!("bad_signature")));
    let state = reqwest::Client::new()
        .get(format!("{base}/transactions/{tx}"))
        .bearer_auth(bought["buyerToken"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(state["state"], "payment", "still unpaid");
    // Only the operator creates sales.
    let sale = json!({
        "productName": "Hat", "quantity": 1,
        "saleStart": "2030-01-01T00:00:00Z", "saleEnd": "2030-01-01T01:00:00Z",
    });
    assert_eq!(post(&base, "/sales", sale.clone(), None).await.0, 401);
    assert_eq!(post(&base, "/sales", sale, Some("operator")).await.0, 201);
}

#[tokio::test]
async fn the_demo_profile_keeps_the_references_open_payment_flow() {
    let (_server, base) = start(&[]).await;
    let (_, bought) = post(&base, "/buy", json!({ "buyerName": "ana" }), None).await;
    let tx = bought["transactionId"].as_str().unwrap();
    let (status, body) = post(
        &base,
        "/pay",
        json!({ "transactionId": tx, "quantity": 1 }),
        None,
    )
    .await;
    assert_eq!((status, body), (200, json!({ "success": true })));
}
