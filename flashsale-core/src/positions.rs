//! Exact waiting positions: "how many buyers still waiting joined before
//! me", in O(log n) with about one cache miss per update.
//!
//! [`Positions`] keeps one bit per waiting join (1 while still waiting) and a
//! Fenwick tree of the bit counts per 512-bit block. The block tree is 1/512
//! of the bits and stays in cache; an update clears one bit and walks the
//! small tree; a rank sums the tree and counts bits in at most one cache line.

/// Bits per block: one 64-byte cache line.
const BLOCK_BITS: usize = 512;

/// A sequence of bits, appended to and cleared, with ranks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Positions {
    bits: Vec<u64>,
    len: usize,
    blocks: Fenwick,
}

impl Positions {
    /// Appends a set bit; returns its 1-based index.
    pub(crate) fn push(&mut self) -> usize {
        let i = self.len;
        if i.is_multiple_of(64) {
            self.bits.push(0);
        }
        self.bits[i / 64] |= 1 << (i % 64);
        if i.is_multiple_of(BLOCK_BITS) {
            self.blocks.push(1);
        } else {
            self.blocks.increment(i / BLOCK_BITS + 1);
        }
        self.len += 1;
        i + 1
    }

    /// Clears the bit at 1-based `index`, which must be set.
    pub(crate) fn clear(&mut self, index: usize) {
        let i = index - 1;
        let mask = 1 << (i % 64);
        debug_assert!(self.bits[i / 64] & mask != 0, "cleared a clear bit");
        self.bits[i / 64] &= !mask;
        self.blocks.decrement(i / BLOCK_BITS + 1);
    }

    /// The number of set bits at 1-based indices `1..=index`.
    pub(crate) fn rank(&self, index: usize) -> u64 {
        let i = index - 1;
        let block = i / BLOCK_BITS;
        let first = block * (BLOCK_BITS / 64);
        let word = i / 64;
        let whole: u32 = self.bits[first..word].iter().map(|w| w.count_ones()).sum();
        let mask = u64::MAX >> (63 - i % 64);
        self.blocks.prefix(block) + u64::from(whole + (self.bits[word] & mask).count_ones())
    }
}

/// Counts at positions `1..=len`; `tree[i - 1]` covers `(i - lowbit(i), i]`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Fenwick {
    tree: Vec<u32>,
}

const fn lowbit(i: usize) -> usize {
    i & i.wrapping_neg()
}

impl Fenwick {
    /// Appends a position holding `value`; returns its 1-based index.
    fn push(&mut self, value: u32) -> usize {
        let i = self.tree.len() + 1;
        // Node i covers (i - lowbit(i), i]: value plus the sums of the
        // nodes that tile (i - lowbit(i), i - 1].
        let mut sum = value;
        let stop = i - lowbit(i);
        let mut j = i - 1;
        while j > stop {
            sum += self.tree[j - 1];
            j -= lowbit(j);
        }
        self.tree.push(sum);
        i
    }

    /// Adds one at position `i` (1-based).
    fn increment(&mut self, mut i: usize) {
        while i <= self.tree.len() {
            self.tree[i - 1] += 1;
            i += lowbit(i);
        }
    }

    /// Subtracts one at position `i` (1-based). The count there must be positive.
    fn decrement(&mut self, mut i: usize) {
        while i <= self.tree.len() {
            self.tree[i - 1] -= 1;
            i += lowbit(i);
        }
    }

    /// The sum of positions `1..=i`.
    fn prefix(&self, mut i: usize) -> u64 {
        let mut sum = 0u64;
        while i > 0 {
            sum += u64::from(self.tree[i - 1]);
            i -= lowbit(i);
        }
        sum
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn fenwick_matches_a_plain_vector(
            values in prop::collection::vec(0u32..3, 1..300),
            updates in prop::collection::vec((any::<prop::sample::Index>(), any::<bool>()), 0..100),
        ) {
            let mut fw = Fenwick::default();
            let mut plain = values.clone();
            for &v in &values {
                fw.push(v);
            }
            for (r, up) in updates {
                let i = r.index(plain.len());
                if up {
                    plain[i] += 1;
                    fw.increment(i + 1);
                } else if plain[i] > 0 {
                    plain[i] -= 1;
                    fw.decrement(i + 1);
                }
            }
            for i in 0..=plain.len() {
                let expected: u64 = plain[..i].iter().map(|&v| u64::from(v)).sum();
                prop_assert_eq!(fw.prefix(i), expected);
            }
        }

        #[test]
        fn ranks_match_a_plain_bit_vector(
            len in 1usize..3_000,
            clears in prop::collection::vec(any::<prop::sample::Index>(), 0..500),
        ) {
            let mut p = Positions::default();
            let mut plain = vec![true; len];
            for i in 0..len {
                prop_assert_eq!(p.push(), i + 1);
            }
            for c in clears {
                let i = c.index(len);
                if plain[i] {
                    plain[i] = false;
                    p.clear(i + 1);
                }
            }
            let mut expected = 0;
            for (i, &set) in plain.iter().enumerate() {
                expected += u64::from(set);
                prop_assert_eq!(p.rank(i + 1), expected, "rank({})", i + 1);
            }
        }
    }
}
