//! RFC 4231 HMAC-SHA256 test vectors, through every MAC path of the crate.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use vouch_core::proof::hmac_sha256;
use vouch_core::{KeyEntry, KeyRing, Secret, SignatureEncoding};

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// (key, data, HMAC-SHA256) from RFC 4231 section 4 (test case 5 is truncated there).
fn vectors() -> Vec<(Vec<u8>, Vec<u8>, &'static str)> {
    vec![
        (
            vec![0x0b; 20],
            b"Hi There".to_vec(),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7",
        ),
        (
            b"Jefe".to_vec(),
            b"what do ya want for nothing?".to_vec(),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
        ),
        (
            vec![0xaa; 20],
            vec![0xdd; 50],
            "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe",
        ),
        (
            (1..=25).collect(),
            vec![0xcd; 50],
            "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b",
        ),
        (
            vec![0x0c; 20],
            b"Test With Truncation".to_vec(),
            "a3b6167473100ee06e0c796c2955552b",
        ),
        (
            vec![0xaa; 131],
            b"Test Using Larger Than Block-Size Key - Hash Key First".to_vec(),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54",
        ),
        (
            vec![0xaa; 131],
            b"This is a test using a larger than block-size key and a larger than block-size data. The key needs to be hashed before being used by the HMAC algorithm.".to_vec(),
            "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2",
        ),
    ]
}

#[test]
fn rfc4231_vectors_match_raw_hmac() {
    for (key, data, want) in vectors() {
        let mac = hmac_sha256(&key, &data);
        assert_eq!(mac[..want.len() / 2], hex(want)[..], "key {key:02x?}");
    }
}

#[test]
fn rfc4231_vectors_match_pre_keyed_entries_and_sign() {
    // Secrets are strings, so only the vectors whose key is valid UTF-8 apply here.
    for (key, data, want) in vectors() {
        let Ok(key) = String::from_utf8(key) else {
            continue;
        };
        let secret = Secret::new(key);
        let entry = KeyEntry::new("key_1", secret.clone(), 0, None, None);
        let mac = entry.mac(&data);
        assert_eq!(mac[..want.len() / 2], hex(want)[..]);
        if want.len() == 64 {
            assert_eq!(
                vouch_core::proof::sign(&secret, &data, SignatureEncoding::Hex),
                want
            );
            let ring = KeyRing::new(vec![entry]);
            assert_eq!(ring.verify_signature(&data, want, 0), Ok("key_1"));
            assert_eq!(
                ring.verify_signature(&data, &want.to_uppercase(), 0),
                Ok("key_1")
            );
        }
    }
}

#[test]
fn pre_keyed_state_matches_fresh_hmac_at_block_boundaries() {
    let secrets = ["short-key-16byte", &"k".repeat(64), &"long".repeat(40)];
    for s in secrets {
        let entry = KeyEntry::new("k", Secret::new(s), 0, None, None);
        for len in [0, 1, 54, 55, 56, 57, 63, 64, 65, 119, 120, 128, 200, 1000] {
            let msg: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
            assert_eq!(
                entry.mac(&msg),
                hmac_sha256(s.as_bytes(), &msg),
                "len {len}"
            );
            assert!(entry.verify(&msg, &hmac_sha256(s.as_bytes(), &msg)));
        }
    }
}
