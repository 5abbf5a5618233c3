//! HTTP plumbing: CORS for the widget API, JSON fallbacks, request ids.

use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64ct::{Base64UrlUnpadded, Encoding};
use tower_http::request_id::{MakeRequestId, RequestId};

use crate::error::{ApiError, ErrorCode};
use crate::extract::{bearer, origin_allowed};
use crate::state::AppState;

pub async fn not_found() -> ApiError {
    ApiError::new(
        ErrorCode::NotFound,
        "No such endpoint; see /openapi.json for the API.",
    )
}

pub async fn method_not_allowed(method: Method) -> ApiError {
    ApiError::invalid_request(format!(
        "Method {method} is not allowed on this endpoint; see /openapi.json."
    ))
    .with_status(StatusCode::METHOD_NOT_ALLOWED)
}

/// Refuses a NUL (`%00`) in the path or the query before any handler sees it: no id
/// can hold one (ids are checked on the way in), and PostgreSQL refuses NUL in text
/// parameters, so a lookup with one would fail as an internal error.
pub async fn reject_nul(req: Request, next: Next) -> Response {
    let has_nul = |s: &str| s.as_bytes().windows(3).any(|w| w == b"%00");
    if has_nul(req.uri().path()) {
        return not_found().await.into_response();
    }
    if req.uri().query().is_some_and(has_nul) {
        return ApiError::invalid_request("Query parameters must not contain a NUL character.")
            .into_response();
    }
    next.run(req).await
}

/// `req_` + random base62 on every request and response.
#[derive(Clone, Copy, Debug, Default)]
pub struct MakeId;

impl MakeRequestId for MakeId {
    fn make_request_id<B>(&mut self, _: &axum::http::Request<B>) -> Option<RequestId> {
        HeaderValue::from_str(&vouch_core::keys::generate_id("req"))
            .ok()
            .map(RequestId::new)
    }
}

/// The environment a widget call names, without verifying anything: the
/// handler's extractor does the real checks; this only picks CORS headers.
fn environment_origins(state: &AppState, req: &Request) -> Option<Vec<String>> {
    let token = bearer(req.headers())?;
    let snap = state.snapshot();
    if let Some(ctx) = snap.by_pk.get(token) {
        return Some(ctx.env.settings.allowed_origins.clone());
    }
    let payload = token.split('.').nth(1)?;
    let bytes = Base64UrlUnpadded::decode_vec(payload).ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    let aud = claims.get("aud")?.as_str()?;
    snap.by_id
        .get(aud)
        .map(|c| c.env.settings.allowed_origins.clone())
}

/// CORS for `/v1`: preflights are answered for any origin some environment
/// allows; real answers carry `Access-Control-Allow-Origin` only for origins
/// the called environment allows.
pub async fn widget_cors(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if !req.uri().path().starts_with("/v1/") {
        return next.run(req).await;
    }
    let origin = req
        .headers()
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let Some(origin) = origin else {
        return next.run(req).await;
    };
    if req.method() == Method::OPTIONS {
        let allowed = state
            .snapshot()
            .by_id
            .values()
            .any(|c| origin_allowed(&c.env.settings.allowed_origins, &origin));
        if !allowed {
            return ApiError::new(
                ErrorCode::OriginNotAllowed,
                format!("Origin {origin} is not allowed by any environment."),
            )
            .into_response();
        }
        let mut resp = StatusCode::NO_CONTENT.into_response();
        let h = resp.headers_mut();
        if let Ok(v) = HeaderValue::from_str(&origin) {
            h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, v);
        }
        h.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("GET, POST, OPTIONS"),
        );
        h.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static("authorization, content-type"),
        );
        h.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static("600"),
        );
        h.insert(header::VARY, HeaderValue::from_static("Origin"));
        return resp;
    }
    let allow = match environment_origins(&state, &req) {
        Some(list) => origin_allowed(&list, &origin),
        // Unknown key or session: let the browser read the error.
        None => true,
    };
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    h.insert(header::VARY, HeaderValue::from_static("Origin"));
    if allow && let Ok(v) = HeaderValue::from_str(&origin) {
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, v);
        h.insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static("retry-after, x-request-id"),
        );
    }
    resp
}

/// Turns any non-JSON error answer from lower layers (timeouts, limits) into our JSON.
pub async fn json_errors(req: Request, next: Next) -> Response {
    let resp = next.run(req).await;
    let status = resp.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return resp;
    }
    let is_json = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/json"));
    if is_json {
        return resp;
    }
    let err = match status {
        StatusCode::PAYLOAD_TOO_LARGE => ErrorCode::PayloadTooLarge.into(),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ErrorCode::UnsupportedMediaType.into(),
        StatusCode::REQUEST_TIMEOUT => {
            ApiError::invalid_request("The request took too long to arrive.").with_status(status)
        }
        StatusCode::NOT_FOUND => ErrorCode::NotFound.into(),
        s if s.is_server_error() => ApiError::internal(),
        s => ApiError::invalid_request("The request could not be processed.").with_status(s),
    };
    let (mut parts, _) = resp.into_parts();
    let mut fresh = err.into_response();
    if let Some(id) = parts.headers.remove("x-request-id") {
        fresh.headers_mut().insert("x-request-id", id);
    }
    fresh
}

/// How a 5xx answer is logged. A 503 is load shed on purpose: the database is
/// unavailable (warned where the store error is mapped) or too many large
/// answers are in flight (counted in `vouch_http_requests_total{status="503"}`),
/// so it gets no error line per request that a flood could multiply. Every
/// other 5xx is an error line.
pub fn log_failure(
    class: tower_http::classify::ServerErrorsFailureClass,
    latency: std::time::Duration,
    _span: &tracing::Span,
) {
    use tower_http::classify::ServerErrorsFailureClass as Class;
    let ms = latency.as_millis();
    match class {
        Class::StatusCode(s) if s == axum::http::StatusCode::SERVICE_UNAVAILABLE => {
            tracing::debug!(status = 503, latency_ms = ms, "answered 503");
        }
        other => tracing::error!(classification = %other, latency_ms = ms, "response failed"),
    }
}
