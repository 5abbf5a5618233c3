//! Every SQL statement, once. `$N` placeholders work on both databases as long
//! as each first appears in ascending order (SQLite numbers named parameters by
//! first appearance; a test below checks it). The few statements that differ
//! by dialect sit side by side, picked by [`Dialect`].

use super::tx::Dialect;

// ---- meta, projects, admin tokens ----

pub const META_GET: &str = "SELECT value FROM meta WHERE key = $1";
pub const META_PUT: &str = "INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value";
pub const PROJECT_ANY: &str = "SELECT id FROM projects ORDER BY created_at, id LIMIT 1";
pub const PROJECT_INSERT: &str = "INSERT INTO projects (id, name, created_at) VALUES ($1, $2, $3)";
pub const PROJECT_COUNT: &str = "SELECT COUNT(*) AS n FROM projects";

pub const ADMIN_TOKEN_INSERT: &str = "INSERT INTO admin_tokens (id, token_hash, created_at, name, role, environment_ids) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING";
pub const ADMIN_TOKEN_BY_HASH: &str = "SELECT * FROM admin_tokens WHERE token_hash = $1";
pub const ADMIN_TOKENS: &str = "SELECT * FROM admin_tokens ORDER BY created_at, id";
pub const ADMIN_TOKEN_DELETE: &str = "DELETE FROM admin_tokens WHERE id = $1";

// ---- environments, secrets, signing keys ----

pub const ENVS: &str = "SELECT * FROM environments ORDER BY created_at, id";
pub const ENV_BY_ID: &str = "SELECT * FROM environments WHERE id = $1";
pub const ENV_BY_PK: &str = "SELECT * FROM environments WHERE publishable_key = $1";
pub const ENV_INSERT: &str = "INSERT INTO environments (id, project_id, publishable_key, settings, unsigned_count, created_at, updated_at, sessions_revoked_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";
pub const ENV_UPDATE_SETTINGS: &str =
    "UPDATE environments SET settings = $1, updated_at = $2 WHERE id = $3";
pub const ENV_REVOKE_SESSIONS: &str =
    "UPDATE environments SET sessions_revoked_at = $1, updated_at = $1 WHERE id = $2";
pub const ENV_BUMP_UNSIGNED: &str =
    "UPDATE environments SET unsigned_count = unsigned_count + 1 WHERE id = $1";
/// What an environment's deletion removes first, each bound to its id.
pub const ENV_DELETE_DATA: &[&str] = &[
    "DELETE FROM users WHERE env_id = $1",
    "DELETE FROM companies WHERE env_id = $1",
    "DELETE FROM memberships WHERE env_id = $1",
    "DELETE FROM events WHERE env_id = $1",
    "DELETE FROM secrets WHERE env_id = $1",
    "DELETE FROM identify_stats WHERE env_id = $1",
    "DELETE FROM used_jtis WHERE env_id = $1",
    "DELETE FROM deleted_users WHERE env_id = $1",
];
pub const ENV_DELETE: &str = "DELETE FROM environments WHERE id = $1";

/// The environment's unsigned counter; on PostgreSQL locked when the
/// identify may move it, so the cap holds across nodes. `NO KEY UPDATE`, as
/// the counter's own update takes: it waits for other counters, never for
/// the key-share lock that inserting a user of the environment holds (in a
/// shared transaction, that would be a deadlock between two of them).
pub fn env_unsigned_count(d: Dialect, for_update: bool) -> &'static str {
    match (d, for_update) {
        (Dialect::Postgres, true) => {
            "SELECT unsigned_count FROM environments WHERE id = $1 FOR NO KEY UPDATE"
        }
        _ => "SELECT unsigned_count FROM environments WHERE id = $1",
    }
}

pub const SECRETS: &str = "SELECT * FROM secrets ORDER BY created_at, id";
pub const SECRETS_OF_ENV: &str = "SELECT * FROM secrets WHERE env_id = $1 ORDER BY created_at, id";
pub const SECRET_BY_ID: &str = "SELECT * FROM secrets WHERE env_id = $1 AND id = $2";
pub const SECRET_INSERT: &str = "INSERT INTO secrets (id, env_id, ciphertext, imported, created_at, expires_at, revoked_at) VALUES ($1, $2, $3, $4, $5, $6, $7)";
pub const SECRETS_EXPIRE_OTHERS: &str = "UPDATE secrets SET expires_at = $1 WHERE env_id = $2 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > $1)";
pub const SECRET_REVOKE: &str =
    "UPDATE secrets SET revoked_at = $1 WHERE env_id = $2 AND id = $3 AND revoked_at IS NULL";
