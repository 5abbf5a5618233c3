//! Each diagnosis cause, produced by constructing the mistake it names.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use vouch_core::diagnosis::{DiagnosisInput, diagnose};
use vouch_core::proof::{hmac_sha256, sign};
use vouch_core::{Cause, KeyEntry, KeyRing, Mode, Secret, SignatureEncoding};

const NOW: i64 = 1_700_000_000;

struct Setup {
    current: Secret,
    revoked: Secret,
    expired: Secret,
    staging: Secret,
    ring: KeyRing,
    staging_ring: KeyRing,
}

fn setup() -> Setup {
    let current = vouch_core::keys::generate_identity_secret(Mode::Live);
    let revoked = Secret::new("sk_live_revoked_one_from_last_year");
    let expired = Secret::new("sk_live_expired_after_rotation");
    let staging = Secret::new("sk_test_staging_secret_value");
    let ring = KeyRing::new(vec![
        KeyEntry::new("key_revoked", revoked.clone(), 0, None, Some(10)),
        KeyEntry::new("key_expired", expired.clone(), 0, Some(NOW - 5), None),
        KeyEntry::new("key_current", current.clone(), NOW - 5, None, None),
    ]);
    let staging_ring = KeyRing::new(vec![KeyEntry::new("key_s", staging.clone(), 0, None, None)]);
    Setup {
        current,
        revoked,
        expired,
        staging,
        ring,
        staging_ring,
    }
}

fn diagnose_with(
    s: &Setup,
    message: &str,
    signature: &str,
    attributes: Option<&serde_json::Map<String, serde_json::Value>>,
) -> Cause {
    let others = [("Acme — staging", &s.staging_ring)];
    diagnose(
        &DiagnosisInput {
            message,
            signature,
            keys: &s.ring,
            other_environments: &others,
            attributes,
        },
        NOW,
    )
}

fn hex(secret: &Secret, msg: &str) -> String {
    sign(secret, msg.as_bytes(), SignatureEncoding::Hex)
}

#[test]
fn revoked_secret() {
    let s = setup();
    let cause = diagnose_with(&s, "42", &hex(&s.revoked, "42"), None);
    assert_eq!(
        cause,
        Cause::RevokedSecret {
            key_id: "key_revoked".into()
        }
    );
    assert_eq!(cause.code(), "revoked_secret");
    assert!(cause.message().contains("key_revoked"));
}

#[test]
fn expired_secret() {
    let s = setup();
    let sig = sign(&s.expired, b"42", SignatureEncoding::Base64);
    assert_eq!(
        diagnose_with(&s, "42", &sig, None),
        Cause::ExpiredSecret {
            key_id: "key_expired".into()
        }
    );
}

#[test]
fn other_environment() {
    let s = setup();
    let cause = diagnose_with(&s, "42", &hex(&s.staging, "42"), None);
    assert_eq!(
        cause,
        Cause::OtherEnvironment {
            environment: "Acme — staging".into()
        }
    );
    assert_eq!(
        cause.message(),
        "signed with the secret of environment Acme — staging; use this environment's secret"
    );
    let json = serde_json::to_value(&cause).unwrap();
    assert_eq!(
        json,
        serde_json::json!({"cause": "other_environment", "environment": "Acme — staging"})
    );
}

#[test]
fn key_and_message_swapped() {
    let s = setup();
    let mac = hmac_sha256(b"42", s.current.as_bytes());
    let sig = vouch_core::encoding::encode_mac(&mac, SignatureEncoding::Hex);
    assert_eq!(
        diagnose_with(&s, "42", &sig, None),
        Cause::KeyAndMessageSwapped
    );
}

