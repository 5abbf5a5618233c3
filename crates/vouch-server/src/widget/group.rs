use axum::Json;
use axum::extract::State;
use serde_json::json;

use crate::api::{ErrorOut, GroupCompanyOut, GroupIn, GroupOut};
use crate::error::{ApiError, ApiResult};
use crate::exposure;
use crate::extract::{ClientAddr, JsonBody, SessionAuth};
use crate::model::{GroupCommand, IdentifyRejection};
use crate::state::{AppState, now};
use crate::store::NewAudit;

/// Associates the session's user with a company.
#[utoipa::path(post, path = "/v1/group", tag = "widget",
    request_body = GroupIn,
    responses((status = 200, body = GroupOut), (status = "4XX", body = ErrorOut)),
    security(("session" = [])))]
#[tracing::instrument(skip_all, fields(env_id = %auth.ctx.env.id))]
pub async fn group(
    State(state): State<AppState>,
    ClientAddr(ip): ClientAddr,
    auth: SessionAuth,
    body: JsonBody,
) -> ApiResult<Json<GroupOut>> {
    exposure::scan_body(&state, &body.raw, &body.value).await?;
    let input: GroupIn = body.parse()?;
    super::check_id_pub("company_id", &input.company_id)?;
    if auth.claims.anonymous {
        return Err(ApiError::invalid_request(
            "group needs an identified user: call identify first, then group with its session token.",
        ));
    }
    super::ensure_unverified_session_allowed(&state, &auth).await?;
    let ctx = &auth.ctx;
    let now = now();
    let company_key = super::rate_key("c", &ctx.env.id, &input.company_id);
    let addr_key = super::rate_key("a", &ctx.env.id, &ip.to_string());
    let mut proof = None;
    if let Some(sig) = &input.signature {
        let settings = &ctx.env.settings;
        super::check_rate_limits(
            &state,
            &[
                (&company_key, settings.rate_limit_per_user),
                (&addr_key, settings.rate_limit_per_address),
            ],
            now,
        )
        .await?;
        match ctx
            .ring
            .verify_signature(input.company_id.as_bytes(), sig, now)
        {
            Ok(key_id) => proof = Some(key_id.to_string()),
            Err(e) => {
                let _ = state.store.rate_fail(&company_key, now).await;
                let _ = state.store.rate_fail(&addr_key, now).await;
                let err = ApiError::from_proof(&e, false);
                let audit = NewAudit {
                    env_id: Some(ctx.env.id.clone()),
                    kind: "identity.rejected",
                    user_id: Some(auth.claims.sub.clone()),
                    key_id: None,
                    detail: json!({"code": err.code, "message": err.message, "company_id": input.company_id, "proof": "company_signature"}),
                    at: now,
                };
                if let Err(e) = state.store.append_audit(audit).await {
                    tracing::error!(error = %e, "could not audit a rejected group call");
                }
                return Err(err);
            }
        }
    }
    let cmd = GroupCommand {
        env_id: ctx.env.id.clone(),
        user_id: auth.claims.sub.clone(),
        company_id: input.company_id.clone(),
        proof,
        attributes: input.attributes.unwrap_or_default(),
        enforcement: ctx.env.settings.enforcement,
        now,
    };
    match state.store.group(cmd).await? {
        Ok(c) => Ok(Json(GroupOut {
            company: GroupCompanyOut {
                id: c.id,
                verified: c.verified,
                attributes: c.attributes,
            },
        })),
        Err(IdentifyRejection::SignatureRequired(msg)) => {
            Err(ApiError::unauthorized("signature_required", msg))
        }
        Err(_) => Err(ApiError::unauthorized(
            "signature_required",
            "Send the company `signature` with group.",
        )),
    }
}
