//! The embedded store: SQLite in WAL mode with `synchronous = FULL`, so every
//! acknowledged write is on disk.
//!
//! All writes go through one writer thread that owns the only read-write
//! connection and groups whatever is queued into one transaction (group
//! commit): a request is answered only after the transaction holding its
//! write has committed. When one write of a group fails, the group is retried
//! one write per transaction, so one failure never takes its neighbours down.
//!
//! SQLite is called synchronously (rusqlite): the writer runs a whole batch on
//! its own thread, so a batch costs two thread hand-overs however many
//! statements it runs. Point reads by primary key take microseconds and run on
//! the calling thread with a pooled read-only connection; reads that scan
//! (lists, sums) run on the blocking pool.
//!
//! An identify that changes nothing (a known user, the same attributes, proven
//! again within `model::VERIFIED_AT_RESOLUTION`) is decided on a read
//! connection and never reaches the writer. Its count in the coverage stats is
//! kept in memory ([`PendingStats`]) and written by the writer within a second,
//! before any stats read, and on close; a crash can lose at most that second of
//! counts, never a user's record.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use rusqlite::types::FromSql;
use rusqlite::{Connection, ErrorCode, OpenFlags, Params, Row, params};
use serde_json::{Map, Value};
use tokio::sync::{Notify, mpsc, oneshot};
use vouch_core::VerifiedBy;

use super::*;

const MIGRATIONS: &[&str] = &[
    include_str!("../../migrations/sqlite/0001_init.sql"),
    include_str!("../../migrations/sqlite/0002_webhooks.sql"),
];
const MAX_BATCH: usize = 256;
const QUEUE: usize = 4096;
/// Idle read connections kept open.
const READERS: usize = 8;
/// Read connections open at once at most.
const MAX_READERS: usize = 32;
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug)]
pub struct SqliteStore {
    readers: Arc<ReaderPool>,
    jobs: mpsc::Sender<Job>,
    writer: std::sync::Mutex<Option<std::thread::JoinHandle<()>>>,
    outbox: Arc<Notify>,
    /// One node owns an SQLite file, so its counters can live in memory.
    limiter: crate::ratelimit::RateLimiter,
    pending: Arc<PendingStats>,
}

/// How often counts of identifies that wrote nothing are written.
const STATS_FLUSH: Duration = Duration::from_secs(1);

/// Coverage counts of identifies decided without a write, per (environment,
/// minute), until the writer commits them.
#[derive(Debug, Default)]
struct PendingStats {
    counts: std::sync::Mutex<HashMap<(String, i64), [i64; 3]>>,
}

impl PendingStats {
    fn add(&self, env_id: &str, at: Ts, outcome: Outcome) {
        if let Ok(mut m) = self.counts.lock() {
            add_stat(&mut m, env_id, at, outcome);
        }
    }

    fn is_empty(&self) -> bool {
        self.counts.lock().map(|m| m.is_empty()).unwrap_or(true)
    }

    fn take(&self) -> HashMap<(String, i64), [i64; 3]> {
        self.counts
            .lock()
            .map(|mut m| std::mem::take(&mut *m))
            .unwrap_or_default()
    }

    /// Puts back counts whose write failed.
    fn restore(&self, counts: HashMap<(String, i64), [i64; 3]>) {
        if let Ok(mut m) = self.counts.lock() {
            for (k, v) in counts {
                let slot = m.entry(k).or_default();
                for i in 0..3 {
                    slot[i] += v[i];
                }
            }
        }
    }

    fn forget_env(&self, env_id: &str) {
        if let Ok(mut m) = self.counts.lock() {
            m.retain(|(e, _), _| e != env_id);
        }
    }
}

fn add_stat(m: &mut HashMap<(String, i64), [i64; 3]>, env_id: &str, at: Ts, outcome: Outcome) {
    let slot = match outcome {
        Outcome::Verified => 0,
        Outcome::Unverified => 1,
        Outcome::Rejected => 2,
    };
    m.entry((env_id.to_string(), at.div_euclid(60)))
        .or_default()[slot] += 1;
}

/// Writes the pending counts in a transaction of their own.
fn flush_pending(conn: &Connection, pending: &PendingStats) -> StoreResult<()> {
    let stats = pending.take();
    if stats.is_empty() {
        return Ok(());
    }
    let mut ctx = BatchCtx {
        stats: stats.clone(),
        ..BatchCtx::default()
    };
    let r = begin(conn)
        .and_then(|()| ctx.flush(conn))
        .and_then(|()| commit(conn));
    if r.is_err() {
        // Rolled back: every count is still to be written.
        rollback(conn);
        pending.restore(stats);
    }
    r
}

/// Read-only connections, opened on demand (at most [`MAX_READERS`] at
/// once) and kept for reuse ([`READERS`] of them).
struct ReaderPool {
    path: PathBuf,
    state: std::sync::Mutex<PoolState>,
    returned: std::sync::Condvar,
}

#[derive(Default)]
struct PoolState {
    idle: Vec<Connection>,
    /// Connections open, idle or in use.
    open: usize,
}

impl std::fmt::Debug for ReaderPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReaderPool")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

fn poisoned<E>(_: E) -> StoreError {
    StoreError::Internal("the read pool is poisoned".into())
}

impl ReaderPool {
    fn new(path: PathBuf) -> StoreResult<Self> {
        let first = open_reader(&path)?;
        Ok(Self {
            path,
            state: std::sync::Mutex::new(PoolState {
                idle: vec![first],
                open: 1,
            }),
            returned: std::sync::Condvar::new(),
        })
    }

    fn with<T>(&self, f: impl FnOnce(&Connection) -> StoreResult<T>) -> StoreResult<T> {
        let conn = self.take()?;
        let r = f(&conn);
        self.give_back(conn);
        r
    }

    fn take(&self) -> StoreResult<Connection> {
        let mut state = self.state.lock().map_err(poisoned)?;
        loop {
            if let Some(conn) = state.idle.pop() {
                return Ok(conn);
            }
            if state.open < MAX_READERS {
                state.open += 1;
                drop(state);
                return open_reader(&self.path).inspect_err(|_| {
                    if let Ok(mut s) = self.state.lock() {
                        s.open -= 1;
                    }
                });
            }
            let (next, timeout) = self
                .returned
                .wait_timeout(state, BUSY_TIMEOUT)
                .map_err(poisoned)?;
            state = next;
            if timeout.timed_out() && state.idle.is_empty() {
                return Err(StoreError::Unavailable(
                    "every read connection stayed busy for 5 s".into(),
                ));
            }
        }
    }

    fn give_back(&self, conn: Connection) {
        if let Ok(mut state) = self.state.lock() {
            if state.idle.len() < READERS {
                state.idle.push(conn);
            } else {
                state.open -= 1;
            }
        }
        self.returned.notify_one();
    }

