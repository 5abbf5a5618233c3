//! What the subcommands read from their surroundings: the secret in `VOUCH_SECRET`, JSON
//! arguments, the clock, and the value parsers shared by the clap types.

use std::fmt;
use std::io::Read;
use std::time::{SystemTime, UNIX_EPOCH};

use vouch_core::Secret;

/// Name of the environment variable that holds the identity secret.
pub const SECRET_VAR: &str = "VOUCH_SECRET";

/// A mistake in how the command was called (exit status 2), as opposed to a proof that
/// does not verify (exit status 1).
#[derive(Debug)]
pub struct UsageError(pub String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// Shorthand for returning a [`UsageError`].
pub fn usage<T>(message: impl Into<String>) -> anyhow::Result<T> {
    Err(UsageError(message.into()).into())
}

/// The identity secret from `VOUCH_SECRET`, used byte for byte. Warns on standard error
/// about values that are probably not what the user meant, without changing them.
pub fn secret_from_env() -> anyhow::Result<Secret> {
    let value = match std::env::var(SECRET_VAR) {
        Ok(value) if !value.is_empty() => value,
        Ok(_) | Err(std::env::VarError::NotPresent) => {
            return usage(format!(
                "{SECRET_VAR} is not set: export the identity secret (sk_test_… or an imported secret) in {SECRET_VAR}"
            ));
        }
        Err(std::env::VarError::NotUnicode(_)) => {
            return usage(format!("{SECRET_VAR} is not valid UTF-8"));
        }
    };
    if value.trim() != value {
        eprintln!(
            "warning: {SECRET_VAR} starts or ends with whitespace; it is used byte for byte as the HMAC key"
        );
    }
    let len = value.len();
    let secret = Secret::new(value);
    if !vouch_core::keys::looks_like_secret(secret.expose()) && !(16..=256).contains(&len) {
        eprintln!(
            "warning: {SECRET_VAR} is {len} bytes long; Vouch accepts sk_test_/sk_live_ secrets and imported secrets of 16 to 256 bytes"
        );
    }
    Ok(secret)
}

/// The text of a JSON argument: the argument itself, the contents of a file for `@FILE`, or
/// standard input for `-`.
pub fn json_argument(arg: &str) -> anyhow::Result<String> {
    if arg == "-" {
        let mut text = String::new();
        if let Err(e) = std::io::stdin().read_to_string(&mut text) {
            return usage(format!("cannot read JSON from standard input: {e}"));
        }
        Ok(text)
    } else if let Some(path) = arg.strip_prefix('@') {
        match std::fs::read_to_string(path) {
            Ok(text) => Ok(text),
            Err(e) => usage(format!("cannot read JSON from {path}: {e}")),
        }
    } else {
        Ok(arg.to_owned())
    }
}

/// Attributes from a JSON argument, parsed as the server parses them (duplicate keys and
/// integers beyond ±2^53 refused). Returns the text too, for diagnosis.
pub fn attributes_argument(
    arg: &str,
) -> anyhow::Result<(String, serde_json::Map<String, serde_json::Value>)> {
    let text = json_argument(arg)?;
    match vouch_core::jcs::parse_attributes(&text) {
        Ok(map) => Ok((text, map)),
        Err(e) => usage(format!("--attributes: {e}")),
    }
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// Clap value parser for booleans: exactly `true`, `false`, `1` or `0`.
pub fn parse_bool(s: &str) -> Result<bool, String> {
    match s {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        other => Err(format!(
            "{other:?} is not a boolean: use true, false, 1 or 0"
        )),
    }
}

/// Clap value parser for durations: a whole number followed by `s`, `m`, `h` or `d`
/// (a bare number is seconds). Returns seconds; zero is refused.
pub fn parse_duration(s: &str) -> Result<u64, String> {
    let bad = || format!("{s:?} is not a duration: use a number and a unit, e.g. 30s, 10m, 2h, 1d");
    let (digits, unit) = match s.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let multiplier = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        _ => return Err(bad()),
    };
    let n: u64 = digits.parse().map_err(|_| bad())?;
    let seconds = n
        .checked_mul(multiplier)
        .filter(|&secs| i64::try_from(secs).is_ok())
        .ok_or_else(|| format!("{s:?} is too long a duration"))?;
    if seconds == 0 {
        return Err("the duration must be longer than zero".to_owned());
    }
    Ok(seconds)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn booleans_accept_exactly_true_false_1_0() {
        assert_eq!(parse_bool("true"), Ok(true));
        assert_eq!(parse_bool("1"), Ok(true));
        assert_eq!(parse_bool("false"), Ok(false));
        assert_eq!(parse_bool("0"), Ok(false));
        for bad in ["TRUE", "yes", "on", "", " 1", "2", "False"] {
            assert!(parse_bool(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn durations_have_units() {
        assert_eq!(parse_duration("30s"), Ok(30));
        assert_eq!(parse_duration("10m"), Ok(600));
        assert_eq!(parse_duration("2h"), Ok(7_200));
        assert_eq!(parse_duration("1d"), Ok(86_400));
        assert_eq!(parse_duration("45"), Ok(45));
        for bad in [
            "",
            "m",
            "10x",
            "1.5h",
            "-1m",
            "10 m",
            "0s",
            "99999999999999999999d",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?} accepted");
        }
    }
}
