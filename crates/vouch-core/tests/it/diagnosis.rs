//! Each diagnosis cause, produced by constructing the mistake it names.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use base64ct::{Base64, Base64Unpadded, Base64UrlUnpadded, Encoding};
use vouch_core::diagnosis::{DiagnosisInput, MAX_CANDIDATES, diagnose, diagnose_with_candidates};
use vouch_core::encoding::encode_mac;
use vouch_core::keys::sha256;
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
        Cause::PlainSha256,
        Cause::SignedCandidate {
            candidate: "ada@example.com".into(),
        },
        Cause::Base64OfHex { inner: None },
        Cause::OpensslOutput {
            inner: Some(Box::new(Cause::SurroundingWhitespace)),
        },
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

fn candidates(s: &Setup, message: &str, signature: &str, candidates: &[&str]) -> Cause {
    let others = [("Acme — staging", &s.staging_ring)];
    diagnose_with_candidates(
        &DiagnosisInput {
            message,
            signature,
            keys: &s.ring,
            other_environments: &others,
            attributes: None,
        },
        candidates,
        NOW,
    )
}

#[test]
fn plain_sha256_of_the_id_in_hex_or_base64() {
    let s = setup();
    let digest = sha256(b"42");
    for enc in [
        SignatureEncoding::Hex,
        SignatureEncoding::Base64,
        SignatureEncoding::Base64Url,
    ] {
        let sig = encode_mac(&digest, enc);
        assert_eq!(
            diagnose_with(&s, "42", &sig, None),
            Cause::PlainSha256,
            "{sig}"
        );
    }
    let upper = encode_mac(&digest, SignatureEncoding::Hex).to_uppercase();
    let cause = diagnose_with(&s, "42", &upper, None);
    assert_eq!(cause, Cause::PlainSha256);
    assert_eq!(cause.code(), "plain_sha256");
    assert!(
        cause.message().contains("HMAC-SHA256"),
        "{}",
        cause.message()
    );
    // The SHA-256 of another id is not this mistake.
    let other = encode_mac(&sha256(b"43"), SignatureEncoding::Hex);
    assert_eq!(diagnose_with(&s, "42", &other, None), Cause::Unknown);
}

#[test]
fn base64_of_the_hex_text_is_unwrapped_and_the_inside_diagnosed() {
    let s = setup();
    let good_hex = hex(&s.current, "42");
    for sig in [
        Base64::encode_string(good_hex.as_bytes()),
        Base64Unpadded::encode_string(good_hex.as_bytes()),
        Base64UrlUnpadded::encode_string(good_hex.to_uppercase().as_bytes()),
    ] {
        let cause = diagnose_with(&s, "42", &sig, None);
        assert_eq!(cause, Cause::Base64OfHex { inner: None }, "{sig}");
        assert!(cause.message().contains("64 hex characters"));
        assert!(cause.message().contains("inside is correct"));
    }
    // The usual analysis applies to what is inside.
    let newline = Base64::encode_string(hex(&s.current, "42\n").as_bytes());
    let cause = diagnose_with(&s, "42", &newline, None);
    assert_eq!(
        cause,
        Cause::Base64OfHex {
            inner: Some(Box::new(Cause::SurroundingWhitespace))
        }
    );
    assert!(
        cause.message().contains("trailing newline"),
        "{}",
        cause.message()
    );
    let revoked = Base64::encode_string(hex(&s.revoked, "42").as_bytes());
    assert_eq!(
        diagnose_with(&s, "42", &revoked, None),
        Cause::Base64OfHex {
            inner: Some(Box::new(Cause::RevokedSecret {
                key_id: "key_revoked".into()
            }))
        }
    );
    assert_eq!(
        serde_json::to_value(diagnose_with(&s, "42", &revoked, None)).unwrap(),
        serde_json::json!({
            "cause": "base64_of_hex",
            "inner": {"cause": "revoked_secret", "key_id": "key_revoked"}
        })
    );
    // 88 characters of base64 that are not hex text inside stay malformed.
    let not_hex = Base64::encode_string(&[0x01u8; 64]);
    assert_eq!(diagnose_with(&s, "42", &not_hex, None), Cause::Malformed);
}

