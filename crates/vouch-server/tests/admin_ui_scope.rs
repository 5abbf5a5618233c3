//! The admin UI's own endpoints keep to an admin token's environment scope,
//! as the admin API does: an environment outside it is not found.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use reqwest::Method;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secret_hints_of_an_environment_outside_a_tokens_scope_are_not_found() {
    let s = Server::start().await;
    let mine = s.env().await;
    let other = s.env_with(json!({"mode": "live"})).await;
    let scoped = s
        .admin(
            Method::POST,
            "/admin/v1/admin-tokens",
            Some(&json!({"name": "support", "role": "viewer", "environment_ids": [mine.id]})),
        )
        .await
        .expect_status(201);
    let token = scoped["token"].as_str().unwrap();
    let hints = |env: &str| format!("/admin/ui/environments/{env}/secret-hints");

    let seen = s
        .get(&hints(&mine.id), Some(token))
        .await
        .expect_status(200);
    assert_eq!(seen["data"][0]["id"], mine.key_id, "{seen}");

    let refused = s.get(&hints(&other.id), Some(token)).await;
    refused.expect_error(404, "not_found");
    assert!(
        !refused.text.contains(&other.key_id) && !refused.text.contains("sk_live_"),
        "nothing of the other environment leaks: {}",
        refused.text
    );

    // A token with every environment still sees both.
    let full = s.admin_get(&hints(&other.id)).await;
    assert_eq!(full["data"][0]["id"], other.key_id, "{full}");
}
