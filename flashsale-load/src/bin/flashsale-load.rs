//! The reference's k6 buy/pay scenarios as an open model, in Rust.
//!
//! An iteration is the reference's: `POST /buy` with a fresh random buyer
//! name; when the answer is `payment`, 85% of buyers then `POST /pay` with
//! quantity 1; a 0.1 s pause ends it. Iterations start at a constant rate
//! whether or not earlier ones have finished (k6's constant-arrival-rate);
//! one due while `--max-vus` iterations are still running is not started and
//! counts as dropped. A request's latency runs from when it was due (the
//! iteration's scheduled start for `/buy`, the buy's answer for `/pay`), so
//! a generator that falls behind shows up as latency, never hides it.
//!
//! ```text
//! flashsale-load --scenario xlarge --buy-url http://127.0.0.1:3000 \
//!     --summary-export summary.json --server-pid 1234
//! ```
//!
//! Prints a k6-like summary (requests/s, p50/p95/p99/max, failed, dropped,
//! its own CPU and the servers'); `--summary-export` writes the figures in
//! the shape of k6's `--summary-export`, so scripts read either. Exits 1
//! when a request failed (a non-2xx answer other than an expected sold
//! out, or no answer).

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use clap::Parser;
use flashsale_load::{Http, Latencies, Process, cpu_of, lock};
use rand::{Rng, SeedableRng};
use tokio::sync::Semaphore;
use tokio::time::Instant;

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Scenario {
    Small,
    Medium,
    Large,
    Xlarge,
}

impl Scenario {
    /// The reference's iterations a minute.
    fn per_minute(self) -> u64 {
        match self {
            Scenario::Small => 50,
            Scenario::Medium => 1_000,
            Scenario::Large => 50_000,
            Scenario::Xlarge => 1_000_000,
        }
    }
}

/// The reference's buy/pay load as an open model.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// The reference's scenario: its iterations a minute (50, 1,000,
    /// 50,000, 1,000,000).
    #[arg(long, env = "SCENARIO", value_enum, default_value = "small")]
    scenario: Scenario,
    /// Iterations a minute, instead of the scenario's.
    #[arg(long, env = "RATE")]
    rate: Option<u64>,
    /// How long iterations are started, in seconds.
    #[arg(long, env = "DURATION_S", default_value_t = 60.0)]
    duration_s: f64,
    /// Where `/buy` is.
    #[arg(long, env = "BUY_URL", default_value = "http://127.0.0.1:3000")]
    buy_url: String,
    /// Where `/pay` is (default: the buy URL).
    #[arg(long, env = "PAY_URL")]
    pay_url: Option<String>,
    /// The share of buyers given a slot who pay.
    #[arg(long, env = "PAY_RATIO", default_value_t = 0.85)]
    pay_ratio: f64,
    /// A 400 "sold out" answer to `/buy` is expected, not a failure.
    #[arg(long, env = "SOLD_OUT")]
    sold_out: bool,
    /// Iterations running at once, at most (default: k6's maxVUs in the
    /// reference's script, 0.45 s worth of arrivals).
    #[arg(long)]
    max_vus: Option<usize>,
    /// Connections to the servers, at most (per URL's host, shared).
    #[arg(long, default_value_t = 256)]
    connections: usize,
    /// A request not answered within this, in seconds, failed.
    #[arg(long, default_value_t = 30)]
    timeout_s: u64,
    /// Writes the figures as k6's `--summary-export` JSON.
    #[arg(long)]
    summary_export: Option<PathBuf>,
    /// Servers whose CPU time to report (process ids, comma-separated).
    #[arg(long, value_delimiter = ',')]
    server_pid: Vec<u32>,
    /// The generator's worker threads.
    #[arg(long, default_value_t = 2)]
    threads: usize,
}

/// What the iterations counted.
#[derive(Default)]
struct Stats {
    requests: AtomicU64,
    failed: AtomicU64,
    server_errors: AtomicU64,
    iterations: AtomicU64,
    dropped: AtomicU64,
    payments_ok: AtomicU64,
    sold_out: AtomicU64,
    buy: Mutex<Latencies>,
    pay: Mutex<Latencies>,
    /// The first few failures, to say what went wrong.
    failures: Mutex<Vec<String>>,
}

impl Stats {
    fn fail(&self, what: String) {
        self.failed.fetch_add(1, Ordering::Relaxed);
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        if failures.len() < 5 {
            failures.push(what);
        }
    }
}

