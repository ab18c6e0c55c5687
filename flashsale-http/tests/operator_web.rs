//! The fair opening and the operator's controls in a real headless
//! Chromium: a buyer sees the pre-queue's countdown, then a position once
//! the draw is made; a waiting buyer sees the queue paused, then moving
//! again; the operator dashboard shows live figures and its pause button
//! works. Screenshots of the dashboard (desktop and phone) go to
//! `target/screenshots/`.
#![allow(clippy::unwrap_used, reason = "a test fails at the first surprise")]

mod common;

use std::time::Duration;

use common::browser::{Browser, shop, shop_with};
use common::{ADMIN_TOKEN, get, post};
use flashsale_core::PrequeueOrder;
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn a_buyer_sees_the_prequeue_countdown_then_a_position_then_a_pause_and_the_queue_moving() {
    let s = shop_with(10, |sale| {
        sale.prequeue_opens_at = Some(sale.starts_at);
        sale.starts_at = sale.starts_at.saturating_add(Duration::from_secs(60));
        sale.prequeue_order = PrequeueOrder::Shuffle;
        sale.max_payment_slots = Some(1);
    })
    .await;
    // Three others queue first, through the API.
    for name in ["ana", "cy", "di"] {
        let (status, a) = post(
            &s.http,
            format!("{}/sales/{}/buy", s.base, s.sale),
            &json!({"buyerName": name}),
        )
        .await;
        assert_eq!(
            (status, a["state"].as_str()),
            (StatusCode::OK, Some("waiting"))
        );
    }
    let browser = Browser::start().await;
    let bob = browser
        .open(&format!("{}/#/sales/{}", s.base, s.sale), 390, 844)
        .await;
    bob.sign_in("bob").await;
    bob.click("#buy").await;
    bob.wait_for("h1", "Pre-queue").await;
    let countdown = bob
        .wait_text("#prequeue-countdown", |t| t.ends_with(" s"))
        .await;
    assert!(
        countdown == "1 min 00 s" || countdown.ends_with(" s"),
        "{countdown:?}"
    );
    assert!(
        !bob.displayed_any("#position").await,
        "a position before the draw"
    );

    // The operator pauses before the start: the draw gives places, no slot.
    let (status, _) = post(
        &s.http,
        format!("{}/sales/{}/pause", s.base, s.sale),
        &json!({}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    s.clock.advance(Duration::from_secs(61));
    bob.wait_for("h1", "Waiting room").await;
    let position: u64 = bob
        .wait_text("#position", |t| !t.is_empty())
        .await
        .parse()
        .unwrap();
    assert!((1..=4).contains(&position));
    bob.wait_text("#paused", |t| t.contains("paused")).await;
    assert!(bob.displayed("#paused").await);
    let wait = bob.wait_text("#wait", |t| !t.is_empty()).await;
    assert_eq!(wait, "on hold while the queue is paused");

    // Resumed: the first in line gets the one slot; bob moves up (or it is
    // his turn).
    let (status, _) = post(
        &s.http,
        format!("{}/sales/{}/resume", s.base, s.sale),
        &json!({}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    if position == 1 {
        bob.wait_for("h1", "Your turn: pay now").await;
    } else {
        bob.wait_for("#position", &(position - 1).to_string()).await;
        assert!(!bob.displayed("#paused").await, "still shown as paused");
    }
    assert_eq!(bob.errors().await, json!([]));
}

#[tokio::test]
async fn the_dashboard_shows_live_figures_and_its_pause_button_works() {
    let s = shop(5).await;
    let browser = Browser::start().await;
    let desk = browser.open(&format!("{}/admin", s.base), 1280, 900).await;
    desk.wait_text("#sign-in h1", |t| t == "Operator sign-in")
        .await;
    // A wrong token is refused.
    desk.type_into("admin-token", "not the token\u{E007}").await;
    desk.wait_text("#sign-in-error", |t| t.contains("not the operator token"))
        .await;
    desk.type_into("admin-token", &format!("{ADMIN_TOKEN}\u{E007}"))
        .await;
    desk.wait_for("#product", "Limited sneakers").await;
    desk.wait_for("#f-remaining", "5").await;
    desk.wait_for("#conn", "Live").await;

    // Buyers come: the figures follow without a reload.
    for name in ["ana", "bob", "cy"] {
        let (status, _) = post(
            &s.http,
            format!("{}/buy", s.base),
            &json!({"buyerName": name}),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
    }
    desk.wait_for("#f-slots", "3").await;
    let (_, bought) = post(
        &s.http,
        format!("{}/buy", s.base),
        &json!({"buyerName": "di"}),
    )
    .await;
    let (status, _) = post(
        &s.http,
        format!("{}/pay", s.base),
        &json!({"transactionId": bought["transactionId"], "quantity": 1}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    desk.wait_for("#f-sold", "1").await;
    desk.wait_for("#f-remaining", "4").await;
    // Time passes on the server's clock: the next refresh is a second
    // sample, so the charts get a line and the rates a value.
    s.clock.advance(Duration::from_secs(2));
    desk.wait_text("#f-joins", |t| t != "—").await;

    // Pause from the dashboard: the server says paused, and so does it.
    desk.click("#pause").await;
    desk.wait_for("#state", "paused").await;
    desk.wait_for("#pause", "Resume").await;
    let (status, stats) = get(&s.http, format!("{}/sales/{}/stats", s.base, s.sale)).await;
    assert_eq!((status, &stats["paused"]), (StatusCode::OK, &json!(true)));
    desk.screenshot("dashboard-desktop").await;
    let phone = browser.open(&format!("{}/admin", s.base), 390, 844).await;
    phone
        .type_into("admin-token", &format!("{ADMIN_TOKEN}\u{E007}"))
        .await;
    phone.wait_for("#state", "paused").await;
    phone.screenshot("dashboard-phone").await;
    desk.click("#pause").await;
    desk.wait_for("#state", "live").await;
    assert_eq!(desk.errors().await, json!([]));
    assert_eq!(phone.errors().await, json!([]));
    let (status, _) = get(&s.http, format!("{}/admin/uPlot.js", s.base)).await;
    assert_eq!(status, StatusCode::OK);
}

/// The waiting room shows positions the server pushes: once pushes come,
/// buyers ahead leaving move bob's position without the page asking
/// `GET /transactions/{id}` again.
#[tokio::test]
async fn the_waiting_room_shows_pushed_positions_without_asking() {
    let s = shop_with(10, |sale| sale.max_payment_slots = Some(1)).await;
    let mut ahead = Vec::new();
    for name in ["ana", "cy", "di", "ed"] {
        let (_, a) = post(
            &s.http,
            format!("{}/sales/{}/buy", s.base, s.sale),
            &json!({"buyerName": name}),
        )
        .await;
        ahead.push(a);
    }
    let browser = Browser::start().await;
    let bob = browser
        .open(&format!("{}/#/sales/{}", s.base, s.sale), 1280, 800)
        .await;
    bob.sign_in("bob").await;
    bob.click("#buy").await;
    bob.wait_for("#position", "4").await;
    // The first push (within a second of joining the transaction's room).
    bob.wait_text("#position[data-pushed]", |_| true).await;
    let asked = async || {
        bob.client
            .execute(
                "return performance.getEntriesByType('resource')\
                 .filter(e => e.name.includes('/transactions/')).length;",
                vec![],
            )
            .await
            .unwrap()
            .as_u64()
            .unwrap()
    };
    let before = asked().await;
    for a in &ahead[1..3] {
        let url = format!(
            "{}/transactions/{}/leave",
            s.base,
            a["transactionId"].as_str().unwrap()
        );
        let (status, _) = post(&s.http, url, &json!({})).await;
        assert_eq!(status, StatusCode::OK);
    }
    bob.wait_for("#position", "2").await;
    assert_eq!(asked().await, before, "the page asked for its status");
    assert_eq!(bob.errors().await, json!([]));
}
