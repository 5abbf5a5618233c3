//! The shared store: PostgreSQL, for any number of Vouch nodes on one
//! database. Every write runs in its own transaction; identifies and group
//! calls of one user (company) are serialised by a transaction-scoped advisory
//! lock and decided by the same pure rules as SQLite (`model::apply_identify`).
//!
//! Nodes learn about each other's changes through `LISTEN/NOTIFY`: a write that
//! changes environments, secrets or signing keys sends `vouch_changes` in its
//! transaction; a write that queues webhook deliveries sends `vouch_outbox`.
//! The listener reconnects by itself and, after any reconnect, signals a change
//! so that every cache is rebuilt (a notification may have been missed).

use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Map, Value};
use sqlx::postgres::{PgConnectOptions, PgConnection, PgListener, PgPool, PgPoolOptions, PgRow};
use sqlx::{ConnectOptions, Connection, Row};
use std::sync::Arc;
use tokio::sync::{Notify, broadcast};
use vouch_core::VerifiedBy;

use super::*;

const MIGRATIONS: &[&str] = &[
    include_str!("../../migrations/postgres/0001_init.sql"),
    include_str!("../../migrations/postgres/0002_webhooks.sql"),
];
/// Channel of changes to environments, secrets and signing keys.
pub const CHANGES_CHANNEL: &str = "vouch_changes";
/// Channel of newly queued webhook deliveries.
pub const OUTBOX_CHANNEL: &str = "vouch_outbox";
/// Advisory lock keys (arbitrary constants, "vouch" in ASCII plus a number).
const MIGRATION_LOCK: i64 = 0x766f_7563_6801;
const BOOTSTRAP_LOCK: i64 = 0x766f_7563_6802;
/// Rows over which the identify counters of one minute are spread.
const STAT_SHARDS: u16 = 8;
const RATE_WINDOW: Ts = 60;
/// A pool that cannot hand out a connection within this answers 503 at once.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(2);
const MAX_CONNECTIONS: u32 = 16;
const LISTEN_BACKOFF_MAX: Duration = Duration::from_secs(5);

#[derive(Debug)]
pub struct PgStore {
    pool: PgPool,
    outbox: Arc<Notify>,
    changes: broadcast::Sender<()>,
    listener: std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
    rate_writes: AtomicU64,
}

fn db_err(e: sqlx::Error) -> StoreError {
    match &e {
        sqlx::Error::Database(d) if d.is_unique_violation() => {
            StoreError::Conflict("an object with this id already exists".into())
        }
        sqlx::Error::Database(d) => {
            let code = d.code().unwrap_or_default();
            // 08: connection exceptions; 57P: the server is shutting down or
            // starting; 53300: too many connections; 57014: statement timeout;
            // 40001/40P01: serialisation failure or deadlock (retry later).
            if code.starts_with("08")
                || code.starts_with("57P")
                || matches!(code.as_ref(), "53300" | "57014" | "40001" | "40P01")
            {
                StoreError::Unavailable(e.to_string())
            } else {
                StoreError::Internal(e.to_string())
            }
        }
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::BeginFailed => StoreError::Unavailable(e.to_string()),
        _ => StoreError::Internal(e.to_string()),
    }
}

fn json_err(e: serde_json::Error) -> StoreError {
    StoreError::Internal(format!("stored JSON is unreadable: {e}"))
}

fn to_json(v: &impl serde::Serialize) -> StoreResult<String> {
    serde_json::to_string(v).map_err(|e| StoreError::Internal(e.to_string()))
}

fn connect_options(url: &str) -> anyhow::Result<PgConnectOptions> {
    let opts = PgConnectOptions::from_str(url).map_err(|e| {
        anyhow::anyhow!(
            "invalid PostgreSQL URL {}: {e}",
            crate::config::mask_url(url)
        )
    })?;
    // A stuck statement or a node that froze inside a transaction must not
    // hold locks (and requests) for long.
    Ok(opts.application_name("vouch").options([
        ("statement_timeout", "10s"),
        ("idle_in_transaction_session_timeout", "15s"),
    ]))
}

impl PgStore {
    /// Connects, applies the migrations (one node at a time) and starts the
    /// change listener.
    pub async fn open(url: &str) -> anyhow::Result<Self> {
        let opts = connect_options(url)?;
        let pool = PgPoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .min_connections(0)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .idle_timeout(Some(Duration::from_secs(120)))
            .connect_with(opts.clone())
            .await
            .map_err(|e| {
                anyhow::anyhow!(
                    "cannot connect to PostgreSQL at {}: {e}",
                    crate::config::mask_url(url)
                )
            })?;
        migrate(&pool).await?;
        let outbox = Arc::new(Notify::new());
        let (changes, _) = broadcast::channel(16);
        let listener = tokio::spawn(listen_loop(opts, changes.clone(), outbox.clone()));
        Ok(Self {
            pool,
            outbox,
            changes,
            listener: std::sync::Mutex::new(Some(listener)),
            rate_writes: AtomicU64::new(0),
        })
    }

    async fn begin(&self) -> StoreResult<sqlx::Transaction<'static, sqlx::Postgres>> {
        self.pool.begin().await.map_err(db_err)
    }

    /// Commits; wakes this node's dispatcher when deliveries were queued (the
    /// others hear the `vouch_outbox` notification sent in the transaction).
    async fn commit(
        &self,
        tx: sqlx::Transaction<'static, sqlx::Postgres>,
        queued: bool,
    ) -> StoreResult<()> {
        let started = std::time::Instant::now();
        tx.commit().await.map_err(db_err)?;
        // Each write is its own transaction here: a batch of one.
        let m = &*crate::metrics::METRICS;
        m.db_commit_seconds.observe(started.elapsed().as_secs_f64());
        m.db_batch_size.observe(1.0);
        if queued {
            self.outbox.notify_one();
        }
        Ok(())
    }
}

/// Applies the missing migrations under a session advisory lock, so nodes
/// starting together take turns.
async fn migrate(pool: &PgPool) -> anyhow::Result<()> {
    let mut conn = pool.acquire().await?;
    sqlx::query("SELECT pg_advisory_lock($1)")
        .bind(MIGRATION_LOCK)
        .execute(&mut *conn)
        .await?;
    let result = migrate_locked(&mut conn).await;
    if sqlx::query("SELECT pg_advisory_unlock($1)")
        .bind(MIGRATION_LOCK)
        .execute(&mut *conn)
        .await
        .is_err()
    {
        // Never hand a connection that may still hold the lock back to the pool.
        conn.close_on_drop();
    }
    result
}

async fn migrate_locked(conn: &mut PgConnection) -> anyhow::Result<()> {
    sqlx::raw_sql(
        "CREATE TABLE IF NOT EXISTS vouch_schema (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)",
    )
    .execute(&mut *conn)
    .await?;
    let version: Option<i64> = sqlx::query_scalar("SELECT MAX(version) FROM vouch_schema")
        .fetch_one(&mut *conn)
        .await?;
    let version = version.unwrap_or(0);
    for (i, sql) in MIGRATIONS.iter().enumerate() {
        let target = i64::try_from(i)? + 1;
        if version >= target {
            continue;
        }
        let mut tx = conn.begin().await?;
        sqlx::raw_sql(*sql).execute(&mut *tx).await?;
        sqlx::query("INSERT INTO vouch_schema (version, applied_at) VALUES ($1, $2)")
            .bind(target)
            .bind(crate::state::now())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        tracing::info!(version = target, "applied PostgreSQL migration");
    }
    Ok(())
}

