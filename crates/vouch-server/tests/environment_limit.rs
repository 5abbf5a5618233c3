//! The environment-wide cap on failed verifications: many user ids, one
//! address — a spray of guesses is cut off even though no single id is.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_verifications_across_user_ids_hit_the_environment_limit() {
    let s = Server::start().await;
    let env = s
        .env_with(json!({
            "rate_limit_per_user": 100,
            "rate_limit_per_address": 100,
            "rate_limit_per_environment": 3
        }))
        .await;
    assert_eq!(
        s.admin_get(&format!("/admin/v1/environments/{}", env.id))
            .await["rate_limit_per_environment"],
        3
    );
    avoid_minute_boundary(10).await;
    for i in 0..3 {
        let id = format!("spray-{i}");
        s.identify(
            &env.pk,
            &json!({"user_id": id, "signature": "ab".repeat(32)}),
        )
        .await
        .expect_error(401, "invalid_signature");
    }
    let blocked = s
        .identify(
            &env.pk,
            &json!({"user_id": "spray-9", "signature": "ab".repeat(32)}),
        )
        .await;
    blocked.expect_error(429, "rate_limited");
    assert!(blocked.header("retry-after").is_some());
    // Unproven identifies are not verifications and still pass.
    s.identify(&env.pk, &json!({"user_id": "plain"}))
        .await
        .expect_status(200);
    // Another environment is not affected.
    let other = s.env().await;
    s.identify(
        &other.pk,
        &json!({"user_id": "spray-9", "signature": other.sign("spray-9")}),
    )
    .await
    .expect_status(200);
    s.stop().await;
}
