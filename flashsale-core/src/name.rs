//! Buyer names: trimmed, non-empty, at most [`BuyerName::MAX_CHARS`]
//! characters, no control or bidirectional-control characters, something
//! visible — and the [`BuyerKey`] that decides who is the same buyer.

use compact_str::CompactString;
use serde::{Deserialize, Serialize};
use std::fmt;

/// Why a buyer name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NameError {
    /// Empty, or only white space.
    #[error("buyerName must not be empty")]
    Empty,
    /// Longer than [`BuyerName::MAX_CHARS`] characters after trimming.
    #[error("buyerName must be at most {max} characters", max = BuyerName::MAX_CHARS)]
    TooLong,
    /// Contains a control character (newline, NUL, …).
    #[error("buyerName must not contain control characters")]
    ControlCharacter,
    /// Contains a bidirectional control (which can make a name read as
    /// another).
    #[error("buyerName must not contain bidirectional control characters")]
    BidiControl,
    /// Nothing visible is left once invisible characters are set aside.
    #[error("buyerName must contain something visible")]
    Invisible,
}

/// Who a buyer is, for "one place per person": two names with the same key
/// are the same buyer. A pure function of the name, so replaying a journal
/// rebuilds the same state:
///
/// 1. NFKC (`ａｎａ` → `ana`, `ﬁ` → `fi`, NFC and NFD alike);
/// 2. full Unicode case folding (`ANA`, `Straße` → `strasse`);
/// 3. the UTS #39 confusable skeleton, which also drops default-ignorable
///    code points (`аna` with a Cyrillic `а`, `ana\u{200b}` → `ana`);
///
/// repeated until nothing changes (a skeleton may hold capitals, `%` →
/// `°/O`), so that the key of a key is itself. Pinned to the
/// Unicode data of the locked `unicode-normalization` (18.0),
/// `unicode-security` (18.0) and `caseless` crates: upgrading them is a
/// journal-format change (see the crate docs' *Journal compatibility*).
///
/// A buyer who signed in is their account instead ([`BuyerKey::account`]):
/// one place per account, whatever name they type. The two kinds never
/// compare equal.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum BuyerKey {
    /// Derived from the buyer's name.
    Name(CompactString),
    /// A verified account (a JWT's `sub`).
    Account(CompactString),
}

impl BuyerKey {
    /// The longest account id accepted, in bytes.
    pub const MAX_ACCOUNT_BYTES: usize = 256;

    /// The key of `name` (any string; for a [`BuyerName`] use
    /// [`BuyerName::key`]).
    pub fn of(name: &str) -> Self {
        if name.is_ascii() {
            return BuyerKey::Name(ascii_key(name));
        }
        BuyerKey::Name(CompactString::new(fixpoint(name)))
    }

    /// The key of a verified account: `None` for an empty, over-long
    /// ([`BuyerKey::MAX_ACCOUNT_BYTES`]) or control-character id.
    pub fn account(id: &str) -> Option<Self> {
        let ok = !id.is_empty()
            && id.len() <= Self::MAX_ACCOUNT_BYTES
            && !id.chars().any(char::is_control);
        ok.then(|| BuyerKey::Account(CompactString::new(id)))
    }

    /// The key as text (a name's skeleton, or the account id).
    pub fn as_str(&self) -> &str {
        match self {
            BuyerKey::Name(k) | BuyerKey::Account(k) => k,
        }
    }
}

impl fmt::Debug for BuyerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BuyerKey::Name(k) => write!(f, "BuyerKey::Name({:?})", &**k),
            BuyerKey::Account(k) => write!(f, "BuyerKey::Account({:?})", &**k),
        }
    }
}

/// Rounds of the key until one changes nothing (two or three in practice;
/// bounded, in case some data ever cycled).
fn fixpoint(s: &str) -> String {
    let mut key = key_round(s);
    for _ in 0..8 {
        let next = key_round(&key);
        if next == key {
            break;
        }
        key = next;
    }
    key
}

/// One round of the key: NFKC, case folding, skeleton.
fn key_round(s: &str) -> String {
    use unicode_normalization::UnicodeNormalization;
    let nfkc: String = s.nfkc().collect();
    let folded = caseless::default_case_fold_str(&nfkc);
    unicode_security::confusable_detection::skeleton(&folded).collect()
}

