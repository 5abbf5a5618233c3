//! Shared state: the store, the master key, and in-memory snapshots of the
//! environments (with their key rings and erased users) and of the session
//! signing keys.
//!
//! The snapshot is the cache every widget call reads instead of the database.
//! It is rebuilt by the writes that change it (the `AppState` methods below,
//! so no handler has to remember to), on every change another node announces,
//! and every 30 s; a publishable key or environment this node does not know,
//! or a proof that fails, re-reads that one environment from the database (at
//! most once per 100 ms per environment) so a change made on another node a
//! moment ago is seen by the very next call.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use vouch_core::{KeyEntry, KeyRing, Secret};

use crate::clock::now;
use crate::config::Config;
use crate::crypto::{MasterKey, secret_context};
use crate::model::*;
use crate::session::SessionKeys;
use crate::store::{Reseal, Store, StoreResult};

/// One environment with its decrypted key ring (whole history).
#[derive(Debug)]
pub struct EnvContext {
    pub env: Environment,
    pub ring: KeyRing,
    pub secrets: Vec<SecretRecord>,
    /// Erased users (within the longest session lifetime) and when.
    pub deleted_users: HashMap<String, Ts>,
}

impl EnvContext {
    /// Whether any secret verifies proofs now.
    pub fn has_active_secret(&self, now: Ts) -> bool {
        self.secrets
            .iter()
            .any(|s| s.revoked_at.is_none() && s.expires_at.is_none_or(|e| e > now))
    }
}

/// An immutable view of every environment, swapped whole on change.
#[derive(Debug, Default, Clone)]
pub struct Snapshot {
    pub by_id: HashMap<String, Arc<EnvContext>>,
    pub by_pk: HashMap<String, Arc<EnvContext>>,
    /// SHA-256 of every secret value → (environment id, key id), for exposure scans.
    pub secret_index: HashMap<[u8; 32], (String, String)>,
}

impl Snapshot {
    /// Every other environment's name and key ring, for the diagnosis
    /// ("signed with the secret of environment X").
    pub fn other_rings(&self, env_id: &str) -> Vec<(&str, &KeyRing)> {
        self.by_id
            .values()
            .filter(|o| o.env.id != env_id)
            .map(|o| (o.env.settings.name.as_str(), &o.ring))
            .collect()
    }

    fn remove(&mut self, env_id: &str) {
        if let Some(old) = self.by_id.remove(env_id) {
            self.by_pk.remove(&old.env.publishable_key);
        }
        self.secret_index.retain(|_, (e, _)| e != env_id);
    }

    fn insert(&mut self, ctx: Arc<EnvContext>, index: SecretIndex) {
        self.remove(&ctx.env.id);
        for (hash, key_id) in index {
            self.secret_index.insert(hash, (ctx.env.id.clone(), key_id));
        }
        self.by_pk
            .insert(ctx.env.publishable_key.clone(), ctx.clone());
        self.by_id.insert(ctx.env.id.clone(), ctx);
    }
}

/// How often one environment may be re-read on a miss or a failed proof.
const REFRESH_EVERY: Duration = Duration::from_millis(100);
/// Unknown publishable keys remembered, and database look-ups of unknown
/// keys allowed a second: a flood of random keys cannot flood the database.
const UNKNOWN_KEYS: usize = 10_000;
const UNKNOWN_LOOKUPS_PER_SECOND: u32 = 100;

#[derive(Debug, Default)]
struct Misses {
    /// Environment id or publishable key → when it was last read.
    checked: HashMap<String, Instant>,
    /// Look-ups of unknown keys in the current second.
    second: Option<Instant>,
    lookups: u32,
}

impl Misses {
    /// Whether `key` may be read from the database now (and records it).
    fn may_read(&mut self, key: &str, unknown: bool) -> bool {
        let now = Instant::now();
        if self
            .checked
            .get(key)
            .is_some_and(|at| now.duration_since(*at) < REFRESH_EVERY)
        {
            return false;
        }
        if unknown {
            if self
                .second
                .is_none_or(|s| now.duration_since(s) >= Duration::from_secs(1))
            {
                self.second = Some(now);
                self.lookups = 0;
            }
            if self.lookups >= UNKNOWN_LOOKUPS_PER_SECOND {
                return false;
            }
            self.lookups += 1;
        }
        if self.checked.len() >= UNKNOWN_KEYS {
            self.checked
                .retain(|_, at| now.duration_since(*at) < REFRESH_EVERY);
            if self.checked.len() >= UNKNOWN_KEYS {
                self.checked.clear();
            }
        }
        self.checked.insert(key.to_string(), now);
        true
    }
}

