use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::api::{AuditOut, ErrorOut, EventOut, ListOut, UserOut};
use crate::clock::now;
use crate::error::{ApiError, ApiResult};
use crate::extract::AdminAuth;
use crate::model::{Coverage, NewAudit, Ts};
use crate::state::AppState;
use crate::store::reads;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct UserQuery {
    /// Only verified (`true`) or unverified (`false`) users.
    pub verified: Option<bool>,
    /// Only users whose id starts with this (byte for byte).
    pub search: Option<String>,
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct AuditQuery {
    /// Only entries of this kind, e.g. `identity.rejected`.
    pub kind: Option<String>,
    /// Only entries about this user id.
    pub user_id: Option<String>,
    /// Only entries at or after this instant (RFC 3339).
    pub since: Option<String>,
    /// Only entries before this instant (RFC 3339).
    pub until: Option<String>,
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

fn instant(field: &str, value: Option<&str>) -> Result<Option<Ts>, ApiError> {
    value
        .map(|v| {
            time::OffsetDateTime::parse(v, &time::format_description::well_known::Rfc3339)
                .map(|t| t.unix_timestamp())
                .map_err(|_| {
                    ApiError::invalid_request(format!(
                        "`{field}` must be an RFC 3339 time such as 2026-12-01T09:30:00Z."
                    ))
                })
        })
        .transpose()
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct EventQuery {
    /// Only this user's events.
    pub user_id: Option<String>,
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

/// Lists users, ordered by id.
#[utoipa::path(get, path = "/admin/v1/environments/{env}/users", tag = "admin",
    params(("env" = String, Path, description = "environment id"), UserQuery),
    responses((status = 200, body = ListOut<UserOut>), (status = "4XX", body = ErrorOut)),
    security(("admin_token" = [])))]
pub async fn list_users(
    State(state): State<AppState>,
    _: AdminAuth,
    Path(env): Path<String>,
    Query(q): Query<UserQuery>,
) -> ApiResult<Json<ListOut<UserOut>>> {
    super::env_ctx(&state, &env)?;
    if let Some(prefix) = &q.search {
        crate::widget::check_id("search", prefix)?;
    }
    let page = state
        .store
        .list_users(reads::UserQuery {
            env_id: env.clone(),
            verified: q.verified,
            prefix: q.search,
            after: q.cursor,
            limit: q.limit.unwrap_or(50),
        })
        .await?;
    let mut data = Vec::with_capacity(page.data.len());
    for u in &page.data {
        let companies = state.store.user_companies(&env, &u.id).await?;
        data.push(UserOut::listed(u, &companies));
    }
    Ok(Json(ListOut {
        data,
        next_cursor: page.next_cursor,
    }))
}

/// One user with attributes, verified attributes, companies and how it was verified.
#[utoipa::path(get, path = "/admin/v1/environments/{env}/users/{user_id}", tag = "admin",
    params(("env" = String, Path, description = "environment id"), ("user_id" = String, Path, description = "user id")),
    responses((status = 200, body = UserOut), (status = "4XX", body = ErrorOut)),
    security(("admin_token" = [])))]
pub async fn get_user(
    State(state): State<AppState>,
    _: AdminAuth,
    Path((env, user_id)): Path<(String, String)>,
) -> ApiResult<Json<UserOut>> {
    super::env_ctx(&state, &env)?;
    let user = state
        .store
        .get_user(&env, &user_id)
        .await?
        .ok_or_else(|| ApiError::not_found("user"))?;
    let companies = state.store.user_companies(&env, &user_id).await?;
    Ok(Json(UserOut::new(&user, &companies)))
}

/// Erases a user: its record, attributes, memberships and events. Its
/// sessions are refused from the next call on; `user.deleted` is sent.
#[utoipa::path(delete, path = "/admin/v1/environments/{env}/users/{user_id}", tag = "admin",
    params(("env" = String, Path, description = "environment id"), ("user_id" = String, Path, description = "user id")),
    responses((status = 204), (status = "4XX", body = ErrorOut)),
    security(("admin_token" = [])))]
pub async fn delete_user(
    State(state): State<AppState>,
    auth: AdminAuth,
    Path((env, user_id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    super::env_ctx(&state, &env)?;
    let at = now();
    let audit = NewAudit {
        env_id: Some(env.clone()),
        kind: "user.deleted",
        user_id: Some(user_id.clone()),
        key_id: None,
        actor: auth.actor(),
        detail: json!({"message": "The user, its attributes, memberships and events were erased."}),
        at,
    };
    state.delete_user(&env, &user_id, audit).await?;
    super::after_second(at).await;
    Ok(StatusCode::NO_CONTENT)
}

/// Tracked events, newest first.
#[utoipa::path(get, path = "/admin/v1/environments/{env}/events", tag = "admin",
    params(("env" = String, Path, description = "environment id"), EventQuery),
    responses((status = 200, body = ListOut<EventOut>), (status = "4XX", body = ErrorOut)),
    security(("admin_token" = [])))]
