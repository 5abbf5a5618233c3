//! Key ring: rotation states, which key verified, revoked and expired keys refusing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use vouch_core::proof::sign;
use vouch_core::{KeyEntry, KeyRing, KeyStatus, ProofError, Secret, SignatureEncoding};

const NOW: i64 = 1_700_000_000;

fn secret(n: u8) -> Secret {
    Secret::new(format!("sk_test_secret_number_{n}_padding"))
}

fn sig(n: u8, id: &str) -> String {
    sign(&secret(n), id.as_bytes(), SignatureEncoding::Hex)
}

#[test]
fn status_follows_expiry_and_revocation() {
    let e = KeyEntry::new("k", secret(1), 0, Some(NOW), None);
    assert_eq!(e.status(NOW - 1), KeyStatus::Active);
    assert_eq!(e.status(NOW), KeyStatus::Expired);
    let r = KeyEntry::new("k", secret(1), 0, Some(NOW), Some(NOW - 10));
    assert_eq!(
        r.status(NOW - 100),
        KeyStatus::Revoked,
        "revoked wins over expiry"
    );
    assert_eq!(
        KeyEntry::new("k", secret(1), 0, None, None).status(i64::MAX),
        KeyStatus::Active
    );
}

#[test]
fn rotation_keeps_the_old_key_until_its_grace_period_ends() {
    // Before rotation: one key.
    let mut ring = KeyRing::new(vec![KeyEntry::new("key_a", secret(1), 0, None, None)]);
    assert_eq!(
        ring.verify_signature(b"u1", &sig(1, "u1"), NOW),
        Ok("key_a")
    );
    // Rotation with a one-hour grace period.
    ring = KeyRing::new(vec![
        KeyEntry::new("key_a", secret(1), 0, Some(NOW + 3600), None),
        KeyEntry::new("key_b", secret(2), NOW, None, None),
    ]);
    assert_eq!(ring.active(NOW).count(), 2);
    assert_eq!(
        ring.verify_signature(b"u1", &sig(1, "u1"), NOW),
        Ok("key_a")
    );
    assert_eq!(
        ring.verify_signature(b"u1", &sig(2, "u1"), NOW),
        Ok("key_b")
    );
    // Grace period over.
    assert_eq!(ring.active(NOW + 3600).count(), 1);
    assert_eq!(
        ring.verify_signature(b"u1", &sig(1, "u1"), NOW + 3600),
        Err(ProofError::InvalidSignature)
    );
    assert_eq!(
        ring.verify_signature(b"u1", &sig(2, "u1"), NOW + 3600),
        Ok("key_b")
    );
}

#[test]
fn a_revoked_key_refuses_at_once() {
    let mut ring = KeyRing::default();
    ring.push(KeyEntry::new("key_a", secret(1), 0, None, Some(NOW)));
    ring.push(KeyEntry::new("key_b", secret(2), 0, None, None));
    assert_eq!(
        ring.verify_signature(b"u", &sig(1, "u"), NOW),
        Err(ProofError::InvalidSignature)
    );
    assert_eq!(ring.verify_signature(b"u", &sig(2, "u"), NOW), Ok("key_b"));
}

#[test]
fn an_expired_key_refuses() {
    let ring = KeyRing::new(vec![
        KeyEntry::new("key_old", secret(1), 0, Some(NOW - 1), None),
        KeyEntry::new("key_new", secret(2), 0, None, None),
    ]);
    assert_eq!(
        ring.verify_signature(b"u", &sig(1, "u"), NOW),
        Err(ProofError::InvalidSignature)
    );
}

#[test]
fn the_matching_key_id_is_returned_whatever_its_position() {
    let ring = KeyRing::new(
        (1..=5)
            .map(|n| KeyEntry::new(format!("key_{n}"), secret(n), 0, None, None))
            .collect(),
    );
    for n in 1..=5 {
        let id = format!("key_{n}");
        assert_eq!(
            ring.verify_signature(b"u", &sig(n, "u"), NOW),
            Ok(id.as_str())
        );
    }
    assert_eq!(ring.get("key_3").map(|e| e.created_at()), Some(0));
    assert_eq!(ring.entries().len(), 5);
}

#[test]
fn a_ring_without_active_keys_says_so() {
    let empty = KeyRing::default();
    assert_eq!(
        empty.verify_signature(b"u", &sig(1, "u"), NOW),
        Err(ProofError::NoActiveKey)
    );
    let revoked = KeyRing::new(vec![KeyEntry::new("k", secret(1), 0, None, Some(0))]);
    assert_eq!(
        revoked.verify_signature(b"u", &sig(1, "u"), NOW),
        Err(ProofError::NoActiveKey)
    );
    // A malformed signature is reported as such, active keys or not.
    assert!(matches!(
        empty.verify_signature(b"u", "xyz", NOW),
        Err(ProofError::Malformed(_))
    ));
    assert!(matches!(
        revoked.verify_signature(b"u", "xyz", NOW),
        Err(ProofError::Malformed(_))
    ));
}

#[test]
fn find_by_value_sees_every_key() {
    let ring = KeyRing::new(vec![
        KeyEntry::new("key_a", secret(1), 0, None, Some(5)),
        KeyEntry::new("key_b", secret(2), 0, Some(1), None),
    ]);
    assert_eq!(
        ring.find_by_value(secret(1).expose()).map(KeyEntry::id),
        Some("key_a")
    );
    assert_eq!(
        ring.find_by_value(secret(2).expose()).map(KeyEntry::id),
        Some("key_b")
    );
    assert!(
        ring.find_by_value("sk_test_secret_number_3_padding")
            .is_none()
    );
    assert!(ring.find_by_value("").is_none());
}

#[test]
fn debug_output_never_shows_a_secret() {
    let ring = KeyRing::new(vec![KeyEntry::new("key_a", secret(1), 0, None, None)]);
    let debug = format!("{ring:?}");
    assert!(debug.contains("key_a") && debug.contains("[redacted]"));
    assert!(!debug.contains("secret_number"));
}

#[test]
fn errors_never_echo_the_signature_or_secret() {
    let ring = KeyRing::new(vec![KeyEntry::new("key_a", secret(1), 0, None, None)]);
    let pasted = secret(1).expose().to_owned();
    let err = ring.verify_signature(b"u", &pasted, NOW).unwrap_err();
    assert!(!err.to_string().contains(&pasted));
}
