//! Shared by the test files: the all-in-one stack on a manual clock, and
//! serving a router on a free loopback port.
// Each test file uses part of this.
#![allow(
    dead_code,
    clippy::unwrap_used,
    reason = "test helpers stop at the first surprise"
)]

pub(crate) mod browser;
pub(crate) mod proxy;
pub(crate) mod socketio;

use std::sync::Arc;

use flashsale_core::service::Ports;
use flashsale_core::testkit::ManualClock;
use flashsale_core::{BroadcastSink, Catalogue, MemoryStorage, SequentialIds, Timestamp};
use flashsale_http::InProcess;
use flashsale_http::tokens::{AdminToken, TokenKey};

/// The buyer-token key of the test stacks: the helpers below act as the
/// holder of every transaction's token (the attack tests do not).
pub(crate) fn test_tokens() -> TokenKey {
    TokenKey::derive(b"test stack")
}

/// The operator token of the test stacks.
pub(crate) const ADMIN_TOKEN: &str = "test operator";

/// Adds the buyer token of the transaction a `/transactions/{id}` URL
/// names, as its holder would, and the operator's token to `/sales` and
/// the operator routes.
fn as_holder(request: reqwest::RequestBuilder, url: &str) -> reqwest::RequestBuilder {
    let operator = ["/sales", "/stats", "/pause", "/resume", "/end"];
    if operator.iter().any(|route| url.ends_with(route)) {
        return request.bearer_auth(ADMIN_TOKEN);
    }
    let tx = url
        .split_once("/transactions/")
        .and_then(|(_, rest)| rest.get(..24))
        .and_then(|id| id.parse().ok());
    match tx {
        Some(tx) => request.bearer_auth(test_tokens().token(tx)),
        None => request,
    }
}

/// 2026-01-01T00:00:00Z.
pub(crate) const T0: Timestamp = Timestamp::from_millis(1_767_225_600_000);

/// The all-in-one stack with deterministic ids, in memory, on a manual
/// clock showing [`T0`].
pub(crate) async fn manual_stack() -> (InProcess, ManualClock) {
    manual_stack_at(T0).await
}

/// [`manual_stack`] on a clock showing `start`.
pub(crate) async fn manual_stack_at(start: Timestamp) -> (InProcess, ManualClock) {
    let clock = ManualClock::new(start);
    let stack = stack_with(&clock, test_catalogue(), MemoryStorage::new()).await;
    (stack, clock)
}

/// The catalogue of the test stacks: deterministic sale ids.
pub(crate) fn test_catalogue() -> Catalogue {
    Catalogue::new(Box::new(SequentialIds::starting_after(0x5a1e_0000)))
}

/// The all-in-one stack over `catalogue` and `storage` on `clock`, with the
/// test tokens and operator token.
pub(crate) async fn stack_with(
    clock: &ManualClock,
    catalogue: Catalogue,
    storage: MemoryStorage,
) -> InProcess {
    let ports = Ports {
        clock: Arc::new(clock.clone()),
        storage: Arc::new(storage),
        sink: Arc::new(BroadcastSink::new(16)),
        ids: Arc::new(|| Box::new(SequentialIds::default())),
    };
    let mut stack = InProcess::open(ports, catalogue, test_tokens())
        .await
        .unwrap();
    stack.app = stack.app.with_admin_token(AdminToken::new(ADMIN_TOKEN));
    stack
}

/// Serves `router` on a free loopback port until the test's runtime ends;
/// returns its base URL.
pub(crate) async fn serve(router: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });
    base
}

/// POSTs `body` as JSON; the status and the JSON answer (`null` if none).
pub(crate) async fn post(
    http: &reqwest::Client,
    url: String,
    body: &serde_json::Value,
) -> (reqwest::StatusCode, serde_json::Value) {
    let r = as_holder(http.post(&url), &url)
        .json(body)
        .send()
        .await
        .unwrap();
    let status = r.status();
    (status, r.json().await.unwrap_or(serde_json::Value::Null))
}

/// GETs `url`; the status and the JSON answer (`null` if none).
pub(crate) async fn get(
    http: &reqwest::Client,
    url: String,
) -> (reqwest::StatusCode, serde_json::Value) {
    let r = as_holder(http.get(&url), &url).send().await.unwrap();
    let status = r.status();
    (status, r.json().await.unwrap_or(serde_json::Value::Null))
}