    /// Closes the idle connections (shutdown).
    fn close_idle(&self) {
        if let Ok(mut state) = self.state.lock() {
            let n = state.idle.len();
            state.idle.clear();
            state.open -= n;
        }
    }
}

fn open_reader(path: &Path) -> StoreResult<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(db_err)?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(db_err)?;
    conn.set_prepared_statement_cache_capacity(32);
    Ok(conn)
}

fn open_writer(path: &Path) -> anyhow::Result<Connection> {
    let mut conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| anyhow::anyhow!("cannot open the SQLite database {}: {e}", path.display()))?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        anyhow::bail!(
            "SQLite refused WAL mode for {} (journal mode is {mode})",
            path.display()
        );
    }
    conn.execute_batch("PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;")?;
    conn.set_prepared_statement_cache_capacity(64);
    migrate(&mut conn)?;
    Ok(conn)
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
    /// Write the pending stats now (before a stats read, and every second).
    FlushStats,
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

fn db_err(e: rusqlite::Error) -> StoreError {
    if let rusqlite::Error::SqliteFailure(f, _) = &e {
        if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
            || f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
        {
            return StoreError::Conflict("an object with this id already exists".into());
        }
        if matches!(
            f.code,
            ErrorCode::DatabaseBusy
                | ErrorCode::DatabaseLocked
                | ErrorCode::CannotOpen
                | ErrorCode::DiskFull
                | ErrorCode::SystemIoFailure
                | ErrorCode::ReadOnly
                | ErrorCode::OutOfMemory
        ) {
            return StoreError::Unavailable(e.to_string());
        }
    }
    StoreError::Internal(e.to_string())
}

fn json_err(e: serde_json::Error) -> StoreError {
    StoreError::Internal(format!("stored JSON is unreadable: {e}"))
}

/// The file named by a `sqlite:` URL (`sqlite:PATH`, `sqlite://PATH`, any
/// `?…` options dropped: the store sets its own).
fn url_path(url: &str) -> anyhow::Result<PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .unwrap_or(url);
    let path = rest.split('?').next().unwrap_or(rest);
    if path.is_empty() || path == ":memory:" {
        anyhow::bail!(
            "`{url}` names no file: Vouch keeps its data on disk, use sqlite:PATH (e.g. sqlite:/var/lib/vouch/vouch.db)"
        );
    }
    Ok(PathBuf::from(path))
}

impl SqliteStore {
    /// SQLite in `dir/vouch.db`, creating the directory if missing.
    pub async fn open_dir(dir: &Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir).map_err(|e| {
            anyhow::anyhow!("cannot create the data directory {}: {e}", dir.display())
        })?;
        Self::open_path(dir.join("vouch.db")).await
    }

    /// SQLite at a `sqlite:` URL.
    pub async fn open_url(url: &str) -> anyhow::Result<Self> {
        Self::open_path(url_path(url)?).await
    }

    async fn open_path(path: PathBuf) -> anyhow::Result<Self> {
        let writer_path = path.clone();
        let conn = tokio::task::spawn_blocking(move || open_writer(&writer_path)).await??;
        let readers = Arc::new(ReaderPool::new(path)?);
        let (tx, rx) = mpsc::channel(QUEUE);
        let outbox = Arc::new(Notify::new());
        let wake = outbox.clone();
        let pending = Arc::new(PendingStats::default());
        let writer_pending = pending.clone();
        let handle = std::thread::Builder::new()
            .name("vouch-sqlite-writer".into())
            .spawn(move || writer_loop(conn, rx, wake, &writer_pending))?;
        tokio::spawn(flush_stats_every_second(tx.downgrade(), pending.clone()));
        Ok(Self {
            readers,
            jobs: tx,
            writer: std::sync::Mutex::new(Some(handle)),
            outbox,
            limiter: crate::ratelimit::RateLimiter::default(),
            pending,
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

    /// A point read, on the calling thread.
    fn read_now<T>(&self, f: impl FnOnce(&Connection) -> StoreResult<T>) -> StoreResult<T> {
        self.readers.with(f)
    }

    /// A read that may scan many rows, on the blocking pool.
    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    ) -> StoreResult<T> {
        let pool = self.readers.clone();
        tokio::task::spawn_blocking(move || pool.with(f))
            .await
            .map_err(|e| StoreError::Internal(format!("a read stopped: {e}")))?
    }
}

fn migrate(conn: &mut Connection) -> anyhow::Result<()> {
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    for (i, sql) in MIGRATIONS.iter().enumerate() {
        let target = i64::try_from(i)? + 1;
        if version >= target {
            continue;
        }
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.execute_batch(&format!("PRAGMA user_version = {target}"))?;
        tx.commit()?;
    }
    Ok(())
}

/// Asks the writer to write the pending stats, every [`STATS_FLUSH`] while
/// there are some; ends with the store.
async fn flush_stats_every_second(jobs: mpsc::WeakSender<Job>, pending: Arc<PendingStats>) {
    let mut tick = tokio::time::interval(STATS_FLUSH);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if pending.is_empty() {
            if jobs.strong_count() == 0 {
                return;
            }
            continue;
        }
        let Some(tx) = jobs.upgrade() else { return };
        let (reply, done) = oneshot::channel();
        if tx
            .send(Job {
                op: Op::FlushStats,
                reply,
            })
            .await
            .is_err()
        {
            return;
        }
        drop(tx);
        let _ = done.await;
    }
}

fn writer_loop(
    conn: Connection,
    mut rx: mpsc::Receiver<Job>,
    outbox: Arc<Notify>,
    pending: &PendingStats,
) {
    let mut batch: Vec<Job> = Vec::with_capacity(MAX_BATCH);
    let mut flushes: Vec<oneshot::Sender<StoreResult<Reply>>> = Vec::new();
    let mut closing: Option<oneshot::Sender<StoreResult<Reply>>> = None;
    while let Some(job) = rx.blocking_recv() {
        let mut next = Some(job);
        while let Some(job) = next.take() {
            match job.op {
                Op::Close => {
                    closing = Some(job.reply);
                    // Refuse new work; what is already queued is still written.
                    rx.close();
                }
                Op::FlushStats => flushes.push(job.reply),
                Op::DeleteEnv(ref id, _) => {
                    // Counts of a deleted environment are deleted with it.
                    pending.forget_env(id);
                    batch.push(job);
                }
                _ => batch.push(job),
            }
            if batch.len() < MAX_BATCH {
                next = rx.try_recv().ok();
            }
        }
        if !flushes.is_empty() {
            let r = flush_pending(&conn, pending);
            if let Err(e) = &r {
                tracing::error!(error = %e, "writing the identify stats failed; they stay counted in memory");
            }
            for reply in flushes.drain(..) {
                let _ = reply.send(match &r {
                    Ok(()) => Ok(Reply::Unit),
                    Err(e) => Err(StoreError::Unavailable(e.to_string())),
                });
            }
        }
        if !batch.is_empty() {
            let started = std::time::Instant::now();
            let size = batch.len();
            let queued = run_batch(&conn, &mut batch);
            let m = &*crate::metrics::METRICS;
            m.db_commit_seconds.observe(started.elapsed().as_secs_f64());
            m.db_batch_size.observe(size as f64);
            if queued {
                outbox.notify_one();
            }
        }
    }
    if let Err(e) = flush_pending(&conn, pending) {
        tracing::error!(error = %e, "writing the identify stats at close failed");
    }
    let _ = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
    if let Err((_, e)) = conn.close() {
        tracing::warn!(error = %e, "closing the SQLite database failed");
    }
    if let Some(reply) = closing {
        let _ = reply.send(Ok(Reply::Unit));
    }
}