/// Follows `vouch_changes` and `vouch_outbox` on a dedicated connection,
/// reconnecting with backoff; after every reconnect it signals a change and
/// wakes the dispatcher, since notifications sent meanwhile are lost.
async fn listen_loop(opts: PgConnectOptions, changes: broadcast::Sender<()>, outbox: Arc<Notify>) {
    let mut backoff = Duration::from_millis(100);
    let mut connected_before = false;
    loop {
        match listen_once(&opts).await {
            Ok(mut listener) => {
                if connected_before {
                    tracing::info!("LISTEN connection re-established; refreshing caches");
                    let _ = changes.send(());
                    outbox.notify_one();
                }
                connected_before = true;
                backoff = Duration::from_millis(100);
                loop {
                    match listener.try_recv().await {
                        Ok(Some(n)) if n.channel() == OUTBOX_CHANNEL => outbox.notify_one(),
                        Ok(Some(_)) => {
                            let _ = changes.send(());
                        }
                        Ok(None) => {
                            tracing::warn!("LISTEN connection lost; reconnecting");
                            break;
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "LISTEN connection failed; reconnecting");
                            break;
                        }
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot LISTEN for changes; retrying"),
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(LISTEN_BACKOFF_MAX);
    }
}

async fn listen_once(opts: &PgConnectOptions) -> Result<PgListener, sqlx::Error> {
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(Duration::from_secs(3))
        .idle_timeout(None)
        .max_lifetime(None)
        .connect_lazy_with(opts.clone());
    let mut listener = PgListener::connect_with(&pool).await?;
    listener
        .listen_all([CHANGES_CHANNEL, OUTBOX_CHANNEL])
        .await?;
    Ok(listener)
}

async fn notify_changes(conn: &mut PgConnection) -> StoreResult<()> {
    sqlx::query("SELECT pg_notify($1, '')")
        .bind(CHANGES_CHANNEL)
        .execute(conn)
        .await
        .map(|_| ())
        .map_err(db_err)
}

async fn notify_outbox(conn: &mut PgConnection) -> StoreResult<()> {
    sqlx::query("SELECT pg_notify($1, '')")
        .bind(OUTBOX_CHANNEL)
        .execute(conn)
        .await
        .map(|_| ())
        .map_err(db_err)
}

/// Serialises the transactions that touch one user (or company) across nodes.
async fn lock_key(conn: &mut PgConnection, key: &str) -> StoreResult<()> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
        .bind(key)
        .execute(conn)
        .await
        .map(|_| ())
        .map_err(db_err)
}

async fn insert_audit(conn: &mut PgConnection, a: &NewAudit) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO audit (id, env_id, kind, user_id, key_id, detail, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(vouch_core::keys::generate_id("aud"))
    .bind(&a.env_id)
    .bind(a.kind)
    .bind(&a.user_id)
    .bind(&a.key_id)
    .bind(to_json(&a.detail)?)
    .bind(a.at)
    .execute(conn)
    .await
    .map_err(db_err)?;
    Ok(())
}

async fn insert_env(conn: &mut PgConnection, env: &Environment) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO environments (id, project_id, publishable_key, settings, unsigned_count, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&env.id)
    .bind(&env.project_id)
    .bind(&env.publishable_key)
    .bind(to_json(&env.settings)?)
    .bind(env.unsigned_count)
    .bind(env.created_at)
    .bind(env.updated_at)
    .execute(conn)
    .await
    .map_err(db_err)?;
    Ok(())
}

async fn insert_secret(conn: &mut PgConnection, s: &SecretRecord) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO secrets (id, env_id, ciphertext, imported, created_at, expires_at, revoked_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&s.id)
    .bind(&s.env_id)
    .bind(&s.ciphertext)
    .bind(s.imported)
    .bind(s.created_at)
    .bind(s.expires_at)
    .bind(s.revoked_at)
    .execute(conn)
    .await
    .map_err(db_err)?;
    Ok(())
}

async fn insert_signing_key(conn: &mut PgConnection, k: &SigningKeyRecord) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO signing_keys (kid, ciphertext, public_key, created_at, retired_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(&k.kid)
    .bind(&k.ciphertext)
    .bind(&k.public_key)
    .bind(k.created_at)
    .bind(k.retired_at)
    .execute(conn)
    .await
    .map_err(db_err)?;
    Ok(())
}

fn random_shard() -> i16 {
    let mut b = [0u8; 2];
    if getrandom::fill(&mut b).is_err() {
        return 0;
    }
    i16::try_from(u16::from_le_bytes(b) % STAT_SHARDS).unwrap_or(0)
}

async fn bump_stat(
    conn: &mut PgConnection,
    env_id: &str,
    at: Ts,
    outcome: Outcome,
) -> StoreResult<()> {
    let sql = match outcome {
        Outcome::Verified => {
            "INSERT INTO identify_stats (env_id, minute, shard, verified) VALUES ($1, $2, $3, 1) ON CONFLICT (env_id, minute, shard) DO UPDATE SET verified = identify_stats.verified + 1"
        }
        Outcome::Unverified => {
            "INSERT INTO identify_stats (env_id, minute, shard, unverified) VALUES ($1, $2, $3, 1) ON CONFLICT (env_id, minute, shard) DO UPDATE SET unverified = identify_stats.unverified + 1"
        }
        Outcome::Rejected => {
            "INSERT INTO identify_stats (env_id, minute, shard, rejected) VALUES ($1, $2, $3, 1) ON CONFLICT (env_id, minute, shard) DO UPDATE SET rejected = identify_stats.rejected + 1"
        }
    };
    sqlx::query(sql)
        .bind(env_id)
        .bind(at.div_euclid(60))
        .bind(random_shard())
        .execute(conn)
        .await
        .map_err(db_err)?;
    Ok(())
}

async fn env_exists(conn: &mut PgConnection, id: &str) -> StoreResult<bool> {
    let r: Option<i32> = sqlx::query_scalar("SELECT 1 FROM environments WHERE id = $1")
        .bind(id)
        .fetch_optional(conn)
        .await
        .map_err(db_err)?;
    Ok(r.is_some())
}

async fn identify_tx(
    conn: &mut PgConnection,
    cmd: &IdentifyCommand,
    queued: &mut bool,
) -> StoreResult<Result<IdentifyOutcome, IdentifyRejection>> {
    lock_key(conn, &format!("{}:{}", cmd.env_id, cmd.user_id)).await?;
    if let Some((jti, _)) = &cmd.jti {
        let used: Option<i32> = sqlx::query_scalar(
            "SELECT 1 FROM used_jtis WHERE env_id = $1 AND jti = $2 AND expires_at > $3",
        )
        .bind(&cmd.env_id)
        .bind(jti)
        .bind(cmd.now)
        .fetch_optional(&mut *conn)
        .await
        .map_err(db_err)?;
        if used.is_some() {
            return Ok(Err(IdentifyRejection::TokenReplayed));
        }
    }
    let existing = sqlx::query("SELECT * FROM users WHERE env_id = $1 AND id = $2")
        .bind(&cmd.env_id)
        .bind(&cmd.user_id)
        .fetch_optional(&mut *conn)
        .await
        .map_err(db_err)?
        .map(|r| user_from_row(&r))
        .transpose()?;
    // Only an unproven identify of a user not yet counted can move the
    // environment's unsigned counter: only then is its row locked, so the cap
    // holds across nodes without serialising every identify.
    let may_count = cmd.proof.is_none()
        && cmd.enforcement != Enforcement::Enforce
        && !existing.as_ref().is_some_and(|u| u.counted_unsigned);
    let sql = if may_count {
        "SELECT unsigned_count FROM environments WHERE id = $1 FOR UPDATE"
    } else {
        "SELECT unsigned_count FROM environments WHERE id = $1"
    };
    let unsigned_count: i64 = sqlx::query_scalar(sql)
        .bind(&cmd.env_id)
        .fetch_optional(&mut *conn)
        .await
        .map_err(db_err)?
        .ok_or(StoreError::NotFound("environment"))?;
    let outcome = match apply_identify(existing, cmd, unsigned_count) {
        Ok(o) => o,
        Err(rejection) => return Ok(Err(rejection)),
    };
    let u = &outcome.user;
    if outcome.write {
        sqlx::query(
            "INSERT INTO users (env_id, id, verified, ever_verified, verified_by, key_id, verified_at, attributes, verified_attributes, counted_unsigned, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
             ON CONFLICT (env_id, id) DO UPDATE SET verified = excluded.verified, ever_verified = excluded.ever_verified,
               verified_by = excluded.verified_by, key_id = excluded.key_id, verified_at = excluded.verified_at,
               attributes = excluded.attributes, verified_attributes = excluded.verified_attributes,
               counted_unsigned = excluded.counted_unsigned, updated_at = excluded.updated_at",
        )
        .bind(&u.env_id)
        .bind(&u.id)
        .bind(u.verified)
        .bind(u.verified)
        .bind(u.verified_by.map(verified_by_str))
        .bind(&u.key_id)
        .bind(u.verified_at)
        .bind(to_json(&u.attributes)?)
        .bind(to_json(&u.verified_attributes)?)
        .bind(u.counted_unsigned)
        .bind(u.created_at)
        .bind(u.updated_at)
        .execute(&mut *conn)
        .await
        .map_err(db_err)?;
    }
    if outcome.counted_unsigned {
        sqlx::query("UPDATE environments SET unsigned_count = unsigned_count + 1 WHERE id = $1")
            .bind(&cmd.env_id)
            .execute(&mut *conn)
            .await
            .map_err(db_err)?;
    }
    if let Some((jti, until)) = &cmd.jti {
        sqlx::query("INSERT INTO used_jtis (env_id, jti, expires_at) VALUES ($1, $2, $3) ON CONFLICT (env_id, jti) DO UPDATE SET expires_at = excluded.expires_at")
            .bind(&cmd.env_id)
            .bind(jti)
            .bind(until)
            .execute(&mut *conn)
            .await
            .map_err(db_err)?;
    }
    if outcome.created || outcome.changed {
        let kind = if outcome.created {
            "user.created"
        } else {
            "user.updated"
        };
        let companies = companies_of(&mut *conn, &cmd.env_id, &cmd.user_id).await?;
        let data = serde_json::to_value(crate::api::UserOut::new(u, &companies))
            .map_err(|e| StoreError::Internal(e.to_string()))?;
        *queued |= enqueue(&mut *conn, &cmd.env_id, kind, data, cmd.now).await?;
    }
    let stat = if cmd.proof.is_some() {
        Outcome::Verified
    } else {
        Outcome::Unverified
    };
    // Last, so the counter row is held for as short a time as possible.
    bump_stat(conn, &cmd.env_id, cmd.now, stat).await?;
    Ok(Ok(outcome))
}

