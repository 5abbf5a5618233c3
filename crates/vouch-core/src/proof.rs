//! The customer side: computing every proof (used by `vouch sign` and by Rust backends).

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Map, Value};

use crate::encoding::{SignatureEncoding, encode_mac};
use crate::error::ProofError;
use crate::jcs::{canonicalize, check_attributes};
use crate::numeric_date::TimeClaim;
use crate::secret::Secret;
use crate::token::IdentityClaims;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// `HMAC-SHA256(key = the secret's UTF-8 bytes, message)` in the given encoding.
///
/// ```
/// use vouch_core::{Secret, SignatureEncoding, proof::sign};
/// let sig = sign(&Secret::new("key"), b"The quick brown fox jumps over the lazy dog", SignatureEncoding::Hex);
/// assert_eq!(sig, "f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8");
/// ```
pub fn sign(secret: &Secret, message: &[u8], enc: SignatureEncoding) -> String {
    encode_mac(&mac(secret, message), enc)
}

/// The raw HMAC-SHA256 of `message` under `secret`.
pub fn mac(secret: &Secret, message: &[u8]) -> [u8; 32] {
    hmac_sha256(secret.as_bytes(), message)
}

/// The raw HMAC-SHA256 of `message` under any byte-string `key`.
///
/// ```
/// // RFC 4231, test case 2.
/// let mac = vouch_core::proof::hmac_sha256(b"Jefe", b"what do ya want for nothing?");
/// assert_eq!(mac[..4], [0x5b, 0xdc, 0xc1, 0x46]);
/// ```
pub fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    match <Hmac<Sha256> as KeyInit>::new_from_slice(key) {
        Ok(mut h) => {
            h.update(message);
            h.finalize().into_bytes().into()
        }
        // HMAC accepts keys of every length, so this arm never runs.
        Err(_) => unreachable!("HMAC-SHA256 accepts keys of any length"),
    }
}

/// An `attributes_signature`: HMAC-SHA256 over the RFC 8785 canonical form of `attributes`.
///
/// ```
/// use vouch_core::{Secret, SignatureEncoding, jcs::parse_attributes, proof::{sign, sign_attributes}};
/// let secret = Secret::new("an-identity-secret");
/// let attrs = parse_attributes(r#"{"plan":"pro","email":"ada@example.com"}"#).unwrap();
/// let sig = sign_attributes(&secret, &attrs, SignatureEncoding::Hex).unwrap();
/// assert_eq!(sig, sign(&secret, br#"{"email":"ada@example.com","plan":"pro"}"#, SignatureEncoding::Hex));
/// ```
pub fn sign_attributes(
    secret: &Secret,
    attributes: &Map<String, Value>,
    enc: SignatureEncoding,
) -> Result<String, ProofError> {
    let canonical = canonicalize(attributes)?;
    Ok(sign(secret, canonical.as_bytes(), enc))
}

/// A compact HS256 identity token for `claims`, with an optional `kid` header naming the
/// secret's key id.
///
/// ```
/// use vouch_core::{IdentityClaims, Secret, proof::issue_identity_token};
/// let token = issue_identity_token(&Secret::new("an-identity-secret"), None, &IdentityClaims::new("42")).unwrap();
/// assert_eq!(token.split('.').count(), 3);
/// ```
pub fn issue_identity_token(
    secret: &Secret,
    kid: Option<&str>,
    claims: &IdentityClaims,
) -> Result<String, ProofError> {
    if let Some(attributes) = &claims.attributes {
        check_attributes(attributes)?;
    }
    // Never issue a token that verification would refuse.
    for (claim, value) in [
        (TimeClaim::Exp, claims.exp),
        (TimeClaim::Nbf, claims.nbf),
        (TimeClaim::Iat, claims.iat),
    ] {
        if let Some(value) = value {
            claim.check_issued(value)?;
        }
    }
    let mut header = Header::new(Algorithm::HS256);
    header.kid = kid.map(str::to_owned);
    let fail = |e: jsonwebtoken::errors::Error| {
        ProofError::TokenMalformed(format!("cannot issue the token: {e}"))
    };
    let key = EncodingKey::from_secret(secret.as_bytes()).map_err(fail)?;
    jsonwebtoken::encode(&header, claims, &key).map_err(fail)
}
