//! The embedded store: SQLite in WAL mode with `synchronous = FULL`, so every
//! acknowledged write is on disk. All writes go through one writer task that
//! groups whatever is queued into one transaction (group commit); when one
//! write of a group fails, the group is retried one write per transaction, so
//! one failure never takes its neighbours down.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Map, Value};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteRow, SqliteSynchronous,
};
use sqlx::{ConnectOptions, Connection, Row};
use std::sync::Arc;

use tokio::sync::{Mutex, Notify, mpsc, oneshot};
use vouch_core::VerifiedBy;

use super::*;

const MIGRATIONS: &[&str] = &[
    include_str!("../../migrations/sqlite/0001_init.sql"),
    include_str!("../../migrations/sqlite/0002_webhooks.sql"),
];
const MAX_BATCH: usize = 256;
const QUEUE: usize = 4096;

#[derive(Debug)]
pub struct SqliteStore {
    readers: SqlitePool,
    jobs: mpsc::Sender<Job>,
    writer: Mutex<Option<tokio::task::JoinHandle<()>>>,
    outbox: Arc<Notify>,
    /// One node owns an SQLite file, so its counters can live in memory.
    limiter: crate::ratelimit::RateLimiter,
}

#[derive(Debug)]
struct Job {
    op: Op,
    reply: oneshot::Sender<StoreResult<Reply>>,
}

#[derive(Debug)]
enum Op {
    PutMeta(String, String),
    Bootstrap(Box<Bootstrap>),
    AddAdminToken(String, [u8; 32], Ts),
    CreateEnv(Box<(Environment, SecretRecord, NewAudit)>),
    UpdateEnv(String, Box<EnvSettings>, Ts),
    DeleteEnv(String, NewAudit),
    InsertSecret(Box<SecretRecord>, Option<Ts>, NewAudit),
    RevokeSecret(String, String, Ts, NewAudit),
    RotateSigningKey(Box<SigningKeyRecord>, NewAudit),
    Identify(Box<IdentifyCommand>),
    Group(Box<GroupCommand>),
    Track(Box<EventRecord>),
    Rejection(String, NewAudit),
    Audit(NewAudit),
    CreateWebhook(Box<WebhookEndpoint>),
    DeleteWebhook(String, String),
    UpdateWebhookSecrets(String, String, Vec<u8>, Ts),
    EnableWebhook(String, String, NewAudit),
    ReplayWebhook(String, String, i64),
    Claim(i64, u32, Vec<i64>),
    RecordAttempt(Box<AttemptOutcome>),
    Close,
}

#[derive(Debug)]
enum Reply {
    Unit,
    Secret(SecretRecord),
    Identify(Result<IdentifyOutcome, IdentifyRejection>),
    Group(Result<CompanyRecord, IdentifyRejection>),
    Claimed(Vec<ClaimedDelivery>),
    Count(u64),
}

fn db_err(e: sqlx::Error) -> StoreError {
    match &e {
        sqlx::Error::Database(d) if d.is_unique_violation() => {
            StoreError::Conflict("an object with this id already exists".into())
        }
        sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed => {
            StoreError::Unavailable(e.to_string())
        }
        _ => StoreError::Internal(e.to_string()),
    }
}

fn json_err(e: serde_json::Error) -> StoreError {
    StoreError::Internal(format!("stored JSON is unreadable: {e}"))
}

impl SqliteStore {
    /// SQLite in `dir/vouch.db`, creating the directory if missing.
    pub async fn open_dir(dir: &Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir).map_err(|e| {
            anyhow::anyhow!("cannot create the data directory {}: {e}", dir.display())
        })?;
        let opts = SqliteConnectOptions::new().filename(dir.join("vouch.db"));
        Self::open_with(opts).await
    }

    /// SQLite at a `sqlite:` URL.
    pub async fn open_url(url: &str) -> anyhow::Result<Self> {
        let opts = SqliteConnectOptions::from_str(url)?;
        Self::open_with(opts).await
    }

    async fn open_with(opts: SqliteConnectOptions) -> anyhow::Result<Self> {
        let opts = opts
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(5));
        let mut writer = opts.clone().connect().await?;
        migrate(&mut writer).await?;
        let readers = SqlitePoolOptions::new()
            .max_connections(8)
            .min_connections(1)
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(opts.read_only(true))
            .await?;
        let (tx, rx) = mpsc::channel(QUEUE);
        let outbox = Arc::new(Notify::new());
        let handle = tokio::spawn(writer_loop(writer, rx, outbox.clone()));
        Ok(Self {
            readers,
            jobs: tx,
            writer: Mutex::new(Some(handle)),
            outbox,
            limiter: crate::ratelimit::RateLimiter::default(),
        })
    }

    async fn submit(&self, op: Op) -> StoreResult<Reply> {
        let (reply, rx) = oneshot::channel();
        self.jobs
            .send(Job { op, reply })
            .await
            .map_err(|_| StoreError::Unavailable("the writer has stopped".into()))?;
        rx.await
            .map_err(|_| StoreError::Unavailable("the writer has stopped".into()))?
    }

    async fn submit_unit(&self, op: Op) -> StoreResult<()> {
        self.submit(op).await.map(|_| ())
    }
}

async fn migrate(conn: &mut SqliteConnection) -> anyhow::Result<()> {
    let version: i64 = sqlx::query_scalar("PRAGMA user_version")
        .fetch_one(&mut *conn)
        .await?;
    for (i, sql) in MIGRATIONS.iter().enumerate() {
        let target = i64::try_from(i)? + 1;
        if version >= target {
            continue;
        }
        let mut tx = conn.begin().await?;
        sqlx::raw_sql(*sql).execute(&mut *tx).await?;
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "PRAGMA user_version = {target}"
        )))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
    }
    Ok(())
}

