//! Live events over Socket.IO (socketioxide), default namespace, as the
//! reference's browser client (socket.io-client v4) expects them.
//!
//! Broadcast to every client, as the reference does:
//!
//! | event | payload |
//! |---|---|
//! | `sale_update` | `{saleId, remainingQty, buyerName}` — at most ten a second a sale, the latest quantity (conflated) |
//! | `sale_started` | `{saleId, startsAt}` |
//! | `sale_ended` | `{saleId, endsAt}` |
//! | `sale_event` | `{saleId, event: "start"\|"end", at}` |
//! | `queue_switch` | `{transactionId, buyerName, saleId}` — to every client that has not joined a transaction's room (the reference's clients, which look for their own among all), and to the transaction's room |
//! | `sale_created` | `{saleId}` (ours: a sale was added; ask `GET /sales`) |
//!
//! Sent only to the rooms a client joined with
//! `emit("join", {saleId?, transactionId?, buyerToken?}, ack)` (`"leave"`
//! undoes it; a transaction's room needs the `buyerToken` `/buy` gave), so
//! a large sale need not send everything to everyone:
//!
//! | event | room | payload |
//! |---|---|---|
//! | `queue_moved` | the sale | `{saleId}` — positions changed; ask `GET /transactions/{id}` (at most once a second a sale) |
//! | `sold_out` | the sale | `{saleId}` |
//! | `slot_expired` | the transaction | `{transactionId, buyerName, saleId}` |
//! | `queue_closed` | the transaction | `{transactionId, buyerName, saleId, reason: "sold_out"\|"sale_ended"}` |
//! | `refund_due` | the transaction | `{transactionId, buyerName, saleId}` |
//! | `queue_paused` / `queue_resumed` | the sale | `{saleId}` — the operator paused or resumed the queue |
//! | `queue_position` | the transaction | `{transactionId, saleId, position, estimatedAt?, turnBy?}` — its exact place, pushed when it changes, at most once a second ([`spawn_positions`]) |
//! | `sale_changed` | everyone | `{saleId}` — the operator changed its stock, end or limits |
//!
//! Each payload is a struct in [`crate::events`]. Events reach Socket.IO
//! through channels and a task of their own: emitting never blocks an
//! engine, and a burst of engine events (a sale ending with many waiting)
//! loses none of those a connected client watches ([`LiveSink`]).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::extract::ConnectInfo;

use flashsale_core::ports::{EventSink, SinkError};
use flashsale_core::{Event, EventKind, Notice, SaleId, Service, TxId};
use serde::{Deserialize, Serialize};
use socketioxide::SocketIo;
use socketioxide::extract::{AckSender, Data, SocketRef};
use socketioxide::handler::ConnectHandler;
use socketioxide::layer::SocketIoLayer;
use tokio::sync::broadcast::{self, error::RecvError};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::events::{
    QueueClosed, SaleEdge, SaleEnded, SaleEvent, SaleRef, SaleStarted, SaleUpdate, TxNotice,
};
use crate::ratelimit::ClientAddr;
use crate::tokens::TokenKey;
use crate::wire::iso;

/// The largest message a live client may send, in bytes (as an HTTP body).
pub const MAX_CLIENT_MESSAGE: usize = 16 * 1024;

/// The most rooms one connection may be in (a sale and a transaction, a
/// few times over).
pub const MAX_ROOMS_PER_SOCKET: usize = 8;

/// The most live connections open at once from one address (an office or
/// a carrier's NAT holds many buyers; one script should not hold them all).
/// New connections are also rate-limited per client
/// ([`crate::App::with_rate_limit`]).
pub const MAX_SOCKETS_PER_ADDRESS: usize = 256;

/// The rooms a client asks to join or leave.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Rooms {
    sale_id: Option<String>,
    transaction_id: Option<String>,
    /// The transaction's capability, from `/buy`: a transaction's room is
    /// joined only with it.
    buyer_token: Option<String>,
}

