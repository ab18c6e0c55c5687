//! [`InProcess`]: the wiring of a server that keeps its catalogue in
//! process — engines → (catalogue feed, engine-event broadcast) →
//! Socket.IO, and the catalogue's timers. Its tasks are started once, in
//! [`InProcess::open`], and [`InProcess::shutdown`] waits for them.

use std::sync::Arc;

use axum::Router;
use flashsale_core::ports::FanOut;
use flashsale_core::service::{CatalogueService, Ports, ServiceConfig, ServiceError};
use flashsale_core::{BroadcastSink, Catalogue, Clock, Event, Notice, Service};
use socketioxide::layer::SocketIoLayer;
use tokio::task::JoinHandle;

use crate::App;
use crate::live::{LiveSink, Watched};
use crate::tokens::TokenKey;
use tokio::sync::mpsc;

/// Everything in one process, wired: what the `flashsale` server runs (and,
/// without engines, the split deployment's `backend`).
pub struct InProcess {
    /// The routes' parts: the catalogue, and the service when it runs
    /// engines. Add the payment stand-in or the web page here.
    pub app: App,
    /// Catalogue notices (sale_update, starts, ends, queue_switch).
    pub notices: BroadcastSink<Notice>,
    /// Committed engine events.
    pub events: BroadcastSink<Event>,
    /// The catalogue's owner.
    pub catalogue: CatalogueService,
    /// The engines, if this process runs them.
    pub service: Option<Service>,
    live: SocketIoLayer,
    forwarder: JoinHandle<()>,
    /// Pushes watched buyers their positions (when it runs engines).
    positions: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for InProcess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InProcess")
            .field("app", &self.app)
            .finish_non_exhaustive()
    }
}

impl InProcess {
    /// The catalogue and the engines: opens the service over `ports` (its
    /// sink is replaced by the catalogue's feed and the event broadcast;
    /// anything else goes too, through a [`FanOut`]), replaying its journal,
    /// and returns once the catalogue has been rebuilt from it (every sale
    /// and payment the journal holds).
    ///
    /// Buyer tokens are made and checked with `tokens`, over HTTP and for
    /// Socket.IO rooms alike.
    pub async fn open(
        ports: Ports,
        catalogue: Catalogue,
        tokens: TokenKey,
    ) -> Result<Self, ServiceError> {
        Self::open_with(ports, ServiceConfig::default(), catalogue, tokens).await
    }

    /// [`InProcess::open`] with the service's settings.
    pub async fn open_with(
        mut ports: Ports,
        config: ServiceConfig,
        catalogue: Catalogue,
        tokens: TokenKey,
    ) -> Result<Self, ServiceError> {
        let notices = BroadcastSink::new(4096);
        let events = BroadcastSink::new(4096);
        let watched = Watched::default();
        let (live, live_events) = LiveSink::new(watched.clone());
        let catalogue = CatalogueService::open(ports.clock.clone(), catalogue, notices.clone());
        ports.sink = Arc::new(FanOut(vec![
            ports.sink.clone(),
            Arc::new(catalogue.feed()),
            Arc::new(events.clone()),
            Arc::new(live),
        ]));
        let service = Service::open_with(ports, config).await?;
        // A restarted service re-offers each sale's opening and payments:
        // the catalogue is whole again before anything is served.
        service.flush().await;
        let catalogue = catalogue.with_engines(service.clone());
        Ok(Self::wire(
            catalogue,
            Some(service),
            notices,
            events,
            (watched, live_events),
            tokens,
        ))
    }

    /// The catalogue alone, fed from elsewhere (e.g. a Kafka consumer
    /// calling [`CatalogueService::apply`]): the split backend. `tokens`
    /// checks the buyer tokens of Socket.IO room joins (the transaction
    /// service's key).
    pub fn catalogue_only(clock: Arc<dyn Clock>, catalogue: Catalogue, tokens: TokenKey) -> Self {
        let notices = BroadcastSink::new(4096);
        let catalogue = CatalogueService::open(clock, catalogue, notices.clone());
        let watched = Watched::default();
        let (_, live_events) = LiveSink::new(watched.clone());
        let live = (watched, live_events);
        Self::wire(
            catalogue,
            None,
            notices,
            BroadcastSink::new(16),
            live,
            tokens,
        )
    }

    fn wire(
        catalogue: CatalogueService,
        service: Option<Service>,
        notices: BroadcastSink<Notice>,
        events: BroadcastSink<Event>,
        (watched, live_events): (Watched, mpsc::UnboundedReceiver<Event>),
        tokens: TokenKey,
    ) -> Self {
        let (live, io) = crate::live::layer(tokens.clone(), watched.clone());
        let positions = service.clone().map(|service| {
            crate::live::spawn_positions(io.clone(), service, watched, crate::live::POSITION_EVERY)
        });
        let forwarder = crate::live::spawn_forwarder(io, notices.subscribe(), live_events);
        let mut app = App::new()
            .with_catalogue(catalogue.clone())
            .with_token_key(tokens)
            .with_socket_io_client();
        if let Some(service) = &service {
            app = app.with_service(service.clone());
        }
        InProcess {
            app,
            notices,
            events,
            catalogue,
            service,
            live,
            forwarder,
            positions,
        }
    }

    /// The app's routes plus Socket.IO and its browser client. Starts
    /// nothing: call it as often as needed.
    pub fn router(&self, cors_origin: &str) -> Router {
        // The Socket.IO layer takes every path under `/socket.io/`: its
        // browser client is served outside it.
        let router = self.app.router(cors_origin).layer(self.live.clone());
        let router = match self.app.rate_limit() {
            Some(limiter) => router.layer(axum::middleware::from_fn_with_state(
                limiter.clone(),
                crate::ratelimit::limit_scoped,
            )),
            None => router,
        };
        crate::web::socket_io_client().merge(router)
    }

    /// Commits and publishes what the engines have queued, lets the
    /// catalogue apply it, then stops the live forwarder.
    pub async fn shutdown(self) {
        if let Some(service) = self.service {
            service.shutdown().await;
        }
        self.catalogue.shutdown().await;
        self.forwarder.abort();
        let _ = self.forwarder.await;
        if let Some(positions) = self.positions {
            positions.abort();
            let _ = positions.await;
        }
    }
}
