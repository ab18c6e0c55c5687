//! The fair opening and the operator's controls against a real `flashsale`
//! server: a pre-queue drawn by lot, a late arrival behind it, a pause that
//! stops promotions while payments still count, and `/metrics` agreeing
//! with `GET /sales/{id}/stats`.
//!
//! The sale starts on the server's real clock two seconds after it is
//! created: the test waits for the start by polling the sale's figures
//! (bounded), the one wait a real start time needs.
#![allow(clippy::unwrap_used, reason = "a test fails at the first surprise")]

use std::collections::HashMap;
use std::time::Duration;

use flashsale_core::Timestamp;
use flashsale_http::wire::iso;

use serde_json::{Value, json};

mod process;

const ADMIN: &str = "operator-token";

struct Server {
    _child: tokio::process::Child,
    base: String,
    http: reqwest::Client,
}

impl Server {
    async fn start() -> Self {
        let (child, addr) = process::start("flashsale", &[("ADMIN_TOKEN", ADMIN)]).await;
        Server {
            _child: child,
            base: format!("http://{addr}"),
            http: reqwest::Client::new(),
        }
    }

    async fn send(&self, r: reqwest::RequestBuilder) -> (u16, Value) {
        let r = r.send().await.unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    async fn post(&self, path: &str, body: Value, admin: bool) -> (u16, Value) {
        let mut r = self.http.post(format!("{}{path}", self.base)).json(&body);
        if admin {
            r = r.bearer_auth(ADMIN);
        }
        self.send(r).await
    }

    async fn get(&self, path: &str, token: Option<&str>) -> (u16, Value) {
        let mut r = self.http.get(format!("{}{path}", self.base));
        if let Some(token) = token {
            r = r.bearer_auth(token);
        }
        self.send(r).await
    }

    async fn stats(&self, sale: &str) -> Value {
        let (status, body) = self.get(&format!("/sales/{sale}/stats"), Some(ADMIN)).await;
        assert_eq!(status, 200, "{body}");
        body
    }
}

/// Polls the sale's figures until `done` holds (at most 20 s).
async fn until(server: &Server, sale: &str, done: impl Fn(&Value) -> bool) -> Value {
    for _ in 0..200 {
        let stats = server.stats(sale).await;
        if done(&stats) {
            return stats;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the sale never got there: {}", server.stats(sale).await);
}

#[tokio::test]
async fn a_prequeue_is_drawn_at_the_start_and_a_pause_holds_promotions_but_not_payments() {
    let server = Server::start().await;
    let now = Timestamp::from(std::time::SystemTime::now());
    let after = |d: Duration| iso(now.saturating_add(d));
    let (status, sale) = server
        .post(
            "/sales",
            json!({
                "productName": "drawn", "quantity": 100, "maxPaymentSlots": 5,
                "prequeueOpensAt": iso(now), "saleStart": after(Duration::from_secs(2)),
                "saleEnd": after(Duration::from_secs(3600)),
            }),
            true,
        )
        .await;
    assert_eq!(status, 201, "{sale}");
    let sale = sale["id"].as_str().unwrap().to_owned();
    assert_eq!(
        server.get(&format!("/sales/{sale}/stats"), None).await.0,
        401,
        "figures without the token"
    );

    // 50 buyers before the start: waiting, pre-queued, no position.
    let mut joined = Vec::new();
    let mut tokens = HashMap::new();
    for b in 0..50 {
        let (status, a) = server
            .post(
                &format!("/sales/{sale}/buy"),
                json!({"buyerName": format!("early {b}")}),
                false,
            )
            .await;
        assert_eq!((status, a["state"].as_str()), (200, Some("waiting")), "{a}");
        let tx = a["transactionId"].as_str().unwrap().to_owned();
        tokens.insert(tx.clone(), a["buyerToken"].as_str().unwrap().to_owned());
        joined.push(tx);
    }
    let (_, first) = server
        .get(
            &format!("/transactions/{}", joined[0]),
            Some(&tokens[&joined[0]]),
        )
        .await;
    assert_eq!(first["prequeued"], true, "{first}");
    assert!(
        first.get("position").is_none() && first["startsAt"].is_string(),
        "{first}"
    );
    let stats = server.stats(&sale).await;
    assert_eq!(
        (stats["prequeued"].as_u64(), stats["drawSeed"].as_str()),
        (Some(50), None)
    );

    // The start: five slots, the rest in a drawn order.
    let stats = until(&server, &sale, |s| {
        s["active"] == true && s["paymentSlots"] == 5
    })
    .await;
    let seed: u64 = stats["drawSeed"].as_str().unwrap().parse().unwrap();
    let mut slots = Vec::new();
    let mut queue = vec![String::new(); 45];
    for tx in &joined {
        let (_, s) = server
            .get(&format!("/transactions/{tx}"), Some(&tokens[tx]))
            .await;
        match s["state"].as_str().unwrap() {
            "payment" => slots.push(tx.clone()),
            "waiting" => queue[s["position"].as_u64().unwrap() as usize - 1] = tx.clone(),
            other => panic!("{tx} is {other}"),
        }
    }
    let drawn: Vec<&String> = flashsale_core::draw_order(seed, 50)
        .into_iter()
        .map(|k| &joined[k])
        .collect();
    let mut first_five: Vec<&String> = drawn[..5].to_vec();
    first_five.sort();
    slots.sort();
    assert_eq!(
        first_five,
        slots.iter().collect::<Vec<_>>(),
        "slots not given in the drawn order"
    );
    assert_eq!(
        drawn[5..],
        queue.iter().collect::<Vec<_>>()[..],
        "queue not in the drawn order"
    );
    assert_ne!(queue, joined[5..], "served in join order: no draw");

    // A buyer after the start queues behind all 50.
    let (_, late) = server
        .post(
            &format!("/sales/{sale}/buy"),
            json!({"buyerName": "late"}),
            false,
        )
        .await;
    let late_tx = late["transactionId"].as_str().unwrap().to_owned();
    let (_, late_status) = server
        .get(
            &format!("/transactions/{late_tx}"),
            Some(late["buyerToken"].as_str().unwrap()),
        )
        .await;
    assert_eq!(late_status["position"], 46, "{late_status}");

    // Pause: a payment still counts, nobody is promoted into its slot.
    let (status, paused) = server
        .post(&format!("/sales/{sale}/pause"), json!({}), true)
        .await;
    assert_eq!((status, &paused["paused"]), (200, &json!(true)), "{paused}");
    let (status, _) = server
        .post("/paid", json!({"transactionId": slots[0]}), false)
        .await;
    assert_eq!(status, 200);
    let stats = server.stats(&sale).await;
    assert_eq!(
        (
            stats["sold"].as_u64(),
            stats["paymentSlots"].as_u64(),
            stats["waiting"].as_u64()
        ),
        (Some(1), Some(4), Some(46))
    );
    let head = &queue[0];
    let (_, s) = server
        .get(&format!("/transactions/{head}"), Some(&tokens[head]))
        .await;
    assert_eq!(
        (
            s["state"].as_str(),
            s["position"].as_u64(),
            &s["queuePaused"]
        ),
        (Some("waiting"), Some(1), &json!(true))
    );
    // Resume: the freed slot goes to the head of the queue.
    let (status, _) = server
        .post(&format!("/sales/{sale}/resume"), json!({}), true)
        .await;
    assert_eq!(status, 200);
    let (_, s) = server
        .get(&format!("/transactions/{head}"), Some(&tokens[head]))
        .await;
    assert_eq!(s["state"], "payment", "{s}");

    // A refused change is an error in the reference's shape.
    let r = server
        .http
        .patch(format!("{}/sales/{sale}", server.base))
        .bearer_auth(ADMIN)
        .json(&json!({"quantity": 2}));
    let (status, body) = server.send(r).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("invalid_change")),
        "{body}"
    );
    let r = server
        .http
        .patch(format!("{}/sales/{sale}", server.base))
        .bearer_auth(ADMIN)
        .json(&json!({"quantity": 120, "maxPaymentSlots": 6, "joining": "closed"}));
    let (status, body) = server.send(r).await;
    assert_eq!(
        (
            status,
            body["quantity"].as_u64(),
            body["maxPaymentSlots"].as_u64(),
            body["joining"].as_str()
        ),
        (200, Some(120), Some(6), Some("closed")),
        "{body}"
    );
    let (status, refused) = server
        .post(
            &format!("/sales/{sale}/buy"),
            json!({"buyerName": "closed out"}),
            false,
        )
        .await;
    assert_eq!(
        (status, refused["code"].as_str()),
        (400, Some("joining_closed")),
        "{refused}"
    );
    let (_, listed) = server.get(&format!("/sales/{sale}"), None).await;
    assert_eq!(
        listed["productQty"], 119,
        "the catalogue follows the restock: {listed}"
    );

    // The metrics say what the figures say.
    let stats = server.stats(&sale).await;
    let text = server
        .http
        .get(format!("{}/metrics", server.base))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let gauge = |name: &str| -> u64 {
        let key = format!("{name}{{sale=\"{sale}\"}} ");
        let line = text
            .lines()
            .find(|l| l.starts_with(&key))
            .unwrap_or_else(|| panic!("no {key} in {text}"));
        line[key.len()..].trim().parse::<f64>().unwrap() as u64
    };
    for (metric, field) in [
        ("flashsale_sale_waiting", "waiting"),
        ("flashsale_sale_payment_slots", "paymentSlots"),
        ("flashsale_sale_sold", "sold"),
        ("flashsale_sale_remaining", "remaining"),
    ] {
        assert_eq!(
            Some(gauge(metric)),
            stats[field].as_u64(),
            "{metric} vs {field}"
        );
    }
    assert_eq!(
        Some(gauge("flashsale_joins_total")),
        stats["joins"].as_u64()
    );
    assert_eq!(
        Some(gauge("flashsale_payments_total")),
        stats["payments"].as_u64()
    );
    assert!(
        text.contains("flashsale_time_in_queue_seconds_bucket"),
        "{text}"
    );
    assert!(text.contains(
        "flashsale_http_request_duration_seconds_bucket{route=\"/sales/{id}/buy\",status=\"200\""
    ));
    assert!(
        text.contains("flashsale_refusals_total{sale=")
            && text.contains("reason=\"joining_closed\"")
    );
}
