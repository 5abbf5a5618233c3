//! The admin API's read side (users, stats, diagnose, audit) and the operational
//! endpoints (`/healthz`, `/readyz`, `/openapi.json`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;

use crate::common::*;
use reqwest::Method;
use serde_json::{Value, json};
use vouch_core::IdentityClaims;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_list_filters_by_verified_and_pages_with_a_cursor() {
    let s = Server::start().await;
    let env = s.env().await;
    let verified = ["v-a", "v-b", "v-c", "v-d"];
    let unverified = ["n-a", "n-b", "n-c"];
    for id in verified {
        s.identify_ok(&env.pk, &json!({"user_id": id, "signature": env.sign(id)}))
            .await;
    }
    for id in unverified {
        s.identify_ok(&env.pk, &json!({"user_id": id, "attributes": {"k": id}}))
            .await;
    }
    let base = format!("/admin/v1/environments/{}/users", env.id);
    let ids = |v: &Value| -> Vec<String> {
        v["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["id"].as_str().unwrap().to_string())
            .collect()
    };
    let all = s.admin_get(&base).await;
    assert_eq!(ids(&all).len(), 7);
    assert_eq!(all["next_cursor"], Value::Null);
    let only_verified = s.admin_get(&format!("{base}?verified=true")).await;
    assert_eq!(ids(&only_verified), ["v-a", "v-b", "v-c", "v-d"]);
    for u in only_verified["data"].as_array().unwrap() {
        assert_eq!(u["verified"], json!(true));
        assert_eq!(u["verified_by"], json!("signature"));
    }
    let only_unverified = s.admin_get(&format!("{base}?verified=false")).await;
    assert_eq!(ids(&only_unverified), ["n-a", "n-b", "n-c"]);
    // The user object of docs/api.md.
    let u = &only_unverified["data"][0];
    for field in [
        "id",
        "verified",
        "verified_by",
        "key_id",
        "verified_at",
        "attributes",
        "verified_attributes",
        "companies",
        "created_at",
        "updated_at",
    ] {
        assert!(u.get(field).is_some(), "user lacks {field}: {u}");
    }
    assert_eq!(u["attributes"], json!({"k": "n-a"}));
    // Cursor pagination: pages of 2, no duplicates, nothing lost, stable order.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &cursor {
            Some(c) => format!("{base}?limit=2&cursor={}", pct(c)),
            None => format!("{base}?limit=2"),
        };
        let page = s.admin_get(&path).await;
        let got = ids(&page);
        assert!(got.len() <= 2);
        seen.extend(got);
        pages += 1;
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
        assert!(pages < 10, "pagination does not end");
    }
    assert_eq!(pages, 4);
    let mut expected: Vec<String> = verified
        .iter()
        .chain(unverified.iter())
        .map(|s| s.to_string())
        .collect();
    expected.sort();
    assert_eq!(seen, expected);
    // Filter and cursor together.
    let p1 = s.admin_get(&format!("{base}?verified=true&limit=3")).await;
    assert_eq!(ids(&p1), ["v-a", "v-b", "v-c"]);
    let c = p1["next_cursor"].as_str().unwrap();
    let p2 = s
        .admin_get(&format!("{base}?verified=true&limit=3&cursor={}", pct(c)))
        .await;
    assert_eq!(ids(&p2), ["v-d"]);
    assert_eq!(p2["next_cursor"], Value::Null);
    // Another environment's users are not listed.
    let other = s.env().await;
    let none = s
        .admin_get(&format!("/admin/v1/environments/{}/users", other.id))
        .await;
    assert!(ids(&none).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stats_count_verified_unverified_and_rejected_identifies() {
    let s = Server::start().await;
    let env = s.env().await;
    for id in ["a", "b"] {
        s.identify_ok(&env.pk, &json!({"user_id": id, "signature": env.sign(id)}))
            .await;
    }
    let t = token(&env.secret, None, &IdentityClaims::new("c"));
    s.identify_ok(&env.pk, &json!({"user_id": "c", "token": t}))
        .await;
    for id in ["x", "y", "x"] {
        s.identify_ok(&env.pk, &json!({"user_id": id})).await;
    }
    // Rejected: a wrong signature, and an unproven call for a verified user.
    s.identify(
        &env.pk,
        &json!({"user_id": "a", "signature": corrupt(&env.sign("a"))}),
    )
    .await
    .expect_error(401, "invalid_signature");
    s.identify(&env.pk, &json!({"user_id": "a"}))
        .await
        .expect_error(401, "signature_required");
    // Not identify calls at all: not counted.
    s.anonymous(&env.pk).await.expect_status(200);
    let stats = s
        .admin_get(&format!("/admin/v1/environments/{}/stats", env.id))
        .await;
    for window in ["last_hour", "last_day", "last_week"] {
        let w = &stats[window];
        assert_eq!(
            (&w["verified"], &w["unverified"], &w["rejected"]),
            (&json!(3), &json!(3), &json!(2)),
            "{window}: {w}"
        );
        assert_eq!(w["would_reject_ratio"], json!(0.5), "{window}");
    }
    // Per environment.
    let other = s.env().await;
    let empty = s
        .admin_get(&format!("/admin/v1/environments/{}/stats", other.id))
        .await;
    assert_eq!(empty["last_week"]["verified"], json!(0));
    assert_eq!(empty["last_week"]["rejected"], json!(0));
}

async fn diagnose(s: &Server, path: &str, user_id: &str, signature: String) -> Value {
    let body = json!({"user_id": user_id, "signature": signature});
    s.admin(Method::POST, path, Some(&body))
        .await
        .expect_status(200)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn diagnose_names_the_likely_mistake() {
    let s = Server::start().await;
    let env = s.env().await;
    let path = format!("/admin/v1/environments/{}/diagnose", env.id);
    let ok = diagnose(&s, &path, "42", env.sign("42")).await;
    assert_eq!(ok["valid"], json!(true));
    assert_eq!(ok["key_id"], json!(env.key_id));
    // `echo 42 | openssl dgst …` signs "42\n".
    let newline = diagnose(&s, &path, "42", sign_hex(&env.secret, "42\n")).await;
    assert_eq!(newline["valid"], json!(false));
    assert_eq!(newline["cause"], json!("surrounding_whitespace"));
    assert!(
        newline["message"]
            .as_str()
            .unwrap()
            .contains("trailing newline"),
        "{newline}"
    );
    // Another environment's secret.
    let other = s.env().await;
    let wrong_env = diagnose(&s, &path, "42", other.sign("42")).await;
    assert_eq!(wrong_env["cause"], json!("other_environment"));
    assert!(
        wrong_env["message"]
            .as_str()
            .unwrap()
            .contains(other.created["name"].as_str().unwrap())
    );
    // Key and message swapped.
    let swapped = diagnose(&s, &path, "42", sign_hex("42", &env.secret)).await;
    assert_eq!(swapped["cause"], json!("key_and_message_swapped"));
    // An HMAC-SHA1-sized hex string.
    let sha1 = diagnose(&s, &path, "42", "ab".repeat(20)).await;
    assert_eq!(sha1["cause"], json!("wrong_hash_sha1"));
    // Diagnose never reveals the secret, and it is no widget call: nothing is revoked.
    assert!(
        !serde_json::to_string(&swapped)
            .unwrap()
            .contains(&env.secret)
    );
    assert_eq!(s.secret_status(&env.id, &env.key_id).await, "active");
    // Bad input.
    s.admin(Method::POST, &path, Some(&json!({"user_id": "42"})))
        .await
        .expect_error(400, "invalid_request");
    s.admin(
        Method::POST,
        "/admin/v1/environments/env_nope/diagnose",
        Some(&json!({"user_id": "42", "signature": env.sign("42")})),
    )
    .await
    .expect_error(404, "not_found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_log_diagnoses_failed_verifications() {
    let s = Server::start().await;
    let env = s.env().await;
    s.identify(
        &env.pk,
        &json!({"user_id": "77", "signature": sign_hex(&env.secret, "77\n")}),
    )
    .await
    .expect_error(401, "invalid_signature");
    s.identify(
        &env.pk,
        &json!({"user_id": "78", "attributes": {"email": "e@x.test"},
                "signature": sign_hex(&env.secret, "e@x.test")}),
    )
    .await
    .expect_error(401, "invalid_signature");
    let audit = s.audit(&env.id).await;
    let find = |user: &str| {
        audit
            .iter()
            .find(|a| a["kind"] == "identity.rejected" && a["user_id"] == user)
            .cloned()
            .unwrap_or_else(|| panic!("no rejection for {user}: {audit:?}"))
    };
    let a77 = find("77");
    assert_eq!(a77["detail"]["code"], json!("invalid_signature"));
    assert_eq!(a77["detail"]["cause"], json!("surrounding_whitespace"));
    let a78 = find("78");
    assert_eq!(a78["detail"]["cause"], json!("signed_attribute"));
    // Key creation is in the log from the start.
    assert!(audit.iter().any(|a| a["kind"] == "secret.created"));
    for a in &audit {
        assert!(a["id"].is_string() && a["created_at"].is_string());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_readiness() {
    let s = Server::start().await;
    let h = s.get("/healthz", None).await;
    assert!(
        h.header("x-request-id")
            .is_some_and(|v| v.starts_with("req_"))
    );
    assert_eq!(h.expect_status(200), json!({"status": "ok"}));
    assert_eq!(
        s.get("/readyz", None).await.expect_status(200),
        json!({"status": "ready"})
    );
    // Errors carry a request id too.
    let e = s.get("/nope", None).await;
    assert!(e.header("x-request-id").is_some());
}

/// Every route the router serves, as (method, OpenAPI path).
const ROUTES: &[(&str, &str)] = &[
    ("post", "/v1/sessions"),
    ("post", "/v1/identify"),
    ("post", "/v1/group"),
    ("post", "/v1/track"),
    ("get", "/v1/me"),
    ("get", "/admin/v1/environments"),
    ("post", "/admin/v1/environments"),
    ("get", "/admin/v1/environments/{env}"),
    ("patch", "/admin/v1/environments/{env}"),
    ("delete", "/admin/v1/environments/{env}"),
    ("get", "/admin/v1/environments/{env}/secrets"),
    ("post", "/admin/v1/environments/{env}/secrets"),
    ("get", "/admin/v1/environments/{env}/secrets/{key_id}"),
    ("delete", "/admin/v1/environments/{env}/secrets/{key_id}"),
    ("get", "/admin/v1/environments/{env}/users"),
    ("get", "/admin/v1/environments/{env}/users/{user_id}"),
    ("get", "/admin/v1/environments/{env}/events"),
    ("get", "/admin/v1/environments/{env}/audit"),
    ("get", "/admin/v1/environments/{env}/stats"),
    ("post", "/admin/v1/environments/{env}/diagnose"),
    ("post", "/admin/v1/signing-keys/rotate"),
    ("get", "/admin/v1/environments/{env}/webhooks"),
    ("post", "/admin/v1/environments/{env}/webhooks"),
    ("get", "/admin/v1/environments/{env}/webhooks/{id}"),
    ("delete", "/admin/v1/environments/{env}/webhooks/{id}"),
    (
        "get",
        "/admin/v1/environments/{env}/webhooks/{id}/deliveries",
    ),
    ("post", "/admin/v1/environments/{env}/webhooks/{id}/enable"),
    ("post", "/admin/v1/environments/{env}/webhooks/{id}/replay"),
    (
        "post",
        "/admin/v1/environments/{env}/webhooks/{id}/rotate-secret",
    ),
    ("get", "/metrics"),
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/.well-known/jwks.json"),
    ("get", "/openapi.json"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_lists_every_route_the_router_serves() {
    let s = Server::start().await;
    let env = s.env().await;
    let doc = s.get("/openapi.json", None).await.expect_status(200);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let mut documented = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in ["get", "post", "put", "patch", "delete"] {
            if item.get(method).is_some() {
                documented.insert((method.to_string(), path.clone()));
            }
        }
    }
    // Every served route is documented.
    for (m, p) in ROUTES {
        assert!(
            documented.contains(&(m.to_string(), p.to_string())),
            "{m} {p} is served but missing from /openapi.json"
        );
    }
    // Every documented route is served (not the router's 404 / 405 fallback).
    for (m, p) in &documented {
        let path = p
            .replace("{env}", &env.id)
            .replace("{key_id}", &env.key_id)
            .replace("{user_id}", "someone")
            .replace("{id}", "x");
        let method = Method::from_bytes(m.to_uppercase().as_bytes()).unwrap();
        let r = s
            .request(
                method,
                &path,
                Some(ADMIN_TOKEN),
                &[],
                Some(("application/json", b"{}".to_vec())),
            )
            .await;
        assert_ne!(r.status, 405, "{m} {p} is documented but not served");
        if r.status == 404 {
            let msg = r.body["error"]["message"].as_str().unwrap_or("");
            assert!(
                !msg.contains("No such endpoint"),
                "{m} {p} is documented but not served"
            );
        }
    }
    // Error answers are documented with the error schema.
    let identify = &doc["paths"]["/v1/identify"]["post"];
    assert!(identify["responses"].get("200").is_some());
    assert!(identify["requestBody"].is_object());
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    assert!(schemas.contains_key("ErrorOut"));
    assert!(schemas.contains_key("IdentifyIn"));
}
