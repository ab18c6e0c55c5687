//! A crowd of live buyers: thousands of Socket.IO websocket clients, each a
//! waiting buyer in its sale's and its transaction's rooms, while payments
//! go through at a steady rate.
//!
//! 1. `--clients` buyers join behind enough others (the *front*, bought
//!    first, one at a time so their order is known) to be paid for during
//!    the whole run.
//! 2. Each crowd buyer opens a websocket (Engine.IO 4, as socket.io-client
//!    v4 does) from one of `--addresses` loopback addresses (127.0.0.2, …:
//!    the server admits at most 256 live connections per address) and joins
//!    its sale's and its transaction's rooms with its buyer token.
//! 3. The front is paid through `POST /pay` at `--pay-rate` a second for
//!    `--duration-s`, in queue order; every payment moves everyone's position.
//! 4. After the queue settles, each client's last pushed `queue_position`
//!    is compared with `GET /transactions/{id}`, and its last `sale_update`
//!    with the catalogue's `productQty`.
//! 5. With `--admin-token`, the sale is ended as its operator would, and
//!    every client must hear `queue_closed` and `sale_ended`.
//!
//! Reported: how stale each client's remaining quantity was (for each
//! accepted payment, from when it was sent to when the client first showed
//! that quantity or less: an upper bound, it includes the payment's own
//! answer time), messages per client per second, clients the server
//! disconnected, the server's CPU and its memory per connection (`VmRSS`
//! before and after the crowd connected, with `--server-pid`), and the
//! generator's own CPU. Exits 1 when a client was disconnected, ended on a
//! wrong position or quantity, or did not hear the end.
//!
//! ```text
//! ulimit -n 65536
//! flashsale-crowd --url http://127.0.0.1:3000 --clients 10000 --pay-rate 1000 \
//!     --duration-s 20 --server-pid 1234
//! ```
//! The server needs a sale with limited payment slots (`MAX_PAYMENT_SLOTS`)
//! so that buyers wait, enough stock for front and crowd, and
//! `MAX_CONNECTIONS` and its own file limit above the crowd
//! (`scripts/crowd.sh` sets all of it up).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clap::Parser;
use flashsale_load::{Http, Latencies, Process, lock};
use futures_util::{SinkExt, StreamExt, stream};
use serde_json::Value;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

/// A crowd of live waiting buyers against a flashsale server.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// The server (the all-in-one flashsale server).
    #[arg(long, env = "URL", default_value = "http://127.0.0.1:3000")]
    url: String,
    /// The sale (default: the first listed).
    #[arg(long)]
    sale: Option<String>,
    /// Connected waiting buyers.
    #[arg(long, default_value_t = 1_000)]
    clients: usize,
    /// Payments a second.
    #[arg(long, default_value_t = 1_000)]
    pay_rate: u64,
    /// How long payments go on, in seconds.
    #[arg(long, default_value_t = 20.0)]
    duration_s: f64,
    /// Buyers in front beyond those paid for: more than the sale's payment
    /// slots, so that the crowd only waits.
    #[arg(long, default_value_t = 1_000)]
    front_extra: usize,
    /// Loopback source addresses, 127.0.0.2 onwards (default: one per 200
    /// clients).
    #[arg(long)]
    addresses: Option<usize>,
    /// The operator's token: with it, the sale is ended at the end of the
    /// run and every client must hear it.
    #[arg(long, env = "ADMIN_TOKEN", hide_env_values = true)]
    admin_token: Option<String>,
    /// The server's process id, for its CPU and memory.
    #[arg(long)]
    server_pid: Option<u32>,
    /// HTTP connections for buys, payments and status checks.
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// The generator's worker threads.
    #[arg(long, default_value_t = 2)]
    threads: usize,
}

/// What one client saw.
#[derive(Default)]
struct Seen {
    /// Its sale's `sale_update`s: when, and the remaining quantity.
    updates: Vec<(Instant, u64)>,
    /// The last `queue_position` pushed to it.
    position: Option<u64>,
    /// Why the connection ended, if it did.
    closed: Option<String>,
    /// Events received, by name.
    events: Vec<(String, u64)>,
}

