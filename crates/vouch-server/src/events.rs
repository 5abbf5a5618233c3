//! Webhook event types and their payloads: the one place where a change
//! recorded by the store becomes the JSON a receiver gets.

use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::api::{SecretOut, UserOut, rfc3339};
use crate::model::{CompanyRecord, SecretRecord, Ts, UserRecord};

/// Every event a webhook endpoint can subscribe to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, utoipa::ToSchema)]
pub enum EventType {
    #[serde(rename = "user.created")]
    UserCreated,
    #[serde(rename = "user.updated")]
    UserUpdated,
    #[serde(rename = "user.deleted")]
    UserDeleted,
    #[serde(rename = "identity.rejected")]
    IdentityRejected,
    #[serde(rename = "secret.created")]
    SecretCreated,
    #[serde(rename = "secret.revoked")]
    SecretRevoked,
    #[serde(rename = "secret.exposed")]
    SecretExposed,
}

impl EventType {
    pub const ALL: [EventType; 7] = [
        EventType::UserCreated,
        EventType::UserUpdated,
        EventType::UserDeleted,
        EventType::IdentityRejected,
        EventType::SecretCreated,
        EventType::SecretRevoked,
        EventType::SecretExposed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventType::UserCreated => "user.created",
            EventType::UserUpdated => "user.updated",
            EventType::UserDeleted => "user.deleted",
            EventType::IdentityRejected => "identity.rejected",
            EventType::SecretCreated => "secret.created",
            EventType::SecretRevoked => "secret.revoked",
            EventType::SecretExposed => "secret.exposed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }

    /// What the event means, for the admin UI's subscription list.
    pub fn description(self) -> &'static str {
        match self {
            EventType::UserCreated => "A user was identified for the first time.",
            EventType::UserUpdated => "A user's attributes or verification changed.",
            EventType::UserDeleted => "A user was erased through the admin API.",
            EventType::IdentityRejected => {
                "A proof of identity failed or was missing where one is required."
            }
            EventType::SecretCreated => "An identity secret was created, imported or rotated in.",
            EventType::SecretRevoked => "An identity secret was revoked.",
            EventType::SecretExposed => {
                "An identity secret reached a browser call and was revoked at once."
            }
        }
    }
}

/// One event, ready for the outbox.
#[derive(Clone, Debug)]
pub struct Event {
    pub env_id: String,
    /// The user whose attributes the payload carries (erased with it).
    pub user_id: Option<String>,
    pub kind: EventType,
    pub data: Value,
    pub at: Ts,
}

impl Event {
    /// The body every endpoint receives (Standard Webhooks: type, timestamp, data).
    pub fn body(&self) -> Value {
        json!({
            "type": self.kind.as_str(),
            "timestamp": rfc3339(self.at),
            "data": self.data,
        })
    }

    /// `user.created` / `user.updated`: the user object, with its environment.
    pub fn user(kind: EventType, user: &UserRecord, companies: &[CompanyRecord], at: Ts) -> Self {
        let mut data =
            serde_json::to_value(UserOut::listed(user, companies)).unwrap_or(Value::Null);
        if let Value::Object(m) = &mut data {
            m.insert("environment_id".into(), Value::String(user.env_id.clone()));
        }
        Self {
            env_id: user.env_id.clone(),
            user_id: Some(user.id.clone()),
            kind,
            data,
            at,
        }
    }

    /// `user.deleted`: the id only — an erased user's attributes go nowhere.
    pub fn user_deleted(env_id: &str, user_id: &str, at: Ts) -> Self {
        Self {
            env_id: env_id.to_string(),
            user_id: None,
            kind: EventType::UserDeleted,
            data: json!({"id": user_id, "environment_id": env_id}),
            at,
        }
    }

    /// `secret.*`: the secret's metadata, never its value.
    pub fn secret(kind: EventType, s: &SecretRecord, at: Ts) -> Self {
        let mut data = serde_json::to_value(SecretOut::new(s, at, None)).unwrap_or(Value::Null);
        if let Value::Object(m) = &mut data {
            m.insert("environment_id".into(), Value::String(s.env_id.clone()));
        }
        Self {
            env_id: s.env_id.clone(),
            user_id: None,
            kind,
            data,
            at,
        }
    }

    /// `identity.rejected`: who, why (the audit detail: code, message, diagnosis).
    pub fn rejection(env_id: &str, user_id: Option<&str>, detail: &Value, at: Ts) -> Self {
        let mut data = Map::new();
        data.insert("environment_id".into(), json!(env_id));
        data.insert("user_id".into(), json!(user_id));
        if let Value::Object(extra) = detail {
            data.extend(extra.clone());
        }
        Self {
            env_id: env_id.to_string(),
            user_id: None,
            kind: EventType::IdentityRejected,
            data: Value::Object(data),
            at,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_user_webhook_stays_small_whatever_its_companies_carry() {
        let big: Map<String, Value> = [("blob".to_string(), Value::String("x".repeat(32 * 1024)))]
            .into_iter()
            .collect();
        let user = UserRecord {
            env_id: "env_1".into(),
            id: "42".into(),
            verified: true,
            verified_by: None,
            key_id: None,
            verified_at: None,
            attributes: Map::new(),
            verified_attributes: Map::new(),
            counted_unsigned: false,
            created_at: 0,
            updated_at: 0,
        };
        let companies: Vec<CompanyRecord> = (0..100)
            .map(|i| CompanyRecord {
                env_id: "env_1".into(),
                id: format!("c{i}"),
                verified: false,
                key_id: None,
                verified_at: None,
                attributes: big.clone(),
                created_at: 0,
                updated_at: 0,
            })
            .collect();
        let body = Event::user(EventType::UserUpdated, &user, &companies, 0).body();
        let size = serde_json::to_vec(&body).unwrap().len();
        assert!(size < 32 * 1024, "{size} bytes");
        let listed = body["data"]["companies"].as_array().unwrap();
        assert_eq!(listed.len(), 100);
        assert!(
            listed
                .iter()
                .all(|c| c.get("attributes").is_none() && c["id"].is_string())
        );
    }
}