impl Rooms {
    /// Room names for the ids that are valid ObjectIds, a transaction's
    /// only with its buyer token; others are ignored (clients cannot make
    /// up rooms, or listen to another buyer's).
    fn names(&self, tokens: &TokenKey) -> Vec<String> {
        let sale = self
            .sale_id
            .as_deref()
            .and_then(|s| s.parse::<SaleId>().ok());
        sale.map(sale_room)
            .into_iter()
            .chain(self.tx(tokens).map(tx_room))
            .collect()
    }

    /// The transaction, if the client holds its buyer token.
    fn tx(&self, tokens: &TokenKey) -> Option<TxId> {
        self.transaction_id
            .as_deref()
            .and_then(|t| t.parse::<TxId>().ok())
            .filter(|tx| {
                self.buyer_token
                    .as_deref()
                    .is_some_and(|token| tokens.verify(*tx, token))
            })
    }
}

/// The transactions whose rooms connected clients are in (with how many
/// clients each): the buyers [`spawn_positions`] pushes positions to.
#[derive(Debug, Clone, Default)]
pub struct Watched(Arc<Mutex<HashMap<TxId, usize>>>);

impl Watched {
    fn add(&self, tx: TxId) {
        *self.lock().entry(tx).or_default() += 1;
    }

    fn remove(&self, tx: TxId) {
        let mut watched = self.lock();
        if let Some(n) = watched.get_mut(&tx) {
            *n -= 1;
            if *n == 0 {
                watched.remove(&tx);
            }
        }
    }

