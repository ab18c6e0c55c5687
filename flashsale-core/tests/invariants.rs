//! The engine's invariants (README, "Invariants"), one named property test each,
//! over random sequences of buy / paid / leave / advance-time / timeout.
//! Each runs 1,000 sequences of up to 500 operations by default
//! (`PROPTEST_CASES` overrides).
#![allow(clippy::unwrap_used, reason = "a test fails at the first surprise")]

use flashsale_core::PrequeueOrder;
use flashsale_core::SaleConfig;
use flashsale_core::testkit::invariants;
use flashsale_core::testkit::{Checker, Op, Scenario, scenario_config, with_opening};
use proptest::prelude::*;
use proptest::strategy::ValueTree;

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => any::<u8>().prop_map(Op::Buy),
        4 => any::<u16>().prop_map(Op::Paid),
        1 => any::<u16>().prop_map(Op::Leave),
        2 => (0u16..120).prop_map(Op::Advance),
        1 => Just(Op::Timeout),
        1 => (any::<u8>(), any::<u16>()).prop_map(|(n, arg)| Op::Control(n, arg)),
    ]
}

/// A sale (small stock, sometimes capped slots, short timeouts, windows
/// that sometimes end mid-run) and up to 500 operations on it.
fn scenario() -> impl Strategy<Value = (SaleConfig, Vec<Op>)> {
    (
        (
            (1u64..16, prop::option::of(1u64..6), 1u64..150, 50u64..8_000),
            prop::option::of(prop_oneof![
                Just(PrequeueOrder::Shuffle),
                Just(PrequeueOrder::Fifo)
            ]),
            prop::option::weighted(0.2, 1u64..3_000),
        )
            .prop_map(|((q, slots, timeout, len), prequeue, rate)| {
                with_opening(scenario_config(q, slots, timeout, len), prequeue, rate)
            }),
        prop::collection::vec(op(), 0..=500),
    )
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|c| c.parse().ok())
            .unwrap_or(1000),
        ..ProptestConfig::default()
    }
}

/// Runs `ops` and asserts `check` after every step.
fn holds(
    config: SaleConfig,
    ops: &[Op],
    check: impl Fn(&Checker, &flashsale_core::Engine) -> Result<(), String>,
) -> Result<Scenario, TestCaseError> {
    let mut s = Scenario::new(config);
    for (i, &op) in ops.iter().enumerate() {
        s.step(op)
            .map_err(|e| TestCaseError::fail(format!("step {i} {op:?}: {e}")))?;
        check(&s.checker, &s.engine)
            .map_err(|e| TestCaseError::fail(format!("after step {i} {op:?}: {e}")))?;
    }
    Ok(s)
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn never_oversell((config, ops) in scenario()) {
        holds(config, &ops, Checker::never_oversell)?;
    }

    #[test]
    fn never_undersell((config, ops) in scenario()) {
        holds(config, &ops, Checker::never_undersell)?;
    }

    #[test]
    fn one_live_entry_per_buyer((config, ops) in scenario()) {
        holds(config, &ops, Checker::one_live_entry_per_buyer)?;
    }

    #[test]
    fn fifo_promotion((config, ops) in scenario()) {
        holds(config, &ops, Checker::fifo)?;
    }

    #[test]
    fn no_overdue_slot_after_handle_timeout((config, ops) in scenario()) {
        holds(config, &ops, Checker::no_overdue_slot)?;
    }

    #[test]
    fn sold_out_empties_the_queue_and_tells_everyone((config, ops) in scenario()) {
        // `Scenario::step` also checks that every buy after a sell-out is
        // refused as sold out; `scenarios_reach_interesting_states` checks
        // that sell-outs happen often enough for this to mean something.
        holds(config, &ops, Checker::sold_out_tells_everyone)?;
    }

    #[test]
    fn replaying_the_journal_rebuilds_the_same_state((config, ops) in scenario()) {
        let mut s = Scenario::new(config);
        for (i, &op) in ops.iter().enumerate() {
            s.step(op).map_err(TestCaseError::fail)?;
            if i % 50 == 49 {
                s.checker.replay_rebuilds_state(&s.engine).map_err(TestCaseError::fail)?;
            }
        }
        s.checker.replay_rebuilds_state(&s.engine).map_err(TestCaseError::fail)?;
    }

    #[test]
    fn catalogue_applies_each_paid_once(
        (config, ops) in scenario(),
        copies in prop::collection::vec(1usize..4, 1..64),
    ) {
        let mut s = Scenario::new(config);
        for &op in &ops {
            s.step(op).map_err(TestCaseError::fail)?;
        }
        invariants::catalogue_applies_each_paid_once(&s.engine, s.checker.journal(), |i| copies[i % copies.len()])
            .map_err(TestCaseError::fail)?;
    }
}

