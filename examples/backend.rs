//! The split deployment's backend (the reference's Backend service): sales,
//! buyers, eligibility and Socket.IO on `PORT` (3001). Creates a demo sale
//! at start, with the id `SALE_ID` if given, so the transaction service can
//! be started with the same setting.
//!
//! Run: `cargo run --release --example backend` (`-- --help` for settings)

use std::net::IpAddr;

use clap::Parser;
use flashsale_core::catalogue::Sale;
use flashsale_core::service::Ports;
use flashsale_core::{Catalogue, ObjectIdGenerator, SaleId, Timestamp};
use flashsale_examples::{DemoSale, NO_KAFKA, bind, init_tracing, shutdown_signal};
use flashsale_http::InProcess;

/// The reference's Backend service: sales, buyers, eligibility and live
/// events.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Port to listen on.
    #[arg(long, env = "PORT", default_value_t = 3001)]
    port: u16,
    /// Address to listen on (0.0.0.0 to accept other machines).
    #[arg(long, env = "HOST", default_value = "127.0.0.1")]
    host: IpAddr,
    /// The demo sale's id (24 hex characters); random if not given.
    #[arg(long, env = "SALE_ID")]
    sale_id: Option<SaleId>,
    #[command(flatten)]
    demo: DemoSale,
    /// Allowed browser origins: `*`, or origins separated by commas.
    #[arg(long, env = "CORS_ORIGIN", default_value = "*")]
    cors_origin: String,
    /// Kafka brokers (not used yet; see the warning at start).
    #[arg(long, env = "KAFKA_BROKERS")]
    kafka_brokers: Option<String>,
    /// Kafka topic for transaction events (not used yet).
    #[arg(long, env = "KAFKA_TOPIC", default_value = "transactions")]
    kafka_topic: String,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    init_tracing();
    let args = Args::parse();
    tracing::warn!("{NO_KAFKA}");

    let new = args.demo.new_sale();
    let mut catalogue = Catalogue::new(Box::new(ObjectIdGenerator::random()));
    let sale = match args.sale_id {
        Some(id) => catalogue.insert(Sale {
            id,
            product_name: new.product_name,
            quantity: new.quantity,
            remaining: new.quantity,
            starts_at: new.starts_at,
            ends_at: new.ends_at,
            payment_timeout: new.payment_timeout,
            max_payment_slots: new.max_payment_slots,
        }),
        None => catalogue.create(Timestamp::from(std::time::SystemTime::now()), new),
    }
    .map_err(|e| format!("could not create the demo sale: {e}"))?;
    let (ports, _) = Ports::in_memory();
    let stack = InProcess::open(ports, catalogue).await?;

    let listener = bind(args.host, args.port).await?;
    println!("backend listening on http://{}", listener.local_addr()?);
    println!(
        "demo sale {} — {} × {:?}",
        sale.id, sale.quantity, sale.product_name
    );
    axum::serve(listener, stack.backend_router(&args.cors_origin))
        .with_graceful_shutdown(shutdown_signal())
        .await?;
    Ok(())
}