pub const SECRET_RESEAL: &str = "UPDATE secrets SET ciphertext = $1 WHERE id = $2";

pub const SIGNING_KEYS: &str = "SELECT * FROM signing_keys ORDER BY created_at, kid";
pub const SIGNING_KEY_INSERT: &str = "INSERT INTO signing_keys (kid, ciphertext, public_key, created_at, retired_at) VALUES ($1, $2, $3, $4, $5)";
pub const SIGNING_KEYS_RETIRE: &str =
    "UPDATE signing_keys SET retired_at = $1 WHERE retired_at IS NULL";
pub const SIGNING_KEY_RESEAL: &str = "UPDATE signing_keys SET ciphertext = $1 WHERE kid = $2";

// ---- users, companies, memberships, tombstones ----

pub const USER: &str = "SELECT * FROM users WHERE env_id = $1 AND id = $2";
/// PostgreSQL only (arrays): locks the counter rows of many environments in
/// id order, the order every batch takes them in, so two cannot deadlock.
pub const ENVS_LOCK_COUNTERS: &str =
    "SELECT id FROM environments WHERE id = ANY($1::TEXT[]) ORDER BY id FOR NO KEY UPDATE";
/// PostgreSQL only (arrays): the users of many (environment, id) pairs.
pub const USERS_BY_KEYS: &str = "SELECT u.* FROM users u
     JOIN unnest($1::TEXT[], $2::TEXT[]) AS k (env_id, id) ON u.env_id = k.env_id AND u.id = k.id";
pub const USER_UPSERT: &str = "INSERT INTO users (env_id, id, verified, ever_verified, verified_by, key_id, verified_at, attributes, verified_attributes, counted_unsigned, created_at, updated_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
     ON CONFLICT (env_id, id) DO UPDATE SET verified = excluded.verified, ever_verified = excluded.ever_verified,
       verified_by = excluded.verified_by, key_id = excluded.key_id, verified_at = excluded.verified_at,
       attributes = excluded.attributes, verified_attributes = excluded.verified_attributes,
       counted_unsigned = excluded.counted_unsigned, updated_at = excluded.updated_at";
/// A page of users by id: verified filter, id prefix (a byte range), cursor.
pub const USERS_PAGE: &str = "SELECT * FROM users WHERE env_id = $1
     AND ($2 IS NULL OR verified = $3)
     AND ($4 IS NULL OR (id >= $4 AND id < $5))
     AND ($6 IS NULL OR id > $6)
     ORDER BY id LIMIT $7";
pub const USER_DELETE: &str = "DELETE FROM users WHERE env_id = $1 AND id = $2";
pub const USER_DELETE_MEMBERSHIPS: &str =
    "DELETE FROM memberships WHERE env_id = $1 AND user_id = $2";
pub const USER_DELETE_EVENTS: &str = "DELETE FROM events WHERE env_id = $1 AND user_id = $2";
pub const TOMBSTONE_PUT: &str =
    "INSERT INTO deleted_users (env_id, user_id, deleted_at) VALUES ($1, $2, $3)
     ON CONFLICT (env_id, user_id) DO UPDATE SET deleted_at = excluded.deleted_at";
pub const TOMBSTONES_SINCE: &str = "SELECT * FROM deleted_users WHERE deleted_at > $1";
pub const TOMBSTONES_PRUNE: &str = "DELETE FROM deleted_users WHERE deleted_at <= $1";

pub const COMPANY: &str = "SELECT * FROM companies WHERE env_id = $1 AND id = $2";
pub const COMPANY_UPSERT: &str = "INSERT INTO companies (env_id, id, verified, key_id, verified_at, attributes, created_at, updated_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
     ON CONFLICT (env_id, id) DO UPDATE SET verified = excluded.verified, key_id = excluded.key_id,
       verified_at = excluded.verified_at, attributes = excluded.attributes, updated_at = excluded.updated_at";
/// The companies a user belongs to; a verified company only through a proven membership.
pub const COMPANIES_OF_USER: &str =
    "SELECT c.* FROM companies c JOIN memberships m ON m.env_id = c.env_id AND m.company_id = c.id
     WHERE m.env_id = $1 AND m.user_id = $2 AND (m.proven OR NOT c.verified) ORDER BY c.id";
