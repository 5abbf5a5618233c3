//! Storage: one trait, one implementation per backend, chosen from the
//! database URL at start-up.

pub mod postgres;
pub mod sqlite;

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use serde_json::Value;

use crate::model::*;

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

/// An audit entry to append in the same transaction as the change it records.
#[derive(Clone, Debug)]
pub struct NewAudit {
    pub env_id: Option<String>,
    pub kind: &'static str,
    pub user_id: Option<String>,
    pub key_id: Option<String>,
    pub detail: Value,
    pub at: Ts,
}

/// Everything a first start creates, written in one transaction.
#[derive(Clone, Debug)]
pub struct Bootstrap {
    pub project_id: String,
    pub project_name: String,
    pub environment: Environment,
    pub secret: SecretRecord,
    pub signing_key: SigningKeyRecord,
    pub admin_token: Option<(String, [u8; 32])>,
    pub master_key_check: String,
    pub now: Ts,
}

/// A page of rows and the cursor of the next one.
#[derive(Clone, Debug)]
pub struct Page<T> {
    pub data: Vec<T>,
    pub next_cursor: Option<String>,
}

#[async_trait]
pub trait Store: Send + Sync + std::fmt::Debug + 'static {
    /// "sqlite" or "postgres".
    fn backend(&self) -> &'static str;
    /// Reachability, for `/readyz`.
    async fn ping(&self) -> StoreResult<()>;
    /// Flushes and closes (graceful shutdown).
    async fn close(&self);

    async fn get_meta(&self, key: &str) -> StoreResult<Option<String>>;
    async fn put_meta(&self, key: &str, value: &str) -> StoreResult<()>;
    async fn is_empty(&self) -> StoreResult<bool>;
    async fn bootstrap(&self, b: Bootstrap) -> StoreResult<()>;
    async fn default_project(&self) -> StoreResult<Option<String>>;

    async fn add_admin_token(&self, id: &str, hash: [u8; 32], now: Ts) -> StoreResult<()>;
    async fn admin_token_exists(&self, hash: [u8; 32]) -> StoreResult<bool>;

    async fn list_environments(&self) -> StoreResult<Vec<Environment>>;
    async fn get_environment(&self, id: &str) -> StoreResult<Option<Environment>>;
    async fn create_environment(
        &self,
        env: Environment,
        secret: SecretRecord,
        audit: NewAudit,
    ) -> StoreResult<()>;
    async fn update_environment(&self, id: &str, settings: EnvSettings, now: Ts)
    -> StoreResult<()>;
    async fn delete_environment(&self, id: &str, audit: NewAudit) -> StoreResult<()>;

    async fn list_all_secrets(&self) -> StoreResult<Vec<SecretRecord>>;
    /// Inserts a secret; with `expire_others_at`, every other active secret of
    /// the environment gets that expiry (rotation).
    async fn insert_secret(
        &self,
        secret: SecretRecord,
        expire_others_at: Option<Ts>,
        audit: NewAudit,
    ) -> StoreResult<()>;
    /// Revokes at once; returns the record after the change.
    async fn revoke_secret(
        &self,
        env_id: &str,
        key_id: &str,
        at: Ts,
        audit: NewAudit,
    ) -> StoreResult<SecretRecord>;

    async fn list_signing_keys(&self) -> StoreResult<Vec<SigningKeyRecord>>;
    /// Adds a key and retires every other current key at `now`.
    async fn rotate_signing_key(&self, key: SigningKeyRecord, audit: NewAudit) -> StoreResult<()>;

    /// Applies the binding rules and writes the user atomically.
    async fn identify(
        &self,
        cmd: IdentifyCommand,
    ) -> StoreResult<Result<IdentifyOutcome, IdentifyRejection>>;
    async fn group(
        &self,
        cmd: GroupCommand,
    ) -> StoreResult<Result<CompanyRecord, IdentifyRejection>>;
    async fn track(&self, event: EventRecord) -> StoreResult<()>;
    /// Counts a rejected identify and audits why.
    async fn record_rejection(&self, env_id: &str, audit: NewAudit) -> StoreResult<()>;
    async fn append_audit(&self, audit: NewAudit) -> StoreResult<()>;

    async fn get_user(&self, env_id: &str, user_id: &str) -> StoreResult<Option<UserRecord>>;
    async fn user_companies(&self, env_id: &str, user_id: &str) -> StoreResult<Vec<CompanyRecord>>;
    async fn list_users(
        &self,
        env_id: &str,
        verified: Option<bool>,
        after: Option<&str>,
        limit: u32,
    ) -> StoreResult<Page<UserRecord>>;
    async fn list_events(
        &self,
        env_id: &str,
        user_id: Option<&str>,
        before: Option<i64>,
        limit: u32,
    ) -> StoreResult<Page<EventRecord>>;
    async fn list_audit(
        &self,
        env_id: &str,
        before: Option<i64>,
        limit: u32,
    ) -> StoreResult<Page<AuditRecord>>;
    async fn coverage(&self, env_id: &str, since: Ts) -> StoreResult<Coverage>;

    /// Seconds to wait when `key` has had `limit` failed verifications in the
    /// current one-minute window (global across nodes on a shared database).
    async fn rate_blocked(&self, key: &str, limit: u32, now: Ts) -> StoreResult<Option<u64>>;
    /// Counts one failed verification for `key`.
    async fn rate_fail(&self, key: &str, now: Ts) -> StoreResult<()>;
    /// A channel that fires when another node changed environments, keys or
    /// signing keys (None for a single-node store).
    fn changes(&self) -> Option<tokio::sync::broadcast::Receiver<()>> {
        None
    }

    /// Woken after a commit that queued webhook deliveries.
    fn outbox_notify(&self) -> Arc<tokio::sync::Notify>;
    async fn create_webhook(&self, endpoint: WebhookEndpoint) -> StoreResult<()>;
    async fn list_webhooks(&self, env_id: &str) -> StoreResult<Vec<WebhookEndpoint>>;
    async fn get_webhook(&self, env_id: &str, id: &str) -> StoreResult<Option<WebhookEndpoint>>;
    async fn delete_webhook(&self, env_id: &str, id: &str) -> StoreResult<()>;
    async fn update_webhook_secrets(
        &self,
        env_id: &str,
        id: &str,
        secrets: Vec<u8>,
        now: Ts,
    ) -> StoreResult<()>;
    /// Re-enables a disabled endpoint (held deliveries stay held until a replay).
    async fn enable_webhook(&self, env_id: &str, id: &str, audit: NewAudit) -> StoreResult<()>;
    /// Queues again every undelivered delivery of the endpoint; returns how many.
    async fn replay_webhook(&self, env_id: &str, id: &str, now_ms: i64) -> StoreResult<u64>;
    /// Claims due deliveries: each claim counts as an attempt and already
    /// moves the delivery to its next retry time (`schedule_ms[attempt-1]`).
    async fn claim_deliveries(
        &self,
        now_ms: i64,
        limit: u32,
        schedule_ms: Vec<i64>,
    ) -> StoreResult<Vec<ClaimedDelivery>>;
    /// Logs an attempt; a success completes the delivery, a failure of the last
    /// attempt kills it and disables the endpoint (audited).
    async fn record_attempt(&self, outcome: AttemptOutcome) -> StoreResult<()>;
    async fn list_attempts(
        &self,
        env_id: &str,
        endpoint_id: &str,
        before: Option<i64>,
        limit: u32,
    ) -> StoreResult<Page<AttemptRecord>>;
}

