//! A real headless Chromium, driven over WebDriver (chromedriver +
//! fantoccini): one chromedriver per test, one browser session per page so
//! that each page has its own storage (its own signed-in buyer).
//!
//! `CHROMEDRIVER` and `CHROMIUM` override `/usr/bin/chromedriver` and
//! `/usr/bin/chromium` (Debian's `chromium-driver` and `chromium`).

use std::process::Stdio;
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use flashsale_core::testkit::ManualClock;
use flashsale_core::{NewSale, Timestamp};
use flashsale_http::{Payment, WebPage};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{Value, json};

/// How long a page may take to show what a test waits for. Generous: the
/// machine is shared and three browsers share it.
pub(crate) const PATIENCE: Duration = Duration::from_secs(30);

/// The shop's payment timeout.
pub(crate) const TIMEOUT: Duration = Duration::from_secs(60);

pub(crate) struct Shop {
    pub(crate) base: String,
    pub(crate) sale: String,
    pub(crate) clock: ManualClock,
    pub(crate) http: reqwest::Client,
}

/// The all-in-one server with the page, `/pay`, and one live sale of
/// `quantity` "Limited sneakers" as its default sale.
pub(crate) async fn shop(quantity: u64) -> Shop {
    shop_with(quantity, |_| {}).await
}

/// [`shop`], its sale set up by `configure` too (a pre-queue, limits).
pub(crate) async fn shop_with(quantity: u64, configure: impl FnOnce(&mut NewSale)) -> Shop {
    let now = Timestamp::from(std::time::SystemTime::now());
    let (mut stack, clock) = super::manual_stack_at(now).await;
    let mut new = NewSale::new(
        "Limited sneakers",
        quantity,
        now,
        now.saturating_add(Duration::from_secs(3600)),
    );
    new.payment_timeout = TIMEOUT;
    configure(&mut new);
    let sale = stack.catalogue.create_sale(None, new).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    stack.app = stack
        .app
        .with_default_sale(sale.id())
        .with_payment(Payment::new(&format!("{base}/paid"), None).unwrap())
        .with_web_page(WebPage::same_origin());
    let router = stack.router("*");
    tokio::spawn(async move { axum::serve(listener, router).await });
    Shop {
        base,
        sale: sale.id().to_string(),
        clock,
        http: reqwest::Client::new(),
    }
}

/// A chromedriver on a free loopback port. Dropped, it is killed with
/// every browser it started (its process group), even when a failing test
/// never closed its pages.
pub(crate) struct Browser {
    driver: tokio::process::Child,
    url: String,
}

impl Drop for Browser {
    fn drop(&mut self) {
        if let Some(pid) = self.driver.id() {
            let _ = std::process::Command::new("kill")
                .args(["-KILL", "--", &format!("-{pid}")])
                .status();
        }
    }
}

impl Browser {
    pub(crate) async fn start() -> Browser {
        let driver =
            std::env::var("CHROMEDRIVER").unwrap_or_else(|_| "/usr/bin/chromedriver".into());
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .unwrap()
            .port();
        let child = tokio::process::Command::new(&driver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start {driver}: {e} (apt-get install chromium chromium-driver)")
            });
        let url = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        let since = Instant::now();
        loop {
            let ready = match http.get(format!("{url}/status")).send().await {
                Ok(r) => r
                    .json::<Value>()
                    .await
                    .is_ok_and(|v| v["value"]["ready"] == true),
                Err(_) => false,
            };
            if ready {
                break;
            }
            assert!(since.elapsed() < PATIENCE, "chromedriver did not come up");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Browser { driver: child, url }
    }

    /// A new browser window of `width`×`height` CSS pixels at `url`.
    pub(crate) async fn open(&self, url: &str, width: u32, height: u32) -> Page {
        let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
        let caps = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--disable-background-networking", "--disable-component-update",
                    "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
                    format!("--window-size={width},{height}"),
                ],
            },
        });
        // Chromium's windows are at least 500 pixels wide: a phone is
        // emulated instead (its width, touch, a mobile user agent).
        let mut caps = caps;
        if width < 500 {
            caps["goog:chromeOptions"]["mobileEmulation"] =
                json!({"deviceMetrics": {"width": width, "height": height, "pixelRatio": 2}});
        }
        let Value::Object(caps) = caps else {
            unreachable!()
        };
        let client = ClientBuilder::new(HttpConnector::new())
            .capabilities(caps)
            .connect(&self.url)
            .await
            .unwrap();
        client.goto(url).await.unwrap();
        Page { client }
    }
}