/// The key of an ASCII string, a character at a time: NFKC leaves ASCII
/// alone, and folding and the skeleton map each ASCII character on its own
/// (`m` → `rn`, `1` → `l`, …), so a table of the slow path's answers per
/// character gives the same key, fast.
fn ascii_key(s: &str) -> CompactString {
    use std::sync::LazyLock;
    static TABLE: LazyLock<Vec<String>> = LazyLock::new(|| {
        (0u8..128)
            .map(|b| fixpoint(&char::from(b).to_string()))
            .collect()
    });
    let mut key = CompactString::default();
    for b in s.bytes() {
        key.push_str(&TABLE[usize::from(b & 0x7f)]);
    }
    key
}

/// Bidirectional formatting controls (UAX #9): they reorder what a name
/// shows.
pub(crate) fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// A validated buyer name. Names of up to 24 bytes are stored inline (no
/// allocation; cloning copies 24 bytes), longer ones on the heap.
///
/// Deserializing checks the name like [`BuyerName::parse`].
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BuyerName(CompactString);

impl Serialize for BuyerName {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for BuyerName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        BuyerName::parse(&raw).map_err(serde::de::Error::custom)
    }
}

impl BuyerName {
    /// The longest name accepted, in characters.
    pub const MAX_CHARS: usize = 64;

    /// Trims `raw` and checks it.
    pub fn parse(raw: &str) -> Result<Self, NameError> {
        let name = raw.trim();
        if name.is_empty() {
            return Err(NameError::Empty);
        }
        // Cheap length guard before counting characters of a hostile input.
        if name.len() > 4 * Self::MAX_CHARS || name.chars().count() > Self::MAX_CHARS {
            return Err(NameError::TooLong);
        }
        if name.chars().any(is_bidi_control) {
            return Err(NameError::BidiControl);
        }
        if name.chars().any(char::is_control) {
            return Err(NameError::ControlCharacter);
        }
        if BuyerKey::of(name).as_str().chars().all(char::is_whitespace) {
            return Err(NameError::Invisible);
        }
        Ok(BuyerName(CompactString::new(name)))
    }

    /// Who this buyer is: see [`BuyerKey`].
    pub fn key(&self) -> BuyerKey {
        BuyerKey::of(&self.0)
    }

    /// What stands for a name that had nothing printable.
    pub const NO_NAME: &'static str = "(no name)";

