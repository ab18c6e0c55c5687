//! Live events with the reference's own client: socket.io-client v4 on
//! Node, websocket transport (`tests/socketio-client`, installed by
//! `scripts/test.sh` with `npm ci`), against a real server on a free port.
//! Time is a manual clock: sale start, slot expiry and sale end happen when
//! the test moves it.
#![allow(clippy::unwrap_used, reason = "a test fails at the first surprise")]

use std::time::Duration;

use flashsale_core::NewSale;
use flashsale_core::testkit::ManualClock;
use flashsale_http::InProcess;
use serde_json::{Value, json};

mod common;
use common::socketio::Client;
use common::{T0, manual_stack, serve};

/// The buyer token `/buy` gave with `tx`.
fn token(tx: &str) -> String {
    common::test_tokens().token(tx.parse().unwrap())
}

struct Server {
    base: String,
    http: reqwest::Client,
    clock: ManualClock,
    stack: InProcess,
}

async fn start() -> Server {
    let (stack, clock) = manual_stack().await;
    let base = serve(stack.router("*")).await;
    Server {
        base,
        http: reqwest::Client::new(),
        clock,
        stack,
    }
}

impl Server {
    /// A sale of `quantity` opening `opens_in` after T0, for an hour, with
    /// a 30 s payment timeout.
    async fn sale(&self, quantity: u64, opens_in: Duration) -> String {
        let start = T0.saturating_add(opens_in);
        let mut new = NewSale::new(
            "Sneakers",
            quantity,
            start,
            start.saturating_add(Duration::from_secs(3600)),
        );
        new.payment_timeout = Duration::from_secs(30);
        self.stack
            .catalogue
            .create_sale(None, new)
            .await
            .unwrap()
            .id()
            .to_string()
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        let (status, answer) =
            common::post(&self.http, format!("{}{path}", self.base), &body).await;
        assert!(status.is_success(), "{path}: {status} {answer}");
        answer
    }

    async fn buy(&self, sale: &str, who: &str) -> String {
        let answer = self
            .post(&format!("/sales/{sale}/buy"), json!({ "buyerName": who }))
            .await;
        answer["transactionId"].as_str().unwrap().to_owned()
    }
}

#[tokio::test]
async fn the_reference_events_reach_its_own_client() {
    let s = start().await;
    let sale = s.sale(1, Duration::from_secs(10)).await;
    let (mut c, _) = Client::connect(&s.base, json!({})).await;

    s.clock.advance(Duration::from_secs(10));
    assert_eq!(
        c.next("sale_started").await,
        json!({ "saleId": sale, "startsAt": "2026-01-01T00:00:10.000Z" })
    );
    assert_eq!(
        c.next("sale_event").await,
        json!({ "saleId": sale, "event": "start", "at": "2026-01-01T00:00:10.000Z" })
    );

    let ana = s.buy(&sale, "ana").await;
    let bob = s.buy(&sale, "bob").await;
    s.post(&format!("/transactions/{ana}/leave"), json!({}))
        .await;
    assert_eq!(
        c.next("queue_switch").await,
        json!({ "transactionId": bob, "buyerName": "bob", "saleId": sale })
    );
    s.post(
        &format!("/sales/{sale}/paid"),
        json!({ "transactionId": bob }),
    )
    .await;
    assert_eq!(
        c.next("sale_update").await,
        json!({ "saleId": sale, "remainingQty": 0, "buyerName": "bob" })
    );

    s.clock.advance(Duration::from_secs(3600));
    assert_eq!(
        c.next("sale_ended").await,
        json!({ "saleId": sale, "endsAt": "2026-01-01T01:00:10.000Z" })
    );
    assert_eq!(c.next("sale_event").await["event"], "end");
}

