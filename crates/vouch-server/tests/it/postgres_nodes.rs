//! Several Vouch nodes on one PostgreSQL database (`VOUCH_TEST_POSTGRES`,
//! default `postgres://postgres@127.0.0.1:5432/postgres`; each test creates
//! and drops its own database): changes reach every node within a second, a
//! load spread over two nodes loses nothing, and a webhook attempt is sent by
//! exactly one node.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::http::HeaderMap;
use reqwest::Method;
use serde_json::{Value, json};

use crate::common::pg::{Cluster, Node};
use crate::common::sign_hex;

const PROPAGATION_LIMIT: Duration = Duration::from_secs(1);

struct Env {
    id: String,
    pk: String,
    secret: String,
    key_id: String,
}

async fn create_env(node: &Node, settings: Value) -> Env {
    let (status, v) = node
        .admin(Method::POST, "/admin/v1/environments", Some(&settings))
        .await;
    assert_eq!(status, 201, "create environment: {v}");
    Env {
        id: v["id"].as_str().unwrap().to_string(),
        pk: v["publishable_key"].as_str().unwrap().to_string(),
        secret: v["secret"]["value"].as_str().unwrap().to_string(),
        key_id: v["secret"]["id"].as_str().unwrap().to_string(),
    }
}

/// Waits until `node` knows environment `id`: one made on another node
/// arrives through LISTEN/NOTIFY (the one-second bound is asserted by
/// `revocation_and_enforcement_reach_the_other_node_within_a_second`).
async fn wait_known(node: &Node, id: &str) {
    let path = format!("/admin/v1/environments/{id}/secrets");
    time_until(PROPAGATION_LIMIT, |_| async {
        node.admin(Method::GET, &path, None).await.0 == 200
    })
    .await;
}

