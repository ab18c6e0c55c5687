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

/// Serves `router` through our own server (which records each
/// connection's peer, as the rate limit and the live-connection bound
/// need) on a free loopback port; its base URL.
async fn serve_with_peers(router: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(flashsale_http::server::serve(
        listener,
        router,
        flashsale_http::server::ServerLimits::default(),
        std::future::pending(),
    ));
    base
}

/// A client whose requests come from `ip` (any of 127.0.0.0/8).
fn client_from(ip: [u8; 4]) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(std::net::IpAddr::from(ip))
        .build()
        .unwrap()
}

/// A Socket.IO connection by hand over Engine.IO long-polling: open,
/// connect to "/", and the server's first answer (`40{…}` when admitted,
/// with `41` when disconnected at once). `forwarded` goes in
/// `X-Forwarded-For`.
async fn socket_io_connect(http: &reqwest::Client, base: &str, forwarded: Option<&str>) -> String {
    let url = format!("{base}/socket.io/?EIO=4&transport=polling");
    let mut open = http.get(&url);
    if let Some(client) = forwarded {
        open = open.header("x-forwarded-for", client);
    }
    let open = open.send().await.unwrap().text().await.unwrap();
    let open: Value = serde_json::from_str(open.trim_start_matches('0')).unwrap();
    let sid = [("sid", open["sid"].as_str().unwrap().to_owned())];
    http.post(&url).query(&sid).body("40").send().await.unwrap();
    http.get(&url)
        .query(&sid)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
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

fn new_sale_body() -> Value {
    json!({
        "productName": "Hat", "quantity": 1,
        "saleStart": "2026-01-01T00:00:00Z", "saleEnd": "2026-01-01T01:00:00Z",
    })
}

async fn sale_count(http: &reqwest::Client, base: &str) -> usize {
    let (_, sales) = send(http.get(format!("{base}/sales")), None).await;
    sales.as_array().unwrap().len()
}

/// Creating sales is the operator's: without the token, or with a wrong
/// one, nothing is created; and even the operator stops at `MAX_SALES`.
#[tokio::test]
async fn creating_sales_needs_the_operator_token_and_stops_at_max_sales() {
    let clock = flashsale_core::testkit::ManualClock::new(common::T0);
    let catalogue = common::test_catalogue().with_max_sales(2);
    let mut stack =
        common::stack_with(&clock, catalogue, flashsale_core::MemoryStorage::new()).await;
    stack.app = stack
        .app
        .with_admin_token(flashsale_http::tokens::AdminToken::new("the real one"));
    let base = serve(stack.router("*")).await;
    let http = reqwest::Client::new();
    let create = |token: Option<&'static str>| {
        let request = http.post(format!("{base}/sales")).json(&new_sale_body());
        send(request, token)
    };
    for token in [None, Some("the real on"), Some("The real one"), Some("")] {
        let (status, body) = create(token).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{token:?}: {body}");
        assert_eq!(body["code"], "bad_admin_token");
    }
    assert_eq!(sale_count(&http, &base).await, 0);
    for _ in 0..2 {
        assert_eq!(create(Some("the real one")).await.0, StatusCode::CREATED);
    }
    let (status, body) = create(Some("the real one")).await;
    assert_eq!(
        (status, &body["code"]),
        (StatusCode::BAD_REQUEST, &json!("invalid_sale"))
    );
    assert_eq!(sale_count(&http, &base).await, 2);
}

/// A squatter tries to take "ana"'s place under look-alike names, and to
/// hold many places under names that differ only invisibly: each is the
/// same buyer as `ana` (refused as already joined), and the bidi and
/// invisible ones are refused outright. Only ana's place exists.
#[tokio::test]
async fn look_alike_names_are_one_buyer() {
    let (stack, _) = manual_stack().await;
    let base = serve(stack.router("*")).await;
    let http = reqwest::Client::new();
    let (_, sale) = common::post(&http, format!("{base}/sales"), &new_sale_body()).await;
    let sale = sale["id"].as_str().unwrap().to_owned();
    let buy = |name: &str| {
        send(
            http.post(format!("{base}/sales/{sale}/buy"))
                .json(&json!({ "buyerName": name })),
            None,
        )
    };
    let (status, ana) = buy("ana").await;
    assert_eq!(status, StatusCode::OK);
    for variant in [
        "ANA",
        "ana\u{200b}",
        "\u{200b}ana",
        "ana\u{2060}",
        "\u{430}na",
        "\u{ff41}\u{ff4e}\u{ff41}",
    ] {
        let (status, body) = buy(variant).await;
        assert_eq!(
            (status, &body["code"]),
            (StatusCode::BAD_REQUEST, &json!("already_joined")),
            "{variant:?}"
        );
    }
    for refused in ["\u{3164}", "\u{200b}", "\u{202e}ana"] {
        let (status, body) = buy(refused).await;
        assert_eq!(
            (status, &body["code"]),
            (StatusCode::BAD_REQUEST, &json!("invalid_name")),
            "{refused:?}"
        );
    }
    // NFC and NFD are one buyer too.
    assert_eq!(buy("Jos\u{e9}").await.0, StatusCode::OK);
    assert_eq!(buy("Jose\u{301}").await.1["code"], "already_joined");
    // ana still holds her place, the only one besides José's.
    let tx = ana["transactionId"].as_str().unwrap();
    let (_, status) = send(
        http.get(format!("{base}/transactions/{tx}")),
        ana["buyerToken"].as_str(),
    )
    .await;
    assert_eq!(status["state"], "payment");
}

