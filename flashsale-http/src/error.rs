//! The one place where errors become HTTP answers, in the reference's shape
//! plus a machine-readable code:
//! `{"statusCode":400,"message":"…","error":"Bad Request","code":"sold_out"}`.
//!
//! `message` is for people, and where the reference refuses the same thing
//! it is the reference's exact text (its front end shows `message`
//! verbatim). Clients branch on `code`, which never changes meaning.

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::http::header::RETRY_AFTER;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use flashsale_core::service::CreateError;
use flashsale_core::{
    BuyError, CallError, EligibilityError, InvalidId, LeaveError, NameError, PaidError, SaleId,
    StatusError,
};
use serde::Serialize;

/// Seconds a client is asked to wait after a 503.
const RETRY_AFTER_SECS: &str = "1";

/// An error answer: a status, a stable code, and a message for people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// What went wrong, for programs: one of [`codes::ALL`].
    pub code: &'static str,
    /// What went wrong, in plain words (the reference's client shows it).
    pub message: String,
}

/// Every `code` an error body can carry.
pub mod codes {
    /// The body is not valid JSON, or a field is missing or of the wrong type.
    pub const INVALID_BODY: &str = "invalid_body";
    /// The body is not `application/json`.
    pub const UNSUPPORTED_MEDIA_TYPE: &str = "unsupported_media_type";
    /// The body is over the size limit.
    pub const PAYLOAD_TOO_LARGE: &str = "payload_too_large";
    /// No such route.
    pub const ROUTE_NOT_FOUND: &str = "route_not_found";
    /// The route exists, not with this method.
    pub const METHOD_NOT_ALLOWED: &str = "method_not_allowed";
    /// An id is not a 24-character hex ObjectId.
    pub const INVALID_ID: &str = "invalid_id";
    /// The buyer name is refused (empty, too long, control characters).
    pub const INVALID_NAME: &str = "invalid_name";
    /// A new sale's settings are refused.
    pub const INVALID_SALE: &str = "invalid_sale";
    /// `/paid` without a valid payment signature.
    pub const BAD_SIGNATURE: &str = "bad_signature";
    /// No such sale (`GET /sales/{id}`, eligibility).
    pub const SALE_NOT_FOUND: &str = "sale_not_found";
    /// Buying or paying in a sale that does not run here.
    pub const SALE_NOT_INITIALIZED: &str = "sale_not_initialized";
    /// Nothing left.
    pub const SOLD_OUT: &str = "sold_out";
    /// The sale has not started.
    pub const SALE_NOT_STARTED: &str = "sale_not_started";
    /// The sale has ended.
    pub const SALE_ENDED: &str = "sale_ended";
    /// The buyer already has a live or paid transaction in the sale.
    pub const ALREADY_JOINED: &str = "already_joined";
    /// The buyer already bought in the sale (eligibility).
    pub const ALREADY_PARTICIPATED: &str = "already_participated";
    /// `/paid` without a transaction id.
    pub const TRANSACTION_ID_REQUIRED: &str = "transaction_id_required";
    /// No such transaction.
    pub const TRANSACTION_NOT_FOUND: &str = "transaction_not_found";
    /// The transaction holds no payment slot (waiting, or let go).
    pub const NOT_IN_PAYMENT: &str = "not_in_payment";
    /// The payment came after the slot expired: refund it.
    pub const SLOT_EXPIRED: &str = "slot_expired";
    /// The payment came after the buyer left: refund it.
    pub const SLOT_LEFT: &str = "slot_left";
    /// Leaving a paid transaction.
    pub const ALREADY_PAID: &str = "already_paid";
    /// Leaving a transaction that is over.
    pub const NOT_LIVE: &str = "not_live";
    /// `/pay` with a quantity other than 1.
    pub const INVALID_QUANTITY: &str = "invalid_quantity";
    /// `/pay` could not reach the transaction service.
    pub const PAYMENT_CALLBACK_FAILED: &str = "payment_callback_failed";
    /// The service cannot commit now; retry after `Retry-After` seconds.
    pub const UNAVAILABLE: &str = "unavailable";

    /// All of them, for the API description.
    pub const ALL: &[&str] = &[
        INVALID_BODY,
        UNSUPPORTED_MEDIA_TYPE,
        PAYLOAD_TOO_LARGE,
        ROUTE_NOT_FOUND,
        METHOD_NOT_ALLOWED,
        INVALID_ID,
        INVALID_NAME,
        INVALID_SALE,
        BAD_SIGNATURE,
        SALE_NOT_FOUND,
        SALE_NOT_INITIALIZED,
        SOLD_OUT,
        SALE_NOT_STARTED,
        SALE_ENDED,
        ALREADY_JOINED,
        ALREADY_PARTICIPATED,
        TRANSACTION_ID_REQUIRED,
        TRANSACTION_NOT_FOUND,
        NOT_IN_PAYMENT,
        SLOT_EXPIRED,
        SLOT_LEFT,
        ALREADY_PAID,
        NOT_LIVE,
        INVALID_QUANTITY,
        PAYMENT_CALLBACK_FAILED,
        UNAVAILABLE,
    ];
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Body<'a> {
    status_code: u16,
    message: &'a str,
    error: &'a str,
    code: &'a str,
}

impl ApiError {
    /// An error with this status, code and message.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }

