use axum::Json;
use axum::extract::State;

use crate::api::{ErrorOut, GroupCompanyOut, GroupIn, GroupOut};
use crate::clock::now;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ClientAddr, JsonBody, SessionAuth};
use crate::identity::{self, Failure, ProofKind};
use crate::model::GroupCommand;
use crate::state::AppState;

/// Associates the session's user with a company.
#[utoipa::path(post, path = "/v1/group", tag = "widget",
    request_body = GroupIn,
    responses((status = 200, body = GroupOut), (status = "4XX", body = ErrorOut)),
    security(("session" = [])))]
#[tracing::instrument(skip_all, fields(env_id = %auth.ctx.env.id))]
pub async fn group(
    State(state): State<AppState>,
    client: ClientAddr,
    auth: SessionAuth,
    body: JsonBody,
) -> ApiResult<Json<GroupOut>> {
    let input: GroupIn = body.parse()?;
    super::check_id("company_id", &input.company_id)?;
    if auth.claims.anonymous {
        return Err(ApiError::invalid_request(
            "group needs an identified user: call identify first, then group with its session token.",
        ));
    }
    super::ensure_unverified_session_allowed(&state, &auth).await?;
    let now = now();
    let user_id = auth.claims.sub.as_str();
    let company_id = input.company_id.as_str();
    let mut ctx = auth.ctx.clone();
    let mut proof = None;
    if let Some(sig) = &input.signature {
        let (fresh, r) = identity::verify(&state, ctx, |ring| {
            ring.verify_signature(company_id.as_bytes(), sig, now)
                .map(str::to_string)
        })
        .await;
        ctx = fresh;
        match r {
            Ok(key_id) => proof = Some(key_id),
            Err(err) => {
                let f = Failure {
                    err,
                    kind: ProofKind::CompanySignature,
                    user_id,
                    company_id: Some(company_id),
                    signature: Some(sig),
                    attributes: None,
                };
                return Err(identity::refuse(&state, &ctx, &client, f, now).await);
            }
        }
    }
    let cmd = GroupCommand {
        env_id: ctx.env.id.clone(),
        user_id: user_id.to_string(),
        company_id: company_id.to_string(),
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
        Err(r) => Err(identity::rejected(&state, &ctx, user_id, Some(company_id), r, now).await),
    }
}
