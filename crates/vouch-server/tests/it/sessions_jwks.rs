//! Session tokens verified offline by an independent JWT library (Python's PyJWT)
//! against `/.well-known/jwks.json`, across a signing-key rotation.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common::*;
use serde_json::{Value, json};

/// Runs tests/support/verify_session.py; `Ok(output)` when PyJWT accepts the token.
fn pyjwt_verify(s: &Server, token: &str, audience: &str) -> Result<Value, String> {
    let script = support_file("verify_session.py");
    let jwks = s.url("/.well-known/jwks.json");
    let out = run_program(
        "python3",
        &[script.to_str().unwrap(), &jwks, token, audience, &s.base],
        &[],
    );
    if out.status.success() {
        Ok(serde_json::from_slice(&out.stdout).expect("the script prints JSON"))
    } else {
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(
            err.contains("rejected:"),
            "verify_session.py failed to run (is PyJWT installed? see tests/support/install-deps.sh): {err}"
        );
        Err(err)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_tokens_verify_with_pyjwt_against_the_jwks() {
    let s = Server::start().await;
    let env = s.env().await;
    let out = s
        .identify_ok(
            &env.pk,
            &json!({"user_id": "py-user", "signature": env.sign("py-user")}),
        )
        .await;
    let t = out["session_token"].as_str().unwrap();
    let v = pyjwt_verify(&s, t, &env.id).expect("PyJWT accepts the session");
    assert_eq!(v["alg"], json!("EdDSA"));
    let claims = &v["claims"];
    assert_eq!(claims["sub"], json!("py-user"));
    assert_eq!(claims["aud"], json!(env.id));
    assert_eq!(claims["iss"], json!(s.base));
    assert_eq!(claims["verified"], json!(true));
    let (iat, exp) = (
        claims["iat"].as_i64().unwrap(),
        claims["exp"].as_i64().unwrap(),
    );
    assert!((now() - 5..=now() + 1).contains(&iat));
    assert_eq!(exp - iat, 24 * 3600, "default TTL is one day");
    // expires_at in the answer is exp as RFC 3339.
    let expires = time::OffsetDateTime::parse(
        out["expires_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    assert_eq!(expires.unix_timestamp(), exp);
    // Unverified and anonymous sessions verify too and say so.
    let un = s.identify_ok(&env.pk, &json!({"user_id": "py-2"})).await;
    let v = pyjwt_verify(&s, un["session_token"].as_str().unwrap(), &env.id).unwrap();
    assert_eq!(v["claims"]["verified"], json!(false));
    let anon = s.anonymous(&env.pk).await.expect_status(200);
    let v = pyjwt_verify(&s, anon["session_token"].as_str().unwrap(), &env.id).unwrap();
    assert_eq!(v["claims"]["sub"], anon["visitor_id"]);
    // PyJWT refuses a tampered token, and one for another audience.
    let mut parts: Vec<String> = t.split('.').map(str::to_string).collect();
    let (_, mut c) = jwt_parts(t);
    c["sub"] = json!("admin");
    parts[1] = {
        use base64ct::{Base64UrlUnpadded, Encoding};
        Base64UrlUnpadded::encode_string(c.to_string().as_bytes())
    };
    assert!(pyjwt_verify(&s, &parts.join("."), &env.id).is_err());
    let other = s.env().await;
    assert!(pyjwt_verify(&s, t, &other.id).is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwks_publishes_ed25519_keys_by_kid() {
    let s = Server::start().await;
    let jwks = s
        .get("/.well-known/jwks.json", None)
        .await
        .expect_status(200);
    let keys = jwks["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1);
    let k = &keys[0];
    assert_eq!(k["kty"], json!("OKP"));
    assert_eq!(k["crv"], json!("Ed25519"));
    assert_eq!(k["alg"], json!("EdDSA"));
    assert!(k["kid"].is_string());
    assert_eq!(k["x"].as_str().unwrap().len(), 43);
    // No private part.
    assert!(k.get("d").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_key_rotation_keeps_old_sessions_verifiable() {
    let s = Server::start().await;
    let env = s.env().await;
    let before = s
        .identify_ok(
            &env.pk,
            &json!({"user_id": "rot", "signature": env.sign("rot")}),
        )
        .await;
    let t_old = before["session_token"].as_str().unwrap().to_string();
    let old_kid = jwt_parts(&t_old).0["kid"].as_str().unwrap().to_string();
    let rotated = s
        .admin(
            reqwest::Method::POST,
            "/admin/v1/signing-keys/rotate",
            Some(&json!({})),
        )
        .await
        .expect_status(201);
    let new_kid = rotated["kid"].as_str().unwrap().to_string();
    assert_ne!(new_kid, old_kid);
    let after = s
        .identify_ok(
            &env.pk,
            &json!({"user_id": "rot", "signature": env.sign("rot")}),
        )
        .await;
    let t_new = after["session_token"].as_str().unwrap().to_string();
    assert_eq!(jwt_parts(&t_new).0["kid"], json!(new_kid));
    // The JWKS publishes both keys.
    let jwks = s
        .get("/.well-known/jwks.json", None)
        .await
        .expect_status(200);
    let kids: Vec<&str> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|k| k["kid"].as_str())
        .collect();
    assert!(
        kids.contains(&old_kid.as_str()) && kids.contains(&new_kid.as_str()),
        "{kids:?}"
    );
    // An independent verifier accepts both, each under its own kid.
    assert_eq!(
        pyjwt_verify(&s, &t_old, &env.id).unwrap()["kid"],
        json!(old_kid)
    );
    assert_eq!(
        pyjwt_verify(&s, &t_new, &env.id).unwrap()["kid"],
        json!(new_kid)
    );
    // The server still accepts the old session.
    assert_eq!(
        s.me(&t_old).await.expect_status(200)["user"]["id"],
        json!("rot")
    );
    assert_eq!(
        s.me(&t_new).await.expect_status(200)["user"]["id"],
        json!("rot")
    );
    // The rotation survives a restart: old sessions still verify, new ones use the new key.
    let dir = s.stop().await;
    let s = Server::start_in(dir).await;
    assert_eq!(
        s.me(&t_old).await.expect_status(200)["user"]["id"],
        json!("rot")
    );
    let again = s
        .identify_ok(
            &env.pk,
            &json!({"user_id": "rot", "signature": env.sign("rot")}),
        )
        .await;
    assert_eq!(
        jwt_parts(again["session_token"].as_str().unwrap()).0["kid"],
        json!(new_kid)
    );
}
