//! The deployment's own records: meta values, the first start, admin tokens.

use crate::model::*;
use crate::store::ops::Op;
use crate::store::reads;
use crate::store::{Bootstrap, NewAudit, Store, StoreResult};

impl Store {
    pub async fn get_meta(&self, key: &str) -> StoreResult<Option<String>> {
        self.db.read(&reads::Meta { key: key.into() }).await
    }

    pub async fn put_meta(&self, key: &str, value: &str) -> StoreResult<()> {
        self.write(Op::PutMeta(key.into(), value.into())).await
    }

    pub async fn is_empty(&self) -> StoreResult<bool> {
        self.db.read(&reads::IsEmpty {}).await
    }

    pub async fn bootstrap(&self, b: Bootstrap) -> StoreResult<()> {
        self.write(Op::Bootstrap(Box::new(b))).await
    }

    pub async fn default_project(&self) -> StoreResult<Option<String>> {
        self.db.read(&reads::DefaultProject {}).await
    }

    /// Adds a token; a token with the same hash already there is kept as it is.
    pub async fn add_admin_token(&self, token: AdminTokenRecord) -> StoreResult<()> {
        self.write(Op::AddAdminToken(Box::new(token))).await
    }

    pub async fn admin_token(&self, hash: [u8; 32]) -> StoreResult<Option<AdminTokenRecord>> {
        self.db.read(&reads::AdminTokenByHash { hash }).await
    }

    pub async fn list_admin_tokens(&self) -> StoreResult<Vec<AdminTokenRecord>> {
        self.db.scan(reads::AdminTokens {}).await
    }

    /// Deletes a token; refused (conflict) for the last full admin token.
    pub async fn delete_admin_token(&self, id: &str, audit: NewAudit) -> StoreResult<()> {
        self.write(Op::DeleteAdminToken(id.into(), audit)).await
    }

    /// Deletes a token even when it is the last full admin token (offline
    /// recovery; the admin API never does this).
    pub async fn force_delete_admin_token(&self, id: &str, audit: NewAudit) -> StoreResult<()> {
        self.write(Op::ForceDeleteAdminToken(id.into(), audit))
            .await
    }
}
