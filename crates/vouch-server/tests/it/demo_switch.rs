//! The demo page is off by default: its signing route signs any user id with an
//! environment's newest secret for whoever asks (an unauthenticated signing oracle), so it
//! exists only with `--demo`, and even then for test environments only.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common::{Server, first_start_banner, sign_hex};
use serde_json::json;

const DEMO_GETS: [&str; 4] = [
    "/demo",
    "/demo/demo.js",
    "/demo/demo.css",
    "/demo/favicon.svg",
];

fn squeeze(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[tokio::test]
async fn without_demo_the_page_its_assets_and_the_signing_route_answer_404() {
    let server = Server::start().await;
    let env = server.env_with(json!({"mode": "test"})).await;

    for path in DEMO_GETS {
        server.get(path, None).await.expect_error(404, "not_found");
    }
    server
        .get(&format!("/demo?env={}", env.id), None)
        .await
        .expect_error(404, "not_found");

    // The attack: the environment id is public, and the route used to sign anything.
    let forged = server
        .post(
            "/demo/api/sign",
            None,
            &json!({"env": env.id, "user_id": "victim"}),
        )
        .await;
    forged.expect_error(404, "not_found");
    assert!(
        !forged.text.contains(&env.sign("victim")),
        "no signature in the answer: {}",
        forged.text
    );
    // Nor does a malformed body get further than the switch.
    server
        .post_raw("/demo/api/sign", None, "application/json", "{")
        .await
        .expect_error(404, "not_found");

    // The SDK stays served.
    for path in ["/sdk/vouch.js", "/sdk/vouch.global.js", "/sdk/vouch.d.ts"] {
        let r = server.get(path, None).await;
        assert_eq!(r.status, 200, "{path}: {}", r.text);
    }
}

#[tokio::test]
async fn with_demo_the_signing_route_signs_test_environments_and_refuses_live_ones() {
    let server = Server::start_configured(|c| c.demo = true).await;
    let test_env = server.env_with(json!({"mode": "test"})).await;
    let live_env = server.env_with(json!({"mode": "live"})).await;

    let page = server
        .get(&format!("/demo?env={}", test_env.id), None)
        .await;
    assert_eq!(page.status, 200, "{}", page.text);
    assert!(page.text.contains(&test_env.pk), "the page names its key");
    for path in DEMO_GETS {
        assert_eq!(server.get(path, None).await.status, 200, "{path}");
    }

    let signed = server
        .post(
            "/demo/api/sign",
            None,
            &json!({"env": test_env.id, "user_id": "user_42"}),
        )
        .await
        .expect_status(200);
    assert_eq!(
        signed["signature"],
        json!(sign_hex(&test_env.secret, "user_42"))
    );
    assert_eq!(signed["key_id"], json!(test_env.key_id));

    server
        .get(&format!("/demo?env={}", live_env.id), None)
        .await
        .expect_error(404, "not_found");
    let live = server
        .post(
            "/demo/api/sign",
            None,
            &json!({"env": live_env.id, "user_id": "user_42"}),
        )
        .await;
    live.expect_error(404, "not_found");
    assert!(!live.text.contains(&live_env.sign("user_42")));
}

#[tokio::test]
async fn the_banner_shows_the_demo_and_its_warning_only_when_it_is_on() {
    let off = first_start_banner(tempfile::tempdir().unwrap().path(), |_| {}).await;
    assert!(!off.contains("/demo"), "{off}");
    assert!(!off.contains("Warning"), "{off}");
    assert!(
        off.contains("Admin UI:         http://127.0.0.1:8080/admin"),
        "{off}"
    );

    let on = first_start_banner(tempfile::tempdir().unwrap().path(), |c| c.demo = true).await;
    assert!(
        on.contains("  Demo:             http://127.0.0.1:8080/demo\n"),
        "{on}"
    );
    let text = squeeze(&on);
    assert!(
        text.contains(
            "Warning: the demo is on (--demo). Anyone who can reach this server can get any \
             user id of a test environment signed at http://127.0.0.1:8080/demo/api/sign, and \
             so impersonate any user of a test environment (live environments are never served)."
        ),
        "{on}"
    );
}
