//! The buyer key of any string: never a panic, the key of a key is itself,
//! and its length is bounded by the name's (NFKC and the skeleton expand a
//! character at most eighteen-fold).
#![no_main]

use flashsale_core::{BuyerKey, BuyerName};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let key = BuyerKey::of(s);
    assert_eq!(BuyerKey::of(key.as_str()), key, "{s:?}");
    assert!(
        key.as_str().chars().count() <= 18 * 18 * s.chars().count().max(1),
        "{s:?} -> {key:?}"
    );
    // A valid name's key is what the engine and the catalogue compare.
    if let Ok(name) = BuyerName::parse(s) {
        assert_eq!(name.key(), BuyerKey::of(name.as_str()));
    }
});
