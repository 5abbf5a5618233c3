//! Running operations: a batch of [`Op`]s in one transaction where their
//! locks are free and none fails, each alone otherwise. What each operation
//! does is in [`super::ops::apply`]; this is how they share a commit.

use std::collections::HashMap;

use super::ops::{Op, Reply, apply};
use super::rows;
use super::script::{self, Subscriber};
use super::sql;
use super::tx::{Channel, Tx, query_one};
use super::write::Write;
use super::{StoreError, StoreResult};
use crate::events::Event;
use crate::model::*;
/// What a batch did, for the adapter to act on after commit.
#[derive(Debug, Default)]
pub struct Batch {
    /// Webhook deliveries were queued.
    pub queued: bool,
    /// Environments, secrets, signing keys, tokens or tombstones changed.
    pub changed: bool,
    pub(super) subscribers: HashMap<String, Vec<Subscriber>>,
    /// Users read ahead for the batch's identifies, by (environment, id);
    /// `None`: known not to exist. Taken out at first use, so a second
    /// identify of one user in the batch reads what the first one wrote.
    pub(super) users: HashMap<(String, String), Option<UserRecord>>,
}

impl Batch {
    /// Opens a shared transaction: takes the locks of `ops` that are free
    /// (without waiting), reads ahead, and locks the environment counters
    /// they may move, in one order. Which ops the transaction runs.
    async fn prepare<T: Tx>(&mut self, tx: &mut T, ops: &[Op]) -> StoreResult<Vec<bool>> {
        let keys: Vec<Option<String>> = ops.iter().map(Op::lock_key).collect();
        let wanted: Vec<String> = keys.iter().flatten().cloned().collect();
        let busy = tx.try_lock_all(&wanted).await?;
        let run: Vec<bool> = keys
            .iter()
            .map(|k| k.as_ref().is_none_or(|k| !busy.contains(k)))
            .collect();
        self.read_users(tx, ops, &run).await?;
        self.lock_counters(tx, ops, &run).await?;
        Ok(run)
    }

    /// Locks, in id order, every environment row the run ops may update (the
    /// unsigned counter, settings): taken one by one in op order, two
    /// batches could each hold the row the other one waits for.
    async fn lock_counters<T: Tx>(&self, tx: &mut T, ops: &[Op], run: &[bool]) -> StoreResult<()> {
        let counted = |c: &IdentifyCommand| {
            self.users
                .get(&(c.env_id.clone(), c.user_id.clone()))
                .is_some_and(|u| u.as_ref().is_some_and(|u| u.counted_unsigned))
        };
        let mut envs: Vec<&str> = ops
            .iter()
            .zip(run)
            .filter(|(_, run)| **run)
            .filter_map(|(op, _)| match op {
                Op::Identify(c)
                    if c.proof.is_none()
                        && c.enforcement != Enforcement::Enforce
                        && !counted(c) =>
                {
                    Some(c.env_id.as_str())
                }
                Op::UpdateEnvironment(id, ..) | Op::RevokeSessions(id, _) => Some(id.as_str()),
                _ => None,
            })
            .collect();
        if envs.is_empty() {
            return Ok(());
        }
        envs.sort_unstable();
        envs.dedup();
        tx.query_arrays(sql::ENVS_LOCK_COUNTERS, &[envs], rows::unit)
            .await?;
        Ok(())
    }

    /// Reads the users of every identify of `ops` in one statement, where
    /// the dialect can (see [`Tx::query_arrays`]).
    async fn read_users<T: Tx>(&mut self, tx: &mut T, ops: &[Op], run: &[bool]) -> StoreResult<()> {
        let (envs, ids): (Vec<&str>, Vec<&str>) = ops
            .iter()
            .zip(run)
            .filter(|(_, run)| **run)
            .filter_map(|(op, _)| match op {
                Op::Identify(c) => Some((c.env_id.as_str(), c.user_id.as_str())),
                _ => None,
            })
            .unzip();
        if ids.len() < 2 {
            return Ok(());
        }
        let keys: Vec<(String, String)> = envs
            .iter()
            .zip(&ids)
            .map(|(e, i)| (e.to_string(), i.to_string()))
            .collect();
        let Some(found) = tx
            .query_arrays(sql::USERS_BY_KEYS, &[envs, ids], rows::user)
            .await?
        else {
            return Ok(());
        };
        self.users.extend(keys.into_iter().map(|k| (k, None)));
        for u in found {
            self.users.insert((u.env_id.clone(), u.id.clone()), Some(u));
        }
        Ok(())
    }

    pub(super) async fn user<T: Tx>(
        &mut self,
        tx: &mut T,
        env: &str,
        id: &str,
    ) -> StoreResult<Option<UserRecord>> {
        if !self.users.is_empty()
            && let Some(known) = self.users.remove(&(env.to_string(), id.to_string()))
        {
            return Ok(known);
        }
        query_one(tx, sql::USER, &[env.into(), id.into()], rows::user).await
    }

