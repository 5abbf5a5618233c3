//! TLS to PostgreSQL, as managed databases require: `sslmode` and
//! `sslrootcert` in `VOUCH_DATABASE_URL` are honoured, every connection of a
//! node (its pool and its `LISTEN` connection) is encrypted, a certificate
//! that does not match is refused, and `verify-full` never falls back to
//! plaintext when the server offers none.
//!
//! The test gives the machine's PostgreSQL a certificate it makes itself
//! (`ALTER SYSTEM SET ssl_cert_file …`, then a reload) and puts the old
//! settings back at the end, so it is ignored by a plain `cargo test`;
//! `scripts/test-postgres.sh` runs it with `--ignored` on CI.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};
use sqlx::Connection;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common::pg::{Cluster, test_server_url};
use crate::common::sign_hex;

fn run(program: &str, args: &[&str], cwd: &Path) {
    let out = Command::new(program)
        .args(args)
        .current_dir(cwd)
        .output()
        .unwrap_or_else(|e| panic!("run {program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA, a server certificate for `localhost` signed by it, and a second CA
/// that signed nothing; made with the openssl command line.
fn make_certificates(dir: &Path) {
    let rsa = ["-newkey", "rsa:2048", "-nodes"];
    for ca in ["ca", "other-ca"] {
        let (key, pem, subj) = (
            format!("{ca}.key"),
            format!("{ca}.pem"),
            format!("/CN=Vouch test {ca}"),
        );
        let mut args = vec!["req", "-x509", "-days", "2", "-subj", &subj];
        args.extend(rsa);
        args.extend(["-keyout", &key, "-out", &pem]);
        run("openssl", &args, dir);
    }
    let mut args = vec!["req", "-subj", "/CN=localhost"];
    args.extend(rsa);
    args.extend(["-keyout", "server.key", "-out", "server.csr"]);
    run("openssl", &args, dir);
    std::fs::write(dir.join("san.ext"), "subjectAltName=DNS:localhost\n").unwrap();
    run(
        "openssl",
        &[
            "x509",
            "-req",
            "-days",
            "2",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-extfile",
            "san.ext",
            "-out",
            "server.pem",
        ],
        dir,
    );
}

fn psql(sql: &str) -> std::process::Output {
    Command::new("psql")
        .args([&test_server_url(), "-v", "ON_ERROR_STOP=1", "-qtAc", sql])
        .output()
        .expect("run psql")
}

/// The machine's PostgreSQL serving the test certificate; the previous
/// settings come back when this is dropped (even after a failed assertion).
struct ServerCertificate {
    dir: tempfile::TempDir,
}

impl ServerCertificate {
    fn install() -> ServerCertificate {
        let dir = tempfile::tempdir().expect("a temporary directory");
        make_certificates(dir.path());
        // The server reads its key as the postgres user, which must own it (0600).
        let ids = |flag: &str| -> u32 {
            let out = Command::new("id")
                .args([flag, "postgres"])
                .output()
                .unwrap();
            String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
        };
        let (uid, gid) = (ids("-u"), ids("-g"));
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        for f in ["server.pem", "server.key"] {
            std::os::unix::fs::chown(dir.path().join(f), Some(uid), Some(gid)).unwrap();
        }
        std::fs::set_permissions(
            dir.path().join("server.key"),
            std::fs::Permissions::from_mode(0o600),
        )
        .unwrap();
        let path = |f: &str| dir.path().join(f).display().to_string();
        for sql in [
            "ALTER SYSTEM SET ssl = on".to_string(),
            format!("ALTER SYSTEM SET ssl_cert_file = '{}'", path("server.pem")),
            format!("ALTER SYSTEM SET ssl_key_file = '{}'", path("server.key")),
            "SELECT pg_reload_conf()".to_string(),
        ] {
            let out = psql(&sql);
            assert!(
                out.status.success(),
                "{sql}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        ServerCertificate { dir }
    }

    fn ca(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    fn other_ca(&self) -> PathBuf {
        self.dir.path().join("other-ca.pem")
    }
}

impl Drop for ServerCertificate {
    fn drop(&mut self) {
        for sql in [
            "ALTER SYSTEM RESET ssl_cert_file",
            "ALTER SYSTEM RESET ssl_key_file",
            "ALTER SYSTEM RESET ssl",
            "SELECT pg_reload_conf()",
        ] {
            let _ = psql(sql);
        }
    }
}

/// `url` (a database of the test server) with another host and these parameters.
fn with_tls(url: &str, host: &str, params: &[(&str, &str)]) -> String {
    let mut u = url::Url::parse(url).expect("a PostgreSQL URL");
    u.set_host(Some(host)).unwrap();
    u.query_pairs_mut().extend_pairs(params);
    u.to_string()
}

/// What `vouch serve` says when it refuses to start on `url`.
async fn refused(url: &str, master_key: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let config = vouch_server::Config {
        data_dir: dir.path().to_path_buf(),
        database_url: Some(url.to_string()),
        master_key: Some(master_key.to_string()),
        admin_token: Some(crate::common::ADMIN_TOKEN.to_string()),
        ..Default::default()
    };
    let ended = tokio::time::timeout(
        Duration::from_secs(30),
        vouch_server::run_with_listener(listener, config, std::future::pending()),
    )
    .await
    .expect("start-up ends within 30 s");
    let said = format!("{:#}", ended.expect_err("the node refuses to start"));
    println!("refused: {said}");
    said
}

/// How many of this database's Vouch connections there are, and how many are encrypted.
async fn vouch_connections(cluster: &Cluster) -> (i64, i64) {
    let mut sql = cluster.sql().await;
    let row: (i64, i64) = sqlx::query_as(
        "SELECT count(*), count(*) FILTER (WHERE s.ssl)
         FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid)
         WHERE a.application_name = 'vouch' AND a.datname = current_database()",
    )
    .fetch_one(&mut sql)
    .await
    .unwrap();
    let _ = sql.close().await;
    row
}

/// A node on `url` serves a verified identify, and every one of its
/// connections to the database is encrypted.
async fn serves_encrypted(cluster: &Cluster, url: &str) {
    let tls = Cluster {
        url: url.to_string(),
        master_key: cluster.master_key.clone(),
    };
    let node = tls.node().await;
    let (status, env) = node
        .admin(
            Method::POST,
            "/admin/v1/environments",
            Some(&json!({"name": "tls"})),
        )
        .await;
    assert_eq!(status, 201, "{env}");
    let (pk, secret) = (
        env["publishable_key"].as_str().unwrap(),
        env["secret"]["value"].as_str().unwrap(),
    );
    let body = json!({"user_id": "u1", "signature": sign_hex(secret, "u1")});
    let (status, answer) = node.identify(pk, &body).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["user"]["verified"], Value::Bool(true));
    // The LISTEN connection opens beside the pool: wait until both are there.
    let started = Instant::now();
    let (all, encrypted) = loop {
        let (all, encrypted) = vouch_connections(cluster).await;
        if all >= 2 || started.elapsed() > Duration::from_secs(10) {
            break (all, encrypted);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(all >= 2, "the pool and the listener are connected ({all})");
    assert_eq!(encrypted, all, "every connection of the node is encrypted");
    node.stop().await;
}

/// A server that answers PostgreSQL's SSLRequest with "N" (no TLS here) and
/// reports whether the client then went on in plaintext (a StartupMessage).
async fn plaintext_only_server() -> (u16, tokio::task::JoinHandle<bool>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        let Ok(Ok((mut sock, _))) =
            tokio::time::timeout(Duration::from_secs(20), listener.accept()).await
        else {
            return false;
        };
        let mut request = [0u8; 8];
        sock.read_exact(&mut request).await.unwrap();
        // Length 8, code 80877103: the SSLRequest every TLS-capable client sends first.
        assert_eq!(request, [0, 0, 0, 8, 4, 210, 22, 47], "an SSLRequest");
        sock.write_all(b"N").await.unwrap();
        let mut next = [0u8; 64];
        matches!(
            tokio::time::timeout(Duration::from_secs(5), sock.read(&mut next)).await,
            Ok(Ok(n)) if n > 0
        )
    });
    (port, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "reconfigures the machine's PostgreSQL; scripts/test-postgres.sh runs it"]
async fn tls_to_postgres_is_verified_and_never_falls_back_to_plaintext() {
    let cert = ServerCertificate::install();
    let cluster = Cluster::new().await;
    let ca = cert.ca().display().to_string();
    let other_ca = cert.other_ca().display().to_string();

    // The reload is asynchronous: wait until the server presents the new certificate.
    let full = with_tls(
        &cluster.url,
        "localhost",
        &[("sslmode", "verify-full"), ("sslrootcert", &ca)],
    );
    let started = Instant::now();
    while sqlx::PgConnection::connect(&full).await.is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "PostgreSQL presents the test certificate within 10 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // verify-full: the CA and the host name are checked.
    serves_encrypted(&cluster, &full).await;
    // verify-ca: the CA is checked, not the name (127.0.0.1 is not in the certificate).
    let ca_only = with_tls(
        &cluster.url,
        "127.0.0.1",
        &[("sslmode", "verify-ca"), ("sslrootcert", &ca)],
    );
    serves_encrypted(&cluster, &ca_only).await;
    // require: encrypted, the certificate not checked.
    let require = with_tls(&cluster.url, "127.0.0.1", &[("sslmode", "require")]);
    serves_encrypted(&cluster, &require).await;

    // A name the certificate does not carry, or another CA: refused at start.
    let wrong_name = with_tls(
        &cluster.url,
        "127.0.0.1",
        &[("sslmode", "verify-full"), ("sslrootcert", &ca)],
    );
    let said = refused(&wrong_name, &cluster.master_key).await;
    assert!(
        said.contains("cannot connect to PostgreSQL")
            && said.to_lowercase().contains("certificate"),
        "{said}"
    );
    let wrong_ca = with_tls(
        &cluster.url,
        "localhost",
        &[("sslmode", "verify-full"), ("sslrootcert", &other_ca)],
    );
    let said = refused(&wrong_ca, &cluster.master_key).await;
    assert!(said.to_lowercase().contains("certificate"), "{said}");

    // A server without TLS: verify-full and require stop, sending nothing in plaintext.
    for mode in ["verify-full", "require"] {
        let (port, saw_plaintext) = plaintext_only_server().await;
        let url =
            format!("postgres://postgres@localhost:{port}/vouch?sslmode={mode}&sslrootcert={ca}");
        let said = refused(&url, &cluster.master_key).await;
        assert!(
            said.contains("cannot connect to PostgreSQL"),
            "{mode}: {said}"
        );
        assert!(
            !saw_plaintext.await.unwrap(),
            "{mode}: no plaintext after the refusal"
        );
    }
    // The control: with sslmode=prefer the same server does get the plaintext start-up.
    let (port, saw_plaintext) = plaintext_only_server().await;
    let url = format!("postgres://postgres@localhost:{port}/vouch?sslmode=prefer");
    refused(&url, &cluster.master_key).await;
    assert!(
        saw_plaintext.await.unwrap(),
        "prefer falls back, so the fake server is a fair test"
    );

    cluster.drop_database().await;
    drop(cert);
}
