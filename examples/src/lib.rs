//! What the example servers share: logging, shutdown on signals, the demo
//! sale's settings, their argument groups, binding with a clear error, what
//! they keep on disk (`data`) and a standby's switchable routes (`switch`).

mod data;
mod switch;

/// Every server here allocates with mimalloc: under load, glibc's malloc
/// and free were a sixth of the all-in-one server's CPU.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

pub use data::{CatalogueFile, DataDir, SavedCatalogue, TOKEN_SECRET_FILE};
pub use switch::Switch;

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use flashsale_core::{NewSale, Timestamp};

/// Logs to stderr; `RUST_LOG` filters (default `info`); `LOG_FORMAT=json`
/// writes one JSON object a line (for a log pipeline).
pub fn init_tracing() {
    let logs = tracing_subscriber::fmt().with_env_filter(
        tracing_subscriber::EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| "info,tower_http=warn".into()),
    );
    if std::env::var("LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json")) {
        logs.json().init();
    } else {
        logs.init();
    }
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

/// How a server bounds connections and requests.
#[derive(Debug, Clone, clap::Args)]
pub struct Limits {
    /// A connection must send its request headers within this, in ms.
    #[arg(long, env = "HEADER_TIMEOUT_MS", default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub header_timeout_ms: u64,
    /// A request not answered within this gets 408, in ms.
    #[arg(long, env = "REQUEST_TIMEOUT_MS", default_value_t = 30_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub request_timeout_ms: u64,
    /// Connections open at once.
    #[arg(long, env = "MAX_CONNECTIONS", default_value_t = 10_000,
        value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub max_connections: usize,
    /// Requests handled at once; past that, 503 at once.
    #[arg(long, env = "MAX_IN_FLIGHT", default_value_t = 4_096,
        value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub max_in_flight: usize,
    /// On SIGTERM, how long requests in flight may finish, in seconds.
    #[arg(long, env = "SHUTDOWN_GRACE_S", default_value_t = 10)]
    pub shutdown_grace_s: u64,
}

impl Limits {
    /// The per-request bounds, for [`flashsale_http::App::with_request_limits`].
    pub fn request(&self) -> flashsale_http::RequestLimits {
        flashsale_http::RequestLimits {
            timeout: Duration::from_millis(self.request_timeout_ms),
            max_in_flight: self.max_in_flight,
        }
    }

    /// Serves `router` on `listener` with these bounds until SIGINT or
    /// SIGTERM, then drains for at most the grace period.
    pub async fn serve(&self, listener: tokio::net::TcpListener, router: axum::Router) {
        self.serve_until(listener, router, std::future::pending())
            .await;
    }

    /// [`Limits::serve`], stopping also when `stop` returns.
    pub async fn serve_until(
        &self,
        listener: tokio::net::TcpListener,
        router: axum::Router,
        stop: impl Future<Output = ()> + Send + 'static,
    ) {
        let limits = flashsale_http::server::ServerLimits {
            header_read_timeout: Duration::from_millis(self.header_timeout_ms),
            max_connections: self.max_connections,
            shutdown_grace: Duration::from_secs(self.shutdown_grace_s),
        };
        let shutdown = async {
            tokio::select! {
                () = shutdown_signal() => {}
                () = stop => {}
            }
        };
        flashsale_http::server::serve(listener, router, limits, shutdown).await;
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
    /// How many times one buyer may join the demo sale (an expired or
    /// departed buyer may come back, up to this).
    #[arg(long, env = "MAX_JOINS_PER_BUYER", default_value_t = flashsale_core::engine::DEFAULT_MAX_JOINS_PER_BUYER,
        value_parser = clap::value_parser!(u32).range(1..))]
    pub max_joins_per_buyer: u32,
    /// At most this many payment slots at once in the demo sale (default:
    /// as many as there is unsold stock); the rest wait in the queue.
    #[arg(long, env = "MAX_PAYMENT_SLOTS", value_parser = clap::value_parser!(u64).range(1..))]
    pub max_payment_slots: Option<u64>,
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
        sale.max_joins_per_buyer = Some(self.max_joins_per_buyer);
        sale.max_payment_slots = self.max_payment_slots;
        sale
    }
}

