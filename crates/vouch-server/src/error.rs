//! The one HTTP error type: every failure leaves the server as
//! `{"error": {"code", "message"}}`, its code one of [`ErrorCode`] and its
//! status fixed by the code.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use vouch_core::ProofError;

use crate::store::StoreError;

/// Every error code the API answers with. The list is the contract: docs/api.md
/// and the OpenAPI document are checked against it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    InvalidRequest,
    MalformedSignature,
    InvalidPublishableKey,
    InvalidSignature,
    SignatureRequired,
    InvalidToken,
    TokenExpired,
    InvalidAttributesSignature,
    InvalidSession,
    SessionExpired,
    InvalidAdminToken,
    OriginNotAllowed,
    UnsignedLimitReached,
    SecretKeyExposed,
    AnonymousNotAllowed,
    Forbidden,
    NotFound,
    Conflict,
    PayloadTooLarge,
    UnsupportedMediaType,
    RateLimited,
    Internal,
    Unavailable,
}

impl ErrorCode {
    pub const ALL: [ErrorCode; 23] = [
        ErrorCode::InvalidRequest,
        ErrorCode::MalformedSignature,
        ErrorCode::InvalidPublishableKey,
        ErrorCode::InvalidSignature,
        ErrorCode::SignatureRequired,
        ErrorCode::InvalidToken,
        ErrorCode::TokenExpired,
        ErrorCode::InvalidAttributesSignature,
        ErrorCode::InvalidSession,
        ErrorCode::SessionExpired,
        ErrorCode::InvalidAdminToken,
        ErrorCode::OriginNotAllowed,
        ErrorCode::UnsignedLimitReached,
        ErrorCode::SecretKeyExposed,
        ErrorCode::AnonymousNotAllowed,
        ErrorCode::Forbidden,
        ErrorCode::NotFound,
        ErrorCode::Conflict,
        ErrorCode::PayloadTooLarge,
        ErrorCode::UnsupportedMediaType,
        ErrorCode::RateLimited,
        ErrorCode::Internal,
        ErrorCode::Unavailable,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::MalformedSignature => "malformed_signature",
            ErrorCode::InvalidPublishableKey => "invalid_publishable_key",
            ErrorCode::InvalidSignature => "invalid_signature",
            ErrorCode::SignatureRequired => "signature_required",
            ErrorCode::InvalidToken => "invalid_token",
            ErrorCode::TokenExpired => "token_expired",
            ErrorCode::InvalidAttributesSignature => "invalid_attributes_signature",
            ErrorCode::InvalidSession => "invalid_session",
            ErrorCode::SessionExpired => "session_expired",
            ErrorCode::InvalidAdminToken => "invalid_admin_token",
            ErrorCode::OriginNotAllowed => "origin_not_allowed",
            ErrorCode::UnsignedLimitReached => "unsigned_limit_reached",
            ErrorCode::SecretKeyExposed => "secret_key_exposed",
            ErrorCode::AnonymousNotAllowed => "anonymous_not_allowed",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::NotFound => "not_found",
            ErrorCode::Conflict => "conflict",
            ErrorCode::PayloadTooLarge => "payload_too_large",
            ErrorCode::UnsupportedMediaType => "unsupported_media_type",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::Internal => "internal",
            ErrorCode::Unavailable => "unavailable",
        }
    }

    /// The HTTP status every answer with this code has.
    pub fn status(self) -> StatusCode {
        match self {
            ErrorCode::InvalidRequest | ErrorCode::MalformedSignature => StatusCode::BAD_REQUEST,
            ErrorCode::InvalidPublishableKey
            | ErrorCode::InvalidSignature
            | ErrorCode::SignatureRequired
            | ErrorCode::InvalidToken
            | ErrorCode::TokenExpired
            | ErrorCode::InvalidAttributesSignature
            | ErrorCode::InvalidSession
            | ErrorCode::SessionExpired
            | ErrorCode::InvalidAdminToken => StatusCode::UNAUTHORIZED,
            ErrorCode::OriginNotAllowed
            | ErrorCode::UnsignedLimitReached
            | ErrorCode::SecretKeyExposed
            | ErrorCode::AnonymousNotAllowed
            | ErrorCode::Forbidden => StatusCode::FORBIDDEN,
            ErrorCode::NotFound => StatusCode::NOT_FOUND,
            ErrorCode::Conflict => StatusCode::CONFLICT,
            ErrorCode::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorCode::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The message when nothing more specific is known.
    pub fn default_message(self) -> &'static str {
        match self {
            ErrorCode::InvalidRequest => "The request is malformed.",
            ErrorCode::MalformedSignature => {
                "The signature is not HMAC-SHA256 in hex (64 characters), base64 (44) or base64url (43)."
            }
            ErrorCode::InvalidPublishableKey => {
                "Send the environment's publishable key as `Authorization: Bearer pk_test_…`."
            }
            ErrorCode::InvalidSignature => "Incorrect user identity verification signature",
            ErrorCode::SignatureRequired => {
                "This call needs a `signature` or `token` proving the user id."
            }
            ErrorCode::InvalidToken => "The identity token is invalid.",
            ErrorCode::TokenExpired => "The identity token has expired; issue a new one.",
            ErrorCode::InvalidAttributesSignature => {
                "Incorrect attributes signature: sign the JCS (RFC 8785) form of exactly the attributes object you send."
            }
            ErrorCode::InvalidSession => {
                "The session token is invalid; call identify to get a new one."
            }
            ErrorCode::SessionExpired => "The session has expired; call identify again.",
            ErrorCode::InvalidAdminToken => "The admin token is not valid.",
            ErrorCode::OriginNotAllowed => "This origin is not allowed for the environment.",
            ErrorCode::UnsignedLimitReached => {
                "This environment has reached its limit of unverified users: sign user ids on your backend and send `signature` with identify."
            }
            ErrorCode::SecretKeyExposed => {
                "An identity secret was sent from the browser. It has been revoked; create a new secret in the admin API and keep it on your backend only."
            }
            ErrorCode::AnonymousNotAllowed => {
                "This environment does not allow anonymous sessions: identify the user with a signature."
            }
            ErrorCode::Forbidden => "This admin token may not do that.",
            ErrorCode::NotFound => "Not found.",
            ErrorCode::Conflict => "The request conflicts with the current state.",
            ErrorCode::PayloadTooLarge => "The request body is larger than 64 KiB.",
            ErrorCode::UnsupportedMediaType => {
                "Send the request body as JSON with `Content-Type: application/json`."
            }
            ErrorCode::RateLimited => "Too many failed verifications; retry later.",
            ErrorCode::Internal => "An internal error occurred; it has been logged.",
            ErrorCode::Unavailable => "The database is unavailable; retry shortly.",
        }
    }
}

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
