//! The split deployment's transaction service (the reference's Transaction
//! service): buy, paid, status and leave for the sale `SALE_ID` on `PORT`
//! (3099).
//!
//! With `KAFKA_BROKERS` it journals the sale to a Kafka topic of its own
//! (`JOURNAL=kafka`, the default then) and, when restarted, even after
//! `kill -9`, replays it: payment slots, the waiting queue, the sold count
//! and buyer names come back. A sale it has no journal for (and any sale
//! with `JOURNAL=memory`) is synced at start from the backend: the sale and
//! the buyers who already paid, retrying every `SYNC_RETRY_MS` until the
//! backend answers.
//!
//! Two instances for one sale never both commit: the one that replays the
//! journal claims it, and the other stops at its next write (503, then it
//! exits). With `STANDBY=true` an instance runs hot beside the active one:
//! it follows the journal, answers `/readyz` with 503, and takes over —
//! fencing the old writer — when the journal has been silent for
//! `LEASE_MS` (the active one writes at least a beat every third of that).
//!
//! Run: `SALE_ID=… cargo run --release --example transaction`

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use flashsale_core::service::{Ports, ServiceConfig};
use flashsale_core::{Engine, ObjectIdGenerator, SaleId, Service, Timestamp};
use flashsale_examples::{
    Identity, Kafka, Limits, NO_KAFKA, RateLimits, Switch, Tokens, bind, init_tracing,
    shutdown_signal,
};
use flashsale_http::App;
use flashsale_kafka::{DEFAULT_JOURNAL_PREFIX, KafkaSink, KafkaStorage};

/// The reference's Transaction service: buy, paid, status and leave for
/// one sale, journaled to Kafka or synced from the backend at start.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Port to listen on.
    #[arg(long, env = "PORT", default_value_t = 3099)]
    port: u16,
    /// Address to listen on (0.0.0.0 to accept other machines).
    #[arg(long, env = "HOST", default_value = "127.0.0.1")]
    host: IpAddr,
    /// The sale this service runs (24 hex characters).
    #[arg(long, env = "SALE_ID")]
    sale_id: SaleId,
    /// The operator's token: the operator routes (pause, resume, changes,
    /// end, stats) and `/metrics` need `Authorization: Bearer <it>`. Unset:
    /// they are closed to everyone.
    #[arg(long, env = "ADMIN_TOKEN", hide_env_values = true)]
    admin_token: Option<String>,
    /// Also serve `GET /metrics` without credentials on this address.
    #[arg(long, env = "METRICS_ADDR")]
    metrics_addr: Option<std::net::SocketAddr>,
    /// The backend to sync the sale and its buyers from.
    #[arg(
        long,
        env = "BACKEND_BASE_URL",
        default_value = "http://127.0.0.1:3001"
    )]
    backend_base_url: String,
    /// How long to wait between attempts to reach the backend, in ms.
    #[arg(long, env = "SYNC_RETRY_MS", default_value_t = 2_000, value_parser = clap::value_parser!(u64).range(1..))]
    sync_retry_ms: u64,
    /// How long a buyer holds a payment slot, in milliseconds, when the
    /// backend does not say (the reference's does not).
    #[arg(long, env = "PAYMENT_TIMEOUT_MS", default_value_t = 60_000, value_parser = clap::value_parser!(u64).range(1..))]
    payment_timeout_ms: u64,
    /// How long a request waits for its command to be journaled before it
    /// answers 503 with `Retry-After` (the command may still take effect),
    /// in milliseconds.
    #[arg(long, env = "COMMIT_TIMEOUT_MS", default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..))]
    commit_timeout_ms: u64,
    /// Shared secret: when set, `/paid` accepts only HMAC-SHA256-signed
    /// calls (the payment service signs with the same secret).
    #[arg(long, env = "PAYMENT_SECRET", hide_env_values = true)]
    payment_secret: Option<String>,
    /// Allowed browser origins: `*`, or origins separated by commas.
    #[arg(long, env = "CORS_ORIGIN", default_value = "*")]
    cors_origin: String,
    /// Where the sale's journal lives: `kafka` (replayed at restart; the
    /// default when KAFKA_BROKERS is set) or `memory` (lost at exit).
    #[arg(long, env = "JOURNAL", value_enum)]
    journal: Option<Journal>,
    /// Journal topics are named this prefix and the sale id.
    #[arg(long, env = "KAFKA_JOURNAL_PREFIX", default_value = DEFAULT_JOURNAL_PREFIX)]
    kafka_journal_prefix: String,
    /// Run as a hot standby: follow the sale's Kafka journal, answer
    /// `/readyz` with 503, and take over when the journal falls silent.
    #[arg(long, env = "STANDBY")]
    standby: bool,
    /// A journal silent this long means its writer is dead, in ms; the
    /// active service writes at least a beat every third of it.
    #[arg(long, env = "LEASE_MS", default_value_t = 3_000, value_parser = clap::value_parser!(u64).range(300..))]
    lease_ms: u64,
    /// Replace the sale's journal by a snapshot of its state once it has
    /// grown by this many events (and the snapshot is a fifth shorter); a
    /// restart then reads from the snapshot. The sale pauses while it is
    /// written. Default: never.
    #[arg(long, env = "SNAPSHOT_AFTER", value_parser = clap::value_parser!(u64).range(1..))]
    snapshot_after: Option<u64>,
    #[command(flatten)]
    kafka: Kafka,
    #[command(flatten)]
    tokens: Tokens,
    #[command(flatten)]
    limits: Limits,
    #[command(flatten)]
    rates: RateLimits,
    #[command(flatten)]
    identity: Identity,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Journal {
    Kafka,
    Memory,
}

