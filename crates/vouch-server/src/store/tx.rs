//! What a database adapter implements: run one statement, read rows, lock a
//! key, notify other nodes. The transaction scripts in `ops` are written once,
//! generic over [`Tx`], and run unchanged on SQLite and PostgreSQL.
//!
//! SQLite answers every call at once (rusqlite is synchronous), so its futures
//! are always ready and its writer thread drives a whole script with a single
//! poll ([`poll_ready`]); PostgreSQL awaits each round trip.

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use super::{StoreError, StoreResult};

/// The SQL dialect of an adapter, for the few statements that differ.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

/// A statement parameter. Each carries its SQL type even when NULL: PostgreSQL
/// refuses a text NULL for a BIGINT column.
#[derive(Clone, Copy, Debug)]
pub enum Param<'a> {
    Text(Option<&'a str>),
    Int(Option<i64>),
    Bool(bool),
    Blob(Option<&'a [u8]>),
}

impl<'a> From<&'a str> for Param<'a> {
    fn from(s: &'a str) -> Self {
        Param::Text(Some(s))
    }
}

impl<'a> From<&'a String> for Param<'a> {
    fn from(s: &'a String) -> Self {
        Param::Text(Some(s))
    }
}

impl<'a> From<Option<&'a str>> for Param<'a> {
    fn from(s: Option<&'a str>) -> Self {
        Param::Text(s)
    }
}

impl<'a> From<&'a Option<String>> for Param<'a> {
    fn from(s: &'a Option<String>) -> Self {
        Param::Text(s.as_deref())
    }
}

impl From<i64> for Param<'_> {
    fn from(n: i64) -> Self {
        Param::Int(Some(n))
    }
}

impl From<Option<i64>> for Param<'_> {
    fn from(n: Option<i64>) -> Self {
        Param::Int(n)
    }
}

impl From<bool> for Param<'_> {
    fn from(b: bool) -> Self {
        Param::Bool(b)
    }
}

impl<'a> From<&'a [u8]> for Param<'a> {
    fn from(b: &'a [u8]) -> Self {
        Param::Blob(Some(b))
    }
}

impl<'a> From<&'a Vec<u8>> for Param<'a> {
    fn from(b: &'a Vec<u8>) -> Self {
        Param::Blob(Some(b))
    }
}

/// A statement and its parameters.
#[derive(Clone, Copy, Debug)]
pub struct Stmt<'a> {
    pub sql: &'static str,
    pub params: &'a [Param<'a>],
}

/// One record from one row (the mappers in `rows`).
pub type RowMap<T> = fn(&dyn Row) -> StoreResult<T>;

/// A result row, by column name; both drivers implement it.
pub trait Row {
    fn text(&self, col: &str) -> StoreResult<String>;
    fn opt_text(&self, col: &str) -> StoreResult<Option<String>>;
    fn int(&self, col: &str) -> StoreResult<i64>;
    fn opt_int(&self, col: &str) -> StoreResult<Option<i64>>;
    fn boolean(&self, col: &str) -> StoreResult<bool>;
    fn blob(&self, col: &str) -> StoreResult<Vec<u8>>;
}

/// Implements [`Row`] for a driver's row wrapper whose `get::<T>(col)`
/// decodes any column type the mappers ask for.
macro_rules! row_by_get {
    ($row:ty) => {
        impl $crate::store::tx::Row for $row {
            fn text(&self, col: &str) -> StoreResult<String> {
                self.get(col)
            }
            fn opt_text(&self, col: &str) -> StoreResult<Option<String>> {
                self.get(col)
            }
            fn int(&self, col: &str) -> StoreResult<i64> {
                self.get(col)
            }
            fn opt_int(&self, col: &str) -> StoreResult<Option<i64>> {
                self.get(col)
            }
            fn boolean(&self, col: &str) -> StoreResult<bool> {
                self.get(col)
            }
            fn blob(&self, col: &str) -> StoreResult<Vec<u8>> {
                self.get(col)
            }
        }
    };
}
pub(crate) use row_by_get;

/// Channels other nodes listen on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Channel {
    /// Environments, secrets, signing keys, admin tokens, tombstones changed.
    Changes,
    /// Webhook deliveries were queued.
    Outbox,
}

/// One connection, inside a transaction or not.
pub trait Tx: Send {
    const DIALECT: Dialect;

    /// Runs a statement; the number of rows it changed.
    fn exec(
        &mut self,
        sql: &'static str,
        params: &[Param<'_>],
    ) -> impl Future<Output = StoreResult<u64>> + Send;

    /// Runs a query and maps every row.
    fn fetch<T: Send>(
        &mut self,
        stmt: Stmt<'_>,
        map: RowMap<T>,
    ) -> impl Future<Output = StoreResult<Vec<T>>> + Send;

    /// [`Tx::fetch`] with the statement's parts.
    fn query<T: Send>(
        &mut self,
        sql: &'static str,
        params: &[Param<'_>],
        map: RowMap<T>,
    ) -> impl Future<Output = StoreResult<Vec<T>>> + Send {
        self.fetch(Stmt { sql, params }, map)
    }

    /// Runs a query whose parameters are text arrays (`$N::TEXT[]`), one
    /// statement for many keys where each statement is a round trip; `None`
    /// (the default) where the dialect has no arrays and reading one by one
    /// costs nothing.
    fn query_arrays<T: Send>(
        &mut self,
        sql: &'static str,
        arrays: &[Vec<&str>],
        map: RowMap<T>,
    ) -> impl Future<Output = StoreResult<Option<Vec<T>>>> + Send {
        let _ = (sql, arrays, map);
        std::future::ready(Ok(None))
    }

    /// Serialises transactions on `key` across nodes until commit (by
    /// default a no-op: one writer owns the database).
    fn lock(&mut self, key: &str) -> impl Future<Output = StoreResult<()>> + Send {
        let _ = key;
        std::future::ready(Ok(()))
    }

    /// Tries the locks of many keys at once, without waiting; answers the
    /// keys another transaction holds (by default none: one writer owns the
    /// database). Never waiting, a batch cannot deadlock on these locks, and
    /// one busy key never holds up the rest of a batch.
    fn try_lock_all(
        &mut self,
        keys: &[String],
    ) -> impl Future<Output = StoreResult<Vec<String>>> + Send {
        let _ = keys;
        std::future::ready(Ok(Vec::new()))
    }

    /// Tells the other nodes at commit (by default a no-op: a single node).
    fn notify(&mut self, channel: Channel) -> impl Future<Output = StoreResult<()>> + Send {
        let _ = channel;
        std::future::ready(Ok(()))
    }

    fn begin(&mut self) -> impl Future<Output = StoreResult<()>> + Send;
    fn commit(&mut self) -> impl Future<Output = StoreResult<()>> + Send;
    fn rollback(&mut self) -> impl Future<Output = ()> + Send;
}

/// Runs the first row of a query, if any.
pub async fn query_one<T: Tx, R: Send>(
    tx: &mut T,
    sql: &'static str,
    params: &[Param<'_>],
    map: RowMap<R>,
) -> StoreResult<Option<R>> {
    Ok(tx.query(sql, params, map).await?.into_iter().next())
}

/// Drives a future that never waits, such as any script over SQLite's [`Tx`].
pub fn poll_ready<F: Future>(f: F) -> StoreResult<F::Output> {
    let mut f = pin!(f);
    match f.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(out) => Ok(out),
        Poll::Pending => Err(StoreError::Internal(
            "a store script waited on a connection that answers at once".into(),
        )),
    }
}
