//! The arguments of the commands that work on a deployment's store without a server:
//! `vouch admin-token`, `vouch rotate-master-key` and `vouch migrate-store`.

use std::path::PathBuf;

use clap::{Args, Subcommand, ValueEnum};

/// Where the offline commands find the store: the same flags as `vouch serve`.
#[derive(Debug, Args)]
pub struct StoreArgs {
    /// Data directory of the SQLite store (holds vouch.db and master.key).
    #[arg(
        long,
        env = "VOUCH_DATA_DIR",
        default_value = "./vouch-data",
        value_name = "DIR"
    )]
    pub data_dir: PathBuf,

    /// The database of the deployment (postgres://… or sqlite:PATH) instead of the data
    /// directory's SQLite file.
    #[arg(
        long,
        env = "VOUCH_DATABASE_URL",
        value_name = "URL",
        hide_env_values = true
    )]
    pub database_url: Option<String>,
}

/// `vouch admin-token …`.
#[derive(Debug, Subcommand)]
pub enum AdminTokenCommand {
    /// Create an admin token and print its value once, alone on standard output.
    #[command(after_help = "Examples:\n  \
        export VOUCH_ADMIN_TOKEN=\"$(vouch admin-token create --name recovery)\"\n  \
        vouch admin-token create --name grafana --role viewer --environment env_…")]
    Create(AdminTokenCreateArgs),
    /// List admin tokens: id, name, role, scope and creation time (never values).
    List(AdminTokenListArgs),
    /// Delete an admin token: it is refused from the next request on.
    #[command(after_help = "Example:\n  \
        vouch admin-token create --name replacement > new-token.txt\n  \
        vouch admin-token revoke tok_…")]
    Revoke(AdminTokenRevokeArgs),
}

/// What an admin token may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Role {
    /// Reads and writes.
    Admin,
    /// Reads only.
    Viewer,
}

/// `vouch admin-token create`.
#[derive(Debug, Args)]
pub struct AdminTokenCreateArgs {
    /// What the token is for, e.g. "recovery" (1–100 characters).
    #[arg(long, value_name = "NAME")]
    pub name: String,

    /// What the token may do.
    #[arg(long, value_enum, default_value_t = Role::Admin)]
    pub role: Role,

    /// Limit the token to this environment (env_…); repeat for several. Without it, the
    /// token sees every environment.
    #[arg(long = "environment", value_name = "ENV")]
    pub environments: Vec<String>,

    #[command(flatten)]
    pub store: StoreArgs,
}

/// `vouch admin-token list`.
#[derive(Debug, Args)]
pub struct AdminTokenListArgs {
    /// Print a JSON array instead of a table.
    #[arg(long)]
    pub json: bool,

    #[command(flatten)]
    pub store: StoreArgs,
}

/// `vouch admin-token revoke`.
#[derive(Debug, Args)]
pub struct AdminTokenRevokeArgs {
    /// The token's id (tok_…), from `vouch admin-token list`.
    #[arg(value_name = "ID")]
    pub id: String,

    /// Delete it even when it is the last admin token with full access (a leaked token
    /// must go at once): the admin API then accepts no full admin token until you create
    /// one with `vouch admin-token create`.
    #[arg(long)]
    pub yes: bool,

    #[command(flatten)]
    pub store: StoreArgs,
}

/// `vouch rotate-master-key`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
        systemctl stop vouch && vouch rotate-master-key --data-dir /var/lib/vouch && systemctl start vouch\n  \
        export VOUCH_NEW_MASTER_KEY=\"$(vouch keygen --master-key)\"   # store it in your secret manager first\n  \
        vouch rotate-master-key --database-url postgres://… --nodes-stopped")]
pub struct RotateMasterKeyArgs {
    #[command(flatten)]
    pub store: StoreArgs,

    /// The current master key. Without it, the data directory's master.key.
    #[arg(
        long,
        env = "VOUCH_MASTER_KEY",
        value_name = "BASE64",
        hide_env_values = true
    )]
    pub master_key: Option<String>,

    /// The new master key (32 random bytes in standard base64). Without it, one is generated
    /// and written to master.key (only when the current key is that file).
    #[arg(
        long,
        env = "VOUCH_NEW_MASTER_KEY",
        value_name = "BASE64",
        hide_env_values = true
    )]
    pub new_master_key: Option<String>,

    /// PostgreSQL: confirm that every Vouch node of this database is stopped. The command
    /// also checks pg_stat_activity and refuses while any node is connected.
    #[arg(long)]
    pub nodes_stopped: bool,

    /// Pause this many milliseconds inside the transaction, before the commit (crash tests).
    #[arg(
        long,
        env = "VOUCH_TEST_RESEAL_PAUSE_MS",
        hide = true,
        value_name = "MS"
    )]
    pub test_pause_ms: Option<u64>,
}

/// `vouch migrate-store`.
#[derive(Debug, Args)]
#[command(after_help = "Example:\n  \
        vouch migrate-store --from-data-dir ./vouch-data \\\n    \
        --to postgres://vouch@db:5432/vouch --master-key \"$(cat ./vouch-data/master.key)\" --yes")]
pub struct MigrateStoreArgs {
    /// Data directory of the SQLite store to copy (holds vouch.db).
    #[arg(long, value_name = "DIR")]
    pub from_data_dir: PathBuf,

    /// The empty PostgreSQL database to fill (postgres://…); its schema is created.
    #[arg(long, value_name = "URL")]
    pub to: String,

    /// The master key of the SQLite data, which the PostgreSQL nodes will share.
    #[arg(
        long,
        env = "VOUCH_MASTER_KEY",
        value_name = "BASE64",
        hide_env_values = true
    )]
    pub master_key: String,

    /// Really copy (without it, only what would be done is printed).
    #[arg(long)]
    pub yes: bool,
}
