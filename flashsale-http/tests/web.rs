//! The buyer's web page: its files over HTTP, and whole sales played by
//! buyers in real headless Chromium windows against a real server on a
//! free loopback port. Assertions read what the pages show. Time on the
//! server is a manual clock started at the real time (so that the pages'
//! own clocks agree with it); a slot expires when the test moves it.
#![allow(clippy::unwrap_used, reason = "a test fails at the first surprise")]

mod common;

use std::time::Duration;

use common::browser::{Browser, Page, TIMEOUT, shop};
use common::proxy::Proxy;
use common::{get, post};
use flashsale_core::{Clock, Timestamp};
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn the_page_its_config_and_the_socket_io_client_are_served() {
    let s = shop(1).await;
    let fetch = |path: &str| {
        let url = format!("{}{path}", s.base);
        let http = s.http.clone();
        async move {
            let r = http.get(url).send().await.unwrap();
            let ct = r.headers()["content-type"].to_str().unwrap().to_owned();
            (r.status(), ct, r.text().await.unwrap())
        }
    };
    let (status, ct, html) = fetch("/").await;
    assert_eq!(
        (status, ct.as_str()),
        (StatusCode::OK, "text/html; charset=utf-8")
    );
    assert!(
        html.contains(r#"<script src="/socket.io/socket.io.js""#),
        "{html}"
    );
    // Under /socket.io/, yet the file and not the Socket.IO layer's answer.
    let (status, ct, js) = fetch("/socket.io/socket.io.js").await;
    assert_eq!(
        (status, ct.as_str()),
        (StatusCode::OK, "text/javascript; charset=utf-8")
    );
    assert!(js.starts_with("/*!\n * Socket.IO v4."), "{}", &js[..40]);
    let (_, _, app) = fetch("/app.js").await;
    assert!(app.contains("flashsaleErrors"));
    let (status, config) = get(&s.http, format!("{}/config.json", s.base)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(config, json!({"transactionUrl": "", "paymentUrl": ""}));
    // Socket.IO itself still answers beside it.
    let (status, _, handshake) = fetch("/socket.io/?EIO=4&transport=polling").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        handshake.starts_with('0') && handshake.contains("\"sid\""),
        "{handshake}"
    );
}

#[tokio::test]
async fn without_the_page_the_root_is_not_found() {
    let (stack, _) = common::manual_stack().await;
    let base = common::serve(stack.router("*")).await;
    let (status, body) = get(&reqwest::Client::new(), format!("{base}/")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["message"], "Cannot GET /");
}

/// The issue's story, in three browser windows:
/// - carol watches the sales list: the remaining quantity falls live, then
///   "Sold out";
/// - ana takes the last slot, lets it expire (the clock moves past her
///   deadline), tries again and waits — and is told it sold out;
/// - bob waits behind ana (position 1, survives a reload), is moved to
///   payment by himself when her slot expires, and pays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn buyers_wait_get_promoted_pay_and_see_the_sale_sell_out() {
    let s = shop(2).await;
    let browser = Browser::start().await;
    let sale_url = format!("{}/#/sales/{}", s.base, s.sale);

    let carol = browser.open(&s.base, 1280, 800).await;
    carol.sign_in("carol").await;
    carol.wait_for("#conn", "Live").await;
    carol.wait_for("#sales .sale h2", "Limited sneakers").await;
    carol.wait_for("#sales .remaining", "2 left").await;
    carol.wait_for("#sales .state", "Live now").await;

    // Someone buys and pays through the API: carol sees one fewer.
    let (status, early) = post(
        &s.http,
        format!("{}/buy", s.base),
        &json!({"buyerName": "early"}),
    )
    .await;
    assert_eq!(
        (status, early["state"].as_str()),
        (StatusCode::OK, Some("payment"))
    );
    let (status, _) = post(
        &s.http,
        format!("{}/pay", s.base),
        &json!({"transactionId": early["transactionId"], "quantity": 1}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    carol.wait_for("#sales .remaining", "1 left").await;

    // Ana takes the last unit's slot.
    let ana = browser.open(&sale_url, 390, 844).await;
    ana.sign_in("ana").await;
    ana.wait_for("h1", "Limited sneakers").await;
    ana.click("#buy").await;
    ana.wait_for("h1", "Your turn: pay now").await;
    let left = ana.wait_text("#countdown", |t| t.ends_with(" s")).await;
    assert!(
        left == "1 min 00 s" || left.len() <= 4,
        "countdown shows {left:?}"
    );

    // Bob waits behind her, and still does after a reload.
    let bob = browser.open(&sale_url, 1280, 800).await;
    bob.sign_in("bob").await;
    bob.click("#buy").await;
    bob.wait_for("h1", "Waiting room").await;
    bob.wait_for("#position", "1").await;
    let wait = bob.wait_text("#wait", |t| t.starts_with("at most")).await;
    assert!(wait.ends_with(" s"), "bob's estimated wait: {wait:?}");
    bob.client.refresh().await.unwrap();
    bob.wait_for("h1", "Waiting room").await;
    bob.wait_for("#position", "1").await;

    // Ana's slot runs out: she is told, and bob is moved to payment.
    s.clock.advance(TIMEOUT + Duration::from_secs(1));
    ana.wait_text("#outcome", |t| t.contains("slot expired"))
        .await;
    bob.wait_for("h1", "Your turn: pay now").await;

    // Ana tries again: the unit is bob's for now, so she waits.
    ana.click("#try-again").await;
    ana.wait_for("h1", "Limited sneakers").await;
    ana.click("#buy").await;
    ana.wait_for("#position", "1").await;

    // Bob pays: the sale sells out; ana stops waiting, carol sees it.
    bob.click("#pay").await;
    bob.wait_text("#outcome", |t| t.starts_with("Paid")).await;
    ana.wait_text("#outcome", |t| t.starts_with("Sold out"))
        .await;
    carol.wait_for("#sales .remaining", "0 left").await;
    carol.wait_for("#sales .state", "Sold out").await;

    // Back on the sale page, nothing more can be bought.
    ana.client.goto(&sale_url).await.unwrap();
    ana.wait_for(".sale-facts .state", "Sold out").await;
    assert!(
        !ana.enabled("#buy").await,
        "Buy stays enabled after a sell-out"
    );

    let (_, buyers) = get(&s.http, format!("{}/sales/{}/buyers", s.base, s.sale)).await;
    let names: Vec<_> = buyers
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["buyerName"].clone())
        .collect();
    assert_eq!(names, [json!("early"), json!("bob")]);
    for (who, page) in [("carol", &carol), ("ana", &ana), ("bob", &bob)] {
        assert_eq!(page.errors().await, json!([]), "{who}'s page had errors");
    }
    for page in [carol, ana, bob] {
        page.close().await;
    }
}

/// A second buy is refused in plain words; starts and ends come live from
/// the server; signing out forgets the name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_starts_ends_and_signing_out() {
    let s = shop(1).await;
    let browser = Browser::start().await;
    let page: Page = browser
        .open(&format!("{}/#/sales/{}", s.base, s.sale), 1280, 800)
        .await;
    page.sign_in("dora").await;
    page.click("#buy").await;
    page.wait_for("h1", "Your turn: pay now").await;
    page.client.back().await.unwrap();
    page.wait_for("h1", "Limited sneakers").await;
    page.click("#buy").await;
    let said = page
        .wait_text("#message", |t| !t.is_empty() && !t.ends_with('…'))
        .await;
    assert_eq!(said, "You already have a place in this sale.");
    // Her earlier place is a click away, and she can give it up there.
    page.click("#earlier").await;
    page.click("#leave").await;
    page.wait_text("#outcome", |t| t.contains("gave up")).await;

    // A sale that opens in an hour appears on the list: upcoming, with a
    // countdown.
    page.client.goto(&format!("{}/#/", s.base)).await.unwrap();
    page.wait_for("#sales .sale h2", "Limited sneakers").await;
    let now = s.clock.now().as_millis();
    let iso = |ms: u64| flashsale_http::wire::iso(Timestamp::from_millis(ms));
    let (status, later) = post(
        &s.http,
        format!("{}/sales", s.base),
        &json!({"productName": "Night edition", "quantity": 5,
                "saleStart": iso(now + 3_600_000), "saleEnd": iso(now + 7_200_000)}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let later = format!("[data-sale=\"{}\"]", later["id"].as_str().unwrap());
    let first = format!("[data-sale=\"{}\"]", s.sale);
    page.wait_for(&format!("{later} .state"), "Upcoming").await;
    page.wait_text(&format!("{later} .countdown"), |t| {
        t.starts_with("Starts in 59 min")
    })
    .await;
    // The server's clock reaches the hour: the first sale ends, the second
    // starts, and the page hears it (its own clock is an hour behind).
    s.clock.advance(Duration::from_secs(3_600));
    page.wait_for(&format!("{first} .state"), "Ended").await;
    page.wait_for(&format!("{later} .state"), "Live now").await;

    assert!(page.displayed("#sign-out").await);
    page.click("#sign-out").await;
    page.wait_for("#sign-in h1", "Sign in").await;
    page.client.refresh().await.unwrap();
    page.wait_for("#sign-in h1", "Sign in").await;
    assert!(
        !page.displayed("#sign-out").await,
        "Sign out shown to nobody"
    );
    assert_eq!(page.errors().await, json!([]));
    page.close().await;
}

/// The live link drops (a proxy in front of the server is cut) and comes
/// back: the header says so, and a sale made meanwhile shows once it is
/// back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_shows_the_live_link_down_and_catches_up_when_it_is_back() {
    let s = shop(2).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let front = format!("http://{}", listener.local_addr().unwrap());
    let proxy = Proxy::start(listener, s.base.trim_start_matches("http://").to_owned()).await;
    let browser = Browser::start().await;
    let page = browser.open(&front, 1280, 800).await;
    page.sign_in("eve").await;
    page.wait_for("#conn", "Live").await;
    page.wait_for("#sales .remaining", "2 left").await;

    proxy.cut();
    let down = page.wait_text("#conn", |t| t != "Live").await;
    assert!(
        down == "Reconnecting…" || down.starts_with("Offline"),
        "{down:?}"
    );
    let (_, early) = post(
        &s.http,
        format!("{}/buy", s.base),
        &json!({"buyerName": "early"}),
    )
    .await;
    let pay = json!({"transactionId": early["transactionId"], "quantity": 1});
    let (status, _) = post(&s.http, format!("{}/pay", s.base), &pay).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        page.wait_text("#sales .remaining", |_| true).await,
        "2 left"
    );

    proxy.restore();
    page.wait_for("#conn", "Live").await;
    page.wait_for("#sales .remaining", "1 left").await;
    assert_eq!(page.errors().await, json!([]));
    page.close().await;
}
