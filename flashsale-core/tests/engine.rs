//! One behaviour per test: one call, its answer and the exact events.
#![allow(clippy::unwrap_used, reason = "a test fails at the first surprise")]

use std::time::Duration;

use flashsale_core::{
    Admission, BuyError, BuyerName, DropReason, Engine, Event, EventKind, JOURNAL_FORMAT,
    LeaveError, NameError, PaidError, PaidOutcome, Place, ReplayError, SaleConfig, SaleId,
    SequentialIds, Timestamp, TxId, TxState,
};

const START: Timestamp = Timestamp::from_millis(10_000);
const END: Timestamp = Timestamp::from_millis(1_000_000);
const TIMEOUT: Duration = Duration::from_secs(60);

fn sale() -> SaleId {
    "5f0000000000000000000001".parse().unwrap()
}

fn config(quantity: u64) -> SaleConfig {
    SaleConfig::new(sale(), quantity, START, END)
}

fn at(ms_after_start: u64) -> Timestamp {
    START.saturating_add(Duration::from_millis(ms_after_start))
}

/// An engine already started, with its opening events drained.
fn engine(config: SaleConfig) -> Engine {
    let mut e = Engine::new(START, config, Box::new(SequentialIds::default())).unwrap();
    e.handle_timeout(START);
    let opening: Vec<_> = e.drain_events().map(|e| e.kind).collect();
    assert!(matches!(
        opening[..],
        [EventKind::Opened { .. }, EventKind::Started]
    ));
    e
}

fn name(n: &str) -> BuyerName {
    BuyerName::parse(n).unwrap()
}

fn tx(n: u64) -> TxId {
    format!("{n:024x}").parse().unwrap()
}

fn kinds(e: &mut Engine) -> Vec<EventKind> {
    e.drain_events().map(|e| e.kind).collect()
}

fn buy(e: &mut Engine, who: &str) -> Admission {
    e.buy(START, who).unwrap()
}

#[test]
fn first_buyers_get_slots_the_rest_wait_in_order() {
    let mut e = engine(config(2));
    assert_eq!(
        buy(&mut e, "ana").place,
        Place::Payment {
            deadline: START.saturating_add(TIMEOUT)
        }
    );
    buy(&mut e, "bob");
    let cy = buy(&mut e, "cy");
    let di = buy(&mut e, "di");
    assert_eq!(cy.place, Place::Waiting { position: 1 });
    assert_eq!(di.place, Place::Waiting { position: 2 });
    assert_eq!(
        kinds(&mut e),
        vec![
            EventKind::Joined {
                tx: tx(1),
                buyer: name("ana"),
                deadline: Some(START.saturating_add(TIMEOUT)),
                account: None,
            },
            EventKind::Joined {
                tx: tx(2),
                buyer: name("bob"),
                deadline: Some(START.saturating_add(TIMEOUT)),
                account: None,
            },
            EventKind::Joined {
                tx: tx(3),
                buyer: name("cy"),
                deadline: None,
                account: None,
            },
            EventKind::Joined {
                tx: tx(4),
                buyer: name("di"),
                deadline: None,
                account: None,
            },
        ]
    );
}

#[test]
fn a_sale_of_five_never_has_more_than_five_payments() {
    // The reference accepted 30 payments for a sale of 5.
    let mut e = engine(config(5));
    let admissions: Vec<_> = (0..30).map(|i| buy(&mut e, &format!("b{i}"))).collect();
    for a in &admissions {
        let _ = e.paid(START, a.tx);
    }
    assert_eq!(e.sold(), 5);
    let paid = admissions
        .iter()
        .filter(|a| e.status(a.tx).unwrap().state == TxState::Paid)
        .count();
    assert_eq!(paid, 5);
}

#[test]
fn buy_is_refused_before_start_and_after_end() {
    let mut e = Engine::new(
        Timestamp::ZERO,
        config(1),
        Box::new(SequentialIds::default()),
    )
    .unwrap();
    e.drain_events().for_each(drop);
    assert_eq!(
        e.buy(Timestamp::from_millis(9_999), "ana"),
        Err(BuyError::NotStarted { starts_at: START })
    );
    assert_eq!(kinds(&mut e), vec![]);
    assert_eq!(e.buy(END, "ana"), Err(BuyError::Ended { ended_at: END }));
    assert_eq!(kinds(&mut e), vec![EventKind::Started, EventKind::Ended]);
}

