//! Shared by the tests of the offline commands (`vouch admin-token`, `vouch
//! rotate-master-key`): the real binary as a server and as a command, a small
//! HTTP client, a webhook receiver, and fresh PostgreSQL databases.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64ct::{Base64, Encoding};
use hmac::{KeyInit, Mac};
use serde_json::Value;
use sqlx::{Connection, Executor};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The bootstrap admin token of every test server.
pub const ADMIN: &str = "offline-commands-test-admin-token-0123456789";

/// `vouch ARGS` with only `envs` in its environment.
pub fn vouch(args: &[&str], envs: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_vouch"));
    cmd.args(args).env_clear().stdin(Stdio::null());
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd.output().expect("the vouch binary runs")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Asserts success and returns stdout.
#[track_caller]
pub fn ok(o: &Output) -> String {
    assert!(
        o.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        o.status.code(),
        stdout(o),
        stderr(o)
    );
    stdout(o)
}

/// Asserts the exit code and returns stderr.
#[track_caller]
pub fn fails(o: &Output, code: i32) -> String {
    assert_eq!(
        o.status.code(),
        Some(code),
        "stdout: {}\nstderr: {}",
        stdout(o),
        stderr(o)
    );
    stderr(o)
}

/// A `vouch serve` process on port 0.
pub struct Serve {
    pub child: Child,
    pub base: String,
    banner: Arc<Mutex<String>>,
    /// Holds the directory of the child's stderr for as long as the process runs.
    #[allow(dead_code)]
    logs: tempfile::TempDir,
}

impl Serve {
    /// Starts `vouch serve --data-dir DIR` with `extra` arguments and `envs`,
    /// and waits until it answers.
    pub fn start(dir: &Path, extra: &[&str], envs: &[(&str, &str)]) -> Serve {
        let logs = tempfile::tempdir().unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_vouch"));
        cmd.args(["serve", "--addr", "127.0.0.1:0", "--data-dir"])
            .arg(dir)
            .args(extra)
            .env_clear()
            .env("VOUCH_ADMIN_TOKEN", ADMIN)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(logs.path().join("stderr")).unwrap());
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("vouch serve starts");
        let banner = Arc::new(Mutex::new(String::new()));
        let out = child.stdout.take().unwrap();
        let sink = banner.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                let mut b = sink.lock().unwrap();
                b.push_str(&line);
                b.push('\n');
            }
        });
        let deadline = Instant::now() + Duration::from_secs(30);
        let base = loop {
            if let Some(status) = child.try_wait().unwrap() {
                panic!(
                    "vouch serve exited ({status}): {}",
                    std::fs::read_to_string(logs.path().join("stderr")).unwrap_or_default()
                );
            }
            let text = banner.lock().unwrap().clone();
            if let Some(rest) = text.split("Vouch is listening on ").nth(1) {
                break rest.split_whitespace().next().unwrap().to_string();
            }
            assert!(Instant::now() < deadline, "no banner within 30 s");
            std::thread::sleep(Duration::from_millis(20));
        };
        Serve {
            child,
            base,
            banner,
            logs,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn banner(&self) -> String {
        self.banner.lock().unwrap().clone()
    }

    /// SIGTERM and a clean exit.
    pub fn stop(mut self) {
        signal(self.pid(), "TERM");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert!(status.success(), "exit after SIGTERM: {status}");
                return;
            }
            assert!(Instant::now() < deadline, "no exit within 30 s of SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn signal(pid: u32, name: &str) {
    let ok = Command::new("kill")
        .args([&format!("-{name}"), &pid.to_string()])
        .status()
        .expect("kill runs");
    assert!(ok.success(), "kill -{name} {pid}");
}

/// `vouch serve` that must exit on its own within 20 s: its code and stderr.
pub fn serve_refused(dir: &Path, extra: &[&str], envs: &[(&str, &str)]) -> (Option<i32>, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_vouch"));
    cmd.args(["serve", "--addr", "127.0.0.1:0", "--data-dir"])
        .arg(dir)
        .args(extra)
        .env_clear()
        .env("VOUCH_ADMIN_TOKEN", ADMIN)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut err)
                .unwrap();
            return (status.code(), err);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("vouch serve should have refused to start");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// One HTTP call: `(status, JSON body or Null)`.
pub async fn call(
    base: &str,
    method: &str,
    path: &str,
    bearer: Option<&str>,
    body: Option<&Value>,
) -> (u16, Value) {
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut req = http.request(method, format!("{base}{path}"));
    if let Some(b) = bearer {
        req = req.header("authorization", format!("Bearer {b}"));
    }
    if let Some(b) = body {
        req = req
            .header("content-type", "application/json")
            .body(b.to_string());
    }
    let r = req.send().await.expect("the server answers");
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// An admin call that must answer `status`.
#[track_caller]
pub fn expect(answer: (u16, Value), status: u16) -> Value {
    assert_eq!(answer.0, status, "{}", answer.1);
    answer.1
}

/// A webhook delivery as received: headers (lowercase names) and body.
#[derive(Clone, Debug)]
pub struct Delivery {
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Delivery {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// An HTTP server on 127.0.0.1 that answers 204 to everything and keeps what it got.
pub struct Receiver {
    pub url: String,
    pub got: Arc<Mutex<Vec<Delivery>>>,
}

impl Receiver {
    pub async fn start() -> Receiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let got = Arc::new(Mutex::new(Vec::new()));
        let sink = got.clone();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let sink = sink.clone();
                tokio::spawn(async move {
                    while let Some(d) = read_request(&mut stream).await {
                        sink.lock().unwrap().push(d);
                        let _ = stream
                            .write_all(b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n")
                            .await;
                    }
                });
            }
        });
        Receiver { url, got }
    }

    /// Waits up to 15 s for a delivery whose body contains `needle`.
    pub async fn wait_for(&self, needle: &str) -> Delivery {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let found = self
                .got
                .lock()
                .unwrap()
                .iter()
                .find(|d| String::from_utf8_lossy(&d.body).contains(needle))
                .cloned();
            if let Some(d) = found {
                return d;
            }
            assert!(Instant::now() < deadline, "no delivery with {needle}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

async fn read_request(stream: &mut tokio::net::TcpStream) -> Option<Delivery> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let headers: Vec<(String, String)> = head
        .lines()
        .skip(1)
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let len: usize = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = buf[head_end + 4..].to_vec();
    while body.len() < len {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    Some(Delivery { headers, body })
}

/// Whether `whsec` produced one of the `v1,` signatures of `d` (Standard Webhooks:
/// base64 HMAC-SHA256 of `id.timestamp.body` under the base64-decoded secret).
pub fn signed_by(d: &Delivery, whsec: &str) -> bool {
    let key = Base64::decode_vec(whsec.strip_prefix("whsec_").unwrap()).unwrap();
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&key).unwrap();
    mac.update(d.header("webhook-id").unwrap().as_bytes());
    mac.update(b".");
    mac.update(d.header("webhook-timestamp").unwrap().as_bytes());
    mac.update(b".");
    mac.update(&d.body);
    let expected = format!("v1,{}", Base64::encode_string(&mac.finalize().into_bytes()));
    d.header("webhook-signature")
        .unwrap()
        .split(' ')
        .any(|s| s == expected)
}

// ---- PostgreSQL (`VOUCH_TEST_POSTGRES`, default the local server) ----

pub fn pg_server() -> String {
    std::env::var("VOUCH_TEST_POSTGRES")
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/postgres".to_string())
}

/// A fresh, empty database; dropped by [`PgDatabase::drop_now`].
pub struct PgDatabase {
    pub url: String,
    name: String,
}

impl PgDatabase {
    pub async fn create(tag: &str) -> PgDatabase {
        let server = pg_server();
        let mut admin = sqlx::PgConnection::connect(&server)
            .await
            .unwrap_or_else(|e| {
                panic!("PostgreSQL at {server} ({e}): start it with scripts/test-postgres.sh")
            });
        let name = format!(
            "vouch_t_{}_{tag}_{}",
            std::process::id(),
            vouch_core::keys::random_base62(6).to_lowercase()
        );
        admin
            .execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
            .await
            .unwrap();
        let _ = admin.close().await;
        let (prefix, _) = server.rsplit_once('/').unwrap();
        PgDatabase {
            url: format!("{prefix}/{name}"),
            name,
        }
    }

    pub async fn sql(&self) -> sqlx::PgConnection {
        sqlx::PgConnection::connect(&self.url).await.unwrap()
    }

    pub async fn drop_now(self) {
        let mut admin = sqlx::PgConnection::connect(&pg_server()).await.unwrap();
        admin
            .execute(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
                self.name
            )))
            .await
            .unwrap();
    }
}

/// A new master key, in the `VOUCH_MASTER_KEY` form.
pub fn new_key() -> String {
    vouch_server::crypto::MasterKey::generate()
        .unwrap()
        .to_base64()
        .to_string()
}

#[allow(dead_code)] // no test uses it any more
pub fn data_file(dir: &Path, name: &str) -> PathBuf {
    dir.join(name)
}
