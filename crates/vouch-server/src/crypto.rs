//! Encryption at rest: every identity secret and session signing key is sealed
//! with XChaCha20-Poly1305 under the master key before it reaches the store.

use std::fmt;
use std::io::Write;
use std::path::Path;

use base64ct::{Base64, Encoding};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use zeroize::Zeroizing;

const NONCE_LEN: usize = 24;
/// Name of the key file created in the data directory when no key is given.
pub const MASTER_KEY_FILE: &str = "master.key";

/// The 32-byte master key. Never printed.
#[derive(Clone)]
pub struct MasterKey {
    key: Zeroizing<[u8; 32]>,
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey([redacted])")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    #[error(
        "the master key must be 32 random bytes in standard base64 (44 characters); generate one with `vouch keygen --master-key`"
    )]
    BadMasterKey,
    #[error("could not read or create the master key file {path}: {source}")]
    KeyFile {
        path: String,
        source: std::io::Error,
    },
    #[error(
        "the master key file {path} can be read or changed by other users (mode {mode:04o}); run `chmod 600 {path}` and start again (if others may have read it, treat the key as exposed: see the master key runbook in docs/operations.md)"
    )]
    KeyFileExposed { path: String, mode: u32 },
    #[error("decryption failed: the data was sealed under another master key or is corrupt")]
    Open,
    #[error("encryption failed")]
    Seal,
}

impl MasterKey {
    /// Parses the `VOUCH_MASTER_KEY` form: standard base64 of 32 bytes.
    pub fn from_base64(text: &str) -> Result<Self, CryptoError> {
        let mut key = Zeroizing::new([0u8; 32]);
        let decoded =
            Base64::decode(text.trim(), key.as_mut()).map_err(|_| CryptoError::BadMasterKey)?;
        if decoded.len() != 32 {
            return Err(CryptoError::BadMasterKey);
        }
        Ok(Self { key })
    }

    /// A fresh random key.
    pub fn generate() -> Result<Self, CryptoError> {
        let mut key = Zeroizing::new([0u8; 32]);
        getrandom::fill(key.as_mut()).map_err(|_| CryptoError::Seal)?;
        Ok(Self { key })
    }

    /// Standard base64, the form `vouch keygen --master-key` prints.
    pub fn to_base64(&self) -> Zeroizing<String> {
        Zeroizing::new(Base64::encode_string(self.key.as_ref()))
    }

    /// Loads `dir/master.key`, creating it with mode 0600 when missing; refuses a
    /// file that group or others may read or write.
    pub fn load_or_create_file(dir: &Path) -> Result<(Self, bool), CryptoError> {
        if let Some(key) = Self::load_file(&dir.join(MASTER_KEY_FILE))? {
            return Ok((key, false));
        }
        let key = Self::generate()?;
        key.write_new_file(&dir.join(MASTER_KEY_FILE))?;
        Ok((key, true))
    }

    /// Loads a key file; None when it does not exist. A file that group or
    /// others may read or write is refused.
    pub fn load_file(path: &Path) -> Result<Option<Self>, CryptoError> {
        let err = |source| CryptoError::KeyFile {
            path: path.display().to_string(),
            source,
        };
        #[cfg(unix)]
        if let Ok(meta) = std::fs::metadata(path) {
            use std::os::unix::fs::PermissionsExt;
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                return Err(CryptoError::KeyFileExposed {
                    path: path.display().to_string(),
                    mode,
                });
            }
        }
        match std::fs::read_to_string(path) {
            Ok(text) => Ok(Some(Self::from_base64(&text)?)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(err(e)),
        }
    }

    /// Writes the key to `path`, which must not exist, with mode 0600, and
    /// syncs it and its directory to disk.
    pub fn write_new_file(&self, path: &Path) -> Result<(), CryptoError> {
        let err = |source| CryptoError::KeyFile {
            path: path.display().to_string(),
            source,
        };
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut file = opts.open(path).map_err(err)?;
        file.write_all(self.to_base64().as_bytes()).map_err(err)?;
        file.write_all(b"\n").map_err(err)?;
        file.sync_all().map_err(err)?;
        sync_parent(path).map_err(err)
    }