/// The security profile: the demo (the default, the reference's open flow,
/// said loudly at start) or production (`--production`), and the settings
/// it implies, each of which can also be set on its own.
#[derive(Debug, Clone, clap::Args)]
pub struct Profile {
    /// The production profile: refuses to start without PAYMENT_SECRET,
    /// ADMIN_TOKEN and an explicit CORS_ORIGIN, and does not serve the
    /// stand-in payment gateway.
    #[arg(long, env = "PRODUCTION", num_args = 0..=1, default_value = "false",
        default_missing_value = "true", value_parser = clap::builder::BoolishValueParser::new())]
    pub production: bool,
    /// The operator's token: `Authorization: Bearer <it>` on `POST /sales`.
    /// Unset in the demo profile: a random one, printed once at start.
    #[arg(long, env = "ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
    /// Serve the stand-in payment gateway `POST /pay`, which pays for
    /// anyone (default: on in the demo profile, off in production).
    #[arg(long, env = "DEMO_PAYMENTS", num_args = 0..=1, default_missing_value = "true",
        value_parser = clap::builder::BoolishValueParser::new())]
    pub demo_payments: Option<bool>,
    /// Per-client rate limits.
    #[command(flatten)]
    pub rates: RateLimits,
    /// Also serve `GET /metrics` without credentials on this address
    /// (e.g. `127.0.0.1:9100`, for a scraper on a private network); the
    /// public listener's `/metrics` always needs the admin token.
    #[arg(long, env = "METRICS_ADDR")]
    pub metrics_addr: Option<SocketAddr>,
    /// The most sales the catalogue holds.
    #[arg(long, env = "MAX_SALES", default_value_t = flashsale_core::catalogue::DEFAULT_MAX_SALES,
        value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub max_sales: usize,
}

impl Profile {
    /// Checks what the profile requires: in production, a payment secret
    /// (where payments are taken: `takes_payments`), an operator token and
    /// explicit browser origins.
    pub fn check(
        &self,
        takes_payments: bool,
        payment_secret: Option<&str>,
        cors_origin: &str,
    ) -> Result<(), String> {
        if !self.production {
            return Ok(());
        }
        let mut missing = Vec::new();
        if takes_payments && payment_secret.is_none_or(str::is_empty) {
            missing.push("PAYMENT_SECRET (payments must be signed)");
        }
        if self.admin_token.as_deref().is_none_or(str::is_empty) {
            missing.push("ADMIN_TOKEN (only the operator creates sales)");
        }
        if cors_origin.split(',').any(|o| o.trim() == "*") {
            missing.push("CORS_ORIGIN other than * (your shop's origins)");
        }
        if missing.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "the production profile needs {}",
                missing.join(", ")
            ))
        }
    }

    /// The per-client limiter the profile asks for, if any: `RATE_LIMIT`,
    /// else `20/s,burst=40` in production.
    pub fn limiter(&self) -> Option<flashsale_http::ratelimit::ClientLimiter> {
        self.rates.limiter(self.production)
    }

    /// Whether to serve the stand-in payment gateway.
    pub fn demo_payments(&self) -> bool {
        self.demo_payments.unwrap_or(!self.production)
    }

    /// The operator's credential; in the demo profile without
    /// `ADMIN_TOKEN`, a random one, printed once.
    pub fn admin_token(&self) -> flashsale_http::tokens::AdminToken {
        use flashsale_http::tokens::AdminToken;
        match self.admin_token.as_deref().filter(|t| !t.is_empty()) {
            Some(token) => AdminToken::new(token),
            None => {
                let (admin, token) = AdminToken::random();
                println!("operator token (ADMIN_TOKEN), shown once: {token}");
                admin
            }
        }
    }

    /// Says at start which profile runs, loudly when it is the demo.
    pub fn announce(&self) {
        if self.production {
            tracing::info!("production profile");
        } else {
            tracing::warn!(
                "DEMO PROFILE: the reference's open flow — POST /pay pays for anyone \
                 unless DEMO_PAYMENTS=false, payments need no signature unless \
                 PAYMENT_SECRET is set, any origin may call. Do not face the public \
                 internet like this: run with --production."
            );
        }
        if self.demo_payments() && self.production {
            tracing::warn!("DEMO_PAYMENTS=true in production: POST /pay pays for anyone");
        }
    }
}

/// What a server facing buyers guards itself with: its profile, buyer
/// tokens and sign-in, and connection and request bounds.
#[derive(Debug, Clone, clap::Args)]
pub struct Guards {
    /// The profile and the settings it implies.
    #[command(flatten)]
    pub profile: Profile,
    /// Where buyer tokens' key comes from.
    #[command(flatten)]
    pub tokens: Tokens,
    /// Verified buyer identity.
    #[command(flatten)]
    pub identity: Identity,
    /// Connection and request bounds.
    #[command(flatten)]
    pub limits: Limits,
}

impl Guards {
    /// `app` with the operator's token, the per-client rate limit, buyer
    /// sign-in and the request bounds these settings ask for.
    pub fn apply(&self, mut app: flashsale_http::App) -> Result<flashsale_http::App, String> {
        let metrics = metrics(self.profile.metrics_addr);
        app = app
            .with_admin_token(self.profile.admin_token())
            .with_request_limits(self.limits.request())
            .with_metrics(metrics);
        if let Some(limiter) = self.profile.limiter() {
            app = app.with_rate_limit(limiter);
        }
        if let Some(auth) = self.identity.auth()? {
            tracing::info!(?auth, "buyers sign in: the buyer is the JWT's sub");
            app = app.with_buyer_auth(auth);
        }
        Ok(app)
    }
}

