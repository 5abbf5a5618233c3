//! vouch-core against the committed test vectors (`vectors/vectors.json`), which Node,
//! Python, Ruby, PHP and Go compute independently (`vectors/check.sh`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::Value;
use vouch_core::jcs::{canonicalize, parse_attributes};
use vouch_core::proof::{sign, sign_attributes};
use vouch_core::token::verify_identity_token;
use vouch_core::{IdentityClaims, KeyEntry, KeyRing, ProofError, Secret, SignatureEncoding};

const VECTORS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../vectors/vectors.json");

const ENCODINGS: [(SignatureEncoding, &str); 3] = [
    (SignatureEncoding::Hex, "hex"),
    (SignatureEncoding::Base64, "base64"),
    (SignatureEncoding::Base64Url, "base64url"),
];

fn vectors() -> Value {
    let text = std::fs::read_to_string(VECTORS).expect("vectors/vectors.json is readable");
    serde_json::from_str(&text).expect("vectors/vectors.json is JSON")
}

fn section(name: &str) -> Vec<Value> {
    let entries = vectors()[name].as_array().cloned().unwrap_or_default();
    assert!(!entries.is_empty(), "vectors.json has no {name}");
    entries
}

fn str_field<'a>(v: &'a Value, field: &str) -> &'a str {
    v[field]
        .as_str()
        .unwrap_or_else(|| panic!("vector {} has no string {field}", v["id"]))
}

fn ring(id: &str, secret: &str) -> KeyRing {
    KeyRing::new(vec![KeyEntry::new(id, Secret::new(secret), 0, None, None)])
}

const NOW: i64 = 1_700_000_000;

#[test]
fn signatures_match_every_runtime_in_every_encoding() {
    for v in section("signatures") {
        let secret = Secret::new(str_field(&v, "secret"));
        let message = str_field(&v, "message").as_bytes();
        for (encoding, field) in ENCODINGS {
            assert_eq!(
                sign(&secret, message, encoding),
                str_field(&v, field),
                "{} ({field})",
                v["id"]
            );
        }
    }
}

#[test]
fn key_ring_accepts_every_encoding_and_uppercase_hex() {
    for v in section("signatures") {
        let keys = ring("key_vectors", str_field(&v, "secret"));
        let message = str_field(&v, "message").as_bytes();
        let hex = str_field(&v, "hex");
        let forms = [
            hex.to_owned(),
            hex.to_ascii_uppercase(),
            str_field(&v, "base64").to_owned(),
            str_field(&v, "base64url").to_owned(),
        ];
        for form in &forms {
            assert_eq!(
                keys.verify_signature(message, form, NOW),
                Ok("key_vectors"),
                "{} refused {form}",
                v["id"]
            );
        }
        // The same signature for any other message fails (here: one byte appended).
        let mut other = message.to_vec();
        other.push(b'x');
        assert_eq!(
            keys.verify_signature(&other, hex, NOW),
            Err(ProofError::InvalidSignature),
            "{}",
            v["id"]
        );
    }
}

#[test]
fn canonical_form_equals_node_byte_for_byte() {
    for v in section("attributes") {
        let attributes =
            parse_attributes(str_field(&v, "json")).unwrap_or_else(|e| panic!("{}: {e}", v["id"]));
        let ours = canonicalize(&attributes).unwrap_or_else(|e| panic!("{}: {e}", v["id"]));
        let node = str_field(&v, "canonical");
        if ours != node {
            let at = ours
                .bytes()
                .zip(node.bytes())
                .position(|(a, b)| a != b)
                .unwrap_or(ours.len().min(node.len()));
            panic!(
                "{}: canonical form differs from Node's at byte {at}\n  ours: {ours}\n  node: {node}",
                v["id"]
            );
        }
    }
}

#[test]
fn attribute_signatures_match_every_runtime() {
    for v in section("attributes") {
        let secret = Secret::new(str_field(&v, "secret"));
        let attributes = parse_attributes(str_field(&v, "json")).unwrap();
        let keys = ring("key_vectors", str_field(&v, "secret"));
        for (encoding, field) in ENCODINGS {
            let expected = str_field(&v, field);
            assert_eq!(
                sign_attributes(&secret, &attributes, encoding).unwrap(),
                expected,
                "{} ({field})",
                v["id"]
            );
            assert_eq!(
                keys.verify_attributes(&attributes, expected, NOW),
                Ok("key_vectors"),
                "{} ({field})",
                v["id"]
            );
        }
    }
}

