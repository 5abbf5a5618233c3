//! The store's reads, written once over [`Tx`]: each a [`Query`] whose type
//! names its answer, grouped by resource.

use super::ops::companies_of;
use super::rows;
use super::script;
use super::sql;
use std::future::Future;

use super::tx::{Param, Tx, query_one};
use super::{Page, StoreResult, page, page_limit};
use crate::model::*;

/// A read, typed by its answer: the store cannot be asked one thing and
/// answer another. Each runs once over [`Tx`] on either database.
pub trait Query: Send + Sync {
    type Out: Send + 'static;
    fn run<T: Tx>(&self, tx: &mut T) -> impl Future<Output = StoreResult<Self::Out>> + Send;
}

/// Defines a read: its fields, its answer and the body that runs it (`q` is
/// the query, `tx` the connection).
macro_rules! query {
    ($(#[$m:meta])* $name:ident $(<$l:lifetime>)? { $($f:ident: $t:ty),* $(,)? } -> $out:ty,
     |$q:ident, $tx:ident| $body:expr) => {
        $(#[$m])*
        #[derive(Debug, Clone)]
        pub struct $name $(<$l>)? { $(pub $f: $t),* }

        impl $(<$l>)? Query for $name $(<$l>)? {
            type Out = $out;
            async fn run<T: Tx>(&self, $tx: &mut T) -> StoreResult<$out> {
                let $q = self;
                $body
            }
        }
    };
}

/// Users: verified filter, id prefix, cursor.
#[derive(Debug, Clone, Default)]
pub struct UserQuery {
    pub env_id: String,
    pub verified: Option<bool>,
    pub prefix: Option<String>,
    pub after: Option<String>,
    pub limit: u32,
}

#[derive(Debug, Clone, Default)]
pub struct EventQuery {
    pub env_id: String,
    pub user_id: Option<String>,
    pub before: Option<i64>,
    pub limit: u32,
}

/// Audit entries: kind, user id, time range `[since, until)`, cursor; of an
/// environment, or (None) the deployment's own.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    pub env_id: Option<String>,
    pub kind: Option<String>,
    pub user_id: Option<String>,
    pub since: Option<Ts>,
    pub until: Option<Ts>,
    pub before: Option<i64>,
    pub limit: u32,
}

/// The stored user, when an identify would change nothing: most identifies
/// are the same user on another page load, decided by one read and no write.
/// Anything else (a new user, a change, a stale `verified_at`, the unsigned
/// cap, a `jti` to record, a rejection) goes to the writer, which decides
/// again inside its transaction.
pub async fn unchanged_identify<T: Tx>(
    tx: &mut T,
    cmd: &IdentifyCommand,
) -> StoreResult<Option<IdentifyOutcome>> {
    if cmd.jti.is_some() {
        return Ok(None);
    }
    let user = query_one(
        tx,
        sql::USER,
        &[(&cmd.env_id).into(), (&cmd.user_id).into()],
        rows::user,
    )
    .await?;
    Ok(user
        .and_then(|u| script::apply_identify(Some(u), cmd, 0).ok())
        .filter(|o| !o.write))
}

fn opt_bool_flag(v: Option<bool>) -> [Param<'static>; 2] {
    [Param::Int(v.map(|_| 1)), Param::Bool(v.unwrap_or(false))]
}

/// The exclusive upper bound of the ids starting with `prefix`, in byte
/// order: no UTF-8 text that starts with `prefix` sorts at or after it.
fn prefix_end(prefix: &str) -> String {
    format!("{prefix}\u{10FFFF}")
}

// ---- meta, admin tokens ----

query!(
    /// Reachability, for `/readyz`.
    Ping {} -> bool,
    |_q, tx| Ok(query_one(tx, sql::PROJECT_COUNT, &[], rows::count).await?.is_some())
);

query!(Meta { key: String } -> Option<String>,
    |q, tx| query_one(tx, sql::META_GET, &[(&q.key).into()], rows::value).await
);

query!(IsEmpty {} -> bool,
    |_q, tx| Ok(query_one(tx, sql::PROJECT_COUNT, &[], rows::count).await? == Some(0))
);

query!(DefaultProject {} -> Option<String>,
    |_q, tx| query_one(tx, sql::PROJECT_ANY, &[], rows::id).await
);

query!(AdminTokenByHash { hash: [u8; 32] } -> Option<AdminTokenRecord>,
    |q, tx| query_one(tx, sql::ADMIN_TOKEN_BY_HASH, &[Param::Blob(Some(&q.hash))], rows::admin_token).await
);

query!(AdminTokens {} -> Vec<AdminTokenRecord>,
    |_q, tx| tx.query(sql::ADMIN_TOKENS, &[], rows::admin_token).await
);

// ---- environments and keys ----

query!(Environments {} -> Vec<Environment>,
    |_q, tx| tx.query(sql::ENVS, &[], rows::environment).await
);

query!(EnvironmentById { id: String } -> Option<Environment>,
    |q, tx| query_one(tx, sql::ENV_BY_ID, &[(&q.id).into()], rows::environment).await
);

query!(EnvironmentByPk { pk: String } -> Option<Environment>,
    |q, tx| query_one(tx, sql::ENV_BY_PK, &[(&q.pk).into()], rows::environment).await
);

query!(
    /// The secrets of one environment, or (None) of all.
    Secrets { env_id: Option<String> } -> Vec<SecretRecord>,
    |q, tx| match &q.env_id {
        Some(env) => tx.query(sql::SECRETS_OF_ENV, &[env.into()], rows::secret).await,
        None => tx.query(sql::SECRETS, &[], rows::secret).await,
    }
);

query!(SigningKeys {} -> Vec<SigningKeyRecord>,
    |_q, tx| tx.query(sql::SIGNING_KEYS, &[], rows::signing_key).await
);

// ---- users ----

query!(
    /// Erased users newer than `since`.
    Tombstones { since: Ts } -> Vec<Tombstone>,
    |q, tx| tx.query(sql::TOMBSTONES_SINCE, &[q.since.into()], rows::tombstone).await
);

query!(User { env_id: String, id: String } -> Option<UserRecord>,
    |q, tx| query_one(tx, sql::USER, &[(&q.env_id).into(), (&q.id).into()], rows::user).await
);

query!(UserCompanies { env_id: String, id: String } -> Vec<CompanyRecord>,
    |q, tx| companies_of(tx, &q.env_id, &q.id).await
);

query!(Users { q: UserQuery } -> Page<UserRecord>,
    |q, tx| {
        let q = &q.q;
        let limit = page_limit(q.limit);
        let [has, verified] = opt_bool_flag(q.verified);
        let end = q.prefix.as_deref().map(prefix_end);
        let params = [
            (&q.env_id).into(),
            has,
            verified,
            (&q.prefix).into(),
            (&end).into(),
            (&q.after).into(),
            (i64::from(limit) + 1).into(),
        ];
        let data = tx.query(sql::USERS_PAGE, &params, rows::user).await?;
        Ok(page(data, limit, |u| u.id.clone()))
    }
);

query!(
    /// The stored user when an identify would write nothing (see [`unchanged_identify`]).
    UnchangedIdentify<'a> { cmd: &'a IdentifyCommand } -> Option<IdentifyOutcome>,
    |q, tx| unchanged_identify(tx, q.cmd).await
);

