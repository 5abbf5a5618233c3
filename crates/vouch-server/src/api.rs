//! Request and response shapes of the public HTTP contract (docs/api.md).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;
use vouch_core::{KeyStatus, VerifiedBy};

use crate::model::*;

/// RFC 3339 UTC, seconds precision.
pub fn rfc3339(ts: Ts) -> String {
    time::OffsetDateTime::from_unix_timestamp(ts)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| "1970-01-01T00:00:00Z".into())
}

fn opt_time(ts: Option<Ts>) -> Option<String> {
    ts.map(rfc3339)
}

/// The OpenAPI names of vouch-core's enums (the core crate has no OpenAPI
/// dependency); each serialises as these lowercase strings.
pub mod names {
    /// An environment's mode, fixed when it is created.
    #[derive(Debug, utoipa::ToSchema)]
    #[schema(as = Mode, rename_all = "lowercase")]
    pub enum ModeName {
        Test,
        Live,
    }

    /// How a user's id was proven.
    #[derive(Debug, utoipa::ToSchema)]
    #[schema(as = VerifiedBy, rename_all = "lowercase")]
    pub enum VerifiedByName {
        Signature,
        Token,
    }

    /// An identity secret's state: `expired` once its grace period has ended.
    #[derive(Debug, utoipa::ToSchema)]
    #[schema(as = KeyStatus, rename_all = "lowercase")]
    pub enum KeyStatusName {
        Active,
        Expired,
        Revoked,
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorOut {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable machine-readable code, e.g. `invalid_signature`.
    #[schema(value_type = crate::codes::ErrorCode)]
    pub code: String,
    /// What went wrong and what to do about it.
    pub message: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CompanyOut {
    pub id: String,
    pub verified: bool,
    /// Omitted where a user is one of many (list pages) or is sent
    /// (webhooks): a user's 100 companies of 32 KiB each would make those
    /// megabytes. `GET …/users/{user_id}` and `GET /v1/me` carry them.
    #[schema(value_type = Option<Object>)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attributes: Option<Map<String, Value>>,
    pub key_id: Option<String>,
    pub verified_at: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

impl CompanyOut {
    /// The company with its attributes.
    pub fn full(c: &CompanyRecord) -> Self {
        Self {
            attributes: Some(c.attributes.clone()),
            ..Self::summary(c)
        }
    }

    /// The company without its attributes.
    pub fn summary(c: &CompanyRecord) -> Self {
        Self {
            id: c.id.clone(),
            verified: c.verified,
            attributes: None,
            key_id: c.key_id.clone(),
            verified_at: opt_time(c.verified_at),
            created_at: rfc3339(c.created_at),
            updated_at: rfc3339(c.updated_at),
        }
    }
}

/// A user, as the admin API, `/v1/me` and webhooks show it.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserOut {
    pub id: String,
    pub verified: bool,
    #[schema(value_type = Option<names::VerifiedByName>)]
    pub verified_by: Option<VerifiedBy>,
    pub key_id: Option<String>,
    /// The user's last proof, to the minute: a proof with the same key and
    /// method within 60 s of the recorded one does not move it.
    pub verified_at: Option<String>,
    #[schema(value_type = Object)]
    pub attributes: Map<String, Value>,
    #[schema(value_type = Object)]
    pub verified_attributes: Map<String, Value>,
    pub companies: Vec<CompanyOut>,
    pub created_at: String,
    /// When the user's record last changed (attributes, verification,
    /// `verified_at`).
    pub updated_at: String,
}

impl UserOut {
    /// The user with its companies' attributes (one user asked for).
    pub fn new(u: &UserRecord, companies: &[CompanyRecord]) -> Self {
        Self::with(u, companies.iter().map(CompanyOut::full).collect())
    }

    /// The user with its companies, their attributes left out (list pages
    /// and webhook payloads, whose size must not grow with the companies).
    pub fn listed(u: &UserRecord, companies: &[CompanyRecord]) -> Self {
        Self::with(u, companies.iter().map(CompanyOut::summary).collect())
    }

    fn with(u: &UserRecord, companies: Vec<CompanyOut>) -> Self {
        Self {
            id: u.id.clone(),
            verified: u.verified,
            verified_by: u.verified_by,
            key_id: u.key_id.clone(),
            verified_at: opt_time(u.verified_at),
            attributes: u.attributes.clone(),
            verified_attributes: u.verified_attributes.clone(),
            companies,
            created_at: rfc3339(u.created_at),
            updated_at: rfc3339(u.updated_at),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EnvironmentOut {
    pub id: String,
    pub name: String,
    #[schema(value_type = names::ModeName)]
    pub mode: vouch_core::Mode,
    pub publishable_key: String,
    pub enforcement: Enforcement,
    pub allow_anonymous: bool,
    pub allowed_origins: Vec<String>,
    pub unsigned_session_limit: Option<u64>,
    /// Distinct unverified user ids seen so far (what the limit counts).
    pub unsigned_session_count: i64,
    pub session_ttl_seconds: i64,
    pub rate_limit_per_user: u32,
    pub rate_limit_per_address: u32,
    pub created_at: String,
    pub updated_at: String,
}

impl From<&Environment> for EnvironmentOut {
    fn from(e: &Environment) -> Self {
        let s = &e.settings;
        Self {
            id: e.id.clone(),
            name: s.name.clone(),
            mode: s.mode,
            publishable_key: e.publishable_key.clone(),
            enforcement: s.enforcement,
            allow_anonymous: s.allow_anonymous,
            allowed_origins: s.allowed_origins.clone(),
            unsigned_session_limit: s.unsigned_session_limit,
            unsigned_session_count: e.unsigned_count,
            session_ttl_seconds: s.session_ttl_seconds,
            rate_limit_per_user: s.rate_limit_per_user,
            rate_limit_per_address: s.rate_limit_per_address,
            created_at: rfc3339(e.created_at),
            updated_at: rfc3339(e.updated_at),
        }
    }
}

/// Secret metadata; `value` only when created, imported or revealed.
#[derive(Debug, Serialize, ToSchema)]
pub struct SecretOut {
    pub id: String,
    #[schema(value_type = names::KeyStatusName)]
    pub status: KeyStatus,
    pub imported: bool,
    pub created_at: String,
    pub expires_at: Option<String>,
    pub revoked_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

impl SecretOut {
    pub fn new(s: &SecretRecord, now: Ts, value: Option<String>) -> Self {
        let status = if s.revoked_at.is_some() {
            KeyStatus::Revoked
        } else if s.expires_at.is_some_and(|e| e <= now) {
            KeyStatus::Expired
        } else {
            KeyStatus::Active
        };
        Self {
            id: s.id.clone(),
            status,
            imported: s.imported,
            created_at: rfc3339(s.created_at),
            expires_at: opt_time(s.expires_at),
            revoked_at: opt_time(s.revoked_at),
            value,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EnvironmentCreatedOut {
    #[serde(flatten)]
    pub environment: EnvironmentOut,
    pub secret: SecretOut,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EventOut {
    pub id: String,
    pub event: String,
    pub user_id: Option<String>,
    pub visitor_id: Option<String>,
    #[schema(value_type = Object)]
    pub properties: Map<String, Value>,
    pub created_at: String,
}

impl From<&EventRecord> for EventOut {
    fn from(e: &EventRecord) -> Self {
        Self {
            id: e.id.clone(),
            event: e.name.clone(),
            user_id: e.user_id.clone(),
            visitor_id: e.visitor_id.clone(),
            properties: e.properties.clone(),
            created_at: rfc3339(e.created_at),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditOut {
    pub id: String,
    pub kind: String,
    pub user_id: Option<String>,
    pub key_id: Option<String>,
    /// The admin token (`tok_…`) that made the change; null for the widget API and the server.
    pub actor: Option<String>,
    #[schema(value_type = Object)]
    pub detail: Value,
    pub created_at: String,
}

impl From<&AuditRecord> for AuditOut {
    fn from(a: &AuditRecord) -> Self {
        Self {
            id: a.id.clone(),
            kind: a.kind.clone(),
            user_id: a.user_id.clone(),
            key_id: a.key_id.clone(),
            actor: a.actor.clone(),
            detail: a.detail.clone(),
            created_at: rfc3339(a.created_at),
        }
    }
}

/// `{"data": [...], "next_cursor"}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ListOut<T: ToSchema> {
    pub data: Vec<T>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema, Default)]
pub struct IdentifyIn {
    pub user_id: String,
    #[schema(value_type = Option<Object>)]
    pub attributes: Option<Box<serde_json::value::RawValue>>,
    pub signature: Option<String>,
    pub token: Option<String>,
    pub attributes_signature: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WidgetUserOut {
    pub id: String,
    pub verified: bool,
    #[schema(value_type = Option<names::VerifiedByName>)]
    pub verified_by: Option<VerifiedBy>,
    #[schema(value_type = Object)]
    pub attributes: Map<String, Value>,
    #[schema(value_type = Object)]
    pub verified_attributes: Map<String, Value>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct IdentifyOut {
    pub session_token: String,
    pub expires_at: String,
    pub user: WidgetUserOut,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ignored_attributes: Vec<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SessionOut {
    pub session_token: String,
    pub expires_at: String,
    pub visitor_id: String,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct GroupIn {
    pub company_id: String,
    #[schema(value_type = Option<Object>)]
    pub attributes: Option<Map<String, Value>>,
    pub signature: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct GroupCompanyOut {
    pub id: String,
    pub verified: bool,
    #[schema(value_type = Object)]
    pub attributes: Map<String, Value>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct GroupOut {
    pub company: GroupCompanyOut,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct TrackIn {
    pub event: String,
    #[schema(value_type = Option<Object>)]
    pub properties: Option<Map<String, Value>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TrackOut {
    pub id: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MeOut {
    pub user: Option<UserOut>,
    pub visitor_id: String,
}

/// `POST /admin/v1/environments/{env}/diagnose`: "check my signature".
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DiagnoseIn {
    /// The user id (or company id) the signature is for, byte for byte.
    pub user_id: String,
    /// The signature that fails, exactly as the customer's backend produced it.
    pub signature: String,
    /// Values that may have been signed instead of the id (the user's email, an id from
    /// another system): at most 20 together with `email`, each 1–255 bytes.
    #[schema(max_items = 20)]
    pub candidates: Option<Vec<String>>,
    /// The user's email: shorthand for one more candidate.
    pub email: Option<String>,
}

/// The answer of the diagnose endpoint.
#[derive(Debug, Serialize, ToSchema)]
pub struct DiagnoseOut {
    /// Whether the signature verifies under an active secret of the environment.
    pub valid: bool,
    /// The key that verified it, when valid.
    pub key_id: Option<String>,
    /// Snake-case cause when invalid, e.g. `surrounding_whitespace`, `signed_candidate`.
    pub cause: Option<String>,
    /// What is wrong and what to do, for a person.
    pub message: String,
}
