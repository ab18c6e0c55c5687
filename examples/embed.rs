//! Embedding flashsale-core in a few lines: a sale of 2 units, three
//! buyers, one payment, one abandoned slot, and the events that came out.
//!
//! Run: `cargo run --example embed`

use std::time::Duration;

use flashsale_core::{Engine, ObjectIdGenerator, SaleConfig, SaleId, Timestamp};

fn main() {
    let now = Timestamp::from(std::time::SystemTime::now());
    let mut config = SaleConfig::new(
        SaleId::from(bson::oid::ObjectId::new()),
        2,
        now,
        now.saturating_add(Duration::from_secs(3600)),
    );
    config.payment_timeout = Duration::from_secs(30);
    let mut engine =
        Engine::new(now, config, Box::new(ObjectIdGenerator::random())).expect("a valid sale");

    let ana = engine.buy(now, "ana").expect("ana joins");
    let bob = engine.buy(now, "bob").expect("bob joins");
    let cy = engine.buy(now, "cy").expect("cy joins");
    println!(
        "ana: {:?}\nbob: {:?}\ncy:  {:?}",
        ana.place, bob.place, cy.place
    );

    engine.paid(now, ana.tx).expect("ana pays");
    // Bob never pays: when his deadline comes, cy is promoted.
    let deadline = engine.poll_timeout().expect("bob's deadline");
    engine.handle_timeout(deadline);
    println!("cy now: {:?}", engine.status(cy.tx).expect("known").state);

    for event in engine.drain_events() {
        println!(
            "{:>6} ms  {:?}",
            event.at.as_millis() - now.as_millis(),
            event.kind
        );
    }
}
