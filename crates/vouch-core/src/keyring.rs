//! An environment's identity secrets ([`KeyRing`]) with their rotation states, and
//! verification of every proof against them.

use core::fmt;

use subtle::ConstantTimeEq;

use crate::encoding::decode_signature;
use crate::error::ProofError;
use crate::jcs::canonicalize;
use crate::mac::{PreKeyedHmac, macs_equal};
use crate::secret::Secret;
use crate::token::{self, IdentityClaims};

/// The state of an identity secret at a given time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyStatus {
    /// Verifies proofs.
    Active,
    /// Past its `expires_at` (the end of a rotation's grace period); verifies nothing.
    Expired,
    /// Revoked; verifies nothing.
    Revoked,
}

/// How a user's identity was proven.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VerifiedBy {
    /// An HMAC-SHA256 signature of the user id.
    Signature,
    /// An HS256 identity token.
    Token,
}

/// One identity secret of an environment, with its key id and life cycle.
///
/// The HMAC state is keyed once, when the entry is built, so each verification costs two
/// SHA-256 block compressions for a short id.
#[derive(Clone)]
pub struct KeyEntry {
    id: String,
    secret: Secret,
    created_at: i64,
    expires_at: Option<i64>,
    revoked_at: Option<i64>,
    hmac: PreKeyedHmac,
}

impl KeyEntry {
    /// A key ring entry. Times are Unix seconds; `expires_at` is the end of a rotation's grace
    /// period, `revoked_at` the moment it was revoked.
    pub fn new(
        id: impl Into<String>,
        secret: Secret,
        created_at: i64,
        expires_at: Option<i64>,
        revoked_at: Option<i64>,
    ) -> Self {
        let hmac = PreKeyedHmac::new(secret.as_bytes());
        Self {
            id: id.into(),
            secret,
            created_at,
            expires_at,
            revoked_at,
            hmac,
        }
    }

    /// The key id (`key_…`).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The secret value.
    pub fn secret(&self) -> &Secret {
        &self.secret
    }

    /// When the secret was created (Unix seconds).
    pub fn created_at(&self) -> i64 {
        self.created_at
    }

    /// When the secret stops verifying (Unix seconds), if it has an expiry.
    pub fn expires_at(&self) -> Option<i64> {
        self.expires_at
    }

    /// When the secret was revoked (Unix seconds), if it was.
    pub fn revoked_at(&self) -> Option<i64> {
        self.revoked_at
    }

    /// The status at `now`: revoked wins over expired; expired once `expires_at <= now`.
    pub fn status(&self, now: i64) -> KeyStatus {
        if self.revoked_at.is_some() {
            KeyStatus::Revoked
        } else if self.expires_at.is_some_and(|t| t <= now) {
            KeyStatus::Expired
        } else {
            KeyStatus::Active
        }
    }

    /// `HMAC-SHA256(secret, message)`, from the pre-keyed state.
    #[inline]
    pub fn mac(&self, message: &[u8]) -> [u8; 32] {
        self.hmac.mac(message)
    }

    /// Whether `signature` is `HMAC-SHA256(secret, message)`, compared in constant time.
    #[inline]
    pub fn verify(&self, message: &[u8], signature: &[u8; 32]) -> bool {
        macs_equal(&self.mac(message), signature)
    }
}

impl fmt::Debug for KeyEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyEntry")
            .field("id", &self.id)
            .field("secret", &self.secret)
            .field("created_at", &self.created_at)
            .field("expires_at", &self.expires_at)
            .field("revoked_at", &self.revoked_at)
            .finish()
    }
}

/// All identity secrets of one environment (active, expired and revoked).
///
/// A proof is valid when it verifies under any *active* secret; verification returns the key
/// id that matched.
///
/// ```
/// use vouch_core::{KeyEntry, KeyRing, ProofError, Secret, SignatureEncoding};
/// use vouch_core::proof::sign;
///
/// let old = Secret::new("the-old-secret-value");
/// let new = Secret::new("the-new-secret-value");
/// let now = 1_000;
/// // Rotation: the old secret keeps working until its grace period ends.
/// let ring = KeyRing::new(vec![
///     KeyEntry::new("key_old", old.clone(), 0, Some(now + 60), None),
///     KeyEntry::new("key_new", new.clone(), now, None, None),
/// ]);
/// let sig = sign(&old, b"42", SignatureEncoding::Hex);
/// assert_eq!(ring.verify_signature(b"42", &sig, now), Ok("key_old"));
/// assert_eq!(ring.verify_signature(b"42", &sig, now + 60), Err(ProofError::InvalidSignature));
/// ```
#[derive(Clone, Debug, Default)]
pub struct KeyRing {
    entries: Vec<KeyEntry>,
}

