//! The store's writes, written once over [`Tx`]: every write is an [`Op`]
//! run inside a transaction (read, decide with `script`, execute the writes;
//! reads are typed [`super::reads::Query`]s). Adapters move `Op`s to their
//! writer, which runs them in batches ([`super::batch`]); they never know
//! what an operation does.

use super::batch::Batch;
use super::rows::{self, DueDelivery};
use super::script::{self, GroupReads, IdentifyReads};
use super::sql;
use super::tx::{Tx, query_one};
use super::write::{Write, execute};
use super::{Bootstrap, StoreError, StoreResult};
use crate::events::{Event, EventType};
use crate::model::*;

/// A write, run in a transaction (possibly grouped with others).
#[derive(Debug)]
pub enum Op {
    PutMeta(String, String),
    Bootstrap(Box<Bootstrap>),
    AddAdminToken(Box<AdminTokenRecord>),
    /// Refused with a conflict when it would remove the last full admin token.
    DeleteAdminToken(String, NewAudit),
    /// Deletes a token even when it is the last full admin token (offline
    /// recovery from the command line: a leaked token must go at once).
    ForceDeleteAdminToken(String, NewAudit),
    CreateEnvironment(Box<(Environment, SecretRecord, NewAudit)>),
    UpdateEnvironment(String, Box<EnvSettings>, NewAudit),
    RevokeSessions(String, NewAudit),
    DeleteEnvironment(String, NewAudit),
    /// A new secret; with an expiry, every other active secret gets it (rotation).
    InsertSecret(Box<SecretRecord>, Option<Ts>, NewAudit),
    /// Revokes at once; `exposed` says whether it reached a browser.
    RevokeSecret {
        env_id: String,
        key_id: String,
        exposed: bool,
        audit: NewAudit,
    },
    RotateSigningKey(Box<SigningKeyRecord>, NewAudit),
    Identify(Box<IdentifyCommand>),
    Group(Box<GroupCommand>),
    Track(Box<EventRecord>),
    /// A rejected proof: audited with its diagnosis, `identity.rejected` sent.
    Rejection(NewAudit),
    Audit(NewAudit),
    DeleteUser(String, String, NewAudit),
    CreateWebhook(Box<WebhookEndpoint>),
    DeleteWebhook(String, String, NewAudit),
    UpdateWebhookSecrets(String, String, Vec<u8>, Ts),
    EnableWebhook(String, String, NewAudit),
    ReplayWebhook(String, String, i64),
    Claim(i64, u32, Vec<i64>),
    RecordAttempt(Box<AttemptOutcome>),
    /// Adds coverage counts (environment, minute, [verified, unverified, rejected]).
    AddStats(Vec<(String, i64, [i64; 3])>),
    /// Every sealed value again, under a new master key.
    Reseal(Box<Reseal>),
}

/// New ciphertexts for every sealed value and the new key's check value.
#[derive(Debug, Default)]
pub struct Reseal {
    pub secrets: Vec<(String, Vec<u8>)>,
    pub signing_keys: Vec<(String, Vec<u8>)>,
    pub webhooks: Vec<(String, Vec<u8>)>,
    pub master_key_check: String,
    /// Written in the same transaction.
    pub audit: Option<NewAudit>,
    /// Called inside the transaction after every write, before the commit:
    /// the crash tests kill the process there.
    pub before_commit: Option<BeforeCommit>,
}

/// A callback run inside the re-encryption transaction (see [`Reseal`]).
#[derive(Clone)]
pub struct BeforeCommit(pub std::sync::Arc<dyn Fn() + Send + Sync>);

impl std::fmt::Debug for BeforeCommit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BeforeCommit")
    }
}

#[derive(Debug)]
pub enum Reply {
    Unit,
    Secret(SecretRecord),
    Identify(Result<IdentifyOutcome, IdentifyRejection>),
    Group(Result<CompanyRecord, IdentifyRejection>),
    Claimed(Vec<ClaimedDelivery>),
    Count(u64),
}

