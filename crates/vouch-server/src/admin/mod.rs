//! The admin API (`/admin/v1`), authenticated by an admin token.

mod diagnose;
pub mod environments;
mod secrets;
mod tokens;
mod users;
mod webhooks;

use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::ApiError;
use crate::state::{AppState, EnvContext};
use std::sync::Arc;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(
            environments::list_environments,
            environments::create_environment
        ))
        .routes(routes!(
            environments::get_environment,
            environments::update_environment,
            environments::delete_environment
        ))
        .routes(routes!(secrets::list_secrets, secrets::create_secret))
        .routes(routes!(secrets::get_secret, secrets::delete_secret))
        .routes(routes!(environments::revoke_sessions))
        .routes(routes!(users::list_users))
        .routes(routes!(users::get_user, users::delete_user))
        .routes(routes!(users::list_events))
        .routes(routes!(users::list_audit))
        .routes(routes!(users::list_deployment_audit))
        .routes(routes!(users::get_stats))
        .routes(routes!(diagnose::diagnose))
        .routes(routes!(secrets::rotate_signing_key))
        .routes(routes!(webhooks::list_webhooks, webhooks::create_webhook))
        .routes(routes!(webhooks::get_webhook, webhooks::delete_webhook))
        .routes(routes!(webhooks::list_deliveries))
        .routes(routes!(webhooks::enable_webhook))
        .routes(routes!(webhooks::replay_webhook))
        .routes(routes!(webhooks::rotate_webhook_secret))
        .routes(routes!(webhooks::list_event_types))
        .routes(routes!(tokens::list_tokens, tokens::create_token))
        .routes(routes!(tokens::delete_token))
        .routes(routes!(tokens::whoami))
}

/// Pagination query of every list.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct PageQuery {
    /// Up to 200; default 50.
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

pub(crate) fn env_ctx(state: &AppState, env_id: &str) -> Result<Arc<EnvContext>, ApiError> {
    state
        .snapshot()
        .by_id
        .get(env_id)
        .cloned()
        .ok_or_else(|| ApiError::not_found("environment"))
}

pub(crate) fn seq_cursor(cursor: Option<&str>) -> Result<Option<i64>, ApiError> {
    cursor
        .map(|c| {
            c.parse::<i64>().map_err(|_| {
                ApiError::invalid_request("`cursor` is not a cursor this API returned.")
            })
        })
        .transpose()
}

/// Returns once the clock has passed `at`'s second: a revocation at `at`
/// refuses sessions issued at or before that second, so one issued after the
/// answer (a client identifying again at once) is never caught by it.
pub(crate) async fn after_second(at: crate::model::Ts) {
    loop {
        let now = time::OffsetDateTime::now_utc();
        if now.unix_timestamp() > at {
            return;
        }
        let left = 1_000_000_000 - i64::from(now.nanosecond());
        tokio::time::sleep(std::time::Duration::from_nanos(
            u64::try_from(left).unwrap_or(1) + 1_000_000,
        ))
        .await;
    }
}