pub const MEMBERSHIP: &str =
    "SELECT proven FROM memberships WHERE env_id = $1 AND user_id = $2 AND company_id = $3";
pub const MEMBERSHIP_COUNT: &str =
    "SELECT COUNT(*) AS n FROM memberships WHERE env_id = $1 AND user_id = $2";
pub const MEMBERSHIP_UPSERT: &str = "INSERT INTO memberships (env_id, user_id, company_id, created_at, proven) VALUES ($1, $2, $3, $4, $5)
     ON CONFLICT (env_id, user_id, company_id) DO UPDATE SET proven = (memberships.proven OR excluded.proven)";
pub const MEMBERSHIPS_DROP_UNPROVEN: &str =
    "DELETE FROM memberships WHERE env_id = $1 AND company_id = $2 AND NOT proven";

pub const JTI_USED: &str =
    "SELECT 1 AS used FROM used_jtis WHERE env_id = $1 AND jti = $2 AND expires_at > $3";
pub const JTI_REMEMBER: &str = "INSERT INTO used_jtis (env_id, jti, expires_at) VALUES ($1, $2, $3)
     ON CONFLICT (env_id, jti) DO UPDATE SET expires_at = excluded.expires_at";

// ---- events, audit, stats ----

pub const EVENT_INSERT: &str = "INSERT INTO events (id, env_id, user_id, visitor_id, name, properties, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)";
pub const EVENTS_PAGE: &str =
    "SELECT * FROM events WHERE env_id = $1 AND ($2 IS NULL OR user_id = $2)
     AND ($3 IS NULL OR seq < $3) ORDER BY seq DESC LIMIT $4";

pub const AUDIT_INSERT: &str = "INSERT INTO audit (id, env_id, kind, user_id, key_id, detail, created_at, actor) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";
/// A page of audit entries, newest first: kind, user id and time filters.
pub const AUDIT_PAGE: &str = "SELECT * FROM audit WHERE env_id = $1
     AND ($2 IS NULL OR kind = $2) AND ($3 IS NULL OR user_id = $3)
     AND ($4 IS NULL OR created_at >= $4) AND ($5 IS NULL OR created_at < $5)
     AND ($6 IS NULL OR seq < $6) ORDER BY seq DESC LIMIT $7";
/// The same for the deployment's own entries (admin tokens, signing keys,
/// deleted environments), which belong to no environment.
pub const AUDIT_PAGE_DEPLOYMENT: &str = "SELECT * FROM audit WHERE env_id IS NULL
     AND ($1 IS NULL OR kind = $1) AND ($2 IS NULL OR user_id = $2)
     AND ($3 IS NULL OR created_at >= $3) AND ($4 IS NULL OR created_at < $4)
     AND ($5 IS NULL OR seq < $5) ORDER BY seq DESC LIMIT $6";

pub const STATS_ADD: &str = "INSERT INTO identify_stats (env_id, minute, verified, unverified, rejected) VALUES ($1, $2, $3, $4, $5)
     ON CONFLICT (env_id, minute) DO UPDATE SET verified = identify_stats.verified + excluded.verified,
       unverified = identify_stats.unverified + excluded.unverified, rejected = identify_stats.rejected + excluded.rejected";
pub const STATS_SUM: &str = "SELECT CAST(COALESCE(SUM(verified), 0) AS BIGINT) AS v, CAST(COALESCE(SUM(unverified), 0) AS BIGINT) AS u,
       CAST(COALESCE(SUM(rejected), 0) AS BIGINT) AS r
     FROM identify_stats WHERE env_id = $1 AND minute >= $2";

// ---- webhooks and the outbox ----

pub const WEBHOOKS_OF_ENV: &str =
    "SELECT * FROM webhook_endpoints WHERE env_id = $1 ORDER BY created_at, id";