    /// A value stored beside the data so a different key is refused at start.
    pub fn check_value(&self) -> String {
        use sha2::Digest;
        let mut h = sha2::Sha256::new();
        h.update(b"vouch master key check v1\0");
        h.update(self.key.as_ref());
        let out = h.finalize();
        out.iter().map(|b| format!("{b:02x}")).collect()
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new(self.key.as_ref().into())
    }

    /// Seals `plaintext`; `context` binds the ciphertext to its row.
    pub fn seal(&self, plaintext: &[u8], context: &str) -> Result<Vec<u8>, CryptoError> {
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce).map_err(|_| CryptoError::Seal)?;
        let ct = self
            .cipher()
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad: context.as_bytes(),
                },
            )
            .map_err(|_| CryptoError::Seal)?;
        let mut out = Vec::with_capacity(NONCE_LEN + ct.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        Ok(out)
    }

    /// Opens what [`seal`](Self::seal) produced with the same context.
    pub fn open(&self, sealed: &[u8], context: &str) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        if sealed.len() < NONCE_LEN {
            return Err(CryptoError::Open);
        }
        let (nonce, ct) = sealed.split_at(NONCE_LEN);
        self.cipher()
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: ct,
                    aad: context.as_bytes(),
                },
            )
            .map(Zeroizing::new)
            .map_err(|_| CryptoError::Open)
    }
}

/// Flushes the directory entry of `path` (a created, renamed or linked file) to disk.
pub fn sync_parent(path: &Path) -> std::io::Result<()> {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => std::fs::File::open(dir)?.sync_all(),
        _ => std::fs::File::open(".")?.sync_all(),
    }
}

/// The sealing context of an identity secret: a ciphertext opens only as the
/// secret it was sealed for.
pub fn secret_context(key_id: &str) -> String {
    format!("secret:{key_id}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_round_trip_and_context_binding() {
        let key = MasterKey::generate().unwrap();
        let sealed = key.seal(b"sk_test_abc", "secret:key_1").unwrap();
        assert_eq!(
            &key.open(&sealed, "secret:key_1").unwrap()[..],
            b"sk_test_abc"
        );
        assert!(key.open(&sealed, "secret:key_2").is_err());
        let other = MasterKey::generate().unwrap();
        assert!(other.open(&sealed, "secret:key_1").is_err());
    }

    #[test]
    fn debug_never_prints_the_key() {
        let key = MasterKey::generate().unwrap();
        let text = format!("{key:?}");
        assert!(!text.contains(key.to_base64().as_str()));
        assert!(text.contains("redacted"));
    }

    #[test]
    fn key_file_is_created_private_and_reloaded() {
        let dir = tempfile::tempdir().unwrap();
        let (k1, created) = MasterKey::load_or_create_file(dir.path()).unwrap();
        assert!(created);
        let (k2, created) = MasterKey::load_or_create_file(dir.path()).unwrap();
        assert!(!created);
        assert_eq!(k1.check_value(), k2.check_value());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(MASTER_KEY_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    #[cfg(unix)]
    fn a_key_file_others_can_read_is_refused_with_the_fix() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        MasterKey::load_or_create_file(dir.path()).unwrap();
        let path = dir.path().join(MASTER_KEY_FILE);
        for mode in [0o644, 0o640, 0o604, 0o620] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            let err = MasterKey::load_or_create_file(dir.path())
                .unwrap_err()
                .to_string();
            assert!(
                err.contains(&format!("chmod 600 {}", path.display())),
                "{mode:o}: {err}"
            );
        }
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o400)).unwrap();
        MasterKey::load_or_create_file(dir.path()).unwrap();
    }

    #[test]
    fn bad_master_key_is_refused() {
        assert!(MasterKey::from_base64("short").is_err());
        assert!(MasterKey::from_base64(&Base64::encode_string(&[0u8; 16])).is_err());
    }
}
