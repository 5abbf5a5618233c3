//! The shared suite on PostgreSQL: with `VOUCH_TEST_DATABASE_URL` naming a
//! PostgreSQL server (e.g. `postgres://postgres@127.0.0.1:5432/postgres`),
//! every test server gets a fresh database there and its own master key.
//! Both are remembered in the server's data directory, so a restart on the
//! same directory reopens the same database.

use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use reqwest::Method;
use serde_json::Value;
use sqlx::{Connection, Executor};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Names the PostgreSQL server to run the suite against; SQLite when unset.
pub const DATABASE_URL_VAR: &str = "VOUCH_TEST_DATABASE_URL";
const MARKER: &str = "test-postgres.txt";
const PREFIX: &str = "vouch_t_";

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// Points `config` at a fresh PostgreSQL database when the suite runs on PostgreSQL.
pub async fn configure(config: &mut vouch_server::Config, dir: &Path) {
    if dir.join(SQLITE_ONLY).exists() {
        return;
    }
    let marker = dir.join(MARKER);
    if let Ok(text) = std::fs::read_to_string(&marker) {
        let mut lines = text.lines();
        config.database_url = lines.next().map(str::to_string);
        config.master_key = lines.next().map(str::to_string);
        return;
    }
    let Some(server) = std::env::var(DATABASE_URL_VAR)
        .ok()
        .filter(|s| !s.is_empty())
    else {
        return;
    };
    let url = fresh_database(&server).await;
    let key = vouch_server::crypto::MasterKey::generate()
        .expect("a master key")
        .to_base64()
        .to_string();
    std::fs::write(&marker, format!("{url}\n{key}\n")).expect("write the PostgreSQL marker");
    config.database_url = Some(url);
    config.master_key = Some(key);
}

/// Creates an empty database on `server` and returns its URL. The first call
/// of a test process also drops the databases left by processes that ended.
pub async fn fresh_database(server: &str) -> String {
    let mut admin = sqlx::PgConnection::connect(server)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to PostgreSQL at {server} ({e}); start it with scripts/test-postgres.sh"));
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    if n == 0 {
        drop_stale(&mut admin).await;
    }
    let name = format!(
        "{PREFIX}{}_{n}_{}",
        std::process::id(),
        vouch_core::keys::random_base62(6).to_lowercase()
    );
    admin
        .execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
        .await
        .expect("CREATE DATABASE");
    let _ = admin.close().await;
    let mut url = url::Url::parse(server).expect("a PostgreSQL URL");
    url.set_path(&format!("/{name}"));
    url.to_string()
}

async fn drop_stale(admin: &mut sqlx::PgConnection) {
    let names: Vec<String> =
        sqlx::query_scalar("SELECT datname FROM pg_database WHERE starts_with(datname, $1)")
            .bind(PREFIX)
            .fetch_all(&mut *admin)
            .await
            .unwrap_or_default();
    for name in names {
        let pid = name
            .strip_prefix(PREFIX)
            .and_then(|rest| rest.split('_').next())
            .and_then(|p| p.parse::<u32>().ok());
        if let Some(pid) = pid
            && !Path::new(&format!("/proc/{pid}")).exists()
        {
            let _ = admin
                .execute(sqlx::AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
                )))
                .await;
        }
    }
}

/// The PostgreSQL server of the multi-node tests (`VOUCH_TEST_POSTGRES`).
pub fn test_server_url() -> String {
    std::env::var("VOUCH_TEST_POSTGRES")
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/postgres".to_string())
}

/// A fresh database and a master key that every node of one test shares.
#[derive(Clone, Debug)]
pub struct Cluster {
    pub url: String,
    pub master_key: String,
}

impl Cluster {
    pub async fn new() -> Cluster {
        Cluster {
            url: fresh_database(&test_server_url()).await,
            master_key: vouch_server::crypto::MasterKey::generate()
                .expect("a master key")
                .to_base64()
                .to_string(),
        }
    }

    /// A direct connection to the cluster's database, for checks behind the API.
    pub async fn sql(&self) -> sqlx::PgConnection {
        sqlx::PgConnection::connect(&self.url)
            .await
            .expect("connect to the test database")
    }

    /// Drops the database (the nodes must be stopped).
    pub async fn drop_database(self) {
        let name = url::Url::parse(&self.url)
            .expect("URL")
            .path()
            .trim_start_matches('/')
            .to_string();
        let mut admin = sqlx::PgConnection::connect(&test_server_url())
            .await
            .expect("connect to PostgreSQL");
        admin
            .execute(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
            )))
            .await
            .expect("DROP DATABASE");
    }

    /// Starts one more node on the shared database.
    pub async fn node(&self) -> Node {
        self.node_with(|_| {}).await
    }

    pub async fn node_with(&self, adjust: impl FnOnce(&mut vouch_server::Config)) -> Node {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local address");
        let mut config = vouch_server::Config {
            data_dir: dir.path().to_path_buf(),
            database_url: Some(self.url.clone()),
            master_key: Some(self.master_key.clone()),
            admin_token: Some(super::ADMIN_TOKEN.to_string()),
            ..Default::default()
        };
        adjust(&mut config);
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(vouch_server::run_with_listener(listener, config, async {
            let _ = rx.await;
        }));
        let node = Node {
            base: format!("http://{addr}"),
            http: reqwest::Client::builder()
                .no_proxy()
                .timeout(Duration::from_secs(30))
                .build()
                .expect("an HTTP client"),
            shutdown: Some(tx),
            task: Some(task),
            _dir: dir,
        };
        for _ in 0..400 {
            if let Some(t) = &node.task {
                assert!(!t.is_finished(), "the node stopped during start-up");
            }
            if let Ok(r) = node.http.get(format!("{}/healthz", node.base)).send().await
                && r.status().is_success()
            {
                return node;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("the node did not answer /healthz within 10 s");
    }
}

/// One Vouch node of a [`Cluster`].
#[derive(Debug)]
pub struct Node {
    pub base: String,
    pub http: reqwest::Client,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<anyhow::Result<()>>>,
    _dir: tempfile::TempDir,
}

impl Node {
    /// Any call; answers `(status, JSON body or Null)`.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        bearer: &str,
        body: Option<&Value>,
    ) -> (u16, Value) {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .header("authorization", format!("Bearer {bearer}"));
        if let Some(b) = body {
            req = req
                .header("content-type", "application/json")
                .body(b.to_string());
        }
        let resp = req.send().await.expect("the node answers");
        let status = resp.status().as_u16();
        let bytes = resp.bytes().await.expect("a body");
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    pub async fn admin(&self, method: Method, path: &str, body: Option<&Value>) -> (u16, Value) {
        self.call(method, path, super::ADMIN_TOKEN, body).await
    }

    /// An identify; `(status, body)`.
    pub async fn identify(&self, pk: &str, body: &Value) -> (u16, Value) {
        self.call(Method::POST, "/v1/identify", pk, Some(body))
            .await
    }

    /// Graceful shutdown; the node must exit without error.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            tokio::time::timeout(Duration::from_secs(20), task)
                .await
                .expect("graceful shutdown within 20 s")
                .expect("the node task does not panic")
                .expect("the node exits without error");
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

const SQLITE_ONLY: &str = "test-sqlite-only";

impl super::Server {
    /// A server on SQLite even when the suite runs on PostgreSQL, for the
    /// tests that look inside the SQLite files themselves.
    pub async fn start_sqlite() -> super::Server {
        let dir = tempfile::tempdir().expect("a temporary directory");
        std::fs::write(dir.path().join(SQLITE_ONLY), "").expect("write the SQLite marker");
        Self::start_in(dir).await
    }
}
