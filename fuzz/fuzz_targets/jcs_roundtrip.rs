//! Attributes: strict parsing then RFC 8785 canonicalisation never panics, and the
//! canonical form is a fixed point (re-parsed and re-canonicalised it is identical).
//!
//! One documented exception (vouch-core's own property test leaves it out too): an
//! integral double in (2^53, 1e21), e.g. `1e20`, is accepted, but JCS writes it as an
//! integer literal (`100000000000000000000`), which the strict parser refuses.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use vouch_core::jcs::{MAX_SAFE_INTEGER, canonicalize, parse_attributes};

/// Whether `v` holds a double that JCS writes as an integer literal beyond 2^53.
fn has_big_integral_double(v: &Value) -> bool {
    match v {
        Value::Number(n) if n.is_f64() => n.as_f64().is_some_and(|f| {
            f.fract() == 0.0 && f.abs() > MAX_SAFE_INTEGER as f64 && f.abs() < 1e21
        }),
        Value::Array(a) => a.iter().any(has_big_integral_double),
        Value::Object(m) => m.values().any(has_big_integral_double),
        _ => false,
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(attributes) = parse_attributes(text) else {
        return;
    };
    // A parser that accepted the text agrees with serde_json about its value.
    let loose: serde_json::Map<String, Value> =
        serde_json::from_str(text).expect("strict implies valid JSON");
    assert_eq!(loose, attributes, "strict and serde_json parses differ");
    let Ok(canonical) = canonicalize(&attributes) else {
        return;
    };
    match parse_attributes(&canonical) {
        Ok(again) => {
            let twice = canonicalize(&again).unwrap_or_else(|e| {
                panic!("canonical form {canonical:?} does not canonicalise: {e}")
            });
            assert_eq!(canonical, twice, "canonicalisation is not idempotent");
        }
        Err(e) => assert!(
            has_big_integral_double(&Value::Object(attributes.clone())),
            "canonical form {canonical:?} does not parse: {e}"
        ),
    }
});
