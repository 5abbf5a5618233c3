//! The writes a transaction script decides, and the one `match` that turns
//! each into its statements. Adapters never see a `Write`: they run the
//! statements [`execute`] hands them through [`Tx`].

use super::rows::{to_json, verified_by_str};
use super::sql;
use super::tx::{Param, Tx};
use super::{StoreError, StoreResult};
use crate::events::Event;
use crate::model::*;

/// One change to the database.
#[derive(Clone, Debug)]
pub enum Write {
    PutMeta {
        key: String,
        value: String,
    },
    InsertProject {
        id: String,
        name: String,
        at: Ts,
    },
    InsertAdminToken(AdminTokenRecord),
    DeleteAdminToken(String),
    InsertEnvironment(Environment),
    UpdateSettings {
        env_id: String,
        settings: EnvSettings,
        at: Ts,
    },
    RevokeSessions {
        env_id: String,
        at: Ts,
    },
    BumpUnsigned(String),
    DeleteEnvironment(String),
    InsertSecret(SecretRecord),
    ExpireOtherSecrets {
        env_id: String,
        at: Ts,
    },
    RevokeSecret {
        env_id: String,
        key_id: String,
        at: Ts,
    },
    ResealSecret {
        key_id: String,
        ciphertext: Vec<u8>,
    },
    InsertSigningKey(SigningKeyRecord),
    RetireSigningKeys(Ts),
    ResealSigningKey {
        kid: String,
        ciphertext: Vec<u8>,
    },
    UpsertUser(UserRecord),
    DeleteUser {
        env_id: String,
        user_id: String,
        at: Ts,
    },
    PruneTombstones(Ts),
    RememberJti {
        env_id: String,
        jti: String,
        until: Ts,
    },
    UpsertCompany(CompanyRecord),
    UpsertMembership {
        env_id: String,
        user_id: String,
        company_id: String,
        proven: bool,
        at: Ts,
    },
    DropUnprovenMemberships {
        env_id: String,
        company_id: String,
    },
    InsertEvent(EventRecord),
    Audit(NewAudit),
    AddStats {
        env_id: String,
        minute: i64,
        counts: [i64; 3],
    },
    InsertWebhook(WebhookEndpoint),
    DeleteWebhook {
        env_id: String,
        id: String,
    },
    SetWebhookSecrets {
        env_id: String,
        id: String,
        secrets: Vec<u8>,
        at: Ts,
    },
    ResealWebhook {
        id: String,
        secrets: Vec<u8>,
    },
    EnableWebhook {
        env_id: String,
        id: String,
        at: Ts,
    },
    /// An event and one delivery per subscribed endpoint (held when disabled).
    Enqueue {
        message_id: String,
        event: Event,
        deliveries: Vec<(String, bool)>,
    },
    ReplayWebhook {
        endpoint_id: String,
        now_ms: i64,
    },
    ClaimDelivery {
        delivery_id: String,
        attempts: i64,
        next_at_ms: i64,
        now_ms: i64,
    },
    InsertAttempt(AttemptOutcome),
    DeliveryStatus {
        delivery_id: String,
        status: &'static str,
        at: Ts,
    },
    /// Disables an endpoint that is not disabled yet, holding what is queued for it.
    DisableWebhook {
        endpoint_id: String,
        reason: String,
        at: Ts,
    },
}

/// What a missing row means for a write that must find one.
fn must_find(w: &Write) -> Option<&'static str> {
    match w {
        Write::UpdateSettings { .. }
        | Write::RevokeSessions { .. }
        | Write::DeleteEnvironment(_) => Some("environment"),
        Write::DeleteWebhook { .. }
        | Write::SetWebhookSecrets { .. }
        | Write::EnableWebhook { .. } => Some("webhook endpoint"),
        Write::DeleteAdminToken(_) => Some("admin token"),
        _ => None,
    }
}

/// Runs every write in order; returns the rows each changed.
pub async fn execute<T: Tx>(tx: &mut T, writes: &[Write]) -> StoreResult<Vec<u64>> {
    let mut changed = Vec::with_capacity(writes.len());
    for w in writes {
        let n = run(tx, w).await?;
        if n == 0
            && let Some(what) = must_find(w)
        {
            return Err(StoreError::NotFound(what));
        }
        changed.push(n);
    }
    Ok(changed)
}

