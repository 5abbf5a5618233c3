//! Durability and secrecy at rest: acknowledged writes are committed and survive a
//! restart; no secret value is ever written to the SQLite files in the clear.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use crate::common::store::NOW;
use crate::common::*;
use reqwest::Method;
use serde_json::json;
use sqlx::{Connection, Row};
use vouch_core::{IdentityClaims, VerifiedBy};
use vouch_server::model::{Enforcement, IdentifyCommand, Proven};

/// The raw bytes of every SQLite file in the data directory.
fn database_bytes(dir: &Path) -> Vec<(String, Vec<u8>)> {
    ["vouch.db", "vouch.db-wal", "vouch.db-shm"]
        .iter()
        .filter_map(|name| {
            std::fs::read(dir.join(name))
                .ok()
                .map(|b| (name.to_string(), b))
        })
        .collect()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

#[track_caller]
fn assert_absent(files: &[(String, Vec<u8>)], secrets: &[(&str, String)]) {
    for (file, bytes) in files {
        for (what, value) in secrets {
            assert!(
                !contains(bytes, value.as_bytes()),
                "{what} found in clear text in {file}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_reaches_the_database_files_in_clear() {
    let s = Server::start_sqlite().await;
    let env = s.env().await;
    let secrets_path = format!("/admin/v1/environments/{}/secrets", env.id);
    let imported = "imported-vendor-secret-VERY-DISTINCTIVE-0042";
    s.admin(
        Method::POST,
        &secrets_path,
        Some(&json!({"value": imported})),
    )
    .await
    .expect_status(201);
    let created = s
        .admin(Method::POST, &secrets_path, Some(&json!({})))
        .await
        .expect_status(201);
    let rotated = s
        .admin(
            Method::POST,
            &secrets_path,
            Some(&json!({"rotate": true, "grace_seconds": 3600})),
        )
        .await
        .expect_status(201);
    let rotated_value = rotated["value"].as_str().unwrap().to_string();
    s.admin_get(&format!("{secrets_path}/{}?reveal=true", env.key_id))
        .await;
    let webhook = s
        .admin(
            Method::POST,
            &format!("/admin/v1/environments/{}/webhooks", env.id),
            Some(&json!({"url": "https://hooks.example.invalid/vouch"})),
        )
        .await
        .expect_status(201);
    let webhook_secret = webhook["secret"].as_str().unwrap().to_string();
    assert!(webhook_secret.starts_with("whsec_"));
    s.admin(
        Method::POST,
        "/admin/v1/signing-keys/rotate",
        Some(&json!({})),
    )
    .await
    .expect_status(201);
    // Widget traffic with every proof, and an exposure.
    s.identify_ok(
        &env.pk,
        &json!({"user_id": "durable-user", "signature": sign_hex(&rotated_value, "durable-user")}),
    )
    .await;
    let t = token(imported, None, &IdentityClaims::new("token-user"));
    s.identify_ok(&env.pk, &json!({"user_id": "token-user", "token": t}))
        .await;
    let created_value = created["value"].as_str().unwrap().to_string();
    s.identify(
        &env.pk,
        &json!({"user_id": "x", "signature": created_value}),
    )
    .await
    .expect_error(403, "secret_key_exposed");
    let bootstrap_secret = {
        // The bootstrap environment's secret, through reveal.
        let envs = s.admin_get("/admin/v1/environments").await;
        let boot = envs["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["name"] == "test")
            .unwrap()
            .clone();
        let id = boot["id"].as_str().unwrap();
        let list = s.secrets(id).await;
        let key = list[0]["id"].as_str().unwrap();
        s.admin_get(&format!(
            "/admin/v1/environments/{id}/secrets/{key}?reveal=true"
        ))
        .await["value"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let master_key = std::fs::read_to_string(s.data_dir().join("master.key"))
        .unwrap()
        .trim()
        .to_string();
    let secrets = [
        ("the first secret", env.secret.clone()),
        ("the imported secret", imported.to_string()),
        ("a created secret", created_value),
        ("a rotated-in secret", rotated_value.clone()),
        ("the bootstrap secret", bootstrap_secret),
        ("a webhook secret", webhook_secret),
        ("the admin token", ADMIN_TOKEN.to_string()),
        ("the master key", master_key),
    ];
    // While running (recent writes sit in the WAL) ...
    let running = database_bytes(s.data_dir());
    assert!(
        running.iter().any(|(_, b)| contains(b, env.id.as_bytes())),
        "the test reads the real database files"
    );
    assert!(
        running.iter().any(|(_, b)| contains(b, b"durable-user")),
        "the acknowledged user is in the files"
    );
    assert_absent(&running, &secrets);
    // ... and after a graceful shutdown.
    let dir = s.stop().await;
    let stopped = database_bytes(dir.path());
    assert!(stopped.iter().any(|(_, b)| contains(b, b"durable-user")));
    assert_absent(&stopped, &secrets);
    // Everything is back after a restart, decrypted with the key file.
    let s = Server::start_in(dir).await;
    let u = s
        .admin_user(&env.id, "durable-user")
        .await
        .expect_status(200);
    assert_eq!(u["verified"], json!(true));
    s.identify_ok(
        &env.pk,
        &json!({"user_id": "after-restart", "signature": sign_hex(&rotated_value, "after-restart")}),
    )
    .await;
    let states: Vec<String> = s
        .secrets(&env.id)
        .await
        .iter()
        .map(|x| x["status"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        states.iter().filter(|x| *x == "revoked").count(),
        1,
        "{states:?}"
    );
    assert_eq!(
        s.admin_get(&format!("{secrets_path}/{}?reveal=true", env.key_id))
            .await["value"],
        json!(env.secret)
    );
    assert_absent(&database_bytes(s.data_dir()), &secrets);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_acknowledged_identify_is_committed() {
    let s = Server::start_sqlite().await;
    let env = s.env().await;
    let db = s.data_dir().join("vouch.db");
    let opts = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(&db)
        .read_only(true);
    for i in 0..20 {
        let id = format!("committed-{i}");
        s.identify_ok(&env.pk, &json!({"user_id": id, "signature": env.sign(&id)}))
            .await;
        // Another connection sees it at once: the 200 came after the commit.
        let mut conn = sqlx::sqlite::SqliteConnection::connect_with(&opts)
            .await
            .unwrap();
        let row = sqlx::query("SELECT verified FROM users WHERE env_id = ? AND id = ?")
            .bind(&env.id)
            .bind(&id)
            .fetch_optional(&mut conn)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("{id} is not committed"));
        assert!(row.get::<bool, _>("verified"));
        conn.close().await.unwrap();
    }
    let out = s.identify_ok(&env.pk, &json!({"user_id": "t"})).await;
    s.track(
        out["session_token"].as_str().unwrap(),
        &json!({"event": "e1"}),
    )
    .await
    .expect_status(202);
    let mut conn = sqlx::sqlite::SqliteConnection::connect_with(&opts)
        .await
        .unwrap();
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM events WHERE env_id = ? AND name = 'e1'")
        .bind(&env.id)
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(n, 1);
    conn.close().await.unwrap();
    // And a restart keeps all of it.
    let dir = s.stop().await;
    let s = Server::start_in(dir).await;
    let list = s
        .admin_get(&format!(
            "/admin/v1/environments/{}/users?verified=true&limit=200",
            env.id
        ))
        .await;
    assert_eq!(list["data"].as_array().unwrap().len(), 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_identifies_are_all_durable() {
    let s = std::sync::Arc::new(Server::start().await);
    let env = s.env().await;
    let mut tasks = Vec::new();
    for i in 0..64 {
        let s = s.clone();
        let env = env.clone();
        tasks.push(tokio::spawn(async move {
            let id = format!("c-{i:02}");
            s.identify_ok(&env.pk, &json!({"user_id": id, "signature": env.sign(&id)}))
                .await;
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let s = std::sync::Arc::into_inner(s).expect("no other owner");
    let dir = s.stop().await;
    let s = Server::start_in(dir).await;
    let list = s
        .admin_get(&format!(
            "/admin/v1/environments/{}/users?limit=200",
            env.id
        ))
        .await;
    assert_eq!(list["data"].as_array().unwrap().len(), 64);
}

/// The verified count in the coverage stats, read from the SQLite file itself.
fn stats_in_file(path: &Path) -> i64 {
    let c = rusqlite::Connection::open(path).unwrap();
    c.query_row(
        "SELECT COALESCE(SUM(verified), 0) FROM identify_stats",
        [],
        |r| r.get(0),
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unchanged_identify_writes_nothing_and_is_still_counted() {
    let dir = tempfile::tempdir().unwrap();
    let store = store::bootstrapped_sqlite(dir.path(), "env_a").await;
    let mut attributes = serde_json::Map::new();
    attributes.insert("plan".into(), json!("pro"));
    let cmd = |now: i64| IdentifyCommand {
        env_id: "env_a".into(),
        user_id: "42".into(),
        proof: Some(Proven {
            by: VerifiedBy::Signature,
            key_id: "key_env_a".into(),
        }),
        attributes: attributes.clone(),
        verified_attributes: serde_json::Map::new(),
        enforcement: Enforcement::Off,
        unsigned_limit: None,
        jti: None,
        now,
    };
    let first = store.identify(cmd(NOW)).await.unwrap().unwrap();
    assert!(first.write && first.created);

    // 30 s later, the same proof and attributes: the stored row is kept
    // as it was, the answer is the stored user.
    let again = store.identify(cmd(NOW + 30)).await.unwrap().unwrap();
    assert!(!again.write);
    assert_eq!(again.user, first.user);
    let stored = store.get_user("env_a", "42").await.unwrap().unwrap();
    assert_eq!(stored.updated_at, NOW);
    assert_eq!(stored.verified_at, Some(NOW));

    // Both count in the coverage at once (the read writes what is pending).
    let c = store.coverage("env_a", NOW - 60).await.unwrap();
    assert_eq!(c.verified, 2);
    assert_eq!(stats_in_file(&dir.path().join("vouch.db")), 2);

    // Without a read, pending counts reach the file within a second or so.
    store.identify(cmd(NOW + 31)).await.unwrap().unwrap();
    let path = dir.path().join("vouch.db");
    let mut written = 0;
    for _ in 0..50 {
        written = stats_in_file(&path);
        if written == 3 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(written, 3, "the pending count was not written within 5 s");

    // And at close, whatever is still pending is written.
    store.identify(cmd(NOW + 32)).await.unwrap().unwrap();
    store.close().await;
    assert_eq!(stats_in_file(&path), 4);

    // A minute after the recorded proof, it is recorded again.
    let store = store::sqlite_store(dir.path()).await;
    let later = store.identify(cmd(NOW + 60)).await.unwrap().unwrap();
    assert!(later.write);
    let stored = store.get_user("env_a", "42").await.unwrap().unwrap();
    assert_eq!(stored.verified_at, Some(NOW + 60));
    assert_eq!(store.coverage("env_a", NOW - 60).await.unwrap().verified, 5);
    store.close().await;
}
