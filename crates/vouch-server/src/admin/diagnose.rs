use axum::Json;
use axum::extract::{Path, State};
use serde::{Deserialize, Serialize};
use vouch_core::diagnosis::{DiagnosisInput, diagnose as run_diagnosis};

use crate::api::ErrorOut;
use crate::clock::now;
use crate::error::ApiResult;
use crate::extract::{AdminAuth, JsonBody};
use crate::state::AppState;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DiagnoseIn {
    pub user_id: String,
    pub signature: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DiagnoseOut {
    pub valid: bool,
    /// The key that verified it, when valid.
    pub key_id: Option<String>,
    /// Snake-case cause when invalid, e.g. `surrounding_whitespace`.
    pub cause: Option<String>,
    pub message: String,
}

/// "Check my signature": whether it verifies and, if not, the likely mistake.
#[utoipa::path(post, path = "/admin/v1/environments/{env}/diagnose", tag = "admin",
    params(("env" = String, Path, description = "environment id")),
    request_body = DiagnoseIn,
    responses((status = 200, body = DiagnoseOut), (status = "4XX", body = ErrorOut)),
    security(("admin_token" = [])))]
pub async fn diagnose(
    State(state): State<AppState>,
    _: AdminAuth,
    Path(env): Path<String>,
    body: JsonBody,
) -> ApiResult<Json<DiagnoseOut>> {
    let input: DiagnoseIn = body.parse()?;
    crate::widget::check_id("user_id", &input.user_id)?;
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
    let cause = run_diagnosis(
        &DiagnosisInput {
            message: &input.user_id,
            signature: &input.signature,
            keys: &ctx.ring,
            other_environments: &others,
            attributes: user.as_ref().map(|u| &u.attributes),
        },
        now,
    );
    Ok(Json(DiagnoseOut {
        valid: false,
        key_id: None,
        cause: Some(cause.code().to_string()),
        message: cause.message(),
    }))
}
