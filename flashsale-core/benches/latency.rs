//! The machine's random-access memory latency: one dependent load at a time
//! through a random cycle over working sets from 32 KiB to 1 GiB. It explains
//! why engine operations that touch a random buyer cost more at 10M joined
//! than at 1k (where everything sits in L1) although their work is the same.
//!
//! Run: `cargo bench -p flashsale-core --bench latency`
#![allow(
    clippy::unwrap_used,
    reason = "a benchmark stops at the first surprise"
)]

use std::time::Instant;

fn main() {
    println!("| working set | ns per dependent random load |");
    println!("|---:|---:|");
    for bytes in [32usize << 10, 1 << 20, 16 << 20, 256 << 20, 1 << 30] {
        let n = bytes / std::mem::size_of::<usize>();
        // A random permutation (xorshift Fisher-Yates) turned into one cycle.
        let mut order: Vec<usize> = (0..n).collect();
        let mut s: u64 = 88_172_645_463_325_252;
        for i in (1..n).rev() {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            order.swap(i, (s % (i as u64 + 1)) as usize);
        }
        let mut next = vec![0usize; n];
        for i in 0..n {
            next[order[i]] = order[(i + 1) % n];
        }
        drop(order);
        let steps = 20_000_000;
        let mut p = 0;
        let start = Instant::now();
        for _ in 0..steps {
            p = next[p];
        }
        let ns = start.elapsed().as_nanos() as f64 / steps as f64;
        std::hint::black_box(p);
        let label = if bytes >= 1 << 20 {
            format!("{} MiB", bytes >> 20)
        } else {
            format!("{} KiB", bytes >> 10)
        };
        println!("| {label} | {ns:.1} |");
    }
}
