//! Keys and tokens that do not open the door: publishable keys, session tokens, admin
//! tokens, and a secret imported twice.

use crate::common::*;
use reqwest::Method;
use serde_json::json;
use vouch_core::IdentityClaims;

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
