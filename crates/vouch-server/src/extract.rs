//! Our own extractors, so that no axum plain-text rejection reaches a client.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::{HeaderMap, Method, header, request::Parts};
use base64ct::{Base64UrlUnpadded, Encoding};
use serde::de::DeserializeOwned;
use serde_json::Value;
use subtle::ConstantTimeEq;

use crate::error::ApiError;
use crate::exposure;
use crate::session::{SessionClaims, SessionError};
use crate::state::{AppState, EnvContext};

/// Largest accepted request body.
pub const BODY_LIMIT: usize = 64 * 1024;

/// A JSON body: content type checked, size bounded, parsed once as a value.
#[derive(Debug)]
pub struct JsonBody {
    pub raw: Bytes,
    pub value: Value,
}

impl JsonBody {
    /// Converts into a typed request, with an error that names the problem.
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T, ApiError> {
        if !self.value.is_object() {
            return Err(ApiError::invalid_request(
                "The request body must be a JSON object.",
            ));
        }
        serde_json::from_slice(&self.raw).map_err(|e| {
            let msg = e.to_string();
            // serde's own message names the field and the expected type.
            let msg = msg.split(" at line ").next().unwrap_or(&msg).to_string();
            ApiError::invalid_request(format!("Invalid request body: {msg}."))
        })
    }
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|ct| {
            let ct = ct
                .split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase();
            ct == "application/json" || (ct.starts_with("application/") && ct.ends_with("+json"))
        })
        .unwrap_or(false)
}

impl FromRequest<AppState> for JsonBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        let json = is_json(req.headers());
        // A widget body is scanned for secrets before it is validated (DESIGN.md's
        // order of checks), so even a malformed or mislabelled one is caught.
        let widget = req.uri().path().starts_with("/v1/");
        if !json && !widget {
            return Err(ApiError::unsupported_media_type());
        }
        let raw = Bytes::from_request(req, state).await.map_err(|e| {
            if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::payload_too_large()
            } else {
                ApiError::invalid_request("The request body could not be read.")
            }
        })?;
        if raw.len() > BODY_LIMIT {
            return Err(ApiError::payload_too_large());
        }
        let parsed = serde_json::from_slice::<Value>(&raw);
        if widget && (!json || parsed.is_err()) {
            let lenient = parsed.as_ref().ok().cloned().unwrap_or(Value::Null);
            exposure::scan_body(state, &raw, &lenient).await?;
        }
        if !json {
            return Err(ApiError::unsupported_media_type());
        }
        let value: Value = parsed.map_err(|e| {
            ApiError::invalid_request(format!(
                "Malformed JSON: {e}. Send a JSON object with `Content-Type: application/json`."
            ))
        })?;
        Ok(Self { raw, value })
    }
}

/// The bearer value of `Authorization`.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, rest) = v.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
}

/// The client address: the socket peer.
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub IpAddr);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let ip = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip())
            .unwrap_or(IpAddr::from([127, 0, 0, 1]));
        Ok(Self(ip))
    }
}

fn origin(parts: &Parts) -> Option<String> {
    parts
        .headers
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// Whether `origin` may call an environment with this allow-list.
pub fn origin_allowed(allowed: &[String], origin: &str) -> bool {
    allowed.is_empty()
        || allowed
            .iter()
            .any(|a| a == "*" || a.trim_end_matches('/').eq_ignore_ascii_case(origin))
}

fn check_origin(ctx: &EnvContext, parts: &Parts) -> Result<(), ApiError> {
    if let Some(o) = origin(parts)
        && !origin_allowed(&ctx.env.settings.allowed_origins, &o)
    {
        return Err(ApiError::forbidden(
            "origin_not_allowed",
            format!(
                "Origin {o} is not in this environment's allowed_origins; add it in the admin API or UI."
            ),
        ));
    }
    Ok(())
}

/// A widget call authenticated by a publishable key, origin checked.
#[derive(Debug, Clone)]
pub struct WidgetAuth {
    pub ctx: Arc<EnvContext>,
}

impl FromRequestParts<AppState> for WidgetAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Some(key) = bearer(&parts.headers) else {
            return Err(ApiError::unauthorized(
                "invalid_publishable_key",
                "Send the environment's publishable key as `Authorization: Bearer pk_test_…`.",
            ));
        };
        let snap = state.snapshot();
        let hit = snap.by_pk.get(key).cloned();
        crate::metrics::Metrics::outcome(
            &crate::metrics::METRICS.cache_lookups,
            if hit.is_some() { "hit" } else { "miss" },
        );
        let Some(ctx) = hit else {
            exposure::check_value(state, key, "publishable key").await?;
            return Err(ApiError::unauthorized(
                "invalid_publishable_key",
                "Unknown publishable key: copy it from the admin UI (it starts with pk_test_ or pk_live_).",
            ));
        };
        check_origin(&ctx, parts)?;
        Ok(Self { ctx })
    }
}

