//! Property tests: sign → verify round-trips for any id in every encoding, and any
//! single-byte change of the id, the signature or the secret fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;
use vouch_core::jcs::{canonicalize, parse_attributes};
use vouch_core::proof::{hmac_sha256, sign};
use vouch_core::{KeyEntry, KeyRing, ProofError, Secret, SignatureEncoding};

const NOW: i64 = 1_700_000_000;

fn encoding() -> impl Strategy<Value = SignatureEncoding> {
    prop_oneof![
        Just(SignatureEncoding::Hex),
        Just(SignatureEncoding::Base64),
        Just(SignatureEncoding::Base64Url),
    ]
}

/// User ids: 1–255 bytes of any Unicode (ASCII, accents, CJK, emoji, controls).
fn user_id() -> impl Strategy<Value = String> {
    any::<String>().prop_filter("1..=255 bytes", |s| (1..=255).contains(&s.len()))
}

fn secret() -> impl Strategy<Value = String> {
    "[0-9A-Za-z_]{16,80}"
}

fn ring(secret: &str) -> KeyRing {
    KeyRing::new(vec![KeyEntry::new(
        "key_1",
        Secret::new(secret),
        0,
        None,
        None,
    )])
}

proptest! {
    // Regressions live beside this file (properties.proptest-regressions): proptest's
    // default would look in tests/proptest-regressions/, since tests/it has a main.rs.
    #![proptest_config(ProptestConfig {
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource("proptest-regressions"))),
        ..ProptestConfig::with_cases(512)
    })]

    #[test]
    fn sign_then_verify_round_trips(id in user_id(), key in secret(), enc in encoding()) {
        let sig = sign(&Secret::new(key.clone()), id.as_bytes(), enc);
        let r = ring(&key);
        prop_assert_eq!(r.verify_signature(id.as_bytes(), &sig, NOW), Ok("key_1"));
    }

    #[test]
    fn changing_one_byte_of_the_id_fails(
        id in user_id(), key in secret(), enc in encoding(), pos in any::<prop::sample::Index>(), delta in 1u8..=255,
    ) {
        let sig = sign(&Secret::new(key.clone()), id.as_bytes(), enc);
        let mut changed = id.into_bytes();
        let i = pos.index(changed.len());
        changed[i] = changed[i].wrapping_add(delta);
        let r = ring(&key);
        prop_assert_eq!(r.verify_signature(&changed, &sig, NOW), Err(ProofError::InvalidSignature));
    }

    #[test]
    fn changing_one_byte_of_the_signature_fails(
        id in user_id(), key in secret(), enc in encoding(), pos in any::<prop::sample::Index>(), replacement in 0u8..128,
    ) {
        let sig = sign(&Secret::new(key.clone()), id.as_bytes(), enc);
        let mut bytes = sig.into_bytes();
        let i = pos.index(bytes.len());
        // Hex is case-insensitive, so a change of case is the same signature.
        prop_assume!(!bytes[i].eq_ignore_ascii_case(&replacement));
        bytes[i] = replacement;
        let changed = String::from_utf8(bytes).unwrap();
        let r = ring(&key);
        let result = r.verify_signature(id.as_bytes(), &changed, NOW);
        prop_assert!(
            matches!(result, Err(ProofError::InvalidSignature | ProofError::Malformed(_))),
            "{:?}", result
        );
    }

    #[test]
    fn changing_one_byte_of_the_secret_fails(
        id in user_id(), key in secret(), enc in encoding(), pos in any::<prop::sample::Index>(), replacement in "[0-9A-Za-z_]",
    ) {
        let sig = sign(&Secret::new(key.clone()), id.as_bytes(), enc);
        let i = pos.index(key.len());
        prop_assume!(key[i..=i] != replacement);
        let mut changed = key.clone();
        changed.replace_range(i..=i, &replacement);
        let r = ring(&changed);
        prop_assert_eq!(r.verify_signature(id.as_bytes(), &sig, NOW), Err(ProofError::InvalidSignature));
    }

    #[test]
    fn pre_keyed_mac_equals_the_hmac_crate(key in any::<String>(), msg in prop::collection::vec(any::<u8>(), 0..300)) {
        let entry = KeyEntry::new("k", Secret::new(key.clone()), 0, None, None);
        prop_assert_eq!(entry.mac(&msg), hmac_sha256(key.as_bytes(), &msg));
    }

    #[test]
    fn canonical_form_is_a_fixed_point(map in prop::collection::btree_map("\\PC{0,6}", prop_oneof![
        any::<i32>().prop_map(serde_json::Value::from),
        // Integral doubles in (2^53, 1e21) are written by JCS as integer literals, which a
        // strict parse refuses; leave them out of the fixed-point property.
        any::<f64>()
            .prop_filter("finite, not an integer literal beyond 2^53 once canonical", |f| {
                f.is_finite() && (f.fract() != 0.0 || f.abs() <= 9007199254740992.0 || f.abs() >= 1e21)
            })
            .prop_map(serde_json::Value::from),
        "\\PC{0,8}".prop_map(serde_json::Value::from),
        any::<bool>().prop_map(serde_json::Value::from),
    ], 0..8)) {
        let attrs: serde_json::Map<String, serde_json::Value> = map.into_iter().collect();
        let canonical = canonicalize(&attrs).unwrap();
        let reparsed = parse_attributes(&canonical).unwrap();
        prop_assert_eq!(canonicalize(&reparsed).unwrap(), canonical);
    }
}
