//! The command line, as clap types. Parsing only: `main` dispatches to the modules that act.

use std::path::PathBuf;

use clap::{ArgAction, ArgGroup, Args, Parser, Subcommand, ValueEnum};

use crate::input::{parse_bool, parse_duration};

mod store;

pub use store::{
    AdminTokenCommand, AdminTokenCreateArgs, AdminTokenListArgs, AdminTokenRevokeArgs,
    MigrateStoreArgs, Role, RotateMasterKeyArgs, StoreArgs,
};

/// `vouch --version`: the crate version and the git commit it was built from
/// (`unknown` when built outside a git checkout without `VOUCH_GIT_COMMIT`).
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (",
    env!("VOUCH_BUILD_COMMIT"),
    ")"
);

/// Vouch: identity verification for embeddable widgets.
#[derive(Debug, Parser)]
#[command(
    name = "vouch",
    version = VERSION,
    about = "Vouch: identity verification for embeddable widgets",
    long_about = "Vouch: identity verification for embeddable widgets.\n\n\
        A customer's backend signs the id of the logged-in user with its identity secret \
        (HMAC-SHA256); the widget passes the signature along and Vouch verifies it, so nobody \
        can act as a user by typing their id.\n\n\
        `vouch serve` runs the service; `vouch sign`, `vouch verify` and `vouch keygen` compute \
        and check proofs offline.",
    after_help = "Examples:\n  \
        vouch serve --addr 0.0.0.0:8080\n  \
        export VOUCH_SECRET=sk_test_…   # from the admin API or UI\n  \
        vouch sign 42\n  \
        vouch verify 42 --signature \"$(vouch sign 42)\"\n  \
        vouch keygen --master-key"
)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the Vouch server (widget API, admin API and UI, webhooks).
    #[command(
        long_about = "Run the Vouch server: the widget API for browsers, the admin API and UI for \
        operators, and the webhook dispatcher.\n\n\
        Every flag can also be given as the environment variable shown. On first start with an \
        empty store, Vouch creates an admin token, a project and a test environment, and prints \
        them once."
    )]
    Serve(ServeArgs),
    /// Compute a proof of identity with the secret in VOUCH_SECRET.
    #[command(
        long_about = "Compute a proof of identity and print only its value, on one line, so that \
        `$(vouch sign 42)` works in scripts.\n\n\
        The secret is read from the VOUCH_SECRET environment variable and never from an argument, \
        so it stays out of your shell history. It is used byte for byte as the HMAC key.\n\n\
        By default this prints HMAC-SHA256(secret, USER_ID) in lowercase hex. With --attributes it \
        prints the attributes signature, HMAC-SHA256 over the RFC 8785 canonical form of the \
        JSON object. With --token it prints an HS256 identity token for USER_ID."
    )]
    Sign(SignArgs),
    /// Check a signature, attributes signature or identity token offline, and say why it fails.
    #[command(
        long_about = "Check a proof offline against the secret in VOUCH_SECRET, and say why it fails.\n\n\
        Exits 0 and prints `valid (…)` when the proof verifies. Otherwise exits 1 and prints the \
        reason and the likely mistake (a trailing newline in the signed id, the HMAC of the email \
        instead of the id, SHA-1 instead of SHA-256, …). Exits 2 on a usage error, such as \
        VOUCH_SECRET not being set."
    )]
    Verify(VerifyArgs),
    /// Generate a master key, identity secret, admin token or webhook secret.
    #[command(
        long_about = "Generate a key and print it on one line. Give exactly one of the kinds below."
    )]
    Keygen(KeygenArgs),
    /// Copy the embedded SQLite store into an empty PostgreSQL database.
    #[command(
        name = "migrate-store",
        long_about = "Copy every table of the SQLite store in a data directory into an empty \
        PostgreSQL database, in one transaction, to move a single-node Vouch onto PostgreSQL.\n\n\
        Stop `vouch serve` first (a data directory a server is using is refused). Secrets stay encrypted under the same master key, so give that \
        key here (for a generated key file: `--master-key \"$(cat DIR/master.key)\"`) and to \
        every PostgreSQL node as VOUCH_MASTER_KEY. A non-empty target is refused. Without --yes, \
        only says what it would do."
    )]
    MigrateStore(MigrateStoreArgs),
    /// Exit 0 when a Vouch server answers `GET /readyz` with 200, 1 otherwise.
    #[command(
        long_about = "Ask a running Vouch server whether it is ready (`GET /readyz`: the process \
        answers and its store answers). Exits 0 on a 200 answer and 1 on anything else — another \
        status, a refused connection, a timeout — with the reason on standard error. Meant for \
        container HEALTHCHECKs and deployment scripts."
    )]
    Healthcheck(HealthcheckArgs),
    /// Create, list or revoke admin tokens on the data directory or database, offline.
    #[command(
        name = "admin-token",
        subcommand,
        long_about = "Create, list or revoke admin tokens directly in the store, without the admin \
        API: to recover when every admin token was deleted, lost or leaked.\n\n\
        With SQLite, the server must be stopped (a data directory a server is using is refused, \
        naming its pid). With PostgreSQL, it works while the nodes run: they read admin tokens \
        from the database on every admin request, so a change is in force on every node at once. \
        Each change is audited with the actor `cli`."
    )]
    AdminToken(AdminTokenCommand),
    /// Re-encrypt every stored secret under a new master key, in one transaction.
    #[command(
        name = "rotate-master-key",
        long_about = "Re-encrypt every identity secret, session signing key and webhook secret under \
        a new master key, and store the new key's check value, in one transaction: a crash at any \
        point leaves the data under the old key or under the new one, never half of each.\n\n\
        Stop every server first. SQLite: a data directory a server is using is refused. \
        PostgreSQL: give --nodes-stopped, and the command still refuses while any Vouch node is \
        connected to the database.\n\n\
        The current key is --master-key (VOUCH_MASTER_KEY) or the data directory's master.key. \
        With the key file, the new key (--new-master-key, or a generated one) replaces master.key \
        and the old one is kept as master.key.old until you delete it. With a key given in \
        VOUCH_MASTER_KEY, give the new one in VOUCH_NEW_MASTER_KEY (from `vouch keygen \
        --master-key`, stored in your secret manager first); no file is written. Then start every \
        node with the new key."
    )]
    RotateMasterKey(RotateMasterKeyArgs),
}

