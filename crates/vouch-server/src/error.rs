//! The one HTTP error type: every failure leaves the server as
//! `{"error": {"code", "message"}}`, its code one of [`ErrorCode`] and its
//! status fixed by the code.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use vouch_core::ProofError;

use crate::store::StoreError;

pub use crate::codes::ErrorCode;

/// An error answered to a client.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: ErrorCode,
    pub message: String,
    pub retry_after: Option<u64>,
}

#[derive(Serialize)]
struct Body<'a> {
    error: Inner<'a>,
}

#[derive(Serialize)]
struct Inner<'a> {
    code: &'a str,
    message: &'a str,
}

impl From<ErrorCode> for ApiError {
    fn from(code: ErrorCode) -> Self {
        Self::new(code, code.default_message())
    }
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            status: code.status(),
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    /// The same code with another status: only where HTTP itself fixes the
    /// status (405 wrong method, 408 request timeout), with `invalid_request`.
    pub fn with_status(mut self, status: StatusCode) -> Self {
        self.status = status;
        self
    }

    pub fn invalid_request(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidRequest, message)
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(ErrorCode::NotFound, format!("{what} not found"))
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Conflict, message)
    }

    pub fn internal() -> Self {
        ErrorCode::Internal.into()
    }

    pub fn unavailable() -> Self {
        ErrorCode::Unavailable.into()
    }

    pub fn rate_limited(retry_after: u64) -> Self {
        let mut e = Self::new(
            ErrorCode::RateLimited,
            format!(
                "Too many failed verifications from this client; retry after {retry_after} seconds. A correct signature is still accepted. Check the signature with `vouch verify` or the admin diagnose endpoint."
            ),
        );
        e.retry_after = Some(retry_after.max(1));
        e
    }

    /// Maps a failed proof to its status and code.
    pub fn from_proof(err: &ProofError, attributes: bool) -> Self {
        match err {
            ProofError::Malformed(_) => Self::new(ErrorCode::MalformedSignature, err.to_string()),
            ProofError::InvalidAttributes(m) => Self::invalid_request(m.clone()),
            ProofError::InvalidSignature if attributes => {
                ErrorCode::InvalidAttributesSignature.into()
            }
            ProofError::InvalidSignature => ErrorCode::InvalidSignature.into(),
            // Say it loudly: every proof fails until a secret is created.
            ProofError::NoActiveKey if attributes => Self::new(
                ErrorCode::InvalidAttributesSignature,
                "Incorrect attributes signature: this environment has no active identity secret; create or rotate one in the admin API",
            ),
            ProofError::NoActiveKey => Self::new(ErrorCode::InvalidSignature, err.to_string()),
            ProofError::TokenExpired => Self::new(ErrorCode::TokenExpired, err.to_string()),
            _ => Self::new(ErrorCode::InvalidToken, err.to_string()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Body {
            error: Inner {
                code: self.code.as_str(),
                message: &self.message,
            },
        };
        let mut resp = (self.status, axum::Json(body)).into_response();
        if let Some(secs) = self.retry_after
            && let Ok(v) = HeaderValue::from_str(&secs.to_string())
        {
            resp.headers_mut().insert(header::RETRY_AFTER, v);
        }
        resp
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::NotFound(what) => ApiError::not_found(what),
            StoreError::Conflict(m) => ApiError::conflict(m),
            StoreError::Unavailable(e) => {
                tracing::warn!(error = %e, "database unavailable");
                ApiError::unavailable()
            }
            StoreError::Internal(e) => {
                tracing::error!(error = %e, "store error");
                ApiError::internal()
            }
        }
    }
}

impl From<anyhow::Error> for ApiError {
    /// A failure of the server's own machinery: logged, answered generically.
    fn from(err: anyhow::Error) -> Self {
        match err.downcast::<StoreError>() {
            Ok(e) => e.into(),
            Err(e) => {
                tracing::error!(error = %e, "internal error");
                ApiError::internal()
            }
        }
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_is_listed_once_and_serialises_as_its_name() {
        let mut seen = std::collections::HashSet::new();
        for c in ErrorCode::ALL {
            assert!(seen.insert(c.as_str()), "{c:?} twice");
            assert_eq!(
                serde_json::to_value(c).unwrap(),
                serde_json::json!(c.as_str())
            );
            assert!(!c.default_message().is_empty());
        }
    }
}
