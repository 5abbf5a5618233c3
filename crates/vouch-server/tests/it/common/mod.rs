//! Black-box harness: the real server, started in-process on port 0 over a real
//! temporary SQLite file, and a small typed HTTP client for it.
//!
//! Every test opens its own server (or at least its own environment through the admin
//! API), so tests never share state.
#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod pg;
pub mod store;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64ct::{Base64UrlUnpadded, Encoding};
use reqwest::Method;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};
use tempfile::TempDir;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use vouch_core::{IdentityClaims, Secret, SignatureEncoding};

/// The bootstrap admin token every test server accepts (≥ 32 characters).
pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789-abcdefghijklmnop";

/// The exact message the API contract (docs/api.md) fixes for `invalid_signature`.
pub const INVALID_SIGNATURE_MESSAGE: &str = "Incorrect user identity verification signature";

/// A running server.
pub struct Server {
    pub base: String,
    pub addr: SocketAddr,
    pub dir: Option<TempDir>,
    pub http: reqwest::Client,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<anyhow::Result<()>>>,
}

impl Server {
    /// A fresh server on a fresh data directory.
    pub async fn start() -> Server {
        Self::start_in(tempfile::tempdir().expect("a temporary directory")).await
    }

    /// A server on `dir` (a restart when the directory already holds data).
    pub async fn start_in(dir: TempDir) -> Server {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local address");
        let mut config = vouch_server::Config {
            data_dir: dir.path().to_path_buf(),
            admin_token: Some(ADMIN_TOKEN.to_string()),
            ..Default::default()
        };
        pg::configure(&mut config, dir.path()).await;
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(vouch_server::run_with_listener(listener, config, async {
            let _ = rx.await;
        }));
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("an HTTP client");
        let server = Server {
            base: format!("http://{addr}"),
            addr,
            dir: Some(dir),
            http,
            shutdown: Some(tx),
            task: Some(task),
        };
        server.wait_ready().await;
        server
    }

    async fn wait_ready(&self) {
        for _ in 0..200 {
            if let Some(t) = &self.task {
                assert!(!t.is_finished(), "the server stopped during start-up");
            }
            if let Ok(r) = self.http.get(self.url("/healthz")).send().await
                && r.status().is_success()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("the server did not answer /healthz within 5 s");
    }

    pub fn data_dir(&self) -> &Path {
        self.dir.as_ref().expect("data dir").path()
    }

    /// Graceful shutdown; returns the data directory for a restart.
    pub async fn stop(mut self) -> TempDir {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let r = tokio::time::timeout(Duration::from_secs(20), task)
                .await
                .expect("graceful shutdown within 20 s")
                .expect("the server task does not panic");
            r.expect("the server exits without error");
        }
        self.dir.take().expect("data dir")
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Any request. `body` is `(content type, bytes)`.
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        bearer: Option<&str>,
        headers: &[(&str, &str)],
        body: Option<(&str, Vec<u8>)>,
    ) -> Resp {
        let mut req = self.http.request(method, self.url(path));
        if let Some(b) = bearer {
            req = req.header("authorization", format!("Bearer {b}"));
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some((ct, bytes)) = body {
            if !ct.is_empty() {
                req = req.header("content-type", ct);
            }
            req = req.body(bytes);
        }
        let resp = req.send().await.expect("the server answers");
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let bytes = resp.bytes().await.expect("a readable body");
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or(Value::Null)
        };
        Resp {
            status,
            headers,
            body,
            text,
        }
    }

    pub async fn post(&self, path: &str, bearer: Option<&str>, body: &Value) -> Resp {
        self.post_raw(path, bearer, "application/json", body.to_string())
            .await
    }

    pub async fn post_raw(
        &self,
        path: &str,
        bearer: Option<&str>,
        content_type: &str,
        body: impl Into<Vec<u8>>,
    ) -> Resp {
        self.request(
            Method::POST,
            path,
            bearer,
            &[],
            Some((content_type, body.into())),
        )
        .await
    }

    pub async fn get(&self, path: &str, bearer: Option<&str>) -> Resp {
        self.request(Method::GET, path, bearer, &[], None).await
    }

    // ---- widget API ----

    pub async fn identify(&self, pk: &str, body: &Value) -> Resp {
        self.post("/v1/identify", Some(pk), body).await
    }