/// Runs one statement (cached) and returns the number of rows it changed.
fn exec(conn: &Connection, sql: &str, p: impl Params) -> StoreResult<usize> {
    conn.prepare_cached(sql)
        .and_then(|mut s| s.execute(p))
        .map_err(db_err)
}

fn query_opt<T>(
    conn: &Connection,
    sql: &str,
    p: impl Params,
    f: impl FnOnce(&Row<'_>) -> StoreResult<T>,
) -> StoreResult<Option<T>> {
    let mut stmt = conn.prepare_cached(sql).map_err(db_err)?;
    let mut rows = stmt.query(p).map_err(db_err)?;
    match rows.next().map_err(db_err)? {
        Some(row) => f(row).map(Some),
        None => Ok(None),
    }
}

fn query_all<T>(
    conn: &Connection,
    sql: &str,
    p: impl Params,
    mut f: impl FnMut(&Row<'_>) -> StoreResult<T>,
) -> StoreResult<Vec<T>> {
    let mut stmt = conn.prepare_cached(sql).map_err(db_err)?;
    let mut rows = stmt.query(p).map_err(db_err)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(db_err)? {
        out.push(f(row)?);
    }
    Ok(out)
}

fn exists(conn: &Connection, sql: &str, p: impl Params) -> StoreResult<bool> {
    query_opt(conn, sql, p, |_| Ok(())).map(|r| r.is_some())
}

fn get<T: FromSql>(row: &Row<'_>, col: &str) -> StoreResult<T> {
    row.get(col).map_err(db_err)
}

/// Per-transaction state: webhook wake-up, stats counted in memory and
/// written once per transaction, and whether an environment has endpoints.
#[derive(Debug, Default)]
struct BatchCtx {
    queued: bool,
    stats: HashMap<(String, i64), [i64; 3]>,
    webhooks: HashMap<String, bool>,
}

impl BatchCtx {
    fn stat(&mut self, env_id: &str, at: Ts, outcome: Outcome) {
        add_stat(&mut self.stats, env_id, at, outcome);
    }

    fn has_webhooks(&mut self, conn: &Connection, env_id: &str) -> StoreResult<bool> {
        if let Some(v) = self.webhooks.get(env_id) {
            return Ok(*v);
        }
        let any = exists(
            conn,
            "SELECT 1 FROM webhook_endpoints WHERE env_id = ? LIMIT 1",
            [env_id],
        )?;
        self.webhooks.insert(env_id.to_string(), any);
        Ok(any)
    }

    fn flush(&mut self, conn: &Connection) -> StoreResult<()> {
        for ((env_id, minute), [v, u, r]) in self.stats.drain() {
            exec(
                conn,
                "INSERT INTO identify_stats (env_id, minute, verified, unverified, rejected) VALUES (?, ?, ?, ?, ?)
                 ON CONFLICT (env_id, minute) DO UPDATE SET verified = verified + excluded.verified,
                   unverified = unverified + excluded.unverified, rejected = rejected + excluded.rejected",
                params![env_id, minute, v, u, r],
            )?;
        }
        Ok(())
    }
}

/// Runs one batch in one transaction; true when it queued webhook deliveries.
///
/// Optimistic: the writes run back to back. If any of them fails, the whole
/// transaction is rolled back and each write is retried in a transaction of
/// its own, so one bad write never takes its neighbours down.
fn run_batch(conn: &Connection, batch: &mut Vec<Job>) -> bool {
    if batch.len() > 1 {
        match try_together(conn, batch) {
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
        let r = run_one(conn, &job.op);
        if let Ok((_, q)) = &r {
            queued |= q;
        }
        let _ = job.reply.send(r.map(|(reply, _)| reply));
    }
    queued
}

fn begin(conn: &Connection) -> StoreResult<()> {
    exec(conn, "BEGIN IMMEDIATE", []).map(|_| ())
}

fn commit(conn: &Connection) -> StoreResult<()> {
    exec(conn, "COMMIT", []).map(|_| ())
}

fn rollback(conn: &Connection) {
    if !conn.is_autocommit() {
        let _ = exec(conn, "ROLLBACK", []);
    }
}

/// All writes in one transaction; `None` when one failed (rolled back).
fn try_together(conn: &Connection, batch: &[Job]) -> StoreResult<Option<(Vec<Reply>, bool)>> {
    begin(conn)?;
    let mut ctx = BatchCtx::default();
    let mut results = Vec::with_capacity(batch.len());
    for job in batch {
        match apply(conn, &job.op, &mut ctx) {
            Ok(r) => results.push(r),
            Err(_) => {
                rollback(conn);
                return Ok(None);
            }
        }
    }
    if ctx.flush(conn).is_err() {
        rollback(conn);
        return Ok(None);
    }
    if let Err(e) = commit(conn) {
        tracing::error!(error = %e, "commit failed; the batch is answered with errors");
        rollback(conn);
        return Err(e);
    }
    Ok(Some((results, ctx.queued)))
}

fn run_one(conn: &Connection, op: &Op) -> StoreResult<(Reply, bool)> {
    begin(conn)?;
    let mut ctx = BatchCtx::default();
    let r = apply(conn, op, &mut ctx).and_then(|r| ctx.flush(conn).map(|()| r));
    match r {
        Ok(reply) => match commit(conn) {
            Ok(()) => Ok((reply, ctx.queued)),
            Err(e) => {
                tracing::error!(error = %e, "commit failed");
                rollback(conn);
                Err(StoreError::Unavailable(e.to_string()))
            }
        },
        Err(e) => {
            rollback(conn);
            Err(e)
        }
    }
}

fn to_json(v: &impl serde::Serialize) -> StoreResult<String> {
    serde_json::to_string(v).map_err(|e| StoreError::Internal(e.to_string()))
}

fn insert_audit(conn: &Connection, a: &NewAudit) -> StoreResult<()> {
    exec(
        conn,
        "INSERT INTO audit (id, env_id, kind, user_id, key_id, detail, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        params![
            vouch_core::keys::generate_id("aud"),
            a.env_id,
            a.kind,
            a.user_id,
            a.key_id,
            to_json(&a.detail)?,
            a.at
        ],
    )?;
    Ok(())
}

fn insert_env(conn: &Connection, env: &Environment) -> StoreResult<()> {
    exec(
        conn,
        "INSERT INTO environments (id, project_id, publishable_key, settings, unsigned_count, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        params![
            env.id,
            env.project_id,
            env.publishable_key,
            to_json(&env.settings)?,
            env.unsigned_count,
            env.created_at,
            env.updated_at
        ],
    )?;
    Ok(())
}

fn insert_secret(conn: &Connection, s: &SecretRecord) -> StoreResult<()> {
    exec(
        conn,
        "INSERT INTO secrets (id, env_id, ciphertext, imported, created_at, expires_at, revoked_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        params![
            s.id,
            s.env_id,
            s.ciphertext,
            s.imported,
            s.created_at,
            s.expires_at,
            s.revoked_at
        ],
    )?;
    Ok(())
}

