//! HS256 identity tokens: a compact JWT signed with the identity secret, carrying the user id
//! (`sub`), optional expiry and attributes.
//!
//! Only HS256 is accepted. `exp` and `nbf` are optional but enforced with
//! [`TOKEN_LEEWAY_SECONDS`] of leeway when present, against an explicit `now` (this module
//! never reads the clock).

use std::sync::LazyLock;

use base64ct::{Base64UrlUnpadded, Encoding};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value};

use crate::error::ProofError;
use crate::jcs::{self, check_attributes};
use crate::keyring::KeyEntry;
use crate::secret::Secret;

/// Clock leeway, in seconds, applied to `exp` and `nbf`.
pub const TOKEN_LEEWAY_SECONDS: i64 = 60;

/// The claims of an identity token.
///
/// ```
/// use vouch_core::IdentityClaims;
/// let claims = IdentityClaims::new("user-42").with_expiry(1_700_000_600);
/// assert_eq!(serde_json::to_string(&claims).unwrap(), r#"{"sub":"user-42","exp":1700000600}"#);
/// ```
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct IdentityClaims {
    /// The user id being proven (required).
    pub sub: String,
    /// Expiry (Unix seconds); enforced with 60 s leeway when present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exp: Option<i64>,
    /// Not-before (Unix seconds); enforced with 60 s leeway when present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    /// Issued-at (Unix seconds); informative.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
    /// Token id; a token with a `jti` is accepted once (the server enforces this).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
    /// Attributes proven by the token (they become verified attributes).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "jcs::deserialize_strict_map"
    )]
    pub attributes: Option<Map<String, Value>>,
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

/// exp/nbf verification is done by us against `now`; jsonwebtoken reads the system clock.
static VALIDATION: LazyLock<Validation> = LazyLock::new(|| {
    let mut v = Validation::new(Algorithm::HS256);
    v.required_spec_claims.clear();
    v.validate_exp = false;
    v.validate_nbf = false;
    v.validate_aud = false;
    v
});

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
        let key = DecodingKey::from_secret(secret.as_bytes()).map_err(map_jwt_error)?;
        let data = jsonwebtoken::decode::<IdentityClaims>(self.token, &key, &VALIDATION)
            .map_err(map_jwt_error)?;
        check_claims(data.claims, expected_sub, now)
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
        ErrorKind::Json(err) => {
            let msg = err.to_string();
            if msg.contains("missing field `sub`") {
                ProofError::TokenMalformed(
                    "the token has no sub claim; put the user id in sub".to_owned(),
                )
            } else if msg.contains("duplicate key") || msg.contains("beyond ±2^53") {
                ProofError::InvalidAttributes(format!("attributes claim: {msg}"))
            } else if msg.contains("attributes must be") {
                ProofError::InvalidAttributes(
                    "the attributes claim must be a JSON object".to_owned(),
                )
            } else {
                ProofError::TokenMalformed(
                    "the payload must be a JSON object with sub (string), and optionally exp, \
                     nbf, iat (integer Unix seconds), jti (string) and attributes (object)"
                        .to_owned(),
                )
            }
        }
        ErrorKind::Base64(_) | ErrorKind::Utf8(_) => {
            ProofError::TokenMalformed("a part of the token is not unpadded base64url".to_owned())
        }
        _ => ProofError::TokenMalformed("the token is not a valid HS256 JWT".to_owned()),
    }
}
