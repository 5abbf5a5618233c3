//! Every error code of docs/api.md's table that bad input can produce, each as
//! `{"error": {"code", "message"}}` JSON — never axum's plain text, never a 5xx.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common::*;
use reqwest::Method;
use serde_json::json;
use vouch_core::IdentityClaims;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_json_is_invalid_request() {
    let s = Server::start().await;
    let env = s.env().await;
    for body in ["{\"user_id\": ", "not json", "{\"user_id\": \"1\",}", ""] {
        let r = s
            .post_raw("/v1/identify", Some(&env.pk), "application/json", body)
            .await;
        r.expect_error(400, "invalid_request");
    }
    // A JSON value that is not an object.
    let r = s
        .post_raw("/v1/identify", Some(&env.pk), "application/json", "[1,2]")
        .await;
    r.expect_error(400, "invalid_request");
    // Admin API too.
    let r = s
        .request(
            Method::POST,
            "/admin/v1/environments",
            Some(ADMIN_TOKEN),
            &[],
            Some(("application/json", b"{\"name\":".to_vec())),
        )
        .await;
    r.expect_error(400, "invalid_request");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_types_and_missing_fields_are_invalid_request() {
    let s = Server::start().await;
    let env = s.env().await;
    for body in [
        json!({"user_id": 42}),
        json!({"user_id": null}),
        json!({"user_id": ["1"]}),
        json!({}),
        json!({"attributes": {"a": 1}}),
        json!({"user_id": "1", "attributes": "plan=pro"}),
        json!({"user_id": "1", "attributes": [1, 2]}),
        json!({"user_id": "1", "signature": 12345}),
        json!({"user_id": "1", "token": true}),
    ] {
        let r = s.identify(&env.pk, &body).await;
        let msg = r.expect_error(400, "invalid_request");
        assert!(!msg.is_empty());
    }
    let me = s.identify_ok(&env.pk, &json!({"user_id": "u"})).await;
    let token = me["session_token"].as_str().unwrap();
    s.track(token, &json!({"properties": {}}))
        .await
        .expect_error(400, "invalid_request");
    s.track(token, &json!({"event": 5}))
        .await
        .expect_error(400, "invalid_request");
    s.track(token, &json!({"event": ""}))
        .await
        .expect_error(400, "invalid_request");
    s.group(token, &json!({"company_id": 7}))
        .await
        .expect_error(400, "invalid_request");
    // Admin settings of the wrong type.
    s.admin(
        Method::PATCH,
        &format!("/admin/v1/environments/{}", env.id),
        Some(&json!({"unsigned_session_limit": -1})),
    )
    .await
    .expect_error(400, "invalid_request");
    s.admin(
        Method::PATCH,
        &format!("/admin/v1/environments/{}", env.id),
        Some(&json!({"enforcement": "sometimes"})),
    )
    .await
    .expect_error(400, "invalid_request");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_id_must_be_1_to_255_bytes_taken_byte_for_byte() {
    let s = Server::start().await;
    let env = s.env().await;
    s.identify(&env.pk, &json!({"user_id": ""}))
        .await
        .expect_error(400, "invalid_request");
    let long = "a".repeat(256);
    let msg = s
        .identify(&env.pk, &json!({"user_id": long}))
        .await
        .expect_error(400, "invalid_request");
    assert!(msg.contains("255"), "{msg}");
    // 256 bytes made of 2-byte characters: 128 chars, still too long.
    let wide = "é".repeat(128);
    s.identify(&env.pk, &json!({"user_id": wide}))
        .await
        .expect_error(400, "invalid_request");
    // Exactly 255 bytes is fine, with a signature over exactly those bytes.
    let max = format!("{}a", "é".repeat(127));
    assert_eq!(max.len(), 255);
    let out = s
        .identify_ok(
            &env.pk,
            &json!({"user_id": max, "signature": env.sign(&max)}),
        )
        .await;
    assert_eq!(out["user"]["id"], json!(max));
    assert_eq!(out["user"]["verified"], json!(true));
    // No trimming: " 42" is not "42", so the signature of "42" does not prove it.
    s.identify(
        &env.pk,
        &json!({"user_id": " 42", "signature": env.sign("42")}),
    )
    .await
    .expect_error(401, "invalid_signature");
    let spaced = s.identify_ok(&env.pk, &json!({"user_id": "42 "})).await;
    assert_eq!(spaced["user"]["id"], json!("42 "));
    s.admin_user(&env.id, "42 ").await.expect_status(200);
    s.admin_user(&env.id, "42")
        .await
        .expect_error(404, "not_found");
    // Company ids follow the same rule.
    let token = spaced["session_token"].as_str().unwrap();
    s.group(token, &json!({"company_id": ""}))
        .await
        .expect_error(400, "invalid_request");
    s.group(token, &json!({"company_id": "c".repeat(256)}))
        .await
        .expect_error(400, "invalid_request");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signature_and_token_together_is_invalid_request() {
    let s = Server::start().await;
    let env = s.env().await;
    let tok = token(&env.secret, None, &IdentityClaims::new("7"));
    let msg = s
        .identify(
            &env.pk,
            &json!({"user_id": "7", "signature": env.sign("7"), "token": tok}),
        )
        .await
        .expect_error(400, "invalid_request");
    assert!(msg.contains("one proof"), "{msg}");
    s.admin_user(&env.id, "7")
        .await
        .expect_error(404, "not_found");
}

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
async fn unknown_or_missing_publishable_key_is_401() {
    let s = Server::start().await;
    let _env = s.env().await;
    s.post("/v1/identify", None, &json!({"user_id": "1"}))
        .await
        .expect_error(401, "invalid_publishable_key");
    s.identify(
        "pk_test_doesnotexist0000000000000000",
        &json!({"user_id": "1"}),
    )
    .await
    .expect_error(401, "invalid_publishable_key");
    s.post("/v1/sessions", Some("pk_live_nope"), &json!({}))
        .await
        .expect_error(401, "invalid_publishable_key");
    // The key is the bearer value: a Basic scheme is not accepted.
    s.request(
        Method::POST,
        "/v1/identify",
        None,
        &[("authorization", "Basic dXNlcjpwYXNz")],
        Some(("application/json", b"{\"user_id\":\"1\"}".to_vec())),
    )
    .await
    .expect_error(401, "invalid_publishable_key");
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
async fn bad_session_tokens_are_invalid_session() {
    let s = Server::start().await;
    let env = s.env().await;
    s.get("/v1/me", None)
        .await
        .expect_error(401, "invalid_session");
    s.me("not-a-jwt").await.expect_error(401, "invalid_session");
    // A publishable key is not a session.
    s.me(&env.pk).await.expect_error(401, "invalid_session");
    // A tampered session token.
    let out = s.identify_ok(&env.pk, &json!({"user_id": "u1"})).await;
    let t = out["session_token"].as_str().unwrap();
    let mut parts: Vec<String> = t.split('.').map(str::to_string).collect();
    let (_, mut claims) = jwt_parts(t);
    claims["sub"] = json!("someone-else");
    parts[1] = {
        use base64ct::{Base64UrlUnpadded, Encoding};
        Base64UrlUnpadded::encode_string(claims.to_string().as_bytes())
    };
    let forged = parts.join(".");
    s.me(&forged).await.expect_error(401, "invalid_session");
    s.track(&forged, &json!({"event": "x"}))
        .await
        .expect_error(401, "invalid_session");
    // An identity token (HS256) is not a session either.
    let idt = token(&env.secret, None, &IdentityClaims::new("u1"));
    s.me(&idt).await.expect_error(401, "invalid_session");
    // A deleted environment's sessions stop working.
    s.admin(
        Method::DELETE,
        &format!("/admin/v1/environments/{}", env.id),
        None,
    )
    .await
    .expect_status(204);
    s.me(t).await.expect_error(401, "invalid_session");
    s.identify(&env.pk, &json!({"user_id": "u1"}))
        .await
        .expect_error(401, "invalid_publishable_key");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_past_its_ttl_is_session_expired() {
    let s = Server::start().await;
    let env = s.env_with(json!({"session_ttl_seconds": 1})).await;
    let out = s.identify_ok(&env.pk, &json!({"user_id": "u1"})).await;
    let t = out["session_token"].as_str().unwrap().to_string();
    let (_, claims) = jwt_parts(&t);
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        1
    );
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    s.me(&t).await.expect_error(401, "session_expired");
    s.track(&t, &json!({"event": "late"}))
        .await
        .expect_error(401, "session_expired");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_calls_need_a_valid_admin_token() {
    let s = Server::start().await;
    let env = s.env().await;
    for path in [
        "/admin/v1/environments".to_string(),
        format!("/admin/v1/environments/{}", env.id),
        format!("/admin/v1/environments/{}/users", env.id),
        format!("/admin/v1/environments/{}/secrets", env.id),
    ] {
        s.get(&path, None)
            .await
            .expect_error(401, "invalid_admin_token");
        s.get(&path, Some("vat_wrong_token_wrong_token_wrong_token"))
            .await
            .expect_error(401, "invalid_admin_token");
        // A publishable key or identity secret is not an admin token.
        s.get(&path, Some(&env.pk))
            .await
            .expect_error(401, "invalid_admin_token");
    }
    s.post(
        "/admin/v1/environments",
        Some("nope"),
        &json!({"name": "x"}),
    )
    .await
    .expect_error(401, "invalid_admin_token");
    s.post("/admin/v1/signing-keys/rotate", None, &json!({}))
        .await
        .expect_error(401, "invalid_admin_token");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_routes_and_objects_are_not_found() {
    let s = Server::start().await;
    let env = s.env().await;
    for path in ["/nope", "/v1/nope", "/admin/v1/nope", "/v2/identify"] {
        s.get(path, None).await.expect_error(404, "not_found");
    }
    s.post("/v1/does-not-exist", Some(&env.pk), &json!({}))
        .await
        .expect_error(404, "not_found");
    for path in [
        "/admin/v1/environments/env_unknown".to_string(),
        "/admin/v1/environments/env_unknown/users".to_string(),
        "/admin/v1/environments/env_unknown/secrets".to_string(),
        "/admin/v1/environments/env_unknown/stats".to_string(),
        "/admin/v1/environments/env_unknown/audit".to_string(),
        "/admin/v1/environments/env_unknown/events".to_string(),
        format!("/admin/v1/environments/{}/users/nobody", env.id),
        format!("/admin/v1/environments/{}/secrets/key_unknown", env.id),
    ] {
        s.admin(Method::GET, &path, None)
            .await
            .expect_error(404, "not_found");
    }
    s.admin(
        Method::PATCH,
        "/admin/v1/environments/env_unknown",
        Some(&json!({"enforcement": "enforce"})),
    )
    .await
    .expect_error(404, "not_found");
    s.admin(Method::DELETE, "/admin/v1/environments/env_unknown", None)
        .await
        .expect_error(404, "not_found");
    s.admin(
        Method::DELETE,
        &format!("/admin/v1/environments/{}/secrets/key_unknown", env.id),
        None,
    )
    .await
    .expect_error(404, "not_found");
    s.admin(
        Method::POST,
        "/admin/v1/environments/env_unknown/secrets",
        Some(&json!({})),
    )
    .await
    .expect_error(404, "not_found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn importing_a_stored_secret_again_is_conflict() {
    let s = Server::start().await;
    let env = s.env().await;
    let other = s.env().await;
    let value = "imported-from-another-vendor-0123456789";
    let path = format!("/admin/v1/environments/{}/secrets", env.id);
    let first = s
        .admin(Method::POST, &path, Some(&json!({"value": value})))
        .await
        .expect_status(201);
    assert_eq!(first["value"], json!(value));
    s.admin(Method::POST, &path, Some(&json!({"value": value})))
        .await
        .expect_error(409, "conflict");
    // Not into another environment either.
    s.admin(
        Method::POST,
        &format!("/admin/v1/environments/{}/secrets", other.id),
        Some(&json!({"value": value})),
    )
    .await
    .expect_error(409, "conflict");
    // A generated secret cannot be imported elsewhere.
    s.admin(Method::POST, &path, Some(&json!({"value": other.secret})))
        .await
        .expect_error(409, "conflict");
    // Too short for an imported secret.
    s.admin(Method::POST, &path, Some(&json!({"value": "short"})))
        .await
        .expect_error(400, "invalid_request");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_over_64_kib_are_payload_too_large() {
    let s = Server::start().await;
    let env = s.env().await;
    let big = format!(
        r#"{{"user_id":"u1","attributes":{{"blob":"{}"}}}}"#,
        "x".repeat(65 * 1024)
    );
    s.post_raw(
        "/v1/identify",
        Some(&env.pk),
        "application/json",
        big.clone(),
    )
    .await
    .expect_error(413, "payload_too_large");
    s.post_raw(
        "/admin/v1/environments",
        Some(ADMIN_TOKEN),
        "application/json",
        big,
    )
    .await
    .expect_error(413, "payload_too_large");
    // Just under the limit is fine (whitespace pads it; the stored
    // attributes stay within their own 32 KiB limit).
    let body = format!(
        r#"{{"user_id":"u1",{}"attributes":{{"blob":"{}"}}}}"#,
        " ".repeat(40 * 1024),
        "x".repeat(20 * 1024)
    );
    s.post_raw("/v1/identify", Some(&env.pk), "application/json", body)
        .await
        .expect_status(200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_json_content_types_are_unsupported_media_type() {
    let s = Server::start().await;
    let env = s.env().await;
    let body = br#"{"user_id":"u1"}"#.to_vec();
    for ct in [
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "",
    ] {
        s.post_raw("/v1/identify", Some(&env.pk), ct, body.clone())
            .await
            .expect_error(415, "unsupported_media_type");
    }
    s.post_raw(
        "/admin/v1/environments",
        Some(ADMIN_TOKEN),
        "text/plain",
        br#"{"name":"x"}"#.to_vec(),
    )
    .await
    .expect_error(415, "unsupported_media_type");
    // A charset parameter is fine.
    s.post_raw(
        "/v1/identify",
        Some(&env.pk),
        "application/json; charset=utf-8",
        body,
    )
    .await
    .expect_status(200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_method_is_405_json() {
    let s = Server::start().await;
    let env = s.env().await;
    for (method, path) in [
        (Method::GET, "/v1/identify".to_string()),
        (Method::PUT, "/v1/sessions".to_string()),
        (Method::DELETE, "/v1/me".to_string()),
        (Method::POST, "/healthz".to_string()),
        (Method::PUT, "/admin/v1/environments".to_string()),
        (
            Method::POST,
            format!("/admin/v1/environments/{}/users", env.id),
        ),
    ] {
        let r = s
            .request(method.clone(), &path, Some(ADMIN_TOKEN), &[], None)
            .await;
        assert_eq!(r.status, 405, "{method} {path}: {}", r.text);
        assert_json_error_shape(&r);
    }
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_5xx_for_bad_input() {
    let s = Server::start().await;
    let env = s.env().await;
    type Case<'a> = (Method, String, Option<&'a str>, Option<(&'a str, Vec<u8>)>);
    let cases: Vec<Case> = vec![
        (
            Method::GET,
            format!("/admin/v1/environments/{}/users?limit=abc", env.id),
            Some(ADMIN_TOKEN),
            None,
        ),
        (
            Method::GET,
            format!("/admin/v1/environments/{}/users?verified=maybe", env.id),
            Some(ADMIN_TOKEN),
            None,
        ),
        (
            Method::GET,
            format!("/admin/v1/environments/{}/events?cursor=zz", env.id),
            Some(ADMIN_TOKEN),
            None,
        ),
        (
            Method::GET,
            format!(
                "/admin/v1/environments/{}/secrets/{}?reveal=perhaps",
                env.id, env.key_id
            ),
            Some(ADMIN_TOKEN),
            None,
        ),
        (
            Method::POST,
            "/v1/identify".into(),
            Some(&env.pk),
            Some(("application/json", vec![0xff, 0xfe, 0x00])),
        ),
        (
            Method::POST,
            "/v1/identify".into(),
            Some(&env.pk),
            Some(("application/json", b"{\"user_id\":\"\\ud800\"}".to_vec())),
        ),
        (
            Method::POST,
            format!("/admin/v1/environments/{}/secrets", env.id),
            Some(ADMIN_TOKEN),
            Some((
                "application/json",
                b"{\"rotate\":true,\"grace_seconds\":-5}".to_vec(),
            )),
        ),
        (
            Method::POST,
            format!("/admin/v1/environments/{}/diagnose", env.id),
            Some(ADMIN_TOKEN),
            Some(("application/json", b"{\"user_id\":\"u\"}".to_vec())),
        ),
        (
            Method::PATCH,
            format!("/admin/v1/environments/{}", env.id),
            Some(ADMIN_TOKEN),
            Some(("application/json", b"{\"session_ttl_seconds\":0}".to_vec())),
        ),
        (
            Method::PATCH,
            format!("/admin/v1/environments/{}", env.id),
            Some(ADMIN_TOKEN),
            Some((
                "application/json",
                b"{\"allowed_origins\":[\"not an origin\"]}".to_vec(),
            )),
        ),
        (
            Method::PATCH,
            format!("/admin/v1/environments/{}", env.id),
            Some(ADMIN_TOKEN),
            Some(("application/json", b"{\"mode\":\"live\"}".to_vec())),
        ),
    ];
    for (method, path, bearer, body) in cases {
        let r = s.request(method.clone(), &path, bearer, &[], body).await;
        assert_eq!(r.status, 400, "{method} {path}: {} {}", r.status, r.text);
        r.expect_error(400, "invalid_request");
    }
}
