//! `vouch serve`, the real binary, black-box: a full run with debug logging, then
//! SIGTERM. No secret, signature or token may appear in any log line (stderr) or
//! on stdout after the first-start banner; shutdown is graceful (exit 0); and an
//! identify acknowledged just before SIGTERM is there after a restart.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use base64ct::{Base64, Encoding};
use serde_json::{Value, json};
use vouch_core::{IdentityClaims, Secret, SignatureEncoding};

const ADMIN_TOKEN: &str = "logs-test-admin-token-0123456789-abcdefghijkl";

/// A running `vouch serve` with its output captured.
struct Vouch {
    child: Child,
    port: u16,
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
    readers: Vec<JoinHandle<()>>,
}

fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind port 0");
    l.local_addr().unwrap().port()
}

fn capture(stream: impl Read + Send + 'static, into: Arc<Mutex<String>>) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let mut reader = BufReader::new(stream);
        let mut line = String::new();
        while reader.read_line(&mut line).map(|n| n > 0).unwrap_or(false) {
            into.lock().unwrap().push_str(&line);
            line.clear();
        }
    })
}

impl Vouch {
    fn start(dir: &Path) -> Vouch {
        let port = free_port();
        let mut child = Command::new(env!("CARGO_BIN_EXE_vouch"))
            .args(["serve", "--data-dir"])
            .arg(dir)
            .args(["--addr", &format!("127.0.0.1:{port}")])
            .env("VOUCH_ADMIN_TOKEN", ADMIN_TOKEN)
            .env("VOUCH_LOG", "debug")
            .env_remove("VOUCH_MASTER_KEY")
            .env_remove("VOUCH_DATABASE_URL")
            .env_remove("VOUCH_LOG_FORMAT")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the vouch binary starts");
        let stdout = Arc::new(Mutex::new(String::new()));
        let stderr = Arc::new(Mutex::new(String::new()));
        let readers = vec![
            capture(child.stdout.take().unwrap(), stdout.clone()),
            capture(child.stderr.take().unwrap(), stderr.clone()),
        ];
        let v = Vouch {
            child,
            port,
            stdout,
            stderr,
            readers,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let banner_done = v.stdout.lock().unwrap().contains("/openapi.json\n");
            if banner_done && http(port, "GET", "/healthz", None, None).0 == 200 {
                return v;
            }
            if Instant::now() > deadline {
                panic!(
                    "vouch serve did not start: stdout {:?} stderr {:?}",
                    v.stdout.lock().unwrap(),
                    v.stderr.lock().unwrap()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGTERM, then waits; returns (exit code, stdout, stderr).
    fn terminate(mut self) -> (Option<i32>, String, String) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success());
        let deadline = Instant::now() + Duration::from_secs(30);
        let code = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s.code();
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("vouch serve did not stop within 30 s of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        for r in self.readers.drain(..) {
            r.join().unwrap();
        }
        let out = self.stdout.lock().unwrap().clone();
        let err = self.stderr.lock().unwrap().clone();
        (code, out, err)
    }
}

impl Drop for Vouch {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// One HTTP/1.1 request over a fresh connection: (status, JSON body or null).
fn http(
    port: u16,
    method: &str,
    path: &str,
    bearer: Option<&str>,
    body: Option<&Value>,
) -> (u16, Value) {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return (0, Value::Null);
    };
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let mut req =
        format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n");
    if let Some(b) = bearer {
        req.push_str(&format!("Authorization: Bearer {b}\r\n"));
    }
    if !body.is_empty() {
        req.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    req.push_str("\r\n");
    req.push_str(&body);
    if stream.write_all(req.as_bytes()).is_err() {
        return (0, Value::Null);
    }
    let mut raw = Vec::new();
    if stream.read_to_end(&mut raw).is_err() {
        return (0, Value::Null);
    }
    let text = String::from_utf8_lossy(&raw).into_owned();
    let Some((head, rest)) = text.split_once("\r\n\r\n") else {
        return (0, Value::Null);
    };
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let chunked = head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked");
    let payload = if chunked {
        dechunk(rest)
    } else {
        rest.to_string()
    };
    (
        status,
        serde_json::from_str(&payload).unwrap_or(Value::Null),
    )
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

fn banner_value<'a>(stdout: &'a str, label: &str) -> &'a str {
    stdout
        .lines()
        .find_map(|l| l.trim_start().strip_prefix(label))
        .unwrap_or_else(|| panic!("no {label:?} line in the banner: {stdout}"))
        .split_whitespace()
        .next()
        .unwrap()
}

fn sign(secret: &str, id: &str, enc: SignatureEncoding) -> String {
    vouch_core::proof::sign(&Secret::new(secret.to_string()), id.as_bytes(), enc)
}

#[test]
fn logs_of_a_full_run_hold_no_secret_and_sigterm_is_graceful() {
    let dir = tempfile::tempdir().unwrap();
    let v = Vouch::start(dir.path());
    let port = v.port;
    let banner = v.stdout.lock().unwrap().clone();
    let pk = banner_value(&banner, "Publishable key:").to_string();
    let secret = banner_value(&banner, "Identity secret:").to_string();
    let env_id = banner_value(&banner, "Environment:").to_string();
    assert!(pk.starts_with("pk_test_") && secret.starts_with("sk_test_"));
    assert!(
        !banner.contains(ADMIN_TOKEN),
        "a given admin token is not echoed"
    );
    let banner_len = banner.len();

    // Everything sensitive the run handles, to be searched for in the output.
    let mut sensitive: Vec<(&str, String)> = vec![
        ("identity secret", secret.clone()),
        ("admin token", ADMIN_TOKEN.into()),
    ];
    let ok = |(status, body): (u16, Value), want: u16| -> Value {
        assert_eq!(status, want, "{body}");
        body
    };

    // Identify with a signature in two encodings, and with a token.
    let hex = sign(&secret, "user-1", SignatureEncoding::Hex);
    let b64 = sign(&secret, "user-2", SignatureEncoding::Base64);
    let out = ok(
        http(
            port,
            "POST",
            "/v1/identify",
            Some(&pk),
            Some(&json!({"user_id": "user-1", "signature": hex})),
        ),
        200,
    );
    let session1 = out["session_token"].as_str().unwrap().to_string();
    ok(
        http(
            port,
            "POST",
            "/v1/identify",
            Some(&pk),
            Some(&json!({"user_id": "user-2", "signature": b64})),
        ),
        200,
    );
    let mut claims = IdentityClaims::new("user-3").with_expiry(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64
            + 600,
    );
    claims.jti = Some("jti-logs-test-1".into());
    let id_token =
        vouch_core::proof::issue_identity_token(&Secret::new(secret.clone()), None, &claims)
            .unwrap();
    let out = ok(
        http(
            port,
            "POST",
            "/v1/identify",
            Some(&pk),
            Some(&json!({"user_id": "user-3", "token": id_token})),
        ),
        200,
    );
    let session3 = out["session_token"].as_str().unwrap().to_string();
    // Replay, wrong signature, malformed signature, bad token: errors.
    ok(
        http(
            port,
            "POST",
            "/v1/identify",
            Some(&pk),
            Some(&json!({"user_id": "user-3", "token": id_token})),
        ),
        401,
    );
    let wrong = sign(
        "some-other-secret-value-xyz",
        "user-1",
        SignatureEncoding::Hex,
    );
    ok(
        http(
            port,
            "POST",
            "/v1/identify",
            Some(&pk),
            Some(&json!({"user_id": "user-1", "signature": wrong})),
        ),
        401,
    );
    let newline_sig = sign(&secret, "user-1\n", SignatureEncoding::Hex);
    ok(
        http(
            port,
            "POST",
            "/v1/identify",
            Some(&pk),
            Some(&json!({"user_id": "user-1", "signature": newline_sig})),
        ),
        401,
    );
    let malformed = "deadbeef-not-a-signature";
    ok(
        http(
            port,
            "POST",
            "/v1/identify",
            Some(&pk),
            Some(&json!({"user_id": "user-1", "signature": malformed})),
        ),
        400,
    );
    let bad_token = vouch_core::proof::issue_identity_token(
        &Secret::new("not-the-environment-secret".to_string()),
        None,
        &IdentityClaims::new("user-1"),
    )
    .unwrap();
    ok(
        http(
            port,
            "POST",
            "/v1/identify",
            Some(&pk),
            Some(&json!({"user_id": "user-1", "token": bad_token})),
        ),
        401,
    );
    // Session calls.
    ok(http(port, "GET", "/v1/me", Some(&session1), None), 200);
    ok(
        http(
            port,
            "POST",
            "/v1/track",
            Some(&session3),
            Some(&json!({"event": "opened"})),
        ),
        202,
    );
    let forged = format!("{}x", &session1[..session1.len() - 1]);
    ok(http(port, "GET", "/v1/me", Some(&forged), None), 401);
    // Admin: a new environment (its secret in the answer), import, reveal, diagnose.
    let env2 = ok(
        http(
            port,
            "POST",
            "/admin/v1/environments",
            Some(ADMIN_TOKEN),
            Some(&json!({"name": "second"})),
        ),
        201,
    );
    let secret2 = env2["secret"]["value"].as_str().unwrap().to_string();
    let pk2 = env2["publishable_key"].as_str().unwrap().to_string();
    let imported = "imported-secret-for-the-logs-test-123";
    ok(
        http(
            port,
            "POST",
            &format!("/admin/v1/environments/{env_id}/secrets"),
            Some(ADMIN_TOKEN),
            Some(&json!({"value": imported})),
        ),
        201,
    );
    let list = ok(
        http(
            port,
            "GET",
            &format!("/admin/v1/environments/{env_id}/secrets"),
            Some(ADMIN_TOKEN),
            None,
        ),
        200,
    );
    let first_key = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["imported"] == json!(false))
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let revealed = ok(
        http(
            port,
            "GET",
            &format!("/admin/v1/environments/{env_id}/secrets/{first_key}?reveal=true"),
            Some(ADMIN_TOKEN),
            None,
        ),
        200,
    );
    assert_eq!(revealed["value"], json!(secret));
    ok(
        http(
            port,
            "POST",
            &format!("/admin/v1/environments/{env_id}/diagnose"),
            Some(ADMIN_TOKEN),
            Some(&json!({"user_id": "user-1", "signature": newline_sig})),
        ),
        200,
    );
    ok(
        http(
            port,
            "GET",
            "/admin/v1/environments",
            Some("vat_wrong_admin_token_value_00000000"),
            None,
        ),
        401,
    );
    // Exposure: the second environment's secret sent from a "browser", and the
    // imported secret pasted into an attribute.
    let exposed = ok(
        http(
            port,
            "POST",
            "/v1/identify",
            Some(&pk2),
            Some(&json!({"user_id": "u", "signature": secret2})),
        ),
        403,
    );
    assert_eq!(exposed["error"]["code"], json!("secret_key_exposed"));
    ok(
        http(
            port,
            "POST",
            "/v1/identify",
            Some(&pk),
            Some(&json!({"user_id": "u", "attributes": {"note": imported}})),
        ),
        403,
    );
    ok(
        http(
            port,
            "POST",
            "/v1/identify",
            Some(&secret2),
            Some(&json!({"user_id": "u"})),
        ),
        403,
    );
    // The last acknowledged identify before SIGTERM.
    let last_sig = sign(&secret, "last-before-sigterm", SignatureEncoding::Hex);
    ok(
        http(
            port,
            "POST",
            "/v1/identify",
            Some(&pk),
            Some(&json!({"user_id": "last-before-sigterm", "signature": last_sig})),
        ),
        200,
    );
    let (code, stdout, stderr) = v.terminate();
    assert_eq!(code, Some(0), "graceful shutdown exits 0; stderr: {stderr}");

    sensitive.extend([
        ("second environment's secret", secret2),
        ("imported secret", imported.to_string()),
        ("hex signature", hex),
        ("base64 signature", b64.clone()),
        (
            "base64 signature body",
            b64.trim_end_matches('=').to_string(),
        ),
        ("wrong signature", wrong),
        ("newline signature", newline_sig),
        ("malformed signature", malformed.to_string()),
        ("last signature", last_sig.clone()),
        ("identity token", id_token.clone()),
        ("bad identity token", bad_token.clone()),
        ("session token", session1.clone()),
        ("session token", session3.clone()),
        ("forged session token", forged),
    ]);
    for t in [&id_token, &bad_token, &session1, &session3] {
        // Each JWT's signature segment on its own.
        sensitive.push(("token signature", t.rsplit('.').next().unwrap().to_string()));
    }
    // A secret's base64 would be a leak too.
    sensitive.push((
        "identity secret in base64",
        Base64::encode_string(secret.as_bytes()),
    ));

    assert!(stdout.len() >= banner_len);
    let after_banner = &stdout[banner_len..];
    // The logs were really on, with request ids.
    assert!(stderr.contains("DEBUG"), "debug logging is on: {stderr}");
    assert!(
        stderr.contains("req_"),
        "log lines carry request ids: {stderr}"
    );
    for (what, value) in &sensitive {
        assert!(!value.is_empty());
        assert!(
            !stderr.contains(value.as_str()),
            "the logs contain the {what}"
        );
        assert!(
            !after_banner.contains(value.as_str()),
            "stdout after the banner contains the {what}: {after_banner}"
        );
    }

    // Restart: later starts print only the URLs, and the last identify is there.
    let v = Vouch::start(dir.path());
    let banner2 = v.stdout.lock().unwrap().clone();
    assert!(
        !banner2.contains(&secret),
        "a restart does not print the secret again"
    );
    assert!(banner2.contains("/v1/identify"));
    let (status, user) = http(
        v.port,
        "GET",
        &format!("/admin/v1/environments/{env_id}/users/last-before-sigterm"),
        Some(ADMIN_TOKEN),
        None,
    );
    assert_eq!(status, 200, "{user}");
    assert_eq!(user["verified"], json!(true));
    assert_eq!(user["verified_by"], json!("signature"));
    // The exposures were durable too.
    let (_, env2_secrets) = http(
        v.port,
        "GET",
        &format!(
            "/admin/v1/environments/{}/secrets",
            env2["id"].as_str().unwrap()
        ),
        Some(ADMIN_TOKEN),
        None,
    );
    assert_eq!(env2_secrets["data"][0]["status"], json!("revoked"));
    let (code, _, stderr2) = v.terminate();
    assert_eq!(code, Some(0));
    for (what, value) in &sensitive {
        assert!(
            !stderr2.contains(value.as_str()),
            "restart logs contain the {what}"
        );
    }
}
