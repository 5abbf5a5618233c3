use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Deserializer};
use serde_json::json;
use vouch_core::Mode;

use crate::api::{EnvironmentCreatedOut, EnvironmentOut, ErrorOut, ListOut, SecretOut};
use crate::clock::now;
use crate::crypto::secret_context;
use crate::error::{ApiError, ApiResult};
use crate::extract::{AdminAuth, JsonBody};
use crate::model::NewAudit;
use crate::model::{Enforcement, EnvSettings, Environment, MAX_SESSION_TTL, SecretRecord};
use crate::state::AppState;

fn double_option<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// Settings accepted by create and PATCH; absent fields are left unchanged.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EnvironmentIn {
    pub name: Option<String>,
    #[schema(value_type = Option<crate::api::names::ModeName>)]
    pub mode: Option<Mode>,
    pub enforcement: Option<Enforcement>,
    pub allow_anonymous: Option<bool>,
    pub allowed_origins: Option<Vec<String>>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<u64>)]
    pub unsigned_session_limit: Option<Option<u64>>,
    #[schema(minimum = 1, maximum = 2_592_000)]
    pub session_ttl_seconds: Option<i64>,
    #[schema(minimum = 1)]
    pub rate_limit_per_user: Option<u32>,
    #[schema(minimum = 1)]
    pub rate_limit_per_address: Option<u32>,
}

fn valid_origin(o: &str) -> bool {
    if o == "*" {
        return true;
    }
    let Some((scheme, rest)) = o.split_once("://") else {
        return false;
    };
    (scheme == "http" || scheme == "https")
        && !rest.is_empty()
        && !rest.contains('/')
        && !rest.contains(char::is_whitespace)
}

impl EnvironmentIn {
    /// Validates the settings and writes them into `s`.
    pub fn apply(self, s: &mut EnvSettings, creating: bool) -> Result<(), ApiError> {
        if let Some(name) = self.name {
            let trimmed = name.trim();
            if trimmed.is_empty()
                || trimmed.chars().count() > 100
                || trimmed.chars().any(char::is_control)
            {
                return Err(ApiError::invalid_request(
                    "`name` must be 1–100 characters.",
                ));
            }
            s.name = trimmed.to_string();
        }
        if let Some(mode) = self.mode {
            if !creating && mode != s.mode {
                return Err(ApiError::invalid_request(
                    "`mode` is fixed when an environment is created (its keys carry it); create a new environment instead.",
                ));
            }
            s.mode = mode;
        }
        if let Some(e) = self.enforcement {
            s.enforcement = e;
        }
        if let Some(a) = self.allow_anonymous {
            s.allow_anonymous = a;
        }
        if let Some(origins) = self.allowed_origins {
            if origins.len() > 100 {
                return Err(ApiError::invalid_request("At most 100 `allowed_origins`."));
            }
            for o in &origins {
                if !valid_origin(o) {
                    return Err(ApiError::invalid_request(format!(
                        "`allowed_origins` entry {o:?} is not an origin: use scheme://host[:port] with no path, e.g. https://app.example.com."
                    )));
                }
            }
            s.allowed_origins = origins.iter().map(|o| o.to_ascii_lowercase()).collect();
        }
        if let Some(limit) = self.unsigned_session_limit {
            s.unsigned_session_limit = limit;
        }
        if let Some(ttl) = self.session_ttl_seconds {
            if !(1..=MAX_SESSION_TTL).contains(&ttl) {
                return Err(ApiError::invalid_request(format!(
                    "`session_ttl_seconds` must be between 1 and {MAX_SESSION_TTL}."
                )));
            }
            s.session_ttl_seconds = ttl;
        }
        if let Some(n) = self.rate_limit_per_user {
            if n == 0 {
                return Err(ApiError::invalid_request(
                    "`rate_limit_per_user` must be at least 1.",
                ));
            }
            s.rate_limit_per_user = n;
        }
        if let Some(n) = self.rate_limit_per_address {
            if n == 0 {
                return Err(ApiError::invalid_request(
                    "`rate_limit_per_address` must be at least 1.",
                ));
            }
            s.rate_limit_per_address = n;
        }
        Ok(())
    }
}

/// Lists environments.
#[utoipa::path(get, path = "/admin/v1/environments", tag = "admin",
    responses((status = 200, body = ListOut<EnvironmentOut>), (status = "4XX", body = ErrorOut)),
    security(("admin_token" = [])))]
pub async fn list_environments(
    State(state): State<AppState>,
    auth: AdminAuth,
) -> ApiResult<Json<ListOut<EnvironmentOut>>> {
    let envs = state.store.list_environments().await?;
    Ok(Json(ListOut {
        data: envs
            .iter()
            .filter(|e| auth.sees(&e.id))
            .map(EnvironmentOut::from)
            .collect(),
        next_cursor: None,
    }))
}

/// Creates an environment and its first identity secret.
#[utoipa::path(post, path = "/admin/v1/environments", tag = "admin",
    request_body = EnvironmentIn,
    responses((status = 201, body = EnvironmentCreatedOut), (status = "4XX", body = ErrorOut)),
    security(("admin_token" = [])))]