#[derive(Debug)]
pub struct Inner {
    pub store: Store,
    pub master: MasterKey,
    pub config: Config,
    pub issuer: String,
    snapshot: RwLock<Arc<Snapshot>>,
    sessions: RwLock<Arc<SessionKeys>>,
    /// One rebuild at a time, so an older rebuild never replaces a newer one
    /// (with a shared database, rebuilds also come from other nodes' changes).
    reload_lock: tokio::sync::Mutex<()>,
    misses: Mutex<Misses>,
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

/// SHA-256 of each secret value and its key id.
type SecretIndex = Vec<([u8; 32], String)>;

/// Decrypts an environment's secrets into its context and index entries.
fn build(
    master: &MasterKey,
    env: Environment,
    records: Vec<SecretRecord>,
    deleted_users: HashMap<String, Ts>,
) -> anyhow::Result<(Arc<EnvContext>, SecretIndex)> {
    let mut ring = KeyRing::default();
    let mut index = Vec::with_capacity(records.len());
    for r in &records {
        let plain = master.open(&r.ciphertext, &secret_context(&r.id))?;
        let value = String::from_utf8(plain.to_vec())
            .map_err(|_| anyhow::anyhow!("secret {} is not UTF-8", r.id))?;
        let secret = Secret::new(value);
        index.push((vouch_core::keys::sha256(secret.as_bytes()), r.id.clone()));
        ring.push(KeyEntry::new(
            r.id.clone(),
            secret,
            r.created_at,
            r.expires_at,
            r.revoked_at,
        ));
    }
    let ctx = EnvContext {
        env,
        ring,
        secrets: records,
        deleted_users,
    };
    Ok((Arc::new(ctx), index))
}

impl AppState {
    pub async fn new(store: Store, master: MasterKey, config: Config) -> anyhow::Result<Self> {
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
            misses: Mutex::new(Misses::default()),
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

    fn swap(&self, snap: Snapshot) {
        match self.snapshot.write() {
            Ok(mut g) => *g = Arc::new(snap),
            Err(p) => *p.into_inner() = Arc::new(snap),
        }
    }

    pub fn sessions(&self) -> Arc<SessionKeys> {
        match self.sessions.read() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// Rebuilds the whole snapshot from the store.
    pub async fn reload(&self) -> anyhow::Result<()> {
        let _guard = self.reload_lock.lock().await;
        let envs = self.store.list_environments().await?;
        let secrets = self.store.list_all_secrets().await?;
        let tombstones = self.store.tombstones(now() - MAX_SESSION_TTL).await?;
        let mut by_env: HashMap<String, Vec<SecretRecord>> = HashMap::new();
        for s in secrets {
            by_env.entry(s.env_id.clone()).or_default().push(s);
        }
        let mut deleted: HashMap<String, HashMap<String, Ts>> = HashMap::new();
        for t in tombstones {
            deleted
                .entry(t.env_id)
                .or_default()
                .insert(t.user_id, t.deleted_at);
        }
        let mut snap = Snapshot::default();
        for env in envs {
            let records = by_env.remove(&env.id).unwrap_or_default();
            let gone = deleted.remove(&env.id).unwrap_or_default();
            let (ctx, index) = build(&self.master, env, records, gone)?;
            snap.insert(ctx, index);
        }
        self.swap(snap);
        Ok(())
    }

    /// Re-reads one environment (by id) into the snapshot; None when it no
    /// longer exists. Erased users are kept as the snapshot knew them.
    pub async fn reload_env(&self, env_id: &str) -> anyhow::Result<Option<Arc<EnvContext>>> {
        let env = self.store.get_environment(env_id).await?;
        self.install(env_id, env).await
    }

    async fn install(
        &self,
        env_id: &str,
        env: Option<Environment>,
    ) -> anyhow::Result<Option<Arc<EnvContext>>> {
        let _guard = self.reload_lock.lock().await;
        let mut snap = (*self.snapshot()).clone();
        let Some(env) = env else {
            snap.remove(env_id);
            self.swap(snap);
            return Ok(None);
        };
        let records = self.store.list_secrets(&env.id).await?;
        let gone = snap
            .by_id
            .get(&env.id)
            .map(|c| c.deleted_users.clone())
            .unwrap_or_default();
        let (ctx, index) = build(&self.master, env, records, gone)?;
        snap.insert(ctx.clone(), index);
        self.swap(snap);
        Ok(Some(ctx))
    }

    /// The environment of a publishable key, re-read from the database when
    /// this node does not know it (bounded: see [`Misses`]).
    pub async fn env_by_pk(&self, pk: &str) -> StoreResult<Option<Arc<EnvContext>>> {
        if let Some(ctx) = self.snapshot().by_pk.get(pk) {
            return Ok(Some(ctx.clone()));
        }
        if !vouch_core::keys::looks_like_publishable_key(pk) || !self.may_read(pk, true) {
            return Ok(None);
        }
        let env = self.store.environment_by_pk(pk).await?;
        let Some(env) = env else { return Ok(None) };
        let id = env.id.clone();
        self.install(&id, Some(env)).await.map_err(internal)
    }

    /// The environment of an id (a session's `aud`), re-read when unknown.
    pub async fn env_by_id(&self, env_id: &str) -> StoreResult<Option<Arc<EnvContext>>> {
        if let Some(ctx) = self.snapshot().by_id.get(env_id) {
            return Ok(Some(ctx.clone()));
        }
        if !self.may_read(env_id, true) {
            return Ok(None);
        }
        self.reload_env(env_id).await.map_err(internal)
    }

    /// After a failed proof: the environment as the database has it now, when
    /// it may have changed (read at most once per 100 ms per environment).
    pub async fn refreshed(&self, ctx: &EnvContext) -> Option<Arc<EnvContext>> {
        if !self.may_read(&ctx.env.id, false) {
            return None;
        }
        match self.reload_env(&ctx.env.id).await {
            Ok(fresh) => fresh,
            Err(e) => {
                tracing::warn!(error = %e, "re-reading an environment failed");
                None
            }
        }
    }

    fn may_read(&self, key: &str, unknown: bool) -> bool {
        self.misses
            .lock()
            .map(|mut m| m.may_read(key, unknown))
            .unwrap_or(false)
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

    // ---- writes that change the snapshot: each refreshes it before answering ----

    pub async fn create_environment(
        &self,
        env: Environment,
        secret: SecretRecord,
        audit: NewAudit,
    ) -> anyhow::Result<()> {
        let id = env.id.clone();
        self.store.create_environment(env, secret, audit).await?;
        self.reload_env(&id).await.map(|_| ())
    }

    pub async fn update_environment(
        &self,
        id: &str,
        settings: EnvSettings,
        audit: NewAudit,
    ) -> anyhow::Result<()> {
        self.store.update_environment(id, settings, audit).await?;
        self.reload_env(id).await.map(|_| ())
    }

    pub async fn revoke_sessions(&self, id: &str, audit: NewAudit) -> anyhow::Result<()> {
        self.store.revoke_sessions(id, audit).await?;
        self.reload_env(id).await.map(|_| ())
    }

    pub async fn delete_environment(&self, id: &str, audit: NewAudit) -> anyhow::Result<()> {
        self.store.delete_environment(id, audit).await?;
        self.reload_env(id).await.map(|_| ())
    }

    pub async fn insert_secret(
        &self,
        secret: SecretRecord,
        expire_others_at: Option<Ts>,
        audit: NewAudit,
    ) -> anyhow::Result<()> {
        let env_id = secret.env_id.clone();
        self.store
            .insert_secret(secret, expire_others_at, audit)
            .await?;
        self.reload_env(&env_id).await.map(|_| ())
    }

    pub async fn revoke_secret(
        &self,
        env_id: &str,
        key_id: &str,
        exposed: bool,
        audit: NewAudit,
    ) -> anyhow::Result<SecretRecord> {
        let record = self
            .store
            .revoke_secret(env_id, key_id, exposed, audit)
            .await?;
        self.reload_env(env_id).await?;
        Ok(record)
    }

    pub async fn rotate_signing_key(
        &self,
        key: SigningKeyRecord,
        audit: NewAudit,
    ) -> anyhow::Result<()> {
        self.store.rotate_signing_key(key, audit).await?;
        self.reload_sessions().await
    }

    /// Erases a user; its sessions are refused from the next call on.
    pub async fn delete_user(
        &self,
        env_id: &str,
        user_id: &str,
        audit: NewAudit,
    ) -> anyhow::Result<()> {
        let at = audit.at;
        self.store.delete_user(env_id, user_id, audit).await?;
        let _guard = self.reload_lock.lock().await;
        let mut snap = (*self.snapshot()).clone();
        if let Some(ctx) = snap.by_id.get(env_id) {
            let mut deleted_users = ctx.deleted_users.clone();
            deleted_users.insert(user_id.to_string(), at);
            let fresh = Arc::new(EnvContext {
                env: ctx.env.clone(),
                ring: ctx.ring.clone(),
                secrets: ctx.secrets.clone(),
                deleted_users,
            });
            let index = snap
                .secret_index
                .iter()
                .filter(|(_, (e, _))| e == env_id)
                .map(|(h, (_, k))| (*h, k.clone()))
                .collect();
            snap.insert(fresh, index);
            self.swap(snap);
        }
        Ok(())
    }

    /// Every sealed value again under `new`; the caller restarts with `new`.
    pub async fn reseal(&self, r: Reseal) -> anyhow::Result<()> {
        self.store.reseal(r).await?;
        Ok(())
    }
}

fn internal(e: anyhow::Error) -> crate::store::StoreError {
    crate::store::StoreError::Internal(e.to_string())
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
