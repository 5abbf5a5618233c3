//! One mapper per record, over the [`Row`] both drivers implement.

use serde_json::{Map, Value};
use vouch_core::VerifiedBy;

use super::tx::Row;
use super::{StoreError, StoreResult};
use crate::model::*;

pub(crate) fn json_err(e: serde_json::Error) -> StoreError {
    StoreError::Internal(format!("stored JSON is unreadable: {e}"))
}

pub(crate) fn to_json(v: &impl serde::Serialize) -> StoreResult<String> {
    serde_json::to_string(v).map_err(|e| StoreError::Internal(e.to_string()))
}

fn json_map(text: &str) -> StoreResult<Map<String, Value>> {
    serde_json::from_str(text).map_err(json_err)
}

pub(crate) fn verified_by_str(v: VerifiedBy) -> &'static str {
    match v {
        VerifiedBy::Signature => "signature",
        VerifiedBy::Token => "token",
    }
}

fn verified_by(text: Option<String>) -> Option<VerifiedBy> {
    match text.as_deref() {
        Some("signature") => Some(VerifiedBy::Signature),
        Some("token") => Some(VerifiedBy::Token),
        _ => None,
    }
}

/// For queries whose rows only say that something exists.
pub fn unit(_: &dyn Row) -> StoreResult<()> {
    Ok(())
}

pub fn count(r: &dyn Row) -> StoreResult<i64> {
    r.int("n")
}

pub fn value(r: &dyn Row) -> StoreResult<String> {
    r.text("value")
}

pub fn id(r: &dyn Row) -> StoreResult<String> {
    r.text("id")
}

pub fn proven(r: &dyn Row) -> StoreResult<bool> {
    r.boolean("proven")
}

pub fn unsigned_count(r: &dyn Row) -> StoreResult<i64> {
    r.int("unsigned_count")
}

pub fn coverage(r: &dyn Row) -> StoreResult<Coverage> {
    Ok(Coverage {
        verified: r.int("v")?,
        unverified: r.int("u")?,
        rejected: r.int("r")?,
    })
}

pub fn environment(r: &dyn Row) -> StoreResult<Environment> {
    Ok(Environment {
        id: r.text("id")?,
        project_id: r.text("project_id")?,
        publishable_key: r.text("publishable_key")?,
        settings: serde_json::from_str(&r.text("settings")?).map_err(json_err)?,
        unsigned_count: r.int("unsigned_count")?,
        sessions_revoked_at: r.opt_int("sessions_revoked_at")?,
        created_at: r.int("created_at")?,
        updated_at: r.int("updated_at")?,
    })
}

pub fn secret(r: &dyn Row) -> StoreResult<SecretRecord> {
    Ok(SecretRecord {
        id: r.text("id")?,
        env_id: r.text("env_id")?,
        ciphertext: r.blob("ciphertext")?,
        imported: r.boolean("imported")?,
        created_at: r.int("created_at")?,
        expires_at: r.opt_int("expires_at")?,
        revoked_at: r.opt_int("revoked_at")?,
    })
}

pub fn signing_key(r: &dyn Row) -> StoreResult<SigningKeyRecord> {
    Ok(SigningKeyRecord {
        kid: r.text("kid")?,
        ciphertext: r.blob("ciphertext")?,
        public_key: r.blob("public_key")?,
        created_at: r.int("created_at")?,
        retired_at: r.opt_int("retired_at")?,
    })
}

pub fn admin_token(r: &dyn Row) -> StoreResult<AdminTokenRecord> {
    let hash = r.blob("token_hash")?;
    Ok(AdminTokenRecord {
        id: r.text("id")?,
        name: r.text("name")?,
        role: AdminRole::parse(&r.text("role")?)
            .ok_or_else(|| StoreError::Internal("unknown admin token role".into()))?,
        environment_ids: r
            .opt_text("environment_ids")?
            .map(|t| serde_json::from_str(&t).map_err(json_err))
            .transpose()?,
        hash: hash
            .try_into()
            .map_err(|_| StoreError::Internal("an admin token hash is not 32 bytes".into()))?,
        created_at: r.int("created_at")?,
    })
}