struct Iteration {
    http: Http,
    stats: Arc<Stats>,
    buy_url: String,
    pay_url: String,
    pay_ratio: f64,
    sold_out: bool,
    run: u64,
}

impl Iteration {
    async fn run(&self, n: u64, due: Instant) {
        let mut rng =
            rand::rngs::SmallRng::seed_from_u64(self.run ^ n.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let name = format!(
            "load-{:x}-{n}-{:08x}",
            self.run & 0xffff,
            rng.random::<u32>()
        );
        let answer = self
            .http
            .post(&self.buy_url, format!("{{\"buyerName\":\"{name}\"}}"))
            .await;
        self.stats.requests.fetch_add(1, Ordering::Relaxed);
        lock(&self.stats.buy).record(due.elapsed());
        let slot = match answer {
            Ok((status, body)) if status.is_success() => {
                let body: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
                match body["transactionId"].as_str() {
                    Some(tx) => (body["state"] == "payment").then(|| tx.to_owned()),
                    None => {
                        self.stats
                            .fail(format!("/buy answered no transaction: {body}"));
                        None
                    }
                }
            }
            Ok((status, body)) => {
                let text = String::from_utf8_lossy(&body);
                if self.sold_out
                    && status.as_u16() == 400
                    && text.to_lowercase().contains("sold out")
                {
                    self.stats.sold_out.fetch_add(1, Ordering::Relaxed);
                } else {
                    if status.is_server_error() {
                        self.stats.server_errors.fetch_add(1, Ordering::Relaxed);
                    }
                    self.stats.fail(format!("/buy: {status} {text}"));
                }
                None
            }
            Err(e) => {
                self.stats.fail(format!("/buy: {e}"));
                None
            }
        };
        if let Some(tx) = slot
            && rng.random::<f64>() < self.pay_ratio
        {
            let due = Instant::now();
            let answer = self
                .http
                .post(
                    &self.pay_url,
                    format!("{{\"transactionId\":\"{tx}\",\"quantity\":1}}"),
                )
                .await;
            self.stats.requests.fetch_add(1, Ordering::Relaxed);
            lock(&self.stats.pay).record(due.elapsed());
            match answer {
                Ok((status, _)) if status.is_success() => {
                    self.stats.payments_ok.fetch_add(1, Ordering::Relaxed);
                }
                Ok((status, body)) => {
                    if status.is_server_error() {
                        self.stats.server_errors.fetch_add(1, Ordering::Relaxed);
                    }
                    self.stats
                        .fail(format!("/pay: {status} {}", String::from_utf8_lossy(&body)));
                }
                Err(e) => self.stats.fail(format!("/pay: {e}")),
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        self.stats.iterations.fetch_add(1, Ordering::Relaxed);
    }
}

/// The schedule's wake-up interval, at most.
const TICK: Duration = Duration::from_micros(200);

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    flashsale_load::block_on(args.threads, run(args))
}

async fn run(args: Args) -> std::process::ExitCode {
    let per_minute = args.rate.unwrap_or(args.scenario.per_minute()).max(1);
    let per_second = per_minute as f64 / 60.0;
    let total = (per_second * args.duration_s).round() as u64;
    // As the reference's script: 0.15 s worth of arrivals, three times over.
    let max_vus = args
        .max_vus
        .unwrap_or_else(|| 3 * ((per_second * 0.15).ceil() as usize).max(2));
    let base = |url: &str| url.trim_end_matches('/').to_owned();
    let buy_url = base(&args.buy_url);
    let pay_url = base(args.pay_url.as_deref().unwrap_or(&args.buy_url));
    let stats = Arc::new(Stats::default());
    let iteration = Arc::new(Iteration {
        http: Http::new(args.connections, Duration::from_secs(args.timeout_s)),
        stats: stats.clone(),
        buy_url: format!("{buy_url}/buy"),
        pay_url: format!("{pay_url}/pay"),
        pay_ratio: args.pay_ratio,
        sold_out: args.sold_out,
        run: getrandom::u64().unwrap_or(0),
    });
    println!(
        "{per_minute} iterations a minute ({per_second:.1}/s) for {}s: {total} iterations, at most {max_vus} at once, {} connections",
        args.duration_s, args.connections
    );

    let me = Process::me();
    let (cpu0, servers0) = (me.cpu_seconds(), cpu_of(&args.server_pid));
    let vus = Arc::new(Semaphore::new(max_vus));
    let start = Instant::now() + Duration::from_millis(10);
    let every = Duration::from_secs_f64(1.0 / per_second);
    // The schedule runs on a thread of its own with the OS's fine-grained
    // sleep: the runtime's timer ticks in whole milliseconds, which would
    // start most iterations up to a millisecond late; this starts them at
    // most TICK late.
    let runtime = tokio::runtime::Handle::current();
    let (schedule_vus, schedule_stats) = (vus.clone(), stats.clone());
    let schedule = tokio::task::spawn_blocking(move || {
        let due = |n: u64| start + every.mul_f64(n as f64);
        let mut n = 0;
        while n < total {
            let now = Instant::now();
            while n < total && due(n) <= now {
                match schedule_vus.clone().try_acquire_owned() {
                    Ok(permit) => {
                        let (iteration, at) = (iteration.clone(), due(n));
                        runtime.spawn(async move {
                            iteration.run(n, at).await;
                            drop(permit);
                        });
                    }
                    Err(_) => {
                        schedule_stats.dropped.fetch_add(1, Ordering::Relaxed);
                    }
                }
                n += 1;
            }
            if n < total {
                // Wake at most every TICK: a wake-up per iteration (every
                // 60 µs at xlarge) costs more CPU than the iterations'
                // lateness (counted in their latency) is worth.
                let wake = due(n).max(now + TICK);
                std::thread::sleep(wake.saturating_duration_since(Instant::now()));
            }
        }
    });
    if let Err(e) = schedule.await {
        eprintln!("the schedule failed: {e}");
        return std::process::ExitCode::FAILURE;
    }
    let _all_done = vus.acquire_many(max_vus as u32).await;
    let elapsed = start.elapsed().as_secs_f64();
    let cpu = me.cpu_seconds().zip(cpu0).map(|(b, a)| b - a);
    let servers = cpu_of(&args.server_pid).zip(servers0).map(|(b, a)| b - a);

    let mut all = Latencies::default();
    let (buy, pay) = (lock(&stats.buy), lock(&stats.pay));
    all.add(&buy);
    all.add(&pay);
    let count = |c: &AtomicU64| c.load(Ordering::Relaxed);
    let requests = count(&stats.requests);
    let failed = count(&stats.failed);
    let dropped = count(&stats.dropped);
    let share = |part: u64, of: u64| 100.0 * part as f64 / of.max(1) as f64;
    let core = |s: f64| format!("{s:.1} s ({:.0}% of one core)", 100.0 * s / elapsed);
    println!(
        "  http_reqs..........: {requests} ({:.0}/s)",
        requests as f64 / elapsed
    );
    println!("  http_req_duration..: {}", all.line());
    println!("    /buy.............: {}", buy.line());
    println!("    /pay.............: {}", pay.line());
    println!(
        "  http_req_failed....: {:.2}% ({failed} of {requests})",
        share(failed, requests)
    );
    println!(
        "  iterations.........: {} completed, {dropped} dropped ({:.2}%)",
        count(&stats.iterations),
        share(dropped, total)
    );
    println!(
        "  payments_ok........: {}, sold out: {}",
        count(&stats.payments_ok),
        count(&stats.sold_out)
    );
    if let Some(cpu) = cpu {
        println!("  generator CPU......: {} over {elapsed:.1} s", core(cpu));
    }
    if let Some(servers) = servers.filter(|_| !args.server_pid.is_empty()) {
        println!("  server CPU.........: {}", core(servers));
    }
    for failure in lock(&stats.failures).iter() {
        println!("  failure: {failure}");
    }

    if let Some(path) = &args.summary_export {
        let export = serde_json::json!({
            "metrics": {
                "http_reqs": { "count": requests, "rate": requests as f64 / elapsed },
                "http_req_duration": all.k6_json(),
                "http_req_duration{name:buy}": buy.k6_json(),
                "http_req_duration{name:pay}": pay.k6_json(),
                "http_req_failed": { "passes": failed, "fails": requests - failed },
                "iterations": { "count": count(&stats.iterations) },
                "dropped_iterations": { "count": dropped },
                "payments_ok": { "count": count(&stats.payments_ok) },
                "sold_out": { "count": count(&stats.sold_out) },
                "server_errors": { "count": count(&stats.server_errors) },
                "generator_cpu_seconds": { "value": cpu },
                "elapsed_seconds": { "value": elapsed },
            }
        });
        if let Err(e) = std::fs::write(path, export.to_string()) {
            eprintln!("cannot write {}: {e}", path.display());
            return std::process::ExitCode::FAILURE;
        }
    }
    if failed == 0 {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::FAILURE
    }
}
