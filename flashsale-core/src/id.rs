//! Identifiers: [`SaleId`] and [`TxId`] wrap a BSON [`ObjectId`] and travel as
//! plain 24-character hex strings; [`IdGenerator`] makes new ones.

use std::fmt;
use std::str::FromStr;

use bson::oid::ObjectId;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::time::Timestamp;

/// The error for a string that is not a 24-character hex ObjectId.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a 24-character hex ObjectId")]
pub struct InvalidId;

macro_rules! object_id_newtype {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub ObjectId);

        impl $name {
            /// The id's 12 bytes.
            pub fn bytes(&self) -> [u8; 12] {
                self.0.bytes()
            }

            /// The id with these 12 bytes.
            pub const fn from_bytes(bytes: [u8; 12]) -> Self {
                $name(ObjectId::from_bytes(bytes))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0)
            }
        }

        impl FromStr for $name {
            type Err = InvalidId;
            fn from_str(s: &str) -> Result<Self, InvalidId> {
                // `parse_str` accepts upper-case hex too; the wire form is
                // lower-case, but being lenient here loses nothing.
                ObjectId::parse_str(s).map($name).map_err(|_| InvalidId)
            }
        }

        impl From<ObjectId> for $name {
            fn from(id: ObjectId) -> Self {
                $name(id)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0.to_hex())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

object_id_newtype!(
    /// A sale's id.
    SaleId
);
object_id_newtype!(
    /// A transaction's id: one buyer's entry in one sale.
    TxId
);

/// Makes new ObjectIds. Injected so that tests and replays are deterministic.
///
/// Ids must be unique for the generator's lifetime. They are expected (not
/// required) to ascend with time, as MongoDB's do. An [`crate::Engine`]
/// keeps the first eight bytes of each id and puts the transaction's number
/// in the sale (1, 2, 3, …) in the last four: ids stay unique and ascending
/// within a sale, and the engine finds a transaction without a hash map.
pub trait IdGenerator: Send {
    /// A new id, made at `now`.
    fn next_id(&mut self, now: Timestamp) -> ObjectId;

    /// A seed for a pre-queue's draw ([`crate::engine::draw_order`]): from
    /// the operating system's randomness, unless a deterministic generator
    /// for tests says otherwise.
    fn draw_seed(&mut self) -> u64 {
        os_seed()
    }
}

/// 64 bits of the operating system's randomness. Without them (no entropy
/// source at all) a draw must not become predictable in silence: the
/// process stops.
pub fn os_seed() -> u64 {
    #[expect(clippy::expect_used, reason = "no fair draw without randomness")]
    getrandom::u64().expect("the operating system's randomness is unavailable")
}

/// The production generator: an ObjectId whose first four bytes are `now` in
/// seconds (as MongoDB's) followed by an eight-byte counter that starts at a
/// seed. Seed it randomly and two processes will not collide; ids ascend with
/// time and, within one second, in creation order.
#[derive(Debug, Clone)]
pub struct ObjectIdGenerator {
    next: u64,
}

impl ObjectIdGenerator {
    /// A generator whose counter starts at `seed`.
    pub fn with_seed(seed: u64) -> Self {
        Self { next: seed }
    }

    /// A generator with a random seed, for production use. Every call
    /// gets its own seed (std's per-instance random hash keys), so sales in
    /// one process do not share id prefixes.
    pub fn random() -> Self {
        use std::hash::{BuildHasher, Hasher};
        let seed = std::hash::RandomState::new().build_hasher().finish();
        // Keep the top bit clear so the counter cannot wrap within any
        // realistic lifetime.
        Self::with_seed(seed >> 1)
    }
}

impl IdGenerator for ObjectIdGenerator {
    fn next_id(&mut self, now: Timestamp) -> ObjectId {
        let mut bytes = [0u8; 12];
        let secs = u32::try_from(now.as_millis() / 1000).unwrap_or(u32::MAX);
        bytes[..4].copy_from_slice(&secs.to_be_bytes());
        bytes[4..].copy_from_slice(&self.next.to_be_bytes());
        self.next = self.next.wrapping_add(1);
        ObjectId::from_bytes(bytes)
    }
}

/// A deterministic generator for tests: ids `000000000000000000000001`,
/// `000000000000000000000002`, … regardless of time.
#[derive(Debug, Clone, Default)]
pub struct SequentialIds {
    next: u64,
    draws: u64,
}

impl SequentialIds {
    /// Starts after `start` (the first id is `start + 1`).
    pub fn starting_after(start: u64) -> Self {
        Self {
            next: start,
            draws: 0,
        }
    }
}

impl IdGenerator for SequentialIds {
    fn next_id(&mut self, _now: Timestamp) -> ObjectId {
        self.next += 1;
        let mut bytes = [0u8; 12];
        bytes[4..].copy_from_slice(&self.next.to_be_bytes());
        ObjectId::from_bytes(bytes)
    }

    /// 1, 2, 3, …: deterministic.
    fn draw_seed(&mut self) -> u64 {
        self.draws += 1;
        self.draws
    }
}

/// The four bytes of a transaction id (bytes 4..8, between the time and
/// the transaction's number in its sale) that say which sale made it.
///
/// [`crate::Service`] stamps each sale's ids with [`sale_prefix`] of its
/// sale (through [`SalePrefixed`]), so that it can find the sale holding a
/// transaction from the id alone. The function is fixed: ids made by
/// earlier processes keep pointing at their sale.
pub fn tx_prefix(tx: TxId) -> [u8; 4] {
    let b = tx.bytes();
    [b[4], b[5], b[6], b[7]]
}

/// The prefix a sale's transaction ids carry: FNV-1a (32-bit) of the sale
/// id's bytes. Two sales may share one (one chance in four billion a pair);
/// lookups then ask both.
pub fn sale_prefix(sale: SaleId) -> [u8; 4] {
    let hash = sale.bytes().iter().fold(0x811c_9dc5_u32, |h, &b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    });
    hash.to_be_bytes()
}