#[test]
fn openssl_dgst_output_is_recognised_and_the_digest_inside_diagnosed() {
    let s = setup();
    let good = hex(&s.current, "42");
    for line in [
        format!("(stdin)= {good}"),
        format!("HMAC-SHA2-256(stdin)= {good}"),
        format!("HMAC-SHA256(stdin)= {good}\n"),
        format!("HMAC-SHA2-256(user-id.txt)= {good}"),
    ] {
        let cause = diagnose_with(&s, "42", &line, None);
        assert_eq!(cause, Cause::OpensslOutput { inner: None }, "{line:?}");
        assert_eq!(cause.code(), "openssl_output");
        assert!(
            cause.message().contains("only the hex"),
            "{}",
            cause.message()
        );
    }
    // `echo 42 | openssl dgst -sha256 -hmac …`: the newline echo adds, inside the output line.
    let echoed = format!("HMAC-SHA2-256(stdin)= {}", hex(&s.current, "42\n"));
    let cause = diagnose_with(&s, "42", &echoed, None);
    assert_eq!(
        cause,
        Cause::OpensslOutput {
            inner: Some(Box::new(Cause::SurroundingWhitespace))
        }
    );
    assert!(cause.message().contains("trailing newline"));
    // `openssl dgst -sha256` without -hmac: a plain hash, which the prefix also says.
    let plain = format!(
        "SHA2-256(stdin)= {}",
        encode_mac(&sha256(b"42"), SignatureEncoding::Hex)
    );
    assert_eq!(
        diagnose_with(&s, "42", &plain, None),
        Cause::OpensslOutput {
            inner: Some(Box::new(Cause::PlainSha256))
        }
    );
    // `openssl dgst -sha1 -hmac …`: the length of the digest inside names the hash.
    let sha1 = format!("HMAC-SHA1(stdin)= {}", "ab".repeat(20));
    assert_eq!(
        diagnose_with(&s, "42", &sha1, None),
        Cause::OpensslOutput {
            inner: Some(Box::new(Cause::WrongHashSha1))
        }
    );
    // Another environment's secret, inside the output line.
    let staging = format!("(stdin)= {}", hex(&s.staging, "42"));
    assert_eq!(
        diagnose_with(&s, "42", &staging, None),
        Cause::OpensslOutput {
            inner: Some(Box::new(Cause::OtherEnvironment {
                environment: "Acme — staging".into()
            }))
        }
    );
    // Only one layer is taken off, and only an output-shaped line.
    for text in [
        format!("(stdin)= (stdin)= {good}"),
        format!("HMAC SHA256(stdin)= {good}"),
        format!("(stdin)= {good} trailing words"),
        "(stdin)= ".to_owned(),
    ] {
        assert_eq!(
            diagnose_with(&s, "42", &text, None),
            Cause::Malformed,
            "{text:?}"
        );
    }
}

#[test]
fn the_secret_inside_an_openssl_line_is_still_an_exposed_secret() {
    let s = setup();
    let line = format!("(stdin)= {}", s.current.expose());
    assert_eq!(
        diagnose_with(&s, "42", &line, None),
        Cause::SecretSentAsSignature
    );
}

#[test]
fn a_candidate_signed_instead_of_the_id_is_named() {
    let s = setup();
    let sig = hex(&s.current, "ada@example.com");
    // Without candidates the mistake cannot be seen ...
    assert_eq!(diagnose_with(&s, "42", &sig, None), Cause::Unknown);
    // ... with them it is named.
    let cause = candidates(&s, "42", &sig, &["legacy-7", "ada@example.com"]);
    assert_eq!(
        cause,
        Cause::SignedCandidate {
            candidate: "ada@example.com".into()
        }
    );
    assert!(
        cause.message().contains("\"ada@example.com\""),
        "{}",
        cause.message()
    );
    // A candidate signed with a revoked secret is not this environment's valid HMAC of it.
    let revoked = hex(&s.revoked, "ada@example.com");
    assert_eq!(
        candidates(&s, "42", &revoked, &["ada@example.com"]),
        Cause::SignedCandidate {
            candidate: "ada@example.com".into()
        }
    );
    // Inside a wrapper too.
    let wrapped = format!("(stdin)= {sig}");
    assert_eq!(
        candidates(&s, "42", &wrapped, &["ada@example.com"]),
        Cause::OpensslOutput {
            inner: Some(Box::new(Cause::SignedCandidate {
                candidate: "ada@example.com".into()
            }))
        }
    );
    // The usual causes come first: a correct signature is still no mistake.
    assert_eq!(
        candidates(&s, "42", &hex(&s.current, "42"), &["ada@example.com"]),
        Cause::Unknown
    );
}

#[test]
fn candidates_are_bounded() {
    let s = setup();
    let mut many: Vec<String> = (0..MAX_CANDIDATES).map(|i| format!("c{i}")).collect();
    many.push("late@example.com".into());
    let refs: Vec<&str> = many.iter().map(String::as_str).collect();
    // The last allowed candidate is tried ...
    let last = format!("c{}", MAX_CANDIDATES - 1);
    assert_eq!(
        candidates(&s, "42", &hex(&s.current, &last), &refs),
        Cause::SignedCandidate { candidate: last }
    );
    // ... one beyond the cap is not.
    assert_eq!(
        candidates(&s, "42", &hex(&s.current, "late@example.com"), &refs),
        Cause::Unknown
    );
    // Too long or empty candidates are skipped.
    let long = "x".repeat(256);
    assert_eq!(
        candidates(&s, "42", &hex(&s.current, &long), &[&long]),
        Cause::Unknown
    );
    assert_eq!(
        candidates(&s, "42", &hex(&s.current, ""), &[""]),
        Cause::Unknown
    );
}
