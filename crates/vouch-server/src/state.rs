//! Shared state: the store, the master key, and in-memory snapshots of the
//! environments, their key rings and the session signing keys.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use vouch_core::{KeyEntry, KeyRing, Secret};

use crate::config::Config;
use crate::crypto::MasterKey;
use crate::model::{Environment, SecretRecord, Ts};
use crate::session::SessionKeys;
use crate::store::Store;

/// One environment with its decrypted key ring (whole history).
#[derive(Debug)]
pub struct EnvContext {
    pub env: Environment,
    pub ring: KeyRing,
    pub secrets: Vec<SecretRecord>,
}

/// An immutable view of every environment, swapped whole on change.
#[derive(Debug, Default)]
pub struct Snapshot {
    pub by_id: HashMap<String, Arc<EnvContext>>,
    pub by_pk: HashMap<String, Arc<EnvContext>>,
    /// SHA-256 of every secret value → (environment id, key id), for exposure scans.
    pub secret_index: HashMap<[u8; 32], (String, String)>,
}

pub fn secret_context(key_id: &str) -> String {
    format!("secret:{key_id}")
}

#[derive(Debug)]
pub struct Inner {
    pub store: Arc<dyn Store>,
    pub master: MasterKey,
    pub config: Config,
    pub issuer: String,
    snapshot: RwLock<Arc<Snapshot>>,
    sessions: RwLock<Arc<SessionKeys>>,
    /// One rebuild at a time, so an older rebuild never replaces a newer one
    /// (with a shared database, rebuilds also come from other nodes' changes).
    reload_lock: tokio::sync::Mutex<()>,
}

/// Cloned into every handler.
#[derive(Clone, Debug)]
pub struct AppState(pub Arc<Inner>);

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

pub fn now() -> Ts {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

impl AppState {
    pub async fn new(
        store: Arc<dyn Store>,
        master: MasterKey,
        config: Config,
    ) -> anyhow::Result<Self> {
        let issuer = config
            .public_url
            .clone()
            .unwrap_or_else(|| format!("http://{}", config.addr));
        let sessions = SessionKeys::load(&master, &store.list_signing_keys().await?, now())?;
        let state = AppState(Arc::new(Inner {
            store,
            master,
            config,
            issuer,
            snapshot: RwLock::new(Arc::new(Snapshot::default())),
            sessions: RwLock::new(Arc::new(sessions)),
            reload_lock: tokio::sync::Mutex::new(()),
        }));
        state.reload().await?;
        if let Some(changes) = state.store.changes() {
            tokio::spawn(follow_changes(Arc::downgrade(&state.0), changes));
        }
        Ok(state)
    }

    pub fn snapshot(&self) -> Arc<Snapshot> {
        match self.snapshot.read() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    pub fn sessions(&self) -> Arc<SessionKeys> {
        match self.sessions.read() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// Rebuilds the snapshot from the store (after any change of keys or settings).
    pub async fn reload(&self) -> anyhow::Result<()> {
        let _guard = self.reload_lock.lock().await;
        let envs = self.store.list_environments().await?;
        let secrets = self.store.list_all_secrets().await?;
        let mut by_env: HashMap<String, Vec<SecretRecord>> = HashMap::new();
        for s in secrets {
            by_env.entry(s.env_id.clone()).or_default().push(s);
        }
        let mut snap = Snapshot::default();
        for env in envs {
            let records = by_env.remove(&env.id).unwrap_or_default();
            let mut ring = KeyRing::default();
            for r in &records {
                let plain = self.master.open(&r.ciphertext, &secret_context(&r.id))?;
                let value = String::from_utf8(plain.to_vec())
                    .map_err(|_| anyhow::anyhow!("secret {} is not UTF-8", r.id))?;
                let secret = Secret::new(value);
                snap.secret_index.insert(
                    vouch_core::keys::sha256(secret.as_bytes()),
                    (env.id.clone(), r.id.clone()),
                );
                ring.push(KeyEntry::new(
                    r.id.clone(),
                    secret,
                    r.created_at,
                    r.expires_at,
                    r.revoked_at,
                ));
            }
            let ctx = Arc::new(EnvContext {
                env,
                ring,
                secrets: records,
            });
            snap.by_pk
                .insert(ctx.env.publishable_key.clone(), ctx.clone());
            snap.by_id.insert(ctx.env.id.clone(), ctx);
        }
        match self.snapshot.write() {
            Ok(mut g) => *g = Arc::new(snap),
            Err(p) => *p.into_inner() = Arc::new(snap),
        }
        Ok(())
    }

    pub async fn reload_sessions(&self) -> anyhow::Result<()> {
        let _guard = self.reload_lock.lock().await;
        let keys = SessionKeys::load(&self.master, &self.store.list_signing_keys().await?, now())?;
        match self.sessions.write() {
            Ok(mut g) => *g = Arc::new(keys),
            Err(p) => *p.into_inner() = Arc::new(keys),
        }
        Ok(())
    }
}

/// With a shared database, other nodes change environments, secrets and
/// signing keys: rebuild the caches on every signal from the store, and every
/// 30 s in case a signal was lost. Ends with the state or the store.
async fn follow_changes(
    state: std::sync::Weak<Inner>,
    mut changes: tokio::sync::broadcast::Receiver<()>,
) {
    use tokio::sync::broadcast::error::{RecvError, TryRecvError};
    const FALLBACK: std::time::Duration = std::time::Duration::from_secs(30);
    loop {
        if let Ok(Err(RecvError::Closed)) = tokio::time::timeout(FALLBACK, changes.recv()).await {
            return;
        }
        // One rebuild covers every signal that arrived meanwhile.
        while !matches!(
            changes.try_recv(),
            Err(TryRecvError::Empty | TryRecvError::Closed)
        ) {}
        let Some(inner) = state.upgrade() else {
            return;
        };
        let state = AppState(inner);
        if let Err(e) = state.reload().await {
            tracing::warn!(error = %e, "refreshing the environment cache failed; retrying on the next change");
        }
        if let Err(e) = state.reload_sessions().await {
            tracing::warn!(error = %e, "refreshing the session keys failed; retrying on the next change");
        }
    }
}
