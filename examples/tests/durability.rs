//! The all-in-one server's on-disk journal, as an operator meets it: killed
//! with `kill -9` in the middle of a crowd buying and paying, then started
//! again on the same data directory. Everything it answered must still be
//! there; nothing may be sold twice.
#![allow(clippy::unwrap_used, reason = "a test fails at the first surprise")]

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::{Value, json};
use tokio::sync::Notify;

mod process;

const UNITS: u64 = 40;
const BUYERS: usize = 240;
/// Buyers who join before the crowd: a holder for every unit, and some
/// waiting.
const EARLY: usize = 50;
/// The server dies once this many payments were accepted, with more buys
/// and payments in flight.
const KILL_AFTER_PAYMENTS: usize = 12;

async fn start(dir: &std::path::Path, extra: &[(&str, &str)]) -> (tokio::process::Child, String) {
    let data = dir.to_str().unwrap();
    let mut env = vec![
        ("IN_MEMORY", "false"),
        ("DATA_DIR", data),
        ("SALE_QTY", "40"),
    ];
    env.extend_from_slice(extra);
    let (child, addr) = process::start("flashsale", &env).await;
    (child, format!("http://{addr}"))
}

/// What the server answered before it died.
#[derive(Debug, Default)]
struct Answered {
    /// Transaction → (token, state answered by /buy).
    buys: HashMap<String, (String, String)>,
    /// Transactions whose payment was accepted.
    paid: HashSet<String>,
}

/// Buyer `i` buys; what was answered is recorded.
async fn buy(
    client: &reqwest::Client,
    base: &str,
    answered: &std::sync::Mutex<Answered>,
    i: usize,
) -> Option<(String, String)> {
    let name = json!({"buyerName": format!("buyer-{i}")});
    let buy = post(client, format!("{base}/buy"), name).await?;
    let tx = buy["transactionId"].as_str().unwrap().to_owned();
    let state = buy["state"].as_str().unwrap().to_owned();
    let token = buy["buyerToken"].as_str().unwrap().to_owned();
    answered
        .lock()
        .unwrap()
        .buys
        .insert(tx.clone(), (token, state.clone()));
    Some((tx, state))
}

/// `GET /transactions/{tx}` as its holder.
/// A transaction's status, less its `estimatedAt`: the estimate comes from
/// the promotion rate the running server measured, unknown after a restart.
async fn status(client: &reqwest::Client, base: &str, tx: &str, token: &str) -> Value {
    let mut status = get(client
        .get(format!("{base}/transactions/{tx}"))
        .bearer_auth(token))
    .await;
    if let Some(fields) = status.as_object_mut() {
        fields.remove("estimatedAt");
    }
    status
}

/// The JSON answer to a GET.
async fn get(request: reqwest::RequestBuilder) -> Value {
    request.send().await.unwrap().json().await.unwrap()
}

async fn post(client: &reqwest::Client, url: String, body: Value) -> Option<Value> {
    let r = client.post(url).json(&body).send().await.ok()?;
    if !r.status().is_success() {
        return None;
    }
    r.json().await.ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_under_load_loses_nothing_that_was_answered() {
    kill_9_under_load(&[]).await;
}

/// A sale whose journal has been replaced by a snapshot (a queue behind two
/// slots, paid in order: a history of about three events a buyer), killed
/// and restarted: every transaction stands exactly as it did.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshotted_journal_survives_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let extra = [("SNAPSHOT_AFTER", "20"), ("MAX_PAYMENT_SLOTS", "2")];
    let (mut server, base) = start(dir.path(), &extra).await;
    let client = reqwest::Client::new();
    let answered = std::sync::Mutex::new(Answered::default());
    let mut txs = Vec::new();
    for i in 0..40 {
        txs.push(buy(&client, &base, &answered, i).await.unwrap().0);
    }
    for tx in &txs[..30] {
        let pay = json!({"transactionId": tx, "quantity": 1});
        let r = post(&client, format!("{base}/pay"), pay).await.unwrap();
        assert_eq!(r["success"], json!(true));
    }
    let answered = answered.into_inner().unwrap();
    let statuses = |base: String| {
        let (client, answered) = (client.clone(), &answered);
        async move {
            let mut all = BTreeMap::new();
            for (tx, (token, _)) in &answered.buys {
                all.insert(tx.clone(), status(&client, &base, tx, token).await);
            }
            all
        }
    };
    let before = statuses(base.clone()).await;
    server.start_kill().unwrap();
    server.wait().await.unwrap();
    let (_server, base) = start(dir.path(), &extra).await;
    assert_eq!(statuses(base.clone()).await, before);
    let sales: Value = get(client.get(format!("{base}/sales"))).await;
    assert_eq!(sales[0]["productQty"], json!(UNITS - 30));
}

