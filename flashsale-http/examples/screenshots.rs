//! Screenshots of every view of the buyer's web page at phone and desktop
//! size, in headless Chromium against a real server on a free loopback
//! port (the same shop as `tests/web.rs`).
//!
//! Run: `scripts/screenshots.sh [DIR]` (default `target/screenshots`).
#![allow(
    clippy::unwrap_used,
    reason = "a helper script stops at the first surprise"
)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::browser::{Browser, Page, TIMEOUT, shop};
use serde_json::json;

async fn shot(page: &Page, dir: &Path, name: &str) {
    let png = page.client.screenshot().await.unwrap();
    let path = dir.join(format!("{name}.png"));
    std::fs::write(&path, png).unwrap();
    println!("{}", path.display());
}

#[tokio::main]
async fn main() {
    let dir = PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "target/screenshots".into()),
    );
    std::fs::create_dir_all(&dir).unwrap();
    let browser = Browser::start().await;
    for (size, width, height) in [("phone", 390, 844), ("desktop", 1280, 800)] {
        // Two units: one sold through the API, one left for ana; bob and
        // cy wait behind her.
        let s = shop(2).await;
        let buy = |who: &str| {
            let (http, url) = (s.http.clone(), format!("{}/buy", s.base));
            let body = json!({ "buyerName": who });
            async move { common::post(&http, url, &body).await.1 }
        };
        let early = buy("early").await;
        let pay = json!({"transactionId": early["transactionId"], "quantity": 1});
        common::post(&s.http, format!("{}/pay", s.base), &pay).await;

        let sale_url = format!("{}/#/sales/{}", s.base, s.sale);
        let ana = browser.open(&s.base, width, height).await;
        ana.wait_for("#sign-in h1", "Sign in").await;
        shot(&ana, &dir, &format!("1-sign-in-{size}")).await;
        ana.sign_in("ana").await;
        ana.wait_for("#sales .remaining", "1 left").await;
        ana.wait_for("#conn", "Live").await;
        shot(&ana, &dir, &format!("2-sales-{size}")).await;
        ana.client.goto(&sale_url).await.unwrap();
        ana.wait_for("h1", "Limited sneakers").await;
        shot(&ana, &dir, &format!("3-sale-{size}")).await;
        ana.click("#buy").await;
        ana.wait_for("h1", "Your turn: pay now").await;
        ana.wait_text("#countdown", |t| t.ends_with(" s")).await;
        shot(&ana, &dir, &format!("4-payment-{size}")).await;

        buy("cy").await;
        let bob = browser.open(&sale_url, width, height).await;
        bob.sign_in("bob").await;
        bob.click("#buy").await;
        bob.wait_for("#position", "2").await;
        bob.wait_text("#wait", |t| t.starts_with("at most")).await;
        shot(&bob, &dir, &format!("5-waiting-{size}")).await;

        s.clock.advance(TIMEOUT + Duration::from_secs(1));
        ana.wait_text("#outcome", |t| t.contains("expired")).await;
        shot(&ana, &dir, &format!("6-expired-{size}")).await;
        // cy's slot expires too: bob's turn comes and he pays.
        s.clock.advance(TIMEOUT + Duration::from_secs(1));
        bob.click("#pay").await;
        bob.wait_text("#outcome", |t| t.starts_with("Paid")).await;
        shot(&bob, &dir, &format!("7-paid-{size}")).await;
        ana.click("#try-again").await;
        ana.wait_for(".sale-facts .state", "Sold out").await;
        shot(&ana, &dir, &format!("8-sold-out-{size}")).await;
        ana.close().await;
        bob.close().await;
    }
}
