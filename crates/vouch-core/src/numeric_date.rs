//! RFC 7519 NumericDate: the `exp`, `nbf` and `iat` claims of an identity token.
//!
//! A NumericDate is any JSON number of seconds since 1970, integer or not: PyJWT with
//! `time.time()` and JavaScript's `Date.now() / 1000` write `1796163605.5`. The claims are
//! kept as whole seconds, rounded so that a fraction never extends a token's life: `exp`
//! rounds down and `nbf` rounds up (a token with `exp: 1000.5` is refused from `now = 1061`
//! on, one with `nbf: 1000.5` is accepted from `now = 941`, given the 60 s leeway). `iat`
//! is informative and rounds down.
//!
//! The rounding is done on the decimal text, never through `f64`: a binary double would
//! round `1796163605.99999999999` up to `1796163606` and give the token an extra second.

use serde_json::value::RawValue;

use crate::error::ProofError;

/// Largest accepted magnitude, 2^53 seconds (beyond it no JSON parser agrees on the value,
/// and it is some 285 million years away).
pub const NUMERIC_DATE_LIMIT: u64 = 1 << 53;

/// A time claim, and how its fraction is rounded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TimeClaim {
    /// Expiry: rounded down; must not be negative.
    Exp,
    /// Not-before: rounded up.
    Nbf,
    /// Issued-at: rounded down.
    Iat,
}

impl TimeClaim {
    fn name(self) -> &'static str {
        match self {
            Self::Exp => "exp",
            Self::Nbf => "nbf",
            Self::Iat => "iat",
        }
    }

    /// Whole seconds for `raw` (the claim's JSON text, as it appears in the token).
    pub(crate) fn seconds(self, raw: &RawValue) -> Result<i64, ProofError> {
        let text = raw.get().trim();
        let Some((floor, ceil)) = whole_seconds(text) else {
            return Err(self.error(match text.bytes().next() {
                Some(b'-' | b'0'..=b'9') => "is out of range: a NumericDate lies within ±2^53 seconds of 1970".to_owned(),
                first => format!(
                    "must be a JSON number of seconds since 1970 (a NumericDate such as 1796163605 or 1796163605.5), not {}",
                    match first {
                        Some(b'"') => "a string",
                        Some(b't' | b'f') => "a boolean",
                        Some(b'{') => "an object",
                        Some(b'[') => "an array",
                        _ => "this value",
                    }
                ),
            }));
        };
        match self {
            Self::Exp if floor < 0 => {
                Err(self
                    .error("is negative: exp is the expiry time in seconds since 1970".to_owned()))
            }
            Self::Exp | Self::Iat => Ok(floor),
            Self::Nbf => Ok(ceil),
        }
    }

    /// Checks a value about to be issued (the same bounds as [`Self::seconds`]).
    pub(crate) fn check_issued(self, value: i64) -> Result<(), ProofError> {
        if value.unsigned_abs() > NUMERIC_DATE_LIMIT {
            return Err(self.error(
                "is out of range: a NumericDate lies within ±2^53 seconds of 1970".to_owned(),
            ));
        }
        if self == Self::Exp && value < 0 {
            return Err(
                self.error("is negative: exp is the expiry time in seconds since 1970".to_owned())
            );
        }
        Ok(())
    }

    fn error(self, what: String) -> ProofError {
        ProofError::TokenMalformed(format!("the {} claim {what}", self.name()))
    }
}

/// `(floor, ceil)` of the JSON number `text`, computed exactly on its digits; `None` when
/// `text` is not a JSON number or its magnitude exceeds [`NUMERIC_DATE_LIMIT`].
fn whole_seconds(text: &str) -> Option<(i64, i64)> {
    let (negative, unsigned) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (mantissa, exponent) = match unsigned.find(['e', 'E']) {
        Some(at) => (&unsigned[..at], Some(&unsigned[at + 1..])),
        None => (unsigned, None),
    };
    let (int_digits, frac_digits) = match mantissa.split_once('.') {
        Some((int, frac)) if !frac.is_empty() => (int, frac),
        Some(_) => return None,
        None => (mantissa, ""),
    };
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if int_digits.is_empty() || !all_digits(int_digits) || !all_digits(frac_digits) {
        return None;
    }
    let exponent = match exponent {
        None => 0,
        Some(e) => parse_exponent(e)?,
    };

    // value = 0.d1 d2 d3 … × 10^point, with d1 the first non-zero digit.
    let digits: Vec<u8> = int_digits.bytes().chain(frac_digits.bytes()).collect();
    let Some(first) = digits.iter().position(|&d| d != b'0') else {
        return Some((0, 0));
    };
    let digits = &digits[first..];
    let point = i64::try_from(int_digits.len()).ok()? + exponent - i64::try_from(first).ok()?;
    // 10^16 > 2^53: anything with more than 16 integer digits is out of range.
    if point > 16 {
        return None;
    }
    let (whole, fraction) = if point <= 0 {
        (0u64, true)
    } else {
        let p = usize::try_from(point).ok()?;
        let mut whole = 0u64;
        for i in 0..p {
            let d = digits.get(i).map_or(0, |d| u64::from(d - b'0'));
            whole = whole * 10 + d;
        }
        (whole, digits.iter().skip(p).any(|&d| d != b'0'))
    };
    if whole > NUMERIC_DATE_LIMIT || (whole == NUMERIC_DATE_LIMIT && fraction) {
        return None;
    }
    // Within ±2^53, so both fit an i64.
    let whole = i64::try_from(whole).ok()?;
    let up = i64::from(fraction);
    Some(if negative {
        (-(whole + up), -whole)
    } else {
        (whole, whole + up)
    })
}