async fn kill_9_under_load(extra: &[(&str, &str)]) {
    let dir = tempfile::tempdir().unwrap();
    let (mut server, base) = start(dir.path(), extra).await;
    let client = reqwest::Client::new();
    let answered = Arc::new(std::sync::Mutex::new(Answered::default()));
    let payments = Arc::new(AtomicUsize::new(0));
    let enough = Arc::new(Notify::new());

    // First every unit gets a holder and a few buyers wait; then, at once,
    // the holders pay while a crowd joins the queue.
    let mut holders = Vec::new();
    for i in 0..EARLY {
        let (tx, state) = buy(&client, &base, &answered, i).await.unwrap();
        if state == "payment" {
            holders.push(tx);
        }
    }
    let mut crowd = tokio::task::JoinSet::new();
    for (n, tx) in holders.into_iter().enumerate() {
        if n % 3 == 0 {
            continue; // a third never pay
        }
        let (client, base, answered, payments, enough) = (
            client.clone(),
            base.clone(),
            answered.clone(),
            payments.clone(),
            enough.clone(),
        );
        crowd.spawn(async move {
            let pay = json!({"transactionId": tx, "quantity": 1});
            if let Some(r) = post(&client, format!("{base}/pay"), pay).await
                && r["success"] == json!(true)
            {
                answered.lock().unwrap().paid.insert(tx);
                if payments.fetch_add(1, Ordering::SeqCst) + 1 == KILL_AFTER_PAYMENTS {
                    enough.notify_one();
                }
            }
        });
    }
    for i in EARLY..BUYERS {
        let (client, base, answered) = (client.clone(), base.clone(), answered.clone());
        crowd.spawn(async move {
            buy(&client, &base, &answered, i).await;
        });
    }
    enough.notified().await;
    server.start_kill().unwrap(); // SIGKILL: no shutdown, no flush
    server.wait().await.unwrap();
    while crowd.join_next().await.is_some() {}
    let answered = std::mem::take(&mut *answered.lock().unwrap());
    assert!(answered.paid.len() >= KILL_AFTER_PAYMENTS);

    let (_server, base) = start(dir.path(), extra).await;
    let sales: Value = get(client.get(format!("{base}/sales"))).await;
    let sales = sales.as_array().unwrap();
    assert_eq!(
        sales.len(),
        1,
        "the same sale carries on, no second demo sale"
    );
    let sale = sales[0]["id"].as_str().unwrap();
    let buyers: Value = get(client.get(format!("{base}/sales/{sale}/buyers"))).await;
    let buyers: Vec<&str> = buyers
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["id"].as_str().unwrap())
        .collect();
    let remaining = sales[0]["productQty"].as_u64().unwrap();
    assert_eq!(
        UNITS - remaining,
        buyers.len() as u64,
        "the catalogue's figure is its buyers"
    );
    let unique: HashSet<&str> = buyers.iter().copied().collect();
    assert_eq!(unique.len(), buyers.len(), "no buyer twice");

    let mut sold = 0;
    let mut waiting = Vec::new();
    for (tx, (token, first)) in &answered.buys {
        let status = status(&client, &base, tx, token).await;
        let now = status["state"]
            .as_str()
            .unwrap_or_else(|| panic!("{tx} is gone: {status}"));
        // The same transaction, in the same or a later state.
        let allowed: &[&str] = match first.as_str() {
            "payment" => &["payment", "paid", "expired"],
            _ => &["waiting", "payment", "paid", "expired", "rejected_sold_out"],
        };
        assert!(allowed.contains(&now), "{tx}: answered {first}, now {now}");
        if answered.paid.contains(tx) {
            assert_eq!(now, "paid", "{tx}: an accepted payment survives");
        }
        if now == "paid" {
            sold += 1;
            assert!(
                unique.contains(tx.as_str()),
                "{tx} paid but not a catalogue buyer"
            );
        }
        if now == "waiting" {
            waiting.push((status["position"].as_u64().unwrap(), tx.clone()));
        }
    }
    assert!(sold >= answered.paid.len());
    assert!(
        sold <= buyers.len(),
        "every paid transaction we know of is a buyer"
    );
    // The queue keeps its order: positions ascend in join order (a
    // transaction's number in its sale).
    assert!(
        waiting.len() >= EARLY - UNITS as usize,
        "the early queue is still there"
    );
    waiting.sort();
    let by_position: Vec<&String> = waiting.iter().map(|(_, tx)| tx).collect();
    let mut by_join = by_position.clone();
    by_join.sort();
    assert_eq!(by_position, by_join, "the waiting order is kept");

    // And it takes new buyers where it left off.
    let late = post(&client, format!("{base}/buy"), json!({"buyerName": "late"}))
        .await
        .unwrap();
    assert!(
        !answered
            .buys
            .contains_key(late["transactionId"].as_str().unwrap())
    );
}
