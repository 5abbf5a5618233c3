//! Drains the outbox: claims due deliveries, sends them with a bounded number
//! in flight, and logs every attempt. At-least-once under one stable
//! `webhook-id`; a crash mid-attempt is retried on the normal schedule.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::HeaderValue;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

use crate::model::{AttemptOutcome, ClaimedDelivery};
use crate::state::AppState;

/// 5 s, 30 s, 2 min, 10 min, 30 min, 1 h, 3 h, 6 h, 12 h, 24 h: eleven tries
/// over about two days, then the endpoint is disabled.
pub const DEFAULT_SCHEDULE_MS: &[i64] = &[
    5_000, 30_000, 120_000, 600_000, 1_800_000, 3_600_000, 10_800_000, 21_600_000, 43_200_000,
    86_400_000,
];
const MAX_IN_FLIGHT: usize = 16;
const RESPONSE_SNIPPET: usize = 1024;
const POLL: Duration = Duration::from_millis(500);

#[derive(Debug)]
pub struct Dispatcher {
    state: AppState,
    client: reqwest::Client,
    schedule: Vec<i64>,
}

pub fn now_ms() -> i64 {
    let t = time::OffsetDateTime::now_utc();
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

fn jitter(ms: i64) -> i64 {
    // ±20 %, so retries of many deliveries do not arrive in lockstep.
    let mut b = [0u8; 2];
    if getrandom::fill(&mut b).is_err() {
        return ms;
    }
    let r = i64::from(u16::from_le_bytes(b)) - 32_768; // -32768..32767
    ms + ms * r / (5 * 32_768)
}

impl Dispatcher {
    pub fn new(state: AppState) -> anyhow::Result<Self> {
        let schedule = state
            .config
            .webhook_retry_schedule_ms
            .clone()
            .unwrap_or_else(|| DEFAULT_SCHEDULE_MS.to_vec());
        let client = super::safety::client(state.config.allow_private_webhooks)?;
        Ok(Self {
            state,
            client,
            schedule,
        })
    }

    /// Runs until `stop` turns true; in-flight attempts are finished first.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        let notify = self.state.store.outbox_notify();
        let permits = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
        let mut tasks = JoinSet::new();
        let this = Arc::new(self);
        loop {
            if *stop.borrow() {
                break;
            }
            while tasks.try_join_next().is_some() {}
            let free = permits.available_permits();
            let mut claimed = Vec::new();
            if free > 0 {
                let schedule: Vec<i64> = this.schedule.iter().map(|d| jitter(*d)).collect();
                match this
                    .state
                    .store
                    .claim_deliveries(now_ms(), u32::try_from(free).unwrap_or(1), schedule)
                    .await
                {
                    Ok(c) => claimed = c,
                    Err(e) => tracing::warn!(error = %e, "could not claim webhook deliveries"),
                }
            }
            let got = claimed.len();
            for d in claimed {
                let Ok(permit) = permits.clone().acquire_owned().await else {
                    break;
                };
                let this = this.clone();
                tasks.spawn(async move {
                    let outcome = this.attempt(d).await;
                    // The slot bounds requests in flight; logging the attempt
                    // goes through the group commit and need not hold it.
                    drop(permit);
                    if let Err(e) = this.state.store.record_attempt(outcome).await {
                        tracing::error!(error = %e, "could not log a webhook attempt");
                    }
                });
            }
            if got == free && free > 0 {
                // Possibly more due right now.
                tokio::task::yield_now().await;
                continue;
            }
            tokio::select! {
                _ = notify.notified() => {}
                _ = tokio::time::sleep(POLL) => {}
                _ = stop.changed() => {}
                Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            }
        }
        while tasks.join_next().await.is_some() {}
    }

    async fn attempt(&self, d: ClaimedDelivery) -> AttemptOutcome {
        let started = Instant::now();
        let result = self.send(&d).await;
        let latency_ms = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
        let (status_code, response, error, success) = match result {
            Ok((status, body)) => (
                Some(i64::from(status)),
                Some(body),
                None,
                (200..300).contains(&status),
            ),
            Err(e) => (None, None, Some(e), false),
        };
        crate::metrics::Metrics::outcome(
            &crate::metrics::METRICS.webhook_deliveries,
            if success { "delivered" } else { "failed" },
        );
        tracing::info!(
            endpoint_id = %d.endpoint_id,
            message_id = %d.message_id,
            attempt = d.attempt,
            status = status_code.unwrap_or(0),
            latency_ms,
            success,
            "webhook attempt"
        );
        AttemptOutcome {
            delivery: d,
            status_code,
            latency_ms,
            response,
            error,
            success,
            at_ms: now_ms(),
        }
    }

    async fn send(&self, d: &ClaimedDelivery) -> Result<(u16, String), String> {
        let url = super::safety::check_url(&d.url, self.state.config.allow_private_webhooks)?;
        let secrets = super::open_secrets(&self.state.master, &d.endpoint_id, &d.secrets)
            .map_err(|_| "the endpoint's secret could not be read".to_string())?;
        let timestamp = crate::clock::now();
        let body = d.payload.as_bytes();
        let signature =
            super::signature_header(&secrets, &d.message_id, timestamp, body, timestamp);
        let header = |v: &str| HeaderValue::from_str(v).map_err(|e| e.to_string());
        let resp = self
            .client
            .post(url)
            .header("content-type", "application/json")
            .header("webhook-id", header(&d.message_id)?)
            .header("webhook-timestamp", header(&timestamp.to_string())?)
            .header("webhook-signature", header(&signature)?)
            .body(d.payload.clone())
            .send()
            .await
            .map_err(|e| {
                if e.is_timeout() {
                    "timed out after 10 s".to_string()
                } else if e.is_connect() {
                    format!("could not connect: {e}")
                } else {
                    e.to_string()
                }
            })?;
        let status = resp.status().as_u16();
        let mut snippet = Vec::new();
        let mut resp = resp;
        while snippet.len() < RESPONSE_SNIPPET {
            match resp.chunk().await {
                Ok(Some(c)) => snippet.extend_from_slice(&c),
                _ => break,
            }
        }
        snippet.truncate(RESPONSE_SNIPPET);
        Ok((status, String::from_utf8_lossy(&snippet).into_owned()))
    }
}
