//! The identity binding rules of docs/api.md, where existing products leak.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common::*;
use serde_json::{Value, json};
use vouch_core::{IdentityClaims, SignatureEncoding};

fn session(v: &Value) -> String {
    v["session_token"]
        .as_str()
        .expect("session_token")
        .to_string()
}

fn attributes_signature(secret_value: &str, canonical: &str) -> String {
    vouch_core::proof::sign(
        &secret(secret_value),
        canonical.as_bytes(),
        SignatureEncoding::Hex,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_is_bound_to_the_user_it_was_opened_for() {
    let s = Server::start().await;
    let env = s.env().await;
    let a = s
        .identify_ok(
            &env.pk,
            &json!({"user_id": "alice", "signature": env.sign("alice")}),
        )
        .await;
    let b = s
        .identify_ok(
            &env.pk,
            &json!({"user_id": "bob", "signature": env.sign("bob")}),
        )
        .await;
    let (ta, tb) = (session(&a), session(&b));
    assert_ne!(ta, tb, "identifying someone else opens a new session");
    assert_eq!(jwt_parts(&ta).1["sub"], json!("alice"));
    assert_eq!(jwt_parts(&tb).1["sub"], json!("bob"));
    let me_a = s.me(&ta).await.expect_status(200);
    assert_eq!(me_a["user"]["id"], json!("alice"));
    assert_eq!(me_a["user"]["verified"], json!(true));
    assert_eq!(
        s.me(&tb).await.expect_status(200)["user"]["id"],
        json!("bob")
    );
    // A body naming another user changes nothing: track and group act for the session's user.
    s.track(
        &ta,
        &json!({"event": "clicked", "properties": {"user_id": "bob"}}),
    )
    .await
    .expect_status(202);
    let ev = s
        .admin_get(&format!(
            "/admin/v1/environments/{}/events?user_id=alice",
            env.id
        ))
        .await;
    assert_eq!(ev["data"].as_array().unwrap().len(), 1);
    assert_eq!(ev["data"][0]["user_id"], json!("alice"));
    let ev_b = s
        .admin_get(&format!(
            "/admin/v1/environments/{}/events?user_id=bob",
            env.id
        ))
        .await;
    assert!(ev_b["data"].as_array().unwrap().is_empty());
    // After bob's identify, alice's session still reads alice.
    assert_eq!(
        s.me(&ta).await.expect_status(200)["user"]["id"],
        json!("alice")
    );
    // A visitor session stays a visitor after an identify elsewhere.
    let anon = s.anonymous(&env.pk).await.expect_status(200);
    let tv = session(&anon);
    s.identify_ok(&env.pk, &json!({"user_id": "carol"})).await;
    assert_eq!(s.me(&tv).await.expect_status(200)["user"], json!(null));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn once_verified_user_needs_proof_forever() {
    let s = Server::start().await;
    let env = s.env().await;
    assert_eq!(env.created["enforcement"], json!("off"));
    s.identify_ok(
        &env.pk,
        &json!({"user_id": "42", "signature": env.sign("42")}),
    )
    .await;
    // Enforcement is off, yet an unproven identify can neither read nor change user 42.
    let r = s
        .identify(
            &env.pk,
            &json!({"user_id": "42", "attributes": {"email": "attacker@evil.test"}}),
        )
        .await;
    r.expect_error(401, "signature_required");
    assert!(r.body.get("session_token").is_none());
    assert!(!r.text.contains("session_token"));
    let user = s.admin_user(&env.id, "42").await.expect_status(200);
    assert_eq!(user["attributes"].get("email"), None);
    assert_eq!(user["verified"], json!(true));
    assert_eq!(user["verified_by"], json!("signature"));
    assert_eq!(user["key_id"], json!(env.key_id));
    assert!(user["verified_at"].as_str().unwrap().ends_with('Z'));
    // Signed attributes alone are not a proof of the id: refused outright.
    let asig = attributes_signature(&env.secret, r#"{"plan":"x"}"#);
    s.identify(
        &env.pk,
        &json!({"user_id": "42", "attributes": {"plan": "x"}, "attributes_signature": asig}),
    )
    .await
    .expect_error(400, "invalid_request");
    // A token proves it too.
    let t = token(&env.secret, Some(&env.key_id), &IdentityClaims::new("42"));
    let out = s
        .identify_ok(&env.pk, &json!({"user_id": "42", "token": t}))
        .await;
    assert_eq!(out["user"]["verified_by"], json!("token"));
    // Still needs proof after the secret that verified it is rotated away.
    s.admin(
        reqwest::Method::POST,
        &format!("/admin/v1/environments/{}/secrets", env.id),
        Some(&json!({"rotate": true, "grace_seconds": 0})),
    )
    .await
    .expect_status(201);
    s.identify(&env.pk, &json!({"user_id": "42"}))
        .await
        .expect_error(401, "signature_required");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unverified_session_cannot_read_a_user_verified_later() {
    let s = Server::start().await;
    let env = s.env().await;
    // An attacker opens an unproven session for user 7 before the real user shows up.
    let early = s
        .identify_ok(
            &env.pk,
            &json!({"user_id": "7", "attributes": {"name": "Eve"}}),
        )
        .await;
    let t_early = session(&early);
    assert_eq!(
        s.me(&t_early).await.expect_status(200)["user"]["id"],
        json!("7")
    );
    // The real user 7 is then verified, with private attributes.
    let asig = attributes_signature(&env.secret, r#"{"email":"seven@corp.test"}"#);
    s.identify_ok(
        &env.pk,
        &json!({"user_id": "7", "signature": env.sign("7"),
                "attributes": {"email": "seven@corp.test"}, "attributes_signature": asig}),
    )
    .await;
    // The early unverified session can no longer read or act for user 7.
    let r = s.me(&t_early).await;
    r.expect_error(401, "signature_required");
    assert!(!r.text.contains("seven@corp.test"));
    s.track(&t_early, &json!({"event": "spoofed"}))
        .await
        .expect_error(401, "signature_required");
    s.group(&t_early, &json!({"company_id": "acme"}))
        .await
        .expect_error(401, "signature_required");
    let ev = s
        .admin_get(&format!("/admin/v1/environments/{}/events", env.id))
        .await;
    assert!(
        ev["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["event"] != "spoofed"),
        "no event was recorded for the unverified session"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verified_attributes_are_locked_and_ignored_keys_listed() {
    let s = Server::start().await;
    let env = s.env().await;
    let asig = attributes_signature(&env.secret, r#"{"name":"Ann","plan":"pro"}"#);
    let first = s
        .identify_ok(
            &env.pk,
            &json!({"user_id": "ann", "signature": env.sign("ann"),
                    "attributes": {"plan": "pro", "name": "Ann"}, "attributes_signature": asig}),
        )
        .await;
    assert_eq!(
        first["user"]["verified_attributes"],
        json!({"plan": "pro", "name": "Ann"})
    );
    assert!(
        first
            .get("ignored_attributes")
            .is_none_or(|v| v == &json!([]))
    );
    // A later proven identify with unproven attributes: the call succeeds, locked keys stay.
    let second = s
        .identify_ok(
            &env.pk,
            &json!({"user_id": "ann", "signature": env.sign("ann"),
                    "attributes": {"plan": "enterprise", "name": "Ann", "city": "Oslo"}}),
        )
        .await;
    assert_eq!(second["ignored_attributes"], json!(["plan"]));
    assert_eq!(second["user"]["attributes"]["plan"], json!("pro"));
    assert_eq!(second["user"]["attributes"]["city"], json!("Oslo"));
    assert_eq!(second["user"]["verified_attributes"]["plan"], json!("pro"));
    assert!(second["user"]["verified_attributes"].get("city").is_none());
    let stored = s.admin_user(&env.id, "ann").await.expect_status(200);
    assert_eq!(stored["attributes"]["plan"], json!("pro"));
    assert_eq!(
        stored["verified_attributes"],
        json!({"plan": "pro", "name": "Ann"})
    );
    // A token's attributes claim locks attributes the same way.
    let mut claims = IdentityClaims::new("tom");
    claims.attributes = Some(json!({"role": "admin"}).as_object().cloned().unwrap());
    let t = token(&env.secret, None, &claims);
    let out = s
        .identify_ok(&env.pk, &json!({"user_id": "tom", "token": t}))
        .await;
    assert_eq!(out["user"]["verified_attributes"], json!({"role": "admin"}));
    let again = s
        .identify_ok(
            &env.pk,
            &json!({"user_id": "tom", "signature": env.sign("tom"), "attributes": {"role": "owner"}}),
        )
        .await;
    assert_eq!(again["ignored_attributes"], json!(["role"]));
    assert_eq!(again["user"]["attributes"]["role"], json!("admin"));
    // A new signed value replaces a locked one.
    let asig2 = attributes_signature(&env.secret, r#"{"plan":"enterprise"}"#);
    let third = s
        .identify_ok(
            &env.pk,
            &json!({"user_id": "ann", "signature": env.sign("ann"),
                    "attributes": {"plan": "enterprise"}, "attributes_signature": asig2}),
        )
        .await;
    assert_eq!(
        third["user"]["verified_attributes"]["plan"],
        json!("enterprise")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_attributes_cannot_be_replayed_onto_another_user() {
    let s = Server::start().await;
    let env = s.env().await;
    // Mallory's own attributes, legitimately signed by the customer's backend
    // for Mallory's session, replayed with Alice's user id and no id proof.
    let mallory = r#"{"email":"mallory@evil.test"}"#;
    let asig = attributes_signature(&env.secret, mallory);
    let r = s
        .identify(
            &env.pk,
            &json!({"user_id": "alice", "attributes": {"email": "mallory@evil.test"}, "attributes_signature": asig}),
        )
        .await;
    let message = r.expect_error(400, "invalid_request");
    assert!(
        message.contains("needs a `signature` or `token`"),
        "{message}"
    );
    s.admin_user(&env.id, "alice").await.expect_status(404);
    // Alice signs in for real: her own email is stored, nothing is locked against her.
    let out = s
        .identify_ok(
            &env.pk,
            &json!({"user_id": "alice", "signature": env.sign("alice"), "attributes": {"email": "alice@example.test"}}),
        )
        .await;
    assert_eq!(
        out["user"]["attributes"]["email"],
        json!("alice@example.test")
    );
    assert_eq!(out.get("ignored_attributes"), None);
    // With the id proven in the same call, signed attributes are verified and locked.
    let real = r#"{"email":"alice@example.test"}"#;
    let out = s
        .identify_ok(
            &env.pk,
            &json!({"user_id": "alice", "signature": env.sign("alice"), "attributes": {"email": "alice@example.test"}, "attributes_signature": attributes_signature(&env.secret, real)}),
        )
        .await;
    assert_eq!(
        out["user"]["verified_attributes"],
        json!({"email": "alice@example.test"})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_are_never_merged_by_email_or_phone() {
    let s = Server::start().await;
    let env = s.env().await;
    let shared = json!({"email": "same@example.test", "phone": "+4712345678"});
    s.identify_ok(
        &env.pk,
        &json!({"user_id": "u-1", "signature": env.sign("u-1"), "attributes": shared}),
    )
    .await;
    let b = s
        .identify_ok(&env.pk, &json!({"user_id": "u-2", "attributes": shared}))
        .await;
    // The unverified twin is its own user: not verified, not u-1.
    assert_eq!(b["user"]["id"], json!("u-2"));
    assert_eq!(b["user"]["verified"], json!(false));
    assert_eq!(
        s.me(&session(&b)).await.expect_status(200)["user"]["id"],
        json!("u-2")
    );
    let list = s
        .admin_get(&format!("/admin/v1/environments/{}/users", env.id))
        .await;
    let ids: Vec<&str> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|u| u["id"].as_str())
        .collect();
    assert_eq!(ids, ["u-1", "u-2"]);
    let u1 = s.admin_user(&env.id, "u-1").await.expect_status(200);
    assert_eq!(u1["verified"], json!(true));
    let u2 = s.admin_user(&env.id, "u-2").await.expect_status(200);
    assert_eq!(u2["verified"], json!(false));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_with_jti_is_accepted_once() {
    let s = Server::start().await;
    let env = s.env().await;
    let mut claims = IdentityClaims::new("j1").with_expiry(now() + 300);
    claims.jti = Some("jti-abc".into());
    let t = token(&env.secret, Some(&env.key_id), &claims);
    s.identify_ok(&env.pk, &json!({"user_id": "j1", "token": t}))
        .await;
    s.identify(&env.pk, &json!({"user_id": "j1", "token": t}))
        .await
        .expect_error(401, "invalid_token");
    // The same jti in another environment is that environment's business.
    let other = s.env().await;
    let t_other = token(&other.secret, None, &claims);
    s.identify_ok(&other.pk, &json!({"user_id": "j1", "token": t_other}))
        .await;
    // A token without jti can be reused until it expires.
    let plain = token(
        &env.secret,
        None,
        &IdentityClaims::new("j1").with_expiry(now() + 300),
    );
    s.identify_ok(&env.pk, &json!({"user_id": "j1", "token": plain}))
        .await;
    s.identify_ok(&env.pk, &json!({"user_id": "j1", "token": plain}))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verified_state_says_how_with_which_key_and_when() {
    let s = Server::start().await;
    let env = s.env().await;
    let before = now();
    let out = s
        .identify_ok(
            &env.pk,
            &json!({"user_id": "h1", "signature": env.sign("h1")}),
        )
        .await;
    let (_, claims) = jwt_parts(&session(&out));
    assert_eq!(claims["verified"], json!(true));
    let u = s.admin_user(&env.id, "h1").await.expect_status(200);
    assert_eq!(u["verified_by"], json!("signature"));
    assert_eq!(u["key_id"], json!(env.key_id));
    let at = u["verified_at"].as_str().unwrap();
    let parsed = time::OffsetDateTime::parse(at, &time::format_description::well_known::Rfc3339)
        .unwrap()
        .unix_timestamp();
    assert!((before - 1..=now() + 1).contains(&parsed), "{at}");
    let me = s.me(&session(&out)).await.expect_status(200);
    assert_eq!(me["user"]["verified_by"], json!("signature"));
    assert_eq!(me["user"]["key_id"], json!(env.key_id));
}
