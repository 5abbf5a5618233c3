//! The shared adapter: PostgreSQL, for any number of Vouch nodes on one
//! database. Concurrent writes share transactions (`pg_writer`);
//! identifies and group calls of one user (company) are serialised across
//! nodes by a transaction-scoped advisory lock (`Tx::lock`).
//!
//! Nodes learn about each other's changes through `LISTEN/NOTIFY`: a write that
//! changes environments, secrets, signing keys or tokens sends `vouch_changes`
//! in its transaction; a write that queues webhook deliveries sends
//! `vouch_outbox`. The listener reconnects by itself and, after any reconnect,
//! signals a change so that every cache is rebuilt (a notification may have
//! been missed).

use std::collections::HashSet;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use sqlx::pool::PoolConnection;
use sqlx::postgres::{
    PgArguments, PgConnectOptions, PgConnection, PgListener, PgPool, PgPoolOptions, PgRow,
};
use sqlx::query::Query;
use sqlx::{Connection, Postgres, Row as _};
use tokio::sync::{Notify, broadcast};

use super::ops::{Op, Reply};
use super::pg_writer::Writers;
use super::reads;
use super::tx::{Channel, Dialect, Param, RowMap, Stmt, Tx};
use super::{StoreError, StoreResult};
use crate::model::Ts;

pub(super) const MIGRATIONS: &[&str] = &[
    include_str!("../../migrations/postgres/0001_init.sql"),
    include_str!("../../migrations/postgres/0002_webhooks.sql"),
    include_str!("../../migrations/postgres/0003_identity_model.sql"),
    include_str!("../../migrations/postgres/0004_erasure.sql"),
];
/// Channel of changes to environments, secrets, signing keys and tokens.
pub const CHANGES_CHANNEL: &str = "vouch_changes";
/// Channel of newly queued webhook deliveries.
pub const OUTBOX_CHANNEL: &str = "vouch_outbox";
/// Advisory lock key of the migrations ("vouch" in ASCII plus a number).
const MIGRATION_LOCK: i64 = 0x766f_7563_6801;
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
    writers: Writers,
}

pub(crate) fn db_err(e: sqlx::Error) -> StoreError {
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

/// One pooled connection as a [`Tx`]. A connection dropped inside a
/// transaction (a cancelled request) is closed, never handed back to the pool.
pub(super) struct Pg {
    conn: PoolConnection<Postgres>,
    in_tx: bool,
    /// Advisory locks this transaction holds already.
    held: HashSet<String>,
}

impl Pg {
    pub(super) fn new(conn: PoolConnection<Postgres>) -> Self {
        Self {
            conn,
            in_tx: false,
            held: HashSet::new(),
        }
    }
}

impl Drop for Pg {
    fn drop(&mut self) {
        if self.in_tx {
            self.conn.close_on_drop();
        }
    }
}

fn bind<'q>(
    q: Query<'q, Postgres, PgArguments>,
    p: &Param<'q>,
) -> Query<'q, Postgres, PgArguments> {
    match *p {
        Param::Text(s) => q.bind(s),
        Param::Int(n) => q.bind(n),
        Param::Bool(b) => q.bind(b),
        Param::Blob(b) => q.bind(b),
    }
}

