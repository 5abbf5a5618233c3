//! The one HTTP error type: every failure leaves the server as
//! `{"error": {"code", "message"}}` with the status fixed by DESIGN.md.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use vouch_core::ProofError;

use crate::store::StoreError;

/// An error answered to a client.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
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

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    pub fn invalid_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", message)
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("{what} not found"),
        )
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "conflict", message)
    }

    pub fn unauthorized(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, code, message)
    }

    pub fn forbidden(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, code, message)
    }

    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "An internal error occurred; it has been logged.",
        )
    }

    pub fn unavailable() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "The database is unavailable; retry shortly.",
        )
    }

    pub fn rate_limited(retry_after: u64) -> Self {
        let mut e = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            format!(
                "Too many failed verifications; retry after {retry_after} seconds. Check the signature with `vouch verify` or the admin diagnose endpoint."
            ),
        );
        e.retry_after = Some(retry_after.max(1));
        e
    }

    pub fn secret_exposed() -> Self {
        Self::forbidden(
            "secret_key_exposed",
            "An identity secret was sent from the browser. It has been revoked; create a new secret in the admin API and keep it on your backend only.",
        )
    }

    pub fn payload_too_large() -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "The request body is larger than 64 KiB.",
        )
    }

    pub fn unsupported_media_type() -> Self {
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "Send the request body as JSON with `Content-Type: application/json`.",
        )
    }

    /// Maps a failed proof to its DESIGN.md status and code.
    pub fn from_proof(err: &ProofError, attributes: bool) -> Self {
        match err {
            ProofError::Malformed(_) => Self::new(
                StatusCode::BAD_REQUEST,
                "malformed_signature",
                err.to_string(),
            ),
            ProofError::InvalidAttributes(m) => Self::invalid_request(m.clone()),
            ProofError::InvalidSignature | ProofError::NoActiveKey if attributes => {
                Self::unauthorized(
                    "invalid_attributes_signature",
                    "Incorrect attributes signature: sign the JCS (RFC 8785) form of exactly the attributes object you send.",
                )
            }
            ProofError::InvalidSignature | ProofError::NoActiveKey => Self::unauthorized(
                "invalid_signature",
                "Incorrect user identity verification signature",
            ),
            ProofError::TokenExpired => Self::unauthorized("token_expired", err.to_string()),
            _ => Self::unauthorized("invalid_token", err.to_string()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Body {
            error: Inner {
                code: self.code,
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

pub type ApiResult<T> = Result<T, ApiError>;
