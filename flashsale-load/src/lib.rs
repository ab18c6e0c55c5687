//! What flashsale's two generators share: a bounded HTTP/1.1 client,
//! latency histograms and what Linux says of a process's CPU and memory.
//!
//! - `flashsale-load` runs the reference's k6 buy/pay scenarios as an open
//!   model (iterations start on schedule whether or not earlier ones
//!   finished; a late start is dropped), with latencies measured from when
//!   each request was due, so a slow server cannot hide its slowness by
//!   slowing the generator down (no coordinated omission).
//! - `flashsale-crowd` connects thousands of Socket.IO clients as waiting
//!   buyers, drives payments at a steady rate and reports how stale each
//!   client's remaining quantity was and whether its last pushed position
//!   was exact.
//!
//! Both are meant to run beside the server on one machine: they report
//! their own CPU time, so a reader can tell whether the generator or the
//! server was the limit.

use std::time::Duration;

/// The generators allocate with mimalloc (fewer cycles per request than
/// glibc's malloc, so more left for the server beside them).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::StatusCode;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio::sync::Semaphore;

/// A JSON-over-HTTP/1.1 client with at most `connections` requests (so at
/// most that many connections) at once; a request waits for a free one.
#[derive(Clone)]
pub struct Http {
    client: Client<HttpConnector, Full<Bytes>>,
    permits: std::sync::Arc<Semaphore>,
    timeout: Duration,
}

/// Why a request got no answer.
#[derive(Debug)]
pub enum HttpError {
    /// No answer within the timeout.
    Timeout,
    /// The connection failed.
    Transport(String),
}

impl std::fmt::Display for HttpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HttpError::Timeout => f.write_str("timed out"),
            HttpError::Transport(e) => f.write_str(e),
        }
    }
}

impl Http {
    /// A client of at most `connections` connections, each request given
    /// `timeout` (from when it is sent, not from when it was due).
    pub fn new(connections: usize, timeout: Duration) -> Http {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(connections)
            .pool_idle_timeout(Duration::from_secs(90))
            .build(connector);
        Http {
            client,
            permits: std::sync::Arc::new(Semaphore::new(connections.max(1))),
            timeout,
        }
    }

    /// `POST url` with a JSON body; the status and the body.
    pub async fn post(&self, url: &str, body: String) -> Result<(StatusCode, Bytes), HttpError> {
        self.post_as(url, body, None).await
    }

    /// `POST url` with a JSON body and `Authorization: Bearer <bearer>` if
    /// given; the status and the body.
    pub async fn post_as(
        &self,
        url: &str,
        body: String,
        bearer: Option<&str>,
    ) -> Result<(StatusCode, Bytes), HttpError> {
        let mut request = hyper::Request::post(url).header("content-type", "application/json");
        if let Some(token) = bearer {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        let request = request
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| HttpError::Transport(e.to_string()))?;
        self.send(request).await
    }

    /// `GET url`, with `Authorization: Bearer <bearer>` if given; the
    /// status and the body.
    pub async fn get(
        &self,
        url: &str,
        bearer: Option<&str>,
    ) -> Result<(StatusCode, Bytes), HttpError> {
        let mut request = hyper::Request::get(url);
        if let Some(token) = bearer {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        let request = request
            .body(Full::new(Bytes::new()))
            .map_err(|e| HttpError::Transport(e.to_string()))?;
        self.send(request).await
    }

    async fn send(
        &self,
        request: hyper::Request<Full<Bytes>>,
    ) -> Result<(StatusCode, Bytes), HttpError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|e| HttpError::Transport(e.to_string()))?;
        let exchange = async {
            let response = self
                .client
                .request(request)
                .await
                .map_err(|e| HttpError::Transport(format!("{e:?}")))?;
            let status = response.status();
            let body = response
                .into_body()
                .collect()
                .await
                .map_err(|e| HttpError::Transport(e.to_string()))?
                .to_bytes();
            Ok((status, body))
        };
        tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| HttpError::Timeout)?
    }
}

/// Latencies in microseconds, 3 significant figures, up to an hour.
pub struct Latencies(hdrhistogram::Histogram<u64>);

impl Default for Latencies {
    fn default() -> Self {
        Latencies(
            hdrhistogram::Histogram::new_with_bounds(1, 3_600_000_000, 3)
                .unwrap_or_else(|_| unreachable!("valid bounds")),
        )
    }
}

impl Latencies {
    /// Records one latency (saturating at the histogram's bound).
    pub fn record(&mut self, latency: Duration) {
        let us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        self.0.saturating_record(us.max(1));
    }

    /// Adds another's records.
    pub fn add(&mut self, other: &Latencies) {
        let _ = self.0.add(&other.0);
    }

    /// How many were recorded.
    pub fn count(&self) -> u64 {
        self.0.len()
    }

    /// The `q` quantile (0–1), in milliseconds.
    pub fn ms(&self, q: f64) -> f64 {
        self.0.value_at_quantile(q) as f64 / 1000.0
    }

