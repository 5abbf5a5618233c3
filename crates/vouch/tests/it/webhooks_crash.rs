//! The durable outbox across a crash, black-box with the real binary: events are
//! queued while the receiver is down, Vouch is killed with SIGKILL, the receiver
//! comes up, Vouch restarts on the same data directory, and every event arrives
//! (at least once, under its one `webhook-id`), none is invented.
//!
//! Plain `std` HTTP on both sides (this crate has no HTTP dependencies).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const ADMIN_TOKEN: &str = "crash-test-admin-token-0123456789abcdefgh";
/// Events produced while the receiver is down.
const N: usize = 40;
/// Short delays so the test is quick; long enough in total (≈ 200 s) that no
/// delivery runs out of retries during the test.
const SCHEDULE: &str = "200,400,800,1600,3200,6400,12800,25600,51200,102400";

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A free port below the kernel's ephemeral range (32768 and up), for a
/// receiver that starts later: a port from `free_port` can meanwhile become
/// the source port of one of the server's outgoing connections.
fn receiver_port() -> u16 {
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos()
        ^ std::process::id();
    (0..2000u32)
        .map(|i| 20_000 + u16::try_from((seed.wrapping_add(i * 7919)) % 10_000).unwrap())
        .find(|p| TcpListener::bind(("127.0.0.1", *p)).is_ok())
        .expect("a free port between 20000 and 30000")
}

/// `vouch serve` on `dir`, stdout and stderr into files there (read on failure).
struct Vouch {
    child: Child,
    port: u16,
}

impl Vouch {
    fn start(dir: &Path, run: &str) -> Vouch {
        Self::start_with(dir, run, SCHEDULE)
    }

