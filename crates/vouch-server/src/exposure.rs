//! Exposure detection: a secret of any environment that reaches a public
//! endpoint is revoked at once and the call fails with `secret_key_exposed`.

use serde_json::{Value, json};

use crate::clock::now;
use crate::error::{ApiError, ErrorCode};
use crate::model::NewAudit;
use crate::state::AppState;

/// Checks one value (a bearer key, a token …) for a known secret.
pub async fn check_value(state: &AppState, value: &str, place: &str) -> Result<(), ApiError> {
    let mut found = Vec::new();
    collect(state, value, &mut found);
    revoke_found(state, found, place).await
}

/// Scans a whole widget body: every string in it, and any secret-shaped text.
pub async fn scan_body(state: &AppState, raw: &[u8], value: &Value) -> Result<(), ApiError> {
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
