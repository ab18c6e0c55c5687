//! Per-client rate limits: a token bucket (GCRA, `governor`) per client
//! address, answering 429 with `Retry-After` in the error shape. The
//! client is the connection's peer ([`crate::server::serve`] records it),
//! or — only when the peer is one of the trusted proxies — the nearest
//! untrusted address in `X-Forwarded-For`.

use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use ipnet::IpNet;

use crate::error::{ApiError, ErrorCode};

/// A rate: `per_second` requests a second on average, bursts of `burst`.
/// Written `20/s,burst=40` (`RATE_LIMIT`); the burst defaults to twice the
/// rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Sustained requests per second.
    pub per_second: NonZeroU32,
    /// Requests allowed at once after a quiet spell.
    pub burst: NonZeroU32,
}

impl FromStr for RateLimit {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("{s:?} is not a rate like 20/s,burst=40");
        let mut parts = s.split(',').map(str::trim);
        let rate = parts.next().ok_or_else(bad)?;
        let per_second: NonZeroU32 = rate
            .strip_suffix("/s")
            .and_then(|n| n.trim().parse().ok())
            .ok_or_else(bad)?;
        let mut burst = per_second.saturating_mul(NonZeroU32::MIN.saturating_add(1));
        for part in parts {
            burst = part
                .strip_prefix("burst=")
                .and_then(|n| n.trim().parse().ok())
                .ok_or_else(bad)?;
        }
        Ok(RateLimit { per_second, burst })
    }
}

/// Limits each client address to a [`RateLimit`]. Cheap to clone (one
/// `Arc`: the middleware clones it for every request).
#[derive(Clone)]
pub struct ClientLimiter(Arc<Limiter>);

struct Limiter {
    limiter: DefaultKeyedRateLimiter<IpAddr>,
    trusted: Vec<IpNet>,
    checks: AtomicU64,
}

impl std::fmt::Debug for ClientLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientLimiter")
            .field("trusted", &self.0.trusted)
            .finish_non_exhaustive()
    }
}

impl ClientLimiter {
    /// `limit` per client; `X-Forwarded-For` believed from `trusted`
    /// proxies only.
    pub fn new(limit: RateLimit, trusted: Vec<IpNet>) -> Self {
        let quota = Quota::per_second(limit.per_second).allow_burst(limit.burst);
        ClientLimiter(Arc::new(Limiter {
            limiter: RateLimiter::keyed(quota),
            trusted,
            checks: AtomicU64::new(0),
        }))
    }

    /// The client behind a request from `peer`.
    pub fn client(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        if !self.is_trusted(peer) {
            return peer;
        }
        // Right to left: the nearest hop a trusted proxy did not add.
        let hops: Vec<IpAddr> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|hop| hop.trim().parse().ok())
            .collect();
        hops.into_iter()
            .rev()
            .find(|hop| !self.is_trusted(*hop))
            .unwrap_or(peer)
    }

    fn is_trusted(&self, ip: IpAddr) -> bool {
        self.0.trusted.iter().any(|net| net.contains(&ip))
    }

    /// `Ok` if `client` may go on, else the 429 answer.
    pub fn check(&self, client: IpAddr) -> Result<(), ApiError> {
        // Forget clients quiet long enough to have a full bucket again, now
        // and then, so the table stays as small as the active crowd.
        let limiter = &self.0.limiter;
        if self.0.checks.fetch_add(1, Ordering::Relaxed) % 4096 == 4095 {
            limiter.retain_recent();
        }
        limiter.check_key(&client).map_err(|not_until| {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            let mut e = ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                ErrorCode::RateLimited,
                "too many requests from this address, slow down",
            );
            e.retry_after_s = Some(wait.as_secs().max(1));
            e
        })
    }
}

/// The client a limited request was counted against, as the limiter
/// decided it (the peer, or a trusted proxy's forwarded address): what
/// later layers (Socket.IO's per-address bound) count by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub IpAddr);

