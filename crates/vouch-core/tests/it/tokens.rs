//! HS256 identity tokens: accepted, expired, not yet valid, wrong alg, tampered, wrong key.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use base64ct::{Base64UrlUnpadded, Encoding};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use vouch_core::proof::{hmac_sha256, issue_identity_token};
use vouch_core::token::{TOKEN_LEEWAY_SECONDS, token_kid, verify_identity_token};
use vouch_core::{IdentityClaims, KeyEntry, KeyRing, ProofError, Secret};

const NOW: i64 = 1_700_000_000;

fn secret() -> Secret {
    Secret::new("sk_test_token_secret_value_0123456789")
}

fn b64(json: &str) -> String {
    Base64UrlUnpadded::encode_string(json.as_bytes())
}

/// A token built by hand: any header, any payload, HS256-signed with `key`.
fn hand_built(header: &str, payload: &str, key: &Secret) -> String {
    let input = format!("{}.{}", b64(header), b64(payload));
    let sig = hmac_sha256(key.as_bytes(), input.as_bytes());
    format!("{input}.{}", Base64UrlUnpadded::encode_string(&sig))
}

fn claims(exp: Option<i64>) -> IdentityClaims {
    IdentityClaims {
        exp,
        ..IdentityClaims::new("user-42")
    }
}

fn verify(token: &str) -> Result<IdentityClaims, ProofError> {
    verify_identity_token(&secret(), token, Some("user-42"), NOW)
}

