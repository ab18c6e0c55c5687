//! Random operation sequences against one engine — buys, payments,
//! departures, time, and the operator's controls, in sales with or without
//! a pre-queue and an admission rate: every invariant of the README
//! ("Invariants") after every step, and a journal replay at the end.
#![no_main]

use flashsale_core::PrequeueOrder;
use flashsale_core::testkit::{Op, Scenario, invariants, scenario_config, with_opening};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((head, ops)) = data.split_first_chunk::<7>() else {
        return;
    };
    // A pre-queue (shuffled or FIFO) and an admission rate, sometimes.
    let prequeue = match head[5] % 3 {
        0 => None,
        1 => Some(PrequeueOrder::Shuffle),
        _ => Some(PrequeueOrder::Fifo),
    };
    let config = with_opening(
        scenario_config(
            1 + u64::from(head[0] % 20),
            Some(u64::from(head[1] % 6)),
            1 + u64::from(head[2]),
            50 + 40 * u64::from(u16::from_le_bytes([head[3], head[4]]) % 250),
        ),
        prequeue,
        Some(u64::from(head[6]) * 20),
    );
    let mut s = Scenario::new(config);
    for op in Op::decode(ops) {
        s.step(op).unwrap_or_else(|e| panic!("{op:?}: {e}"));
        s.checker
            .check_all(&s.engine)
            .unwrap_or_else(|e| panic!("after {op:?}: {e}"));
    }
    s.checker.replay_rebuilds_state(&s.engine).expect("replay");
    invariants::catalogue_applies_each_paid_once(&s.engine, s.checker.journal(), |i| {
        1 + usize::from(ops.get(i).copied().unwrap_or(0) % 3)
    })
    .expect("catalogue");
});
