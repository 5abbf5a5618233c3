//! `vouch admin-token create|list|revoke`, the real binary on a real store:
//! recovery when every admin token is lost (SQLite, server stopped: a running
//! one is refused with its pid), the last full admin token kept unless
//! `--yes`, every change audited with the actor `cli`, and on PostgreSQL a
//! change in force on running nodes at once.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use crate::offline::*;
use serde_json::{Value, json};
use sqlx::Connection;

fn admin_token(dir: &Path, args: &[&str]) -> std::process::Output {
    let mut all = vec!["admin-token"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--data-dir", dir.to_str().unwrap()]);
    vouch(&all, &[])
}

fn tokens_json(dir: &Path) -> Vec<Value> {
    serde_json::from_str(&ok(&admin_token(dir, &["list", "--json"]))).unwrap()
}

/// A set-up data directory (one first start, then stopped).
fn set_up() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    Serve::start(dir.path(), &[], &[]).stop();
    dir
}

async fn audit_rows(dir: &Path) -> Vec<(String, Option<String>, Option<String>)> {
    let url = format!("sqlite://{}", dir.join("vouch.db").display());
    let mut db = sqlx::SqliteConnection::connect(&url).await.unwrap();
    let rows: Vec<(String, Option<String>, Option<String>)> = sqlx::query_as(
        "SELECT kind, actor, key_id FROM audit WHERE kind LIKE 'admin_token.%' ORDER BY seq",
    )
    .fetch_all(&mut db)
    .await
    .unwrap();
    let _ = db.close().await;
    rows
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_created_offline_prints_only_its_value_and_works_on_the_next_start() {
    let dir = set_up();
    let out = admin_token(dir.path(), &["create", "--name", "recovery"]);
    let value = ok(&out);
    assert!(
        value.starts_with("vat_") && value.ends_with('\n'),
        "{value:?}"
    );
    assert_eq!(
        value.lines().count(),
        1,
        "only the value on stdout: {value:?}"
    );
    let value = value.trim().to_string();
    let created = tokens_json(dir.path());
    let id = created
        .iter()
        .find(|t| t["name"] == "recovery")
        .expect("listed")["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(stderr(&out).contains(&id), "{}", stderr(&out));

    // The table names it, never a value or a hash.
    let table = ok(&admin_token(dir.path(), &["list"]));
    for cell in [
        id.as_str(),
        "recovery",
        "admin",
        "every environment",
        "bootstrap",
    ] {
        assert!(table.contains(cell), "{cell} missing from {table}");
    }
    assert!(!table.contains("vat_") && !table.contains(ADMIN), "{table}");

    let s = Serve::start(dir.path(), &[], &[]);
    let listed = expect(
        call(&s.base, "GET", "/admin/v1/admin-tokens", Some(&value), None).await,
        200,
    );
    assert!(
        listed["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["id"] == id.as_str() && t["role"] == "admin")
    );
    s.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewer_token_limited_to_an_environment_reads_only_that_one() {
    let dir = tempfile::tempdir().unwrap();
    let s = Serve::start(dir.path(), &[], &[]);
    let make = |name: &'static str| {
        let base = s.base.clone();
        async move {
            expect(
                call(
                    &base,
                    "POST",
                    "/admin/v1/environments",
                    Some(ADMIN),
                    Some(&json!({"name": name})),
                )
                .await,
                201,
            )["id"]
                .as_str()
                .unwrap()
                .to_string()
        }
    };
    let (seen, hidden) = (make("seen").await, make("hidden").await);
    s.stop();
    let value = ok(&admin_token(
        dir.path(),
        &[
            "create",
            "--name",
            "grafana",
            "--role",
            "viewer",
            "--environment",
            &seen,
        ],
    ));
    let value = value.trim();
    let table = ok(&admin_token(dir.path(), &["list"]));
    assert!(table.contains("viewer") && table.contains(&seen), "{table}");

    let s = Serve::start(dir.path(), &[], &[]);
    let env_path = |e: &str| format!("/admin/v1/environments/{e}");
    expect(
        call(&s.base, "GET", &env_path(&seen), Some(value), None).await,
        200,
    );
    let (status, body) = call(&s.base, "GET", &env_path(&hidden), Some(value), None).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("not_found"))
    );
    let (status, body) = call(
        &s.base,
        "PATCH",
        &env_path(&seen),
        Some(value),
        Some(&json!({"enforcement": "enforce"})),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("forbidden"))
    );
    s.stop();

    // An environment the store does not have is refused, and nothing is added.
    let before = tokens_json(dir.path()).len();
    let err = fails(
        &admin_token(
            dir.path(),
            &["create", "--name", "x", "--environment", "env_nope"],
        ),
        2,
    );
    assert!(err.contains("env_nope"), "{err}");
    assert_eq!(tokens_json(dir.path()).len(), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recovery_when_every_token_is_lost_new_one_offline_old_ones_revoked() {
    let dir = set_up();
    let bootstrap = tokens_json(dir.path())[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let value = ok(&admin_token(
        dir.path(),
        &["create", "--name", "after-incident"],
    ));
    let value = value.trim();
    // The lost token is no longer the last full one: revoked without --yes.
    let out = admin_token(dir.path(), &["revoke", &bootstrap]);
    ok(&out);
    assert!(
        stderr(&out).contains("refused from now on"),
        "{}",
        stderr(&out)
    );
    let left = tokens_json(dir.path());
    assert_eq!(left.len(), 1);
    assert_eq!(left[0]["name"], "after-incident");

    // The old value stays refused even when given again at start.
    let s = Serve::start(dir.path(), &[], &[]);
    assert!(
        s.banner().contains("vouch admin-token create"),
        "the banner says how to make a token: {}",
        s.banner()
    );
    let (status, body) = call(&s.base, "GET", "/admin/v1/admin-tokens", Some(ADMIN), None).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (401, Some("invalid_admin_token"))
    );
    expect(
        call(&s.base, "GET", "/admin/v1/admin-tokens", Some(value), None).await,
        200,
    );
    s.stop();

    let audit = audit_rows(dir.path()).await;
    let created = tokens_json(dir.path())[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        audit.contains(&(
            "admin_token.created".into(),
            Some("cli".into()),
            Some(created)
        )),
        "{audit:?}"
    );
    assert!(
        audit.contains(&(
            "admin_token.deleted".into(),
            Some("cli".into()),
            Some(bootstrap)
        )),
        "{audit:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_last_full_admin_token_is_revoked_only_with_yes() {
    let dir = set_up();
    let only = tokens_json(dir.path())[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let err = fails(&admin_token(dir.path(), &["revoke", &only]), 2);
    assert!(err.contains("last admin token with full access"), "{err}");
    assert!(err.contains("--yes"), "{err}");
    assert_eq!(tokens_json(dir.path()).len(), 1, "nothing deleted");

    let out = admin_token(dir.path(), &["revoke", &only, "--yes"]);
    ok(&out);
    assert!(
        stderr(&out).contains("No admin token with full access is left"),
        "{}",
        stderr(&out)
    );
    assert!(tokens_json(dir.path()).is_empty());
    let audit = audit_rows(dir.path()).await;
    assert_eq!(
        audit.last(),
        Some(&(
            "admin_token.deleted".to_string(),
            Some("cli".to_string()),
            Some(only.clone())
        ))
    );

    let s = Serve::start(dir.path(), &[], &[]);
    let (status, _) = call(&s.base, "GET", "/admin/v1/environments", Some(ADMIN), None).await;
    assert_eq!(status, 401, "the revoked token is refused after a restart");
    s.stop();

    // Unknown ids are a usage error.
    let err = fails(&admin_token(dir.path(), &["revoke", &only]), 2);
    assert!(err.contains("no admin token"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_data_directory_a_server_is_using_is_refused_naming_its_pid() {
    let dir = tempfile::tempdir().unwrap();
    let s = Serve::start(dir.path(), &[], &[]);
    for args in [
        &["create", "--name", "sneaky"][..],
        &["list"][..],
        &["revoke", "tok_x", "--yes"][..],
    ] {
        let err = fails(&admin_token(dir.path(), args), 1);
        assert!(
            err.contains(&format!("in use by process {}", s.pid())),
            "{args:?}: {err}"
        );
    }
    s.stop();
    let names: Vec<Value> = tokens_json(dir.path())
        .iter()
        .map(|t| t["name"].clone())
        .collect();
    assert_eq!(names, [json!("bootstrap")]);

    // A directory without a database is not created, and says what to give.
    let empty = tempfile::tempdir().unwrap();
    let missing = empty.path().join("nothing-here");
    let err = fails(
        &vouch(
            &[
                "admin-token",
                "list",
                "--data-dir",
                missing.to_str().unwrap(),
            ],
            &[],
        ),
        2,
    );
    assert!(err.contains("no Vouch database"), "{err}");
    assert!(!missing.exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_postgres_a_token_change_reaches_running_nodes_at_once() {
    let db = PgDatabase::create("admtok").await;
    let key = new_key();
    let envs = [
        ("VOUCH_DATABASE_URL", db.url.as_str()),
        ("VOUCH_MASTER_KEY", key.as_str()),
    ];
    let one = tempfile::tempdir().unwrap();
    let two = tempfile::tempdir().unwrap();
    let a = Serve::start(one.path(), &[], &envs);
    let b = Serve::start(two.path(), &[], &envs);

    let pg = |args: &[&str]| {
        let mut all = vec!["admin-token"];
        all.extend_from_slice(args);
        vouch(&all, &[("VOUCH_DATABASE_URL", db.url.as_str())])
    };
    let value = ok(&pg(&["create", "--name", "while-running"]));
    let value = value.trim().to_string();
    for node in [&a, &b] {
        expect(
            call(
                &node.base,
                "GET",
                "/admin/v1/admin-tokens",
                Some(&value),
                None,
            )
            .await,
            200,
        );
    }
    let listed: Vec<Value> = serde_json::from_str(&ok(&pg(&["list", "--json"]))).unwrap();
    let id = listed
        .iter()
        .find(|t| t["name"] == "while-running")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    ok(&pg(&["revoke", &id]));
    for node in [&a, &b] {
        let (status, body) = call(
            &node.base,
            "GET",
            "/admin/v1/admin-tokens",
            Some(&value),
            None,
        )
        .await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (401, Some("invalid_admin_token")),
            "refused on every node at once"
        );
    }
    a.stop();
    b.stop();

    let mut sql = db.sql().await;
    let rows: Vec<(String, Option<String>)> =
        sqlx::query_as("SELECT kind, actor FROM audit WHERE key_id = $1 ORDER BY seq")
            .bind(&id)
            .fetch_all(&mut sql)
            .await
            .unwrap();
    let _ = sql.close().await;
    assert_eq!(
        rows,
        [
            ("admin_token.created".to_string(), Some("cli".to_string())),
            ("admin_token.deleted".to_string(), Some("cli".to_string())),
        ]
    );
    db.drop_now().await;
}
