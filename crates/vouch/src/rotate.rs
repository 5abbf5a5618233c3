//! `vouch rotate-master-key`: every sealed value under a new master key, in one
//! store transaction, with the servers stopped.
//!
//! With the data directory's key file, the new key is written to
//! `master.key.new` (0600, synced) *before* the transaction, and moved over
//! `master.key` after it, the old file kept as `master.key.old`. A crash before
//! the commit leaves the old key valid (the leftover `master.key.new` is
//! replaced by the next run); a crash after it leaves `master.key.new` matching
//! the data, and running the command again finishes the swap.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use vouch_server::crypto::{MASTER_KEY_FILE, MasterKey, sync_parent};
use vouch_server::rekey;
use vouch_server::store::{BeforeCommit, Store};

use crate::cli::RotateMasterKeyArgs;
use crate::input::UsageError;
use crate::offline::{self, Location};

/// The key files of a data directory.
#[derive(Debug, Clone)]
struct KeyFiles {
    current: PathBuf,
    new: PathBuf,
    old: PathBuf,
}

impl KeyFiles {
    fn in_dir(dir: &Path) -> Self {
        Self {
            current: dir.join(MASTER_KEY_FILE),
            new: dir.join(format!("{MASTER_KEY_FILE}.new")),
            old: dir.join(format!("{MASTER_KEY_FILE}.old")),
        }
    }

    /// `master.key` becomes `master.key.old`'s content and `master.key.new`
    /// becomes `master.key`, each step synced; safe to repeat after a crash.
    fn swap(&self) -> anyhow::Result<()> {
        let io = |what: &str, path: &Path, e: std::io::Error| {
            anyhow::anyhow!("cannot {what} {}: {e}", path.display())
        };
        if !self.old.exists() {
            std::fs::hard_link(&self.current, &self.old)
                .map_err(|e| io("keep the old key as", &self.old, e))?;
            sync_parent(&self.old).map_err(|e| io("sync", &self.old, e))?;
        }
        std::fs::rename(&self.new, &self.current)
            .map_err(|e| io("move the new key to", &self.current, e))?;
        sync_parent(&self.current).map_err(|e| io("sync", &self.current, e))
    }
}

fn parse_key(text: &str, flag: &str) -> anyhow::Result<MasterKey> {
    MasterKey::from_base64(text).map_err(|e| UsageError(format!("{flag}: {e}")).into())
}

/// Checks the arguments, refuses a live deployment, then rotates.
pub fn run(args: &RotateMasterKeyArgs) -> anyhow::Result<()> {
    let location = Location::of(&args.store)?;
    let given = args.master_key.is_some();
    if let Location::Postgres(_) = &location {
        if !given {
            return Err(UsageError(
                "VOUCH_MASTER_KEY (--master-key) is required with PostgreSQL: the key every node shares".into(),
            )
            .into());
        }
        if !args.nodes_stopped {
            return Err(UsageError(
                "stop every Vouch node of this database, then run again with --nodes-stopped: a node still running \
                 would go on sealing new secrets under the old key and could not read the re-encrypted ones"
                    .into(),
            )
            .into());
        }
    }
    let files = (!given).then(|| KeyFiles::in_dir(&args.store.data_dir));
    let old = match &args.master_key {
        Some(k) => parse_key(k, "--master-key")?,
        None => {
            let path = args.store.data_dir.join(MASTER_KEY_FILE);
            MasterKey::load_file(&path)?.ok_or_else(|| {
                UsageError(format!(
                    "no master key: {} does not exist; give the current key in VOUCH_MASTER_KEY (--master-key)",
                    path.display()
                ))
            })?
        }
    };
    let new = match &args.new_master_key {
        Some(k) => parse_key(k, "--new-master-key")?,
        None if files.is_some() => MasterKey::generate()?,
        None => {
            return Err(UsageError(
                "give the new master key in VOUCH_NEW_MASTER_KEY (--new-master-key): generate it with \
                 `vouch keygen --master-key` and store it in your secret manager first, so that it is never \
                 only in a terminal"
                    .into(),
            )
            .into());
        }
    };
    if new.check_value() == old.check_value() {
        return Err(UsageError("the new master key is the current one".into()).into());
    }
    let pause = args.test_pause_ms.map(Duration::from_millis);
    offline::runtime()?.block_on(async {
        if let Location::Postgres(url) = &location {
            refuse_running_nodes(url).await?;
        }
        let open = offline::open(&args.store, "vouch rotate-master-key").await?;
        let result = rotate(&open.store, &old, &new, files.as_ref(), pause).await;
        open.store.close().await;
        result?;
        if given
            && let Location::Sqlite(_) = &open.location
            && MasterKey::load_file(&args.store.data_dir.join(MASTER_KEY_FILE))
                .ok()
                .flatten()
                .is_some_and(|k| k.check_value() == old.check_value())
        {
            eprintln!(
                "Note: {} still holds the old key; it is not used while VOUCH_MASTER_KEY is given. Delete it.",
                args.store.data_dir.join(MASTER_KEY_FILE).display()
            );
        }
        Ok(())
    })
}

