//! The all-in-one server: backend, transaction and payment routes,
//! Socket.IO and the buyer's web page (at `/`) on one port, events
//! in-process, no Kafka, every sale journaled on disk (`DATA_DIR`) unless
//! `--in-memory`. On a first start it creates a demo sale that is open now;
//! after a restart it carries on with the sales it had. Prints the sale's
//! URL and id.
//!
//! Run: `cargo run --release --example flashsale` (`-- --help` for settings)

use std::net::IpAddr;

use clap::Parser;
use flashsale_core::service::{Ports, ServiceConfig};
use flashsale_core::{Catalogue, ObjectIdGenerator};
use flashsale_examples::{DataDir, DemoSale, Guards, bind, init_tracing};
use flashsale_http::{InProcess, Payment, WebPage};

/// Everything in one process: the reference's backend, transaction and
/// payment routes and its Socket.IO events on one port, journaled on disk,
/// no Kafka.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Port to listen on.
    #[arg(long, env = "PORT", default_value_t = 3000)]
    port: u16,
    /// Address to listen on (0.0.0.0 to accept other machines).
    #[arg(long, env = "HOST", default_value = "127.0.0.1")]
    host: IpAddr,
    #[command(flatten)]
    data: DataDir,
    #[command(flatten)]
    demo: DemoSale,
    /// Allowed browser origins: `*`, or origins separated by commas.
    #[arg(long, env = "CORS_ORIGIN", default_value = "*")]
    cors_origin: String,
    /// Where `POST /pay` reports payments (default: this server's `/paid`).
    #[arg(long, env = "PAY_CALLBACK_URL")]
    pay_callback_url: Option<String>,
    /// Shared secret: when set, `/paid` accepts only HMAC-SHA256-signed
    /// calls, which `/pay` makes.
    #[arg(long, env = "PAYMENT_SECRET", hide_env_values = true)]
    payment_secret: Option<String>,
    #[command(flatten)]
    guards: Guards,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    init_tracing();
    // Before any sale starts: each takes its metric handles when it does.
    flashsale_http::metrics::install();
    let args = Args::parse();

    let profile = &args.guards.profile;
    profile.check(true, args.payment_secret.as_deref(), &args.cors_origin)?;
    profile.announce();
    let (mut ports, _) = Ports::in_memory();
    ports.storage = args.data.storage()?;
    let kept = args.data.token_secret()?;
    let catalogue =
        Catalogue::new(Box::new(ObjectIdGenerator::random())).with_max_sales(profile.max_sales);
    let tokens = args
        .guards
        .tokens
        .key(args.payment_secret.as_deref(), kept.as_deref());
    let mut settings = ServiceConfig::default();
    settings.snapshot_after = args.data.snapshot_after;
    let mut stack = InProcess::open_with(ports, settings, catalogue, tokens).await?;

    // The newest sale carries on after a restart; a first start makes one.
    let sale = match stack.catalogue.newest().await? {
        Some(sale) => {
            tracing::info!(sale = %sale.id(), remaining = sale.remaining, "carrying on");
            sale
        }
        None => stack
            .catalogue
            .create_sale(None, args.demo.new_sale())
            .await
            .map_err(|e| format!("could not create the demo sale: {e}"))?,
    };
    let listener = bind(args.host, args.port).await?;
    let addr = listener.local_addr()?;
    let callback = args
        .pay_callback_url
        .clone()
        .unwrap_or_else(|| format!("http://127.0.0.1:{}/paid", addr.port()));
    let secret = args.payment_secret.as_deref().map(str::as_bytes);
    stack.app = stack
        .app
        .with_default_sale(sale.id())
        .with_web_page(WebPage::same_origin());
    stack.app = args.guards.apply(stack.app)?;
    if profile.demo_payments() {
        // Without PAY_CALLBACK_URL the stand-in pays in this process: the
        // same as calling our own `/paid`, without a request per payment.
        let payment = match (&args.pay_callback_url, &stack.service) {
            (None, Some(service)) => Payment::in_process(service.clone()),
            _ => Payment::new(&callback, secret)?,
        };
        stack.app = stack.app.with_payment(payment);
    }
    if let Some(secret) = secret {
        stack.app = stack.app.with_payment_secret(secret);
    } else {
        tracing::warn!("PAYMENT_SECRET is not set: anyone can mark a transaction paid");
    }
    println!("flashsale listening on http://{addr}");
    println!("buyer's page: http://{addr}/");
    println!(
        "demo sale {} — {} × {:?}",
        sale.id(),
        sale.config.quantity,
        sale.config.product_name
    );
    println!(
        "try: curl -s -XPOST http://{addr}/buy -H 'content-type: application/json' -d '{{\"buyerName\":\"ana\"}}'"
    );

    args.guards
        .limits
        .serve(listener, stack.router(&args.cors_origin))
        .await;
    tracing::info!("stopping: committing what is queued");
    stack.shutdown().await;
    Ok(())
}
