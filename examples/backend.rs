//! The split deployment's backend (the reference's Backend service): sales,
//! buyers, eligibility, Socket.IO and the buyer's web page on `PORT`
//! (3001); the page buys at `PUBLIC_TRANSACTION_URL` and pays at
//! `PUBLIC_PAYMENT_URL`. Creates a demo sale at start, with the id
//! `SALE_ID` if given, so the transaction service can be started with the
//! same setting.
//!
//! With `DATA_DIR` it keeps its catalogue there between restarts (saved
//! every few seconds with the topic offsets it covers), and a restart reads
//! only the messages after them; without, it reads the whole topic.
//!
//! Run: `cargo run --release --example backend` (`-- --help` for settings)

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;

use clap::Parser;
use flashsale_core::{Catalogue, ObjectIdGenerator, SaleId, SystemClock};
use flashsale_examples::{
    CatalogueFile, DemoSale, Guards, Kafka, NO_KAFKA, SavedCatalogue, bind, init_tracing,
};
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
    /// Keep the catalogue in this directory between restarts (a restart
    /// then reads only the topic's newer messages); one backend per
    /// directory. Default: none, the whole topic is read at every start.
    #[arg(long, env = "DATA_DIR")]
    data_dir: Option<std::path::PathBuf>,
    /// With DATA_DIR: how often the catalogue is saved when messages came
    /// in, in ms.
    #[arg(long, env = "CATALOGUE_SAVE_MS", default_value_t = 5_000, value_parser = clap::value_parser!(u64).range(10..))]
    catalogue_save_ms: u64,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    init_tracing();
    // Before any sale starts: each takes its metric handles when it does.
    flashsale_http::metrics::install();
    let args = Args::parse();

    // The backend takes no payments: only the operator's token and the
    // origins are the profile's business here.
    let profile = &args.guards.profile;
    profile.check(false, None, &args.cors_origin)?;
    profile.announce();
    let clock = Arc::new(SystemClock);
    let mut catalogue =
        Catalogue::new(Box::new(ObjectIdGenerator::random())).with_max_sales(profile.max_sales);
    let kafka = args.kafka.config();
    let file = args
        .data_dir
        .as_deref()
        .map(CatalogueFile::open)
        .transpose()?
        .map(Arc::new);
    let mut resume_at = BTreeMap::new();
    if let (Some(file), Some(config)) = (&file, &kafka)
        && let Some(saved) = file.load(&config.topic)?
    {
        catalogue.load(saved.catalogue)?;
        resume_at = saved.next;
        tracing::info!(sales = catalogue.len(), offsets = ?resume_at, "catalogue loaded");
    }
    let tokens = args.guards.tokens.key(None, None);
    let mut stack = InProcess::catalogue_only(clock, catalogue, tokens);
    // The saved catalogue's sale carries on; a first start makes one.
    let known = match args.sale_id {
        Some(id) => stack.catalogue.get(id).await?,
        None => stack.catalogue.newest().await?,
    };
    let sale = match known {
        Some(sale) => sale,
        None => stack
            .catalogue
            .create_sale(args.sale_id, args.demo.new_sale())
            .await
            .map_err(|e| format!("could not create the demo sale: {e}"))?,
    };
    stack.app = args.guards.apply(stack.app)?.with_web_page(WebPage::new(
        &args.public_transaction_url,
        &args.public_payment_url,
    ));

    let mut saver = None;
    match kafka {
        Some(config) => {
            let partitions =
                flashsale_kafka::ensure_topic(&config, args.kafka.kafka_partitions).await?;
            // The catalogue lives in memory: rebuilt from the whole topic at
            // every start, or from the saved state and what came after.
            let consumer = flashsale_kafka::resume_consumer(
                &config,
                &args.kafka_group_id,
                partitions,
                &resume_at,
            )?;
            let catalogue = stack.catalogue.clone();
            let stats = Arc::new(flashsale_kafka::ConsumerStats::default());
            if let Some(file) = &file {
                saver = Some(Saver {
                    file: file.clone(),
                    topic: config.topic.clone(),
                    stats: stats.clone(),
                    catalogue: catalogue.clone(),
                    saved: resume_at,
                });
            }
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
    let every = std::time::Duration::from_millis(args.catalogue_save_ms);
    let saving = saver.as_ref().map(|saver| {
        let mut saver = saver.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                saver.save().await;
            }
        })
    });
    args.guards
        .limits
        .serve(listener, stack.router(&args.cors_origin))
        .await;
    if let (Some(saving), Some(mut saver)) = (saving, saver) {
        saving.abort();
        saver.save().await;
    }
    stack.shutdown().await;
    Ok(())
}

/// Saves the catalogue with the offsets it covers.
#[derive(Clone)]
struct Saver {
    file: Arc<CatalogueFile>,
    topic: String,
    stats: Arc<flashsale_kafka::ConsumerStats>,
    catalogue: flashsale_core::CatalogueService,
    /// The offsets of the last save.
    saved: BTreeMap<i32, i64>,
}

impl Saver {
    /// Saves if messages were read since the last save. The offsets are
    /// taken before the state, so the state holds at least what they
    /// cover (a message in both is applied once again at the next start,
    /// which changes nothing).
    async fn save(&mut self) {
        let next = self
            .stats
            .next
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        if next == self.saved {
            return;
        }
        let Ok(catalogue) = self.catalogue.save().await else {
            return;
        };
        let saved = SavedCatalogue {
            topic: self.topic.clone(),
            next,
            catalogue,
        };
        match self.file.save(&saved) {
            Ok(()) => self.saved = saved.next,
            Err(e) => tracing::warn!(error = %e, "could not save the catalogue"),
        }
    }
}
