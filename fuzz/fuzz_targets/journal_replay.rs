//! A journal is read back from storage: whatever bytes it holds, parsing and
//! replaying it must answer with an error or an engine, never panic, and a
//! replayed engine must keep its invariants.
#![no_main]

use flashsale_core::{Engine, Event, SequentialIds};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(journal) = serde_json::from_slice::<Vec<Event>>(data) else {
        return;
    };
    if let Ok(engine) = Engine::replay(&journal, Box::new(SequentialIds::default())) {
        let q = engine.config().quantity;
        assert!(engine.sold() + engine.payment_slots() <= q, "replay oversold");
        let _ = engine.poll_timeout();
        for t in engine.transactions() {
            let _ = engine.status(t.tx);
        }
    }
});
