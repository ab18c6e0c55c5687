//! The split deployment as separate processes — the `backend`,
//! `transaction` and `payment` example servers, built by `cargo test` —
//! talking over a real Kafka-protocol broker (tansu) on loopback, watched
//! by the reference's own Socket.IO client. `scripts/test.sh` starts the
//! shared broker (`FLASHSALE_KAFKA_BROKERS`); the outage test starts a
//! broker of its own behind a proxy it can cut.
#![allow(clippy::unwrap_used, reason = "a test fails at the first surprise")]

mod process;

use std::collections::{BTreeMap, BTreeSet};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use flashsale_http::tokens::TokenKey;
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};
use tokio::process::{Child, Command};
use tokio::sync::{Mutex, watch};

// flashsale-http's test helpers: the browser, the cut-able proxy, the
// reference's Socket.IO client.
#[path = "../../flashsale-http/tests/common/mod.rs"]
mod common;
use common::browser::Browser;
use common::proxy::Proxy;
use common::socketio::Client;

/// The split servers' buyer-token secret: the test acts as every buyer.
const TOKEN_SECRET: &str = "split test tokens";

/// Names no other test (or earlier run on the same broker) uses.
fn unique(what: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{what}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

fn unique_sale() -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{:08x}{:016x}",
        std::process::id(),
        u64::from(N.fetch_add(1, Ordering::Relaxed)) + 0x5a1e_0000
    )
}

fn shared_brokers() -> String {
    std::env::var("FLASHSALE_KAFKA_BROKERS").expect(
        "FLASHSALE_KAFKA_BROKERS names the test broker; scripts/test.sh starts one and sets it",
    )
}

/// One example server as a child process, killed when dropped.
struct Server {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    base: String,
}

impl Server {
    /// Starts example `name` on a free port (or `port`) with `env`, and
    /// waits for it to say where it listens.
    async fn start(name: &str, port: u16, env: &[(&str, String)]) -> Server {
        let mut env: Vec<(&str, String)> = env.to_vec();
        env.push(("PORT", port.to_string()));
        let (child, listening) = process::start(name, &env).await;
        Server {
            child,
            base: format!("http://{listening}"),
        }
    }

    fn port(&self) -> u16 {
        self.base.rsplit(':').next().unwrap().parse().unwrap()
    }

    /// `kill -9`, and waits until it is gone.
    async fn kill_9(&mut self) {
        self.child.start_kill().unwrap();
        self.child.wait().await.unwrap();
    }
}

