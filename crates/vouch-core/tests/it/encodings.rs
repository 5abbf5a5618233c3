//! Signature encodings: the three accepted forms, and everything else refused as Malformed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use vouch_core::encoding::{decode_signature, encode_mac};
use vouch_core::{ProofError, SignatureEncoding};

const MAC: [u8; 32] = [
    0x00, 0x01, 0x7f, 0x80, 0xfe, 0xff, 0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf0, 0x0f, 0xa5,
    0x5a, 0xc3, 0x3c, 0x99, 0x66, 0x10, 0x20, 0x30, 0x40, 0x50, 0x60, 0x70, 0x80, 0x90, 0xa0, 0xfb,
];

fn is_malformed(s: &str) -> bool {
    matches!(decode_signature(s), Err(ProofError::Malformed(_)))
}

#[test]
fn the_three_encodings_are_accepted() {
    let hex = encode_mac(&MAC, SignatureEncoding::Hex);
    let b64 = encode_mac(&MAC, SignatureEncoding::Base64);
    let url = encode_mac(&MAC, SignatureEncoding::Base64Url);
    assert_eq!(
        hex,
        "00017f80feff123456789abcdef00fa55ac33c9966102030405060708090a0fb"
    );
    assert_eq!(b64, "AAF/gP7/EjRWeJq83vAPpVrDPJlmECAwQFBgcICQoPs=");
    assert_eq!(url, "AAF_gP7_EjRWeJq83vAPpVrDPJlmECAwQFBgcICQoPs");
    for s in [&hex, &b64, &url] {
        assert_eq!(decode_signature(s), Ok(MAC), "{s}");
    }
}

#[test]
fn uppercase_and_mixed_case_hex_are_accepted() {
    let hex = encode_mac(&MAC, SignatureEncoding::Hex);
    assert_eq!(decode_signature(&hex.to_uppercase()), Ok(MAC));
    let mixed: String = hex
        .chars()
        .enumerate()
        .map(|(i, c)| {
            if i % 2 == 0 {
                c.to_ascii_uppercase()
            } else {
                c
            }
        })
        .collect();
    assert_eq!(decode_signature(&mixed), Ok(MAC));
}

#[test]
fn every_other_length_is_malformed() {
    for len in 0..=300 {
        if matches!(len, 43 | 44 | 64) {
            continue;
        }
        assert!(is_malformed(&"a".repeat(len)), "length {len}");
        assert!(is_malformed(&"A".repeat(len)), "length {len}");
    }
}

#[test]
fn every_foreign_character_in_hex_is_malformed() {
    let hex = encode_mac(&MAC, SignatureEncoding::Hex);
    for pos in [0, 1, 31, 62, 63] {
        for c in (0u8..128).filter(|c| !c.is_ascii_hexdigit()) {
            let mut bytes = hex.clone().into_bytes();
            bytes[pos] = c;
            let s = String::from_utf8(bytes).unwrap();
            assert!(is_malformed(&s), "char {c} at {pos}");
        }
    }
}

#[test]
fn every_foreign_character_in_base64_is_malformed() {
    let std = encode_mac(&MAC, SignatureEncoding::Base64);
    let url = encode_mac(&MAC, SignatureEncoding::Base64Url);
    let std_ok = |c: u8| c.is_ascii_alphanumeric() || c == b'+' || c == b'/';
    let url_ok = |c: u8| c.is_ascii_alphanumeric() || c == b'-' || c == b'_';
    for (sig, ok) in [(&std, &std_ok as &dyn Fn(u8) -> bool), (&url, &url_ok)] {
        for pos in [0, 1, 20, 41] {
            for c in (0u8..128).filter(|&c| !ok(c)) {
                let mut bytes = sig.clone().into_bytes();
                bytes[pos] = c;
                let s = String::from_utf8(bytes).unwrap();
                assert!(is_malformed(&s), "char {c} at {pos} in {sig}");
            }
        }
    }
}

#[test]
fn base64_padding_and_trailing_bits_are_strict() {
    let std = encode_mac(&MAC, SignatureEncoding::Base64);
    // Missing padding, padding in the URL form, or a non-canonical last character.
    assert!(is_malformed(&std[..43]) || decode_signature(&std[..43]) != Ok(MAC));
    assert!(is_malformed(&format!("{}=", &std[..42])));
    let noncanonical = format!("{}t=", &std[..42]); // "s" -> "t" sets an unused bit
    assert!(is_malformed(&noncanonical));
    // Standard and URL alphabets are not mixed.
    assert!(is_malformed(&std.replace('/', "_")));
}

#[test]
fn non_ascii_input_is_malformed_without_panicking() {
    for s in [
        "é".repeat(32),
        "€".repeat(21) + "a",
        "😀".repeat(16),
        "ａ".repeat(21) + "a",
    ] {
        let _ = decode_signature(&s);
    }
    assert!(is_malformed(&"é".repeat(32)));
}

#[test]
fn other_hash_lengths_are_named() {
    let msg = |s: &str| match decode_signature(s) {
        Err(ProofError::Malformed(m)) => m,
        other => panic!("{other:?}"),
    };
    assert!(msg(&"ab".repeat(20)).contains("looks like SHA-1"));
    assert!(msg(&"ab".repeat(16)).contains("looks like MD5"));
    assert!(msg(&"AB".repeat(64)).contains("looks like SHA-512"));
    let generic = msg("nope");
    for part in [
        "64 hex",
        "44 characters of standard base64",
        "43 characters of URL-safe base64",
    ] {
        assert!(generic.contains(part), "{generic}");
    }
}
