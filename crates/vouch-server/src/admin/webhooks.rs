use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::api::{ErrorOut, ListOut, rfc3339};
use crate::clock::now;
use crate::error::{ApiError, ApiResult};
use crate::events::EventType;
use crate::extract::{AdminAuth, JsonBody};
use crate::model::NewAudit;
use crate::model::{AttemptRecord, WebhookEndpoint};
use crate::state::AppState;
use crate::webhooks::{EndpointSecret, open_secrets, safety, seal_secrets};

use super::PageQuery;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookIn {
    pub url: String,
    /// Subscribed types; every type when absent.
    pub event_types: Option<Vec<String>>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct WebhookOut {
    pub id: String,
    pub url: String,
    pub event_types: Option<Vec<String>>,
    pub disabled: bool,
    pub disabled_at: Option<String>,
    pub disabled_reason: Option<String>,
    pub created_at: String,
    /// `whsec_…`, only when created or rotated.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

impl WebhookOut {
    fn new(w: &WebhookEndpoint, secret: Option<String>) -> Self {
        Self {
            id: w.id.clone(),
            url: w.url.clone(),
            event_types: w.event_types.clone(),
            disabled: w.disabled_at.is_some(),
            disabled_at: w.disabled_at.map(rfc3339),
            disabled_reason: w.disabled_reason.clone(),
            created_at: rfc3339(w.created_at),
            secret,
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AttemptOut {
    pub delivery_id: String,
    /// The `webhook-id` of the message.
    pub message_id: String,
    pub attempt: i64,
    pub status_code: Option<i64>,
    pub latency_ms: i64,
    pub response: Option<String>,
    pub error: Option<String>,
    pub success: bool,
    pub next_retry_at: Option<String>,
    pub created_at: String,
}

fn ms_time(ms: i64) -> String {
    rfc3339(ms.div_euclid(1000))
}

impl From<&AttemptRecord> for AttemptOut {
    fn from(a: &AttemptRecord) -> Self {
        Self {
            delivery_id: a.delivery_id.clone(),
            message_id: a.message_id.clone(),
            attempt: a.attempt,
            status_code: a.status_code,
            latency_ms: a.latency_ms,
            response: a.response.clone(),
            error: a.error.clone(),
            success: a.error.is_none() && a.status_code.is_some_and(|s| (200..300).contains(&s)),
            next_retry_at: a.next_retry_at.map(ms_time),
            created_at: ms_time(a.created_at),
        }
    }
}

async fn endpoint(state: &AppState, env: &str, id: &str) -> Result<WebhookEndpoint, ApiError> {
    super::env_ctx(state, env)?;
    state
        .store
        .get_webhook(env, id)
        .await?
        .ok_or_else(|| ApiError::not_found("webhook endpoint"))
}

/// Lists webhook endpoints.
#[utoipa::path(get, path = "/admin/v1/environments/{env}/webhooks", tag = "admin",
    params(("env" = String, Path, description = "environment id")),
    responses((status = 200, body = ListOut<WebhookOut>), (status = "4XX", body = ErrorOut)),
    security(("admin_token" = [])))]
pub async fn list_webhooks(
    State(state): State<AppState>,
    _: AdminAuth,
    Path(env): Path<String>,
) -> ApiResult<Json<ListOut<WebhookOut>>> {
    super::env_ctx(&state, &env)?;
    let list = state.store.list_webhooks(&env).await?;
    Ok(Json(ListOut {
        data: list.iter().map(|w| WebhookOut::new(w, None)).collect(),
        next_cursor: None,
    }))
}

/// Adds an endpoint; the answer carries its `whsec_…` secret once.
#[utoipa::path(post, path = "/admin/v1/environments/{env}/webhooks", tag = "admin",
    params(("env" = String, Path, description = "environment id")),
    request_body = WebhookIn,
    responses((status = 201, body = WebhookOut), (status = "4XX", body = ErrorOut)),
    security(("admin_token" = [])))]
pub async fn create_webhook(
    State(state): State<AppState>,
    _: AdminAuth,
    Path(env): Path<String>,
    body: JsonBody,
) -> ApiResult<(StatusCode, Json<WebhookOut>)> {
    let input: WebhookIn = body.parse()?;
    super::env_ctx(&state, &env)?;
    if input.url.len() > 2048 {
        return Err(ApiError::invalid_request(
            "`url` is longer than 2048 bytes.",
        ));
    }
    safety::check_url(&input.url, state.config.allow_private_webhooks)
        .map_err(ApiError::invalid_request)?;
    if let Some(types) = &input.event_types {
        if types.is_empty() {
            return Err(ApiError::invalid_request(
                "`event_types` must not be empty; omit it to receive every type.",
            ));
        }
        for t in types {
            if EventType::parse(t).is_none() {
                let known: Vec<&str> = EventType::ALL.iter().map(|t| t.as_str()).collect();
                return Err(ApiError::invalid_request(format!(
                    "Unknown event type {t:?}; known types: {}.",
                    known.join(", ")
                )));
            }
        }
    }
    let now = now();
    let id = vouch_core::keys::generate_id("wh");
    let secret = vouch_core::keys::generate_webhook_secret();
    let secrets = vec![EndpointSecret {
        value: secret.expose().to_string(),
        expires_at: None,
    }];
    let sealed = seal_secrets(&state.master, &id, &secrets).map_err(|_| ApiError::internal())?;
    let endpoint = WebhookEndpoint {
        id,
        env_id: env.clone(),
        url: input.url,
        event_types: input.event_types,
        secrets: sealed,
        disabled_at: None,
        disabled_reason: None,
        created_at: now,
        updated_at: now,
    };
    state.store.create_webhook(endpoint.clone()).await?;
    Ok((
        StatusCode::CREATED,
        Json(WebhookOut::new(
            &endpoint,
            Some(secret.expose().to_string()),
        )),
    ))
}

/// One endpoint.
#[utoipa::path(get, path = "/admin/v1/environments/{env}/webhooks/{id}", tag = "admin",
    params(("env" = String, Path, description = "environment id"), ("id" = String, Path, description = "endpoint id")),
    responses((status = 200, body = WebhookOut), (status = "4XX", body = ErrorOut)),
    security(("admin_token" = [])))]