/// The three split servers for one sale.
struct Split {
    sale: String,
    backend: Server,
    backend_env: Vec<(&'static str, String)>,
    payment_port: u16,
    /// The transaction service's process, replaced when it is restarted on
    /// the same port.
    transaction: Mutex<Server>,
    transaction_base: String,
    transaction_env: Vec<(&'static str, String)>,
    http: reqwest::Client,
}

impl Split {
    /// Backend and transaction services for a new sale of `quantity`; the
    /// backend's page points at the transaction service and at the port
    /// [`Split::start_payment`] uses.
    async fn start(brokers: &str, quantity: u64, journal: &str) -> Split {
        Self::start_with(brokers, quantity, journal, &[]).await
    }

    /// [`Split::start`], with `extra` settings for the transaction service.
    async fn start_with(
        brokers: &str,
        quantity: u64,
        journal: &str,
        extra: &[(&'static str, String)],
    ) -> Split {
        let sale = unique_sale();
        let free = || {
            std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .unwrap()
                .port()
        };
        let (transaction_port, payment_port) = (free(), free());
        let kafka = [
            ("KAFKA_BROKERS", brokers.to_owned()),
            ("KAFKA_TOPIC", unique("transactions")),
            ("ADMIN_TOKEN", ADMIN.to_owned()),
        ];
        let mut backend_env = kafka.to_vec();
        backend_env.push(("BUYER_TOKEN_SECRET", TOKEN_SECRET.to_owned()));
        backend_env.extend([
            ("SALE_ID", sale.clone()),
            ("SALE_QTY", quantity.to_string()),
            // The transaction service takes the sale's payment timeout from
            // the backend.
            ("PAYMENT_TIMEOUT_MS", "600000".to_owned()),
            ("KAFKA_GROUP_ID", unique("backend")),
            (
                "PUBLIC_TRANSACTION_URL",
                format!("http://127.0.0.1:{transaction_port}"),
            ),
            (
                "PUBLIC_PAYMENT_URL",
                format!("http://127.0.0.1:{payment_port}"),
            ),
        ]);
        let backend = Server::start("backend", 0, &backend_env).await;
        let mut transaction_env = kafka.to_vec();
        transaction_env.push(("BUYER_TOKEN_SECRET", TOKEN_SECRET.to_owned()));
        transaction_env.extend([
            ("SALE_ID", sale.clone()),
            ("BACKEND_BASE_URL", backend.base.clone()),
            ("PAYMENT_TIMEOUT_MS", "600000".to_owned()),
            ("PAYMENT_SECRET", "s3cret".to_owned()),
            ("JOURNAL", journal.to_owned()),
            ("KAFKA_JOURNAL_PREFIX", unique("journal") + "-"),
        ]);
        transaction_env.extend(extra.iter().cloned());
        let transaction = Server::start("transaction", transaction_port, &transaction_env).await;
        Split {
            sale,
            backend,
            backend_env,
            payment_port,
            transaction_base: transaction.base.clone(),
            transaction: Mutex::new(transaction),
            transaction_env,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(60))
                .build()
                .unwrap(),
        }
    }

    /// The payment service, calling back the transaction service.
    async fn start_payment(&self) -> Server {
        let env = [
            (
                "PAY_CALLBACK_URL",
                format!("{}/paid", self.transaction_base),
            ),
            ("PAYMENT_SECRET", "s3cret".to_owned()),
        ];
        Server::start("payment", self.payment_port, &env).await
    }

    async fn call(
        &self,
        method: reqwest::Method,
        url: String,
        body: Option<Value>,
    ) -> (u16, Value) {
        let tx = url
            .split_once("/transactions/")
            .and_then(|(_, rest)| rest.get(..24))
            .and_then(|id| id.parse().ok());
        let mut request = self.http.request(method, &url);
        // As the holder of the transaction's buyer token.
        if let Some(tx) = tx {
            request = request.bearer_auth(TokenKey::derive(TOKEN_SECRET.as_bytes()).token(tx));
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let r = request.send().await.unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    async fn buy(&self, who: &str) -> (u16, Value) {
        self.try_buy(who).await.unwrap()
    }

    /// A buy that may meet a dead server.
    async fn try_buy(&self, who: &str) -> Result<(u16, Value), reqwest::Error> {
        buy_on(&self.http, &self.transaction_base, who).await
    }

    async fn status(&self, tx: &str) -> Value {
        let (code, body) = self
            .call(
                reqwest::Method::GET,
                format!("{}/transactions/{tx}", self.transaction_base),
                None,
            )
            .await;
        assert_eq!(code, 200, "{body}");
        body
    }

    /// The backend's remaining quantity and buyers' names.
    async fn backend_view(&self) -> (u64, Vec<String>) {
        let get = |path: String| {
            self.call(
                reqwest::Method::GET,
                format!("{}{path}", self.backend.base),
                None,
            )
        };
        let (_, sale) = get(format!("/sales/{}", self.sale)).await;
        let (_, buyers) = get(format!("/sales/{}/buyers", self.sale)).await;
        let names = buyers
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b["buyerName"].as_str().unwrap().to_owned())
            .collect();
        (sale["productQty"].as_u64().unwrap(), names)
    }

    /// Waits (polling, up to 60 s) until the backend shows `remaining`.
    async fn backend_reaches(&self, remaining: u64) -> Vec<String> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            let (left, names) = self.backend_view().await;
            if left == remaining {
                return names;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "backend stuck at {left} remaining, waiting for {remaining}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Marks `tx` paid on the transaction service, signed as the payment
    /// service would.
    async fn paid(&self, tx: &str) -> u16 {
        self.try_paid(tx).await.unwrap()
    }

    async fn try_paid(&self, tx: &str) -> Result<u16, reqwest::Error> {
        paid_on(&self.http, &self.transaction_base, tx).await
    }

    /// `kill -9` the transaction service and start it again on its port.
    async fn crash_and_restart_transaction(&self) {
        let mut server = self.transaction.lock().await;
        let port = server.port();
        server.kill_9().await;
        *server = Server::start("transaction", port, &self.transaction_env).await;
    }
}

/// `POST {base}/buy` for `who`: the status and the answer.
async fn buy_on(
    http: &reqwest::Client,
    base: &str,
    who: &str,
) -> Result<(u16, Value), reqwest::Error> {
    let r = http
        .post(format!("{base}/buy"))
        .json(&json!({ "buyerName": who }))
        .send()
        .await?;
    let status = r.status().as_u16();
    Ok((status, r.json().await?))
}

/// `POST {base}/paid` for `tx`, signed as the payment service would.
async fn paid_on(http: &reqwest::Client, base: &str, tx: &str) -> Result<u16, reqwest::Error> {
    let body = serde_json::to_vec(&json!({ "transactionId": tx })).unwrap();
    let r = http
        .post(format!("{base}/paid"))
        .header("content-type", "application/json")
        .header(
            "x-flashsale-signature",
            flashsale_http::signature::sign(b"s3cret", &body),
        )
        .body(body)
        .send()
        .await?;
    Ok(r.status().as_u16())
}

/// A buy and its payment on the service at `base`: the transaction, if
/// both were accepted.
async fn buy_and_pay(http: &reqwest::Client, base: &str, who: &str) -> Option<String> {
    let (code, answer) = buy_on(http, base, who).await.ok()?;
    if code != 200 {
        return None;
    }
    let tx = tx_of(&answer);
    (paid_on(http, base, &tx).await.ok()? == 200).then_some(tx)
}

fn tx_of(answer: &Value) -> String {
    answer["transactionId"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn split_servers_buy_pay_and_tell_the_backend_and_the_browser() {
    let split = Split::start(&shared_brokers(), 3, "kafka").await;
    let payment = split.start_payment().await;
    let (mut browser, _) = Client::connect(&split.backend.base, json!({})).await;
    // The backend serves the buyer's page, which buys and pays elsewhere.
    let config: Value = split
        .http
        .get(format!("{}/config.json", split.backend.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        config,
        json!({"transactionUrl": split.transaction_base, "paymentUrl": payment.base})
    );

    let mut txs = Vec::new();
    for who in ["ana", "bo", "cy", "dee"] {
        let (code, answer) = split.buy(who).await;
        assert_eq!(code, 200, "{answer}");
        txs.push(tx_of(&answer));
    }
    assert_eq!(split.status(&txs[3]).await["state"], "waiting");

    // Pay through the payment service: it calls the transaction service,
    // which publishes `paid`; the backend applies it and tells browsers.
    let (code, answer) = split
        .call(
            reqwest::Method::POST,
            format!("{}/pay", payment.base),
            Some(json!({ "transactionId": txs[0], "quantity": 1 })),
        )
        .await;
    assert_eq!(code, 200, "{answer}");
    let update = browser.next("sale_update").await;
    assert_eq!(
        update,
        json!({ "saleId": split.sale, "remainingQty": 2, "buyerName": "ana" })
    );
    assert_eq!(split.backend_view().await, (2, vec!["ana".to_owned()]));

    // bo gives up his slot: dee is promoted, and the browser hears it.
    let (code, _) = split
        .call(
            reqwest::Method::POST,
            format!("{}/transactions/{}/leave", split.transaction_base, txs[1]),
            None,
        )
        .await;
    assert_eq!(code, 200);
    let switch = browser.next("queue_switch").await;
    assert_eq!(
        switch,
        json!({ "transactionId": txs[3], "buyerName": "dee", "saleId": split.sale })
    );
    assert_eq!(split.status(&txs[3]).await["state"], "payment");

    // The operator pauses the sale where its engine runs.
    let paused: Value = split
        .http
        .post(format!(
            "{}/sales/{}/pause",
            split.transaction_base, split.sale
        ))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (&paused["paused"], &paused["sold"]),
        (&json!(true), &json!(1)),
        "{paused}"
    );
    // The backend's consumer reports its lag from librdkafka's statistics
    // (every 5 s).
    let metrics = async || {
        split
            .http
            .get(format!("{}/metrics", split.backend.base))
            .bearer_auth(ADMIN)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    };
    let mut text = metrics().await;
    for _ in 0..100 {
        if text.contains("flashsale_kafka_consumer_lag{") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(150)).await;
        text = metrics().await;
    }
    assert!(
        text.lines()
            .any(|l| l.starts_with("flashsale_kafka_consumer_lag{") && l.ends_with(" 0")),
        "no consumer lag of 0 in {text}"
    );
}

/// The operator token of the split servers.
const ADMIN: &str = "split operator";

/// What one client of the crash test was told.
#[derive(Debug, Default)]
struct Told {
    /// Buys answered: name, transaction, in the order this client made them.
    bought: Vec<(String, String)>,
    /// Payments answered 200.
    paid: Vec<String>,
}

/// The buyer's page as the split deployment serves it, in headless
/// Chromium: the backend serves it, it buys on the transaction service and
/// pays on the payment service (other origins, so CORS is exercised), and
/// the sale reaches it back over Kafka and Socket.IO.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_backends_page_buys_and_pays_on_the_other_services() {
    let split = Split::start(&shared_brokers(), 1, "kafka").await;
    let _payment = split.start_payment().await;

    let browser = Browser::start().await;
    let page = browser.open(&split.backend.base, 1280, 800).await;
    page.sign_in("ana").await;
    page.wait_for("#conn", "Live").await;
    page.wait_for("#sales .sale h2", "Limited edition sneakers")
        .await;
    page.wait_for("#sales .remaining", "1 left").await;
    page.click("#sales .sale h2 a").await;
    page.click("#buy").await;
    page.wait_for("h1", "Your turn: pay now").await;
    page.click("#pay").await;
    page.wait_text("#outcome", |t| t.starts_with("Paid")).await;
    page.click("#outcome ~ .actions a:last-child").await;
    page.wait_for("#sales .remaining", "0 left").await;
    page.wait_for("#sales .state", "Sold out").await;
    assert_eq!(page.errors().await, json!([]));
    page.close().await;
}

/// The backend keeps its catalogue in memory: killed and started again, it
/// rebuilds it from the whole `transactions` topic — the same units left
/// and the same buyers, each once.
#[tokio::test]
async fn a_restarted_backend_rebuilds_its_catalogue_from_the_topic() {
    let mut split = Split::start(&shared_brokers(), 5, "kafka").await;
    for who in ["ana", "bo", "cy"] {
        let (code, answer) = split.buy(who).await;
        assert_eq!(code, 200, "{answer}");
        assert_eq!(split.paid(&tx_of(&answer)).await, 200);
    }
    let buyers = split.backend_reaches(2).await;
    assert_eq!(buyers, ["ana", "bo", "cy"]);

    split.backend.kill_9().await;
    let port = split.backend.port();
    split.backend = Server::start("backend", port, &split.backend_env).await;
    assert_eq!(split.backend_reaches(2).await, buyers);
    // And it goes on hearing new payments.
    let (_, answer) = split.buy("dee").await;
    assert_eq!(split.paid(&tx_of(&answer)).await, 200);
    assert_eq!(split.backend_reaches(1).await, ["ana", "bo", "cy", "dee"]);
}

/// A backend with a data directory saves its catalogue with the offsets it
/// covers, and a restarted one (even after `kill -9`) starts from that
/// instead of the whole topic: a sale it only had in its catalogue (not on
/// the topic) is still there, the figures are exact, new payments count.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backend_with_a_data_dir_resumes_from_its_saved_catalogue() {
    let mut split = Split::start(&shared_brokers(), 6, "kafka").await;
    let dir = tempfile::tempdir().unwrap();
    let mut env = split.backend_env.clone();
    env.extend([
        ("DATA_DIR", dir.path().to_str().unwrap().to_owned()),
        ("CATALOGUE_SAVE_MS", "50".to_owned()),
        ("ADMIN_TOKEN", "admin-for-test".to_owned()),
    ]);
    let port = split.backend.port();
    for who in ["ana", "bo"] {
        let (_, answer) = split.buy(who).await;
        assert_eq!(split.paid(&tx_of(&answer)).await, 200);
    }
    split.backend_reaches(4).await;
    // From now on the backend keeps its catalogue.
    split.backend.kill_9().await;
    split.backend = Server::start("backend", port, &env).await;
    split.backend_reaches(4).await;
    let created = split
        .http
        .post(format!("{}/sales", split.backend.base))
        .bearer_auth("admin-for-test")
        .json(&json!({
            "productName": "Only in the catalogue", "quantity": 3,
            "saleStart": "2026-01-01T00:00:00.000Z", "saleEnd": "2099-01-01T00:00:00.000Z",
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let (_, answer) = split.buy("cy").await;
    assert_eq!(split.paid(&tx_of(&answer)).await, 200);
    split.backend_reaches(3).await;
    // Saved (polled: the backend saves every 50 ms when messages came).
    let file = dir.path().join("catalogue.json");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !std::fs::read_to_string(&file)
        .is_ok_and(|s| s.contains("Only in the catalogue") && s.contains("\"cy\""))
    {
        assert!(tokio::time::Instant::now() < deadline, "never saved");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    split.backend.kill_9().await;
    split.backend = Server::start("backend", port, &env).await;
    let (_, sales) = split
        .call(
            reqwest::Method::GET,
            format!("{}/sales", split.backend.base),
            None,
        )
        .await;
    let names: Vec<&str> = sales
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["productName"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"Only in the catalogue"), "{names:?}");
    assert_eq!(split.backend_reaches(3).await, ["ana", "bo", "cy"]);
    let (_, answer) = split.buy("dee").await;
    assert_eq!(split.paid(&tx_of(&answer)).await, 200);
    assert_eq!(split.backend_reaches(2).await, ["ana", "bo", "cy", "dee"]);
    // One backend per data directory.
    let mut second = env.clone();
    second.push(("PORT", "0".to_owned()));
    let out = process::command("backend", &second).output().await.unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("in use"));
}

/// Buys `count` names one after another, paying two slots in three; a
/// request that meets a dead server is left unanswered and the run goes on.
async fn shopper(
    split: Arc<Split>,
    who: usize,
    count: usize,
    answered: Arc<watch::Sender<u32>>,
) -> Told {
    let mut told = Told::default();
    for i in 0..count {
        let name = format!("w{who}-{i}");
        let Ok((code, answer)) = split.try_buy(&name).await else {
            continue;
        };
        if code != 200 {
            continue;
        }
        answered.send_modify(|n| *n += 1);
        let tx = tx_of(&answer);
        told.bought.push((name, tx.clone()));
        if answer["state"] == "payment"
            && i % 3 != 0
            && let Ok(200) = split.try_paid(&tx).await
        {
            told.paid.push(tx);
        }
    }
    told
}

/// Every transaction's status, by id.
async fn statuses(split: &Split, txs: &[String]) -> BTreeMap<String, Value> {
    let mut all = BTreeMap::new();
    for tx in txs {
        all.insert(tx.clone(), split.status(tx).await);
    }
    all
}

/// Pays every slot until the backend shows the sale sold out.
async fn sell_out(split: &Split, txs: &[String], quantity: u64) -> Vec<String> {
    loop {
        let mut paid_any = false;
        for (tx, status) in statuses(split, txs).await {
            if status["state"] == "payment" {
                assert_eq!(split.paid(&tx).await, 200);
                paid_any = true;
            }
        }
        if !paid_any {
            break;
        }
    }
    let buyers = split.backend_reaches(0).await;
    assert_eq!(buyers.len() as u64, quantity, "sold exactly the quantity");
    buyers
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_service_killed_mid_run_comes_back_with_all_it_acknowledged() {
    const QUANTITY: u64 = 30;
    let split = Arc::new(Split::start(&shared_brokers(), QUANTITY, "kafka").await);
    let answered = Arc::new(watch::Sender::new(0));
    let shoppers: Vec<_> = (0..3)
        .map(|who| tokio::spawn(shopper(split.clone(), who, 30, answered.clone())))
        .collect();
    // kill -9 in the middle of the run, with requests in flight.
    answered.subscribe().wait_for(|n| *n >= 40).await.unwrap();
    split.crash_and_restart_transaction().await;
    let mut told = Vec::new();
    for s in shoppers {
        told.push(s.await.unwrap());
    }
    let all: Vec<String> = told
        .iter()
        .flat_map(|t| t.bought.iter().map(|(_, tx)| tx.clone()))
        .collect();
    let after = statuses(&split, &all).await;

    // No answered payment is lost; every answered buy is there, its buyer's.
    for t in &told {
        for tx in &t.paid {
            assert_eq!(after[tx]["state"], "paid", "{tx}");
        }
        for (name, tx) in &t.bought {
            assert_eq!(after[tx]["buyerName"], name.as_str());
            // …and nobody can join twice.
            let (code, answer) = split.buy(name).await;
            assert_eq!(code, 400, "{name} bought twice: {answer}");
        }
    }
    // The queue is whole (positions 1..n) and each shopper's buyers wait in
    // the order they joined.
    let mut positions: Vec<u64> = after
        .values()
        .filter_map(|s| s["position"].as_u64())
        .collect();
    positions.sort_unstable();
    assert!(!positions.is_empty(), "the run should leave buyers waiting");
    assert_eq!(positions, (1..=positions.len() as u64).collect::<Vec<_>>());
    for t in &told {
        let mine: Vec<u64> = t
            .bought
            .iter()
            .filter_map(|(_, tx)| after[tx]["position"].as_u64())
            .collect();
        assert!(mine.is_sorted(), "{mine:?}");
    }
    // The backend has each payment once (including any the crash kept from
    // being answered), and every buyer it lists paid.
    let paid = after.values().filter(|s| s["state"] == "paid").count() as u64;
    let buyers = split.backend_reaches(QUANTITY - paid).await;
    let unique: BTreeSet<&String> = buyers.iter().collect();
    assert_eq!(unique.len(), buyers.len(), "a buyer twice: {buyers:?}");
    assert!(buyers.len() as u64 >= paid);

    // A second kill -9, quiet this time: every transaction stands exactly
    // as it did, waiting order included.
    split.crash_and_restart_transaction().await;
    assert_eq!(statuses(&split, &all).await, after);

    // Selling the rest sells exactly the quantity, never more.
    let buyers = sell_out(&split, &all, QUANTITY).await;
    let unique: BTreeSet<&String> = buyers.iter().collect();
    assert_eq!(unique.len(), buyers.len());
    let (code, answer) = split.buy("late").await;
    assert_eq!(code, 400, "{answer}");
}

/// A tansu broker of this test's own, reached through a [`Proxy`]: it
/// advertises the proxy's address, so every client goes through it.
async fn broker_behind_proxy() -> (Child, Proxy, String) {
    let proxy_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let proxy_addr = proxy_listener.local_addr().unwrap().to_string();
    let broker_addr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().to_string()
    };
    let broker = tansu(
        std::path::Path::new("."),
        "memory://tansu/",
        &broker_addr,
        &proxy_addr,
    );
    until_listening(&broker_addr).await;
    let proxy = Proxy::start(proxy_listener, broker_addr).await;
    (broker, proxy, proxy_addr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_outage_delays_payments_but_loses_and_reorders_none() {
    const QUANTITY: u64 = 30;
    let (_broker, proxy, brokers) = broker_behind_proxy().await;
    // The journal stays in memory here: with the Kafka journal, answers
    // wait for the broker (nothing is acknowledged that is not durable).
    let split = Split::start(&brokers, QUANTITY, "memory").await;
    let (mut browser, _) = Client::connect(&split.backend.base, json!({})).await;
    let mut txs = Vec::new();
    for i in 0..QUANTITY {
        let (code, answer) = split.buy(&format!("b{i:02}")).await;
        assert_eq!((code, &answer["state"]), (200, &json!("payment")));
        txs.push(tx_of(&answer));
    }
    let names: Vec<String> = (0..QUANTITY).map(|i| format!("b{i:02}")).collect();

    for tx in &txs[..10] {
        assert_eq!(split.paid(tx).await, 200);
    }
    split.backend_reaches(20).await;

    // The broker goes away; payments go on and are answered at once.
    proxy.cut();
    for tx in &txs[10..20] {
        assert_eq!(split.paid(tx).await, 200);
    }
    assert_eq!(
        split.backend_view().await.0,
        20,
        "nothing can have crossed a cut link"
    );
    // Held down until the clients have tried, and failed, to reconnect a
    // few times.
    proxy
        .refused
        .subscribe()
        .wait_for(|n| *n >= 4)
        .await
        .unwrap();
    assert_eq!(split.backend_view().await.0, 20);
    proxy.restore();
    for tx in &txs[20..] {
        assert_eq!(split.paid(tx).await, 200);
    }

    // Every payment arrives once, in order, and the counts agree.
    let mut buyers = split.backend_reaches(0).await;
    buyers.sort();
    assert_eq!(buyers, names);
    // The browser hears them conflated (at most one each 100 ms): what it
    // hears is in payment order, and ends on the last.
    let mut heard = Vec::new();
    while heard.last().is_none_or(|(_, left)| *left > 0) {
        let update = browser.next("sale_update").await;
        heard.push((
            update["buyerName"].as_str().unwrap().to_owned(),
            update["remainingQty"].as_u64().unwrap(),
        ));
    }
    let expected: Vec<(String, u64)> = names
        .iter()
        .enumerate()
        .map(|(i, n)| (n.clone(), QUANTITY - 1 - i as u64))
        .collect();
    let mut rest = expected.iter();
    assert!(
        heard.iter().all(|h| rest.any(|e| e == h)),
        "not in payment order: {heard:?}"
    );
    assert_eq!(heard.last(), expected.last());
}

/// `/readyz` says whether the transaction service can commit: it fails
/// while its journal's broker is down, and a buy that cannot be journaled
/// answers 503 with `Retry-After` instead of hanging; `/healthz` stays up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_follows_the_journal_and_uncommittable_buys_answer_503() {
    let (_broker, proxy, brokers) = broker_behind_proxy().await;
    let split = Split::start_with(
        &brokers,
        5,
        "kafka",
        &[("COMMIT_TIMEOUT_MS", "1500".to_owned())],
    )
    .await;
    let get = |path: &'static str| {
        let (http, base) = (split.http.clone(), split.transaction_base.clone());
        async move {
            http.get(format!("{base}{path}"))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(get("/readyz").await, 200);
    assert_eq!(split.buy("ana").await.0, 200);

    proxy.cut();
    assert_eq!(get("/readyz").await, 503);
    assert_eq!(get("/healthz").await, 200);
    let answer = split
        .http
        .post(format!("{}/buy", split.transaction_base))
        .json(&json!({ "buyerName": "bob" }))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status().as_u16(), 503);
    assert!(answer.headers().contains_key("retry-after"));
    let body: Value = answer.json().await.unwrap();
    assert_eq!(body["code"], "unavailable");

    proxy.restore();
    // Ready again once the pending append went through (librdkafka
    // reconnects with a backoff of its own): polled, for at most a minute.
    let ready = tokio::time::timeout(Duration::from_secs(60), async {
        while get("/readyz").await != 200 {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    assert!(ready.is_ok(), "ready again once the broker is back");
    // bob's buy was taken, then journaled once the broker came back.
    let (code, body) = split.buy("bob").await;
    assert_eq!((code, &body["code"]), (400, &json!("already_joined")));
}

/// Two transaction services started for one 10-unit sale (a rolling
/// deploy, an operator's mistake): the second claims the sale's journal,
/// the first refuses from its next request and exits, and after a restart
/// at most 10 are sold, each acknowledged payment still paid.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_transaction_service_fences_the_first() {
    const QUANTITY: u64 = 10;
    let split = Split::start(&shared_brokers(), QUANTITY, "kafka").await;
    let mut acknowledged = Vec::new();
    for i in 0..4 {
        let (code, answer) = split.buy(&format!("first-{i}")).await;
        assert_eq!(code, 200, "{answer}");
        assert_eq!(split.paid(&tx_of(&answer)).await, 200);
        acknowledged.push(tx_of(&answer));
    }
    let second = Server::start("transaction", 0, &split.transaction_env).await;

    // The first one refuses from its next commit on (503), and exits.
    let (code, answer) = split.buy("first-late").await;
    assert_eq!(code, 503, "the fenced service answered {answer}");
    let mut first = split.transaction.lock().await;
    let exit = tokio::time::timeout(Duration::from_secs(30), first.child.wait())
        .await
        .expect("the fenced service exits")
        .unwrap();
    assert!(!exit.success());
    for i in 0..10 {
        assert!(split.try_buy(&format!("first-after-{i}")).await.is_err());
    }

    // The second sells what is left, and not one more.
    let http = reqwest::Client::new();
    let mut sold_by_second = 0;
    for i in 0..10 {
        if let Some(tx) = buy_and_pay(&http, &second.base, &format!("second-{i}")).await {
            sold_by_second += 1;
            acknowledged.push(tx);
        }
    }
    assert_eq!(sold_by_second, QUANTITY - 4);

    // Both restarted (the first on its port, the second gone for good):
    // every acknowledged payment is paid, and the backend has 10 buyers.
    drop(second);
    *first = Server::start("transaction", first.port(), &split.transaction_env).await;
    drop(first);
    for tx in &acknowledged {
        assert_eq!(split.status(tx).await["state"], "paid", "{tx}");
    }
    let buyers = split.backend_reaches(0).await;
    assert_eq!(buyers.len() as u64, QUANTITY, "{buyers:?}");
}

/// A hot standby beside the active transaction service: it answers
/// `/readyz` with 503 until the active one is killed (`kill -9`) in the
/// middle of a steady buy/pay load, then takes over; nothing acknowledged
/// is lost, nothing is oversold. Prints how long the sale was without a
/// server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standby_takes_over_when_the_active_service_is_killed() {
    const QUANTITY: u64 = 40;
    let lease = [("LEASE_MS", "1500".to_owned())];
    let split = Split::start_with(&shared_brokers(), QUANTITY, "kafka", &lease).await;
    let mut env = split.transaction_env.clone();
    env.extend(lease.iter().cloned());
    env.push(("STANDBY", "true".to_owned()));
    let standby = Server::start("transaction", 0, &env).await;
    let http = reqwest::Client::new();
    let ready = |base: String| {
        let http = http.clone();
        async move {
            http.get(format!("{base}/readyz"))
                .send()
                .await
                .map(|r| r.status().as_u16())
                .unwrap_or(0)
        }
    };
    assert_eq!(
        ready(standby.base.clone()).await,
        503,
        "a standby is not ready"
    );
    assert_eq!(ready(split.transaction_base.clone()).await, 200);
    // An idle active service is not taken for dead: its beats keep the
    // journal from falling silent (the scenario needs two leases of idling).
    tokio::time::sleep(Duration::from_millis(3_000)).await;
    assert_eq!(
        ready(standby.base.clone()).await,
        503,
        "took over a live service"
    );
    assert_eq!(ready(split.transaction_base.clone()).await, 200);

    // Steady load on the active one; it dies in the middle.
    let mut acknowledged = Vec::new();
    for i in 0..15 {
        let tx = buy_and_pay(&http, &split.transaction_base, &format!("before-{i}")).await;
        acknowledged.push(tx.unwrap());
    }
    split.transaction.lock().await.kill_9().await;
    let killed = tokio::time::Instant::now();
    // The load goes on against the standby (as a load balancer routing by
    // /readyz would send it): refused until it has taken over.
    let mut first_commit = None;
    let mut i = 0;
    while acknowledged.len() < 30 {
        i += 1;
        if let Some(tx) = buy_and_pay(&http, &standby.base, &format!("after-{i}")).await {
            first_commit.get_or_insert_with(|| killed.elapsed());
            acknowledged.push(tx);
        } else {
            assert!(
                killed.elapsed() < Duration::from_secs(60),
                "the standby never took over"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let first_commit = first_commit.unwrap();
    eprintln!("failover: the standby committed its first payment {first_commit:?} after the kill");
    assert_eq!(ready(standby.base.clone()).await, 200);

    // Exact: every acknowledged payment is paid, the backend has each once.
    for tx in &acknowledged {
        let (code, status) = split
            .call(
                reqwest::Method::GET,
                format!("{}/transactions/{tx}", standby.base),
                None,
            )
            .await;
        assert_eq!(
            (code, status["state"].as_str()),
            (200, Some("paid")),
            "{tx}"
        );
    }
    let buyers = split
        .backend_reaches(QUANTITY - acknowledged.len() as u64)
        .await;
    let unique: BTreeSet<&String> = buyers.iter().collect();
    assert_eq!(unique.len(), buyers.len(), "a buyer twice: {buyers:?}");
    assert_eq!(buyers.len(), acknowledged.len());
}

/// A tansu broker of this test's own, run in `dir`, listening on `listen`
/// and telling clients to connect to `advertise`.
fn tansu(dir: &std::path::Path, storage: &str, listen: &str, advertise: &str) -> Child {
    Command::new("tansu")
        .current_dir(dir)
        .args([
            "broker",
            "--storage-engine",
            storage,
            "--listener-url",
            &format!("tcp://{listen}"),
            "--advertised-listener-url",
            &format!("tcp://{advertise}"),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("tansu (with the libsql feature) is installed: scripts/test.sh installs it")
}

/// A broker that keeps its data on disk (SQLite, in `dir`), on `addr`:
/// stopped and started again, it has everything.
fn durable_broker(dir: &std::path::Path, addr: &str) -> Child {
    tansu(dir, "sqlite://tansu.db", addr, addr)
}

async fn until_listening(addr: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(addr).await.is_err() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "tansu did not start"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Every `paid` of `sale` on `topic`, in order (all partitions: the sale's
/// are on one).
fn paid_on_topic(brokers: &str, topic: &str, sale: &str) -> Vec<String> {
    use rdkafka::Message;
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let consumer: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", format!("{topic}-check"))
        .set("enable.partition.eof", "true")
        .set("fetch.wait.max.ms", "10")
        .create()
        .unwrap();
    let metadata = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .unwrap();
    let partitions = metadata.topics()[0].partitions().len();
    let mut list = rdkafka::TopicPartitionList::new();
    for p in 0..partitions {
        list.add_partition_offset(topic, p as i32, rdkafka::Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&list).unwrap();
    let (mut paid, mut ended) = (Vec::new(), 0);
    while ended < partitions {
        match consumer
            .poll(Duration::from_secs(30))
            .expect("a record or an end")
        {
            Err(rdkafka::error::KafkaError::PartitionEOF(_)) => ended += 1,
            Err(e) => panic!("{e}"),
            Ok(m) => {
                let v: Value = serde_json::from_slice(m.payload().unwrap()).unwrap();
                if v["saleId"] == sale && v["type"] == "paid" {
                    paid.push(v["transactionId"].as_str().unwrap().to_owned());
                }
            }
        }
    }
    paid
}

/// The broker really stops (its process is killed) and starts again on
/// its data, in the middle of payments journaled and published through it:
/// every payment acknowledged is on the topic once, in the order it was
/// acknowledged, and the backend counts each once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_restart_during_payments_loses_and_repeats_none() {
    const PAYMENTS: usize = 24;
    let dir = tempfile::tempdir().unwrap();
    let addr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().to_string()
    };
    let mut broker = durable_broker(dir.path(), &addr);
    until_listening(&addr).await;
    let quick = [("COMMIT_TIMEOUT_MS", "2000".to_owned())];
    let split = Split::start_with(&addr, 40, "kafka", &quick).await;
    let topic = split
        .transaction_env
        .iter()
        .find(|(k, _)| *k == "KAFKA_TOPIC")
        .unwrap()
        .1
        .clone();

    // One payer, in order: each buy and payment retried until answered
    // (within two minutes in all).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    let in_time = || {
        assert!(
            tokio::time::Instant::now() < deadline,
            "payments stuck across the broker's restart"
        );
    };
    let mut acknowledged = Vec::new();
    let mut name = 0;
    while acknowledged.len() < PAYMENTS {
        in_time();
        if acknowledged.len() == PAYMENTS / 3 && name < 1_000 {
            // Stop the broker for real, mid-run, and start it on its data.
            broker.start_kill().unwrap();
            broker.wait().await.unwrap();
            name = 1_000;
            let restart = {
                let (dir, addr) = (dir.path().to_owned(), addr.clone());
                async move {
                    tokio::time::sleep(Duration::from_secs(3)).await;
                    let broker = durable_broker(&dir, &addr);
                    until_listening(&addr).await;
                    broker
                }
            };
            let restarted = tokio::spawn(restart);
            // Payments go on meanwhile: they wait, or are refused (503)
            // and retried, until the broker is back.
            let tx = loop {
                in_time();
                name += 1;
                match split.try_buy(&format!("during-{name}")).await {
                    Ok((200, answer)) => break tx_of(&answer),
                    _ => continue,
                }
            };
            while split.try_paid(&tx).await.ok() != Some(200) {
                in_time();
            }
            acknowledged.push(tx);
            broker = restarted.await.unwrap();
            continue;
        }
        name += 1;
        let tx = match split.try_buy(&format!("buyer-{name}")).await {
            Ok((200, answer)) => tx_of(&answer),
            _ => continue,
        };
        while split.try_paid(&tx).await.ok() != Some(200) {
            in_time();
        }
        acknowledged.push(tx);
    }

    let buyers = split.backend_reaches(40 - PAYMENTS as u64).await;
    let unique: BTreeSet<&String> = buyers.iter().collect();
    assert_eq!(unique.len(), PAYMENTS, "{buyers:?}");
    let on_topic = {
        let (addr, topic, sale) = (addr.clone(), topic.clone(), split.sale.clone());
        tokio::task::spawn_blocking(move || paid_on_topic(&addr, &topic, &sale))
            .await
            .unwrap()
    };
    assert_eq!(on_topic, acknowledged, "every paid, once, in order");
    drop(broker);
}
