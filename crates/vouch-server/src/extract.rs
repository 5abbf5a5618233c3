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

use crate::clock::now;
use crate::error::{ApiError, ErrorCode};
use crate::exposure;
use crate::model::{AdminRole, AdminTokenRecord, Enforcement};
use crate::session::{SessionClaims, SessionError};
use crate::state::{AppState, EnvContext};

pub use crate::model::BODY_LIMIT;

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

    /// Reads a JSON body. On the widget API the body is first scanned for
    /// secrets — even a malformed or mislabelled one — and, since handlers take
    /// this extractor after the key or session and the origin, the scan comes
    /// after those checks and before any validation.
    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        let json = is_json(req.headers());
        let widget = req.uri().path().starts_with("/v1/");
        if !json && !widget {
            return Err(ErrorCode::UnsupportedMediaType.into());
        }
        let raw = Bytes::from_request(req, state).await.map_err(|e| {
            if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::from(ErrorCode::PayloadTooLarge)
            } else {
                ApiError::invalid_request("The request body could not be read.")
            }
        })?;
        if raw.len() > BODY_LIMIT {
            return Err(ErrorCode::PayloadTooLarge.into());
        }
        let parsed = serde_json::from_slice::<Value>(&raw);
        if widget {
            let lenient = parsed.as_ref().ok().cloned().unwrap_or(Value::Null);
            exposure::scan_body(state, &raw, &lenient).await?;
        }
        if !json {
            return Err(ErrorCode::UnsupportedMediaType.into());
        }
        let value = parsed.map_err(|e| {
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

/// The client address: the TCP peer, or behind a trusted proxy the address it
/// forwarded (see [`crate::proxy`]). IPv4-mapped IPv6 is given as IPv4.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub IpAddr);

impl ClientAddr {
    /// The address as limits count it: IPv4 as text, IPv6 as its /64
    /// (`2001:db8:1:2::/64`).
    pub fn key(&self) -> String {
        crate::proxy::address_key(self.0)
    }
}

impl ClientAddr {
    /// The client of `req`: its TCP peer, or the forwarded address behind a trusted proxy.
    pub fn of(req: &axum::extract::Request, state: &AppState) -> Self {
        Self::from_parts(req.extensions(), req.headers(), state)
    }

    fn from_parts(
        extensions: &axum::http::Extensions,
        headers: &axum::http::HeaderMap,
        state: &AppState,
    ) -> Self {
        let peer = extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip())
            .unwrap_or(IpAddr::from([127, 0, 0, 1]));
        Self(state.config.trusted_proxies.client(peer, headers))
    }
}

impl FromRequestParts<AppState> for ClientAddr {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        Ok(Self::from_parts(&parts.extensions, &parts.headers, state))
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
        return Err(ApiError::new(
            ErrorCode::OriginNotAllowed,
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
            return Err(ErrorCode::InvalidPublishableKey.into());
        };
        let found = state.env_by_pk(key).await?;
        crate::metrics::Metrics::outcome(
            &crate::metrics::METRICS.cache_lookups,
            if found.is_some() { "hit" } else { "miss" },
        );
        let Some(ctx) = found else {
            exposure::check_value(state, key, "publishable key").await?;
            return Err(ApiError::new(
                ErrorCode::InvalidPublishableKey,
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
            return Err(ApiError::new(
                ErrorCode::InvalidSession,
                "Send the session token from identify as `Authorization: Bearer …`.",
            ));
        };
        let claims = match state.sessions().verify(token) {
            Ok(c) => c,
            Err(SessionError::Expired) => return Err(ErrorCode::SessionExpired.into()),
            Err(SessionError::Invalid) => {
                exposure::check_value(state, token, "session token").await?;
                return Err(ErrorCode::InvalidSession.into());
            }
        };
        let Some(ctx) = state.env_by_id(&claims.aud).await? else {
            return Err(ApiError::new(
                ErrorCode::InvalidSession,
                "The session's environment no longer exists.",
            ));
        };
        still_valid(&ctx, &claims, now())?;
        check_origin(&ctx, parts)?;
        Ok(Self { ctx, claims })
    }
}

/// A session is checked against its environment as it is now, not as it was
/// when the session was issued: settings, the proving secret, revocations.
pub fn still_valid(ctx: &EnvContext, c: &SessionClaims, now: i64) -> Result<(), ApiError> {
    let settings = &ctx.env.settings;
    if c.anonymous {
        if !settings.allow_anonymous {
            return Err(ApiError::new(
                ErrorCode::AnonymousNotAllowed,
                "This environment no longer allows anonymous sessions: identify the user with a signature.",
            ));
        }
    } else if !c.verified && settings.enforcement == Enforcement::Enforce {
        return Err(ApiError::new(
            ErrorCode::SignatureRequired,
            "Identity verification is now enforced in this environment: identify again with a `signature` or `token`.",
        ));
    }
    if c.verified {
        let active = c
            .key_id
            .as_deref()
            .and_then(|k| ctx.ring.get(k))
            .is_some_and(|k| k.status(now) == vouch_core::KeyStatus::Active);
        if !active {
            return Err(ApiError::new(
                ErrorCode::SessionExpired,
                "The identity secret that proved this session has been revoked or has expired: identify again.",
            ));
        }
    }
    if ctx.env.sessions_revoked_at.is_some_and(|at| c.iat <= at) {
        return Err(ApiError::new(
            ErrorCode::SessionExpired,
            "Every session of this environment opened before an administrator's revocation was refused: identify again.",
        ));
    }
    if !c.anonymous && ctx.deleted_users.get(&c.sub).is_some_and(|at| c.iat <= *at) {
        return Err(ApiError::new(
            ErrorCode::SessionExpired,
            "This user was deleted: identify again.",
        ));
    }
    Ok(())
}

/// An admin call: `Authorization: Bearer vat_…` (or the UI's cookie), with
/// the token's role and scope. A viewer may only read; a token scoped to some
/// environments sees only those (any other answers 404).
#[derive(Debug, Clone)]
pub struct AdminAuth {
    pub token: AdminTokenRecord,
}

impl AdminAuth {
    /// The acting token, for audit entries.
    pub fn actor(&self) -> Option<String> {
        Some(self.token.id.clone())
    }

    /// Whether this token may see environment `env_id`.
    pub fn sees(&self, env_id: &str) -> bool {
        self.token
            .environment_ids
            .as_ref()
            .is_none_or(|ids| ids.iter().any(|i| i == env_id))
    }

    /// Refuses a viewer.
    pub fn require_write(&self) -> Result<(), ApiError> {
        if self.token.role == AdminRole::Viewer {
            return Err(ApiError::new(
                ErrorCode::Forbidden,
                "This admin token has the viewer role: it may read but not change anything.",
            ));
        }
        Ok(())
    }

    /// Refuses a token limited to some environments.
    pub fn require_every_environment(&self) -> Result<(), ApiError> {
        if self.token.environment_ids.is_some() {
            return Err(ApiError::new(
                ErrorCode::Forbidden,
                "This admin token is limited to some environments; this needs a token with access to every environment.",
            ));
        }
        Ok(())
    }

    /// Refuses anything but an admin token with access to every environment.
    pub fn require_full(&self) -> Result<(), ApiError> {
        self.require_write()?;
        if self.token.environment_ids.is_some() {
            return Err(ApiError::new(
                ErrorCode::Forbidden,
                "This admin token is limited to some environments; this needs a token with access to every environment.",
            ));
        }
        Ok(())
    }
}

/// The environment id of an `/admin/v1/environments/{env}/…` (or the admin
/// UI's `/admin/ui/environments/{env}/…`) path.
fn path_environment(path: &str) -> Option<&str> {
    path.strip_prefix("/admin/v1/environments/")
        .or_else(|| path.strip_prefix("/admin/ui/environments/"))
        .map(|rest| rest.split('/').next().unwrap_or(rest))
        .filter(|env| !env.is_empty())
}

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
            return Err(ApiError::new(
                ErrorCode::InvalidAdminToken,
                "Send an admin token as `Authorization: Bearer vat_…`.",
            ));
        };
        let hash = vouch_core::keys::sha256(token.as_bytes());
        let Some(record) = state.store.admin_token(hash).await? else {
            return Err(ErrorCode::InvalidAdminToken.into());
        };
        // A browser sends the cookie on its own; a header it only sends when our page's script asks.
        let safe = matches!(parts.method, Method::GET | Method::HEAD);
        if from_header.is_none() && !safe && !csrf_valid(token, &parts.headers) {
            return Err(ApiError::new(
                ErrorCode::InvalidAdminToken,
                "Missing or wrong CSRF token: send the vouch_csrf cookie's value in the X-CSRF-Token header.",
            ));
        }
        let auth = Self { token: record };
        if let Some(env) = path_environment(parts.uri.path())
            && !auth.sees(env)
        {
            return Err(ApiError::not_found("environment"));
        }
        // Reading, and checking a signature, is what a viewer may do.
        let reads = safe || parts.uri.path().ends_with("/diagnose");
        if !reads {
            auth.require_write()?;
        }
        Ok(auth)
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
