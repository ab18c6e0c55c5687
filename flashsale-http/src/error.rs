//! The one place where errors become HTTP answers, in the reference's shape
//! plus a machine-readable code:
//! `{"statusCode":400,"message":"…","error":"Bad Request","code":"sold_out"}`.
//!
//! `message` is for people, and where the reference refuses the same thing
//! it is the reference's exact text (its front end shows `message`
//! verbatim). Clients branch on `code`, which never changes meaning.

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::header::RETRY_AFTER;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use flashsale_core::service::CatalogueError;
use flashsale_core::{
    BuyError, CallError, ControlError, EligibilityError, InvalidId, LeaveError, NameError,
    PaidError, SaleId, StatusError,
};
use serde::Serialize;

/// An error answer: a status, a stable code, and a message for people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// What went wrong, for programs.
    pub code: ErrorCode,
    /// What went wrong, in plain words (the reference's client shows it).
    pub message: String,
    /// Seconds to wait before asking again (`Retry-After`); 503s say 1
    /// unless told otherwise.
    pub retry_after_s: Option<u64>,
}

/// What went wrong, for programs: the `code` of every error body. Stable:
/// a code never changes meaning (new ones may be added).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorCode {
    /// The body is not valid JSON, or a field is missing or of the wrong type.
    InvalidBody,
    /// The body is not `application/json`.
    UnsupportedMediaType,
    /// The body is over the size limit.
    PayloadTooLarge,
    /// No such route.
    RouteNotFound,
    /// The route exists, not with this method.
    MethodNotAllowed,
    /// An id is not a 24-character hex ObjectId.
    InvalidId,
    /// The buyer name is refused (empty, too long, control characters).
    InvalidName,
    /// A new sale's settings are refused.
    InvalidSale,
    /// `/paid` without a valid payment signature.
    BadSignature,
    /// A transaction route without its valid buyer token.
    BadToken,
    /// An operator route without the operator's token.
    BadAdminToken,
    /// A buy or eligibility check without a valid buyer JWT (when buyers
    /// sign in).
    BadJwt,
    /// No such sale (`GET /sales/{id}`, eligibility).
    SaleNotFound,
    /// Buying or paying in a sale that does not run here.
    SaleNotInitialized,
    /// Nothing left.
    SoldOut,
    /// The sale has not started.
    SaleNotStarted,
    /// The sale has ended.
    SaleEnded,
    /// The buyer already has a live or paid transaction in the sale.
    AlreadyJoined,
    /// The buyer joined as often as the sale allows (expired or left each
    /// time).
    TooManyJoins,
    /// The buyer already bought in the sale (eligibility).
    AlreadyParticipated,
    /// `/paid` without a transaction id.
    TransactionIdRequired,
    /// No such transaction.
    TransactionNotFound,
    /// The transaction holds no payment slot (waiting, or let go).
    NotInPayment,
    /// The payment came after the slot expired: refund it.
    SlotExpired,
    /// The payment came after the buyer left: refund it.
    SlotLeft,
    /// Leaving a paid transaction.
    AlreadyPaid,
    /// Leaving a transaction that is over.
    NotLive,
    /// `/pay` with a quantity other than 1.
    InvalidQuantity,
    /// `/pay` could not reach the transaction service.
    PaymentCallbackFailed,
    /// Too many requests from this client; retry after `Retry-After`
    /// seconds.
    RateLimited,
    /// The service cannot commit now, or is shedding load; retry after
    /// `Retry-After` seconds.
    Unavailable,
    /// The request was not answered in time; it may still take effect.
    RequestTimeout,
    /// The operator closed joining: the sale takes no new buyers.
    JoiningClosed,
    /// An operator's change is refused (a zero limit, a stock below what
    /// is sold and held, an end not after the start and now).
    InvalidChange,
}

impl ErrorCode {
    /// Every code.
    pub const ALL: &[ErrorCode] = &[
        ErrorCode::InvalidBody,
        ErrorCode::UnsupportedMediaType,
        ErrorCode::PayloadTooLarge,
        ErrorCode::RouteNotFound,
        ErrorCode::MethodNotAllowed,
        ErrorCode::InvalidId,
        ErrorCode::InvalidName,
        ErrorCode::InvalidSale,
        ErrorCode::BadSignature,
        ErrorCode::BadToken,
        ErrorCode::BadAdminToken,
        ErrorCode::BadJwt,
        ErrorCode::SaleNotFound,
        ErrorCode::SaleNotInitialized,
        ErrorCode::SoldOut,
        ErrorCode::SaleNotStarted,
        ErrorCode::SaleEnded,
        ErrorCode::AlreadyJoined,
        ErrorCode::TooManyJoins,
        ErrorCode::AlreadyParticipated,
        ErrorCode::TransactionIdRequired,
        ErrorCode::TransactionNotFound,
        ErrorCode::NotInPayment,
        ErrorCode::SlotExpired,
        ErrorCode::SlotLeft,
        ErrorCode::AlreadyPaid,
        ErrorCode::NotLive,
        ErrorCode::InvalidQuantity,
        ErrorCode::PaymentCallbackFailed,
        ErrorCode::RateLimited,
        ErrorCode::Unavailable,
        ErrorCode::RequestTimeout,
        ErrorCode::JoiningClosed,
        ErrorCode::InvalidChange,
    ];