const BOOTSTRAP_LOCK: &str = "bootstrap";

fn user_lock(env: &str, id: &str) -> String {
    format!("user:{env}:{id}")
}

fn company_lock(env: &str, id: &str) -> String {
    format!("company:{env}:{id}")
}

impl Op {
    /// The key this operation serialises on across nodes, if any.
    pub fn lock_key(&self) -> Option<String> {
        match self {
            Op::Bootstrap(_) => Some(BOOTSTRAP_LOCK.into()),
            Op::Identify(c) => Some(user_lock(&c.env_id, &c.user_id)),
            Op::DeleteUser(env, id, _) => Some(user_lock(env, id)),
            Op::Group(c) => Some(company_lock(&c.env_id, &c.company_id)),
            _ => None,
        }
    }
}

/// One operation inside the caller's transaction.
pub async fn apply<T: Tx>(tx: &mut T, op: &Op, batch: &mut Batch) -> StoreResult<Reply> {
    let mut writes: Vec<Write> = Vec::new();
    match op {
        Op::PutMeta(key, value) => writes.push(Write::PutMeta {
            key: key.clone(),
            value: value.clone(),
        }),
        Op::Bootstrap(b) => {
            // Two nodes starting on one empty database: one sets it up.
            tx.lock(BOOTSTRAP_LOCK).await?;
            let n = query_one(tx, sql::PROJECT_COUNT, &[], rows::count).await?;
            if n.unwrap_or(0) > 0 {
                return Err(StoreError::Conflict(
                    "another Vouch node set up this database at the same moment; start this node again"
                        .into(),
                ));
            }
            writes.push(Write::PutMeta {
                key: "master_key_check".into(),
                value: b.master_key_check.clone(),
            });
            writes.push(Write::InsertProject {
                id: b.project_id.clone(),
                name: b.project_name.clone(),
                at: b.now,
            });
            writes.push(Write::InsertEnvironment(b.environment.clone()));
            writes.push(Write::InsertSecret(b.secret.clone()));
            writes.push(Write::InsertSigningKey(b.signing_key.clone()));
            writes.extend(b.admin_token.clone().map(Write::InsertAdminToken));
            batch.changed = true;
        }
        Op::AddAdminToken(t) => {
            writes.push(Write::InsertAdminToken((**t).clone()));
            batch.changed = true;
        }
        Op::DeleteAdminToken(id, audit) => {
            let all = tx.query(sql::ADMIN_TOKENS, &[], rows::admin_token).await?;
            let Some(target) = all.iter().find(|t| &t.id == id) else {
                return Err(StoreError::NotFound("admin token"));
            };
            let full =
                |t: &AdminTokenRecord| t.role == AdminRole::Admin && t.environment_ids.is_none();
            if full(target) && all.iter().filter(|t| full(t)).count() == 1 {
                return Err(StoreError::Conflict(
                    "this is the last admin token with full access; create another one before deleting it"
                        .into(),
                ));
            }
            writes.push(Write::DeleteAdminToken(id.clone()));
            writes.push(Write::Audit(audit.clone()));
            batch.changed = true;
        }
        Op::ForceDeleteAdminToken(id, audit) => {
            let all = tx.query(sql::ADMIN_TOKENS, &[], rows::admin_token).await?;
            if !all.iter().any(|t| &t.id == id) {
                return Err(StoreError::NotFound("admin token"));
            }
            writes.push(Write::DeleteAdminToken(id.clone()));
            writes.push(Write::Audit(audit.clone()));
            batch.changed = true;
        }
        Op::CreateEnvironment(b) => {
            let (env, secret, audit) = &**b;
            writes.push(Write::InsertEnvironment(env.clone()));
            writes.push(Write::InsertSecret(secret.clone()));
            writes.push(Write::Audit(audit.clone()));
            let event = Event::secret(EventType::SecretCreated, secret, audit.at);
            writes.extend(batch.enqueue(tx, event).await?);
            batch.changed = true;
        }
        Op::UpdateEnvironment(id, settings, audit) => {
            writes.push(Write::UpdateSettings {
                env_id: id.clone(),
                settings: (**settings).clone(),
                at: audit.at,
            });
            writes.push(Write::Audit(audit.clone()));
            batch.changed = true;
        }
        Op::RevokeSessions(id, audit) => {
            writes.push(Write::RevokeSessions {
                env_id: id.clone(),
                at: audit.at,
            });
            writes.push(Write::Audit(audit.clone()));
            batch.changed = true;
        }
        Op::DeleteEnvironment(id, audit) => {
            writes.push(Write::DeleteEnvironment(id.clone()));
            writes.push(Write::Audit(audit.clone()));
            batch.changed = true;
        }
        Op::InsertSecret(secret, expire_others_at, audit) => {
            if query_one(tx, sql::ENV_BY_ID, &[(&secret.env_id).into()], rows::unit)
                .await?
                .is_none()
            {
                return Err(StoreError::NotFound("environment"));
            }
            if let Some(at) = expire_others_at {
                writes.push(Write::ExpireOtherSecrets {
                    env_id: secret.env_id.clone(),
                    at: *at,
                });
            }
            writes.push(Write::InsertSecret((**secret).clone()));
            writes.push(Write::Audit(audit.clone()));
            let event = Event::secret(EventType::SecretCreated, secret, audit.at);
            writes.extend(batch.enqueue(tx, event).await?);
            batch.changed = true;
        }
        Op::RevokeSecret {
            env_id,
            key_id,
            exposed,
            audit,
        } => {
            let key = [env_id.into(), key_id.into()];
            let Some(mut record) = query_one(tx, sql::SECRET_BY_ID, &key, rows::secret).await?
            else {
                return Err(StoreError::NotFound("secret"));
            };
            record.revoked_at = record.revoked_at.or(Some(audit.at));
            writes.push(Write::RevokeSecret {
                env_id: env_id.clone(),
                key_id: key_id.clone(),
                at: audit.at,
            });
            writes.push(Write::Audit(audit.clone()));
            let kind = if *exposed {
                EventType::SecretExposed
            } else {
                EventType::SecretRevoked
            };
            let event = Event::secret(kind, &record, audit.at);
            writes.extend(batch.enqueue(tx, event).await?);
            batch.changed = true;
            execute(tx, &writes).await?;
            return Ok(Reply::Secret(record));
        }
        Op::RotateSigningKey(key, audit) => {
            writes.push(Write::RetireSigningKeys(key.created_at));
            writes.push(Write::InsertSigningKey((**key).clone()));
            writes.push(Write::Audit(audit.clone()));
            batch.changed = true;
        }
        Op::Identify(cmd) => return identify(tx, cmd, batch).await,
        Op::Group(cmd) => return group(tx, cmd).await,
        Op::Track(e) => writes.push(Write::InsertEvent((**e).clone())),
        Op::Rejection(audit) => {
            writes.push(Write::Audit(audit.clone()));
            if let Some(env_id) = &audit.env_id {
                let event =
                    Event::rejection(env_id, audit.user_id.as_deref(), &audit.detail, audit.at);
                writes.extend(batch.enqueue(tx, event).await?);
            }
        }
        Op::Audit(audit) => writes.push(Write::Audit(audit.clone())),
        Op::DeleteUser(env_id, user_id, audit) => {
            // Serialised with identifies of the user on every node; an
            // identify after it in this batch reads the user again.
            tx.lock(&user_lock(env_id, user_id)).await?;
            batch.users.remove(&(env_id.clone(), user_id.clone()));
            let key = [env_id.into(), user_id.into()];
            if query_one(tx, sql::USER, &key, rows::unit).await?.is_none() {
                return Err(StoreError::NotFound("user"));
            }
            writes.push(Write::DeleteUser {
                env_id: env_id.clone(),
                user_id: user_id.clone(),
                at: audit.at,
            });
            writes.push(Write::PruneTombstones(audit.at - MAX_SESSION_TTL));
            writes.push(Write::Audit(audit.clone()));
            let event = Event::user_deleted(env_id, user_id, audit.at);
            writes.extend(batch.enqueue(tx, event).await?);
            batch.changed = true;
        }
        Op::CreateWebhook(w) => {
            batch.subscribers.remove(&w.env_id);
            writes.push(Write::InsertWebhook((**w).clone()));
        }
        Op::DeleteWebhook(env_id, id, audit) => {
            batch.subscribers.remove(env_id);
            writes.push(Write::DeleteWebhook {
                env_id: env_id.clone(),
                id: id.clone(),
            });
            writes.push(Write::Audit(audit.clone()));
        }
        Op::UpdateWebhookSecrets(env_id, id, secrets, at) => {
            writes.push(Write::SetWebhookSecrets {
                env_id: env_id.clone(),
                id: id.clone(),
                secrets: secrets.clone(),
                at: *at,
            });
        }
        Op::EnableWebhook(env_id, id, audit) => {
            batch.subscribers.remove(env_id);
            writes.push(Write::EnableWebhook {
                env_id: env_id.clone(),
                id: id.clone(),
                at: audit.at,
            });
            writes.push(Write::Audit(audit.clone()));
        }
        Op::ReplayWebhook(env_id, id, now_ms) => {
            let key = [env_id.into(), id.into()];
            if query_one(tx, sql::WEBHOOK, &key, rows::unit)
                .await?
                .is_none()
            {
                return Err(StoreError::NotFound("webhook endpoint"));
            }
            let n = execute(
                tx,
                &[Write::ReplayWebhook {
                    endpoint_id: id.clone(),
                    now_ms: *now_ms,
                }],
            )
            .await?;
            let n = n.first().copied().unwrap_or(0);
            batch.queued |= n > 0;
            return Ok(Reply::Count(n));
        }
        Op::Claim(now_ms, limit, schedule) => {
            let due: Vec<DueDelivery> = tx
                .query(
                    sql::deliveries_due(T::DIALECT),
                    &[(*now_ms).into(), i64::from(*limit).into()],
                    rows::due_delivery,
                )
                .await?;
            let (claimed, writes) = script::claim(due, *now_ms, schedule);
            execute(tx, &writes).await?;
            return Ok(Reply::Claimed(claimed));
        }
        Op::RecordAttempt(o) => {
            let writes = script::attempt(o);
            let changed = execute(tx, &writes).await?;
            // The endpoint was disabled by this attempt (not already): audit it.
            if matches!(writes.last(), Some(Write::DisableWebhook { .. }))
                && changed.last().is_some_and(|n| *n > 0)
            {
                let d = &o.delivery;
                let audit = NewAudit {
                    env_id: Some(d.env_id.clone()),
                    kind: "webhook.disabled",
                    user_id: None,
                    key_id: None,
                    actor: None,
                    detail: serde_json::json!({"endpoint_id": d.endpoint_id, "message": script::disabled_reason(d)}),
                    at: o.at_ms / 1000,
                };
                execute(tx, &[Write::Audit(audit)]).await?;
            }
            return Ok(Reply::Unit);
        }
        Op::AddStats(counts) => {
            for (env_id, minute, counts) in counts {
                writes.push(Write::AddStats {
                    env_id: env_id.clone(),
                    minute: *minute,
                    counts: *counts,
                });
            }
        }
        Op::Reseal(r) => {
            for (key_id, ciphertext) in &r.secrets {
                writes.push(Write::ResealSecret {
                    key_id: key_id.clone(),
                    ciphertext: ciphertext.clone(),
                });
            }
            for (kid, ciphertext) in &r.signing_keys {
                writes.push(Write::ResealSigningKey {
                    kid: kid.clone(),
                    ciphertext: ciphertext.clone(),
                });
            }
            for (id, secrets) in &r.webhooks {
                writes.push(Write::ResealWebhook {
                    id: id.clone(),
                    secrets: secrets.clone(),
                });
            }
            writes.push(Write::PutMeta {
                key: "master_key_check".into(),
                value: r.master_key_check.clone(),
            });
            writes.extend(r.audit.clone().map(Write::Audit));
            batch.changed = true;
            execute(tx, &writes).await?;
            if let Some(hook) = &r.before_commit {
                (hook.0)();
            }
            return Ok(Reply::Unit);
        }
    }
    execute(tx, &writes).await?;
    Ok(Reply::Unit)
}

