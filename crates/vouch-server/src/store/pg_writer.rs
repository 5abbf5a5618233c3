//! Group commit on PostgreSQL: a node's concurrent writes share transactions.
//!
//! Writes wait in one queue; a few writer tasks each take what is waiting (up
//! to [`MAX_BATCH`]) and run it as one transaction on one pooled connection
//! (`batch::run_batch`: the batch's advisory locks tried at once without
//! waiting, a write whose lock is busy elsewhere run alone afterwards; the
//! environment rows it may update locked in id order; one operation failing
//! reruns the others one by one). Every caller is answered after its
//! transaction commits, as before; a write whose caller has gone is not run.
//!
//! A slow or absent database never builds a pile: a write that waited in the
//! queue longer than a connection may take ([`STALE`]) is answered 503 without
//! being run, and a full queue answers 503 at once.

use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::PgPool;
use tokio::sync::{Mutex, Notify, Semaphore, mpsc, oneshot};
use tokio::task::JoinHandle;

use super::batch;
use super::ops::{Op, Reply};
use super::postgres::{Pg, db_err};
use super::{StoreError, StoreResult};

/// Transactions of one node that may run at the same time.
const WRITERS: usize = 4;
/// Writes in one transaction at most.
const MAX_BATCH: usize = 64;
/// Writes waiting at most; past it a write is answered 503 at once.
const QUEUE: usize = 4096;
/// A write that waited this long is answered 503, never run.
const STALE: Duration = Duration::from_secs(2);
/// Writes left out of a batch because their lock is busy elsewhere, waiting
/// for it at the same time (each on a connection of its own) at most.
const WAITING_ALONE: usize = 4;

struct Job {
    op: Op,
    reply: oneshot::Sender<StoreResult<Reply>>,
    queued: Instant,
}

#[derive(Debug)]
pub(super) struct Writers {
    jobs: std::sync::Mutex<Option<mpsc::Sender<Job>>>,
    tasks: std::sync::Mutex<Vec<JoinHandle<()>>>,
}

impl Writers {
    pub(super) fn start(pool: &PgPool, outbox: &Arc<Notify>) -> Self {
        let (tx, rx) = mpsc::channel(QUEUE);
        let rx = Arc::new(Mutex::new(rx));
        let alone = Arc::new(Semaphore::new(WAITING_ALONE));
        let tasks = (0..WRITERS)
            .map(|_| {
                let ctx = Ctx {
                    pool: pool.clone(),
                    outbox: outbox.clone(),
                    alone: alone.clone(),
                };
                tokio::spawn(writer(ctx, rx.clone()))
            })
            .collect();
        Self {
            jobs: std::sync::Mutex::new(Some(tx)),
            tasks: std::sync::Mutex::new(tasks),
        }
    }

    /// Queues `op` and answers once its transaction has committed.
    pub(super) async fn write(&self, op: Op) -> StoreResult<Reply> {
        let stopped = || StoreError::Unavailable("the writer has stopped".into());
        let jobs = match self.jobs.lock() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        }
        .ok_or_else(stopped)?;
        let (reply, answer) = oneshot::channel();
        let job = Job {
            op,
            reply,
            queued: Instant::now(),
        };
        jobs.try_send(job).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => {
                StoreError::Unavailable("too many writes are waiting for the database".into())
            }
            mpsc::error::TrySendError::Closed(_) => stopped(),
        })?;
        answer.await.map_err(|_| stopped())?
    }

    /// Takes no more writes, and waits for the queued ones to be answered.
    pub(super) async fn close(&self) {
        match self.jobs.lock() {
            Ok(mut g) => g.take(),
            Err(p) => p.into_inner().take(),
        };
        let tasks = match self.tasks.lock() {
            Ok(mut g) => std::mem::take(&mut *g),
            Err(p) => std::mem::take(&mut *p.into_inner()),
        };
        for t in tasks {
            let _ = t.await;
        }
    }
}

/// What a writer and the batches it starts share.
#[derive(Clone)]
struct Ctx {
    pool: PgPool,
    outbox: Arc<Notify>,
    /// Permits of [`WAITING_ALONE`].
    alone: Arc<Semaphore>,
}

async fn writer(ctx: Ctx, rx: Arc<Mutex<mpsc::Receiver<Job>>>) {
    loop {
        let mut ops: Vec<Op> = Vec::new();
        let mut replies = Vec::new();
        {
            let mut rx = rx.lock().await;
            let Some(first) = rx.recv().await else { break };
            let mut next = Some(first);
            while let Some(job) = next.take() {
                if job.reply.is_closed() {
                    // Its caller is gone (the request was cancelled): never run.
                } else if job.queued.elapsed() >= STALE {
                    let _ = job.reply.send(Err(StoreError::Unavailable(
                        "the database did not take this write in time".into(),
                    )));
                } else {
                    ops.push(job.op);
                    replies.push(job.reply);
                }
                if ops.len() < MAX_BATCH {
                    next = rx.try_recv().ok();
                }
            }
        }
        if ops.is_empty() {
            continue;
        }
        // A task per batch: a panic in it answers its callers 503 (their
        // replies are dropped) and this writer goes on.
        let batch = tokio::spawn(run(ctx.clone(), ops, replies));
        if let Err(e) = batch.await {
            tracing::error!(error = %e, "a PostgreSQL write batch stopped");
        }
    }
}

async fn run(ctx: Ctx, ops: Vec<Op>, replies: Vec<oneshot::Sender<StoreResult<Reply>>>) {
    let started = Instant::now();
    let size = ops.len();
    let results = match ctx.pool.acquire().await {
        Ok(conn) => {
            let (results, batch) = batch::run_shared(&mut Pg::new(conn), &ops).await;
            if batch.queued {
                ctx.outbox.notify_one();
            }
            results
        }
        Err(e) => {
            let e = unavailable(e);
            ops.iter()
                .map(|_| Some(Err(StoreError::Unavailable(e.clone()))))
                .collect()
        }
    };
    let m = &*crate::metrics::METRICS;
    m.db_commit_seconds.observe(started.elapsed().as_secs_f64());
    m.db_batch_size.observe(size as f64);
    for ((op, reply), r) in ops.into_iter().zip(replies).zip(results) {
        match r {
            Some(r) => {
                let _ = reply.send(r);
            }
            // Its lock is busy elsewhere: it waits on a connection of its
            // own, holding up no writer.
            None => {
                tokio::spawn(alone(ctx.clone(), op, reply));
            }
        }
    }
}

async fn alone(ctx: Ctx, op: Op, reply: oneshot::Sender<StoreResult<Reply>>) {
    // A few such writes wait at once; the rest wait here without a
    // connection, so a lock held long elsewhere never drains the pool.
    let Ok(Ok(_permit)) = tokio::time::timeout(STALE, ctx.alone.clone().acquire_owned()).await
    else {
        let _ = reply.send(Err(StoreError::Unavailable(
            "too many writes are waiting for the same users".into(),
        )));
        return;
    };
    let r = match ctx.pool.acquire().await {
        Ok(conn) => {
            let (r, batch) = batch::alone(&mut Pg::new(conn), &op).await;
            if batch.queued {
                ctx.outbox.notify_one();
            }
            r
        }
        Err(e) => Err(StoreError::Unavailable(unavailable(e))),
    };
    let _ = reply.send(r);
}

fn unavailable(e: sqlx::Error) -> String {
    match db_err(e) {
        StoreError::Unavailable(m) => m,
        other => other.to_string(),
    }
}
