use axum::Json;
use axum::extract::State;

use crate::api::{ErrorOut, MeOut, UserOut};
use crate::error::ApiResult;
use crate::extract::SessionAuth;
use crate::state::AppState;

/// The session's user, its attributes and companies.
#[utoipa::path(get, path = "/v1/me", tag = "widget",
    responses((status = 200, body = MeOut), (status = "4XX", body = ErrorOut)),
    security(("session" = [])))]
pub async fn get_me(State(state): State<AppState>, auth: SessionAuth) -> ApiResult<Json<MeOut>> {
    let claims = &auth.claims;
    if claims.anonymous {
        return Ok(Json(MeOut {
            user: None,
            visitor_id: claims.vid.clone(),
        }));
    }
    let env_id = &auth.ctx.env.id;
    let user = match state.store.get_user(env_id, &claims.sub).await? {
        Some(u) if u.verified && !claims.verified => {
            return Err(super::verified_since());
        }
        Some(u) => {
            let companies = state.store.user_companies(env_id, &u.id).await?;
            Some(UserOut::new(&u, &companies))
        }
        None => None,
    };
    Ok(Json(MeOut {
        user,
        visitor_id: claims.vid.clone(),
    }))
}