fn prepared<'q>(sql: &'static str, params: &[Param<'q>]) -> Query<'q, Postgres, PgArguments> {
    round_trip();
    params.iter().fold(sqlx::query(sql), bind)
}

/// Counts one statement sent (`vouch_db_round_trips_total`).
fn round_trip() {
    crate::metrics::METRICS.db_round_trips.inc();
}

impl Pg {
    async fn raw(&mut self, sql: &'static str) -> StoreResult<()> {
        round_trip();
        sqlx::query(sql)
            .execute(&mut *self.conn)
            .await
            .map(|_| ())
            .map_err(db_err)
    }
}

impl Tx for Pg {
    const DIALECT: Dialect = Dialect::Postgres;

    async fn exec(&mut self, sql: &'static str, params: &[Param<'_>]) -> StoreResult<u64> {
        prepared(sql, params)
            .execute(&mut *self.conn)
            .await
            .map(|r| r.rows_affected())
            .map_err(db_err)
    }

    async fn fetch<T: Send>(&mut self, q: Stmt<'_>, map: RowMap<T>) -> StoreResult<Vec<T>> {
        let rows = prepared(q.sql, q.params)
            .fetch_all(&mut *self.conn)
            .await
            .map_err(db_err)?;
        rows.iter().map(|r| map(&PgRowRef(r))).collect()
    }

    async fn query_arrays<T: Send>(
        &mut self,
        sql: &'static str,
        arrays: &[Vec<&str>],
        map: RowMap<T>,
    ) -> StoreResult<Option<Vec<T>>> {
        round_trip();
        let rows = arrays
            .iter()
            .fold(sqlx::query(sql), |q, a| q.bind(a))
            .fetch_all(&mut *self.conn)
            .await
            .map_err(db_err)?;
        rows.iter()
            .map(|r| map(&PgRowRef(r)))
            .collect::<StoreResult<_>>()
            .map(Some)
    }

    async fn lock(&mut self, key: &str) -> StoreResult<()> {
        if self.held.contains(key) {
            return Ok(());
        }
        round_trip();
        sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
            .bind(key)
            .execute(&mut *self.conn)
            .await
            .map_err(db_err)?;
        self.held.insert(key.to_string());
        Ok(())
    }

    async fn try_lock_all(&mut self, keys: &[String]) -> StoreResult<Vec<String>> {
        let fresh: Vec<&str> = keys
            .iter()
            .filter(|k| !self.held.contains(k.as_str()))
            .map(String::as_str)
            .collect();
        if fresh.is_empty() {
            return Ok(Vec::new());
        }
        round_trip();
        let got: Vec<(String, bool)> = sqlx::query_as(
            "SELECT k, pg_try_advisory_xact_lock(hashtextextended(k, 0)) FROM unnest($1::TEXT[]) AS k",
        )
        .bind(&fresh)
        .fetch_all(&mut *self.conn)
        .await
        .map_err(db_err)?;
        let mut busy = Vec::new();
        for (key, taken) in got {
            if taken {
                self.held.insert(key);
            } else {
                busy.push(key);
            }
        }
        Ok(busy)
    }

    async fn notify(&mut self, channel: Channel) -> StoreResult<()> {
        let name = match channel {
            Channel::Changes => CHANGES_CHANNEL,
            Channel::Outbox => OUTBOX_CHANNEL,
        };
        round_trip();
        sqlx::query("SELECT pg_notify($1, '')")
            .bind(name)
            .execute(&mut *self.conn)
            .await
            .map(|_| ())
            .map_err(db_err)
    }

    async fn begin(&mut self) -> StoreResult<()> {
        self.in_tx = true;
        self.held.clear();
        self.raw("BEGIN").await
    }

    async fn commit(&mut self) -> StoreResult<()> {
        self.held.clear();
        self.raw("COMMIT").await?;
        self.in_tx = false;
        Ok(())
    }

    async fn rollback(&mut self) {
        self.held.clear();
        if self.raw("ROLLBACK").await.is_ok() {
            self.in_tx = false;
        }
    }
}

struct PgRowRef<'a>(&'a PgRow);

impl PgRowRef<'_> {
    fn get<'r, T: sqlx::Decode<'r, Postgres> + sqlx::Type<Postgres>>(
        &'r self,
        col: &str,
    ) -> StoreResult<T> {
        self.0.try_get(col).map_err(db_err)
    }
}

super::tx::row_by_get!(PgRowRef<'_>);

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
        let writers = Writers::start(&pool, &outbox);
        Ok(Self {
            writers,
            pool,
            outbox,
            changes,
            listener: std::sync::Mutex::new(Some(listener)),
            rate_writes: AtomicU64::new(0),
        })
    }

    async fn conn(&self) -> StoreResult<Pg> {
        Ok(Pg::new(self.pool.acquire().await.map_err(db_err)?))
    }

    /// The pool, for copying a store into this database.
    pub(crate) fn pool(&self) -> &PgPool {
        &self.pool
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
            .bind(crate::clock::now())
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

impl PgStore {
    pub(super) async fn read<Q: reads::Query>(&self, q: &Q) -> StoreResult<Q::Out> {
        q.run(&mut self.conn().await?).await
    }

    pub(super) async fn write(&self, op: Op) -> StoreResult<Reply> {
        self.writers.write(op).await
    }

    pub(super) async fn count_failures(&self, keys: &[String], now: Ts) -> StoreResult<Vec<u32>> {
        let window = crate::ratelimit::window_start(now);
        round_trip();
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "INSERT INTO rate_limits (key, window_start, failures) SELECT k, $1, 1 FROM unnest($2::TEXT[]) AS k
             ON CONFLICT (key, window_start) DO UPDATE SET failures = rate_limits.failures + 1
             RETURNING key, failures",
        )
        .bind(window)
        .bind(keys)
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        // Now and then, forget the windows that are over.
        if self
            .rate_writes
            .fetch_add(1, Ordering::Relaxed)
            .is_multiple_of(1024)
        {
            round_trip();
            sqlx::query("DELETE FROM rate_limits WHERE window_start < $1")
                .bind(window)
                .execute(&self.pool)
                .await
                .map_err(db_err)?;
        }
        Ok(keys
            .iter()
            .map(|k| {
                rows.iter()
                    .find(|(key, _)| key == k)
                    .map_or(0, |(_, n)| u32::try_from(*n).unwrap_or(u32::MAX))
            })
            .collect())
    }

    pub(super) async fn close(&self) {
        let handle = match self.listener.lock() {
            Ok(mut g) => g.take(),
            Err(p) => p.into_inner().take(),
        };
        if let Some(h) = handle {
            h.abort();
        }
        self.writers.close().await;
        self.pool.close().await;
    }

    pub(super) fn changes(&self) -> broadcast::Receiver<()> {
        self.changes.subscribe()
    }

    pub(super) fn outbox_notify(&self) -> Arc<Notify> {
        self.outbox.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