    fn snapshot(&self) -> Vec<TxId> {
        self.lock().keys().copied().collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<TxId, usize>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The room of every client that has not joined a transaction's room:
/// `queue_switch` goes to it (and to the transaction's room).
const UNJOINED: &str = "unjoined";

fn sale_room(sale: SaleId) -> String {
    format!("sale:{sale}")
}

fn tx_room(tx: TxId) -> String {
    format!("tx:{tx}")
}

/// The Socket.IO layer to add to a router and its handle for
/// [`spawn_forwarder`]; it keeps `watched` up to date with the
/// transactions its clients watch (for [`spawn_positions`] and
/// [`LiveSink`]).
pub fn layer(tokens: TokenKey, watched: Watched) -> (SocketIoLayer, SocketIo) {
    // Clients send only `join` and `leave`: a message or frame over
    // 16 KiB is refused (the default would read up to 64 MiB).
    let (layer, io) = SocketIo::builder()
        .max_payload(MAX_CLIENT_MESSAGE as u64)
        .ws_max_message_size(MAX_CLIENT_MESSAGE)
        .ws_max_frame_size(MAX_CLIENT_MESSAGE)
        // What clients send is small: a 1 KiB read buffer (not 4) saves
        // memory a connection.
        .ws_read_buffer_size(1024)
        .build_layer();
    let per_address = Arc::new(Mutex::new(HashMap::<IpAddr, usize>::new()));
    let all = watched;
    // Everything is set up in a middleware, which runs before the client
    // is told it is connected: socketioxide spawns the connect handler
    // after that, so a `join` sent at once could come before handlers set
    // up there (and be lost, as a crowd showed).
    let setup = async move |s: SocketRef| -> Result<(), TooManyConnections> {
        if !admit(&s, &per_address) {
            return Err(TooManyConnections);
        }
        s.join(UNJOINED);
        // The transactions this client watches, given back when it goes.
        let mine = Arc::new(Mutex::new(Vec::<TxId>::new()));
        ::metrics::gauge!("flashsale_live_clients").increment(1.0);
        let (gone, all_gone) = (mine.clone(), all.clone());
        s.on_disconnect(async move || {
            ::metrics::gauge!("flashsale_live_clients").decrement(1.0);
            for tx in gone
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .drain(..)
            {
                all_gone.remove(tx);
            }
        });
        let (join_tokens, join_mine, join_all) = (tokens.clone(), mine.clone(), all.clone());
        s.on(
            "join",
            async move |s: SocketRef, Data(rooms): Data<Rooms>, ack: AckSender| {
                let mut names = rooms.names(&join_tokens);
                // A bounded number of rooms per connection: a client
                // cannot make the server fan one event out to it endlessly.
                let have = s.rooms().len();
                names.truncate(MAX_ROOMS_PER_SOCKET.saturating_sub(have));
                if let Some(tx) = rooms.tx(&join_tokens)
                    && names.contains(&tx_room(tx))
                    && !s.rooms().contains(&tx_room(tx).into())
                {
                    join_mine
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .push(tx);
                    join_all.add(tx);
                    s.leave(UNJOINED);
                }
                s.join(names.clone());
                let _ = ack.send(&names);
            },
        );
        let all = all.clone();
        s.on(
            "leave",
            async move |s: SocketRef, Data(rooms): Data<Rooms>, ack: AckSender| {
                if let Some(tx) = rooms.tx(&tokens) {
                    let mut mine = mine.lock().unwrap_or_else(PoisonError::into_inner);
                    if let Some(i) = mine.iter().position(|t| *t == tx) {
                        mine.swap_remove(i);
                        all.remove(tx);
                    }
                }
                s.leave(rooms.names(&tokens));
                let _ = ack.send(&true);
            },
        );
        Ok(())
    };
    io.ns("/", (async |_: SocketRef| {}).with(setup));
    (layer, io)
}

/// The engine events the live layer sends on, for [`spawn_forwarder`]:
/// lossless (an unbounded channel) and bounded by the crowd, not by the
/// queue — events about a whole sale (moves, sold out) and those about a
/// transaction only while a client watches it. A sale that ends with a
/// million waiting emits a million drops; the clients connected get theirs
/// (a fixed-size broadcast lost them: 5,904 of 10,000 under a crowd).
pub struct LiveSink {
    sender: mpsc::UnboundedSender<Event>,
    watched: Watched,
}

impl LiveSink {
    /// The sink for the service, and the receiver for [`spawn_forwarder`].
    pub fn new(watched: Watched) -> (LiveSink, mpsc::UnboundedReceiver<Event>) {
        let (sender, receiver) = mpsc::unbounded_channel();
        (LiveSink { sender, watched }, receiver)
    }
}

#[async_trait::async_trait]
impl EventSink<Event> for LiveSink {
    async fn publish(&self, events: &[Event]) -> Result<(), SinkError> {
        // Locked only for a batch with an event about one transaction (a
        // batch of buys takes no lock).
        let mut watched = None;
        for event in events {
            let wanted = match &event.kind {
                EventKind::Promoted { .. }
                | EventKind::Left { .. }
                | EventKind::Started
                | EventKind::Drawn { .. }
                | EventKind::SoldOut => true,
                EventKind::Expired { tx, .. }
                | EventKind::RefundDue { tx, .. }
                | EventKind::Dropped { tx, .. } => watched
                    .get_or_insert_with(|| self.watched.lock())
                    .contains_key(tx),
                _ => false,
            };
            // A closed receiver (the forwarder stopped) is not an error.
            if wanted {
                let _ = self.sender.send(event.clone());
            }
        }
        Ok(())
    }
}

/// How often a waiting buyer's position may be pushed to it.
pub const POSITION_EVERY: Duration = Duration::from_secs(1);

/// Pushes each watched waiting buyer its exact position and estimate
/// (`queue_position {transactionId, saleId, position, estimatedAt?, turnBy?}`
/// to the transaction's room), at most once every `every` and only when it
/// changed: no HTTP request per queue movement. A tick costs one batch of
/// status lookups per sale (O(log n) each) for the buyers connected, however
/// often the queue moved.
pub fn spawn_positions(
    io: SocketIo,
    service: Service,
    watched: Watched,
    every: Duration,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut pushed: HashMap<TxId, crate::events::QueuePosition> = HashMap::new();
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let txs = watched.snapshot();
            // Forget what was pushed to buyers no longer watched (a set:
            // ten thousand watchers are ten thousand lookups, not squared).
            let watching: std::collections::HashSet<TxId> = txs.iter().copied().collect();
            pushed.retain(|tx, _| watching.contains(tx));
            let mut by_sale: BTreeMap<SaleId, Vec<TxId>> = BTreeMap::new();
            for tx in txs {
                if let Some(&sale) = service.sales_of(tx).first() {
                    by_sale.entry(sale).or_default().push(tx);
                }
            }
            for (sale, txs) in by_sale {
                let Some(statuses) = service.statuses(sale, txs).await else {
                    continue;
                };
                for status in statuses.into_iter().flatten() {
                    let Some(position) = status.position else {
                        pushed.remove(&status.tx);
                        continue;
                    };
                    let now = crate::events::QueuePosition {
                        transaction_id: status.tx,
                        sale_id: sale,
                        position,
                        estimated_at: status.estimate.map(iso),
                        turn_by: status.turn_by.map(iso),
                    };
                    if pushed.get(&status.tx) != Some(&now) {
                        emit(&io, Some(tx_room(status.tx)), "queue_position", &now).await;
                        pushed.insert(status.tx, now);
                    }
                }
            }
        }
    })
}

