//! What the example servers share: logging, shutdown on signals, the demo
//! sale's settings, and binding with a clear error.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use flashsale_core::{NewSale, Timestamp};

/// Logs to stderr; `RUST_LOG` filters (default `info`).
pub fn init_tracing() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,tower_http=warn".into()),
        )
        .init();
}

/// Returns on SIGINT (Ctrl-C) or SIGTERM.
pub async fn shutdown_signal() {
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

/// Binds `host:port`, saying which address failed and why.
pub async fn bind(host: IpAddr, port: u16) -> Result<tokio::net::TcpListener, String> {
    tokio::net::TcpListener::bind(SocketAddr::new(host, port))
        .await
        .map_err(|e| format!("cannot listen on {host}:{port}: {e}"))
}

/// The demo sale a server creates at start.
#[derive(Debug, Clone, clap::Args)]
pub struct DemoSale {
    /// Units in the demo sale.
    #[arg(long, env = "SALE_QTY", default_value_t = 1_500_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub sale_qty: u64,
    /// The demo sale's product.
    #[arg(long, env = "PRODUCT_NAME", default_value = "Limited edition sneakers")]
    pub product_name: String,
    /// How long the demo sale stays open, in seconds from now.
    #[arg(long, env = "SALE_DURATION_S", default_value_t = 3600, value_parser = clap::value_parser!(u64).range(1..))]
    pub sale_duration_s: u64,
    /// How long a buyer holds a payment slot, in milliseconds.
    #[arg(long, env = "PAYMENT_TIMEOUT_MS", default_value_t = 60_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub payment_timeout_ms: u64,
}

impl DemoSale {
    /// The sale, opening now.
    pub fn new_sale(&self) -> NewSale {
        let now = Timestamp::from(std::time::SystemTime::now());
        let mut sale = NewSale::new(
            &self.product_name,
            self.sale_qty,
            now,
            now.saturating_add(Duration::from_secs(self.sale_duration_s)),
        );
        sale.payment_timeout = Duration::from_millis(self.payment_timeout_ms);
        sale
    }
}

/// Where the key behind buyer tokens comes from.
#[derive(Debug, Clone, clap::Args)]
pub struct Tokens {
    /// Secret the buyer-token key is derived from: tokens stay valid across
    /// restarts and between services with the same secret. Default: derived
    /// from PAYMENT_SECRET when set, else random at each start.
    #[arg(long, env = "BUYER_TOKEN_SECRET", hide_env_values = true)]
    pub buyer_token_secret: Option<String>,
}

impl Tokens {
    /// The key: from `BUYER_TOKEN_SECRET`, else from `payment_secret`, else
    /// random (said at start: tokens then die with the process).
    pub fn key(&self, payment_secret: Option<&str>) -> flashsale_http::tokens::TokenKey {
        use flashsale_http::tokens::TokenKey;
        match (&self.buyer_token_secret, payment_secret) {
            (Some(secret), _) => TokenKey::derive(secret.as_bytes()),
            (None, Some(secret)) => TokenKey::derive(format!("buyer-token:{secret}").as_bytes()),
            (None, None) => {
                tracing::warn!(
                    "BUYER_TOKEN_SECRET is not set: buyer tokens will not survive a restart"
                );
                TokenKey::random()
            }
        }
    }
}

/// Said at start by a split server without Kafka.
pub const NO_KAFKA: &str = "KAFKA_BROKERS is not set: the backend will not hear of payments \
    and promotions made on the transaction service. Set it on both, or run the `flashsale` \
    example for the whole flow in one process.";

/// The Kafka settings of the split servers.
#[derive(Debug, Clone, clap::Args)]
pub struct Kafka {
    /// Kafka brokers (`host:port,…`); without them the services do not talk.
    #[arg(long, env = "KAFKA_BROKERS")]
    pub kafka_brokers: Option<String>,
    /// The topic for `paid` and `switch`.
    #[arg(long, env = "KAFKA_TOPIC", default_value = flashsale_kafka::DEFAULT_TOPIC)]
    pub kafka_topic: String,
    /// Partitions when the topic has to be created.
    #[arg(long, env = "KAFKA_PARTITIONS", default_value_t = 1, value_parser = clap::value_parser!(i32).range(1..))]
    pub kafka_partitions: i32,
    /// Further librdkafka settings, `key=value` separated by commas
    /// (e.g. `security.protocol=ssl,ssl.ca.location=/etc/ca.pem`).
    #[arg(long = "kafka-option", env = "KAFKA_OPTIONS", value_delimiter = ',', value_parser = key_value)]
    pub kafka_options: Vec<(String, String)>,
}

fn key_value(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_owned(), v.trim().to_owned())),
        _ => Err(format!("{s:?} is not key=value")),
    }
}

impl Kafka {
    /// The client settings, when brokers are given.
    pub fn config(&self) -> Option<flashsale_kafka::KafkaConfig> {
        self.kafka_brokers
            .as_deref()
            .filter(|b| !b.trim().is_empty())
            .map(|b| flashsale_kafka::KafkaConfig {
                extra: self.kafka_options.clone(),
                ..flashsale_kafka::KafkaConfig::new(b, &self.kafka_topic)
            })
    }
}