/// The sale as the backend has it, as a new engine; `None` if told to stop
/// while waiting for the backend.
async fn sync_from_backend(args: &Args) -> Result<Option<Engine>, Box<dyn std::error::Error>> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()?;
    let (sale, buyers) = loop {
        match flashsale_http::sync::fetch(&http, &args.backend_base_url, args.sale_id).await {
            Ok(synced) => break synced,
            Err(e) => {
                tracing::warn!(
                    retry_in_ms = args.sync_retry_ms,
                    "sync from the backend failed: {e}"
                );
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_millis(args.sync_retry_ms)) => {}
                    () = shutdown_signal() => return Ok(None),
                }
            }
        }
    };
    let synced = flashsale_http::sync::engine(
        Timestamp::from(std::time::SystemTime::now()),
        &sale,
        &buyers,
        Duration::from_millis(args.payment_timeout_ms),
        Box::new(ObjectIdGenerator::random()),
    )?;
    tracing::info!(
        sale = %args.sale_id,
        remaining = sale.product_qty,
        imported = synced.imported,
        skipped = synced.skipped.len(),
        "synced from the backend"
    );
    Ok(Some(synced.engine))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    init_tracing();
    // Before any sale starts: each takes its metric handles when it does.
    flashsale_http::metrics::install();
    let args = Args::parse();

    let (mut ports, _) = Ports::in_memory();
    let mut journal = None;
    match args.kafka.config() {
        Some(config) => {
            ports.sink = Arc::new(KafkaSink::connect(&config, args.kafka.kafka_partitions).await?);
            tracing::info!(brokers = %config.brokers, topic = %config.topic, "publishing paid and switch to Kafka");
            if args.journal != Some(Journal::Memory) {
                if args.tokens.buyer_token_secret.is_none() && args.payment_secret.is_none() {
                    return Err(
                        "the Kafka journal outlives this process: set BUYER_TOKEN_SECRET \
                        (or PAYMENT_SECRET) so that buyers' tokens do too"
                            .into(),
                    );
                }
                let storage =
                    Arc::new(KafkaStorage::connect(&config, &args.kafka_journal_prefix).await?);
                ports.storage = storage.clone();
                journal = Some(storage);
                tracing::info!(prefix = %args.kafka_journal_prefix, "journaling to Kafka");
            }
        }
        None if args.journal == Some(Journal::Kafka) => {
            return Err("JOURNAL=kafka needs KAFKA_BROKERS".into());
        }
        None => tracing::warn!("{NO_KAFKA}"),
    }
    let lease = Duration::from_millis(args.lease_ms);
    let mut settings = ServiceConfig::default();
    settings.commit_timeout = Duration::from_millis(args.commit_timeout_ms);
    settings.keep_alive = journal.is_some().then_some(lease / 3);
    settings.snapshot_after = args.snapshot_after;

    let listener = bind(args.host, args.port).await?;
    let local = listener.local_addr()?;
    let switch = Switch::default();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = {
        let (limits, router) = (args.limits.clone(), switch.router());
        let stopped = async move {
            let _ = stopped.await;
        };
        tokio::spawn(async move { limits.serve_until(listener, router, stopped).await })
    };
    if args.standby {
        let Some(journal) = &journal else {
            return Err("STANDBY=true needs the Kafka journal (KAFKA_BROKERS)".into());
        };
        println!(
            "standby for sale {} listening on http://{local}",
            args.sale_id
        );
        tracing::info!(sale = %args.sale_id, ?lease, "standby: following the journal");
        tokio::select! {
            followed = journal.wait_until_silent(args.sale_id, lease) => followed?,
            () = shutdown_signal() => {
                let _ = stop.send(());
                let _ = server.await;
                return Ok(());
            }
        }
        tracing::warn!(sale = %args.sale_id, "taking over the sale");
    }
    // Replaying the journal claims it: any other writer is fenced.
    let service = Service::open_with(ports, settings).await?;
    if service.sale_ids().contains(&args.sale_id) {
        let stats = service.stats(args.sale_id).await;
        tracing::info!(sale = %args.sale_id, ?stats, "recovered from the journal");
    } else {
        let Some(engine) = sync_from_backend(&args).await? else {
            return Ok(());
        };
        service.adopt(engine).await?;
    }
    let mut app = App::new()
        .with_service(service.clone())
        .with_default_sale(args.sale_id)
        .with_token_key(args.tokens.key(args.payment_secret.as_deref(), None));
    if let Some(secret) = &args.payment_secret {
        app = app.with_payment_secret(secret.as_bytes());
    } else {
        tracing::warn!("PAYMENT_SECRET is not set: anyone can mark a transaction paid");
    }

    app = app
        .with_request_limits(args.limits.request())
        .with_metrics(flashsale_examples::metrics(args.metrics_addr));
    if let Some(token) = args.admin_token.as_deref().filter(|t| !t.is_empty()) {
        app = app.with_admin_token(flashsale_http::tokens::AdminToken::new(token));
    }
    if let Some(limiter) = args.rates.limiter(false) {
        app = app.with_rate_limit(limiter);
    }
    if let Some(auth) = args.identity.auth()? {
        app = app.with_buyer_auth(auth);
    }
    switch.activate(app.router(&args.cors_origin));
    println!(
        "transaction service for sale {} listening on http://{}",
        args.sale_id, local
    );
    // A service fenced off its sale's journal (another one took it) stops:
    // it can serve nothing, and its replacement is the one to route to.
    tokio::select! {
        () = service.fenced() => { let _ = stop.send(()); }
        () = shutdown_signal() => { let _ = stop.send(()); }
    }
    let _ = server.await;
    let fenced = service.is_fenced();
    service.shutdown().await;
    if fenced {
        return Err(
            "fenced: another transaction service took this sale's journal; \
            stopping (requests since were refused with 503)"
                .into(),
        );
    }
    Ok(())
}
