//! `vouch rotate-master-key`, the real binary on SQLite and PostgreSQL: after a
//! rotation the server starts with the new key only, and every identity secret
//! (active, expiring, imported, revoked), the session signing keys (the same
//! JWKS, old sessions still valid) and both webhook secrets of a rotating
//! endpoint still work; a process killed inside the transaction leaves every
//! ciphertext as it was and the old key valid; a live deployment is refused.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::offline::*;
use serde_json::{Value, json};
use sqlx::Connection;
use vouch_server::crypto::MasterKey;

const PRIVATE_WEBHOOKS: &str = "--allow-private-webhooks";

/// What a deployment holds before a rotation, to compare after it.
struct Fixture {
    first_env: String,
    /// (env, key id) → revealed value, every secret of every environment.
    secrets: BTreeMap<(String, String), String>,
    /// Publishable key and value of every secret that verifies now.
    active: Vec<(String, String)>,
    jwks: Value,
    session: String,
    /// Both secrets of the endpoint, which is rotating its secret.
    whsecs: [String; 2],
}

async fn get(base: &str, path: &str) -> Value {
    expect(call(base, "GET", path, Some(ADMIN), None).await, 200)
}

async fn post(base: &str, path: &str, body: Value) -> Value {
    let (status, v) = call(base, "POST", path, Some(ADMIN), Some(&body)).await;
    assert!(status == 200 || status == 201, "POST {path}: {status} {v}");
    v
}

/// Every secret of every environment, revealed.
async fn reveal_all(base: &str) -> BTreeMap<(String, String), String> {
    let mut out = BTreeMap::new();
    for env in get(base, "/admin/v1/environments").await["data"]
        .as_array()
        .unwrap()
    {
        let env = env["id"].as_str().unwrap();
        let list = get(base, &format!("/admin/v1/environments/{env}/secrets")).await;
        for s in list["data"].as_array().unwrap() {
            let id = s["id"].as_str().unwrap();
            let one = get(
                base,
                &format!("/admin/v1/environments/{env}/secrets/{id}?reveal=true"),
            )
            .await;
            out.insert(
                (env.to_string(), id.to_string()),
                one["value"].as_str().unwrap().to_string(),
            );
        }
    }
    out
}

fn sign(secret: &str, id: &str) -> String {
    vouch_core::proof::sign(
        &vouch_core::Secret::new(secret.to_string()),
        id.as_bytes(),
        vouch_core::SignatureEncoding::Hex,
    )
}

async fn identify(base: &str, pk: &str, secret: &str, user: &str) -> Value {
    let body = json!({"user_id": user, "signature": sign(secret, user)});
    let v = expect(
        call(base, "POST", "/v1/identify", Some(pk), Some(&body)).await,
        200,
    );
    assert_eq!(v["user"]["verified"], true, "{v}");
    v
}

/// Secrets of every kind and state, a rotating webhook endpoint, two signing keys.
async fn populate(base: &str, hook: &str) -> Fixture {
    let envs = get(base, "/admin/v1/environments").await;
    let first = &envs["data"][0];
    let first_env = first["id"].as_str().unwrap().to_string();
    let first_pk = first["publishable_key"].as_str().unwrap().to_string();
    let secrets_path = format!("/admin/v1/environments/{first_env}/secrets");
    let rotated = post(
        base,
        &secrets_path,
        json!({"rotate": true, "grace_seconds": 3600}),
    )
    .await;
    let imported_value = "imported-secret-from-another-vendor-0123";
    post(base, &secrets_path, json!({"value": imported_value})).await;

    let second = post(base, "/admin/v1/environments", json!({"name": "second"})).await;
    let second_env = second["id"].as_str().unwrap();
    let second_pk = second["publishable_key"].as_str().unwrap().to_string();
    let doomed = post(
        base,
        &format!("/admin/v1/environments/{second_env}/secrets"),
        json!({}),
    )
    .await;
    expect(
        call(
            base,
            "DELETE",
            &format!(
                "/admin/v1/environments/{second_env}/secrets/{}",
                doomed["id"].as_str().unwrap()
            ),
            Some(ADMIN),
            None,
        )
        .await,
        200,
    );

    let webhook = post(
        base,
        &format!("/admin/v1/environments/{first_env}/webhooks"),
        json!({"url": hook}),
    )
    .await;
    let wh = webhook["id"].as_str().unwrap();
    let again = post(
        base,
        &format!("/admin/v1/environments/{first_env}/webhooks/{wh}/rotate-secret"),
        json!({"grace_seconds": 3600}),
    )
    .await;
    post(base, "/admin/v1/signing-keys/rotate", json!({})).await;

    let rotated_value = rotated["value"].as_str().unwrap().to_string();
    let session = identify(base, &first_pk, &rotated_value, "before").await["session_token"]
        .as_str()
        .unwrap()
        .to_string();
    let secrets = reveal_all(base).await;
    assert_eq!(secrets.len(), 5, "{secrets:?}");
    let old_first = secrets
        .iter()
        .find(|((e, id), v)| {
            *e == first_env && *id != rotated["id"].as_str().unwrap() && *v != imported_value
        })
        .unwrap()
        .1
        .clone();
    Fixture {
        first_env: first_env.clone(),
        active: vec![
            (first_pk.clone(), rotated_value),
            (first_pk.clone(), old_first), // expiring, in its grace period
            (first_pk, imported_value.to_string()),
            (
                second_pk,
                second["secret"]["value"].as_str().unwrap().to_string(),
            ),
        ],
        secrets,
        jwks: get(base, "/.well-known/jwks.json").await,
        session,
        whsecs: [
            webhook["secret"].as_str().unwrap().to_string(),
            again["secret"].as_str().unwrap().to_string(),
        ],
    }
}

