//! What a fresh server says and publishes: the start-up banner tells the truth about
//! which values are shown once, and the session keys' ids do not look like secrets.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common::{Server, first_start_banner, jwt_parts};
use serde_json::json;

#[tokio::test]
async fn the_banner_says_the_admin_token_is_shown_once_and_the_secret_can_be_revealed() {
    let banner = first_start_banner(tempfile::tempdir().unwrap().path(), |_| {}).await;
    assert!(!banner.contains("These values are shown once"), "{banner}");
    let token_line = banner
        .lines()
        .find(|l| l.trim_start().starts_with("Admin token:"))
        .expect("an admin token line");
    assert!(token_line.contains("vat_"), "{banner}");
    let text = banner.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        text.contains("The admin token is shown only this once: store it now"),
        "{banner}"
    );
    assert!(
        text.contains(
            "The identity secret can be revealed again in the admin UI (http://127.0.0.1:8080/admin,"
        ),
        "{banner}"
    );

    // A token given in VOUCH_ADMIN_TOKEN is not printed, so it is not "shown once" either.
    let given = first_start_banner(tempfile::tempdir().unwrap().path(), |c| {
        c.admin_token = Some("given-admin-token-0123456789-abcdefghijkl".into());
    })
    .await;
    assert!(!given.contains("given-admin-token"), "{given}");
    assert!(!given.contains("shown only this once"), "{given}");
    assert!(
        given.contains("can be revealed again in the admin UI"),
        "{given}"
    );
}

#[tokio::test]
async fn a_fresh_servers_session_key_ids_do_not_start_with_the_secret_prefix() {
    let server = Server::start().await;
    let jwks = server.admin_get("/.well-known/jwks.json").await;
    let kids: Vec<&str> = jwks["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .map(|k| k["kid"].as_str().expect("kid"))
        .collect();
    assert!(!kids.is_empty());
    for kid in &kids {
        assert!(kid.starts_with("sig_"), "{kid}");
        assert!(!kid.starts_with("sk_"), "{kid}");
    }
    // The session tokens it issues name that key.
    let env = server.env().await;
    let out = server
        .identify_ok(
            &env.pk,
            &json!({"user_id": "u1", "signature": env.sign("u1")}),
        )
        .await;
    let (header, _) = jwt_parts(out["session_token"].as_str().unwrap());
    assert!(kids.contains(&header["kid"].as_str().unwrap()), "{header}");
}
