//! Store-level fixtures: an environment and a bootstrapped SQLite store.

use serde_json::json;
use vouch_core::Mode;
use vouch_server::model::{EnvSettings, Environment, SecretRecord, SigningKeyRecord};
use vouch_server::store::sqlite::SqliteStore;
use vouch_server::store::{Bootstrap, NewAudit, Store};

pub const NOW: i64 = 1_800_000_000;

/// Environment `id` of project `prj_1`, its first secret and creation audit.
pub fn environment(id: &str) -> (Environment, SecretRecord, NewAudit) {
    let env = Environment {
        id: id.into(),
        project_id: "prj_1".into(),
        publishable_key: format!("pk_test_{id}"),
        settings: EnvSettings::new(id.into(), Mode::Test),
        unsigned_count: 0,
        sessions_revoked_at: None,
        created_at: NOW,
        updated_at: NOW,
    };
    let secret = SecretRecord {
        id: format!("key_{id}"),
        env_id: id.into(),
        ciphertext: vec![1, 2, 3],
        imported: false,
        created_at: NOW,
        expires_at: None,
        revoked_at: None,
    };
    let audit = NewAudit {
        env_id: Some(id.into()),
        kind: "environment.created",
        user_id: None,
        key_id: None,
        actor: None,
        detail: json!({}),
        at: NOW,
    };
    (env, secret, audit)
}

/// A SQLite store in `dir`, bootstrapped with project `prj_1` and environment `env_id`.
pub async fn bootstrapped_sqlite(dir: &std::path::Path, env_id: &str) -> Store {
    bootstrapped(None, dir, env_id).await
}

/// The store at `url` (PostgreSQL) or in `dir` (SQLite, with no URL),
/// bootstrapped with project `prj_1` and environment `env_id`.
pub async fn bootstrapped(url: Option<&str>, dir: &std::path::Path, env_id: &str) -> Store {
    let store = vouch_server::store::open(url, dir).await.unwrap();
    let (env, secret, _) = environment(env_id);
    store
        .bootstrap(Bootstrap {
            project_id: "prj_1".into(),
            project_name: "Default".into(),
            environment: env,
            secret,
            signing_key: SigningKeyRecord {
                kid: "sk_1".into(),
                ciphertext: vec![4, 5, 6],
                public_key: vec![7; 32],
                created_at: NOW,
                retired_at: None,
            },
            admin_token: None,
            master_key_check: "check".into(),
            now: NOW,
        })
        .await
        .unwrap();
    store
}

/// The SQLite store in `dir` (opened, migrated; nothing written).
pub async fn sqlite_store(dir: &std::path::Path) -> Store {
    Store::new(SqliteStore::open_dir(dir).await.unwrap())
}