/// Polls `check` every 50 ms until it holds; returns how long that took.
async fn time_until<F, Fut>(limit: Duration, mut check: F) -> Duration
where
    F: FnMut(u32) -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    let mut round = 0;
    loop {
        if check(round).await {
            return started.elapsed();
        }
        round += 1;
        assert!(
            started.elapsed() < limit * 5,
            "still not seen after {:?}",
            started.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn revocation_and_enforcement_reach_the_other_node_within_a_second() {
    let cluster = Cluster::new().await;
    let a = cluster.node().await;
    let b = cluster.node().await;
    let env = create_env(&a, json!({"name": "nodes"})).await;

    // A new environment made on A is known on B quickly too.
    let seen = time_until(PROPAGATION_LIMIT, |_| {
        let body = json!({"user_id": "first", "signature": sign_hex(&env.secret, "first")});
        let b = &b;
        let pk = env.pk.clone();
        async move { b.identify(&pk, &body).await.0 == 200 }
    })
    .await;
    assert!(seen < PROPAGATION_LIMIT, "new environment took {seen:?}");

    // Revoke the secret on A: B rejects signatures made with it.
    let (status, v) = a
        .admin(
            Method::DELETE,
            &format!("/admin/v1/environments/{}/secrets/{}", env.id, env.key_id),
            None,
        )
        .await;
    assert_eq!(status, 200, "revoke: {v}");
    let took = time_until(PROPAGATION_LIMIT, |round| {
        // A new user id each time, so the per-user rate limit never answers instead.
        let user = format!("after-revoke-{round}");
        let body = json!({"user_id": user, "signature": sign_hex(&env.secret, &user)});
        let b = &b;
        let pk = env.pk.clone();
        async move {
            let (status, v) = b.identify(&pk, &body).await;
            match status {
                200 => false,
                401 => {
                    assert_eq!(v["error"]["code"], "invalid_signature", "{v}");
                    true
                }
                other => panic!("unexpected answer {other}: {v}"),
            }
        }
    })
    .await;
    assert!(
        took < PROPAGATION_LIMIT,
        "node B accepted the revoked secret for {took:?}"
    );

    // Enforcement switched on at A: B refuses unsigned identifies.
    let (status, v) = a
        .admin(
            Method::PATCH,
            &format!("/admin/v1/environments/{}", env.id),
            Some(&json!({"enforcement": "enforce"})),
        )
        .await;
    assert_eq!(status, 200, "enforce: {v}");
    let took = time_until(PROPAGATION_LIMIT, |round| {
        let body = json!({"user_id": format!("unsigned-{round}")});
        let b = &b;
        let pk = env.pk.clone();
        async move {
            let (status, v) = b.identify(&pk, &body).await;
            match status {
                200 => false,
                401 => {
                    assert_eq!(v["error"]["code"], "signature_required", "{v}");
                    true
                }
                other => panic!("unexpected answer {other}: {v}"),
            }
        }
    })
    .await;
    assert!(
        took < PROPAGATION_LIMIT,
        "node B ignored enforcement for {took:?}"
    );

    a.stop().await;
    b.stop().await;
    cluster.drop_database().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn load_over_two_nodes_has_no_errors_and_loses_no_user() {
    const TASKS: usize = 16;
    const PER_TASK: usize = 125;
    let cluster = Cluster::new().await;
    let nodes = Arc::new([cluster.node().await, cluster.node().await]);
    let env = create_env(&nodes[0], json!({"name": "load"})).await;
    wait_known(&nodes[1], &env.id).await;
    // Half the users unsigned, so the environment's shared counter is exercised too.
    let mut tasks = Vec::new();
    for t in 0..TASKS {
        let nodes = nodes.clone();
        let (pk, secret) = (env.pk.clone(), env.secret.clone());
        tasks.push(tokio::spawn(async move {
            let mut errors = Vec::new();
            for i in 0..PER_TASK {
                let user = format!("u-{t}-{i}");
                let body = if i % 2 == 0 {
                    json!({"user_id": user, "signature": sign_hex(&secret, &user), "attributes": {"n": i}})
                } else {
                    json!({"user_id": user, "attributes": {"n": i}})
                };
                let (status, v) = nodes[(t + i) % 2].identify(&pk, &body).await;
                if status != 200 {
                    errors.push(format!("{user}: {status} {v}"));
                }
            }
            errors
        }));
    }
    let mut errors = Vec::new();
    for t in tasks {
        errors.extend(t.await.unwrap());
    }
    assert!(
        errors.is_empty(),
        "{} errors, e.g. {:?}",
        errors.len(),
        &errors[..errors.len().min(5)]
    );

    let mut sql = cluster.sql().await;
    let (users, verified): (i64, i64) = sqlx::query_as(
        "SELECT COUNT(*), COUNT(*) FILTER (WHERE verified) FROM users WHERE env_id = $1",
    )
    .bind(&env.id)
    .fetch_one(&mut sql)
    .await
    .unwrap();
    assert_eq!(users, (TASKS * PER_TASK) as i64, "every user is stored");
    assert_eq!(verified, (TASKS * PER_TASK.div_ceil(2)) as i64);
    let unsigned: i64 = sqlx::query_scalar("SELECT unsigned_count FROM environments WHERE id = $1")
        .bind(&env.id)
        .fetch_one(&mut sql)
        .await
        .unwrap();
    assert_eq!(
        unsigned,
        users - verified,
        "each unsigned user counted once"
    );
    // Both nodes answer for every user, whichever node stored it.
    for user in ["u-0-0", "u-15-124", "u-7-63"] {
        for node in nodes.iter() {
            let (status, v) = node
                .admin(
                    Method::GET,
                    &format!("/admin/v1/environments/{}/users/{user}", env.id),
                    None,
                )
                .await;
            assert_eq!(status, 200, "{user}: {v}");
        }
    }
    drop(sql);
    let [a, b] = Arc::into_inner(nodes).expect("no task holds the nodes");
    a.stop().await;
    b.stop().await;
    cluster.drop_database().await;
}

#[derive(Clone, Default)]
struct Receiver {
    hits: Arc<Mutex<Vec<String>>>,
}

async fn start_receiver(rx: Receiver) -> String {
    async fn hook(
        axum::extract::State(rx): axum::extract::State<Receiver>,
        headers: HeaderMap,
    ) -> &'static str {
        let id = headers
            .get("webhook-id")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        rx.hits.lock().unwrap().push(id);
        "ok"
    }
    let app = Router::new()
        .route("/hook", axum::routing::post(hook))
        .with_state(rx);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{addr}/hook")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn each_webhook_attempt_is_sent_by_exactly_one_node() {
    const EVENTS: usize = 200;
    let receiver = Receiver::default();
    let url = start_receiver(receiver.clone()).await;
    let cluster = Cluster::new().await;
    let private = |c: &mut vouch_server::Config| c.allow_private_webhooks = true;
    let nodes = [
        cluster.node_with(private).await,
        cluster.node_with(private).await,
    ];
    let env = create_env(&nodes[0], json!({"name": "hooks"})).await;
    wait_known(&nodes[1], &env.id).await;
    let (status, v) = nodes[1]
        .admin(
            Method::POST,
            &format!("/admin/v1/environments/{}/webhooks", env.id),
            Some(&json!({"url": url, "event_types": ["user.created"]})),
        )
        .await;
    assert_eq!(status, 201, "create endpoint: {v}");

    // Events produced on both nodes, concurrently.
    let mut tasks = Vec::new();
    let nodes = Arc::new(nodes);
    for t in 0..8 {
        let nodes = nodes.clone();
        let (pk, secret) = (env.pk.clone(), env.secret.clone());
        tasks.push(tokio::spawn(async move {
            for i in (t..EVENTS).step_by(8) {
                let user = format!("hook-{i}");
                let body = json!({"user_id": user, "signature": sign_hex(&secret, &user)});
                let (status, v) = nodes[i % 2].identify(&pk, &body).await;
                assert_eq!(status, 200, "{v}");
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }

    let started = Instant::now();
    while receiver.hits.lock().unwrap().len() < EVENTS {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "only {} of {EVENTS} webhooks arrived",
            receiver.hits.lock().unwrap().len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Give a duplicate the time to show up: past the dispatchers' 500 ms poll.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let hits = receiver.hits.lock().unwrap().clone();
    let mut per_id: HashMap<&str, usize> = HashMap::new();
    for id in &hits {
        *per_id.entry(id.as_str()).or_default() += 1;
    }
    let twice: Vec<_> = per_id.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "sent more than once: {twice:?}");
    assert_eq!(per_id.len(), EVENTS, "one message per new user");
    assert!(per_id.keys().all(|id| id.starts_with("msg_")));

    let mut sql = cluster.sql().await;
    let (deliveries, attempts): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT COUNT(*) FROM webhook_deliveries WHERE status = 'delivered' AND attempts = 1),
                (SELECT COUNT(*) FROM webhook_attempts)",
    )
    .fetch_one(&mut sql)
    .await
    .unwrap();
    assert_eq!(
        deliveries, EVENTS as i64,
        "every delivery done in one attempt"
    );
    assert_eq!(attempts, EVENTS as i64, "one logged attempt per delivery");
    drop(sql);
    let [a, b] = Arc::into_inner(nodes).expect("no task holds the nodes");
    a.stop().await;
    b.stop().await;
    cluster.drop_database().await;
}

#[tokio::test]
async fn postgres_without_a_master_key_is_refused() {
    let cluster = Cluster::new().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = vouch_server::Config {
        data_dir: dir.path().to_path_buf(),
        database_url: Some(cluster.url.clone()),
        ..Default::default()
    };
    let err = vouch_server::run_with_listener(listener, config, async {})
        .await
        .expect_err("refused without VOUCH_MASTER_KEY");
    assert!(
        err.to_string()
            .contains("VOUCH_MASTER_KEY is required with PostgreSQL"),
        "{err}"
    );
    assert!(
        !dir.path().join("master.key").exists(),
        "no key file is made"
    );
    cluster.drop_database().await;
}

/// A session on `node`: `GET /v1/me`'s status and error code.
async fn me(node: &Node, session: &str) -> (u16, Value) {
    node.call(Method::GET, "/v1/me", session, None).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_environment_or_secret_made_on_one_node_works_on_the_other_for_the_very_next_call() {
    let cluster = Cluster::new().await;
    let a = cluster.node().await;
    let b = cluster.node().await;
    // Twenty times: create on A, and at once a correct signature on B.
    for i in 0..20 {
        let env = create_env(&a, json!({"name": format!("rw-{i}")})).await;
        let body = json!({"user_id": "first", "signature": sign_hex(&env.secret, "first")});
        let (status, v) = b.identify(&env.pk, &body).await;
        assert_eq!(status, 200, "try {i}: the first call on B answered {v}");
        // A secret rotated in on A verifies on B at once too.
        let (status, s) = a
            .admin(
                Method::POST,
                &format!("/admin/v1/environments/{}/secrets", env.id),
                Some(&json!({"rotate": true, "grace_seconds": 0})),
            )
            .await;
        assert_eq!(status, 201, "{s}");
        let fresh = s["value"].as_str().unwrap();
        let body = json!({"user_id": "second", "signature": sign_hex(fresh, "second")});
        let (status, v) = b.identify(&env.pk, &body).await;
        assert_eq!(status, 200, "try {i}: the new secret on B answered {v}");
    }
    // A publishable key nobody made is still refused, quickly.
    let (status, v) = b
        .identify(
            "pk_test_0000000000000000000000000000000",
            &json!({"user_id": "x"}),
        )
        .await;
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (401, Some("invalid_publishable_key"))
    );
    a.stop().await;
    b.stop().await;
    cluster.drop_database().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn session_revocations_and_deleted_tokens_reach_the_other_node_within_a_second() {
    let cluster = Cluster::new().await;
    let a = cluster.node().await;
    let b = cluster.node().await;
    let env = create_env(&a, json!({"name": "sessions"})).await;
    wait_known(&b, &env.id).await;
    let session = |user: &'static str, signed: bool| {
        let body = if signed {
            json!({"user_id": user, "signature": sign_hex(&env.secret, user)})
        } else {
            json!({"user_id": user})
        };
        let (b, pk) = (&b, env.pk.clone());
        async move {
            let (status, v) = b.identify(&pk, &body).await;
            assert_eq!(status, 200, "{v}");
            v["session_token"].as_str().unwrap().to_string()
        }
    };
    let refused_on_b = |token: String, code: &'static str| {
        let b = &b;
        async move {
            time_until(PROPAGATION_LIMIT, |_| {
                let token = token.clone();
                async move {
                    let (status, v) = me(b, &token).await;
                    match status {
                        200 => false,
                        _ => {
                            assert_eq!(v["error"]["code"], code, "{v}");
                            true
                        }
                    }
                }
            })
            .await
        }
    };
    // A user erased on A: its session on B is refused.
    let gone = session("gone", true).await;
    assert_eq!(me(&b, &gone).await.0, 200);
    let (status, _) = a
        .admin(
            Method::DELETE,
            &format!("/admin/v1/environments/{}/users/gone", env.id),
            None,
        )
        .await;
    assert_eq!(status, 204);
    let took = refused_on_b(gone, "session_expired").await;
    assert!(took < PROPAGATION_LIMIT, "erasure took {took:?} on B");
    // Enforcement switched on at A: an unverified session on B is refused.
    let unverified = session("loose", false).await;
    let (status, _) = a
        .admin(
            Method::PATCH,
            &format!("/admin/v1/environments/{}", env.id),
            Some(&json!({"enforcement": "enforce"})),
        )
        .await;
    assert_eq!(status, 200);
    let took = refused_on_b(unverified, "signature_required").await;
    assert!(took < PROPAGATION_LIMIT, "enforcement took {took:?} on B");
    // Every session revoked on A: a verified session on B is refused.
    let verified = session("kept", true).await;
    let (status, _) = a
        .admin(
            Method::POST,
            &format!("/admin/v1/environments/{}/sessions/revoke", env.id),
            None,
        )
        .await;
    assert_eq!(status, 200);
    let took = refused_on_b(verified, "session_expired").await;
    assert!(took < PROPAGATION_LIMIT, "revocation took {took:?} on B");
    // An admin token deleted on A is refused on B at once.
    let (status, t) = a
        .admin(
            Method::POST,
            "/admin/v1/admin-tokens",
            Some(&json!({"name": "short-lived", "role": "admin"})),
        )
        .await;
    assert_eq!(status, 201, "{t}");
    let value = t["token"].as_str().unwrap().to_string();
    assert_eq!(
        b.call(Method::GET, "/admin/v1/environments", &value, None)
            .await
            .0,
        200
    );
    let (status, _) = a
        .admin(
            Method::DELETE,
            &format!("/admin/v1/admin-tokens/{}", t["id"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(status, 204);
    let (status, v) = b
        .call(Method::GET, "/admin/v1/environments", &value, None)
        .await;
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (401, Some("invalid_admin_token"))
    );
    a.stop().await;
    b.stop().await;
    cluster.drop_database().await;
}

/// Group commit: concurrent writes of one node share transactions, and every
/// acknowledged one is stored. Rows written by one transaction share its id
/// (`xmin`), so fewer distinct ids than users shows the sharing. New unsigned
/// users of two environments are interleaved: two batches each holding one
/// environment's counter row and waiting for the other's was a deadlock.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writes_of_one_node_share_transactions_and_each_is_stored() {
    const TASKS: usize = 64;
    const PER_TASK: usize = 4;
    let cluster = Cluster::new().await;
    let node = Arc::new(cluster.node().await);
    let envs = Arc::new([
        create_env(&node, json!({"name": "group commit"})).await,
        create_env(&node, json!({"name": "group commit 2"})).await,
    ]);
    let mut sql = cluster.sql().await;
    let deadlocks = "SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()";
    let deadlocks_before: i64 = sqlx::query_scalar(deadlocks)
        .fetch_one(&mut sql)
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for t in 0..TASKS {
        let (node, envs) = (node.clone(), envs.clone());
        tasks.push(tokio::spawn(async move {
            let mut failed = Vec::new();
            for i in 0..PER_TASK {
                let env = &envs[(t + i / 2) % 2];
                let user = format!("g-{t}-{i}");
                // Every other one unsigned: an environment's counter row is
                // locked inside shared transactions too.
                let body = if i % 2 == 0 {
                    json!({"user_id": user, "signature": sign_hex(&env.secret, &user), "attributes": {"t": t}})
                } else {
                    json!({"user_id": user, "attributes": {"t": t}})
                };
                let (status, v) = node.identify(&env.pk, &body).await;
                if status != 200 {
                    failed.push(format!("{user}: {status} {v}"));
                }
            }
            failed
        }));
    }
    let mut failed = Vec::new();
    for t in tasks {
        failed.extend(t.await.unwrap());
    }
    assert!(
        failed.is_empty(),
        "{} failed: {:?}",
        failed.len(),
        &failed[..failed.len().min(5)]
    );

    let all = (TASKS * PER_TASK) as i64;
    let (users, transactions): (i64, i64) =
        sqlx::query_as("SELECT COUNT(*), COUNT(DISTINCT xmin::TEXT) FROM users")
            .fetch_one(&mut sql)
            .await
            .unwrap();
    assert_eq!(users, all, "every acknowledged user is stored");
    assert!(
        transactions * 4 <= all * 3,
        "{all} users from {TASKS} concurrent clients were written by {transactions} transactions: writes are not grouped"
    );
    let unsigned: i64 = sqlx::query_scalar("SELECT SUM(unsigned_count)::BIGINT FROM environments")
        .fetch_one(&mut sql)
        .await
        .unwrap();
    assert_eq!(unsigned, all / 2, "each unsigned user counted once");
    // PostgreSQL's statistics reach pg_stat_database within about a second.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let deadlocks_after: i64 = sqlx::query_scalar(deadlocks)
        .fetch_one(&mut sql)
        .await
        .unwrap();
    assert_eq!(
        deadlocks_after, deadlocks_before,
        "deadlocks between batches"
    );
    drop(sql);
    Arc::into_inner(node)
        .expect("no task holds the node")
        .stop()
        .await;
    cluster.drop_database().await;
}

/// A user whose lock another transaction holds (a hot id, or a node stuck
/// mid-transaction) delays only its own writes: the batch it lands in goes
/// on without it, and it is written once the lock is free.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_user_locked_elsewhere_holds_up_only_its_own_write() {
    let cluster = Cluster::new().await;
    let node = Arc::new(cluster.node().await);
    let env = Arc::new(create_env(&node, json!({"name": "hot user"})).await);
    // Another session holds user "hot"'s lock, as a transaction of another node would.
    let mut holder = cluster.sql().await;
    sqlx::query("BEGIN").execute(&mut holder).await.unwrap();
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
        .bind(format!("user:{}:hot", env.id))
        .execute(&mut holder)
        .await
        .unwrap();
    let hot = {
        let (node, env) = (node.clone(), env.clone());
        tokio::spawn(async move {
            node.identify(&env.pk, &json!({"user_id": "hot", "attributes": {"n": 1}}))
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    // 48 other new users, arriving with the hot one still waiting, and more
    // writes of the hot user among them, so that it lands in their batches.
    let started = Instant::now();
    let mut others = Vec::new();
    let mut more_hot = Vec::new();
    for i in 0..48 {
        let (node, env) = (node.clone(), env.clone());
        if i % 8 == 0 {
            let (node, env) = (node.clone(), env.clone());
            more_hot.push(tokio::spawn(async move {
                node.identify(&env.pk, &json!({"user_id": "hot", "attributes": {"i": i}}))
                    .await
            }));
        }
        others.push(tokio::spawn(async move {
            for round in 0..2 {
                let body = json!({"user_id": format!("cold-{i}"), "attributes": {"round": round}});
                let (status, v) = node.identify(&env.pk, &body).await;
                assert_eq!(status, 200, "cold-{i}: {v}");
            }
        }));
    }
    for o in others {
        o.await.unwrap();
    }
    let took = started.elapsed();
    assert!(
        !hot.is_finished(),
        "the hot user's write waited for its lock"
    );
    assert!(
        took < Duration::from_millis(1500),
        "96 writes of other users took {took:?} while one user's lock was held elsewhere"
    );
    sqlx::query("COMMIT").execute(&mut holder).await.unwrap();
    for h in std::iter::once(hot).chain(more_hot) {
        let (status, v) = h.await.unwrap();
        assert_eq!(
            status, 200,
            "the hot user is written once its lock is free: {v}"
        );
    }
    drop(holder);
    Arc::into_inner(node)
        .expect("no task holds the node")
        .stop()
        .await;
    cluster.drop_database().await;
}
