//! Webhook endpoints and their deliveries.

use crate::model::*;
use crate::store::ops::{Op, Reply};
use crate::store::reads;
use crate::store::{NewAudit, Page, Store, StoreResult, unexpected};

impl Store {
    pub async fn create_webhook(&self, endpoint: WebhookEndpoint) -> StoreResult<()> {
        self.write(Op::CreateWebhook(Box::new(endpoint))).await
    }

    pub async fn list_webhooks(&self, env_id: &str) -> StoreResult<Vec<WebhookEndpoint>> {
        self.db
            .scan(reads::Webhooks {
                env_id: Some(env_id.into()),
            })
            .await
    }

    /// Every endpoint of every environment (master-key rotation).
    pub async fn list_all_webhooks(&self) -> StoreResult<Vec<WebhookEndpoint>> {
        self.db.scan(reads::Webhooks { env_id: None }).await
    }

    pub async fn get_webhook(
        &self,
        env_id: &str,
        id: &str,
    ) -> StoreResult<Option<WebhookEndpoint>> {
        self.db
            .read(&reads::Webhook {
                env_id: env_id.into(),
                id: id.into(),
            })
            .await
    }

    pub async fn delete_webhook(&self, env_id: &str, id: &str, audit: NewAudit) -> StoreResult<()> {
        self.write(Op::DeleteWebhook(env_id.into(), id.into(), audit))
            .await
    }

    pub async fn update_webhook_secrets(
        &self,
        env_id: &str,
        id: &str,
        secrets: Vec<u8>,
        now: Ts,
    ) -> StoreResult<()> {
        self.write(Op::UpdateWebhookSecrets(
            env_id.into(),
            id.into(),
            secrets,
            now,
        ))
        .await
    }

    /// Re-enables a disabled endpoint (held deliveries stay held until a replay).
    pub async fn enable_webhook(&self, env_id: &str, id: &str, audit: NewAudit) -> StoreResult<()> {
        self.write(Op::EnableWebhook(env_id.into(), id.into(), audit))
            .await
    }

    /// Queues again every undelivered delivery of the endpoint; returns how many.
    pub async fn replay_webhook(&self, env_id: &str, id: &str, now_ms: i64) -> StoreResult<u64> {
        match self
            .db
            .write(Op::ReplayWebhook(env_id.into(), id.into(), now_ms))
            .await?
        {
            Reply::Count(n) => Ok(n),
            _ => Err(unexpected("a count")),
        }
    }

    /// Claims due deliveries: each claim counts as an attempt and already
    /// moves the delivery to its next retry time.
    pub async fn claim_deliveries(
        &self,
        now_ms: i64,
        limit: u32,
        schedule_ms: Vec<i64>,
    ) -> StoreResult<Vec<ClaimedDelivery>> {
        match self.db.write(Op::Claim(now_ms, limit, schedule_ms)).await? {
            Reply::Claimed(v) => Ok(v),
            _ => Err(unexpected("claimed deliveries")),
        }
    }

    /// Logs an attempt; a success completes the delivery, a failure of the
    /// last attempt kills it and disables the endpoint (audited).
    pub async fn record_attempt(&self, outcome: AttemptOutcome) -> StoreResult<()> {
        self.write(Op::RecordAttempt(Box::new(outcome))).await
    }

    pub async fn list_attempts(
        &self,
        env_id: &str,
        endpoint_id: &str,
        before: Option<i64>,
        limit: u32,
    ) -> StoreResult<Page<AttemptRecord>> {
        self.db
            .scan(reads::Attempts {
                env_id: env_id.into(),
                endpoint_id: endpoint_id.into(),
                before,
                limit,
            })
            .await
    }
}
