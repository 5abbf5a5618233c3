//! Group commit at the store level, on SQLite and on PostgreSQL (a fresh
//! database on `VOUCH_TEST_POSTGRES`): concurrent writes share transactions,
//! one failing write does not take the writes grouped with it down, and
//! everything acknowledged survives a reopen.
//! The commit histogram is process-wide and other tests of the binary add to it;
//! their commits never outnumber their writes, so the checks below still hold.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use crate::common::store::{NOW, bootstrapped, environment};
use serde_json::Map;
use vouch_server::model::EventRecord;
use vouch_server::store::reads::EventQuery;
use vouch_server::store::sqlite::SqliteStore;
use vouch_server::store::{Store, StoreError};

fn event(env_id: &str, i: usize) -> EventRecord {
    EventRecord {
        seq: 0,
        id: format!("evt_{i:04}"),
        env_id: env_id.into(),
        user_id: Some(format!("user-{i}")),
        visitor_id: None,
        name: "opened".into(),
        properties: Map::new(),
        created_at: NOW,
    }
}

/// `(count, sum)` of the commit batch-size histogram.
fn batches() -> (f64, f64) {
    let text = vouch_server::metrics::METRICS.render();
    let value = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (
        value("vouch_db_batch_size_count"),
        value("vouch_db_batch_size_sum"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writes_share_commits_and_a_failing_one_spares_its_neighbours() {
    failing_write_among_concurrent_ones(None).await;
    let pg = crate::common::pg::fresh_database(&crate::common::pg::test_server_url()).await;
    failing_write_among_concurrent_ones(Some(&pg)).await;
}

async fn failing_write_among_concurrent_ones(url: Option<&str>) {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(bootstrapped(url, dir.path(), "env_a").await);
    let (count_before, sum_before) = batches();

    const WRITES: usize = 400;
    let mut tasks = Vec::new();
    for i in 0..WRITES {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            if i == WRITES / 2 {
                // The same environment again: a primary-key conflict in the
                // middle of the traffic.
                let (env, secret, audit) = environment("env_a");
                store.create_environment(env, secret, audit).await.err()
            } else {
                store.track(event("env_a", i)).await.err()
            }
        }));
    }
    let mut failures = Vec::new();
    for (i, t) in tasks.into_iter().enumerate() {
        if let Some(e) = t.await.unwrap() {
            failures.push((i, e));
        }
    }
    assert_eq!(
        failures.len(),
        1,
        "{url:?}: only the duplicate fails: {failures:?}"
    );
    assert_eq!(failures[0].0, WRITES / 2);
    assert!(matches!(failures[0].1, StoreError::Conflict(_)));

    let (count_after, sum_after) = batches();
    let writes = sum_after - sum_before;
    let commits = count_after - count_before;
    assert!(writes >= WRITES as f64, "{writes} writes counted");
    assert!(
        commits < writes,
        "{WRITES} concurrent writes took {commits} commits: nothing was grouped"
    );

    // Every acknowledged write is there after the store is closed and reopened.
    store.close().await;
    drop(store);
    let store = vouch_server::store::open(url, dir.path()).await.unwrap();
    let mut seen = 0;
    let mut before = None;
    loop {
        let page = store
            .list_events(EventQuery {
                env_id: "env_a".into(),
                before,
                limit: 200,
                ..EventQuery::default()
            })
            .await
            .unwrap();
        seen += page.data.len();
        match page.next_cursor {
            Some(c) => before = Some(c.parse().unwrap()),
            None => break,
        }
    }
    assert_eq!(seen, WRITES - 1, "{url:?}");
    assert_eq!(store.list_environments().await.unwrap().len(), 1);
    store.close().await;
}

#[tokio::test]
async fn a_sqlite_url_without_a_file_is_refused_with_a_reason() {
    let err = SqliteStore::open_url("sqlite::memory:").await.unwrap_err();
    assert!(err.to_string().contains("names no file"), "{err}");
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}?mode=rwc", dir.path().join("v.db").display());
    let store = Store::new(SqliteStore::open_url(&url).await.unwrap());
    assert!(store.is_empty().await.unwrap());
    store.close().await;
    assert!(dir.path().join("v.db").is_file());
}
