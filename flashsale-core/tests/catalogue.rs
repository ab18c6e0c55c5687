//! The catalogue: sales, buyers, eligibility, messages applied once,
//! start and end notices.
#![allow(clippy::unwrap_used, reason = "a test fails at the first surprise")]

use std::time::Duration;

use flashsale_core::catalogue::{Applied, MAX_PRODUCT_NAME_CHARS};
use flashsale_core::{
    BuyerName, Catalogue, EligibilityError, Event, EventKind, NameError, NewSale, Notice,
    SaleError, SequentialIds, Timestamp, TxId, TxMessage, TxMessageKind,
};

const T0: Timestamp = Timestamp::from_millis(1_000);
const END: Timestamp = Timestamp::from_millis(100_000);

fn catalogue() -> Catalogue {
    Catalogue::new(Box::new(SequentialIds::default()))
}

fn message(sale: flashsale_core::SaleId, tx: u64, buyer: &str, kind: TxMessageKind) -> TxMessage {
    TxMessage {
        transaction_id: format!("{tx:024x}").parse().unwrap(),
        buyer_name: BuyerName::parse(buyer).unwrap(),
        sale_id: sale,
        account: None,
        kind,
    }
}

#[test]
fn sales_are_created_listed_and_found() {
    let mut c = catalogue();
    let a = c
        .create(T0, NewSale::new("  Sneakers ", 5, T0, END))
        .unwrap();
    let b = c.create(T0, NewSale::new("Hat", 1, T0, END)).unwrap();
    assert_eq!(a.config.product_name, "Sneakers");
    assert_eq!((a.config.quantity, a.remaining), (5, 5));
    let listed: Vec<_> = c.list().map(|s| s.id()).collect();
    assert_eq!(listed, vec![a.id(), b.id()], "in creation order");
    assert_eq!(c.get(b.id()), Some(&b));
    assert_eq!(c.buyers(a.id()), Some(&[][..]));
    assert!(c.get("000000000000000000000099".parse().unwrap()).is_none());
}

#[test]
fn invalid_sales_are_refused() {
    let mut c = catalogue();
    let bad = |f: fn(&mut NewSale)| {
        let mut s = NewSale::new("Sneakers", 5, T0, END);
        f(&mut s);
        s
    };
    assert_eq!(
        c.create(T0, bad(|s| s.product_name = " ".into())),
        Err(SaleError::EmptyProductName)
    );
    assert_eq!(
        c.create(
            T0,
            bad(|s| s.product_name = "x".repeat(MAX_PRODUCT_NAME_CHARS + 1))
        ),
        Err(SaleError::ProductNameTooLong)
    );
    // Product names are refused like buyer names.
    for name in ["Hat\u{7}", "\u{202e}Hat", "\u{200b}"] {
        let mut s = NewSale::new(name, 5, T0, END);
        s.product_name = name.to_owned();
        assert_eq!(
            c.create(T0, s),
            Err(SaleError::ProductNameControl),
            "{name:?}"
        );
    }
    assert_eq!(
        c.create(T0, bad(|s| s.quantity = 0)),
        Err(SaleError::ZeroQuantity)
    );
    assert!(matches!(
        c.create(T0, bad(|s| s.ends_at = s.starts_at)),
        Err(SaleError::Config(_))
    ));
    assert!(matches!(
        c.create(T0, bad(|s| s.payment_timeout = Duration::ZERO)),
        Err(SaleError::Config(_))
    ));
    assert_eq!(c.list().count(), 0);
    let sale = c.create(T0, NewSale::new("Sneakers", 5, T0, END)).unwrap();
    assert_eq!(c.insert(sale), Err(SaleError::Duplicate));
}

#[test]
fn a_paid_message_is_applied_once_however_often_delivered() {
    let mut c = catalogue();
    let sale = c.create(T0, NewSale::new("Sneakers", 2, T0, END)).unwrap();
    c.drain_notices().for_each(drop);
    let paid = message(sale.id(), 0xaa, "ana", TxMessageKind::Paid);
    assert_eq!(c.apply(T0, &paid), Ok(Applied::Applied));
    assert_eq!(c.apply(T0, &paid), Ok(Applied::Duplicate));
    assert_eq!(c.get(sale.id()).unwrap().remaining, 1);
    let buyers = c.buyers(sale.id()).unwrap();
    assert_eq!(buyers.len(), 1);
    assert_eq!(
        (buyers[0].id, buyers[0].sale_id),
        (paid.transaction_id, sale.id())
    );
    assert_eq!(
        c.drain_notices().collect::<Vec<_>>(),
        vec![Notice::SaleUpdated {
            sale: sale.id(),
            remaining: 1,
            buyer: paid.buyer_name.clone()
        }]
    );
}

#[test]
fn a_switch_message_is_passed_on() {
    let mut c = catalogue();
    let sale = c.create(T0, NewSale::new("Sneakers", 2, T0, END)).unwrap();
    c.drain_notices().for_each(drop);
    let switch = message(sale.id(), 0xbb, "bob", TxMessageKind::Switch);
    assert_eq!(c.apply(T0, &switch), Ok(Applied::Applied));
    assert_eq!(
        c.drain_notices().collect::<Vec<_>>(),
        vec![Notice::QueueSwitch {
            sale: sale.id(),
            tx: switch.transaction_id,
            buyer: switch.buyer_name
        }]
    );
    assert_eq!(c.get(sale.id()).unwrap().remaining, 2);
}

