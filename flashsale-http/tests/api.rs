//! Every route against a real server on a free loopback port: success,
//! every refusal, and hostile input. Time is a manual clock; the catalogue
//! is fed from committed engine events, so tests wait for its notices.
#![allow(clippy::unwrap_used, reason = "a test fails at the first surprise")]

use std::time::Duration;

use flashsale_core::Notice;
use flashsale_core::testkit::ManualClock;
use flashsale_http::MAX_BODY_BYTES;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::sync::broadcast;

mod common;
use common::{manual_stack, serve};

struct Server {
    base: String,
    http: reqwest::Client,
    clock: ManualClock,
    notices: broadcast::Receiver<Notice>,
}

impl Server {
    async fn start() -> Server {
        let (stack, clock) = manual_stack().await;
        let notices = stack.notices.subscribe();
        Server {
            base: serve(stack.router("*")).await,
            http: reqwest::Client::new(),
            clock,
            notices,
        }
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        common::get(&self.http, format!("{}{path}", self.base)).await
    }

    async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        common::post(&self.http, format!("{}{path}", self.base), &body).await
    }

    async fn post_raw(&self, path: &str, content_type: &str, body: Vec<u8>) -> (StatusCode, Value) {
        let r = self
            .http
            .post(format!("{}{path}", self.base))
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .unwrap();
        let status = r.status();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// Creates a sale open from T0 for an hour; returns its id.
    async fn sale(&self, quantity: u64, extra: Value) -> String {
        let mut body = json!({
            "productName": "Sneakers",
            "quantity": quantity,
            "saleStart": "2026-01-01T00:00:00.000Z",
            "saleEnd": "2026-01-01T01:00:00.000Z",
        });
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        let (status, sale) = self.post("/sales", body).await;
        assert_eq!(status, StatusCode::CREATED, "{sale}");
        sale["id"].as_str().unwrap().to_owned()
    }

    async fn buy(&self, sale: &str, who: &str) -> (StatusCode, Value) {
        self.post(&format!("/sales/{sale}/buy"), json!({ "buyerName": who }))
            .await
    }

    /// Waits for the catalogue to announce a sale of a unit.
    async fn sale_update(&mut self) -> Notice {
        loop {
            let n = tokio::time::timeout(Duration::from_secs(10), self.notices.recv())
                .await
                .expect("a notice within 10 s")
                .unwrap();
            if matches!(n, Notice::SaleUpdated { .. }) {
                return n;
            }
        }
    }
}

