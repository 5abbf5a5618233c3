//! Key formats: generation, checksum recognition, embedded secrets, imported secrets.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use vouch_core::Mode;
use vouch_core::keys::{
    KeyError, find_embedded_secrets, generate_admin_token, generate_id, generate_identity_secret,
    looks_like_secret, random_base62, sha256, validate_imported_secret,
};

const ALPHANUM: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

#[test]
fn generated_secrets_are_recognised() {
    for _ in 0..50 {
        for s in [
            generate_identity_secret(Mode::Test),
            generate_identity_secret(Mode::Live),
            generate_admin_token(),
        ] {
            assert!(looks_like_secret(s.expose()));
        }
    }
}

#[test]
fn every_one_character_change_is_rejected() {
    for s in [generate_identity_secret(Mode::Live), generate_admin_token()] {
        let original = s.expose().as_bytes().to_vec();
        for pos in 0..original.len() {
            for &c in ALPHANUM.iter().chain(b"_-+/=. ") {
                if c == original[pos] {
                    continue;
                }
                let mut changed = original.clone();
                changed[pos] = c;
                let changed = String::from_utf8(changed).unwrap();
                assert!(!looks_like_secret(&changed), "{pos} -> {}", c as char);
            }
        }
        // Truncated or extended by one character.
        let text = s.expose();
        assert!(!looks_like_secret(&text[..text.len() - 1]));
        assert!(!looks_like_secret(&format!("{text}a")));
    }
}

#[test]
fn lookalikes_are_rejected() {
    for s in [
        "",
        "sk_test_",
        "pk_test_abc",
        "whsec_abc",
        "sk_prod_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
        "vat_é",
    ] {
        assert!(!looks_like_secret(s), "{s}");
    }
}

#[test]
fn embedded_secrets_are_found() {
    let a = generate_identity_secret(Mode::Test);
    let b = generate_admin_token();
    let text = format!(
        "{{\"signature\":\"{}\",\"note\":\"x{}{}\",\"fake\":\"sk_test_{}\"}}",
        a.expose(),
        b.expose(),
        a.expose(),
        "z".repeat(49)
    );
    assert_eq!(
        find_embedded_secrets(&text),
        vec![a.expose(), b.expose(), a.expose()]
    );
    assert!(find_embedded_secrets("nothing to see, sk_test_ vat_ é").is_empty());
    // A secret with one character changed is not reported.
    let mut broken = a.expose().to_owned();
    broken.replace_range(10..11, if &broken[10..11] == "A" { "B" } else { "A" });
    assert!(find_embedded_secrets(&format!("hi {broken} there")).is_empty());
}

#[test]
fn imported_secrets_are_checked_by_length() {
    assert!(validate_imported_secret(&"x".repeat(16)).is_ok());
    assert!(validate_imported_secret(&"x".repeat(256)).is_ok());
    assert_eq!(
        validate_imported_secret(&"x".repeat(15)),
        Err(KeyError::ImportedSecretTooShort(15))
    );
    assert_eq!(
        validate_imported_secret(&"x".repeat(257)),
        Err(KeyError::ImportedSecretTooLong(257))
    );
    let msg = validate_imported_secret("short").unwrap_err().to_string();
    assert!(msg.contains("16 bytes"), "{msg}");
}

#[test]
fn ids_and_randomness() {
    for prefix in ["env", "key", "wh", "evt", "ses", "vis"] {
        let id = generate_id(prefix);
        assert_eq!(id.len(), prefix.len() + 1 + 24);
        assert!(id.starts_with(&format!("{prefix}_")));
    }
    assert_ne!(generate_id("env"), generate_id("env"));
    let r = random_base62(100);
    assert_eq!(r.len(), 100);
    assert!(r.bytes().all(|b| b.is_ascii_alphanumeric()));
    assert_eq!(random_base62(0), "");
    assert_eq!(
        sha256(b"abc")[..4],
        [0xba, 0x78, 0x16, 0xbf],
        "FIPS 180-2 example"
    );
}