fn insert_signing_key(conn: &Connection, k: &SigningKeyRecord) -> StoreResult<()> {
    exec(
        conn,
        "INSERT INTO signing_keys (kid, ciphertext, public_key, created_at, retired_at) VALUES (?, ?, ?, ?, ?)",
        params![
            k.kid,
            k.ciphertext,
            k.public_key,
            k.created_at,
            k.retired_at
        ],
    )?;
    Ok(())
}

fn apply(conn: &Connection, op: &Op, ctx: &mut BatchCtx) -> StoreResult<Reply> {
    match op {
        Op::PutMeta(k, v) => {
            exec(
                conn,
                "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                params![k, v],
            )?;
        }
        Op::Bootstrap(b) => {
            exec(
                conn,
                "INSERT INTO meta (key, value) VALUES ('master_key_check', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                [&b.master_key_check],
            )?;
            exec(
                conn,
                "INSERT INTO projects (id, name, created_at) VALUES (?, ?, ?)",
                params![b.project_id, b.project_name, b.now],
            )?;
            insert_env(conn, &b.environment)?;
            insert_secret(conn, &b.secret)?;
            insert_signing_key(conn, &b.signing_key)?;
            if let Some((id, hash)) = &b.admin_token {
                exec(
                    conn,
                    "INSERT OR IGNORE INTO admin_tokens (id, token_hash, created_at) VALUES (?, ?, ?)",
                    params![id, &hash[..], b.now],
                )?;
            }
        }
        Op::AddAdminToken(id, hash, now) => {
            exec(
                conn,
                "INSERT OR IGNORE INTO admin_tokens (id, token_hash, created_at) VALUES (?, ?, ?)",
                params![id, &hash[..], now],
            )?;
        }
        Op::CreateEnv(b) => {
            let (env, secret, audit) = &**b;
            insert_env(conn, env)?;
            insert_secret(conn, secret)?;
            insert_audit(conn, audit)?;
            ctx.queued |= enqueue_secret(conn, ctx, "secret.created", secret, audit.at)?;
        }
        Op::UpdateEnv(id, settings, now) => {
            let n = exec(
                conn,
                "UPDATE environments SET settings = ?, updated_at = ? WHERE id = ?",
                params![to_json(&**settings)?, now, id],
            )?;
            if n == 0 {
                return Err(StoreError::NotFound("environment"));
            }
        }
        Op::DeleteEnv(id, audit) => {
            for sql in [
                "DELETE FROM users WHERE env_id = ?",
                "DELETE FROM companies WHERE env_id = ?",
                "DELETE FROM memberships WHERE env_id = ?",
                "DELETE FROM events WHERE env_id = ?",
                "DELETE FROM secrets WHERE env_id = ?",
                "DELETE FROM identify_stats WHERE env_id = ?",
                "DELETE FROM used_jtis WHERE env_id = ?",
            ] {
                exec(conn, sql, [id])?;
            }
            if exec(conn, "DELETE FROM environments WHERE id = ?", [id])? == 0 {
                return Err(StoreError::NotFound("environment"));
            }
            insert_audit(conn, audit)?;
        }
        Op::InsertSecret(secret, expire_others_at, audit) => {
            if !exists(
                conn,
                "SELECT 1 FROM environments WHERE id = ?",
                [&secret.env_id],
            )? {
                return Err(StoreError::NotFound("environment"));
            }
            if let Some(at) = expire_others_at {
                exec(
                    conn,
                    "UPDATE secrets SET expires_at = ? WHERE env_id = ? AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ?)",
                    params![at, secret.env_id, at],
                )?;
            }
            insert_secret(conn, secret)?;
            insert_audit(conn, audit)?;
            ctx.queued |= enqueue_secret(conn, ctx, "secret.created", secret, audit.at)?;
        }
        Op::RevokeSecret(env_id, key_id, at, audit) => {
            exec(
                conn,
                "UPDATE secrets SET revoked_at = ? WHERE env_id = ? AND id = ? AND revoked_at IS NULL",
                params![at, env_id, key_id],
            )?;
            let record = query_opt(
                conn,
                "SELECT * FROM secrets WHERE env_id = ? AND id = ?",
                [env_id, key_id],
                secret_from_row,
            )?
            .ok_or(StoreError::NotFound("secret"))?;
            insert_audit(conn, audit)?;
            let kind = if audit.kind == "secret.exposed" {
                "secret.exposed"
            } else {
                "secret.revoked"
            };
            ctx.queued |= enqueue_secret(conn, ctx, kind, &record, *at)?;
            return Ok(Reply::Secret(record));
        }
        Op::RotateSigningKey(key, audit) => {
            exec(
                conn,
                "UPDATE signing_keys SET retired_at = ? WHERE retired_at IS NULL",
                [key.created_at],
            )?;
            insert_signing_key(conn, key)?;
            insert_audit(conn, audit)?;
        }
        Op::Identify(cmd) => return apply_identify_op(conn, cmd, ctx),
        Op::Group(cmd) => return apply_group_op(conn, cmd),
        Op::Track(ev) => {
            exec(
                conn,
                "INSERT INTO events (id, env_id, user_id, visitor_id, name, properties, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                params![
                    ev.id,
                    ev.env_id,
                    ev.user_id,
                    ev.visitor_id,
                    ev.name,
                    to_json(&ev.properties)?,
                    ev.created_at
                ],
            )?;
        }
        Op::Rejection(env_id, audit) => {
            ctx.stat(env_id, audit.at, Outcome::Rejected);
            insert_audit(conn, audit)?;
            let mut data = serde_json::json!({
                "environment_id": env_id,
                "user_id": audit.user_id,
            });
            if let (Value::Object(d), Value::Object(extra)) = (&mut data, &audit.detail) {
                d.extend(extra.clone());
            }
            ctx.queued |= enqueue(conn, ctx, env_id, "identity.rejected", data, audit.at)?;
        }
        Op::Audit(audit) => insert_audit(conn, audit)?,
        Op::CreateWebhook(w) => {
            ctx.webhooks.clear();
            exec(
                conn,
                "INSERT INTO webhook_endpoints (id, env_id, url, event_types, secrets, disabled_at, disabled_reason, created_at, updated_at) VALUES (?, ?, ?, ?, ?, NULL, NULL, ?, ?)",
                params![
                    w.id,
                    w.env_id,
                    w.url,
                    w.event_types.as_ref().map(to_json).transpose()?,
                    w.secrets,
                    w.created_at,
                    w.updated_at
                ],
            )?;
        }
        Op::DeleteWebhook(env_id, id) => {
            ctx.webhooks.clear();
            exec(
                conn,
                "DELETE FROM webhook_deliveries WHERE endpoint_id = (SELECT id FROM webhook_endpoints WHERE env_id = ? AND id = ?)",
                [env_id, id],
            )?;
            exec(
                conn,
                "DELETE FROM webhook_attempts WHERE endpoint_id = (SELECT id FROM webhook_endpoints WHERE env_id = ? AND id = ?)",
                [env_id, id],
            )?;
            if exec(
                conn,
                "DELETE FROM webhook_endpoints WHERE env_id = ? AND id = ?",
                [env_id, id],
            )? == 0
            {
                return Err(StoreError::NotFound("webhook endpoint"));
            }
        }
        Op::UpdateWebhookSecrets(env_id, id, secrets, now) => {
            let n = exec(
                conn,
                "UPDATE webhook_endpoints SET secrets = ?, updated_at = ? WHERE env_id = ? AND id = ?",
                params![secrets, now, env_id, id],
            )?;
            if n == 0 {
                return Err(StoreError::NotFound("webhook endpoint"));
            }
        }
        Op::EnableWebhook(env_id, id, audit) => {
            let n = exec(
                conn,
                "UPDATE webhook_endpoints SET disabled_at = NULL, disabled_reason = NULL, updated_at = ? WHERE env_id = ? AND id = ?",
                params![audit.at, env_id, id],
            )?;
            if n == 0 {
                return Err(StoreError::NotFound("webhook endpoint"));
            }
            insert_audit(conn, audit)?;
        }
        Op::ReplayWebhook(env_id, id, now_ms) => {
            if !exists(
                conn,
                "SELECT 1 FROM webhook_endpoints WHERE env_id = ? AND id = ?",
                [env_id, id],
            )? {
                return Err(StoreError::NotFound("webhook endpoint"));
            }
            let n = exec(
                conn,
                "UPDATE webhook_deliveries SET status = 'pending', attempts = 0, next_attempt_at = ?, updated_at = ? WHERE endpoint_id = ? AND status IN ('dead', 'held')",
                params![now_ms, now_ms / 1000, id],
            )?;
            ctx.queued |= n > 0;
            return Ok(Reply::Count(u64::try_from(n).unwrap_or(u64::MAX)));
        }
        Op::Claim(now_ms, limit, schedule) => return claim(conn, *now_ms, *limit, schedule),
        Op::RecordAttempt(o) => record_attempt(conn, o)?,
        Op::FlushStats | Op::Close => {}
    }
    Ok(Reply::Unit)
}

