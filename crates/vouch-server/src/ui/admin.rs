//! The admin UI at `/admin`: a no-build single-page app (vanilla JS modules)
//! over the JSON admin API. Signing in puts the admin token in an HttpOnly,
//! SameSite=Strict cookie, plus a CSRF cookie the page echoes in a header on
//! every write (checked by [`AdminAuth`]).

use axum::Json;
use axum::Router;
use axum::extract::{FromRequest, Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::middleware;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::extract::{ADMIN_COOKIE, AdminAuth, CSRF_COOKIE, JsonBody, cookie, csrf_token};
use crate::state::AppState;

const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// How long a sign-in lasts.
const COOKIE_MAX_AGE: i64 = 12 * 3600;

const LOGIN_HTML: &str = include_str!("../../assets/admin/login.html");
const APP_HTML: &str = include_str!("../../assets/admin/app.html");

const JS: &str = "text/javascript; charset=utf-8";

/// Every file under `/admin/assets/`, compiled into the binary.
const ASSETS: &[(&str, &str, &str)] = &[
    (
        "admin.css",
        "text/css; charset=utf-8",
        include_str!("../../assets/admin/admin.css"),
    ),
    (
        "logo.svg",
        "image/svg+xml",
        include_str!("../../assets/admin/logo.svg"),
    ),
    ("login.js", JS, include_str!("../../assets/admin/login.js")),
    ("app.js", JS, include_str!("../../assets/admin/app.js")),
    ("api.js", JS, include_str!("../../assets/admin/api.js")),
    ("dom.js", JS, include_str!("../../assets/admin/dom.js")),
    (
        "router.js",
        JS,
        include_str!("../../assets/admin/router.js"),
    ),
    (
        "widgets.js",
        JS,
        include_str!("../../assets/admin/widgets.js"),
    ),
    (
        "coverage.js",
        JS,
        include_str!("../../assets/admin/coverage.js"),
    ),
    (
        "environments.js",
        JS,
        include_str!("../../assets/admin/environments.js"),
    ),
    (
        "identity.js",
        JS,
        include_str!("../../assets/admin/identity.js"),
    ),
    ("users.js", JS, include_str!("../../assets/admin/users.js")),
    ("audit.js", JS, include_str!("../../assets/admin/audit.js")),
    (
        "webhooks.js",
        JS,
        include_str!("../../assets/admin/webhooks.js"),
    ),
    (
        "tokens.js",
        JS,
        include_str!("../../assets/admin/tokens.js"),
    ),
];

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin", get(app_page))
        .route("/admin/", get(|| async { Redirect::to("/admin") }))
        .route("/admin/login", get(login_page).post(login))
        .route("/admin/logout", post(logout))
        .route("/admin/assets/{name}", get(asset))
        .route(
            "/admin/ui/environments/{env}/secret-hints",
            get(secret_hints),
        )
        .layer(middleware::map_response(security_headers))
}

async fn security_headers(mut resp: Response) -> Response {
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    resp
}

fn html(body: &'static str) -> Response {
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], body).into_response()
}

/// The admin token of the sign-in cookie, when it is still valid.
async fn signed_in_token(state: &AppState, headers: &HeaderMap) -> ApiResult<Option<String>> {
    let Some(token) = cookie(headers, ADMIN_COOKIE) else {
        return Ok(None);
    };
    let hash = vouch_core::keys::sha256(token.as_bytes());
    Ok(state
        .store
        .admin_token(hash)
        .await?
        .map(|_| token.to_string()))
}

fn is_https(state: &AppState, headers: &HeaderMap) -> bool {
    let forwarded = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|p| p.eq_ignore_ascii_case("https"));
    forwarded
        || state
            .config
            .public_url
            .as_deref()
            .is_some_and(|u| u.starts_with("https://"))
}

fn set_cookie(name: &str, value: &str, http_only: bool, secure: bool, max_age: i64) -> String {
    let mut c = format!("{name}={value}; Path=/; SameSite=Strict; Max-Age={max_age}");
    if http_only {
        c.push_str("; HttpOnly");
    }
    if secure {
        c.push_str("; Secure");
    }
    c
}