pub fn user(r: &dyn Row) -> StoreResult<UserRecord> {
    Ok(UserRecord {
        env_id: r.text("env_id")?,
        id: r.text("id")?,
        verified: r.boolean("verified")?,
        verified_by: verified_by(r.opt_text("verified_by")?),
        key_id: r.opt_text("key_id")?,
        verified_at: r.opt_int("verified_at")?,
        attributes: json_map(&r.text("attributes")?)?,
        verified_attributes: json_map(&r.text("verified_attributes")?)?,
        counted_unsigned: r.boolean("counted_unsigned")?,
        created_at: r.int("created_at")?,
        updated_at: r.int("updated_at")?,
    })
}

pub fn tombstone(r: &dyn Row) -> StoreResult<Tombstone> {
    Ok(Tombstone {
        env_id: r.text("env_id")?,
        user_id: r.text("user_id")?,
        deleted_at: r.int("deleted_at")?,
    })
}

pub fn company(r: &dyn Row) -> StoreResult<CompanyRecord> {
    Ok(CompanyRecord {
        env_id: r.text("env_id")?,
        id: r.text("id")?,
        verified: r.boolean("verified")?,
        key_id: r.opt_text("key_id")?,
        verified_at: r.opt_int("verified_at")?,
        attributes: json_map(&r.text("attributes")?)?,
        created_at: r.int("created_at")?,
        updated_at: r.int("updated_at")?,
    })
}

pub fn event(r: &dyn Row) -> StoreResult<EventRecord> {
    Ok(EventRecord {
        seq: r.int("seq")?,
        id: r.text("id")?,
        env_id: r.text("env_id")?,
        user_id: r.opt_text("user_id")?,
        visitor_id: r.opt_text("visitor_id")?,
        name: r.text("name")?,
        properties: json_map(&r.text("properties")?)?,
        created_at: r.int("created_at")?,
    })
}

pub fn audit(r: &dyn Row) -> StoreResult<AuditRecord> {
    Ok(AuditRecord {
        seq: r.int("seq")?,
        id: r.text("id")?,
        env_id: r.opt_text("env_id")?,
        kind: r.text("kind")?,
        user_id: r.opt_text("user_id")?,
        key_id: r.opt_text("key_id")?,
        actor: r.opt_text("actor")?,
        detail: serde_json::from_str(&r.text("detail")?).map_err(json_err)?,
        created_at: r.int("created_at")?,
    })
}

pub fn webhook(r: &dyn Row) -> StoreResult<WebhookEndpoint> {
    Ok(WebhookEndpoint {
        id: r.text("id")?,
        env_id: r.text("env_id")?,
        url: r.text("url")?,
        event_types: r
            .opt_text("event_types")?
            .map(|t| serde_json::from_str(&t).map_err(json_err))
            .transpose()?,
        secrets: r.blob("secrets")?,
        disabled_at: r.opt_int("disabled_at")?,
        disabled_reason: r.opt_text("disabled_reason")?,
        created_at: r.int("created_at")?,
        updated_at: r.int("updated_at")?,
    })
}

pub fn attempt(r: &dyn Row) -> StoreResult<AttemptRecord> {
    Ok(AttemptRecord {
        seq: r.int("seq")?,
        delivery_id: r.text("delivery_id")?,
        message_id: r.text("message_id")?,
        attempt: r.int("attempt")?,
        status_code: r.opt_int("status_code")?,
        latency_ms: r.int("latency_ms")?,
        response: r.opt_text("response")?,
        error: r.opt_text("error")?,
        next_retry_at: r.opt_int("next_retry_at")?,
        created_at: r.int("created_at")?,
    })
}

/// A due delivery as read, before the claim decides its next attempt.
#[derive(Debug, Clone)]
pub struct DueDelivery {
    pub delivery_id: String,
    pub message_id: String,
    pub endpoint_id: String,
    pub attempts: i64,
    pub env_id: String,
    pub url: String,
    pub secrets: Vec<u8>,
    pub payload: String,
    pub message_created_at: Ts,
}

pub fn due_delivery(r: &dyn Row) -> StoreResult<DueDelivery> {
    Ok(DueDelivery {
        delivery_id: r.text("delivery_id")?,
        message_id: r.text("message_id")?,
        endpoint_id: r.text("endpoint_id")?,
        attempts: r.int("attempts")?,
        env_id: r.text("env_id")?,
        url: r.text("url")?,
        secrets: r.blob("secrets")?,
        payload: r.text("payload")?,
        message_created_at: r.int("message_created_at")?,
    })
}