    /// The code as it travels.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidBody => "invalid_body",
            ErrorCode::UnsupportedMediaType => "unsupported_media_type",
            ErrorCode::PayloadTooLarge => "payload_too_large",
            ErrorCode::RouteNotFound => "route_not_found",
            ErrorCode::MethodNotAllowed => "method_not_allowed",
            ErrorCode::InvalidId => "invalid_id",
            ErrorCode::InvalidName => "invalid_name",
            ErrorCode::InvalidSale => "invalid_sale",
            ErrorCode::BadSignature => "bad_signature",
            ErrorCode::BadToken => "bad_token",
            ErrorCode::BadAdminToken => "bad_admin_token",
            ErrorCode::BadJwt => "bad_jwt",
            ErrorCode::SaleNotFound => "sale_not_found",
            ErrorCode::SaleNotInitialized => "sale_not_initialized",
            ErrorCode::SoldOut => "sold_out",
            ErrorCode::SaleNotStarted => "sale_not_started",
            ErrorCode::SaleEnded => "sale_ended",
            ErrorCode::AlreadyJoined => "already_joined",
            ErrorCode::TooManyJoins => "too_many_joins",
            ErrorCode::AlreadyParticipated => "already_participated",
            ErrorCode::TransactionIdRequired => "transaction_id_required",
            ErrorCode::TransactionNotFound => "transaction_not_found",
            ErrorCode::NotInPayment => "not_in_payment",
            ErrorCode::SlotExpired => "slot_expired",
            ErrorCode::SlotLeft => "slot_left",
            ErrorCode::AlreadyPaid => "already_paid",
            ErrorCode::NotLive => "not_live",
            ErrorCode::InvalidQuantity => "invalid_quantity",
            ErrorCode::PaymentCallbackFailed => "payment_callback_failed",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::RequestTimeout => "request_timeout",
            ErrorCode::JoiningClosed => "joining_closed",
            ErrorCode::InvalidChange => "invalid_change",
        }
    }
}

/// Every error answer's body: the reference's `{statusCode, message,
/// error}` plus our `code`.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = Error)]
pub(crate) struct ErrorBody<'a> {
    /// The HTTP status, again.
    status_code: u16,
    /// For people; the reference's text where it refuses the same thing.
    message: &'a str,
    /// The status's reason phrase (`Bad Request`, …).
    error: &'a str,
    /// For programs.
    code: ErrorCode,
}

impl ApiError {
    /// An error with this status, code and message.
    pub fn new(status: StatusCode, code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            retry_after_s: (status == StatusCode::SERVICE_UNAVAILABLE).then_some(1),
        }
    }

    /// 400 Bad Request.
    pub fn bad_request(code: ErrorCode, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// 404 Not Found.
    pub fn not_found(code: ErrorCode, message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, code, message)
    }

    /// 404 for an unknown sale, as the reference words it.
    pub fn sale_not_found(sale: SaleId) -> Self {
        Self::not_found(ErrorCode::SaleNotFound, format!("Sale not found: {sale}"))
    }

    /// 503: the service cannot commit now.
    pub fn unavailable() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::Unavailable,
            "sale service unavailable, try again",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            status_code: self.status.as_u16(),
            message: &self.message,
            error: self.status.canonical_reason().unwrap_or("Error"),
            code: self.code,
        };
        let mut response = (self.status, Json(body)).into_response();
        if let Some(secs) = self.retry_after_s {
            response
                .headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        let (status, code) = match &r {
            JsonRejection::MissingJsonContentType(_) => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                ErrorCode::UnsupportedMediaType,
            ),
            JsonRejection::BytesRejection(_) => (r.status(), body_code(r.status())),
            // Syntax and type errors: 400 like the reference's validation.
            _ => (StatusCode::BAD_REQUEST, ErrorCode::InvalidBody),
        };
        ApiError::new(status, code, r.body_text())
    }
}

