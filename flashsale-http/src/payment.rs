//! The payment stand-in (the reference's dummy Payment service):
//! `POST /pay {transactionId, quantity}` calls back the transaction
//! service's `/paid` over HTTP — signed when a secret is set — or, in the
//! all-in-one server, the same process's service directly, and answers
//! with the outcome.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;

use crate::error::{ApiError, ErrorBody, ErrorCode};
use crate::extract::{ApiJson, tx_id};
use crate::signature::{SIGNATURE_HEADER, sign};
use crate::wire::Success;
use flashsale_core::Service;

/// How long the callback may take before the payment is reported failed.
const CALLBACK_TIMEOUT: Duration = Duration::from_secs(10);

/// `POST /pay`.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PayBody {
    /// The transaction to pay.
    #[schema(pattern = "^[0-9a-fA-F]{24}$")]
    transaction_id: String,
    /// Must be 1: a transaction buys one unit.
    #[schema(minimum = 1, maximum = 1)]
    quantity: u64,
}

/// Where payments are reported, and how.
#[derive(Clone)]
pub struct Payment {
    callback: Callback,
}

#[derive(Clone)]
enum Callback {
    /// The transaction service's `/paid`, over HTTP.
    Http {
        url: String,
        secret: Option<Arc<[u8]>>,
        http: reqwest::Client,
    },
    /// The same process's service: what `/paid` would do, without the
    /// round trip.
    InProcess(Service),
}

impl std::fmt::Debug for Payment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.callback {
            Callback::Http { url, secret, .. } => f
                .debug_struct("Payment")
                .field("callback", url)
                .field("signed", &secret.is_some())
                .finish(),
            Callback::InProcess(_) => f
                .debug_struct("Payment")
                .field("callback", &"in process")
                .finish(),
        }
    }
}

impl Payment {
    /// Reports payments to `callback_url` (the transaction service's
    /// `/paid`, plain `http://`), signing them with `secret` if given.
    pub fn new(callback_url: &str, secret: Option<&[u8]>) -> Result<Self, String> {
        if !callback_url.starts_with("http://") {
            return Err(format!(
                "PAY_CALLBACK_URL must be an http:// URL, not {callback_url:?}"
            ));
        }
        let http = reqwest::Client::builder()
            .timeout(CALLBACK_TIMEOUT)
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Payment {
            callback: Callback::Http {
                url: callback_url.to_owned(),
                secret: secret.map(Arc::from),
                http,
            },
        })
    }

    /// Reports payments to `service` in this process, as its `/paid` would
    /// take them (same answers and refusals), without a loopback HTTP
    /// request per payment: the all-in-one server's stand-in.
    pub fn in_process(service: Service) -> Self {
        Payment {
            callback: Callback::InProcess(service),
        }
    }

    /// `POST /pay` alone, to merge into another router.
    pub fn routes<S>(&self) -> Router<S> {
        Router::new()
            .route("/pay", post(pay))
            .with_state(self.clone())
    }

    /// The reference's Payment service alone: `POST /pay`, `/healthz` and
    /// `/readyz`, with the same body limit, CORS, tracing and error answers
    /// as the other services.
    pub fn router(&self, cors_origin: &str) -> Router {
        let description = crate::App::new().with_payment(self.clone()).openapi();
        crate::layers::finish(
            self.routes(),
            Arc::new(|| Box::pin(async { true })),
            &description,
            &crate::RequestLimits::default(),
            cors_origin,
        )
    }
}

/// The payment stand-in: calls back the transaction service's `/paid`
/// (signed when a secret is set) and answers with its outcome.
#[utoipa::path(post, path = "/pay", tag = "payment", request_body = PayBody,
    responses(
        (status = 200, description = "The callback succeeded", body = Success),
        (status = 400, description = "`transaction_id_required`, `invalid_quantity`, `invalid_body`, or the callback's refusal passed on", body = ErrorBody),
        (status = 401, description = "The callback's refusal passed on (`bad_signature`)", body = ErrorBody),
        (status = 404, description = "The callback's refusal passed on", body = ErrorBody),
        (status = 413, description = "`payload_too_large`", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`", body = ErrorBody),
        (status = 502, description = "`payment_callback_failed`: the transaction service did not answer", body = ErrorBody),
        (status = 503, description = "The callback's refusal passed on (`unavailable`)", body = ErrorBody),
    ))]
pub(crate) async fn pay(
    State(p): State<Payment>,
    ApiJson(body): ApiJson<PayBody>,
) -> Result<Response, ApiError> {
    if body.transaction_id.trim().is_empty() {
        return Err(ApiError::bad_request(
            ErrorCode::TransactionIdRequired,
            "transactionId is required",
        ));
    }
    if body.quantity != 1 {
        return Err(ApiError::bad_request(
            ErrorCode::InvalidQuantity,
            "quantity must be 1: a transaction buys one unit",
        ));
    }
    let (url, secret, http) = match &p.callback {
        Callback::Http { url, secret, http } => (url, secret, http),
        Callback::InProcess(service) => {
            service.paid_tx(tx_id(&body.transaction_id)?).await?;
            return Ok(Json(Success { success: true }).into_response());
        }
    };
    let callback = serde_json::json!({ "transactionId": body.transaction_id.trim() }).to_string();
    let mut request = http
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/json");
    if let Some(secret) = secret {
        request = request.header(SIGNATURE_HEADER, sign(secret, callback.as_bytes()));
    }
    let answer = request.body(callback).send().await.map_err(|e| {
        tracing::warn!(error = %e, "payment callback failed");
        ApiError::new(
            StatusCode::BAD_GATEWAY,
            ErrorCode::PaymentCallbackFailed,
            "the transaction service did not answer",
        )
    })?;
    let status = answer.status();
    if status.is_success() {
        return Ok(Json(Success { success: true }).into_response());
    }
    // The transaction service refused: pass its answer on as it is.
    let status = StatusCode::from_u16(status.as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
    let body = answer.bytes().await.unwrap_or_default();
    Ok((
        status,
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response())
}
