//! Storage: one [`Store`] over two thin adapters (SQLite and PostgreSQL),
//! chosen from the database URL at start-up.
//!
//! What the store does is written once: the transaction scripts in [`ops`]
//! (reads, then a pure decision in [`script`], then [`write`]s) and the typed
//! reads in [`reads`], over the [`tx::Tx`] both adapters implement, with every
//! statement in [`sql`] and one mapper per record in [`rows`]. An adapter
//! ([`db::Db`]) only moves operations to a connection: SQLite's single writer
//! thread groups whatever is queued into one transaction; PostgreSQL's writer
//! tasks do the same over pooled connections and tell the other nodes about
//! changes.

mod batch;
pub mod copy;
pub mod db;
mod facade;
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
use ops::Op;
pub use ops::{BeforeCommit, Reseal};
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