    fn start_with(dir: &Path, run: &str, schedule: &str) -> Vouch {
        let port = free_port();
        let log = |name: &str| {
            std::fs::File::create(dir.join(format!("{run}.{name}.log"))).expect("a log file")
        };
        let child = Command::new(env!("CARGO_BIN_EXE_vouch"))
            .args(["serve", "--addr", &format!("127.0.0.1:{port}")])
            .arg("--data-dir")
            .arg(dir.join("data"))
            .arg("--allow-private-webhooks")
            .args(["--webhook-retry-schedule", schedule])
            .env("VOUCH_ADMIN_TOKEN", ADMIN_TOKEN)
            .env_remove("VOUCH_DATABASE_URL")
            .env_remove("VOUCH_MASTER_KEY")
            .stdin(Stdio::null())
            .stdout(log("stdout"))
            .stderr(log("stderr"))
            .spawn()
            .expect("the vouch binary starts");
        let mut v = Vouch { child, port };
        let until = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = v.child.try_wait().unwrap() {
                panic!(
                    "vouch exited during start-up ({status}): {}",
                    logs(dir, run)
                );
            }
            if let Ok((200, _)) = http(port, "GET", "/healthz", None, None) {
                return v;
            }
            assert!(
                Instant::now() < until,
                "vouch did not start: {}",
                logs(dir, run)
            );
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// Every logged attempt of an endpoint, following `next_cursor`.
    /// The delivery log once `done` holds for it (at most 10 s): the receiver
    /// sees a request before Vouch has written down its answer.
    fn attempts_when(
        &self,
        env_id: &str,
        wh_id: &str,
        done: impl Fn(&[Value]) -> bool,
    ) -> Vec<Value> {
        let until = Instant::now() + Duration::from_secs(10);
        loop {
            let log = self.attempts(env_id, wh_id);
            if done(&log) || Instant::now() >= until {
                return log;
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    fn attempts(&self, env_id: &str, wh_id: &str) -> Vec<Value> {
        let mut out = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut path =
                format!("/admin/v1/environments/{env_id}/webhooks/{wh_id}/deliveries?limit=200");
            if let Some(c) = &cursor {
                path.push_str(&format!("&cursor={c}"));
            }
            let (status, page) = self.admin("GET", &path, None);
            assert_eq!(status, 200, "{page}");
            out.extend(page["data"].as_array().cloned().unwrap_or_default());
            match page["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_string()),
                None => return out,
            }
        }
    }

    fn admin(&self, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
        http(self.port, method, path, Some(ADMIN_TOKEN), body).expect("vouch answers")
    }

    /// SIGKILL: no graceful shutdown, no flush.
    fn kill9(mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("reaped");
    }
}

impl Drop for Vouch {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn logs(dir: &Path, run: &str) -> String {
    let read =
        |n: &str| std::fs::read_to_string(dir.join(format!("{run}.{n}.log"))).unwrap_or_default();
    format!(
        "\n--- stdout ---\n{}\n--- stderr ---\n{}",
        read("stdout"),
        read("stderr")
    )
}

/// One HTTP/1.1 request over a fresh connection (`Connection: close`).
fn http(
    port: u16,
    method: &str,
    path: &str,
    bearer: Option<&str>,
    body: Option<&Value>,
) -> std::io::Result<(u16, Value)> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    let body = body.map(Value::to_string).unwrap_or_default();
    let mut req =
        format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n");
    if let Some(b) = bearer {
        req.push_str(&format!("Authorization: Bearer {b}\r\n"));
    }
    if !body.is_empty() {
        req.push_str("Content-Type: application/json\r\n");
    }
    req.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    s.write_all(req.as_bytes())?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, rest) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status: u16 = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let chunked = head.lines().any(|l| {
        l.to_ascii_lowercase().starts_with("transfer-encoding:")
            && l.to_ascii_lowercase().contains("chunked")
    });
    let body = if chunked {
        dechunk(rest)
    } else {
        rest.to_string()
    };
    let v = serde_json::from_str(&body).unwrap_or(Value::String(body));
    Ok((status, v))
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// One request received by the test's webhook receiver.
#[derive(Clone, Debug)]
struct Hit {
    headers: BTreeMap<String, String>,
    body: String,
    /// The status answered; 0 when the receiver hung instead.
    answered: u16,
}

/// What the receiver does with one request.
#[derive(Clone, Copy, Debug)]
enum Answer {
    Status(u16),
    /// Reads the request and never answers (the connection stays open).
    Hang,
}

type Hits = Arc<Mutex<Vec<Hit>>>;

/// A minimal HTTP/1.1 receiver: records each request and answers the next of
/// `script` (200 once it is empty), one request per connection.
fn start_receiver(port: u16, script: Vec<Answer>) -> Hits {
    let listener = TcpListener::bind(("127.0.0.1", port)).expect("the receiver port is free again");
    let hits = Arc::new(Mutex::new(Vec::new()));
    let script = Arc::new(Mutex::new(VecDeque::from(script)));
    let out = hits.clone();
    thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(conn) = conn else { continue };
            let (hits, script) = (hits.clone(), script.clone());
            thread::spawn(move || {
                let _ = serve_one(conn, &hits, &script);
            });
        }
    });
    out
}

