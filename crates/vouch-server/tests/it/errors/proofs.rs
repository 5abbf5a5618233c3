//! Proofs that fail: malformed and wrong signatures, invalid, replayed and expired
//! tokens, wrong or ambiguous attributes signatures, and the rate limits on failed proofs.

use crate::common::*;
use serde_json::json;
use vouch_core::IdentityClaims;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_signature_names_the_accepted_encodings() {
    let s = Server::start().await;
    let env = s.env().await;
    let sha1_like = "a".repeat(40);
    for sig in [
        "abc",
        sha1_like.as_str(),
        "zz".repeat(32).as_str(),
        "not a signature at all !!",
    ] {
        let msg = s
            .identify(&env.pk, &json!({"user_id": "1", "signature": sig}))
            .await
            .expect_error(400, "malformed_signature");
        assert!(
            msg.contains("hex") && msg.contains("base64"),
            "message should name the encodings: {msg}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_signature_has_the_exact_message() {
    let s = Server::start().await;
    let env = s.env().await;
    let other = s.env().await;
    let live = s.env_with(json!({"mode": "live"})).await;
    for sig in [other.sign("42"), env.sign("43"), corrupt(&env.sign("42"))] {
        // A live environment says nothing more, whatever the mistake.
        let msg = s
            .identify(&live.pk, &json!({"user_id": "42", "signature": sig}))
            .await
            .expect_error(401, "invalid_signature");
        assert_eq!(msg, INVALID_SIGNATURE_MESSAGE);
        // A test environment names the likely mistake after the same words.
        let msg = s
            .identify(&env.pk, &json!({"user_id": "42", "signature": sig}))
            .await
            .expect_error(401, "invalid_signature");
        assert!(msg.starts_with(INVALID_SIGNATURE_MESSAGE), "{msg}");
    }
    s.admin_user(&env.id, "42")
        .await
        .expect_error(404, "not_found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_tokens_are_invalid_token() {
    let s = Server::start().await;
    let env = s.env().await;
    let other = s.env().await;
    let claims = IdentityClaims::new("u1").with_expiry(now() + 600);
    // Signed with another environment's secret.
    let bad_sig = token(&other.secret, None, &claims);
    // For another user id.
    let wrong_sub = token(&env.secret, None, &IdentityClaims::new("u2"));
    // alg none, no signature.
    let b64 = |v: serde_json::Value| {
        use base64ct::{Base64UrlUnpadded, Encoding};
        Base64UrlUnpadded::encode_string(v.to_string().as_bytes())
    };
    let alg_none = format!(
        "{}.{}.",
        b64(json!({"alg": "none", "typ": "JWT"})),
        b64(json!({"sub": "u1"}))
    );
    let alg_none_sig = format!(
        "{}.{}.x",
        b64(json!({"alg": "none", "typ": "JWT"})),
        b64(json!({"sub": "u1"}))
    );
    // HS512 is not accepted either.
    let hs512 = {
        let key = jsonwebtoken::EncodingKey::from_secret(env.secret.as_bytes()).unwrap();
        jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS512),
            &json!({"sub": "u1"}),
            &key,
        )
        .unwrap()
    };
    // A kid that names no secret.
    let unknown_kid = token(&env.secret, Some("key_doesnotexist"), &claims);
    // Not yet valid (nbf far in the future).
    let mut future = IdentityClaims::new("u1");
    future.nbf = Some(now() + 3600);
    let not_yet = token(&env.secret, None, &future);
    for t in [
        bad_sig,
        wrong_sub,
        alg_none,
        alg_none_sig,
        hs512,
        unknown_kid,
        not_yet,
        "garbage".to_string(),
    ] {
        s.identify(&env.pk, &json!({"user_id": "u1", "token": t}))
            .await
            .expect_error(401, "invalid_token");
    }
    s.admin_user(&env.id, "u1")
        .await
        .expect_error(404, "not_found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replayed_jti_is_invalid_token() {
    let s = Server::start().await;
    let env = s.env().await;
    let mut claims = IdentityClaims::new("u1").with_expiry(now() + 600);
    claims.jti = Some("once-only-1".into());
    let t = token(&env.secret, None, &claims);
    let first = s
        .identify_ok(&env.pk, &json!({"user_id": "u1", "token": t}))
        .await;
    assert_eq!(first["user"]["verified_by"], json!("token"));
    let msg = s
        .identify(&env.pk, &json!({"user_id": "u1", "token": t}))
        .await
        .expect_error(401, "invalid_token");
    assert!(msg.contains("jti"), "{msg}");
    // Another jti is fine.
    claims.jti = Some("once-only-2".into());
    let t2 = token(&env.secret, None, &claims);
    s.identify_ok(&env.pk, &json!({"user_id": "u1", "token": t2}))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_token_is_token_expired_with_60s_leeway() {
    let s = Server::start().await;
    let env = s.env().await;
    let old = token(
        &env.secret,
        None,
        &IdentityClaims::new("u1").with_expiry(now() - 120),
    );
    s.identify(&env.pk, &json!({"user_id": "u1", "token": old}))
        .await
        .expect_error(401, "token_expired");
    // Within the leeway it is still accepted.
    let recent = token(
        &env.secret,
        None,
        &IdentityClaims::new("u1").with_expiry(now() - 20),
    );
    s.identify_ok(&env.pk, &json!({"user_id": "u1", "token": recent}))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_attributes_signature_is_invalid_attributes_signature() {
    let s = Server::start().await;
    let env = s.env().await;
    let attrs = json!({"plan": "pro"});
    // Signed over other attributes.
    let sig = vouch_core::proof::sign(
        &secret(&env.secret),
        br#"{"plan":"enterprise"}"#,
        vouch_core::SignatureEncoding::Hex,
    );
    s.identify(
        &env.pk,
        &json!({"user_id": "u1", "signature": env.sign("u1"), "attributes": attrs, "attributes_signature": sig}),
    )
    .await
    .expect_error(401, "invalid_attributes_signature");
    // Malformed attributes signature.
    s.identify(
        &env.pk,
        &json!({"user_id": "u1", "signature": env.sign("u1"), "attributes": attrs, "attributes_signature": "xyz"}),
    )
    .await
    .expect_error(400, "malformed_signature");
    // An attributes signature without attributes.
    s.identify(
        &env.pk,
        &json!({"user_id": "u1", "signature": env.sign("u1"), "attributes_signature": sig}),
    )
    .await
    .expect_error(400, "invalid_request");
    s.admin_user(&env.id, "u1")
        .await
        .expect_error(404, "not_found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ambiguous_signed_attributes_are_invalid_request() {
    let s = Server::start().await;
    let env = s.env().await;
    let sig = env.sign("anything");
    // Duplicate keys.
    let dup = format!(
        r#"{{"user_id":"u1","attributes":{{"a":1,"a":2}},"attributes_signature":"{sig}"}}"#
    );
    s.post_raw("/v1/identify", Some(&env.pk), "application/json", dup)
        .await
        .expect_error(400, "invalid_request");
    // An integer beyond 2^53.
    let big = format!(
        r#"{{"user_id":"u1","attributes":{{"n":9007199254740993}},"attributes_signature":"{sig}"}}"#
    );
    s.post_raw("/v1/identify", Some(&env.pk), "application/json", big)
        .await
        .expect_error(400, "invalid_request");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_failed_signatures_for_a_user_id_are_rate_limited() {
    let s = Server::start().await;
    let env = s.env().await;
    avoid_minute_boundary(20).await;
    let wrong = sign_hex("not-the-secret-not-the-secret", "victim");
    // The default: 10 failures a minute per user id.
    for _ in 0..10 {
        s.identify(&env.pk, &json!({"user_id": "victim", "signature": wrong}))
            .await
            .expect_error(401, "invalid_signature");
    }
    let r = s
        .identify(&env.pk, &json!({"user_id": "victim", "signature": wrong}))
        .await;
    r.expect_error(429, "rate_limited");
    let retry: u64 = r
        .header("retry-after")
        .expect("Retry-After header")
        .parse()
        .expect("Retry-After in seconds");
    assert!((1..=60).contains(&retry), "Retry-After {retry}");
    // The right signature is still accepted: a limit never refuses a valid proof.
    s.identify_ok(
        &env.pk,
        &json!({"user_id": "victim", "signature": env.sign("victim")}),
    )
    .await;
    // Other user ids are not affected.
    s.identify_ok(
        &env.pk,
        &json!({"user_id": "bystander", "signature": env.sign("bystander")}),
    )
    .await;
    // The audit log recorded the failures with a diagnosis.
    let audit = s.audit(&env.id).await;
    let rejected = audit
        .iter()
        .filter(|a| a["kind"] == "identity.rejected" && a["user_id"] == "victim")
        .count();
    assert!(rejected >= 10, "{rejected} rejections audited");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_verifications_per_client_address_are_rate_limited() {
    let s = Server::start().await;
    let env = s
        .env_with(json!({"rate_limit_per_address": 4, "rate_limit_per_user": 100}))
        .await;
    avoid_minute_boundary(20).await;
    let wrong = sign_hex("not-the-secret-not-the-secret", "x");
    for i in 0..4 {
        s.identify(
            &env.pk,
            &json!({"user_id": format!("user-{i}"), "signature": wrong}),
        )
        .await
        .expect_error(401, "invalid_signature");
    }
    let r = s
        .identify(&env.pk, &json!({"user_id": "user-new", "signature": wrong}))
        .await;
    r.expect_error(429, "rate_limited");
    assert!(r.header("retry-after").is_some());
}
