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
    /// Sessions issued at or before this instant are refused.
    pub sessions_revoked_at: Option<Ts>,
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
    /// The admin token that made the change.
    pub actor: Option<String>,
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
    /// The call would store more than the limits allow (attributes, companies).
    TooLarge(String),
}

/// Stored attributes of one user or company (unsigned and verified together), as JSON.
pub const MAX_ATTRIBUTES_BYTES: usize = 32 * 1024;
/// Stored attribute keys of one user or company.
pub const MAX_ATTRIBUTE_KEYS: usize = 200;
/// Companies one user belongs to.
pub const MAX_COMPANIES_PER_USER: i64 = 100;
/// Largest accepted request body.
pub const BODY_LIMIT: usize = 64 * 1024;
/// An event's properties, as JSON.
pub const MAX_EVENT_PROPERTIES_BYTES: usize = 8 * 1024;

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

/// An erased user: sessions issued for it before `deleted_at` are refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tombstone {
    pub env_id: String,
    pub user_id: String,
    pub deleted_at: Ts,
}

/// What an admin token may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum AdminRole {
    /// Reads and writes.
    Admin,
    /// Reads only.
    Viewer,
}

impl AdminRole {
    pub fn as_str(self) -> &'static str {
        match self {
            AdminRole::Admin => "admin",
            AdminRole::Viewer => "viewer",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "admin" => Some(AdminRole::Admin),
            "viewer" => Some(AdminRole::Viewer),
            _ => None,
        }
    }
}

/// An admin token; only the SHA-256 of its value is stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdminTokenRecord {
    pub id: String,
    pub name: String,
    pub role: AdminRole,
    /// The environments it may see; None = every environment.
    pub environment_ids: Option<Vec<String>>,
    pub hash: [u8; 32],
    pub created_at: Ts,
}

/// An audit entry to append in the same transaction as the change it records.
#[derive(Clone, Debug)]
pub struct NewAudit {
    pub env_id: Option<String>,
    pub kind: &'static str,
    pub user_id: Option<String>,
    pub key_id: Option<String>,
    /// The admin token that made the change; None for the widget API and the server.
    pub actor: Option<String>,
    pub detail: Value,
    pub at: Ts,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Coverage {
    pub verified: i64,
    pub unverified: i64,
    pub rejected: i64,
}

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
