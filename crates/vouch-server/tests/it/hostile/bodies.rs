//! What is not hostile: bodies up to exactly the limit, and odd but valid values.

use serde_json::{Value, json};

use super::{BLOB, BODY_LIMIT, assert_alive, identify_of_len, nested};
use crate::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_up_to_exactly_64_kib_and_odd_but_valid_values_are_accepted() {
    let s = Server::start().await;
    let env = s.env().await;
    let r = s
        .post_raw(
            "/v1/identify",
            Some(&env.pk),
            "application/json",
            identify_of_len("edge", BODY_LIMIT),
        )
        .await;
    r.expect_status(200);
    let stored = s.admin_user(&env.id, "edge").await.expect_status(200);
    assert_eq!(stored["attributes"]["blob"].as_str().unwrap().len(), BLOB);
    // A NUL inside an attribute value, escaped surrogate pairs and deep but allowed nesting.
    let body = json!({
        "user_id": "odd",
        "attributes": {"nul": "a\u{0}b", "emoji": "\u{1F600}", "nested": serde_json::from_str::<Value>(&nested(100)).unwrap()},
    });
    let r = s.identify(&env.pk, &body).await;
    let out = r.expect_status(200);
    assert_eq!(out["user"]["attributes"]["nul"], json!("a\u{0}b"));
    assert_eq!(out["user"]["attributes"]["emoji"], json!("\u{1F600}"));
    let r = s
        .post_raw(
            "/v1/identify",
            Some(&env.pk),
            "application/json",
            r#"{"user_id":"pair","attributes":{"e":"\ud83d\ude00"}}"#,
        )
        .await;
    assert_eq!(
        r.expect_status(200)["user"]["attributes"]["e"],
        json!("\u{1F600}")
    );
    assert_alive(&s, "odd values").await;
}
