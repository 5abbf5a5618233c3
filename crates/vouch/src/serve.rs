//! `vouch serve`: runs the server until SIGINT or SIGTERM.

use crate::cli::{LogFormat, ServeArgs};

/// Runs the server with the given configuration.
pub fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let log_format = match args.log_format {
        LogFormat::Text => vouch_server::LogFormat::Text,
        LogFormat::Json => vouch_server::LogFormat::Json,
    };
    let config = vouch_server::Config {
        addr: args.addr,
        admin_addr: args.admin_addr,
        data_dir: args.data_dir,
        database_url: args.database_url,
        master_key: args.master_key,
        public_url: args.public_url,
        admin_token: args.admin_token,
        allow_private_webhooks: args.allow_private_webhooks,
        demo: args.demo,
        log_format,
        webhook_retry_schedule_ms: args.webhook_retry_schedule,
        trusted_proxies: args.trusted_proxies.unwrap_or_default(),
        max_connections_per_ip: usize::try_from(args.max_connections_per_ip)?,
        timeouts: vouch_server::config::Timeouts::default(),
    };
    config.validate()?;
    vouch_server::init_logging(log_format);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(vouch_server::run(config))
}