    /// An identify that must succeed; returns its body.
    pub async fn identify_ok(&self, pk: &str, body: &Value) -> Value {
        self.identify(pk, body).await.expect_status(200)
    }

    pub async fn anonymous(&self, pk: &str) -> Resp {
        self.post("/v1/sessions", Some(pk), &json!({})).await
    }

    pub async fn me(&self, session: &str) -> Resp {
        self.get("/v1/me", Some(session)).await
    }

    pub async fn track(&self, session: &str, body: &Value) -> Resp {
        self.post("/v1/track", Some(session), body).await
    }

    pub async fn group(&self, session: &str, body: &Value) -> Resp {
        self.post("/v1/group", Some(session), body).await
    }

    // ---- admin API ----

    pub async fn admin(&self, method: Method, path: &str, body: Option<&Value>) -> Resp {
        let body = body.map(|b| ("application/json", b.to_string().into_bytes()));
        self.request(method, path, Some(ADMIN_TOKEN), &[], body)
            .await
    }

    pub async fn admin_get(&self, path: &str) -> Value {
        self.admin(Method::GET, path, None).await.expect_status(200)
    }

    /// Creates an environment with these settings (a name is added when missing).
    pub async fn env_with(&self, settings: Value) -> Env {
        let mut body = settings;
        if body.get("name").is_none() {
            body["name"] = json!(format!("env {}", vouch_core::keys::random_base62(6)));
        }
        let created = self
            .admin(Method::POST, "/admin/v1/environments", Some(&body))
            .await
            .expect_status(201);
        Env {
            id: created["id"].as_str().expect("id").to_string(),
            pk: created["publishable_key"]
                .as_str()
                .expect("publishable_key")
                .to_string(),
            secret: created["secret"]["value"]
                .as_str()
                .expect("secret.value")
                .to_string(),
            key_id: created["secret"]["id"]
                .as_str()
                .expect("secret.id")
                .to_string(),
            created,
        }
    }

    /// A new environment with default settings.
    pub async fn env(&self) -> Env {
        self.env_with(json!({})).await
    }

    pub async fn patch_env(&self, env_id: &str, settings: Value) -> Value {
        self.admin(
            Method::PATCH,
            &format!("/admin/v1/environments/{env_id}"),
            Some(&settings),
        )
        .await
        .expect_status(200)
    }

    /// Every audit entry of an environment, newest first.
    pub async fn audit(&self, env_id: &str) -> Vec<Value> {
        let v = self
            .admin_get(&format!("/admin/v1/environments/{env_id}/audit?limit=200"))
            .await;
        v["data"].as_array().cloned().unwrap_or_default()
    }

    pub async fn secrets(&self, env_id: &str) -> Vec<Value> {
        let v = self
            .admin_get(&format!("/admin/v1/environments/{env_id}/secrets"))
            .await;
        v["data"].as_array().cloned().unwrap_or_default()
    }

    pub async fn secret_status(&self, env_id: &str, key_id: &str) -> String {
        let v = self
            .admin_get(&format!("/admin/v1/environments/{env_id}/secrets/{key_id}"))
            .await;
        v["status"].as_str().expect("status").to_string()
    }

    pub async fn admin_user(&self, env_id: &str, user_id: &str) -> Resp {
        self.admin(
            Method::GET,
            &format!("/admin/v1/environments/{env_id}/users/{}", pct(user_id)),
            None,
        )
        .await
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// An environment made through the admin API.
#[derive(Debug, Clone)]
pub struct Env {
    pub id: String,
    pub pk: String,
    pub secret: String,
    pub key_id: String,
    pub created: Value,
}

impl Env {
    /// Hex signature of `id` with this environment's first secret.
    pub fn sign(&self, id: &str) -> String {
        sign_hex(&self.secret, id)
    }
}

/// An HTTP answer.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Value,
    pub text: String,
}

impl Resp {
    /// Asserts the status and returns the JSON body.
    #[track_caller]
    pub fn expect_status(self, status: u16) -> Value {
        assert_eq!(
            self.status, status,
            "expected {status}, got {}: {}",
            self.status, self.text
        );
        self.body
    }

