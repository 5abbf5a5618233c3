//! The store's reads, written once over [`Tx`]: each a [`Read`], answered
//! with an [`Answer`].

use super::ops::companies_of;
use super::rows;
use super::script;
use super::sql;
use super::tx::{Param, Tx, query_one};
use super::{Page, StoreResult, page, page_limit};
use crate::model::*;

/// A read.
#[derive(Debug, Clone)]
pub enum Read {
    Ping,
    Meta(String),
    IsEmpty,
    DefaultProject,
    AdminTokenByHash([u8; 32]),
    AdminTokens,
    Environments,
    Environment(String),
    EnvironmentByPk(String),
    Secrets,
    SecretsOf(String),
    SigningKeys,
    /// Tombstones newer than this instant.
    Tombstones(Ts),
    User(String, String),
    UserCompanies(String, String),
    Users(UserQuery),
    Events(EventQuery),
    Audit(AuditQuery),
    Coverage(String, Ts),
    Webhooks(Option<String>),
    Webhook(String, String),
    Attempts(String, String, Option<i64>, u32),
    /// The stored user when an identify would write nothing (see [`unchanged_identify`]).
    UnchangedIdentify(Box<IdentifyCommand>),
}

impl Read {
    /// Whether it may read many rows (adapters may run it off the request thread).
    pub fn scans(&self) -> bool {
        matches!(
            self,
            Read::AdminTokens
                | Read::Environments
                | Read::Secrets
                | Read::SecretsOf(_)
                | Read::SigningKeys
                | Read::Tombstones(_)
                | Read::Users(_)
                | Read::Events(_)
                | Read::Audit(_)
                | Read::Coverage(..)
                | Read::Webhooks(_)
                | Read::Attempts(..)
        )
    }
}