pub const WEBHOOK: &str = "SELECT * FROM webhook_endpoints WHERE env_id = $1 AND id = $2";
pub const WEBHOOKS: &str = "SELECT * FROM webhook_endpoints ORDER BY created_at, id";
pub const WEBHOOK_INSERT: &str = "INSERT INTO webhook_endpoints (id, env_id, url, event_types, secrets, disabled_at, disabled_reason, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, NULL, NULL, $6, $7)";
pub const WEBHOOK_DELETE_DATA: &[&str] = &[
    "DELETE FROM webhook_deliveries WHERE endpoint_id = (SELECT id FROM webhook_endpoints WHERE env_id = $1 AND id = $2)",
    "DELETE FROM webhook_attempts WHERE endpoint_id = (SELECT id FROM webhook_endpoints WHERE env_id = $1 AND id = $2)",
];
pub const WEBHOOK_DELETE: &str = "DELETE FROM webhook_endpoints WHERE env_id = $1 AND id = $2";
pub const WEBHOOK_SET_SECRETS: &str =
    "UPDATE webhook_endpoints SET secrets = $1, updated_at = $2 WHERE env_id = $3 AND id = $4";
pub const WEBHOOK_RESEAL: &str = "UPDATE webhook_endpoints SET secrets = $1 WHERE id = $2";
pub const WEBHOOK_ENABLE: &str = "UPDATE webhook_endpoints SET disabled_at = NULL, disabled_reason = NULL, updated_at = $1 WHERE env_id = $2 AND id = $3";
pub const WEBHOOK_DISABLE: &str = "UPDATE webhook_endpoints SET disabled_at = $1, disabled_reason = $2, updated_at = $1 WHERE id = $3 AND disabled_at IS NULL";
pub const WEBHOOK_REPLAY: &str = "UPDATE webhook_deliveries SET status = 'pending', attempts = 0, next_attempt_at = $1, updated_at = $2 WHERE endpoint_id = $3 AND status IN ('dead', 'held')";

pub const MESSAGE_INSERT: &str = "INSERT INTO webhook_messages (id, env_id, type, payload, created_at, user_id) VALUES ($1, $2, $3, $4, $5, $6)";
/// What erasing a user removes from the outbox: the messages about it (their
/// payloads carry its attributes), with their deliveries and attempts.
pub const USER_DELETE_MESSAGES: &[&str] = &[
    "DELETE FROM webhook_attempts WHERE message_id IN (SELECT id FROM webhook_messages WHERE env_id = $1 AND user_id = $2)",
    "DELETE FROM webhook_deliveries WHERE message_id IN (SELECT id FROM webhook_messages WHERE env_id = $1 AND user_id = $2)",
    "DELETE FROM webhook_messages WHERE env_id = $1 AND user_id = $2",
];
pub const DELIVERY_INSERT: &str = "INSERT INTO webhook_deliveries (id, message_id, endpoint_id, status, attempts, next_attempt_at, created_at, updated_at) VALUES ($1, $2, $3, $4, 0, $5, $6, $6)";
pub const DELIVERY_CLAIM: &str = "UPDATE webhook_deliveries SET attempts = $1, next_attempt_at = $2, updated_at = $3 WHERE id = $4";
pub const DELIVERY_STATUS: &str =
    "UPDATE webhook_deliveries SET status = $1, updated_at = $2 WHERE id = $3";
pub const DELIVERIES_HOLD: &str =
    "UPDATE webhook_deliveries SET status = 'held' WHERE endpoint_id = $1 AND status = 'pending'";
pub const ATTEMPT_INSERT: &str = "INSERT INTO webhook_attempts (delivery_id, endpoint_id, message_id, attempt, status_code, latency_ms, response, error, next_retry_at, created_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)";
pub const ATTEMPTS_PAGE: &str = "SELECT a.* FROM webhook_attempts a JOIN webhook_endpoints e ON e.id = a.endpoint_id
     WHERE e.env_id = $1 AND a.endpoint_id = $2 AND ($3 IS NULL OR a.seq < $3) ORDER BY a.seq DESC LIMIT $4";

