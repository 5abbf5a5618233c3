//! `vouch migrate-store`: a SQLite store with users, secrets and audit entries
//! copied into a fresh PostgreSQL database (`VOUCH_TEST_POSTGRES`, default
//! `postgres://postgres@127.0.0.1:5432/postgres`), then served from there.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use serde_json::{Value, json};
use sqlx::{Connection, Executor};
use tokio::sync::oneshot;
use vouch_core::{Secret, SignatureEncoding};

const ADMIN: &str = "migrate-store-test-admin-token-0123456789";

fn server_url() -> String {
    std::env::var("VOUCH_TEST_POSTGRES")
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/postgres".to_string())
}

fn sign(secret: &str, id: &str) -> String {
    vouch_core::proof::sign(
        &Secret::new(secret.to_string()),
        id.as_bytes(),
        SignatureEncoding::Hex,
    )
}

fn migrate(dir: &Path, to: &str, key: &str, yes: bool) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_vouch"));
    cmd.args(["migrate-store", "--from-data-dir"])
        .arg(dir)
        .args(["--to", to, "--master-key", key])
        .env_remove("VOUCH_MASTER_KEY")
        .stdin(Stdio::null());
    if yes {
        cmd.arg("--yes");
    }
    cmd.output().expect("the vouch binary runs")
}

struct Running {
    base: String,
    http: reqwest::Client,
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

async fn serve(dir: &Path, database_url: Option<String>, key: &str) -> Running {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let config = vouch_server::Config {
        data_dir: dir.to_path_buf(),
        database_url,
        master_key: Some(key.to_string()),
        admin_token: Some(ADMIN.to_string()),
        ..Default::default()
    };
    let (stop, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(vouch_server::run_with_listener(listener, config, async {
        let _ = rx.await;
    }));
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    for _ in 0..400 {
        assert!(!task.is_finished(), "the server stopped during start-up");
        if let Ok(r) = http.get(format!("{base}/healthz")).send().await
            && r.status().is_success()
        {
            return Running {
                base,
                http,
                stop,
                task,
            };
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("no /healthz within 10 s");
}

impl Running {
    async fn call(
        &self,
        method: &str,
        path: &str,
        bearer: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .header("authorization", format!("Bearer {bearer}"));
        if let Some(b) = body {
            req = req
                .header("content-type", "application/json")
                .body(b.to_string());
        }
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    async fn stop(self) {
        let _ = self.stop.send(());
        self.task.await.unwrap().unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_store_copies_sqlite_into_an_empty_postgres_that_then_serves_the_same_data() {
    let dir = tempfile::tempdir().unwrap();
    let key = vouch_server::crypto::MasterKey::generate()
        .unwrap()
        .to_base64()
        .to_string();

    // A SQLite node with some history.
    let lite = serve(dir.path(), None, &key).await;
    let (status, env) = lite
        .call(
            "POST",
            "/admin/v1/environments",
            ADMIN,
            Some(json!({"name": "moving"})),
        )
        .await;
    assert_eq!(status, 201, "{env}");
    let env_id = env["id"].as_str().unwrap().to_string();
    let pk = env["publishable_key"].as_str().unwrap().to_string();
    let secret = env["secret"]["value"].as_str().unwrap().to_string();
    let (status, v) = lite
        .call(
            "POST",
            "/v1/identify",
            &pk,
            Some(json!({"user_id": "ada", "signature": sign(&secret, "ada"), "attributes": {"plan": "pro"}})),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    let (status, v) = lite
        .call("POST", "/v1/identify", &pk, Some(json!({"user_id": "bob"})))
        .await;
    assert_eq!(status, 200, "{v}");
    lite.stop().await;

    // A fresh database.
    let name = format!("vouch_migrate_{}", std::process::id());
    let mut admin = sqlx::PgConnection::connect(&server_url())
        .await
        .expect("PostgreSQL is running (scripts/test-postgres.sh starts it)");
    admin
        .execute(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
        )))
        .await
        .unwrap();
    admin
        .execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .await
        .unwrap();
    let target = {
        let base = server_url();
        let (prefix, _) = base.rsplit_once('/').unwrap();
        format!("{prefix}/{name}")
    };

    // Without --yes nothing is copied; a wrong master key is refused.
    let dry = migrate(dir.path(), &target, &key, false);
    assert_eq!(dry.status.code(), Some(2), "{dry:?}");
    assert!(
        String::from_utf8_lossy(&dry.stdout).contains("empty: ready"),
        "{dry:?}"
    );
    let other = vouch_server::crypto::MasterKey::generate()
        .unwrap()
        .to_base64()
        .to_string();
    let wrong = migrate(dir.path(), &target, &other, true);
    assert!(!wrong.status.success());
    assert!(String::from_utf8_lossy(&wrong.stderr).contains("master key does not match"));
    let mut db = sqlx::PgConnection::connect(&target).await.unwrap();
    let users: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users")
        .fetch_one(&mut db)
        .await
        .unwrap();
    assert_eq!(users, 0, "nothing copied yet");

    let done = migrate(dir.path(), &target, &key, true);
    assert!(
        done.status.success(),
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );
    let out = String::from_utf8_lossy(&done.stdout);
    assert!(
        out.contains("users") && out.contains("environments"),
        "{out}"
    );

    // A second run finds the target full.
    let again = migrate(dir.path(), &target, &key, true);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("not empty"));

    // A PostgreSQL node serves the same environment, keys and users.
    let pg_dir = tempfile::tempdir().unwrap();
    let pg = serve(pg_dir.path(), Some(target.clone()), &key).await;
    let (status, v) = pg
        .call("POST", "/v1/identify", &pk, Some(json!({"user_id": "ada"})))
        .await;
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (401, Some("signature_required")),
        "{v}"
    );
    let (status, v) = pg
        .call(
            "POST",
            "/v1/identify",
            &pk,
            Some(json!({"user_id": "ada", "signature": sign(&secret, "ada")})),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["user"]["attributes"]["plan"], "pro");
    let (status, v) = pg
        .call(
            "GET",
            &format!("/admin/v1/environments/{env_id}/users/bob"),
            ADMIN,
            None,
        )
        .await;
    assert_eq!((status, v["verified"].as_bool()), (200, Some(false)), "{v}");
    // New rows (and audit sequence numbers) continue after the copied ones.
    let (status, v) = pg
        .call(
            "POST",
            &format!("/admin/v1/environments/{env_id}/secrets"),
            ADMIN,
            Some(json!({})),
        )
        .await;
    assert_eq!(status, 201, "{v}");
    let (status, v) = pg
        .call(
            "GET",
            &format!("/admin/v1/environments/{env_id}/audit"),
            ADMIN,
            None,
        )
        .await;
    assert_eq!(status, 200, "{v}");
    assert!(v["data"].as_array().unwrap().len() >= 2, "{v}");
    pg.stop().await;

    drop(db);
    admin
        .execute(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
        )))
        .await
        .unwrap();
}
