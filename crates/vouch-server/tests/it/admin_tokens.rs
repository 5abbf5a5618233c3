//! Admin tokens: created (the value shown once, its hash stored), listed,
//! deleted (refused at once), roles and environment scopes, the last full
//! token kept, and every audit entry naming its actor.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common::*;
use reqwest::Method;
use serde_json::{Value, json};

async fn as_token(
    s: &Server,
    token: &str,
    method: Method,
    path: &str,
    body: Option<&Value>,
) -> Resp {
    let body = body.map(|b| ("application/json", b.to_string().into_bytes()));
    s.request(method, path, Some(token), &[], body).await
}

async fn create(s: &Server, body: Value) -> Value {
    s.admin(Method::POST, "/admin/v1/admin-tokens", Some(&body))
        .await
        .expect_status(201)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_is_shown_once_listed_without_its_value_and_refused_once_deleted() {
    let s = Server::start().await;
    let made = create(&s, json!({"name": "CI deploys", "role": "admin"})).await;
    let id = made["id"].as_str().unwrap();
    let value = made["token"].as_str().unwrap();
    assert!(
        id.starts_with("tok_") && value.starts_with("vat_"),
        "{made}"
    );
    assert_eq!(made["environment_ids"], Value::Null);
    // It works.
    as_token(&s, value, Method::GET, "/admin/v1/environments", None)
        .await
        .expect_status(200);
    // Listed, never with a value; the bootstrap token is there too.
    let list = s.admin_get("/admin/v1/admin-tokens").await;
    let text = list.to_string();
    assert!(
        !text.contains(value) && !text.contains("\"token\""),
        "{text}"
    );
    let names: Vec<&str> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"CI deploys") && names.contains(&"bootstrap"),
        "{names:?}"
    );
    // Only its hash is stored.
    let db = std::fs::read(s.data_dir().join("vouch.db")).unwrap_or_default();
    assert!(
        !db.windows(value.len()).any(|w| w == value.as_bytes()),
        "the token's value is in the database file"
    );
    // Deleted: refused at once.
    s.admin(
        Method::DELETE,
        &format!("/admin/v1/admin-tokens/{id}"),
        None,
    )
    .await
    .expect_status(204);
    as_token(&s, value, Method::GET, "/admin/v1/environments", None)
        .await
        .expect_error(401, "invalid_admin_token");
    s.admin(
        Method::DELETE,
        &format!("/admin/v1/admin-tokens/{id}"),
        None,
    )
    .await
    .expect_error(404, "not_found");
    // Audited with the actor that did it.
    let bootstrap = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "bootstrap")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let env = s.env().await;
    let audit = s.audit(&env.id).await;
    let created = audit
        .iter()
        .find(|a| a["kind"] == "secret.created")
        .unwrap();
    assert_eq!(created["actor"], json!(bootstrap), "{created}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewer_reads_but_changes_nothing() {
    let s = Server::start().await;
    let env = s.env().await;
    let viewer = create(&s, json!({"name": "support", "role": "viewer"})).await;
    let v = viewer["token"].as_str().unwrap();
    let base = format!("/admin/v1/environments/{}", env.id);
    for path in [
        "/admin/v1/environments".to_string(),
        base.clone(),
        format!("{base}/users"),
        format!("{base}/audit"),
        format!("{base}/stats"),
        format!("{base}/secrets"),
    ] {
        as_token(&s, v, Method::GET, &path, None)
            .await
            .expect_status(200);
    }
    // Checking a signature is a read.
    as_token(
        &s,
        v,
        Method::POST,
        &format!("{base}/diagnose"),
        Some(&json!({"user_id": "42", "signature": env.sign("42")})),
    )
    .await
    .expect_status(200);
    // Every write, and revealing a secret, is forbidden.
    let writes: Vec<(Method, String, Option<Value>)> = vec![
        (
            Method::PATCH,
            base.clone(),
            Some(json!({"enforcement": "enforce"})),
        ),
        (Method::POST, format!("{base}/secrets"), Some(json!({}))),
        (
            Method::DELETE,
            format!("{base}/secrets/{}", env.key_id),
            None,
        ),
        (Method::POST, format!("{base}/sessions/revoke"), None),
        (Method::DELETE, format!("{base}/users/42"), None),
        (
            Method::POST,
            "/admin/v1/environments".into(),
            Some(json!({"name": "x"})),
        ),
        (
            Method::POST,
            "/admin/v1/admin-tokens".into(),
            Some(json!({"name": "x", "role": "admin"})),
        ),
        (Method::DELETE, base.clone(), None),
    ];
    for (m, path, body) in writes {
        let msg = as_token(&s, v, m.clone(), &path, body.as_ref())
            .await
            .expect_error(403, "forbidden");
        assert!(!msg.is_empty(), "{m} {path}");
    }
    as_token(
        &s,
        v,
        Method::GET,
        &format!("{base}/secrets/{}?reveal=true", env.key_id),
        None,
    )
    .await
    .expect_error(403, "forbidden");
    // Nothing changed.
    assert_eq!(s.admin_get(&base).await["enforcement"], "off");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scoped_token_sees_only_its_environments() {
    let s = Server::start().await;
    let mine = s.env().await;
    let theirs = s.env().await;
    let scoped = create(
        &s,
        json!({"name": "acme ops", "role": "admin", "environment_ids": [mine.id]}),
    )
    .await;
    let t = scoped["token"].as_str().unwrap();
    let list = as_token(&s, t, Method::GET, "/admin/v1/environments", None)
        .await
        .expect_status(200);
    let ids: Vec<&str> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![mine.id.as_str()]);
    as_token(
        &s,
        t,
        Method::PATCH,
        &format!("/admin/v1/environments/{}", mine.id),
        Some(&json!({"enforcement": "enforce"})),
    )
    .await
    .expect_status(200);
    for (m, path) in [
        (Method::GET, format!("/admin/v1/environments/{}", theirs.id)),
        (
            Method::GET,
            format!("/admin/v1/environments/{}/users", theirs.id),
        ),
        (
            Method::PATCH,
            format!("/admin/v1/environments/{}", theirs.id),
        ),
        (
            Method::GET,
            format!(
                "/admin/v1/environments/{}/secrets/{}?reveal=true",
                theirs.id, theirs.key_id
            ),
        ),
        (
            Method::GET,
            format!("/admin/ui/environments/{}/secret-hints", theirs.id),
        ),
    ] {
        let body = (m == Method::PATCH).then(|| json!({"enforcement": "enforce"}));
        as_token(&s, t, m, &path, body.as_ref())
            .await
            .expect_error(404, "not_found");
    }
    // It cannot create environments or manage tokens (that needs every environment).
    as_token(
        &s,
        t,
        Method::POST,
        "/admin/v1/environments",
        Some(&json!({"name": "x"})),
    )
    .await
    .expect_error(403, "forbidden");
    as_token(&s, t, Method::GET, "/admin/v1/admin-tokens", None)
        .await
        .expect_error(403, "forbidden");
    // Unknown environments in a scope are refused when the token is made.
    s.admin(
        Method::POST,
        "/admin/v1/admin-tokens",
        Some(&json!({"name": "x", "role": "viewer", "environment_ids": ["env_nope"]})),
    )
    .await
    .expect_error(400, "invalid_request");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_last_full_admin_token_cannot_be_deleted() {
    let s = Server::start().await;
    let list = s.admin_get("/admin/v1/admin-tokens").await;
    let bootstrap = list["data"][0]["id"].as_str().unwrap().to_string();
    // A viewer and a scoped admin do not count as a way back in.
    let env = s.env().await;
    create(&s, json!({"name": "v", "role": "viewer"})).await;
    create(
        &s,
        json!({"name": "s", "role": "admin", "environment_ids": [env.id]}),
    )
    .await;
    let msg = s
        .admin(
            Method::DELETE,
            &format!("/admin/v1/admin-tokens/{bootstrap}"),
            None,
        )
        .await
        .expect_error(409, "conflict");
    assert!(msg.contains("last admin token"), "{msg}");
    // With a second full admin, the first can go (by the second).
    let second = create(&s, json!({"name": "second", "role": "admin"})).await;
    as_token(
        &s,
        second["token"].as_str().unwrap(),
        Method::DELETE,
        &format!("/admin/v1/admin-tokens/{bootstrap}"),
        None,
    )
    .await
    .expect_status(204);
    s.admin(Method::GET, "/admin/v1/environments", None)
        .await
        .expect_error(401, "invalid_admin_token");
    // A restart with the deleted token still in VOUCH_ADMIN_TOKEN does not bring it back.
    let dir = s.stop().await;
    let s = Server::start_in(dir).await;
    s.admin(Method::GET, "/admin/v1/environments", None)
        .await
        .expect_error(401, "invalid_admin_token");
    as_token(
        &s,
        second["token"].as_str().unwrap(),
        Method::GET,
        "/admin/v1/environments",
        None,
    )
    .await
    .expect_status(200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_token_requests_are_clear_errors() {
    let s = Server::start().await;
    for body in [
        json!({"name": "", "role": "admin"}),
        json!({"name": "x", "role": "owner"}),
        json!({"name": "x"}),
        json!({"name": "x", "role": "viewer", "environment_ids": []}),
        json!({"name": "x", "role": "viewer", "extra": 1}),
    ] {
        s.admin(Method::POST, "/admin/v1/admin-tokens", Some(&body))
            .await
            .expect_error(400, "invalid_request");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whoami_names_the_token_and_the_deployment_audit_lists_token_changes() {
    let s = Server::start().await;
    let env = s.env().await;
    let me = s.admin_get("/admin/v1/whoami").await;
    assert_eq!(
        (me["name"].as_str(), me["role"].as_str()),
        (Some("bootstrap"), Some("admin"))
    );
    assert!(me.get("token").is_none(), "{me}");
    let viewer = create(
        &s,
        json!({"name": "support", "role": "viewer", "environment_ids": [env.id]}),
    )
    .await;
    let v = viewer["token"].as_str().unwrap();
    let seen = as_token(&s, v, Method::GET, "/admin/v1/whoami", None)
        .await
        .expect_status(200);
    assert_eq!(seen["id"], viewer["id"]);
    assert_eq!(seen["role"], "viewer");
    assert_eq!(seen["environment_ids"], json!([env.id]));
    // Token changes belong to no environment: the deployment's audit lists them,
    // with their actor; a scoped token may not read it.
    s.admin(
        Method::DELETE,
        &format!("/admin/v1/admin-tokens/{}", viewer["id"].as_str().unwrap()),
        None,
    )
    .await
    .expect_status(204);
    let log = s.admin_get("/admin/v1/audit?limit=50").await;
    let kinds: Vec<&str> = log["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        vec!["admin_token.deleted", "admin_token.created"],
        "{log}"
    );
    assert_eq!(log["data"][0]["actor"], me["id"]);
    let filtered = s
        .admin_get("/admin/v1/audit?kind=admin_token.created")
        .await;
    assert_eq!(filtered["data"].as_array().unwrap().len(), 1);
    let scoped = create(
        &s,
        json!({"name": "ops", "role": "admin", "environment_ids": [env.id]}),
    )
    .await;
    as_token(
        &s,
        scoped["token"].as_str().unwrap(),
        Method::GET,
        "/admin/v1/audit",
        None,
    )
    .await
    .expect_error(403, "forbidden");
    // An environment's own log does not mix them in.
    assert!(
        s.audit(&env.id)
            .await
            .iter()
            .all(|a| !a["kind"].as_str().unwrap().starts_with("admin_token."))
    );
}
