//! The data directory of `vouch serve`, the real binary: created private, its files 0600
//! (SQLite's `-wal` and `-shm` too), a master key file others can read refused at start,
//! and one server per directory (a second one exits at once naming the first one's pid;
//! a restart after a clean stop works).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const ADMIN_TOKEN: &str = "data-dir-test-admin-token-0123456789-abcdefgh";

fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind port 0");
    l.local_addr().unwrap().port()
}

fn serve(dir: &Path, port: u16) -> Child {
    Command::new(env!("CARGO_BIN_EXE_vouch"))
        .args(["serve", "--data-dir"])
        .arg(dir)
        .args(["--addr", &format!("127.0.0.1:{port}")])
        .env("VOUCH_ADMIN_TOKEN", ADMIN_TOKEN)
        .env_remove("VOUCH_MASTER_KEY")
        .env_remove("VOUCH_DATABASE_URL")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the vouch binary starts")
}

fn healthy(port: u16) -> bool {
    use std::io::Write;
    let Ok(mut c) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = c.set_read_timeout(Some(Duration::from_secs(2)));
    if c.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut answer = String::new();
    let _ = c.read_to_string(&mut answer);
    answer.starts_with("HTTP/1.1 200")
}

/// A started server, waited for until it answers.
fn start(dir: &Path) -> (Child, u16) {
    let port = free_port();
    let mut child = serve(dir, port);
    let deadline = Instant::now() + Duration::from_secs(30);
    while !healthy(port) {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("vouch serve exited ({status}): {}", stderr_of(child));
        }
        assert!(Instant::now() < deadline, "vouch serve did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    (child, port)
}

fn stderr_of(mut child: Child) -> String {
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut err);
    }
    err
}

/// The exit code and stderr of a server that must stop on its own within 10 s.
fn refused(dir: &Path) -> (Option<i32>, String) {
    let mut child = serve(dir, free_port());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return (status.code(), stderr_of(child));
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("vouch serve should have refused to start");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// SIGTERM and a clean exit.
fn stop(mut child: Child) {
    let ok = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(ok.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "exit after SIGTERM: {status}");
            return;
        }
        assert!(Instant::now() < deadline, "no exit within 30 s of SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

#[test]
fn the_data_directory_is_0700_and_every_file_in_it_0600() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("data");
    let (child, _) = start(&dir);
    assert_eq!(mode(&dir), 0o700, "data directory");
    for name in [
        "vouch.db",
        "vouch.db-wal",
        "vouch.db-shm",
        "master.key",
        "vouch.db.lock",
    ] {
        assert_eq!(mode(&dir.join(name)), 0o600, "{name}");
    }
    stop(child);
}

#[test]
fn database_files_left_readable_by_an_older_version_are_made_private() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("data");
    let (child, _) = start(&dir);
    stop(child);
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(dir.join("vouch.db"), std::fs::Permissions::from_mode(0o644)).unwrap();
    let (child, _) = start(&dir);
    assert_eq!(mode(&dir.join("vouch.db")), 0o600);
    assert_eq!(mode(&dir.join("vouch.db-wal")), 0o600);
    stop(child);
}

#[test]
fn a_master_key_file_readable_by_others_is_refused_with_the_fix() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("data");
    let (child, _) = start(&dir);
    stop(child);
    let key = dir.join("master.key");
    for bits in [0o644, 0o640, 0o604] {
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(bits)).unwrap();
        let (code, err) = refused(&dir);
        assert_eq!(code, Some(1), "mode {bits:o}: {err}");
        assert!(
            err.contains(&format!("chmod 600 {}", key.display())),
            "mode {bits:o}: the message should say how to fix it: {err}"
        );
    }
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let (child, _) = start(&dir);
    stop(child);
}

#[test]
fn a_second_server_on_the_same_data_directory_exits_naming_the_first_ones_pid() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("data");
    let (first, port) = start(&dir);
    let started = Instant::now();
    let (code, err) = refused(&dir);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the second server should exit at once"
    );
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains(&format!("is in use by process {}", first.id())),
        "{err}"
    );
    assert!(healthy(port), "the first server keeps serving");
    stop(first);
    // After a clean stop the directory is free again.
    let (again, _) = start(&dir);
    stop(again);
}