async fn run<T: Tx>(tx: &mut T, w: &Write) -> StoreResult<u64> {
    use Param::*;
    Ok(match w {
        Write::PutMeta { key, value } => {
            tx.exec(sql::META_PUT, &[key.into(), value.into()]).await?
        }
        Write::InsertProject { id, name, at } => {
            tx.exec(sql::PROJECT_INSERT, &[id.into(), name.into(), (*at).into()])
                .await?
        }
        Write::InsertAdminToken(t) => {
            let ids = t.environment_ids.as_ref().map(to_json).transpose()?;
            tx.exec(
                sql::ADMIN_TOKEN_INSERT,
                &[
                    (&t.id).into(),
                    Blob(Some(&t.hash)),
                    t.created_at.into(),
                    (&t.name).into(),
                    t.role.as_str().into(),
                    (&ids).into(),
                ],
            )
            .await?
        }
        Write::DeleteAdminToken(id) => tx.exec(sql::ADMIN_TOKEN_DELETE, &[id.into()]).await?,
        Write::InsertEnvironment(e) => {
            let settings = to_json(&e.settings)?;
            tx.exec(
                sql::ENV_INSERT,
                &[
                    (&e.id).into(),
                    (&e.project_id).into(),
                    (&e.publishable_key).into(),
                    (&settings).into(),
                    e.unsigned_count.into(),
                    e.created_at.into(),
                    e.updated_at.into(),
                    e.sessions_revoked_at.into(),
                ],
            )
            .await?
        }
        Write::UpdateSettings {
            env_id,
            settings,
            at,
        } => {
            let settings = to_json(settings)?;
            tx.exec(
                sql::ENV_UPDATE_SETTINGS,
                &[(&settings).into(), (*at).into(), env_id.into()],
            )
            .await?
        }
        Write::RevokeSessions { env_id, at } => {
            tx.exec(sql::ENV_REVOKE_SESSIONS, &[(*at).into(), env_id.into()])
                .await?
        }
        Write::BumpUnsigned(env_id) => tx.exec(sql::ENV_BUMP_UNSIGNED, &[env_id.into()]).await?,
        Write::DeleteEnvironment(id) => {
            for stmt in sql::ENV_DELETE_DATA {
                tx.exec(stmt, &[id.into()]).await?;
            }
            tx.exec(sql::ENV_DELETE, &[id.into()]).await?
        }
        Write::InsertSecret(s) => {
            tx.exec(
                sql::SECRET_INSERT,
                &[
                    (&s.id).into(),
                    (&s.env_id).into(),
                    (&s.ciphertext).into(),
                    s.imported.into(),
                    s.created_at.into(),
                    s.expires_at.into(),
                    s.revoked_at.into(),
                ],
            )
            .await?
        }
        Write::ExpireOtherSecrets { env_id, at } => {
            tx.exec(sql::SECRETS_EXPIRE_OTHERS, &[(*at).into(), env_id.into()])
                .await?
        }
        Write::RevokeSecret { env_id, key_id, at } => {
            tx.exec(
                sql::SECRET_REVOKE,
                &[(*at).into(), env_id.into(), key_id.into()],
            )
            .await?
        }
        Write::ResealSecret { key_id, ciphertext } => {
            tx.exec(sql::SECRET_RESEAL, &[ciphertext.into(), key_id.into()])
                .await?
        }
        Write::InsertSigningKey(k) => {
            tx.exec(
                sql::SIGNING_KEY_INSERT,
                &[
                    (&k.kid).into(),
                    (&k.ciphertext).into(),
                    (&k.public_key).into(),
                    k.created_at.into(),
                    k.retired_at.into(),
                ],
            )
            .await?
        }
        Write::RetireSigningKeys(at) => tx.exec(sql::SIGNING_KEYS_RETIRE, &[(*at).into()]).await?,
        Write::ResealSigningKey { kid, ciphertext } => {
            tx.exec(sql::SIGNING_KEY_RESEAL, &[ciphertext.into(), kid.into()])
                .await?
        }
        Write::UpsertUser(u) => {
            let attributes = to_json(&u.attributes)?;
            let verified_attributes = to_json(&u.verified_attributes)?;
            tx.exec(
                sql::USER_UPSERT,
                &[
                    (&u.env_id).into(),
                    (&u.id).into(),
                    u.verified.into(),
                    u.verified.into(),
                    u.verified_by.map(verified_by_str).into(),
                    (&u.key_id).into(),
                    u.verified_at.into(),
                    (&attributes).into(),
                    (&verified_attributes).into(),
                    u.counted_unsigned.into(),
                    u.created_at.into(),
                    u.updated_at.into(),
                ],
            )
            .await?
        }
        Write::DeleteUser {
            env_id,
            user_id,
            at,
        } => {
            let key = [env_id.into(), user_id.into()];
            for stmt in sql::USER_DELETE_MESSAGES {
                tx.exec(stmt, &key).await?;
            }
            tx.exec(sql::USER_DELETE_MEMBERSHIPS, &key).await?;
            tx.exec(sql::USER_DELETE_EVENTS, &key).await?;
            tx.exec(
                sql::TOMBSTONE_PUT,
                &[env_id.into(), user_id.into(), (*at).into()],
            )
            .await?;
            tx.exec(sql::USER_DELETE, &key).await?
        }
        Write::PruneTombstones(before) => {
            tx.exec(sql::TOMBSTONES_PRUNE, &[(*before).into()]).await?
        }
        Write::RememberJti { env_id, jti, until } => {
            tx.exec(
                sql::JTI_REMEMBER,
                &[env_id.into(), jti.into(), (*until).into()],
            )
            .await?
        }
        Write::UpsertCompany(c) => {
            let attributes = to_json(&c.attributes)?;
            tx.exec(
                sql::COMPANY_UPSERT,
                &[
                    (&c.env_id).into(),
                    (&c.id).into(),
                    c.verified.into(),
                    (&c.key_id).into(),
                    c.verified_at.into(),
                    (&attributes).into(),
                    c.created_at.into(),
                    c.updated_at.into(),
                ],
            )
            .await?
        }
        Write::UpsertMembership {
            env_id,
            user_id,
            company_id,
            proven,
            at,
        } => {
            tx.exec(
                sql::MEMBERSHIP_UPSERT,
                &[
                    env_id.into(),
                    user_id.into(),
                    company_id.into(),
                    (*at).into(),
                    (*proven).into(),
                ],
            )
            .await?
        }
        Write::DropUnprovenMemberships { env_id, company_id } => {
            tx.exec(
                sql::MEMBERSHIPS_DROP_UNPROVEN,
                &[env_id.into(), company_id.into()],
            )
            .await?
        }
        Write::InsertEvent(e) => {
            let properties = to_json(&e.properties)?;
            tx.exec(
                sql::EVENT_INSERT,
                &[
                    (&e.id).into(),
                    (&e.env_id).into(),
                    (&e.user_id).into(),
                    (&e.visitor_id).into(),
                    (&e.name).into(),
                    (&properties).into(),
                    e.created_at.into(),
                ],
            )
            .await?
        }
        Write::Audit(a) => {
            let id = vouch_core::keys::generate_id("aud");
            let detail = to_json(&a.detail)?;
            tx.exec(
                sql::AUDIT_INSERT,
                &[
                    (&id).into(),
                    (&a.env_id).into(),
                    a.kind.into(),
                    (&a.user_id).into(),
                    (&a.key_id).into(),
                    (&detail).into(),
                    a.at.into(),
                    (&a.actor).into(),
                ],
            )
            .await?
        }
        Write::AddStats {
            env_id,
            minute,
            counts: [v, u, r],
        } => {
            tx.exec(
                sql::STATS_ADD,
                &[
                    env_id.into(),
                    (*minute).into(),
                    (*v).into(),
                    (*u).into(),
                    (*r).into(),
                ],
            )
            .await?
        }
        Write::InsertWebhook(w) => {
            let types = w.event_types.as_ref().map(to_json).transpose()?;
            tx.exec(
                sql::WEBHOOK_INSERT,
                &[
                    (&w.id).into(),
                    (&w.env_id).into(),
                    (&w.url).into(),
                    (&types).into(),
                    (&w.secrets).into(),
                    w.created_at.into(),
                    w.updated_at.into(),
                ],
            )
            .await?
        }
        Write::DeleteWebhook { env_id, id } => {
            let key = [env_id.into(), id.into()];
            for stmt in sql::WEBHOOK_DELETE_DATA {
                tx.exec(stmt, &key).await?;
            }
            tx.exec(sql::WEBHOOK_DELETE, &key).await?
        }
        Write::SetWebhookSecrets {
            env_id,
            id,
            secrets,
            at,
        } => {
            tx.exec(
                sql::WEBHOOK_SET_SECRETS,
                &[secrets.into(), (*at).into(), env_id.into(), id.into()],
            )
            .await?
        }
        Write::ResealWebhook { id, secrets } => {
            tx.exec(sql::WEBHOOK_RESEAL, &[secrets.into(), id.into()])
                .await?
        }
        Write::EnableWebhook { env_id, id, at } => {
            tx.exec(
                sql::WEBHOOK_ENABLE,
                &[(*at).into(), env_id.into(), id.into()],
            )
            .await?
        }
        Write::Enqueue {
            message_id,
            event,
            deliveries,
        } => {
            let payload = to_json(&event.body())?;
            tx.exec(
                sql::MESSAGE_INSERT,
                &[
                    message_id.into(),
                    (&event.env_id).into(),
                    event.kind.as_str().into(),
                    (&payload).into(),
                    event.at.into(),
                    (&event.user_id).into(),
                ],
            )
            .await?;
            let now_ms = event.at.saturating_mul(1000);
            for (endpoint_id, held) in deliveries {
                let id = format!("{message_id}:{endpoint_id}");
                let status = if *held { "held" } else { "pending" };
                tx.exec(
                    sql::DELIVERY_INSERT,
                    &[
                        (&id).into(),
                        message_id.into(),
                        endpoint_id.into(),
                        status.into(),
                        now_ms.into(),
                        event.at.into(),
                    ],
                )
                .await?;
            }
            1
        }
        Write::ReplayWebhook {
            endpoint_id,
            now_ms,
        } => {
            tx.exec(
                sql::WEBHOOK_REPLAY,
                &[(*now_ms).into(), (now_ms / 1000).into(), endpoint_id.into()],
            )
            .await?
        }
        Write::ClaimDelivery {
            delivery_id,
            attempts,
            next_at_ms,
            now_ms,
        } => {
            tx.exec(
                sql::DELIVERY_CLAIM,
                &[
                    (*attempts).into(),
                    (*next_at_ms).into(),
                    (now_ms / 1000).into(),
                    delivery_id.into(),
                ],
            )
            .await?
        }
        Write::InsertAttempt(o) => {
            let d = &o.delivery;
            let next_retry = if o.success { None } else { d.next_attempt_at };
            tx.exec(
                sql::ATTEMPT_INSERT,
                &[
                    (&d.delivery_id).into(),
                    (&d.endpoint_id).into(),
                    (&d.message_id).into(),
                    d.attempt.into(),
                    o.status_code.into(),
                    o.latency_ms.into(),
                    (&o.response).into(),
                    (&o.error).into(),
                    next_retry.into(),
                    o.at_ms.into(),
                ],
            )
            .await?
        }
        Write::DeliveryStatus {
            delivery_id,
            status,
            at,
        } => {
            tx.exec(
                sql::DELIVERY_STATUS,
                &[Text(Some(status)), (*at).into(), delivery_id.into()],
            )
            .await?
        }
        Write::DisableWebhook {
            endpoint_id,
            reason,
            at,
        } => {
            let n = tx
                .exec(
                    sql::WEBHOOK_DISABLE,
                    &[(*at).into(), reason.into(), endpoint_id.into()],
                )
                .await?;
            tx.exec(sql::DELIVERIES_HOLD, &[endpoint_id.into()]).await?;
            n
        }
    })
}