fn serve_one(
    conn: TcpStream,
    hits: &Mutex<Vec<Hit>>,
    script: &Mutex<VecDeque<Answer>>,
) -> std::io::Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut headers = BTreeMap::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h)? == 0 || h == "\r\n" {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    let len: usize = headers
        .get("content-length")
        .and_then(|l| l.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; len];
    reader.read_exact(&mut body)?;
    let answer = script
        .lock()
        .unwrap()
        .pop_front()
        .unwrap_or(Answer::Status(200));
    hits.lock().unwrap().push(Hit {
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
        answered: match answer {
            Answer::Status(c) => c,
            Answer::Hang => 0,
        },
    });
    let mut conn = conn;
    match answer {
        Answer::Status(code) => {
            conn.write_all(
                format!("HTTP/1.1 {code} X\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
                    .as_bytes(),
            )?;
            conn.flush()
        }
        Answer::Hang => {
            thread::sleep(Duration::from_secs(120));
            Ok(())
        }
    }
}

fn sign_hex(secret: &str, message: &str) -> String {
    vouch_core::proof::sign(
        &vouch_core::Secret::new(secret.to_string()),
        message.as_bytes(),
        vouch_core::SignatureEncoding::Hex,
    )
}

#[test]
fn events_queued_before_a_kill_9_are_all_delivered_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    let receiver_port = receiver_port(); // nobody listens there yet: the receiver is down

    let vouch = Vouch::start(dir.path(), "first");
    let (status, env) = vouch.admin(
        "POST",
        "/admin/v1/environments",
        Some(&json!({"name": "crash"})),
    );
    assert_eq!(status, 201, "{env}");
    let env_id = env["id"].as_str().unwrap().to_string();
    let pk = env["publishable_key"].as_str().unwrap().to_string();
    let secret = env["secret"]["value"].as_str().unwrap().to_string();
    let (status, wh) = vouch.admin(
        "POST",
        &format!("/admin/v1/environments/{env_id}/webhooks"),
        Some(&json!({"url": format!("http://127.0.0.1:{receiver_port}/hook")})),
    );
    assert_eq!(status, 201, "{wh}");
    let wh_id = wh["id"].as_str().unwrap().to_string();
    let whsec = wh["secret"].as_str().unwrap().to_string();

    // N identifies of new users: N user.created events, committed before each 200.
    let users: BTreeSet<String> = (0..N).map(|i| format!("crash-user-{i:03}")).collect();
    for user in &users {
        let body = json!({"user_id": user, "signature": sign_hex(&secret, user)});
        let (status, v) = http(vouch.port, "POST", "/v1/identify", Some(&pk), Some(&body)).unwrap();
        assert_eq!(status, 200, "identify {user}: {v}");
    }
    // Let the dispatcher fail a few first attempts against the closed port, then crash.
    thread::sleep(Duration::from_millis(300));
    let before = vouch.attempts(&env_id, &wh_id);
    let failed = before.len();
    assert!(
        before
            .iter()
            .all(|a| a["success"] == false && a["status_code"].is_null()),
        "nothing can have been delivered yet: {before:?}"
    );
    vouch.kill9();

    let hits = start_receiver(receiver_port, Vec::new());
    let restarted_at = Instant::now();
    let vouch = Vouch::start(dir.path(), "second");

    // Every event arrives; allow the longest delay a pre-crash attempt can have left.
    let until = restarted_at + Duration::from_secs(20);
    let distinct = |hits: &[Hit]| -> BTreeSet<String> {
        hits.iter()
            .map(|h| h.headers["webhook-id"].clone())
            .collect()
    };
    loop {
        let got = hits.lock().unwrap().clone();
        if distinct(&got).len() >= N {
            break;
        }
        assert!(
            Instant::now() < until,
            "{} of {N} events delivered 20 s after the restart ({failed} attempts had failed before the crash){}",
            distinct(&got).len(),
            logs(dir.path(), "second")
        );
        thread::sleep(Duration::from_millis(50));
    }
    // Settle, then check: nothing lost, nothing invented, each one signed.
    thread::sleep(Duration::from_millis(1000));
    let got = hits.lock().unwrap().clone();
    assert_eq!(
        distinct(&got).len(),
        N,
        "exactly the N queued events, none invented"
    );
    let mut delivered_users = BTreeSet::new();
    let mut body_of: BTreeMap<String, String> = BTreeMap::new();
    for hit in &got {
        let id = &hit.headers["webhook-id"];
        let ts: i64 = hit.headers["webhook-timestamp"].parse().unwrap();
        let expected = vouch_server::webhooks::sign(&whsec, id, ts, hit.body.as_bytes()).unwrap();
        assert!(
            hit.headers["webhook-signature"]
                .split(' ')
                .any(|s| s == format!("v1,{expected}")),
            "bad signature on {id}"
        );
        // A redelivery carries the same body under the same id.
        if let Some(prev) = body_of.insert(id.clone(), hit.body.clone()) {
            assert_eq!(prev, hit.body, "{id} changed between deliveries");
        }
        let v: Value = serde_json::from_str(&hit.body).unwrap();
        assert_eq!(v["type"], "user.created", "{v}");
        delivered_users.insert(v["data"]["id"].as_str().unwrap().to_string());
    }
    assert_eq!(delivered_users, users, "one event per identified user");

    // The log of the restarted server shows a success for every message.
    let delivered = distinct(&got);
    let log = vouch.attempts_when(&env_id, &wh_id, |log| {
        let ok: BTreeSet<String> = log
            .iter()
            .filter(|a| a["success"] == true)
            .map(|a| a["message_id"].as_str().unwrap_or_default().to_string())
            .collect();
        ok == delivered
    });
    assert!(
        log.len() >= failed + N,
        "the pre-crash attempts are kept in the log"
    );
    let ok: BTreeSet<String> = log
        .iter()
        .filter(|a| a["success"] == true)
        .map(|a| a["message_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ok, distinct(&got), "a logged success per delivered event");
    let (_, w) = vouch.admin(
        "GET",
        &format!("/admin/v1/environments/{env_id}/webhooks/{wh_id}"),
        None,
    );
    assert_eq!(w["disabled"], false, "{w}");
}

/// Waits up to `secs` for `done` over the hits so far.
fn wait_hits(hits: &Hits, secs: u64, what: &str, done: impl Fn(&[Hit]) -> bool) -> Vec<Hit> {
    let until = Instant::now() + Duration::from_secs(secs);
    loop {
        let got = hits.lock().unwrap().clone();
        if done(&got) {
            return got;
        }
        assert!(
            Instant::now() < until,
            "{what} within {secs} s; received: {got:?}"
        );
        thread::sleep(Duration::from_millis(50));
    }
}

/// The last scheduled attempt is in flight when Vouch is killed: after the
/// restart it is tried again (not left pending forever), and delivered.
#[test]
fn a_final_attempt_cut_short_by_a_crash_is_tried_again_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    let receiver_port = receiver_port();
    // The first try fails; the second (the last of a one-retry schedule) hangs.
    let hits = start_receiver(receiver_port, vec![Answer::Status(500), Answer::Hang]);
    let vouch = Vouch::start_with(dir.path(), "first", "100");
    let (status, env) = vouch.admin(
        "POST",
        "/admin/v1/environments",
        Some(&json!({"name": "final"})),
    );
    assert_eq!(status, 201, "{env}");
    let env_id = env["id"].as_str().unwrap().to_string();
    let (status, wh) = vouch.admin(
        "POST",
        &format!("/admin/v1/environments/{env_id}/webhooks"),
        Some(&json!({"url": format!("http://127.0.0.1:{receiver_port}/hook"), "event_types": ["user.created"]})),
    );
    assert_eq!(status, 201, "{wh}");
    let wh_id = wh["id"].as_str().unwrap().to_string();
    let secret = env["secret"]["value"].as_str().unwrap();
    let pk = env["publishable_key"].as_str().unwrap();
    let body = json!({"user_id": "last-try", "signature": sign_hex(secret, "last-try")});
    let (status, v) = http(vouch.port, "POST", "/v1/identify", Some(pk), Some(&body)).unwrap();
    assert_eq!(status, 200, "{v}");
    let got = wait_hits(&hits, 10, "the failed try and the hanging last try", |h| {
        h.len() >= 2
    });
    let id = got[0].headers["webhook-id"].clone();
    assert_eq!(got[1].headers["webhook-id"], id);
    thread::sleep(Duration::from_millis(200));
    vouch.kill9();

    let vouch = Vouch::start_with(dir.path(), "second", "100");
    let got = wait_hits(
        &hits,
        40,
        "a delivery of the event cut short by the crash",
        |h| h.iter().any(|x| x.answered == 200),
    );
    let ok: Vec<&Hit> = got.iter().filter(|h| h.answered == 200).collect();
    assert_eq!(ok.len(), 1, "{got:?}");
    assert_eq!(
        ok[0].headers["webhook-id"], id,
        "the same webhook-id after the restart"
    );
    let (_, w) = vouch.admin(
        "GET",
        &format!("/admin/v1/environments/{env_id}/webhooks/{wh_id}"),
        None,
    );
    assert_eq!(w["disabled"], false, "{w}");
    let succeeded = |log: &[Value]| {
        log.iter()
            .any(|a| a["success"] == true && a["message_id"] == json!(id))
    };
    let log = vouch.attempts_when(&env_id, &wh_id, succeeded);
    assert!(succeeded(&log), "{log:?}");
}