    /// 400 Bad Request.
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// 404 Not Found.
    pub fn not_found(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, code, message)
    }

    /// 404 for an unknown sale, as the reference words it.
    pub fn sale_not_found(sale: SaleId) -> Self {
        Self::not_found(codes::SALE_NOT_FOUND, format!("Sale not found: {sale}"))
    }

    /// 503: the service cannot commit now.
    pub fn unavailable() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            codes::UNAVAILABLE,
            "sale service unavailable, try again",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Body {
            status_code: self.status.as_u16(),
            message: &self.message,
            error: self.status.canonical_reason().unwrap_or("Error"),
            code: self.code,
        };
        let mut response = (self.status, Json(body)).into_response();
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            response
                .headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from_static(RETRY_AFTER_SECS));
        }
        response
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        let (status, code) = match &r {
            JsonRejection::MissingJsonContentType(_) => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                codes::UNSUPPORTED_MEDIA_TYPE,
            ),
            JsonRejection::BytesRejection(_) => (r.status(), body_code(r.status())),
            // Syntax and type errors: 400 like the reference's validation.
            _ => (StatusCode::BAD_REQUEST, codes::INVALID_BODY),
        };
        ApiError::new(status, code, r.body_text())
    }
}

/// The code for a body that could not be read with `status`.
pub(crate) fn body_code(status: StatusCode) -> &'static str {
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        codes::PAYLOAD_TOO_LARGE
    } else {
        codes::INVALID_BODY
    }
}

impl From<PathRejection> for ApiError {
    fn from(r: PathRejection) -> Self {
        ApiError::bad_request(codes::INVALID_ID, r.body_text())
    }
}

impl From<InvalidId> for ApiError {
    fn from(e: InvalidId) -> Self {
        ApiError::bad_request(codes::INVALID_ID, format!("id is {e}"))
    }
}

impl From<NameError> for ApiError {
    fn from(e: NameError) -> Self {
        ApiError::bad_request(codes::INVALID_NAME, e.to_string())
    }
}

/// The service's own answers; the engine's refusal maps by its type.
impl<E> From<CallError<E>> for ApiError
where
    ApiError: From<E>,
{
    fn from(e: CallError<E>) -> Self {
        match e {
            CallError::Refused(e) => e.into(),
            // The reference answers 400 for a sale that is not initialized.
            CallError::UnknownSale => {
                ApiError::bad_request(codes::SALE_NOT_INITIALIZED, "Sale not initialized")
            }
            _ => ApiError::unavailable(),
        }
    }
}

impl From<BuyError> for ApiError {
    fn from(e: BuyError) -> Self {
        let (code, message) = match e {
            BuyError::InvalidName(e) => return e.into(),
            BuyError::SoldOut => (codes::SOLD_OUT, "Sale is sold out"),
            BuyError::NotStarted { .. } => (codes::SALE_NOT_STARTED, "Sale is not active"),
            BuyError::Ended { .. } => (codes::SALE_ENDED, "Sale is not active"),
            BuyError::AlreadyJoined { .. } => (
                codes::ALREADY_JOINED,
                "Buyer already has a transaction for this sale",
            ),
            _ => return ApiError::unavailable(),
        };
        ApiError::bad_request(code, message)
    }
}

impl From<PaidError> for ApiError {
    fn from(e: PaidError) -> Self {
        let code = match e {
            // The reference refuses any transaction not holding a slot so.
            PaidError::UnknownTransaction => codes::TRANSACTION_NOT_FOUND,
            PaidError::NotInPayment { .. } => codes::NOT_IN_PAYMENT,
            PaidError::SlotExpired => codes::SLOT_EXPIRED,
            PaidError::SlotLeft => codes::SLOT_LEFT,
            _ => return ApiError::unavailable(),
        };
        let message = match e {
            PaidError::UnknownTransaction | PaidError::NotInPayment { .. } => {
                "Transaction not in payment queue".to_owned()
            }
            e => e.to_string(),
        };
        ApiError::bad_request(code, message)
    }
}

impl From<LeaveError> for ApiError {
    fn from(e: LeaveError) -> Self {
        match e {
            LeaveError::UnknownTransaction => transaction_not_found(),
            LeaveError::AlreadyPaid => ApiError::bad_request(codes::ALREADY_PAID, e.to_string()),
            LeaveError::NotLive { .. } => ApiError::bad_request(codes::NOT_LIVE, e.to_string()),
            _ => ApiError::unavailable(),
        }
    }
}

impl From<StatusError> for ApiError {
    fn from(_: StatusError) -> Self {
        transaction_not_found()
    }
}

fn transaction_not_found() -> ApiError {
    ApiError::not_found(codes::TRANSACTION_NOT_FOUND, "transaction not found")
}

/// Eligibility refusals; the sale's id words the 404.
pub(crate) fn eligibility(sale: SaleId, e: EligibilityError) -> ApiError {
    match e {
        EligibilityError::UnknownSale => ApiError::sale_not_found(sale),
        EligibilityError::InvalidName(e) => e.into(),
        EligibilityError::SoldOut => ApiError::bad_request(codes::SOLD_OUT, "Sale is sold out"),
        EligibilityError::AlreadyParticipated => ApiError::bad_request(
            codes::ALREADY_PARTICIPATED,
            "You have already participated in this sale",
        ),
        _ => ApiError::bad_request(codes::INVALID_BODY, e.to_string()),
    }
}

impl From<CreateError> for ApiError {
    fn from(e: CreateError) -> Self {
        match e {
            CreateError::Invalid(e) => ApiError::bad_request(codes::INVALID_SALE, e.to_string()),
            _ => ApiError::unavailable(),
        }
    }
}
