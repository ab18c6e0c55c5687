//! The engine's invariants (README, "Invariants") as checks, shared by the property
//! tests and the fuzz targets. Feed a [`Checker`] every event the engine
//! emits, in order, and ask it after each step.

use hashbrown::{HashMap, HashSet};

use crate::catalogue::{Catalogue, TxMessage};
use crate::engine::{
    DropReason, Engine, Event, EventKind, SaleConfig, TxState, admission_burst, draw_order,
};
use crate::id::{SequentialIds, TxId};
use crate::time::Timestamp;

/// Follows one engine's event stream and checks its invariants.
#[derive(Debug, Default)]
pub struct Checker {
    journal: Vec<Event>,
    /// Join order of every transaction that entered the waiting queue.
    waiting_seq: HashMap<TxId, u64>,
    next_seq: u64,
    /// The join order of the latest promotion.
    last_promoted: Option<u64>,
    /// Transactions told they were dropped, and why.
    dropped: HashMap<TxId, DropReason>,
    /// Joins per buyer key.
    joins: HashMap<String, u32>,
    /// Transactions told a refund is due.
    refunds: HashSet<TxId>,
    /// Pre-queued buyers, in join order, until the start.
    prequeue: Vec<TxId>,
    started: bool,
    paused: bool,
    /// Live payment slots, as the events say.
    slots: HashSet<TxId>,
    /// The slot limit, as the events say.
    max_slots: Option<u64>,
    /// The admission rate, and the times of the grants since it was set.
    admissions: Option<u64>,
    grants: Vec<Timestamp>,
}

impl Checker {
    /// A checker that has seen nothing.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many times the buyer named `buyer` has joined.
    pub fn joins(&self, buyer: &str) -> u32 {
        let key = crate::name::BuyerKey::of(buyer.trim());
        self.joins.get(key.as_str()).copied().unwrap_or(0)
    }

    /// Every event seen so far: the engine's journal.
    pub fn journal(&self) -> &[Event] {
        &self.journal
    }

    /// Takes the engine's new events into account. Checks, for each
    /// promotion, that it is in join order (invariant 4), that nobody is
    /// told twice that they were dropped or that a refund is due, and that
    /// no buyer joins more often than the sale allows.
    pub fn observe(&mut self, engine: &mut Engine) -> Result<(), String> {
        let max_joins = engine.config().max_joins_per_buyer;
        let events: Vec<Event> = engine.drain_events().collect();
        for e in &events {
            self.follow_controls(e)?;
            if let EventKind::Joined { buyer, account, .. } = &e.kind {
                let key = match account {
                    Some(id) => format!("account:{id}"),
                    None => buyer.key().as_str().to_owned(),
                };
                let joins = self.joins.entry(key).or_default();
                *joins += 1;
                if max_joins.is_some_and(|max| *joins > max) {
                    return Err(format!("{buyer} joined {joins} times"));
                }
            }
            match &e.kind {
                EventKind::RefundDue { tx, .. } if !self.refunds.insert(*tx) => {
                    return Err(format!("{tx} was told twice that a refund is due"));
                }
                EventKind::Joined {
                    tx, deadline: None, ..
                } if !self.started => self.prequeue.push(*tx),
                EventKind::Joined {
                    tx, deadline: None, ..
                } => {
                    self.waiting_seq.insert(*tx, self.next_seq);
                    self.next_seq += 1;
                }
                EventKind::Drawn { seed } => {
                    // The checker's own draw over the buyers it saw queue.
                    let order = draw_order(*seed, self.prequeue.len());
                    let drawn: Vec<TxId> = order.iter().map(|&k| self.prequeue[k]).collect();
                    self.prequeue = drawn;
                }
                EventKind::Started => {
                    for tx in std::mem::take(&mut self.prequeue) {
                        self.waiting_seq.insert(tx, self.next_seq);
                        self.next_seq += 1;
                    }
                }
                EventKind::Left { tx, .. } | EventKind::Dropped { tx, .. }
                    if self.prequeue.contains(tx) =>
                {
                    self.prequeue.retain(|t| t != tx);
                    if let EventKind::Dropped { reason, .. } = &e.kind {
                        self.dropped.insert(*tx, *reason);
                    }
                }
                EventKind::Promoted { tx, .. } => {
                    let seq = *self
                        .waiting_seq
                        .get(tx)
                        .ok_or("promoted a buyer who never waited")?;
                    if self.last_promoted.is_some_and(|last| seq <= last) {
                        return Err(format!("promotion of {tx} is out of join order"));
                    }
                    self.last_promoted = Some(seq);
                }
                EventKind::Dropped { tx, reason, .. }
                    if self.dropped.insert(*tx, *reason).is_some() =>
                {
                    return Err(format!("{tx} was told twice that it was dropped"));
                }
                _ => {}
            }
        }
        self.journal.extend(events);
        Ok(())
    }

