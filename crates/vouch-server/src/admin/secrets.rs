use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::json;

use crate::api::{ErrorOut, ListOut, SecretOut};
use crate::clock::now;
use crate::crypto::secret_context;
use crate::error::{ApiError, ApiResult};
use crate::extract::{AdminAuth, JsonBody};
use crate::model::NewAudit;
use crate::model::SecretRecord;
use crate::state::AppState;

/// Create (`{}`), import (`{"value"}`) or rotate (`{"rotate": true, "grace_seconds"}`).
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SecretIn {
    /// A secret carried over from another vendor (16–256 bytes), used as-is.
    pub value: Option<String>,
    /// Give every other active secret an expiry of now + `grace_seconds`.
    #[serde(default)]
    pub rotate: bool,
    pub grace_seconds: Option<i64>,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct RevealQuery {
    /// `true` to include the value (audited).
    pub reveal: Option<bool>,
}

/// With `rotate`, when every other active secret stops verifying.
fn rotation_expiry(input: &SecretIn, now: crate::model::Ts) -> Result<Option<i64>, ApiError> {
    match (input.rotate, input.grace_seconds) {
        (true, Some(g)) if !(0..=30 * 24 * 3600).contains(&g) => Err(ApiError::invalid_request(
            "`grace_seconds` must be between 0 and 2592000 (30 days).",
        )),
        (true, g) => Ok(Some(now + g.unwrap_or(0))),
        (false, Some(_)) => Err(ApiError::invalid_request(
            "`grace_seconds` only applies with `\"rotate\": true`.",
        )),
        (false, None) => Ok(None),
    }
}

/// An imported value (checked, and unknown to the deployment) or a fresh one.
fn new_value(
    state: &AppState,
    imported: Option<String>,
    mode: vouch_core::Mode,
) -> Result<vouch_core::Secret, ApiError> {
    let Some(v) = imported else {
        return Ok(vouch_core::keys::generate_identity_secret(mode));
    };
    vouch_core::keys::validate_imported_secret(&v)
        .map_err(|e| ApiError::invalid_request(e.to_string()))?;
    let candidate = vouch_core::keys::sha256(v.as_bytes());
    if state.snapshot().secret_index.contains_key(&candidate) {
        return Err(ApiError::conflict(
            "This secret is already stored in this deployment; each secret belongs to one environment.",
        ));
    }
    Ok(vouch_core::Secret::new(v))
}

/// Lists an environment's secrets (metadata only).
#[utoipa::path(get, path = "/admin/v1/environments/{env}/secrets", tag = "admin",
    params(("env" = String, Path, description = "environment id")),
    responses((status = 200, body = ListOut<SecretOut>), (status = "4XX", body = ErrorOut)),
    security(("admin_token" = [])))]
pub async fn list_secrets(
    State(state): State<AppState>,
    _: AdminAuth,
    Path(env): Path<String>,
) -> ApiResult<Json<ListOut<SecretOut>>> {
    let ctx = super::env_ctx(&state, &env)?;
    let now = now();
    Ok(Json(ListOut {
        data: ctx
            .secrets
            .iter()
            .rev()
            .map(|s| SecretOut::new(s, now, None))
            .collect(),
        next_cursor: None,
    }))
}

/// Creates, imports or rotates in a secret; the answer carries its value once.
#[utoipa::path(post, path = "/admin/v1/environments/{env}/secrets", tag = "admin",
    params(("env" = String, Path, description = "environment id")),
    request_body = SecretIn,
    responses((status = 201, body = SecretOut), (status = "4XX", body = ErrorOut)),
    security(("admin_token" = [])))]
pub async fn create_secret(
    State(state): State<AppState>,
    auth: AdminAuth,
    Path(env): Path<String>,
    body: JsonBody,
) -> ApiResult<(StatusCode, Json<SecretOut>)> {
    let input: SecretIn = body.parse()?;
    let ctx = super::env_ctx(&state, &env)?;
    let now = now();
    let expire_others_at = rotation_expiry(&input, now)?;
    let imported = input.value.is_some();
    let secret = new_value(&state, input.value, ctx.env.settings.mode)?;
    let key_id = vouch_core::keys::generate_id("key");
    let record = SecretRecord {
        id: key_id.clone(),
        env_id: env.clone(),
        ciphertext: state
            .master
            .seal(secret.as_bytes(), &secret_context(&key_id))
            .map_err(|_| ApiError::internal())?,
        imported,
        created_at: now,
        expires_at: None,
        revoked_at: None,
    };
    let audit = NewAudit {
        env_id: Some(env.clone()),
        kind: if input.rotate {
            "secret.rotated"
        } else if imported {
            "secret.imported"
        } else {
            "secret.created"
        },
        user_id: None,
        key_id: Some(key_id.clone()),
        actor: auth.actor(),
        detail: json!({
            "imported": imported,
            "rotate": input.rotate,
            "others_expire_at": expire_others_at.map(crate::api::rfc3339),
        }),
        at: now,
    };
    state
        .insert_secret(record.clone(), expire_others_at, audit)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(SecretOut::new(
            &record,
            now,
            Some(secret.expose().to_string()),
        )),
    ))
}

