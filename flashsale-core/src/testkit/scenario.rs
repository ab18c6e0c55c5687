//! Random operation sequences against one engine, for property tests and
//! fuzzing: [`Op`]s, decoded from bytes or generated, and a [`Scenario`]
//! that applies them and checks each answer against the engine's contract.

use std::time::Duration;

use crate::engine::{
    BuyError, Control, ControlError, Engine, LeaveError, PaidError, PaidOutcome, PrequeueOrder,
    SaleConfig, TxState,
};
use crate::id::{SaleId, SequentialIds, TxId};
use crate::testkit::Checker;
use crate::time::Timestamp;

/// One step of a scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// Buyer number `n` (of a small pool, so names repeat) buys.
    Buy(u8),
    /// The `n`-th transaction made so far (modulo their number) is paid.
    Paid(u16),
    /// The `n`-th transaction made so far leaves.
    Leave(u16),
    /// Time moves on by this many milliseconds.
    Advance(u16),
    /// The driver calls `handle_timeout` at the engine's deadline.
    Timeout,
    /// The operator's control number `n` ([`Op::control`]) with `arg`.
    Control(u8, u16),
}

impl Op {
    /// Decodes ops from fuzzer bytes, three bytes an op.
    pub fn decode(bytes: &[u8]) -> Vec<Op> {
        bytes
            .chunks_exact(3)
            .map(|c| {
                let arg = u16::from_le_bytes([c[1], c[2]]);
                match c[0] % 6 {
                    0 => Op::Buy(c[1]),
                    1 => Op::Paid(arg),
                    2 => Op::Leave(arg),
                    3 => Op::Advance(arg % 200),
                    4 => Op::Timeout,
                    _ => Op::Control(c[1], arg),
                }
            })
            .collect()
    }
}

impl Op {
    /// The operator's change an [`Op::Control`] makes at `now`: pause,
    /// resume, a slot limit, an admission rate (120 to 5,880 a minute,
    /// so that it binds within a scenario), a stock, a later end, joining
    /// closed or open, and — rarely — the end.
    pub fn control(n: u8, arg: u16, now: Timestamp) -> Control {
        let some = |v: u64| (v > 0).then_some(v);
        match n % 64 {
            0..=9 => Control::Pause,
            10..=23 => Control::Resume,
            24..=31 => Control::MaxPaymentSlots(some(u64::from(arg % 6))),
            32..=39 => Control::AdmissionsPerMinute(some(u64::from(arg % 50) * 120)),
            40..=49 => Control::Quantity(u64::from(arg % 10)),
            50..=54 => {
                Control::EndsAt(now.saturating_add(Duration::from_millis(u64::from(arg % 3_000))))
            }
            55..=62 => Control::Joining(arg.is_multiple_of(2)),
            _ => Control::End,
        }
    }
}

/// `config` with a pre-queue opening 500 ms before the start (when
/// scenarios begin) and an admission rate, if given.
pub fn with_opening(
    mut config: SaleConfig,
    prequeue: Option<PrequeueOrder>,
    admissions_per_minute: Option<u64>,
) -> SaleConfig {
    if let Some(order) = prequeue {
        config.prequeue_opens_at = Some(Timestamp::from_millis(
            config.starts_at.as_millis().saturating_sub(500),
        ));
        config.prequeue_order = order;
    }
    config.admissions_per_minute = admissions_per_minute.filter(|&r| r > 0);
    config
}

/// The sale every scenario runs: opens at 1,000 ms, ends `length` ms later.
pub fn scenario_config(
    quantity: u64,
    max_slots: Option<u64>,
    timeout_ms: u64,
    length_ms: u64,
) -> SaleConfig {
    let start = Timestamp::from_millis(1_000);
    let mut config = SaleConfig::new(
        SaleId::from(bson::oid::ObjectId::from_bytes([7; 12])),
        quantity,
        start,
        Timestamp::from_millis(1_000 + length_ms.max(1)),
    );
    config.payment_timeout = Duration::from_millis(timeout_ms.max(1));
    config.max_payment_slots = max_slots.filter(|&m| m > 0);
    config
}

/// An engine, a [`Checker`] following it, and the transactions made so far.
#[derive(Debug)]
pub struct Scenario {
    /// The engine under test.
    pub engine: Engine,
    /// Its invariant checker, fed every event.
    pub checker: Checker,
    txs: Vec<TxId>,
    now: Timestamp,
}

