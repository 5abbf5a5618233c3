//! `vouch migrate-store`: copies every table of an SQLite store into an
//! empty PostgreSQL database, in one transaction.

use std::path::Path;

use sqlx::{ConnectOptions, Connection, Row};

use super::postgres::PgStore;
use super::sqlite::{DB_FILE, SqliteStore};

#[derive(Clone, Copy, Debug)]
enum Col {
    Text,
    Int,
    Bool,
    Blob,
}

/// Every table and column of the SQLite schema, parents before children.
const TABLES: &[(&str, &[(&str, Col)])] = {
    use Col::*;
    &[
        ("meta", &[("key", Text), ("value", Text)]),
        (
            "admin_tokens",
            &[
                ("id", Text),
                ("token_hash", Blob),
                ("created_at", Int),
                ("name", Text),
                ("role", Text),
                ("environment_ids", Text),
            ],
        ),
        (
            "projects",
            &[("id", Text), ("name", Text), ("created_at", Int)],
        ),
        (
            "environments",
            &[
                ("id", Text),
                ("project_id", Text),
                ("publishable_key", Text),
                ("settings", Text),
                ("unsigned_count", Int),
                ("created_at", Int),
                ("updated_at", Int),
                ("sessions_revoked_at", Int),
            ],
        ),
        (
            "secrets",
            &[
                ("id", Text),
                ("env_id", Text),
                ("ciphertext", Blob),
                ("imported", Bool),
                ("created_at", Int),
                ("expires_at", Int),
                ("revoked_at", Int),
                ("revoke_reason", Text),
            ],
        ),
        (
            "signing_keys",
            &[
                ("kid", Text),
                ("ciphertext", Blob),
                ("public_key", Blob),
                ("created_at", Int),
                ("retired_at", Int),
            ],
        ),
        (
            "users",
            &[
                ("env_id", Text),
                ("id", Text),
                ("verified", Bool),
                ("ever_verified", Bool),
                ("verified_by", Text),
                ("key_id", Text),
                ("verified_at", Int),
                ("attributes", Text),
                ("verified_attributes", Text),
                ("counted_unsigned", Bool),
                ("created_at", Int),
                ("updated_at", Int),
            ],
        ),
        (
            "companies",
            &[
                ("env_id", Text),
                ("id", Text),
                ("verified", Bool),
                ("key_id", Text),
                ("verified_at", Int),
                ("attributes", Text),
                ("created_at", Int),
                ("updated_at", Int),
            ],
        ),
        (
            "memberships",
            &[
                ("env_id", Text),
                ("user_id", Text),
                ("company_id", Text),
                ("created_at", Int),
                ("proven", Bool),
            ],
        ),
        (
            "events",
            &[
                ("seq", Int),
                ("id", Text),
                ("env_id", Text),
                ("user_id", Text),
                ("visitor_id", Text),
                ("name", Text),
                ("properties", Text),
                ("created_at", Int),
            ],
        ),
        (
            "audit",
            &[
                ("seq", Int),
                ("id", Text),
                ("env_id", Text),
                ("kind", Text),
                ("user_id", Text),
                ("key_id", Text),
                ("detail", Text),
                ("created_at", Int),
                ("actor", Text),
            ],
        ),
        (
            "identify_stats",
            &[
                ("env_id", Text),
                ("minute", Int),
                ("verified", Int),
                ("unverified", Int),
                ("rejected", Int),
            ],
        ),
        (
            "deleted_users",
            &[("env_id", Text), ("user_id", Text), ("deleted_at", Int)],
        ),
        (
            "used_jtis",
            &[("env_id", Text), ("jti", Text), ("expires_at", Int)],
        ),
        (
            "webhook_endpoints",
            &[
                ("id", Text),
                ("env_id", Text),
                ("url", Text),
                ("event_types", Text),
                ("secrets", Blob),
                ("disabled_at", Int),
                ("disabled_reason", Text),
                ("created_at", Int),
                ("updated_at", Int),
            ],
        ),
        (
            "webhook_messages",
            &[
                ("id", Text),
                ("env_id", Text),
                ("type", Text),
                ("payload", Text),
                ("created_at", Int),
                ("user_id", Text),
            ],
        ),
        (
            "webhook_deliveries",
            &[
                ("id", Text),
                ("message_id", Text),
                ("endpoint_id", Text),
                ("status", Text),
                ("attempts", Int),
                ("next_attempt_at", Int),
                ("created_at", Int),
                ("updated_at", Int),
            ],
        ),
        (
            "webhook_attempts",
            &[
                ("seq", Int),
                ("delivery_id", Text),
                ("endpoint_id", Text),
                ("message_id", Text),
                ("attempt", Int),
                ("status_code", Int),
                ("latency_ms", Int),
                ("response", Text),
                ("error", Text),
                ("next_retry_at", Int),
                ("created_at", Int),
            ],
        ),
    ]
};