async fn refuse_running_nodes(url: &str) -> anyhow::Result<()> {
    let nodes = rekey::node_connections(url).await?;
    if nodes.is_empty() {
        return Ok(());
    }
    let list: Vec<String> = nodes.iter().map(|n| format!("  {n}")).collect();
    anyhow::bail!(
        "{} connection(s) of Vouch nodes are open to this database, so a node is still running:\n{}\n\
         Stop every node (they connect with application_name 'vouch'), then run this again.",
        nodes.len(),
        list.join("\n")
    )
}

async fn rotate(
    store: &Store,
    old: &MasterKey,
    new: &MasterKey,
    files: Option<&KeyFiles>,
    pause: Option<Duration>,
) -> anyhow::Result<()> {
    let stored = store.get_meta("master_key_check").await?;
    let Some(stored) = stored else {
        anyhow::bail!("this store has no master key check value; start `vouch serve` on it once")
    };
    if stored != old.check_value() {
        return already_rotated(store, &stored, new, files).await;
    }
    if let Some(f) = files
        && f.old.exists()
    {
        anyhow::bail!(
            "{} is still there from an earlier rotation: move it next to the database backups taken before that \
             rotation (they need it) or delete it, then run this again",
            f.old.display()
        );
    }
    let (mut reseal, counts) = rekey::prepare(store, old, new).await?;
    if let Some(f) = files {
        // A leftover is from a run that never committed: the data is still
        // under the old key, so that file holds nothing anyone needs.
        replace_file(&f.new, new)?;
    }
    if let Some(pause) = pause {
        reseal.before_commit = Some(BeforeCommit(Arc::new(move || {
            eprintln!(
                "vouch rotate-master-key: paused inside the re-encryption transaction for {} ms",
                pause.as_millis()
            );
            std::thread::sleep(pause);
        })));
    }
    store.reseal(reseal).await?;
    eprintln!("Re-encrypted {counts} under the new master key, in one transaction.");
    match files {
        Some(f) => {
            f.swap()?;
            eprintln!(
                "The new key is in {}; the old one is kept in {}. Back up the new key file now. Keep the old one \
                 as long as you keep database backups taken before now, then delete it. Start the server again.",
                f.current.display(),
                f.old.display()
            );
        }
        None => eprintln!(
            "Start every node with the new key in VOUCH_MASTER_KEY; a node given the old key refuses to start \
             (the master key does not match this data). Keep the old key as long as you keep database backups \
             taken before now."
        ),
    }
    Ok(())
}

/// Writes `key` to `path` (0600, synced), replacing what is there.
fn replace_file(path: &Path, key: &MasterKey) -> anyhow::Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => anyhow::bail!("cannot remove {}: {e}", path.display()),
    }
    Ok(key.write_new_file(path)?)
}

/// The data is not under the current key: an earlier rotation may have
/// committed and then been interrupted before its key file was moved.
async fn already_rotated(
    store: &Store,
    stored: &str,
    new: &MasterKey,
    files: Option<&KeyFiles>,
) -> anyhow::Result<()> {
    if let Some(f) = files
        && let Some(pending) = MasterKey::load_file(&f.new)?
        && pending.check_value() == stored
    {
        rekey::check_sealed(store, &pending).await?;
        f.swap()?;
        eprintln!(
            "An earlier rotation had re-encrypted the data but not moved its key file: finished. The key is now in {} \
             and the one before in {}.",
            f.current.display(),
            f.old.display()
        );
        return Ok(());
    }
    if new.check_value() == stored {
        rekey::check_sealed(store, new).await?;
        if let Some(f) = files {
            replace_file(&f.new, new)?;
            f.swap()?;
            eprintln!(
                "The data was already encrypted under the new master key; it is now in {}.",
                f.current.display()
            );
        } else {
            eprintln!("The data is already encrypted under the new master key: nothing to do.");
        }
        return Ok(());
    }
    anyhow::bail!(
        "the current master key does not match this data (it was created or rotated with another key): give the key \
         the server starts with"
    )
}
