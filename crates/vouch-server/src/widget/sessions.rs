use axum::Json;
use axum::extract::State;

use crate::api::{ErrorOut, SessionOut};
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::extract::{JsonBody, WidgetAuth};
use crate::state::AppState;

/// Opens an anonymous visitor session.
#[utoipa::path(post, path = "/v1/sessions", tag = "widget",
    request_body(content = Object, description = "`{}`"),
    responses((status = 200, body = SessionOut), (status = "4XX", body = ErrorOut)),
    security(("publishable_key" = [])))]
pub async fn create_session(
    State(state): State<AppState>,
    auth: WidgetAuth,
    body: JsonBody,
) -> ApiResult<Json<SessionOut>> {
    if !body.value.is_object() {
        return Err(ApiError::invalid_request(
            "The request body must be a JSON object (`{}`).",
        ));
    }
    if !auth.ctx.env.settings.allow_anonymous {
        return Err(ApiError::new(
            ErrorCode::AnonymousNotAllowed,
            "This environment does not allow anonymous sessions: call identify with a signed user id.",
        ));
    }
    let visitor_id = vouch_core::keys::generate_id("vis");
    let (session_token, expires_at) = super::issue_session(
        &state,
        &auth.ctx,
        &visitor_id,
        &visitor_id,
        super::Subject::Visitor,
    )?;
    Ok(Json(SessionOut {
        session_token,
        expires_at,
        visitor_id,
    }))
}