/// A widget call authenticated by a session token.
#[derive(Debug, Clone)]
pub struct SessionAuth {
    pub ctx: Arc<EnvContext>,
    pub claims: SessionClaims,
}

impl FromRequestParts<AppState> for SessionAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Some(token) = bearer(&parts.headers) else {
            return Err(ApiError::unauthorized(
                "invalid_session",
                "Send the session token from identify as `Authorization: Bearer …`.",
            ));
        };
        let claims = match state.sessions().verify(token) {
            Ok(c) => c,
            Err(SessionError::Expired) => {
                return Err(ApiError::unauthorized(
                    "session_expired",
                    "The session has expired; call identify again.",
                ));
            }
            Err(SessionError::Invalid) => {
                exposure::check_value(state, token, "session token").await?;
                return Err(ApiError::unauthorized(
                    "invalid_session",
                    "The session token is invalid; call identify to get a new one.",
                ));
            }
        };
        let Some(ctx) = state.snapshot().by_id.get(&claims.aud).cloned() else {
            return Err(ApiError::unauthorized(
                "invalid_session",
                "The session's environment no longer exists.",
            ));
        };
        check_origin(&ctx, parts)?;
        Ok(Self { ctx, claims })
    }
}

/// An admin call: `Authorization: Bearer vat_…` (or the UI's cookie).
#[derive(Debug, Clone, Copy)]
pub struct AdminAuth;

pub const ADMIN_COOKIE: &str = "vouch_admin";

/// The admin UI's CSRF cookie; its value must come back in [`CSRF_HEADER`].
pub const CSRF_COOKIE: &str = "vouch_csrf";
pub const CSRF_HEADER: &str = "x-csrf-token";

/// The value of cookie `name`.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

impl FromRequestParts<AppState> for AdminAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let from_header = bearer(&parts.headers);
        let token = from_header.or_else(|| cookie(&parts.headers, ADMIN_COOKIE));
        let Some(token) = token else {
            return Err(ApiError::unauthorized(
                "invalid_admin_token",
                "Send an admin token as `Authorization: Bearer vat_…`.",
            ));
        };
        let hash = vouch_core::keys::sha256(token.as_bytes());
        if state.store.admin_token_exists(hash).await? {
            // A browser sends the cookie on its own; a header it only sends when our page's script asks.
            let safe = matches!(parts.method, Method::GET | Method::HEAD);
            if from_header.is_none() && !safe && !csrf_valid(token, &parts.headers) {
                return Err(ApiError::unauthorized(
                    "invalid_admin_token",
                    "Missing or wrong CSRF token: send the vouch_csrf cookie's value in the X-CSRF-Token header.",
                ));
            }
            Ok(Self)
        } else {
            Err(ApiError::unauthorized(
                "invalid_admin_token",
                "The admin token is not valid.",
            ))
        }
    }
}

fn csrf_mac(admin_token: &str, nonce: &str) -> String {
    let mac = vouch_core::proof::hmac_sha256(
        admin_token.as_bytes(),
        format!("vouch-csrf:{nonce}").as_bytes(),
    );
    Base64UrlUnpadded::encode_string(&mac)
}

/// A fresh CSRF token bound to `admin_token` (`nonce.mac`), so a cookie planted by
/// another site or subdomain cannot pass the double-submit check.
pub fn csrf_token(admin_token: &str) -> String {
    let nonce = vouch_core::keys::random_base62(22);
    let mac = csrf_mac(admin_token, &nonce);
    format!("{nonce}.{mac}")
}

/// Whether the request's CSRF header equals its CSRF cookie and was minted for `admin_token`.
pub fn csrf_valid(admin_token: &str, headers: &HeaderMap) -> bool {
    let sent = headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok());
    let (Some(sent), Some(stored)) = (sent, cookie(headers, CSRF_COOKIE)) else {
        return false;
    };
    bool::from(sent.as_bytes().ct_eq(stored.as_bytes())) && csrf_minted_for(admin_token, stored)
}

/// Whether `value` is a CSRF token [`csrf_token`] made for `admin_token`.
pub fn csrf_minted_for(admin_token: &str, value: &str) -> bool {
    let Some((nonce, mac)) = value.split_once('.') else {
        return false;
    };
    bool::from(
        mac.as_bytes()
            .ct_eq(csrf_mac(admin_token, nonce).as_bytes()),
    )
}
