//! Naming the likely mistake behind a failed signature ("check my signature", audit log).
//!
//! [`diagnose`] re-computes the signature under every plausible mistake an integrator makes
//! (old secret, another environment's secret, swapped HMAC arguments, a plain SHA-256
//! instead of an HMAC, the email or another value instead of the id, stray whitespace, a
//! number written another way, the wrong hash, the hex digest base64-encoded again, a whole
//! `openssl dgst` output line, the secret itself sent) and returns the first [`Cause`] that
//! reproduces it.
//!
//! The cost is bounded: a few HMACs per key for the fixed variants, one per key and
//! attribute, and one per key for each of at most [`MAX_CANDIDATES`] candidate values.

use base64ct::{Base64, Base64Unpadded, Base64Url, Base64UrlUnpadded, Encoding};
use serde_json::{Map, Value};
use subtle::ConstantTimeEq;

use crate::encoding::decode_signature;
use crate::keyring::{KeyEntry, KeyRing, KeyStatus};
use crate::keys::{find_embedded_secrets, looks_like_secret, sha256};
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
    /// A plain SHA-256 of the user id (hex or base64), with no secret: not an HMAC.
    PlainSha256,
    /// HMAC of an attribute value (e.g. the email) instead of the user id.
    SignedAttribute {
        /// The attribute that was signed.
        attribute: String,
    },
    /// HMAC of one of the candidate values the caller asked about (an email, another id)
    /// instead of the user id.
    SignedCandidate {
        /// The candidate value that was signed.
        candidate: String,
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
    /// The signature is base64 of the hex digest's text (88 or 86 characters) rather than the
    /// hex itself or base64 of the raw bytes.
    Base64OfHex {
        /// What is wrong with the digest inside, or `None` when it is correct.
        #[serde(skip_serializing_if = "Option::is_none")]
        inner: Option<Box<Cause>>,
    },
    /// The signature is a whole `openssl dgst` output line (`(stdin)= …`,
    /// `HMAC-SHA2-256(stdin)= …`, `SHA2-256(stdin)= …`) rather than only its hex digest.
    OpensslOutput {
        /// What is wrong with the digest inside, or `None` when it is correct.
        #[serde(skip_serializing_if = "Option::is_none")]
        inner: Option<Box<Cause>>,
    },
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
            Self::PlainSha256 => "plain_sha256",
            Self::SignedAttribute { .. } => "signed_attribute",
            Self::SignedCandidate { .. } => "signed_candidate",
            Self::SurroundingWhitespace => "surrounding_whitespace",
            Self::NumberForm => "number_form",
            Self::WrongHashSha1 => "wrong_hash_sha1",
            Self::WrongHashMd5 => "wrong_hash_md5",
            Self::WrongHashOther => "wrong_hash_other",
            Self::SecretSentAsSignature => "secret_sent_as_signature",
            Self::Base64OfHex { .. } => "base64_of_hex",
            Self::OpensslOutput { .. } => "openssl_output",
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
            Self::PlainSha256 => "this is a plain SHA-256 of the user id, with no secret: anyone can compute it, so it proves nothing; compute HMAC-SHA256 with the identity secret as the key and the user id as the message".to_owned(),
            Self::SignedAttribute { attribute } => format!(
                "this is the HMAC of the {attribute} attribute, not of the user id; sign the user id"
            ),
            Self::SignedCandidate { candidate } => format!(
                "this is the HMAC of {candidate:?}, not of the user id; sign the user id exactly as sent"
            ),
            Self::SurroundingWhitespace => "the signed id and the sent id differ by surrounding whitespace (often a trailing newline, e.g. from echo); sign the id exactly as sent".to_owned(),
            Self::NumberForm => "the id was signed in another form (e.g. 42.0, \"42\" with quotes, or without leading zeros); sign the id string exactly as sent".to_owned(),
            Self::WrongHashSha1 => "the signature is 40 hex characters, an HMAC-SHA1; use HMAC-SHA256 (64 hex characters)".to_owned(),
            Self::WrongHashMd5 => "the signature is 32 hex characters, an MD5; use HMAC-SHA256 (64 hex characters)".to_owned(),
            Self::WrongHashOther => "the signature is hex of the wrong length for SHA-256; use HMAC-SHA256 (64 hex characters)".to_owned(),
            Self::SecretSentAsSignature => "the identity secret itself was sent as the signature: it is now exposed and must be rotated; send HMAC-SHA256(secret, user id) computed on your backend".to_owned(),
            Self::Base64OfHex { inner } => with_inner(
                "the signature is base64 of the hex digest's text; send the 64 hex characters themselves, or base64 of the 32 raw bytes of the HMAC",
                inner.as_deref(),
            ),
            Self::OpensslOutput { inner } => with_inner(
                "the signature is a whole `openssl dgst` output line, prefix included; send only the hex digest after \"= \"",
                inner.as_deref(),
            ),
            Self::Malformed => "the signature is not HMAC-SHA256 as 64 hex characters, 44 characters of standard base64 or 43 of URL-safe base64".to_owned(),
            Self::Unknown => "the signature matches no secret of this environment under any common mistake; check that the secret is this environment's and that the exact user id is signed".to_owned(),
        }
    }
}

