//! Serving a router in front of the public internet: what axum's `serve`
//! does not do. Each connection must send its request headers within
//! [`ServerLimits::header_read_timeout`] (slow-header clients are cut off),
//! at most [`ServerLimits::max_connections`] are open at once (past that,
//! new ones wait in the kernel's backlog), and shutdown has a deadline:
//! stop accepting, let requests in flight finish for at most
//! [`ServerLimits::shutdown_grace`], then close whatever is left, however
//! the clients behave. Request timeouts and the in-flight cap are the
//! router's ([`crate::RequestLimits`]).

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tower::ServiceExt;

/// Connection-level bounds.
#[derive(Debug, Clone)]
pub struct ServerLimits {
    /// A connection that has not sent a whole request head this long after
    /// it opened (or after its previous request) is closed. Default 10 s.
    pub header_read_timeout: Duration,
    /// Connections open at once. Default 10,000.
    pub max_connections: usize,
    /// How long shutdown waits for requests in flight. Default 10 s.
    pub shutdown_grace: Duration,
}

impl Default for ServerLimits {
    fn default() -> Self {
        ServerLimits {
            header_read_timeout: Duration::from_secs(10),
            max_connections: 10_000,
            shutdown_grace: Duration::from_secs(10),
        }
    }
}

/// Serves `router` on `listener` until `shutdown` resolves, then drains as
/// [`ServerLimits`] says. Handlers can read the peer's address with
/// `ConnectInfo<SocketAddr>`. Returns once every connection is closed.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ServerLimits,
    shutdown: impl Future<Output = ()>,
) {
    // Turn every route into its service once, as axum's own `serve` does:
    // called as it is, the router would rebuild each route — and each
    // layer, such as Socket.IO's engine and its sessions — on every request.
    let router: Router = router.with_state(());
    let permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let (stop, stopping) = watch::channel(false);
    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            biased;
            () = &mut shutdown => break,
            permit = permits.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break, // never closed
            },
        };
        let (stream, peer) = tokio::select! {
            biased;
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors, say: wait rather than spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        while connections.try_join_next().is_some() {}
        let router = router.clone();
        let mut stopping = stopping.clone();
        let header_read_timeout = limits.header_read_timeout;
        connections.spawn(async move {
            let _permit = permit;
            let service =
                hyper::service::service_fn(move |mut request: axum::http::Request<Incoming>| {
                    request.extensions_mut().insert(ConnectInfo(peer));
                    let router = router.clone();
                    async move {
                        Ok::<_, Infallible>(
                            router.oneshot(request).await.unwrap_or_else(|e| match e {}),
                        )
                    }
                });
            let connection = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(header_read_timeout)
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades();
            tokio::pin!(connection);
            let done = tokio::select! {
                done = connection.as_mut() => done,
                _ = stopping.changed() => {
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            if let Err(e) = done {
                tracing::debug!(%peer, error = %e, "connection ended");
            }
        });
    }
    drop(listener);
    let _ = stop.send(true);
    let drained = tokio::time::timeout(limits.shutdown_grace, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            left = connections.len(),
            "shutdown grace over: closing the connections left"
        );
        connections.shutdown().await;
    }
}
