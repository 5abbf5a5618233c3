//! `allowed_origins` and CORS, preflights included.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common::*;
use reqwest::Method;
use serde_json::json;

const APP: &str = "https://app.acme.test";
const EVIL: &str = "https://evil.example";

async fn identify_from(s: &Server, env: &Env, origin: Option<&str>, user: &str) -> Resp {
    let headers: Vec<(&str, &str)> = origin.map(|o| ("origin", o)).into_iter().collect();
    s.request(
        Method::POST,
        "/v1/identify",
        Some(&env.pk),
        &headers,
        Some((
            "application/json",
            json!({"user_id": user}).to_string().into_bytes(),
        )),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_from_an_origin_outside_the_list_are_refused() {
    let s = Server::start().await;
    let env = s.env_with(json!({"allowed_origins": [APP]})).await;
    let r = identify_from(&s, &env, Some(EVIL), "u1").await;
    r.expect_error(403, "origin_not_allowed");
    assert_eq!(r.header("access-control-allow-origin"), None);
    s.admin_user(&env.id, "u1")
        .await
        .expect_error(404, "not_found");
    // The allowed origin passes and is echoed.
    let ok = identify_from(&s, &env, Some(APP), "u1").await;
    assert_eq!(ok.header("access-control-allow-origin"), Some(APP));
    assert!(ok.header("vary").unwrap_or("").contains("Origin"));
    let out = ok.expect_status(200);
    let session = out["session_token"].as_str().unwrap().to_string();
    // Calls without Origin (servers, mobile apps) pass: it is a browser guard.
    identify_from(&s, &env, None, "u2").await.expect_status(200);
    // Session calls are checked the same way.
    s.request(
        Method::GET,
        "/v1/me",
        Some(&session),
        &[("origin", EVIL)],
        None,
    )
    .await
    .expect_error(403, "origin_not_allowed");
    let me = s
        .request(
            Method::GET,
            "/v1/me",
            Some(&session),
            &[("origin", APP)],
            None,
        )
        .await;
    assert_eq!(me.header("access-control-allow-origin"), Some(APP));
    me.expect_status(200);
    s.request(
        Method::POST,
        "/v1/track",
        Some(&session),
        &[("origin", EVIL)],
        Some(("application/json", br#"{"event":"x"}"#.to_vec())),
    )
    .await
    .expect_error(403, "origin_not_allowed");
    // Anonymous sessions too.
    s.request(
        Method::POST,
        "/v1/sessions",
        Some(&env.pk),
        &[("origin", EVIL)],
        Some(("application/json", b"{}".to_vec())),
    )
    .await
    .expect_error(403, "origin_not_allowed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn origin_comparison_is_exact_on_scheme_host_and_port() {
    let s = Server::start().await;
    let env = s
        .env_with(json!({"allowed_origins": ["https://app.acme.test", "http://localhost:3000"]}))
        .await;
    for bad in [
        "http://app.acme.test",
        "https://app.acme.test:8443",
        "https://evil.app.acme.test",
        "https://app.acme.test.evil.example",
        "http://localhost:3001",
        "null",
    ] {
        identify_from(&s, &env, Some(bad), "u")
            .await
            .expect_error(403, "origin_not_allowed");
    }
    for good in [
        "https://app.acme.test",
        "http://localhost:3000",
        "HTTPS://APP.ACME.TEST",
    ] {
        identify_from(&s, &env, Some(good), "u")
            .await
            .expect_status(200);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_list_allows_any_origin() {
    let s = Server::start().await;
    let env = s.env().await;
    assert_eq!(env.created["allowed_origins"], json!([]));
    let r = identify_from(&s, &env, Some(EVIL), "u").await;
    assert_eq!(r.header("access-control-allow-origin"), Some(EVIL));
    r.expect_status(200);
    // PATCH narrows it at once.
    s.patch_env(&env.id, json!({"allowed_origins": [APP]}))
        .await;
    identify_from(&s, &env, Some(EVIL), "u")
        .await
        .expect_error(403, "origin_not_allowed");
    identify_from(&s, &env, Some(APP), "u")
        .await
        .expect_status(200);
}

async fn preflight(s: &Server, origin: &str, path: &str) -> Resp {
    s.request(
        Method::OPTIONS,
        path,
        None,
        &[
            ("origin", origin),
            ("access-control-request-method", "POST"),
            (
                "access-control-request-headers",
                "authorization, content-type",
            ),
        ],
        None,
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preflight_answers_follow_the_lists() {
    let s = Server::start().await;
    let _env = s.env_with(json!({"allowed_origins": [APP]})).await;
    for path in [
        "/v1/identify",
        "/v1/sessions",
        "/v1/track",
        "/v1/group",
        "/v1/me",
    ] {
        let r = preflight(&s, APP, path).await;
        assert!(
            r.status == 204 || r.status == 200,
            "{path}: {} {}",
            r.status,
            r.text
        );
        assert_eq!(r.header("access-control-allow-origin"), Some(APP), "{path}");
        let methods = r.header("access-control-allow-methods").unwrap_or("");
        assert!(methods.contains("POST"), "{path}: {methods}");
        let headers = r
            .header("access-control-allow-headers")
            .unwrap_or("")
            .to_ascii_lowercase();
        assert!(
            headers.contains("authorization") && headers.contains("content-type"),
            "{path}: {headers}"
        );
    }
    // Restrict every environment (the bootstrap one allows any origin), then a
    // preflight from an origin no environment allows is refused.
    let envs = s.admin_get("/admin/v1/environments").await;
    for e in envs["data"].as_array().unwrap() {
        s.patch_env(e["id"].as_str().unwrap(), json!({"allowed_origins": [APP]}))
            .await;
    }
    let r = preflight(&s, EVIL, "/v1/identify").await;
    assert_eq!(r.status, 403, "{}", r.text);
    assert_eq!(r.header("access-control-allow-origin"), None);
    assert_json_error_shape(&r);
    assert_eq!(r.body["error"]["code"], json!("origin_not_allowed"));
    // The allowed one still is.
    let ok = preflight(&s, APP, "/v1/identify").await;
    assert_eq!(ok.header("access-control-allow-origin"), Some(APP));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_answers_to_allowed_origins_are_readable_by_the_browser() {
    let s = Server::start().await;
    let env = s.env_with(json!({"allowed_origins": [APP]})).await;
    let r = s
        .request(
            Method::POST,
            "/v1/identify",
            Some(&env.pk),
            &[("origin", APP)],
            Some((
                "application/json",
                json!({"user_id": "u", "signature": corrupt(&env.sign("u"))})
                    .to_string()
                    .into_bytes(),
            )),
        )
        .await;
    r.expect_error(401, "invalid_signature");
    assert_eq!(r.header("access-control-allow-origin"), Some(APP));
    // The JWKS is public to any origin.
    let jwks = s
        .request(
            Method::GET,
            "/.well-known/jwks.json",
            None,
            &[("origin", EVIL)],
            None,
        )
        .await;
    assert_eq!(jwks.header("access-control-allow-origin"), Some("*"));
    jwks.expect_status(200);
}
