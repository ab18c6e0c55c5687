//! The all-in-one server: backend, transaction and payment routes and
//! Socket.IO on one port, in memory, events in-process, no Kafka. Creates a
//! demo sale that is open now and prints its URL and id.
//!
//! Run: `cargo run --release --example flashsale` (`-- --help` for settings)

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use clap::Parser;
use flashsale_core::service::Ports;
use flashsale_core::{Catalogue, NewSale, ObjectIdGenerator, Timestamp};
use flashsale_http::{InProcess, Payment};

/// Everything in one process: the reference's backend, transaction and
/// payment routes and its Socket.IO events on one port, in memory, no Kafka.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Port to listen on.
    #[arg(long, env = "PORT", default_value_t = 3000)]
    port: u16,
    /// Address to listen on (0.0.0.0 to accept other machines).
    #[arg(long, env = "HOST", default_value = "127.0.0.1")]
    host: IpAddr,
    /// Units in the demo sale.
    #[arg(long, env = "SALE_QTY", default_value_t = 1_500_000)]
    sale_qty: u64,
    /// The demo sale's product.
    #[arg(long, env = "PRODUCT_NAME", default_value = "Limited edition sneakers")]
    product_name: String,
    /// How long the demo sale stays open, in seconds from now.
    #[arg(long, env = "SALE_DURATION_S", default_value_t = 3600, value_parser = clap::value_parser!(u64).range(1..))]
    sale_duration_s: u64,
    /// How long a buyer holds a payment slot, in milliseconds.
    #[arg(long, env = "PAYMENT_TIMEOUT_MS", default_value_t = 60_000, value_parser = clap::value_parser!(u64).range(1..))]
    payment_timeout_ms: u64,
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
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,tower_http=warn".into()),
        )
        .init();
    let args = Args::parse();

    let (ports, _) = Ports::in_memory();
    let catalogue = Catalogue::new(Box::new(ObjectIdGenerator::random()));
    let mut stack = InProcess::open(ports, catalogue).await?;

    let now = Timestamp::from(std::time::SystemTime::now());
    let mut demo = NewSale::new(
        &args.product_name,
        args.sale_qty,
        now,
        now.saturating_add(Duration::from_secs(args.sale_duration_s)),
    );
    demo.payment_timeout = Duration::from_millis(args.payment_timeout_ms);
    let sale = stack
        .app
        .create_sale(demo)
        .await
        .map_err(|e| format!("could not create the demo sale: {}", e.message))?;
    let listener = tokio::net::TcpListener::bind(SocketAddr::new(args.host, args.port))
        .await
        .map_err(|e| format!("cannot listen on {}:{}: {e}", args.host, args.port))?;
    let addr = listener.local_addr()?;
    let callback = args
        .pay_callback_url
        .unwrap_or_else(|| format!("http://127.0.0.1:{}/paid", addr.port()));
    let secret = args.payment_secret.as_deref().map(str::as_bytes);
    stack.app = stack
        .app
        .with_default_sale(sale.id)
        .with_payment(Payment::new(&callback, secret)?);
    if let Some(secret) = secret {
        stack.app = stack.app.with_payment_secret(secret);
    } else {
        tracing::warn!("PAYMENT_SECRET is not set: anyone can mark a transaction paid");
    }
    println!("flashsale listening on http://{addr}");
    println!(
        "demo sale {} — {} × {:?}",
        sale.id, sale.quantity, sale.product_name
    );
    println!(
        "try: curl -s -XPOST http://{addr}/buy -H 'content-type: application/json' -d '{{\"buyerName\":\"ana\"}}'"
    );

    axum::serve(listener, stack.router(&args.cors_origin))
        .with_graceful_shutdown(shutdown_signal())
        .await?;
    tracing::info!("stopping: committing what is queued");
    stack.app.service().clone().shutdown().await;
    Ok(())
}

/// SIGINT (Ctrl-C) or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}