#[test]
fn messages_for_unknown_sales_are_refused() {
    let mut c = catalogue();
    let unknown = "000000000000000000000099".parse().unwrap();
    assert_eq!(
        c.apply(T0, &message(unknown, 1, "ana", TxMessageKind::Paid)),
        Err(SaleError::UnknownSale)
    );
    assert_eq!(
        c.eligible(unknown, "ana"),
        Err(EligibilityError::UnknownSale)
    );
}

#[test]
fn a_paid_beyond_the_stock_is_recorded_and_flagged() {
    let mut c = catalogue();
    let sale = c.create(T0, NewSale::new("Sneakers", 1, T0, END)).unwrap();
    c.apply(T0, &message(sale.id(), 1, "ana", TxMessageKind::Paid))
        .unwrap();
    assert_eq!(
        c.apply(T0, &message(sale.id(), 2, "bob", TxMessageKind::Paid)),
        Ok(Applied::Oversold)
    );
    assert_eq!(c.get(sale.id()).unwrap().remaining, 0, "never negative");
    assert_eq!(
        c.buyers(sale.id()).unwrap().len(),
        2,
        "the payment is not forgotten"
    );
}

#[test]
fn eligibility_says_sold_out_or_already_participated() {
    let mut c = catalogue();
    let sale = c.create(T0, NewSale::new("Sneakers", 2, T0, END)).unwrap();
    assert_eq!(c.eligible(sale.id(), "ana"), Ok(()));
    assert_eq!(
        c.eligible(sale.id(), ""),
        Err(EligibilityError::InvalidName(NameError::Empty))
    );
    c.apply(T0, &message(sale.id(), 1, "ana", TxMessageKind::Paid))
        .unwrap();
    assert_eq!(
        c.eligible(sale.id(), " ana "),
        Err(EligibilityError::AlreadyParticipated)
    );
    c.apply(T0, &message(sale.id(), 2, "bob", TxMessageKind::Paid))
        .unwrap();
    assert_eq!(c.eligible(sale.id(), "cy"), Err(EligibilityError::SoldOut));
}

#[test]
fn starts_and_ends_are_announced_once_at_their_time() {
    let mut c = catalogue();
    let start = Timestamp::from_millis(5_000);
    let sale = c
        .create(T0, NewSale::new("Sneakers", 2, start, END))
        .unwrap();
    assert_eq!(
        c.drain_notices().collect::<Vec<_>>(),
        vec![Notice::SaleCreated { sale: sale.id() }]
    );
    assert_eq!(c.poll_timeout(), Some(start));
    c.handle_timeout(Timestamp::from_millis(4_999));
    assert_eq!(c.drain_notices().count(), 0);
    c.handle_timeout(start);
    assert_eq!(
        c.drain_notices().collect::<Vec<_>>(),
        vec![Notice::SaleStarted {
            sale: sale.id(),
            starts_at: start
        }]
    );
    assert_eq!(c.poll_timeout(), Some(END));
    c.handle_timeout(start);
    assert_eq!(c.drain_notices().count(), 0, "spurious call");
    c.handle_timeout(END);
    assert_eq!(
        c.drain_notices().collect::<Vec<_>>(),
        vec![Notice::SaleEnded {
            sale: sale.id(),
            ends_at: END
        }]
    );
    assert_eq!(c.poll_timeout(), None);
}

#[test]
fn only_paid_and_promoted_events_become_messages() {
    let sale = "5f0000000000000000000001".parse().unwrap();
    let tx: TxId = "5f00000000000000000000aa".parse().unwrap();
    let buyer = BuyerName::parse("ana").unwrap();
    let event = |kind| Event { sale, at: T0, kind };
    let paid = TxMessage::from_event(&event(EventKind::Paid {
        tx,
        buyer: buyer.clone(),
        account: None,
    }))
    .unwrap();
    assert_eq!(paid.kind, TxMessageKind::Paid);
    let switch = TxMessage::from_event(&event(EventKind::Promoted {
        tx,
        buyer: buyer.clone(),
        deadline: T0,
    }))
    .unwrap();
    assert_eq!(switch.kind, TxMessageKind::Switch);
    for kind in [
        EventKind::Started,
        EventKind::SoldOut,
        EventKind::Joined {
            tx,
            buyer: buyer.clone(),
            deadline: None,
            account: None,
        },
        EventKind::Expired {
            tx,
            buyer: buyer.clone(),
        },
        EventKind::RefundDue {
            tx,
            buyer: buyer.clone(),
        },
    ] {
        assert_eq!(TxMessage::from_event(&event(kind)), None);
    }
}

