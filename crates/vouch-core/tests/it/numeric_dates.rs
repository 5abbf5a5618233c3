//! Identity-token time claims are RFC 7519 NumericDates: any JSON number, integer or not,
//! rounded so that a fraction never lengthens a token's validity.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use base64ct::{Base64UrlUnpadded, Encoding};
use vouch_core::proof::{hmac_sha256, issue_identity_token};
use vouch_core::token::{TOKEN_LEEWAY_SECONDS, verify_identity_token};
use vouch_core::{IdentityClaims, KeyEntry, KeyRing, ProofError, Secret};

const NOW: i64 = 1_796_163_000;

fn secret() -> Secret {
    Secret::new("sk_test_numeric_date_secret_0123456789")
}

/// An HS256 token over exactly this payload text, as PyJWT or a JavaScript backend writes it.
fn token(payload: &str) -> String {
    let input = format!(
        "{}.{}",
        Base64UrlUnpadded::encode_string(br#"{"alg":"HS256","typ":"JWT"}"#),
        Base64UrlUnpadded::encode_string(payload.as_bytes())
    );
    let sig = hmac_sha256(secret().as_bytes(), input.as_bytes());
    format!("{input}.{}", Base64UrlUnpadded::encode_string(&sig))
}

fn verify_at(payload: &str, now: i64) -> Result<IdentityClaims, ProofError> {
    verify_identity_token(&secret(), &token(payload), Some("u1"), now)
}

fn malformed_message(r: Result<IdentityClaims, ProofError>) -> String {
    match r {
        Err(ProofError::TokenMalformed(m)) => m,
        other => panic!("expected TokenMalformed, got {other:?}"),
    }
}

#[test]
fn a_fractional_exp_is_accepted_and_rounded_down() {
    let claims = verify_at(r#"{"sub":"u1","exp":1796163605.5}"#, NOW).unwrap();
    assert_eq!(claims.exp, Some(1_796_163_605));
    // An integer written as a float is the same instant.
    let claims = verify_at(r#"{"sub":"u1","exp":1796163605.0}"#, NOW).unwrap();
    assert_eq!(claims.exp, Some(1_796_163_605));
    // Exponent notation (what some serialisers print) is a number too.
    let claims = verify_at(r#"{"sub":"u1","exp":1.7961636055e9}"#, NOW).unwrap();
    assert_eq!(claims.exp, Some(1_796_163_605));
}

#[test]
fn an_expired_fractional_exp_is_refused_and_never_rounded_up() {
    let exp = r#"{"sub":"u1","exp":1796163605.5}"#;
    let deadline = 1_796_163_605 + TOKEN_LEEWAY_SECONDS;
    assert!(verify_at(exp, deadline).is_ok());
    // One second later is past exp + leeway (1796163665.5): refused, not granted by rounding.
    assert_eq!(verify_at(exp, deadline + 1), Err(ProofError::TokenExpired));
    // A fraction a hair below the next second still rounds down (exact decimal, no f64).
    let almost = r#"{"sub":"u1","exp":1796163605.99999999999999999}"#;
    assert_eq!(
        verify_at(almost, deadline + 1),
        Err(ProofError::TokenExpired)
    );
    let long_ago = format!(r#"{{"sub":"u1","exp":{}.25}}"#, NOW - 3600);
    assert_eq!(verify_at(&long_ago, NOW), Err(ProofError::TokenExpired));
}

#[test]
fn a_fractional_nbf_in_the_future_is_refused_and_rounded_up() {
    let nbf = format!(r#"{{"sub":"u1","nbf":{}.5}}"#, NOW + 600);
    assert_eq!(verify_at(&nbf, NOW), Err(ProofError::TokenNotYetValid));
    // nbf = NOW + 600.5 rounds up to NOW + 601: valid from NOW + 541 (leeway 60), not before.
    assert_eq!(
        verify_at(&nbf, NOW + 540),
        Err(ProofError::TokenNotYetValid)
    );
    assert_eq!(verify_at(&nbf, NOW + 541).unwrap().nbf, Some(NOW + 601));
    let past = format!(r#"{{"sub":"u1","nbf":{}.9}}"#, NOW - 10);
    assert_eq!(verify_at(&past, NOW).unwrap().nbf, Some(NOW - 9));
}

#[test]
fn a_fractional_iat_is_accepted() {
    let payload = format!(
        r#"{{"sub":"u1","iat":{}.123456,"exp":{}.123456}}"#,
        NOW,
        NOW + 600
    );
    let claims = verify_at(&payload, NOW).unwrap();
    assert_eq!((claims.iat, claims.exp), (Some(NOW), Some(NOW + 600)));
}

#[test]
fn fractional_claims_verify_through_a_key_ring_too() {
    let ring = KeyRing::new(vec![KeyEntry::new("key_1", secret(), 0, None, None)]);
    let t = token(r#"{"sub":"u1","exp":1796163605.5,"iat":1796163005.5,"jti":"j1"}"#);
    let (key, claims) = ring.verify_token(&t, Some("u1"), NOW).unwrap();
    assert_eq!((key, claims.exp), ("key_1", Some(1_796_163_605)));
}

#[test]
fn non_numbers_are_refused_naming_the_claim() {
    for (payload, claim, what) in [
        (r#"{"sub":"u1","exp":"1796163605"}"#, "exp", "a string"),
        (r#"{"sub":"u1","nbf":true}"#, "nbf", "a boolean"),
        (r#"{"sub":"u1","iat":{"t":1}}"#, "iat", "an object"),
        (r#"{"sub":"u1","exp":[1796163605]}"#, "exp", "an array"),
    ] {
        let m = malformed_message(verify_at(payload, NOW));
        assert!(
            m.contains(&format!("the {claim} claim")) && m.contains(what),
            "{payload}: {m}"
        );
        assert_eq!(ProofError::TokenMalformed(m).code(), "invalid_token");
    }
}

#[test]
fn absurd_values_are_refused_naming_the_claim() {
    for (payload, claim, what) in [
        (
            r#"{"sub":"u1","exp":9007199254740993}"#,
            "exp",
            "out of range",
        ),
        (
            r#"{"sub":"u1","exp":9223372036854775807}"#,
            "exp",
            "out of range",
        ),
        (r#"{"sub":"u1","exp":1e400}"#, "exp", "out of range"),
        (r#"{"sub":"u1","nbf":-1e300}"#, "nbf", "out of range"),
        (
            r#"{"sub":"u1","iat":123456789012345678901234567890}"#,
            "iat",
            "out of range",
        ),
        (r#"{"sub":"u1","exp":-1}"#, "exp", "negative"),
        (r#"{"sub":"u1","exp":-0.5}"#, "exp", "negative"),
    ] {
        let m = malformed_message(verify_at(payload, NOW));
        assert!(
            m.contains(&format!("the {claim} claim")) && m.contains(what),
            "{payload}: {m}"
        );
    }
    // The largest accepted value, 2^53, is accepted (and never expires in practice).
    let max = verify_at(r#"{"sub":"u1","exp":9007199254740992}"#, NOW).unwrap();
    assert_eq!(max.exp, Some(1 << 53));
    // Negative nbf and iat are odd but harmless instants before 1970.
    assert!(verify_at(r#"{"sub":"u1","nbf":-5.5,"iat":-7}"#, NOW).is_ok());
}

#[test]
fn a_bad_time_claim_is_reported_only_for_a_genuine_token() {
    // The signature is checked first: a forged token learns nothing about its claims.
    let forged = token(r#"{"sub":"u1","exp":"soon"}"#).replace('.', ".x");
    assert!(verify_identity_token(&secret(), &forged, Some("u1"), NOW).is_err());
    let other_key = Secret::new("another-secret-entirely-0123");
    assert_eq!(
        verify_identity_token(
            &other_key,
            &token(r#"{"sub":"u1","exp":"soon"}"#),
            None,
            NOW
        ),
        Err(ProofError::TokenBadSignature)
    );
}

#[test]
fn tokens_out_of_range_are_not_issued() {
    let mut claims = IdentityClaims::new("u1").with_expiry(i64::MAX);
    let m = match issue_identity_token(&secret(), None, &claims) {
        Err(ProofError::TokenMalformed(m)) => m,
        other => panic!("{other:?}"),
    };
    assert!(m.contains("exp") && m.contains("out of range"), "{m}");
    claims.exp = Some(-1);
    assert!(issue_identity_token(&secret(), None, &claims).is_err());
    claims.exp = Some(NOW + 600);
    claims.nbf = Some(i64::MIN);
    assert!(issue_identity_token(&secret(), None, &claims).is_err());
    claims.nbf = Some(NOW);
    let t = issue_identity_token(&secret(), None, &claims).unwrap();
    assert_eq!(
        verify_identity_token(&secret(), &t, Some("u1"), NOW),
        Ok(claims)
    );
}

#[test]
fn claims_read_from_json_follow_the_same_rules() {
    let c: IdentityClaims =
        serde_json::from_str(r#"{"sub":"u1","exp":10.5,"nbf":5.5,"iat":4.5}"#).unwrap();
    assert_eq!((c.exp, c.nbf, c.iat), (Some(10), Some(6), Some(4)));
    let err = serde_json::from_str::<IdentityClaims>(r#"{"sub":"u1","exp":"10"}"#).unwrap_err();
    assert!(err.to_string().contains("the exp claim"), "{err}");
    let from_value: IdentityClaims =
        serde_json::from_value(serde_json::json!({"sub": "u1", "exp": 10.5})).unwrap();
    assert_eq!(from_value.exp, Some(10));
}
