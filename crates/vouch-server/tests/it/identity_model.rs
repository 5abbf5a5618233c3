//! The identity model's holes, each reproduced as the attack that worked, now
//! refused: sessions that outlived a change of the environment, memberships
//! that survived a company's verification, and the answers that say why.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use crate::common::*;
use reqwest::Method;
use serde_json::{Value, json};

/// A verified user's session, and an unverified and an anonymous one.
async fn sessions(s: &Server, env: &Env) -> (String, String, String) {
    let verified = s
        .identify_ok(
            &env.pk,
            &json!({"user_id": "v", "signature": env.sign("v")}),
        )
        .await["session_token"]
        .as_str()
        .unwrap()
        .to_string();
    let unverified = s.identify_ok(&env.pk, &json!({"user_id": "u"})).await["session_token"]
        .as_str()
        .unwrap()
        .to_string();
    let anonymous = s.anonymous(&env.pk).await.expect_status(200)["session_token"]
        .as_str()
        .unwrap()
        .to_string();
    (verified, unverified, anonymous)
}

/// Every session call a widget makes, with this session: all must answer `status code`.
async fn refused_everywhere(s: &Server, session: &str, status: u16, code: &str) {
    s.me(session).await.expect_error(status, code);
    s.track(session, &json!({"event": "opened"}))
        .await
        .expect_error(status, code);
    s.group(session, &json!({"company_id": "acme"}))
        .await
        .expect_error(status, code);
}