/// Rows copied per table, in copy order.
pub type CopyReport = Vec<(&'static str, u64)>;

/// Rows in each table of the PostgreSQL database at `url` that `migrate-store`
/// would fill (migrating its schema first); all zero for an empty target.
pub async fn row_counts(url: &str) -> anyhow::Result<CopyReport> {
    let store = PgStore::open(url).await?;
    let mut out = Vec::new();
    for (table, _) in TABLES {
        let n: i64 =
            sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM {table}")))
                .fetch_one(store.pool())
                .await?;
        out.push((*table, u64::try_from(n).unwrap_or(0)));
    }
    store.close().await;
    Ok(out)
}

/// Copies every table of the SQLite store in `data_dir` into the empty
/// PostgreSQL database at `url`, in one transaction. Secrets stay sealed under
/// the same master key, so the PostgreSQL nodes need that key.
pub async fn copy_from_sqlite(data_dir: &Path, url: &str) -> anyhow::Result<CopyReport> {
    let db = data_dir.join(DB_FILE);
    if !db.is_file() {
        anyhow::bail!("no Vouch SQLite database at {}", db.display());
    }
    // Brings the source to the current schema, as `vouch serve` would.
    let source = SqliteStore::open_dir(data_dir).await?;
    source.close().await;
    let mut src = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(&db)
        .read_only(true)
        .connect()
        .await?;
    let target = PgStore::open(url).await?;
    let mut tx = target.pool().begin().await?;
    for (table, _) in TABLES {
        let n: i64 =
            sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM {table}")))
                .fetch_one(&mut *tx)
                .await?;
        if n > 0 {
            anyhow::bail!(
                "the PostgreSQL database is not empty (table {table} has {n} rows); migrate-store only fills an empty database"
            );
        }
    }
    let mut report = Vec::new();
    for (table, cols) in TABLES {
        let names: Vec<&str> = cols.iter().map(|(n, _)| *n).collect();
        let select = format!("SELECT {} FROM {table}", names.join(", "));
        let placeholders: Vec<String> = (1..=cols.len()).map(|i| format!("${i}")).collect();
        let insert = format!(
            "INSERT INTO {table} ({}) VALUES ({})",
            names.join(", "),
            placeholders.join(", ")
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(select))
            .fetch_all(&mut src)
            .await?;
        for row in &rows {
            let mut q = sqlx::query(sqlx::AssertSqlSafe(insert.clone()));
            for (i, (name, col)) in cols.iter().enumerate() {
                q = match col {
                    Col::Text => q.bind(sqlite_col::<Option<String>>(row, i, table, name)?),
                    Col::Int => q.bind(sqlite_col::<Option<i64>>(row, i, table, name)?),
                    Col::Bool => q.bind(sqlite_col::<Option<bool>>(row, i, table, name)?),
                    Col::Blob => q.bind(sqlite_col::<Option<Vec<u8>>>(row, i, table, name)?),
                };
            }
            q.execute(&mut *tx).await?;
        }
        report.push((*table, u64::try_from(rows.len()).unwrap_or(0)));
    }
    for table in ["events", "audit", "webhook_attempts"] {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT setval(pg_get_serial_sequence('{table}', 'seq'), COALESCE((SELECT MAX(seq) FROM {table}), 0) + 1, false)"
        )))
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    let _ = src.close().await;
    target.close().await;
    Ok(report)
}

fn sqlite_col<T>(
    row: &sqlx::sqlite::SqliteRow,
    i: usize,
    table: &str,
    name: &str,
) -> anyhow::Result<T>
where
    T: for<'r> sqlx::Decode<'r, sqlx::Sqlite> + sqlx::Type<sqlx::Sqlite>,
{
    row.try_get(i)
        .map_err(|e| anyhow::anyhow!("cannot read {table}.{name} from SQLite: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_create_the_same_tables_on_both_and_every_table_is_copied() {
        let tables = |sql: &str| {
            let mut t: Vec<String> = sql
                .lines()
                .filter_map(|l| l.strip_prefix("CREATE TABLE "))
                .filter_map(|l| l.split_whitespace().next())
                .map(str::to_string)
                // PostgreSQL only: shared failure counters, and a table
                // renamed in the migration that creates it.
                .filter(|t| t != "rate_limits" && t != "identify_stats_merged")
                .collect();
            t.sort();
            t
        };
        let pg = super::super::postgres::MIGRATIONS;
        let lite = super::super::sqlite::MIGRATIONS;
        assert_eq!(pg.len(), lite.len(), "same numbering");
        for (pg, lite) in pg.iter().zip(lite) {
            assert_eq!(tables(pg), tables(lite));
        }
        let copied: Vec<&str> = TABLES.iter().map(|(t, _)| *t).collect();
        for sql in lite {
            for t in tables(sql) {
                assert!(
                    copied.contains(&t.as_str()),
                    "{t} is not copied by migrate-store"
                );
            }
        }
    }
}
