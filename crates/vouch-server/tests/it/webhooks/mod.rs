//! Webhooks end to end: the real server in-process over a temporary SQLite file,
//! and a real HTTP receiver on loopback that records every request (headers and
//! raw body) and answers a programmable status.
//!
//! Signatures are checked twice: by our own `vouch_server::webhooks::sign` and by
//! the independent `standardwebhooks` package from PyPI, through
//! `tests/support/verify_webhook.py` (installed by
//! `tests/support/install_webhook_deps.sh`; a missing package fails the test).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod events;
mod failures;
mod rotation;
mod targets;

use std::collections::{BTreeSet, VecDeque};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use reqwest::Method;
use serde_json::{Value, json};
use tempfile::TempDir;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use vouch_core::{Secret, SignatureEncoding};

const ADMIN_TOKEN: &str = "webhook-tests-admin-token-0123456789abcdef";

/// The body a failing receiver answers: longer than the 1 KiB snippet the log keeps.
fn failure_body() -> String {
    "boom ".repeat(2000)
}

// ---------------------------------------------------------------------------
// Vouch, in-process
// ---------------------------------------------------------------------------

struct Vouch {
    base: String,
    http: reqwest::Client,
    shutdown: Option<oneshot::Sender<()>>,
    _task: JoinHandle<anyhow::Result<()>>,
    _dir: TempDir,
}

struct Env {
    id: String,
    pk: String,
    secret: String,
}

