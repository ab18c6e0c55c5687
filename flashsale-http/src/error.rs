//! The one place where errors become HTTP answers, in the reference's shape
//! `{"statusCode":400,"message":"…","error":"Bad Request"}`.

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use flashsale_core::catalogue::SaleError;
use flashsale_core::{
    BuyError, EligibilityError, InvalidId, LeaveError, NameError, PaidError, StatusError,
};
use serde::Serialize;

/// An error answer: a status and a message for people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// What went wrong, in plain words (the reference's client shows it).
    pub message: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Body<'a> {
    status_code: u16,
    message: &'a str,
    error: &'a str,
}

impl ApiError {
    /// An error with this status and message.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
        }
    }

    /// 400 Bad Request.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    /// 404 Not Found.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Body {
            status_code: self.status.as_u16(),
            message: &self.message,
            error: self.status.canonical_reason().unwrap_or("Error"),
        };
        (self.status, Json(body)).into_response()
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        let status = match &r {
            JsonRejection::MissingJsonContentType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            JsonRejection::BytesRejection(_) => r.status(),
            // Syntax and type errors: 400 like the reference's validation.
            _ => StatusCode::BAD_REQUEST,
        };
        ApiError::new(status, r.body_text())
    }
}

impl From<PathRejection> for ApiError {
    fn from(r: PathRejection) -> Self {
        ApiError::bad_request(r.body_text())
    }
}

impl From<InvalidId> for ApiError {
    fn from(e: InvalidId) -> Self {
        ApiError::bad_request(format!("id is {e}"))
    }
}

impl From<NameError> for ApiError {
    fn from(e: NameError) -> Self {
        ApiError::bad_request(e.to_string())
    }
}

fn unavailable() -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "sale service unavailable, try again",
    )
}

impl From<BuyError> for ApiError {
    fn from(e: BuyError) -> Self {
        match e {
            BuyError::Unavailable => unavailable(),
            // The reference answers 400 for every refused buy, including a
            // sale that is not initialized.
            e => ApiError::bad_request(e.to_string()),
        }
    }
}

impl From<PaidError> for ApiError {
    fn from(e: PaidError) -> Self {
        match e {
            PaidError::Unavailable => unavailable(),
            e => ApiError::bad_request(e.to_string()),
        }
    }
}

impl From<LeaveError> for ApiError {
    fn from(e: LeaveError) -> Self {
        match e {
            LeaveError::Unavailable => unavailable(),
            LeaveError::UnknownSale | LeaveError::UnknownTransaction => {
                ApiError::not_found(e.to_string())
            }
            e => ApiError::bad_request(e.to_string()),
        }
    }
}

impl From<StatusError> for ApiError {
    fn from(e: StatusError) -> Self {
        match e {
            StatusError::Unavailable => unavailable(),
            e => ApiError::not_found(e.to_string()),
        }
    }
}

impl From<EligibilityError> for ApiError {
    fn from(e: EligibilityError) -> Self {
        match e {
            EligibilityError::UnknownSale => ApiError::not_found(e.to_string()),
            e => ApiError::bad_request(e.to_string()),
        }
    }
}

impl From<SaleError> for ApiError {
    fn from(e: SaleError) -> Self {
        match e {
            SaleError::UnknownSale => ApiError::not_found(e.to_string()),
            e => ApiError::bad_request(e.to_string()),
        }
    }
}