    /// A name from a record of something that already happened (a payment
    /// on the reference's Kafka topic): cleaned for display instead of
    /// refused. Control characters are dropped, the rest trimmed and cut
    /// to [`BuyerName::MAX_CHARS`]; nothing left gives
    /// [`BuyerName::NO_NAME`]. The strict rules ([`BuyerName::parse`]) are
    /// for our own input.
    pub fn from_record(raw: &str) -> Self {
        let cleaned: String = raw
            .chars()
            .filter(|&c| !c.is_control() && !is_bidi_control(c))
            .collect();
        let cut: String = cleaned.trim().chars().take(Self::MAX_CHARS).collect();
        BuyerName::parse(&cut).unwrap_or_else(|_| BuyerName(CompactString::new(Self::NO_NAME)))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for BuyerName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for BuyerName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl AsRef<str> for BuyerName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// Deserializes any JSON value as a [`BuyerName::from_record`]: a string
/// cleaned, a number or boolean as its text, anything else as
/// [`BuyerName::NO_NAME`]. For `#[serde(deserialize_with)]`.
pub fn lenient<'de, D: serde::Deserializer<'de>>(d: D) -> Result<BuyerName, D::Error> {
    struct Lenient;
    impl<'de> serde::de::Visitor<'de> for Lenient {
        type Value = BuyerName;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a buyer name")
        }
        fn visit_str<E>(self, v: &str) -> Result<BuyerName, E> {
            Ok(BuyerName::from_record(v))
        }
        fn visit_bool<E>(self, v: bool) -> Result<BuyerName, E> {
            Ok(BuyerName::from_record(&v.to_string()))
        }
        fn visit_i64<E>(self, v: i64) -> Result<BuyerName, E> {
            Ok(BuyerName::from_record(&v.to_string()))
        }
        fn visit_u64<E>(self, v: u64) -> Result<BuyerName, E> {
            Ok(BuyerName::from_record(&v.to_string()))
        }
        fn visit_f64<E>(self, v: f64) -> Result<BuyerName, E> {
            Ok(BuyerName::from_record(&v.to_string()))
        }
        fn visit_unit<E>(self) -> Result<BuyerName, E> {
            Ok(BuyerName::from_record(""))
        }
        fn visit_none<E>(self) -> Result<BuyerName, E> {
            Ok(BuyerName::from_record(""))
        }
        fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<BuyerName, D::Error> {
            d.deserialize_any(self)
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut a: A) -> Result<BuyerName, A::Error> {
            while a.next_element::<serde::de::IgnoredAny>()?.is_some() {}
            Ok(BuyerName::from_record(""))
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(self, mut a: A) -> Result<BuyerName, A::Error> {
            while a
                .next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?
                .is_some()
            {}
            Ok(BuyerName::from_record(""))
        }
    }
    d.deserialize_any(Lenient)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed() {
        assert_eq!(BuyerName::parse("  ana \t").unwrap().as_str(), "ana");
    }

    #[test]
    fn unicode_is_counted_in_characters() {
        let ok = "é".repeat(64);
        assert_eq!(BuyerName::parse(&ok).unwrap().as_str(), ok);
        assert_eq!(BuyerName::parse(&"é".repeat(65)), Err(NameError::TooLong));
        assert_eq!(
            BuyerName::parse(&"x".repeat(10_000)),
            Err(NameError::TooLong)
        );
    }

    #[test]
    fn recorded_names_are_cleaned_not_refused() {
        let long = "y".repeat(70);
        assert_eq!(BuyerName::from_record(&long).as_str(), "y".repeat(64));
        assert_eq!(BuyerName::from_record(" a\nb\0 ").as_str(), "ab");
        assert_eq!(BuyerName::from_record("").as_str(), BuyerName::NO_NAME);
        assert_eq!(BuyerName::from_record("\u{7}").as_str(), BuyerName::NO_NAME);
    }

    /// The name variants a squatter tried (issue 12): each is `ana`.
    #[test]
    fn look_alike_names_are_one_buyer() {
        let ana = BuyerName::parse("ana").unwrap().key();
        for variant in [
            "ANA",
            "ana\u{200b}",
            "\u{200b}ana",
            "ana\u{2060}",
            "\u{430}na",                // Cyrillic а
            "\u{ff41}\u{ff4e}\u{ff41}", // fullwidth
            " Ana ",
        ] {
            assert_eq!(BuyerName::parse(variant).unwrap().key(), ana, "{variant:?}");
        }
        let nfc = BuyerName::parse("Jos\u{e9}").unwrap().key();
        let nfd = BuyerName::parse("Jose\u{301}").unwrap().key();
        assert_eq!(nfc, nfd);
        assert_ne!(BuyerName::parse("bob").unwrap().key(), ana);
        // Keys are keys of themselves.
        for s in ["ana", "Straße", "Jos\u{e9}", "m1l", "\u{430}na"] {
            let k = BuyerKey::of(s);
            assert_eq!(BuyerKey::of(k.as_str()), k, "{s:?}");
        }
    }

    #[test]
    fn invisible_and_bidi_names_are_refused() {
        for invisible in ["\u{3164}", "\u{200b}", "\u{200b}\u{2060}"] {
            assert_eq!(
                BuyerName::parse(invisible),
                Err(NameError::Invisible),
                "{invisible:?}"
            );
        }
        for bidi in ["\u{202e}ana", "ana\u{2067}", "a\u{200f}na"] {
            assert_eq!(
                BuyerName::parse(bidi),
                Err(NameError::BidiControl),
                "{bidi:?}"
            );
        }
        // Shown as typed.
        assert_eq!(BuyerName::parse("ANA").unwrap().as_str(), "ANA");
    }

    #[test]
    fn bad_names_are_refused() {
        assert_eq!(BuyerName::parse(""), Err(NameError::Empty));
        assert_eq!(BuyerName::parse(" \n "), Err(NameError::Empty));
        assert_eq!(BuyerName::parse("a\0b"), Err(NameError::ControlCharacter));
        assert_eq!(BuyerName::parse("a\nb"), Err(NameError::ControlCharacter));
    }
}
