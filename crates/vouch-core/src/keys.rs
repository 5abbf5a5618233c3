//! Key and id generation, the secret checksum format, and secret recognition.
//!
//! Identity secrets (`sk_test_…`, `sk_live_…`) and admin tokens (`vat_…`) follow GitHub's
//! token format: a prefix, 43 random base62 characters (more than 256 bits) and a 6-character
//! base62 CRC32 checksum of everything before it. A scanner can therefore tell a real secret
//! from a lookalike without asking anyone ([`looks_like_secret`]).

use core::fmt;
use core::str::FromStr;

use base64ct::{Base64, Encoding};
use sha2::{Digest, Sha256};

use crate::secret::Secret;

/// The 62 characters of base62, in ASCII order.
const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
/// Random base62 characters in a secret or admin token: 43 × log2(62) ≈ 256.03 bits.
pub const SECRET_RANDOM_CHARS: usize = 43;
/// Length of the base62 CRC32 checksum suffix (62^6 > 2^32).
pub const CHECKSUM_CHARS: usize = 6;
/// Random base62 characters in a publishable key.
pub const PUBLISHABLE_RANDOM_CHARS: usize = 32;
/// Random base62 characters in a typed id such as `env_…`.
pub const ID_RANDOM_CHARS: usize = 24;
/// Prefixes of the checksummed secret formats.
pub const SECRET_PREFIXES: [&str; 3] = ["sk_test_", "sk_live_", "vat_"];
/// Shortest accepted imported secret, in bytes.
pub const IMPORTED_SECRET_MIN_BYTES: usize = 16;
/// Longest accepted imported secret, in bytes.
pub const IMPORTED_SECRET_MAX_BYTES: usize = 256;

/// Whether an environment handles test or live traffic; it shows in its keys' prefixes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Test traffic: keys `pk_test_…` / `sk_test_…`.
    Test,
    /// Live traffic: keys `pk_live_…` / `sk_live_…`.
    Live,
}

impl Mode {
    /// `"test"` or `"live"`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Test => "test",
            Self::Live => "live",
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Mode {
    type Err = KeyError;

    /// Parses `"test"` or `"live"` (exactly, lowercase).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "test" => Ok(Self::Test),
            "live" => Ok(Self::Live),
            other => Err(KeyError::UnknownMode(other.chars().take(32).collect())),
        }
    }
}

/// Why a key, mode or imported secret was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// The mode is neither `test` nor `live`.
    #[error("unknown mode {0:?}: use \"test\" or \"live\"")]
    UnknownMode(String),
    /// An imported secret is shorter than 16 bytes.
    #[error(
        "imported secret is {0} bytes long; it must be at least 16 bytes (a shorter secret can be guessed). Create a new secret instead of importing this one"
    )]
    ImportedSecretTooShort(usize),
    /// An imported secret is longer than 256 bytes.
    #[error("imported secret is {0} bytes long; it must be at most 256 bytes")]
    ImportedSecretTooLong(usize),
}

/// Fills `buf` from the operating system's random number generator.
///
/// # Panics
///
/// If the operating system cannot provide randomness: generating a key from anything
/// weaker would be worse than stopping.
fn fill_random(buf: &mut [u8]) {
    if let Err(err) = getrandom::fill(buf) {
        panic!("the operating system's random number generator failed: {err}");
    }
}

/// `len` characters drawn uniformly from base62 using the operating system's randomness.
///
/// Bytes ≥ 248 (= 4 × 62) are rejected so that every character is equally likely.
///
/// # Panics
///
/// If the operating system's random number generator fails.
pub fn random_base62(len: usize) -> String {
    let mut out = String::with_capacity(len);
    let mut buf = [0u8; 64];
    while out.len() < len {
        fill_random(&mut buf);
        for &b in &buf {
            if out.len() == len {
                break;
            }
            if b < 248 {
                out.push(char::from(BASE62[usize::from(b % 62)]));
            }
        }
    }
    out
}

/// SHA-256 of `data` (admin tokens are stored only as this hash).
pub fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

/// The 6-character base62 form of the CRC32 of `data`, most significant digit first.
fn checksum(data: &[u8]) -> [u8; CHECKSUM_CHARS] {
    let mut n = crc32fast::hash(data);
    let mut out = [b'0'; CHECKSUM_CHARS];
    for slot in out.iter_mut().rev() {
        *slot = BASE62[(n % 62) as usize];
        n /= 62;
    }
    out
}