/// The claims as the vectors state them.
fn expected_claims(v: &Value) -> IdentityClaims {
    serde_json::from_value(v["claims"].clone())
        .unwrap_or_else(|e| panic!("{}: claims do not parse: {e}", v["id"]))
}

#[test]
fn tokens_verify_inside_their_validity_and_yield_their_claims() {
    for v in section("tokens") {
        let id = &v["id"];
        let secret = Secret::new(str_field(&v, "secret"));
        let token = str_field(&v, "token");
        let now = v["valid_at"].as_i64().unwrap();
        let expected = expected_claims(&v);
        let sub = expected.sub.as_str();

        let claims = verify_identity_token(&secret, token, Some(sub), now)
            .unwrap_or_else(|e| panic!("{id}: {e}"));
        assert_eq!(claims, expected, "{id}");
        assert_eq!(
            claims.attributes.map(Value::Object),
            v["claims"].get("attributes").cloned(),
            "{id}"
        );

        // Through a key ring too; a `kid` header must name the key.
        let key_id = v["kid"].as_str().unwrap_or("key_any");
        let keys = ring(key_id, str_field(&v, "secret"));
        let (matched, _) = keys
            .verify_token(token, Some(sub), now)
            .unwrap_or_else(|e| panic!("{id}: {e}"));
        assert_eq!(matched, key_id, "{id}");
    }
}

#[test]
fn tokens_are_refused_outside_their_validity_or_for_another_user() {
    for v in section("tokens") {
        let id = &v["id"];
        let secret = Secret::new(str_field(&v, "secret"));
        let token = str_field(&v, "token");
        let now = v["valid_at"].as_i64().unwrap();
        let IdentityClaims { sub, exp, nbf, .. } = expected_claims(&v);

        if let Some(exp) = exp {
            assert_eq!(
                verify_identity_token(&secret, token, Some(&sub), exp + 61),
                Err(ProofError::TokenExpired),
                "{id}"
            );
        }
        if let Some(nbf) = nbf {
            assert_eq!(
                verify_identity_token(&secret, token, Some(&sub), nbf - 61),
                Err(ProofError::TokenNotYetValid),
                "{id}"
            );
        }
        assert_eq!(
            verify_identity_token(&secret, token, Some(&format!("{sub} ")), now),
            Err(ProofError::TokenWrongSubject),
            "{id}"
        );
        assert_eq!(
            verify_identity_token(&Secret::new("another-secret-of-16+"), token, None, now),
            Err(ProofError::TokenBadSignature),
            "{id}"
        );
    }
}

#[test]
fn vectors_cover_the_promised_cases() {
    let messages: Vec<String> = section("signatures")
        .iter()
        .map(|v| str_field(v, "message").to_owned())
        .collect();
    assert!(messages.iter().any(|m| !m.is_ascii()), "a non-ASCII id");
    assert!(
        messages
            .iter()
            .any(|m| m.chars().any(|c| c as u32 > 0xFFFF)),
        "an emoji id"
    );
    assert!(
        messages.iter().any(|m| m.ends_with(' ')),
        "an id with a trailing space"
    );
    assert!(messages.iter().any(|m| m.len() == 255), "a 255-byte id");
    let secrets: Vec<String> = section("signatures")
        .iter()
        .map(|v| str_field(v, "secret").to_owned())
        .collect();
    assert!(secrets.iter().any(|s| s.starts_with("sk_test_")));
    assert!(
        secrets.iter().any(|s| s.len() == 16),
        "an imported 16-byte secret"
    );
    assert!(secrets.iter().any(|s| !s.is_ascii()), "a non-ASCII secret");
    let canonical: Vec<String> = section("attributes")
        .iter()
        .map(|v| str_field(v, "canonical").to_owned())
        .collect();
    for needle in ["1e+21", "1e-7", "5e-324", "\\u0001", "\u{2028}", "😀"] {
        assert!(
            canonical.iter().any(|c| c.contains(needle)),
            "no canonical form contains {needle}"
        );
    }
}
