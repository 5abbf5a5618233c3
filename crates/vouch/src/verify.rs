//! `vouch verify`: checks one proof offline and explains a failure.
//!
//! Verdicts go to standard output: `valid (…)` with exit status 0, or `invalid: …` and the
//! likely mistake with exit status 1.

use std::process::ExitCode;

use serde_json::{Map, Value};
use vouch_core::diagnosis::{
    DiagnosisInput, MAX_CANDIDATE_BYTES, MAX_CANDIDATES, diagnose_with_candidates,
};
use vouch_core::encoding::decode_signature;
use vouch_core::jcs::canonicalize;
use vouch_core::proof::mac;
use vouch_core::token::verify_identity_token;
use vouch_core::{Cause, KeyEntry, KeyRing, ProofError, Secret};

use crate::cli::VerifyArgs;
use crate::input::{SECRET_VAR, attributes_argument, secret_from_env, unix_now, usage};

/// The outcome of a check, printed by [`run`].
#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    Valid(String),
    Invalid { reason: String, cause: String },
}

/// Runs `vouch verify`: exit status 0 when the proof is valid, 1 when it is not.
pub fn run(args: VerifyArgs) -> anyhow::Result<ExitCode> {
    let secret = secret_from_env()?;
    let now = args.at.unwrap_or_else(unix_now);
    let verdict = if let Some(token) = &args.token {
        check_token(&secret, token, args.id.as_deref(), now)
    } else if let (Some(json), Some(signature)) = (&args.attributes, &args.attributes_signature) {
        let (text, attributes) = attributes_argument(json)?;
        check_attributes(&secret, &text, &attributes, signature)?
    } else if let (Some(id), Some(signature)) = (&args.id, &args.signature) {
        let candidates = candidates(&args)?;
        check_signature(secret, id, signature, &candidates, now)
    } else {
        return usage(
            "give USER_ID --signature SIG, --token TOKEN, or --attributes JSON --attributes-signature SIG",
        );
    };
    Ok(match verdict {
        Verdict::Valid(what) => {
            println!("valid ({what})");
            ExitCode::SUCCESS
        }
        Verdict::Invalid { reason, cause } => {
            println!("invalid: {reason}");
            println!("likely cause: {cause}");
            ExitCode::from(1)
        }
    })
}

/// A value the signature may be the HMAC of, and the option it came from.
struct Candidate<'a> {
    value: &'a str,
    option: &'static str,
}

/// `--email` and every `--expect`, checked against the bounds the diagnosis applies.
fn candidates(args: &VerifyArgs) -> anyhow::Result<Vec<Candidate<'_>>> {
    let email = args.email.iter().map(|value| Candidate {
        value,
        option: "--email",
    });
    let expect = args.expect.iter().map(|value| Candidate {
        value,
        option: "--expect",
    });
    let all: Vec<Candidate<'_>> = email.chain(expect).collect();
    if all.len() > MAX_CANDIDATES {
        return usage(format!(
            "give at most {MAX_CANDIDATES} values with --email and --expect (got {})",
            all.len()
        ));
    }
    if let Some(c) = all
        .iter()
        .find(|c| c.value.is_empty() || c.value.len() > MAX_CANDIDATE_BYTES)
    {
        return usage(format!(
            "{} values are 1 to {MAX_CANDIDATE_BYTES} bytes long",
            c.option
        ));
    }
    Ok(all)
}