/// Everything `populate` made still works, read and verified through the server.
async fn check(base: &str, f: &Fixture, hook: &Receiver, tag: &str) {
    assert_eq!(
        reveal_all(base).await,
        f.secrets,
        "every secret reveals as before"
    );
    assert_eq!(get(base, "/.well-known/jwks.json").await, f.jwks);
    expect(
        call(base, "GET", "/v1/me", Some(&f.session), None).await,
        200,
    );
    for (i, (pk, secret)) in f.active.iter().enumerate() {
        identify(base, pk, secret, &format!("{tag}-{i}")).await;
    }
    let delivery = hook.wait_for(&format!("\"{tag}-0\"")).await;
    for whsec in &f.whsecs {
        assert!(signed_by(&delivery, whsec), "{tag}: not signed by {whsec}");
    }
    assert!(f.secrets.keys().any(|(e, _)| *e == f.first_env));
}

/// Every ciphertext and the key check value, straight from the database.
async fn sealed_rows(db: Db<'_>) -> Vec<(String, Vec<u8>)> {
    const SQL: &str = "SELECT 'secret:' || id, ciphertext FROM secrets
        UNION ALL SELECT 'signing-key:' || kid, ciphertext FROM signing_keys
        UNION ALL SELECT 'webhook:' || id, secrets FROM webhook_endpoints
        ORDER BY 1";
    const CHECK: &str = "SELECT value FROM meta WHERE key = 'master_key_check'";
    let (mut rows, check): (Vec<(String, Vec<u8>)>, String) = match db {
        Db::Sqlite(dir) => {
            let url = format!("sqlite://{}", dir.join("vouch.db").display());
            let mut c = sqlx::SqliteConnection::connect(&url).await.unwrap();
            let rows = sqlx::query_as(SQL).fetch_all(&mut c).await.unwrap();
            let check = sqlx::query_scalar(CHECK).fetch_one(&mut c).await.unwrap();
            let _ = c.close().await;
            (rows, check)
        }
        Db::Postgres(pg) => {
            let mut c = pg.sql().await;
            let rows = sqlx::query_as(SQL).fetch_all(&mut c).await.unwrap();
            let check = sqlx::query_scalar(CHECK).fetch_one(&mut c).await.unwrap();
            let _ = c.close().await;
            (rows, check)
        }
    };
    assert!(rows.len() >= 8, "{}", rows.len());
    rows.push(("check".into(), check.into_bytes()));
    rows
}

