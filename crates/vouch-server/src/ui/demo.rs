//! `/sdk/vouch.js` and the `/demo` page (test environments only).

use axum::Router;

use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
}