fn check_signature(
    secret: Secret,
    id: &str,
    signature: &str,
    candidates: &[Candidate<'_>],
    now: i64,
) -> Verdict {
    let ring = KeyRing::new(vec![KeyEntry::new(SECRET_VAR, secret, 0, None, None)]);
    match ring.verify_signature(id.as_bytes(), signature, now) {
        Ok(_) => Verdict::Valid(format!("signature of {id:?}, {}", encoding_name(signature))),
        Err(e) => {
            let input = DiagnosisInput {
                message: id,
                signature,
                keys: &ring,
                other_environments: &[],
                attributes: None,
            };
            let values: Vec<&str> = candidates.iter().map(|c| c.value).collect();
            let diagnosis = diagnose_with_candidates(&input, &values, now);
            let mut cause = diagnosis.message();
            if let Some(option) = signed_candidate(&diagnosis)
                .and_then(|v| candidates.iter().find(|c| c.value == v))
                .map(|c| c.option)
            {
                cause.push_str(&format!(" (the {option} value)"));
            } else if matches!(diagnosis, Cause::Unknown) && candidates.is_empty() {
                cause.push_str(
                    "; if you may have signed another value (the email, an id from another system), pass it with --email or --expect",
                );
            }
            Verdict::Invalid {
                reason: e.to_string(),
                cause,
            }
        }
    }
}

/// The candidate a diagnosis found signed, at the top or inside a wrapping mistake.
fn signed_candidate(cause: &Cause) -> Option<&str> {
    match cause {
        Cause::SignedCandidate { candidate } => Some(candidate),
        Cause::OpensslOutput { inner: Some(inner) } | Cause::Base64OfHex { inner: Some(inner) } => {
            signed_candidate(inner)
        }
        _ => None,
    }
}

fn check_token(secret: &Secret, token: &str, expected_sub: Option<&str>, now: i64) -> Verdict {
    match verify_identity_token(secret, token, expected_sub, now) {
        Ok(claims) => {
            let mut what = format!("identity token for sub {:?}", claims.sub);
            match claims.exp {
                Some(exp) if exp >= now => {
                    what.push_str(&format!(", expires in {}", human_duration(exp - now)));
                }
                Some(exp) => what.push_str(&format!(
                    ", expired {} ago but within the 60 s leeway",
                    human_duration(now - exp)
                )),
                None => what.push_str(", no expiry"),
            }
            if let Some(jti) = &claims.jti {
                what.push_str(&format!(", jti {jti:?}"));
            }
            if let Some(attributes) = &claims.attributes {
                what.push_str(&format!(", {} verified attribute(s)", attributes.len()));
            }
            Verdict::Valid(what)
        }
        Err(e) => {
            let cause = match (&e, expected_sub) {
                (ProofError::TokenWrongSubject, Some(sub)) => format!(
                    "the token was issued for another user id; issue one whose sub is exactly {sub:?}"
                ),
                (ProofError::TokenBadSignature, _) => format!(
                    "the token was not signed with the secret in {SECRET_VAR} (another environment's secret, an old secret, or another algorithm's key)"
                ),
                (ProofError::TokenExpired | ProofError::TokenNotYetValid, _) => {
                    "check the clocks, or pass --at to check the token as of another time".to_owned()
                }
                _ => "the token is refused before its signature is checked; issue it with `vouch sign USER_ID --token` or an HS256 JWT library".to_owned(),
            };
            Verdict::Invalid {
                reason: e.to_string(),
                cause,
            }
        }
    }
}

fn check_attributes(
    secret: &Secret,
    text: &str,
    attributes: &Map<String, Value>,
    signature: &str,
) -> anyhow::Result<Verdict> {
    let canonical = match canonicalize(attributes) {
        Ok(canonical) => canonical,
        Err(e) => return usage(format!("--attributes: {e}")),
    };
    let sent = match decode_signature(signature) {
        Ok(sent) => sent,
        Err(e) => {
            return Ok(Verdict::Invalid {
                reason: e.to_string(),
                cause: "an attributes signature is HMAC-SHA256 over the RFC 8785 (JCS) form of the attributes, in the same encodings as a user-id signature".to_owned(),
            });
        }
    };
    let signed = |message: &str| mac(secret, message.as_bytes()) == sent;
    if signed(&canonical) {
        return Ok(Verdict::Valid(format!(
            "attributes signature, {}, over the canonical form {canonical}",
            encoding_name(signature)
        )));
    }
    let cause = if signed(text) || signed(text.trim()) {
        format!(
            "the signature is the HMAC of the JSON text as written, not of its RFC 8785 canonical form; sign exactly {canonical}"
        )
    } else if serde_json::to_string(attributes).is_ok_and(|compact| signed(&compact)) {
        format!(
            "the signature is over a key-sorted JSON that is not RFC 8785 (keys must sort by UTF-16 code units, numbers as in JavaScript); use a JCS library and sign exactly {canonical}"
        )
    } else if signed(&format!("{canonical}\n")) {
        "the canonical form was signed with a trailing newline; sign it without one".to_owned()
    } else {
        format!(
            "the signature matches neither the canonical form nor a common mistake; check that {SECRET_VAR} is this environment's secret and that exactly these attributes are signed: {canonical}"
        )
    };
    Ok(Verdict::Invalid {
        reason: "Incorrect attributes signature".to_owned(),
        cause,
    })
}

/// Which accepted encoding a (valid) signature is in.
fn encoding_name(signature: &str) -> &'static str {
    match signature.len() {
        64 => "hex",
        44 => "base64",
        _ => "base64url",
    }
}

/// `9m 58s`, `2h 0m`, `3d 4h`.
fn human_duration(seconds: i64) -> String {
    let (d, h, m, s) = (
        seconds / 86_400,
        seconds % 86_400 / 3_600,
        seconds % 3_600 / 60,
        seconds % 60,
    );
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, _) => format!("{m}m {s}s"),
        (0, _, _) => format!("{h}h {m}m"),
        _ => format!("{d}d {h}h"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_naturally() {
        assert_eq!(human_duration(5), "5s");
        assert_eq!(human_duration(598), "9m 58s");
        assert_eq!(human_duration(7_200), "2h 0m");
        assert_eq!(human_duration(273_600), "3d 4h");
    }
}
