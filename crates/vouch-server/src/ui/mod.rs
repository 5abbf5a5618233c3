//! Browser-facing pages: the SDK files, the demo page and the admin UI.

mod admin;
mod demo;
mod sdk;

use axum::Router;

use crate::state::AppState;

/// HTML pages and static assets (not part of the JSON API's OpenAPI document).
pub fn router() -> Router<AppState> {
    Router::new()
        .merge(sdk::router())
        .merge(demo::router())
        .merge(admin::router())
}
