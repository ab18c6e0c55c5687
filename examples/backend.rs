//! The split deployment's backend (the reference's Backend service): sales,
//! buyers, eligibility, Socket.IO and the buyer's web page on `PORT`
//! (3001); the page buys at `PUBLIC_TRANSACTION_URL` and pays at
//! `PUBLIC_PAYMENT_URL`. Creates a demo sale at start, with the id
//! `SALE_ID` if given, so the transaction service can be started with the
//! same setting.
//!
//! Run: `cargo run --release --example backend` (`-- --help` for settings)

use std::net::IpAddr;
use std::sync::Arc;

use clap::Parser;
use flashsale_core::{Catalogue, ObjectIdGenerator, SaleId, SystemClock};
use flashsale_examples::{DemoSale, Guards, Kafka, NO_KAFKA, bind, init_tracing};
use flashsale_http::{InProcess, WebPage};

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
    #[command(flatten)]
    kafka: Kafka,
    #[command(flatten)]
    guards: Guards,
    /// Kafka consumer group the backend commits its progress to (for lag
    /// monitoring; at start it reads the whole topic regardless).
    #[arg(long, env = "KAFKA_GROUP_ID", default_value = "flashsale-backend")]
    kafka_group_id: String,
    /// The transaction service as buyers' browsers reach it (the web page
    /// buys there).
    #[arg(
        long,
        env = "PUBLIC_TRANSACTION_URL",
        default_value = "http://localhost:3099"
    )]
    public_transaction_url: String,
    /// The payment service as buyers' browsers reach it (the web page pays
    /// there).
    #[arg(
        long,
        env = "PUBLIC_PAYMENT_URL",
        default_value = "http://localhost:3100"
    )]
    public_payment_url: String,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    init_tracing();
    let args = Args::parse();

    // The backend takes no payments: only the operator's token and the
    // origins are the profile's business here.
    let profile = &args.guards.profile;
    profile.check(false, None, &args.cors_origin)?;
    profile.announce();
    let clock = Arc::new(SystemClock);
    let catalogue =
        Catalogue::new(Box::new(ObjectIdGenerator::random())).with_max_sales(profile.max_sales);
    let tokens = args.guards.tokens.key(None, None);
    let mut stack = InProcess::catalogue_only(clock, catalogue, tokens);
    let sale = stack
        .catalogue
        .create_sale(args.sale_id, args.demo.new_sale())
        .await
        .map_err(|e| format!("could not create the demo sale: {e}"))?;
    stack.app = args.guards.apply(stack.app)?.with_web_page(WebPage::new(
        &args.public_transaction_url,
        &args.public_payment_url,
    ));

    match args.kafka.config() {
        Some(config) => {
            let partitions =
                flashsale_kafka::ensure_topic(&config, args.kafka.kafka_partitions).await?;
            // The catalogue lives in memory: rebuilt from the whole topic at
            // every start.
            let consumer =
                flashsale_kafka::replay_consumer(&config, &args.kafka_group_id, partitions)?;
            let catalogue = stack.catalogue.clone();
            let stats = Arc::new(flashsale_kafka::ConsumerStats::default());
            tokio::spawn(async move {
                flashsale_kafka::consume(&consumer, stats, |message| {
                    let catalogue = catalogue.clone();
                    async move {
                        // Its notices go out on the live broadcast.
                        let _ = catalogue.apply(vec![message]).await;
                    }
                })
                .await;
            });
            tracing::info!(brokers = %config.brokers, topic = %config.topic, "consuming paid and switch from Kafka");
        }
        None => tracing::warn!("{NO_KAFKA}"),
    }
    let listener = bind(args.host, args.port).await?;
    println!("backend listening on http://{}", listener.local_addr()?);
    println!(
        "demo sale {} — {} × {:?}",
        sale.id(),
        sale.config.quantity,
        sale.config.product_name
    );
    args.guards
        .limits
        .serve(listener, stack.router(&args.cors_origin))
        .await;
    stack.shutdown().await;
    Ok(())
}