    /// Asserts an error answer of exactly the contract's shape
    /// `{"error": {"code", "message"}}`, and returns the message.
    #[track_caller]
    pub fn expect_error(&self, status: u16, code: &str) -> String {
        assert_eq!(
            (self.status, self.body["error"]["code"].as_str()),
            (status, Some(code)),
            "expected {status} {code}, got {}: {}",
            self.status,
            self.text
        );
        assert_json_error_shape(self);
        self.body["error"]["message"]
            .as_str()
            .expect("message")
            .to_string()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// The body is JSON with `Content-Type: application/json` and exactly
/// `{"error": {"code": string, "message": non-empty string}}`.
#[track_caller]
pub fn assert_json_error_shape(r: &Resp) {
    let ct = r.header("content-type").unwrap_or("");
    assert!(
        ct.starts_with("application/json"),
        "error content type {ct:?}: {}",
        r.text
    );
    let obj = r.body.as_object().unwrap_or_else(|| {
        panic!("error body is not a JSON object: {:?}", r.text);
    });
    assert_eq!(obj.len(), 1, "only `error` at the top: {}", r.text);
    let err = obj["error"].as_object().expect("`error` is an object");
    let mut keys: Vec<&str> = err.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["code", "message"], "error fields: {}", r.text);
    assert!(err["code"].is_string());
    assert!(
        !err["message"].as_str().unwrap_or("").is_empty(),
        "empty message: {}",
        r.text
    );
}

// ---- proofs, computed as a customer backend would ----

pub fn secret(s: &str) -> Secret {
    Secret::new(s.to_string())
}

pub fn sign_hex(secret_value: &str, message: &str) -> String {
    vouch_core::proof::sign(
        &secret(secret_value),
        message.as_bytes(),
        SignatureEncoding::Hex,
    )
}

pub fn sign_enc(secret_value: &str, message: &str, enc: SignatureEncoding) -> String {
    vouch_core::proof::sign(&secret(secret_value), message.as_bytes(), enc)
}

/// HS256 identity token.
pub fn token(secret_value: &str, kid: Option<&str>, claims: &IdentityClaims) -> String {
    vouch_core::proof::issue_identity_token(&secret(secret_value), kid, claims)
        .expect("a token is issued")
}

pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs() as i64
}

/// Header and claims of a compact JWT, unverified.
pub fn jwt_parts(jwt: &str) -> (Value, Value) {
    let mut parts = jwt.split('.');
    let mut next = || {
        let seg = parts.next().expect("a JWT segment");
        let bytes = Base64UrlUnpadded::decode_vec(seg).expect("base64url segment");
        serde_json::from_slice::<Value>(&bytes).expect("JSON segment")
    };
    let header = next();
    let claims = next();
    (header, claims)
}

/// Rate limits count in fixed one-minute windows: wait out the end of the
/// current minute so a test's failures all land in one window.
pub async fn avoid_minute_boundary(needed_seconds: u64) {
    let into = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis()
        % 60_000;
    let left = 60_000 - into;
    if left < u128::from(needed_seconds) * 1000 {
        tokio::time::sleep(Duration::from_millis(left as u64 + 200)).await;
    }
}

/// Percent-encodes a path segment.
pub fn pct(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Path of a file under `tests/support`.
pub fn support_file(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("support")
        .join(name)
}

/// Runs a program, failing the test with a clear message when it is missing.
pub fn run_program(program: &str, args: &[&str], envs: &[(&str, &str)]) -> std::process::Output {
    let mut cmd = std::process::Command::new(program);
    cmd.args(args)
        .env("NO_PROXY", "127.0.0.1,localhost")
        .env("no_proxy", "127.0.0.1,localhost");
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd.output().unwrap_or_else(|e| {
        panic!(
            "cannot run `{program}` ({e}); install it with crates/vouch-server/tests/support/install-deps.sh"
        )
    })
}

/// Stdout of a program that must succeed.
pub fn program_stdout(program: &str, args: &[&str], envs: &[(&str, &str)]) -> String {
    let out = run_program(program, args, envs);
    assert!(
        out.status.success(),
        "`{program}` failed ({:?}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

/// A well-formed signature that differs from `sig` in its first character.
pub fn corrupt(sig: &str) -> String {
    let first = if sig.starts_with('0') { '1' } else { '0' };
    format!("{first}{}", &sig[1..])
}

/// The value of the first `/metrics` sample line that starts with `prefix`, or 0.
pub fn sample(text: &str, prefix: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

impl Server {
    /// A server on a fresh data directory, always on SQLite, whose configuration `tune`
    /// adjusts before it starts (trusted proxies, connection limits, webhooks…).
    pub async fn start_configured(tune: impl FnOnce(&mut vouch_server::Config)) -> Server {
        Self::start_configured_in(tempfile::tempdir().expect("a temporary directory"), tune).await
    }

    /// [`Server::start_configured`] on `dir` (a restart when it already holds data).
    pub async fn start_configured_in(
        dir: TempDir,
        tune: impl FnOnce(&mut vouch_server::Config),
    ) -> Server {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local address");
        let mut config = vouch_server::Config {
            data_dir: dir.path().to_path_buf(),
            admin_token: Some(ADMIN_TOKEN.to_string()),
            ..Default::default()
        };
        tune(&mut config);
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(vouch_server::run_with_listener(listener, config, async {
            let _ = rx.await;
        }));
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("an HTTP client");
        let server = Server {
            base: format!("http://{addr}"),
            addr,
            dir: Some(dir),
            http,
            shutdown: Some(tx),
            task: Some(task),
        };
        server.wait_ready().await;
        server
    }
}

/// A TCP connection to `to` from the loopback address `from` (any of 127.0.0.0/8), so
/// that one test can be many clients.
pub async fn connect_from(from: std::net::IpAddr, to: SocketAddr) -> tokio::net::TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().expect("a socket");
    socket
        .bind(SocketAddr::new(from, 0))
        .expect("bind the source address");
    socket.connect(to).await.expect("connect")
}

/// The answer to one raw HTTP/1.1 request on `stream` (read until the answer's
/// `Content-Length` is complete, the peer closes, or `limit` passes).
pub async fn raw_exchange(
    stream: &mut tokio::net::TcpStream,
    request: &[u8],
    limit: Duration,
) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    stream.write_all(request).await.expect("send the request");
    let deadline = tokio::time::Instant::now() + limit;
    let mut got = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        let read = tokio::time::timeout_at(deadline, stream.read(&mut buf)).await;
        match read {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => break,
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
        }
        if let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&got[..end]).to_ascii_lowercase();
            let length = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok());
            if length.is_some_and(|n| got.len() >= end + 4 + n) {
                break;
            }
        }
    }
    String::from_utf8_lossy(&got).into_owned()
}

