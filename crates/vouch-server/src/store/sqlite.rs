//! The embedded adapter: SQLite in WAL mode with `synchronous = FULL`, so every
//! acknowledged write is on disk.
//!
//! All writes go through one writer thread that owns the only read-write
//! connection and runs whatever is queued as one batch (`batch::run_batch`:
//! group commit, a failing write retried alone). A request is answered only
//! after the transaction holding its write has committed.
//!
//! SQLite is called synchronously (rusqlite), so every [`Tx`] call is ready at
//! once and a whole script is driven by one poll ([`poll_ready`]). Point reads
//! run on the calling thread with a pooled read-only connection; reads that
//! scan (lists, sums) run on the blocking pool.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{Connection, ErrorCode, OpenFlags};
use tokio::sync::{Notify, mpsc, oneshot};

use super::batch;
use super::ops::{Op, Reply};
use super::reads::Query;
use super::tx::{Dialect, Param, RowMap, Stmt, Tx, poll_ready};
use super::{StoreError, StoreResult};
use crate::model::Ts;

pub(super) const MIGRATIONS: &[&str] = &[
    include_str!("../../migrations/sqlite/0001_init.sql"),
    include_str!("../../migrations/sqlite/0002_webhooks.sql"),
    include_str!("../../migrations/sqlite/0003_identity_model.sql"),
    include_str!("../../migrations/sqlite/0004_erasure.sql"),
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
}

/// One connection as a [`Tx`]: every call answers at once.
struct Sqlite<'c>(&'c mut Connection);

fn bind<'a>(p: &'a Param<'a>) -> ToSqlOutput<'a> {
    ToSqlOutput::Borrowed(match *p {
        Param::Text(Some(s)) => ValueRef::Text(s.as_bytes()),
        Param::Int(Some(n)) => ValueRef::Integer(n),
        Param::Bool(b) => ValueRef::Integer(i64::from(b)),
        Param::Blob(Some(b)) => ValueRef::Blob(b),
        Param::Text(None) | Param::Int(None) | Param::Blob(None) => ValueRef::Null,
    })
}

struct Bound<'a>(&'a Param<'a>);

impl rusqlite::ToSql for Bound<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(bind(self.0))
    }
}

impl Sqlite<'_> {
    fn run(&self, sql: &str, params: &[Param<'_>]) -> StoreResult<u64> {
        let mut stmt = self.0.prepare_cached(sql).map_err(db_err)?;
        let n = stmt
            .execute(rusqlite::params_from_iter(params.iter().map(Bound)))
            .map_err(db_err)?;
        Ok(u64::try_from(n).unwrap_or(u64::MAX))
    }

    fn rows<T>(&self, sql: &str, params: &[Param<'_>], map: RowMap<T>) -> StoreResult<Vec<T>> {
        let mut stmt = self.0.prepare_cached(sql).map_err(db_err)?;
        let mut rows = stmt
            .query(rusqlite::params_from_iter(params.iter().map(Bound)))
            .map_err(db_err)?;
        let mut out = Vec::new();
        while let Some(row) = rows.next().map_err(db_err)? {
            out.push(map(&SqliteRow(row))?);
        }
        Ok(out)
    }
}

impl Tx for Sqlite<'_> {
    const DIALECT: Dialect = Dialect::Sqlite;

    async fn exec(&mut self, sql: &'static str, params: &[Param<'_>]) -> StoreResult<u64> {
        self.run(sql, params)
    }

    async fn fetch<T: Send>(&mut self, q: Stmt<'_>, map: RowMap<T>) -> StoreResult<Vec<T>> {
        self.rows(q.sql, q.params, map)
    }

    async fn begin(&mut self) -> StoreResult<()> {
        self.run("BEGIN IMMEDIATE", &[]).map(|_| ())
    }

    async fn commit(&mut self) -> StoreResult<()> {
        self.run("COMMIT", &[]).map(|_| ())
    }

    async fn rollback(&mut self) {
        if !self.0.is_autocommit() {
            let _ = self.run("ROLLBACK", &[]);
        }
    }
}

struct SqliteRow<'a, 'b>(&'a rusqlite::Row<'b>);

impl SqliteRow<'_, '_> {
    fn get<T: rusqlite::types::FromSql>(&self, col: &str) -> StoreResult<T> {
        self.0.get(col).map_err(db_err)
    }
}

super::tx::row_by_get!(SqliteRow<'_, '_>);

