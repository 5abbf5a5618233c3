//! Naming the likely mistake behind a failed signature ("check my signature", audit log).
//!
//! [`diagnose`] re-computes the signature under every plausible mistake an integrator makes
//! (old secret, another environment's secret, swapped HMAC arguments, the email instead of
//! the id, stray whitespace, a number written another way, the wrong hash, the secret itself
//! sent) and returns the first [`Cause`] that reproduces it.

use serde_json::{Map, Value};
use subtle::ConstantTimeEq;

use crate::encoding::decode_signature;
use crate::keyring::{KeyEntry, KeyRing, KeyStatus};
use crate::keys::{find_embedded_secrets, looks_like_secret};
use crate::proof::mac;
use crate::secret::Secret;

/// The likely mistake behind a signature that does not verify.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "cause", rename_all = "snake_case")]
pub enum Cause {
    /// Signed with a secret of this environment that has been revoked.
    RevokedSecret {
        /// The revoked secret's key id.
        key_id: String,
    },
    /// Signed with a secret of this environment whose grace period has ended.
    ExpiredSecret {
        /// The expired secret's key id.
        key_id: String,
    },
    /// Signed with a secret of another environment (e.g. staging instead of production).
    OtherEnvironment {
        /// The name of the environment whose secret was used.
        environment: String,
    },
    /// HMAC computed with the user id as the key and the secret as the message.
    KeyAndMessageSwapped,
    /// HMAC of an attribute value (e.g. the email) instead of the user id.
    SignedAttribute {
        /// The attribute that was signed.
        attribute: String,
    },
    /// The signed id had surrounding whitespace (a trailing newline, a space) or the id sent
    /// has some that the signed one had not.
    SurroundingWhitespace,
    /// The id was signed in another number form (`42.0`, `"42"` with quotes, leading zeros).
    NumberForm,
    /// The signature is 40 hex characters: SHA-1 rather than SHA-256.
    WrongHashSha1,
    /// The signature is 32 hex characters: MD5 rather than SHA-256.
    WrongHashMd5,
    /// The signature is hex of a length other than 64: another hash function.
    WrongHashOther,
    /// The secret itself was sent as (or inside) the signature.
    SecretSentAsSignature,
    /// The signature is in no accepted encoding.
    Malformed,
    /// None of the known mistakes reproduces the signature.
    Unknown,
}

impl Cause {
    /// The snake_case name of the cause, e.g. `"revoked_secret"`.
    pub fn code(&self) -> &'static str {
        match self {
            Self::RevokedSecret { .. } => "revoked_secret",
            Self::ExpiredSecret { .. } => "expired_secret",
            Self::OtherEnvironment { .. } => "other_environment",
            Self::KeyAndMessageSwapped => "key_and_message_swapped",
            Self::SignedAttribute { .. } => "signed_attribute",
            Self::SurroundingWhitespace => "surrounding_whitespace",
            Self::NumberForm => "number_form",
            Self::WrongHashSha1 => "wrong_hash_sha1",
            Self::WrongHashMd5 => "wrong_hash_md5",
            Self::WrongHashOther => "wrong_hash_other",
            Self::SecretSentAsSignature => "secret_sent_as_signature",
            Self::Malformed => "malformed",
            Self::Unknown => "unknown",
        }
    }

    /// A sentence an integrator can act on.
    ///
    /// ```
    /// use vouch_core::Cause;
    /// let c = Cause::OtherEnvironment { environment: "Acme — staging".into() };
    /// assert!(c.message().contains("Acme — staging"));
    /// ```
    pub fn message(&self) -> String {
        match self {
            Self::RevokedSecret { key_id } => format!(
                "signed with the revoked secret {key_id}; sign with an active secret of this environment"
            ),
            Self::ExpiredSecret { key_id } => format!(
                "signed with the secret {key_id}, whose rotation grace period has ended; deploy the new secret"
            ),
            Self::OtherEnvironment { environment } => format!(
                "signed with the secret of environment {environment}; use this environment's secret"
            ),
            Self::KeyAndMessageSwapped => "the HMAC key and message are swapped: use the secret as the key and the user id as the message".to_owned(),
            Self::SignedAttribute { attribute } => format!(
                "this is the HMAC of the {attribute} attribute, not of the user id; sign the user id"
            ),
            Self::SurroundingWhitespace => "the signed id and the sent id differ by surrounding whitespace (often a trailing newline, e.g. from echo); sign the id exactly as sent".to_owned(),
            Self::NumberForm => "the id was signed in another form (e.g. 42.0, \"42\" with quotes, or without leading zeros); sign the id string exactly as sent".to_owned(),
            Self::WrongHashSha1 => "the signature is 40 hex characters, an HMAC-SHA1; use HMAC-SHA256 (64 hex characters)".to_owned(),
            Self::WrongHashMd5 => "the signature is 32 hex characters, an MD5; use HMAC-SHA256 (64 hex characters)".to_owned(),
            Self::WrongHashOther => "the signature is hex of the wrong length for SHA-256; use HMAC-SHA256 (64 hex characters)".to_owned(),
            Self::SecretSentAsSignature => "the identity secret itself was sent as the signature: it is now exposed and must be rotated; send HMAC-SHA256(secret, user id) computed on your backend".to_owned(),
            Self::Malformed => "the signature is not HMAC-SHA256 as 64 hex characters, 44 characters of standard base64 or 43 of URL-safe base64".to_owned(),
            Self::Unknown => "the signature matches no secret of this environment under any common mistake; check that the secret is this environment's and that the exact user id is signed".to_owned(),
        }
    }
}