/// The reference's error shape, with this status.
fn assert_error(status: StatusCode, body: &Value, expected: StatusCode) {
    assert_eq!(status, expected, "{body}");
    assert_eq!(body["statusCode"], expected.as_u16(), "{body}");
    assert_eq!(
        body["error"],
        expected.canonical_reason().unwrap(),
        "{body}"
    );
    assert!(
        body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    let code = body["code"].as_str().unwrap_or_default();
    assert!(
        flashsale_http::ErrorCode::ALL
            .iter()
            .any(|c| c.as_str() == code),
        "{body}"
    );
}

#[tokio::test]
async fn sales_are_created_listed_and_read_in_the_reference_shape() {
    let s = Server::start().await;
    let id = s.sale(5, json!({})).await;
    let (status, sale) = s.get(&format!("/sales/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        sale,
        json!({
            "id": id,
            "productName": "Sneakers",
            "productQty": 5,
            "saleStart": "2026-01-01T00:00:00.000Z",
            "saleEnd": "2026-01-01T01:00:00.000Z",
            "paymentTimeoutMs": 60000,
        })
    );
    let (_, all) = s.get("/sales").await;
    assert_eq!(all, json!([sale]));
    let (status, buyers) = s.get(&format!("/sales/{id}/buyers")).await;
    assert_eq!((status, buyers), (StatusCode::OK, json!([])));
    let (status, body) = s.get("/healthz").await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn invalid_sales_are_refused() {
    let s = Server::start().await;
    let base = json!({
        "productName": "Sneakers", "quantity": 5,
        "saleStart": "2026-01-01T00:00:00Z", "saleEnd": "2026-01-01T01:00:00Z",
    });
    let with = |k: &str, v: Value| {
        let mut b = base.clone();
        b[k] = v;
        b
    };
    let mut missing = base.clone();
    missing.as_object_mut().unwrap().remove("quantity");
    for bad in [
        with("quantity", json!(0)),
        with("quantity", json!(-3)),
        with("quantity", json!("5")),
        with("saleEnd", json!("2025-12-31T00:00:00Z")),
        with("saleStart", json!("tomorrow")),
        with("productName", json!("  ")),
        with("paymentTimeoutMs", json!(0)),
        with("surprise", json!(true)),
        missing,
    ] {
        let (status, body) = s.post("/sales", bad.clone()).await;
        assert_error(status, &body, StatusCode::BAD_REQUEST);
    }
    assert_eq!(s.get("/sales").await.1, json!([]));
}

#[tokio::test]
async fn unknown_and_malformed_sale_ids() {
    let s = Server::start().await;
    let unknown = "5f0000000000000000000099";
    for path in [
        format!("/sales/{unknown}"),
        format!("/sales/{unknown}/buyers"),
    ] {
        let (status, body) = s.get(&path).await;
        assert_error(status, &body, StatusCode::NOT_FOUND);
    }
    let (status, body) = s
        .post(
            &format!("/sales/{unknown}/eligible"),
            json!({"buyerName": "ana"}),
        )
        .await;
    assert_error(status, &body, StatusCode::NOT_FOUND);
    let (status, body) = s.buy(unknown, "ana").await;
    assert_error(status, &body, StatusCode::BAD_REQUEST);
    for bad in [
        "not-an-id",
        "5f00000000000000000000zz",
        "5f000000000000000000009",
    ] {
        let (status, body) = s.get(&format!("/sales/{bad}")).await;
        assert_error(status, &body, StatusCode::BAD_REQUEST);
    }
}

#[tokio::test]
async fn buy_pay_and_see_the_catalogue_follow() {
    let mut s = Server::start().await;
    let sale = s.sale(1, json!({})).await;
    let (status, ana) = s.buy(&sale, "ana").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ana["state"], "payment");
    let (_, bob) = s.buy(&sale, "bob").await;
    assert_eq!(bob["state"], "waiting");
    let (status, body) = s.buy(&sale, "ana").await;
    assert_error(status, &body, StatusCode::BAD_REQUEST);
    assert_eq!(body["code"], "already_joined");
    assert_eq!(
        body["message"],
        "Buyer already has a transaction for this sale"
    );

    let (status, body) = s
        .post(
            &format!("/sales/{sale}/eligible"),
            json!({"buyerName": "cy"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let tx = ana["transactionId"].as_str().unwrap();
    let (status, body) = s
        .post(
            &format!("/sales/{sale}/paid"),
            json!({ "transactionId": tx }),
        )
        .await;
    assert_eq!((status, body), (StatusCode::OK, json!({"success": true})));
    assert!(matches!(
        s.sale_update().await,
        Notice::SaleUpdated { remaining: 0, .. }
    ));

    let (_, detail) = s.get(&format!("/sales/{sale}")).await;
    assert_eq!(detail["productQty"], 0);
    let (_, buyers) = s.get(&format!("/sales/{sale}/buyers")).await;
    assert_eq!(
        buyers,
        json!([{ "id": tx, "saleId": sale, "buyerName": "ana" }])
    );
    // Sold out: bob was let go, newcomers and eligibility are refused.
    let (_, status_bob) = s
        .get(&format!(
            "/transactions/{}",
            bob["transactionId"].as_str().unwrap()
        ))
        .await;
    assert_eq!(status_bob["state"], "rejected_sold_out");
    let (status, body) = s.buy(&sale, "cy").await;
    assert_error(status, &body, StatusCode::BAD_REQUEST);
    assert_eq!(
        (&body["code"], &body["message"]),
        (&json!("sold_out"), &json!("Sale is sold out"))
    );
    let (status, body) = s
        .post(
            &format!("/sales/{sale}/eligible"),
            json!({"buyerName": "ana"}),
        )
        .await;
    assert_error(status, &body, StatusCode::BAD_REQUEST);
    // Paying twice is harmless.
    let (status, _) = s
        .post(
            &format!("/sales/{sale}/paid"),
            json!({ "transactionId": tx }),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn paid_refuses_what_is_not_in_payment() {
    let s = Server::start().await;
    let sale = s.sale(1, json!({})).await;
    s.buy(&sale, "ana").await;
    let (_, bob) = s.buy(&sale, "bob").await;
    let paid = format!("/sales/{sale}/paid");
    for body in [
        json!({}),
        json!({"transactionId": ""}),
        json!({"transactionId": "nope"}),
        json!({"transactionId": 42}),
        json!({"transactionId": "5f0000000000000000000099"}),
        json!({"transactionId": bob["transactionId"]}),
    ] {
        let (status, answer) = s.post(&paid, body.clone()).await;
        assert_error(status, &answer, StatusCode::BAD_REQUEST);
    }
    // The one-sale route of the reference has no default sale here.
    let (status, answer) = s
        .post("/paid", json!({"transactionId": bob["transactionId"]}))
        .await;
    assert_error(status, &answer, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn status_and_leave_let_a_buyer_resume_or_give_up() {
    let s = Server::start().await;
    let sale = s.sale(1, json!({"paymentTimeoutMs": 30_000})).await;
    let (_, ana) = s.buy(&sale, "ana").await;
    let (_, bob) = s.buy(&sale, "bob").await;
    let (_, cy) = s.buy(&sale, "cy").await;
    let id = |v: &Value| v["transactionId"].as_str().unwrap().to_owned();

    let (status, a) = s.get(&format!("/transactions/{}", id(&ana))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(a["state"], "payment");
    assert_eq!(a["paymentDeadline"], "2026-01-01T00:00:30.000Z");
    assert_eq!(a["saleId"], sale.as_str());
    let (_, c) = s.get(&format!("/transactions/{}", id(&cy))).await;
    assert_eq!(
        (
            c["state"].clone(),
            c["position"].clone(),
            c["turnBy"].clone()
        ),
        (
            json!("waiting"),
            json!(2),
            json!("2026-01-01T00:01:00.000Z")
        )
    );
    assert!(a.get("turnBy").is_none() && c.get("paymentDeadline").is_none());

    // Bob gives up his place: cy moves up.
    let (status, _) = s
        .post(&format!("/transactions/{}/leave", id(&bob)), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        s.get(&format!("/transactions/{}", id(&cy))).await.1["position"],
        1
    );

    // Ana's slot expires (the clock moves; no sleeping): cy is promoted.
    s.clock.advance(Duration::from_secs(30));
    let (_, c) = s.get(&format!("/transactions/{}", id(&cy))).await;
    assert_eq!(c["state"], "payment", "{c}");
    assert_eq!(
        s.get(&format!("/transactions/{}", id(&ana))).await.1["state"],
        "expired"
    );
    let (status, body) = s
        .post(
            &format!("/sales/{sale}/paid"),
            json!({"transactionId": id(&ana)}),
        )
        .await;
    assert_error(status, &body, StatusCode::BAD_REQUEST);
    assert!(
        body["message"].as_str().unwrap().contains("refunded"),
        "{body}"
    );

    let (status, body) = s.get("/transactions/5f0000000000000000000099").await;
    assert_error(status, &body, StatusCode::NOT_FOUND);
    let (status, body) = s.get("/transactions/xyz").await;
    assert_error(status, &body, StatusCode::BAD_REQUEST);
    let (status, body) = s
        .post("/transactions/5f0000000000000000000099/leave", json!({}))
        .await;
    assert_error(status, &body, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn hostile_input_gets_a_clear_4xx() {
    let s = Server::start().await;
    let sale = s.sale(3, json!({})).await;
    let buy = format!("/sales/{sale}/buy");
    // The 1 MiB case below must be over the limit.
    const { assert!(MAX_BODY_BYTES < 1 << 20) };
    let cases: Vec<(&str, Vec<u8>, StatusCode)> = vec![
        (
            "application/json",
            b"{\"buyerName\":".to_vec(),
            StatusCode::BAD_REQUEST,
        ),
        (
            "application/json",
            b"not json".to_vec(),
            StatusCode::BAD_REQUEST,
        ),
        ("application/json", b"[]".to_vec(), StatusCode::BAD_REQUEST),
        // An array of the fields in order is no object (serde alone takes it).
        (
            "application/json",
            b"[\"ana\"]".to_vec(),
            StatusCode::BAD_REQUEST,
        ),
        (
            "application/json",
            b"{\"buyerName\":42}".to_vec(),
            StatusCode::BAD_REQUEST,
        ),
        ("application/json", b"{}".to_vec(), StatusCode::BAD_REQUEST),
        (
            "text/plain",
            b"{\"buyerName\":\"ana\"}".to_vec(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
        (
            "application/json",
            format!("{{\"buyerName\":\"{}\"}}", "x".repeat(1 << 20)).into_bytes(),
            StatusCode::PAYLOAD_TOO_LARGE,
        ),
    ];
    for (content_type, body, expected) in cases {
        let (status, answer) = s.post_raw(&buy, content_type, body).await;
        assert_error(status, &answer, expected);
    }
    for name in ["", "   ", &"x".repeat(10_000), "a\u{0}b"] {
        let (status, answer) = s.buy(&sale, name).await;
        assert_error(status, &answer, StatusCode::BAD_REQUEST);
    }
    // Unicode names are welcome.
    let (status, answer) = s.buy(&sale, "Zoë 🚀 Ωμέγα").await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let (_, st) = s
        .get(&format!(
            "/transactions/{}",
            answer["transactionId"].as_str().unwrap()
        ))
        .await;
    assert_eq!(st["buyerName"], "Zoë 🚀 Ωμέγα");

    let (status, answer) = s.get("/nope").await;
    assert_error(status, &answer, StatusCode::NOT_FOUND);
    assert_eq!(answer["message"], "Cannot GET /nope");
    let r = s
        .http
        .delete(format!("{}/sales", s.base))
        .send()
        .await
        .unwrap();
    let status = r.status();
    assert_error(
        status,
        &r.json().await.unwrap(),
        StatusCode::METHOD_NOT_ALLOWED,
    );
    // Nothing was lost or half-applied.
    let (_, all) = s.get("/sales").await;
    assert_eq!(all[0]["productQty"], 3);
}

#[tokio::test]
async fn buying_outside_the_sale_window_is_refused() {
    let s = Server::start().await;
    let (status, sale) = s
        .post(
            "/sales",
            json!({
                "productName": "Sneakers", "quantity": 5,
                "saleStart": "2026-01-01T00:10:00Z", "saleEnd": "2026-01-01T00:20:00Z",
            }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let sale = sale["id"].as_str().unwrap();
    let (status, body) = s.buy(sale, "early").await;
    assert_error(status, &body, StatusCode::BAD_REQUEST);
    assert_eq!(body["code"], "sale_not_started", "{body}");
    assert_eq!(body["message"], "Sale is not active", "{body}");
    s.clock.advance(Duration::from_secs(600));
    assert_eq!(s.buy(sale, "on-time").await.0, StatusCode::OK);
    s.clock.advance(Duration::from_secs(600));
    let (status, body) = s.buy(sale, "late").await;
    assert_error(status, &body, StatusCode::BAD_REQUEST);
    assert_eq!(body["code"], "sale_ended", "{body}");
    assert_eq!(body["message"], "Sale is not active", "{body}");
}

#[tokio::test]
async fn cors_follows_the_configured_origins() {
    let preflight = |base: String, origin: &'static str| async move {
        reqwest::Client::new()
            .request(reqwest::Method::OPTIONS, format!("{base}/buy"))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "content-type")
            .send()
            .await
            .unwrap()
            .headers()
            .get("access-control-allow-origin")
            .map(|v| v.to_str().unwrap().to_owned())
    };
    // The default: any origin.
    let s = Server::start().await;
    assert_eq!(
        preflight(s.base.clone(), "https://shop.example")
            .await
            .as_deref(),
        Some("*")
    );
    // A list: only those.
    let (stack, _) = manual_stack().await;
    let base = serve(
        stack
            .app
            .router("https://shop.example, https://m.shop.example"),
    )
    .await;
    assert_eq!(
        preflight(base.clone(), "https://m.shop.example")
            .await
            .as_deref(),
        Some("https://m.shop.example")
    );
    assert_eq!(preflight(base, "https://evil.example").await, None);
}

/// Each server describes the routes it serves, and only those.
#[tokio::test]
async fn the_openapi_description_lists_the_routes_served() {
    let s = Server::start().await;
    let (status, doc) = s.get("/openapi.json").await;
    assert_eq!(status, StatusCode::OK);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."), "{doc}");
    let paths = doc["paths"].as_object().unwrap();
    for route in [
        "/sales",
        "/sales/{id}",
        "/sales/{id}/buyers",
        "/sales/{id}/eligible",
        "/buy",
        "/paid",
        "/sales/{id}/buy",
        "/sales/{id}/paid",
        "/transactions/{id}",
        "/transactions/{id}/leave",
        "/healthz",
        "/readyz",
        "/openapi.json",
        "/socket.io/socket.io.js",
    ] {
        assert!(paths.contains_key(route), "{route} missing");
    }
    // Every error code is in the schema, for clients to switch on.
    let codes = &doc["components"]["schemas"]["ErrorCode"]["enum"];
    assert_eq!(
        codes.as_array().unwrap().len(),
        flashsale_http::ErrorCode::ALL.len(),
        "{codes}"
    );

    // A transaction service alone describes no backend route.
    let (ports, _) = flashsale_core::service::Ports::in_memory();
    let service = flashsale_core::Service::open(ports).await.unwrap();
    let doc = flashsale_http::App::new().with_service(service).openapi();
    assert!(doc.paths.paths.contains_key("/buy"));
    assert!(!doc.paths.paths.contains_key("/sales"));
    assert!(!doc.paths.paths.contains_key("/pay"));
}

/// `GET /sales` is served from a cached serialization with an `ETag`: the
/// same tag while nothing changed (a 304 to `If-None-Match`), a new one —
/// and the new list — as soon as a sale is added or a unit sold.
#[tokio::test]
async fn the_sales_list_is_cached_with_an_etag_that_follows_every_change() {
    let mut s = Server::start().await;
    let (http, base) = (s.http.clone(), s.base.clone());
    let list = async |tag: Option<&str>| {
        let mut r = http.get(format!("{base}/sales"));
        if let Some(tag) = tag {
            r = r.header("if-none-match", tag);
        }
        let r = r.send().await.unwrap();
        let etag = r.headers()["etag"].to_str().unwrap().to_owned();
        let status = r.status();
        let body = r.text().await.unwrap();
        (status, etag, body)
    };
    let (status, first, body) = list(None).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "[]"));
    assert_eq!(list(None).await.1, first, "a new tag without a change");
    let (status, tag, body) = list(Some(&first)).await;
    assert_eq!(
        (status, tag.as_str(), body.as_str()),
        (StatusCode::NOT_MODIFIED, first.as_str(), "")
    );
    assert_eq!(list(Some("\"other\", *")).await.0, StatusCode::NOT_MODIFIED);

    // Read your writes: the sale just created is in the very next list.
    let sale = s.sale(2, json!({})).await;
    let (status, second, body) = list(Some(&first)).await;
    assert_eq!(status, StatusCode::OK);
    assert_ne!(second, first);
    let sales: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (sales[0]["id"].as_str(), sales[0]["productQty"].as_u64()),
        (Some(sale.as_str()), Some(2))
    );

    // A unit sold: a new tag and the new quantity, once the catalogue says so.
    let (_, bought) = s.buy(&sale, "ana").await;
    let tx = bought["transactionId"].as_str().unwrap().to_owned();
    let (status, _) = s
        .post(&format!("/sales/{sale}/paid"), json!({"transactionId": tx}))
        .await;
    assert_eq!(status, StatusCode::OK);
    s.sale_update().await;
    let (status, third, body) = list(Some(&second)).await;
    assert_eq!(status, StatusCode::OK, "still the old list after a sale");
    assert_ne!(third, second);
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()[0]["productQty"],
        1
    );
}
