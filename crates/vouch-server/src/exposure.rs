//! Exposure detection: a secret of any environment that reaches a public
//! endpoint is revoked at once and the call fails with `secret_key_exposed`.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::clock::now;
use crate::error::{ApiError, ErrorCode};
use crate::model::{BODY_LIMIT, NewAudit};
use crate::state::AppState;

/// The widget router's exposure layer: every body is scanned before any
/// handler or extractor sees it, malformed or mislabelled ones too.
pub async fn scan_layer(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
        return next.run(req).await;
    }
    let (parts, body) = req.into_parts();
    let raw = match axum::body::to_bytes(body, BODY_LIMIT).await {
        Ok(b) => b,
        Err(e) => {
            let too_large = std::error::Error::source(&e)
                .is_some_and(|s| s.is::<http_body_util::LengthLimitError>())
                || e.to_string().contains("length limit");
            return if too_large {
                ApiError::from(ErrorCode::PayloadTooLarge).into_response()
            } else {
                ApiError::invalid_request("The request body could not be read.").into_response()
            };
        }
    };
    let value = serde_json::from_slice::<Value>(&raw).unwrap_or(Value::Null);
    if let Err(e) = scan_body(&state, &raw, &value).await {
        return e.into_response();
    }
    next.run(Request::from_parts(parts, Body::from(raw))).await
}

/// Checks one value (a bearer key, a token …) for a known secret.
pub async fn check_value(state: &AppState, value: &str, place: &str) -> Result<(), ApiError> {
    let mut found = Vec::new();
    collect(state, value, &mut found);
    revoke_found(state, found, place).await
}

/// Scans a whole widget body: every string in it, and any secret-shaped text.
async fn scan_body(state: &AppState, raw: &[u8], value: &Value) -> Result<(), ApiError> {
    let mut found = Vec::new();
    let text = String::from_utf8_lossy(raw);
    for candidate in vouch_core::keys::find_embedded_secrets(&text) {
        collect(state, candidate, &mut found);
    }
    walk(state, value, &mut found);
    revoke_found(state, found, "request body").await
}

fn walk(state: &AppState, v: &Value, found: &mut Vec<(String, String)>) {
    match v {
        Value::String(s) => collect(state, s, found),
        Value::Array(a) => a.iter().for_each(|x| walk(state, x, found)),
        Value::Object(m) => {
            for (k, x) in m {
                collect(state, k, found);
                walk(state, x, found);
            }
        }
        _ => {}
    }
}

fn collect(state: &AppState, s: &str, found: &mut Vec<(String, String)>) {
    if s.len() < 16 || s.len() > 4096 {
        return;
    }
    let snap = state.snapshot();
    let mut check = |candidate: &str| {
        if let Some(hit) = snap
            .secret_index
            .get(&vouch_core::keys::sha256(candidate.as_bytes()))
            && !found.contains(hit)
        {
            found.push(hit.clone());
        }
    };
    check(s);
    check(s.trim());
    for embedded in vouch_core::keys::find_embedded_secrets(s) {
        check(embedded);
    }
}

async fn revoke_found(
    state: &AppState,
    found: Vec<(String, String)>,
    place: &str,
) -> Result<(), ApiError> {
    if found.is_empty() {
        return Ok(());
    }
    let at = now();
    for (env_id, key_id) in &found {
        let audit = NewAudit {
            env_id: Some(env_id.clone()),
            kind: "secret.exposed",
            user_id: None,
            key_id: Some(key_id.clone()),
            actor: None,
            detail: json!({
                "message": format!("The secret {key_id} arrived in a browser call ({place}) and was revoked at once."),
                "place": place,
            }),
            at,
        };
        tracing::warn!(env_id = %env_id, key_id = %key_id, place, "identity secret exposed on a widget call; revoked");
        state.revoke_secret(env_id, key_id, true, audit).await?;
    }
    Err(ErrorCode::SecretKeyExposed.into())
}
