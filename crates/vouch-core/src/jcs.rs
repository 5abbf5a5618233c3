//! Attributes as signed JSON: strict parsing and RFC 8785 (JCS) canonical form.
//!
//! An `attributes_signature` is `HMAC-SHA256(secret, JCS(attributes))`. JCS sorts keys by
//! their UTF-16 code units, writes numbers as ECMAScript does and removes all whitespace.
//! Two inputs have no single canonical form, so they are refused: duplicate keys (which one
//! did the signer see?) and integers beyond ±2^53 (a JavaScript signer rounds them, a Python
//! or Go signer does not).

use core::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

use crate::error::ProofError;

/// Largest integer magnitude with one unambiguous canonical form: 2^53.
pub const MAX_SAFE_INTEGER: u64 = 1 << 53;

/// Parses an attributes object STRICTLY: the JSON must be an object, no object at any depth
/// may repeat a key, and no integer literal may exceed ±2^53. Numbers written with a
/// fraction or an exponent are doubles everywhere and pass.
///
/// ```
/// use vouch_core::jcs::parse_attributes;
/// assert!(parse_attributes(r#"{"plan":"pro","seats":3}"#).is_ok());
/// assert!(parse_attributes(r#"{"a":1,"a":2}"#).is_err());
/// assert!(parse_attributes(r#"{"id":9007199254740993}"#).is_err());
/// assert!(parse_attributes(r#"[1,2]"#).is_err());
/// ```
pub fn parse_attributes(json: &str) -> Result<Map<String, Value>, ProofError> {
    check_integer_literals(json)?;
    let mut de = serde_json::Deserializer::from_str(json);
    let value = StrictValue
        .deserialize(&mut de)
        .and_then(|v| de.end().map(|()| v))
        .map_err(|e| ProofError::InvalidAttributes(describe_json_error(&e)))?;
    match value {
        Value::Object(map) => Ok(map),
        _ => Err(ProofError::InvalidAttributes(
            "attributes must be a JSON object".to_owned(),
        )),
    }
}

/// Checks that already-parsed attributes have one canonical form: every integer within
/// ±2^53, at any depth (floats pass).
///
/// Duplicate keys cannot be detected here, since a parsed map already dropped them: parse
/// untrusted text with [`parse_attributes`].
pub fn check_attributes(value: &Map<String, Value>) -> Result<(), ProofError> {
    value
        .iter()
        .try_for_each(|(k, v)| check_value(v).map_err(|n| out_of_range(k, &n)))
}

/// The RFC 8785 canonical form of `attributes` (runs [`check_attributes`] first).
///
/// ```
/// use vouch_core::jcs::{canonicalize, parse_attributes};
/// let attrs = parse_attributes(r#"{ "b": 1.50, "a": [true, null, "x"] }"#).unwrap();
/// assert_eq!(canonicalize(&attrs).unwrap(), r#"{"a":[true,null,"x"],"b":1.5}"#);
/// ```
pub fn canonicalize(attributes: &Map<String, Value>) -> Result<String, ProofError> {
    check_attributes(attributes)?;
    serde_json_canonicalizer::to_string(attributes)
        .map_err(|e| ProofError::InvalidAttributes(format!("cannot canonicalise attributes: {e}")))
}

/// `Err(number)` for the first integer beyond ±2^53 inside `v`.
fn check_value(v: &Value) -> Result<(), Number> {
    match v {
        Value::Number(n) => {
            if number_in_range(n) {
                Ok(())
            } else {
                Err(n.clone())
            }
        }
        Value::Array(items) => items.iter().try_for_each(check_value),
        Value::Object(map) => map.values().try_for_each(check_value),
        Value::Null | Value::Bool(_) | Value::String(_) => Ok(()),
    }
}

/// Integers must be within ±2^53. Floats pass: a number written with a fraction or an
/// exponent (`0.1`, `1e20`, `1e21`) is a double in every JSON parser, with one canonical
/// form; only integer literals are read differently (exact in Python or Go, rounded in
/// JavaScript).
fn number_in_range(n: &Number) -> bool {
    if let Some(u) = n.as_u64() {
        u <= MAX_SAFE_INTEGER
    } else if let Some(i) = n.as_i64() {
        i.unsigned_abs() <= MAX_SAFE_INTEGER
    } else {
        true
    }
}

fn out_of_range(key: &str, n: &impl fmt::Display) -> ProofError {
    ProofError::InvalidAttributes(format!(
        "attribute {key:?} holds the integer {n}, beyond ±2^53 (9007199254740992): its canonical \
         form would be ambiguous; send it as a string"
    ))
}