/// Why a client was refused a connection (its `connect_error` message).
#[derive(Debug)]
struct TooManyConnections;

impl std::fmt::Display for TooManyConnections {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("too many live connections from this address")
    }
}

/// Counts `s` against its client's open connections and undoes it when it
/// disconnects. The client is the rate limiter's ([`ClientAddr`]: a trusted
/// proxy's forwarded address), else the peer [`crate::server::serve`]
/// records; without either, no bound. False when the client has
/// [`MAX_SOCKETS_PER_ADDRESS`] open already.
fn admit(s: &SocketRef, per_address: &Arc<Mutex<HashMap<IpAddr, usize>>>) -> bool {
    let extensions = &s.req_parts().extensions;
    let client = extensions.get::<ClientAddr>().map(|c| c.0).or_else(|| {
        extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip())
    });
    let Some(peer) = client else {
        return true;
    };
    {
        let mut open = per_address.lock().unwrap_or_else(PoisonError::into_inner);
        let n = open.entry(peer).or_default();
        if *n >= MAX_SOCKETS_PER_ADDRESS {
            tracing::debug!(%peer, "too many live connections from one address");
            return false;
        }
        *n += 1;
    }
    let per_address = per_address.clone();
    s.on_disconnect(move || async move {
        let mut open = per_address.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(n) = open.get_mut(&peer) {
            *n -= 1;
            if *n == 0 {
                open.remove(&peer);
            }
        }
    });
    true
}

