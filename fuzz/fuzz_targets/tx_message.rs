//! The `transactions` topic's JSON, as a consumer parses it: never a panic,
//! and whatever parses serializes back to something that parses the same.
#![no_main]

use flashsale_core::TxMessage;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = serde_json::from_slice::<TxMessage>(data) {
        let again = serde_json::to_vec(&m).expect("serializes");
        assert_eq!(serde_json::from_slice::<TxMessage>(&again).ok(), Some(m));
    }
});