/// The first sentence of a wrapping mistake, then what is wrong with the digest inside.
fn with_inner(outer: &str, inner: Option<&Cause>) -> String {
    match inner {
        None => format!("{outer}. The digest inside is correct."),
        Some(inner) => format!("{outer}. The digest inside: {}", inner.message()),
    }
}

/// At most this many candidate values are tried by [`diagnose_with_candidates`].
pub const MAX_CANDIDATES: usize = 20;

/// Candidate values longer than this (in bytes, the longest user id) are not tried.
pub const MAX_CANDIDATE_BYTES: usize = 255;

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
    diagnose_with_candidates(input, &[], now)
}

/// [`diagnose`], also trying values the integrator may have signed instead of the id: the
/// user's email, an id from another system. A match gives [`Cause::SignedCandidate`].
///
/// Only the first [`MAX_CANDIDATES`] candidates are tried; empty ones, ones longer than
/// [`MAX_CANDIDATE_BYTES`] and the id itself are skipped.
///
/// ```
/// use vouch_core::{Cause, KeyEntry, KeyRing, Secret, SignatureEncoding, proof::sign};
/// use vouch_core::diagnosis::{DiagnosisInput, diagnose_with_candidates};
/// let secret = Secret::new("sk_test_example_secret_value");
/// let ring = KeyRing::new(vec![KeyEntry::new("key_1", secret.clone(), 0, None, None)]);
/// let signature = sign(&secret, b"ada@example.com", SignatureEncoding::Hex);
/// let input = DiagnosisInput { message: "42", signature: &signature, keys: &ring, other_environments: &[], attributes: None };
/// assert_eq!(
///     diagnose_with_candidates(&input, &["ada@example.com"], 100),
///     Cause::SignedCandidate { candidate: "ada@example.com".into() }
/// );
/// ```
pub fn diagnose_with_candidates(
    input: &DiagnosisInput<'_>,
    candidates: &[&str],
    now: i64,
) -> Cause {
    if sent_a_secret(input) {
        return Cause::SecretSentAsSignature;
    }
    let candidates: Vec<&str> = candidates
        .iter()
        .take(MAX_CANDIDATES)
        .copied()
        .filter(|c| !c.is_empty() && c.len() <= MAX_CANDIDATE_BYTES && *c != input.message)
        .collect();
    let analysis = Analysis {
        input,
        candidates: &candidates,
        now,
    };
    analysis
        .signature(input.signature, true)
        .unwrap_or(Cause::Unknown)
}

/// One diagnosis in progress.
struct Analysis<'a> {
    input: &'a DiagnosisInput<'a>,
    candidates: &'a [&'a str],
    now: i64,
}

