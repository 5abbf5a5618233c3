use axum::Json;
use axum::extract::{Path, State};
use vouch_core::diagnosis::{
    DiagnosisInput, MAX_CANDIDATE_BYTES, MAX_CANDIDATES, diagnose_with_candidates,
};

use crate::api::{DiagnoseIn, DiagnoseOut, ErrorOut};
use crate::clock::now;
use crate::error::{ApiError, ApiResult};
use crate::extract::{AdminAuth, JsonBody};
use crate::state::AppState;

/// "Check my signature": whether it verifies and, if not, the likely mistake.
///
/// Besides the usual mistakes (another environment's or a revoked secret, whitespace, the
/// wrong hash, an `openssl dgst` line pasted whole, …) it tries the user's stored
/// attributes and the `candidates` (and `email`) given, to catch a value signed instead of
/// the id.
#[utoipa::path(post, path = "/admin/v1/environments/{env}/diagnose", tag = "admin",
    params(("env" = String, Path, description = "environment id")),
    request_body = DiagnoseIn,
    responses((status = 200, body = DiagnoseOut), (status = "4XX", body = ErrorOut)),
    security(("admin_token" = [])))]
#[tracing::instrument(skip_all, fields(env_id = %env))]
pub async fn diagnose(
    State(state): State<AppState>,
    _: AdminAuth,
    Path(env): Path<String>,
    body: JsonBody,
) -> ApiResult<Json<DiagnoseOut>> {
    let input: DiagnoseIn = body.parse()?;
    crate::widget::check_id("user_id", &input.user_id)?;
    let candidates = candidates(&input)?;
    let ctx = super::env_ctx(&state, &env)?;
    let now = now();
    if let Ok(key_id) = ctx
        .ring
        .verify_signature(input.user_id.as_bytes(), &input.signature, now)
    {
        return Ok(Json(DiagnoseOut {
            valid: true,
            key_id: Some(key_id.to_string()),
            cause: None,
            message: format!("The signature is valid (secret {key_id})."),
        }));
    }
    let snap = state.snapshot();
    let others = snap.other_rings(&ctx.env.id);
    let user = state.store.get_user(&env, &input.user_id).await?;
    let cause = diagnose_with_candidates(
        &DiagnosisInput {
            message: &input.user_id,
            signature: &input.signature,
            keys: &ctx.ring,
            other_environments: &others,
            attributes: user.as_ref().map(|u| &u.attributes),
        },
        &candidates,
        now,
    );
    Ok(Json(DiagnoseOut {
        valid: false,
        key_id: None,
        cause: Some(cause.code().to_string()),
        message: cause.message(),
    }))
}

/// `email` and `candidates`, within the bounds the diagnosis keeps to.
fn candidates(input: &DiagnoseIn) -> Result<Vec<&str>, ApiError> {
    let listed = input.candidates.as_deref().unwrap_or_default();
    let named = listed
        .iter()
        .enumerate()
        .map(|(i, c)| (format!("candidates[{i}]"), c.as_str()));
    let all: Vec<(String, &str)> = input
        .email
        .iter()
        .map(|e| ("email".to_owned(), e.as_str()))
        .chain(named)
        .collect();
    if all.len() > MAX_CANDIDATES {
        return Err(ApiError::invalid_request(format!(
            "Give at most {MAX_CANDIDATES} values in `candidates` and `email` together (got {}).",
            all.len()
        )));
    }
    if let Some((field, value)) = all
        .iter()
        .find(|(_, v)| v.is_empty() || v.len() > MAX_CANDIDATE_BYTES)
    {
        return Err(ApiError::invalid_request(format!(
            "`{field}` must be 1–{MAX_CANDIDATE_BYTES} bytes of UTF-8 (got {} bytes).",
            value.len()
        )));
    }
    Ok(all.into_iter().map(|(_, v)| v).collect())
}