/// An exponent `[+-]digits`, saturated at ±10 000 (far beyond any value that can be in
/// range, or that is not simply a fraction of a second).
fn parse_exponent(text: &str) -> Option<i64> {
    let (sign, digits) = match text.as_bytes().first() {
        Some(b'-') => (-1, &text[1..]),
        Some(b'+') => (1, &text[1..]),
        _ => (1, text),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let magnitude = digits
        .bytes()
        .fold(0i64, |acc, b| (acc * 10 + i64::from(b - b'0')).min(10_000));
    Some(sign * magnitude)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_round_to_themselves() {
        for (text, v) in [
            ("0", 0),
            ("-0", 0),
            ("1796163605", 1_796_163_605),
            ("-42", -42),
            ("9007199254740992", 9_007_199_254_740_992),
            ("1796163605.0", 1_796_163_605),
            ("1.796163605e9", 1_796_163_605),
            ("17961636050E-1", 1_796_163_605),
            ("0.0e5", 0),
        ] {
            assert_eq!(whole_seconds(text), Some((v, v)), "{text}");
        }
    }

    #[test]
    fn fractions_round_down_and_up_exactly() {
        for (text, floor, ceil) in [
            ("1796163605.5", 1_796_163_605, 1_796_163_606),
            (
                "1796163605.99999999999999999999",
                1_796_163_605,
                1_796_163_606,
            ),
            (
                "1796163605.00000000000000000001",
                1_796_163_605,
                1_796_163_606,
            ),
            ("-1.5", -2, -1),
            ("0.25", 0, 1),
            ("-0.25", -1, 0),
            ("1e-400", 0, 1),
            ("17961636055e-1", 1_796_163_605, 1_796_163_606),
            (
                "9007199254740991.5",
                9_007_199_254_740_991,
                9_007_199_254_740_992,
            ),
        ] {
            assert_eq!(whole_seconds(text), Some((floor, ceil)), "{text}");
        }
    }

    #[test]
    fn beyond_two_to_the_53_or_not_a_number_is_none() {
        for text in [
            "9007199254740993",
            "9007199254740992.5",
            "-9007199254740993",
            "1e16",
            "1e400",
            "1e99999999999999999999",
            "9223372036854775807",
            "\"1796163605\"",
            "true",
            "null",
            "[1]",
            "1.",
            ".5",
            "1e",
            "1e+",
            "--1",
            "",
        ] {
            assert_eq!(whole_seconds(text), None, "{text}");
        }
    }

    fn raw(text: &str) -> Box<RawValue> {
        RawValue::from_string(text.to_owned()).unwrap()
    }

    #[test]
    fn each_claim_rounds_its_own_way_and_names_itself_in_errors() {
        assert_eq!(TimeClaim::Exp.seconds(&raw("10.9")), Ok(10));
        assert_eq!(TimeClaim::Nbf.seconds(&raw("10.1")), Ok(11));
        assert_eq!(TimeClaim::Iat.seconds(&raw("10.9")), Ok(10));
        assert_eq!(TimeClaim::Nbf.seconds(&raw("-10.5")), Ok(-10));
        let message = |r: Result<i64, ProofError>| match r {
            Err(ProofError::TokenMalformed(m)) => m,
            other => panic!("{other:?}"),
        };
        let m = message(TimeClaim::Exp.seconds(&raw("-1")));
        assert!(m.contains("exp") && m.contains("negative"), "{m}");
        let m = message(TimeClaim::Nbf.seconds(&raw("\"soon\"")));
        assert!(m.contains("nbf") && m.contains("a string"), "{m}");
        let m = message(TimeClaim::Iat.seconds(&raw("1e300")));
        assert!(m.contains("iat") && m.contains("out of range"), "{m}");
    }
}