#[derive(Debug)]
pub enum Answer {
    Text(Option<String>),
    Flag(bool),
    AdminToken(Option<AdminTokenRecord>),
    AdminTokens(Vec<AdminTokenRecord>),
    Environments(Vec<Environment>),
    Environment(Option<Environment>),
    Secrets(Vec<SecretRecord>),
    SigningKeys(Vec<SigningKeyRecord>),
    Tombstones(Vec<Tombstone>),
    User(Option<UserRecord>),
    Companies(Vec<CompanyRecord>),
    Users(Page<UserRecord>),
    Events(Page<EventRecord>),
    Audit(Page<AuditRecord>),
    Coverage(Coverage),
    Webhooks(Vec<WebhookEndpoint>),
    Webhook(Option<WebhookEndpoint>),
    Attempts(Page<AttemptRecord>),
    Unchanged(Option<IdentifyOutcome>),
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

/// Runs one read.
pub async fn read<T: Tx>(tx: &mut T, r: &Read) -> StoreResult<Answer> {
    Ok(match r {
        Read::Ping => Answer::Flag(
            query_one(tx, sql::PROJECT_COUNT, &[], rows::count)
                .await?
                .is_some(),
        ),
        Read::Meta(key) => {
            Answer::Text(query_one(tx, sql::META_GET, &[key.into()], rows::value).await?)
        }
        Read::IsEmpty => {
            Answer::Flag(query_one(tx, sql::PROJECT_COUNT, &[], rows::count).await? == Some(0))
        }
        Read::DefaultProject => Answer::Text(query_one(tx, sql::PROJECT_ANY, &[], rows::id).await?),
        Read::AdminTokenByHash(hash) => Answer::AdminToken(
            query_one(
                tx,
                sql::ADMIN_TOKEN_BY_HASH,
                &[Param::Blob(Some(hash))],
                rows::admin_token,
            )
            .await?,
        ),
        Read::AdminTokens => {
            Answer::AdminTokens(tx.query(sql::ADMIN_TOKENS, &[], rows::admin_token).await?)
        }
        Read::Environments => {
            Answer::Environments(tx.query(sql::ENVS, &[], rows::environment).await?)
        }
        Read::Environment(id) => Answer::Environment(
            query_one(tx, sql::ENV_BY_ID, &[id.into()], rows::environment).await?,
        ),
        Read::EnvironmentByPk(pk) => Answer::Environment(
            query_one(tx, sql::ENV_BY_PK, &[pk.into()], rows::environment).await?,
        ),
        Read::Secrets => Answer::Secrets(tx.query(sql::SECRETS, &[], rows::secret).await?),
        Read::SecretsOf(env) => Answer::Secrets(
            tx.query(sql::SECRETS_OF_ENV, &[env.into()], rows::secret)
                .await?,
        ),
        Read::SigningKeys => {
            Answer::SigningKeys(tx.query(sql::SIGNING_KEYS, &[], rows::signing_key).await?)
        }
        Read::Tombstones(since) => Answer::Tombstones(
            tx.query(sql::TOMBSTONES_SINCE, &[(*since).into()], rows::tombstone)
                .await?,
        ),
        Read::User(env, id) => {
            Answer::User(query_one(tx, sql::USER, &[env.into(), id.into()], rows::user).await?)
        }
        Read::UserCompanies(env, id) => Answer::Companies(companies_of(tx, env, id).await?),
        Read::Users(q) => {
            let limit = page_limit(q.limit);
            let [has, verified] = opt_bool_flag(q.verified);
            let end = q.prefix.as_deref().map(prefix_end);
            let data = tx
                .query(
                    sql::USERS_PAGE,
                    &[
                        (&q.env_id).into(),
                        has,
                        verified,
                        (&q.prefix).into(),
                        (&end).into(),
                        (&q.after).into(),
                        (i64::from(limit) + 1).into(),
                    ],
                    rows::user,
                )
                .await?;
            Answer::Users(page(data, limit, |u| u.id.clone()))
        }
        Read::Events(q) => {
            let limit = page_limit(q.limit);
            let data = tx
                .query(
                    sql::EVENTS_PAGE,
                    &[
                        (&q.env_id).into(),
                        (&q.user_id).into(),
                        q.before.into(),
                        (i64::from(limit) + 1).into(),
                    ],
                    rows::event,
                )
                .await?;
            Answer::Events(page(data, limit, |e| e.seq.to_string()))
        }
        Read::Audit(q) => {
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
                None => {
                    tx.query(sql::AUDIT_PAGE_DEPLOYMENT, &filters, rows::audit)
                        .await?
                }
            };
            Answer::Audit(page(data, limit, |a| a.seq.to_string()))
        }
        Read::Coverage(env, since) => Answer::Coverage(
            query_one(
                tx,
                sql::STATS_SUM,
                &[env.into(), since.div_euclid(60).into()],
                rows::coverage,
            )
            .await?
            .unwrap_or_default(),
        ),
        Read::Webhooks(Some(env)) => Answer::Webhooks(
            tx.query(sql::WEBHOOKS_OF_ENV, &[env.into()], rows::webhook)
                .await?,
        ),
        Read::Webhooks(None) => {
            Answer::Webhooks(tx.query(sql::WEBHOOKS, &[], rows::webhook).await?)
        }
        Read::Webhook(env, id) => Answer::Webhook(
            query_one(tx, sql::WEBHOOK, &[env.into(), id.into()], rows::webhook).await?,
        ),
        Read::Attempts(env, endpoint, before, limit) => {
            let limit = page_limit(*limit);
            let data = tx
                .query(
                    sql::ATTEMPTS_PAGE,
                    &[
                        env.into(),
                        endpoint.into(),
                        (*before).into(),
                        (i64::from(limit) + 1).into(),
                    ],
                    rows::attempt,
                )
                .await?;
            Answer::Attempts(page(data, limit, |a| a.seq.to_string()))
        }
        Read::UnchangedIdentify(cmd) => Answer::Unchanged(unchanged_identify(tx, cmd).await?),
    })
}