/// `vouch healthcheck`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
        vouch healthcheck                                  # http://127.0.0.1:8080/readyz\n  \
        VOUCH_ADDR=0.0.0.0:9000 vouch healthcheck          # http://127.0.0.1:9000/readyz\n  \
        vouch healthcheck --url http://10.0.0.5:8080/readyz --timeout 2s")]
pub struct HealthcheckArgs {
    /// The URL to GET (plain http). Default: /readyz at --addr.
    #[arg(long, value_name = "URL")]
    pub url: Option<String>,

    /// The address the server listens on, as given to `vouch serve`; an unspecified
    /// address (0.0.0.0, [::]) is asked on loopback.
    #[arg(
        long,
        env = "VOUCH_ADDR",
        default_value = "127.0.0.1:8080",
        value_name = "HOST:PORT"
    )]
    pub addr: String,

    /// Give up after this long (e.g. 2s, 1m).
    #[arg(long, value_parser = parse_duration, default_value = "5s", value_name = "DURATION")]
    pub timeout: u64,
}

/// Log line format of the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

/// `vouch serve`: every flag has a `VOUCH_*` environment twin.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address and port to listen on.
    #[arg(
        long,
        env = "VOUCH_ADDR",
        default_value = "127.0.0.1:8080",
        value_name = "HOST:PORT"
    )]
    pub addr: String,

    /// A private address and port for the admin API, the admin UI and /metrics. When set,
    /// they are served only there, and --addr answers 404 for them (it keeps the widget API,
    /// the JWKS, /sdk, /demo, /healthz, /readyz and /openapi.json).
    #[arg(long, env = "VOUCH_ADMIN_ADDR", value_name = "HOST:PORT")]
    pub admin_addr: Option<String>,

    /// Directory for the embedded SQLite database and the generated master key file.
    #[arg(
        long,
        env = "VOUCH_DATA_DIR",
        default_value = "./vouch-data",
        value_name = "DIR"
    )]
    pub data_dir: PathBuf,

    /// PostgreSQL URL (postgres://…) to share state between several Vouch nodes; the
    /// embedded SQLite database in the data directory is used when it is not set.
    #[arg(
        long,
        env = "VOUCH_DATABASE_URL",
        value_name = "URL",
        hide_env_values = true
    )]
    pub database_url: Option<String>,

    /// Key that encrypts secrets at rest: 32 random bytes in standard base64, as
    /// `vouch keygen --master-key` prints. Without it, a key file is created in the data
    /// directory on first start.
    #[arg(
        long,
        env = "VOUCH_MASTER_KEY",
        value_name = "BASE64",
        hide_env_values = true
    )]
    pub master_key: Option<String>,

    /// URL at which browsers reach this server (used in printed links and the demo page).
    #[arg(long, env = "VOUCH_PUBLIC_URL", value_name = "URL")]
    pub public_url: Option<String>,

    /// Bootstrap admin token to use instead of generating one (at least 32 characters), for
    /// automation and tests.
    #[arg(
        long,
        env = "VOUCH_ADMIN_TOKEN",
        value_name = "TOKEN",
        hide_env_values = true
    )]
    pub admin_token: Option<String>,

    /// Permit webhook URLs on loopback and private addresses (refused by default).
    /// Accepts true, false, 1 or 0; the bare flag means true.
    #[arg(
        long,
        env = "VOUCH_ALLOW_PRIVATE_WEBHOOKS",
        value_parser = parse_bool,
        action = ArgAction::Set,
        num_args = 0..=1,
        require_equals = true,
        default_value = "false",
        default_missing_value = "true",
        value_name = "BOOL"
    )]
    pub allow_private_webhooks: bool,

    /// Serve the /demo page and its signing route, for test environments only. Anyone who
    /// can reach the server can then get any user id of a test environment signed: use it
    /// on a development machine, never on a server that test environments share with
    /// others. Accepts true, false, 1 or 0; the bare flag means true.
    #[arg(
        long,
        env = "VOUCH_DEMO",
        value_parser = parse_bool,
        action = ArgAction::Set,
        num_args = 0..=1,
        require_equals = true,
        default_value = "false",
        default_missing_value = "true",
        value_name = "BOOL"
    )]
    pub demo: bool,

    /// Format of log lines.
    #[arg(long, env = "VOUCH_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Reverse proxies whose X-Forwarded-For names the client: comma-separated CIDRs or
    /// addresses (e.g. 10.0.0.0/8,192.0.2.7). Without it the client is the TCP peer.
    #[arg(
        long,
        env = "VOUCH_TRUSTED_PROXIES",
        value_name = "CIDR,…",
        value_parser = parse_trusted_proxies
    )]
    pub trusted_proxies: Option<vouch_server::config::TrustedProxies>,

    /// Open connections allowed per client address (IPv6: per /64); more from that address
    /// are closed at once. Trusted proxies are not capped.
    #[arg(
        long,
        env = "VOUCH_MAX_CONNECTIONS_PER_IP",
        value_name = "N",
        default_value_t = 256,
        value_parser = clap::value_parser!(u32).range(1..)
    )]
    pub max_connections_per_ip: u32,

    /// Delays between webhook delivery attempts, in milliseconds, comma-separated
    /// (default 5000,30000,120000,… over about two days). For tests and staging.
    #[arg(
        long,
        env = "VOUCH_WEBHOOK_RETRY_SCHEDULE",
        value_name = "MS,MS,…",
        value_delimiter = ',',
        hide = true
    )]
    pub webhook_retry_schedule: Option<Vec<i64>>,
}

