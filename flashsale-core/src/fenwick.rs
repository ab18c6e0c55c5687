//! A growable Fenwick (binary indexed) tree of counts: append, point update
//! and prefix sum in O(log n). The waiting queue uses it to answer "how many
//! live buyers joined before me" exactly.

/// Counts at positions `1..=len`; `tree[i - 1]` covers `(i - lowbit(i), i]`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Fenwick {
    tree: Vec<u32>,
}

const fn lowbit(i: usize) -> usize {
    i & i.wrapping_neg()
}

impl Fenwick {
    /// Appends a position holding `value`; returns its 1-based index.
    pub(crate) fn push(&mut self, value: u32) -> usize {
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

    /// Subtracts one at position `i` (1-based). The count there must be positive.
    pub(crate) fn decrement(&mut self, mut i: usize) {
        while i <= self.tree.len() {
            self.tree[i - 1] -= 1;
            i += lowbit(i);
        }
    }

    /// The sum of positions `1..=i`.
    pub(crate) fn prefix(&self, mut i: usize) -> u64 {
        let mut sum = 0u64;
        while i > 0 {
            sum += u64::from(self.tree[i - 1]);
            i -= lowbit(i);
        }
        sum
    }

    /// Bytes held on the heap.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.tree.capacity() * std::mem::size_of::<u32>()
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn matches_a_plain_vector(
            values in prop::collection::vec(0u32..3, 1..300),
            removals in prop::collection::vec(any::<prop::sample::Index>(), 0..100),
        ) {
            let mut fw = Fenwick::default();
            let mut plain = values.clone();
            for &v in &values {
                fw.push(v);
            }
            for r in removals {
                let i = r.index(plain.len());
                if plain[i] > 0 {
                    plain[i] -= 1;
                    fw.decrement(i + 1);
                }
            }
            for i in 0..=plain.len() {
                let expected: u64 = plain[..i].iter().map(|&v| u64::from(v)).sum();
                prop_assert_eq!(fw.prefix(i), expected);
            }
        }
    }
}
