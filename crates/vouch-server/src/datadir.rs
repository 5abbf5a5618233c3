//! The SQLite files on disk: a private data directory, private database files, and
//! one server per database.
//!
//! SQLite creates `-wal` and `-shm` with the mode of the database file, so the
//! database file is created 0600 here before the store opens it. The lock is an
//! exclusive `flock` on `vouch.db.lock` beside the database, which holds the pid of
//! the server that has it; the kernel drops it when that process ends, however it ends.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::config::Config;
use crate::store;

/// Name of the database file in the data directory.
pub const DATABASE_FILE: &str = "vouch.db";

/// Held for the life of the server: no other server opens the same database meanwhile.
#[derive(Debug)]
pub struct DataDirLock {
    _file: File,
    path: PathBuf,
}

impl DataDirLock {
    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// The SQLite database file `config` names, or None on PostgreSQL.
pub fn database_path(config: &Config) -> Option<PathBuf> {
    match config.database_url.as_deref() {
        None => Some(config.data_dir.join(DATABASE_FILE)),
        // The same reading of `sqlite:` URLs as the store's.
        Some(url) if url.starts_with("sqlite:") => {
            let rest = url
                .strip_prefix("sqlite://")
                .or_else(|| url.strip_prefix("sqlite:"))
                .unwrap_or(url);
            let path = rest.split('?').next().unwrap_or(rest);
            (!path.is_empty() && path != ":memory:").then(|| PathBuf::from(path))
        }
        Some(url) if store::is_postgres_url(url) => None,
        Some(_) => None,
    }
}

/// Before the store opens: makes the data directory (0700) when the server keeps
/// anything in it, takes the database's lock, and creates or tightens the database
/// files to 0600. PostgreSQL nodes keep nothing on disk (their master key is given),
/// so there is nothing to do for them.
pub fn prepare(config: &Config) -> anyhow::Result<Option<DataDirLock>> {
    let database = database_path(config);
    let in_data_dir = config.database_url.is_none() || config.master_key.is_none();
    if in_data_dir && database.is_some() {
        private_dir(&config.data_dir)?;
    }
    let Some(database) = database else {
        return Ok(None);
    };
    let lock = lock_database(&database)?;
    private_file(&database)?;
    for suffix in ["-wal", "-shm", "-journal"] {
        let mut name = database.clone().into_os_string();
        name.push(suffix);
        let path = PathBuf::from(name);
        if path.exists() {
            tighten(&path)?;
        }
    }
    Ok(Some(lock))
}

/// Creates `dir` with mode 0700, or warns when it exists and others may enter it.
pub fn private_dir(dir: &Path) -> anyhow::Result<()> {
    match std::fs::metadata(dir) {
        Ok(meta) if meta.is_dir() => {
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                // Not changed behind the operator's back (it may be shared on purpose);
                // the files in it are 0600 either way.
                tracing::warn!(
                    dir = %dir.display(),
                    mode = format!("{mode:04o}"),
                    "the data directory can be listed by other users; `chmod 700` it"
                );
            }
            Ok(())
        }
        Ok(_) => anyhow::bail!("the data directory {} is not a directory", dir.display()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| {
                anyhow::anyhow!("cannot create the data directory {}: {e}", dir.display())
            }),
        Err(e) => anyhow::bail!("cannot read the data directory {}: {e}", dir.display()),
    }
}

/// Creates `path` empty with mode 0600 if missing, else makes it 0600.
fn private_file(path: &Path) -> anyhow::Result<()> {
    OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)
        .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", path.display()))?;
    tighten(path)
}

/// Removes group and other bits from `path`.
fn tighten(path: &Path) -> anyhow::Result<()> {
    let mode = std::fs::metadata(path)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode & 0o700))
            .map_err(|e| anyhow::anyhow!("cannot make {} private: {e}", path.display()))?;
        tracing::warn!(
            file = %path.display(),
            was = format!("{:04o}", mode & 0o777),
            "made a database file readable by its owner only"
        );
    }
    Ok(())
}

/// Takes the exclusive lock of `database`, or says which process has it.
pub fn lock_database(database: &Path) -> anyhow::Result<DataDirLock> {
    let mut name = database.as_os_str().to_owned();
    name.push(".lock");
    let path = PathBuf::from(name);
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(&path)
        .map_err(|e| anyhow::anyhow!("cannot open the lock file {}: {e}", path.display()))?;
    let what = match database.parent() {
        Some(dir) if database.file_name() == Some(DATABASE_FILE.as_ref()) => {
            format!("the data directory {}", dir.display())
        }
        _ => format!("the database {}", database.display()),
    };
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            let mut text = String::new();
            let _ = file.read_to_string(&mut text);
            let holder = match text.trim().parse::<u32>() {
                Ok(pid) => format!("process {pid}"),
                Err(_) => "another process".to_string(),
            };
            anyhow::bail!(
                "{what} is in use by {holder} (lock {}); stop that server first, or give this one another --data-dir",
                path.display()
            );
        }
        Err(std::fs::TryLockError::Error(e)) => {
            anyhow::bail!("cannot lock {}: {e}", path.display())
        }
    }
    tighten(&path)?;
    let write_pid = |file: &mut File| -> std::io::Result<()> {
        file.set_len(0)?;
        file.rewind()?;
        writeln!(file, "{}", std::process::id())?;
        file.flush()
    };
    write_pid(&mut file)
        .map_err(|e| anyhow::anyhow!("cannot write the lock file {}: {e}", path.display()))?;
    Ok(DataDirLock { _file: file, path })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_on_one_database_names_the_holder_and_a_released_one_is_free() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join(DATABASE_FILE);
        let first = lock_database(&db).unwrap();
        let err = lock_database(&db).unwrap_err().to_string();
        assert!(
            err.contains(&format!("is in use by process {}", std::process::id())),
            "{err}"
        );
        assert!(err.contains(&dir.path().display().to_string()), "{err}");
        drop(first);
        lock_database(&db).unwrap();
    }

    #[test]
    fn postgres_keeps_nothing_on_disk_and_sqlite_urls_name_their_file() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config {
            data_dir: dir.path().join("never"),
            database_url: Some("postgres://vouch@db/vouch".into()),
            master_key: Some("x".into()),
            ..Config::default()
        };
        assert!(prepare(&config).unwrap().is_none());
        assert!(!config.data_dir.exists());
        let file = dir.path().join("elsewhere.db");
        config.database_url = Some(format!("sqlite://{}?mode=rwc", file.display()));
        assert_eq!(database_path(&config), Some(file.clone()));
        let lock = prepare(&config).unwrap().unwrap();
        assert_eq!(lock.path(), dir.path().join("elsewhere.db.lock"));
        assert!(
            !config.data_dir.exists(),
            "the master key is given: no data dir"
        );
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