/// A flood from one address meets 429 (with `Retry-After`) once its bucket
/// is empty, while another address is served as usual. The whole of
/// 127.0.0.0/8 answers on loopback: two source addresses, two clients.
#[tokio::test]
async fn a_flood_from_one_address_is_limited_while_others_are_served() {
    let (mut stack, _) = manual_stack().await;
    let limit = "1/s,burst=5".parse().unwrap();
    stack.app = stack
        .app
        .with_rate_limit(flashsale_http::ratelimit::ClientLimiter::new(limit, vec![]));
    let base = serve_with_peers(stack.router("*")).await;
    let (_, sale) = common::post(
        &reqwest::Client::new(),
        format!("{base}/sales"),
        &new_sale_body(),
    )
    .await;
    let sale = sale["id"].as_str().unwrap().to_owned();
    let (flood, other) = (client_from([127, 0, 0, 2]), client_from([127, 0, 0, 3]));
    let mut limited = 0;
    for i in 0..50 {
        let r = flood
            .post(format!("{base}/sales/{sale}/buy"))
            .json(&json!({ "buyerName": format!("bot{i}") }))
            .send()
            .await
            .unwrap();
        if r.status() == StatusCode::TOO_MANY_REQUESTS {
            assert!(r.headers().contains_key("retry-after"));
            let body: Value = r.json().await.unwrap();
            assert_eq!(body["code"], "rate_limited");
            limited += 1;
        }
    }
    // The bucket holds 5 and refills at 1/s: most of a quick flood of 50
    // is refused (even if the flood took 20 s, 25 could pass at most).
    assert!(limited >= 5, "only {limited} of 50 limited");
    let (status, body) = send(
        other
            .post(format!("{base}/sales/{sale}/buy"))
            .json(&json!({ "buyerName": "ana" })),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

/// Replaying a payment on a dead transaction 10,000 times must not grow
/// the journal: one refund is owed, said once.
#[tokio::test]
async fn ten_thousand_late_payments_add_one_journal_event() {
    let clock = flashsale_core::testkit::ManualClock::new(common::T0);
    let storage = flashsale_core::MemoryStorage::new();
    let stack = common::stack_with(&clock, common::test_catalogue(), storage.clone()).await;
    let base = serve(stack.router("*")).await;
    let http = reqwest::Client::new();
    let (_, sale) = common::post(&http, format!("{base}/sales"), &new_sale_body()).await;
    let sale_id = sale["id"].as_str().unwrap().to_owned();
    let (_, ana) = send(
        http.post(format!("{base}/sales/{sale_id}/buy"))
            .json(&json!({ "buyerName": "ana" })),
        None,
    )
    .await;
    let tx = ana["transactionId"].as_str().unwrap().to_owned();
    clock.advance(std::time::Duration::from_secs(120)); // the slot expires
    let journal_len = |storage: flashsale_core::MemoryStorage, sale: String| async move {
        use flashsale_core::Storage;
        storage.read(sale.parse().unwrap()).await.unwrap().len()
    };
    // The first late payment expires the slot and owes the refund.
    let (status, body) = send(
        http.post(format!("{base}/paid"))
            .json(&json!({ "transactionId": tx })),
        None,
    )
    .await;
    assert_eq!(
        (status, &body["code"]),
        (StatusCode::BAD_REQUEST, &json!("slot_expired"))
    );
    let before = journal_len(storage.clone(), sale_id.clone()).await;
    for _ in 0..10_000 {
        let (status, _) = send(
            http.post(format!("{base}/paid"))
                .json(&json!({ "transactionId": tx })),
            None,
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
    }
    assert_eq!(
        journal_len(storage, sale_id).await,
        before,
        "the journal grew"
    );
}

/// One address opens live connections until the cap: the next one is
/// refused (`connect_error`), and another address still connects.
#[tokio::test]
async fn live_connections_per_address_are_bounded() {
    let (stack, _) = manual_stack().await;
    let base = serve_with_peers(stack.router("*")).await;
    let crowd = client_from([127, 0, 0, 4]);
    for _ in 0..flashsale_http::live::MAX_SOCKETS_PER_ADDRESS {
        let answer = socket_io_connect(&crowd, &base, None).await;
        assert!(answer.contains("40{"), "{answer}");
    }
    // The next is refused, and told why.
    let refused = socket_io_connect(&crowd, &base, None).await;
    assert!(
        refused.contains("44{") && refused.contains("too many live connections"),
        "{refused}"
    );
    let answer = socket_io_connect(&client_from([127, 0, 0, 5]), &base, None).await;
    assert!(
        answer.contains("40{") && !answer.contains("44{"),
        "{answer}"
    );
}

/// Behind a trusted proxy every buyer arrives from the proxy's address:
/// the live-connection bound counts the forwarded client, not the proxy.
#[tokio::test]
async fn behind_a_trusted_proxy_live_connections_are_bounded_per_client() {
    let (mut stack, _) = manual_stack().await;
    let limit = "1000000/s,burst=1000000".parse().unwrap();
    let proxy: ipnet::IpNet = "127.0.0.6/32".parse().unwrap();
    stack.app = stack
        .app
        .with_rate_limit(flashsale_http::ratelimit::ClientLimiter::new(
            limit,
            vec![proxy],
        ));
    let base = serve_with_peers(stack.router("*")).await;
    let proxy = client_from([127, 0, 0, 6]);
    for _ in 0..flashsale_http::live::MAX_SOCKETS_PER_ADDRESS {
        let answer = socket_io_connect(&proxy, &base, Some("203.0.113.7")).await;
        assert!(answer.contains("40{"), "{answer}");
    }
    let refused = socket_io_connect(&proxy, &base, Some("203.0.113.7")).await;
    assert!(refused.contains("44{"), "{refused}");
    let other = socket_io_connect(&proxy, &base, Some("198.51.100.9")).await;
    assert!(other.contains("40{") && !other.contains("44{"), "{other}");
}

/// With sign-in on, a buy needs a valid JWT — not expired, signed with the
/// shop's key, for this audience — and the buyer is the token's `sub`: two
/// names under one account get one place.
#[tokio::test]
async fn buyers_who_sign_in_are_their_accounts_and_bad_tokens_are_refused() {
    use jsonwebtoken::{EncodingKey, Header, encode};
    let (mut stack, _) = manual_stack().await;
    let mut notices = stack.notices.subscribe();
    stack.app = stack.app.with_buyer_auth(
        flashsale_http::auth::BuyerAuth::hs256(b"shop secret").with_audience("flashsale"),
    );
    let base = serve(stack.router("*")).await;
    let http = reqwest::Client::new();
    let mut body = new_sale_body();
    body["quantity"] = json!(5);
    let (_, sale) = common::post(&http, format!("{base}/sales"), &body).await;
    let sale = sale["id"].as_str().unwrap().to_owned();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let jwt = |secret: &[u8], sub: &str, aud: &str, exp: u64| {
        let claims = json!({ "sub": sub, "aud": aud, "exp": exp });
        encode(
            &Header::default(),
            &claims,
            &EncodingKey::from_secret(secret),
        )
        .unwrap()
    };
    let buy = |name: &'static str, token: Option<String>| {
        let request = http
            .post(format!("{base}/sales/{sale}/buy"))
            .json(&json!({ "buyerName": name }));
        async move { send(request, token.as_deref()).await }
    };
    let hour = now + 3600;
    for (why, token) in [
        ("no token", None),
        (
            "expired",
            Some(jwt(b"shop secret", "u1", "flashsale", now - 3600)),
        ),
        ("wrong key", Some(jwt(b"forged", "u1", "flashsale", hour))),
        (
            "other audience",
            Some(jwt(b"shop secret", "u1", "elsewhere", hour)),
        ),
        ("not a JWT", Some("0".repeat(64))),
    ] {
        let (status, body) = buy("ana", token).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{why}: {body}");
        assert_eq!(body["code"], "bad_jwt", "{why}");
    }
    let good = jwt(b"shop secret", "u1", "flashsale", hour);
    let (status, ana) = buy("ana", Some(good.clone())).await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = buy("bob", Some(good.clone())).await;
    assert_eq!(
        (status, &body["code"]),
        (StatusCode::BAD_REQUEST, &json!("already_joined")),
        "one account, one place"
    );
    // Another account may use the same name.
    let other = jwt(b"shop secret", "u2", "flashsale", hour);
    assert_eq!(buy("ana", Some(other.clone())).await.0, StatusCode::OK);

    // Once u1 has paid, the catalogue knows the account bought: eligibility
    // refuses it under any name, and still lets u2 (named ana too) in.
    let (status, _) = send(
        http.post(format!("{base}/paid"))
            .json(&json!({ "transactionId": ana["transactionId"] })),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    while !matches!(
        notices.recv().await.unwrap(),
        flashsale_core::Notice::SaleUpdated { .. }
    ) {}
    let eligible = |name: &'static str, token: String| {
        let request = http
            .post(format!("{base}/sales/{sale}/eligible"))
            .json(&json!({ "buyerName": name }));
        async move { send(request, Some(&token)).await }
    };
    let (status, body) = eligible("someone else", good).await;
    assert_eq!(
        (status, &body["code"]),
        (StatusCode::BAD_REQUEST, &json!("already_participated"))
    );
    assert_eq!(eligible("ana", other).await.0, StatusCode::OK);
}
