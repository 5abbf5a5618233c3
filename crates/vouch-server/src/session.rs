//! Session tokens: EdDSA (Ed25519) JWTs that any service can verify offline
//! against `/.well-known/jwks.json`.

use std::collections::HashMap;
use std::sync::Mutex;

use base64ct::{Base64UrlUnpadded, Encoding};
use jsonwebtoken::{Algorithm, DecodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use vouch_core::VerifiedBy;
use zeroize::Zeroizing;

use crate::crypto::MasterKey;
use crate::model::{MAX_SESSION_TTL, SigningKeyRecord, Ts};

/// The claims of a session token.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SessionClaims {
    pub iss: String,
    /// The environment id.
    pub aud: String,
    /// The user id, or the visitor id of an anonymous session.
    pub sub: String,
    pub verified: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verified_by: Option<VerifiedBy>,
    /// The id of the identity secret that proved the user (null when unverified):
    /// a session is refused once that secret is revoked or expired.
    #[serde(default)]
    pub key_id: Option<String>,
    #[serde(default)]
    pub anonymous: bool,
    /// The visitor id (also set on user sessions opened from a visitor).
    pub vid: String,
    /// Session id.
    pub sid: String,
    pub iat: Ts,
    pub exp: Ts,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionError {
    Invalid,
    Expired,
}

/// The prefix of session signing key ids (`sig_…`), as published in the JWKS.
pub const SIGNING_KEY_PREFIX: &str = "sig";

pub(crate) fn seal_context(kid: &str) -> String {
    format!("signing-key:{kid}")
}

/// Creates a new signing key, sealed for the store.
pub fn new_signing_key(master: &MasterKey, now: Ts) -> anyhow::Result<SigningKeyRecord> {
    let mut seed = Zeroizing::new([0u8; 32]);
    getrandom::fill(seed.as_mut()).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
    // Not `sk_`: that is the prefix of identity secrets, which secret scanners match, and
    // a public key id must not look like one. Keys stored with an `sk_` id still load.
    let kid = vouch_core::keys::generate_id(SIGNING_KEY_PREFIX);
    signing_key_from_seed(master, &kid, &seed, now)
}

/// The record of the Ed25519 key with this 32-byte seed (RFC 8032 private key), sealed for
/// the store. Used for fresh keys, and for known-answer tests with published keys.
pub fn signing_key_from_seed(
    master: &MasterKey,
    kid: &str,
    seed: &[u8; 32],
    now: Ts,
) -> anyhow::Result<SigningKeyRecord> {
    let signing = ed25519_dalek::SigningKey::from_bytes(seed);
    let ciphertext = master.seal(seed, &seal_context(kid))?;
    Ok(SigningKeyRecord {
        kid: kid.to_owned(),
        ciphertext,
        public_key: signing.verifying_key().to_bytes().to_vec(),
        created_at: now,
        retired_at: None,
    })
}

/// The loaded key set: one current signing key and every published public key.
pub struct SessionKeys {
    current_kid: String,
    /// Kept expanded: deriving it again for every token costs a scalar
    /// multiplication per identify. aws-lc's Ed25519 (already linked for
    /// TLS) signs in about half the time of ed25519-dalek's portable code,
    /// with the same deterministic signatures (RFC 8032).
    current: aws_lc_rs::signature::Ed25519KeyPair,
    /// The compact-JWS header, base64url, the same for every token.
    header_b64: String,
    verifiers: HashMap<String, DecodingKey>,
    jwks: Value,
    /// Tokens already verified, by SHA-256 of the whole token: a widget sends
    /// the same session token with every call, and an Ed25519 verification
    /// costs about 25 µs. Expiry is still checked on every use; a key change
    /// builds a new `SessionKeys`, so the cache never outlives its keys.
    verified: Mutex<HashMap<[u8; 32], SessionClaims>>,
}

/// Verified tokens kept (about 300 bytes each).
const VERIFIED_CACHE: usize = 10_000;

impl std::fmt::Debug for SessionKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionKeys")
            .field("current_kid", &self.current_kid)
            .field("published", &self.verifiers.len())
            .finish()
    }
}

