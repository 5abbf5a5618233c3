//! HS256 identity tokens: a compact JWT signed with the identity secret, carrying the user id
//! (`sub`), optional expiry and attributes.
//!
//! Only HS256 is accepted. `exp` and `nbf` are optional but enforced with
//! [`TOKEN_LEEWAY_SECONDS`] of leeway when present, against an explicit `now` (this module
//! never reads the clock). Time claims are RFC 7519 NumericDates, integer or not; see
//! [`crate::numeric_date`] for how a fraction is rounded.

use base64ct::{Base64UrlUnpadded, Encoding};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::error::ProofError;
use crate::jcs::{self, check_attributes};
use crate::keyring::KeyEntry;
use crate::numeric_date::TimeClaim;
use crate::secret::Secret;

/// Clock leeway, in seconds, applied to `exp` and `nbf`.
pub const TOKEN_LEEWAY_SECONDS: i64 = 60;

/// The claims of an identity token.
///
/// Deserialising accepts what a token may carry: `exp`, `nbf` and `iat` as any JSON number
/// (`1796163605.5` included), kept as whole seconds — `exp` and `iat` rounded down, `nbf`
/// rounded up, so that a fraction never lengthens a token's validity — and refused, naming
/// the claim, when not a number, beyond ±2^53, or (for `exp`) negative.
///
/// ```
/// use vouch_core::IdentityClaims;
/// let claims = IdentityClaims::new("user-42").with_expiry(1_700_000_600);
/// assert_eq!(serde_json::to_string(&claims).unwrap(), r#"{"sub":"user-42","exp":1700000600}"#);
/// let read: IdentityClaims =
///     serde_json::from_str(r#"{"sub":"user-42","exp":1700000600.9,"nbf":1699999999.2}"#).unwrap();
/// assert_eq!((read.exp, read.nbf), (Some(1_700_000_600), Some(1_700_000_000)));
/// ```
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "WireClaims")]
pub struct IdentityClaims {
    /// The user id being proven (required).
    pub sub: String,
    /// Expiry (Unix seconds, rounded down); enforced with 60 s leeway when present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exp: Option<i64>,
    /// Not-before (Unix seconds, rounded up); enforced with 60 s leeway when present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    /// Issued-at (Unix seconds, rounded down); informative.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
    /// Token id; a token with a `jti` is accepted once (the server enforces this).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
    /// Attributes proven by the token (they become verified attributes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attributes: Option<Map<String, Value>>,
}

/// The claims as they are written in a token, before the time claims are read.
///
/// The time claims stay raw JSON text so that any number can be read exactly (serde_json
/// would refuse `1e400` before we could name the claim, and round fractions through `f64`).
#[derive(serde::Deserialize)]
struct WireClaims {
    sub: String,
    #[serde(default)]
    exp: Option<Box<RawValue>>,
    #[serde(default)]
    nbf: Option<Box<RawValue>>,
    #[serde(default)]
    iat: Option<Box<RawValue>>,
    #[serde(default)]
    jti: Option<String>,
    #[serde(default, deserialize_with = "jcs::deserialize_strict_map")]
    attributes: Option<Map<String, Value>>,
}

impl TryFrom<WireClaims> for IdentityClaims {
    type Error = ProofError;

    fn try_from(w: WireClaims) -> Result<Self, ProofError> {
        let read = |claim: TimeClaim, raw: &Option<Box<RawValue>>| {
            raw.as_deref().map(|r| claim.seconds(r)).transpose()
        };
        Ok(Self {
            exp: read(TimeClaim::Exp, &w.exp)?,
            nbf: read(TimeClaim::Nbf, &w.nbf)?,
            iat: read(TimeClaim::Iat, &w.iat)?,
            sub: w.sub,
            jti: w.jti,
            attributes: w.attributes,
        })
    }
}

impl IdentityClaims {
    /// Claims for `sub` with nothing else set.
    pub fn new(sub: impl Into<String>) -> Self {
        Self {
            sub: sub.into(),
            exp: None,
            nbf: None,
            iat: None,
            jti: None,
            attributes: None,
        }
    }

