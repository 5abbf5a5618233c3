//! Browser-facing pages: the SDK files, the demo page and the admin UI.

mod admin;
mod demo;
mod sdk;

use axum::Router;

use crate::state::AppState;

/// HTML pages and static assets (not part of the JSON API's OpenAPI document).
pub fn router() -> Router<AppState> {
    public_router().merge(admin_router())
}

/// The pages of the main address: the SDK files and the demo (when on).
pub fn public_router() -> Router<AppState> {
    Router::new().merge(sdk::router()).merge(demo::router())
}

/// The admin UI, for the admin address.
pub fn admin_router() -> Router<AppState> {
    admin::router()
}