#[derive(Clone, Copy)]
enum Db<'a> {
    Sqlite(&'a Path),
    Postgres(&'a PgDatabase),
}

fn rotate(args: &[&str], envs: &[(&str, &str)]) -> std::process::Output {
    let mut all = vec!["rotate-master-key"];
    all.extend_from_slice(args);
    vouch(&all, envs)
}

fn key_file(dir: &Path, name: &str) -> String {
    std::fs::read_to_string(dir.join(name))
        .unwrap()
        .trim()
        .to_string()
}

fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// Starts `vouch rotate-master-key` paused inside its transaction, waits until
/// it says so, lets `at_pause` look, then kills it with SIGKILL.
async fn kill_inside_the_transaction(
    args: &[&str],
    envs: &[(&str, &str)],
    at_pause: impl AsyncFnOnce(),
) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_vouch"));
    cmd.arg("rotate-master-key")
        .args(args)
        .env_clear()
        .env("VOUCH_TEST_RESEAL_PAUSE_MS", "30000")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let err = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(err).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut seen = Vec::new();
    loop {
        match rx.recv_timeout(Duration::from_millis(50)) {
            Ok(line) if line.contains("paused inside the re-encryption transaction") => break,
            Ok(line) => seen.push(line),
            Err(_) => {
                assert!(
                    child.try_wait().unwrap().is_none(),
                    "the rotation ended before its pause: {seen:?}"
                );
                assert!(Instant::now() < deadline, "no pause within 20 s: {seen:?}");
            }
        }
    }
    at_pause().await;
    child.kill().unwrap();
    let status = child.wait().unwrap();
    assert!(!status.success(), "killed: {status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_key_file_every_secret_moves_to_the_new_key_and_only_it_starts_the_server() {
    let hook = Receiver::start().await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let s = Serve::start(d, &[PRIVATE_WEBHOOKS], &[]);
    let f = populate(&s.base, &hook.url).await;
    s.stop();
    let old = key_file(d, "master.key");

    let out = rotate(&["--data-dir", d.to_str().unwrap()], &[]);
    assert_eq!(
        ok(&out),
        "",
        "nothing on stdout: the new key is in the file"
    );
    let said = stderr(&out);
    assert!(
        said.contains(
            "5 identity secrets, 2 session signing keys and the secrets of 1 webhook endpoints"
        ),
        "{said}"
    );
    let new = key_file(d, "master.key");
    assert_ne!(new, old);
    MasterKey::from_base64(&new).unwrap();
    assert_eq!(key_file(d, "master.key.old"), old, "the old key is kept");
    assert!(!d.join("master.key.new").exists());
    assert_eq!(mode(&d.join("master.key")), 0o600);
    assert_eq!(mode(&d.join("master.key.old")), 0o600);

    let s = Serve::start(d, &[PRIVATE_WEBHOOKS], &[]);
    check(&s.base, &f, &hook, "after").await;
    s.stop();

    let (code, err) = serve_refused(d, &[], &[("VOUCH_MASTER_KEY", &old)]);
    assert_eq!(code, Some(1));
    assert!(
        err.contains("the master key does not match this data"),
        "{err}"
    );

    // Audited, in the same transaction, with the actor `cli`.
    let url = format!("sqlite://{}", d.join("vouch.db").display());
    let mut c = sqlx::SqliteConnection::connect(&url).await.unwrap();
    let (actor, detail): (String, String) =
        sqlx::query_as("SELECT actor, detail FROM audit WHERE kind = 'master_key.rotated'")
            .fetch_one(&mut c)
            .await
            .unwrap();
    let _ = c.close().await;
    assert_eq!(actor, "cli");
    let detail: Value = serde_json::from_str(&detail).unwrap();
    assert_eq!(
        (detail["secrets"].as_u64(), detail["webhooks"].as_u64()),
        (Some(5), Some(1))
    );

    // A second rotation waits until the old key file is dealt with.
    let err = fails(&rotate(&["--data-dir", d.to_str().unwrap()], &[]), 1);
    assert!(err.contains("master.key.old is still there"), "{err}");
    assert_eq!(key_file(d, "master.key"), new, "nothing changed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_inside_the_transaction_leaves_the_old_key_valid_on_sqlite() {
    let hook = Receiver::start().await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let s = Serve::start(d, &[PRIVATE_WEBHOOKS], &[]);
    let f = populate(&s.base, &hook.url).await;
    s.stop();
    let old = key_file(d, "master.key");
    let before = sealed_rows(Db::Sqlite(d)).await;

    kill_inside_the_transaction(&["--data-dir", d.to_str().unwrap()], &[], async || {}).await;
    assert_eq!(key_file(d, "master.key"), old, "the key file is untouched");
    assert!(!d.join("master.key.old").exists());
    assert_eq!(
        sealed_rows(Db::Sqlite(d)).await,
        before,
        "not one ciphertext changed"
    );
    let s = Serve::start(d, &[PRIVATE_WEBHOOKS], &[]);
    check(&s.base, &f, &hook, "after-crash").await;
    s.stop();

    // The next run replaces the new key file the killed one left, and succeeds.
    assert!(d.join("master.key.new").exists());
    ok(&rotate(&["--data-dir", d.to_str().unwrap()], &[]));
    assert_ne!(key_file(d, "master.key"), old);
    assert_ne!(sealed_rows(Db::Sqlite(d)).await, before);
    let s = Serve::start(d, &[PRIVATE_WEBHOOKS], &[]);
    check(&s.base, &f, &hook, "rotated").await;
    s.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_keys_in_the_environment_no_file_is_written_and_the_new_key_must_be_given() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (old, new) = (new_key(), new_key());
    let key_env = [("VOUCH_MASTER_KEY", old.as_str())];
    let s = Serve::start(d, &[], &key_env);
    let before = reveal_all(&s.base).await;
    s.stop();
    let d_arg = ["--data-dir", d.to_str().unwrap()];

    let err = fails(&rotate(&d_arg, &key_env), 2);
    assert!(err.contains("VOUCH_NEW_MASTER_KEY"), "{err}");
    let err = fails(
        &rotate(
            &d_arg,
            &[("VOUCH_MASTER_KEY", &old), ("VOUCH_NEW_MASTER_KEY", &old)],
        ),
        2,
    );
    assert!(
        err.contains("the new master key is the current one"),
        "{err}"
    );
    let wrong = new_key();
    let err = fails(
        &rotate(
            &d_arg,
            &[("VOUCH_MASTER_KEY", &wrong), ("VOUCH_NEW_MASTER_KEY", &new)],
        ),
        1,
    );
    assert!(err.contains("does not match this data"), "{err}");

    let both = [
        ("VOUCH_MASTER_KEY", old.as_str()),
        ("VOUCH_NEW_MASTER_KEY", new.as_str()),
    ];
    assert_eq!(ok(&rotate(&d_arg, &both)), "");
    let names: Vec<String> = std::fs::read_dir(d)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        !names.iter().any(|n| n.starts_with("master.key")),
        "{names:?}"
    );

    let s = Serve::start(d, &[], &[("VOUCH_MASTER_KEY", &new)]);
    assert_eq!(reveal_all(&s.base).await, before);
    s.stop();
    let (code, err) = serve_refused(d, &[], &key_env);
    assert_eq!(code, Some(1), "{err}");
    // Running it again with the same pair finds the work done.
    let out = rotate(&d_arg, &both);
    ok(&out);
    assert!(stderr(&out).contains("already encrypted under the new master key"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotation_interrupted_after_its_commit_is_finished_by_running_it_again() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let s = Serve::start(d, &[], &[]);
    let before = reveal_all(&s.base).await;
    s.stop();
    let old = key_file(d, "master.key");
    let new = new_key();
    // The state a crash between the commit and the file swap leaves: the data
    // under the new key, master.key still the old one, master.key.new the new.
    ok(&rotate(
        &["--data-dir", d.to_str().unwrap()],
        &[("VOUCH_MASTER_KEY", &old), ("VOUCH_NEW_MASTER_KEY", &new)],
    ));
    MasterKey::from_base64(&new)
        .unwrap()
        .write_new_file(&d.join("master.key.new"))
        .unwrap();
    let (code, err) = serve_refused(d, &[], &[]);
    assert_eq!(code, Some(1), "the old key file no longer matches");
    assert!(
        err.contains("interrupted `vouch rotate-master-key`"),
        "the refusal says how to finish: {err}"
    );

    let out = rotate(&["--data-dir", d.to_str().unwrap()], &[]);
    ok(&out);
    assert!(stderr(&out).contains("finished"), "{}", stderr(&out));
    assert_eq!(key_file(d, "master.key"), new);
    assert_eq!(key_file(d, "master.key.old"), old);
    let s = Serve::start(d, &[], &[]);
    assert_eq!(reveal_all(&s.base).await, before);
    s.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_data_directory_a_server_is_using_is_refused_naming_its_pid() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let s = Serve::start(d, &[], &[]);
    let old = key_file(d, "master.key");
    let err = fails(&rotate(&["--data-dir", d.to_str().unwrap()], &[]), 1);
    assert!(
        err.contains(&format!("in use by process {}", s.pid())),
        "{err}"
    );
    assert_eq!(key_file(d, "master.key"), old);
    assert!(!d.join("master.key.new").exists() && !d.join("master.key.old").exists());
    s.stop();

    let missing = d.join("nothing");
    let err = fails(&rotate(&["--data-dir", missing.to_str().unwrap()], &[]), 2);
    assert!(
        err.contains("no master key") || err.contains("no Vouch database"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_postgres_it_needs_nodes_stopped_refuses_a_connected_node_and_then_rotates() {
    let hook = Receiver::start().await;
    let db = PgDatabase::create("rotate").await;
    let (old, new) = (new_key(), new_key());
    let node_dir = tempfile::tempdir().unwrap();
    let old_env = [
        ("VOUCH_DATABASE_URL", db.url.as_str()),
        ("VOUCH_MASTER_KEY", old.as_str()),
    ];
    let s = Serve::start(node_dir.path(), &[PRIVATE_WEBHOOKS], &old_env);
    let f = populate(&s.base, &hook.url).await;
    let rotation_env = [
        ("VOUCH_DATABASE_URL", db.url.as_str()),
        ("VOUCH_MASTER_KEY", old.as_str()),
        ("VOUCH_NEW_MASTER_KEY", new.as_str()),
    ];
    let err = fails(&rotate(&[], &rotation_env), 2);
    assert!(err.contains("--nodes-stopped"), "{err}");
    let err = fails(&rotate(&["--nodes-stopped"], &rotation_env), 1);
    assert!(
        err.contains("connection(s) of Vouch nodes are open"),
        "{err}"
    );
    assert!(
        err.contains("backend pid") && err.contains("127.0.0.1"),
        "{err}"
    );
    let before = sealed_rows(Db::Postgres(&db)).await;
    s.stop();
    assert_eq!(sealed_rows(Db::Postgres(&db)).await, before);

    assert_eq!(ok(&rotate(&["--nodes-stopped"], &rotation_env)), "");
    let new_env = [
        ("VOUCH_DATABASE_URL", db.url.as_str()),
        ("VOUCH_MASTER_KEY", new.as_str()),
    ];
    let s = Serve::start(node_dir.path(), &[PRIVATE_WEBHOOKS], &new_env);
    check(&s.base, &f, &hook, "pg-after").await;
    s.stop();
    let (code, err) = serve_refused(node_dir.path(), &[], &old_env);
    assert_eq!(code, Some(1));
    assert!(
        err.contains("the master key does not match this data"),
        "{err}"
    );
    db.drop_now().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_inside_the_transaction_leaves_the_old_key_valid_on_postgres() {
    let hook = Receiver::start().await;
    let db = PgDatabase::create("rotcrash").await;
    let (old, new) = (new_key(), new_key());
    let node_dir = tempfile::tempdir().unwrap();
    let old_env = [
        ("VOUCH_DATABASE_URL", db.url.as_str()),
        ("VOUCH_MASTER_KEY", old.as_str()),
    ];
    let s = Serve::start(node_dir.path(), &[PRIVATE_WEBHOOKS], &old_env);
    let f = populate(&s.base, &hook.url).await;
    s.stop();
    let before = sealed_rows(Db::Postgres(&db)).await;

    let rotation_env = [
        ("VOUCH_DATABASE_URL", db.url.as_str()),
        ("VOUCH_MASTER_KEY", old.as_str()),
        ("VOUCH_NEW_MASTER_KEY", new.as_str()),
    ];
    kill_inside_the_transaction(&["--nodes-stopped"], &rotation_env, async || {
        // The writes are done and not committed: the rotation's connection
        // sits in its open transaction.
        let mut c = db.sql().await;
        let open: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity
             WHERE datname = current_database() AND application_name = 'vouch'
               AND state = 'idle in transaction'",
        )
        .fetch_one(&mut c)
        .await
        .unwrap();
        let _ = c.close().await;
        assert_eq!(open, 1, "the rotation's transaction is open at the pause");
    })
    .await;
    // PostgreSQL rolls the transaction back when it sees the client gone.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut c = db.sql().await;
        let left: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity
             WHERE datname = current_database() AND application_name = 'vouch'",
        )
        .fetch_one(&mut c)
        .await
        .unwrap();
        let _ = c.close().await;
        if left == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the killed rotation's connections stay"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        sealed_rows(Db::Postgres(&db)).await,
        before,
        "not one ciphertext changed"
    );
    let s = Serve::start(node_dir.path(), &[PRIVATE_WEBHOOKS], &old_env);
    check(&s.base, &f, &hook, "pg-after-crash").await;
    s.stop();
    let (code, _) = serve_refused(
        node_dir.path(),
        &[],
        &[
            ("VOUCH_DATABASE_URL", db.url.as_str()),
            ("VOUCH_MASTER_KEY", new.as_str()),
        ],
    );
    assert_eq!(code, Some(1), "the new key does not match the data");
    db.drop_now().await;
}