pub async fn list_events(
    State(state): State<AppState>,
    _: AdminAuth,
    Path(env): Path<String>,
    Query(q): Query<EventQuery>,
) -> ApiResult<Json<ListOut<EventOut>>> {
    super::env_ctx(&state, &env)?;
    let page = state
        .store
        .list_events(reads::EventQuery {
            env_id: env,
            user_id: q.user_id,
            before: super::seq_cursor(q.cursor.as_deref())?,
            limit: q.limit.unwrap_or(50),
        })
        .await?;
    Ok(Json(ListOut {
        data: page.data.iter().map(EventOut::from).collect(),
        next_cursor: page.next_cursor,
    }))
}

/// The audit log, newest first: failed verifications with their diagnosis, key
/// changes, reveals, exposures; filtered by kind, user id and time.
#[utoipa::path(get, path = "/admin/v1/environments/{env}/audit", tag = "admin",
    params(("env" = String, Path, description = "environment id"), AuditQuery),
    responses((status = 200, body = ListOut<AuditOut>), (status = "4XX", body = ErrorOut)),
    security(("admin_token" = [])))]
pub async fn list_audit(
    State(state): State<AppState>,
    _: AdminAuth,
    Path(env): Path<String>,
    Query(q): Query<AuditQuery>,
) -> ApiResult<Json<ListOut<AuditOut>>> {
    super::env_ctx(&state, &env)?;
    audit_page(&state, Some(env), q).await
}

/// The deployment's own audit log, newest first: admin tokens created and
/// deleted, signing-key rotations, deleted environments (entries of no
/// environment). Needs a token with access to every environment.
#[utoipa::path(get, path = "/admin/v1/audit", tag = "admin",
    params(AuditQuery),
    responses((status = 200, body = ListOut<AuditOut>), (status = "4XX", body = ErrorOut)),
    security(("admin_token" = [])))]
pub async fn list_deployment_audit(
    State(state): State<AppState>,
    auth: AdminAuth,
    Query(q): Query<AuditQuery>,
) -> ApiResult<Json<ListOut<AuditOut>>> {
    auth.require_every_environment()?;
    audit_page(&state, None, q).await
}

async fn audit_page(
    state: &AppState,
    env_id: Option<String>,
    q: AuditQuery,
) -> ApiResult<Json<ListOut<AuditOut>>> {
    let page = state
        .store
        .list_audit(reads::AuditQuery {
            env_id,
            since: instant("since", q.since.as_deref())?,
            until: instant("until", q.until.as_deref())?,
            before: super::seq_cursor(q.cursor.as_deref())?,
            kind: q.kind,
            user_id: q.user_id,
            limit: q.limit.unwrap_or(50),
        })
        .await?;
    Ok(Json(ListOut {
        data: page.data.iter().map(AuditOut::from).collect(),
        next_cursor: page.next_cursor,
    }))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct WindowOut {
    #[serde(flatten)]
    pub counts: Coverage,
    /// Share of identifies that enforcement would have rejected (unverified ÷ accepted), 0–1.
    pub would_reject_ratio: f64,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct StatsOut {
    pub last_hour: WindowOut,
    pub last_day: WindowOut,
    pub last_week: WindowOut,
}

fn window(c: Coverage) -> WindowOut {
    let accepted = c.verified + c.unverified;
    let ratio = if accepted == 0 {
        0.0
    } else {
        c.unverified as f64 / accepted as f64
    };
    WindowOut {
        counts: c,
        would_reject_ratio: (ratio * 10_000.0).round() / 10_000.0,
    }
}

/// Verification coverage: verified, unverified and rejected identifies.
#[utoipa::path(get, path = "/admin/v1/environments/{env}/stats", tag = "admin",
    params(("env" = String, Path, description = "environment id")),
    responses((status = 200, body = StatsOut), (status = "4XX", body = ErrorOut)),
    security(("admin_token" = [])))]
pub async fn get_stats(
    State(state): State<AppState>,
    _: AdminAuth,
    Path(env): Path<String>,
) -> ApiResult<Json<StatsOut>> {
    super::env_ctx(&state, &env)?;
    let now = now();
    let s = &state.store;
    Ok(Json(StatsOut {
        last_hour: window(s.coverage(&env, now - 3600).await?),
        last_day: window(s.coverage(&env, now - 86_400).await?),
        last_week: window(s.coverage(&env, now - 7 * 86_400).await?),
    }))
}
