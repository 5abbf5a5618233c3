//! Start-up: open the store, check the master key, create the first
//! environment on an empty store, and say where everything is.

use std::fmt::Write;

use vouch_core::Mode;

use crate::clock::now;
use crate::config::Config;
use crate::crypto::MasterKey;
use crate::crypto::secret_context;
use crate::datadir::{self, DataDirLock};
use crate::model::{AdminRole, AdminTokenRecord, EnvSettings, Environment, SecretRecord};
use crate::state::AppState;
use crate::store::{self, Bootstrap};

/// The token given or printed at start: full access, named for where it came from.
fn bootstrap_token(value: &[u8], now: crate::model::Ts) -> AdminTokenRecord {
    AdminTokenRecord {
        id: vouch_core::keys::generate_id("tok"),
        name: "bootstrap".into(),
        role: AdminRole::Admin,
        environment_ids: None,
        hash: vouch_core::keys::sha256(value),
        created_at: now,
    }
}

/// What [`start`] hands the server.
#[derive(Debug)]
pub struct Started {
    pub state: AppState,
    /// The text to print.
    pub banner: String,
    /// The SQLite database's lock, to hold while serving (None on PostgreSQL).
    pub lock: Option<DataDirLock>,
}

/// Opens everything and returns the state and the text to print.
pub async fn start(config: Config) -> anyhow::Result<Started> {
    if config.master_key.is_none()
        && config
            .database_url
            .as_deref()
            .is_some_and(store::is_postgres_url)
    {
        anyhow::bail!(
            "VOUCH_MASTER_KEY is required with PostgreSQL: every node must share it (generate one with `vouch keygen --master-key`)"
        );
    }
    // Modes and the lock before the store creates any file.
    let lock = datadir::prepare(&config)?;
    let (master, created_key_file) = match &config.master_key {
        Some(k) => (MasterKey::from_base64(k)?, false),
        None => {
            datadir::private_dir(&config.data_dir)?;
            MasterKey::load_or_create_file(&config.data_dir)?
        }
    };
    let store = store::open(config.database_url.as_deref(), &config.data_dir).await?;
    let check = master.check_value();
    if let Some(stored) = store.get_meta("master_key_check").await?
        && stored != check
    {
        store.close().await;
        let pending = config
            .data_dir
            .join(format!("{}.new", crate::crypto::MASTER_KEY_FILE));
        let hint = if config.master_key.is_none() && pending.exists() {
            format!(
                "; {} is there: an interrupted `vouch rotate-master-key` may have re-encrypted the data under it, so run `vouch rotate-master-key --data-dir {}` again to finish",
                pending.display(),
                config.data_dir.display()
            )
        } else {
            String::new()
        };
        anyhow::bail!(
            "the master key does not match this data (it was created with another VOUCH_MASTER_KEY or key file); refusing to start rather than lose access to the stored secrets{hint}"
        );
    }
    let base = config
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{}", config.addr));
    let base = base.trim_end_matches('/').to_string();
    let admin_base = config.admin_addr.as_ref().map(|a| format!("http://{a}"));
    let admin_ui = admin_base.as_deref().unwrap_or(&base);
    let mut banner = String::new();
    let now = now();
    if store.is_empty().await? {
        let admin_token = match &config.admin_token {
            Some(t) => vouch_core::Secret::new(t.clone()),
            None => vouch_core::keys::generate_admin_token(),
        };
        let env = Environment {
            id: vouch_core::keys::generate_id("env"),
            project_id: vouch_core::keys::generate_id("prj"),
            publishable_key: vouch_core::keys::generate_publishable_key(Mode::Test),
            settings: EnvSettings::new("test".into(), Mode::Test),
            unsigned_count: 0,
            sessions_revoked_at: None,
            created_at: now,
            updated_at: now,
        };
        let secret = vouch_core::keys::generate_identity_secret(Mode::Test);
        let key_id = vouch_core::keys::generate_id("key");
        let record = SecretRecord {
            id: key_id.clone(),
            env_id: env.id.clone(),
            ciphertext: master.seal(secret.as_bytes(), &secret_context(&key_id))?,
            imported: false,
            created_at: now,
            expires_at: None,
            revoked_at: None,
        };
        let signing_key = crate::session::new_signing_key(&master, now)?;
        store
            .bootstrap(Bootstrap {
                project_id: env.project_id.clone(),
                project_name: "Default project".into(),
                environment: env.clone(),
                secret: record,
                signing_key,
                admin_token: Some(bootstrap_token(admin_token.as_bytes(), now)),
                master_key_check: check,
                now,
            })
            .await?;
        let _ = writeln!(banner, "Vouch is set up.\n");
        if config.admin_token.is_none() {
            let _ = writeln!(banner, "  Admin token:      {}", admin_token.expose());
        } else {
            let _ = writeln!(
                banner,
                "  Admin token:      (the one given in VOUCH_ADMIN_TOKEN)"
            );
        }
        let _ = writeln!(banner, "  Environment:      {} (test)", env.id);
        let _ = writeln!(banner, "  Publishable key:  {}", env.publishable_key);
        let _ = writeln!(
            banner,
            "  Identity secret:  {}   ({key_id})",
            secret.expose()
        );
        if created_key_file {
            let _ = writeln!(
                banner,
                "  Master key file:  {} (back it up: without it the secrets cannot be read)",
                config
                    .data_dir
                    .join(crate::crypto::MASTER_KEY_FILE)
                    .display()
            );
        }
        if config.admin_token.is_none() {
            let _ = write!(
                banner,
                "\nThe admin token is shown only this once: store it now (Vouch keeps only its hash).\n"
            );
        } else {
            let _ = writeln!(banner);
        }
        let _ = writeln!(
            banner,
            "The identity secret can be revealed again in the admin UI ({admin_ui}/admin,\n\
             Identity verification > Reveal); every reveal is audited.\n"
        );
    } else if let Some(t) = &config.admin_token
        && store
            .admin_token(vouch_core::keys::sha256(t.as_bytes()))
            .await?
            .is_none()
    {
        // Only a first start takes VOUCH_ADMIN_TOKEN in: a token deleted
        // through the API must not come back with a restart.
        let _ = writeln!(
            banner,
            "Warning: VOUCH_ADMIN_TOKEN is not an admin token of this data (deleted, or never added); it is not accepted. Make one with `vouch admin-token create`.\n"
        );
    }
    let _ = writeln!(
        banner,
        "Vouch is listening on {base} ({} store)",
        store.backend()
    );
    match &admin_base {
        None => {
            let _ = writeln!(banner, "  Widget API:       {base}/v1/identify");
            let _ = writeln!(banner, "  Admin API:        {base}/admin/v1/environments");
            let _ = writeln!(banner, "  Session keys:     {base}/.well-known/jwks.json");
            let _ = writeln!(banner, "  Admin UI:         {base}/admin");
            if config.demo {
                let _ = writeln!(banner, "  Demo:             {base}/demo");
            }
            let _ = write!(banner, "  API reference:    {base}/openapi.json");
        }
        Some(admin) => {
            let _ = writeln!(banner, "  Widget API:       {base}/v1/identify");
            let _ = writeln!(banner, "  Session keys:     {base}/.well-known/jwks.json");
            if config.demo {
                let _ = writeln!(banner, "  Demo:             {base}/demo");
            }
            let _ = writeln!(
                banner,
                "  API reference:    {base}/openapi.json (widget API)"
            );
            let _ = writeln!(
                banner,
                "Admin listener on {admin} (only the admin API, the admin UI and /metrics; keep it private)"
            );
            let _ = writeln!(banner, "  Admin API:        {admin}/admin/v1/environments");
            let _ = writeln!(banner, "  Admin UI:         {admin}/admin");
            let _ = writeln!(banner, "  Metrics:          {admin}/metrics");
            let _ = write!(
                banner,
                "  API reference:    {admin}/openapi.json (the whole API)"
            );
        }
    }
    if config.demo {
        let _ = write!(
            banner,
            "\n\nWarning: the demo is on (--demo). Anyone who can reach this server can get any user\n\
             id of a test environment signed at {base}/demo/api/sign, and so\n\
             impersonate any user of a test environment (live environments are never served).\n\
             Do not use --demo on a server that others can reach."
        );
    }
    let state = AppState::new(store, master, config).await?;
    Ok(Started {
        state,
        banner,
        lock,
    })
}