#[tokio::test]
async fn targeted_events_go_only_to_the_rooms_that_asked() {
    let s = start().await;
    let sale = s.sale(1, Duration::ZERO).await;
    let ana = s.buy(&sale, "ana").await;
    let cy = s.buy(&sale, "cy").await;
    let dee = s.buy(&sale, "dee").await;
    let (mut dee_c, _) = Client::connect(
        &s.base,
        json!({ "transactionId": dee, "buyerToken": token(&dee) }),
    )
    .await;
    let (mut ana_c, rooms) = Client::connect(
        &s.base,
        json!({ "transactionId": ana, "buyerToken": token(&ana) }),
    )
    .await;
    assert_eq!(rooms, json!([format!("tx:{ana}")]));
    let (mut cy_c, rooms) = Client::connect(
        &s.base,
        json!({ "saleId": sale, "transactionId": cy, "buyerToken": token(&cy) }),
    )
    .await;
    assert_eq!(rooms, json!([format!("sale:{sale}"), format!("tx:{cy}")]));
    // Made-up room names are ignored.
    let (mut other, rooms) = Client::connect(&s.base, json!({ "saleId": "../admin" })).await;
    assert_eq!(rooms, json!([]));

    // Ana's slot expires: she hears it, cy's sale room hears the queue move.
    s.clock.advance(Duration::from_secs(30));
    assert_eq!(
        ana_c.next("slot_expired").await,
        json!({ "transactionId": ana, "buyerName": "ana", "saleId": sale })
    );
    let (mut cy_seen, moved) = cy_c.until("queue_moved").await;
    assert_eq!(moved, json!({ "saleId": sale }));
    assert!(!cy_seen.contains(&"slot_expired".to_owned()), "{cy_seen:?}");

    // Cy pays: the sale sells out and the sale room is told.
    s.post(
        &format!("/sales/{sale}/paid"),
        json!({ "transactionId": cy }),
    )
    .await;
    let (seen, sold_out) = cy_c.until("sold_out").await;
    assert_eq!(sold_out, json!({ "saleId": sale }));
    cy_seen.extend(seen);

    // A client in no room got the broadcasts (switch, then the sale) and
    // none of the room events sent before them.
    let (seen, _) = other.until("sale_update").await;
    assert!(seen.contains(&"queue_switch".to_owned()), "{seen:?}");
    for private in ["queue_moved", "slot_expired", "sold_out"] {
        assert!(!seen.contains(&private.to_owned()), "{private} in {seen:?}");
    }
    // Cy heard its own promotion in its room; dee, in her own room, did not
    // hear cy's, only that the queue closed for her.
    assert!(cy_seen.contains(&"queue_switch".to_owned()), "{cy_seen:?}");
    let (seen, closed) = dee_c.until("queue_closed").await;
    assert_eq!(closed["reason"], "sold_out");
    assert!(!seen.contains(&"queue_switch".to_owned()), "{seen:?}");
}

#[tokio::test]
async fn waiting_buyers_hear_that_the_queue_closed() {
    let s = start().await;
    let sale = s.sale(1, Duration::ZERO).await;
    let ana = s.buy(&sale, "ana").await;
    let bob = s.buy(&sale, "bob").await;
    let (mut bob_c, _) = Client::connect(
        &s.base,
        json!({ "transactionId": bob, "buyerToken": token(&bob) }),
    )
    .await;
    s.post(
        &format!("/sales/{sale}/paid"),
        json!({ "transactionId": ana }),
    )
    .await;
    assert_eq!(
        bob_c.next("queue_closed").await,
        json!({ "transactionId": bob, "buyerName": "bob", "saleId": sale, "reason": "sold_out" })
    );
}

/// Ours, beside the reference's: a new sale is announced, so live lists
/// can show it.
#[tokio::test]
async fn a_new_sale_is_announced() {
    let s = start().await;
    let (mut c, _) = Client::connect(&s.base, json!({})).await;
    let sale = s.sale(1, Duration::from_secs(10)).await;
    assert_eq!(c.next("sale_created").await, json!({ "saleId": sale }));
}

/// A transaction's room is joined only with its buyer token: anyone else
/// hears nothing of it (its id alone, e.g. from a `queue_switch`, is not
/// enough).
#[tokio::test]
async fn a_transaction_room_needs_its_buyer_token() {
    let s = start().await;
    let sale = s.sale(1, Duration::ZERO).await;
    let ana = s.buy(&sale, "ana").await;
    let bob = s.buy(&sale, "bob").await;
    for join in [
        json!({ "transactionId": ana }),
        json!({ "transactionId": ana, "buyerToken": token(&bob) }),
        json!({ "transactionId": ana, "buyerToken": "0".repeat(64) }),
    ] {
        let (_, rooms) = Client::connect(&s.base, join.clone()).await;
        assert_eq!(rooms, json!([]), "{join}");
    }
    let (_, rooms) = Client::connect(
        &s.base,
        json!({ "transactionId": ana, "buyerToken": token(&ana) }),
    )
    .await;
    assert_eq!(rooms, json!([format!("tx:{ana}")]));
}