fn apply_identify_op(
    conn: &Connection,
    cmd: &IdentifyCommand,
    ctx: &mut BatchCtx,
) -> StoreResult<Reply> {
    if let Some((jti, _)) = &cmd.jti
        && exists(
            conn,
            "SELECT 1 FROM used_jtis WHERE env_id = ? AND jti = ? AND expires_at > ?",
            params![cmd.env_id, jti, cmd.now],
        )?
    {
        return Ok(Reply::Identify(Err(IdentifyRejection::TokenReplayed)));
    }
    // Only an unproven identify can touch the unsigned cap.
    let unsigned_count: i64 = if cmd.proof.is_none() {
        query_opt(
            conn,
            "SELECT unsigned_count FROM environments WHERE id = ?",
            [&cmd.env_id],
            |r| get(r, "unsigned_count"),
        )?
        .ok_or(StoreError::NotFound("environment"))?
    } else {
        0
    };
    let existing = user_row(conn, &cmd.env_id, &cmd.user_id)?;
    let outcome = match apply_identify(existing, cmd, unsigned_count) {
        Ok(o) => o,
        Err(rejection) => return Ok(Reply::Identify(Err(rejection))),
    };
    let u = &outcome.user;
    if outcome.write {
        exec(
            conn,
            "INSERT INTO users (env_id, id, verified, ever_verified, verified_by, key_id, verified_at, attributes, verified_attributes, counted_unsigned, created_at, updated_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
             ON CONFLICT (env_id, id) DO UPDATE SET verified = excluded.verified, ever_verified = excluded.ever_verified,
               verified_by = excluded.verified_by, key_id = excluded.key_id, verified_at = excluded.verified_at,
               attributes = excluded.attributes, verified_attributes = excluded.verified_attributes,
               counted_unsigned = excluded.counted_unsigned, updated_at = excluded.updated_at",
            params![
                u.env_id,
                u.id,
                u.verified,
                u.verified,
                u.verified_by.map(verified_by_str),
                u.key_id,
                u.verified_at,
                to_json(&u.attributes)?,
                to_json(&u.verified_attributes)?,
                u.counted_unsigned,
                u.created_at,
                u.updated_at
            ],
        )?;
    }
    if outcome.counted_unsigned {
        exec(
            conn,
            "UPDATE environments SET unsigned_count = unsigned_count + 1 WHERE id = ?",
            [&cmd.env_id],
        )?;
    }
    if let Some((jti, until)) = &cmd.jti {
        exec(
            conn,
            "INSERT INTO used_jtis (env_id, jti, expires_at) VALUES (?, ?, ?) ON CONFLICT (env_id, jti) DO UPDATE SET expires_at = excluded.expires_at",
            params![cmd.env_id, jti, until],
        )?;
    }
    ctx.stat(&cmd.env_id, cmd.now, identify_stat(cmd));
    if (outcome.created || outcome.changed) && ctx.has_webhooks(conn, &cmd.env_id)? {
        let kind = if outcome.created {
            "user.created"
        } else {
            "user.updated"
        };
        let companies = companies_of(conn, &cmd.env_id, &cmd.user_id)?;
        let data = serde_json::to_value(crate::api::UserOut::new(u, &companies))
            .map_err(|e| StoreError::Internal(e.to_string()))?;
        ctx.queued |= enqueue(conn, ctx, &cmd.env_id, kind, data, cmd.now)?;
    }
    Ok(Reply::Identify(Ok(outcome)))
}

