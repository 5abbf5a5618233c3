//! Erasure on SQLite: after `DELETE …/users/{id}` and a clean stop, the
//! erased user's attributes and event properties are not in the database
//! files any more (`secure_delete` zeroes freed space instead of leaving it
//! for a VACUUM), while another user's are.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use reqwest::Method;
use serde_json::json;

use crate::common::*;

/// Every byte of the SQLite files in `dir` (database, WAL, shared memory).
fn sqlite_bytes(dir: &std::path::Path) -> Vec<u8> {
    let mut all = Vec::new();
    for name in ["vouch.db", "vouch.db-wal", "vouch.db-shm"] {
        if let Ok(bytes) = std::fs::read(dir.join(name)) {
            all.extend_from_slice(&bytes);
        }
    }
    all
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_erased_users_data_is_gone_from_the_sqlite_files_after_a_clean_stop() {
    let s = Server::start_sqlite().await;
    let env = s.env().await;
    let tag = vouch_core::keys::random_base62(10);
    let small = format!("ERASE-small-{tag}");
    // Larger than a page: stored in overflow pages, freed whole on delete.
    let large = format!("ERASE-large-{tag}-").repeat(1200);
    let event = format!("ERASE-event-{tag}");
    let kept = format!("KEEP-{tag}");

    let erased = s
        .identify_ok(
            &env.pk,
            &json!({"user_id": "erase-me", "signature": env.sign("erase-me"),
                    "attributes": {"note": small, "bio": large}}),
        )
        .await;
    let session = erased["session_token"].as_str().unwrap().to_string();
    s.track(
        &session,
        &json!({"event": "viewed", "properties": {"what": event}}),
    )
    .await
    .expect_status(202);
    s.identify_ok(
        &env.pk,
        &json!({"user_id": "keep-me", "signature": env.sign("keep-me"),
                "attributes": {"note": kept}}),
    )
    .await;

    s.admin(
        Method::DELETE,
        &format!("/admin/v1/environments/{}/users/erase-me", env.id),
        None,
    )
    .await
    .expect_status(204);
    s.admin_user(&env.id, "erase-me")
        .await
        .expect_error(404, "not_found");
    let dir = s.stop().await;

    let bytes = sqlite_bytes(dir.path());
    assert!(
        contains(&bytes, &kept),
        "the search finds a kept user's data"
    );
    for (what, marker) in [
        ("a small attribute", small.as_str()),
        ("a large attribute", &large[..40]),
        ("an event property", event.as_str()),
    ] {
        assert!(
            !contains(&bytes, marker),
            "{what} of the erased user is still in the SQLite files"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_erased_users_attributes_leave_the_webhook_outbox_too() {
    let s = Server::start_configured(|c| c.allow_private_webhooks = true).await;
    let env = s.env().await;
    // An endpoint that never answers: the user.* messages stay in the outbox.
    s.admin(
        Method::POST,
        &format!("/admin/v1/environments/{}/webhooks", env.id),
        Some(&json!({"url": "http://127.0.0.1:9/hook"})),
    )
    .await
    .expect_status(201);
    let tag = vouch_core::keys::random_base62(10);
    let marker = format!("ERASE-outbox-{tag}");
    for plan in ["a", "b"] {
        s.identify_ok(
            &env.pk,
            &json!({"user_id": "erase-me", "signature": env.sign("erase-me"),
                    "attributes": {"note": marker, "plan": plan}}),
        )
        .await;
    }
    s.admin(
        Method::DELETE,
        &format!("/admin/v1/environments/{}/users/erase-me", env.id),
        None,
    )
    .await
    .expect_status(204);
    let dir = s.stop().await;
    let bytes = sqlite_bytes(dir.path());
    assert!(
        !contains(&bytes, &marker),
        "an erased user's attribute is still in the database files (webhook outbox)"
    );
    // The erasure itself is still announced.
    assert!(contains(&bytes, "user.deleted"));
}