/// Forwards catalogue notices and engine events (from a [`LiveSink`]) to
/// Socket.IO clients until both channels close. Emitting never waits for a
/// client: one whose buffer is full misses the message (counted).
pub fn spawn_forwarder(
    io: SocketIo,
    mut notices: broadcast::Receiver<Notice>,
    mut events: mpsc::UnboundedReceiver<Event>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut notices_open = true;
        let mut events_open = true;
        // Sales whose queue moved since the last look: one `queue_moved`
        // each per burst of events, and at most one per interval.
        let mut moved: BTreeSet<SaleId> = BTreeSet::new();
        let mut moves = Conflator::<()>::new(QUEUE_MOVED_EVERY);
        let mut updates = Conflator::<Notice>::new(SALE_UPDATE_EVERY);
        while notices_open || events_open {
            let due = [updates.due(), moves.due()].into_iter().flatten().min();
            tokio::select! {
                n = notices.recv(), if notices_open => match n {
                    Ok(n) => {
                        let now = Instant::now();
                        if let Notice::SaleUpdated { sale, .. } = n {
                            if let Some(n) = updates.offer(sale, n, now) {
                                emit_notice(&io, &n).await;
                            }
                        } else {
                            // What is held back of this sale goes out before
                            // anything else about the sale (a promotion is
                            // about a transaction: it does not flush).
                            if let Some(held) = sale_of(&n).and_then(|sale| updates.take(sale, now)) {
                                emit_notice(&io, &held).await;
                            }
                            emit_notice(&io, &n).await;
                        }
                    }
                    Err(RecvError::Lagged(k)) => tracing::warn!(missed = k, "live notices lagged"),
                    Err(RecvError::Closed) => notices_open = false,
                },
                e = events.recv(), if events_open => match e {
                    Some(e) => emit_event(&io, &e, &mut moved).await,
                    None => events_open = false,
                },
                () = async {
                    match due {
                        Some(at) => tokio::time::sleep_until(at.into()).await,
                        None => std::future::pending().await,
                    }
                } => {
                    let now = Instant::now();
                    for (_, held) in updates.take_due(now) {
                        emit_notice(&io, &held).await;
                    }
                    for (sale, ()) in moves.take_due(now) {
                        emit_moved(&io, sale).await;
                    }
                }
            }
            // Take what else is already waiting before announcing moves.
            while let Ok(e) = events.try_recv() {
                emit_event(&io, &e, &mut moved).await;
            }
            let now = Instant::now();
            for sale in std::mem::take(&mut moved) {
                if moves.offer(sale, (), now).is_some() {
                    emit_moved(&io, sale).await;
                }
            }
        }
    })
}

async fn emit_moved(io: &SocketIo, sale: SaleId) {
    emit(
        io,
        Some(sale_room(sale)),
        "queue_moved",
        &SaleRef { sale_id: sale },
    )
    .await;
}

/// At most one `sale_update` per sale every [`SALE_UPDATE_EVERY`]: with a
/// thousand payments a second, every client would otherwise get a thousand
/// messages a second (and the reference's page a thousand list downloads).
/// One that comes sooner is held, replaced by any later one, and sent when
/// its time comes: a client sees the latest `remainingQty` at most that
/// much later, and never misses the last one.
const SALE_UPDATE_EVERY: Duration = Duration::from_millis(100);

/// At most one `queue_moved` per sale every [`QUEUE_MOVED_EVERY`]: waiting
/// buyers are pushed their positions ([`spawn_positions`]) as often, so
/// "ask again" need not come more often than that however fast the queue
/// moves.
const QUEUE_MOVED_EVERY: Duration = POSITION_EVERY;

/// Holds back what comes too soon after the sale's last of its kind: the
/// latest held one of each sale goes out when its interval is over.
#[derive(Debug)]
struct Conflator<T> {
    every: Duration,
    /// When each sale's last one went out.
    sent: HashMap<SaleId, Instant>,
    /// The latest held-back one of each sale.
    held: BTreeMap<SaleId, T>,
}

impl<T> Conflator<T> {
    fn new(every: Duration) -> Self {
        Conflator {
            every,
            sent: HashMap::new(),
            held: BTreeMap::new(),
        }
    }

    /// `item` if it goes out now; one too soon after its sale's last is
    /// held instead (replacing the one held).
    fn offer(&mut self, sale: SaleId, item: T, now: Instant) -> Option<T> {
        let soon = self
            .sent
            .get(&sale)
            .is_some_and(|&last| now < last + self.every);
        if soon {
            self.held.insert(sale, item);
            None
        } else {
            self.sent.insert(sale, now);
            Some(item)
        }
    }

    /// When the next held one is due.
    fn due(&self) -> Option<Instant> {
        self.held
            .keys()
            .filter_map(|sale| self.sent.get(sale))
            .map(|&last| last + self.every)
            .min()
    }