/// An [`IdGenerator`] whose ids carry a fixed prefix in bytes 4..8: the
/// time (bytes 0..4) and the rest come from the generator it wraps.
pub struct SalePrefixed {
    prefix: [u8; 4],
    inner: Box<dyn IdGenerator>,
}

impl SalePrefixed {
    /// Ids of `inner` stamped with `sale`'s [`sale_prefix`].
    pub fn new(sale: SaleId, inner: Box<dyn IdGenerator>) -> Self {
        SalePrefixed {
            prefix: sale_prefix(sale),
            inner,
        }
    }
}

impl fmt::Debug for SalePrefixed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SalePrefixed")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl IdGenerator for SalePrefixed {
    fn next_id(&mut self, now: Timestamp) -> ObjectId {
        let mut bytes = self.inner.next_id(now).bytes();
        bytes[4..8].copy_from_slice(&self.prefix);
        ObjectId::from_bytes(bytes)
    }

    fn draw_seed(&mut self) -> u64 {
        self.inner.draw_seed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_travel_as_plain_hex_strings() {
        let id = TxId(ObjectId::from_bytes([0xab; 12]));
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, "\"abababababababababababab\"");
        assert_eq!(serde_json::from_str::<TxId>(&json).unwrap(), id);
        assert_eq!(id.to_string(), "abababababababababababab");
    }

    #[test]
    fn malformed_ids_are_rejected() {
        for bad in [
            "",
            "abc",
            "zzzzzzzzzzzzzzzzzzzzzzzz",
            "abababababababababababab0",
        ] {
            assert_eq!(bad.parse::<SaleId>(), Err(InvalidId), "{bad:?}");
        }
        assert!(serde_json::from_str::<SaleId>("42").is_err());
    }

    #[test]
    fn object_id_generator_ascends_with_time_and_order() {
        let mut g = ObjectIdGenerator::with_seed(u64::MAX - 1);
        let a = g.next_id(Timestamp::from_millis(5_000));
        let b = g.next_id(Timestamp::from_millis(5_999));
        let c = g.next_id(Timestamp::from_millis(6_000));
        assert_eq!(&a.bytes()[..4], &5u32.to_be_bytes());
        assert!(a < b, "same second: counter order");
        assert!(b < c, "later second sorts later even after counter wrap");
    }

    #[test]
    fn random_generators_in_one_process_do_not_share_prefixes() {
        let now = Timestamp::from_millis(5_000);
        let prefix = |mut g: ObjectIdGenerator| g.next_id(now).bytes()[4..8].to_vec();
        let a = prefix(ObjectIdGenerator::random());
        let b = prefix(ObjectIdGenerator::random());
        assert_ne!(a, b);
    }

    #[test]
    fn prefixed_ids_carry_their_sale_and_stay_unique() {
        let (a, b) = (
            SaleId(ObjectId::from_bytes([1; 12])),
            SaleId(ObjectId::from_bytes([2; 12])),
        );
        assert_ne!(sale_prefix(a), sale_prefix(b));
        let mut g = SalePrefixed::new(a, Box::new(SequentialIds::default()));
        let x = TxId(g.next_id(Timestamp::ZERO));
        let y = TxId(g.next_id(Timestamp::ZERO));
        assert_ne!(x, y);
        assert_eq!(tx_prefix(x), sale_prefix(a));
        assert_eq!(tx_prefix(y), sale_prefix(a));
        // Fixed across processes and versions: ids made earlier must keep
        // pointing at their sale.
        assert_eq!(sale_prefix(a), [0xa9, 0x1f, 0x2f, 0xa1]);
    }

    #[test]
    fn sequential_ids_are_deterministic() {
        let mut g = SequentialIds::default();
        assert_eq!(
            g.next_id(Timestamp::ZERO).to_hex(),
            "000000000000000000000001"
        );
        assert_eq!(
            g.next_id(Timestamp::ZERO).to_hex(),
            "000000000000000000000002"
        );
    }
}
