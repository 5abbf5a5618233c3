//! Identity tokens: arbitrary strings, and correctly signed HS256 tokens around an
//! arbitrary payload (so the claims parser is reached), never panic; a token is accepted
//! only with a non-empty `sub` equal to the expected one.
#![no_main]

use std::sync::LazyLock;

use base64ct::{Base64UrlUnpadded, Encoding};
use libfuzzer_sys::fuzz_target;
use vouch_core::token::{token_kid, verify_identity_token};
use vouch_core::{KeyEntry, KeyRing, Secret, SignatureEncoding};

const NOW: i64 = 1_700_000_000;
const SECRET: &str = "sk_test_fuzzFuzzFuzzFuzzFuzzFuzzFuzzFuzzFuzzFuzzFuzz";

static RING: LazyLock<KeyRing> = LazyLock::new(|| {
    KeyRing::new(vec![
        KeyEntry::new("key_fuzz", Secret::new(SECRET), 0, None, None),
        KeyEntry::new(
            "key_old",
            Secret::new("an-imported-secret-0123"),
            0,
            Some(NOW - 1),
            None,
        ),
    ])
});

fn check(token: &str) {
    let _ = token_kid(token);
    let secret = Secret::new(SECRET);
    for expected in [None, Some("user-42")] {
        if let Ok(claims) = verify_identity_token(&secret, token, expected, NOW) {
            assert!(!claims.sub.is_empty());
            if let Some(e) = expected {
                assert_eq!(claims.sub, e);
            }
        }
        if let Ok((key_id, claims)) = RING.verify_token(token, expected, NOW) {
            assert_eq!(key_id, "key_fuzz", "only the active key verifies");
            assert!(!claims.sub.is_empty());
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode % 2 == 0 {
        check(&String::from_utf8_lossy(rest));
        return;
    }
    // A real HS256 signature over header.payload, the payload being the fuzz input.
    let header = if mode % 4 == 1 {
        r#"{"alg":"HS256","typ":"JWT"}"#
    } else {
        r#"{"alg":"HS256","kid":"key_fuzz"}"#
    };
    let signing_input = format!(
        "{}.{}",
        Base64UrlUnpadded::encode_string(header.as_bytes()),
        Base64UrlUnpadded::encode_string(rest)
    );
    let sig = vouch_core::proof::sign(
        &Secret::new(SECRET),
        signing_input.as_bytes(),
        SignatureEncoding::Base64Url,
    );
    check(&format!("{signing_input}.{sig}"));
});