    /// The held ones due at `now`, marked sent.
    fn take_due(&mut self, now: Instant) -> Vec<(SaleId, T)> {
        let due: Vec<SaleId> = self
            .held
            .keys()
            .filter(|sale| {
                self.sent
                    .get(sale)
                    .is_none_or(|&last| now >= last + self.every)
            })
            .copied()
            .collect();
        due.into_iter()
            .filter_map(|sale| Some((sale, self.take(sale, now)?)))
            .collect()
    }

    /// `sale`'s held one, to go out at once (before another notice of it).
    fn take(&mut self, sale: SaleId, now: Instant) -> Option<T> {
        let held = self.held.remove(&sale)?;
        self.sent.insert(sale, now);
        Some(held)
    }
}

/// The sale a notice is about (not a transaction's promotion).
fn sale_of(notice: &Notice) -> Option<SaleId> {
    match notice {
        Notice::SaleCreated { sale }
        | Notice::SaleUpdated { sale, .. }
        | Notice::SaleStarted { sale, .. }
        | Notice::SaleEnded { sale, .. }
        | Notice::QueuePaused { sale }
        | Notice::QueueResumed { sale }
        | Notice::SaleChanged { sale } => Some(*sale),
        _ => None,
    }
}

async fn emit<T: Serialize + ?Sized>(io: &SocketIo, room: Option<String>, event: &str, data: &T) {
    let sent = match room {
        Some(room) => io.to(room).emit(event, data).await,
        None => io.emit(event, data).await,
    };
    report(event, sent);
}

fn report(event: &str, sent: Result<(), socketioxide::BroadcastError>) {
    match sent {
        Ok(()) => {}
        // A client whose buffer is full (it reads too slowly, or not at
        // all) misses this one; nobody else waits for it.
        Err(socketioxide::BroadcastError::Socket(errors)) => {
            let full = errors
                .iter()
                .filter(|e| matches!(e, socketioxide::SocketError::InternalChannelFull))
                .count();
            ::metrics::counter!("flashsale_live_skipped_total").increment(full as u64);
            tracing::debug!(event, skipped = full, "slow live clients skipped");
        }
        Err(e) => tracing::debug!(event, error = %e, "socket.io emit failed"),
    }
}

async fn emit_notice(io: &SocketIo, notice: &Notice) {
    match notice {
        Notice::SaleCreated { sale } => {
            emit(io, None, "sale_created", &SaleRef { sale_id: *sale }).await;
        }
        Notice::SaleUpdated {
            sale,
            remaining,
            buyer,
        } => {
            let data = SaleUpdate {
                sale_id: *sale,
                remaining_qty: *remaining,
                buyer_name: buyer,
            };
            emit(io, None, "sale_update", &data).await;
        }
        Notice::SaleStarted { sale, starts_at } => {
            let data = SaleStarted {
                sale_id: *sale,
                starts_at: iso(*starts_at),
            };
            emit(io, None, "sale_started", &data).await;
            let data = SaleEvent::new(*sale, SaleEdge::Start, *starts_at);
            emit(io, None, "sale_event", &data).await;
        }
        Notice::SaleEnded { sale, ends_at } => {
            let data = SaleEnded {
                sale_id: *sale,
                ends_at: iso(*ends_at),
            };
            emit(io, None, "sale_ended", &data).await;
            let data = SaleEvent::new(*sale, SaleEdge::End, *ends_at);
            emit(io, None, "sale_event", &data).await;
        }
        Notice::QueuePaused { sale } => {
            let data = SaleRef { sale_id: *sale };
            emit(io, Some(sale_room(*sale)), "queue_paused", &data).await;
        }
        Notice::QueueResumed { sale } => {
            let data = SaleRef { sale_id: *sale };
            emit(io, Some(sale_room(*sale)), "queue_resumed", &data).await;
        }
        Notice::SaleChanged { sale } => {
            emit(io, None, "sale_changed", &SaleRef { sale_id: *sale }).await;
        }
        Notice::QueueSwitch { sale, tx, buyer } => {
            let data = TxNotice {
                transaction_id: *tx,
                buyer_name: buyer,
                sale_id: *sale,
            };
            // To those who never joined a transaction's room (the
            // reference's clients: they look for their own among all) and
            // to the transaction's: not every promotion to every client.
            let rooms = vec![UNJOINED.to_owned(), tx_room(*tx)];
            report(
                "queue_switch",
                io.to(rooms).emit("queue_switch", &data).await,
            );
        }
        _ => {}
    }
}