impl SessionKeys {
    /// Builds the key set from stored records: the newest unretired key signs;
    /// retired keys stay published until every token they signed has expired.
    pub fn load(master: &MasterKey, records: &[SigningKeyRecord], now: Ts) -> anyhow::Result<Self> {
        let current = records
            .iter()
            .filter(|r| r.retired_at.is_none())
            .max_by_key(|r| (r.created_at, r.kid.clone()))
            .ok_or_else(|| anyhow::anyhow!("no current session signing key in the store"))?;
        let seed = master.open(&current.ciphertext, &seal_context(&current.kid))?;
        let seed: &[u8; 32] = seed
            .as_slice()
            .try_into()
            .map_err(|_| anyhow::anyhow!("stored signing key {} is not 32 bytes", current.kid))?;
        let signing = aws_lc_rs::signature::Ed25519KeyPair::from_seed_unchecked(seed)
            .map_err(|_| anyhow::anyhow!("stored signing key {} is not usable", current.kid))?;
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(current.kid.clone());
        let header_b64 = Base64UrlUnpadded::encode_string(&serde_json::to_vec(&header)?);
        let mut verifiers = HashMap::new();
        let mut keys = Vec::new();
        for r in records {
            let published = r.retired_at.is_none_or(|at| at + MAX_SESSION_TTL > now);
            if !published {
                continue;
            }
            verifiers.insert(r.kid.clone(), DecodingKey::from_ed_der(&r.public_key));
            keys.push(json!({
                "kty": "OKP",
                "crv": "Ed25519",
                "alg": "EdDSA",
                "use": "sig",
                "kid": r.kid,
                "x": Base64UrlUnpadded::encode_string(&r.public_key),
            }));
        }
        Ok(Self {
            current_kid: current.kid.clone(),
            current: signing,
            header_b64,
            verifiers,
            jwks: json!({ "keys": keys }),
            verified: Mutex::new(HashMap::new()),
        })
    }

    pub fn jwks(&self) -> &Value {
        &self.jwks
    }

    pub fn current_kid(&self) -> &str {
        &self.current_kid
    }

    /// A compact JWS (RFC 7515) signed with Ed25519 (RFC 8037): the same
    /// bytes `jsonwebtoken::encode` produces, with the key kept expanded.
    pub fn issue(&self, claims: &SessionClaims) -> anyhow::Result<String> {
        let claims_b64 = Base64UrlUnpadded::encode_string(&serde_json::to_vec(claims)?);
        Ok(self.sign_compact(&self.header_b64, &claims_b64))
    }

    /// The compact JWS `protected.payload.signature` of two base64url parts, signed with the
    /// current key (what [`Self::issue`] does with its own header and the claims).
    pub fn sign_compact(&self, protected_b64: &str, payload_b64: &str) -> String {
        let mut token = String::with_capacity(protected_b64.len() + payload_b64.len() + 90);
        token.push_str(protected_b64);
        token.push('.');
        token.push_str(payload_b64);
        let signature = self.current.sign(token.as_bytes());
        token.push('.');
        token.push_str(&Base64UrlUnpadded::encode_string(signature.as_ref()));
        token
    }

    pub fn verify(&self, token: &str) -> Result<SessionClaims, SessionError> {
        self.verify_at(token, time::OffsetDateTime::now_utc().unix_timestamp())
    }

    /// [`Self::verify`] with the clock of the cached path given (the full
    /// verification reads the system clock, as jsonwebtoken does).
    fn verify_at(&self, token: &str, now: Ts) -> Result<SessionClaims, SessionError> {
        let digest = vouch_core::keys::sha256(token.as_bytes());
        let cached = self
            .verified
            .lock()
            .ok()
            .and_then(|m| m.get(&digest).cloned());
        let m = &*crate::metrics::METRICS;
        crate::metrics::Metrics::outcome(
            &m.session_cache_lookups,
            if cached.is_some() { "hit" } else { "miss" },
        );
        if let Some(claims) = cached {
            // The same rule as jsonwebtoken's with no leeway.
            return if claims.exp < now {
                Err(SessionError::Expired)
            } else {
                Ok(claims)
            };
        }
        let claims = self.verify_signed(token)?;
        if let Ok(mut m) = self.verified.lock() {
            if m.len() >= VERIFIED_CACHE {
                m.retain(|_, c| c.exp >= now);
                if m.len() >= VERIFIED_CACHE {
                    m.clear();
                }
            }
            m.insert(digest, claims.clone());
        }
        Ok(claims)
    }