    /// Sets `exp`.
    pub fn with_expiry(mut self, exp: i64) -> Self {
        self.exp = Some(exp);
        self
    }
}

/// The `kid` header of a token, if any. No verification is done.
///
/// ```
/// use vouch_core::{IdentityClaims, Secret};
/// use vouch_core::{proof::issue_identity_token, token::token_kid};
/// let t = issue_identity_token(&Secret::new("0123456789abcdef"), Some("key_1"), &IdentityClaims::new("u")).unwrap();
/// assert_eq!(token_kid(&t).as_deref(), Some("key_1"));
/// ```
pub fn token_kid(token: &str) -> Option<String> {
    let (header, _) = split(token).ok()?;
    decode_header(header).ok()?.kid
}

/// Verifies an identity token under one secret.
///
/// ```
/// use vouch_core::{IdentityClaims, ProofError, Secret};
/// use vouch_core::{proof::issue_identity_token, token::verify_identity_token};
/// let secret = Secret::new("sk_test_an_example_secret");
/// let now = 1_700_000_000;
/// let token = issue_identity_token(&secret, None, &IdentityClaims::new("42").with_expiry(now + 600)).unwrap();
/// assert_eq!(verify_identity_token(&secret, &token, Some("42"), now).unwrap().sub, "42");
/// assert_eq!(verify_identity_token(&secret, &token, Some("42"), now + 661), Err(ProofError::TokenExpired));
/// ```
pub fn verify_identity_token(
    secret: &Secret,
    token: &str,
    expected_sub: Option<&str>,
    now: i64,
) -> Result<IdentityClaims, ProofError> {
    parse(token)?.verify_secret(secret, expected_sub, now)
}

/// JOSE header fields we look at.
#[derive(serde::Deserialize)]
struct RawHeader {
    alg: String,
    #[serde(default)]
    kid: Option<String>,
}

/// A token whose shape and header have been checked (alg is HS256), not yet verified.
#[derive(Debug)]
pub(crate) struct ParsedToken<'a> {
    token: &'a str,
    kid: Option<String>,
}

/// `(header, rest)` of a three-part compact JWT.
fn split(token: &str) -> Result<(&str, &str), ProofError> {
    let mut parts = token.split('.');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(h), Some(p), Some(s), None) if !h.is_empty() && !p.is_empty() && !s.is_empty() => {
            Ok((h, p))
        }
        _ => Err(ProofError::TokenMalformed(
            "an identity token is a compact JWT: three base64url parts separated by dots \
             (header.payload.signature)"
                .to_owned(),
        )),
    }
}

fn decode_header(segment: &str) -> Result<RawHeader, ProofError> {
    let bytes = Base64UrlUnpadded::decode_vec(segment).map_err(|_| {
        ProofError::TokenMalformed("the header is not unpadded base64url".to_owned())
    })?;
    serde_json::from_slice(&bytes).map_err(|_| {
        ProofError::TokenMalformed("the header is not a JSON object with a string alg".to_owned())
    })
}

/// Checks the shape and the header (only HS256 is accepted).
pub(crate) fn parse(token: &str) -> Result<ParsedToken<'_>, ProofError> {
    let (header, _) = split(token)?;
    let header = decode_header(header)?;
    if header.alg != "HS256" {
        let mut alg: String = header.alg.chars().take(20).collect();
        if alg.len() < header.alg.len() {
            alg.push('…');
        }
        return Err(ProofError::TokenAlgorithm(alg));
    }
    Ok(ParsedToken {
        token,
        kid: header.kid,
    })
}