async fn group_tx(
    conn: &mut PgConnection,
    cmd: &GroupCommand,
) -> StoreResult<Result<CompanyRecord, IdentifyRejection>> {
    lock_key(conn, &format!("company:{}:{}", cmd.env_id, cmd.company_id)).await?;
    let existing = sqlx::query("SELECT * FROM companies WHERE env_id = $1 AND id = $2")
        .bind(&cmd.env_id)
        .bind(&cmd.company_id)
        .fetch_optional(&mut *conn)
        .await
        .map_err(db_err)?
        .map(|r| company_from_row(&r))
        .transpose()?;
    let company = match apply_group(existing, cmd) {
        Ok(c) => c,
        Err(rejection) => return Ok(Err(rejection)),
    };
    sqlx::query(
        "INSERT INTO companies (env_id, id, verified, key_id, verified_at, attributes, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         ON CONFLICT (env_id, id) DO UPDATE SET verified = excluded.verified, key_id = excluded.key_id,
           verified_at = excluded.verified_at, attributes = excluded.attributes, updated_at = excluded.updated_at",
    )
    .bind(&company.env_id)
    .bind(&company.id)
    .bind(company.verified)
    .bind(&company.key_id)
    .bind(company.verified_at)
    .bind(to_json(&company.attributes)?)
    .bind(company.created_at)
    .bind(company.updated_at)
    .execute(&mut *conn)
    .await
    .map_err(db_err)?;
    sqlx::query("INSERT INTO memberships (env_id, user_id, company_id, created_at) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING")
        .bind(&cmd.env_id)
        .bind(&cmd.user_id)
        .bind(&cmd.company_id)
        .bind(cmd.now)
        .execute(&mut *conn)
        .await
        .map_err(db_err)?;
    Ok(Ok(company))
}

async fn companies_of(
    conn: &mut PgConnection,
    env_id: &str,
    user_id: &str,
) -> StoreResult<Vec<CompanyRecord>> {
    sqlx::query(
        "SELECT c.* FROM companies c JOIN memberships m ON m.env_id = c.env_id AND m.company_id = c.id
         WHERE m.env_id = $1 AND m.user_id = $2 ORDER BY c.id",
    )
    .bind(env_id)
    .bind(user_id)
    .fetch_all(conn)
    .await
    .map_err(db_err)?
    .iter()
    .map(company_from_row)
    .collect()
}