fn parse_trusted_proxies(text: &str) -> Result<vouch_server::config::TrustedProxies, String> {
    text.parse()
}

/// `vouch sign`.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  \
        export VOUCH_SECRET=sk_test_…\n  \
        vouch sign 42\n  \
        vouch sign 42 --base64\n  \
        vouch sign --company acme-inc\n  \
        vouch sign --attributes '{\"name\":\"Jane\",\"plan\":\"pro\"}'\n  \
        vouch sign 42 --token --ttl 1h --attributes '{\"plan\":\"pro\"}' --jti-random",
    group(ArgGroup::new("encoding").args(["base64", "base64url"]))
)]
pub struct SignArgs {
    /// The user id (or company id with --company) to sign, byte for byte: no trimming, no
    /// normalisation. Optional with --attributes, whose signature does not cover it.
    #[arg(value_name = "USER_ID", required_unless_present = "attributes")]
    pub id: Option<String>,

    /// Print standard base64 with padding (44 characters) instead of hex.
    #[arg(long, conflicts_with = "token")]
    pub base64: bool,

    /// Print URL-safe base64 without padding (43 characters) instead of hex.
    #[arg(long, conflicts_with = "token")]
    pub base64url: bool,

    /// Sign a company (group) id. The signature is computed the same way; the flag is there
    /// to make scripts read clearly.
    #[arg(long, conflicts_with_all = ["token", "attributes"])]
    pub company: bool,

