//! Signature decoding: never panics, agrees with a naive decoder, and a decoded MAC
//! re-encodes in every encoding to a string that decodes to the same MAC. The key ring
//! accepts a string only when it decodes to the true MAC.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use vouch_core::encoding::{decode_signature, encode_mac};
use vouch_core::{KeyEntry, KeyRing, Secret, SignatureEncoding};

const NOW: i64 = 1_700_000_000;
const SECRET: &str = "sk_test_fuzzFuzzFuzzFuzzFuzzFuzzFuzzFuzzFuzzFuzzFuzz";

static RING: LazyLock<KeyRing> = LazyLock::new(|| {
    KeyRing::new(vec![KeyEntry::new(
        "key_fuzz",
        Secret::new(SECRET),
        0,
        None,
        None,
    )])
});

/// Plain hex decoding (either case), for comparison with the SWAR decoder.
fn naive_hex(s: &str) -> Option<[u8; 32]> {
    let b = s.as_bytes();
    if b.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in b.chunks(2).enumerate() {
        let hi = (pair[0] as char).to_digit(16)?;
        let lo = (pair[1] as char).to_digit(16)?;
        out[i] = (hi * 16 + lo) as u8;
    }
    Some(out)
}

fuzz_target!(|data: &[u8]| {
    let s = String::from_utf8_lossy(data);
    let decoded = decode_signature(&s);
    if s.len() == 64 {
        assert_eq!(
            decoded.as_ref().ok(),
            naive_hex(&s).as_ref(),
            "hex decoding of {s:?}"
        );
    }
    match &decoded {
        Ok(mac) => {
            assert!(
                matches!(s.len(), 43 | 44 | 64),
                "accepted length {}",
                s.len()
            );
            for enc in [
                SignatureEncoding::Hex,
                SignatureEncoding::Base64,
                SignatureEncoding::Base64Url,
            ] {
                assert_eq!(decode_signature(&encode_mac(mac, enc)).as_ref(), Ok(mac));
            }
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }
    let verified = RING.verify_signature(b"user-42", &s, NOW);
    if verified.is_ok() {
        let truth = vouch_core::proof::mac(&Secret::new(SECRET), b"user-42");
        assert_eq!(decoded.as_ref().ok(), Some(&truth));
    }
});
