//! Identity secrets: create, import, rotate with grace, revoke, reveal (audited),
//! and exposure detection on every widget call.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use crate::common::*;
use reqwest::Method;
use serde_json::{Value, json};
use vouch_core::IdentityClaims;

fn secrets_path(env: &Env) -> String {
    format!("/admin/v1/environments/{}/secrets", env.id)
}

async fn identify_signed(s: &Server, env: &Env, secret_value: &str, user: &str) -> Resp {
    s.identify(
        &env.pk,
        &json!({"user_id": user, "signature": sign_hex(secret_value, user)}),
    )
    .await
}

fn kinds(audit: &[Value]) -> Vec<String> {
    audit
        .iter()
        .filter_map(|a| a["kind"].as_str().map(str::to_string))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_keeps_the_old_secret_during_grace_only() {
    let s = Server::start().await;
    let env = s.env().await;
    let rotated = s
        .admin(
            Method::POST,
            &secrets_path(&env),
            Some(&json!({"rotate": true, "grace_seconds": 3})),
        )
        .await
        .expect_status(201);
    let new_secret = rotated["value"].as_str().unwrap().to_string();
    let new_id = rotated["id"].as_str().unwrap().to_string();
    assert_ne!(new_id, env.key_id);
    assert_eq!(rotated["status"], json!("active"));
    assert!(new_secret.starts_with("sk_test_"));
    // During the grace period both secrets verify.
    identify_signed(&s, &env, &env.secret, "r1")
        .await
        .expect_status(200);
    identify_signed(&s, &env, &new_secret, "r2")
        .await
        .expect_status(200);
    let old = s
        .admin_get(&format!("{}/{}", secrets_path(&env), env.key_id))
        .await;
    assert_eq!(old["status"], json!("active"));
    assert!(old["expires_at"].as_str().unwrap().ends_with('Z'));
    assert!(old.get("value").is_none(), "no value without reveal");
    // After the grace period only the new one does.
    tokio::time::sleep(Duration::from_millis(4100)).await;
    let msg = identify_signed(&s, &env, &env.secret, "r3")
        .await
        .expect_error(401, "invalid_signature");
    assert!(msg.starts_with(INVALID_SIGNATURE_MESSAGE), "{msg}");
    identify_signed(&s, &env, &new_secret, "r3")
        .await
        .expect_status(200);
    assert_eq!(s.secret_status(&env.id, &env.key_id).await, "expired");
    assert_eq!(s.secret_status(&env.id, &new_id).await, "active");
    // Tokens follow the same rule.
    let t_old = token(&env.secret, None, &IdentityClaims::new("r4"));
    s.identify(&env.pk, &json!({"user_id": "r4", "token": t_old}))
        .await
        .expect_error(401, "invalid_token");
    // The audit log has the rotation, and the failure is diagnosed as an expired secret.
    let audit = s.audit(&env.id).await;
    assert!(kinds(&audit).contains(&"secret.rotated".to_string()));
    let rejected = audit
        .iter()
        .find(|a| a["kind"] == "identity.rejected" && a["user_id"] == "r3")
        .expect("the rejected identify is audited");
    assert_eq!(rejected["detail"]["cause"], json!("expired_secret"));
    assert!(
        rejected["detail"]["diagnosis"]
            .as_str()
            .unwrap()
            .contains(&env.key_id)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_without_grace_and_revocation_act_at_once() {
    let s = Server::start().await;
    let env = s.env().await;
    // A second active secret: both verify.
    let second = s
        .admin(Method::POST, &secrets_path(&env), Some(&json!({})))
        .await
        .expect_status(201);
    let second_value = second["value"].as_str().unwrap().to_string();
    let second_id = second["id"].as_str().unwrap().to_string();
    identify_signed(&s, &env, &env.secret, "a")
        .await
        .expect_status(200);
    identify_signed(&s, &env, &second_value, "b")
        .await
        .expect_status(200);
    // Revoke the first: it fails at once, the other keeps working.
    let revoked = s
        .admin(
            Method::DELETE,
            &format!("{}/{}", secrets_path(&env), env.key_id),
            None,
        )
        .await
        .expect_status(200);
    assert_eq!(revoked["status"], json!("revoked"));
    assert!(revoked["revoked_at"].as_str().unwrap().ends_with('Z'));
    assert!(revoked.get("value").is_none());
    identify_signed(&s, &env, &env.secret, "c")
        .await
        .expect_error(401, "invalid_signature");
    identify_signed(&s, &env, &second_value, "c")
        .await
        .expect_status(200);
    let audit = s.audit(&env.id).await;
    assert!(kinds(&audit).contains(&"secret.revoked".to_string()));
    let diag = audit
        .iter()
        .find(|a| a["kind"] == "identity.rejected")
        .expect("rejection audited");
    assert_eq!(diag["detail"]["cause"], json!("revoked_secret"));
    // Rotation with grace 0 expires the other one immediately.
    let third = s
        .admin(
            Method::POST,
            &secrets_path(&env),
            Some(&json!({"rotate": true, "grace_seconds": 0})),
        )
        .await
        .expect_status(201);
    let third_value = third["value"].as_str().unwrap().to_string();
    identify_signed(&s, &env, &second_value, "d")
        .await
        .expect_error(401, "invalid_signature");
    identify_signed(&s, &env, &third_value, "d")
        .await
        .expect_status(200);
    assert_eq!(s.secret_status(&env.id, &second_id).await, "expired");
    // The list shows all three with their states and never a value.
    let list = s.secrets(&env.id).await;
    assert_eq!(list.len(), 3);
    let mut states: Vec<&str> = list.iter().map(|x| x["status"].as_str().unwrap()).collect();
    states.sort_unstable();
    assert_eq!(states, ["active", "expired", "revoked"]);
    for x in &list {
        assert!(x.get("value").is_none());
    }
    // With every secret gone, nothing verifies.
    s.admin(
        Method::DELETE,
        &format!("{}/{}", secrets_path(&env), third["id"].as_str().unwrap()),
        None,
    )
    .await
    .expect_status(200);
    identify_signed(&s, &env, &third_value, "e")
        .await
        .expect_error(401, "invalid_signature");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imported_secret_verifies_existing_signatures() {
    let s = Server::start().await;
    let env = s.env().await;
    let legacy = "legacy vendor secret: 3f9a-77c1-éü";
    let imported = s
        .admin(
            Method::POST,
            &secrets_path(&env),
            Some(&json!({"value": legacy})),
        )
        .await
        .expect_status(201);
    assert_eq!(imported["value"], json!(legacy));
    assert_eq!(imported["imported"], json!(true));
    let out = identify_signed(&s, &env, legacy, "migrated")
        .await
        .expect_status(200);
    assert_eq!(out["user"]["verified"], json!(true));
    assert!(kinds(&s.audit(&env.id).await).contains(&"secret.imported".to_string()));
    // Staging's secret never verifies production users.
    let prod = s.env().await;
    identify_signed(&s, &prod, legacy, "migrated")
        .await
        .expect_error(401, "invalid_signature");
    identify_signed(&s, &prod, &env.secret, "migrated")
        .await
        .expect_error(401, "invalid_signature");
    let audit = s.audit(&prod.id).await;
    let rejected = audit
        .iter()
        .find(|a| a["kind"] == "identity.rejected" && a["detail"]["cause"] == "other_environment")
        .expect("signed with another environment's secret is diagnosed");
    assert!(
        rejected["detail"]["diagnosis"]
            .as_str()
            .unwrap()
            .contains(env.created["name"].as_str().unwrap())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reveal_returns_the_value_and_is_audited() {
    let s = Server::start().await;
    let env = s.env().await;
    let path = format!("{}/{}", secrets_path(&env), env.key_id);
    let plain = s.admin_get(&path).await;
    assert!(plain.get("value").is_none());
    assert!(!kinds(&s.audit(&env.id).await).contains(&"secret.revealed".to_string()));
    let revealed = s.admin_get(&format!("{path}?reveal=true")).await;
    assert_eq!(revealed["value"], json!(env.secret));
    let audit = s.audit(&env.id).await;
    let entry = audit
        .iter()
        .find(|a| a["kind"] == "secret.revealed")
        .expect("a reveal audit entry");
    assert_eq!(entry["key_id"], json!(env.key_id));
    // The audit log never holds the value.
    let whole = serde_json::to_string(&audit).unwrap();
    assert!(!whole.contains(&env.secret));
    s.admin_get(&format!("{path}?reveal=true")).await;
    let reveals = s
        .audit(&env.id)
        .await
        .iter()
        .filter(|a| a["kind"] == "secret.revealed")
        .count();
    assert_eq!(reveals, 2, "every reveal is audited");
}

/// Asserts `env`'s first secret was revoked for exposure.
async fn assert_exposed(s: &Server, env: &Env) {
    assert_eq!(s.secret_status(&env.id, &env.key_id).await, "revoked");
    let audit = s.audit(&env.id).await;
    let entry = audit
        .iter()
        .find(|a| a["kind"] == "secret.exposed")
        .expect("a secret.exposed audit entry");
    assert_eq!(entry["key_id"], json!(env.key_id));
    assert!(!serde_json::to_string(&audit).unwrap().contains(&env.secret));
    // Revoked: its signatures no longer verify.
    identify_signed(s, env, &env.secret, "after-exposure")
        .await
        .expect_error(401, "invalid_signature");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secret_sent_as_publishable_key_is_exposed() {
    let s = Server::start().await;
    let env = s.env().await;
    let msg = s
        .identify(&env.secret, &json!({"user_id": "u"}))
        .await
        .expect_error(403, "secret_key_exposed");
    assert!(!msg.contains(&env.secret));
    assert_exposed(&s, &env).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secret_sent_as_signature_is_exposed() {
    let s = Server::start().await;
    let env = s.env().await;
    let r = s
        .identify(&env.pk, &json!({"user_id": "u", "signature": env.secret}))
        .await;
    r.expect_error(403, "secret_key_exposed");
    assert!(!r.text.contains(&env.secret));
    assert_exposed(&s, &env).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secret_inside_an_attribute_value_is_exposed() {
    let s = Server::start().await;
    let env = s.env().await;
    s.identify(
        &env.pk,
        &json!({"user_id": "u", "attributes": {"note": format!("my key is {} ok", env.secret)}}),
    )
    .await
    .expect_error(403, "secret_key_exposed");
    s.admin_user(&env.id, "u")
        .await
        .expect_error(404, "not_found");
    assert_exposed(&s, &env).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secret_inside_track_properties_is_exposed() {
    let s = Server::start().await;
    let env = s.env().await;
    let out = s.identify_ok(&env.pk, &json!({"user_id": "u"})).await;
    let t = out["session_token"].as_str().unwrap();
    s.track(
        t,
        &json!({"event": "debug", "properties": {"nested": [{"k": env.secret}]}}),
    )
    .await
    .expect_error(403, "secret_key_exposed");
    let events = s
        .admin_get(&format!("/admin/v1/environments/{}/events", env.id))
        .await;
    assert!(events["data"].as_array().unwrap().is_empty());
    assert_exposed(&s, &env).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secret_as_token_session_or_group_field_is_exposed() {
    let s = Server::start().await;
    // As an identity token.
    let e1 = s.env().await;
    s.identify(&e1.pk, &json!({"user_id": "u", "token": e1.secret}))
        .await
        .expect_error(403, "secret_key_exposed");
    assert_exposed(&s, &e1).await;
    // As a session token.
    let e2 = s.env().await;
    s.me(&e2.secret)
        .await
        .expect_error(403, "secret_key_exposed");
    assert_exposed(&s, &e2).await;
    // In a group call's attributes.
    let e3 = s.env().await;
    let out = s.identify_ok(&e3.pk, &json!({"user_id": "u"})).await;
    s.group(
        out["session_token"].as_str().unwrap(),
        &json!({"company_id": "c", "attributes": {"api": e3.secret}}),
    )
    .await
    .expect_error(403, "secret_key_exposed");
    assert_exposed(&s, &e3).await;
    // As an anonymous session body.
    let e4 = s.env().await;
    s.post("/v1/sessions", Some(&e4.pk), &json!({"oops": e4.secret}))
        .await
        .expect_error(403, "secret_key_exposed");
    assert_exposed(&s, &e4).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_of_another_environment_is_exposed_too() {
    let s = Server::start().await;
    let staging = s.env().await;
    let production = s.env().await;
    // Production's secret pasted into a call to staging.
    s.identify(
        &staging.pk,
        &json!({"user_id": "u", "signature": production.secret}),
    )
    .await
    .expect_error(403, "secret_key_exposed");
    assert_exposed(&s, &production).await;
    // Staging's own secret is untouched.
    assert_eq!(
        s.secret_status(&staging.id, &staging.key_id).await,
        "active"
    );
    identify_signed(&s, &staging, &staging.secret, "fine")
        .await
        .expect_status(200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_imported_secret_sent_from_the_browser_is_exposed() {
    let s = Server::start().await;
    let env = s.env().await;
    let legacy = "legacy-vendor-secret-000111222333";
    let imported = s
        .admin(
            Method::POST,
            &secrets_path(&env),
            Some(&json!({"value": legacy})),
        )
        .await
        .expect_status(201);
    let id = imported["id"].as_str().unwrap();
    s.identify(&env.pk, &json!({"user_id": "u", "signature": legacy}))
        .await
        .expect_error(403, "secret_key_exposed");
    assert_eq!(s.secret_status(&env.id, id).await, "revoked");
    assert_eq!(s.secret_status(&env.id, &env.key_id).await, "active");
    identify_signed(&s, &env, legacy, "u")
        .await
        .expect_error(401, "invalid_signature");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_in_a_malformed_or_mislabelled_widget_body_is_exposed() {
    let s = Server::start().await;
    // Malformed JSON: the scan comes before body validation.
    let e1 = s.env().await;
    let body = format!(r#"{{"user_id": "u", "signature": "{}""#, e1.secret);
    s.post_raw("/v1/identify", Some(&e1.pk), "application/json", body)
        .await
        .expect_error(403, "secret_key_exposed");
    assert_exposed(&s, &e1).await;
    // The wrong content type.
    let e2 = s.env().await;
    let body = json!({"user_id": "u", "signature": e2.secret}).to_string();
    s.post_raw("/v1/identify", Some(&e2.pk), "text/plain", body)
        .await
        .expect_error(403, "secret_key_exposed");
    assert_exposed(&s, &e2).await;
    // An imported secret (no recognisable shape) in a valid JSON body sent as text.
    let e3 = s.env().await;
    let legacy = "legacy-vendor-secret-mislabelled-01";
    let imported = s
        .admin(
            Method::POST,
            &secrets_path(&e3),
            Some(&json!({"value": legacy})),
        )
        .await
        .expect_status(201);
    let body = json!({"user_id": "u", "signature": legacy}).to_string();
    s.post_raw("/v1/identify", Some(&e3.pk), "text/plain", body)
        .await
        .expect_error(403, "secret_key_exposed");
    assert_eq!(
        s.secret_status(&e3.id, imported["id"].as_str().unwrap())
            .await,
        "revoked"
    );
    // Without a secret, the usual errors.
    let e4 = s.env().await;
    s.post_raw(
        "/v1/identify",
        Some(&e4.pk),
        "application/json",
        "{\"user_id\":",
    )
    .await
    .expect_error(400, "invalid_request");
    s.post_raw(
        "/v1/identify",
        Some(&e4.pk),
        "text/plain",
        "{\"user_id\":\"u\"}",
    )
    .await
    .expect_error(415, "unsupported_media_type");
    // Admin calls are not widget calls: importing a secret in a mislabelled body is just 415.
    s.post_raw(
        &secrets_path(&e4),
        Some(ADMIN_TOKEN),
        "text/plain",
        json!({"value": e4.secret}).to_string(),
    )
    .await
    .expect_error(415, "unsupported_media_type");
    assert_eq!(s.secret_status(&e4.id, &e4.key_id).await, "active");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_key_and_the_origin_are_checked_before_the_body_is_scanned() {
    let s = Server::start().await;
    let env = s
        .env_with(json!({"allowed_origins": ["https://app.example.com"]}))
        .await;
    let body = json!({"user_id": "u", "attributes": {"note": env.secret}});
    // An unknown publishable key: that answer first.
    s.identify("pk_test_0000000000000000000000000000000", &body)
        .await
        .expect_error(401, "invalid_publishable_key");
    // A disallowed origin: that answer first.
    s.request(
        reqwest::Method::POST,
        "/v1/identify",
        Some(&env.pk),
        &[("origin", "https://evil.example.net")],
        Some(("application/json", body.to_string().into_bytes())),
    )
    .await
    .expect_error(403, "origin_not_allowed");
    assert_eq!(s.secret_status(&env.id, &env.key_id).await, "active");
    // With the key and origin right, the scan comes before any validation.
    s.request(
        reqwest::Method::POST,
        "/v1/identify",
        Some(&env.pk),
        &[("origin", "https://app.example.com")],
        Some(("application/json", body.to_string().into_bytes())),
    )
    .await
    .expect_error(403, "secret_key_exposed");
    assert_exposed(&s, &env).await;
}
