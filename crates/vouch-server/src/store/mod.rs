//! Storage: one [`Store`] over two thin adapters (SQLite and PostgreSQL),
//! chosen from the database URL at start-up.
//!
//! What the store does is written once: the transaction scripts in [`ops`]
//! (reads, then a pure decision in [`script`], then [`write`]s) over the
//! [`tx::Tx`] both adapters implement, with every statement in [`sql`] and
//! one mapper per record in [`rows`]. An adapter only moves operations to a
//! connection: SQLite's single writer thread groups whatever is queued into one
//! transaction; PostgreSQL runs each in a pooled connection and tells the other
//! nodes about changes.

mod batch;
pub mod copy;
pub mod db;
pub mod ops;
mod pg_writer;
pub mod postgres;
pub mod reads;
pub(crate) mod rows;
pub mod script;
pub mod sql;
pub mod sqlite;
mod stats;
pub mod tx;
pub mod write;

use std::path::Path;
use std::sync::Arc;

use tokio::sync::{Notify, broadcast};

pub use crate::model::NewAudit;
use crate::model::*;
use db::Db;
pub use ops::{BeforeCommit, Reseal};
use ops::{Op, Reply};
use reads::{AuditQuery, EventQuery, UserQuery};
use stats::PendingStats;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("database unavailable: {0}")]
    Unavailable(String),
    #[error("store error: {0}")]
    Internal(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// Everything a first start creates, written in one transaction.
#[derive(Clone, Debug)]
pub struct Bootstrap {
    pub project_id: String,
    pub project_name: String,
    pub environment: Environment,
    pub secret: SecretRecord,
    pub signing_key: SigningKeyRecord,
    pub admin_token: Option<AdminTokenRecord>,
    pub master_key_check: String,
    pub now: Ts,
}

/// A page of rows and the cursor of the next one.
#[derive(Clone, Debug)]
pub struct Page<T> {
    pub data: Vec<T>,
    pub next_cursor: Option<String>,
}

/// The store: every operation the server needs, over one adapter.
#[derive(Debug, Clone)]
pub struct Store {
    db: Arc<Db>,
    stats: Arc<PendingStats>,
}

fn unexpected(what: &str) -> StoreError {
    StoreError::Internal(format!("the store answered something else than {what}"))
}

impl Store {
    pub fn new(db: impl Into<Db>) -> Self {
        let db = Arc::new(db.into());
        let stats = Arc::new(PendingStats::default());
        stats::spawn_flusher(Arc::downgrade(&db), stats.clone());
        Self { db, stats }
    }

    pub fn backend(&self) -> &'static str {
        self.db.name()
    }

    async fn write(&self, op: Op) -> StoreResult<()> {
        self.db.write(op).await.map(|_| ())
    }

    /// Reachability, for `/readyz`.
    pub async fn ping(&self) -> StoreResult<()> {
        self.db.read(&reads::Ping {}).await.map(|_| ())
    }

    /// Writes the pending counts, finishes queued writes and closes.
    pub async fn close(&self) {
        if let Err(e) = self.flush_stats().await {
            tracing::error!(error = %e, "writing the identify stats at close failed");
        }
        self.stats.close();
        self.db.close().await;
    }

    pub fn changes(&self) -> Option<broadcast::Receiver<()>> {
        self.db.changes()
    }

    pub fn outbox_notify(&self) -> Arc<Notify> {
        self.db.outbox_notify()
    }

    // ---- meta, bootstrap, admin tokens ----

    pub async fn get_meta(&self, key: &str) -> StoreResult<Option<String>> {
        self.db.read(&reads::Meta { key: key.into() }).await
    }

    pub async fn put_meta(&self, key: &str, value: &str) -> StoreResult<()> {
        self.write(Op::PutMeta(key.into(), value.into())).await
    }

    pub async fn is_empty(&self) -> StoreResult<bool> {
        self.db.read(&reads::IsEmpty {}).await
    }

    pub async fn bootstrap(&self, b: Bootstrap) -> StoreResult<()> {
        self.write(Op::Bootstrap(Box::new(b))).await
    }

    pub async fn default_project(&self) -> StoreResult<Option<String>> {
        self.db.read(&reads::DefaultProject {}).await
    }

    /// Adds a token; a token with the same hash already there is kept as it is.
    pub async fn add_admin_token(&self, token: AdminTokenRecord) -> StoreResult<()> {
        self.write(Op::AddAdminToken(Box::new(token))).await
    }

    pub async fn admin_token(&self, hash: [u8; 32]) -> StoreResult<Option<AdminTokenRecord>> {
        self.db.read(&reads::AdminTokenByHash { hash }).await
    }

    pub async fn list_admin_tokens(&self) -> StoreResult<Vec<AdminTokenRecord>> {
        self.db.scan(reads::AdminTokens {}).await
    }

    /// Deletes a token; refused (conflict) for the last full admin token.
    pub async fn delete_admin_token(&self, id: &str, audit: NewAudit) -> StoreResult<()> {
        self.write(Op::DeleteAdminToken(id.into(), audit)).await
    }

    /// Deletes a token even when it is the last full admin token (offline
    /// recovery; the admin API never does this).
    pub async fn force_delete_admin_token(&self, id: &str, audit: NewAudit) -> StoreResult<()> {
        self.write(Op::ForceDeleteAdminToken(id.into(), audit))
            .await
    }

    // ---- environments and keys ----

    pub async fn list_environments(&self) -> StoreResult<Vec<Environment>> {
        self.db.scan(reads::Environments {}).await
    }

    pub async fn get_environment(&self, id: &str) -> StoreResult<Option<Environment>> {
        self.db
            .read(&reads::EnvironmentById { id: id.into() })
            .await
    }

    pub async fn environment_by_pk(&self, pk: &str) -> StoreResult<Option<Environment>> {
        self.db
            .read(&reads::EnvironmentByPk { pk: pk.into() })
            .await
    }

    pub async fn create_environment(
        &self,
        env: Environment,
        secret: SecretRecord,
        audit: NewAudit,
    ) -> StoreResult<()> {
        self.write(Op::CreateEnvironment(Box::new((env, secret, audit))))
            .await
    }

    /// Writes new settings and their audit entry in one transaction.
    pub async fn update_environment(
        &self,
        id: &str,
        settings: EnvSettings,
        audit: NewAudit,
    ) -> StoreResult<()> {
        self.write(Op::UpdateEnvironment(id.into(), Box::new(settings), audit))
            .await
    }

    /// Refuses every session of the environment issued at or before `audit.at`.
    pub async fn revoke_sessions(&self, id: &str, audit: NewAudit) -> StoreResult<()> {
        self.write(Op::RevokeSessions(id.into(), audit)).await
    }

    pub async fn delete_environment(&self, id: &str, audit: NewAudit) -> StoreResult<()> {
        self.stats.forget_env(id);
        self.write(Op::DeleteEnvironment(id.into(), audit)).await
    }

    pub async fn list_all_secrets(&self) -> StoreResult<Vec<SecretRecord>> {
        self.db.scan(reads::Secrets { env_id: None }).await
    }

    pub async fn list_secrets(&self, env_id: &str) -> StoreResult<Vec<SecretRecord>> {
        self.db
            .scan(reads::Secrets {
                env_id: Some(env_id.into()),
            })
            .await
    }

    /// Inserts a secret; with `expire_others_at`, every other active secret of
    /// the environment gets that expiry (rotation).
    pub async fn insert_secret(
        &self,
        secret: SecretRecord,
        expire_others_at: Option<Ts>,
        audit: NewAudit,
    ) -> StoreResult<()> {
        self.write(Op::InsertSecret(Box::new(secret), expire_others_at, audit))
            .await
    }

    /// Revokes at once; returns the record after the change.
    pub async fn revoke_secret(
        &self,
        env_id: &str,
        key_id: &str,
        exposed: bool,
        audit: NewAudit,
    ) -> StoreResult<SecretRecord> {
        let op = Op::RevokeSecret {
            env_id: env_id.into(),
            key_id: key_id.into(),
            exposed,
            audit,
        };
        match self.db.write(op).await? {
            Reply::Secret(s) => Ok(s),
            _ => Err(unexpected("a secret")),
        }
    }

    pub async fn list_signing_keys(&self) -> StoreResult<Vec<SigningKeyRecord>> {
        self.db.scan(reads::SigningKeys {}).await
    }

    /// Adds a key and retires every other current key at its creation time.
    pub async fn rotate_signing_key(
        &self,
        key: SigningKeyRecord,
        audit: NewAudit,
    ) -> StoreResult<()> {
        self.write(Op::RotateSigningKey(Box::new(key), audit)).await
    }

    /// Every sealed value again under a new master key, in one transaction.
    pub async fn reseal(&self, r: Reseal) -> StoreResult<()> {
        self.write(Op::Reseal(Box::new(r))).await
    }

    // ---- users, companies, events ----

    /// Applies the binding rules and writes the user atomically; an identify
    /// that changes nothing is answered from one read.
    pub async fn identify(
        &self,
        cmd: IdentifyCommand,
    ) -> StoreResult<Result<IdentifyOutcome, IdentifyRejection>> {
        let outcome = if cmd.proof.is_some() {
            Outcome::Verified
        } else {
            Outcome::Unverified
        };
        let (env_id, now) = (cmd.env_id.clone(), cmd.now);
        let unchanged = self
            .db
            .read(&reads::UnchangedIdentify { cmd: &cmd })
            .await?;
        let result = match unchanged {
            Some(o) => Ok(o),
            None => match self.db.write(Op::Identify(Box::new(cmd))).await? {
                Reply::Identify(r) => r,
                _ => return Err(unexpected("an identify")),
            },
        };
        if result.is_ok() {
            self.stats.add(&env_id, now, outcome);
        }
        Ok(result)
    }

    pub async fn group(
        &self,
        cmd: GroupCommand,
    ) -> StoreResult<Result<CompanyRecord, IdentifyRejection>> {
        match self.db.write(Op::Group(Box::new(cmd))).await? {
            Reply::Group(r) => Ok(r),
            _ => Err(unexpected("a group call")),
        }
    }

    pub async fn track(&self, event: EventRecord) -> StoreResult<()> {
        self.write(Op::Track(Box::new(event))).await
    }

    /// Counts a rejected proof, audits it and sends `identity.rejected`.
    pub async fn record_rejection(&self, audit: NewAudit) -> StoreResult<()> {
        if let Some(env_id) = &audit.env_id {
            self.stats.add(env_id, audit.at, Outcome::Rejected);
        }
        self.write(Op::Rejection(audit)).await
    }

    /// Counts a rejected identify without auditing it (a throttled client).
    pub fn count_rejection(&self, env_id: &str, at: Ts) {
        self.stats.add(env_id, at, Outcome::Rejected);
    }

    pub async fn append_audit(&self, audit: NewAudit) -> StoreResult<()> {
        self.write(Op::Audit(audit)).await
    }

    pub async fn get_user(&self, env_id: &str, user_id: &str) -> StoreResult<Option<UserRecord>> {
        self.db
            .read(&reads::User {
                env_id: env_id.into(),
                id: user_id.into(),
            })
            .await
    }

    pub async fn user_companies(
        &self,
        env_id: &str,
        user_id: &str,
    ) -> StoreResult<Vec<CompanyRecord>> {
        self.db
            .read(&reads::UserCompanies {
                env_id: env_id.into(),
                id: user_id.into(),
            })
            .await
    }

    /// Erases a user, its memberships and events; its sessions are refused.
    pub async fn delete_user(
        &self,
        env_id: &str,
        user_id: &str,
        audit: NewAudit,
    ) -> StoreResult<()> {
        self.write(Op::DeleteUser(env_id.into(), user_id.into(), audit))
            .await
    }

    /// Erased users newer than `since`.
    pub async fn tombstones(&self, since: Ts) -> StoreResult<Vec<Tombstone>> {
        self.db.scan(reads::Tombstones { since }).await
    }

    pub async fn list_users(&self, q: UserQuery) -> StoreResult<Page<UserRecord>> {
        self.db.scan(reads::Users { q }).await
    }

    pub async fn list_events(&self, q: EventQuery) -> StoreResult<Page<EventRecord>> {
        self.db.scan(reads::Events { q }).await
    }

    pub async fn list_audit(&self, q: AuditQuery) -> StoreResult<Page<AuditRecord>> {
        self.db.scan(reads::Audit { q }).await
    }

    /// Exact for this node's identifies (its pending counts are written
    /// first); other nodes' within a second.
    pub async fn coverage(&self, env_id: &str, since: Ts) -> StoreResult<Coverage> {
        self.flush_stats().await?;
        self.db
            .scan(reads::CoverageSince {
                env_id: env_id.into(),
                since,
            })
            .await
    }

    /// Writes the coverage counts kept in memory.
    pub async fn flush_stats(&self) -> StoreResult<()> {
        stats::flush(&self.db, &self.stats).await
    }

    // ---- failed-verification limits ----

    /// Counts one failure for each key; each key's failures in this minute.
    pub async fn count_failures(&self, keys: &[String], now: Ts) -> StoreResult<Vec<u32>> {
        self.db.count_failures(keys, now).await
    }

    // ---- webhooks ----

    pub async fn create_webhook(&self, endpoint: WebhookEndpoint) -> StoreResult<()> {
        self.write(Op::CreateWebhook(Box::new(endpoint))).await
    }

    pub async fn list_webhooks(&self, env_id: &str) -> StoreResult<Vec<WebhookEndpoint>> {
        self.db
            .scan(reads::Webhooks {
                env_id: Some(env_id.into()),
            })
            .await
    }

    /// Every endpoint of every environment (master-key rotation).
    pub async fn list_all_webhooks(&self) -> StoreResult<Vec<WebhookEndpoint>> {
        self.db.scan(reads::Webhooks { env_id: None }).await
    }

    pub async fn get_webhook(
        &self,
        env_id: &str,
        id: &str,
    ) -> StoreResult<Option<WebhookEndpoint>> {
        self.db
            .read(&reads::Webhook {
                env_id: env_id.into(),
                id: id.into(),
            })
            .await
    }

    pub async fn delete_webhook(&self, env_id: &str, id: &str, audit: NewAudit) -> StoreResult<()> {
        self.write(Op::DeleteWebhook(env_id.into(), id.into(), audit))
            .await
    }

    pub async fn update_webhook_secrets(
        &self,
        env_id: &str,
        id: &str,
        secrets: Vec<u8>,
        now: Ts,
    ) -> StoreResult<()> {
        self.write(Op::UpdateWebhookSecrets(
            env_id.into(),
            id.into(),
            secrets,
            now,
        ))
        .await
    }

    /// Re-enables a disabled endpoint (held deliveries stay held until a replay).
    pub async fn enable_webhook(&self, env_id: &str, id: &str, audit: NewAudit) -> StoreResult<()> {
        self.write(Op::EnableWebhook(env_id.into(), id.into(), audit))
            .await
    }

    /// Queues again every undelivered delivery of the endpoint; returns how many.
    pub async fn replay_webhook(&self, env_id: &str, id: &str, now_ms: i64) -> StoreResult<u64> {
        match self
            .db
            .write(Op::ReplayWebhook(env_id.into(), id.into(), now_ms))
            .await?
        {
            Reply::Count(n) => Ok(n),
            _ => Err(unexpected("a count")),
        }
    }

    /// Claims due deliveries: each claim counts as an attempt and already
    /// moves the delivery to its next retry time.
    pub async fn claim_deliveries(
        &self,
        now_ms: i64,
        limit: u32,
        schedule_ms: Vec<i64>,
    ) -> StoreResult<Vec<ClaimedDelivery>> {
        match self.db.write(Op::Claim(now_ms, limit, schedule_ms)).await? {
            Reply::Claimed(v) => Ok(v),
            _ => Err(unexpected("claimed deliveries")),
        }
    }

    /// Logs an attempt; a success completes the delivery, a failure of the
    /// last attempt kills it and disables the endpoint (audited).
    pub async fn record_attempt(&self, outcome: AttemptOutcome) -> StoreResult<()> {
        self.write(Op::RecordAttempt(Box::new(outcome))).await
    }

    pub async fn list_attempts(
        &self,
        env_id: &str,
        endpoint_id: &str,
        before: Option<i64>,
        limit: u32,
    ) -> StoreResult<Page<AttemptRecord>> {
        self.db
            .scan(reads::Attempts {
                env_id: env_id.into(),
                endpoint_id: endpoint_id.into(),
                before,
                limit,
            })
            .await
    }
}