#[test]
fn bad_names_are_refused() {
    let mut e = engine(config(1));
    assert_eq!(
        e.buy(START, "   "),
        Err(BuyError::InvalidName(NameError::Empty))
    );
    assert_eq!(
        e.buy(START, &"x".repeat(10_000)),
        Err(BuyError::InvalidName(NameError::TooLong))
    );
    assert_eq!(kinds(&mut e), vec![]);
    // Names are trimmed, so "ana" and " ana " are one buyer.
    buy(&mut e, " ana ");
    assert!(matches!(
        e.buy(START, "ana"),
        Err(BuyError::AlreadyJoined { .. })
    ));
}

#[test]
fn one_live_entry_per_buyer() {
    let mut e = engine(config(1));
    let ana = buy(&mut e, "ana");
    let bob = buy(&mut e, "bob");
    assert_eq!(
        e.buy(START, "ana"),
        Err(BuyError::AlreadyJoined {
            tx: ana.tx,
            state: TxState::Payment
        })
    );
    assert_eq!(
        e.buy(START, "bob"),
        Err(BuyError::AlreadyJoined {
            tx: bob.tx,
            state: TxState::Waiting
        })
    );
    assert_eq!(kinds(&mut e).len(), 2, "only the two joins");
}

#[test]
fn paid_sells_a_unit_and_is_idempotent() {
    let mut e = engine(config(2));
    let ana = buy(&mut e, "ana");
    kinds(&mut e);
    assert_eq!(e.paid(at(5), ana.tx), Ok(PaidOutcome::Paid));
    assert_eq!(
        kinds(&mut e),
        vec![EventKind::Paid {
            tx: ana.tx,
            buyer: name("ana"),
            account: None,
        }]
    );
    assert_eq!(e.paid(at(6), ana.tx), Ok(PaidOutcome::AlreadyPaid));
    assert_eq!(kinds(&mut e), vec![]);
    assert_eq!(e.sold(), 1);
    // A paid buyer may not join again.
    assert!(matches!(
        e.buy(at(7), "ana"),
        Err(BuyError::AlreadyJoined {
            state: TxState::Paid,
            ..
        })
    ));
}

#[test]
fn paid_is_refused_for_unknown_and_waiting_transactions() {
    let mut e = engine(config(1));
    buy(&mut e, "ana");
    let bob = buy(&mut e, "bob");
    kinds(&mut e);
    assert_eq!(e.paid(START, tx(99)), Err(PaidError::UnknownTransaction));
    assert_eq!(
        e.paid(START, bob.tx),
        Err(PaidError::NotInPayment {
            state: TxState::Waiting
        })
    );
    assert_eq!(kinds(&mut e), vec![]);
}

#[test]
fn with_capped_slots_a_payment_promotes_the_next_buyer() {
    let mut c = config(10);
    c.max_payment_slots = Some(1);
    let mut e = engine(c);
    let ana = buy(&mut e, "ana");
    let bob = buy(&mut e, "bob");
    assert_eq!(bob.place, Place::Waiting { position: 1 });
    kinds(&mut e);
    e.paid(at(1_000), ana.tx).unwrap();
    assert_eq!(
        kinds(&mut e),
        vec![
            EventKind::Paid {
                tx: ana.tx,
                buyer: name("ana"),
                account: None,
            },
            EventKind::Promoted {
                tx: bob.tx,
                buyer: name("bob"),
                deadline: at(1_000).saturating_add(TIMEOUT)
            },
        ]
    );
}

#[test]
fn the_last_sale_lets_every_waiting_buyer_go_in_order() {
    let mut e = engine(config(1));
    let ana = buy(&mut e, "ana");
    let bob = buy(&mut e, "bob");
    let cy = buy(&mut e, "cy");
    kinds(&mut e);
    e.paid(START, ana.tx).unwrap();
    assert_eq!(
        kinds(&mut e),
        vec![
            EventKind::Paid {
                tx: ana.tx,
                buyer: name("ana"),
                account: None,
            },
            EventKind::SoldOut,
            EventKind::Dropped {
                tx: bob.tx,
                buyer: name("bob"),
                reason: DropReason::SoldOut
            },
            EventKind::Dropped {
                tx: cy.tx,
                buyer: name("cy"),
                reason: DropReason::SoldOut
            },
        ]
    );
    assert_eq!(e.waiting(), 0);
    assert_eq!(e.status(bob.tx).unwrap().state, TxState::RejectedSoldOut);
    assert_eq!(e.buy(START, "di"), Err(BuyError::SoldOut));
    assert_eq!(
        e.paid(START, bob.tx),
        Err(PaidError::NotInPayment {
            state: TxState::RejectedSoldOut
        })
    );
}