async fn emit_event(io: &SocketIo, event: &Event, moved: &mut BTreeSet<SaleId>) {
    let sale_id = event.sale;
    let notice = |tx: &TxId, buyer_name| TxNotice {
        transaction_id: *tx,
        buyer_name,
        sale_id,
    };
    match &event.kind {
        // The start (and the pre-queue's draw) gives the pre-queue its
        // positions.
        EventKind::Promoted { .. }
        | EventKind::Left { .. }
        | EventKind::Started
        | EventKind::Drawn { .. } => {
            moved.insert(sale_id);
        }
        EventKind::Expired { tx, buyer } => {
            emit(io, Some(tx_room(*tx)), "slot_expired", &notice(tx, buyer)).await;
        }
        EventKind::RefundDue { tx, buyer } => {
            emit(io, Some(tx_room(*tx)), "refund_due", &notice(tx, buyer)).await;
        }
        EventKind::Dropped { tx, buyer, reason } => {
            moved.insert(sale_id);
            let data = QueueClosed {
                transaction_id: *tx,
                buyer_name: buyer,
                sale_id,
                reason: *reason,
            };
            emit(io, Some(tx_room(*tx)), "queue_closed", &data).await;
        }
        EventKind::SoldOut => {
            emit(
                io,
                Some(sale_room(sale_id)),
                "sold_out",
                &SaleRef { sale_id },
            )
            .await;
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn update(sale: SaleId, remaining: u64) -> Notice {
        Notice::SaleUpdated {
            sale,
            remaining,
            buyer: flashsale_core::BuyerName::parse("ana").unwrap_or_else(|_| unreachable!()),
        }
    }

    /// A burst of updates goes out as its first and, one interval later,
    /// its last: never more than one an interval per sale, never losing the
    /// final quantity; another sale is not held back by it.
    #[test]
    fn a_burst_of_sale_updates_goes_out_as_its_first_and_its_last() {
        let (a, b) = (
            "000000000000000000000001"
                .parse::<SaleId>()
                .unwrap_or_else(|_| unreachable!()),
            "000000000000000000000002"
                .parse::<SaleId>()
                .unwrap_or_else(|_| unreachable!()),
        );
        let t0 = Instant::now();
        let at = |ms| t0 + Duration::from_millis(ms);
        let mut c = Conflator::new(SALE_UPDATE_EVERY);
        assert_eq!(c.offer(a, update(a, 9), at(0)), Some(update(a, 9)));
        for (ms, left) in [(10, 8), (20, 7), (30, 6)] {
            assert_eq!(
                c.offer(a, update(a, left), at(ms)),
                None,
                "sent {left} within the interval"
            );
        }
        assert!(
            c.offer(b, update(b, 4), at(30)).is_some(),
            "another sale waits for nothing"
        );
        assert_eq!(c.due(), Some(at(100)));
        assert!(c.take_due(at(99)).is_empty());
        assert_eq!(c.take_due(at(100)), vec![(a, update(a, 6))]);
        assert_eq!(c.due(), None);
        // The next one waits for the interval after that.
        assert_eq!(c.offer(a, update(a, 5), at(150)), None);
        assert_eq!(c.take(a, at(160)), Some(update(a, 5)));
        assert!(c.take_due(at(1_000)).is_empty());
    }
}