pub async fn get_webhook(
    State(state): State<AppState>,
    _: AdminAuth,
    Path((env, id)): Path<(String, String)>,
) -> ApiResult<Json<WebhookOut>> {
    let w = endpoint(&state, &env, &id).await?;
    Ok(Json(WebhookOut::new(&w, None)))
}

/// Removes an endpoint and its delivery log.
#[utoipa::path(delete, path = "/admin/v1/environments/{env}/webhooks/{id}", tag = "admin",
    params(("env" = String, Path, description = "environment id"), ("id" = String, Path, description = "endpoint id")),
    responses((status = 204), (status = "4XX", body = ErrorOut)),
    security(("admin_token" = [])))]
pub async fn delete_webhook(
    State(state): State<AppState>,
    auth: AdminAuth,
    Path((env, id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    super::env_ctx(&state, &env)?;
    let audit = NewAudit {
        env_id: Some(env.clone()),
        kind: "webhook.deleted",
        user_id: None,
        key_id: None,
        actor: auth.actor(),
        detail: json!({"endpoint_id": id, "message": "Deleted by an admin with its delivery log."}),
        at: now(),
    };
    state.store.delete_webhook(&env, &id, audit).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Every delivery attempt, newest first: status, latency, response snippet, next retry.
#[utoipa::path(get, path = "/admin/v1/environments/{env}/webhooks/{id}/deliveries", tag = "admin",
    params(("env" = String, Path, description = "environment id"), ("id" = String, Path, description = "endpoint id"), PageQuery),
    responses((status = 200, body = ListOut<AttemptOut>), (status = "4XX", body = ErrorOut)),
    security(("admin_token" = [])))]
pub async fn list_deliveries(
    State(state): State<AppState>,
    _: AdminAuth,
    Path((env, id)): Path<(String, String)>,
    Query(q): Query<PageQuery>,
) -> ApiResult<Json<ListOut<AttemptOut>>> {
    endpoint(&state, &env, &id).await?;
    let before = super::seq_cursor(q.cursor.as_deref())?;
    let page = state
        .store
        .list_attempts(&env, &id, before, q.limit.unwrap_or(50))
        .await?;
    Ok(Json(ListOut {
        data: page.data.iter().map(AttemptOut::from).collect(),
        next_cursor: page.next_cursor,
    }))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ReplayOut {
    /// Deliveries queued again.
    pub queued: u64,
}

/// Re-enables a disabled endpoint.
#[utoipa::path(post, path = "/admin/v1/environments/{env}/webhooks/{id}/enable", tag = "admin",
    params(("env" = String, Path, description = "environment id"), ("id" = String, Path, description = "endpoint id")),
    responses((status = 200, body = WebhookOut), (status = "4XX", body = ErrorOut)),
    security(("admin_token" = [])))]
