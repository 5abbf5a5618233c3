//! A secret key sent in any field of any widget call, or as its bearer, is revoked and
//! the call refused.

use reqwest::Method;
use serde_json::{Value, json};

use super::assert_alive;
use crate::common::*;

/// A token whose `exp` is the largest integer, with a `jti`: its replay window must not
/// wrap around (it once overflowed `exp + leeway`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_in_any_field_of_any_widget_call_is_revoked_and_refused() {
    let s = Server::start().await;
    let env = s.env().await;
    let session = s.identify_ok(&env.pk, &json!({"user_id": "u1"})).await["session_token"]
        .as_str()
        .unwrap()
        .to_string();
    let secrets_path = format!("/admin/v1/environments/{}/secrets", env.id);
    type Place = fn(&str) -> (&'static str, bool, Value);
    // (name, call) where call gives (path, authenticate with the session?, body).
    let places: Vec<(&str, Place)> = vec![
        ("identify user_id", |k| {
            ("/v1/identify", false, json!({"user_id": k}))
        }),
        ("identify attribute value", |k| {
            (
                "/v1/identify",
                false,
                json!({"user_id": "u", "attributes": {"note": k}}),
            )
        }),
        ("identify attribute key", |k| {
            (
                "/v1/identify",
                false,
                json!({"user_id": "u", "attributes": {k: 1}}),
            )
        }),
        ("identify nested attribute", |k| {
            (
                "/v1/identify",
                false,
                json!({"user_id": "u", "attributes": {"a": [{"b": k}]}}),
            )
        }),
        ("identify embedded in text", |k| {
            (
                "/v1/identify",
                false,
                json!({"user_id": "u", "attributes": {"note": format!("my key is {k}, ok")}}),
            )
        }),
        ("identify signature", |k| {
            (
                "/v1/identify",
                false,
                json!({"user_id": "u", "signature": k}),
            )
        }),
        ("identify token", |k| {
            ("/v1/identify", false, json!({"user_id": "u", "token": k}))
        }),
        ("identify attributes_signature", |k| {
            (
                "/v1/identify",
                false,
                json!({"user_id": "u", "attributes": {}, "attributes_signature": k}),
            )
        }),
        ("identify unknown field", |k| {
            ("/v1/identify", false, json!({"user_id": "u", "secret": k}))
        }),
        ("sessions body", |k| {
            ("/v1/sessions", false, json!({"x": k}))
        }),
        ("group company_id", |k| {
            ("/v1/group", true, json!({"company_id": k}))
        }),
        ("group attributes", |k| {
            (
                "/v1/group",
                true,
                json!({"company_id": "c", "attributes": {"k": k}}),
            )
        }),
        ("group signature", |k| {
            (
                "/v1/group",
                true,
                json!({"company_id": "c", "signature": k}),
            )
        }),
        ("track event", |k| ("/v1/track", true, json!({"event": k}))),
        ("track properties", |k| {
            (
                "/v1/track",
                true,
                json!({"event": "e", "properties": {"k": k}}),
            )
        }),
    ];
    let fresh = || async {
        let created = s
            .admin(Method::POST, &secrets_path, Some(&json!({})))
            .await
            .expect_status(201);
        (
            created["id"].as_str().unwrap().to_string(),
            created["value"].as_str().unwrap().to_string(),
        )
    };
    for (name, place) in &places {
        let (key_id, value) = fresh().await;
        let (path, with_session, body) = place(&value);
        let bearer = if with_session { &session } else { &env.pk };
        let r = s.post(path, Some(bearer), &body).await;
        r.expect_error(403, "secret_key_exposed");
        assert!(
            !r.text.contains(&value),
            "{name}: the answer echoes the secret"
        );
        assert_eq!(s.secret_status(&env.id, &key_id).await, "revoked", "{name}");
    }
    // As the publishable key, and as the session token.
    for (name, path, body) in [
        ("publishable key", "/v1/identify", json!({"user_id": "u"})),
        ("publishable key on sessions", "/v1/sessions", json!({})),
    ] {
        let (key_id, value) = fresh().await;
        s.post(path, Some(&value), &body)
            .await
            .expect_error(403, "secret_key_exposed");
        assert_eq!(s.secret_status(&env.id, &key_id).await, "revoked", "{name}");
    }
    for path in ["/v1/me", "/v1/track"] {
        let (key_id, value) = fresh().await;
        let r = if path == "/v1/me" {
            s.get(path, Some(&value)).await
        } else {
            s.post(path, Some(&value), &json!({"event": "e"})).await
        };
        r.expect_error(403, "secret_key_exposed");
        assert_eq!(
            s.secret_status(&env.id, &key_id).await,
            "revoked",
            "session {path}"
        );
    }
    // An imported secret (no recognisable prefix) is caught too.
    let imported = "imported-legacy-secret-0123456789";
    let created = s
        .admin(
            Method::POST,
            &secrets_path,
            Some(&json!({"value": imported})),
        )
        .await
        .expect_status(201);
    s.identify(
        &env.pk,
        &json!({"user_id": "u", "attributes": {"x": imported}}),
    )
    .await
    .expect_error(403, "secret_key_exposed");
    assert_eq!(
        s.secret_status(&env.id, created["id"].as_str().unwrap())
            .await,
        "revoked"
    );
    // The environment's first secret was never exposed and still verifies.
    s.identify_ok(
        &env.pk,
        &json!({"user_id": "u9", "signature": env.sign("u9")}),
    )
    .await;
    assert_alive(&s, "exposures").await;
}
