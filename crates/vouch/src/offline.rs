//! The store of a deployment, opened by a command instead of a server: SQLite
//! only under the data directory's lock (so never beside a running server),
//! PostgreSQL as one more client of the database.

use std::path::PathBuf;

use vouch_server::datadir::{self, DataDirLock};
use vouch_server::store::{self, Store};

use crate::cli::StoreArgs;
use crate::input::UsageError;

/// Which database the arguments name.
#[derive(Debug, Clone)]
pub enum Location {
    /// The SQLite file (`DATA_DIR/vouch.db` or a `sqlite:` URL).
    Sqlite(PathBuf),
    /// A `postgres://` URL.
    Postgres(String),
}

impl Location {
    /// Reads `--data-dir` and `--database-url` the way `vouch serve` does.
    pub fn of(args: &StoreArgs) -> anyhow::Result<Self> {
        if let Some(url) = args.database_url.as_deref()
            && store::is_postgres_url(url)
        {
            return Ok(Location::Postgres(url.to_string()));
        }
        let config = vouch_server::Config {
            data_dir: args.data_dir.clone(),
            database_url: args.database_url.clone(),
            ..Default::default()
        };
        match datadir::database_path(&config) {
            Some(path) => Ok(Location::Sqlite(path)),
            None => Err(UsageError(
                "--database-url must be postgres://… or sqlite:PATH (or leave it unset for the data directory's SQLite file)".into(),
            )
            .into()),
        }
    }
}

/// An open store and, on SQLite, the lock that keeps servers away meanwhile.
#[derive(Debug)]
pub struct Offline {
    pub store: Store,
    pub location: Location,
    _lock: Option<DataDirLock>,
}

/// Opens the store of an existing deployment; `command` names the command in
/// the refusals ("vouch admin-token").
pub async fn open(args: &StoreArgs, command: &str) -> anyhow::Result<Offline> {
    let location = Location::of(args)?;
    let lock = match &location {
        Location::Sqlite(db) => {
            if !db.is_file() {
                return Err(UsageError(format!(
                    "no Vouch database at {}: give the --data-dir (VOUCH_DATA_DIR) or --database-url of your server",
                    db.display()
                ))
                .into());
            }
            Some(datadir::lock_database(db).map_err(|e| {
                anyhow::anyhow!("{command} changes the SQLite data of a stopped server only: {e:#}")
            })?)
        }
        Location::Postgres(_) => None,
    };
    let store = store::open(args.database_url.as_deref(), &args.data_dir).await?;
    match store.is_empty().await {
        Ok(false) => {}
        Ok(true) => {
            store.close().await;
            anyhow::bail!(
                "this store holds no Vouch data yet: start `vouch serve` on it once, which sets it up"
            );
        }
        Err(e) => {
            store.close().await;
            return Err(e.into());
        }
    }
    Ok(Offline {
        store,
        location,
        _lock: lock,
    })
}

/// A runtime for one command.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?)
}