fn user_row(conn: &Connection, env_id: &str, user_id: &str) -> StoreResult<Option<UserRecord>> {
    query_opt(
        conn,
        "SELECT * FROM users WHERE env_id = ? AND id = ?",
        [env_id, user_id],
        user_from_row,
    )
}

/// How an accepted identify counts in the coverage stats.
fn identify_stat(cmd: &IdentifyCommand) -> Outcome {
    if cmd.proof.is_some() {
        Outcome::Verified
    } else {
        Outcome::Unverified
    }
}

fn apply_group_op(conn: &Connection, cmd: &GroupCommand) -> StoreResult<Reply> {
    let existing = query_opt(
        conn,
        "SELECT * FROM companies WHERE env_id = ? AND id = ?",
        [&cmd.env_id, &cmd.company_id],
        company_from_row,
    )?;
    let company = match apply_group(existing, cmd) {
        Ok(c) => c,
        Err(rejection) => return Ok(Reply::Group(Err(rejection))),
    };
    exec(
        conn,
        "INSERT INTO companies (env_id, id, verified, key_id, verified_at, attributes, created_at, updated_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (env_id, id) DO UPDATE SET verified = excluded.verified, key_id = excluded.key_id,
           verified_at = excluded.verified_at, attributes = excluded.attributes, updated_at = excluded.updated_at",
        params![
            company.env_id,
            company.id,
            company.verified,
            company.key_id,
            company.verified_at,
            to_json(&company.attributes)?,
            company.created_at,
            company.updated_at
        ],
    )?;
    exec(
        conn,
        "INSERT OR IGNORE INTO memberships (env_id, user_id, company_id, created_at) VALUES (?, ?, ?, ?)",
        params![cmd.env_id, cmd.user_id, cmd.company_id, cmd.now],
    )?;
    Ok(Reply::Group(Ok(company)))
}

fn verified_by_str(v: VerifiedBy) -> &'static str {
    match v {
        VerifiedBy::Signature => "signature",
        VerifiedBy::Token => "token",
    }
}

fn json_map(text: &str) -> StoreResult<Map<String, Value>> {
    serde_json::from_str(text).map_err(json_err)
}