struct Client {
    tx: String,
    token: String,
    seen: Mutex<Seen>,
    messages: AtomicU64,
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    match flashsale_load::block_on(args.threads, run(args)) {
        Ok(true) => std::process::ExitCode::SUCCESS,
        Ok(false) => std::process::ExitCode::FAILURE,
        Err(e) => {
            eprintln!("flashsale-crowd: {e}");
            std::process::ExitCode::from(2)
        }
    }
}

/// `body`'s JSON, or what went wrong.
fn json(
    answer: Result<(hyper::StatusCode, bytes::Bytes), flashsale_load::HttpError>,
    what: &str,
) -> Result<Value, String> {
    match answer {
        Ok((status, body)) if status.is_success() => {
            serde_json::from_slice(&body).map_err(|e| format!("{what}: {e}"))
        }
        Ok((status, body)) => Err(format!(
            "{what}: {status} {}",
            String::from_utf8_lossy(&body)
        )),
        Err(e) => Err(format!("{what}: {e}")),
    }
}

async fn run(args: Args) -> Result<bool, String> {
    let base = args.url.trim_end_matches('/').to_owned();
    let server: SocketAddr = base
        .strip_prefix("http://")
        .and_then(|a| a.parse().ok())
        .ok_or("--url must be http://<ip>:<port>")?;
    let http = Http::new(args.connections, Duration::from_secs(30));
    let sale = match &args.sale {
        Some(sale) => sale.clone(),
        None => json(http.get(&format!("{base}/sales"), None).await, "GET /sales")?[0]["id"]
            .as_str()
            .ok_or("no sale listed")?
            .to_owned(),
    };
    let remaining = async || -> Result<u64, String> {
        json(
            http.get(&format!("{base}/sales/{sale}"), None).await,
            "GET /sales/{id}",
        )?["productQty"]
            .as_u64()
            .ok_or_else(|| "no productQty".to_owned())
    };
    let buy = async |name: String| -> Result<Value, String> {
        json(
            http.post(
                &format!("{base}/sales/{sale}/buy"),
                format!("{{\"buyerName\":\"{name}\"}}"),
            )
            .await,
            "POST /buy",
        )
    };

    // The front, in queue order.
    let run_id = getrandom::u32().unwrap_or(0);
    let payments = (args.pay_rate as f64 * args.duration_s).ceil() as usize;
    // More than the sale's payment slots beyond those paid for, so that
    // nobody in the crowd is given a slot.
    let mut front = Vec::with_capacity(payments + args.front_extra);
    for n in 0..payments + args.front_extra {
        let answer = buy(format!("front-{run_id:x}-{n}")).await?;
        front.push(
            answer["transactionId"]
                .as_str()
                .ok_or("no transactionId")?
                .to_owned(),
        );
    }
    println!(
        "{} buyers in front, to be paid at {}/s",
        front.len(),
        args.pay_rate
    );

    // The crowd: buys, then connections.
    let names: Vec<String> = (0..args.clients)
        .map(|n| format!("crowd-{run_id:x}-{n}"))
        .collect();
    let bought: Vec<Result<Value, String>> = stream::iter(names)
        .map(buy)
        .buffered(args.connections)
        .collect()
        .await;
    let mut clients = Vec::with_capacity(args.clients);
    for answer in bought {
        let answer = answer?;
        if answer["state"] != "waiting" {
            return Err(format!(
                "a crowd buyer did not wait (too few in front, or no slot limit): {answer}"
            ));
        }
        clients.push(Arc::new(Client {
            tx: answer["transactionId"]
                .as_str()
                .ok_or("no transactionId")?
                .to_owned(),
            token: answer["buyerToken"]
                .as_str()
                .ok_or("no buyerToken")?
                .to_owned(),
            seen: Mutex::default(),
            messages: AtomicU64::new(0),
        }));
    }
    let server_process = args.server_pid.map(Process::pid);
    let me = Process::me();
    let rss = |p: Option<Process>| p.and_then(|p| p.memory_kib("VmRSS"));
    let (server_rss0, my_rss0) = (rss(server_process), rss(Some(me)));

    let addresses = args.addresses.unwrap_or(args.clients.div_ceil(200)).max(1);
    let connect_started = Instant::now();
    let connected: Vec<Result<(), String>> = stream::iter(clients.iter().enumerate())
        .map(|(n, client)| {
            let first = u32::from(Ipv4Addr::new(127, 0, 0, 2));
            let local = Ipv4Addr::from(first + (n % addresses) as u32);
            connect(server, IpAddr::V4(local), sale.clone(), client.clone())
        })
        .buffer_unordered(256)
        .collect()
        .await;
    if let Some(Err(e)) = connected.iter().find(|c| c.is_err()) {
        let failed = connected.iter().filter(|c| c.is_err()).count();
        return Err(format!(
            "{failed} of {} clients could not connect, e.g.: {e}",
            args.clients
        ));
    }
    println!(
        "{} clients connected from {addresses} addresses in {:.1} s",
        args.clients,
        connect_started.elapsed().as_secs_f64()
    );
    // Let the first pushes of everyone's position arrive.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (server_rss1, my_rss1) = (rss(server_process), rss(Some(me)));

    // Payments at a steady rate, in queue order.
    let quantity_before = remaining().await?;
    let messages0: u64 = clients
        .iter()
        .map(|c| c.messages.load(Ordering::Relaxed))
        .sum();
    let (server_cpu0, my_cpu0) = (
        server_process.and_then(|p| p.cpu_seconds()),
        me.cpu_seconds(),
    );
    let sent = Arc::new(Mutex::new(Vec::<(Instant, bool)>::with_capacity(
        front.len(),
    )));
    let started = Instant::now();
    let every = Duration::from_secs_f64(1.0 / args.pay_rate.max(1) as f64);
    let mut paying = tokio::task::JoinSet::new();
    for (n, tx) in front.into_iter().take(payments).enumerate() {
        let due = started + every.mul_f64(n as f64);
        tokio::time::sleep_until(due).await;
        let (http, url, sent) = (http.clone(), format!("{base}/pay"), sent.clone());
        paying.spawn(async move {
            let at = Instant::now();
            let answer = http
                .post(
                    &url,
                    format!("{{\"transactionId\":\"{tx}\",\"quantity\":1}}"),
                )
                .await;
            let ok = matches!(answer, Ok((status, _)) if status.is_success());
            lock(&sent).push((at, ok));
        });
    }
    while paying.join_next().await.is_some() {}
    let window = started.elapsed().as_secs_f64();
    let messages1: u64 = clients
        .iter()
        .map(|c| c.messages.load(Ordering::Relaxed))
        .sum();
    let server_cpu = server_process
        .and_then(|p| p.cpu_seconds())
        .zip(server_cpu0)
        .map(|(b, a)| b - a);
    let my_cpu = me.cpu_seconds().zip(my_cpu0).map(|(b, a)| b - a);

    // Settle: pushes come at most once a second, updates every 100 ms.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let quantity_after = remaining().await?;
    let exact: Vec<Result<Option<u64>, String>> = stream::iter(clients.iter())
        .map(|c| {
            let (http, url) = (http.clone(), format!("{base}/transactions/{}", c.tx));
            async move {
                Ok(json(
                    http.get(&url, Some(&c.token)).await,
                    "GET /transactions/{id}",
                )?["position"]
                    .as_u64())
            }
        })
        .buffered(args.connections)
        .collect()
        .await;

    // What the clients saw.
    let exact: Vec<Option<u64>> = exact.into_iter().collect::<Result<_, _>>()?;
    let mut accepted: Vec<Instant> = lock(&sent)
        .iter()
        .filter(|(_, ok)| *ok)
        .map(|(at, _)| *at)
        .collect();
    accepted.sort();
    let refused = lock(&sent).len() - accepted.len();
    let Verdict {
        staleness: all,
        worst_client_p99,
        wrong_position,
        wrong_quantity,
        disconnected,
        never_reached,
        example,
    } = judge(&clients, &exact, &accepted, quantity_before, quantity_after);

    let mut events = std::collections::BTreeMap::<String, u64>::new();
    for client in &clients {
        for (name, count) in &lock(&client.seen).events {
            *events.entry(name.clone()).or_default() += count;
        }
    }
    let n = args.clients as f64;
    println!(
        "payments: {} accepted, {refused} refused, over {window:.1} s ({:.0}/s); remaining {quantity_before} -> {quantity_after}",
        accepted.len(),
        accepted.len() as f64 / window
    );
    println!(
        "staleness of remainingQty (payment sent -> client shows it): {}",
        all.line()
    );
    println!(
        "  worst client's p99: {worst_client_p99:.2}ms; payments a client never caught up with: {never_reached}"
    );
    println!(
        "messages: {:.1} a client a second ({} in all during payments)",
        (messages1 - messages0) as f64 / n / window,
        messages1 - messages0
    );
    let by_name: Vec<String> = events
        .iter()
        .map(|(name, count)| format!("{name} {:.1}", *count as f64 / n))
        .collect();
    println!("  events a client, whole run: {}", by_name.join(", "));
    println!(
        "positions: {wrong_position} of {} clients not on their exact position at the end",
        args.clients
    );
    if let Some(example) = example {
        println!("  e.g. {example}");
    }
    println!(
        "final quantity: {wrong_quantity} clients did not end on the catalogue's {quantity_after}"
    );
    println!("disconnected by the server: {disconnected}");
    if let (Some(a), Some(b)) = (server_rss0, server_rss1) {
        println!(
            "server memory: {} MiB before the crowd, {} MiB with it: {:.1} KiB a connection",
            a / 1024,
            b / 1024,
            b.saturating_sub(a) as f64 / n
        );
    }
    if let Some(cpu) = server_cpu {
        println!(
            "server CPU during payments: {cpu:.1} s ({:.0}% of one core)",
            100.0 * cpu / window
        );
    }
    if let (Some(cpu), Some(a), Some(b)) = (my_cpu, my_rss0, my_rss1) {
        println!(
            "generator: CPU {cpu:.1} s ({:.0}% of one core), {:.1} KiB a connection",
            100.0 * cpu / window,
            b.saturating_sub(a) as f64 / n
        );
    }
    let ended = match &args.admin_token {
        Some(token) => end_sale(&http, &base, &sale, token, &clients).await?,
        None => true,
    };
    Ok(disconnected == 0 && wrong_position == 0 && wrong_quantity == 0 && ended)
}