/// `prefix` + 43 random base62 + checksum.
fn checksummed_token(prefix: &str) -> Secret {
    let mut s = String::with_capacity(prefix.len() + SECRET_RANDOM_CHARS + CHECKSUM_CHARS);
    s.push_str(prefix);
    s.push_str(&random_base62(SECRET_RANDOM_CHARS));
    let sum = checksum(s.as_bytes());
    s.extend(sum.iter().map(|&b| char::from(b)));
    Secret::new(s)
}

/// A new publishable key: `pk_test_` or `pk_live_` + 32 random base62 characters. Public.
///
/// ```
/// use vouch_core::{Mode, keys::generate_publishable_key};
/// let pk = generate_publishable_key(Mode::Live);
/// assert!(pk.starts_with("pk_live_") && pk.len() == 40);
/// ```
pub fn generate_publishable_key(mode: Mode) -> String {
    format!(
        "pk_{}_{}",
        mode.as_str(),
        random_base62(PUBLISHABLE_RANDOM_CHARS)
    )
}

/// Whether `s` has the shape of a publishable key (`pk_test_`/`pk_live_` and at
/// least 24 base62 characters), so that a look-up of a malformed key can be
/// skipped.
///
/// ```
/// use vouch_core::{Mode, keys::{generate_publishable_key, looks_like_publishable_key}};
/// assert!(looks_like_publishable_key(&generate_publishable_key(Mode::Test)));
/// assert!(!looks_like_publishable_key("pk_test_short"));
/// assert!(!looks_like_publishable_key("sk_test_0123456789abcdefghijklmnop"));
/// ```
pub fn looks_like_publishable_key(s: &str) -> bool {
    let rest = s
        .strip_prefix("pk_test_")
        .or_else(|| s.strip_prefix("pk_live_"));
    rest.is_some_and(|r| {
        (24..=128).contains(&r.len()) && r.bytes().all(|b| b.is_ascii_alphanumeric())
    })
}

/// A new identity secret: `sk_test_`/`sk_live_` + 43 random base62 characters (≥ 256 bits)
/// + a 6-character base62 CRC32 checksum of everything before it.
///
/// ```
/// use vouch_core::{Mode, keys::{generate_identity_secret, looks_like_secret}};
/// let sk = generate_identity_secret(Mode::Test);
/// assert!(sk.expose().starts_with("sk_test_"));
/// assert!(looks_like_secret(sk.expose()));
/// ```
pub fn generate_identity_secret(mode: Mode) -> Secret {
    checksummed_token(match mode {
        Mode::Test => "sk_test_",
        Mode::Live => "sk_live_",
    })
}

/// A new admin token: `vat_` + 43 random base62 characters + checksum (same scheme as
/// identity secrets). Store only its [`sha256`].
pub fn generate_admin_token() -> Secret {
    checksummed_token("vat_")
}

/// A new Standard Webhooks secret: `whsec_` + standard base64 of 32 random bytes.
pub fn generate_webhook_secret() -> Secret {
    let mut bytes = [0u8; 32];
    fill_random(&mut bytes);
    let s = format!("whsec_{}", Base64::encode_string(&bytes));
    zeroize::Zeroize::zeroize(&mut bytes);
    Secret::new(s)
}

/// Whether `s` is exactly a Vouch identity secret or admin token: the `sk_test_`,
/// `sk_live_` or `vat_` prefix, 43 base62 characters and a valid checksum.
///
/// A lookalike with one character changed fails the checksum.
///
/// ```
/// use vouch_core::{Mode, keys::{generate_admin_token, looks_like_secret}};
/// assert!(looks_like_secret(generate_admin_token().expose()));
/// assert!(!looks_like_secret("sk_test_not-a-secret"));
/// ```
pub fn looks_like_secret(s: &str) -> bool {
    let Some(prefix) = SECRET_PREFIXES.iter().find(|p| s.starts_with(**p)) else {
        return false;
    };
    let bytes = s.as_bytes();
    if bytes.len() != prefix.len() + SECRET_RANDOM_CHARS + CHECKSUM_CHARS {
        return false;
    }
    let body_end = bytes.len() - CHECKSUM_CHARS;
    if !bytes[prefix.len()..].iter().all(u8::is_ascii_alphanumeric) {
        return false;
    }
    checksum(&bytes[..body_end]) == bytes[body_end..]
}

