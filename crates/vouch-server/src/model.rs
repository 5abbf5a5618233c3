//! Domain records shared by the store, the handlers and the API shapes.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use vouch_core::{Mode, VerifiedBy};

/// Unix seconds.
pub type Ts = i64;

/// Longest session lifetime an environment may configure (30 days).
pub const MAX_SESSION_TTL: i64 = 30 * 24 * 3600;
pub const DEFAULT_SESSION_TTL: i64 = 24 * 3600;
pub const DEFAULT_RATE_LIMIT_PER_USER: u32 = 10;
pub const DEFAULT_RATE_LIMIT_PER_ADDRESS: u32 = 300;
pub const DEFAULT_RATE_LIMIT_PER_ENVIRONMENT: u32 = 3000;

fn default_env_limit() -> u32 {
    DEFAULT_RATE_LIMIT_PER_ENVIRONMENT
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Enforcement {
    Off,
    Enforce,
}

/// Per-environment settings, stored as one JSON document.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EnvSettings {
    pub name: String,
    pub mode: Mode,
    pub enforcement: Enforcement,
    pub allow_anonymous: bool,
    pub allowed_origins: Vec<String>,
    pub unsigned_session_limit: Option<u64>,
    pub session_ttl_seconds: i64,
    pub rate_limit_per_user: u32,
    pub rate_limit_per_address: u32,
    /// Failed verifications a minute across the whole environment.
    #[serde(default = "default_env_limit")]
    pub rate_limit_per_environment: u32,
}

impl EnvSettings {
    pub fn new(name: String, mode: Mode) -> Self {
        Self {
            name,
            mode,
            enforcement: Enforcement::Off,
            allow_anonymous: true,
            allowed_origins: Vec::new(),
            unsigned_session_limit: None,
            session_ttl_seconds: DEFAULT_SESSION_TTL,
            rate_limit_per_user: DEFAULT_RATE_LIMIT_PER_USER,
            rate_limit_per_address: DEFAULT_RATE_LIMIT_PER_ADDRESS,
            rate_limit_per_environment: DEFAULT_RATE_LIMIT_PER_ENVIRONMENT,
        }
    }
}

#[derive(Clone, Debug)]
pub struct Environment {
    pub id: String,
    pub project_id: String,
    pub publishable_key: String,
    pub settings: EnvSettings,
    pub unsigned_count: i64,
    pub created_at: Ts,
    pub updated_at: Ts,
}

/// A stored identity secret; the value is sealed.
#[derive(Clone, Debug)]
pub struct SecretRecord {
    pub id: String,
    pub env_id: String,
    pub ciphertext: Vec<u8>,
    pub imported: bool,
    pub created_at: Ts,
    pub expires_at: Option<Ts>,
    pub revoked_at: Option<Ts>,
}