/// What [`diagnose`] looks at.
#[derive(Debug, Clone, Copy)]
pub struct DiagnosisInput<'a> {
    /// The id that was sent (user id or company id).
    pub message: &'a str,
    /// The signature that failed.
    pub signature: &'a str,
    /// This environment's whole key history, including revoked and expired secrets.
    pub keys: &'a KeyRing,
    /// Other environments of the deployment, by name.
    pub other_environments: &'a [(&'a str, &'a KeyRing)],
    /// The user's attributes, if known (to catch an attribute signed instead of the id).
    pub attributes: Option<&'a Map<String, Value>>,
}

/// Names the likely mistake behind a failed signature.
///
/// `now` decides which keys are active. A signature that verifies under an active key gives
/// [`Cause::Unknown`] (there is no mistake to name).
///
/// ```
/// use vouch_core::{Cause, KeyEntry, KeyRing, Secret, SignatureEncoding, proof::sign};
/// use vouch_core::diagnosis::{DiagnosisInput, diagnose};
/// let secret = Secret::new("sk_test_example_secret_value");
/// let ring = KeyRing::new(vec![KeyEntry::new("key_1", secret.clone(), 0, None, None)]);
/// let signature = sign(&secret, b"42\n", SignatureEncoding::Hex);
/// let input = DiagnosisInput { message: "42", signature: &signature, keys: &ring, other_environments: &[], attributes: None };
/// assert_eq!(diagnose(&input, 100), Cause::SurroundingWhitespace);
/// ```
pub fn diagnose(input: &DiagnosisInput<'_>, now: i64) -> Cause {
    if sent_a_secret(input) {
        return Cause::SecretSentAsSignature;
    }
    let Ok(sig) = decode_signature(input.signature) else {
        return malformed_cause(input.signature);
    };
    let all_keys = || input.keys.entries().iter();
    let matches = |k: &KeyEntry, msg: &[u8]| k.verify(msg, &sig);
    let message = input.message.as_bytes();

    if let Some(key) = all_keys().find(|k| matches(k, message)) {
        match key.status(now) {
            KeyStatus::Revoked => {
                return Cause::RevokedSecret {
                    key_id: key.id().to_owned(),
                };
            }
            KeyStatus::Expired => {
                return Cause::ExpiredSecret {
                    key_id: key.id().to_owned(),
                };
            }
            KeyStatus::Active => return Cause::Unknown,
        }
    }
    for (name, ring) in input.other_environments {
        if ring.entries().iter().any(|k| matches(k, message)) {
            return Cause::OtherEnvironment {
                environment: (*name).to_owned(),
            };
        }
    }
    let swapped = |k: &KeyEntry| -> bool {
        let m = mac(&Secret::new(input.message), k.secret().as_bytes());
        bool::from(m.ct_eq(&sig))
    };
    if all_keys().any(swapped) {
        return Cause::KeyAndMessageSwapped;
    }
    if let Some(attributes) = input.attributes {
        for (name, value) in attributes {
            let text = match value {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                _ => continue,
            };
            if all_keys().any(|k| matches(k, text.as_bytes())) {
                return Cause::SignedAttribute {
                    attribute: name.clone(),
                };
            }
        }
    }
    let any = |candidates: &[String]| {
        candidates
            .iter()
            .any(|c| c != input.message && all_keys().any(|k| matches(k, c.as_bytes())))
    };
    if any(&whitespace_variants(input.message)) {
        return Cause::SurroundingWhitespace;
    }
    if any(&number_variants(input.message)) {
        return Cause::NumberForm;
    }
    Cause::Unknown
}

/// The signature is, or contains, a secret (of any environment, or anything shaped like one).
fn sent_a_secret(input: &DiagnosisInput<'_>) -> bool {
    let sig = input.signature;
    if looks_like_secret(sig) || !find_embedded_secrets(sig).is_empty() {
        return true;
    }
    let rings =
        core::iter::once(input.keys).chain(input.other_environments.iter().map(|(_, r)| *r));
    for ring in rings {
        if ring.find_by_value(sig).is_some() {
            return true;
        }
        if ring
            .entries()
            .iter()
            .any(|k| !k.secret().is_empty() && sig.contains(k.secret().expose()))
        {
            return true;
        }
    }
    false
}

fn malformed_cause(signature: &str) -> Cause {
    let is_hex = !signature.is_empty() && signature.bytes().all(|b| b.is_ascii_hexdigit());
    match (is_hex, signature.len()) {
        (true, 40) => Cause::WrongHashSha1,
        (true, 32) => Cause::WrongHashMd5,
        (true, _) => Cause::WrongHashOther,
        _ => Cause::Malformed,
    }
}

/// The id as it may have been signed with stray whitespace, or with whitespace removed.
fn whitespace_variants(id: &str) -> Vec<String> {
    let mut v = vec![
        format!("{id}\n"),
        format!("{id}\r\n"),
        format!("{id} "),
        format!("{id}\t"),
        format!(" {id}"),
        format!("\n{id}"),
        format!(" {id} "),
        id.trim().to_owned(),
        id.trim_end().to_owned(),
        id.trim_start().to_owned(),
    ];
    v.dedup();
    v
}

/// The id as it may have been signed in another number form, or JSON-quoted.
fn number_variants(id: &str) -> Vec<String> {
    let mut v = vec![format!("\"{id}\"")];
    let digits = id.strip_prefix('-').unwrap_or(id);
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        v.push(format!("{id}.0"));
        let sign = if digits.len() < id.len() { "-" } else { "" };
        let stripped = digits.trim_start_matches('0');
        let stripped = if stripped.is_empty() { "0" } else { stripped };
        v.push(format!("{sign}{stripped}"));
        v.push(format!("{sign}{stripped}.0"));
    }
    if let Some(int) = id.strip_suffix(".0") {
        v.push(int.to_owned());
    }
    v
}