/// Every substring of `text` that [`looks_like_secret`], in order of appearance.
///
/// Used to catch a secret pasted inside a signature, an attribute value or a token.
///
/// ```
/// use vouch_core::{Mode, keys::{find_embedded_secrets, generate_identity_secret}};
/// let sk = generate_identity_secret(Mode::Live);
/// let text = format!("{{\"note\":\"my key is {}!\"}}", sk.expose());
/// assert_eq!(find_embedded_secrets(&text), vec![sk.expose()]);
/// ```
pub fn find_embedded_secrets(text: &str) -> Vec<&str> {
    let mut found = Vec::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let mut advanced = false;
        for prefix in SECRET_PREFIXES {
            if bytes[i..].starts_with(prefix.as_bytes()) {
                let end = i + prefix.len() + SECRET_RANDOM_CHARS + CHECKSUM_CHARS;
                // Secrets are ASCII, so a valid candidate ends on a char boundary.
                if let Some(candidate) = text.get(i..end)
                    && looks_like_secret(candidate)
                {
                    found.push(candidate);
                    i = end;
                    advanced = true;
                    break;
                }
            }
        }
        if !advanced {
            i += 1;
        }
    }
    found
}

/// Checks a secret a customer imports from another vendor: any string of 16 to 256 bytes,
/// used as-is.
///
/// ```
/// use vouch_core::keys::validate_imported_secret;
/// assert!(validate_imported_secret("a-secret-from-elsewhere").is_ok());
/// assert!(validate_imported_secret("short").is_err());
/// ```
pub fn validate_imported_secret(s: &str) -> Result<(), KeyError> {
    match s.len() {
        n if n < IMPORTED_SECRET_MIN_BYTES => Err(KeyError::ImportedSecretTooShort(n)),
        n if n > IMPORTED_SECRET_MAX_BYTES => Err(KeyError::ImportedSecretTooLong(n)),
        _ => Ok(()),
    }
}

/// A new typed id: `prefix` + `_` + 24 random base62 characters, e.g. `env_…`, `key_…`,
/// `wh_…`, `evt_…`, `ses_…`, `vis_…`.
///
/// ```
/// use vouch_core::keys::generate_id;
/// let id = generate_id("env");
/// assert!(id.starts_with("env_") && id.len() == 28);
/// ```
pub fn generate_id(prefix: &str) -> String {
    format!("{prefix}_{}", random_base62(ID_RANDOM_CHARS))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_lengths() {
        let sk = generate_identity_secret(Mode::Live);
        assert_eq!(sk.len(), 8 + 43 + 6);
        assert!(sk.expose().starts_with("sk_live_"));
        let vat = generate_admin_token();
        assert_eq!(vat.len(), 4 + 43 + 6);
        let wh = generate_webhook_secret();
        assert!(wh.expose().starts_with("whsec_"));
        assert_eq!(
            Base64::decode_vec(&wh.expose()[6..]).map(|v| v.len()),
            Ok(32)
        );
        let pk = generate_publishable_key(Mode::Test);
        assert!(pk.starts_with("pk_test_") && pk.len() == 40);
        assert!(pk[8..].bytes().all(|b| b.is_ascii_alphanumeric()));
    }

    #[test]
    fn base62_is_roughly_uniform() {
        let s = random_base62(62 * 200);
        let mut counts = [0u32; 62];
        for b in s.bytes() {
            let idx = BASE62.iter().position(|&c| c == b).unwrap_or(usize::MAX);
            counts[idx] += 1;
        }
        assert!(
            counts.iter().all(|&c| (100..=330).contains(&c)),
            "{counts:?}"
        );
    }

    #[test]
    fn checksum_is_fixed_width() {
        assert_eq!(&checksum(b""), b"000000");
        assert_eq!(checksum(b"sk_test_x").len(), 6);
    }

    #[test]
    fn mode_parses() {
        assert_eq!("live".parse::<Mode>(), Ok(Mode::Live));
        assert!("prod".parse::<Mode>().is_err());
        assert_eq!(Mode::Test.as_str(), "test");
    }

    #[test]
    fn sha256_empty() {
        let h = sha256(b"");
        assert_eq!(h[..4], [0xe3, 0xb0, 0xc4, 0x42]);
    }
}
