//! Session tokens: EdDSA (Ed25519) JWTs that any service can verify offline
//! against `/.well-known/jwks.json`.

use std::collections::HashMap;

use base64ct::{Base64UrlUnpadded, Encoding};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use vouch_core::VerifiedBy;
use zeroize::Zeroizing;

use crate::crypto::MasterKey;
use crate::model::{MAX_SESSION_TTL, SigningKeyRecord, Ts};

/// PKCS#8 v1 prefix of an Ed25519 private key; the 32-byte seed follows.
const PKCS8_ED25519_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];

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

fn seal_context(kid: &str) -> String {
    format!("signing-key:{kid}")
}

/// Creates a new signing key, sealed for the store.
pub fn new_signing_key(master: &MasterKey, now: Ts) -> anyhow::Result<SigningKeyRecord> {
    let mut seed = Zeroizing::new([0u8; 32]);
    getrandom::fill(seed.as_mut()).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
    let signing = ed25519_dalek::SigningKey::from_bytes(&seed);
    let kid = vouch_core::keys::generate_id("sk");
    let ciphertext = master.seal(seed.as_ref(), &seal_context(&kid))?;
    Ok(SigningKeyRecord {
        kid,
        ciphertext,
        public_key: signing.verifying_key().to_bytes().to_vec(),
        created_at: now,
        retired_at: None,
    })
}

/// The loaded key set: one current signing key and every published public key.
pub struct SessionKeys {
    current_kid: String,
    current: EncodingKey,
    verifiers: HashMap<String, DecodingKey>,
    jwks: Value,
}

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
        let mut der = Zeroizing::new(Vec::with_capacity(48));
        der.extend_from_slice(&PKCS8_ED25519_PREFIX);
        der.extend_from_slice(&seed);
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
            current: EncodingKey::from_ed_der(&der),
            verifiers,
            jwks: json!({ "keys": keys }),
        })
    }

    pub fn jwks(&self) -> &Value {
        &self.jwks
    }

    pub fn current_kid(&self) -> &str {
        &self.current_kid
    }

    pub fn issue(&self, claims: &SessionClaims) -> anyhow::Result<String> {
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.current_kid.clone());
        Ok(jsonwebtoken::encode(&header, claims, &self.current)?)
    }

    pub fn verify(&self, token: &str) -> Result<SessionClaims, SessionError> {
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
