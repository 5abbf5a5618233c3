//! The error codes of the API, each with its HTTP status and default message.
//! A module of its own, below everything else: the OpenAPI schema (`api`) and the
//! HTTP error type (`error`) both name it.

use axum::http::StatusCode;
use serde::Serialize;

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
