//! Identity tokens whose `exp`, `nbf` and `iat` are fractional NumericDates, as PyJWT with
//! `time.time()` writes them, against the real server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common::*;
use serde_json::{Value, json};
use vouch_core::IdentityClaims;

/// A PyJWT token for `ID` with claims given by a Python expression over `t = time.time()`.
fn pyjwt(secret_value: &str, id: &str, claims: &str) -> String {
    let script = format!(
        "import jwt, os, time; t = time.time(); print(jwt.encode({claims}, os.environ['S'], algorithm='HS256'))"
    );
    program_stdout(
        "python3",
        &["-c", &script],
        &[("S", secret_value), ("ID", id)],
    )
    .trim()
    .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pyjwt_tokens_with_fractional_times_verify_users() {
    let s = Server::start().await;
    let env = s.env_with(json!({"enforcement": "enforce"})).await;
    let t = pyjwt(
        &env.secret,
        "py-float",
        "{'sub': os.environ['ID'], 'iat': t, 'nbf': t - 1.5, 'exp': t + 600.25, 'jti': 'py-float-1'}",
    );
    // The token really carries fractional NumericDates (the point of this test).
    let (_, claims) = jwt_parts(&t);
    for claim in ["iat", "nbf", "exp"] {
        assert!(
            claims[claim].is_f64() && claims[claim].as_f64().unwrap().fract() != 0.0,
            "{claim} is not fractional: {claims}"
        );
    }
    let body = json!({"user_id": "py-float", "token": t});
    let out = s.identify_ok(&env.pk, &body).await;
    assert_eq!(out["user"]["verified"], json!(true));
    assert_eq!(out["user"]["verified_by"], json!("token"));
    // Its jti is single-use, exactly as with integer times.
    s.identify(&env.pk, &body)
        .await
        .expect_error(401, "invalid_token");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_fractional_pyjwt_token_is_refused() {
    let s = Server::start().await;
    let env = s.env().await;
    let t = pyjwt(
        &env.secret,
        "py-late",
        "{'sub': os.environ['ID'], 'exp': t - 61.5}",
    );
    s.identify(&env.pk, &json!({"user_id": "py-late", "token": t}))
        .await
        .expect_error(401, "token_expired");
    let early = pyjwt(
        &env.secret,
        "py-early",
        "{'sub': os.environ['ID'], 'nbf': t + 600.5, 'exp': t + 1200.5}",
    );
    s.identify(&env.pk, &json!({"user_id": "py-early", "token": early}))
        .await
        .expect_error(401, "invalid_token");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn time_claims_that_are_not_numbers_or_absurd_are_invalid_tokens_naming_the_claim() {
    let s = Server::start().await;
    let env = s.env().await;
    for (claims, claim) in [
        ("{'sub': os.environ['ID'], 'exp': str(int(t) + 600)}", "exp"),
        ("{'sub': os.environ['ID'], 'nbf': True}", "nbf"),
        ("{'sub': os.environ['ID'], 'iat': [t]}", "iat"),
        ("{'sub': os.environ['ID'], 'exp': 2**63 - 1}", "exp"),
        ("{'sub': os.environ['ID'], 'exp': 2**53 + 1}", "exp"),
        ("{'sub': os.environ['ID'], 'exp': -t}", "exp"),
    ] {
        let t = pyjwt(&env.secret, "py-bad", claims);
        let r = s
            .identify(&env.pk, &json!({"user_id": "py-bad", "token": t}))
            .await;
        let message = r.expect_error(401, "invalid_token");
        assert!(
            message.contains(&format!("the {claim} claim")),
            "{claims}: {message}"
        );
    }
    // Nothing was stored for the refused calls.
    s.admin_user(&env.id, "py-bad")
        .await
        .expect_error(404, "not_found");
}

/// The largest accepted expiry, 2^53, with a `jti`: the replay window `exp + leeway`
/// must not overflow, and the token is single-use. (An `exp` of `i64::MAX` is now refused
/// as out of range, so it can no longer reach that sum.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_with_the_largest_accepted_exp_and_a_jti_is_single_use() {
    let s = Server::start().await;
    let env = s.env().await;
    let mut claims = IdentityClaims::new("max-exp").with_expiry(1 << 53);
    claims.jti = Some("jti-max".into());
    let body = json!({"user_id": "max-exp", "token": token(&env.secret, None, &claims)});
    let out = s.identify_ok(&env.pk, &body).await;
    assert_eq!(out["user"]["verified"], json!(true));
    s.identify(&env.pk, &body)
        .await
        .expect_error(401, "invalid_token");

    // One past it, written by hand (vouch-core refuses to issue it).
    let beyond = hs256(
        &env.secret,
        &json!({"sub": "max-exp-2", "exp": (1u64 << 53) + 1, "jti": "jti-max-2"}),
    );
    let message = s
        .identify(&env.pk, &json!({"user_id": "max-exp-2", "token": beyond}))
        .await
        .expect_error(401, "invalid_token");
    assert!(message.contains("the exp claim"), "{message}");
    assert!(message.contains("out of range"), "{message}");
}

/// A compact HS256 JWT over exactly `claims`.
fn hs256(secret_value: &str, claims: &Value) -> String {
    use base64ct::{Base64UrlUnpadded, Encoding};
    let input = format!(
        "{}.{}",
        Base64UrlUnpadded::encode_string(br#"{"alg":"HS256","typ":"JWT"}"#),
        Base64UrlUnpadded::encode_string(claims.to_string().as_bytes())
    );
    let mac = vouch_core::proof::hmac_sha256(secret_value.as_bytes(), input.as_bytes());
    format!("{input}.{}", Base64UrlUnpadded::encode_string(&mac))
}
