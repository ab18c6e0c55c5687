//! The split deployment's transaction service (the reference's Transaction
//! service): buy, paid, status and leave for the sale `SALE_ID` on `PORT`
//! (3099). At start it syncs the sale and the buyers who already paid from
//! the backend, retrying every `SYNC_RETRY_MS` until the backend answers.
//!
//! Run: `SALE_ID=… cargo run --release --example transaction`

use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clap::Parser;
use flashsale_core::service::Ports;
use flashsale_core::{Catalogue, ObjectIdGenerator, SaleId, Service, Timestamp};
use flashsale_examples::{Kafka, NO_KAFKA, bind, init_tracing, shutdown_signal};
use flashsale_http::App;
use flashsale_kafka::KafkaSink;

/// The reference's Transaction service: buy, paid, status and leave for
/// one sale, synced from the backend at start.
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
    /// How long a buyer holds a payment slot, in milliseconds.
    #[arg(long, env = "PAYMENT_TIMEOUT_MS", default_value_t = 60_000, value_parser = clap::value_parser!(u64).range(1..))]
    payment_timeout_ms: u64,
    /// Shared secret: when set, `/paid` accepts only HMAC-SHA256-signed
    /// calls (the payment service signs with the same secret).
    #[arg(long, env = "PAYMENT_SECRET", hide_env_values = true)]
    payment_secret: Option<String>,
    /// Allowed browser origins: `*`, or origins separated by commas.
    #[arg(long, env = "CORS_ORIGIN", default_value = "*")]
    cors_origin: String,
    #[command(flatten)]
    kafka: Kafka,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    init_tracing();
    let args = Args::parse();

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
                    () = shutdown_signal() => return Ok(()),
                }
            }
        }
    };
    let now = Timestamp::from(std::time::SystemTime::now());
    let engine = flashsale_http::sync::engine(
        now,
        &sale,
        &buyers,
        Duration::from_millis(args.payment_timeout_ms),
        Box::new(ObjectIdGenerator::random()),
    )?;
    tracing::info!(sale = %args.sale_id, remaining = sale.product_qty, paid = buyers.len(), "synced from the backend");

    let (mut ports, _) = Ports::in_memory();
    match args.kafka.config() {
        Some(config) => {
            ports.sink = Arc::new(KafkaSink::connect(&config, args.kafka.kafka_partitions).await?);
            tracing::info!(brokers = %config.brokers, topic = %config.topic, "publishing paid and switch to Kafka");
        }
        None => tracing::warn!("{NO_KAFKA}"),
    }
    let clock = ports.clock.clone();
    let service = Service::open(ports).await?;
    service.adopt(engine).await?;
    // The transaction routes do not read the catalogue; the backend has it.
    let catalogue = Arc::new(Mutex::new(Catalogue::new(Box::new(
        ObjectIdGenerator::random(),
    ))));
    let mut app = App::new(service.clone(), catalogue, clock, Some(args.sale_id));
    if let Some(secret) = &args.payment_secret {
        app = app.with_payment_secret(secret.as_bytes());
    } else {
        tracing::warn!("PAYMENT_SECRET is not set: anyone can mark a transaction paid");
    }

    let listener = bind(args.host, args.port).await?;
    println!(
        "transaction service for sale {} listening on http://{}",
        args.sale_id,
        listener.local_addr()?
    );
    axum::serve(listener, app.transaction_router(&args.cors_origin))
        .with_graceful_shutdown(shutdown_signal())
        .await?;
    service.shutdown().await;
    Ok(())
}