/// Writes a webhook message and one delivery per subscribed endpoint, in the
/// caller's transaction (disabled endpoints get a held delivery), and tells
/// every node at commit. Returns whether anything was queued.
async fn enqueue(
    conn: &mut PgConnection,
    env_id: &str,
    kind: &str,
    data: Value,
    at: Ts,
) -> StoreResult<bool> {
    let message_id = vouch_core::keys::generate_id("msg");
    let now_ms = at.saturating_mul(1000);
    let r = sqlx::query(
        "INSERT INTO webhook_deliveries (id, message_id, endpoint_id, status, attempts, next_attempt_at, created_at, updated_at)
         SELECT $1 || ':' || e.id, $1, e.id, CASE WHEN e.disabled_at IS NULL THEN 'pending' ELSE 'held' END, 0, $2, $3, $3
         FROM webhook_endpoints e
         WHERE e.env_id = $4 AND (e.event_types IS NULL OR jsonb_exists(e.event_types::jsonb, $5))",
    )
    .bind(&message_id)
    .bind(now_ms)
    .bind(at)
    .bind(env_id)
    .bind(kind)
    .execute(&mut *conn)
    .await
    .map_err(db_err)?;
    if r.rows_affected() == 0 {
        return Ok(false);
    }
    let payload = serde_json::json!({
        "type": kind,
        "timestamp": crate::api::rfc3339(at),
        "data": data,
    });
    sqlx::query(
        "INSERT INTO webhook_messages (id, env_id, type, payload, created_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(&message_id)
    .bind(env_id)
    .bind(kind)
    .bind(to_json(&payload)?)
    .bind(at)
    .execute(&mut *conn)
    .await
    .map_err(db_err)?;
    notify_outbox(conn).await?;
    Ok(true)
}

async fn enqueue_secret(
    conn: &mut PgConnection,
    kind: &str,
    s: &SecretRecord,
    at: Ts,
) -> StoreResult<bool> {
    let mut data = serde_json::to_value(crate::api::SecretOut::new(s, at, None))
        .map_err(|e| StoreError::Internal(e.to_string()))?;
    if let Value::Object(m) = &mut data {
        m.insert("environment_id".into(), Value::String(s.env_id.clone()));
    }
    enqueue(conn, &s.env_id, kind, data, at).await
}

/// Claims due deliveries. `FOR UPDATE SKIP LOCKED` keeps two nodes off the
/// same rows, and the claim moves each row's next attempt into the future
/// before it commits, so an attempt is sent by exactly one node.
async fn claim(
    conn: &mut PgConnection,
    now_ms: i64,
    limit: u32,
    schedule: &[i64],
) -> StoreResult<Vec<ClaimedDelivery>> {
    let rows = sqlx::query(
        "SELECT d.id AS delivery_id, d.message_id, d.endpoint_id, d.attempts, e.env_id, e.url, e.secrets, m.payload, m.created_at AS message_created_at
         FROM webhook_deliveries d
         JOIN webhook_endpoints e ON e.id = d.endpoint_id
         JOIN webhook_messages m ON m.id = d.message_id
         WHERE d.status = 'pending' AND d.next_attempt_at <= $1 AND e.disabled_at IS NULL
         ORDER BY d.next_attempt_at LIMIT $2
         FOR UPDATE OF d SKIP LOCKED",
    )
    .bind(now_ms)
    .bind(i64::from(limit))
    .fetch_all(&mut *conn)
    .await
    .map_err(db_err)?;
    let mut out = Vec::with_capacity(rows.len());
    for row in &rows {
        let attempts: i64 = get(row, "attempts")?;
        let attempt = attempts + 1;
        let next = usize::try_from(attempts)
            .ok()
            .and_then(|i| schedule.get(i))
            .map(|d| now_ms + d);
        let delivery_id: String = get(row, "delivery_id")?;
        // A short lease when no retry is left (see the SQLite store).
        let next_at = next.unwrap_or(now_ms + super::sqlite::FINAL_ATTEMPT_LEASE_MS);
        sqlx::query(
            "UPDATE webhook_deliveries SET attempts = $1, next_attempt_at = $2, updated_at = $3 WHERE id = $4",
        )
        .bind(attempt)
        .bind(next_at)
        .bind(now_ms / 1000)
        .bind(&delivery_id)
        .execute(&mut *conn)
        .await
        .map_err(db_err)?;
        out.push(ClaimedDelivery {
            delivery_id,
            message_id: get(row, "message_id")?,
            endpoint_id: get(row, "endpoint_id")?,
            env_id: get(row, "env_id")?,
            url: get(row, "url")?,
            secrets: get(row, "secrets")?,
            payload: get(row, "payload")?,
            message_created_at: get(row, "message_created_at")?,
            attempt,
            next_attempt_at: next,
        });
    }
    Ok(out)
}

async fn record_attempt_tx(conn: &mut PgConnection, o: &AttemptOutcome) -> StoreResult<()> {
    let d = &o.delivery;
    let next_retry = if o.success { None } else { d.next_attempt_at };
    sqlx::query(
        "INSERT INTO webhook_attempts (delivery_id, endpoint_id, message_id, attempt, status_code, latency_ms, response, error, next_retry_at, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(&d.delivery_id)
    .bind(&d.endpoint_id)
    .bind(&d.message_id)
    .bind(d.attempt)
    .bind(o.status_code)
    .bind(o.latency_ms)
    .bind(&o.response)
    .bind(&o.error)
    .bind(next_retry)
    .bind(o.at_ms)
    .execute(&mut *conn)
    .await
    .map_err(db_err)?;
    let status = if o.success {
        "delivered"
    } else if d.next_attempt_at.is_none() {
        "dead"
    } else {
        "pending"
    };
    sqlx::query("UPDATE webhook_deliveries SET status = $1, updated_at = $2 WHERE id = $3")
        .bind(status)
        .bind(o.at_ms / 1000)
        .bind(&d.delivery_id)
        .execute(&mut *conn)
        .await
        .map_err(db_err)?;
    if status == "dead" {
        let at = o.at_ms / 1000;
        let reason = format!(
            "Disabled after {} failed attempts to deliver {}; re-enable it and replay once the receiver works.",
            d.attempt, d.message_id
        );
        let r = sqlx::query("UPDATE webhook_endpoints SET disabled_at = $1, disabled_reason = $2, updated_at = $1 WHERE id = $3 AND disabled_at IS NULL")
            .bind(at)
            .bind(&reason)
            .bind(&d.endpoint_id)
            .execute(&mut *conn)
            .await
            .map_err(db_err)?;
        sqlx::query("UPDATE webhook_deliveries SET status = 'held' WHERE endpoint_id = $1 AND status = 'pending'")
            .bind(&d.endpoint_id)
            .execute(&mut *conn)
            .await
            .map_err(db_err)?;
        if r.rows_affected() > 0 {
            insert_audit(
                conn,
                &NewAudit {
                    env_id: Some(d.env_id.clone()),
                    kind: "webhook.disabled",
                    user_id: None,
                    key_id: None,
                    detail: serde_json::json!({"endpoint_id": d.endpoint_id, "message": reason}),
                    at,
                },
            )
            .await?;
        }
    }
    Ok(())
}

fn verified_by_str(v: VerifiedBy) -> &'static str {
    match v {
        VerifiedBy::Signature => "signature",
        VerifiedBy::Token => "token",
    }
}

fn get<'r, T: sqlx::Decode<'r, sqlx::Postgres> + sqlx::Type<sqlx::Postgres>>(
    row: &'r PgRow,
    col: &str,
) -> StoreResult<T> {
    row.try_get(col).map_err(db_err)
}

fn json_map(text: &str) -> StoreResult<Map<String, Value>> {
    serde_json::from_str(text).map_err(json_err)
}

fn env_from_row(row: &PgRow) -> StoreResult<Environment> {
    let settings: String = get(row, "settings")?;
    Ok(Environment {
        id: get(row, "id")?,
        project_id: get(row, "project_id")?,
        publishable_key: get(row, "publishable_key")?,
        settings: serde_json::from_str(&settings).map_err(json_err)?,
        unsigned_count: get(row, "unsigned_count")?,
        created_at: get(row, "created_at")?,
        updated_at: get(row, "updated_at")?,
    })
}

fn secret_from_row(row: &PgRow) -> StoreResult<SecretRecord> {
    Ok(SecretRecord {
        id: get(row, "id")?,
        env_id: get(row, "env_id")?,
        ciphertext: get(row, "ciphertext")?,
        imported: get(row, "imported")?,
        created_at: get(row, "created_at")?,
        expires_at: get(row, "expires_at")?,
        revoked_at: get(row, "revoked_at")?,
    })
}

fn user_from_row(row: &PgRow) -> StoreResult<UserRecord> {
    let by: Option<String> = get(row, "verified_by")?;
    Ok(UserRecord {
        env_id: get(row, "env_id")?,
        id: get(row, "id")?,
        verified: get(row, "verified")?,
        verified_by: match by.as_deref() {
            Some("signature") => Some(VerifiedBy::Signature),
            Some("token") => Some(VerifiedBy::Token),
            _ => None,
        },
        key_id: get(row, "key_id")?,
        verified_at: get(row, "verified_at")?,
        attributes: json_map(&get::<String>(row, "attributes")?)?,
        verified_attributes: json_map(&get::<String>(row, "verified_attributes")?)?,
        counted_unsigned: get(row, "counted_unsigned")?,
        created_at: get(row, "created_at")?,
        updated_at: get(row, "updated_at")?,
    })
}

fn company_from_row(row: &PgRow) -> StoreResult<CompanyRecord> {
    Ok(CompanyRecord {
        env_id: get(row, "env_id")?,
        id: get(row, "id")?,
        verified: get(row, "verified")?,
        key_id: get(row, "key_id")?,
        verified_at: get(row, "verified_at")?,
        attributes: json_map(&get::<String>(row, "attributes")?)?,
        created_at: get(row, "created_at")?,
        updated_at: get(row, "updated_at")?,
    })
}

fn event_from_row(row: &PgRow) -> StoreResult<EventRecord> {
    Ok(EventRecord {
        seq: get(row, "seq")?,
        id: get(row, "id")?,
        env_id: get(row, "env_id")?,
        user_id: get(row, "user_id")?,
        visitor_id: get(row, "visitor_id")?,
        name: get(row, "name")?,
        properties: json_map(&get::<String>(row, "properties")?)?,
        created_at: get(row, "created_at")?,
    })
}

fn audit_from_row(row: &PgRow) -> StoreResult<AuditRecord> {
    let detail: String = get(row, "detail")?;
    Ok(AuditRecord {
        seq: get(row, "seq")?,
        id: get(row, "id")?,
        env_id: get(row, "env_id")?,
        kind: get(row, "kind")?,
        user_id: get(row, "user_id")?,
        key_id: get(row, "key_id")?,
        detail: serde_json::from_str(&detail).map_err(json_err)?,
        created_at: get(row, "created_at")?,
    })
}

fn signing_key_from_row(row: &PgRow) -> StoreResult<SigningKeyRecord> {
    Ok(SigningKeyRecord {
        kid: get(row, "kid")?,
        ciphertext: get(row, "ciphertext")?,
        public_key: get(row, "public_key")?,
        created_at: get(row, "created_at")?,
        retired_at: get(row, "retired_at")?,
    })
}

fn webhook_from_row(row: &PgRow) -> StoreResult<WebhookEndpoint> {
    let types: Option<String> = get(row, "event_types")?;
    Ok(WebhookEndpoint {
        id: get(row, "id")?,
        env_id: get(row, "env_id")?,
        url: get(row, "url")?,
        event_types: types
            .map(|t| serde_json::from_str(&t).map_err(json_err))
            .transpose()?,
        secrets: get(row, "secrets")?,
        disabled_at: get(row, "disabled_at")?,
        disabled_reason: get(row, "disabled_reason")?,
        created_at: get(row, "created_at")?,
        updated_at: get(row, "updated_at")?,
    })
}

fn attempt_from_row(row: &PgRow) -> StoreResult<AttemptRecord> {
    Ok(AttemptRecord {
        seq: get(row, "seq")?,
        delivery_id: get(row, "delivery_id")?,
        message_id: get(row, "message_id")?,
        attempt: get(row, "attempt")?,
        status_code: get(row, "status_code")?,
        latency_ms: get(row, "latency_ms")?,
        response: get(row, "response")?,
        error: get(row, "error")?,
        next_retry_at: get(row, "next_retry_at")?,
        created_at: get(row, "created_at")?,
    })
}

fn rate_window(now: Ts) -> Ts {
    now - now.rem_euclid(RATE_WINDOW)
}

#[async_trait]
impl Store for PgStore {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map(|_| ())
            .map_err(db_err)
    }

    async fn close(&self) {
        let handle = match self.listener.lock() {
            Ok(mut g) => g.take(),
            Err(p) => p.into_inner().take(),
        };
        if let Some(h) = handle {
            h.abort();
        }
        self.pool.close().await;
    }

    async fn get_meta(&self, key: &str) -> StoreResult<Option<String>> {
        sqlx::query_scalar("SELECT value FROM meta WHERE key = $1")
            .bind(key)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)
    }

    async fn put_meta(&self, key: &str, value: &str) -> StoreResult<()> {
        sqlx::query("INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value")
            .bind(key)
            .bind(value)
            .execute(&self.pool)
            .await
            .map(|_| ())
            .map_err(db_err)
    }

    async fn is_empty(&self) -> StoreResult<bool> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM projects")
            .fetch_one(&self.pool)
            .await
            .map_err(db_err)?;
        Ok(n == 0)
    }

    async fn bootstrap(&self, b: Bootstrap) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(BOOTSTRAP_LOCK)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM projects")
            .fetch_one(&mut *tx)
            .await
            .map_err(db_err)?;
        if n > 0 {
            return Err(StoreError::Conflict(
                "another Vouch node set up this database at the same moment; start this node again"
                    .into(),
            ));
        }
        sqlx::query("INSERT INTO meta (key, value) VALUES ('master_key_check', $1) ON CONFLICT (key) DO UPDATE SET value = excluded.value")
            .bind(&b.master_key_check)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        sqlx::query("INSERT INTO projects (id, name, created_at) VALUES ($1, $2, $3)")
            .bind(&b.project_id)
            .bind(&b.project_name)
            .bind(b.now)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        insert_env(&mut tx, &b.environment).await?;
        insert_secret(&mut tx, &b.secret).await?;
        insert_signing_key(&mut tx, &b.signing_key).await?;
        if let Some((id, hash)) = &b.admin_token {
            sqlx::query("INSERT INTO admin_tokens (id, token_hash, created_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING")
                .bind(id)
                .bind(&hash[..])
                .bind(b.now)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
        }
        notify_changes(&mut tx).await?;
        self.commit(tx, false).await
    }

    async fn default_project(&self) -> StoreResult<Option<String>> {
        sqlx::query_scalar("SELECT id FROM projects ORDER BY created_at, id LIMIT 1")
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)
    }

    async fn add_admin_token(&self, id: &str, hash: [u8; 32], now: Ts) -> StoreResult<()> {
        sqlx::query("INSERT INTO admin_tokens (id, token_hash, created_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING")
            .bind(id)
            .bind(&hash[..])
            .bind(now)
            .execute(&self.pool)
            .await
            .map(|_| ())
            .map_err(db_err)
    }

    async fn admin_token_exists(&self, hash: [u8; 32]) -> StoreResult<bool> {
        let r: Option<i32> = sqlx::query_scalar("SELECT 1 FROM admin_tokens WHERE token_hash = $1")
            .bind(&hash[..])
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)?;
        Ok(r.is_some())
    }

    async fn list_environments(&self) -> StoreResult<Vec<Environment>> {
        sqlx::query("SELECT * FROM environments ORDER BY created_at, id")
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)?
            .iter()
            .map(env_from_row)
            .collect()
    }

    async fn get_environment(&self, id: &str) -> StoreResult<Option<Environment>> {
        sqlx::query("SELECT * FROM environments WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)?
            .as_ref()
            .map(env_from_row)
            .transpose()
    }

    async fn create_environment(
        &self,
        env: Environment,
        secret: SecretRecord,
        audit: NewAudit,
    ) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        insert_env(&mut tx, &env).await?;
        insert_secret(&mut tx, &secret).await?;
        insert_audit(&mut tx, &audit).await?;
        let queued = enqueue_secret(&mut tx, "secret.created", &secret, audit.at).await?;
        notify_changes(&mut tx).await?;
        self.commit(tx, queued).await
    }

    async fn update_environment(
        &self,
        id: &str,
        settings: EnvSettings,
        now: Ts,
    ) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        let r = sqlx::query("UPDATE environments SET settings = $1, updated_at = $2 WHERE id = $3")
            .bind(to_json(&settings)?)
            .bind(now)
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        if r.rows_affected() == 0 {
            return Err(StoreError::NotFound("environment"));
        }
        notify_changes(&mut tx).await?;
        self.commit(tx, false).await
    }

    async fn delete_environment(&self, id: &str, audit: NewAudit) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        for sql in [
            "DELETE FROM users WHERE env_id = $1",
            "DELETE FROM companies WHERE env_id = $1",
            "DELETE FROM memberships WHERE env_id = $1",
            "DELETE FROM events WHERE env_id = $1",
            "DELETE FROM secrets WHERE env_id = $1",
            "DELETE FROM identify_stats WHERE env_id = $1",
            "DELETE FROM used_jtis WHERE env_id = $1",
        ] {
            sqlx::query(sql)
                .bind(id)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
        }
        let r = sqlx::query("DELETE FROM environments WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        if r.rows_affected() == 0 {
            return Err(StoreError::NotFound("environment"));
        }
        insert_audit(&mut tx, &audit).await?;
        notify_changes(&mut tx).await?;
        self.commit(tx, false).await
    }

    async fn list_all_secrets(&self) -> StoreResult<Vec<SecretRecord>> {
        sqlx::query("SELECT * FROM secrets ORDER BY created_at, id")
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)?
            .iter()
            .map(secret_from_row)
            .collect()
    }

    async fn insert_secret(
        &self,
        secret: SecretRecord,
        expire_others_at: Option<Ts>,
        audit: NewAudit,
    ) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        if !env_exists(&mut tx, &secret.env_id).await? {
            return Err(StoreError::NotFound("environment"));
        }
        if let Some(at) = expire_others_at {
            sqlx::query(
                "UPDATE secrets SET expires_at = $1 WHERE env_id = $2 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > $1)",
            )
            .bind(at)
            .bind(&secret.env_id)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        }
        insert_secret(&mut tx, &secret).await?;
        insert_audit(&mut tx, &audit).await?;
        let queued = enqueue_secret(&mut tx, "secret.created", &secret, audit.at).await?;
        notify_changes(&mut tx).await?;
        self.commit(tx, queued).await
    }

    async fn revoke_secret(
        &self,
        env_id: &str,
        key_id: &str,
        at: Ts,
        audit: NewAudit,
    ) -> StoreResult<SecretRecord> {
        let mut tx = self.begin().await?;
        sqlx::query("UPDATE secrets SET revoked_at = $1 WHERE env_id = $2 AND id = $3 AND revoked_at IS NULL")
            .bind(at)
            .bind(env_id)
            .bind(key_id)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        let row = sqlx::query("SELECT * FROM secrets WHERE env_id = $1 AND id = $2")
            .bind(env_id)
            .bind(key_id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db_err)?
            .ok_or(StoreError::NotFound("secret"))?;
        insert_audit(&mut tx, &audit).await?;
        let record = secret_from_row(&row)?;
        let kind = if audit.kind == "secret.exposed" {
            "secret.exposed"
        } else {
            "secret.revoked"
        };
        let queued = enqueue_secret(&mut tx, kind, &record, at).await?;
        notify_changes(&mut tx).await?;
        self.commit(tx, queued).await?;
        Ok(record)
    }

    async fn list_signing_keys(&self) -> StoreResult<Vec<SigningKeyRecord>> {
        sqlx::query("SELECT * FROM signing_keys ORDER BY created_at, kid")
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)?
            .iter()
            .map(signing_key_from_row)
            .collect()
    }

    async fn rotate_signing_key(&self, key: SigningKeyRecord, audit: NewAudit) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        sqlx::query("UPDATE signing_keys SET retired_at = $1 WHERE retired_at IS NULL")
            .bind(key.created_at)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        insert_signing_key(&mut tx, &key).await?;
        insert_audit(&mut tx, &audit).await?;
        notify_changes(&mut tx).await?;
        self.commit(tx, false).await
    }

    async fn identify(
        &self,
        cmd: IdentifyCommand,
    ) -> StoreResult<Result<IdentifyOutcome, IdentifyRejection>> {
        let mut tx = self.begin().await?;
        let mut queued = false;
        let result = identify_tx(&mut tx, &cmd, &mut queued).await?;
        if result.is_err() {
            tx.rollback().await.map_err(db_err)?;
            return Ok(result);
        }
        self.commit(tx, queued).await?;
        Ok(result)
    }

    async fn group(
        &self,
        cmd: GroupCommand,
    ) -> StoreResult<Result<CompanyRecord, IdentifyRejection>> {
        let mut tx = self.begin().await?;
        let result = group_tx(&mut tx, &cmd).await?;
        if result.is_err() {
            tx.rollback().await.map_err(db_err)?;
            return Ok(result);
        }
        self.commit(tx, false).await?;
        Ok(result)
    }

    async fn track(&self, ev: EventRecord) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO events (id, env_id, user_id, visitor_id, name, properties, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&ev.id)
        .bind(&ev.env_id)
        .bind(&ev.user_id)
        .bind(&ev.visitor_id)
        .bind(&ev.name)
        .bind(to_json(&ev.properties)?)
        .bind(ev.created_at)
        .execute(&self.pool)
        .await
        .map(|_| ())
        .map_err(db_err)
    }

    async fn record_rejection(&self, env_id: &str, audit: NewAudit) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        insert_audit(&mut tx, &audit).await?;
        let mut data = serde_json::json!({
            "environment_id": env_id,
            "user_id": audit.user_id,
        });
        if let (Value::Object(d), Value::Object(extra)) = (&mut data, &audit.detail) {
            d.extend(extra.clone());
        }
        let queued = enqueue(&mut tx, env_id, "identity.rejected", data, audit.at).await?;
        bump_stat(&mut tx, env_id, audit.at, Outcome::Rejected).await?;
        self.commit(tx, queued).await
    }

    async fn append_audit(&self, audit: NewAudit) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        insert_audit(&mut tx, &audit).await?;
        self.commit(tx, false).await
    }

    async fn get_user(&self, env_id: &str, user_id: &str) -> StoreResult<Option<UserRecord>> {
        sqlx::query("SELECT * FROM users WHERE env_id = $1 AND id = $2")
            .bind(env_id)
            .bind(user_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)?
            .as_ref()
            .map(user_from_row)
            .transpose()
    }

    async fn user_companies(&self, env_id: &str, user_id: &str) -> StoreResult<Vec<CompanyRecord>> {
        let mut conn = self.pool.acquire().await.map_err(db_err)?;
        companies_of(&mut conn, env_id, user_id).await
    }

    async fn list_users(
        &self,
        env_id: &str,
        verified: Option<bool>,
        after: Option<&str>,
        limit: u32,
    ) -> StoreResult<Page<UserRecord>> {
        let limit = page_limit(limit);
        let rows = sqlx::query(
            "SELECT * FROM users WHERE env_id = $1 AND ($2::BOOLEAN IS NULL OR verified = $2)
             AND ($3::TEXT IS NULL OR id > $3) ORDER BY id LIMIT $4",
        )
        .bind(env_id)
        .bind(verified)
        .bind(after)
        .bind(i64::from(limit) + 1)
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        let data = rows
            .iter()
            .map(user_from_row)
            .collect::<StoreResult<Vec<_>>>()?;
        page(data, limit, |u| u.id.clone())
    }

    async fn list_events(
        &self,
        env_id: &str,
        user_id: Option<&str>,
        before: Option<i64>,
        limit: u32,
    ) -> StoreResult<Page<EventRecord>> {
        let limit = page_limit(limit);
        let rows = sqlx::query(
            "SELECT * FROM events WHERE env_id = $1 AND ($2::TEXT IS NULL OR user_id = $2)
             AND ($3::BIGINT IS NULL OR seq < $3) ORDER BY seq DESC LIMIT $4",
        )
        .bind(env_id)
        .bind(user_id)
        .bind(before)
        .bind(i64::from(limit) + 1)
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        let data = rows
            .iter()
            .map(event_from_row)
            .collect::<StoreResult<Vec<_>>>()?;
        page(data, limit, |e| e.seq.to_string())
    }

    async fn list_audit(
        &self,
        env_id: &str,
        before: Option<i64>,
        limit: u32,
    ) -> StoreResult<Page<AuditRecord>> {
        let limit = page_limit(limit);
        let rows = sqlx::query(
            "SELECT * FROM audit WHERE env_id = $1 AND ($2::BIGINT IS NULL OR seq < $2) ORDER BY seq DESC LIMIT $3",
        )
        .bind(env_id)
        .bind(before)
        .bind(i64::from(limit) + 1)
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        let data = rows
            .iter()
            .map(audit_from_row)
            .collect::<StoreResult<Vec<_>>>()?;
        page(data, limit, |a| a.seq.to_string())
    }

    async fn coverage(&self, env_id: &str, since: Ts) -> StoreResult<Coverage> {
        let row = sqlx::query(
            "SELECT COALESCE(SUM(verified), 0)::BIGINT AS v, COALESCE(SUM(unverified), 0)::BIGINT AS u,
                    COALESCE(SUM(rejected), 0)::BIGINT AS r
             FROM identify_stats WHERE env_id = $1 AND minute >= $2",
        )
        .bind(env_id)
        .bind(since.div_euclid(60))
        .fetch_one(&self.pool)
        .await
        .map_err(db_err)?;
        Ok(Coverage {
            verified: get(&row, "v")?,
            unverified: get(&row, "u")?,
            rejected: get(&row, "r")?,
        })
    }

    async fn rate_blocked(&self, key: &str, limit: u32, now: Ts) -> StoreResult<Option<u64>> {
        let window = rate_window(now);
        let failures: Option<i64> = sqlx::query_scalar(
            "SELECT failures FROM rate_limits WHERE key = $1 AND window_start = $2",
        )
        .bind(key)
        .bind(window)
        .fetch_optional(&self.pool)
        .await
        .map_err(db_err)?;
        Ok(match failures {
            Some(n) if n >= i64::from(limit) => Some(
                u64::try_from(window + RATE_WINDOW - now)
                    .unwrap_or(1)
                    .max(1),
            ),
            _ => None,
        })
    }

    async fn rate_fail(&self, key: &str, now: Ts) -> StoreResult<()> {
        let window = rate_window(now);
        sqlx::query(
            "INSERT INTO rate_limits (key, window_start, failures) VALUES ($1, $2, 1)
             ON CONFLICT (key, window_start) DO UPDATE SET failures = rate_limits.failures + 1",
        )
        .bind(key)
        .bind(window)
        .execute(&self.pool)
        .await
        .map_err(db_err)?;
        // Now and then, forget the windows that are over.
        if self
            .rate_writes
            .fetch_add(1, Ordering::Relaxed)
            .is_multiple_of(1024)
        {
            sqlx::query("DELETE FROM rate_limits WHERE window_start < $1")
                .bind(window)
                .execute(&self.pool)
                .await
                .map_err(db_err)?;
        }
        Ok(())
    }

    fn changes(&self) -> Option<broadcast::Receiver<()>> {
        Some(self.changes.subscribe())
    }

    fn outbox_notify(&self) -> Arc<Notify> {
        self.outbox.clone()
    }

    async fn create_webhook(&self, w: WebhookEndpoint) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO webhook_endpoints (id, env_id, url, event_types, secrets, disabled_at, disabled_reason, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, NULL, NULL, $6, $7)",
        )
        .bind(&w.id)
        .bind(&w.env_id)
        .bind(&w.url)
        .bind(w.event_types.as_ref().map(to_json).transpose()?)
        .bind(&w.secrets)
        .bind(w.created_at)
        .bind(w.updated_at)
        .execute(&self.pool)
        .await
        .map(|_| ())
        .map_err(db_err)
    }

    async fn list_webhooks(&self, env_id: &str) -> StoreResult<Vec<WebhookEndpoint>> {
        sqlx::query("SELECT * FROM webhook_endpoints WHERE env_id = $1 ORDER BY created_at, id")
            .bind(env_id)
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)?
            .iter()
            .map(webhook_from_row)
            .collect()
    }

    async fn get_webhook(&self, env_id: &str, id: &str) -> StoreResult<Option<WebhookEndpoint>> {
        sqlx::query("SELECT * FROM webhook_endpoints WHERE env_id = $1 AND id = $2")
            .bind(env_id)
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)?
            .as_ref()
            .map(webhook_from_row)
            .transpose()
    }

    async fn delete_webhook(&self, env_id: &str, id: &str) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        for sql in [
            "DELETE FROM webhook_deliveries WHERE endpoint_id = (SELECT id FROM webhook_endpoints WHERE env_id = $1 AND id = $2)",
            "DELETE FROM webhook_attempts WHERE endpoint_id = (SELECT id FROM webhook_endpoints WHERE env_id = $1 AND id = $2)",
        ] {
            sqlx::query(sql)
                .bind(env_id)
                .bind(id)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
        }
        let r = sqlx::query("DELETE FROM webhook_endpoints WHERE env_id = $1 AND id = $2")
            .bind(env_id)
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        if r.rows_affected() == 0 {
            return Err(StoreError::NotFound("webhook endpoint"));
        }
        self.commit(tx, false).await
    }

    async fn update_webhook_secrets(
        &self,
        env_id: &str,
        id: &str,
        secrets: Vec<u8>,
        now: Ts,
    ) -> StoreResult<()> {
        let r = sqlx::query(
            "UPDATE webhook_endpoints SET secrets = $1, updated_at = $2 WHERE env_id = $3 AND id = $4",
        )
        .bind(secrets)
        .bind(now)
        .bind(env_id)
        .bind(id)
        .execute(&self.pool)
        .await
        .map_err(db_err)?;
        if r.rows_affected() == 0 {
            return Err(StoreError::NotFound("webhook endpoint"));
        }
        Ok(())
    }

    async fn enable_webhook(&self, env_id: &str, id: &str, audit: NewAudit) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        let r = sqlx::query("UPDATE webhook_endpoints SET disabled_at = NULL, disabled_reason = NULL, updated_at = $1 WHERE env_id = $2 AND id = $3")
            .bind(audit.at)
            .bind(env_id)
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        if r.rows_affected() == 0 {
            return Err(StoreError::NotFound("webhook endpoint"));
        }
        insert_audit(&mut tx, &audit).await?;
        self.commit(tx, false).await
    }

    async fn replay_webhook(&self, env_id: &str, id: &str, now_ms: i64) -> StoreResult<u64> {
        let mut tx = self.begin().await?;
        let exists: Option<i32> =
            sqlx::query_scalar("SELECT 1 FROM webhook_endpoints WHERE env_id = $1 AND id = $2")
                .bind(env_id)
                .bind(id)
                .fetch_optional(&mut *tx)
                .await
                .map_err(db_err)?;
        if exists.is_none() {
            return Err(StoreError::NotFound("webhook endpoint"));
        }
        let r = sqlx::query(
            "UPDATE webhook_deliveries SET status = 'pending', attempts = 0, next_attempt_at = $1, updated_at = $2 WHERE endpoint_id = $3 AND status IN ('dead', 'held')",
        )
        .bind(now_ms)
        .bind(now_ms / 1000)
        .bind(id)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        let n = r.rows_affected();
        if n > 0 {
            notify_outbox(&mut tx).await?;
        }
        self.commit(tx, n > 0).await?;
        Ok(n)
    }

    async fn claim_deliveries(
        &self,
        now_ms: i64,
        limit: u32,
        schedule_ms: Vec<i64>,
    ) -> StoreResult<Vec<ClaimedDelivery>> {
        let mut tx = self.begin().await?;
        let claimed = claim(&mut tx, now_ms, limit, &schedule_ms).await?;
        self.commit(tx, false).await?;
        Ok(claimed)
    }

    async fn record_attempt(&self, outcome: AttemptOutcome) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        record_attempt_tx(&mut tx, &outcome).await?;
        self.commit(tx, false).await
    }

    async fn list_attempts(
        &self,
        env_id: &str,
        endpoint_id: &str,
        before: Option<i64>,
        limit: u32,
    ) -> StoreResult<Page<AttemptRecord>> {
        let limit = page_limit(limit);
        let rows = sqlx::query(
            "SELECT a.* FROM webhook_attempts a JOIN webhook_endpoints e ON e.id = a.endpoint_id
             WHERE e.env_id = $1 AND a.endpoint_id = $2 AND ($3::BIGINT IS NULL OR a.seq < $3) ORDER BY a.seq DESC LIMIT $4",
        )
        .bind(env_id)
        .bind(endpoint_id)
        .bind(before)
        .bind(i64::from(limit) + 1)
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        let data = rows
            .iter()
            .map(attempt_from_row)
            .collect::<StoreResult<Vec<_>>>()?;
        page(data, limit, |a| a.seq.to_string())
    }
}