/// The code for a body that could not be read with `status`.
pub(crate) fn body_code(status: StatusCode) -> ErrorCode {
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        ErrorCode::PayloadTooLarge
    } else {
        ErrorCode::InvalidBody
    }
}

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> Self {
        ApiError::bad_request(ErrorCode::InvalidBody, r.body_text())
    }
}

impl From<PathRejection> for ApiError {
    fn from(r: PathRejection) -> Self {
        ApiError::bad_request(ErrorCode::InvalidId, r.body_text())
    }
}

impl From<InvalidId> for ApiError {
    fn from(e: InvalidId) -> Self {
        ApiError::bad_request(ErrorCode::InvalidId, format!("id is {e}"))
    }
}

impl From<NameError> for ApiError {
    fn from(e: NameError) -> Self {
        ApiError::bad_request(ErrorCode::InvalidName, e.to_string())
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
                ApiError::bad_request(ErrorCode::SaleNotInitialized, "Sale not initialized")
            }
            _ => ApiError::unavailable(),
        }
    }
}

impl From<BuyError> for ApiError {
    fn from(e: BuyError) -> Self {
        let (code, message) = match e {
            BuyError::InvalidName(e) => return e.into(),
            BuyError::SoldOut => (ErrorCode::SoldOut, "Sale is sold out"),
            BuyError::NotStarted { .. } => (ErrorCode::SaleNotStarted, "Sale is not active"),
            BuyError::Ended { .. } => (ErrorCode::SaleEnded, "Sale is not active"),
            BuyError::AlreadyJoined { .. } => (
                ErrorCode::AlreadyJoined,
                "Buyer already has a transaction for this sale",
            ),
            BuyError::InvalidAccount => {
                return ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    ErrorCode::BadJwt,
                    "the token's subject is not an acceptable account id",
                );
            }
            BuyError::JoiningClosed => (ErrorCode::JoiningClosed, "Sale is not taking new buyers"),
            BuyError::TooManyJoins { max } => {
                return ApiError::bad_request(
                    ErrorCode::TooManyJoins,
                    format!("Buyer joined this sale {max} times, the most allowed"),
                );
            }
            _ => return ApiError::unavailable(),
        };
        ApiError::bad_request(code, message)
    }
}

impl From<ControlError> for ApiError {
    fn from(e: ControlError) -> Self {
        let message = e.to_string();
        match e {
            ControlError::Ended => {
                ApiError::new(StatusCode::CONFLICT, ErrorCode::SaleEnded, message)
            }
            ControlError::BelowCommitted { .. } => {
                ApiError::new(StatusCode::CONFLICT, ErrorCode::InvalidChange, message)
            }
            _ => ApiError::bad_request(ErrorCode::InvalidChange, message),
        }
    }
}

impl From<PaidError> for ApiError {
    fn from(e: PaidError) -> Self {
        let code = match e {
            // The reference refuses any transaction not holding a slot so.
            PaidError::UnknownTransaction => ErrorCode::TransactionNotFound,
            PaidError::NotInPayment { .. } => ErrorCode::NotInPayment,
            PaidError::SlotExpired => ErrorCode::SlotExpired,
            PaidError::SlotLeft => ErrorCode::SlotLeft,
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
            LeaveError::AlreadyPaid => ApiError::bad_request(ErrorCode::AlreadyPaid, e.to_string()),
            LeaveError::NotLive { .. } => ApiError::bad_request(ErrorCode::NotLive, e.to_string()),
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
    ApiError::not_found(ErrorCode::TransactionNotFound, "transaction not found")
}

/// Eligibility refusals; the sale's id words the 404.
pub(crate) fn eligibility(sale: SaleId, e: EligibilityError) -> ApiError {
    match e {
        EligibilityError::UnknownSale => ApiError::sale_not_found(sale),
        EligibilityError::InvalidName(e) => e.into(),
        EligibilityError::InvalidAccount => ApiError::new(
            StatusCode::UNAUTHORIZED,
            ErrorCode::BadJwt,
            "the token's subject is not an acceptable account id",
        ),
        EligibilityError::SoldOut => ApiError::bad_request(ErrorCode::SoldOut, "Sale is sold out"),
        EligibilityError::AlreadyParticipated => ApiError::bad_request(
            ErrorCode::AlreadyParticipated,
            "You have already participated in this sale",
        ),
        _ => ApiError::bad_request(ErrorCode::InvalidBody, e.to_string()),
    }
}

impl From<CatalogueError> for ApiError {
    fn from(e: CatalogueError) -> Self {
        match e {
            CatalogueError::Invalid(e) => {
                ApiError::bad_request(ErrorCode::InvalidSale, e.to_string())
            }
            _ => ApiError::unavailable(),
        }
    }
}
