//! The engine's invariants (README, "Invariants"), one named property test each,
//! over random sequences of buy / paid / leave / advance-time / timeout.
//! Each runs 1,000 sequences of up to 500 operations by default
//! (`PROPTEST_CASES` overrides).
#![allow(clippy::unwrap_used, reason = "a test fails at the first surprise")]

use flashsale_core::SaleConfig;
use flashsale_core::testkit::invariants;
use flashsale_core::testkit::{Checker, Op, Scenario, scenario_config};
use proptest::prelude::*;
use proptest::strategy::ValueTree;

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => any::<u8>().prop_map(Op::Buy),
        4 => any::<u16>().prop_map(Op::Paid),
        1 => any::<u16>().prop_map(Op::Leave),
        2 => (0u16..120).prop_map(Op::Advance),
        1 => Just(Op::Timeout),
    ]
}

/// A sale (small stock, sometimes capped slots, short timeouts, windows
/// that sometimes end mid-run) and up to 500 operations on it.
fn scenario() -> impl Strategy<Value = (SaleConfig, Vec<Op>)> {
    (
        (1u64..16, prop::option::of(1u64..6), 1u64..150, 50u64..8_000)
            .prop_map(|(q, slots, timeout, len)| scenario_config(q, slots, timeout, len)),
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
    }
    for (what, n) in [
        ("sold out", sold_out),
        ("dropped", dropped),
        ("expired", expired),
        ("promoted", promoted),
        ("ended", ended),
    ] {
        println!("{what}: {n} of 300");
        assert!(n >= 30, "only {n} of 300 scenarios {what}");
    }
}
