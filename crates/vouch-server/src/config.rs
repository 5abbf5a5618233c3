//! Server configuration, filled from `vouch serve` flags and `VOUCH_*` variables.

use std::path::PathBuf;
use std::time::Duration;

pub use crate::proxy::TrustedProxies;

/// How log lines are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// Everything `vouch serve` needs.
#[derive(Clone)]
pub struct Config {
    /// Address to listen on (`VOUCH_ADDR`).
    pub addr: String,
    /// A private address for the admin API, the admin UI and `/metrics`
    /// (`VOUCH_ADMIN_ADDR`); when set, `addr` answers 404 for them.
    pub admin_addr: Option<String>,
    /// Data directory for SQLite and the master key file (`VOUCH_DATA_DIR`).
    pub data_dir: PathBuf,
    /// `postgres://…` or `sqlite:…`; SQLite in the data directory when unset.
    pub database_url: Option<String>,
    /// Standard base64 of 32 bytes (`VOUCH_MASTER_KEY`).
    pub master_key: Option<String>,
    /// The URL browsers reach Vouch at; used as the session `iss` and in printed links.
    pub public_url: Option<String>,
    /// Bootstrap admin token to accept instead of a generated one.
    pub admin_token: Option<String>,
    /// Permit webhook URLs on loopback and private addresses.
    pub allow_private_webhooks: bool,
    /// Serve the `/demo` page and its signing route for test environments
    /// (`VOUCH_DEMO`). Off by default: the signing route signs any user id of
    /// any test environment for whoever asks.
    pub demo: bool,
    pub log_format: LogFormat,
    /// Delays between webhook attempts (ms); the default schedule when None.
    pub webhook_retry_schedule_ms: Option<Vec<i64>>,
    /// Proxies whose `X-Forwarded-For` names the client (`VOUCH_TRUSTED_PROXIES`).
    pub trusted_proxies: TrustedProxies,
    /// Open connections allowed per client address, IPv6 per /64
    /// (`VOUCH_MAX_CONNECTIONS_PER_IP`); trusted proxies are not capped.
    pub max_connections_per_ip: usize,
    /// Connection deadlines. Not a flag: the defaults are the contract; tests shorten them.
    pub timeouts: Timeouts,
}

/// How long a connection may wait on its client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    /// From accept (or, between requests, from the first byte) to a complete request head.
    pub head: Duration,
    /// A keep-alive connection with no request in flight.
    pub idle: Duration,
    /// An answer the client does not read: no byte written for this long.
    pub write: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            head: Duration::from_secs(10),
            idle: Duration::from_secs(60),
            write: Duration::from_secs(30),
        }
    }
}

/// Default of `--max-connections-per-ip`.
pub const DEFAULT_MAX_CONNECTIONS_PER_IP: usize = 256;

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("addr", &self.addr)
            .field("admin_addr", &self.admin_addr)
            .field("data_dir", &self.data_dir)
            .field("database_url", &self.database_url.as_deref().map(mask_url))
            .field(
                "master_key",
                &self.master_key.as_ref().map(|_| "[redacted]"),
            )
            .field("public_url", &self.public_url)
            .field(
                "admin_token",
                &self.admin_token.as_ref().map(|_| "[redacted]"),
            )
            .field("allow_private_webhooks", &self.allow_private_webhooks)
            .field("trusted_proxies", &self.trusted_proxies)
            .field("max_connections_per_ip", &self.max_connections_per_ip)
            .field("timeouts", &self.timeouts)
            .field("demo", &self.demo)
            .finish()
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            addr: "127.0.0.1:8080".into(),
            admin_addr: None,
            data_dir: PathBuf::from("./vouch-data"),
            database_url: None,
            master_key: None,
            public_url: None,
            admin_token: None,
            allow_private_webhooks: false,
            demo: false,
            log_format: LogFormat::Text,
            webhook_retry_schedule_ms: None,
            trusted_proxies: TrustedProxies::none(),
            max_connections_per_ip: DEFAULT_MAX_CONNECTIONS_PER_IP,
            timeouts: Timeouts::default(),
        }
    }
}

impl Config {
    /// Checks what can be checked before anything starts.
    pub fn validate(&self) -> anyhow::Result<()> {
        if let Some(t) = &self.admin_token
            && t.chars().count() < 32
        {
            anyhow::bail!(
                "VOUCH_ADMIN_TOKEN must be at least 32 characters; generate one with `vouch keygen --admin-token`"
            );
        }
        if let Some(k) = &self.master_key {
            crate::crypto::MasterKey::from_base64(k)?;
        }
        if let Some(u) = &self.public_url
            && !(u.starts_with("http://") || u.starts_with("https://"))
        {
            anyhow::bail!("VOUCH_PUBLIC_URL must start with http:// or https:// (got {u:?})");
        }
        // Port 0 twice is two ports the kernel picks.
        if let Some(admin) = &self.admin_addr
            && *admin == self.addr
            && !admin.ends_with(":0")
        {
            anyhow::bail!(
                "VOUCH_ADMIN_ADDR must be another address than VOUCH_ADDR (both are {admin})"
            );
        }
        if self.max_connections_per_ip == 0 {
            anyhow::bail!("VOUCH_MAX_CONNECTIONS_PER_IP must be at least 1");
        }
        Ok(())
    }
}

/// Hides the password of a database URL for logs.
pub fn mask_url(url: &str) -> String {
    if let Some((scheme, rest)) = url.split_once("://")
        && let Some((creds, host)) = rest.split_once('@')
    {
        let user = creds.split(':').next().unwrap_or("");
        return format!("{scheme}://{user}:***@{host}");
    }
    url.to_string()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn database_password_is_masked() {
        assert_eq!(
            mask_url("postgres://vouch:hunter2@db:5432/vouch"),
            "postgres://vouch:***@db:5432/vouch"
        );
        assert_eq!(mask_url("sqlite:data.db"), "sqlite:data.db");
    }

    #[test]
    fn admin_address_must_differ_from_the_main_one() {
        let with = |admin: &str| Config {
            addr: "127.0.0.1:8080".into(),
            admin_addr: Some(admin.into()),
            ..Config::default()
        };
        assert!(with("127.0.0.1:8081").validate().is_ok());
        assert!(with("[::1]:8081").validate().is_ok());
        let same = with("127.0.0.1:8080").validate().unwrap_err().to_string();
        assert!(same.contains("another address"), "{same}");
        let two_picked = Config {
            addr: "127.0.0.1:0".into(),
            admin_addr: Some("127.0.0.1:0".into()),
            ..Config::default()
        };
        assert!(two_picked.validate().is_ok());
    }

    #[test]
    fn short_admin_token_is_refused() {
        let c = Config {
            admin_token: Some("short".into()),
            ..Config::default()
        };
        assert!(c.validate().is_err());
    }
}