fn script<T>(r: StoreResult<StoreResult<T>>) -> StoreResult<T> {
    r.and_then(|r| r)
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

    fn with<T>(&self, f: impl FnOnce(&mut Connection) -> StoreResult<T>) -> StoreResult<T> {
        let mut conn = self.take()?;
        let r = f(&mut conn);
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
    // secure_delete: an erased user's bytes are zeroed in the file instead of
    // lingering in free pages until VACUUM; the identify path writes the same
    // pages either way (bench/RESULTS.md, "SQLite secure_delete").
    conn.execute_batch(
        "PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; PRAGMA secure_delete = ON;",
    )?;
    conn.set_prepared_statement_cache_capacity(64);
    migrate(&mut conn)?;
    Ok(conn)
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

#[derive(Debug)]
enum Job {
    Write(Box<Op>, oneshot::Sender<StoreResult<Reply>>),
    Close(oneshot::Sender<()>),
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

/// The database file of a data directory.
pub const DB_FILE: &str = "vouch.db";

impl SqliteStore {
    /// SQLite in `dir/vouch.db`, creating the directory if missing.
    pub async fn open_dir(dir: &Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir).map_err(|e| {
            anyhow::anyhow!("cannot create the data directory {}: {e}", dir.display())
        })?;
        Self::open_path(dir.join(DB_FILE)).await
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
        let handle = std::thread::Builder::new()
            .name("vouch-sqlite-writer".into())
            .spawn(move || writer_loop(conn, rx, &wake))?;
        Ok(Self {
            readers,
            jobs: tx,
            writer: std::sync::Mutex::new(Some(handle)),
            outbox,
            limiter: crate::ratelimit::RateLimiter::default(),
        })
    }
}

fn writer_loop(mut conn: Connection, mut rx: mpsc::Receiver<Job>, outbox: &Notify) {
    let mut ops: Vec<Op> = Vec::with_capacity(MAX_BATCH);
    let mut replies: Vec<oneshot::Sender<StoreResult<Reply>>> = Vec::with_capacity(MAX_BATCH);
    let mut closing: Option<oneshot::Sender<()>> = None;
    while let Some(job) = rx.blocking_recv() {
        let mut next = Some(job);
        while let Some(job) = next.take() {
            match job {
                Job::Close(reply) => {
                    closing = Some(reply);
                    // Refuse new work; what is already queued is still written.
                    rx.close();
                }
                Job::Write(op, reply) => {
                    ops.push(*op);
                    replies.push(reply);
                }
            }
            if ops.len() < MAX_BATCH {
                next = rx.try_recv().ok();
            }
        }
        if ops.is_empty() {
            continue;
        }
        let started = std::time::Instant::now();
        let size = ops.len();
        let done = poll_ready(batch::run_batch(&mut Sqlite(&mut conn), &ops));
        let m = &*crate::metrics::METRICS;
        m.db_commit_seconds.observe(started.elapsed().as_secs_f64());
        m.db_batch_size.observe(size as f64);
        ops.clear();
        match done {
            Ok((results, batch)) => {
                for (reply, r) in replies.drain(..).zip(results) {
                    let _ = reply.send(r);
                }
                if batch.queued {
                    outbox.notify_one();
                }
            }
            Err(e) => {
                for reply in replies.drain(..) {
                    let _ = reply.send(Err(StoreError::Internal(e.to_string())));
                }
            }
        }
    }
    let _ = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
    if let Err((_, e)) = conn.close() {
        tracing::warn!(error = %e, "closing the SQLite database failed");
    }
    if let Some(reply) = closing {
        let _ = reply.send(());
    }
}

impl SqliteStore {
    pub(super) fn read<Q: Query>(&self, q: &Q) -> StoreResult<Q::Out> {
        self.readers
            .with(|c| script(poll_ready(q.run(&mut Sqlite(c)))))
    }

    pub(super) async fn scan<Q: Query + 'static>(&self, q: Q) -> StoreResult<Q::Out> {
        let pool = self.readers.clone();
        tokio::task::spawn_blocking(move || {
            pool.with(|c| script(poll_ready(q.run(&mut Sqlite(c)))))
        })
        .await
        .map_err(|e| StoreError::Internal(format!("a read stopped: {e}")))?
    }

    pub(super) async fn write(&self, op: Op) -> StoreResult<Reply> {
        let (reply, rx) = oneshot::channel();
        self.jobs
            .send(Job::Write(Box::new(op), reply))
            .await
            .map_err(|_| StoreError::Unavailable("the writer has stopped".into()))?;
        rx.await
            .map_err(|_| StoreError::Unavailable("the writer has stopped".into()))?
    }

    pub(super) fn count_failures(&self, keys: &[String], now: Ts) -> Vec<u32> {
        keys.iter().map(|k| self.limiter.fail(k, now)).collect()
    }

    pub(super) async fn close(&self) {
        let (reply, done) = oneshot::channel();
        if self.jobs.send(Job::Close(reply)).await.is_ok() {
            let _ = done.await;
        }
        let handle = self.writer.lock().ok().and_then(|mut h| h.take());
        if let Some(handle) = handle {
            let _ = tokio::task::spawn_blocking(move || handle.join()).await;
        }
        self.readers.close_idle();
    }

    pub(super) fn outbox_notify(&self) -> Arc<Notify> {
        self.outbox.clone()
    }
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
                        c.query_row("SELECT 1", [], |_| Ok(true)).map_err(db_err)
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