/// The start-up banner of a first start on an empty data directory in `dir`, with the
/// configuration `configure` adjusts; the store is closed again before returning.
pub async fn first_start_banner(
    dir: &Path,
    configure: impl FnOnce(&mut vouch_server::Config),
) -> String {
    let mut config = vouch_server::Config {
        addr: "127.0.0.1:8080".into(),
        data_dir: dir.to_path_buf(),
        ..Default::default()
    };
    pg::configure(&mut config, dir).await;
    configure(&mut config);
    let started = vouch_server::bootstrap::start(config)
        .await
        .expect("a first start");
    started.state.store.close().await;
    started.banner
}

impl Server {
    /// A server on SQLite with a second, admin listener (`--admin-addr`), both on
    /// port 0; `tune` adjusts the configuration first. Answers the server (its
    /// `base` is the main address) and the admin address.
    pub async fn start_split(tune: impl FnOnce(&mut vouch_server::Config)) -> (Server, SocketAddr) {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let main = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let admin = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let (addr, admin_addr) = (
            main.local_addr().expect("local address"),
            admin.local_addr().expect("local address"),
        );
        let mut config = vouch_server::Config {
            data_dir: dir.path().to_path_buf(),
            admin_token: Some(ADMIN_TOKEN.to_string()),
            ..Default::default()
        };
        tune(&mut config);
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(vouch_server::run_with_listeners(
            main,
            Some(admin),
            config,
            async {
                let _ = rx.await;
            },
        ));
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(30))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("an HTTP client");
        let server = Server {
            base: format!("http://{addr}"),
            addr,
            dir: Some(dir),
            http,
            shutdown: Some(tx),
            task: Some(task),
        };
        server.wait_ready().await;
        (server, admin_addr)
    }
}