    /// The operator's rules, checked at each event: no slot granted
    /// before the start or while paused; never more slots than the limit
    /// at the time of a grant; at most `rate + burst` grants in any 60
    /// seconds under an admission rate.
    fn follow_controls(&mut self, e: &Event) -> Result<(), String> {
        match &e.kind {
            EventKind::Opened { config, .. } => {
                self.max_slots = config.max_payment_slots;
                self.admissions = config.admissions_per_minute;
            }
            EventKind::Started => self.started = true,
            EventKind::Paused => self.paused = true,
            EventKind::Resumed => self.paused = false,
            EventKind::SlotsLimited { max_payment_slots } => self.max_slots = *max_payment_slots,
            EventKind::AdmissionsLimited {
                admissions_per_minute,
                ..
            } => {
                self.admissions = *admissions_per_minute;
                self.grants.clear();
            }
            EventKind::Joined {
                tx,
                deadline: Some(_),
                ..
            }
            | EventKind::Promoted { tx, .. } => {
                if !self.started || self.paused {
                    return Err(format!(
                        "{tx} got a slot while the queue was closed or paused"
                    ));
                }
                self.slots.insert(*tx);
                if self.max_slots.is_some_and(|m| self.slots.len() as u64 > m) {
                    return Err(format!("{tx} got a slot beyond the limit"));
                }
                if let Some(rate) = self.admissions {
                    self.grants.push(e.at);
                    let since = e.at.as_millis().saturating_sub(59_999);
                    let window = self
                        .grants
                        .iter()
                        .filter(|t| t.as_millis() >= since)
                        .count();
                    if window as u64 > rate + admission_burst(rate) {
                        return Err(format!(
                            "{window} slots granted within a minute at {rate}/min"
                        ));
                    }
                }
            }
            EventKind::Paid { tx, .. }
            | EventKind::Expired { tx, .. }
            | EventKind::Left { tx, .. } => {
                self.slots.remove(tx);
            }
            _ => {}
        }
        Ok(())
    }

    /// Invariant 1 — Never oversell: `sold <= quantity` and `slots + sold <= quantity`,
    /// and the counters match the transactions.
    pub fn never_oversell(&self, engine: &Engine) -> Result<(), String> {
        let q = engine.config().quantity;
        let (sold, slots) = (engine.sold(), engine.payment_slots());
        if sold > q || sold + slots > q {
            return Err(format!(
                "oversold: sold {sold} + slots {slots} > quantity {q}"
            ));
        }
        let count = |s| engine.transactions().filter(|t| t.state == s).count() as u64;
        if count(TxState::Paid) != sold || count(TxState::Payment) != slots {
            return Err("sold/slot counters disagree with the transactions".into());
        }
        // The slot limit is checked at each grant (`observe`): an operator
        // may lower it below the slots already held.
        Ok(())
    }

    /// Invariant 2 — Never undersell: while buyers wait, no payment slot is free.
    pub fn never_undersell(&self, engine: &Engine) -> Result<(), String> {
        if engine.waiting() > 0 && engine.free_slots() > 0 {
            return Err(format!(
                "{} buyers wait while {} slots are free",
                engine.waiting(),
                engine.free_slots()
            ));
        }
        let waiting = engine
            .transactions()
            .filter(|t| t.state == TxState::Waiting)
            .count() as u64;
        if waiting != engine.waiting() {
            return Err("waiting counter disagrees with the transactions".into());
        }
        Ok(())
    }

    /// Invariant 3 — One live (payment, waiting or paid) entry per buyer
    /// key: names that differ only in case, width, invisible characters or
    /// look-alike letters are one buyer.
    pub fn one_live_entry_per_buyer(&self, engine: &Engine) -> Result<(), String> {
        let mut seen = HashSet::new();
        for t in engine.transactions() {
            if t.state.blocks_rejoin() && !seen.insert(t.buyer.key()) {
                return Err(format!("{:?} has two live entries", t.buyer));
            }
        }
        Ok(())
    }

    /// Invariant 4 — FIFO: promotions in join order (checked in [`Checker::observe`]),
    /// no waiting buyer who joined before the last promoted one, and
    /// positions 1, 2, 3… in join order.
    pub fn fifo(&self, engine: &Engine) -> Result<(), String> {
        let mut waiting = Vec::new();
        for t in engine
            .transactions()
            .filter(|t| t.state == TxState::Waiting)
        {
            if t.prequeued {
                if t.position.is_some() || !self.prequeue.contains(&t.tx) {
                    return Err(format!("{} is pre-queued out of place", t.tx));
                }
                continue;
            }
            let seq = *self
                .waiting_seq
                .get(&t.tx)
                .ok_or("waiting buyer never joined")?;
            waiting.push((seq, t));
        }
        // Served in the drawn order, then in join order.
        waiting.sort_by_key(|(seq, _)| *seq);
        for (expected, (seq, t)) in (1..).zip(waiting) {
            let seq = &seq;
            if self.last_promoted.is_some_and(|last| *seq < last) {
                return Err(format!("{} was passed over by a later buyer", t.tx));
            }
            if t.position != Some(expected) {
                return Err(format!(
                    "{} is at {:?}, expected {expected}",
                    t.tx, t.position
                ));
            }
        }
        Ok(())
    }