// ---- events, audit, stats ----

query!(Events { q: EventQuery } -> Page<EventRecord>,
    |q, tx| {
        let q = &q.q;
        let limit = page_limit(q.limit);
        let params = [
            (&q.env_id).into(),
            (&q.user_id).into(),
            q.before.into(),
            (i64::from(limit) + 1).into(),
        ];
        let data = tx.query(sql::EVENTS_PAGE, &params, rows::event).await?;
        Ok(page(data, limit, |e| e.seq.to_string()))
    }
);

query!(Audit { q: AuditQuery } -> Page<AuditRecord>,
    |q, tx| {
        let q = &q.q;
        let limit = page_limit(q.limit);
        let filters = [
            (&q.kind).into(),
            (&q.user_id).into(),
            q.since.into(),
            q.until.into(),
            q.before.into(),
            (i64::from(limit) + 1).into(),
        ];
        let data = match &q.env_id {
            Some(env) => {
                let mut params = vec![env.into()];
                params.extend(filters);
                tx.query(sql::AUDIT_PAGE, &params, rows::audit).await?
            }
            None => tx.query(sql::AUDIT_PAGE_DEPLOYMENT, &filters, rows::audit).await?,
        };
        Ok(page(data, limit, |a| a.seq.to_string()))
    }
);

query!(CoverageSince { env_id: String, since: Ts } -> crate::model::Coverage,
    |q, tx| {
        let params = [(&q.env_id).into(), q.since.div_euclid(60).into()];
        Ok(query_one(tx, sql::STATS_SUM, &params, rows::coverage).await?.unwrap_or_default())
    }
);

// ---- webhooks ----

query!(
    /// The endpoints of one environment, or (None) of all.
    Webhooks { env_id: Option<String> } -> Vec<WebhookEndpoint>,
    |q, tx| match &q.env_id {
        Some(env) => tx.query(sql::WEBHOOKS_OF_ENV, &[env.into()], rows::webhook).await,
        None => tx.query(sql::WEBHOOKS, &[], rows::webhook).await,
    }
);

query!(Webhook { env_id: String, id: String } -> Option<WebhookEndpoint>,
    |q, tx| query_one(tx, sql::WEBHOOK, &[(&q.env_id).into(), (&q.id).into()], rows::webhook).await
);

query!(
    /// An endpoint's delivery attempts, newest first, before a cursor.
    Attempts { env_id: String, endpoint_id: String, before: Option<i64>, limit: u32 }
        -> Page<AttemptRecord>,
    |q, tx| {
        let limit = page_limit(q.limit);
        let params = [
            (&q.env_id).into(),
            (&q.endpoint_id).into(),
            q.before.into(),
            (i64::from(limit) + 1).into(),
        ];
        let data = tx.query(sql::ATTEMPTS_PAGE, &params, rows::attempt).await?;
        Ok(page(data, limit, |a| a.seq.to_string()))
    }
);