// ---- copying an SQLite store into an empty PostgreSQL database ----

#[derive(Clone, Copy, Debug)]
enum Col {
    Text,
    Int,
    Bool,
    Blob,
}

/// Every table and column of the SQLite schema, parents before children.
const TABLES: &[(&str, &[(&str, Col)])] = {
    use Col::*;
    &[
        ("meta", &[("key", Text), ("value", Text)]),
        (
            "admin_tokens",
            &[("id", Text), ("token_hash", Blob), ("created_at", Int)],
        ),
        (
            "projects",
            &[("id", Text), ("name", Text), ("created_at", Int)],
        ),
        (
            "environments",
            &[
                ("id", Text),
                ("project_id", Text),
                ("publishable_key", Text),
                ("settings", Text),
                ("unsigned_count", Int),
                ("created_at", Int),
                ("updated_at", Int),
            ],
        ),
        (
            "secrets",
            &[
                ("id", Text),
                ("env_id", Text),
                ("ciphertext", Blob),
                ("imported", Bool),
                ("created_at", Int),
                ("expires_at", Int),
                ("revoked_at", Int),
                ("revoke_reason", Text),
            ],
        ),
        (
            "signing_keys",
            &[
                ("kid", Text),
                ("ciphertext", Blob),
                ("public_key", Blob),
                ("created_at", Int),
                ("retired_at", Int),
            ],
        ),
        (
            "users",
            &[
                ("env_id", Text),
                ("id", Text),
                ("verified", Bool),
                ("ever_verified", Bool),
                ("verified_by", Text),
                ("key_id", Text),
                ("verified_at", Int),
                ("attributes", Text),
                ("verified_attributes", Text),
                ("counted_unsigned", Bool),
                ("created_at", Int),
                ("updated_at", Int),
            ],
        ),
        (
            "companies",
            &[
                ("env_id", Text),
                ("id", Text),
                ("verified", Bool),
                ("key_id", Text),
                ("verified_at", Int),
                ("attributes", Text),
                ("created_at", Int),
                ("updated_at", Int),
            ],
        ),
        (
            "memberships",
            &[
                ("env_id", Text),
                ("user_id", Text),
                ("company_id", Text),
                ("created_at", Int),
            ],
        ),
        (
            "events",
            &[
                ("seq", Int),
                ("id", Text),
                ("env_id", Text),
                ("user_id", Text),
                ("visitor_id", Text),
                ("name", Text),
                ("properties", Text),
                ("created_at", Int),
            ],
        ),
        (
            "audit",
            &[
                ("seq", Int),
                ("id", Text),
                ("env_id", Text),
                ("kind", Text),
                ("user_id", Text),
                ("key_id", Text),
                ("detail", Text),
                ("created_at", Int),
            ],
        ),
        (
            "identify_stats",
            &[
                ("env_id", Text),
                ("minute", Int),
                ("verified", Int),
                ("unverified", Int),
                ("rejected", Int),
            ],
        ),
        (
            "used_jtis",
            &[("env_id", Text), ("jti", Text), ("expires_at", Int)],
        ),
        (
            "webhook_endpoints",
            &[
                ("id", Text),
                ("env_id", Text),
                ("url", Text),
                ("event_types", Text),
                ("secrets", Blob),
                ("disabled_at", Int),
                ("disabled_reason", Text),
                ("created_at", Int),
                ("updated_at", Int),
            ],
        ),
        (
            "webhook_messages",
            &[
                ("id", Text),
                ("env_id", Text),
                ("type", Text),
                ("payload", Text),
                ("created_at", Int),
            ],
        ),
        (
            "webhook_deliveries",
            &[
                ("id", Text),
                ("message_id", Text),
                ("endpoint_id", Text),
                ("status", Text),
                ("attempts", Int),
                ("next_attempt_at", Int),
                ("created_at", Int),
                ("updated_at", Int),
            ],
        ),
        (
            "webhook_attempts",
            &[
                ("seq", Int),
                ("delivery_id", Text),
                ("endpoint_id", Text),
                ("message_id", Text),
                ("attempt", Int),
                ("status_code", Int),
                ("latency_ms", Int),
                ("response", Text),
                ("error", Text),
                ("next_retry_at", Int),
                ("created_at", Int),
            ],
        ),
    ]
};