    /// Invariant 5 — No payment slot has a deadline at or before the engine's time
    /// (every command and `handle_timeout` expires what is due first).
    pub fn no_overdue_slot(&self, engine: &Engine) -> Result<(), String> {
        let now = engine.now();
        match engine
            .transactions()
            .find(|t| t.deadline.is_some_and(|d| d <= now))
        {
            Some(t) => Err(format!("{} holds a slot past its deadline", t.tx)),
            None => Ok(()),
        }
    }

    /// Invariant 6 — Sold out: nobody waits, and every buyer let go was told once,
    /// with the right reason; nobody else was.
    pub fn sold_out_tells_everyone(&self, engine: &Engine) -> Result<(), String> {
        if engine.sold() == engine.config().quantity && engine.waiting() > 0 {
            return Err("sold out, yet buyers wait".into());
        }
        for t in engine.transactions() {
            let told = self.dropped.get(&t.tx);
            let ok = match t.state {
                TxState::RejectedSoldOut => told == Some(&DropReason::SoldOut),
                TxState::RejectedSaleEnded => told == Some(&DropReason::SaleEnded),
                _ => told.is_none(),
            };
            if !ok {
                return Err(format!("{} is {:?} but was told {told:?}", t.tx, t.state));
            }
        }
        Ok(())
    }

    /// Invariant 7 — Replaying the journal rebuilds the same engine. The engine's
    /// time is not journaled (a command that changes nothing moves it on
    /// without an event), so the replayed engine is brought to the same
    /// time, which must change nothing, before comparing.
    pub fn replay_rebuilds_state(&self, engine: &Engine) -> Result<Engine, String> {
        let ids = SequentialIds::starting_after(engine.transaction_count() as u64);
        let mut replayed =
            Engine::replay(&self.journal, Box::new(ids)).map_err(|e| e.to_string())?;
        if replayed.now() > engine.now() {
            return Err("replay ran ahead of the engine's time".into());
        }
        replayed.handle_timeout(engine.now());
        if let Some(e) = replayed.drain_events().next() {
            return Err(format!("replayed engine had unjournaled work due: {e:?}"));
        }
        let same = replayed.transactions().eq(engine.transactions())
            && replayed.sold() == engine.sold()
            && replayed.payment_slots() == engine.payment_slots()
            && replayed.waiting() == engine.waiting()
            && replayed.free_slots() == engine.free_slots()
            && replayed.now() == engine.now()
            && replayed.is_active() == engine.is_active()
            && replayed.poll_timeout() == engine.poll_timeout();
        if same {
            Ok(replayed)
        } else {
            Err(format!("replay differs: {replayed:?} vs {engine:?}"))
        }
    }

    /// Runs every check above but replay (which is costlier).
    pub fn check_all(&self, engine: &Engine) -> Result<(), String> {
        self.never_oversell(engine)?;
        self.never_undersell(engine)?;
        self.one_live_entry_per_buyer(engine)?;
        self.fifo(engine)?;
        self.no_overdue_slot(engine)?;
        self.sold_out_tells_everyone(engine)
    }
}

/// Invariant 8 — The catalogue applies each paid transaction once: deliver every
/// `paid`/`switch` of `journal` to a fresh catalogue holding the sale,
/// each message `copies(i)` times (at least once), and check remaining
/// quantity and buyers against the engine's sold count.
pub fn catalogue_applies_each_paid_once(
    engine: &Engine,
    journal: &[Event],
    mut copies: impl FnMut(usize) -> usize,
) -> Result<(), String> {
    let config = engine.config();
    let mut catalogue = Catalogue::new(Box::new(SequentialIds::default()));
    catalogue
        .insert(crate::catalogue::Sale {
            config: SaleConfig {
                product_name: "product".into(),
                ..config.clone()
            },
            remaining: config.quantity,
        })
        .map_err(|e| e.to_string())?;
    let messages: Vec<TxMessage> = journal.iter().filter_map(TxMessage::from_event).collect();
    for (i, m) in messages.iter().enumerate() {
        for _ in 0..copies(i).max(1) {
            catalogue
                .apply(engine.now(), m)
                .map_err(|e| e.to_string())?;
        }
    }
    let sale = catalogue.get(config.id).ok_or("sale vanished")?;
    let buyers = catalogue.buyers(config.id).ok_or("sale vanished")?;
    if sale.remaining != config.quantity - engine.sold() || buyers.len() as u64 != engine.sold() {
        return Err(format!(
            "catalogue has {} remaining and {} buyers; engine sold {} of {}",
            sale.remaining,
            buyers.len(),
            engine.sold(),
            config.quantity
        ));
    }
    let paid: HashSet<TxId> = engine
        .transactions()
        .filter(|t| t.state == TxState::Paid)
        .map(|t| t.tx)
        .collect();
    if !buyers.iter().all(|b| paid.contains(&b.id)) {
        return Err("catalogue lists a buyer the engine did not sell to".into());
    }
    Ok(())
}