    pub(super) async fn subscribers<T: Tx>(
        &mut self,
        tx: &mut T,
        env_id: &str,
    ) -> StoreResult<&[Subscriber]> {
        if !self.subscribers.contains_key(env_id) {
            let list = tx
                .query(sql::WEBHOOKS_OF_ENV, &[env_id.into()], rows::webhook)
                .await?;
            self.subscribers.insert(
                env_id.to_string(),
                list.iter().map(Subscriber::from).collect(),
            );
        }
        Ok(self.subscribers.get(env_id).map_or(&[], |v| v.as_slice()))
    }

    /// The outbox write for `event`, if anyone subscribes.
    pub(super) async fn enqueue<T: Tx>(
        &mut self,
        tx: &mut T,
        event: Event,
    ) -> StoreResult<Option<Write>> {
        let subs = self.subscribers(tx, &event.env_id).await?;
        let w = script::enqueue(event, subs);
        self.queued |= w.is_some();
        Ok(w)
    }
}

/// Runs `ops` in one transaction. An operation whose lock another
/// transaction holds is left out of it and run alone afterwards, as is every
/// operation when one of them fails: one bad or contended write never takes
/// its neighbours down. A commit failure answers every op of the batch with it.
pub async fn run_batch<T: Tx>(tx: &mut T, ops: &[Op]) -> (Vec<StoreResult<Reply>>, Batch) {
    let (mut replies, mut total) = run_shared(tx, ops).await;
    for (op, slot) in ops.iter().zip(replies.iter_mut()) {
        if slot.is_none() {
            let (r, batch) = alone(tx, op).await;
            total.queued |= batch.queued;
            total.changed |= batch.changed;
            *slot = Some(r);
        }
    }
    let replies = replies
        .into_iter()
        .map(|r| r.unwrap_or_else(|| Err(StoreError::Internal("a write had no result".into()))))
        .collect();
    (replies, total)
}

/// [`run_batch`], except that the ops whose lock another transaction holds
/// are answered `None`: the caller runs each of them with [`alone`], where
/// waiting for its lock holds up nothing else.
pub async fn run_shared<T: Tx>(tx: &mut T, ops: &[Op]) -> (Vec<Option<StoreResult<Reply>>>, Batch) {
    if ops.len() > 1 {
        match together(tx, ops).await {
            Ok(Some(done)) => return done,
            Ok(None) => {}
            Err(e) => {
                let all = ops
                    .iter()
                    .map(|_| Some(Err(StoreError::Unavailable(e.to_string()))))
                    .collect();
                return (all, Batch::default());
            }
        }
    }
    let mut replies = Vec::with_capacity(ops.len());
    let mut total = Batch::default();
    for op in ops {
        let (r, batch) = alone(tx, op).await;
        total.queued |= batch.queued;
        total.changed |= batch.changed;
        replies.push(Some(r));
    }
    (replies, total)
}

/// One op in a transaction of its own; what it did only if it succeeded.
pub async fn alone<T: Tx>(tx: &mut T, op: &Op) -> (StoreResult<Reply>, Batch) {
    let mut batch = Batch::default();
    let r = one(tx, op, &mut batch).await;
    if r.is_err() {
        batch = Batch::default();
    }
    (r, batch)
}

async fn finish<T: Tx>(tx: &mut T, batch: &Batch) -> StoreResult<()> {
    if batch.changed {
        tx.notify(Channel::Changes).await?;
    }
    if batch.queued {
        tx.notify(Channel::Outbox).await?;
    }
    tx.commit().await
}

/// Each op's reply, `None` for those left for a transaction of their own.
type Shared = (Vec<Option<StoreResult<Reply>>>, Batch);

async fn together<T: Tx>(tx: &mut T, ops: &[Op]) -> StoreResult<Option<Shared>> {
    tx.begin().await?;
    let mut batch = Batch::default();
    let Ok(run) = batch.prepare(tx, ops).await else {
        tx.rollback().await;
        return Ok(None);
    };
    let mut replies = Vec::with_capacity(ops.len());
    for (op, run) in ops.iter().zip(run) {
        if !run {
            replies.push(None);
            continue;
        }
        match apply(tx, op, &mut batch).await {
            Ok(r) => replies.push(Some(Ok(r))),
            Err(_) => {
                tx.rollback().await;
                return Ok(None);
            }
        }
    }
    if let Err(e) = finish(tx, &batch).await {
        tracing::error!(error = %e, "commit failed; the batch is answered with errors");
        tx.rollback().await;
        return Err(e);
    }
    Ok(Some((replies, batch)))
}

async fn one<T: Tx>(tx: &mut T, op: &Op, batch: &mut Batch) -> StoreResult<Reply> {
    tx.begin().await?;
    let r = match apply(tx, op, batch).await {
        Ok(r) => r,
        Err(e) => {
            tx.rollback().await;
            return Err(e);
        }
    };
    if let Err(e) = finish(tx, batch).await {
        tracing::error!(error = %e, "commit failed");
        tx.rollback().await;
        return Err(StoreError::Unavailable(e.to_string()));
    }
    Ok(r)
}