#[test]
fn slots_expire_at_their_deadline_and_are_backfilled_in_order() {
    let mut e = engine(config(1));
    let ana = buy(&mut e, "ana");
    let bob = e.buy(at(10), "bob").unwrap();
    let cy = e.buy(at(20), "cy").unwrap();
    kinds(&mut e);
    let deadline = START.saturating_add(TIMEOUT);
    assert_eq!(e.poll_timeout(), Some(deadline));

    // One millisecond early: nothing to do.
    e.handle_timeout(Timestamp::from_millis(deadline.as_millis() - 1));
    assert_eq!(kinds(&mut e), vec![]);

    e.handle_timeout(deadline);
    let bob_deadline = deadline.saturating_add(TIMEOUT);
    assert_eq!(
        kinds(&mut e),
        vec![
            EventKind::Expired {
                tx: ana.tx,
                buyer: name("ana")
            },
            EventKind::Promoted {
                tx: bob.tx,
                buyer: name("bob"),
                deadline: bob_deadline
            },
        ]
    );
    assert_eq!(e.status(cy.tx).unwrap().position, Some(1));
    assert_eq!(e.poll_timeout(), Some(bob_deadline));

    // A spurious second call does nothing.
    e.handle_timeout(deadline);
    assert_eq!(kinds(&mut e), vec![]);

    // An expired buyer may join again, at the back.
    let again = e.buy(deadline, "ana").unwrap();
    assert_eq!(again.place, Place::Waiting { position: 2 });
}

#[test]
fn a_late_payment_is_refused_and_a_refund_is_due() {
    let mut e = engine(config(1));
    let ana = buy(&mut e, "ana");
    kinds(&mut e);
    let late = START.saturating_add(TIMEOUT);
    assert_eq!(e.paid(late, ana.tx), Err(PaidError::SlotExpired));
    assert_eq!(
        kinds(&mut e),
        vec![
            EventKind::Expired {
                tx: ana.tx,
                buyer: name("ana")
            },
            EventKind::RefundDue {
                tx: ana.tx,
                buyer: name("ana")
            },
        ]
    );
    assert_eq!(e.sold(), 0);
}

#[test]
fn leaving_a_slot_backfills_it_and_leaving_a_place_moves_the_queue() {
    let mut e = engine(config(1));
    let ana = buy(&mut e, "ana");
    let bob = buy(&mut e, "bob");
    let cy = buy(&mut e, "cy");
    let di = buy(&mut e, "di");
    kinds(&mut e);

    e.leave(at(1), cy.tx).unwrap();
    assert_eq!(
        kinds(&mut e),
        vec![EventKind::Left {
            tx: cy.tx,
            buyer: name("cy")
        }]
    );
    assert_eq!(e.status(di.tx).unwrap().position, Some(2));

    e.leave(at(2), ana.tx).unwrap();
    assert_eq!(
        kinds(&mut e),
        vec![
            EventKind::Left {
                tx: ana.tx,
                buyer: name("ana")
            },
            EventKind::Promoted {
                tx: bob.tx,
                buyer: name("bob"),
                deadline: at(2).saturating_add(TIMEOUT)
            },
        ]
    );
    assert_eq!(e.status(di.tx).unwrap().position, Some(1));

    // Leaving twice is a no-op; a left buyer paying is owed a refund.
    e.leave(at(3), ana.tx).unwrap();
    assert_eq!(kinds(&mut e), vec![]);
    assert_eq!(e.paid(at(3), ana.tx), Err(PaidError::SlotLeft));
    assert_eq!(
        kinds(&mut e),
        vec![EventKind::RefundDue {
            tx: ana.tx,
            buyer: name("ana")
        }]
    );

    e.paid(at(4), bob.tx).unwrap();
    assert_eq!(e.leave(at(4), bob.tx), Err(LeaveError::AlreadyPaid));
    assert_eq!(e.leave(at(4), tx(99)), Err(LeaveError::UnknownTransaction));
}

