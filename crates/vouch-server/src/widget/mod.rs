//! The widget API (`/v1`), called by the browser SDK. CORS is a layer
//! (`http::widget_cors`); every body is scanned for secrets by its extractor
//! (`extract::JsonBody`), after the key or session and the origin are checked.

mod group;
mod identify;
mod me;
mod sessions;
mod track;

use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::clock::now;
use crate::error::{ApiError, ErrorCode};
use crate::session::SessionClaims;
use crate::state::{AppState, EnvContext};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(sessions::create_session))
        .routes(routes!(identify::identify))
        .routes(routes!(group::group))
        .routes(routes!(track::track))
        .routes(routes!(me::get_me))
}

/// Checks a user or company id: 1–255 bytes, taken byte for byte.
pub(crate) fn check_id(field: &str, id: &str) -> Result<(), ApiError> {
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

/// What a session proves about its subject.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Subject<'a> {
    Visitor,
    User {
        proof: Option<(vouch_core::VerifiedBy, &'a str)>,
    },
}

/// Issues a session token for `sub` in `ctx`'s environment.
pub(crate) fn issue_session(
    state: &AppState,
    ctx: &EnvContext,
    sub: &str,
    visitor_id: &str,
    subject: Subject<'_>,
) -> Result<(String, String), ApiError> {
    let iat = now();
    let exp = iat + ctx.env.settings.session_ttl_seconds;
    let (anonymous, proof) = match subject {
        Subject::Visitor => (true, None),
        Subject::User { proof } => (false, proof),
    };
    let claims = SessionClaims {
        iss: state.issuer.clone(),
        aud: ctx.env.id.clone(),
        sub: sub.to_string(),
        verified: proof.is_some(),
        verified_by: proof.map(|(by, _)| by),
        key_id: proof.map(|(_, k)| k.to_string()),
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
        return Err(verified_since());
    }
    Ok(())
}

pub(crate) fn verified_since() -> ApiError {
    ApiError::new(
        ErrorCode::SignatureRequired,
        "This user's identity has been verified since this session was opened; identify again with a signature or token.",
    )
}