fn env_from_row(row: &Row<'_>) -> StoreResult<Environment> {
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

fn secret_from_row(row: &Row<'_>) -> StoreResult<SecretRecord> {
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

fn user_from_row(row: &Row<'_>) -> StoreResult<UserRecord> {
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

fn company_from_row(row: &Row<'_>) -> StoreResult<CompanyRecord> {
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

fn event_from_row(row: &Row<'_>) -> StoreResult<EventRecord> {
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

fn audit_from_row(row: &Row<'_>) -> StoreResult<AuditRecord> {
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

fn signing_key_from_row(row: &Row<'_>) -> StoreResult<SigningKeyRecord> {
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
        self.read_now(|c| exists(c, "SELECT 1", []).map(|_| ()))
    }

    async fn close(&self) {
        let _ = self.submit(Op::Close).await;
        let handle = self.writer.lock().ok().and_then(|mut h| h.take());
        if let Some(handle) = handle {
            let _ = tokio::task::spawn_blocking(move || handle.join()).await;
        }
        self.readers.close_idle();
    }

    async fn get_meta(&self, key: &str) -> StoreResult<Option<String>> {
        self.read_now(|c| {
            query_opt(c, "SELECT value FROM meta WHERE key = ?", [key], |r| {
                get(r, "value")
            })
        })
    }

    async fn put_meta(&self, key: &str, value: &str) -> StoreResult<()> {
        self.submit_unit(Op::PutMeta(key.into(), value.into()))
            .await
    }

    async fn is_empty(&self) -> StoreResult<bool> {
        self.read_now(|c| exists(c, "SELECT 1 FROM projects LIMIT 1", []).map(|any| !any))
    }

    async fn bootstrap(&self, b: Bootstrap) -> StoreResult<()> {
        self.submit_unit(Op::Bootstrap(Box::new(b))).await
    }

    async fn default_project(&self) -> StoreResult<Option<String>> {
        self.read_now(|c| {
            query_opt(
                c,
                "SELECT id FROM projects ORDER BY created_at, id LIMIT 1",
                [],
                |r| get(r, "id"),
            )
        })
    }

    async fn add_admin_token(&self, id: &str, hash: [u8; 32], now: Ts) -> StoreResult<()> {
        self.submit_unit(Op::AddAdminToken(id.into(), hash, now))
            .await
    }

    async fn admin_token_exists(&self, hash: [u8; 32]) -> StoreResult<bool> {
        self.read_now(|c| {
            exists(
                c,
                "SELECT 1 FROM admin_tokens WHERE token_hash = ?",
                [&hash[..]],
            )
        })
    }

    async fn list_environments(&self) -> StoreResult<Vec<Environment>> {
        self.read(|c| {
            query_all(
                c,
                "SELECT * FROM environments ORDER BY created_at, id",
                [],
                env_from_row,
            )
        })
        .await
    }

    async fn get_environment(&self, id: &str) -> StoreResult<Option<Environment>> {
        self.read_now(|c| {
            query_opt(
                c,
                "SELECT * FROM environments WHERE id = ?",
                [id],
                env_from_row,
            )
        })
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
        self.read(|c| {
            query_all(
                c,
                "SELECT * FROM secrets ORDER BY created_at, id",
                [],
                secret_from_row,
            )
        })
        .await
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
        self.read(|c| {
            query_all(
                c,
                "SELECT * FROM signing_keys ORDER BY created_at, kid",
                [],
                signing_key_from_row,
            )
        })
        .await
    }

    async fn rotate_signing_key(&self, key: SigningKeyRecord, audit: NewAudit) -> StoreResult<()> {
        self.submit_unit(Op::RotateSigningKey(Box::new(key), audit))
            .await
    }

    async fn identify(
        &self,
        cmd: IdentifyCommand,
    ) -> StoreResult<Result<IdentifyOutcome, IdentifyRejection>> {
        // Most identifies are the same user again with the same attributes:
        // decided on a read connection, they write nothing and skip the queue.
        // Anything else (a new user, a change, a stale `verified_at`, the
        // unsigned cap, a token `jti` to record, a rejection) goes to the writer,
        // which decides again inside its transaction.
        if cmd.jti.is_none() {
            let existing = self.read_now(|c| user_row(c, &cmd.env_id, &cmd.user_id))?;
            if let Some(user) = existing
                && let Ok(outcome) = apply_identify(Some(user), &cmd, 0)
                && !outcome.write
            {
                self.pending.add(&cmd.env_id, cmd.now, identify_stat(&cmd));
                return Ok(Ok(outcome));
            }
        }
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
        self.read_now(|c| user_row(c, env_id, user_id))
    }

    async fn user_companies(&self, env_id: &str, user_id: &str) -> StoreResult<Vec<CompanyRecord>> {
        self.read_now(|c| companies_of(c, env_id, user_id))
    }

    async fn list_users(
        &self,
        env_id: &str,
        verified: Option<bool>,
        after: Option<&str>,
        limit: u32,
    ) -> StoreResult<Page<UserRecord>> {
        let limit = page_limit(limit);
        let (env_id, after) = (env_id.to_string(), after.map(str::to_string));
        let data = self
            .read(move |c| {
                query_all(
                    c,
                    "SELECT * FROM users WHERE env_id = ?1 AND (?2 IS NULL OR verified = ?2) AND (?3 IS NULL OR id > ?3) ORDER BY id LIMIT ?4",
                    params![env_id, verified, after, i64::from(limit) + 1],
                    user_from_row,
                )
            })
            .await?;
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
        let (env_id, user_id) = (env_id.to_string(), user_id.map(str::to_string));
        let data = self
            .read(move |c| {
                query_all(
                    c,
                    "SELECT * FROM events WHERE env_id = ?1 AND (?2 IS NULL OR user_id = ?2) AND (?3 IS NULL OR seq < ?3) ORDER BY seq DESC LIMIT ?4",
                    params![env_id, user_id, before, i64::from(limit) + 1],
                    event_from_row,
                )
            })
            .await?;
        page(data, limit, |e| e.seq.to_string())
    }

    async fn list_audit(
        &self,
        env_id: &str,
        before: Option<i64>,
        limit: u32,
    ) -> StoreResult<Page<AuditRecord>> {
        let limit = page_limit(limit);
        let env_id = env_id.to_string();
        let data = self
            .read(move |c| {
                query_all(
                    c,
                    "SELECT * FROM audit WHERE env_id = ?1 AND (?2 IS NULL OR seq < ?2) ORDER BY seq DESC LIMIT ?3",
                    params![env_id, before, i64::from(limit) + 1],
                    audit_from_row,
                )
            })
            .await?;
        page(data, limit, |e| e.seq.to_string())
    }

    async fn coverage(&self, env_id: &str, since: Ts) -> StoreResult<Coverage> {
        // Counts still in memory are written first (queued behind any flush
        // already under way), so the sums are exact.
        self.submit_unit(Op::FlushStats).await?;
        let env_id = env_id.to_string();
        self.read(move |c| {
            query_opt(
                c,
                "SELECT COALESCE(SUM(verified), 0) AS v, COALESCE(SUM(unverified), 0) AS u, COALESCE(SUM(rejected), 0) AS r
                 FROM identify_stats WHERE env_id = ? AND minute >= ?",
                params![env_id, since.div_euclid(60)],
                |row| {
                    Ok(Coverage {
                        verified: get(row, "v")?,
                        unverified: get(row, "u")?,
                        rejected: get(row, "r")?,
                    })
                },
            )?
            .ok_or_else(|| StoreError::Internal("an aggregate returned no row".into()))
        })
        .await
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
        let env_id = env_id.to_string();
        self.read(move |c| {
            query_all(
                c,
                "SELECT * FROM webhook_endpoints WHERE env_id = ? ORDER BY created_at, id",
                [env_id],
                webhook_from_row,
            )
        })
        .await
    }

    async fn get_webhook(&self, env_id: &str, id: &str) -> StoreResult<Option<WebhookEndpoint>> {
        self.read_now(|c| {
            query_opt(
                c,
                "SELECT * FROM webhook_endpoints WHERE env_id = ? AND id = ?",
                [env_id, id],
                webhook_from_row,
            )
        })
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
        let (env_id, endpoint_id) = (env_id.to_string(), endpoint_id.to_string());
        let data = self
            .read(move |c| {
                query_all(
                    c,
                    "SELECT a.* FROM webhook_attempts a JOIN webhook_endpoints e ON e.id = a.endpoint_id
                     WHERE e.env_id = ?1 AND a.endpoint_id = ?2 AND (?3 IS NULL OR a.seq < ?3) ORDER BY a.seq DESC LIMIT ?4",
                    params![env_id, endpoint_id, before, i64::from(limit) + 1],
                    attempt_from_row,
                )
            })
            .await?;
        page(data, limit, |a| a.seq.to_string())
    }
}

fn companies_of(conn: &Connection, env_id: &str, user_id: &str) -> StoreResult<Vec<CompanyRecord>> {
    query_all(
        conn,
        "SELECT c.* FROM companies c JOIN memberships m ON m.env_id = c.env_id AND m.company_id = c.id
         WHERE m.env_id = ? AND m.user_id = ? ORDER BY c.id",
        [env_id, user_id],
        company_from_row,
    )
}

/// Writes a webhook message and one delivery per subscribed endpoint, in the
/// caller's transaction. Endpoints that are disabled get a held delivery, which
/// a replay sends. Returns whether anything is due now.
fn enqueue(
    conn: &Connection,
    ctx: &mut BatchCtx,
    env_id: &str,
    kind: &str,
    data: Value,
    at: Ts,
) -> StoreResult<bool> {
    if !ctx.has_webhooks(conn, env_id)? {
        return Ok(false);
    }
    let message_id = vouch_core::keys::generate_id("msg");
    let now_ms = at.saturating_mul(1000);
    let n = exec(
        conn,
        "INSERT INTO webhook_deliveries (id, message_id, endpoint_id, status, attempts, next_attempt_at, created_at, updated_at)
         SELECT ?1 || ':' || e.id, ?1, e.id, CASE WHEN e.disabled_at IS NULL THEN 'pending' ELSE 'held' END, 0, ?2, ?3, ?3
         FROM webhook_endpoints e
         WHERE e.env_id = ?4 AND (e.event_types IS NULL OR EXISTS (SELECT 1 FROM json_each(e.event_types) WHERE value = ?5))",
        params![message_id, now_ms, at, env_id, kind],
    )?;
    if n == 0 {
        return Ok(false);
    }
    let payload = serde_json::json!({
        "type": kind,
        "timestamp": crate::api::rfc3339(at),
        "data": data,
    });
    exec(
        conn,
        "INSERT INTO webhook_messages (id, env_id, type, payload, created_at) VALUES (?, ?, ?, ?, ?)",
        params![message_id, env_id, kind, to_json(&payload)?, at],
    )?;
    Ok(true)
}

fn enqueue_secret(
    conn: &Connection,
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
    enqueue(conn, ctx, &s.env_id, kind, data, at)
}

/// How long a claimed last attempt is left alone before it counts as cut
/// short by a crash; longer than any attempt takes.
pub(super) const FINAL_ATTEMPT_LEASE_MS: i64 = 15_000;

fn claim(conn: &Connection, now_ms: i64, limit: u32, schedule: &[i64]) -> StoreResult<Reply> {
    let due = query_all(
        conn,
        "SELECT d.id AS delivery_id, d.message_id, d.endpoint_id, d.attempts, e.env_id, e.url, e.secrets, m.payload, m.created_at AS message_created_at
         FROM webhook_deliveries d
         JOIN webhook_endpoints e ON e.id = d.endpoint_id
         JOIN webhook_messages m ON m.id = d.message_id
         WHERE d.status = 'pending' AND d.next_attempt_at <= ? AND e.disabled_at IS NULL
         ORDER BY d.next_attempt_at LIMIT ?",
        params![now_ms, i64::from(limit)],
        |row| {
            let attempts: i64 = get(row, "attempts")?;
            let next = usize::try_from(attempts)
                .ok()
                .and_then(|i| schedule.get(i))
                .map(|d| now_ms + d);
            Ok(ClaimedDelivery {
                delivery_id: get(row, "delivery_id")?,
                message_id: get(row, "message_id")?,
                endpoint_id: get(row, "endpoint_id")?,
                env_id: get(row, "env_id")?,
                url: get(row, "url")?,
                secrets: get(row, "secrets")?,
                payload: get(row, "payload")?,
                message_created_at: get(row, "message_created_at")?,
                attempt: attempts + 1,
                next_attempt_at: next,
            })
        },
    )?;
    for d in &due {
        // No retry left: a lease a little longer than one attempt (at most
        // 10 s, the dispatcher's timeout), so a last attempt cut short by a
        // crash is tried once more after the restart (then delivered, or dead
        // and the endpoint disabled) instead of staying pending forever.
        let next_at = d.next_attempt_at.unwrap_or(now_ms + FINAL_ATTEMPT_LEASE_MS);
        exec(
            conn,
            "UPDATE webhook_deliveries SET attempts = ?, next_attempt_at = ?, updated_at = ? WHERE id = ?",
            params![d.attempt, next_at, now_ms / 1000, d.delivery_id],
        )?;
    }
    Ok(Reply::Claimed(due))
}

fn record_attempt(conn: &Connection, o: &AttemptOutcome) -> StoreResult<()> {
    let d = &o.delivery;
    let next_retry = if o.success { None } else { d.next_attempt_at };
    exec(
        conn,
        "INSERT INTO webhook_attempts (delivery_id, endpoint_id, message_id, attempt, status_code, latency_ms, response, error, next_retry_at, created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        params![
            d.delivery_id,
            d.endpoint_id,
            d.message_id,
            d.attempt,
            o.status_code,
            o.latency_ms,
            o.response,
            o.error,
            next_retry,
            o.at_ms
        ],
    )?;
    let status = if o.success {
        "delivered"
    } else if d.next_attempt_at.is_none() {
        "dead"
    } else {
        "pending"
    };
    exec(
        conn,
        "UPDATE webhook_deliveries SET status = ?, updated_at = ? WHERE id = ?",
        params![status, o.at_ms / 1000, d.delivery_id],
    )?;
    if status == "dead" {
        let at = o.at_ms / 1000;
        let reason = format!(
            "Disabled after {} failed attempts to deliver {}; re-enable it and replay once the receiver works.",
            d.attempt, d.message_id
        );
        let n = exec(
            conn,
            "UPDATE webhook_endpoints SET disabled_at = ?1, disabled_reason = ?2, updated_at = ?1 WHERE id = ?3 AND disabled_at IS NULL",
            params![at, reason, d.endpoint_id],
        )?;
        // Everything else still queued for it waits for a replay.
        exec(
            conn,
            "UPDATE webhook_deliveries SET status = 'held' WHERE endpoint_id = ? AND status = 'pending'",
            [&d.endpoint_id],
        )?;
        if n > 0 {
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
            )?;
        }
    }
    Ok(())
}

fn webhook_from_row(row: &Row<'_>) -> StoreResult<WebhookEndpoint> {
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

fn attempt_from_row(row: &Row<'_>) -> StoreResult<AttemptRecord> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_urls_name_a_file() {
        assert_eq!(
            url_path("sqlite:/var/lib/vouch.db").unwrap(),
            PathBuf::from("/var/lib/vouch.db")
        );
        assert_eq!(
            url_path("sqlite://data/vouch.db?mode=rwc").unwrap(),
            PathBuf::from("data/vouch.db")
        );
        assert_eq!(
            url_path("sqlite:data.db").unwrap(),
            PathBuf::from("data.db")
        );
        assert!(url_path("sqlite::memory:").is_err());
        assert!(url_path("sqlite:").is_err());
    }

    #[test]
    fn the_read_pool_opens_at_most_its_limit_and_reuses_connections() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.db");
        drop(open_writer(&path).unwrap());
        let pool = Arc::new(ReaderPool::new(path).unwrap());
        let peak = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let threads: Vec<_> = (0..MAX_READERS * 2)
            .map(|_| {
                let (pool, peak) = (pool.clone(), peak.clone());
                std::thread::spawn(move || {
                    pool.with(|c| {
                        let open = pool.state.lock().unwrap().open;
                        peak.fetch_max(open, std::sync::atomic::Ordering::SeqCst);
                        std::thread::sleep(std::time::Duration::from_millis(20));
                        exists(c, "SELECT 1", [])
                    })
                    .unwrap()
                })
            })
            .collect();
        for t in threads {
            assert!(t.join().unwrap());
        }
        let peak = peak.load(std::sync::atomic::Ordering::SeqCst);
        assert!(peak > READERS && peak <= MAX_READERS, "peak {peak}");
        let state = pool.state.lock().unwrap();
        assert_eq!(state.idle.len(), READERS);
        assert_eq!(state.open, READERS);
    }

    #[test]
    fn duplicates_conflict_and_a_busy_file_is_unavailable() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE t (id TEXT PRIMARY KEY); INSERT INTO t VALUES ('a');")
            .unwrap();
        let dup = conn.execute("INSERT INTO t VALUES ('a')", []).unwrap_err();
        assert!(matches!(db_err(dup), StoreError::Conflict(_)));
        let busy = rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY),
            None,
        );
        assert!(matches!(db_err(busy), StoreError::Unavailable(_)));
        let syntax = conn.execute("NOT SQL", []).unwrap_err();
        assert!(matches!(db_err(syntax), StoreError::Internal(_)));
    }
}
