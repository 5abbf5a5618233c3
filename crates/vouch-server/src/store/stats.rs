//! Coverage counts (verified, unverified, rejected identifies per minute),
//! added up in memory and written at most once a second, before any stats
//! read of this node, and at close. The user records themselves are written
//! before their answer; a crash can lose at most the last second of counts.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use super::StoreResult;
use super::db::Db;
use super::ops::Op;
use crate::model::{Outcome, Ts};

/// How often the pending counts are written.
pub const STATS_FLUSH: Duration = Duration::from_secs(1);

type Counts = HashMap<(String, i64), [i64; 3]>;

#[derive(Debug, Default)]
pub struct PendingStats {
    counts: Mutex<Counts>,
    /// One flush at a time, so a stats read waits for the one under way.
    flushing: tokio::sync::Mutex<()>,
    /// Set at close: the flusher stops.
    closed: std::sync::atomic::AtomicBool,
}

impl PendingStats {
    pub fn add(&self, env_id: &str, at: Ts, outcome: Outcome) {
        let slot = match outcome {
            Outcome::Verified => 0,
            Outcome::Unverified => 1,
            Outcome::Rejected => 2,
        };
        if let Ok(mut m) = self.counts.lock() {
            m.entry((env_id.to_string(), at.div_euclid(60)))
                .or_default()[slot] += 1;
        }
    }

    fn is_empty(&self) -> bool {
        self.counts.lock().map(|m| m.is_empty()).unwrap_or(true)
    }

    fn take(&self) -> Counts {
        self.counts
            .lock()
            .map(|mut m| std::mem::take(&mut *m))
            .unwrap_or_default()
    }

    /// Puts back counts whose write failed.
    fn restore(&self, counts: Counts) {
        if let Ok(mut m) = self.counts.lock() {
            for (k, v) in counts {
                let slot = m.entry(k).or_default();
                for (s, n) in slot.iter_mut().zip(v) {
                    *s += n;
                }
            }
        }
    }

    pub fn close(&self) {
        self.closed
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }

    fn is_closed(&self) -> bool {
        self.closed.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Counts of a deleted environment are deleted with it.
    pub fn forget_env(&self, env_id: &str) {
        if let Ok(mut m) = self.counts.lock() {
            m.retain(|(e, _), _| e != env_id);
        }
    }
}

/// Writes the pending counts in a transaction of their own.
pub async fn flush(db: &Db, stats: &PendingStats) -> StoreResult<()> {
    let _one = stats.flushing.lock().await;
    let counts = stats.take();
    if counts.is_empty() {
        return Ok(());
    }
    let mut rows: Vec<_> = counts
        .iter()
        .map(|((env, minute), c)| (env.clone(), *minute, *c))
        .collect();
    // In one order on every node: two flushes updating the same rows wait on
    // each other rather than deadlock.
    rows.sort_unstable();
    if let Err(e) = db.write(Op::AddStats(rows)).await {
        stats.restore(counts);
        return Err(e);
    }
    Ok(())
}

/// Flushes every [`STATS_FLUSH`] while there are counts; ends with the store.
pub fn spawn_flusher(db: Weak<Db>, stats: Arc<PendingStats>) {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return;
    };
    runtime.spawn(async move {
        let mut tick = tokio::time::interval(STATS_FLUSH);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let Some(db) = db.upgrade() else { return };
            if stats.is_closed() {
                return;
            }
            if stats.is_empty() {
                continue;
            }
            if let Err(e) = flush(&db, &stats).await {
                tracing::error!(error = %e, "writing the identify stats failed; they stay counted in memory");
            }
        }
    });
}