/// Rows copied per table, in copy order.
pub type CopyReport = Vec<(&'static str, u64)>;

/// Rows in each table of the PostgreSQL database at `url` that `migrate-store`
/// would fill (migrating its schema first); all zero for an empty target.
pub async fn row_counts(url: &str) -> anyhow::Result<CopyReport> {
    let store = PgStore::open(url).await?;
    let mut out = Vec::new();
    for (table, _) in TABLES {
        let n: i64 =
            sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM {table}")))
                .fetch_one(&store.pool)
                .await?;
        out.push((*table, u64::try_from(n).unwrap_or(0)));
    }
    store.close().await;
    Ok(out)
}

/// Copies every table of the SQLite store in `data_dir` into the empty
/// PostgreSQL database at `url`, in one transaction. Secrets stay sealed under
/// the same master key, so the PostgreSQL nodes need that key.
pub async fn copy_from_sqlite(data_dir: &Path, url: &str) -> anyhow::Result<CopyReport> {
    let db = data_dir.join("vouch.db");
    if !db.is_file() {
        anyhow::bail!("no Vouch SQLite database at {}", db.display());
    }
    // Brings the source to the current schema, as `vouch serve` would.
    let source = super::sqlite::SqliteStore::open_dir(data_dir).await?;
    source.close().await;
    let mut src = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(&db)
        .read_only(true)
        .connect()
        .await?;
    let target = PgStore::open(url).await?;
    let mut tx = target.pool.begin().await?;
    for (table, _) in TABLES {
        let n: i64 =
            sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM {table}")))
                .fetch_one(&mut *tx)
                .await?;
        if n > 0 {
            anyhow::bail!(
                "the PostgreSQL database is not empty (table {table} has {n} rows); migrate-store only fills an empty database"
            );
        }
    }
    let mut report = Vec::new();
    for (table, cols) in TABLES {
        let names: Vec<&str> = cols.iter().map(|(n, _)| *n).collect();
        let select = format!("SELECT {} FROM {table}", names.join(", "));
        let placeholders: Vec<String> = (1..=cols.len()).map(|i| format!("${i}")).collect();
        let insert = format!(
            "INSERT INTO {table} ({}) VALUES ({})",
            names.join(", "),
            placeholders.join(", ")
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(select))
            .fetch_all(&mut src)
            .await?;
        for row in &rows {
            let mut q = sqlx::query(sqlx::AssertSqlSafe(insert.clone()));
            for (i, (name, col)) in cols.iter().enumerate() {
                q = match col {
                    Col::Text => q.bind(sqlite_col::<Option<String>>(row, i, table, name)?),
                    Col::Int => q.bind(sqlite_col::<Option<i64>>(row, i, table, name)?),
                    Col::Bool => q.bind(sqlite_col::<Option<bool>>(row, i, table, name)?),
                    Col::Blob => q.bind(sqlite_col::<Option<Vec<u8>>>(row, i, table, name)?),
                };
            }
            q.execute(&mut *tx).await?;
        }
        report.push((*table, u64::try_from(rows.len()).unwrap_or(0)));
    }
    for table in ["events", "audit", "webhook_attempts"] {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT setval(pg_get_serial_sequence('{table}', 'seq'), COALESCE((SELECT MAX(seq) FROM {table}), 0) + 1, false)"
        )))
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    let _ = src.close().await;
    target.close().await;
    Ok(report)
}