impl ParsedToken<'_> {
    /// The `kid` header.
    pub(crate) fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// Verifies the signature under `entry`'s secret, then the claims.
    pub(crate) fn verify_with(
        &self,
        entry: &KeyEntry,
        expected_sub: Option<&str>,
        now: i64,
    ) -> Result<IdentityClaims, ProofError> {
        self.verify_secret(entry.secret(), expected_sub, now)
    }

    fn verify_secret(
        &self,
        secret: &Secret,
        expected_sub: Option<&str>,
        now: i64,
    ) -> Result<IdentityClaims, ProofError> {
        // The signature is checked with jsonwebtoken, the payload read by us:
        // `jsonwebtoken::decode` parses `exp` and `nbf` a second time for its own checks and
        // loses its place on an array or object there, which would hide which claim is wrong.
        let (message, signature) = self
            .token
            .rsplit_once('.')
            .ok_or_else(|| ProofError::TokenMalformed("the token has no signature".to_owned()))?;
        let key = DecodingKey::from_secret(secret.as_bytes()).map_err(map_jwt_error)?;
        let valid =
            jsonwebtoken::crypto::verify(signature, message.as_bytes(), &key, Algorithm::HS256)
                .map_err(map_jwt_error)?;
        if !valid {
            return Err(ProofError::TokenBadSignature);
        }
        let payload = message.split_once('.').map_or("", |(_, p)| p);
        let bytes = Base64UrlUnpadded::decode_vec(payload).map_err(|_| {
            ProofError::TokenMalformed("the payload is not unpadded base64url".to_owned())
        })?;
        // serde would also read a JSON array as the claims, field by field.
        if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
            return Err(map_payload_error(serde::de::Error::custom("not an object")));
        }
        let wire: WireClaims = serde_json::from_slice(&bytes).map_err(map_payload_error)?;
        check_claims(IdentityClaims::try_from(wire)?, expected_sub, now)
    }
}

/// Time, subject and attribute checks on verified claims.
fn check_claims(
    claims: IdentityClaims,
    expected_sub: Option<&str>,
    now: i64,
) -> Result<IdentityClaims, ProofError> {
    if claims.sub.is_empty() {
        return Err(ProofError::TokenMalformed(
            "the sub claim is empty; put the user id in sub".to_owned(),
        ));
    }
    // `exp` was rounded down and `nbf` up when read: against a whole-second `now`, these
    // comparisons never accept a token outside its real window plus the leeway.
    if claims
        .exp
        .is_some_and(|exp| exp.saturating_add(TOKEN_LEEWAY_SECONDS) < now)
    {
        return Err(ProofError::TokenExpired);
    }
    if claims
        .nbf
        .is_some_and(|nbf| nbf.saturating_sub(TOKEN_LEEWAY_SECONDS) > now)
    {
        return Err(ProofError::TokenNotYetValid);
    }
    if expected_sub.is_some_and(|s| s != claims.sub) {
        return Err(ProofError::TokenWrongSubject);
    }
    if let Some(attributes) = &claims.attributes {
        check_attributes(attributes)?;
    }
    Ok(claims)
}

fn map_jwt_error(e: jsonwebtoken::errors::Error) -> ProofError {
    match e.kind() {
        ErrorKind::InvalidSignature => ProofError::TokenBadSignature,
        ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => {
            ProofError::TokenAlgorithm("not HS256".to_owned())
        }
        ErrorKind::Base64(_) | ErrorKind::Utf8(_) => {
            ProofError::TokenMalformed("a part of the token is not unpadded base64url".to_owned())
        }
        _ => ProofError::TokenMalformed("the token is not a valid HS256 JWT".to_owned()),
    }
}

/// Names what is wrong with a payload that is not the claims object, without echoing it.
fn map_payload_error(e: serde_json::Error) -> ProofError {
    let msg = e.to_string();
    if msg.contains("missing field `sub`") {
        ProofError::TokenMalformed("the token has no sub claim; put the user id in sub".to_owned())
    } else if msg.contains("duplicate key") || msg.contains("beyond ±2^53") {
        ProofError::InvalidAttributes(format!("attributes claim: {msg}"))
    } else if msg.contains("attributes must be") {
        ProofError::InvalidAttributes("the attributes claim must be a JSON object".to_owned())
    } else if msg.contains("duplicate field") {
        ProofError::TokenMalformed("the payload repeats a claim; write each claim once".to_owned())
    } else {
        ProofError::TokenMalformed(
            "the payload must be a JSON object with sub (string), and optionally exp, nbf, iat \
             (numbers of seconds since 1970), jti (string) and attributes (object)"
                .to_owned(),
        )
    }
}
