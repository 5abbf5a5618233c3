//! The admin diagnose endpoint, black-box: candidate values (`candidates`, `email`) and the
//! mistakes of signatures made with the wrong tool.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common::*;
use base64ct::{Base64, Encoding};
use reqwest::Method;
use serde_json::{Value, json};

fn path(env: &Env) -> String {
    format!("/admin/v1/environments/{}/diagnose", env.id)
}

async fn diagnose(s: &Server, env: &Env, body: Value) -> Value {
    s.admin(Method::POST, &path(env), Some(&body))
        .await
        .expect_status(200)
}

fn message(v: &Value) -> &str {
    v["message"].as_str().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_candidate_signed_instead_of_the_id_is_named() {
    let s = Server::start().await;
    let env = s.env().await;
    let sig = env.sign("ada@example.com");
    // Without the candidate the mistake cannot be seen (the user is not stored).
    let bare = diagnose(&s, &env, json!({"user_id": "42", "signature": sig})).await;
    assert_eq!(bare["cause"], json!("unknown"));

    for body in [
        json!({"user_id": "42", "signature": sig, "email": "ada@example.com"}),
        json!({"user_id": "42", "signature": sig, "candidates": ["legacy-42", "ada@example.com"]}),
        json!({"user_id": "42", "signature": sig, "email": "bob@example.com", "candidates": ["ada@example.com"]}),
    ] {
        let out = diagnose(&s, &env, body.clone()).await;
        assert_eq!(out["valid"], json!(false), "{body}");
        assert_eq!(out["cause"], json!("signed_candidate"), "{body}");
        assert!(message(&out).contains("\"ada@example.com\""), "{out}");
        assert!(message(&out).contains("not of the user id"), "{out}");
    }
    // A correct signature is valid whatever the candidates.
    let ok = diagnose(
        &s,
        &env,
        json!({"user_id": "42", "signature": env.sign("42"), "email": "ada@example.com"}),
    )
    .await;
    assert_eq!(
        (ok["valid"].clone(), ok["key_id"].clone()),
        (json!(true), json!(env.key_id))
    );
    // null means none given.
    let none = diagnose(
        &s,
        &env,
        json!({"user_id": "42", "signature": sig, "candidates": null, "email": null}),
    )
    .await;
    assert_eq!(none["cause"], json!("unknown"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_tool_signatures_are_named() {
    let s = Server::start().await;
    let env = s.env().await;
    let good = env.sign("42");
    let cases = [
        (
            format!("HMAC-SHA2-256(stdin)= {good}"),
            "openssl_output",
            "inside is correct",
        ),
        (
            format!("(stdin)= {}", sign_hex(&env.secret, "42\n")),
            "openssl_output",
            "trailing newline",
        ),
        (
            base16(&vouch_core::keys::sha256(b"42")),
            "plain_sha256",
            "plain SHA-256",
        ),
        (
            format!(
                "SHA2-256(stdin)= {}",
                base16(&vouch_core::keys::sha256(b"42"))
            ),
            "openssl_output",
            "plain SHA-256",
        ),
        (
            Base64::encode_string(good.as_bytes()),
            "base64_of_hex",
            "64 hex characters",
        ),
    ];
    for (signature, cause, words) in cases {
        let out = diagnose(&s, &env, json!({"user_id": "42", "signature": signature})).await;
        assert_eq!(out["cause"], json!(cause), "{signature}: {out}");
        assert!(message(&out).contains(words), "{signature}: {out}");
    }
}

fn base16(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn candidates_beyond_the_limits_are_invalid_requests() {
    let s = Server::start().await;
    let env = s.env().await;
    let sig = env.sign("42");
    let twenty: Vec<String> = (0..20).map(|i| format!("c{i}")).collect();
    // Twenty are fine, and the twentieth is tried.
    let out = diagnose(
        &s,
        &env,
        json!({"user_id": "42", "signature": env.sign("c19"), "candidates": twenty}),
    )
    .await;
    assert_eq!(out["cause"], json!("signed_candidate"), "{out}");
    let cases = [
        (
            json!({"user_id": "42", "signature": sig, "candidates": twenty, "email": "a@b.c"}),
            "at most 20",
        ),
        (
            json!({"user_id": "42", "signature": sig, "candidates": (0..21).map(|i| i.to_string()).collect::<Vec<_>>()}),
            "at most 20",
        ),
        (
            json!({"user_id": "42", "signature": sig, "candidates": ["ok", "x".repeat(256)]}),
            "`candidates[1]`",
        ),
        (
            json!({"user_id": "42", "signature": sig, "candidates": [""]}),
            "`candidates[0]`",
        ),
        (
            json!({"user_id": "42", "signature": sig, "email": ""}),
            "`email`",
        ),
        (
            json!({"user_id": "42", "signature": sig, "candidates": "a@b.c"}),
            "expected a sequence",
        ),
        (
            json!({"user_id": "42", "signature": sig, "candidates": [7]}),
            "invalid type",
        ),
        (
            json!({"user_id": "42", "signature": sig, "emails": ["a@b.c"]}),
            "emails",
        ),
    ];
    for (body, words) in cases {
        let r = s.admin(Method::POST, &path(&env), Some(&body)).await;
        let m = r.expect_error(400, "invalid_request");
        assert!(m.contains(words), "{body}: {m}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_describes_the_candidates() {
    let s = Server::start().await;
    let doc = s.get("/openapi.json", None).await.expect_status(200);
    let schema = &doc["components"]["schemas"]["DiagnoseIn"];
    assert_eq!(
        schema["properties"]["candidates"]["maxItems"],
        json!(20),
        "{schema}"
    );
    assert_eq!(
        schema["properties"]["candidates"]["items"]["type"],
        json!("string"),
        "{schema}"
    );
    assert!(schema["properties"]["email"].is_object(), "{schema}");
    let required: Vec<&str> = schema["required"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(required, ["user_id", "signature"]);
    let out = &doc["components"]["schemas"]["DiagnoseOut"];
    assert!(out["properties"]["cause"].is_object(), "{out}");
}
