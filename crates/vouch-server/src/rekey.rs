//! Master-key rotation: every sealed value (identity secrets, session signing
//! keys, webhook secrets) opened under the current key and sealed again under
//! a new one, then written with the new key's check value in one store
//! transaction, so the data is under exactly one of the two keys at any moment.

use std::str::FromStr;

use sqlx::{ConnectOptions, Connection};

use crate::crypto::{MasterKey, secret_context};
use crate::model::NewAudit;
use crate::store::{Reseal, Store};

/// How many sealed values of each kind a store holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Sealed {
    pub secrets: usize,
    pub signing_keys: usize,
    pub webhooks: usize,
}

impl std::fmt::Display for Sealed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} identity secrets, {} session signing keys and the secrets of {} webhook endpoints",
            self.secrets, self.signing_keys, self.webhooks
        )
    }
}

/// Every sealed value of the store, with its sealing context.
async fn sealed_values(store: &Store) -> anyhow::Result<Vec<(Kind, String, Vec<u8>)>> {
    let mut out = Vec::new();
    for s in store.list_all_secrets().await? {
        out.push((Kind::Secret, s.id, s.ciphertext));
    }
    for k in store.list_signing_keys().await? {
        out.push((Kind::SigningKey, k.kid, k.ciphertext));
    }
    for w in store.list_all_webhooks().await? {
        out.push((Kind::Webhook, w.id, w.secrets));
    }
    Ok(out)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Secret,
    SigningKey,
    Webhook,
}

impl Kind {
    fn context(self, id: &str) -> String {
        match self {
            Kind::Secret => secret_context(id),
            Kind::SigningKey => crate::session::seal_context(id),
            Kind::Webhook => crate::webhooks::context(id),
        }
    }

    fn what(self) -> &'static str {
        match self {
            Kind::Secret => "identity secret",
            Kind::SigningKey => "session signing key",
            Kind::Webhook => "webhook endpoint",
        }
    }
}

/// Opens every sealed value under `key`: how many there are, or the first one
/// that does not open.
pub async fn check_sealed(store: &Store, key: &MasterKey) -> anyhow::Result<Sealed> {
    let mut counts = Sealed::default();
    for (kind, id, sealed) in sealed_values(store).await? {
        key.open(&sealed, &kind.context(&id)).map_err(|_| {
            anyhow::anyhow!(
                "the {} {id} does not open under this master key",
                kind.what()
            )
        })?;
        count(&mut counts, kind);
    }
    Ok(counts)
}

fn count(counts: &mut Sealed, kind: Kind) {
    match kind {
        Kind::Secret => counts.secrets += 1,
        Kind::SigningKey => counts.signing_keys += 1,
        Kind::Webhook => counts.webhooks += 1,
    }
}

/// Every sealed value of the store opened under `old` and sealed under `new`,
/// ready for [`Store::reseal`]; fails, before anything is written, on a value
/// that does not open under `old`.
pub async fn prepare(
    store: &Store,
    old: &MasterKey,
    new: &MasterKey,
) -> anyhow::Result<(Reseal, Sealed)> {
    let mut reseal = Reseal {
        master_key_check: new.check_value(),
        ..Reseal::default()
    };
    let mut counts = Sealed::default();
    for (kind, id, sealed) in sealed_values(store).await? {
        let context = kind.context(&id);
        let plain = old.open(&sealed, &context).map_err(|_| {
            anyhow::anyhow!(
                "the {} {id} does not open under the current master key; nothing was changed",
                kind.what()
            )
        })?;
        let again = new.seal(&plain, &context)?;
        match kind {
            Kind::Secret => reseal.secrets.push((id, again)),
            Kind::SigningKey => reseal.signing_keys.push((id, again)),
            Kind::Webhook => reseal.webhooks.push((id, again)),
        }
        count(&mut counts, kind);
    }
    reseal.audit = Some(NewAudit {
        env_id: None,
        kind: "master_key.rotated",
        user_id: None,
        key_id: None,
        actor: Some("cli".into()),
        detail: serde_json::json!({
            "message": "Every stored secret was encrypted again under a new master key.",
            "secrets": counts.secrets,
            "signing_keys": counts.signing_keys,
            "webhooks": counts.webhooks,
        }),
        at: crate::clock::now(),
    });
    Ok((reseal, counts))
}

/// A connection of a Vouch node to the database, as `pg_stat_activity` shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeConnection {
    /// The PostgreSQL backend's pid (`pg_terminate_backend` takes it).
    pub pid: i32,
    /// The node's address, or "a local socket".
    pub client: String,
    /// When the connection was opened (UTC).
    pub since: String,
}

impl std::fmt::Display for NodeConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "backend pid {} from {}, connected since {} UTC",
            self.pid, self.client, self.since
        )
    }
}

/// The connections that Vouch nodes (`application_name = 'vouch'`) hold to the
/// PostgreSQL database at `url`; checked on a connection of its own name.
pub async fn node_connections(url: &str) -> anyhow::Result<Vec<NodeConnection>> {
    let masked = crate::config::mask_url(url);
    let opts = sqlx::postgres::PgConnectOptions::from_str(url)
        .map_err(|e| anyhow::anyhow!("invalid PostgreSQL URL {masked}: {e}"))?
        .application_name("vouch-rotate-master-key")
        .disable_statement_logging();
    let mut conn = opts
        .connect()
        .await
        .map_err(|e| anyhow::anyhow!("cannot connect to PostgreSQL at {masked}: {e}"))?;
    let rows: Vec<(i32, Option<String>, String)> = sqlx::query_as(
        "SELECT pid, host(client_addr), to_char(backend_start AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS')
         FROM pg_stat_activity
         WHERE application_name = 'vouch' AND datname = current_database() AND pid <> pg_backend_pid()
         ORDER BY backend_start, pid",
    )
    .fetch_all(&mut conn)
    .await?;
    let _ = conn.close().await;
    Ok(rows
        .into_iter()
        .map(|(pid, client, since)| NodeConnection {
            pid,
            client: client.unwrap_or_else(|| "a local socket".into()),
            since,
        })
        .collect())
}
