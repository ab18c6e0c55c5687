//! The split deployment's payment stand-in (the reference's dummy Payment
//! service) on `PORT` (3100): `POST /pay` calls back `PAY_CALLBACK_URL`,
//! signed with `PAYMENT_SECRET` when set.
//!
//! Run: `cargo run --release --example payment`

use std::net::IpAddr;

use clap::Parser;
use flashsale_examples::{Limits, bind, init_tracing};
use flashsale_http::Payment;

/// The reference's dummy Payment service.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Port to listen on.
    #[arg(long, env = "PORT", default_value_t = 3100)]
    port: u16,
    /// Address to listen on (0.0.0.0 to accept other machines).
    #[arg(long, env = "HOST", default_value = "127.0.0.1")]
    host: IpAddr,
    /// The transaction service's `/paid`.
    #[arg(
        long,
        env = "PAY_CALLBACK_URL",
        default_value = "http://127.0.0.1:3099/paid"
    )]
    pay_callback_url: String,
    /// Shared secret to sign callbacks with (the transaction service checks).
    #[arg(long, env = "PAYMENT_SECRET", hide_env_values = true)]
    payment_secret: Option<String>,
    /// Allowed browser origins: `*`, or origins separated by commas.
    #[arg(long, env = "CORS_ORIGIN", default_value = "*")]
    cors_origin: String,
    #[command(flatten)]
    limits: Limits,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    init_tracing();
    let args = Args::parse();
    let payment = Payment::new(
        &args.pay_callback_url,
        args.payment_secret.as_deref().map(str::as_bytes),
    )?;
    let listener = bind(args.host, args.port).await?;
    println!(
        "payment listening on http://{} → {}",
        listener.local_addr()?,
        args.pay_callback_url
    );
    args.limits
        .serve(listener, payment.router(&args.cors_origin))
        .await;
    Ok(())
}