#[test]
fn signed_attribute() {
    let s = setup();
    let attrs =
        vouch_core::jcs::parse_attributes(r#"{"name":"Ada","email":"ada@example.com","seats":7}"#)
            .unwrap();
    let cause = diagnose_with(&s, "42", &hex(&s.current, "ada@example.com"), Some(&attrs));
    assert_eq!(
        cause,
        Cause::SignedAttribute {
            attribute: "email".into()
        }
    );
    assert!(cause.message().contains("email"));
    assert_eq!(
        diagnose_with(&s, "42", &hex(&s.current, "7"), Some(&attrs)),
        Cause::SignedAttribute {
            attribute: "seats".into()
        }
    );
}

#[test]
fn surrounding_whitespace() {
    let s = setup();
    for signed in ["42\n", "42\r\n", "42 ", " 42"] {
        assert_eq!(
            diagnose_with(&s, "42", &hex(&s.current, signed), None),
            Cause::SurroundingWhitespace,
            "{signed:?}"
        );
    }
    // The id sent has whitespace the signed one had not.
    assert_eq!(
        diagnose_with(&s, " 42\n", &hex(&s.current, "42"), None),
        Cause::SurroundingWhitespace
    );
}

#[test]
fn number_form() {
    let s = setup();
    assert_eq!(
        diagnose_with(&s, "42", &hex(&s.current, "42.0"), None),
        Cause::NumberForm
    );
    assert_eq!(
        diagnose_with(&s, "42", &hex(&s.current, "\"42\""), None),
        Cause::NumberForm
    );
    assert_eq!(
        diagnose_with(&s, "0042", &hex(&s.current, "42"), None),
        Cause::NumberForm
    );
    assert_eq!(
        diagnose_with(&s, "42.0", &hex(&s.current, "42"), None),
        Cause::NumberForm
    );
}

#[test]
fn wrong_hash_by_length() {
    let s = setup();
    assert_eq!(
        diagnose_with(&s, "42", &"a1".repeat(20), None),
        Cause::WrongHashSha1
    );
    assert_eq!(
        diagnose_with(&s, "42", &"B2".repeat(16), None),
        Cause::WrongHashMd5
    );
    assert_eq!(
        diagnose_with(&s, "42", &"c3".repeat(64), None),
        Cause::WrongHashOther
    );
    assert_eq!(
        diagnose_with(&s, "42", &"c3".repeat(24), None),
        Cause::WrongHashOther
    );
}

#[test]
fn secret_sent_as_signature() {
    let s = setup();
    assert_eq!(
        diagnose_with(&s, "42", s.current.expose(), None),
        Cause::SecretSentAsSignature
    );
    assert_eq!(
        diagnose_with(&s, "42", s.revoked.expose(), None),
        Cause::SecretSentAsSignature
    );
    assert_eq!(
        diagnose_with(&s, "42", s.staging.expose(), None),
        Cause::SecretSentAsSignature
    );
    let inside = format!("sha256={}", s.current.expose());
    assert_eq!(
        diagnose_with(&s, "42", &inside, None),
        Cause::SecretSentAsSignature
    );
    // An imported secret that happens to be 64 hex characters is still caught.
    let hexy = Secret::new("ab".repeat(32));
    let ring = KeyRing::new(vec![KeyEntry::new("key_h", hexy.clone(), 0, None, None)]);
    let input = DiagnosisInput {
        message: "42",
        signature: hexy.expose(),
        keys: &ring,
        other_environments: &[],
        attributes: None,
    };
    assert_eq!(diagnose(&input, NOW), Cause::SecretSentAsSignature);
}

#[test]
fn malformed_and_unknown() {
    let s = setup();
    assert_eq!(
        diagnose_with(&s, "42", "not a signature", None),
        Cause::Malformed
    );
    assert_eq!(diagnose_with(&s, "42", "", None), Cause::Malformed);
    let unrelated = Secret::new("some-unrelated-secret-value");
    assert_eq!(
        diagnose_with(&s, "42", &hex(&unrelated, "42"), None),
        Cause::Unknown
    );
    // A valid signature has no mistake to name.
    assert_eq!(
        diagnose_with(&s, "42", &hex(&s.current, "42"), None),
        Cause::Unknown
    );
}

#[test]
fn every_cause_has_a_code_and_a_message() {
    let causes = [
        Cause::RevokedSecret { key_id: "k".into() },
        Cause::ExpiredSecret { key_id: "k".into() },
        Cause::OtherEnvironment {
            environment: "e".into(),
        },
        Cause::KeyAndMessageSwapped,
        Cause::SignedAttribute {
            attribute: "email".into(),
        },
        Cause::SurroundingWhitespace,
        Cause::NumberForm,
        Cause::WrongHashSha1,
        Cause::WrongHashMd5,
        Cause::WrongHashOther,
        Cause::SecretSentAsSignature,
        Cause::Malformed,
        Cause::Unknown,
    ];
    let mut codes: Vec<&str> = causes.iter().map(Cause::code).collect();
    for c in &causes {
        assert!(c.message().len() > 20);
        assert_eq!(serde_json::to_value(c).unwrap()["cause"], c.code());
    }
    codes.dedup();
    assert_eq!(codes.len(), causes.len());
}
