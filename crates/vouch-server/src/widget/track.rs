use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;

use crate::api::{ErrorOut, TrackIn, TrackOut};
use crate::clock::now;
use crate::error::{ApiError, ApiResult};
use crate::extract::{JsonBody, SessionAuth};
use crate::model::{EventRecord, MAX_EVENT_PROPERTIES_BYTES};
use crate::state::AppState;

/// Records an event for the session's user or visitor.
#[utoipa::path(post, path = "/v1/track", tag = "widget",
    request_body = TrackIn,
    responses((status = 202, body = TrackOut), (status = "4XX", body = ErrorOut)),
    security(("session" = [])))]
#[tracing::instrument(skip_all, fields(env_id = %auth.ctx.env.id))]
pub async fn track(
    State(state): State<AppState>,
    auth: SessionAuth,
    body: JsonBody,
) -> ApiResult<(StatusCode, Json<TrackOut>)> {
    let input: TrackIn = body.parse()?;
    if input.event.is_empty() || input.event.len() > 255 {
        return Err(ApiError::invalid_request("`event` must be 1–255 bytes."));
    }
    // PostgreSQL cannot store NUL in text, and no event name needs one.
    if input.event.contains('\0') {
        return Err(ApiError::invalid_request(
            "`event` must not contain a NUL character.",
        ));
    }
    let properties = input.properties.unwrap_or_default();
    let size = serde_json::to_vec(&properties).map_or(0, |v| v.len());
    if size > MAX_EVENT_PROPERTIES_BYTES {
        return Err(ApiError::invalid_request(format!(
            "`properties` may be at most {} KiB as JSON (got {size} bytes). Nothing was stored.",
            MAX_EVENT_PROPERTIES_BYTES / 1024
        )));
    }
    super::ensure_unverified_session_allowed(&state, &auth).await?;
    let id = vouch_core::keys::generate_id("evt");
    let claims = &auth.claims;
    let event = EventRecord {
        seq: 0,
        id: id.clone(),
        env_id: auth.ctx.env.id.clone(),
        user_id: (!claims.anonymous).then(|| claims.sub.clone()),
        visitor_id: Some(claims.vid.clone()),
        name: input.event,
        properties,
        created_at: now(),
    };
    state.store.track(event).await?;
    Ok((StatusCode::ACCEPTED, Json(TrackOut { id })))
}