/// One secret; `?reveal=true` includes its value and is audited.
#[utoipa::path(get, path = "/admin/v1/environments/{env}/secrets/{key_id}", tag = "admin",
    params(("env" = String, Path, description = "environment id"), ("key_id" = String, Path, description = "secret id"), RevealQuery),
    responses((status = 200, body = SecretOut), (status = "4XX", body = ErrorOut)),
    security(("admin_token" = [])))]
pub async fn get_secret(
    State(state): State<AppState>,
    auth: AdminAuth,
    Path((env, key_id)): Path<(String, String)>,
    Query(q): Query<RevealQuery>,
) -> ApiResult<Json<SecretOut>> {
    let ctx = super::env_ctx(&state, &env)?;
    let record = ctx
        .secrets
        .iter()
        .find(|s| s.id == key_id)
        .ok_or_else(|| ApiError::not_found("secret"))?;
    let now = now();
    let value = if q.reveal == Some(true) {
        auth.require_write()?;
        let entry = ctx
            .ring
            .get(&key_id)
            .ok_or_else(|| ApiError::not_found("secret"))?;
        state
            .store
            .append_audit(NewAudit {
                env_id: Some(env.clone()),
                kind: "secret.revealed",
                user_id: None,
                key_id: Some(key_id.clone()),
                actor: auth.actor(),
                detail: json!({"message": "An admin revealed the secret's value."}),
                at: now,
            })
            .await?;
        Some(entry.secret().expose().to_string())
    } else {
        None
    };
    Ok(Json(SecretOut::new(record, now, value)))
}

/// Revokes a secret at once.
#[utoipa::path(delete, path = "/admin/v1/environments/{env}/secrets/{key_id}", tag = "admin",
    params(("env" = String, Path, description = "environment id"), ("key_id" = String, Path, description = "secret id")),
    responses((status = 200, body = SecretOut), (status = "4XX", body = ErrorOut)),
    security(("admin_token" = [])))]
pub async fn delete_secret(
    State(state): State<AppState>,
    auth: AdminAuth,
    Path((env, key_id)): Path<(String, String)>,
) -> ApiResult<Json<SecretOut>> {
    super::env_ctx(&state, &env)?;
    let now = now();
    let audit = NewAudit {
        env_id: Some(env.clone()),
        kind: "secret.revoked",
        user_id: None,
        key_id: Some(key_id.clone()),
        actor: auth.actor(),
        detail: json!({"message": "Revoked by an admin."}),
        at: now,
    };
    let record = state.revoke_secret(&env, &key_id, false, audit).await?;
    Ok(Json(SecretOut::new(&record, now, None)))
}

#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct SigningKeyOut {
    pub kid: String,
}

/// Rotates the session signing key; old public keys stay in the JWKS until their tokens expire.
#[utoipa::path(post, path = "/admin/v1/signing-keys/rotate", tag = "admin",
    responses((status = 201, body = SigningKeyOut), (status = "4XX", body = ErrorOut)),
    security(("admin_token" = [])))]
pub async fn rotate_signing_key(
    State(state): State<AppState>,
    auth: AdminAuth,
) -> ApiResult<(StatusCode, Json<SigningKeyOut>)> {
    auth.require_full()?;
    let now = now();
    let key = crate::session::new_signing_key(&state.master, now).map_err(|e| {
        tracing::error!(error = %e, "could not create a signing key");
        ApiError::internal()
    })?;
    let kid = key.kid.clone();
    let audit = NewAudit {
        env_id: None,
        kind: "signing_key.rotated",
        user_id: None,
        key_id: Some(kid.clone()),
        actor: auth.actor(),
        detail: json!({}),
        at: now,
    };
    state.rotate_signing_key(key, audit).await?;
    Ok((StatusCode::CREATED, Json(SigningKeyOut { kid })))
}
