use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;

use crate::api::{ErrorOut, TrackIn, TrackOut};
use crate::error::{ApiError, ApiResult};
use crate::exposure;
use crate::extract::{JsonBody, SessionAuth};
use crate::model::EventRecord;
use crate::state::{AppState, now};

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
    exposure::scan_body(&state, &body.raw, &body.value).await?;
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
        properties: input.properties.unwrap_or_default(),
        created_at: now(),
    };
    state.store.track(event).await?;
    Ok((StatusCode::ACCEPTED, Json(TrackOut { id })))
}