    /// Attributes as a JSON object (or @FILE, or - for standard input). Without --token,
    /// prints the attributes signature; with --token, puts them in the token's
    /// `attributes` claim. Duplicate keys and integers beyond ±2^53 are refused.
    #[arg(long, value_name = "JSON")]
    pub attributes: Option<String>,

    /// Print an HS256 identity token (JWT) for USER_ID instead of a signature.
    #[arg(long, requires = "id")]
    pub token: bool,

    /// Lifetime of the token (sets `exp`): e.g. 30s, 10m, 2h, 1d.
    #[arg(
        long,
        requires = "token",
        value_parser = parse_duration,
        default_value = "10m",
        value_name = "DURATION"
    )]
    pub ttl: u64,

    /// Put this `jti` claim in the token; Vouch then accepts the token only once.
    #[arg(long, requires = "token", value_name = "ID")]
    pub jti: Option<String>,

    /// Put a random `jti` claim in the token.
    #[arg(long, requires = "token", conflicts_with = "jti")]
    pub jti_random: bool,

    /// Put this key id in the token's `kid` header (the id of the secret in VOUCH_SECRET,
    /// e.g. key_…), so Vouch tries only that secret.
    #[arg(long, requires = "token", value_name = "KEY_ID")]
    pub kid: Option<String>,
}

/// `vouch verify`.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  \
        vouch verify 42 --signature 5f1c…\n  \
        vouch verify --token eyJhbGciOiJIUzI1NiJ9…\n  \
        vouch verify 42 --token eyJhbGciOiJIUzI1NiJ9…   # also checks that sub is 42\n  \
        vouch verify --attributes '{\"plan\":\"pro\"}' --attributes-signature 9a0b…\n  \
        vouch verify 42 --signature 5f1c… --email ada@example.com --expect legacy-42",
    group(ArgGroup::new("proof").args(["signature", "token", "attributes_signature"]).required(true))
)]
pub struct VerifyArgs {
    /// The user id (or company id) the proof is for, byte for byte. Required with
    /// --signature; with --token, the token's `sub` must equal it.
    #[arg(value_name = "USER_ID")]
    pub id: Option<String>,

    /// A user-id or company-id signature: hex (either case), base64 or base64url.
    #[arg(long, value_name = "SIG", requires = "id", allow_hyphen_values = true)]
    pub signature: Option<String>,

    /// An HS256 identity token.
    #[arg(long, value_name = "TOKEN")]
    pub token: Option<String>,

    /// The attributes JSON object that --attributes-signature signs (or @FILE, or -).
    #[arg(long, value_name = "JSON", requires = "attributes_signature")]
    pub attributes: Option<String>,

    /// An attributes signature: HMAC-SHA256 over the RFC 8785 form of --attributes.
    #[arg(
        long,
        value_name = "SIG",
        requires = "attributes",
        allow_hyphen_values = true
    )]
    pub attributes_signature: Option<String>,

    /// The user's email: when the signature is not of the id, check whether it is the HMAC
    /// of this email instead.
    #[arg(long, value_name = "EMAIL", requires = "signature")]
    pub email: Option<String>,

    /// Another value that may have been signed instead of the id (an id from another
    /// system, a username); repeatable, at most 20 candidates with --email.
    #[arg(
        long,
        value_name = "VALUE",
        requires = "signature",
        allow_hyphen_values = true
    )]
    pub expect: Vec<String>,

    /// Check as of this Unix time (seconds) instead of now; matters for token exp and nbf.
    #[arg(long, value_name = "UNIX_SECONDS", allow_hyphen_values = true)]
    pub at: Option<i64>,
}

/// `vouch keygen`.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  \
        export VOUCH_MASTER_KEY=\"$(vouch keygen --master-key)\"\n  \
        vouch keygen --secret --live\n  \
        export VOUCH_ADMIN_TOKEN=\"$(vouch keygen --admin-token)\"",
    group(ArgGroup::new("kind").args(["master_key", "secret", "admin_token", "webhook_secret"]).required(true))
)]
pub struct KeygenArgs {
    /// A master key for VOUCH_MASTER_KEY: 32 random bytes in standard base64.
    #[arg(long)]
    pub master_key: bool,

