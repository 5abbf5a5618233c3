//! Bad requests: malformed JSON, wrong types and missing fields, user ids out of bounds,
//! a signature and a token together, oversized bodies, non-JSON content types, wrong
//! methods, unknown routes and objects; none of it a 5xx.

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
