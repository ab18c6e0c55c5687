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

/// A JSON body whose rejections answer in the reference's error shape.
#[derive(FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct ApiJson<T>(pub T);

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
        let (is_json, signature) = {
            let header = |name: &str| {
                req.headers()
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned)
            };
            let is_json = header(CONTENT_TYPE.as_str()).is_some_and(|ct| {
                let essence = ct
                    .split(';')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_ascii_lowercase();
                essence == "application/json" || essence.ends_with("+json")
            });
            (is_json, header(SIGNATURE_HEADER))
        };
        if !is_json {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                ErrorCode::UnsupportedMediaType,
                "Expected request with `Content-Type: application/json`",
            ));
        }
        let body = Bytes::from_request(req, state)
            .await
            .map_err(|e| ApiError::new(e.status(), body_code(e.status()), e.body_text()))?;
        if let Some(secret) = state.payment_secret()
            && !signature.is_some_and(|s| verify(secret, &body, &s))
        {
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                ErrorCode::BadSignature,
                "missing or invalid payment signature",
            ));
        }
        let Json(value) = Json::<T>::from_bytes(&body)?;
        Ok(SignedJson(value))
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
