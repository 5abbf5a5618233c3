//! Browser-facing pages: the SDK file, the demo page and the admin UI.

mod admin;
mod demo;

use axum::Router;

use crate::state::AppState;

/// HTML pages and static assets (not part of the JSON API's OpenAPI document).
pub fn router() -> Router<AppState> {
    Router::new().merge(demo::router()).merge(admin::router())
}