/// True for `postgres://…` and `postgresql://…`.
pub fn is_postgres_url(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

/// Opens the store named by `database_url`, or SQLite in `data_dir`.
pub async fn open(database_url: Option<&str>, data_dir: &Path) -> anyhow::Result<Arc<dyn Store>> {
    match database_url {
        None => Ok(Arc::new(sqlite::SqliteStore::open_dir(data_dir).await?)),
        Some(url) if url.starts_with("sqlite:") => {
            Ok(Arc::new(sqlite::SqliteStore::open_url(url).await?))
        }
        Some(url) if is_postgres_url(url) => Ok(Arc::new(postgres::PgStore::open(url).await?)),
        Some(other) => {
            let scheme = other.split(':').next().unwrap_or(other);
            anyhow::bail!(
                "unsupported database URL scheme `{scheme}`: use sqlite:PATH or postgres://…, or leave VOUCH_DATABASE_URL unset for SQLite in the data directory"
            )
        }
    }
}

/// Page sizes every list accepts: 1–200.
pub(crate) fn page_limit(limit: u32) -> u32 {
    limit.clamp(1, 200)
}

/// Cuts a `limit + 1` fetch to a page and names the cursor of the next one.
pub(crate) fn page<T>(
    mut data: Vec<T>,
    limit: u32,
    cursor: impl Fn(&T) -> String,
) -> StoreResult<Page<T>> {
    let next_cursor = if data.len() > limit as usize {
        data.truncate(limit as usize);
        data.last().map(cursor)
    } else {
        None
    };
    Ok(Page { data, next_cursor })
}