async fn writer_loop(mut conn: SqliteConnection, mut rx: mpsc::Receiver<Job>, outbox: Arc<Notify>) {
    let mut batch: Vec<Job> = Vec::with_capacity(MAX_BATCH);
    let mut closing: Option<oneshot::Sender<StoreResult<Reply>>> = None;
    while let Some(job) = rx.recv().await {
        let mut next = Some(job);
        while let Some(job) = next.take() {
            if matches!(job.op, Op::Close) {
                closing = Some(job.reply);
                // Refuse new work; what is already queued is still written.
                rx.close();
            } else {
                batch.push(job);
            }
            if batch.len() < MAX_BATCH {
                next = rx.try_recv().ok();
            }
        }
        if !batch.is_empty() {
            let started = std::time::Instant::now();
            let size = batch.len();
            let queued = run_batch(&mut conn, &mut batch).await;
            let m = &*crate::metrics::METRICS;
            m.db_commit_seconds.observe(started.elapsed().as_secs_f64());
            m.db_batch_size.observe(size as f64);
            if queued {
                outbox.notify_one();
            }
        }
    }
    let _ = sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
        .execute(&mut conn)
        .await;
    let _ = conn.close().await;
    if let Some(reply) = closing {
        let _ = reply.send(Ok(Reply::Unit));
    }
}

async fn exec(conn: &mut SqliteConnection, sql: &'static str) -> StoreResult<()> {
    sqlx::query(sql)
        .execute(conn)
        .await
        .map(|_| ())
        .map_err(db_err)
}

/// Per-transaction state: webhook wake-up, stats counted in memory and
/// written once per transaction, and whether an environment has endpoints.
#[derive(Debug, Default)]
struct BatchCtx {
    queued: bool,
    stats: std::collections::HashMap<(String, i64), [i64; 3]>,
    webhooks: std::collections::HashMap<String, bool>,
}

impl BatchCtx {
    fn stat(&mut self, env_id: &str, at: Ts, outcome: Outcome) {
        let slot = match outcome {
            Outcome::Verified => 0,
            Outcome::Unverified => 1,
            Outcome::Rejected => 2,
        };
        self.stats
            .entry((env_id.to_string(), at.div_euclid(60)))
            .or_default()[slot] += 1;
    }

    async fn has_webhooks(
        &mut self,
        conn: &mut SqliteConnection,
        env_id: &str,
    ) -> StoreResult<bool> {
        if let Some(v) = self.webhooks.get(env_id) {
            return Ok(*v);
        }
        let any: Option<i64> =
            sqlx::query_scalar("SELECT 1 FROM webhook_endpoints WHERE env_id = ? LIMIT 1")
                .bind(env_id)
                .fetch_optional(conn)
                .await
                .map_err(db_err)?;
        self.webhooks.insert(env_id.to_string(), any.is_some());
        Ok(any.is_some())
    }

    async fn flush(&mut self, conn: &mut SqliteConnection) -> StoreResult<()> {
        for ((env_id, minute), [v, u, r]) in self.stats.drain() {
            sqlx::query(
                "INSERT INTO identify_stats (env_id, minute, verified, unverified, rejected) VALUES (?, ?, ?, ?, ?)
                 ON CONFLICT (env_id, minute) DO UPDATE SET verified = verified + excluded.verified,
                   unverified = unverified + excluded.unverified, rejected = rejected + excluded.rejected",
            )
            .bind(env_id)
            .bind(minute)
            .bind(v)
            .bind(u)
            .bind(r)
            .execute(&mut *conn)
            .await
            .map_err(db_err)?;
        }
        Ok(())
    }
}

/// Runs one batch in one transaction; true when it queued webhook deliveries.
///
/// Optimistic: the writes run back to back. If any of them fails, the whole
/// transaction is rolled back and each write is retried in a transaction of
/// its own, so one bad write never takes its neighbours down.
async fn run_batch(conn: &mut SqliteConnection, batch: &mut Vec<Job>) -> bool {
    if batch.len() > 1 {
        match try_together(conn, batch).await {
            Ok(Some((results, queued))) => {
                for (job, r) in batch.drain(..).zip(results) {
                    let _ = job.reply.send(Ok(r));
                }
                return queued;
            }
            Ok(None) => {}
            Err(e) => {
                for job in batch.drain(..) {
                    let _ = job.reply.send(Err(StoreError::Unavailable(e.to_string())));
                }
                return false;
            }
        }
    }
    let mut queued = false;
    for job in batch.drain(..) {
        let r = run_one(conn, &job.op).await;
        if let Ok((_, q)) = &r {
            queued |= q;
        }
        let _ = job.reply.send(r.map(|(reply, _)| reply));
    }
    queued
}

/// All writes in one transaction; `None` when one failed (rolled back).
async fn try_together(
    conn: &mut SqliteConnection,
    batch: &[Job],
) -> StoreResult<Option<(Vec<Reply>, bool)>> {
    exec(conn, "BEGIN IMMEDIATE").await?;
    let mut ctx = BatchCtx::default();
    let mut results = Vec::with_capacity(batch.len());
    for job in batch {
        match apply(conn, &job.op, &mut ctx).await {
            Ok(r) => results.push(r),
            Err(_) => {
                let _ = exec(conn, "ROLLBACK").await;
                return Ok(None);
            }
        }
    }
    if ctx.flush(conn).await.is_err() {
        let _ = exec(conn, "ROLLBACK").await;
        return Ok(None);
    }
    if let Err(e) = exec(conn, "COMMIT").await {
        tracing::error!(error = %e, "commit failed; the batch is answered with errors");
        let _ = exec(conn, "ROLLBACK").await;
        return Err(e);
    }
    Ok(Some((results, ctx.queued)))
}