/// Due deliveries; on PostgreSQL rows another node holds are skipped, so an
/// attempt is sent by exactly one node.
pub fn deliveries_due(d: Dialect) -> &'static str {
    match d {
        Dialect::Sqlite => {
            "SELECT d.id AS delivery_id, d.message_id, d.endpoint_id, d.attempts, e.env_id, e.url, e.secrets, m.payload, m.created_at AS message_created_at
             FROM webhook_deliveries d
             JOIN webhook_endpoints e ON e.id = d.endpoint_id
             JOIN webhook_messages m ON m.id = d.message_id
             WHERE d.status = 'pending' AND d.next_attempt_at <= $1 AND e.disabled_at IS NULL
             ORDER BY d.next_attempt_at LIMIT $2"
        }
        Dialect::Postgres => {
            "SELECT d.id AS delivery_id, d.message_id, d.endpoint_id, d.attempts, e.env_id, e.url, e.secrets, m.payload, m.created_at AS message_created_at
             FROM webhook_deliveries d
             JOIN webhook_endpoints e ON e.id = d.endpoint_id
             JOIN webhook_messages m ON m.id = d.message_id
             WHERE d.status = 'pending' AND d.next_attempt_at <= $1 AND e.disabled_at IS NULL
             ORDER BY d.next_attempt_at LIMIT $2
             FOR UPDATE OF d SKIP LOCKED"
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every statement of this module, for the placeholder check.
    fn all() -> Vec<&'static str> {
        let mut v = vec![
            META_GET,
            META_PUT,
            PROJECT_ANY,
            PROJECT_INSERT,
            PROJECT_COUNT,
            ADMIN_TOKEN_INSERT,
            ADMIN_TOKEN_BY_HASH,
            ADMIN_TOKENS,
            ADMIN_TOKEN_DELETE,
            ENVS,
            ENV_BY_ID,
            ENV_BY_PK,
            ENV_INSERT,
            ENV_UPDATE_SETTINGS,
            ENV_REVOKE_SESSIONS,
            ENV_BUMP_UNSIGNED,
            ENV_DELETE,
            SECRETS,
            SECRETS_OF_ENV,
            SECRET_BY_ID,
            SECRET_INSERT,
            SECRETS_EXPIRE_OTHERS,
            SECRET_REVOKE,
            SECRET_RESEAL,
            SIGNING_KEYS,
            SIGNING_KEY_INSERT,
            SIGNING_KEYS_RETIRE,
            SIGNING_KEY_RESEAL,
            USER,
            USERS_BY_KEYS,
            ENVS_LOCK_COUNTERS,
            USER_UPSERT,
            USERS_PAGE,
            USER_DELETE,
            USER_DELETE_MEMBERSHIPS,
            USER_DELETE_EVENTS,
            TOMBSTONE_PUT,
            TOMBSTONES_SINCE,
            TOMBSTONES_PRUNE,
            COMPANY,
            COMPANY_UPSERT,
            COMPANIES_OF_USER,
            MEMBERSHIP,
            MEMBERSHIP_COUNT,
            MEMBERSHIP_UPSERT,
            MEMBERSHIPS_DROP_UNPROVEN,
            JTI_USED,
            JTI_REMEMBER,
            EVENT_INSERT,
            EVENTS_PAGE,
            AUDIT_INSERT,
            AUDIT_PAGE,
            AUDIT_PAGE_DEPLOYMENT,
            STATS_ADD,
            STATS_SUM,
            WEBHOOKS_OF_ENV,
            WEBHOOK,
            WEBHOOKS,
            WEBHOOK_INSERT,
            WEBHOOK_DELETE,
            WEBHOOK_SET_SECRETS,
            WEBHOOK_RESEAL,
            WEBHOOK_ENABLE,
            WEBHOOK_DISABLE,
            WEBHOOK_REPLAY,
            MESSAGE_INSERT,
            DELIVERY_INSERT,
            DELIVERY_CLAIM,
            DELIVERY_STATUS,
            DELIVERIES_HOLD,
            ATTEMPT_INSERT,
            ATTEMPTS_PAGE,
        ];
        v.extend(ENV_DELETE_DATA);
        v.extend(WEBHOOK_DELETE_DATA);
        v.extend(USER_DELETE_MESSAGES);
        for d in [Dialect::Sqlite, Dialect::Postgres] {
            v.push(deliveries_due(d));
            v.push(env_unsigned_count(d, true));
        }
        v
    }

    /// The numbers of `$N` placeholders in order of appearance.
    fn placeholders(sql: &str) -> Vec<u32> {
        let b = sql.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < b.len() {
            if b[i] == b'$' {
                let digits: String = sql[i + 1..]
                    .chars()
                    .take_while(char::is_ascii_digit)
                    .collect();
                if let Ok(n) = digits.parse() {
                    out.push(n);
                }
                i += digits.len();
            }
            i += 1;
        }
        out
    }

    #[test]
    fn placeholders_first_appear_in_ascending_order() {
        for sql in all() {
            let mut next = 1;
            for n in placeholders(sql) {
                assert!(n <= next, "${n} appears before ${next} in: {sql}");
                if n == next {
                    next += 1;
                }
            }
            assert!(!sql.contains('?'), "use $N placeholders: {sql}");
        }
    }
}
