//! Attributes: strict parsing then RFC 8785 canonicalisation never panics, and the
//! canonical form is a fixed point (re-parsed and re-canonicalised it is identical).
#![no_main]

use libfuzzer_sys::fuzz_target;
use vouch_core::jcs::{canonicalize, parse_attributes};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(attributes) = parse_attributes(text) else {
        return;
    };
    let Ok(canonical) = canonicalize(&attributes) else {
        return;
    };
    let again = parse_attributes(&canonical)
        .unwrap_or_else(|e| panic!("canonical form {canonical:?} does not parse: {e}"));
    let twice = canonicalize(&again)
        .unwrap_or_else(|e| panic!("canonical form {canonical:?} does not canonicalise: {e}"));
    assert_eq!(canonical, twice, "canonicalisation is not idempotent");
    // A parser that accepted the text agrees with serde_json about its value.
    let loose: serde_json::Value = serde_json::from_str(text).expect("strict implies valid JSON");
    assert!(loose.is_object());
});
