//! `vouch migrate-store`: copies the SQLite store of a data directory into an
//! empty PostgreSQL database, for moving a single node onto PostgreSQL.

use vouch_server::config::mask_url;
use vouch_server::crypto::MasterKey;
use vouch_server::store::{copy, is_postgres_url};

use crate::cli::MigrateStoreArgs;
use crate::input::UsageError;

/// Checks the arguments and the master key, then copies (with `--yes`).
pub fn run(args: &MigrateStoreArgs) -> anyhow::Result<()> {
    if !is_postgres_url(&args.to) {
        return Err(UsageError(format!(
            "--to must be a PostgreSQL URL (postgres://…), not {}",
            mask_url(&args.to)
        ))
        .into());
    }
    let master = MasterKey::from_base64(args.master_key.trim())
        .map_err(|e| UsageError(format!("--master-key: {e}")))?;
    let db = args.from_data_dir.join("vouch.db");
    if !db.is_file() {
        return Err(UsageError(format!("no Vouch SQLite database at {}", db.display())).into());
    }
    // A running server would keep writing after the copy: refuse while one has the lock.
    let _lock = vouch_server::datadir::lock_database(&db)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let source = vouch_server::store::open(None, &args.from_data_dir).await?;
        let check = source.get_meta("master_key_check").await;
        source.close().await;
        if check?.is_some_and(|stored| stored != master.check_value()) {
            anyhow::bail!(
                "the master key does not match the data in {}: give the key this store was created with",
                args.from_data_dir.display()
            );
        }
        let target = mask_url(&args.to);
        if !args.yes {
            let counts = copy::row_counts(&args.to).await?;
            let filled: u64 = counts.iter().map(|(_, n)| n).sum();
            println!(
                "Would copy {} into {target} ({}).",
                db.display(),
                if filled == 0 {
                    "empty: ready".to_string()
                } else {
                    format!("NOT empty: {filled} rows, it would be refused")
                }
            );
            return Err(UsageError(
                "nothing copied: stop `vouch serve` on this data directory, then run again with --yes"
                    .into(),
            )
            .into());
        }
        let report = copy::copy_from_sqlite(&args.from_data_dir, &args.to).await?;
        println!("Copied {} into {target}:", db.display());
        for (table, n) in report.iter().filter(|(_, n)| *n > 0) {
            println!("  {table:<20} {n:>10} rows");
        }
        println!(
            "\nStart every node with VOUCH_DATABASE_URL={target} and the same VOUCH_MASTER_KEY."
        );
        Ok(())
    })
}
