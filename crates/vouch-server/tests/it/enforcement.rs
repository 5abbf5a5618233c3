//! Per-environment settings: `enforcement`, `allow_anonymous`, `unsigned_session_limit`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common::*;
use reqwest::Method;
use serde_json::json;
use vouch_core::IdentityClaims;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enforcement_off_accepts_unproven_users_as_unverified() {
    let s = Server::start().await;
    let env = s.env().await;
    assert_eq!(env.created["enforcement"], json!("off"));
    let out = s
        .identify_ok(
            &env.pk,
            &json!({"user_id": "anna", "attributes": {"name": "Anna"}}),
        )
        .await;
    assert_eq!(out["user"]["id"], json!("anna"));
    assert_eq!(out["user"]["verified"], json!(false));
    assert_eq!(out["user"]["verified_by"], json!(null));
    assert_eq!(out["user"]["attributes"]["name"], json!("Anna"));
    let (_, claims) = jwt_parts(out["session_token"].as_str().unwrap());
    assert_eq!(claims["verified"], json!(false));
    assert_eq!(claims["sub"], json!("anna"));
    let user = s.admin_user(&env.id, "anna").await.expect_status(200);
    assert_eq!(user["verified"], json!(false));
    assert_eq!(user["verified_by"], json!(null));
    assert_eq!(user["key_id"], json!(null));
    assert_eq!(user["verified_at"], json!(null));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enforcement_off_still_rejects_a_wrong_proof() {
    let s = Server::start().await;
    let env = s.env().await;
    s.identify(
        &env.pk,
        &json!({"user_id": "anna", "signature": corrupt(&env.sign("anna"))}),
    )
    .await
    .expect_error(401, "invalid_signature");
    let wrong_token = token(
        "a-secret-that-is-not-this-environments",
        None,
        &IdentityClaims::new("anna"),
    );
    s.identify(&env.pk, &json!({"user_id": "anna", "token": wrong_token}))
        .await
        .expect_error(401, "invalid_token");
    // Nothing was stored for the rejected calls.
    s.admin_user(&env.id, "anna")
        .await
        .expect_error(404, "not_found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enforce_rejects_every_unproven_identify() {
    let s = Server::start().await;
    let env = s.env_with(json!({"enforcement": "enforce"})).await;
    assert_eq!(env.created["enforcement"], json!("enforce"));
    let msg = s
        .identify(&env.pk, &json!({"user_id": "bob"}))
        .await
        .expect_error(401, "signature_required");
    assert!(msg.contains("signature"), "{msg}");
    // Signed attributes alone prove the attributes, not the user id: refused.
    let asig = vouch_core::proof::sign(
        &secret(&env.secret),
        br#"{"plan":"pro"}"#,
        vouch_core::SignatureEncoding::Hex,
    );
    s.identify(
        &env.pk,
        &json!({"user_id": "bob", "attributes": {"plan": "pro"}, "attributes_signature": asig}),
    )
    .await
    .expect_error(400, "invalid_request");
    s.admin_user(&env.id, "bob")
        .await
        .expect_error(404, "not_found");
    // With a signature or a token it passes.
    let out = s
        .identify_ok(
            &env.pk,
            &json!({"user_id": "bob", "signature": env.sign("bob")}),
        )
        .await;
    assert_eq!(out["user"]["verified"], json!(true));
    assert_eq!(out["user"]["verified_by"], json!("signature"));
    let t = token(&env.secret, None, &IdentityClaims::new("carol"));
    let out = s
        .identify_ok(&env.pk, &json!({"user_id": "carol", "token": t}))
        .await;
    assert_eq!(out["user"]["verified_by"], json!("token"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn switching_enforcement_on_takes_effect_at_once() {
    let s = Server::start().await;
    let env = s.env().await;
    let first = s.identify_ok(&env.pk, &json!({"user_id": "dave"})).await;
    let session = first["session_token"].as_str().unwrap().to_string();
    let patched = s
        .patch_env(&env.id, json!({"enforcement": "enforce"}))
        .await;
    assert_eq!(patched["enforcement"], json!("enforce"));
    assert_eq!(
        s.admin_get(&format!("/admin/v1/environments/{}", env.id))
            .await["enforcement"],
        json!("enforce")
    );
    s.identify(&env.pk, &json!({"user_id": "dave"}))
        .await
        .expect_error(401, "signature_required");
    s.identify(&env.pk, &json!({"user_id": "erin"}))
        .await
        .expect_error(401, "signature_required");
    // Unproven group calls are refused as well.
    s.group(&session, &json!({"company_id": "acme"}))
        .await
        .expect_error(401, "signature_required");
    // And back off.
    s.patch_env(&env.id, json!({"enforcement": "off"})).await;
    s.identify_ok(&env.pk, &json!({"user_id": "erin"})).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anonymous_sessions_follow_allow_anonymous() {
    let s = Server::start().await;
    let env = s.env().await;
    assert_eq!(env.created["allow_anonymous"], json!(true));
    let out = s.anonymous(&env.pk).await.expect_status(200);
    let token = out["session_token"].as_str().unwrap();
    let visitor = out["visitor_id"].as_str().unwrap();
    assert!(visitor.starts_with("vis_"), "{visitor}");
    assert!(out["expires_at"].as_str().unwrap().ends_with('Z'));
    let (header, claims) = jwt_parts(token);
    assert_eq!(header["alg"], json!("EdDSA"));
    assert_eq!(claims["aud"], json!(env.id));
    assert_eq!(claims["verified"], json!(false));
    // /v1/me of a visitor: no user.
    let me = s.me(token).await.expect_status(200);
    assert_eq!(me["user"], json!(null));
    // A visitor can track.
    s.track(token, &json!({"event": "page_view"}))
        .await
        .expect_status(202);
    // A verified-only widget.
    let strict = s.env_with(json!({"allow_anonymous": false})).await;
    let msg = s
        .anonymous(&strict.pk)
        .await
        .expect_error(403, "anonymous_not_allowed");
    assert!(!msg.is_empty());
    // PATCH flips it.
    s.patch_env(&strict.id, json!({"allow_anonymous": true}))
        .await;
    s.anonymous(&strict.pk).await.expect_status(200);
    s.patch_env(&env.id, json!({"allow_anonymous": false}))
        .await;
    s.anonymous(&env.pk)
        .await
        .expect_error(403, "anonymous_not_allowed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsigned_limit_counts_distinct_unverified_ids() {
    let s = Server::start().await;
    let env = s.env_with(json!({"unsigned_session_limit": 2})).await;
    assert_eq!(env.created["unsigned_session_limit"], json!(2));
    // Anonymous sessions do not count.
    for _ in 0..3 {
        s.anonymous(&env.pk).await.expect_status(200);
    }
    s.identify_ok(&env.pk, &json!({"user_id": "u1"})).await;
    s.identify_ok(&env.pk, &json!({"user_id": "u2"})).await;
    // The same ids again do not count twice.
    s.identify_ok(&env.pk, &json!({"user_id": "u1"})).await;
    s.identify_ok(&env.pk, &json!({"user_id": "u2", "attributes": {"a": 1}}))
        .await;
    // A third distinct unverified id is refused.
    let msg = s
        .identify(&env.pk, &json!({"user_id": "u3"}))
        .await
        .expect_error(403, "unsigned_limit_reached");
    assert!(msg.contains("signature"), "{msg}");
    s.admin_user(&env.id, "u3")
        .await
        .expect_error(404, "not_found");
    // Signed identifies still pass, and do not count.
    s.identify_ok(
        &env.pk,
        &json!({"user_id": "u3", "signature": env.sign("u3")}),
    )
    .await;
    s.identify_ok(
        &env.pk,
        &json!({"user_id": "u4", "signature": env.sign("u4")}),
    )
    .await;
    // Already counted ids still pass unsigned.
    s.identify_ok(&env.pk, &json!({"user_id": "u1"})).await;
    s.identify(&env.pk, &json!({"user_id": "u5"}))
        .await
        .expect_error(403, "unsigned_limit_reached");
    let e = s
        .admin_get(&format!("/admin/v1/environments/{}", env.id))
        .await;
    assert_eq!(e["unsigned_session_count"], json!(2));
    // Raising the limit lets the next id in; null removes it.
    s.patch_env(&env.id, json!({"unsigned_session_limit": 3}))
        .await;
    s.identify_ok(&env.pk, &json!({"user_id": "u5"})).await;
    s.identify(&env.pk, &json!({"user_id": "u6"}))
        .await
        .expect_error(403, "unsigned_limit_reached");
    let patched = s
        .patch_env(&env.id, json!({"unsigned_session_limit": null}))
        .await;
    assert_eq!(patched["unsigned_session_limit"], json!(null));
    s.identify_ok(&env.pk, &json!({"user_id": "u6"})).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn environment_settings_round_trip_through_the_admin_api() {
    let s = Server::start().await;
    let env = s
        .env_with(json!({
            "name": "Acme — production",
            "enforcement": "enforce",
            "allow_anonymous": false,
            "allowed_origins": ["https://app.acme.test"],
            "unsigned_session_limit": 10,
            "session_ttl_seconds": 600,
            "rate_limit_per_user": 5,
            "rate_limit_per_address": 50,
        }))
        .await;
    assert!(env.id.starts_with("env_"));
    assert!(env.pk.starts_with("pk_test_"));
    assert!(env.secret.starts_with("sk_test_"));
    assert!(env.key_id.starts_with("key_"));
    let got = s
        .admin_get(&format!("/admin/v1/environments/{}", env.id))
        .await;
    for (k, v) in [
        ("name", json!("Acme — production")),
        ("mode", json!("test")),
        ("publishable_key", json!(env.pk)),
        ("enforcement", json!("enforce")),
        ("allow_anonymous", json!(false)),
        ("allowed_origins", json!(["https://app.acme.test"])),
        ("unsigned_session_limit", json!(10)),
        ("session_ttl_seconds", json!(600)),
        ("rate_limit_per_user", json!(5)),
        ("rate_limit_per_address", json!(50)),
    ] {
        assert_eq!(got[k], v, "{k}");
    }
    assert!(got["created_at"].as_str().unwrap().ends_with('Z'));
    // The secret never shows in the environment object.
    assert!(!got.to_string().contains(&env.secret));
    // A live environment has live keys.
    let live = s.env_with(json!({"mode": "live"})).await;
    assert!(live.pk.starts_with("pk_live_"));
    assert!(live.secret.starts_with("sk_live_"));
    // Listed.
    let list = s.admin_get("/admin/v1/environments").await;
    let ids: Vec<&str> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["id"].as_str())
        .collect();
    assert!(ids.contains(&env.id.as_str()) && ids.contains(&live.id.as_str()));
    assert!(list.get("next_cursor").is_some());
    // Session TTL drives the session expiry.
    let out = s
        .identify_ok(
            &env.pk,
            &json!({"user_id": "u", "signature": env.sign("u")}),
        )
        .await;
    let (_, claims) = jwt_parts(out["session_token"].as_str().unwrap());
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        600
    );
    // Delete.
    s.admin(
        Method::DELETE,
        &format!("/admin/v1/environments/{}", live.id),
        None,
    )
    .await
    .expect_status(204);
    s.admin(
        Method::GET,
        &format!("/admin/v1/environments/{}", live.id),
        None,
    )
    .await
    .expect_error(404, "not_found");
}