/// A burst of payments reaches a client as conflated `sale_update`s (at
/// most one a sale every 100 ms): the quantities it sees only go down, and
/// the last one is the catalogue's — conflation never loses the final value.
#[tokio::test]
async fn conflated_sale_updates_end_on_the_catalogues_quantity() {
    let s = start().await;
    const UNITS: u64 = 40;
    let sale = s.sale(UNITS, Duration::ZERO).await;
    let (mut c, _) = Client::connect(&s.base, json!({})).await;
    let mut txs = Vec::new();
    for n in 0..UNITS {
        txs.push(s.buy(&sale, &format!("buyer {n}")).await);
    }
    for tx in &txs {
        s.post(
            &format!("/sales/{sale}/paid"),
            json!({ "transactionId": tx }),
        )
        .await;
    }
    let mut seen = Vec::new();
    loop {
        let update = c.next("sale_update").await;
        let left = update["remainingQty"].as_u64().unwrap();
        seen.push(left);
        if left == 0 {
            break;
        }
    }
    assert!(
        seen.windows(2).all(|w| w[0] > w[1]),
        "out of order: {seen:?}"
    );
    let (_, listed) = common::get(&s.http, format!("{}/sales/{sale}", s.base)).await;
    assert_eq!(listed["productQty"], 0);
    println!(
        "{UNITS} payments, {} sale_update messages: {seen:?}",
        seen.len()
    );
}

/// A buyer in its transaction's room is pushed its exact position (no
/// request of its own): after buyers ahead leave or pay in a random order,
/// the last position pushed is what `GET /transactions/{id}` says.
#[tokio::test]
async fn a_pushed_position_equals_the_transactions_status_after_random_moves() {
    let s = start().await;
    let mut new = NewSale::new(
        "Sneakers",
        20,
        T0,
        T0.saturating_add(Duration::from_secs(3600)),
    );
    new.max_payment_slots = Some(1);
    let sale = s
        .stack
        .catalogue
        .create_sale(None, new)
        .await
        .unwrap()
        .id()
        .to_string();
    let names = ["ana", "bo", "cy", "dee", "eve", "fay", "gus", "hal"];
    let mut txs = Vec::new();
    for who in names {
        txs.push(s.buy(&sale, who).await);
    }
    let hal = txs.last().unwrap().clone();
    let (mut c, rooms) = Client::connect(
        &s.base,
        json!({ "transactionId": hal, "buyerToken": token(&hal) }),
    )
    .await;
    assert_eq!(rooms, json!([format!("tx:{hal}")]));
    assert_eq!(c.next("queue_position").await["position"], 7);

    // A fixed shuffle of departures and payments ahead of hal.
    let mut ahead = txs[..7].to_vec();
    let mut seed = 0x2545_f491_u64;
    for i in (1..ahead.len()).rev() {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        ahead.swap(i, (seed % (i as u64 + 1)) as usize);
    }
    for tx in &ahead[..5] {
        let (_, status) = common::get(&s.http, format!("{}/transactions/{tx}", s.base)).await;
        if status["state"] == "payment" {
            s.post(
                &format!("/sales/{sale}/paid"),
                json!({ "transactionId": tx }),
            )
            .await;
        } else {
            s.post(&format!("/transactions/{tx}/leave"), json!({}))
                .await;
        }
    }
    let (_, status) = common::get(&s.http, format!("{}/transactions/{hal}", s.base)).await;
    let expected = status["position"].as_u64().unwrap();
    assert!(expected < 7, "nobody ahead moved: {status}");
    // Pushes come at most once a second: wait for the one that catches up.
    loop {
        let pushed = c.next("queue_position").await;
        assert_eq!(pushed["transactionId"], hal);
        let position = pushed["position"].as_u64().unwrap();
        assert!(
            position >= expected,
            "pushed {position}, ahead of the truth {expected}"
        );
        if position == expected {
            assert_eq!(pushed["turnBy"], status["turnBy"]);
            break;
        }
    }
}

type RawSocket = tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>;

/// A raw Engine.IO websocket to `base` (a receive buffer of `recv_buffer`
/// bytes if given), past the open packet.
async fn raw_client(base: &str, recv_buffer: Option<u32>) -> RawSocket {
    use futures_util::StreamExt;
    let addr = base.strip_prefix("http://").unwrap().to_owned();
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    if let Some(size) = recv_buffer {
        socket.set_recv_buffer_size(size).unwrap();
    }
    let stream = socket.connect(addr.parse().unwrap()).await.unwrap();
    let url = format!("ws://{addr}/socket.io/?EIO=4&transport=websocket");
    let (mut ws, _) = tokio_tungstenite::client_async(url, stream).await.unwrap();
    let open = ws.next().await.unwrap().unwrap().into_text().unwrap();
    assert!(open.starts_with("0{"), "{open}");
    ws
}

/// The next text message of a raw client, answering pings (the server
/// may ping at once) on the way.
async fn raw_next(ws: &mut RawSocket) -> String {
    use futures_util::{SinkExt, StreamExt};
    loop {
        let m = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("an answer within 10 s");
        let m = m.unwrap().unwrap().into_text().unwrap().to_string();
        if m != "2" {
            return m;
        }
        ws.send(tokio_tungstenite::tungstenite::Message::text("3"))
            .await
            .unwrap();
    }
}

