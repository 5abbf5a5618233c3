//! RFC 8785 canonical JSON: RFC examples, vectors from Node's JSON.stringify, strictness.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use vouch_core::ProofError;
use vouch_core::jcs::{canonicalize, check_attributes, parse_attributes};
use vouch_core::proof::{sign, sign_attributes};
use vouch_core::{KeyEntry, KeyRing, Secret, SignatureEncoding};

fn canon(json: &str) -> String {
    canonicalize(&parse_attributes(json).unwrap()).unwrap()
}

#[test]
fn rfc8785_section_3_2_2_example() {
    let input = r#"{
      "numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],
      "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
      "literals": [null, true, false]
    }"#;
    assert_eq!(
        canon(input),
        r#"{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"string":"€$\u000f\nA'B\"\\\\\"/"}"#
    );
}

#[test]
fn rfc8785_sorting_example() {
    let input = r#"{
      "\u20ac": "Euro Sign", "\r": "Carriage Return", "\ufb33": "Hebrew Letter Dalet With Dagesh",
      "1": "One", "\ud83d\ude00": "Emoji: Grinning Face", "\u0080": "Control",
      "\u00f6": "Latin Small Letter O With Diaeresis"
    }"#;
    let keys: Vec<String> = {
        let c = canon(input);
        let v: serde_json::Value = serde_json::from_str(&c).unwrap();
        // serde_json's map is sorted by UTF-8, so read the order from the text instead.
        let mut order: Vec<(usize, String)> = v
            .as_object()
            .unwrap()
            .keys()
            .map(|k| {
                (
                    c.find(&serde_json::to_string(k).unwrap()).unwrap(),
                    k.clone(),
                )
            })
            .collect();
        order.sort();
        order.into_iter().map(|(_, k)| k).collect()
    };
    assert_eq!(
        keys,
        [
            "\r",
            "1",
            "\u{80}",
            "\u{f6}",
            "\u{20ac}",
            "\u{1f600}",
            "\u{fb33}"
        ]
    );
}

#[test]
fn keys_sort_by_utf16_code_units() {
    // U+1F600 is the surrogate pair D83D DE00, so it sorts before U+FB33.
    assert_eq!(
        canon(r#"{"\u00e9":1,"\ud83d\ude00":2,"\ufb33":3,"a":4,"B":5}"#),
        "{\"B\":5,\"a\":4,\"\u{e9}\":1,\"\u{1f600}\":2,\"\u{fb33}\":3}"
    );
}

#[test]
fn numbers_take_their_ecmascript_form() {
    assert_eq!(
        canon(r#"{"n":[1e21,1e-7,0.1,-0,5e-324,9007199254740992.0,1.0,-0.0,100,1E2,0.000001]}"#),
        r#"{"n":[1e+21,1e-7,0.1,0,5e-324,9007199254740992,1,0,100,100,0.000001]}"#
    );
}

#[test]
fn node_json_stringify_vectors() {
    // Produced by tests/data/jcs_vectors.js under Node.
    let lines = include_str!("../data/jcs_vectors.jsonl");
    let mut n = 0;
    for line in lines.lines().filter(|l| !l.is_empty()) {
        let [input, want]: [String; 2] = serde_json::from_str(line).unwrap();
        assert_eq!(canon(&input), want, "input {input}");
        n += 1;
    }
    assert!(n >= 6);
}

#[test]
fn duplicate_keys_are_refused_at_any_depth() {
    for json in [
        r#"{"a":1,"a":1}"#,
        r#"{"a":{"b":1,"b":2}}"#,
        r#"{"a":[{"c":1},{"c":1,"c":2}]}"#,
        r#"{"\u0061":1,"a":2}"#,
    ] {
        assert!(
            matches!(parse_attributes(json), Err(ProofError::InvalidAttributes(m)) if m.contains("duplicate")),
            "{json}"
        );
    }
}

#[test]
fn unsafe_integers_are_refused() {
    assert!(parse_attributes(r#"{"a":9007199254740992}"#).is_ok());
    assert!(parse_attributes(r#"{"a":-9007199254740992}"#).is_ok());
    for json in [
        r#"{"a":9007199254740993}"#,
        r#"{"a":-9007199254740993}"#,
        r#"{"a":[1,{"b":18446744073709551615}]}"#,
        r#"{"a":123456789012345678901234567890}"#,
    ] {
        let err = parse_attributes(json).unwrap_err();
        assert_eq!(err.code(), "invalid_request", "{json}");
        assert!(err.to_string().contains("2^53"), "{err}");
    }
    // Numbers with a fraction or an exponent are doubles in every parser: one canonical form.
    assert!(parse_attributes(r#"{"a":9007199254740993.0,"b":1e300,"c":1e21,"d":1e20}"#).is_ok());
    assert_eq!(
        canon(r#"{"a":1e20,"b":1.5e17}"#),
        r#"{"a":100000000000000000000,"b":150000000000000000}"#
    );
}

#[test]
fn checked_maps_refuse_unsafe_integers_too() {
    let mut m = serde_json::Map::new();
    m.insert("id".into(), serde_json::json!(9_007_199_254_740_993u64));
    assert!(check_attributes(&m).is_err());
    assert!(canonicalize(&m).is_err());
    let secret = Secret::new("0123456789abcdef");
    assert!(sign_attributes(&secret, &m, SignatureEncoding::Hex).is_err());
}

#[test]
fn only_objects_are_attributes() {
    for json in ["[]", "1", "\"x\"", "null", "", "{", r#"{"a":1} x"#] {
        assert!(
            matches!(
                parse_attributes(json),
                Err(ProofError::InvalidAttributes(_))
            ),
            "{json}"
        );
    }
}

#[test]
fn attributes_signature_round_trips_through_the_key_ring() {
    let secret = Secret::new("sk_test_attributes_secret");
    let ring = KeyRing::new(vec![KeyEntry::new("key_a", secret.clone(), 0, None, None)]);
    let attrs = parse_attributes(r#"{"plan":"pro","email":"ada@example.com","seats":3}"#).unwrap();
    let canonical = r#"{"email":"ada@example.com","plan":"pro","seats":3}"#;
    for enc in [
        SignatureEncoding::Hex,
        SignatureEncoding::Base64,
        SignatureEncoding::Base64Url,
    ] {
        let sig = sign_attributes(&secret, &attrs, enc).unwrap();
        assert_eq!(sig, sign(&secret, canonical.as_bytes(), enc));
        assert_eq!(ring.verify_attributes(&attrs, &sig, 0), Ok("key_a"));
    }
    let mut changed = attrs.clone();
    changed.insert("plan".into(), "enterprise".into());
    let sig = sign_attributes(&secret, &attrs, SignatureEncoding::Hex).unwrap();
    assert_eq!(
        ring.verify_attributes(&changed, &sig, 0),
        Err(ProofError::InvalidSignature)
    );
}