/// Waits (at most 1 s) for the session to be refused with `code`; how long it took.
async fn refused_within_a_second(s: &Server, session: &str, code: &str) -> Duration {
    let start = Instant::now();
    loop {
        let r = s.me(session).await;
        if r.body["error"]["code"] == code {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < Duration::from_secs(1),
            "still {} after 1 s: {}",
            r.status,
            r.text
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn turning_enforcement_on_refuses_sessions_opened_before() {
    let s = Server::start().await;
    let env = s.env().await;
    let (verified, unverified, anonymous) = sessions(&s, &env).await;
    s.me(&unverified).await.expect_status(200);
    s.patch_env(&env.id, json!({"enforcement": "enforce"}))
        .await;
    refused_within_a_second(&s, &unverified, "signature_required").await;
    refused_everywhere(&s, &unverified, 401, "signature_required").await;
    // Proven and visitor sessions are untouched.
    s.me(&verified).await.expect_status(200);
    s.me(&anonymous).await.expect_status(200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disallowing_anonymous_visitors_refuses_their_sessions() {
    let s = Server::start().await;
    let env = s.env().await;
    let (verified, _, anonymous) = sessions(&s, &env).await;
    s.patch_env(&env.id, json!({"allow_anonymous": false}))
        .await;
    refused_within_a_second(&s, &anonymous, "anonymous_not_allowed").await;
    s.track(&anonymous, &json!({"event": "opened"}))
        .await
        .expect_error(403, "anonymous_not_allowed");
    s.me(&verified).await.expect_status(200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_dies_with_the_secret_that_proved_it() {
    let s = Server::start().await;
    let env = s.env().await;
    let (verified, unverified, _) = sessions(&s, &env).await;
    let claims = jwt_parts(&verified).1;
    assert_eq!(claims["key_id"], json!(env.key_id));
    assert_eq!(jwt_parts(&unverified).1["key_id"], Value::Null);
    // A second secret, then the first revoked (as an exposed one would be).
    let second = s
        .admin(
            Method::POST,
            &format!("/admin/v1/environments/{}/secrets", env.id),
            Some(&json!({})),
        )
        .await
        .expect_status(201);
    s.admin(
        Method::DELETE,
        &format!("/admin/v1/environments/{}/secrets/{}", env.id, env.key_id),
        None,
    )
    .await
    .expect_status(200);
    let msg = s.me(&verified).await.expect_error(401, "session_expired");
    assert!(msg.contains("identify again"), "{msg}");
    refused_everywhere(&s, &verified, 401, "session_expired").await;
    // Unverified sessions were not proven by it.
    s.me(&unverified).await.expect_status(200);
    // Identifying again with the new secret gives a working session.
    let fresh = s
        .identify_ok(
            &env.pk,
            &json!({"user_id": "v", "signature": sign_hex(second["value"].as_str().unwrap(), "v")}),
        )
        .await;
    s.me(fresh["session_token"].as_str().unwrap())
        .await
        .expect_status(200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_proven_by_a_secret_past_its_grace_period_is_refused() {
    let s = Server::start().await;
    let env = s.env().await;
    let (verified, _, _) = sessions(&s, &env).await;
    // Long enough that a loaded machine answers the first check inside it.
    let grace = Duration::from_secs(3);
    let rotated = Instant::now();
    s.admin(
        Method::POST,
        &format!("/admin/v1/environments/{}/secrets", env.id),
        Some(&json!({"rotate": true, "grace_seconds": grace.as_secs()})),
    )
    .await
    .expect_status(201);
    let answered = Instant::now();
    s.me(&verified).await.expect_status(200);
    assert!(
        rotated.elapsed() < grace,
        "the check inside the grace period came too late"
    );
    let past_grace = grace + Duration::from_millis(1100);
    tokio::time::sleep(past_grace.saturating_sub(answered.elapsed())).await;
    s.me(&verified).await.expect_error(401, "session_expired");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoking_the_sessions_of_an_environment_refuses_every_one_issued_before() {
    let s = Server::start().await;
    let env = s.env().await;
    let other = s.env().await;
    let (verified, unverified, anonymous) = sessions(&s, &env).await;
    let elsewhere = sessions(&s, &other).await.0;
    let started = Instant::now();
    let out = s
        .admin(
            Method::POST,
            &format!("/admin/v1/environments/{}/sessions/revoke", env.id),
            None,
        )
        .await
        .expect_status(200);
    assert!(started.elapsed() < Duration::from_millis(1500));
    assert!(out["revoked_before"].as_str().unwrap().ends_with('Z'));
    for session in [&verified, &unverified, &anonymous] {
        refused_everywhere(&s, session, 401, "session_expired").await;
    }
    // Another environment's sessions are not touched.
    s.me(&elsewhere).await.expect_status(200);
    // A session issued right after the answer works.
    let fresh = s
        .identify_ok(
            &env.pk,
            &json!({"user_id": "v", "signature": env.sign("v")}),
        )
        .await;
    s.me(fresh["session_token"].as_str().unwrap())
        .await
        .expect_status(200);
    // Audited, naming the acting token.
    let audit = s.audit(&env.id).await;
    let entry = audit
        .iter()
        .find(|a| a["kind"] == "sessions.revoked")
        .unwrap();
    assert!(
        entry["actor"].as_str().unwrap().starts_with("tok_"),
        "{entry}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_erased_users_sessions_are_refused_and_its_data_is_gone() {
    let s = Server::start().await;
    let env = s.env().await;
    let out = s
        .identify_ok(
            &env.pk,
            &json!({"user_id": "gone", "signature": env.sign("gone"), "attributes": {"email": "g@example.test"}}),
        )
        .await;
    let session = out["session_token"].as_str().unwrap().to_string();
    s.track(&session, &json!({"event": "opened"}))
        .await
        .expect_status(202);
    s.admin(
        Method::DELETE,
        &format!("/admin/v1/environments/{}/users/gone", env.id),
        None,
    )
    .await
    .expect_status(204);
    refused_everywhere(&s, &session, 401, "session_expired").await;
    s.admin_user(&env.id, "gone")
        .await
        .expect_error(404, "not_found");
    let events = s
        .admin_get(&format!(
            "/admin/v1/environments/{}/events?user_id=gone",
            env.id
        ))
        .await;
    assert_eq!(events["data"], json!([]));
    // The audit entry names the user, never its attributes.
    let audit = s.audit(&env.id).await;
    let entry = audit.iter().find(|a| a["kind"] == "user.deleted").unwrap();
    assert_eq!(entry["user_id"], "gone");
    assert!(!entry.to_string().contains("g@example.test"), "{entry}");
    // Deleting it again: 404. The user can come back as a new user.
    s.admin(
        Method::DELETE,
        &format!("/admin/v1/environments/{}/users/gone", env.id),
        None,
    )
    .await
    .expect_error(404, "not_found");
    let back = s
        .identify_ok(
            &env.pk,
            &json!({"user_id": "gone", "signature": env.sign("gone")}),
        )
        .await;
    assert_eq!(back["user"]["attributes"], json!({}));
    s.me(back["session_token"].as_str().unwrap())
        .await
        .expect_status(200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unproven_membership_is_dropped_when_the_company_is_verified() {
    let s = Server::start().await;
    let env = s.env().await;
    // Mallory joins acme while acme is unverified, without its signature.
    let mallory = s
        .identify_ok(
            &env.pk,
            &json!({"user_id": "mallory", "signature": env.sign("mallory")}),
        )
        .await["session_token"]
        .as_str()
        .unwrap()
        .to_string();
    s.group(
        &mallory,
        &json!({"company_id": "acme", "attributes": {"name": "ACME?"}}),
    )
    .await
    .expect_status(200);
    let me = s.me(&mallory).await.expect_status(200);
    assert_eq!(me["user"]["companies"][0]["id"], "acme");
    // The real acme is verified by Alice's call, with its secret attributes.
    let alice = s
        .identify_ok(
            &env.pk,
            &json!({"user_id": "alice", "signature": env.sign("alice")}),
        )
        .await["session_token"]
        .as_str()
        .unwrap()
        .to_string();
    let verified = s
        .group(
            &alice,
            &json!({"company_id": "acme", "signature": env.sign("acme"), "attributes": {"plan": "enterprise", "mrr": 90000}}),
        )
        .await
        .expect_status(200);
    assert_eq!(verified["company"]["verified"], true);
    // Mallory reads nothing of it any more.
    let me = s.me(&mallory).await.expect_status(200);
    assert_eq!(me["user"]["companies"], json!([]), "{me}");
    assert!(!me.to_string().contains("90000"));
    let admin = s.admin_user(&env.id, "mallory").await.expect_status(200);
    assert_eq!(admin["companies"], json!([]));
    // And cannot join again without the company's signature.
    s.group(&mallory, &json!({"company_id": "acme"}))
        .await
        .expect_error(401, "signature_required");
    // Alice's proven membership shows the verified company.
    let me = s.me(&alice).await.expect_status(200);
    assert_eq!(me["user"]["companies"][0]["attributes"]["mrr"], 90000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_environment_without_an_active_secret_says_so() {
    let s = Server::start().await;
    let env = s.env().await;
    s.admin(
        Method::DELETE,
        &format!("/admin/v1/environments/{}/secrets/{}", env.id, env.key_id),
        None,
    )
    .await
    .expect_status(200);
    let msg = s
        .identify(
            &env.pk,
            &json!({"user_id": "42", "signature": env.sign("42")}),
        )
        .await
        .expect_error(401, "invalid_signature");
    assert!(msg.starts_with(INVALID_SIGNATURE_MESSAGE), "{msg}");
    assert!(msg.contains("no active identity secret"), "{msg}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_test_environments_401_names_the_likely_mistake_and_a_live_one_does_not() {
    let s = Server::start().await;
    let test = s.env().await;
    let live = s.env_with(json!({"mode": "live"})).await;
    // The customer signed the id with a trailing newline (echo without -n).
    for (env, specific) in [(&test, true), (&live, false)] {
        let sig = env.sign("42\n");
        let msg = s
            .identify(&env.pk, &json!({"user_id": "42", "signature": sig}))
            .await
            .expect_error(401, "invalid_signature");
        if specific {
            assert!(msg.starts_with(INVALID_SIGNATURE_MESSAGE), "{msg}");
            assert!(msg.len() > INVALID_SIGNATURE_MESSAGE.len() + 10, "{msg}");
            assert!(
                msg.to_lowercase().contains("whitespace") || msg.contains("newline"),
                "{msg}"
            );
        } else {
            assert_eq!(msg, INVALID_SIGNATURE_MESSAGE);
        }
        // Both audit the diagnosis.
        let audit = s.audit(&env.id).await;
        let entry = audit
            .iter()
            .find(|a| a["kind"] == "identity.rejected")
            .unwrap();
        assert_eq!(
            entry["detail"]["cause"], "surrounding_whitespace",
            "{entry}"
        );
    }
}