impl Scenario {
    /// A scenario over a fresh engine for `config`, starting 500 ms before
    /// the sale opens, with deterministic ids.
    pub fn new(config: SaleConfig) -> Self {
        let now = Timestamp::from_millis(config.starts_at.as_millis().saturating_sub(500));
        let mut engine =
            Engine::new(now, config, Box::new(SequentialIds::default())).expect("valid config");
        let mut checker = Checker::new();
        checker.observe(&mut engine).expect("opening");
        Scenario {
            engine,
            checker,
            txs: Vec::new(),
            now,
        }
    }

    /// Applies `op`, feeds the events to the checker, and checks the answer
    /// against the engine's contract (e.g. a buy while sold out must be
    /// refused as sold out; a second payment changes nothing).
    pub fn step(&mut self, op: Op) -> Result<(), String> {
        let e = &mut self.engine;
        let pick = |n: u16, txs: &[TxId]| (!txs.is_empty()).then(|| txs[n as usize % txs.len()]);
        match op {
            Op::Buy(n) => {
                let sold_out = e.sold() == e.config().quantity;
                let name = format!("buyer-{}", n % 40);
                let joins = self.checker.joins(&name);
                match e.buy(self.now, &name) {
                    Ok(a) => {
                        if sold_out {
                            return Err("sold a place in a sold-out sale".into());
                        }
                        self.txs.push(a.tx);
                    }
                    Err(BuyError::SoldOut) if !sold_out => {
                        return Err("refused as sold out with stock left".into());
                    }
                    Err(BuyError::SoldOut | BuyError::Ended { .. }) => {}
                    Err(BuyError::NotStarted { .. })
                        if e.config().prequeue_opens_at.is_none_or(|p| self.now < p) => {}
                    Err(BuyError::JoiningClosed) if !e.is_joining_open() => {}
                    Err(BuyError::AlreadyJoined { state, .. }) if state.blocks_rejoin() => {}
                    // Refused at the limit, not before (the checker refuses
                    // any join past it).
                    Err(BuyError::TooManyJoins { max })
                        if e.config().max_joins_per_buyer == Some(max) && joins >= max => {}
                    Err(other) => return Err(format!("unexpected buy error {other:?}")),
                }
            }
            Op::Paid(n) => {
                let Some(tx) = pick(n, &self.txs) else {
                    return Ok(());
                };
                let before = e.sold();
                let was = e.status(tx).map(|s| s.state);
                match e.paid(self.now, tx) {
                    Ok(PaidOutcome::Paid) if e.sold() == before + 1 => {}
                    Ok(PaidOutcome::AlreadyPaid)
                        if e.sold() == before && was == Some(TxState::Paid) => {}
                    Err(
                        PaidError::SlotExpired
                        | PaidError::SlotLeft
                        | PaidError::NotInPayment { .. },
                    ) if e.sold() == before => {}
                    other => return Err(format!("paid {tx} from {was:?}: {other:?}")),
                }
            }
            Op::Leave(n) => {
                let Some(tx) = pick(n, &self.txs) else {
                    return Ok(());
                };
                match e.leave(self.now, tx) {
                    Ok(()) | Err(LeaveError::AlreadyPaid | LeaveError::NotLive { .. }) => {}
                    Err(other) => return Err(format!("unexpected leave error {other:?}")),
                }
            }
            Op::Control(n, arg) => {
                let control = Op::control(n, arg, self.now);
                // What is due happens first, as the command does.
                e.handle_timeout(self.now);
                let committed = e.sold() + e.payment_slots();
                match e.control(self.now, control) {
                    Ok(()) => match control {
                        Control::Quantity(q) if e.config().quantity != q => {
                            return Err(format!(
                                "stock is {} after {control:?}",
                                e.config().quantity
                            ));
                        }
                        Control::Pause if !e.is_paused() => return Err("not paused".into()),
                        _ => {}
                    },
                    Err(ControlError::Ended) if !e.is_active() => {}
                    Err(ControlError::Zero | ControlError::EndTooEarly) => {}
                    Err(ControlError::BelowCommitted { quantity, .. })
                        if quantity < committed.max(1) => {}
                    Err(other) => return Err(format!("{control:?} refused: {other:?}")),
                }
            }
            Op::Advance(ms) => self.now = self.now.saturating_add(Duration::from_millis(ms.into())),
            Op::Timeout => {
                if let Some(due) = e.poll_timeout() {
                    self.now = self.now.max(due);
                }
                e.handle_timeout(self.now);
            }
        }
        self.checker.observe(&mut self.engine)
    }
}
