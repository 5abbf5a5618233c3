//! `vouch healthcheck`, the real binary: 0 against a real `vouch serve` that is ready, 1
//! when nothing listens, when the answer is not 200 and when no answer comes in time, 2
//! for a URL it cannot use.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const ADMIN_TOKEN: &str = "healthcheck-test-admin-token-0123456789-abcdef";

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn healthcheck(args: &[&str], addr_env: Option<&str>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_vouch"));
    cmd.arg("healthcheck").args(args).stdin(Stdio::null());
    match addr_env {
        Some(addr) => cmd.env("VOUCH_ADDR", addr),
        None => cmd.env_remove("VOUCH_ADDR"),
    };
    cmd.output().expect("the vouch binary runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A `vouch serve` on a free port of 127.0.0.1, killed when dropped.
struct Server {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Server {
    fn start() -> Server {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let child = Command::new(env!("CARGO_BIN_EXE_vouch"))
            .args(["serve", "--data-dir"])
            .arg(dir.path())
            .args(["--addr", &format!("127.0.0.1:{port}")])
            .env("VOUCH_ADMIN_TOKEN", ADMIN_TOKEN)
            .env_remove("VOUCH_MASTER_KEY")
            .env_remove("VOUCH_DATABASE_URL")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("vouch serve starts");
        let server = Server {
            child,
            port,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while raw_status(port, "/readyz") != Some(200) {
            assert!(
                Instant::now() < deadline,
                "vouch serve not ready within 30 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        server
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The status of a plain HTTP/1.1 GET, without the code under test.
fn raw_status(port: u16, path: &str) -> Option<u16> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut head = [0u8; 12];
    s.read_exact(&mut head).ok()?;
    std::str::from_utf8(&head[9..12]).ok()?.parse().ok()
}

/// A listener that answers every request with `response` (or, when None, reads the
/// request and never answers), on its own thread for the rest of the test process.
fn fake_server(response: Option<&'static str>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for mut conn in listener.incoming().flatten() {
            let mut buf = [0u8; 1024];
            let _ = conn.read(&mut buf);
            match response {
                Some(r) => {
                    let _ = conn.write_all(r.as_bytes());
                }
                None => held.push(conn),
            }
        }
    });
    port
}

#[test]
fn healthcheck_exits_0_when_the_server_is_ready() {
    let server = Server::start();
    let url = format!("http://127.0.0.1:{}/readyz", server.port);
    let out = healthcheck(&["--url", &url], None);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), format!("ready: {url}\n"));

    // Without --url: /readyz at VOUCH_ADDR, an unspecified address asked on loopback (as
    // in a container that listens on 0.0.0.0).
    for addr in [
        format!("127.0.0.1:{}", server.port),
        format!("0.0.0.0:{}", server.port),
    ] {
        let out = healthcheck(&[], Some(&addr));
        assert_eq!(out.status.code(), Some(0), "{addr}: {}", text(&out.stderr));
        assert_eq!(text(&out.stdout), format!("ready: {url}\n"));
    }

    // The same server, stopped: not ready.
    drop(server);
    let out = healthcheck(&["--url", &url], None);
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn healthcheck_exits_1_when_nothing_listens() {
    let port = free_port();
    let out = healthcheck(&["--addr", &format!("127.0.0.1:{port}")], None);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.starts_with(&format!(
            "not ready: http://127.0.0.1:{port}/readyz: cannot connect"
        )),
        "{err}"
    );
}

#[test]
fn healthcheck_exits_1_when_the_answer_is_not_200() {
    let unavailable = fake_server(Some(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
    ));
    let out = healthcheck(&["--addr", &format!("127.0.0.1:{unavailable}")], None);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("answered 503"),
        "{}",
        text(&out.stderr)
    );

    // A redirect is reported, not followed.
    let redirect = fake_server(Some(
        "HTTP/1.1 302 Found\r\nlocation: http://127.0.0.1:1/\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
    ));
    let out = healthcheck(&["--addr", &format!("127.0.0.1:{redirect}")], None);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("answered 302"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn healthcheck_gives_up_after_its_timeout() {
    let silent = fake_server(None);
    let started = Instant::now();
    let out = healthcheck(
        &["--addr", &format!("127.0.0.1:{silent}"), "--timeout", "1s"],
        None,
    );
    let took = started.elapsed();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("timed out"),
        "{}",
        text(&out.stderr)
    );
    assert!(took >= Duration::from_millis(900), "gave up after {took:?}");
    assert!(took < Duration::from_secs(10), "took {took:?}");
}

#[test]
fn healthcheck_refuses_a_url_it_cannot_use() {
    for url in ["https://127.0.0.1:8080/readyz", "not a url"] {
        let out = healthcheck(&["--url", url], None);
        assert_eq!(out.status.code(), Some(2), "{url}: {}", text(&out.stderr));
        assert!(
            text(&out.stderr).starts_with("error: "),
            "{}",
            text(&out.stderr)
        );
    }
}