#[test]
fn status_reports_state_position_and_deadline() {
    let mut e = engine(config(1));
    let ana = buy(&mut e, "ana");
    let bob = buy(&mut e, "bob");
    let s = e.status(ana.tx).unwrap();
    assert_eq!(
        (s.state, s.position, s.deadline),
        (TxState::Payment, None, Some(START.saturating_add(TIMEOUT)))
    );
    let s = e.status(bob.tx).unwrap();
    assert_eq!(
        (s.state, s.position, s.deadline),
        (TxState::Waiting, Some(1), None)
    );
    assert_eq!(s.buyer, name("bob"));
    assert!(e.status(tx(99)).is_none());
}

/// With two slots held and nobody paying or leaving, each waiting buyer's
/// `turn_by` is exactly when its slot comes (the driver calling
/// `handle_timeout` at every `poll_timeout`); a leave ahead only makes it
/// sooner.
#[test]
fn turn_by_bounds_when_a_waiting_buyer_gets_a_slot() {
    let mut c = config(10);
    c.max_payment_slots = Some(2);
    let mut e = engine(c);
    let t = |ms| Some(at(ms));
    let names = ["a", "b", "c", "d", "e", "f", "g"];
    let txs: Vec<TxId> = names
        .iter()
        .enumerate()
        .map(|(i, n)| e.buy(at(i as u64 * 1_000), n).unwrap().tx)
        .collect();
    let timeout = TIMEOUT.as_millis() as u64;
    // a and b hold slots until T and T + 1 s; c..g wait in rounds of two,
    // each round ending by the later of the two deadlines.
    let bounds: Vec<_> = txs[2..]
        .iter()
        .map(|&x| e.status(x).unwrap().turn_by)
        .collect();
    assert_eq!(
        bounds,
        [
            t(timeout + 1_000),
            t(timeout + 1_000),
            t(2 * timeout + 1_000),
            t(2 * timeout + 1_000),
            t(3 * timeout + 1_000)
        ]
    );
    assert_eq!(
        e.status(txs[0]).unwrap().turn_by,
        None,
        "a slot holder has no turn to wait for"
    );

    let mut promoted_at = std::collections::HashMap::new();
    let _ = kinds(&mut e);
    while let Some(now) = e.poll_timeout().filter(|&now| now < END) {
        e.handle_timeout(now);
        for k in kinds(&mut e) {
            if let EventKind::Promoted { tx, .. } = k {
                promoted_at.insert(tx, now);
            }
        }
        if promoted_at.len() == 5 {
            break;
        }
    }
    // Each slot passes on at its deadline: never later than the bound, and
    // here within the second between the two slots' deadlines.
    for (tx, bound) in txs[2..].iter().zip(&bounds) {
        assert!(
            Some(promoted_at[tx]) <= *bound,
            "{tx}: {:?} > {bound:?}",
            promoted_at[tx]
        );
    }
    assert_eq!(promoted_at[&txs[6]], at(3 * timeout));

    // A leave ahead moves the bound earlier.
    let mut e = engine(config(1));
    let ana = buy(&mut e, "ana");
    let bob = buy(&mut e, "bob");
    let cy = buy(&mut e, "cy");
    assert_eq!(e.status(cy.tx).unwrap().turn_by, t(2 * timeout));
    e.leave(START, bob.tx).unwrap();
    assert_eq!(e.status(cy.tx).unwrap().turn_by, t(timeout));
    e.leave(START, ana.tx).unwrap();
    assert_eq!(e.status(cy.tx).unwrap().state, TxState::Payment);
}

#[test]
fn the_sale_end_lets_waiting_buyers_go_but_open_slots_may_still_pay() {
    let mut c = config(1);
    c.ends_at = at(30_000);
    let mut e = engine(c);
    let ana = buy(&mut e, "ana");
    let bob = buy(&mut e, "bob");
    kinds(&mut e);
    assert_eq!(e.poll_timeout(), Some(at(30_000)));
    e.handle_timeout(at(30_000));
    assert_eq!(
        kinds(&mut e),
        vec![
            EventKind::Ended,
            EventKind::Dropped {
                tx: bob.tx,
                buyer: name("bob"),
                reason: DropReason::SaleEnded
            },
        ]
    );
    assert_eq!(e.status(bob.tx).unwrap().state, TxState::RejectedSaleEnded);
    // Ana got her slot while the sale was open: she may still pay.
    assert_eq!(e.paid(at(30_001), ana.tx), Ok(PaidOutcome::Paid));
}