/// The reference's Kafka payload, field for field.
#[test]
fn messages_have_the_reference_wire_shape() {
    let m = message(
        "5f0000000000000000000001".parse().unwrap(),
        0xaa,
        "ana",
        TxMessageKind::Paid,
    );
    assert_eq!(
        serde_json::to_string(&m).unwrap(),
        r#"{"transactionId":"0000000000000000000000aa","buyerName":"ana","saleId":"5f0000000000000000000001","type":"paid"}"#
    );
    let switch: TxMessage = serde_json::from_str(
        r#"{"transactionId":"0000000000000000000000aa","buyerName":"ana","saleId":"5f0000000000000000000001","type":"switch"}"#,
    )
    .unwrap();
    assert_eq!(switch.kind, TxMessageKind::Switch);
    for bad in [
        r#"{"transactionId":"xyz","buyerName":"ana","saleId":"5f0000000000000000000001","type":"paid"}"#,
        r#"{"transactionId":"0000000000000000000000aa","buyerName":"ana","saleId":"5f0000000000000000000001","type":"refund"}"#,
        r#"{"transactionId":"0000000000000000000000aa","buyerName":"ana","type":"paid"}"#,
    ] {
        assert!(serde_json::from_str::<TxMessage>(bad).is_err(), "{bad}");
    }
}

/// A payment on the topic already happened: whatever its name, it is read
/// (the name cleaned for display), never dropped. The reference's
/// transaction service publishes names our HTTP rules refuse.
#[test]
fn messages_with_odd_names_are_read_not_dropped() {
    let long = "n".repeat(100);
    for (name, shown) in [
        (r#""""#.to_owned(), BuyerName::NO_NAME.to_owned()),
        (format!("\"{long}\""), "n".repeat(64)),
        (r#""a\u0007b""#.to_owned(), "ab".to_owned()),
        ("42".to_owned(), "42".to_owned()),
        ("null".to_owned(), BuyerName::NO_NAME.to_owned()),
        (
            r#"{"first":"ana"}"#.to_owned(),
            BuyerName::NO_NAME.to_owned(),
        ),
    ] {
        let json = format!(
            r#"{{"transactionId":"0000000000000000000000aa","buyerName":{name},"saleId":"5f0000000000000000000001","type":"paid"}}"#
        );
        let m: TxMessage = serde_json::from_str(&json).unwrap_or_else(|e| panic!("{json}: {e}"));
        assert_eq!(m.buyer_name.as_str(), shown, "{json}");
    }
    let missing: TxMessage = serde_json::from_str(
        r#"{"transactionId":"0000000000000000000000aa","saleId":"5f0000000000000000000001","type":"paid"}"#,
    )
    .unwrap();
    assert_eq!(missing.buyer_name.as_str(), BuyerName::NO_NAME);
}

#[test]
fn a_saved_catalogue_loads_back_whole_and_announces_nothing_twice() {
    let mut c = catalogue();
    let a = c.create(T0, NewSale::new("Sneakers", 5, T0, END)).unwrap();
    let b = c
        .create(
            T0,
            NewSale::new("Hat", 2, T0.saturating_add(Duration::from_secs(5)), END),
        )
        .unwrap();
    c.handle_timeout(T0); // a started
    c.apply(T0, &message(a.id(), 1, "ana", TxMessageKind::Paid))
        .unwrap();
    let mut signed = message(a.id(), 2, "bo", TxMessageKind::Paid);
    signed.account = Some("user-7".into());
    c.apply(T0, &signed).unwrap();
    c.drain_notices().for_each(drop);

    let saved = serde_json::to_string(&c.save()).unwrap();
    let mut loaded = catalogue();
    loaded.load(serde_json::from_str(&saved).unwrap()).unwrap();
    assert!(loaded.list().eq(c.list()), "same sales and figures");
    assert_eq!(loaded.buyers(a.id()), c.buyers(a.id()));
    assert_eq!(loaded.buyers(b.id()), Some(&[][..]));
    // Who bought is remembered, by name and by account.
    assert_eq!(
        loaded.eligible(a.id(), "ana"),
        Err(EligibilityError::AlreadyParticipated)
    );
    assert_eq!(
        loaded.eligible_as(a.id(), "someone else", Some("user-7")),
        Err(EligibilityError::AlreadyParticipated)
    );
    // A payment applied before is applied once, still.
    assert_eq!(
        loaded
            .apply(T0, &message(a.id(), 1, "ana", TxMessageKind::Paid))
            .unwrap(),
        Applied::Duplicate
    );
    // a's start is not announced again; b's start and both ends are due.
    loaded.handle_timeout(END);
    let notices: Vec<Notice> = loaded.drain_notices().collect();
    assert!(
        !notices
            .iter()
            .any(|n| matches!(n, Notice::SaleStarted { sale, .. } if *sale == a.id())),
        "{notices:?}"
    );
    assert!(
        notices
            .iter()
            .any(|n| matches!(n, Notice::SaleStarted { sale, .. } if *sale == b.id()))
    );
    assert_eq!(
        notices
            .iter()
            .filter(|n| matches!(n, Notice::SaleEnded { .. }))
            .count(),
        2
    );
    // Another format is refused.
    let mut future = c.save();
    future.version += 1;
    assert!(matches!(
        catalogue().load(future),
        Err(SaleError::UnsupportedState { .. })
    ));
}
