//! Users, companies, events, audit and the coverage counts; and the
//! failed-verification counters.

use crate::model::*;
use crate::store::ops::{Op, Reply};
use crate::store::reads::{self, AuditQuery, EventQuery, UserQuery};
use crate::store::{NewAudit, Page, Store, StoreResult, stats, unexpected};

impl Store {
    /// Applies the binding rules and writes the user atomically; an identify
    /// that changes nothing is answered from one read.
    pub async fn identify(
        &self,
        cmd: IdentifyCommand,
    ) -> StoreResult<Result<IdentifyOutcome, IdentifyRejection>> {
        let outcome = if cmd.proof.is_some() {
            Outcome::Verified
        } else {
            Outcome::Unverified
        };
        let (env_id, now) = (cmd.env_id.clone(), cmd.now);
        let unchanged = self
            .db
            .read(&reads::UnchangedIdentify { cmd: &cmd })
            .await?;
        let result = match unchanged {
            Some(o) => Ok(o),
            None => match self.db.write(Op::Identify(Box::new(cmd))).await? {
                Reply::Identify(r) => r,
                _ => return Err(unexpected("an identify")),
            },
        };
        if result.is_ok() {
            self.stats.add(&env_id, now, outcome);
        }
        Ok(result)
    }

    pub async fn group(
        &self,
        cmd: GroupCommand,
    ) -> StoreResult<Result<CompanyRecord, IdentifyRejection>> {
        match self.db.write(Op::Group(Box::new(cmd))).await? {
            Reply::Group(r) => Ok(r),
            _ => Err(unexpected("a group call")),
        }
    }

    pub async fn track(&self, event: EventRecord) -> StoreResult<()> {
        self.write(Op::Track(Box::new(event))).await
    }

    /// Counts a rejected proof, audits it and sends `identity.rejected`.
    pub async fn record_rejection(&self, audit: NewAudit) -> StoreResult<()> {
        if let Some(env_id) = &audit.env_id {
            self.stats.add(env_id, audit.at, Outcome::Rejected);
        }
        self.write(Op::Rejection(audit)).await
    }

    /// Counts a rejected identify without auditing it (a throttled client).
    pub fn count_rejection(&self, env_id: &str, at: Ts) {
        self.stats.add(env_id, at, Outcome::Rejected);
    }

    pub async fn append_audit(&self, audit: NewAudit) -> StoreResult<()> {
        self.write(Op::Audit(audit)).await
    }

    pub async fn get_user(&self, env_id: &str, user_id: &str) -> StoreResult<Option<UserRecord>> {
        self.db
            .read(&reads::User {
                env_id: env_id.into(),
                id: user_id.into(),
            })
            .await
    }

    pub async fn user_companies(
        &self,
        env_id: &str,
        user_id: &str,
    ) -> StoreResult<Vec<CompanyRecord>> {
        self.db
            .read(&reads::UserCompanies {
                env_id: env_id.into(),
                id: user_id.into(),
            })
            .await
    }

    /// Erases a user, its memberships and events; its sessions are refused.
    pub async fn delete_user(
        &self,
        env_id: &str,
        user_id: &str,
        audit: NewAudit,
    ) -> StoreResult<()> {
        self.write(Op::DeleteUser(env_id.into(), user_id.into(), audit))
            .await
    }

    /// Erased users newer than `since`.
    pub async fn tombstones(&self, since: Ts) -> StoreResult<Vec<Tombstone>> {
        self.db.scan(reads::Tombstones { since }).await
    }

    pub async fn list_users(&self, q: UserQuery) -> StoreResult<Page<UserRecord>> {
        self.db.scan(reads::Users { q }).await
    }

    pub async fn list_events(&self, q: EventQuery) -> StoreResult<Page<EventRecord>> {
        self.db.scan(reads::Events { q }).await
    }

    pub async fn list_audit(&self, q: AuditQuery) -> StoreResult<Page<AuditRecord>> {
        self.db.scan(reads::Audit { q }).await
    }

    /// Exact for this node's identifies (its pending counts are written
    /// first); other nodes' within a second.
    pub async fn coverage(&self, env_id: &str, since: Ts) -> StoreResult<Coverage> {
        self.flush_stats().await?;
        self.db
            .scan(reads::CoverageSince {
                env_id: env_id.into(),
                since,
            })
            .await
    }

    /// Writes the coverage counts kept in memory.
    pub async fn flush_stats(&self) -> StoreResult<()> {
        stats::flush(&self.db, &self.stats).await
    }

    /// Counts one failure for each key; each key's failures in this minute.
    pub async fn count_failures(&self, keys: &[String], now: Ts) -> StoreResult<Vec<u32>> {
        self.db.count_failures(keys, now).await
    }
}