async fn identify<T: Tx>(
    tx: &mut T,
    cmd: &IdentifyCommand,
    batch: &mut Batch,
) -> StoreResult<Reply> {
    let (env, id) = (cmd.env_id.as_str(), cmd.user_id.as_str());
    // Serialises identifies of one user across nodes.
    tx.lock(&user_lock(env, id)).await?;
    let mut reads = IdentifyReads::default();
    if let Some((jti, _)) = &cmd.jti {
        reads.jti_used = query_one(
            tx,
            sql::JTI_USED,
            &[env.into(), jti.into(), cmd.now.into()],
            rows::unit,
        )
        .await?
        .is_some();
    }
    reads.user = batch.user(tx, env, id).await?;
    if cmd.proof.is_none() {
        // Only an unproven identify of a user not yet counted can move the
        // counter; only then is it locked, so the cap holds across nodes
        // without serialising every identify.
        let may_count = cmd.enforcement != Enforcement::Enforce
            && !reads.user.as_ref().is_some_and(|u| u.counted_unsigned);
        reads.unsigned_count = query_one(
            tx,
            sql::env_unsigned_count(T::DIALECT, may_count),
            &[env.into()],
            rows::unsigned_count,
        )
        .await?
        .ok_or(StoreError::NotFound("environment"))?;
    }
    reads.subscribers = batch.subscribers(tx, env).await?.to_vec();
    if !reads.subscribers.is_empty() {
        reads.companies = companies_of(tx, env, id).await?;
    }
    let (outcome, writes) = match script::identify(reads, cmd) {
        Ok(decided) => decided,
        Err(rejection) => return Ok(Reply::Identify(Err(rejection))),
    };
    batch.queued |= writes.iter().any(|w| matches!(w, Write::Enqueue { .. }));
    execute(tx, &writes).await?;
    Ok(Reply::Identify(Ok(outcome)))
}

