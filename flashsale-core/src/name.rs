//! Buyer names: trimmed, non-empty, at most [`BuyerName::MAX_CHARS`]
//! characters, no control characters.

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
        if name.chars().any(char::is_control) {
            return Err(NameError::ControlCharacter);
        }
        Ok(BuyerName(CompactString::new(name)))
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
        let cleaned: String = raw.chars().filter(|c| !c.is_control()).collect();
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

    #[test]
    fn bad_names_are_refused() {
        assert_eq!(BuyerName::parse(""), Err(NameError::Empty));
        assert_eq!(BuyerName::parse(" \n "), Err(NameError::Empty));
        assert_eq!(BuyerName::parse("a\0b"), Err(NameError::ControlCharacter));
        assert_eq!(BuyerName::parse("a\nb"), Err(NameError::ControlCharacter));
    }
}
