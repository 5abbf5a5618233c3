//! Admin tokens: create (the value shown once, its SHA-256 stored), list,
//! delete. Managing tokens needs a full admin token (role `admin`, every
//! environment).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::api::{ErrorOut, ListOut, rfc3339};
use crate::clock::now;
use crate::error::{ApiError, ApiResult};
use crate::extract::{AdminAuth, JsonBody};
use crate::model::{AdminRole, AdminTokenRecord, NewAudit};
use crate::state::AppState;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AdminTokenIn {
    /// What the token is for, e.g. "CI deploys" (1–100 characters).
    pub name: String,
    pub role: AdminRole,
    /// Limit the token to these environments; omit for every environment.
    pub environment_ids: Option<Vec<String>>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AdminTokenOut {
    pub id: String,
    pub name: String,
    pub role: AdminRole,
    pub environment_ids: Option<Vec<String>>,
    pub created_at: String,
    /// The value, only in the answer that creates it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

impl AdminTokenOut {
    fn new(t: &AdminTokenRecord, token: Option<String>) -> Self {
        Self {
            id: t.id.clone(),
            name: t.name.clone(),
            role: t.role,
            environment_ids: t.environment_ids.clone(),
            created_at: rfc3339(t.created_at),
            token,
        }
    }
}

/// Lists admin tokens (never their values).
#[utoipa::path(get, path = "/admin/v1/admin-tokens", tag = "admin",
    responses((status = 200, body = ListOut<AdminTokenOut>), (status = "4XX", body = ErrorOut)),
    security(("admin_token" = [])))]
pub async fn list_tokens(
    State(state): State<AppState>,
    auth: AdminAuth,
) -> ApiResult<Json<ListOut<AdminTokenOut>>> {
    auth.require_full()?;
    let tokens = state.store.list_admin_tokens().await?;
    Ok(Json(ListOut {
        data: tokens.iter().map(|t| AdminTokenOut::new(t, None)).collect(),
        next_cursor: None,
    }))
}

/// Creates an admin token; the answer carries its value once.
#[utoipa::path(post, path = "/admin/v1/admin-tokens", tag = "admin",
    request_body = AdminTokenIn,
    responses((status = 201, body = AdminTokenOut), (status = "4XX", body = ErrorOut)),
    security(("admin_token" = [])))]
pub async fn create_token(
    State(state): State<AppState>,
    auth: AdminAuth,
    body: JsonBody,
) -> ApiResult<(StatusCode, Json<AdminTokenOut>)> {
    auth.require_full()?;
    let input: AdminTokenIn = body.parse()?;
    let name = input.name.trim();
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(ApiError::invalid_request(
            "`name` must be 1–100 characters.",
        ));
    }
    if let Some(ids) = &input.environment_ids {
        if ids.is_empty() {
            return Err(ApiError::invalid_request(
                "`environment_ids` must not be empty; omit it for every environment.",
            ));
        }
        let snap = state.snapshot();
        if let Some(unknown) = ids.iter().find(|id| !snap.by_id.contains_key(*id)) {
            return Err(ApiError::invalid_request(format!(
                "`environment_ids` names {unknown:?}, which is not an environment."
            )));
        }
    }
    let value = vouch_core::keys::generate_admin_token();
    let record = AdminTokenRecord {
        id: vouch_core::keys::generate_id("tok"),
        name: name.to_string(),
        role: input.role,
        environment_ids: input.environment_ids,
        hash: vouch_core::keys::sha256(value.as_bytes()),
        created_at: now(),
    };
    state.store.add_admin_token(record.clone()).await?;
    let audit = NewAudit {
        env_id: None,
        kind: "admin_token.created",
        user_id: None,
        key_id: Some(record.id.clone()),
        actor: auth.actor(),
        detail: json!({"name": record.name, "role": record.role, "environment_ids": record.environment_ids}),
        at: record.created_at,
    };
    state.store.append_audit(audit).await?;
    Ok((
        StatusCode::CREATED,
        Json(AdminTokenOut::new(
            &record,
            Some(value.expose().to_string()),
        )),
    ))
}

/// Deletes an admin token: refused at once on every node. The last token
/// with full access cannot be deleted (409).
#[utoipa::path(delete, path = "/admin/v1/admin-tokens/{id}", tag = "admin",
    params(("id" = String, Path, description = "admin token id")),
    responses((status = 204), (status = "4XX", body = ErrorOut)),
    security(("admin_token" = [])))]
pub async fn delete_token(
    State(state): State<AppState>,
    auth: AdminAuth,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    auth.require_full()?;
    let audit = NewAudit {
        env_id: None,
        kind: "admin_token.deleted",
        user_id: None,
        key_id: Some(id.clone()),
        actor: auth.actor(),
        detail: json!({"message": "Deleted; the token is refused from now on."}),
        at: now(),
    };
    state.store.delete_admin_token(&id, audit).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The token making this call: its id, name, role and scope (never its value),
/// so a client can tell what it may do before trying.
#[utoipa::path(get, path = "/admin/v1/whoami", tag = "admin",
    responses((status = 200, body = AdminTokenOut), (status = "4XX", body = ErrorOut)),
    security(("admin_token" = [])))]
pub async fn whoami(auth: AdminAuth) -> Json<AdminTokenOut> {
    Json(AdminTokenOut::new(&auth.token, None))
}