fn with_cookies(mut resp: Response, cookies: &[String]) -> Response {
    for c in cookies {
        if let Ok(v) = HeaderValue::from_str(c) {
            resp.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    resp
}

fn csrf_cookie(admin_token: &str, secure: bool) -> String {
    set_cookie(
        CSRF_COOKIE,
        &csrf_token(admin_token),
        false,
        secure,
        COOKIE_MAX_AGE,
    )
}

async fn app_page(State(state): State<AppState>, headers: HeaderMap) -> ApiResult<Response> {
    let Some(token) = signed_in_token(&state, &headers).await? else {
        return Ok(Redirect::to("/admin/login").into_response());
    };
    let resp = html(APP_HTML);
    // A sign-in that outlived its CSRF cookie gets a fresh one.
    let csrf_ok =
        cookie(&headers, CSRF_COOKIE).is_some_and(|c| crate::extract::csrf_minted_for(&token, c));
    if csrf_ok {
        Ok(resp)
    } else {
        let secure = is_https(&state, &headers);
        Ok(with_cookies(resp, &[csrf_cookie(&token, secure)]))
    }
}

async fn login_page(State(state): State<AppState>, headers: HeaderMap) -> ApiResult<Response> {
    if signed_in_token(&state, &headers).await?.is_some() {
        return Ok(Redirect::to("/admin").into_response());
    }
    Ok(html(LOGIN_HTML))
}

#[derive(Deserialize)]
struct LoginIn {
    token: String,
}

#[derive(Serialize)]
struct LoginOut {
    signed_in: bool,
}

/// Refuses a sign-in posted from another site (login CSRF).
fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    let Some(host) = headers.get(header::HOST).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    origin
        .split_once("://")
        .is_some_and(|(_, rest)| rest.eq_ignore_ascii_case(host))
}

/// `POST /admin/login`: JSON `{"token"}` (the page's script) answers JSON;
/// a plain form post answers with a redirect.
async fn login(State(state): State<AppState>, req: Request) -> ApiResult<Response> {
    let headers = req.headers().clone();
    if !same_origin(&headers) {
        return Err(ApiError::new(
            ErrorCode::OriginNotAllowed,
            "Sign in from the Vouch admin page itself.",
        ));
    }
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/x-www-form-urlencoded"));
    let input: LoginIn = if is_form {
        axum::Form::<LoginIn>::from_request(req, &state)
            .await
            .map_err(|_| ApiError::invalid_request("Send the admin token in the `token` field."))?
            .0
    } else {
        JsonBody::from_request(req, &state).await?.parse()?
    };
    let token = input.token.trim();
    let valid = !token.is_empty()
        && token.len() <= 512
        && token.bytes().all(|b| b.is_ascii_graphic() && b != b';')
        && state
            .store
            .admin_token(vouch_core::keys::sha256(token.as_bytes()))
            .await?
            .is_some();
    if !valid {
        tracing::warn!("admin UI sign-in with a wrong token");
        if is_form {
            return Ok(Redirect::to("/admin/login?error=invalid").into_response());
        }
        return Err(ApiError::new(
            ErrorCode::InvalidAdminToken,
            "That admin token is not valid. Use the token printed on first start or one created for you.",
        ));
    }
    tracing::info!("admin UI sign-in");
    let secure = is_https(&state, &headers);
    let cookies = [
        set_cookie(ADMIN_COOKIE, token, true, secure, COOKIE_MAX_AGE),
        csrf_cookie(token, secure),
    ];
    let resp = if is_form {
        Redirect::to("/admin").into_response()
    } else {
        Json(LoginOut { signed_in: true }).into_response()
    };
    Ok(with_cookies(resp, &cookies))
}

/// `POST /admin/logout`: clears both cookies.
async fn logout(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let secure = is_https(&state, &headers);
    let cookies = [
        set_cookie(ADMIN_COOKIE, "", true, secure, 0),
        set_cookie(CSRF_COOKIE, "", false, secure, 0),
    ];
    with_cookies(Json(json!({"signed_in": false})).into_response(), &cookies)
}

async fn asset(Path(name): Path<String>) -> Response {
    match ASSETS.iter().find(|(n, _, _)| *n == name) {
        Some((_, content_type, body)) => (
            [
                (header::CONTENT_TYPE, *content_type),
                (header::CACHE_CONTROL, "no-cache"),
            ],
            *body,
        )
            .into_response(),
        None => ApiError::not_found("asset").into_response(),
    }
}

#[derive(Serialize)]
struct SecretHint {
    id: String,
    hint: String,
}

/// The masked form the UI lists secrets by: kind prefix and last four characters.
fn mask(value: &str) -> String {
    let prefix = ["sk_test_", "sk_live_"]
        .into_iter()
        .find(|p| value.starts_with(p))
        .unwrap_or("");
    let chars: Vec<char> = value.chars().collect();
    let last4: String = chars[chars.len().saturating_sub(4)..].iter().collect();
    format!("{prefix}••••{last4}")
}

/// `GET /admin/ui/environments/{env}/secret-hints`: masked values for the secrets table.
async fn secret_hints(
    State(state): State<AppState>,
    _: AdminAuth,
    Path(env): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    let ctx = crate::admin::env_ctx(&state, &env)?;
    let data: Vec<SecretHint> = ctx
        .secrets
        .iter()
        .filter_map(|s| {
            ctx.ring.get(&s.id).map(|e| SecretHint {
                id: s.id.clone(),
                hint: mask(e.secret().expose()),
            })
        })
        .collect();
    Ok(Json(json!({ "data": data })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_keep_the_kind_and_the_last_four_characters_only() {
        assert_eq!(mask("sk_test_abcdefghijklmnopWXYZ"), "sk_test_••••WXYZ");
        assert_eq!(mask("sk_live_0123456789abcdef"), "sk_live_••••cdef");
        assert_eq!(mask("imported-secret-1234"), "••••1234");
    }

    #[test]
    fn sign_in_from_another_site_is_refused() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("vouch.example:8080"));
        assert!(same_origin(&h));
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://vouch.example:8080"),
        );
        assert!(same_origin(&h));
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("https://evil.example"),
        );
        assert!(!same_origin(&h));
    }
}