    /// An identity secret: sk_test_… (or sk_live_… with --live), with a checksum suffix.
    #[arg(long)]
    pub secret: bool,

    /// With --secret: a live-mode secret (sk_live_…) instead of a test one.
    #[arg(long, requires = "secret", conflicts_with_all = ["master_key", "admin_token", "webhook_secret"])]
    pub live: bool,

    /// An admin token (vat_…) for VOUCH_ADMIN_TOKEN.
    #[arg(long)]
    pub admin_token: bool,

    /// A Standard Webhooks secret (whsec_…).
    #[arg(long)]
    pub webhook_secret: bool,
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn command_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    fn allow_private_webhooks(args: &[&str]) -> Result<bool, clap::Error> {
        let cli = Cli::try_parse_from([&["vouch", "serve"], args].concat())?;
        match cli.command {
            Command::Serve(serve) => Ok(serve.allow_private_webhooks),
            other => panic!("parsed as {other:?}"),
        }
    }

    #[test]
    fn trusted_proxies_and_the_connection_cap_are_parsed_and_checked() {
        let serve = |args: &[&str]| match Cli::try_parse_from([&["vouch", "serve"], args].concat())
        {
            Ok(Cli {
                command: Command::Serve(s),
            }) => Ok(s),
            Ok(other) => panic!("parsed as {other:?}"),
            Err(e) => Err(e.to_string()),
        };
        let s = serve(&["--trusted-proxies", "10.0.0.0/8,192.0.2.7"]).unwrap();
        let t = s.trusted_proxies.unwrap();
        assert!(t.contains("10.2.3.4".parse().unwrap()));
        assert!(!t.contains("192.0.2.8".parse().unwrap()));
        let err = serve(&["--trusted-proxies", "10.0.0.0/8,lb.internal"]).unwrap_err();
        assert!(err.contains("`lb.internal`"), "{err}");
        if std::env::var_os("VOUCH_MAX_CONNECTIONS_PER_IP").is_none() {
            assert_eq!(serve(&[]).unwrap().max_connections_per_ip, 256);
        }
        assert_eq!(
            serve(&["--max-connections-per-ip", "8"])
                .unwrap()
                .max_connections_per_ip,
            8
        );
        assert!(serve(&["--max-connections-per-ip", "0"]).is_err());
    }

    #[test]
    fn allow_private_webhooks_takes_true_false_1_0_or_nothing() {
        if std::env::var_os("VOUCH_ALLOW_PRIVATE_WEBHOOKS").is_some() {
            return; // the environment would decide the default
        }
        assert!(!allow_private_webhooks(&[]).unwrap());
        assert!(allow_private_webhooks(&["--allow-private-webhooks"]).unwrap());
        assert!(allow_private_webhooks(&["--allow-private-webhooks=true"]).unwrap());
        assert!(allow_private_webhooks(&["--allow-private-webhooks=1"]).unwrap());
        assert!(!allow_private_webhooks(&["--allow-private-webhooks=false"]).unwrap());
        assert!(!allow_private_webhooks(&["--allow-private-webhooks=0"]).unwrap());
        assert!(allow_private_webhooks(&["--allow-private-webhooks=yes"]).is_err());
        assert!(allow_private_webhooks(&["--allow-private-webhooks", "false"]).is_err());
    }

    fn demo(args: &[&str]) -> Result<bool, clap::Error> {
        let cli = Cli::try_parse_from([&["vouch", "serve"], args].concat())?;
        match cli.command {
            Command::Serve(serve) => Ok(serve.demo),
            other => panic!("parsed as {other:?}"),
        }
    }

    #[test]
    fn demo_is_off_unless_asked_for_with_true_1_or_the_bare_flag() {
        if std::env::var_os("VOUCH_DEMO").is_some() {
            return; // the environment would decide the default
        }
        assert!(!demo(&[]).unwrap());
        assert!(demo(&["--demo"]).unwrap());
        assert!(demo(&["--demo=true"]).unwrap());
        assert!(demo(&["--demo=1"]).unwrap());
        assert!(!demo(&["--demo=false"]).unwrap());
        assert!(!demo(&["--demo=0"]).unwrap());
        assert!(demo(&["--demo=yes"]).is_err());
    }
}