/// What the clients saw, against the truth.
#[derive(Default)]
struct Verdict {
    /// For each client and accepted payment, from when the payment was
    /// sent to when the client first showed that quantity or less.
    staleness: Latencies,
    /// The largest of the clients' own p99 staleness, in ms.
    worst_client_p99: f64,
    /// Clients whose last pushed position is not their exact one.
    wrong_position: usize,
    /// Clients whose last `remainingQty` is not the catalogue's.
    wrong_quantity: usize,
    /// Clients whose connection ended.
    disconnected: usize,
    /// (client, payment) pairs the client never showed.
    never_reached: u64,
    /// One wrong position, told.
    example: Option<String>,
}

/// Judges each client against `exact` (its position now, in order),
/// `accepted` (when each accepted payment was sent, sorted: the k-th took
/// the stock from `before - k + 1` to `before - k`) and `after` (the
/// catalogue's quantity now).
fn judge(
    clients: &[Arc<Client>],
    exact: &[Option<u64>],
    accepted: &[Instant],
    before: u64,
    after: u64,
) -> Verdict {
    let mut verdict = Verdict::default();
    for (client, &exact) in clients.iter().zip(exact) {
        let seen = lock(&client.seen);
        if seen.closed.is_some() {
            verdict.disconnected += 1;
        }
        if seen.position != exact {
            verdict.wrong_position += 1;
            verdict.example.get_or_insert(format!(
                "{} shows position {:?}, is at {exact:?}",
                client.tx, seen.position
            ));
        }
        if seen.updates.last().map(|u| u.1) != Some(after) {
            verdict.wrong_quantity += 1;
        }
        // Quantities only go down: the first update showing each level is
        // found in one pass.
        let mut mine = Latencies::default();
        let mut j = 0;
        for (k, &paid_at) in accepted.iter().enumerate() {
            let level = before.saturating_sub(k as u64 + 1);
            while j < seen.updates.len() && seen.updates[j].1 > level {
                j += 1;
            }
            match seen.updates.get(j) {
                Some(&(at, _)) => mine.record(at.saturating_duration_since(paid_at)),
                None => verdict.never_reached += 1,
            }
        }
        verdict.staleness.add(&mine);
        verdict.worst_client_p99 = verdict.worst_client_p99.max(mine.ms(0.99));
    }
    verdict
}