pub async fn create_environment(
    State(state): State<AppState>,
    auth: AdminAuth,
    body: JsonBody,
) -> ApiResult<(StatusCode, Json<EnvironmentCreatedOut>)> {
    auth.require_full()?;
    let input: EnvironmentIn = body.parse()?;
    if input.name.is_none() {
        return Err(ApiError::invalid_request("`name` is required."));
    }
    let mut settings = EnvSettings::new(String::new(), Mode::Test);
    input.apply(&mut settings, true)?;
    let Some(project_id) = state.store.default_project().await? else {
        return Err(ApiError::internal());
    };
    let now = now();
    let env = Environment {
        id: vouch_core::keys::generate_id("env"),
        project_id,
        publishable_key: vouch_core::keys::generate_publishable_key(settings.mode),
        settings,
        unsigned_count: 0,
        sessions_revoked_at: None,
        created_at: now,
        updated_at: now,
    };
    let secret = vouch_core::keys::generate_identity_secret(env.settings.mode);
    let key_id = vouch_core::keys::generate_id("key");
    let record = SecretRecord {
        id: key_id.clone(),
        env_id: env.id.clone(),
        ciphertext: state
            .master
            .seal(secret.as_bytes(), &secret_context(&key_id))
            .map_err(|_| ApiError::internal())?,
        imported: false,
        created_at: now,
        expires_at: None,
        revoked_at: None,
    };
    let audit = NewAudit {
        env_id: Some(env.id.clone()),
        kind: "secret.created",
        user_id: None,
        key_id: Some(key_id.clone()),
        actor: auth.actor(),
        detail: json!({"message": "Environment created with its first identity secret."}),
        at: now,
    };
    state
        .create_environment(env.clone(), record.clone(), audit)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(EnvironmentCreatedOut {
            environment: EnvironmentOut::from(&env),
            secret: SecretOut::new(&record, now, Some(secret.expose().to_string())),
        }),
    ))
}

/// One environment.
#[utoipa::path(get, path = "/admin/v1/environments/{env}", tag = "admin",
    params(("env" = String, Path, description = "environment id")),
    responses((status = 200, body = EnvironmentOut), (status = "4XX", body = ErrorOut)),
    security(("admin_token" = [])))]
pub async fn get_environment(
    State(state): State<AppState>,
    _: AdminAuth,
    Path(env): Path<String>,
) -> ApiResult<Json<EnvironmentOut>> {
    let env = state
        .store
        .get_environment(&env)
        .await?
        .ok_or_else(|| ApiError::not_found("environment"))?;
    Ok(Json(EnvironmentOut::from(&env)))
}

/// Changes settings.
#[utoipa::path(patch, path = "/admin/v1/environments/{env}", tag = "admin",
    params(("env" = String, Path, description = "environment id")),
    request_body = EnvironmentIn,
    responses((status = 200, body = EnvironmentOut), (status = "4XX", body = ErrorOut)),
    security(("admin_token" = [])))]
pub async fn update_environment(
    State(state): State<AppState>,
    auth: AdminAuth,
    Path(env_id): Path<String>,
    body: JsonBody,
) -> ApiResult<Json<EnvironmentOut>> {
    let input: EnvironmentIn = body.parse()?;
    let mut env = state
        .store
        .get_environment(&env_id)
        .await?
        .ok_or_else(|| ApiError::not_found("environment"))?;
    input.apply(&mut env.settings, false)?;
    let now = now();
    let audit = NewAudit {
        env_id: Some(env_id.clone()),
        kind: "environment.updated",
        user_id: None,
        key_id: None,
        actor: auth.actor(),
        detail: json!({"enforcement": env.settings.enforcement, "allow_anonymous": env.settings.allow_anonymous,
            "allowed_origins": env.settings.allowed_origins, "unsigned_session_limit": env.settings.unsigned_session_limit}),
        at: now,
    };
    state
        .update_environment(&env_id, env.settings.clone(), audit)
        .await?;
    env.updated_at = now;
    Ok(Json(EnvironmentOut::from(&env)))
}

/// Deletes an environment with its keys, users and events.
#[utoipa::path(delete, path = "/admin/v1/environments/{env}", tag = "admin",
    params(("env" = String, Path, description = "environment id")),
    responses((status = 204), (status = "4XX", body = ErrorOut)),
    security(("admin_token" = [])))]
pub async fn delete_environment(
    State(state): State<AppState>,
    auth: AdminAuth,
    Path(env_id): Path<String>,
) -> ApiResult<StatusCode> {
    let audit = NewAudit {
        env_id: None,
        kind: "environment.deleted",
        user_id: None,
        key_id: None,
        actor: auth.actor(),
        detail: json!({"environment": env_id}),
        at: now(),
    };
    state.delete_environment(&env_id, audit).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct SessionsRevokedOut {
    /// Sessions issued at or before this instant are refused.
    pub revoked_before: String,
}

/// Refuses every session of the environment issued before this call
/// (`session_expired`); widgets identify again. Audited.
#[utoipa::path(post, path = "/admin/v1/environments/{env}/sessions/revoke", tag = "admin",
    params(("env" = String, Path, description = "environment id")),
    responses((status = 200, body = SessionsRevokedOut), (status = "4XX", body = ErrorOut)),
    security(("admin_token" = [])))]
pub async fn revoke_sessions(
    State(state): State<AppState>,
    auth: AdminAuth,
    Path(env_id): Path<String>,
) -> ApiResult<Json<SessionsRevokedOut>> {
    super::env_ctx(&state, &env_id)?;
    let at = now();
    let audit = NewAudit {
        env_id: Some(env_id.clone()),
        kind: "sessions.revoked",
        user_id: None,
        key_id: None,
        actor: auth.actor(),
        detail: json!({"message": "Every session issued until now was revoked by an admin."}),
        at,
    };
    state.revoke_sessions(&env_id, audit).await?;
    super::after_second(at).await;
    Ok(Json(SessionsRevokedOut {
        revoked_before: crate::api::rfc3339(at + 1),
    }))
}