pub async fn enable_webhook(
    State(state): State<AppState>,
    auth: AdminAuth,
    Path((env, id)): Path<(String, String)>,
) -> ApiResult<Json<WebhookOut>> {
    endpoint(&state, &env, &id).await?;
    let audit = NewAudit {
        env_id: Some(env.clone()),
        kind: "webhook.enabled",
        user_id: None,
        key_id: None,
        actor: auth.actor(),
        detail: json!({"endpoint_id": id, "message": "Re-enabled by an admin."}),
        at: now(),
    };
    state.store.enable_webhook(&env, &id, audit).await?;
    let w = endpoint(&state, &env, &id).await?;
    Ok(Json(WebhookOut::new(&w, None)))
}

/// Queues again every delivery the endpoint has not received (failed for good,
/// or held while it was disabled).
#[utoipa::path(post, path = "/admin/v1/environments/{env}/webhooks/{id}/replay", tag = "admin",
    params(("env" = String, Path, description = "environment id"), ("id" = String, Path, description = "endpoint id")),
    responses((status = 200, body = ReplayOut), (status = "4XX", body = ErrorOut)),
    security(("admin_token" = [])))]
pub async fn replay_webhook(
    State(state): State<AppState>,
    _: AdminAuth,
    Path((env, id)): Path<(String, String)>,
) -> ApiResult<Json<ReplayOut>> {
    let w = endpoint(&state, &env, &id).await?;
    if w.disabled_at.is_some() {
        return Err(ApiError::conflict(
            "The endpoint is disabled: enable it first (POST …/enable), then replay.",
        ));
    }
    let queued = state
        .store
        .replay_webhook(&env, &id, crate::webhooks::dispatcher_now_ms())
        .await?;
    Ok(Json(ReplayOut { queued }))
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateWebhookIn {
    /// How long the old secret keeps signing beside the new one (default 24 h).
    pub grace_seconds: Option<i64>,
}

/// New signing secret; during the grace period both sign every delivery.
#[utoipa::path(post, path = "/admin/v1/environments/{env}/webhooks/{id}/rotate-secret", tag = "admin",
    params(("env" = String, Path, description = "environment id"), ("id" = String, Path, description = "endpoint id")),
    request_body = RotateWebhookIn,
    responses((status = 200, body = WebhookOut), (status = "4XX", body = ErrorOut)),
    security(("admin_token" = [])))]
pub async fn rotate_webhook_secret(
    State(state): State<AppState>,
    _: AdminAuth,
    Path((env, id)): Path<(String, String)>,
    body: JsonBody,
) -> ApiResult<Json<WebhookOut>> {
    let input: RotateWebhookIn = body.parse()?;
    let grace = input.grace_seconds.unwrap_or(86_400);
    if !(0..=30 * 86_400).contains(&grace) {
        return Err(ApiError::invalid_request(
            "`grace_seconds` must be between 0 and 2592000.",
        ));
    }
    let w = endpoint(&state, &env, &id).await?;
    let now = now();
    let mut secrets =
        open_secrets(&state.master, &id, &w.secrets).map_err(|_| ApiError::internal())?;
    secrets.retain(|s| s.expires_at.is_none_or(|e| e > now));
    for s in &mut secrets {
        let until = now + grace;
        s.expires_at = Some(s.expires_at.map_or(until, |e| e.min(until)));
    }
    let fresh = vouch_core::keys::generate_webhook_secret();
    secrets.push(EndpointSecret {
        value: fresh.expose().to_string(),
        expires_at: None,
    });
    let sealed = seal_secrets(&state.master, &id, &secrets).map_err(|_| ApiError::internal())?;
    state
        .store
        .update_webhook_secrets(&env, &id, sealed, now)
        .await?;
    Ok(Json(WebhookOut::new(&w, Some(fresh.expose().to_string()))))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EventTypeOut {
    #[serde(rename = "type")]
    pub kind: EventType,
    pub description: &'static str,
}

/// Every event type an endpoint can subscribe to.
#[utoipa::path(get, path = "/admin/v1/webhook-event-types", tag = "admin",
    responses((status = 200, body = ListOut<EventTypeOut>), (status = "4XX", body = ErrorOut)),
    security(("admin_token" = [])))]
pub async fn list_event_types(_: AdminAuth) -> Json<ListOut<EventTypeOut>> {
    Json(ListOut {
        data: EventType::ALL
            .iter()
            .map(|t| EventTypeOut {
                kind: *t,
                description: t.description(),
            })
            .collect(),
        next_cursor: None,
    })
}
