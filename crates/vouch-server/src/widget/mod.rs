//! The widget API (`/v1`), called by the browser SDK.

mod group;
mod identify;
mod me;
mod sessions;
mod track;

use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::ApiError;
use crate::session::SessionClaims;
use crate::state::{AppState, EnvContext, now};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(sessions::create_session))
        .routes(routes!(identify::identify))
        .routes(routes!(group::group))
        .routes(routes!(track::track))
        .routes(routes!(me::get_me))
}

/// Checks a user or company id: 1–255 bytes, taken byte for byte.
pub(crate) fn check_id_pub(field: &str, id: &str) -> Result<(), ApiError> {
    if id.is_empty() || id.len() > 255 {
        return Err(ApiError::invalid_request(format!(
            "`{field}` must be 1–255 bytes of UTF-8 (got {} bytes).",
            id.len()
        )));
    }
    // No database stores NUL in text portably, and no real id contains one.
    if id.contains('\0') {
        return Err(ApiError::invalid_request(format!(
            "`{field}` must not contain a NUL character."
        )));
    }
    Ok(())
}

/// Issues a session token for `sub` in `ctx`'s environment.
pub(crate) fn issue_session(
    state: &AppState,
    ctx: &EnvContext,
    sub: &str,
    visitor_id: &str,
    verified_by: Option<vouch_core::VerifiedBy>,
    anonymous: bool,
) -> Result<(String, String), ApiError> {
    let iat = now();
    let exp = iat + ctx.env.settings.session_ttl_seconds;
    let claims = SessionClaims {
        iss: state.issuer.clone(),
        aud: ctx.env.id.clone(),
        sub: sub.to_string(),
        verified: verified_by.is_some(),
        verified_by,
        anonymous,
        vid: visitor_id.to_string(),
        sid: vouch_core::keys::generate_id("ses"),
        iat,
        exp,
    };
    let token = state.sessions().issue(&claims).map_err(|e| {
        tracing::error!(error = %e, "session signing failed");
        ApiError::internal()
    })?;
    crate::metrics::METRICS.session_issued(exp);
    Ok((token, crate::api::rfc3339(exp)))
}

/// An unverified session must not act for a user whose identity has since
/// been proven: that user now needs a proof for everything.
pub(crate) async fn ensure_unverified_session_allowed(
    state: &AppState,
    auth: &crate::extract::SessionAuth,
) -> Result<(), ApiError> {
    let c = &auth.claims;
    if c.verified || c.anonymous {
        return Ok(());
    }
    if let Some(u) = state.store.get_user(&auth.ctx.env.id, &c.sub).await?
        && u.verified
    {
        return Err(ApiError::unauthorized(
            "signature_required",
            "This user's identity has been verified since this session was opened; identify again with a signature or token.",
        ));
    }
    Ok(())
}

/// A bounded, separator-safe key for the failed-verification counters.
pub(crate) fn rate_key(kind: &str, env_id: &str, subject: &str) -> String {
    let mut data = Vec::with_capacity(env_id.len() + subject.len() + 4);
    data.extend_from_slice(kind.as_bytes());
    data.push(0);
    data.extend_from_slice(env_id.as_bytes());
    data.push(0);
    data.extend_from_slice(subject.as_bytes());
    vouch_core::encoding::encode_mac(
        &vouch_core::keys::sha256(&data),
        vouch_core::SignatureEncoding::Hex,
    )
}

/// 429 when any of the failed-verification counters is at its limit.
pub(crate) async fn check_rate_limits(
    state: &AppState,
    limits: &[(&str, u32)],
    now: crate::model::Ts,
) -> Result<(), ApiError> {
    for (key, limit) in limits {
        if let Some(wait) = state.store.rate_blocked(key, *limit, now).await? {
            return Err(ApiError::rate_limited(wait));
        }
    }
    Ok(())
}