fn sqlite_col<T>(
    row: &sqlx::sqlite::SqliteRow,
    i: usize,
    table: &str,
    name: &str,
) -> anyhow::Result<T>
where
    T: for<'r> sqlx::Decode<'r, sqlx::Sqlite> + sqlx::Type<sqlx::Sqlite>,
{
    row.try_get(i)
        .map_err(|e| anyhow::anyhow!("cannot read {table}.{name} from SQLite: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_create_the_same_tables_as_sqlite() {
        let tables = |sql: &str| {
            let mut t: Vec<String> = sql
                .lines()
                .filter_map(|l| l.strip_prefix("CREATE TABLE "))
                .filter_map(|l| l.split_whitespace().next())
                .map(str::to_string)
                .collect();
            t.sort();
            t
        };
        let sqlite = [
            include_str!("../../migrations/sqlite/0001_init.sql"),
            include_str!("../../migrations/sqlite/0002_webhooks.sql"),
        ];
        assert_eq!(MIGRATIONS.len(), sqlite.len(), "same numbering");
        for (pg, lite) in MIGRATIONS.iter().zip(sqlite) {
            let mut pg_tables = tables(pg);
            // Rate-limit counters live in memory on a single SQLite node.
            pg_tables.retain(|t| t != "rate_limits");
            assert_eq!(pg_tables, tables(lite));
        }
        let copied: Vec<&str> = TABLES.iter().map(|(t, _)| *t).collect();
        for sql in MIGRATIONS {
            for t in tables(sql) {
                assert!(
                    t == "rate_limits" || copied.contains(&t.as_str()),
                    "{t} is not copied by migrate-store"
                );
            }
        }
    }

    #[test]
    fn connection_failures_are_unavailable_and_duplicates_conflict() {
        assert!(matches!(
            db_err(sqlx::Error::PoolTimedOut),
            StoreError::Unavailable(_)
        ));
        assert!(matches!(
            db_err(sqlx::Error::Io(std::io::Error::from(
                std::io::ErrorKind::ConnectionRefused
            ))),
            StoreError::Unavailable(_)
        ));
        assert!(matches!(
            db_err(sqlx::Error::RowNotFound),
            StoreError::Internal(_)
        ));
    }
}