impl KeyRing {
    /// A ring holding `entries`.
    pub fn new(entries: Vec<KeyEntry>) -> Self {
        Self { entries }
    }

    /// Adds an entry.
    pub fn push(&mut self, e: KeyEntry) {
        self.entries.push(e);
    }

    /// Every entry, whatever its status.
    pub fn entries(&self) -> &[KeyEntry] {
        &self.entries
    }

    /// The entry with key id `id`.
    pub fn get(&self, id: &str) -> Option<&KeyEntry> {
        self.entries.iter().find(|e| e.id == id)
    }

    /// The entries active at `now`.
    pub fn active(&self, now: i64) -> impl Iterator<Item = &KeyEntry> {
        self.entries
            .iter()
            .filter(move |e| e.status(now) == KeyStatus::Active)
    }

    /// Verify a user-id/company-id signature string against every active key; returns the
    /// matching key id.
    ///
    /// Errors: [`ProofError::Malformed`] for a signature in no accepted encoding,
    /// [`ProofError::NoActiveKey`] when nothing is active, otherwise
    /// [`ProofError::InvalidSignature`].
    #[inline]
    pub fn verify_signature(
        &self,
        message: &[u8],
        signature: &str,
        now: i64,
    ) -> Result<&str, ProofError> {
        let mut active = self.active(now);
        let Some(first) = active.next() else {
            decode_signature(signature)?;
            return Err(ProofError::NoActiveKey);
        };
        // The first key's MAC is computed before the signature is decoded: the two are
        // independent, so the CPU overlaps the decoding with the hashing.
        let expected = first.mac(message);
        let mac = decode_signature(signature)?;
        if macs_equal(&expected, &mac) {
            return Ok(&first.id);
        }
        active
            .find(|e| e.verify(message, &mac))
            .map(|e| e.id.as_str())
            .ok_or(ProofError::InvalidSignature)
    }

    /// Verify a decoded MAC against every active key; returns the matching key id.
    pub fn verify_mac(&self, message: &[u8], mac: &[u8; 32], now: i64) -> Result<&str, ProofError> {
        let mut any_active = false;
        for e in self.active(now) {
            any_active = true;
            if e.verify(message, mac) {
                return Ok(&e.id);
            }
        }
        Err(if any_active {
            ProofError::InvalidSignature
        } else {
            ProofError::NoActiveKey
        })
    }

    /// Verify an `attributes_signature`: HMAC-SHA256 over the RFC 8785 canonical form of
    /// `attributes`, under any active key. Returns the matching key id.
    ///
    /// Attributes that cannot be canonicalised unambiguously give
    /// [`ProofError::InvalidAttributes`].
    pub fn verify_attributes(
        &self,
        attributes: &serde_json::Map<String, serde_json::Value>,
        signature: &str,
        now: i64,
    ) -> Result<&str, ProofError> {
        let mac = decode_signature(signature)?;
        let canonical = canonicalize(attributes)?;
        self.verify_mac(canonical.as_bytes(), &mac, now)
    }

    /// Verify an HS256 identity token; returns the key id that verified it and its claims.
    ///
    /// The `kid` header selects the key (must be active, else TokenUnknownKey /
    /// TokenBadSignature); without kid, every active key is tried. `exp` and `nbf` are
    /// enforced against `now` with [`token::TOKEN_LEEWAY_SECONDS`] of leeway, and `sub` must
    /// equal `expected_sub` when one is given.
    pub fn verify_token(
        &self,
        token: &str,
        expected_sub: Option<&str>,
        now: i64,
    ) -> Result<(&str, IdentityClaims), ProofError> {
        let parsed = token::parse(token)?;
        if let Some(kid) = parsed.kid() {
            let entry = self.get(kid).ok_or(ProofError::TokenUnknownKey)?;
            if entry.status(now) != KeyStatus::Active {
                return Err(ProofError::TokenBadSignature);
            }
            let claims = parsed.verify_with(entry, expected_sub, now)?;
            return Ok((&entry.id, claims));
        }
        // With no active key at all this is still a bad token signature (code invalid_token).
        for entry in self.active(now) {
            match parsed.verify_with(entry, expected_sub, now) {
                Err(ProofError::TokenBadSignature) => continue,
                Ok(claims) => return Ok((&entry.id, claims)),
                Err(other) => return Err(other),
            }
        }
        Err(ProofError::TokenBadSignature)
    }

    /// Constant-time search of ANY key (active or not) whose value equals `candidate`
    /// (exposure detection). Every key is compared, whether or not an earlier one matched.
    pub fn find_by_value(&self, candidate: &str) -> Option<&KeyEntry> {
        let candidate = candidate.as_bytes();
        let mut found = None;
        for e in &self.entries {
            if bool::from(e.secret.as_bytes().ct_eq(candidate)) {
                found = Some(e);
            }
        }
        found
    }
}