    /// The mean, in milliseconds.
    pub fn mean_ms(&self) -> f64 {
        self.0.mean() / 1000.0
    }

    /// The largest, in milliseconds.
    pub fn max_ms(&self) -> f64 {
        self.0.max() as f64 / 1000.0
    }

    /// `avg=… p50=… p95=… p99=… max=…`, in ms.
    pub fn line(&self) -> String {
        format!(
            "avg={:.2}ms p50={:.2}ms p95={:.2}ms p99={:.2}ms max={:.2}ms",
            self.mean_ms(),
            self.ms(0.5),
            self.ms(0.95),
            self.ms(0.99),
            self.max_ms()
        )
    }

    /// k6's summary-export shape of a trend: `avg`, `min`, `med`,
    /// `p(90)`, `p(95)`, `p(99)`, `max`, in ms.
    pub fn k6_json(&self) -> serde_json::Value {
        serde_json::json!({
            "avg": self.mean_ms(),
            "min": self.0.min() as f64 / 1000.0,
            "med": self.ms(0.5),
            "p(90)": self.ms(0.9),
            "p(95)": self.ms(0.95),
            "p(99)": self.ms(0.99),
            "max": self.max_ms(),
        })
    }
}

/// Runs `main` on a multi-threaded runtime of `threads` workers (the
/// generators' entry point).
pub fn block_on<F: Future>(threads: usize, main: F) -> F::Output {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads.max(1))
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("cannot start the runtime: {e}"))
        .block_on(main)
}

/// Locks `m`, whether or not a holder panicked (the figures stay usable).
pub fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Linux's accounting of one process (`/proc/<pid>`), or of this one.
#[derive(Debug, Clone, Copy)]
pub struct Process(Option<u32>);

impl Process {
    /// This process.
    pub fn me() -> Process {
        Process(None)
    }

    /// Process `pid`.
    pub fn pid(pid: u32) -> Process {
        Process(Some(pid))
    }

    fn path(&self, file: &str) -> String {
        match self.0 {
            Some(pid) => format!("/proc/{pid}/{file}"),
            None => format!("/proc/self/{file}"),
        }
    }

    /// CPU time so far (user + system, every thread), in seconds; `None`
    /// when it cannot be read. `/proc` counts in USER_HZ, 100 a second on
    /// Linux.
    pub fn cpu_seconds(&self) -> Option<f64> {
        cpu_in_stat(&std::fs::read_to_string(self.path("stat")).ok()?)
    }

    /// A `/proc/<pid>/status` figure in KiB (`VmRSS`, `VmHWM`).
    pub fn memory_kib(&self, field: &str) -> Option<u64> {
        let status = std::fs::read_to_string(self.path("status")).ok()?;
        status.lines().find_map(|line| {
            let value = line.strip_prefix(field)?.strip_prefix(':')?;
            value.trim().trim_end_matches("kB").trim().parse().ok()
        })
    }
}

/// The CPU seconds (`utime + stime`, fields 14 and 15) in the text of a
/// `/proc/<pid>/stat`.
fn cpu_in_stat(stat: &str) -> Option<f64> {
    // The command name (field 2) may hold spaces and ')': count after the
    // last ')'.
    let mut after = stat[stat.rfind(')')? + 1..].split_whitespace();
    let utime: u64 = after.nth(11)?.parse().ok()?;
    let stime: u64 = after.next()?.parse().ok()?;
    Some((utime + stime) as f64 / 100.0)
}

/// CPU seconds of each process in `pids`, summed; `None` if any cannot be
/// read.
pub fn cpu_of(pids: &[u32]) -> Option<f64> {
    pids.iter().map(|&p| Process::pid(p).cpu_seconds()).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// utime and stime are the 14th and 15th fields, counted after a
    /// command name that may itself hold spaces and parentheses.
    #[test]
    fn cpu_time_is_read_after_an_odd_command_name() {
        let stat = "4242 (a) b (c)) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 125 0 0 20 0 2 0 99";
        assert_eq!(cpu_in_stat(stat), Some(3.75));
        assert_eq!(cpu_in_stat("4242 (x) S 1 2"), None);
    }

    #[test]
    fn this_process_can_be_read() {
        let me = Process::me();
        assert!(me.cpu_seconds().is_some());
        assert!(me.memory_kib("VmRSS").is_some_and(|k| k > 0));
        assert!(Process::pid(u32::MAX).cpu_seconds().is_none());
    }

    #[test]
    fn quantiles_are_in_milliseconds() {
        let mut l = Latencies::default();
        for ms in 1..=100 {
            l.record(Duration::from_millis(ms));
        }
        assert_eq!(l.count(), 100);
        assert!((l.ms(0.5) - 50.0).abs() < 0.1, "{}", l.ms(0.5));
        assert!((l.max_ms() - 100.0).abs() < 0.1);
        assert!((l.ms(0.99) - 99.0).abs() < 0.1);
    }
}