/// True for `postgres://…` and `postgresql://…`.
pub fn is_postgres_url(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

/// Opens the store named by `database_url`, or SQLite in `data_dir`.
pub async fn open(database_url: Option<&str>, data_dir: &Path) -> anyhow::Result<Store> {
    let db = match database_url {
        None => Db::Sqlite(sqlite::SqliteStore::open_dir(data_dir).await?),
        Some(url) if url.starts_with("sqlite:") => {
            Db::Sqlite(sqlite::SqliteStore::open_url(url).await?)
        }
        Some(url) if is_postgres_url(url) => Db::Postgres(postgres::PgStore::open(url).await?),
        Some(other) => {
            let scheme = other.split(':').next().unwrap_or(other);
            anyhow::bail!(
                "unsupported database URL scheme `{scheme}`: use sqlite:PATH or postgres://…, or leave VOUCH_DATABASE_URL unset for SQLite in the data directory"
            )
        }
    };
    Ok(Store::new(db))
}

/// Page sizes every list accepts: 1–200.
pub(crate) fn page_limit(limit: u32) -> u32 {
    limit.clamp(1, 200)
}

/// Cuts a `limit + 1` fetch to a page and names the cursor of the next one.
pub(crate) fn page<T>(mut data: Vec<T>, limit: u32, cursor: impl Fn(&T) -> String) -> Page<T> {
    let next_cursor = if data.len() > limit as usize {
        data.truncate(limit as usize);
        data.last().map(cursor)
    } else {
        None
    };
    Page { data, next_cursor }
}
