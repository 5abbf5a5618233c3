//! `/metrics`: Prometheus text that moves with what the server does.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common::*;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_verifications_requests_and_commits() {
    // The shared suite's store: the commit histogram moves on SQLite (group
    // commit) and on PostgreSQL (each write's COMMIT) alike.
    let s = Server::start().await;
    let env = s.env().await;
    let before = s.get("/metrics", None).await;
    assert_eq!(before.status, 200);
    let before = before.text.clone();

    s.identify_ok(
        &env.pk,
        &json!({"user_id": "m-1", "signature": env.sign("m-1")}),
    )
    .await;
    s.identify_ok(&env.pk, &json!({"user_id": "m-2"})).await;
    s.identify(
        &env.pk,
        &json!({"user_id": "m-3", "signature": "0".repeat(64)}),
    )
    .await
    .expect_error(401, "invalid_signature");

    let after = s.get("/metrics", None).await;
    assert_eq!(after.status, 200);
    let ct = after.header("content-type").unwrap_or_default().to_string();
    assert!(ct.contains("text"), "content type {ct}");
    let text = after.text.clone();
    for (line, delta) in [
        (
            "vouch_verifications_total{result=\"verified\",method=\"signature\"}",
            1.0,
        ),
        (
            "vouch_verifications_total{result=\"unverified\",method=\"none\"}",
            1.0,
        ),
        (
            "vouch_verifications_total{result=\"rejected\",method=\"signature\"}",
            1.0,
        ),
        (
            "vouch_http_requests_total{method=\"POST\",route=\"/v1/identify\",status=\"200\"}",
            2.0,
        ),
        (
            "vouch_http_requests_total{method=\"POST\",route=\"/v1/identify\",status=\"401\"}",
            1.0,
        ),
    ] {
        let grew = sample(&text, line) - sample(&before, line);
        assert!(
            grew >= delta,
            "{line} grew by {grew}, expected at least {delta}\n{text}"
        );
    }
    assert!(sample(&text, "vouch_db_commit_seconds_count") >= 2.0);
    assert!(sample(&text, "vouch_sessions_issued_total") >= 2.0);
    assert!(text.contains("vouch_http_request_duration_seconds_bucket"));
    // Route templates only: a user id never becomes a label.
    assert!(!text.contains("m-1"));
    s.stop().await;
}
