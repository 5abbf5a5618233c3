//! The adapter a store runs on, chosen at start-up: an enum rather than a
//! trait object, so that a read keeps its answer's type ([`Query::Out`])
//! all the way to the caller.
//!
//! PostgreSQL's futures (pool acquire, driver round trips) are large and
//! boxed, so that they do not grow every caller's future, which the HTTP
//! layers move and box on every request; SQLite's calls answer at once and
//! stay unboxed.

use std::sync::Arc;

use tokio::sync::{Notify, broadcast};

use super::StoreResult;
use super::ops::{Op, Reply};
use super::postgres::PgStore;
use super::reads::Query;
use super::sqlite::SqliteStore;
use crate::model::Ts;

#[derive(Debug)]
pub enum Db {
    Sqlite(SqliteStore),
    Postgres(PgStore),
}

impl From<SqliteStore> for Db {
    fn from(s: SqliteStore) -> Self {
        Db::Sqlite(s)
    }
}

impl From<PgStore> for Db {
    fn from(p: PgStore) -> Self {
        Db::Postgres(p)
    }
}

impl Db {
    /// "sqlite" or "postgres".
    pub fn name(&self) -> &'static str {
        match self {
            Db::Sqlite(_) => "sqlite",
            Db::Postgres(_) => "postgres",
        }
    }

    /// A point read, on the calling thread where the driver is synchronous.
    pub async fn read<Q: Query>(&self, q: &Q) -> StoreResult<Q::Out> {
        match self {
            Db::Sqlite(s) => s.read(q),
            Db::Postgres(p) => Box::pin(p.read(q)).await,
        }
    }

    /// A read that may go over many rows: off the request threads where the
    /// driver is synchronous.
    pub async fn scan<Q: Query + 'static>(&self, q: Q) -> StoreResult<Q::Out> {
        match self {
            Db::Sqlite(s) => s.scan(q).await,
            Db::Postgres(p) => Box::pin(p.read(&q)).await,
        }
    }

    /// Runs a write; answered only after its transaction committed.
    pub async fn write(&self, op: Op) -> StoreResult<Reply> {
        match self {
            Db::Sqlite(s) => s.write(op).await,
            Db::Postgres(p) => Box::pin(p.write(op)).await,
        }
    }

    /// Counts one failed verification for each key in the current one-minute
    /// window; returns each key's count including this one.
    pub async fn count_failures(&self, keys: &[String], now: Ts) -> StoreResult<Vec<u32>> {
        match self {
            Db::Sqlite(s) => Ok(s.count_failures(keys, now)),
            Db::Postgres(p) => Box::pin(p.count_failures(keys, now)).await,
        }
    }

    /// Finishes queued writes and closes (graceful shutdown).
    pub async fn close(&self) {
        match self {
            Db::Sqlite(s) => s.close().await,
            Db::Postgres(p) => p.close().await,
        }
    }

    /// Fires when another node changed environments, keys or tokens (None on a single node).
    pub fn changes(&self) -> Option<broadcast::Receiver<()>> {
        match self {
            Db::Sqlite(_) => None,
            Db::Postgres(p) => Some(p.changes()),
        }
    }

    /// Woken after a commit that queued webhook deliveries.
    pub fn outbox_notify(&self) -> Arc<Notify> {
        match self {
            Db::Sqlite(s) => s.outbox_notify(),
            Db::Postgres(p) => p.outbox_notify(),
        }
    }
}