/// Ends the sale as its operator and waits (up to 10 s) until every client
/// has heard that its wait is over (`queue_closed` in its transaction's
/// room) and that the sale ended (`sale_ended`, to everyone); whether all
/// did.
async fn end_sale(
    http: &Http,
    base: &str,
    sale: &str,
    token: &str,
    clients: &[Arc<Client>],
) -> Result<bool, String> {
    let asked = Instant::now();
    let url = format!("{base}/sales/{sale}/end");
    json(
        http.post_as(&url, "{}".to_owned(), Some(token)).await,
        "POST /sales/{id}/end",
    )?;
    let heard = |name: &str| {
        clients
            .iter()
            .filter(|c| lock(&c.seen).events.iter().any(|(n, _)| n == name))
            .count()
    };
    let all = clients.len();
    while (heard("queue_closed") < all || heard("sale_ended") < all)
        && asked.elapsed() < Duration::from_secs(10)
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (closed, ended) = (heard("queue_closed"), heard("sale_ended"));
    println!(
        "sale ended by its operator: {closed} of {all} clients heard queue_closed, {ended} heard sale_ended, within {:.2} s",
        asked.elapsed().as_secs_f64()
    );
    Ok(closed == all && ended == all)
}

type Ws = tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>;

/// Connects `client` from `local`, joins its rooms and starts reading.
async fn connect(
    server: SocketAddr,
    local: IpAddr,
    sale: String,
    client: Arc<Client>,
) -> Result<(), String> {
    let socket = tokio::net::TcpSocket::new_v4().map_err(|e| e.to_string())?;
    socket
        .bind(SocketAddr::new(local, 0))
        .map_err(|e| format!("bind {local}: {e}"))?;
    let stream = step("TCP connect", socket.connect(server))
        .await?
        .map_err(|e| format!("connect from {local}: {e}"))?;
    stream.set_nodelay(true).map_err(|e| e.to_string())?;
    let url = format!("ws://{server}/socket.io/?EIO=4&transport=websocket");
    // Small buffers: the messages are small, and there are many clients.
    let config = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0);
    let upgrade = tokio_tungstenite::client_async_with_config(url, stream, Some(config));
    let (mut ws, _) = step("websocket upgrade", upgrade)
        .await?
        .map_err(|e| format!("websocket: {e}"))?;
    let open = step("Engine.IO open", next_text(&mut ws)).await??;
    if !open.starts_with("0{") {
        return Err(format!("not an Engine.IO open packet: {open}"));
    }
    ws.send(Message::text("40"))
        .await
        .map_err(|e| e.to_string())?;
    let connected = step("Socket.IO connect", next_text(&mut ws)).await??;
    if !connected.starts_with("40") {
        return Err(format!("not a Socket.IO connect: {connected}"));
    }
    let join = serde_json::json!(["join", {
        "saleId": sale, "transactionId": client.tx, "buyerToken": client.token
    }]);
    ws.send(Message::text(format!("420{join}")))
        .await
        .map_err(|e| e.to_string())?;
    loop {
        let m = step("join", next_text(&mut ws)).await??;
        if let Some(rooms) = m.strip_prefix("430") {
            if !rooms.contains("tx:") {
                return Err(format!("the transaction's room was not joined: {rooms}"));
            }
            break;
        }
        handle(&mut ws, &m, &sale, &client).await;
    }
    tokio::spawn(async move {
        let closed = loop {
            match ws.next().await {
                Some(Ok(Message::Text(m))) => handle(&mut ws, &m, &sale, &client).await,
                Some(Ok(Message::Close(frame))) => break format!("closed: {frame:?}"),
                Some(Ok(_)) => {}
                Some(Err(e)) => break e.to_string(),
                None => break "ended".to_owned(),
            }
        };
        lock(&client.seen).closed = Some(closed);
    });
    Ok(())
}

