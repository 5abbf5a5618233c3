//! The `/demo` page: a small "customer app" with its own "customer backend"
//! route that signs user ids. It exists only when the server runs with
//! `--demo` (`VOUCH_DEMO=true`), and even then serves test environments only:
//! the signing route signs any user id for whoever asks, so anyone who can
//! reach the server can impersonate any user of a test environment.

use axum::Json;
use axum::Router;
use axum::extract::{FromRequestParts, RawQuery, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use vouch_core::{Mode, SignatureEncoding};

use crate::clock::now;
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::extract::JsonBody;
use crate::state::{AppState, EnvContext};

const DEMO_HTML: &str = include_str!("../../assets/demo/index.html");
const DEMO_JS: &str = include_str!("../../assets/demo/demo.js");
const DEMO_CSS: &str = include_str!("../../assets/demo/demo.css");
const DEMO_ICON: &str = include_str!("../../assets/demo/favicon.svg");

const JS: &str = "text/javascript; charset=utf-8";

/// Everything the page loads comes from this server: no inline script or style.
const DEMO_CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/demo", get(demo_page))
        .route("/demo/demo.js", get(demo_js))
        .route("/demo/demo.css", get(demo_css))
        .route("/demo/favicon.svg", get(demo_icon))
        .route("/demo/api/sign", post(demo_sign))
}

/// Extracted first by every demo handler: without `--demo` the request ends
/// here with 404, before its body is read.
struct DemoOn;

impl FromRequestParts<AppState> for DemoOn {
    type Rejection = ApiError;

    async fn from_request_parts(_: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if state.config.demo {
            Ok(Self)
        } else {
            Err(ApiError::new(
                ErrorCode::NotFound,
                "No such page: the demo is off (start Vouch with --demo to serve it for test environments).",
            ))
        }
    }
}

// ---- Demo page -------------------------------------------------------------

fn no_demo() -> ApiError {
    ApiError::new(
        ErrorCode::NotFound,
        "The demo runs on test environments only: pass ?env=env_… of a test environment, or create one in the admin API.",
    )
}

/// The environment named by `?env=`, or the oldest test environment.
fn demo_environment(
    state: &AppState,
    query: Option<&str>,
) -> ApiResult<std::sync::Arc<EnvContext>> {
    let snap = state.snapshot();
    let wanted = query
        .unwrap_or("")
        .split('&')
        .find_map(|pair| pair.strip_prefix("env="));
    let ctx = match wanted {
        Some(id) => snap.by_id.get(id).cloned(),
        None => snap
            .by_id
            .values()
            .filter(|c| c.env.settings.mode == Mode::Test)
            .min_by(|a, b| (a.env.created_at, &a.env.id).cmp(&(b.env.created_at, &b.env.id)))
            .cloned(),
    };
    match ctx {
        Some(c) if c.env.settings.mode == Mode::Test => Ok(c),
        _ => Err(no_demo()),
    }
}

fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn page_headers(content_type: &'static str) -> [(header::HeaderName, HeaderValue); 6] {
    [
        (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
        (
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(DEMO_CSP),
        ),
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
        (
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ),
        (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
        (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
    ]
}

async fn demo_page(
    _: DemoOn,
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
) -> ApiResult<Response> {
    let ctx = demo_environment(&state, query.as_deref())?;
    let settings = &ctx.env.settings;
    let enforcement = match settings.enforcement {
        crate::model::Enforcement::Off => "off",
        crate::model::Enforcement::Enforce => "enforce",
    };
    let html = DEMO_HTML
        .replace("{{ENV_ID}}", &escape_html(&ctx.env.id))
        .replace("{{ENV_NAME}}", &escape_html(&settings.name))
        .replace(
            "{{PUBLISHABLE_KEY}}",
            &escape_html(&ctx.env.publishable_key),
        )
        .replace("{{ENFORCEMENT}}", enforcement);
    Ok((page_headers("text/html; charset=utf-8"), html).into_response())
}

async fn demo_js(_: DemoOn) -> Response {
    (page_headers(JS), DEMO_JS).into_response()
}

async fn demo_css(_: DemoOn) -> Response {
    (page_headers("text/css; charset=utf-8"), DEMO_CSS).into_response()
}

async fn demo_icon(_: DemoOn) -> Response {
    (page_headers("image/svg+xml"), DEMO_ICON).into_response()
}

#[derive(Deserialize)]
struct DemoSignIn {
    env: String,
    user_id: String,
}

#[derive(Serialize)]
struct DemoSignOut {
    signature: String,
    key_id: String,
}

/// The demo's "customer backend": signs a user id with the environment's
/// newest active secret, as the customer's own server would. Test
/// environments only; a real backend signs only its signed-in user's id.
async fn demo_sign(
    _: DemoOn,
    State(state): State<AppState>,
    body: JsonBody,
) -> ApiResult<Json<DemoSignOut>> {
    let input: DemoSignIn = body.parse()?;
    crate::widget::check_id("user_id", &input.user_id)?;
    let ctx = state
        .snapshot()
        .by_id
        .get(&input.env)
        .filter(|c| c.env.settings.mode == Mode::Test)
        .cloned()
        .ok_or_else(no_demo)?;
    let entry = ctx
        .ring
        .active(now())
        .max_by_key(|e| e.created_at())
        .ok_or_else(|| {
            ApiError::conflict(
                "This environment has no active identity secret; create one in the admin API.",
            )
        })?;
    let signature = vouch_core::proof::sign(
        entry.secret(),
        input.user_id.as_bytes(),
        SignatureEncoding::Hex,
    );
    Ok(Json(DemoSignOut {
        signature,
        key_id: entry.id().to_string(),
    }))
}

#[cfg(test)]
mod tests {
    use super::escape_html;

    #[test]
    fn environment_names_cannot_inject_markup() {
        assert_eq!(
            escape_html(r#"<script>"a"&'b'</script>"#),
            "&lt;script&gt;&quot;a&quot;&amp;&#39;b&#39;&lt;/script&gt;"
        );
    }
}
