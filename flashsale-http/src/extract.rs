//! Extractors: JSON bodies whose rejections answer in the reference's error
//! shape, signed payment callbacks, and ids from the path.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use flashsale_core::{SaleId, TxId};
use serde::de::DeserializeOwned;

use crate::error::{ApiError, ErrorCode, body_code};
use crate::signature::{SIGNATURE_HEADER, verify};

/// A JSON object body whose rejections answer in the reference's error
/// shape: 415 unless `Content-Type` is JSON, 400 `invalid_body` for
/// anything but an object of the right fields.
pub struct ApiJson<T>(pub T);

impl<T, S> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let body = json_bytes(req, state).await?;
        parse(&body).map(ApiJson)
    }
}

/// Whether the request says its body is JSON.
fn is_json(req: &Request) -> bool {
    req.headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| {
            let essence = ct
                .split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase();
            essence == "application/json" || essence.ends_with("+json")
        })
}

/// The body of a request that says it is JSON (else 415), within the
/// body limit (else 413).
async fn json_bytes<S: Send + Sync>(req: Request, state: &S) -> Result<Bytes, ApiError> {
    if !is_json(&req) {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorCode::UnsupportedMediaType,
            "Expected request with `Content-Type: application/json`",
        ));
    }
    Bytes::from_request(req, state)
        .await
        .map_err(|e| ApiError::new(e.status(), body_code(e.status()), e.body_text()))
}

/// Every body of this API is a JSON object: serde alone would also read a
/// struct from an array of its fields in order.
fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(ApiError::bad_request(
            ErrorCode::InvalidBody,
            "the body must be a JSON object",
        ));
    }
    let Json(value) = Json::<T>::from_bytes(body)?;
    Ok(value)
}

/// A query string whose rejections answer in the reference's error shape.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct ApiQuery<T>(pub T);

/// Whoever holds the secret that `/paid` calls must be signed with.
pub trait PaymentSecret {
    /// The secret; `None`: calls need no signature.
    fn payment_secret(&self) -> Option<&[u8]>;
}

/// A JSON body that, when the state has a payment secret, must carry a
/// valid [`SIGNATURE_HEADER`] (else 401). The signature is checked before
/// the body is parsed.
pub struct SignedJson<T>(pub T);

impl<T, S> FromRequest<S> for SignedJson<T>
where
    T: DeserializeOwned,
    S: PaymentSecret + Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let signature = req
            .headers()
            .get(SIGNATURE_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = json_bytes(req, state).await?;
        if let Some(secret) = state.payment_secret()
            && !signature.is_some_and(|s| verify(secret, &body, &s))
        {
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                ErrorCode::BadSignature,
                "missing or invalid payment signature",
            ));
        }
        parse(&body).map(SignedJson)
    }
}

/// A sale id from the path.
pub(crate) fn sale_id(raw: &str) -> Result<SaleId, ApiError> {
    Ok(raw.parse()?)
}

/// A transaction id from the path or a body.
pub(crate) fn tx_id(raw: &str) -> Result<TxId, ApiError> {
    raw.trim().parse().map_err(|_| {
        ApiError::bad_request(
            ErrorCode::InvalidId,
            "transactionId must be a 24-character hex ObjectId",
        )
    })
}
