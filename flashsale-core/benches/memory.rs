//! Bytes of memory per joined (waiting) buyer, counted by a global
//! allocator that tracks live heap bytes.
//!
//! Run: `cargo bench -p flashsale-core --bench memory`
#![allow(
    clippy::unwrap_used,
    reason = "a benchmark stops at the first surprise"
)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::Duration;

use flashsale_core::{Engine, SaleConfig, SaleId, SequentialIds, Timestamp};

struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: forwards to the system allocator, only counting sizes.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn main() {
    let sizes: Vec<usize> = std::env::var("FLASHSALE_BENCH_SIZES")
        .ok()
        .map(|s| s.split(',').filter_map(|n| n.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![1_000, 100_000, 1_000_000, 10_000_000]);
    println!(
        "| joined (waiting) | heap bytes / buyer | of which name on the heap | besides the name |"
    );
    println!("|---:|---:|---:|---:|");
    for n in sizes {
        let t0 = Timestamp::from_millis(1_700_000_000_000);
        let mut config = SaleConfig::new(
            SaleId::from(bson::oid::ObjectId::from_bytes([1; 12])),
            u64::MAX / 2,
            t0,
            Timestamp::MAX,
        );
        config.payment_timeout = Duration::from_secs(60);
        config.max_payment_slots = Some(100);
        let before = LIVE.load(Ordering::Relaxed);
        let mut engine = Engine::new(t0, config, Box::new(SequentialIds::default())).unwrap();
        let mut name = String::new();
        let mut name_bytes = 0usize;
        for i in 0..n {
            use std::fmt::Write;
            name.clear();
            write!(name, "buyer-{i:08}").unwrap();
            // Names of up to 24 bytes live inline in the engine's record.
            name_bytes += if name.len() > 24 { name.len() } else { 0 };
            engine.buy(t0, &name).unwrap();
            // Drain at once so the event buffer stays a few entries long.
            engine.drain_events().for_each(drop);
        }
        let used = (LIVE.load(Ordering::Relaxed) - before) as f64;
        let per = used / n as f64;
        let names = name_bytes as f64 / n as f64;
        println!("| {n} | {per:.1} | {names:.1} | {:.1} |", per - names);
        drop(engine);
    }
}