#[test]
fn time_never_goes_backwards() {
    let mut e = engine(config(1));
    let ana = e.buy(at(5_000), "ana").unwrap();
    // A call with an older `now` is taken as happening at the engine's time.
    let bob = e.buy(at(1), "bob").unwrap();
    let events: Vec<Event> = e.drain_events().collect();
    assert!(events.windows(2).all(|w| w[0].at <= w[1].at));
    e.leave(at(0), ana.tx).unwrap();
    assert_eq!(
        e.status(bob.tx).unwrap().deadline,
        Some(at(5_000).saturating_add(TIMEOUT))
    );
}

#[test]
fn replay_refuses_journals_that_do_not_fit() {
    let ids = || Box::new(SequentialIds::default());
    // Where and why a journal is refused, if it is.
    let refused = |journal: &[Event]| match Engine::replay(journal, ids()) {
        Err(ReplayError::Inconsistent { index, reason }) => Some((index, reason)),
        _ => None,
    };
    assert_eq!(
        Engine::replay(Vec::<Event>::new(), ids()).err(),
        Some(ReplayError::NotOpened)
    );
    let mut journal: Vec<Event> = Engine::new(START, config(1), ids())
        .unwrap()
        .drain_events()
        .collect();
    assert_eq!(
        Engine::replay(&journal[..0], ids()).err(),
        Some(ReplayError::NotOpened)
    );
    // A payment for a transaction that never joined.
    journal.push(Event {
        sale: sale(),
        at: START,
        kind: EventKind::Paid {
            tx: tx(1),
            buyer: name("ana"),
            account: None,
        },
    });
    assert_eq!(refused(&journal).map(|(index, _)| index), Some(1));
    // An event of another sale.
    journal[1].sale = "5f0000000000000000000002".parse().unwrap();
    assert_eq!(refused(&journal).map(|(index, _)| index), Some(1));
    // More payment slots than stock (a sale of 1), or one buyer twice.
    let joined = |n, who: &str, deadline| Event {
        sale: sale(),
        at: START,
        kind: EventKind::Joined {
            tx: tx(n),
            buyer: name(who),
            deadline,
            account: None,
        },
    };
    journal.truncate(1);
    journal.push(joined(1, "ana", None));
    assert_eq!(
        refused(&journal),
        Some((1, "joined before the start without a pre-queue"))
    );
    journal[1] = Event {
        sale: sale(),
        at: START,
        kind: EventKind::Started,
    };
    journal.push(joined(1, "ana", Some(END)));
    journal.push(joined(2, "bob", Some(END)));
    assert_eq!(
        refused(&journal),
        Some((3, "payment slot without free stock"))
    );
    journal[3] = joined(2, "ana", None);
    assert_eq!(refused(&journal), Some((3, "buyer joined twice")));
    journal[3] = joined(2, "bob", None);
    assert!(Engine::replay(&journal, ids()).is_ok());
    // A draw without a pre-queue.
    journal.push(Event {
        sale: sale(),
        at: START,
        kind: EventKind::Drawn { seed: 1 },
    });
    assert_eq!(refused(&journal), Some((4, "a draw out of place")));
}

#[test]
fn a_replayed_engine_carries_on_exactly_like_the_original() {
    let mut journal: Vec<Event> = Vec::new();
    let mut original = Engine::new(START, config(2), Box::new(SequentialIds::default())).unwrap();
    for (i, who) in ["ana", "bob", "cy", "di"].iter().enumerate() {
        original.buy(at(i as u64), who).unwrap();
    }
    original.paid(at(10), tx(1)).unwrap();
    journal.extend(original.drain_events());
    let mut replayed =
        Engine::replay(&journal, Box::new(SequentialIds::starting_after(4))).unwrap();
    let expiry = at(1).saturating_add(TIMEOUT);
    for e in [&mut original, &mut replayed] {
        e.handle_timeout(expiry);
        e.buy(expiry, "eve").unwrap();
    }
    let a: Vec<_> = original.drain_events().collect();
    let b: Vec<_> = replayed.drain_events().collect();
    assert_eq!(a, b);
    assert!(original.transactions().eq(replayed.transactions()));
}

