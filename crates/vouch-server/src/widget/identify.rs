use axum::Json;
use axum::extract::State;
use serde_json::{Map, Value};
use vouch_core::VerifiedBy;

use crate::api::{ErrorOut, IdentifyIn, IdentifyOut, WidgetUserOut};
use crate::clock::now;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ClientAddr, JsonBody, WidgetAuth};
use crate::identity;
use crate::model::IdentifyCommand;

/// Identifies a user, with or without a proof of identity.
#[utoipa::path(post, path = "/v1/identify", tag = "widget",
    request_body = IdentifyIn,
    responses((status = 200, body = IdentifyOut), (status = "4XX", body = ErrorOut)),
    security(("publishable_key" = [])))]
#[tracing::instrument(skip_all, fields(env_id = %auth.ctx.env.id))]
pub async fn identify(
    State(state): State<crate::state::AppState>,
    client: ClientAddr,
    auth: WidgetAuth,
    body: JsonBody,
) -> ApiResult<Json<IdentifyOut>> {
    let input: IdentifyIn = body.parse()?;
    let attributes = checked(&input)?;
    let now = now();
    let proved = identity::prove_user(&state, auth.ctx, &client, &input, attributes, now).await?;
    let (ctx, proof) = (proved.ctx, proved.proof);
    let cmd = IdentifyCommand {
        env_id: ctx.env.id.clone(),
        user_id: input.user_id.clone(),
        proof: proof.clone(),
        attributes: proved.unproven,
        verified_attributes: proved.verified_attributes,
        enforcement: ctx.env.settings.enforcement,
        unsigned_limit: ctx.env.settings.unsigned_session_limit,
        jti: proved.jti,
        now,
    };
    let outcome = match state.store.identify(cmd).await? {
        Ok(o) => o,
        Err(r) => return Err(identity::rejected(&state, &ctx, &input.user_id, None, r, now).await),
    };
    let method = proof.as_ref().map_or("none", |p| match p.by {
        VerifiedBy::Signature => "signature",
        VerifiedBy::Token => "token",
    });
    let result = if proof.is_some() {
        "verified"
    } else {
        "unverified"
    };
    crate::metrics::METRICS.verification(result, method);
    let user = outcome.user;
    let visitor_id = vouch_core::keys::generate_id("vis");
    let subject = super::Subject::User {
        proof: proof.as_ref().map(|p| (p.by, p.key_id.as_str())),
    };
    let (session_token, expires_at) =
        super::issue_session(&state, &ctx, &user.id, &visitor_id, subject)?;
    Ok(Json(IdentifyOut {
        session_token,
        expires_at,
        user: WidgetUserOut {
            id: user.id,
            verified: user.verified,
            verified_by: user.verified_by,
            attributes: user.attributes,
            verified_attributes: user.verified_attributes,
        },
        ignored_attributes: outcome.ignored_attributes,
    }))
}

/// Validates the body before any proof is checked; the attributes it sends.
fn checked(input: &IdentifyIn) -> Result<Map<String, Value>, ApiError> {
    super::check_id("user_id", &input.user_id)?;
    if input.signature.is_some() && input.token.is_some() {
        return Err(ApiError::invalid_request(
            "Send one proof: either `signature` or `token`, not both.",
        ));
    }
    if input.attributes_signature.is_none() {
        return match &input.attributes {
            None => Ok(Map::new()),
            Some(raw) => serde_json::from_str(raw.get())
                .map_err(|_| ApiError::invalid_request("`attributes` must be a JSON object.")),
        };
    }
    // An attributes signature proves the attributes only, never whose they
    // are: without a proof of the user id in the same call, one user's signed
    // attributes could be replayed onto another user as verified and locked.
    if input.signature.is_none() && input.token.is_none() {
        return Err(ApiError::invalid_request(
            "`attributes_signature` needs a `signature` or `token` for the user id in the same call: it proves the attributes, not whose they are.",
        ));
    }
    let Some(raw) = &input.attributes else {
        return Err(ApiError::invalid_request(
            "`attributes_signature` was sent without `attributes`: send the attributes object it signs.",
        ));
    };
    vouch_core::jcs::parse_attributes(raw.get())
        .map_err(|e| ApiError::invalid_request(e.to_string()))
}
