//! PostgreSQL stopped and started again under load: while it is down Vouch
//! answers `503 unavailable` quickly (never a hang), afterwards it serves again
//! by itself, and every identify it acknowledged is stored.
//!
//! This restarts the machine's PostgreSQL cluster (`pg_ctlcluster`), so it is
//! ignored by a plain `cargo test`; `scripts/test-postgres.sh` runs it with
//! `--ignored` on CI, where nothing else uses that server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};

use crate::common::pg::Cluster;
use crate::common::sign_hex;

/// The one cluster on this machine: `ls /etc/postgresql` gives its version.
fn pg_version() -> String {
    let mut versions: Vec<String> = std::fs::read_dir("/etc/postgresql")
        .expect("PostgreSQL is installed (/etc/postgresql)")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    versions.sort();
    versions
        .pop()
        .expect("a PostgreSQL version in /etc/postgresql")
}

fn pg_ctl(action: &str) {
    // Fast shutdown: open sessions (Vouch's pool) are cut off, as in a real restart.
    let out = Command::new("pg_ctlcluster")
        .args(["--skip-systemctl-redirect", "--mode", "fast"])
        .args([&pg_version(), "main", action])
        .output()
        .expect("run pg_ctlcluster");
    assert!(
        out.status.success(),
        "pg_ctlcluster {action}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Starts PostgreSQL again even when the test fails half-way.
struct StartOnDrop;

impl Drop for StartOnDrop {
    fn drop(&mut self) {
        let _ = Command::new("pg_ctlcluster")
            .args(["--skip-systemctl-redirect", &pg_version(), "main", "start"])
            .output();
    }
}

#[derive(Debug)]
struct Answer {
    user: String,
    status: u16,
    code: Option<String>,
    took: Duration,
    at: Instant,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "restarts the machine's PostgreSQL; run by scripts/test-postgres.sh"]
async fn postgres_restart_under_load_answers_503_then_recovers_without_losing_writes() {
    let cluster = Cluster::new().await;
    let node = Arc::new(cluster.node().await);
    let (status, env) = node
        .admin(
            Method::POST,
            "/admin/v1/environments",
            Some(&json!({"name": "restart"})),
        )
        .await;
    assert_eq!(status, 201, "{env}");
    let pk = env["publishable_key"].as_str().unwrap().to_string();
    let secret = env["secret"]["value"].as_str().unwrap().to_string();

    let running = Arc::new(AtomicBool::new(true));
    let mut tasks = Vec::new();
    for t in 0..8 {
        let (node, running) = (node.clone(), running.clone());
        let (pk, secret) = (pk.clone(), secret.clone());
        tasks.push(tokio::spawn(async move {
            let mut answers = Vec::new();
            let mut i = 0;
            while running.load(Ordering::Relaxed) {
                let user = format!("r-{t}-{i}");
                i += 1;
                let body = json!({"user_id": user, "signature": sign_hex(&secret, &user)});
                let started = Instant::now();
                let (status, v): (u16, Value) = node.identify(&pk, &body).await;
                answers.push(Answer {
                    user,
                    status,
                    code: v["error"]["code"].as_str().map(str::to_string),
                    took: started.elapsed(),
                    at: Instant::now(),
                });
                if status != 200 {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
            answers
        }));
    }

    tokio::time::sleep(Duration::from_secs(1)).await;
    let guard = StartOnDrop;
    pg_ctl("stop");
    let stopped_at = Instant::now();
    tokio::time::sleep(Duration::from_secs(4)).await;
    let down_until = Instant::now();
    pg_ctl("start");
    let started_at = Instant::now();
    drop(guard);

    // Vouch recovers by itself: identifies succeed again.
    let probe = |n: u32| {
        let user = format!("probe-{n}");
        json!({"user_id": user, "signature": sign_hex(&secret, &user)})
    };
    let mut n = 0;
    let recovered = loop {
        let (status, v) = node.identify(&pk, &probe(n)).await;
        if status == 200 {
            break started_at.elapsed();
        }
        assert_eq!(status, 503, "{v}");
        assert!(
            started_at.elapsed() < Duration::from_secs(30),
            "no recovery 30 s after PostgreSQL came back"
        );
        n += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    tokio::time::sleep(Duration::from_secs(1)).await;
    running.store(false, Ordering::Relaxed);
    let mut answers = Vec::new();
    for t in tasks {
        answers.extend(t.await.unwrap());
    }

    let slowest = answers.iter().map(|a| a.took).max().unwrap();
    assert!(
        slowest < Duration::from_secs(5),
        "an identify took {slowest:?}"
    );
    let odd: Vec<&Answer> = answers
        .iter()
        .filter(|a| {
            a.status != 200 && (a.status != 503 || a.code.as_deref() != Some("unavailable"))
        })
        .collect();
    assert!(
        odd.is_empty(),
        "answers other than 200 or 503 unavailable: {odd:?}"
    );
    let during = answers
        .iter()
        .filter(|a| a.at > stopped_at + Duration::from_millis(500) && a.at < down_until)
        .collect::<Vec<_>>();
    assert!(
        !during.is_empty(),
        "requests were answered during the outage"
    );
    let ok_while_down: Vec<_> = during.iter().filter(|a| a.status != 503).collect();
    assert!(
        ok_while_down.is_empty(),
        "while PostgreSQL was down every identify is 503: {ok_while_down:?}"
    );
    let after = answers
        .iter()
        .filter(|a| a.at > started_at + recovered + Duration::from_millis(200))
        .collect::<Vec<_>>();
    assert!(
        after.iter().any(|a| a.status == 200),
        "the load succeeds again after the restart"
    );

    // Every acknowledged identify is stored.
    let acknowledged: Vec<&str> = answers
        .iter()
        .filter(|a| a.status == 200)
        .map(|a| a.user.as_str())
        .collect();
    let mut sql = cluster.sql().await;
    let stored: Vec<String> = sqlx::query_scalar("SELECT id FROM users")
        .fetch_all(&mut sql)
        .await
        .unwrap();
    let stored: std::collections::HashSet<String> = stored.into_iter().collect();
    let lost: Vec<&&str> = acknowledged
        .iter()
        .filter(|u| !stored.contains(**u))
        .collect();
    assert!(lost.is_empty(), "acknowledged but lost: {lost:?}");
    eprintln!(
        "{} identifies: {} acknowledged, {} answered 503 while down; recovered {recovered:?} after start; slowest answer {slowest:?}",
        answers.len(),
        acknowledged.len(),
        during.len()
    );
    drop(sql);
    Arc::into_inner(node).expect("tasks ended").stop().await;
    cluster.drop_database().await;
}