#[test]
fn invalid_configs_are_refused() {
    let ids = || Box::new(SequentialIds::default());
    let mut c = config(1);
    c.ends_at = START;
    assert!(Engine::new(START, c, ids()).is_err());
    let mut c = config(1);
    c.payment_timeout = Duration::ZERO;
    assert!(Engine::new(START, c, ids()).is_err());
    let mut c = config(1);
    c.max_payment_slots = Some(0);
    assert!(Engine::new(START, c, ids()).is_err());
}

#[test]
fn events_serialize_for_a_journal_and_back() {
    let mut e = engine(config(1));
    buy(&mut e, "ana");
    let events: Vec<Event> = e.drain_events().collect();
    let json = serde_json::to_string(&events).unwrap();
    assert!(
        json.contains(r#""tx":"000000000000000000000001""#),
        "{json}"
    );
    assert!(json.contains(r#""type":"joined""#), "{json}");
    assert_eq!(serde_json::from_str::<Vec<Event>>(&json).unwrap(), events);
}

#[test]
fn prefetching_buyers_changes_nothing_and_finds_who_joined() {
    let mut e = engine(config(1));
    buy(&mut e, "ana");
    buy(&mut e, "bob");
    kinds(&mut e);
    let before: Vec<_> = e.transactions().collect();
    assert_eq!(e.prefetch_buyers([" ana ", "nobody", "bob"]), 2);
    assert_eq!(kinds(&mut e), vec![]);
    assert!(e.transactions().eq(before));
}

#[test]
fn buyers_who_paid_elsewhere_are_imported_as_sold() {
    use flashsale_core::ImportError;
    let mut e = engine(config(2));
    let synced: TxId = "5f00000000000000000000aa".parse().unwrap();
    e.import_paid(START, synced, " ana ").unwrap();
    assert_eq!(
        kinds(&mut e),
        vec![EventKind::Imported {
            tx: synced,
            buyer: name("ana")
        }]
    );
    assert_eq!(e.sold(), 1);
    assert_eq!(e.status(synced).unwrap().state, TxState::Paid);
    // Importing it again changes nothing; a different buyer on that id does.
    e.import_paid(START, synced, "ana").unwrap();
    assert_eq!(kinds(&mut e), vec![]);
    assert_eq!(
        e.import_paid(START, synced, "bob"),
        Err(ImportError::Conflict)
    );
    // The name may not buy again; the one unit left still sells.
    assert!(matches!(
        e.buy(START, "ana"),
        Err(BuyError::AlreadyJoined {
            state: TxState::Paid,
            ..
        })
    ));
    let bob = buy(&mut e, "bob");
    let cy = buy(&mut e, "cy");
    assert_eq!(cy.place, Place::Waiting { position: 1 });
    e.paid(START, bob.tx).unwrap();
    assert_eq!(e.buy(START, "di"), Err(BuyError::SoldOut));
    let other: TxId = "5f00000000000000000000bb".parse().unwrap();
    assert_eq!(
        e.import_paid(START, other, "eve"),
        Err(ImportError::Conflict)
    );
}

#[test]
fn importing_the_last_unit_sells_out_and_replays() {
    let mut journal: Vec<Event> = Vec::new();
    let mut e = Engine::new(START, config(1), Box::new(SequentialIds::default())).unwrap();
    e.handle_timeout(START);
    e.import_paid(START, "5f00000000000000000000aa".parse().unwrap(), "ana")
        .unwrap();
    journal.extend(e.drain_events());
    assert!(journal.iter().any(|ev| ev.kind == EventKind::SoldOut));
    let replayed = Engine::replay(&journal, Box::new(SequentialIds::default())).unwrap();
    assert_eq!(replayed.sold(), 1);
    assert!(replayed.transactions().eq(e.transactions()));
}

/// The journal is a persistent format: a journal written before the format
/// field existed still replays; one from a newer format is refused whole.
#[test]
fn journals_carry_their_format_and_newer_ones_are_refused() {
    let mut e = Engine::new(START, config(1), Box::new(SequentialIds::default())).unwrap();
    buy(&mut e, "ana");
    let events: Vec<Event> = e.drain_events().collect();
    let json = serde_json::to_string(&events).unwrap();
    let current = format!(r#""format":{JOURNAL_FORMAT}"#);
    assert!(json.contains(&current), "{json}");
    // Written before the field existed: format 1, and it still replays.
    let old = json.replace(&format!(",{current}"), "");
    assert!(!old.contains("format"));
    let old: Vec<Event> = serde_json::from_str(&old).unwrap();
    assert!(Engine::replay(&old, Box::new(SequentialIds::default())).is_ok());
    let newer = format!(r#""format":{}"#, JOURNAL_FORMAT + 1);
    let newer: Vec<Event> = serde_json::from_str(&json.replace(&current, &newer)).unwrap();
    assert!(matches!(
        Engine::replay(&newer, Box::new(SequentialIds::default())),
        Err(ReplayError::UnsupportedFormat { found }) if found == JOURNAL_FORMAT + 1
    ));
}

/// However often a late payment is repeated, the refund is said once: the
/// journal does not grow with the calls.
#[test]
fn a_repeated_late_payment_owes_one_refund() {
    let mut e = engine(config(1));
    let ana = buy(&mut e, "ana");
    kinds(&mut e);
    let late = START.saturating_add(TIMEOUT);
    for _ in 0..10_000 {
        assert_eq!(e.paid(late, ana.tx), Err(PaidError::SlotExpired));
    }
    let refunds = kinds(&mut e)
        .into_iter()
        .filter(|k| matches!(k, EventKind::RefundDue { .. }))
        .count();
    assert_eq!(refunds, 1);
    // Also after a replay: the journal knows the refund was said.
    let mut journal = vec![];
    let mut fresh = Engine::new(START, config(1), Box::new(SequentialIds::default())).unwrap();
    let bob = buy(&mut fresh, "bob");
    fresh.paid(late, bob.tx).unwrap_err();
    journal.extend(fresh.drain_events());
    let mut replayed = Engine::replay(&journal, Box::new(SequentialIds::default())).unwrap();
    assert_eq!(replayed.paid(late, bob.tx), Err(PaidError::SlotExpired));
    assert_eq!(replayed.drain_events().count(), 0);
}

/// A buyer who keeps letting a slot expire may come back only so often.
#[test]
fn a_buyer_may_join_a_sale_a_bounded_number_of_times() {
    let mut c = config(10);
    c.max_joins_per_buyer = Some(3);
    let mut e = engine(c);
    for round in 0..3 {
        let ana = buy(&mut e, "ana");
        e.leave(at(round), ana.tx).unwrap();
    }
    assert_eq!(e.buy(at(3), "ana"), Err(BuyError::TooManyJoins { max: 3 }));
    // Others are not affected; without a limit (old journals) anyone may.
    buy(&mut e, "bob");
    let mut c = config(10);
    c.max_joins_per_buyer = None;
    let mut e = engine(c);
    for round in 0..5 {
        let ana = buy(&mut e, "ana");
        e.leave(at(round), ana.tx).unwrap();
    }
}

/// A signed-in buyer is their account: one place per account whatever name
/// is typed, the same name under two accounts is two buyers, and replay
/// rebuilds it from the journal.
#[test]
fn signed_in_buyers_are_their_accounts() {
    let mut e = Engine::new(START, config(10), Box::new(SequentialIds::default())).unwrap();
    e.buy_as(START, "ana", Some("user-1")).unwrap();
    assert!(matches!(
        e.buy_as(START, "someone else", Some("user-1")),
        Err(BuyError::AlreadyJoined { .. })
    ));
    e.buy_as(START, "ana", Some("user-2")).unwrap();
    // Accounts and names never meet: "ana" by name is a third buyer.
    e.buy(START, "ana").unwrap();
    assert_eq!(
        e.buy_as(START, "x", Some("")),
        Err(BuyError::InvalidAccount)
    );
    let journal: Vec<Event> = e.drain_events().collect();
    let mut replayed =
        Engine::replay(&journal, Box::new(SequentialIds::starting_after(3))).unwrap();
    assert!(matches!(
        replayed.buy_as(at(1), "bob", Some("user-2")),
        Err(BuyError::AlreadyJoined { .. })
    ));
    assert_eq!(replayed.transaction_count(), 3);
}