    fn verify_signed(&self, token: &str) -> Result<SessionClaims, SessionError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| SessionError::Invalid)?;
        if header.alg != Algorithm::EdDSA {
            return Err(SessionError::Invalid);
        }
        let key = header
            .kid
            .as_deref()
            .and_then(|kid| self.verifiers.get(kid))
            .ok_or(SessionError::Invalid)?;
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.leeway = 0;
        validation.validate_aud = false;
        validation.set_required_spec_claims(&["exp", "sub", "aud", "iss"]);
        match jsonwebtoken::decode::<SessionClaims>(token, key, &validation) {
            Ok(data) => Ok(data.claims),
            Err(e) if matches!(e.kind(), jsonwebtoken::errors::ErrorKind::ExpiredSignature) => {
                Err(SessionError::Expired)
            }
            Err(_) => Err(SessionError::Invalid),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A master key, one signing key loaded, and claims valid for 60 s from now.
    fn fixture(
        verified_by: Option<VerifiedBy>,
    ) -> (MasterKey, SigningKeyRecord, SessionKeys, SessionClaims) {
        let master = MasterKey::generate().unwrap();
        let rec = new_signing_key(&master, 1_000).unwrap();
        let keys = SessionKeys::load(&master, std::slice::from_ref(&rec), 1_000).unwrap();
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let claims = SessionClaims {
            iss: "http://vouch.test".into(),
            aud: "env_1".into(),
            sub: "42".into(),
            verified: verified_by.is_some(),
            verified_by,
            key_id: verified_by.map(|_| "key_1".to_string()),
            anonymous: false,
            vid: "vis_1".into(),
            sid: "ses_1".into(),
            iat: now,
            exp: now + 60,
        };
        (master, rec, keys, claims)
    }

    #[test]
    fn issued_tokens_verify_with_jsonwebtoken_and_match_its_encoding() {
        let (master, rec, keys, claims) = fixture(Some(VerifiedBy::Signature));
        let token = keys.issue(&claims).unwrap();
        assert_eq!(keys.verify(&token).unwrap(), claims);
        // Byte-for-byte what jsonwebtoken would have produced.
        let seed = master
            .open(&rec.ciphertext, &seal_context(&rec.kid))
            .unwrap();
        let mut der = vec![
            0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22,
            0x04, 0x20,
        ];
        der.extend_from_slice(&seed);
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(rec.kid.clone());
        let reference = jsonwebtoken::encode(
            &header,
            &claims,
            &jsonwebtoken::EncodingKey::from_ed_der(&der),
        )
        .unwrap();
        assert_eq!(token, reference);
        // Any changed byte fails.
        let mut tampered = token.clone().into_bytes();
        let i = tampered.len() - 5;
        tampered[i] = if tampered[i] == b'A' { b'B' } else { b'A' };
        assert!(
            keys.verify(std::str::from_utf8(&tampered).unwrap())
                .is_err()
        );
    }

    #[test]
    fn the_verified_cache_still_checks_bytes_and_expiry() {
        let (master, rec, keys, claims) = fixture(None);
        let now = claims.iat;
        let token = keys.issue(&claims).unwrap();
        // Verified once, then served from the cache.
        assert_eq!(keys.verify(&token).unwrap(), claims);
        assert_eq!(keys.verified.lock().unwrap().len(), 1);
        assert_eq!(keys.verify(&token).unwrap(), claims);
        // A token differing in one byte of its claims is not the cached one.
        let forged = token.replacen(
            &Base64UrlUnpadded::encode_string(&serde_json::to_vec(&claims).unwrap()),
            &Base64UrlUnpadded::encode_string(
                &serde_json::to_vec(&SessionClaims {
                    verified: true,
                    ..claims.clone()
                })
                .unwrap(),
            ),
            1,
        );
        assert_ne!(forged, token);
        assert_eq!(keys.verify(&forged), Err(SessionError::Invalid));
        // Expiry is checked on every cached use.
        assert_eq!(keys.verify_at(&token, now + 60).unwrap(), claims);
        assert_eq!(keys.verify_at(&token, now + 61), Err(SessionError::Expired));
        // Keys loaded again (a rotation) start with an empty cache.
        let again = SessionKeys::load(&master, std::slice::from_ref(&rec), 1_000).unwrap();
        assert!(again.verified.lock().unwrap().is_empty());
    }

    #[test]
    fn new_signing_keys_are_not_named_like_identity_secrets() {
        let master = MasterKey::generate().unwrap();
        let rec = new_signing_key(&master, 1_000).unwrap();
        assert!(rec.kid.starts_with("sig_"), "{}", rec.kid);
        assert!(!rec.kid.starts_with("sk_"));
    }

    #[test]
    fn keys_stored_with_the_old_sk_prefix_still_sign_and_verify() {
        let (master, _, _, claims) = fixture(Some(VerifiedBy::Token));
        // A record as earlier versions wrote it: the kid is part of the sealing context.
        let seed = [7u8; 32];
        let old_kid = "sk_0123456789abcdefghijklmn".to_string();
        let old = SigningKeyRecord {
            kid: old_kid.clone(),
            ciphertext: master.seal(&seed, &seal_context(&old_kid)).unwrap(),
            public_key: ed25519_dalek::SigningKey::from_bytes(&seed)
                .verifying_key()
                .to_bytes()
                .to_vec(),
            created_at: 500,
            retired_at: None,
        };
        let keys = SessionKeys::load(&master, std::slice::from_ref(&old), 1_000).unwrap();
        assert_eq!(keys.current_kid(), old_kid);
        let token = keys.issue(&claims).unwrap();
        assert_eq!(keys.verify(&token).unwrap(), claims);
        // After a rotation to a `sig_` key, tokens of the old key still verify.
        let mut retired = old.clone();
        retired.retired_at = Some(1_000);
        let new = new_signing_key(&master, 1_000).unwrap();
        let rotated = SessionKeys::load(&master, &[retired, new.clone()], 1_000).unwrap();
        assert_eq!(rotated.current_kid(), new.kid);
        assert_eq!(rotated.verify(&token).unwrap(), claims);
        let kids: Vec<&str> = rotated.jwks()["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["kid"].as_str().unwrap())
            .collect();
        assert!(kids.contains(&old_kid.as_str()) && kids.contains(&new.kid.as_str()));
    }
}