async fn group<T: Tx>(tx: &mut T, cmd: &GroupCommand) -> StoreResult<Reply> {
    let (env, id) = (cmd.env_id.as_str(), cmd.company_id.as_str());
    tx.lock(&company_lock(env, id)).await?;
    let mut reads = GroupReads {
        company: query_one(tx, sql::COMPANY, &[env.into(), id.into()], rows::company).await?,
        membership: query_one(
            tx,
            sql::MEMBERSHIP,
            &[env.into(), (&cmd.user_id).into(), id.into()],
            rows::proven,
        )
        .await?,
        memberships_of_user: 0,
    };
    if reads.membership.is_none() {
        reads.memberships_of_user = query_one(
            tx,
            sql::MEMBERSHIP_COUNT,
            &[env.into(), (&cmd.user_id).into()],
            rows::count,
        )
        .await?
        .unwrap_or(0);
    }
    let (company, writes) = match script::group(reads, cmd) {
        Ok(decided) => decided,
        Err(rejection) => return Ok(Reply::Group(Err(rejection))),
    };
    execute(tx, &writes).await?;
    Ok(Reply::Group(Ok(company)))
}

pub(super) async fn companies_of<T: Tx>(
    tx: &mut T,
    env: &str,
    user: &str,
) -> StoreResult<Vec<CompanyRecord>> {
    tx.query(
        sql::COMPANIES_OF_USER,
        &[env.into(), user.into()],
        rows::company,
    )
    .await
}