impl Vouch {
    async fn start(allow_private: bool, schedule: Option<Vec<i64>>) -> Vouch {
        let dir = tempfile::tempdir().unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let config = vouch_server::Config {
            data_dir: dir.path().to_path_buf(),
            admin_token: Some(ADMIN_TOKEN.to_string()),
            allow_private_webhooks: allow_private,
            webhook_retry_schedule_ms: schedule,
            ..Default::default()
        };
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(vouch_server::run_with_listener(listener, config, async {
            let _ = rx.await;
        }));
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        let v = Vouch {
            base: format!("http://{addr}"),
            http,
            shutdown: Some(tx),
            _task: task,
            _dir: dir,
        };
        for _ in 0..400 {
            assert!(!v._task.is_finished(), "the server stopped during start-up");
            if let Ok(r) = v.http.get(format!("{}/healthz", v.base)).send().await
                && r.status().is_success()
            {
                return v;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("the server did not answer /healthz within 10 s");
    }

    async fn call(
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
        let resp = req.send().await.expect("the server answers");
        let status = resp.status().as_u16();
        let bytes = resp.bytes().await.unwrap();
        let v = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        };
        (status, v)
    }

    async fn admin(&self, method: Method, path: &str, body: Option<&Value>) -> (u16, Value) {
        self.call(method, path, ADMIN_TOKEN, body).await
    }

    async fn admin_ok(&self, method: Method, path: &str, body: Option<&Value>, want: u16) -> Value {
        let (status, v) = self.admin(method.clone(), path, body).await;
        assert_eq!(status, want, "{method} {path}: {v}");
        v
    }

    async fn env(&self) -> Env {
        let v = self
            .admin_ok(
                Method::POST,
                "/admin/v1/environments",
                Some(&json!({"name": "webhooks"})),
                201,
            )
            .await;
        Env {
            id: v["id"].as_str().unwrap().to_string(),
            pk: v["publishable_key"].as_str().unwrap().to_string(),
            secret: v["secret"]["value"].as_str().unwrap().to_string(),
        }
    }

    /// Creates an endpoint; returns (id, whsec secret) after checking the answer.
    async fn webhook(&self, env: &Env, url: &str, types: Option<&[&str]>) -> (String, String) {
        let mut body = json!({"url": url});
        if let Some(t) = types {
            body["event_types"] = json!(t);
        }
        let v = self
            .admin_ok(
                Method::POST,
                &format!("/admin/v1/environments/{}/webhooks", env.id),
                Some(&body),
                201,
            )
            .await;
        let id = v["id"].as_str().unwrap().to_string();
        let secret = v["secret"].as_str().unwrap().to_string();
        assert!(id.starts_with("wh_"), "{v}");
        assert_eq!(v["url"], json!(url));
        assert_eq!(v["event_types"], types.map_or(Value::Null, |t| json!(t)));
        assert_eq!(v["disabled"], json!(false));
        assert_whsec(&secret);
        (id, secret)
    }

    async fn get_webhook(&self, env: &Env, wh: &str) -> Value {
        self.admin_ok(
            Method::GET,
            &format!("/admin/v1/environments/{}/webhooks/{wh}", env.id),
            None,
            200,
        )
        .await
    }

    /// The attempt log, sorted oldest first.
    async fn deliveries(&self, env: &Env, wh: &str) -> Vec<Value> {
        let v = self
            .admin_ok(
                Method::GET,
                &format!("/admin/v1/environments/{}/webhooks/{wh}/deliveries", env.id),
                None,
                200,
            )
            .await;
        let mut list = v["data"].as_array().cloned().unwrap();
        list.sort_by_key(|a| {
            (
                a["message_id"].as_str().unwrap_or("").to_string(),
                a["attempt"].as_i64(),
            )
        });
        list
    }

    /// Waits until the attempt log holds at least `n` entries.
    async fn wait_deliveries(&self, env: &Env, wh: &str, n: usize) -> Vec<Value> {
        let until = Instant::now() + Duration::from_secs(15);
        loop {
            let list = self.deliveries(env, wh).await;
            if list.len() >= n {
                return list;
            }
            assert!(
                Instant::now() < until,
                "{} attempts logged, expected {n}: {list:?}",
                list.len()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn audit(&self, env: &Env) -> Vec<Value> {
        let v = self
            .admin_ok(
                Method::GET,
                &format!("/admin/v1/environments/{}/audit?limit=200", env.id),
                None,
                200,
            )
            .await;
        v["data"].as_array().cloned().unwrap()
    }

    async fn identify(&self, env: &Env, body: &Value) -> (u16, Value) {
        self.call(Method::POST, "/v1/identify", &env.pk, Some(body))
            .await
    }

    /// A signed identify that must succeed.
    async fn identify_signed(&self, env: &Env, user_id: &str, attributes: Value) {
        let sig = sign_hex(&env.secret, user_id);
        let (status, v) = self
            .identify(
                env,
                &json!({"user_id": user_id, "signature": sig, "attributes": attributes}),
            )
            .await;
        assert_eq!(status, 200, "identify {user_id}: {v}");
    }
}

impl Drop for Vouch {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

fn sign_hex(secret: &str, message: &str) -> String {
    vouch_core::proof::sign(
        &Secret::new(secret.to_string()),
        message.as_bytes(),
        SignatureEncoding::Hex,
    )
}

/// `whsec_` + standard base64 of 24–64 bytes (Standard Webhooks).
fn assert_whsec(secret: &str) {
    use base64ct::{Base64, Encoding};
    let raw = secret.strip_prefix("whsec_").expect("whsec_ prefix");
    let bytes = Base64::decode_vec(raw).expect("standard base64");
    assert!((24..=64).contains(&bytes.len()), "{} bytes", bytes.len());
}

// ---------------------------------------------------------------------------
// The receiver
// ---------------------------------------------------------------------------

#[derive(Clone, Debug)]
enum Answer {
    Status(u16),
    Redirect(String),
}

#[derive(Clone, Debug)]
struct Hit {
    headers: HeaderMap,
    body: String,
    at: Instant,
    /// The status this request was answered with.
    answered: u16,
}

impl Hit {
    fn h(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_else(|| panic!("no {name} header: {:?}", self.headers))
    }

    fn id(&self) -> String {
        self.h("webhook-id").to_string()
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.body).expect("a JSON body")
    }

    fn kind(&self) -> String {
        self.json()["type"].as_str().expect("type").to_string()
    }

    fn signatures(&self) -> Vec<String> {
        self.h("webhook-signature")
            .split(' ')
            .map(str::to_string)
            .collect()
    }
}

struct RecvState {
    hits: Vec<Hit>,
    script: VecDeque<Answer>,
    default: Answer,
}

struct Receiver {
    url: String,
    inner: Arc<Mutex<RecvState>>,
    task: JoinHandle<()>,
}

async fn record(
    State(inner): State<Arc<Mutex<RecvState>>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut s = inner.lock().unwrap();
    let answer = s.script.pop_front().unwrap_or_else(|| s.default.clone());
    let answered = match &answer {
        Answer::Status(c) => *c,
        Answer::Redirect(_) => 302,
    };
    s.hits.push(Hit {
        headers,
        body: String::from_utf8(body.to_vec()).expect("a UTF-8 body"),
        at: Instant::now(),
        answered,
    });
    drop(s);
    match answer {
        Answer::Status(code) => {
            let status = StatusCode::from_u16(code).unwrap();
            let text = if status.is_success() {
                "ok".to_string()
            } else {
                failure_body()
            };
            (status, text).into_response()
        }
        Answer::Redirect(to) => (StatusCode::FOUND, [("location", to)], "moved").into_response(),
    }
}

impl Receiver {
    async fn start(default: Answer) -> Receiver {
        let inner = Arc::new(Mutex::new(RecvState {
            hits: Vec::new(),
            script: VecDeque::new(),
            default,
        }));
        let app = Router::new().fallback(record).with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Receiver {
            url: format!("http://{addr}/hooks/vouch"),
            inner,
            task,
        }
    }

    fn then(&self, answer: Answer) {
        self.inner.lock().unwrap().script.push_back(answer);
    }

    fn set_default(&self, answer: Answer) {
        self.inner.lock().unwrap().default = answer;
    }

    fn hits(&self) -> Vec<Hit> {
        self.inner.lock().unwrap().hits.clone()
    }

    /// Waits until `done` holds for the hits so far (at most 15 s).
    async fn wait(&self, what: &str, done: impl Fn(&[Hit]) -> bool) -> Vec<Hit> {
        let until = Instant::now() + Duration::from_secs(15);
        loop {
            let hits = self.hits();
            if done(&hits) {
                return hits;
            }
            assert!(
                Instant::now() < until,
                "timed out waiting for {what}; received {} requests: {:?}",
                hits.len(),
                hits.iter().map(|h| h.body.clone()).collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn wait_count(&self, n: usize) -> Vec<Hit> {
        self.wait(&format!("{n} requests"), |h| h.len() >= n).await
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

// ---------------------------------------------------------------------------
// Signature checks
// ---------------------------------------------------------------------------

/// Our own verification: some `v1,` part of `webhook-signature` is the HMAC of
/// `id.timestamp.body` under `secret`.
fn verifies_ours(secret: &str, hit: &Hit) -> bool {
    let ts: i64 = hit
        .h("webhook-timestamp")
        .parse()
        .expect("an integer timestamp");
    let expected = vouch_server::webhooks::sign(secret, &hit.id(), ts, hit.body.as_bytes())
        .expect("a valid whsec secret");
    hit.signatures()
        .iter()
        .any(|p| *p == format!("v1,{expected}"))
}

fn verifier_script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/support/verify_webhook.py")
}

/// Runs the independent verifier; returns one `ok` per case.
fn verify_python(cases: &[(&str, &Hit, Option<&str>)]) -> Vec<bool> {
    let input: Vec<Value> = cases
        .iter()
        .map(|(secret, hit, body)| {
            let headers: serde_json::Map<String, Value> =
                ["webhook-id", "webhook-timestamp", "webhook-signature"]
                    .iter()
                    .map(|n| (n.to_string(), json!(hit.h(n))))
                    .collect();
            json!({"secret": secret, "body": body.unwrap_or(&hit.body), "headers": headers})
        })
        .collect();
    let script = verifier_script();
    let mut child = Command::new("python3")
        .arg(&script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run python3 {} ({e}): python3 is required",
                script.display()
            )
        });
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin
            .write_all(Value::Array(input).to_string().as_bytes())
            .unwrap();
    }
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "the standardwebhooks verifier could not run ({:?}): {stderr}\n\
         install it with tests/support/install_webhook_deps.sh",
        out.status
    );
    let results: Vec<Value> = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("verifier output is not JSON ({e}): {stderr}"));
    assert_eq!(results.len(), cases.len());
    results
        .iter()
        .map(|r| r["ok"].as_bool().expect("ok"))
        .collect()
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn parse_rfc3339(s: &str) -> time::OffsetDateTime {
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|e| panic!("{s:?} is not RFC 3339: {e}"))
}

/// The Standard Webhooks shape of one request, signed under `secret`.
#[track_caller]
fn assert_standard(hit: &Hit, secret: &str) {
    assert!(
        hit.h("content-type").starts_with("application/json"),
        "{:?}",
        hit.headers
    );
    assert!(hit.id().starts_with("msg_"), "webhook-id {}", hit.id());
    let ts: i64 = hit.h("webhook-timestamp").parse().expect("integer seconds");
    assert!((ts - now_secs()).abs() < 120, "webhook-timestamp {ts}");
    for part in hit.signatures() {
        let sig = part.strip_prefix("v1,").unwrap_or_else(|| panic!("{part}"));
        use base64ct::{Base64, Encoding};
        assert_eq!(Base64::decode_vec(sig).expect("base64").len(), 32);
    }
    assert!(
        verifies_ours(secret, hit),
        "signature does not verify: {hit:?}"
    );
    let body = hit.json();
    let keys: BTreeSet<&str> = body
        .as_object()
        .expect("an object")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        BTreeSet::from(["data", "timestamp", "type"]),
        "{body}"
    );
    let ts = body["timestamp"].as_str().expect("timestamp");
    assert!(ts.ends_with('Z'), "UTC: {ts}");
    parse_rfc3339(ts);
    assert!(body["data"].is_object(), "{body}");
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}