#[test]
fn a_valid_token_verifies_and_returns_its_claims() {
    let mut c = claims(Some(NOW + 600));
    c.iat = Some(NOW);
    c.jti = Some("jti-1".into());
    c.attributes = Some(serde_json::from_str(r#"{"plan":"pro"}"#).unwrap());
    let token = issue_identity_token(&secret(), None, &c).unwrap();
    assert_eq!(verify(&token), Ok(c));
}

#[test]
fn exp_and_nbf_are_optional() {
    let token = issue_identity_token(&secret(), None, &claims(None)).unwrap();
    assert_eq!(verify(&token).unwrap().sub, "user-42");
    assert_eq!(
        verify_identity_token(&secret(), &token, None, NOW)
            .unwrap()
            .exp,
        None
    );
}

#[test]
fn expiry_is_enforced_with_leeway() {
    let within =
        issue_identity_token(&secret(), None, &claims(Some(NOW - TOKEN_LEEWAY_SECONDS))).unwrap();
    assert!(verify(&within).is_ok());
    let beyond = issue_identity_token(
        &secret(),
        None,
        &claims(Some(NOW - TOKEN_LEEWAY_SECONDS - 1)),
    )
    .unwrap();
    assert_eq!(verify(&beyond), Err(ProofError::TokenExpired));
    assert_eq!(ProofError::TokenExpired.code(), "token_expired");
}

#[test]
fn not_before_is_enforced_with_leeway() {
    let mut c = claims(Some(NOW + 3600));
    c.nbf = Some(NOW + TOKEN_LEEWAY_SECONDS);
    assert!(verify(&issue_identity_token(&secret(), None, &c).unwrap()).is_ok());
    c.nbf = Some(NOW + TOKEN_LEEWAY_SECONDS + 1);
    let t = issue_identity_token(&secret(), None, &c).unwrap();
    assert_eq!(verify(&t), Err(ProofError::TokenNotYetValid));
}

#[test]
fn alg_none_is_refused() {
    let payload = b64(r#"{"sub":"user-42"}"#);
    for token in [
        format!("{}.{payload}.", b64(r#"{"alg":"none","typ":"JWT"}"#)),
        format!("{}.{payload}.c2ln", b64(r#"{"alg":"none"}"#)),
        hand_built(r#"{"alg":"none"}"#, r#"{"sub":"user-42"}"#, &secret()),
        hand_built(r#"{"alg":"None"}"#, r#"{"sub":"user-42"}"#, &secret()),
    ] {
        assert!(
            matches!(
                verify(&token),
                Err(ProofError::TokenAlgorithm(_) | ProofError::TokenMalformed(_))
            ),
            "{token}"
        );
    }
    let token = format!("{}.{payload}.c2ln", b64(r#"{"alg":"none"}"#));
    assert_eq!(
        verify(&token),
        Err(ProofError::TokenAlgorithm("none".into()))
    );
}

#[test]
fn other_algorithms_are_refused_and_named() {
    let hs512 = jsonwebtoken::encode(
        &Header::new(Algorithm::HS512),
        &claims(Some(NOW + 60)),
        &EncodingKey::from_secret(secret().as_bytes()).unwrap(),
    )
    .unwrap();
    assert_eq!(
        verify(&hs512),
        Err(ProofError::TokenAlgorithm("HS512".into()))
    );
    let rs256 = hand_built(
        r#"{"alg":"RS256","typ":"JWT"}"#,
        r#"{"sub":"user-42"}"#,
        &secret(),
    );
    let err = verify(&rs256).unwrap_err();
    assert_eq!(err, ProofError::TokenAlgorithm("RS256".into()));
    assert!(err.to_string().contains("RS256") && err.to_string().contains("HS256"));
    assert_eq!(err.code(), "invalid_token");
}

#[test]
fn a_tampered_payload_fails_the_signature() {
    let token = issue_identity_token(&secret(), None, &claims(Some(NOW + 600))).unwrap();
    let parts: Vec<&str> = token.split('.').collect();
    let forged = b64(&format!(r#"{{"sub":"admin","exp":{}}}"#, NOW + 600));
    let tampered = format!("{}.{forged}.{}", parts[0], parts[2]);
    assert_eq!(
        verify_identity_token(&secret(), &tampered, Some("admin"), NOW),
        Err(ProofError::TokenBadSignature)
    );
    let other_key = Secret::new("another-secret-entirely");
    assert_eq!(
        verify_identity_token(&other_key, &token, Some("user-42"), NOW),
        Err(ProofError::TokenBadSignature)
    );
}

#[test]
fn a_token_for_another_user_is_refused() {
    let token = issue_identity_token(&secret(), None, &claims(None)).unwrap();
    assert_eq!(
        verify_identity_token(&secret(), &token, Some("user-43"), NOW),
        Err(ProofError::TokenWrongSubject)
    );
}

#[test]
fn sub_is_required() {
    let token = hand_built(
        r#"{"alg":"HS256","typ":"JWT"}"#,
        r#"{"exp":1700000600}"#,
        &secret(),
    );
    assert!(matches!(verify(&token), Err(ProofError::TokenMalformed(m)) if m.contains("sub")));
    let empty = hand_built(r#"{"alg":"HS256"}"#, r#"{"sub":""}"#, &secret());
    assert!(matches!(verify(&empty), Err(ProofError::TokenMalformed(_))));
}

#[test]
fn malformed_tokens_are_named() {
    for token in [
        "",
        "abc",
        "a.b",
        "a.b.c.d",
        "..",
        "!!!.e30.sig",
        "e30.e30.sig",
    ] {
        assert!(
            matches!(verify(token), Err(ProofError::TokenMalformed(_))),
            "{token:?}"
        );
    }
    let not_object = hand_built(r#"{"alg":"HS256"}"#, r#"["user-42"]"#, &secret());
    assert!(matches!(
        verify(&not_object),
        Err(ProofError::TokenMalformed(_))
    ));
}

#[test]
fn token_attributes_must_be_canonicalisable() {
    let big = hand_built(
        r#"{"alg":"HS256"}"#,
        r#"{"sub":"user-42","attributes":{"n":9007199254740993}}"#,
        &secret(),
    );
    assert!(matches!(
        verify(&big),
        Err(ProofError::InvalidAttributes(_))
    ));
    let dup = hand_built(
        r#"{"alg":"HS256"}"#,
        r#"{"sub":"user-42","attributes":{"a":1,"a":2}}"#,
        &secret(),
    );
    assert!(matches!(
        verify(&dup),
        Err(ProofError::InvalidAttributes(_))
    ));
    let list = hand_built(
        r#"{"alg":"HS256"}"#,
        r#"{"sub":"user-42","attributes":[1]}"#,
        &secret(),
    );
    assert!(matches!(
        verify(&list),
        Err(ProofError::InvalidAttributes(_))
    ));
    let mut c = claims(None);
    c.attributes = Some(serde_json::from_str(r#"{"n":9007199254740993}"#).unwrap());
    assert!(matches!(
        issue_identity_token(&secret(), None, &c),
        Err(ProofError::InvalidAttributes(_))
    ));
}

#[test]
fn jsonwebtoken_agrees_both_ways() {
    // Ours verified by jsonwebtoken ...
    let token = issue_identity_token(&secret(), Some("key_1"), &claims(Some(NOW + 600))).unwrap();
    let mut v = Validation::new(Algorithm::HS256);
    v.validate_exp = false;
    let decoded = jsonwebtoken::decode::<serde_json::Value>(
        &token,
        &DecodingKey::from_secret(secret().as_bytes()).unwrap(),
        &v,
    )
    .unwrap();
    assert_eq!(decoded.claims["sub"], "user-42");
    assert_eq!(decoded.header.kid.as_deref(), Some("key_1"));
    // ... and a hand-built HS256 token verified by ours.
    let hand = hand_built(
        r#"{"typ":"JWT","alg":"HS256"}"#,
        r#"{"sub":"user-42","iss":"ignored"}"#,
        &secret(),
    );
    assert_eq!(verify(&hand).unwrap().sub, "user-42");
}

fn ring() -> KeyRing {
    KeyRing::new(vec![
        KeyEntry::new(
            "key_old",
            Secret::new("old-secret-0123456789"),
            0,
            Some(NOW + 100),
            None,
        ),
        KeyEntry::new(
            "key_new",
            Secret::new("new-secret-0123456789"),
            10,
            None,
            None,
        ),
        KeyEntry::new(
            "key_revoked",
            Secret::new("revoked-secret-012345"),
            0,
            None,
            Some(5),
        ),
    ])
}

#[test]
fn kid_selects_the_key() {
    let ring = ring();
    let new = ring.get("key_new").unwrap().secret().clone();
    let token = issue_identity_token(&new, Some("key_new"), &claims(None)).unwrap();
    assert_eq!(token_kid(&token).as_deref(), Some("key_new"));
    let (kid, c) = ring.verify_token(&token, Some("user-42"), NOW).unwrap();
    assert_eq!((kid, c.sub.as_str()), ("key_new", "user-42"));
    // The right secret under the wrong kid fails: kid is not a hint, it selects.
    let mislabelled = issue_identity_token(&new, Some("key_old"), &claims(None)).unwrap();
    assert_eq!(
        ring.verify_token(&mislabelled, None, NOW),
        Err(ProofError::TokenBadSignature)
    );
}

#[test]
fn unknown_kid_is_refused() {
    let ring = ring();
    let new = ring.get("key_new").unwrap().secret().clone();
    let token = issue_identity_token(&new, Some("key_nope"), &claims(None)).unwrap();
    assert_eq!(
        ring.verify_token(&token, None, NOW),
        Err(ProofError::TokenUnknownKey)
    );
    assert_eq!(ProofError::TokenUnknownKey.code(), "invalid_token");
}

#[test]
fn without_kid_every_active_key_is_tried() {
    let ring = ring();
    let old = ring.get("key_old").unwrap().secret().clone();
    let token = issue_identity_token(&old, None, &claims(None)).unwrap();
    assert_eq!(ring.verify_token(&token, None, NOW).unwrap().0, "key_old");
    // After the grace period the old key no longer verifies.
    assert_eq!(
        ring.verify_token(&token, None, NOW + 100),
        Err(ProofError::TokenBadSignature)
    );
}

#[test]
fn revoked_keys_verify_no_token() {
    let ring = ring();
    let revoked = ring.get("key_revoked").unwrap().secret().clone();
    for kid in [Some("key_revoked"), None] {
        let token = issue_identity_token(&revoked, kid, &claims(None)).unwrap();
        assert_eq!(
            ring.verify_token(&token, None, NOW),
            Err(ProofError::TokenBadSignature)
        );
    }
}

#[test]
fn claim_errors_surface_through_the_ring() {
    let ring = ring();
    let new = ring.get("key_new").unwrap().secret().clone();
    let expired = issue_identity_token(&new, None, &claims(Some(NOW - 3600))).unwrap();
    assert_eq!(
        ring.verify_token(&expired, None, NOW),
        Err(ProofError::TokenExpired)
    );
    let token = issue_identity_token(&new, Some("key_new"), &claims(None)).unwrap();
    assert_eq!(
        ring.verify_token(&token, Some("user-7"), NOW),
        Err(ProofError::TokenWrongSubject)
    );
}
