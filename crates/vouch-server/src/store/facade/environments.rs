//! Environments, their identity secrets and the session signing keys.

use crate::model::*;
use crate::store::ops::{Op, Reply};
use crate::store::reads;
use crate::store::{NewAudit, Reseal, Store, StoreResult, unexpected};

impl Store {
    pub async fn list_environments(&self) -> StoreResult<Vec<Environment>> {
        self.db.scan(reads::Environments {}).await
    }

    pub async fn get_environment(&self, id: &str) -> StoreResult<Option<Environment>> {
        self.db
            .read(&reads::EnvironmentById { id: id.into() })
            .await
    }

    pub async fn environment_by_pk(&self, pk: &str) -> StoreResult<Option<Environment>> {
        self.db
            .read(&reads::EnvironmentByPk { pk: pk.into() })
            .await
    }

    pub async fn create_environment(
        &self,
        env: Environment,
        secret: SecretRecord,
        audit: NewAudit,
    ) -> StoreResult<()> {
        self.write(Op::CreateEnvironment(Box::new((env, secret, audit))))
            .await
    }

    /// Writes new settings and their audit entry in one transaction.
    pub async fn update_environment(
        &self,
        id: &str,
        settings: EnvSettings,
        audit: NewAudit,
    ) -> StoreResult<()> {
        self.write(Op::UpdateEnvironment(id.into(), Box::new(settings), audit))
            .await
    }

    /// Refuses every session of the environment issued at or before `audit.at`.
    pub async fn revoke_sessions(&self, id: &str, audit: NewAudit) -> StoreResult<()> {
        self.write(Op::RevokeSessions(id.into(), audit)).await
    }

    pub async fn delete_environment(&self, id: &str, audit: NewAudit) -> StoreResult<()> {
        self.stats.forget_env(id);
        self.write(Op::DeleteEnvironment(id.into(), audit)).await
    }

    pub async fn list_all_secrets(&self) -> StoreResult<Vec<SecretRecord>> {
        self.db.scan(reads::Secrets { env_id: None }).await
    }

    pub async fn list_secrets(&self, env_id: &str) -> StoreResult<Vec<SecretRecord>> {
        self.db
            .scan(reads::Secrets {
                env_id: Some(env_id.into()),
            })
            .await
    }

    /// Inserts a secret; with `expire_others_at`, every other active secret of
    /// the environment gets that expiry (rotation).
    pub async fn insert_secret(
        &self,
        secret: SecretRecord,
        expire_others_at: Option<Ts>,
        audit: NewAudit,
    ) -> StoreResult<()> {
        self.write(Op::InsertSecret(Box::new(secret), expire_others_at, audit))
            .await
    }

    /// Revokes at once; returns the record after the change.
    pub async fn revoke_secret(
        &self,
        env_id: &str,
        key_id: &str,
        exposed: bool,
        audit: NewAudit,
    ) -> StoreResult<SecretRecord> {
        let op = Op::RevokeSecret {
            env_id: env_id.into(),
            key_id: key_id.into(),
            exposed,
            audit,
        };
        match self.db.write(op).await? {
            Reply::Secret(s) => Ok(s),
            _ => Err(unexpected("a secret")),
        }
    }

    pub async fn list_signing_keys(&self) -> StoreResult<Vec<SigningKeyRecord>> {
        self.db.scan(reads::SigningKeys {}).await
    }

    /// Adds a key and retires every other current key at its creation time.
    pub async fn rotate_signing_key(
        &self,
        key: SigningKeyRecord,
        audit: NewAudit,
    ) -> StoreResult<()> {
        self.write(Op::RotateSigningKey(Box::new(key), audit)).await
    }

    /// Every sealed value again under a new master key, in one transaction.
    pub async fn reseal(&self, r: Reseal) -> StoreResult<()> {
        self.write(Op::Reseal(Box::new(r))).await
    }
}
