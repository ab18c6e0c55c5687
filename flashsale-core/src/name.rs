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
    fn bad_names_are_refused() {
        assert_eq!(BuyerName::parse(""), Err(NameError::Empty));
        assert_eq!(BuyerName::parse(" \n "), Err(NameError::Empty));
        assert_eq!(BuyerName::parse("a\0b"), Err(NameError::ControlCharacter));
        assert_eq!(BuyerName::parse("a\nb"), Err(NameError::ControlCharacter));
    }
}