/// Refuses integer literals (no fraction, no exponent) beyond ±2^53 anywhere in `json`,
/// including those too large for `u64`, which serde_json would silently turn into floats.
fn check_integer_literals(json: &str) -> Result<(), ProofError> {
    let b = json.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'"' => {
                // Skip the string, honouring backslash escapes.
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
                i += 1;
            }
            b'-' | b'0'..=b'9' => {
                let start = i;
                if b[i] == b'-' {
                    i += 1;
                }
                let digits_start = i;
                while i < b.len() && b[i].is_ascii_digit() {
                    i += 1;
                }
                let digits = &json[digits_start..i];
                let is_float = i < b.len() && matches!(b[i], b'.' | b'e' | b'E');
                if is_float {
                    while i < b.len()
                        && matches!(b[i], b'.' | b'e' | b'E' | b'+' | b'-' | b'0'..=b'9')
                    {
                        i += 1;
                    }
                } else if digits.len() >= 16 {
                    let trimmed = digits.trim_start_matches('0');
                    let too_big = trimmed.len() > 16
                        || trimmed
                            .parse::<u64>()
                            .map_or(true, |v| v > MAX_SAFE_INTEGER);
                    if too_big {
                        return Err(ProofError::InvalidAttributes(format!(
                            "the integer {} is beyond ±2^53 (9007199254740992): its canonical \
                             form would be ambiguous; send it as a string",
                            &json[start..i]
                        )));
                    }
                }
            }
            _ => i += 1,
        }
    }
    Ok(())
}

/// Turns a serde_json error into a message without echoing values.
fn describe_json_error(e: &serde_json::Error) -> String {
    let msg = e.to_string();
    if msg.contains("duplicate key") {
        msg
    } else {
        format!(
            "attributes are not valid JSON ({} at line {} column {})",
            match e.classify() {
                serde_json::error::Category::Eof => "unexpected end",
                serde_json::error::Category::Syntax => "syntax error",
                serde_json::error::Category::Data => "unexpected value",
                serde_json::error::Category::Io => "read error",
            },
            e.line(),
            e.column()
        )
    }
}

/// Deserialises any JSON value, refusing duplicate keys and unsafe integers at any depth.
#[derive(Clone, Copy)]
struct StrictValue;

impl<'de> DeserializeSeed<'de> for StrictValue {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for StrictValue {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        if v.unsigned_abs() > MAX_SAFE_INTEGER {
            return Err(E::custom(format!("the integer {v} is beyond ±2^53")));
        }
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        if v > MAX_SAFE_INTEGER {
            return Err(E::custom(format!("the integer {v} is beyond ±2^53")));
        }
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Number::from_f64(v)
            .map(Value::Number)
            .ok_or_else(|| E::custom("a number is not finite"))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
        while let Some(v) = seq.next_element_seed(self)? {
            items.push(v);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Value, A::Error> {
        let mut map = Map::new();
        while let Some(key) = access.next_key::<String>()? {
            if map.contains_key(&key) {
                return Err(de::Error::custom(format!(
                    "duplicate key {key:?}: each key may appear once per object"
                )));
            }
            let value = access.next_value_seed(self)?;
            map.insert(key, value);
        }
        Ok(Value::Object(map))
    }
}

/// serde `deserialize_with` helper for an optional attributes object, strict like
/// [`parse_attributes`] (used by identity token claims).
pub(crate) fn deserialize_strict_map<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Map<String, Value>>, D::Error> {
    match StrictValue.deserialize(deserializer)? {
        Value::Null => Ok(None),
        Value::Object(map) => Ok(Some(map)),
        _ => Err(de::Error::custom("attributes must be a JSON object")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integer_scanner_ignores_strings_and_floats() {
        assert!(check_integer_literals(r#"{"a":"12345678901234567890"}"#).is_ok());
        assert!(check_integer_literals(r#"{"a":1.2345678901234567890}"#).is_ok());
        assert!(check_integer_literals(r#"{"a":12345678901234567890e0}"#).is_ok());
        assert!(check_integer_literals(r#"{"a\"":9007199254740992}"#).is_ok());
        assert!(check_integer_literals(r#"{"a":-9007199254740993}"#).is_err());
        assert!(check_integer_literals(r#"{"a":[123456789012345678901234567890]}"#).is_err());
    }

    #[test]
    fn nested_duplicates_are_refused() {
        let err = parse_attributes(r#"{"a":{"b":1,"b":1}}"#);
        assert!(
            matches!(err, Err(ProofError::InvalidAttributes(m)) if m.contains("duplicate key \"b\""))
        );
    }

    #[test]
    fn check_attributes_finds_nested_big_integers() {
        let mut m = Map::new();
        m.insert("x".into(), serde_json::json!([{"y": 9007199254740993u64}]));
        assert!(check_attributes(&m).is_err());
        m.insert("x".into(), serde_json::json!([{"y": 9007199254740992u64}]));
        assert!(check_attributes(&m).is_ok());
    }
}