/// The scenarios reach the states the invariants are about: a sell-out
/// with buyers let go, expiries, promotions and sales that end.
#[test]
fn scenarios_reach_interesting_states() {
    use flashsale_core::EventKind;
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let (mut sold_out, mut dropped, mut expired, mut promoted, mut ended) = (0, 0, 0, 0, 0);
    let (mut drawn, mut paused, mut restocked) = (0, 0, 0);
    for _ in 0..300 {
        let (config, ops) = scenario().new_tree(&mut runner).unwrap().current();
        let mut s = Scenario::new(config);
        for op in ops {
            s.step(op).unwrap();
        }
        let journal = s.checker.journal();
        let has = |f: &dyn Fn(&EventKind) -> bool| journal.iter().any(|e| f(&e.kind)) as u32;
        sold_out += has(&|k| matches!(k, EventKind::SoldOut));
        dropped += has(&|k| matches!(k, EventKind::Dropped { .. }));
        expired += has(&|k| matches!(k, EventKind::Expired { .. }));
        promoted += has(&|k| matches!(k, EventKind::Promoted { .. }));
        ended += has(&|k| matches!(k, EventKind::Ended));
        drawn += has(&|k| matches!(k, EventKind::Drawn { .. }));
        paused += has(&|k| matches!(k, EventKind::Paused));
        restocked += has(&|k| matches!(k, EventKind::Restocked { .. }));
    }
    let reached = [
        ("sold out", sold_out),
        ("dropped", dropped),
        ("expired", expired),
        ("promoted", promoted),
        ("ended", ended),
        ("drawn a pre-queue", drawn),
        ("paused", paused),
        ("restocked", restocked),
    ];
    for (what, n) in reached {
        println!("{what}: {n} of 300");
    }
    for (what, n) in reached {
        assert!(n >= 30, "only {n} of 300 scenarios {what}");
    }
}

/// Applies `op` to `e` as [`Scenario`] would, returning the answer in words
/// (ids included) so that two engines can be compared call by call.
fn drive(
    e: &mut flashsale_core::Engine,
    now: &mut flashsale_core::Timestamp,
    txs: &mut Vec<flashsale_core::TxId>,
    op: Op,
) -> String {
    let pick = |n: u16, txs: &[flashsale_core::TxId]| {
        (!txs.is_empty()).then(|| txs[n as usize % txs.len()])
    };
    match op {
        Op::Buy(n) => {
            let answer = e.buy(*now, &format!("buyer-{}", n % 40));
            if let Ok(a) = &answer {
                txs.push(a.tx);
            }
            format!("{answer:?}")
        }
        Op::Paid(n) => format!("{:?}", pick(n, txs).map(|tx| e.paid(*now, tx))),
        Op::Leave(n) => format!("{:?}", pick(n, txs).map(|tx| e.leave(*now, tx))),
        Op::Advance(ms) => {
            *now = now.saturating_add(std::time::Duration::from_millis(ms.into()));
            String::new()
        }
        Op::Timeout => {
            if let Some(due) = e.poll_timeout() {
                *now = (*now).max(due);
            }
            e.handle_timeout(*now);
            String::new()
        }
        Op::Control(n, arg) => format!("{:?}", e.control(*now, Op::control(n, arg, *now))),
    }
}

proptest! {
    #![proptest_config(config())]

    /// Invariant 7 for snapshots: an engine replayed from another's
    /// snapshot is that engine — same transactions, positions, deadlines,
    /// counts and timers — and answers and emits exactly what it does from
    /// then on. A snapshot of the replayed engine is the same snapshot.
    #[test]
    fn a_snapshot_replays_into_an_engine_that_carries_on_alike(
        (config, ops) in scenario(),
        cut in 0usize..=500,
    ) {
        use flashsale_core::{Engine, SequentialIds, Timestamp};
        let cut = cut.min(ops.len());
        let mut now = Timestamp::from_millis(config.starts_at.as_millis().saturating_sub(500));
        let mut a = Engine::new(now, config, Box::new(SequentialIds::default())).unwrap();
        let mut txs = Vec::new();
        for &op in &ops[..cut] {
            drive(&mut a, &mut now, &mut txs, op);
        }
        a.drain_events().for_each(drop);
        let snapshot = a.snapshot();
        let mut b = Engine::replay(&snapshot, Box::new(SequentialIds::default()))
            .map_err(|e| TestCaseError::fail(format!("snapshot does not replay: {e}")))?;
        prop_assert_eq!(b.snapshot(), snapshot.clone());
        prop_assert!(snapshot.len() <= a.snapshot_len(), "{} > {}", snapshot.len(), a.snapshot_len());
        let same = |a: &Engine, b: &Engine| {
            a.transactions().eq(b.transactions())
                && (a.sold(), a.poll_timeout(), a.now()) == (b.sold(), b.poll_timeout(), b.now())
        };
        prop_assert!(same(&a, &b), "the replayed state differs");
        let (mut now_b, mut txs_b) = (now, txs.clone());
        for &op in &ops[cut..] {
            let answer_a = drive(&mut a, &mut now, &mut txs, op);
            let answer_b = drive(&mut b, &mut now_b, &mut txs_b, op);
            prop_assert_eq!(answer_a, answer_b, "after {:?}", op);
            let (ea, eb): (Vec<_>, Vec<_>) = (a.drain_events().collect(), b.drain_events().collect());
            prop_assert_eq!(ea, eb, "events after {:?}", op);
        }
        prop_assert!(same(&a, &b), "the states parted");
    }
}