/// `f`'s outcome, or an error naming `what` if it takes over 20 s.
async fn step<T>(what: &str, f: impl Future<Output = T>) -> Result<T, String> {
    tokio::time::timeout(Duration::from_secs(20), f)
        .await
        .map_err(|_| format!("{what}: no answer within 20 s"))
}

/// The next text message, answering pings on the way.
async fn next_text(ws: &mut Ws) -> Result<String, String> {
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(m))) if m.as_str() == "2" => {
                ws.send(Message::text("3"))
                    .await
                    .map_err(|e| e.to_string())?;
            }
            Some(Ok(Message::Text(m))) => return Ok(m.to_string()),
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(e.to_string()),
            None => return Err("closed".to_owned()),
        }
    }
}

/// What a client reads of an event's data (borrowed: no allocation).
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct EventData<'a> {
    sale_id: Option<&'a str>,
    remaining_qty: Option<u64>,
    position: Option<u64>,
}

/// One Engine.IO packet: a ping is answered, an event recorded.
async fn handle(ws: &mut Ws, m: &str, sale: &str, client: &Client) {
    if m == "2" {
        let _ = ws.send(Message::text("3")).await;
        return;
    }
    client.messages.fetch_add(1, Ordering::Relaxed);
    let Some(event) = m.strip_prefix("42") else {
        return;
    };
    let Ok((name, data)) = serde_json::from_str::<(&str, EventData<'_>)>(event) else {
        return;
    };
    let mut seen = lock(&client.seen);
    match seen.events.iter_mut().find(|(n, _)| n == name) {
        Some((_, count)) => *count += 1,
        None => seen.events.push((name.to_owned(), 1)),
    }
    match name {
        "sale_update" if data.sale_id == Some(sale) => {
            if let Some(left) = data.remaining_qty {
                seen.updates.push((Instant::now(), left));
            }
        }
        "queue_position" => seen.position = data.position,
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(updates: Vec<(Instant, u64)>, position: Option<u64>) -> Arc<Client> {
        Arc::new(Client {
            tx: "tx".to_owned(),
            token: String::new(),
            seen: Mutex::new(Seen {
                updates,
                position,
                ..Seen::default()
            }),
            messages: AtomicU64::new(0),
        })
    }

    /// Three payments take 10 units to 7; one client sees 9 then 7 (so 8
    /// through its 7), another stops at 8 and is on the wrong position.
    #[test]
    fn staleness_runs_from_each_payment_to_the_first_update_that_shows_it() {
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        let accepted = [ms(0), ms(10), ms(100)];
        let good = client(vec![(ms(50), 9), (ms(150), 7)], Some(3));
        let late = client(vec![(ms(60), 8)], Some(4));
        let verdict = judge(&[good, late], &[Some(3), Some(3)], &accepted, 10, 7);
        // good: 9 at 50 (50 ms), 8 and 7 at 150 (140 and 50 ms);
        // late: 9 and 8 at 60 (60 and 50 ms), never 7.
        assert_eq!(verdict.staleness.count(), 5);
        assert!((verdict.staleness.max_ms() - 140.0).abs() < 0.5);
        assert!((verdict.staleness.ms(0.5) - 50.0).abs() < 0.5);
        assert_eq!(verdict.never_reached, 1);
        assert_eq!(verdict.wrong_quantity, 1);
        assert_eq!(verdict.wrong_position, 1);
        assert_eq!(verdict.disconnected, 0);
        assert!((verdict.worst_client_p99 - 140.0).abs() < 0.5);
    }
}