/// One browser window, with the few things the tests do to it.
pub(crate) struct Page {
    pub(crate) client: Client,
}

impl Page {
    /// The text of the first element matching `css` once `ok(text)` holds;
    /// fails the test after [`PATIENCE`], saying what was seen.
    pub(crate) async fn wait_text(&self, css: &str, ok: impl Fn(&str) -> bool) -> String {
        let since = Instant::now();
        loop {
            let seen = match self.client.find(Locator::Css(css)).await {
                Ok(e) => e.text().await.ok(),
                Err(_) => None,
            };
            if let Some(text) = &seen
                && ok(text)
            {
                return text.clone();
            }
            if since.elapsed() > PATIENCE {
                let js = "return [location.href, document.getElementById('view').innerText, \
                          window.flashsaleErrors];";
                let shown = self.client.execute(js, vec![]).await;
                panic!("{css}: waited {PATIENCE:?}, last saw {seen:?}; the page: {shown:?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits for `css` to show exactly `text`.
    pub(crate) async fn wait_for(&self, css: &str, text: &str) {
        self.wait_text(css, |t| t == text).await;
    }

    /// Clicks the first element matching `css` once it is there (again, if
    /// the page re-rendered it between finding and clicking).
    pub(crate) async fn click(&self, css: &str) {
        let since = Instant::now();
        loop {
            self.wait_text(css, |_| true).await;
            let clicked = match self.client.find(Locator::Css(css)).await {
                Ok(e) => e.click().await,
                Err(e) => Err(e),
            };
            match clicked {
                Ok(()) => return,
                Err(e) if since.elapsed() > PATIENCE => panic!("cannot click {css}: {e}"),
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }

    /// Signs in as `name` with the keyboard: type the name, press Enter.
    pub(crate) async fn sign_in(&self, name: &str) {
        self.wait_text("#sign-in h1", |t| t == "Sign in").await;
        let input = self.client.find(Locator::Id("buyer-name")).await.unwrap();
        input.send_keys(&format!("{name}\u{E007}")).await.unwrap();
        self.wait_for("#who-name", name).await;
    }

    /// Uncaught errors and unhandled rejections the page recorded.
    pub(crate) async fn errors(&self) -> Value {
        self.client
            .execute("return window.flashsaleErrors;", vec![])
            .await
            .unwrap()
    }

    /// Whether the element matching `css` is enabled.
    pub(crate) async fn enabled(&self, css: &str) -> bool {
        let e = self.client.find(Locator::Css(css)).await.unwrap();
        e.is_enabled().await.unwrap()
    }

    /// Whether the element matching `css` is shown.
    pub(crate) async fn displayed(&self, css: &str) -> bool {
        let e = self.client.find(Locator::Css(css)).await.unwrap();
        e.is_displayed().await.unwrap()
    }

    /// Types `text` into the input with id `id` (after clearing it).
    pub(crate) async fn type_into(&self, id: &str, text: &str) {
        self.wait_text(&format!("#{id}"), |_| true).await;
        let input = self.client.find(Locator::Id(id)).await.unwrap();
        input.clear().await.unwrap();
        input.send_keys(text).await.unwrap();
    }

    /// Whether an element matching `css` exists and is shown.
    pub(crate) async fn displayed_any(&self, css: &str) -> bool {
        match self.client.find(Locator::Css(css)).await {
            Ok(e) => e.is_displayed().await.unwrap_or(false),
            Err(_) => false,
        }
    }

    /// Saves a PNG of the window to `target/screenshots/{name}.png` (for
    /// people to look at; nothing reads it back).
    pub(crate) async fn screenshot(&self, name: &str) {
        let _ = self.client.execute("window.scrollTo(0, 0);", vec![]).await;
        let png = self.client.screenshot().await.unwrap();
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
    }

    /// Ends the browser session.
    pub(crate) async fn close(self) {
        let _ = self.client.close().await;
    }
}