async fn run_one(conn: &mut SqliteConnection, op: &Op) -> StoreResult<(Reply, bool)> {
    exec(conn, "BEGIN IMMEDIATE").await?;
    let mut ctx = BatchCtx::default();
    let r = match apply(conn, op, &mut ctx).await {
        Ok(r) => ctx.flush(conn).await.map(|()| r),
        Err(e) => Err(e),
    };
    match r {
        Ok(reply) => match exec(conn, "COMMIT").await {
            Ok(()) => Ok((reply, ctx.queued)),
            Err(e) => {
                tracing::error!(error = %e, "commit failed");
                let _ = exec(conn, "ROLLBACK").await;
                Err(StoreError::Unavailable(e.to_string()))
            }
        },
        Err(e) => {
            let _ = exec(conn, "ROLLBACK").await;
            Err(e)
        }
    }
}

fn to_json(v: &impl serde::Serialize) -> StoreResult<String> {
    serde_json::to_string(v).map_err(|e| StoreError::Internal(e.to_string()))
}

async fn insert_audit(conn: &mut SqliteConnection, a: &NewAudit) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO audit (id, env_id, kind, user_id, key_id, detail, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
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

async fn insert_env(conn: &mut SqliteConnection, env: &Environment) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO environments (id, project_id, publishable_key, settings, unsigned_count, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
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

async fn insert_secret(conn: &mut SqliteConnection, s: &SecretRecord) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO secrets (id, env_id, ciphertext, imported, created_at, expires_at, revoked_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
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

async fn insert_signing_key(conn: &mut SqliteConnection, k: &SigningKeyRecord) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO signing_keys (kid, ciphertext, public_key, created_at, retired_at) VALUES (?, ?, ?, ?, ?)",
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

async fn apply(conn: &mut SqliteConnection, op: &Op, ctx: &mut BatchCtx) -> StoreResult<Reply> {
    match op {
        Op::PutMeta(k, v) => {
            sqlx::query("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value")
                .bind(k)
                .bind(v)
                .execute(conn)
                .await
                .map_err(db_err)?;
        }
        Op::Bootstrap(b) => {
            sqlx::query("INSERT INTO meta (key, value) VALUES ('master_key_check', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value")
                .bind(&b.master_key_check)
                .execute(&mut *conn)
                .await
                .map_err(db_err)?;
            sqlx::query("INSERT INTO projects (id, name, created_at) VALUES (?, ?, ?)")
                .bind(&b.project_id)
                .bind(&b.project_name)
                .bind(b.now)
                .execute(&mut *conn)
                .await
                .map_err(db_err)?;
            insert_env(conn, &b.environment).await?;
            insert_secret(conn, &b.secret).await?;
            insert_signing_key(conn, &b.signing_key).await?;
            if let Some((id, hash)) = &b.admin_token {
                sqlx::query("INSERT OR IGNORE INTO admin_tokens (id, token_hash, created_at) VALUES (?, ?, ?)")
                    .bind(id)
                    .bind(&hash[..])
                    .bind(b.now)
                    .execute(&mut *conn)
                    .await
                    .map_err(db_err)?;
            }
        }
        Op::AddAdminToken(id, hash, now) => {
            sqlx::query(
                "INSERT OR IGNORE INTO admin_tokens (id, token_hash, created_at) VALUES (?, ?, ?)",
            )
            .bind(id)
            .bind(&hash[..])
            .bind(now)
            .execute(conn)
            .await
            .map_err(db_err)?;
        }
        Op::CreateEnv(b) => {
            let (env, secret, audit) = &**b;
            insert_env(conn, env).await?;
            insert_secret(conn, secret).await?;
            insert_audit(conn, audit).await?;
            ctx.queued |= enqueue_secret(conn, ctx, "secret.created", secret, audit.at).await?;
        }
        Op::UpdateEnv(id, settings, now) => {
            let r =
                sqlx::query("UPDATE environments SET settings = ?, updated_at = ? WHERE id = ?")
                    .bind(to_json(&**settings)?)
                    .bind(now)
                    .bind(id)
                    .execute(conn)
                    .await
                    .map_err(db_err)?;
            if r.rows_affected() == 0 {
                return Err(StoreError::NotFound("environment"));
            }
        }
        Op::DeleteEnv(id, audit) => {
            for table in [
                "users",
                "companies",
                "memberships",
                "events",
                "secrets",
                "identify_stats",
                "used_jtis",
            ] {
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "DELETE FROM {table} WHERE env_id = ?"
                )))
                .bind(id)
                .execute(&mut *conn)
                .await
                .map_err(db_err)?;
            }
            let r = sqlx::query("DELETE FROM environments WHERE id = ?")
                .bind(id)
                .execute(&mut *conn)
                .await
                .map_err(db_err)?;
            if r.rows_affected() == 0 {
                return Err(StoreError::NotFound("environment"));
            }
            insert_audit(conn, audit).await?;
        }
        Op::InsertSecret(secret, expire_others_at, audit) => {
            let exists: Option<i64> = sqlx::query_scalar("SELECT 1 FROM environments WHERE id = ?")
                .bind(&secret.env_id)
                .fetch_optional(&mut *conn)
                .await
                .map_err(db_err)?;
            if exists.is_none() {
                return Err(StoreError::NotFound("environment"));
            }
            if let Some(at) = expire_others_at {
                sqlx::query(
                    "UPDATE secrets SET expires_at = ? WHERE env_id = ? AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ?)",
                )
                .bind(at)
                .bind(&secret.env_id)
                .bind(at)
                .execute(&mut *conn)
                .await
                .map_err(db_err)?;
            }
            insert_secret(conn, secret).await?;
            insert_audit(conn, audit).await?;
            ctx.queued |= enqueue_secret(conn, ctx, "secret.created", secret, audit.at).await?;
        }
        Op::RevokeSecret(env_id, key_id, at, audit) => {
            sqlx::query("UPDATE secrets SET revoked_at = ? WHERE env_id = ? AND id = ? AND revoked_at IS NULL")
                .bind(at)
                .bind(env_id)
                .bind(key_id)
                .execute(&mut *conn)
                .await
                .map_err(db_err)?;
            let row = sqlx::query("SELECT * FROM secrets WHERE env_id = ? AND id = ?")
                .bind(env_id)
                .bind(key_id)
                .fetch_optional(&mut *conn)
                .await
                .map_err(db_err)?
                .ok_or(StoreError::NotFound("secret"))?;
            insert_audit(conn, audit).await?;
            let record = secret_from_row(&row)?;
            let kind = if audit.kind == "secret.exposed" {
                "secret.exposed"
            } else {
                "secret.revoked"
            };
            ctx.queued |= enqueue_secret(conn, ctx, kind, &record, *at).await?;
            return Ok(Reply::Secret(record));
        }
        Op::RotateSigningKey(key, audit) => {
            sqlx::query("UPDATE signing_keys SET retired_at = ? WHERE retired_at IS NULL")
                .bind(key.created_at)
                .execute(&mut *conn)
                .await
                .map_err(db_err)?;
            insert_signing_key(conn, key).await?;
            insert_audit(conn, audit).await?;
        }
        Op::Identify(cmd) => return apply_identify_op(conn, cmd, ctx).await,
        Op::Group(cmd) => return apply_group_op(conn, cmd).await,
        Op::Track(ev) => {
            sqlx::query(
                "INSERT INTO events (id, env_id, user_id, visitor_id, name, properties, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(&ev.id)
            .bind(&ev.env_id)
            .bind(&ev.user_id)
            .bind(&ev.visitor_id)
            .bind(&ev.name)
            .bind(to_json(&ev.properties)?)
            .bind(ev.created_at)
            .execute(conn)
            .await
            .map_err(db_err)?;
        }
        Op::Rejection(env_id, audit) => {
            ctx.stat(env_id, audit.at, Outcome::Rejected);
            insert_audit(conn, audit).await?;
            let mut data = serde_json::json!({
                "environment_id": env_id,
                "user_id": audit.user_id,
            });
            if let (Value::Object(d), Value::Object(extra)) = (&mut data, &audit.detail) {
                d.extend(extra.clone());
            }
            ctx.queued |= enqueue(conn, ctx, env_id, "identity.rejected", data, audit.at).await?;
        }
        Op::Audit(audit) => insert_audit(conn, audit).await?,
        Op::CreateWebhook(w) => {
            ctx.webhooks.clear();
            sqlx::query(
                "INSERT INTO webhook_endpoints (id, env_id, url, event_types, secrets, disabled_at, disabled_reason, created_at, updated_at) VALUES (?, ?, ?, ?, ?, NULL, NULL, ?, ?)",
            )
            .bind(&w.id)
            .bind(&w.env_id)
            .bind(&w.url)
            .bind(w.event_types.as_ref().map(to_json).transpose()?)
            .bind(&w.secrets)
            .bind(w.created_at)
            .bind(w.updated_at)
            .execute(conn)
            .await
            .map_err(db_err)?;
        }
        Op::DeleteWebhook(env_id, id) => {
            ctx.webhooks.clear();
            sqlx::query("DELETE FROM webhook_deliveries WHERE endpoint_id = (SELECT id FROM webhook_endpoints WHERE env_id = ? AND id = ?)")
                .bind(env_id)
                .bind(id)
                .execute(&mut *conn)
                .await
                .map_err(db_err)?;
            sqlx::query("DELETE FROM webhook_attempts WHERE endpoint_id = (SELECT id FROM webhook_endpoints WHERE env_id = ? AND id = ?)")
                .bind(env_id)
                .bind(id)
                .execute(&mut *conn)
                .await
                .map_err(db_err)?;
            let r = sqlx::query("DELETE FROM webhook_endpoints WHERE env_id = ? AND id = ?")
                .bind(env_id)
                .bind(id)
                .execute(&mut *conn)
                .await
                .map_err(db_err)?;
            if r.rows_affected() == 0 {
                return Err(StoreError::NotFound("webhook endpoint"));
            }
        }
        Op::UpdateWebhookSecrets(env_id, id, secrets, now) => {
            let r = sqlx::query("UPDATE webhook_endpoints SET secrets = ?, updated_at = ? WHERE env_id = ? AND id = ?")
                .bind(secrets)
                .bind(now)
                .bind(env_id)
                .bind(id)
                .execute(conn)
                .await
                .map_err(db_err)?;
            if r.rows_affected() == 0 {
                return Err(StoreError::NotFound("webhook endpoint"));
            }
        }
        Op::EnableWebhook(env_id, id, audit) => {
            let r = sqlx::query("UPDATE webhook_endpoints SET disabled_at = NULL, disabled_reason = NULL, updated_at = ? WHERE env_id = ? AND id = ?")
                .bind(audit.at)
                .bind(env_id)
                .bind(id)
                .execute(&mut *conn)
                .await
                .map_err(db_err)?;
            if r.rows_affected() == 0 {
                return Err(StoreError::NotFound("webhook endpoint"));
            }
            insert_audit(conn, audit).await?;
        }
        Op::ReplayWebhook(env_id, id, now_ms) => {
            let exists: Option<i64> =
                sqlx::query_scalar("SELECT 1 FROM webhook_endpoints WHERE env_id = ? AND id = ?")
                    .bind(env_id)
                    .bind(id)
                    .fetch_optional(&mut *conn)
                    .await
                    .map_err(db_err)?;
            if exists.is_none() {
                return Err(StoreError::NotFound("webhook endpoint"));
            }
            let r = sqlx::query(
                "UPDATE webhook_deliveries SET status = 'pending', attempts = 0, next_attempt_at = ?, updated_at = ? WHERE endpoint_id = ? AND status IN ('dead', 'held')",
            )
            .bind(now_ms)
            .bind(now_ms / 1000)
            .bind(id)
            .execute(conn)
            .await
            .map_err(db_err)?;
            ctx.queued |= r.rows_affected() > 0;
            return Ok(Reply::Count(r.rows_affected()));
        }
        Op::Claim(now_ms, limit, schedule) => return claim(conn, *now_ms, *limit, schedule).await,
        Op::RecordAttempt(o) => record_attempt(conn, o).await?,
        Op::Close => {}
    }
    Ok(Reply::Unit)
}

async fn apply_identify_op(
    conn: &mut SqliteConnection,
    cmd: &IdentifyCommand,
    ctx: &mut BatchCtx,
) -> StoreResult<Reply> {
    if let Some((jti, _)) = &cmd.jti {
        let used: Option<i64> = sqlx::query_scalar(
            "SELECT 1 FROM used_jtis WHERE env_id = ? AND jti = ? AND expires_at > ?",
        )
        .bind(&cmd.env_id)
        .bind(jti)
        .bind(cmd.now)
        .fetch_optional(&mut *conn)
        .await
        .map_err(db_err)?;
        if used.is_some() {
            return Ok(Reply::Identify(Err(IdentifyRejection::TokenReplayed)));
        }
    }
    // Only an unproven identify can touch the unsigned cap.
    let unsigned_count: i64 = if cmd.proof.is_none() {
        sqlx::query_scalar("SELECT unsigned_count FROM environments WHERE id = ?")
            .bind(&cmd.env_id)
            .fetch_optional(&mut *conn)
            .await
            .map_err(db_err)?
            .ok_or(StoreError::NotFound("environment"))?
    } else {
        0
    };
    let existing = sqlx::query("SELECT * FROM users WHERE env_id = ? AND id = ?")
        .bind(&cmd.env_id)
        .bind(&cmd.user_id)
        .fetch_optional(&mut *conn)
        .await
        .map_err(db_err)?
        .map(|r| user_from_row(&r))
        .transpose()?;
    let outcome = match apply_identify(existing, cmd, unsigned_count) {
        Ok(o) => o,
        Err(rejection) => return Ok(Reply::Identify(Err(rejection))),
    };
    let u = &outcome.user;
    if outcome.changed || cmd.proof.is_some() || outcome.counted_unsigned {
        sqlx::query(
            "INSERT INTO users (env_id, id, verified, ever_verified, verified_by, key_id, verified_at, attributes, verified_attributes, counted_unsigned, created_at, updated_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
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
        sqlx::query("UPDATE environments SET unsigned_count = unsigned_count + 1 WHERE id = ?")
            .bind(&cmd.env_id)
            .execute(&mut *conn)
            .await
            .map_err(db_err)?;
    }
    if let Some((jti, until)) = &cmd.jti {
        sqlx::query("INSERT INTO used_jtis (env_id, jti, expires_at) VALUES (?, ?, ?) ON CONFLICT (env_id, jti) DO UPDATE SET expires_at = excluded.expires_at")
            .bind(&cmd.env_id)
            .bind(jti)
            .bind(until)
            .execute(&mut *conn)
            .await
            .map_err(db_err)?;
    }
    let stat = if cmd.proof.is_some() {
        Outcome::Verified
    } else {
        Outcome::Unverified
    };
    ctx.stat(&cmd.env_id, cmd.now, stat);
    if (outcome.created || outcome.changed) && ctx.has_webhooks(conn, &cmd.env_id).await? {
        let kind = if outcome.created {
            "user.created"
        } else {
            "user.updated"
        };
        let companies = companies_of(conn, &cmd.env_id, &cmd.user_id).await?;
        let data = serde_json::to_value(crate::api::UserOut::new(u, &companies))
            .map_err(|e| StoreError::Internal(e.to_string()))?;
        ctx.queued |= enqueue(conn, ctx, &cmd.env_id, kind, data, cmd.now).await?;
    }
    Ok(Reply::Identify(Ok(outcome)))
}

async fn apply_group_op(conn: &mut SqliteConnection, cmd: &GroupCommand) -> StoreResult<Reply> {
    let existing = sqlx::query("SELECT * FROM companies WHERE env_id = ? AND id = ?")
        .bind(&cmd.env_id)
        .bind(&cmd.company_id)
        .fetch_optional(&mut *conn)
        .await
        .map_err(db_err)?
        .map(|r| company_from_row(&r))
        .transpose()?;
    let company = match apply_group(existing, cmd) {
        Ok(c) => c,
        Err(rejection) => return Ok(Reply::Group(Err(rejection))),
    };
    sqlx::query(
        "INSERT INTO companies (env_id, id, verified, key_id, verified_at, attributes, created_at, updated_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)
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
    sqlx::query("INSERT OR IGNORE INTO memberships (env_id, user_id, company_id, created_at) VALUES (?, ?, ?, ?)")
        .bind(&cmd.env_id)
        .bind(&cmd.user_id)
        .bind(&cmd.company_id)
        .bind(cmd.now)
        .execute(&mut *conn)
        .await
        .map_err(db_err)?;
    Ok(Reply::Group(Ok(company)))
}

fn verified_by_str(v: VerifiedBy) -> &'static str {
    match v {
        VerifiedBy::Signature => "signature",
        VerifiedBy::Token => "token",
    }
}

fn get<'r, T: sqlx::Decode<'r, sqlx::Sqlite> + sqlx::Type<sqlx::Sqlite>>(
    row: &'r SqliteRow,
    col: &str,
) -> StoreResult<T> {
    row.try_get(col).map_err(db_err)
}

fn json_map(text: &str) -> StoreResult<Map<String, Value>> {
    serde_json::from_str(text).map_err(json_err)
}

fn env_from_row(row: &SqliteRow) -> StoreResult<Environment> {
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

fn secret_from_row(row: &SqliteRow) -> StoreResult<SecretRecord> {
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

fn user_from_row(row: &SqliteRow) -> StoreResult<UserRecord> {
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

fn company_from_row(row: &SqliteRow) -> StoreResult<CompanyRecord> {
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

fn event_from_row(row: &SqliteRow) -> StoreResult<EventRecord> {
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

fn audit_from_row(row: &SqliteRow) -> StoreResult<AuditRecord> {
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

fn signing_key_from_row(row: &SqliteRow) -> StoreResult<SigningKeyRecord> {
    Ok(SigningKeyRecord {
        kid: get(row, "kid")?,
        ciphertext: get(row, "ciphertext")?,
        public_key: get(row, "public_key")?,
        created_at: get(row, "created_at")?,
        retired_at: get(row, "retired_at")?,
    })
}

#[async_trait]
impl Store for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1")
            .execute(&self.readers)
            .await
            .map(|_| ())
            .map_err(db_err)
    }

    async fn close(&self) {
        let _ = self.submit(Op::Close).await;
        if let Some(handle) = self.writer.lock().await.take() {
            let _ = handle.await;
        }
        self.readers.close().await;
    }

    async fn get_meta(&self, key: &str) -> StoreResult<Option<String>> {
        sqlx::query_scalar("SELECT value FROM meta WHERE key = ?")
            .bind(key)
            .fetch_optional(&self.readers)
            .await
            .map_err(db_err)
    }

    async fn put_meta(&self, key: &str, value: &str) -> StoreResult<()> {
        self.submit_unit(Op::PutMeta(key.into(), value.into()))
            .await
    }

    async fn is_empty(&self) -> StoreResult<bool> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM projects")
            .fetch_one(&self.readers)
            .await
            .map_err(db_err)?;
        Ok(n == 0)
    }

    async fn bootstrap(&self, b: Bootstrap) -> StoreResult<()> {
        self.submit_unit(Op::Bootstrap(Box::new(b))).await
    }

    async fn default_project(&self) -> StoreResult<Option<String>> {
        sqlx::query_scalar("SELECT id FROM projects ORDER BY created_at, id LIMIT 1")
            .fetch_optional(&self.readers)
            .await
            .map_err(db_err)
    }

    async fn add_admin_token(&self, id: &str, hash: [u8; 32], now: Ts) -> StoreResult<()> {
        self.submit_unit(Op::AddAdminToken(id.into(), hash, now))
            .await
    }

    async fn admin_token_exists(&self, hash: [u8; 32]) -> StoreResult<bool> {
        let r: Option<i64> = sqlx::query_scalar("SELECT 1 FROM admin_tokens WHERE token_hash = ?")
            .bind(&hash[..])
            .fetch_optional(&self.readers)
            .await
            .map_err(db_err)?;
        Ok(r.is_some())
    }

    async fn list_environments(&self) -> StoreResult<Vec<Environment>> {
        sqlx::query("SELECT * FROM environments ORDER BY created_at, id")
            .fetch_all(&self.readers)
            .await
            .map_err(db_err)?
            .iter()
            .map(env_from_row)
            .collect()
    }

    async fn get_environment(&self, id: &str) -> StoreResult<Option<Environment>> {
        sqlx::query("SELECT * FROM environments WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.readers)
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
        self.submit_unit(Op::CreateEnv(Box::new((env, secret, audit))))
            .await
    }

    async fn update_environment(
        &self,
        id: &str,
        settings: EnvSettings,
        now: Ts,
    ) -> StoreResult<()> {
        self.submit_unit(Op::UpdateEnv(id.into(), Box::new(settings), now))
            .await
    }

    async fn delete_environment(&self, id: &str, audit: NewAudit) -> StoreResult<()> {
        self.submit_unit(Op::DeleteEnv(id.into(), audit)).await
    }

    async fn list_all_secrets(&self) -> StoreResult<Vec<SecretRecord>> {
        sqlx::query("SELECT * FROM secrets ORDER BY created_at, id")
            .fetch_all(&self.readers)
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
        self.submit_unit(Op::InsertSecret(Box::new(secret), expire_others_at, audit))
            .await
    }

    async fn revoke_secret(
        &self,
        env_id: &str,
        key_id: &str,
        at: Ts,
        audit: NewAudit,
    ) -> StoreResult<SecretRecord> {
        match self
            .submit(Op::RevokeSecret(env_id.into(), key_id.into(), at, audit))
            .await?
        {
            Reply::Secret(s) => Ok(s),
            _ => Err(StoreError::Internal("unexpected reply".into())),
        }
    }

    async fn list_signing_keys(&self) -> StoreResult<Vec<SigningKeyRecord>> {
        sqlx::query("SELECT * FROM signing_keys ORDER BY created_at, kid")
            .fetch_all(&self.readers)
            .await
            .map_err(db_err)?
            .iter()
            .map(signing_key_from_row)
            .collect()
    }

    async fn rotate_signing_key(&self, key: SigningKeyRecord, audit: NewAudit) -> StoreResult<()> {
        self.submit_unit(Op::RotateSigningKey(Box::new(key), audit))
            .await
    }

    async fn identify(
        &self,
        cmd: IdentifyCommand,
    ) -> StoreResult<Result<IdentifyOutcome, IdentifyRejection>> {
        match self.submit(Op::Identify(Box::new(cmd))).await? {
            Reply::Identify(r) => Ok(r),
            _ => Err(StoreError::Internal("unexpected reply".into())),
        }
    }

    async fn group(
        &self,
        cmd: GroupCommand,
    ) -> StoreResult<Result<CompanyRecord, IdentifyRejection>> {
        match self.submit(Op::Group(Box::new(cmd))).await? {
            Reply::Group(r) => Ok(r),
            _ => Err(StoreError::Internal("unexpected reply".into())),
        }
    }

    async fn track(&self, event: EventRecord) -> StoreResult<()> {
        self.submit_unit(Op::Track(Box::new(event))).await
    }

    async fn record_rejection(&self, env_id: &str, audit: NewAudit) -> StoreResult<()> {
        self.submit_unit(Op::Rejection(env_id.into(), audit)).await
    }

    async fn append_audit(&self, audit: NewAudit) -> StoreResult<()> {
        self.submit_unit(Op::Audit(audit)).await
    }

    async fn get_user(&self, env_id: &str, user_id: &str) -> StoreResult<Option<UserRecord>> {
        sqlx::query("SELECT * FROM users WHERE env_id = ? AND id = ?")
            .bind(env_id)
            .bind(user_id)
            .fetch_optional(&self.readers)
            .await
            .map_err(db_err)?
            .as_ref()
            .map(user_from_row)
            .transpose()
    }

    async fn user_companies(&self, env_id: &str, user_id: &str) -> StoreResult<Vec<CompanyRecord>> {
        sqlx::query(
            "SELECT c.* FROM companies c JOIN memberships m ON m.env_id = c.env_id AND m.company_id = c.id
             WHERE m.env_id = ? AND m.user_id = ? ORDER BY c.id",
        )
        .bind(env_id)
        .bind(user_id)
        .fetch_all(&self.readers)
        .await
        .map_err(db_err)?
        .iter()
        .map(company_from_row)
        .collect()
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
            "SELECT * FROM users WHERE env_id = ? AND (? IS NULL OR verified = ?) AND (? IS NULL OR id > ?) ORDER BY id LIMIT ?",
        )
        .bind(env_id)
        .bind(verified)
        .bind(verified)
        .bind(after)
        .bind(after)
        .bind(i64::from(limit) + 1)
        .fetch_all(&self.readers)
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
            "SELECT * FROM events WHERE env_id = ? AND (? IS NULL OR user_id = ?) AND (? IS NULL OR seq < ?) ORDER BY seq DESC LIMIT ?",
        )
        .bind(env_id)
        .bind(user_id)
        .bind(user_id)
        .bind(before)
        .bind(before)
        .bind(i64::from(limit) + 1)
        .fetch_all(&self.readers)
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
            "SELECT * FROM audit WHERE env_id = ? AND (? IS NULL OR seq < ?) ORDER BY seq DESC LIMIT ?",
        )
        .bind(env_id)
        .bind(before)
        .bind(before)
        .bind(i64::from(limit) + 1)
        .fetch_all(&self.readers)
        .await
        .map_err(db_err)?;
        let data = rows
            .iter()
            .map(audit_from_row)
            .collect::<StoreResult<Vec<_>>>()?;
        page(data, limit, |e| e.seq.to_string())
    }

    async fn coverage(&self, env_id: &str, since: Ts) -> StoreResult<Coverage> {
        let row = sqlx::query(
            "SELECT COALESCE(SUM(verified), 0) AS v, COALESCE(SUM(unverified), 0) AS u, COALESCE(SUM(rejected), 0) AS r
             FROM identify_stats WHERE env_id = ? AND minute >= ?",
        )
        .bind(env_id)
        .bind(since.div_euclid(60))
        .fetch_one(&self.readers)
        .await
        .map_err(db_err)?;
        Ok(Coverage {
            verified: get(&row, "v")?,
            unverified: get(&row, "u")?,
            rejected: get(&row, "r")?,
        })
    }

    async fn rate_blocked(&self, key: &str, limit: u32, now: Ts) -> StoreResult<Option<u64>> {
        Ok(self.limiter.blocked(key, limit, now))
    }

    async fn rate_fail(&self, key: &str, now: Ts) -> StoreResult<()> {
        self.limiter.fail(key, now);
        Ok(())
    }

    fn outbox_notify(&self) -> Arc<Notify> {
        self.outbox.clone()
    }

    async fn create_webhook(&self, endpoint: WebhookEndpoint) -> StoreResult<()> {
        self.submit_unit(Op::CreateWebhook(Box::new(endpoint)))
            .await
    }

    async fn list_webhooks(&self, env_id: &str) -> StoreResult<Vec<WebhookEndpoint>> {
        sqlx::query("SELECT * FROM webhook_endpoints WHERE env_id = ? ORDER BY created_at, id")
            .bind(env_id)
            .fetch_all(&self.readers)
            .await
            .map_err(db_err)?
            .iter()
            .map(webhook_from_row)
            .collect()
    }

    async fn get_webhook(&self, env_id: &str, id: &str) -> StoreResult<Option<WebhookEndpoint>> {
        sqlx::query("SELECT * FROM webhook_endpoints WHERE env_id = ? AND id = ?")
            .bind(env_id)
            .bind(id)
            .fetch_optional(&self.readers)
            .await
            .map_err(db_err)?
            .as_ref()
            .map(webhook_from_row)
            .transpose()
    }

    async fn delete_webhook(&self, env_id: &str, id: &str) -> StoreResult<()> {
        self.submit_unit(Op::DeleteWebhook(env_id.into(), id.into()))
            .await
    }

    async fn update_webhook_secrets(
        &self,
        env_id: &str,
        id: &str,
        secrets: Vec<u8>,
        now: Ts,
    ) -> StoreResult<()> {
        self.submit_unit(Op::UpdateWebhookSecrets(
            env_id.into(),
            id.into(),
            secrets,
            now,
        ))
        .await
    }

    async fn enable_webhook(&self, env_id: &str, id: &str, audit: NewAudit) -> StoreResult<()> {
        self.submit_unit(Op::EnableWebhook(env_id.into(), id.into(), audit))
            .await
    }

    async fn replay_webhook(&self, env_id: &str, id: &str, now_ms: i64) -> StoreResult<u64> {
        match self
            .submit(Op::ReplayWebhook(env_id.into(), id.into(), now_ms))
            .await?
        {
            Reply::Count(n) => Ok(n),
            _ => Err(StoreError::Internal("unexpected reply".into())),
        }
    }

    async fn claim_deliveries(
        &self,
        now_ms: i64,
        limit: u32,
        schedule_ms: Vec<i64>,
    ) -> StoreResult<Vec<ClaimedDelivery>> {
        match self.submit(Op::Claim(now_ms, limit, schedule_ms)).await? {
            Reply::Claimed(v) => Ok(v),
            _ => Err(StoreError::Internal("unexpected reply".into())),
        }
    }

    async fn record_attempt(&self, outcome: AttemptOutcome) -> StoreResult<()> {
        self.submit_unit(Op::RecordAttempt(Box::new(outcome))).await
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
             WHERE e.env_id = ? AND a.endpoint_id = ? AND (? IS NULL OR a.seq < ?) ORDER BY a.seq DESC LIMIT ?",
        )
        .bind(env_id)
        .bind(endpoint_id)
        .bind(before)
        .bind(before)
        .bind(i64::from(limit) + 1)
        .fetch_all(&self.readers)
        .await
        .map_err(db_err)?;
        let data = rows
            .iter()
            .map(attempt_from_row)
            .collect::<StoreResult<Vec<_>>>()?;
        page(data, limit, |a| a.seq.to_string())
    }
}

async fn companies_of(
    conn: &mut SqliteConnection,
    env_id: &str,
    user_id: &str,
) -> StoreResult<Vec<CompanyRecord>> {
    sqlx::query(
        "SELECT c.* FROM companies c JOIN memberships m ON m.env_id = c.env_id AND m.company_id = c.id
         WHERE m.env_id = ? AND m.user_id = ? ORDER BY c.id",
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
/// caller's transaction. Endpoints that are disabled get a held delivery, which
/// a replay sends. Returns whether anything is due now.
async fn enqueue(
    conn: &mut SqliteConnection,
    ctx: &mut BatchCtx,
    env_id: &str,
    kind: &str,
    data: Value,
    at: Ts,
) -> StoreResult<bool> {
    if !ctx.has_webhooks(conn, env_id).await? {
        return Ok(false);
    }
    let message_id = vouch_core::keys::generate_id("msg");
    let now_ms = at.saturating_mul(1000);
    let r = sqlx::query(
        "INSERT INTO webhook_deliveries (id, message_id, endpoint_id, status, attempts, next_attempt_at, created_at, updated_at)
         SELECT ? || ':' || e.id, ?, e.id, CASE WHEN e.disabled_at IS NULL THEN 'pending' ELSE 'held' END, 0, ?, ?, ?
         FROM webhook_endpoints e
         WHERE e.env_id = ? AND (e.event_types IS NULL OR EXISTS (SELECT 1 FROM json_each(e.event_types) WHERE value = ?))",
    )
    .bind(&message_id)
    .bind(&message_id)
    .bind(now_ms)
    .bind(at)
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
    sqlx::query("INSERT INTO webhook_messages (id, env_id, type, payload, created_at) VALUES (?, ?, ?, ?, ?)")
        .bind(&message_id)
        .bind(env_id)
        .bind(kind)
        .bind(to_json(&payload)?)
        .bind(at)
        .execute(conn)
        .await
        .map_err(db_err)?;
    Ok(true)
}

async fn enqueue_secret(
    conn: &mut SqliteConnection,
    ctx: &mut BatchCtx,
    kind: &str,
    s: &SecretRecord,
    at: Ts,
) -> StoreResult<bool> {
    let mut data = serde_json::to_value(crate::api::SecretOut::new(s, at, None))
        .map_err(|e| StoreError::Internal(e.to_string()))?;
    if let Value::Object(m) = &mut data {
        m.insert("environment_id".into(), Value::String(s.env_id.clone()));
    }
    enqueue(conn, ctx, &s.env_id, kind, data, at).await
}

/// How long a claimed last attempt is left alone before it counts as cut
/// short by a crash; longer than any attempt takes.
pub(super) const FINAL_ATTEMPT_LEASE_MS: i64 = 15_000;

async fn claim(
    conn: &mut SqliteConnection,
    now_ms: i64,
    limit: u32,
    schedule: &[i64],
) -> StoreResult<Reply> {
    let rows = sqlx::query(
        "SELECT d.id AS delivery_id, d.message_id, d.endpoint_id, d.attempts, e.env_id, e.url, e.secrets, m.payload, m.created_at AS message_created_at
         FROM webhook_deliveries d
         JOIN webhook_endpoints e ON e.id = d.endpoint_id
         JOIN webhook_messages m ON m.id = d.message_id
         WHERE d.status = 'pending' AND d.next_attempt_at <= ? AND e.disabled_at IS NULL
         ORDER BY d.next_attempt_at LIMIT ?",
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
        // No retry left: a lease a little longer than one attempt (at most
        // 10 s, the dispatcher's timeout), so a last attempt cut short by a
        // crash is tried once more after the restart (then delivered, or dead
        // and the endpoint disabled) instead of staying pending forever.
        let next_at = next.unwrap_or(now_ms + FINAL_ATTEMPT_LEASE_MS);
        sqlx::query("UPDATE webhook_deliveries SET attempts = ?, next_attempt_at = ?, updated_at = ? WHERE id = ?")
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
    Ok(Reply::Claimed(out))
}

async fn record_attempt(conn: &mut SqliteConnection, o: &AttemptOutcome) -> StoreResult<()> {
    let d = &o.delivery;
    let next_retry = if o.success { None } else { d.next_attempt_at };
    sqlx::query(
        "INSERT INTO webhook_attempts (delivery_id, endpoint_id, message_id, attempt, status_code, latency_ms, response, error, next_retry_at, created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
    sqlx::query("UPDATE webhook_deliveries SET status = ?, updated_at = ? WHERE id = ?")
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
        let r = sqlx::query("UPDATE webhook_endpoints SET disabled_at = ?, disabled_reason = ?, updated_at = ? WHERE id = ? AND disabled_at IS NULL")
            .bind(at)
            .bind(&reason)
            .bind(at)
            .bind(&d.endpoint_id)
            .execute(&mut *conn)
            .await
            .map_err(db_err)?;
        // Everything else still queued for it waits for a replay.
        sqlx::query("UPDATE webhook_deliveries SET status = 'held' WHERE endpoint_id = ? AND status = 'pending'")
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

fn webhook_from_row(row: &SqliteRow) -> StoreResult<WebhookEndpoint> {
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

fn attempt_from_row(row: &SqliteRow) -> StoreResult<AttemptRecord> {
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
