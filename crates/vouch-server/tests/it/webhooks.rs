//! Webhooks end to end: the real server in-process over a temporary SQLite file,
//! and a real HTTP receiver on loopback that records every request (headers and
//! raw body) and answers a programmable status.
//!
//! Signatures are checked twice: by our own `vouch_server::webhooks::sign` and by
//! the independent `standardwebhooks` package from PyPI, through
//! `tests/support/verify_webhook.py` (installed by
//! `tests/support/install_webhook_deps.sh`; a missing package fails the test).
#![allow(clippy::unwrap_used, clippy::expect_used)]

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

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_event_type_arrives_signed_and_filtered() {
    let vouch = Vouch::start(true, None).await;
    let env = vouch.env().await;
    let all = Receiver::start(Answer::Status(200)).await;
    let some = Receiver::start(Answer::Status(204)).await;
    let (_, sec_all) = vouch.webhook(&env, &all.url, None).await;
    let filtered = ["identity.rejected", "secret.revoked"];
    let (_, sec_some) = vouch.webhook(&env, &some.url, Some(&filtered)).await;
    assert_ne!(sec_all, sec_some);

    // user.created, then user.updated.
    vouch
        .identify_signed(&env, "user-1", json!({"plan": "free"}))
        .await;
    vouch
        .identify_signed(&env, "user-1", json!({"plan": "pro"}))
        .await;
    // identity.rejected: a wrong signature.
    let bad = sign_hex("sk_test_not_the_right_secret_0123456789abcdef", "user-2");
    let (status, v) = vouch
        .identify(&env, &json!({"user_id": "user-2", "signature": bad}))
        .await;
    assert_eq!(status, 401, "{v}");
    // identity.rejected again: a wrong company signature on group goes through
    // the same failure path as identify.
    let sig = sign_hex(&env.secret, "user-4");
    let (status, v) = vouch
        .identify(&env, &json!({"user_id": "user-4", "signature": sig}))
        .await;
    assert_eq!(status, 200, "{v}");
    let session = v["session_token"].as_str().unwrap().to_string();
    let (status, v) = vouch
        .call(
            Method::POST,
            "/v1/group",
            &session,
            Some(&json!({"company_id": "acme", "signature": bad})),
        )
        .await;
    assert_eq!(status, 401, "{v}");
    // user.deleted: user-4 is erased.
    vouch
        .admin_ok(
            Method::DELETE,
            &format!("/admin/v1/environments/{}/users/user-4", env.id),
            None,
            204,
        )
        .await;
    // secret.created, secret.revoked.
    let secrets = format!("/admin/v1/environments/{}/secrets", env.id);
    let s2 = vouch
        .admin_ok(Method::POST, &secrets, Some(&json!({})), 201)
        .await;
    let (k2, v2) = (
        s2["id"].as_str().unwrap().to_string(),
        s2["value"].as_str().unwrap().to_string(),
    );
    vouch
        .admin_ok(Method::DELETE, &format!("{secrets}/{k2}"), None, 200)
        .await;
    // secret.created, then secret.exposed: its value arrives on the widget API.
    let s3 = vouch
        .admin_ok(Method::POST, &secrets, Some(&json!({})), 201)
        .await;
    let (k3, v3) = (
        s3["id"].as_str().unwrap().to_string(),
        s3["value"].as_str().unwrap().to_string(),
    );
    let (status, v) = vouch
        .identify(
            &env,
            &json!({"user_id": "user-3", "attributes": {"note": v3}}),
        )
        .await;
    assert_eq!(status, 403, "{v}");
    assert_eq!(v["error"]["code"], "secret_key_exposed");

    let expected = sorted(
        [
            "user.created",
            "user.updated",
            "identity.rejected",
            "user.created",
            "identity.rejected",
            "user.deleted",
            "secret.created",
            "secret.revoked",
            "secret.created",
            "secret.exposed",
        ]
        .map(String::from)
        .to_vec(),
    );
    all.wait_count(expected.len()).await;
    some.wait_count(3).await;
    // Nothing more arrives (one request per event when the receiver succeeds).
    tokio::time::sleep(Duration::from_millis(700)).await;
    let hits_all = all.hits();
    let hits_some = some.hits();
    assert_eq!(
        sorted(hits_all.iter().map(Hit::kind).collect()),
        expected,
        "every type reaches the endpoint without a filter"
    );
    assert_eq!(
        sorted(hits_some.iter().map(Hit::kind).collect()),
        sorted(
            ["identity.rejected", "identity.rejected", "secret.revoked"]
                .map(String::from)
                .to_vec()
        ),
        "only subscribed types reach the filtered endpoint"
    );
    let ids: BTreeSet<String> = hits_all.iter().map(Hit::id).collect();
    assert_eq!(ids.len(), hits_all.len(), "one webhook-id per event");

    for hit in &hits_all {
        assert_standard(hit, &sec_all);
        assert!(
            !verifies_ours(&sec_some, hit),
            "another endpoint's secret must not verify"
        );
    }
    for hit in &hits_some {
        assert_standard(hit, &sec_some);
        // The same event under the same webhook-id and body on every endpoint.
        let twin = hits_all
            .iter()
            .find(|h| h.id() == hit.id())
            .expect("the filtered endpoint's event also reached the other one");
        assert_eq!(twin.body, hit.body);
    }

    // Secret values never leave Vouch in a webhook body.
    for hit in hits_all.iter().chain(&hits_some) {
        for value in [&env.secret, &v2, &v3] {
            assert!(
                !hit.body.contains(value.as_str()),
                "a secret value in {}",
                hit.body
            );
        }
    }

    // The objects concerned.
    let by_kind = |kind: &str| -> Vec<Value> {
        hits_all
            .iter()
            .filter(|h| h.kind() == kind)
            .map(|h| h.json()["data"].clone())
            .collect()
    };
    let user_keys = BTreeSet::from([
        "environment_id",
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
    ]);
    for (kind, plan) in [("user.created", "free"), ("user.updated", "pro")] {
        let data = &by_kind(kind)
            .into_iter()
            .find(|d| d["id"] == "user-1")
            .unwrap();
        let keys: BTreeSet<&str> = data
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(keys, user_keys, "{kind}: the user object: {data}");
        assert_eq!(data["id"], "user-1");
        assert_eq!(data["verified"], true);
        assert_eq!(data["verified_by"], "signature");
        assert_eq!(data["attributes"]["plan"], plan, "{kind}: {data}");
    }
    let rejected = by_kind("identity.rejected");
    let user = rejected.iter().find(|r| r["user_id"] == "user-2").unwrap();
    assert_eq!(user["environment_id"], json!(env.id), "{user}");
    assert_eq!(user["code"], "invalid_signature", "{user}");
    assert_eq!(user["proof"], "signature", "{user}");
    let company = rejected.iter().find(|r| r["user_id"] == "user-4").unwrap();
    assert_eq!(company["company_id"], "acme", "{company}");
    assert_eq!(company["proof"], "company_signature", "{company}");
    assert_eq!(company["code"], "invalid_signature", "{company}");
    assert!(company["diagnosis"].is_string(), "{company}");
    // An erased user's webhook names it and carries none of its attributes.
    let deleted = &by_kind("user.deleted")[0];
    assert_eq!(deleted["id"], "user-4", "{deleted}");
    assert!(deleted.get("attributes").is_none(), "{deleted}");

    let created: BTreeSet<String> = by_kind("secret.created")
        .iter()
        .map(|d| d["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(created, BTreeSet::from([k2.clone(), k3.clone()]));
    let revoked = &by_kind("secret.revoked")[0];
    assert_eq!(
        (revoked["id"].as_str(), revoked["status"].as_str()),
        (Some(k2.as_str()), Some("revoked"))
    );
    let exposed = &by_kind("secret.exposed")[0];
    assert_eq!(
        (exposed["id"].as_str(), exposed["status"].as_str()),
        (Some(k3.as_str()), Some("revoked"))
    );
    for data in by_kind("secret.created").iter().chain([revoked, exposed]) {
        assert!(data.get("value").is_none(), "secret metadata only: {data}");
        assert!(data["created_at"].is_string(), "{data}");
        assert_eq!(data["environment_id"], json!(env.id), "{data}");
    }

    // The independent verifier accepts every request under its endpoint's secret ...
    let mut genuine: Vec<(&str, &Hit, Option<&str>)> = hits_all
        .iter()
        .map(|h| (sec_all.as_str(), h, None))
        .collect();
    genuine.extend(hits_some.iter().map(|h| (sec_some.as_str(), h, None)));
    let ok = verify_python(&genuine);
    assert!(
        ok.iter().all(|b| *b),
        "standardwebhooks rejected a delivery: {ok:?}"
    );
    // ... and rejects a changed body or another secret (it is not a no-op).
    let tampered = hits_all[0].body.replacen('{', "{ ", 1);
    let forged = verify_python(&[
        (sec_all.as_str(), &hits_all[0], Some(tampered.as_str())),
        (sec_some.as_str(), &hits_all[0], None),
    ]);
    assert_eq!(forged, [false, false]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_attempt_is_retried_under_the_same_webhook_id_and_logged() {
    let vouch = Vouch::start(true, Some(vec![400, 400, 400, 60_000])).await;
    let env = vouch.env().await;
    let recv = Receiver::start(Answer::Status(200)).await;
    recv.then(Answer::Status(500));
    let (wh, secret) = vouch
        .webhook(&env, &recv.url, Some(&["user.created"]))
        .await;

    vouch.identify_signed(&env, "retry-me", json!({})).await;
    let hits = recv.wait_count(2).await;
    let (first, second) = (&hits[0], &hits[1]);
    assert_eq!((first.answered, second.answered), (500, 200));
    assert_eq!(
        first.id(),
        second.id(),
        "one stable webhook-id across attempts"
    );
    assert_eq!(first.body, second.body);
    assert_standard(first, &secret);
    assert_standard(second, &secret);
    let gap = second.at - first.at;
    assert!(
        gap >= Duration::from_millis(300),
        "retried after {gap:?}, before the 400 ms (±20 %) schedule"
    );

    let log = vouch.wait_deliveries(&env, &wh, 2).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let log_again = vouch.deliveries(&env, &wh).await;
    assert_eq!(
        log_again.len(),
        2,
        "no attempt after the success: {log_again:?}"
    );
    let (a1, a2) = (&log[0], &log[1]);
    for a in [a1, a2] {
        assert_eq!(a["message_id"], json!(first.id()), "{a}");
        assert!(a["delivery_id"].is_string(), "{a}");
        let latency = a["latency_ms"].as_i64().expect("latency_ms");
        assert!((0..10_000).contains(&latency), "{a}");
        parse_rfc3339(a["created_at"].as_str().expect("created_at"));
    }
    assert_eq!(a1["attempt"], 1);
    assert_eq!(a1["status_code"], 500);
    assert_eq!(a1["success"], false);
    let snippet = a1["response"].as_str().expect("a response snippet");
    assert!(snippet.starts_with("boom boom"), "{snippet:.40}");
    assert!(
        snippet.len() <= 1024 && snippet.len() < failure_body().len(),
        "the response is cut to a snippet ({} bytes)",
        snippet.len()
    );
    let next = parse_rfc3339(
        a1["next_retry_at"]
            .as_str()
            .expect("next_retry_at on the failure"),
    );
    assert!(next >= parse_rfc3339(a1["created_at"].as_str().unwrap()) - time::Duration::seconds(1));
    assert_eq!(a2["attempt"], 2);
    assert_eq!(a2["status_code"], 200);
    assert_eq!(a2["success"], true);
    assert_eq!(a2["response"], "ok");
    assert_eq!(a2["next_retry_at"], Value::Null, "{a2}");
    assert_eq!(a2["error"], Value::Null, "{a2}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_endpoint_is_disabled_holds_events_and_replays_them() {
    let vouch = Vouch::start(true, Some(vec![100, 200])).await;
    let env = vouch.env().await;
    let recv = Receiver::start(Answer::Status(503)).await;
    let (wh, secret) = vouch.webhook(&env, &recv.url, None).await;
    let wh_path = format!("/admin/v1/environments/{}/webhooks/{wh}", env.id);

    vouch.identify_signed(&env, "first", json!({})).await;
    // The first try and both scheduled retries, then the endpoint is disabled.
    let hits = recv.wait_count(3).await;
    let first_id = hits[0].id();
    assert!(hits.iter().all(|h| h.id() == first_id));
    let until = Instant::now() + Duration::from_secs(10);
    let w = loop {
        let w = vouch.get_webhook(&env, &wh).await;
        if w["disabled"] == true {
            break w;
        }
        assert!(Instant::now() < until, "not disabled: {w}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let reason = w["disabled_reason"].as_str().expect("disabled_reason");
    assert!(!reason.is_empty());
    parse_rfc3339(w["disabled_at"].as_str().expect("disabled_at"));
    let audit = vouch.audit(&env).await;
    let entry = audit
        .iter()
        .find(|a| a["kind"] == "webhook.disabled")
        .unwrap_or_else(|| panic!("no webhook.disabled audit entry: {audit:?}"));
    assert_eq!(entry["detail"]["endpoint_id"], json!(wh), "{entry}");

    let log = vouch.wait_deliveries(&env, &wh, 3).await;
    assert_eq!(log.len(), 3, "{log:?}");
    for (i, a) in log.iter().enumerate() {
        assert_eq!(a["attempt"], json!(i + 1));
        assert_eq!(a["status_code"], 503);
        assert_eq!(a["success"], false);
        assert_eq!(a["next_retry_at"].is_string(), i < 2, "{a}");
    }

    // While disabled, new events are held, not sent.
    vouch.identify_signed(&env, "second", json!({})).await;
    vouch
        .admin_ok(
            Method::POST,
            &format!("/admin/v1/environments/{}/secrets", env.id),
            Some(&json!({})),
            201,
        )
        .await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(
        recv.hits().len(),
        3,
        "nothing is sent to a disabled endpoint"
    );
    let (status, v) = vouch
        .admin(Method::POST, &format!("{wh_path}/replay"), None)
        .await;
    assert_eq!(status, 409, "replay while disabled: {v}");
    assert_eq!(v["error"]["code"], "conflict");

    // The receiver is fixed; an operator enables the endpoint ...
    recv.set_default(Answer::Status(200));
    let w = vouch
        .admin_ok(Method::POST, &format!("{wh_path}/enable"), None, 200)
        .await;
    assert_eq!(w["disabled"], false, "{w}");
    assert_eq!(w["disabled_reason"], Value::Null, "{w}");
    // ... a new event goes out at once; the held ones wait for the replay.
    vouch.identify_signed(&env, "third", json!({})).await;
    let hits = recv.wait_count(4).await;
    assert_eq!(hits[3].json()["data"]["id"], "third");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(recv.hits().len(), 4, "held events are sent only on replay");

    let v = vouch
        .admin_ok(Method::POST, &format!("{wh_path}/replay"), None, 200)
        .await;
    assert_eq!(v["queued"], 3, "the dead event and the two held ones: {v}");
    let hits = recv
        .wait("the replayed events", |h| {
            h.iter().filter(|h| h.answered == 200).count() >= 4
        })
        .await;
    let delivered: Vec<&Hit> = hits.iter().filter(|h| h.answered == 200).collect();
    let kinds = sorted(delivered.iter().map(|h| h.kind()).collect());
    assert_eq!(
        kinds,
        [
            "secret.created",
            "user.created",
            "user.created",
            "user.created"
        ]
    );
    assert!(
        delivered.iter().any(|h| h.id() == first_id),
        "the dead event is replayed under its original webhook-id"
    );
    let users: BTreeSet<String> = delivered
        .iter()
        .filter(|h| h.kind() == "user.created")
        .map(|h| h.json()["data"]["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        users,
        BTreeSet::from(["first", "second", "third"].map(String::from))
    );
    for h in &delivered {
        assert_standard(h, &secret);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(recv.hits().len(), 7, "each replayed event is sent once");
    let audit = vouch.audit(&env).await;
    assert!(
        audit.iter().any(|a| a["kind"] == "webhook.enabled"),
        "{audit:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn during_a_rotation_both_secrets_sign_every_delivery() {
    let vouch = Vouch::start(true, None).await;
    let env = vouch.env().await;
    let recv = Receiver::start(Answer::Status(200)).await;
    let (wh, old) = vouch
        .webhook(&env, &recv.url, Some(&["user.created"]))
        .await;
    let rotate = format!(
        "/admin/v1/environments/{}/webhooks/{wh}/rotate-secret",
        env.id
    );

    let v = vouch
        .admin_ok(
            Method::POST,
            &rotate,
            Some(&json!({"grace_seconds": 3600})),
            200,
        )
        .await;
    let new = v["secret"].as_str().expect("the new secret").to_string();
    assert_whsec(&new);
    assert_ne!(new, old);

    vouch.identify_signed(&env, "rotating", json!({})).await;
    let hits = recv.wait_count(1).await;
    let hit = &hits[0];
    assert_standard(hit, &new);
    let ts: i64 = hit.h("webhook-timestamp").parse().unwrap();
    let expect = |s: &str| {
        format!(
            "v1,{}",
            vouch_server::webhooks::sign(s, &hit.id(), ts, hit.body.as_bytes()).unwrap()
        )
    };
    assert_eq!(
        hit.signatures().into_iter().collect::<BTreeSet<_>>(),
        BTreeSet::from([expect(&old), expect(&new)]),
        "two v1 signatures, one per secret: {}",
        hit.h("webhook-signature")
    );
    let stranger = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    assert_eq!(
        verify_python(&[
            (old.as_str(), hit, None),
            (new.as_str(), hit, None),
            (stranger, hit, None)
        ]),
        [true, true, false]
    );

    // A rotation without grace: only the newest secret signs.
    let v = vouch
        .admin_ok(
            Method::POST,
            &rotate,
            Some(&json!({"grace_seconds": 0})),
            200,
        )
        .await;
    let newest = v["secret"].as_str().unwrap().to_string();
    vouch.identify_signed(&env, "rotated", json!({})).await;
    let hits = recv.wait_count(2).await;
    let hit = &hits[1];
    assert_eq!(hit.signatures().len(), 1, "{}", hit.h("webhook-signature"));
    assert!(verifies_ours(&newest, hit));
    assert!(!verifies_ours(&new, hit) && !verifies_ours(&old, hit));
    assert_eq!(
        verify_python(&[(newest.as_str(), hit, None), (new.as_str(), hit, None)]),
        [true, false]
    );

    // Deleting the endpoint stops it.
    let path = format!("/admin/v1/environments/{}/webhooks/{wh}", env.id);
    vouch.admin_ok(Method::DELETE, &path, None, 204).await;
    vouch.admin_ok(Method::GET, &path, None, 404).await;
    vouch.identify_signed(&env, "after-delete", json!({})).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(recv.hits().len(), 2, "a deleted endpoint receives nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_addresses_are_refused_by_default() {
    let vouch = Vouch::start(false, None).await;
    let env = vouch.env().await;
    let path = format!("/admin/v1/environments/{}/webhooks", env.id);
    for url in [
        "http://127.0.0.1:9/hook",
        "http://localhost:9/hook",
        "http://[::1]:9/hook",
        "http://10.0.0.7/hook",
        "http://192.168.1.1/hook",
        "http://169.254.169.254/latest/meta-data",
        "ftp://hooks.example.com/",
        "not a url",
    ] {
        let (status, v) = vouch
            .admin(Method::POST, &path, Some(&json!({"url": url})))
            .await;
        assert_eq!(status, 400, "{url}: {v}");
        assert_eq!(v["error"]["code"], "invalid_request", "{url}: {v}");
    }
    let (status, v) = vouch
        .admin(
            Method::POST,
            &path,
            Some(&json!({"url": "https://hooks.example.com/x", "event_types": ["user.exploded"]})),
        )
        .await;
    assert_eq!(
        (status, &v["error"]["code"]),
        (400, &json!("invalid_request")),
        "{v}"
    );
    let list = vouch.admin_ok(Method::GET, &path, None, 200).await;
    assert_eq!(list["data"], json!([]), "nothing was created");
    // A public URL is accepted.
    let v = vouch
        .admin_ok(
            Method::POST,
            &path,
            Some(&json!({"url": "https://hooks.example.com/vouch"})),
            201,
        )
        .await;
    assert!(v["secret"].as_str().unwrap().starts_with("whsec_"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirects_are_not_followed() {
    let vouch = Vouch::start(true, Some(vec![60_000])).await;
    let env = vouch.env().await;
    let target = Receiver::start(Answer::Status(200)).await;
    let redirecting = Receiver::start(Answer::Redirect(target.url.clone())).await;
    let (wh, _) = vouch
        .webhook(&env, &redirecting.url, Some(&["user.created"]))
        .await;

    vouch.identify_signed(&env, "redirected", json!({})).await;
    redirecting.wait_count(1).await;
    let log = vouch.wait_deliveries(&env, &wh, 1).await;
    let a = &log[0];
    assert_eq!(a["status_code"], 302, "{a}");
    assert_eq!(a["success"], false, "a redirect is a failed attempt: {a}");
    assert!(a["next_retry_at"].is_string(), "retried later: {a}");
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(target.hits().is_empty(), "the redirect was followed");
    assert_eq!(redirecting.hits().len(), 1);
    assert_eq!(vouch.get_webhook(&env, &wh).await["disabled"], false);
}