impl Analysis<'_> {
    /// The mistake behind `text` as a signature, or `None` when it verifies under an active
    /// key. `unwrap` allows one layer of packaging (openssl output, base64 of hex) to be
    /// taken off and the digest inside analysed.
    fn signature(&self, text: &str, unwrap: bool) -> Option<Cause> {
        if let Ok(sig) = decode_signature(text) {
            return self.mac(&sig);
        }
        if unwrap {
            if let Some(digest) = openssl_digest(text) {
                return Some(Cause::OpensslOutput {
                    inner: self.signature(digest, false).map(Box::new),
                });
            }
            if let Some(hex) = base64_of_hex(text) {
                return Some(Cause::Base64OfHex {
                    inner: self.signature(&hex, false).map(Box::new),
                });
            }
        }
        Some(malformed_cause(text))
    }

    /// The mistake behind a well-formed MAC, or `None` when an active key verifies it.
    fn mac(&self, sig: &[u8; 32]) -> Option<Cause> {
        let input = self.input;
        let all_keys = || input.keys.entries().iter();
        let matches = |k: &KeyEntry, msg: &[u8]| k.verify(msg, sig);
        let message = input.message.as_bytes();

        if let Some(key) = all_keys().find(|k| matches(k, message)) {
            return match key.status(self.now) {
                KeyStatus::Revoked => Some(Cause::RevokedSecret {
                    key_id: key.id().to_owned(),
                }),
                KeyStatus::Expired => Some(Cause::ExpiredSecret {
                    key_id: key.id().to_owned(),
                }),
                KeyStatus::Active => None,
            };
        }
        for (name, ring) in input.other_environments {
            if ring.entries().iter().any(|k| matches(k, message)) {
                return Some(Cause::OtherEnvironment {
                    environment: (*name).to_owned(),
                });
            }
        }
        let swapped = |k: &KeyEntry| -> bool {
            let m = mac(&Secret::new(input.message), k.secret().as_bytes());
            bool::from(m.ct_eq(sig))
        };
        if all_keys().any(swapped) {
            return Some(Cause::KeyAndMessageSwapped);
        }
        if sha256(message) == *sig {
            return Some(Cause::PlainSha256);
        }
        if let Some(attributes) = input.attributes {
            for (name, value) in attributes {
                let text = match value {
                    Value::String(s) => s.clone(),
                    Value::Number(n) => n.to_string(),
                    _ => continue,
                };
                if all_keys().any(|k| matches(k, text.as_bytes())) {
                    return Some(Cause::SignedAttribute {
                        attribute: name.clone(),
                    });
                }
            }
        }
        if let Some(candidate) = self
            .candidates
            .iter()
            .find(|c| all_keys().any(|k| matches(k, c.as_bytes())))
        {
            return Some(Cause::SignedCandidate {
                candidate: (*candidate).to_owned(),
            });
        }
        let any = |variants: &[String]| {
            variants
                .iter()
                .any(|c| c != input.message && all_keys().any(|k| matches(k, c.as_bytes())))
        };
        if any(&whitespace_variants(input.message)) {
            return Some(Cause::SurroundingWhitespace);
        }
        if any(&number_variants(input.message)) {
            return Some(Cause::NumberForm);
        }
        Some(Cause::Unknown)
    }
}

/// The hex digest of an `openssl dgst` output line: `LABEL(FILE)= HEX`, where LABEL is
/// empty (OpenSSL 1.1: `(stdin)= …`) or names the algorithm (OpenSSL 3:
/// `HMAC-SHA2-256(stdin)= …`, `SHA2-256(stdin)= …`; 1.0: `HMAC-SHA256(stdin)= …`).
fn openssl_digest(text: &str) -> Option<&str> {
    let (prefix, digest) = text.trim().split_once(")= ")?;
    let (label, _file) = prefix.split_once('(')?;
    let label_ok = label
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    let digest = digest.trim();
    let digest_ok = !digest.is_empty() && digest.bytes().all(|b| b.is_ascii_hexdigit());
    (label_ok && digest_ok).then_some(digest)
}

/// The hex text inside a base64 encoding of it (64 hex characters as 88 characters of padded
/// base64, or 86 unpadded, standard or URL-safe alphabet).
fn base64_of_hex(text: &str) -> Option<String> {
    let decoded = match text.len() {
        88 => Base64::decode_vec(text).or_else(|_| Base64Url::decode_vec(text)),
        86 => Base64Unpadded::decode_vec(text).or_else(|_| Base64UrlUnpadded::decode_vec(text)),
        _ => return None,
    }
    .ok()?;
    let is_hex = decoded.len() == 64 && decoded.iter().all(u8::is_ascii_hexdigit);
    is_hex.then(|| decoded.iter().map(|&b| char::from(b)).collect())
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