/// The process's metrics recorder; with `addr` (`METRICS_ADDR`), also
/// `GET /metrics` without credentials on a listener of its own.
pub fn metrics(addr: Option<SocketAddr>) -> metrics_exporter_prometheus::PrometheusHandle {
    let metrics = flashsale_http::metrics::install();
    if let Some(addr) = addr {
        let router = flashsale_http::metrics::router(metrics.clone());
        tokio::spawn(async move {
            match tokio::net::TcpListener::bind(addr).await {
                Ok(listener) => {
                    tracing::info!(%addr, "metrics: GET /metrics without credentials");
                    flashsale_http::server::serve(
                        listener,
                        router,
                        flashsale_http::server::ServerLimits::default(),
                        shutdown_signal(),
                    )
                    .await;
                }
                Err(e) => tracing::error!(%addr, error = %e, "METRICS_ADDR: cannot listen"),
            }
        });
    }
    metrics
}

/// Per-client rate limits.
#[derive(Debug, Clone, clap::Args)]
pub struct RateLimits {
    /// Per-client rate limit on buys, eligibility, transaction routes and
    /// live connections, e.g. `20/s,burst=40` (default: off, except
    /// `20/s,burst=40` in the production profile).
    #[arg(long, env = "RATE_LIMIT")]
    pub rate_limit: Option<flashsale_http::ratelimit::RateLimit>,
    /// Proxies (CIDRs, comma-separated) whose `X-Forwarded-For` is
    /// believed for the client's address.
    #[arg(long, env = "TRUSTED_PROXIES", value_delimiter = ',')]
    pub trusted_proxies: Vec<ipnet::IpNet>,
}

impl RateLimits {
    /// The limiter: `RATE_LIMIT`, else `20/s,burst=40` when `by_default`.
    pub fn limiter(&self, by_default: bool) -> Option<flashsale_http::ratelimit::ClientLimiter> {
        let default = flashsale_http::ratelimit::RateLimit {
            per_second: std::num::NonZeroU32::new(20)?,
            burst: std::num::NonZeroU32::new(40)?,
        };
        let rate = self.rate_limit.or(by_default.then_some(default))?;
        Some(flashsale_http::ratelimit::ClientLimiter::new(
            rate,
            self.trusted_proxies.clone(),
        ))
    }
}

/// Verified buyer identity: with a key, `/buy` and `/eligible` need the
/// shop's JWT and the buyer is its `sub`.
#[derive(Debug, Clone, clap::Args)]
pub struct Identity {
    /// HS256 secret of the shop's buyer JWTs.
    #[arg(long, env = "AUTH_JWT_SECRET", hide_env_values = true)]
    pub auth_jwt_secret: Option<String>,
    /// RS256 or ES256 public key of the shop's buyer JWTs: PEM text, or the
    /// path of a PEM file.
    #[arg(long, env = "AUTH_JWT_PUBLIC_KEY")]
    pub auth_jwt_public_key: Option<String>,
    /// The `aud` the tokens must carry.
    #[arg(long, env = "AUTH_JWT_AUDIENCE")]
    pub auth_jwt_audience: Option<String>,
    /// The `iss` the tokens must carry.
    #[arg(long, env = "AUTH_JWT_ISSUER")]
    pub auth_jwt_issuer: Option<String>,
}

impl Identity {
    /// The JWT checks, when a key is configured.
    pub fn auth(&self) -> Result<Option<flashsale_http::auth::BuyerAuth>, String> {
        use flashsale_http::auth::BuyerAuth;
        let auth = match (&self.auth_jwt_secret, &self.auth_jwt_public_key) {
            (Some(_), Some(_)) => {
                return Err("set AUTH_JWT_SECRET or AUTH_JWT_PUBLIC_KEY, not both".into());
            }
            (Some(secret), None) => BuyerAuth::hs256(secret.as_bytes()),
            (None, Some(key)) => {
                let pem = if key.trim_start().starts_with("-----BEGIN") {
                    key.clone().into_bytes()
                } else {
                    std::fs::read(key).map_err(|e| format!("AUTH_JWT_PUBLIC_KEY {key}: {e}"))?
                };
                BuyerAuth::public_key(&pem)?
            }
            (None, None) => return Ok(None),
        };
        let auth = match &self.auth_jwt_audience {
            Some(aud) => auth.with_audience(aud),
            None => auth,
        };
        Ok(Some(match &self.auth_jwt_issuer {
            Some(iss) => auth.with_issuer(iss),
            None => auth,
        }))
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
    /// from `kept` (a secret the server keeps in its data directory), else
    /// random (said at start: tokens then die with the process).
    pub fn key(
        &self,
        payment_secret: Option<&str>,
        kept: Option<&str>,
    ) -> flashsale_http::tokens::TokenKey {
        use flashsale_http::tokens::TokenKey;
        match (&self.buyer_token_secret, payment_secret, kept) {
            (Some(secret), _, _) => TokenKey::derive(secret.as_bytes()),
            (None, Some(secret), _) => TokenKey::derive(format!("buyer-token:{secret}").as_bytes()),
            (None, None, Some(secret)) => TokenKey::derive(secret.as_bytes()),
            (None, None, None) => {
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