/// A session signing key; the Ed25519 seed is sealed.
#[derive(Clone, Debug)]
pub struct SigningKeyRecord {
    pub kid: String,
    pub ciphertext: Vec<u8>,
    pub public_key: Vec<u8>,
    pub created_at: Ts,
    pub retired_at: Option<Ts>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct UserRecord {
    pub env_id: String,
    pub id: String,
    pub verified: bool,
    pub verified_by: Option<VerifiedBy>,
    pub key_id: Option<String>,
    pub verified_at: Option<Ts>,
    pub attributes: Map<String, Value>,
    pub verified_attributes: Map<String, Value>,
    pub counted_unsigned: bool,
    pub created_at: Ts,
    pub updated_at: Ts,
}

#[derive(Clone, Debug, PartialEq)]
pub struct CompanyRecord {
    pub env_id: String,
    pub id: String,
    pub verified: bool,
    pub key_id: Option<String>,
    pub verified_at: Option<Ts>,
    pub attributes: Map<String, Value>,
    pub created_at: Ts,
    pub updated_at: Ts,
}

#[derive(Clone, Debug)]
pub struct EventRecord {
    pub seq: i64,
    pub id: String,
    pub env_id: String,
    pub user_id: Option<String>,
    pub visitor_id: Option<String>,
    pub name: String,
    pub properties: Map<String, Value>,
    pub created_at: Ts,
}

#[derive(Clone, Debug)]
pub struct AuditRecord {
    pub seq: i64,
    pub id: String,
    pub env_id: Option<String>,
    pub kind: String,
    pub user_id: Option<String>,
    pub key_id: Option<String>,
    pub detail: Value,
    pub created_at: Ts,
}

/// What an identify proved, decided before the store is touched.
#[derive(Clone, Debug)]
pub struct Proven {
    pub by: VerifiedBy,
    pub key_id: String,
}

/// An identify, ready for the store to apply atomically.
#[derive(Clone, Debug)]
pub struct IdentifyCommand {
    pub env_id: String,
    pub user_id: String,
    pub proof: Option<Proven>,
    /// Attributes sent without proof.
    pub attributes: Map<String, Value>,
    /// Attributes proven by `attributes_signature` or a token's claim.
    pub verified_attributes: Map<String, Value>,
    pub enforcement: Enforcement,
    pub unsigned_limit: Option<u64>,
    /// A token's `jti` and how long it must be remembered.
    pub jti: Option<(String, Ts)>,
    pub now: Ts,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IdentifyRejection {
    /// Enforcement is on, or the user was verified before.
    SignatureRequired(&'static str),
    UnsignedLimitReached,
    TokenReplayed,
}

#[derive(Clone, Debug)]
pub struct IdentifyOutcome {
    pub user: UserRecord,
    pub created: bool,
    pub changed: bool,
    pub ignored_attributes: Vec<String>,
    /// The environment's unsigned counter grew by one.
    pub counted_unsigned: bool,
    /// The user row must be written: it changed, its `verified_at` moved, or
    /// it was counted against the unsigned cap. A repeat identify of an
    /// unchanged user within [`VERIFIED_AT_RESOLUTION`] writes nothing.
    pub write: bool,
}

/// `verified_at` is the user's last proof to this many seconds: a proof within
/// it of the recorded one leaves the row as it is, so the common case — the
/// same user identified again on every page load — is a read, not a commit.
pub const VERIFIED_AT_RESOLUTION: Ts = 60;

/// Identify outcome as recorded in the stats.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Verified,
    Unverified,
    Rejected,
}

#[derive(Clone, Debug)]
pub struct GroupCommand {
    pub env_id: String,
    pub user_id: String,
    pub company_id: String,
    pub proof: Option<String>,
    pub attributes: Map<String, Value>,
    pub enforcement: Enforcement,
    pub now: Ts,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Coverage {
    pub verified: i64,
    pub unverified: i64,
    pub rejected: i64,
}

/// Applies the identity binding rules to one identify: pure, shared by every
/// store so both backends decide the same way inside their transaction.
pub fn apply_identify(
    existing: Option<UserRecord>,
    cmd: &IdentifyCommand,
    env_unsigned_count: i64,
) -> Result<IdentifyOutcome, IdentifyRejection> {
    if cmd.proof.is_none() {
        if cmd.enforcement == Enforcement::Enforce {
            return Err(IdentifyRejection::SignatureRequired(
                "Identity verification is enforced in this environment: send a `signature` or `token` with identify.",
            ));
        }
        if existing.as_ref().is_some_and(|u| u.verified) {
            return Err(IdentifyRejection::SignatureRequired(
                "This user id has been verified before, so every identify of it needs a `signature` or `token`.",
            ));
        }
    }
    let created = existing.is_none();
    let mut user = existing.unwrap_or_else(|| UserRecord {
        env_id: cmd.env_id.clone(),
        id: cmd.user_id.clone(),
        verified: false,
        verified_by: None,
        key_id: None,
        verified_at: None,
        attributes: Map::new(),
        verified_attributes: Map::new(),
        counted_unsigned: false,
        created_at: cmd.now,
        updated_at: cmd.now,
    });
    let before = user.clone();

    let mut counted_unsigned = false;
    if cmd.proof.is_none() && !user.counted_unsigned {
        if let Some(limit) = cmd.unsigned_limit
            && env_unsigned_count >= i64::try_from(limit).unwrap_or(i64::MAX)
        {
            return Err(IdentifyRejection::UnsignedLimitReached);
        }
        user.counted_unsigned = true;
        counted_unsigned = true;
    }

    if let Some(proof) = &cmd.proof {
        user.verified = true;
        user.verified_by = Some(proof.by);
        user.key_id = Some(proof.key_id.clone());
        let proof_changed = !before.verified
            || before.verified_by != user.verified_by
            || before.key_id != user.key_id;
        let stale = user
            .verified_at
            .is_none_or(|at| cmd.now.saturating_sub(at) >= VERIFIED_AT_RESOLUTION);
        if proof_changed || stale {
            user.verified_at = Some(cmd.now);
        }
    }
    for (k, v) in &cmd.verified_attributes {
        user.verified_attributes.insert(k.clone(), v.clone());
        user.attributes.insert(k.clone(), v.clone());
    }
    let mut ignored = Vec::new();
    for (k, v) in &cmd.attributes {
        if cmd.verified_attributes.contains_key(k) {
            continue;
        }
        match user.verified_attributes.get(k) {
            Some(locked) => {
                if locked != v {
                    ignored.push(k.clone());
                }
            }
            None => {
                user.attributes.insert(k.clone(), v.clone());
            }
        }
    }
    let changed = created
        || user.attributes != before.attributes
        || user.verified_attributes != before.verified_attributes
        || user.verified != before.verified
        || user.key_id != before.key_id
        || user.verified_by != before.verified_by;
    let touched = user.verified_at != before.verified_at;
    if changed || touched {
        user.updated_at = cmd.now;
    }
    Ok(IdentifyOutcome {
        user,
        created,
        changed,
        ignored_attributes: ignored,
        counted_unsigned,
        write: changed || touched || counted_unsigned,
    })
}

/// Same rules for a company: once verified, always needs a proof.
pub fn apply_group(
    existing: Option<CompanyRecord>,
    cmd: &GroupCommand,
) -> Result<CompanyRecord, IdentifyRejection> {
    if cmd.proof.is_none() {
        if cmd.enforcement == Enforcement::Enforce {
            return Err(IdentifyRejection::SignatureRequired(
                "Identity verification is enforced in this environment: send the company `signature` with group.",
            ));
        }
        if existing.as_ref().is_some_and(|c| c.verified) {
            return Err(IdentifyRejection::SignatureRequired(
                "This company id has been verified before, so every group call for it needs a `signature`.",
            ));
        }
    }
    let mut company = existing.unwrap_or_else(|| CompanyRecord {
        env_id: cmd.env_id.clone(),
        id: cmd.company_id.clone(),
        verified: false,
        key_id: None,
        verified_at: None,
        attributes: Map::new(),
        created_at: cmd.now,
        updated_at: cmd.now,
    });
    if let Some(key_id) = &cmd.proof {
        company.verified = true;
        company.key_id = Some(key_id.clone());
        company.verified_at = Some(cmd.now);
    }
    for (k, v) in &cmd.attributes {
        company.attributes.insert(k.clone(), v.clone());
    }
    company.updated_at = cmd.now;
    Ok(company)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cmd(proof: bool) -> IdentifyCommand {
        IdentifyCommand {
            env_id: "env_1".into(),
            user_id: "42".into(),
            proof: proof.then(|| Proven {
                by: VerifiedBy::Signature,
                key_id: "key_1".into(),
            }),
            attributes: Map::new(),
            verified_attributes: Map::new(),
            enforcement: Enforcement::Off,
            unsigned_limit: None,
            jti: None,
            now: 1000,
        }
    }

    fn obj(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }

    #[test]
    fn once_verified_user_needs_proof_forever() {
        let first = apply_identify(None, &cmd(true), 0).unwrap();
        assert!(first.user.verified);
        let again = apply_identify(Some(first.user), &cmd(false), 0);
        assert!(matches!(
            again,
            Err(IdentifyRejection::SignatureRequired(_))
        ));
    }

    #[test]
    fn enforcement_rejects_unproven() {
        let mut c = cmd(false);
        c.enforcement = Enforcement::Enforce;
        assert!(apply_identify(None, &c, 0).is_err());
    }

    #[test]
    fn locked_attributes_are_not_overwritten_and_are_listed() {
        let mut c = cmd(true);
        c.verified_attributes = obj(json!({"plan": "pro", "name": "Ann"}));
        let first = apply_identify(None, &c, 0).unwrap();
        let mut c2 = cmd(true);
        c2.attributes = obj(json!({"plan": "enterprise", "name": "Ann", "city": "Oslo"}));
        let out = apply_identify(Some(first.user), &c2, 0).unwrap();
        assert_eq!(out.ignored_attributes, vec!["plan".to_string()]);
        assert_eq!(out.user.attributes["plan"], json!("pro"));
        assert_eq!(out.user.attributes["city"], json!("Oslo"));
    }

    #[test]
    fn a_repeat_identify_of_an_unchanged_user_writes_nothing() {
        let mut c = cmd(true);
        c.attributes = obj(json!({"plan": "pro"}));
        let first = apply_identify(None, &c, 0).unwrap();
        assert!(first.write && first.created);
        assert_eq!(first.user.verified_at, Some(1000));

        // Same proof and attributes within the resolution: nothing to write.
        c.now = 1000 + VERIFIED_AT_RESOLUTION - 1;
        let again = apply_identify(Some(first.user.clone()), &c, 0).unwrap();
        assert!(!again.write && !again.changed);
        assert_eq!(again.user, first.user);

        // A new attribute value is written at once, verified_at kept.
        let mut changed = c.clone();
        changed.attributes = obj(json!({"plan": "team"}));
        let out = apply_identify(Some(first.user.clone()), &changed, 0).unwrap();
        assert!(out.write && out.changed);
        assert_eq!(out.user.updated_at, changed.now);
        assert_eq!(out.user.verified_at, Some(1000));

        // Another key proves it: verified_at moves at once.
        let mut other_key = c.clone();
        other_key.proof = Some(Proven {
            by: VerifiedBy::Signature,
            key_id: "key_other".into(),
        });
        let out = apply_identify(Some(first.user.clone()), &other_key, 0).unwrap();
        assert!(out.write);
        assert_eq!(out.user.verified_at, Some(other_key.now));

        // Past the resolution the last proof is recorded again.
        c.now = 1000 + VERIFIED_AT_RESOLUTION;
        let later = apply_identify(Some(first.user), &c, 0).unwrap();
        assert!(later.write && !later.changed);
        assert_eq!(later.user.verified_at, Some(c.now));
        assert_eq!(later.user.updated_at, c.now);
    }

    #[test]
    fn unsigned_cap_counts_distinct_users_once() {
        let mut c = cmd(false);
        c.unsigned_limit = Some(1);
        let first = apply_identify(None, &c, 0).unwrap();
        assert!(first.counted_unsigned);
        // The same user again does not count twice, even at the cap.
        let again = apply_identify(Some(first.user), &c, 1).unwrap();
        assert!(!again.counted_unsigned);
        // A new user at the cap is refused.
        let mut other = c.clone();
        other.user_id = "43".into();
        assert_eq!(
            apply_identify(None, &other, 1).unwrap_err(),
            IdentifyRejection::UnsignedLimitReached
        );
    }
}

/// Event types a webhook endpoint can subscribe to.
pub const EVENT_TYPES: &[&str] = &[
    "user.created",
    "user.updated",
    "identity.rejected",
    "secret.created",
    "secret.revoked",
    "secret.exposed",
];

/// A webhook endpoint; its signing secrets are sealed.
#[derive(Clone, Debug)]
pub struct WebhookEndpoint {
    pub id: String,
    pub env_id: String,
    pub url: String,
    pub event_types: Option<Vec<String>>,
    pub secrets: Vec<u8>,
    pub disabled_at: Option<Ts>,
    pub disabled_reason: Option<String>,
    pub created_at: Ts,
    pub updated_at: Ts,
}

/// A delivery claimed for one attempt.
#[derive(Clone, Debug)]
pub struct ClaimedDelivery {
    pub delivery_id: String,
    pub message_id: String,
    pub endpoint_id: String,
    pub env_id: String,
    pub url: String,
    pub secrets: Vec<u8>,
    pub payload: String,
    /// Seconds since the epoch when the event happened.
    pub message_created_at: Ts,
    /// 1 for the first try.
    pub attempt: i64,
    /// When the next try is due if this one fails (ms); None when this is the last.
    pub next_attempt_at: Option<i64>,
}

/// What one attempt came to.
#[derive(Clone, Debug)]
pub struct AttemptOutcome {
    pub delivery: ClaimedDelivery,
    pub status_code: Option<i64>,
    pub latency_ms: i64,
    pub response: Option<String>,
    pub error: Option<String>,
    pub success: bool,
    pub at_ms: i64,
}

#[derive(Clone, Debug)]
pub struct AttemptRecord {
    pub seq: i64,
    pub delivery_id: String,
    pub message_id: String,
    pub attempt: i64,
    pub status_code: Option<i64>,
    pub latency_ms: i64,
    pub response: Option<String>,
    pub error: Option<String>,
    pub next_retry_at: Option<i64>,
    pub created_at: i64,
}