/// A client that stops reading is skipped, never waited for. The stalled
/// client is a raw websocket with a small receive buffer, in the sale's
/// room, that floods the server with `join`s (each answered to it alone)
/// and reads nothing; pausing and resuming the queue (each heard in the
/// sale's room) goes on until the server reports it skipped a message for
/// a full client. Then another client still hears every `sale_update` down
/// to the last and the `sold_out`, and the stalled one, reading again, is
/// still connected.
#[tokio::test]
async fn a_stalled_client_does_not_delay_the_others_updates() {
    use flashsale_core::engine::Control;
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;

    let metrics = flashsale_http::metrics::install();
    let skipped = || {
        metrics
            .render()
            .lines()
            .find_map(|l| l.strip_prefix("flashsale_live_skipped_total "))
            .map_or(0, |n| n.trim().parse::<u64>().unwrap())
    };
    let s = start().await;
    const UNITS: u64 = 40;
    let sale = s.sale(UNITS, Duration::ZERO).await;

    let mut stalled = raw_client(&s.base, Some(4096)).await;
    let text = |m: Message| m.into_text().unwrap().to_string();
    stalled.send(Message::text("40")).await.unwrap();
    let connected = raw_next(&mut stalled).await;
    assert!(connected.starts_with("40"), "{connected}");
    stalled
        .feed(Message::text(format!(
            "42[\"join\",{{\"saleId\":\"{sale}\"}}]"
        )))
        .await
        .unwrap();
    for id in 0..100_000 {
        stalled
            .feed(Message::text(format!("42{id}[\"join\",{{}}]")))
            .await
            .unwrap();
    }
    stalled.flush().await.unwrap();
    let id = sale.parse().unwrap();
    let fill = async {
        for pause in [true, false].into_iter().cycle() {
            if skipped() > 0 {
                return;
            }
            let control = if pause {
                Control::Pause
            } else {
                Control::Resume
            };
            s.stack
                .service
                .as_ref()
                .unwrap()
                .control(id, control)
                .await
                .unwrap();
        }
    };
    tokio::time::timeout(Duration::from_secs(15), fill)
        .await
        .expect("the server skips the full client (it does not wait for it)");
    s.stack
        .service
        .as_ref()
        .unwrap()
        .control(id, Control::Resume)
        .await
        .unwrap();

    // The reference's own client hears the sale sell out.
    let (mut c, _) = Client::connect(&s.base, json!({ "saleId": sale })).await;
    for n in 0..UNITS {
        let tx = s.buy(&sale, &format!("buyer {n}")).await;
        s.post(
            &format!("/sales/{sale}/paid"),
            json!({ "transactionId": tx }),
        )
        .await;
    }
    c.until("sold_out").await;
    loop {
        let update = c.next("sale_update").await;
        if update["remainingQty"] == 0 {
            break;
        }
    }

    // The stalled client reads again: it was skipped, not dropped — what
    // was queued for it arrives, then the answer to one more join.
    stalled
        .send(Message::text("42999999[\"join\",{}]"))
        .await
        .unwrap();
    let drain = async {
        while let Some(m) = stalled.next().await {
            let m = text(m.unwrap());
            if m.starts_with("43999999[") {
                return;
            }
            if m == "2" {
                stalled.send(Message::text("3")).await.unwrap();
            }
        }
        panic!("the server closed the stalled client");
    };
    tokio::time::timeout(Duration::from_secs(30), drain)
        .await
        .expect("the stalled client is answered once it reads");
    println!("skipped {} messages for the stalled client", skipped());
}

/// A sale that sells out with thousands waiting tells a watching client
/// that its wait is over, even the one at the head of the queue, whose drop
/// comes first in the burst (a broadcast keeping the last 4,096 events lost
/// it, and a crowd lost most of theirs).
#[tokio::test]
async fn the_head_of_a_long_queue_hears_it_close() {
    let s = start().await;
    let sale = s.sale(1, Duration::ZERO).await;
    let first = s.buy(&sale, "first").await;
    let second = s.buy(&sale, "second").await;
    for n in 0..6_000 {
        s.buy(&sale, &format!("buyer {n}")).await;
    }
    let (mut c, _) = Client::connect(
        &s.base,
        json!({ "transactionId": second, "buyerToken": token(&second) }),
    )
    .await;
    s.post(
        &format!("/sales/{sale}/paid"),
        json!({ "transactionId": first }),
    )
    .await;
    let closed = c.next("queue_closed").await;
    assert_eq!(closed["transactionId"], second);
    assert_eq!(closed["reason"], "sold_out");
}
