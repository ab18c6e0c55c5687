//! What a sale's task measures: the `flashsale_*` metrics (through the
//! `metrics` facade: nothing is recorded until a server installs an
//! exporter) and the figures a sale's report gives ([`Measured`]).

use std::collections::VecDeque;
use std::time::Duration;

use metrics::{Counter, Gauge, Histogram, Label, counter, gauge, histogram};

use super::Measured;
use crate::engine::{BuyError, Engine, Event, EventKind};
use crate::id::SaleId;
use crate::time::Timestamp;

/// How many recent times in queue the percentiles are taken over.
const RECENT: usize = 1024;

/// One sale's metric handles, made once (building a metric's key on each
/// event would cost more than the event).
struct Handles {
    joins: Counter,
    promotions: Counter,
    payments: Counter,
    expiries: Counter,
    leaves: Counter,
    time_in_queue: Histogram,
    time_to_pay: Histogram,
    waiting: Gauge,
    payment_slots: Gauge,
    sold: Gauge,
    remaining: Gauge,
    prequeued: Gauge,
    paused: Gauge,
    /// `flashsale_refusals_total` by reason, in [`REASONS`] order.
    refusals: Vec<Counter>,
    append: Histogram,
}

/// The reasons a buy is refused, as `flashsale_refusals_total` labels them.
const REASONS: [&str; 8] = [
    "invalid_name",
    "not_started",
    "ended",
    "sold_out",
    "already_joined",
    "invalid_account",
    "too_many_joins",
    "joining_closed",
];

impl Handles {
    fn new(sale: &Label) -> Self {
        let l = || [sale.clone()];
        Handles {
            joins: counter!("flashsale_joins_total", l().iter()),
            promotions: counter!("flashsale_promotions_total", l().iter()),
            payments: counter!("flashsale_payments_total", l().iter()),
            expiries: counter!("flashsale_expiries_total", l().iter()),
            leaves: counter!("flashsale_leaves_total", l().iter()),
            time_in_queue: histogram!("flashsale_time_in_queue_seconds", l().iter()),
            time_to_pay: histogram!("flashsale_time_to_pay_seconds", l().iter()),
            waiting: gauge!("flashsale_sale_waiting", l().iter()),
            payment_slots: gauge!("flashsale_sale_payment_slots", l().iter()),
            sold: gauge!("flashsale_sale_sold", l().iter()),
            remaining: gauge!("flashsale_sale_remaining", l().iter()),
            prequeued: gauge!("flashsale_sale_prequeued", l().iter()),
            paused: gauge!("flashsale_sale_paused", l().iter()),
            refusals: REASONS
                .iter()
                .map(|&reason| {
                    let labels = [sale.clone(), Label::new("reason", reason)];
                    counter!("flashsale_refusals_total", labels.iter())
                })
                .collect(),
            append: histogram!("flashsale_journal_append_seconds"),
        }
    }
}

/// One sale's measures.
pub(super) struct Measures {
    metrics: Handles,
    counts: Measured,
    /// The latest times in queue, in milliseconds.
    in_queue: VecDeque<u64>,
}

impl Measures {
    pub(super) fn new(sale: SaleId) -> Self {
        let sale = Label::new("sale", sale.to_string());
        Measures {
            metrics: Handles::new(&sale),
            counts: Measured::default(),
            in_queue: VecDeque::with_capacity(RECENT),
        }
    }

    /// A buy refused for `error`. (Under a sold-out crowd every buy is
    /// one: the counter is looked up by index, not built.)
    pub(super) fn refused(&mut self, error: &BuyError) {
        self.counts.refusals += 1;
        let reason = match error {
            BuyError::InvalidName(_) => 0,
            BuyError::NotStarted { .. } => 1,
            BuyError::Ended { .. } => 2,
            BuyError::SoldOut => 3,
            BuyError::AlreadyJoined { .. } => 4,
            BuyError::InvalidAccount => 5,
            BuyError::TooManyJoins { .. } => 6,
            BuyError::JoiningClosed => 7,
        };
        self.metrics.refusals[reason].increment(1);
    }

    /// A journal append (of one batch) took `took`.
    pub(super) fn appended(&self, took: Duration) {
        self.metrics.append.record(took.as_secs_f64());
    }

    /// Counts a committed batch's events and sets the sale's gauges.
    pub(super) fn committed(&mut self, engine: &Engine, events: &[Event]) {
        for e in events {
            match &e.kind {
                EventKind::Joined { .. } => {
                    self.counts.joins += 1;
                    self.metrics.joins.increment(1);
                }
                EventKind::Promoted { tx, .. } => {
                    self.counts.promotions += 1;
                    self.metrics.promotions.increment(1);
                    if let Some(joined) = engine.joined_at(*tx) {
                        let waited = since(joined, e.at);
                        self.metrics.time_in_queue.record(waited.as_secs_f64());
                        if self.in_queue.len() == RECENT {
                            self.in_queue.pop_front();
                        }
                        self.in_queue.push_back(waited.as_millis() as u64);
                    }
                }
                EventKind::Paid { tx, .. } => {
                    self.counts.payments += 1;
                    self.metrics.payments.increment(1);
                    if let Some(given) = engine.slot_given_at(*tx) {
                        self.metrics
                            .time_to_pay
                            .record(since(given, e.at).as_secs_f64());
                    }
                }
                EventKind::Expired { .. } => {
                    self.counts.expiries += 1;
                    self.metrics.expiries.increment(1);
                }
                EventKind::Left { .. } => {
                    self.counts.leaves += 1;
                    self.metrics.leaves.increment(1);
                }
                _ => {}
            }
        }
        self.gauges(engine);
    }

    /// Sets the sale's gauges from its engine.
    pub(super) fn gauges(&self, engine: &Engine) {
        let m = &self.metrics;
        m.waiting.set(engine.waiting() as f64);
        m.payment_slots.set(engine.payment_slots() as f64);
        m.sold.set(engine.sold() as f64);
        m.remaining
            .set((engine.config().quantity - engine.sold()) as f64);
        m.prequeued.set(engine.prequeued() as f64);
        m.paused.set(f64::from(u8::from(engine.is_paused())));
    }

    /// The counts, and the percentiles of the latest times in queue.
    pub(super) fn measured(&self) -> Measured {
        let mut recent: Vec<u64> = self.in_queue.iter().copied().collect();
        recent.sort_unstable();
        let at = |q: f64| {
            (!recent.is_empty()).then(|| {
                let i = ((recent.len() - 1) as f64 * q).round() as usize;
                Duration::from_millis(recent[i])
            })
        };
        Measured {
            time_in_queue_p50: at(0.5),
            time_in_queue_p90: at(0.9),
            ..self.counts.clone()
        }
    }
}

fn since(from: Timestamp, to: Timestamp) -> Duration {
    Duration::from_millis(to.as_millis().saturating_sub(from.as_millis()))
}