/// The middleware: limits every request of the router it wraps, by client,
/// and records the client as a [`ClientAddr`]. Requests without a known
/// peer (a server other than [`crate::server::serve`]) pass.
pub(crate) async fn limit(
    State(limiter): State<ClientLimiter>,
    mut request: Request,
    next: Next,
) -> Response {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    if let Some(peer) = peer {
        let client = limiter.client(peer, request.headers());
        if let Err(e) = limiter.check(client) {
            return e.into_response();
        }
        request.extensions_mut().insert(ClientAddr(client));
    }
    next.run(request).await
}

/// Whether a request is one the limiter counts: a buy, an eligibility
/// check, a payment, a transaction route, or a new Socket.IO connection
/// (a handshake: no `sid` yet). Lists, sales, health and the page pass.
fn limited(uri: &axum::http::Uri) -> bool {
    let path = uri.path();
    if path.starts_with("/socket.io/") {
        return !uri.query().unwrap_or_default().contains("sid=");
    }
    path == "/buy"
        || path == "/paid"
        || path.starts_with("/transactions/")
        || (path.starts_with("/sales/")
            && (path.ends_with("/buy") || path.ends_with("/paid") || path.ends_with("/eligible")))
}

/// The middleware: limits the requests [`limited`] names by client, and
/// lets every other request pass. One layer on the whole router (a layer
/// per route would clone each route's state on every request).
pub(crate) async fn limit_scoped(
    State(limiter): State<ClientLimiter>,
    request: Request,
    next: Next,
) -> Response {
    if limited(request.uri()) {
        limit(State(limiter), request, next).await
    } else {
        next.run(request).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse() {
        let r: RateLimit = "20/s,burst=40".parse().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((r.per_second.get(), r.burst.get()), (20, 40));
        let r: RateLimit = "5/s".parse().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((r.per_second.get(), r.burst.get()), (5, 10));
        for bad in ["", "20", "0/s", "20/m", "20/s,burst=", "20/s,x=1"] {
            assert!(bad.parse::<RateLimit>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn buys_payments_transactions_and_handshakes_are_limited_reads_are_not() {
        let uri = |s: &str| {
            s.parse::<axum::http::Uri>()
                .unwrap_or_else(|_| unreachable!())
        };
        let sale = "/sales/65a1b2c3d4e5f60718293a4b";
        for path in [
            "/buy".to_owned(),
            "/paid".to_owned(),
            format!("{sale}/buy"),
            format!("{sale}/paid"),
            format!("{sale}/eligible"),
            "/transactions/65a1b2c3d4e5f60718293a4b".to_owned(),
            "/socket.io/?EIO=4&transport=websocket".to_owned(),
        ] {
            assert!(limited(&uri(&path)), "{path}");
        }
        for path in [
            "/sales".to_owned(),
            sale.to_owned(),
            format!("{sale}/buyers"),
            "/healthz".to_owned(),
            "/".to_owned(),
            "/socket.io/?EIO=4&transport=polling&sid=abc".to_owned(),
        ] {
            assert!(!limited(&uri(&path)), "{path}");
        }
    }

    #[test]
    fn forwarded_addresses_are_believed_from_trusted_proxies_only() {
        let limit = "1/s".parse().unwrap_or_else(|e: String| panic!("{e}"));
        let proxy: IpNet = "10.0.0.0/8".parse().unwrap_or_else(|_| unreachable!());
        let l = ClientLimiter::new(limit, vec![proxy]);
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-forwarded-for",
            "203.0.113.9, 198.51.100.7, 10.0.0.2"
                .parse()
                .unwrap_or_else(|_| unreachable!()),
        );
        let ip = |s: &str| s.parse::<IpAddr>().unwrap_or_else(|_| unreachable!());
        // From the proxy: the nearest untrusted hop.
        assert_eq!(l.client(ip("10.0.0.1"), &headers), ip("198.51.100.7"));
        // From anyone else: the header is theirs to forge; the peer counts.
        assert_eq!(l.client(ip("192.0.2.1"), &headers), ip("192.0.2.1"));
    }
}
