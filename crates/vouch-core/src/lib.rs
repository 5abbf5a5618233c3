//! Pure identity-verification core of Vouch.
//!
//! A customer's backend proves to Vouch which user is in the browser by computing
//! `HMAC-SHA256(identity secret, user id)` (a *signature*), an HS256 *identity token*, or an
//! HMAC over the RFC 8785 canonical form of the user's attributes. This crate computes and
//! verifies all of these, generates keys, holds an environment's key ring (with rotation
//! states) and names the likely mistake behind a failed proof. It does no I/O and has no
//! async code, so any Rust backend can use it on its own.
//!
//! ```
//! use vouch_core::{KeyEntry, KeyRing, Mode, SignatureEncoding};
//! use vouch_core::keys::generate_identity_secret;
//! use vouch_core::proof::sign;
//!
//! // The customer's backend signs the user id with its identity secret ...
//! let secret = generate_identity_secret(Mode::Test);
//! let signature = sign(&secret, b"user-42", SignatureEncoding::Hex);
//!
//! // ... and Vouch verifies it against the environment's key ring.
//! let ring = KeyRing::new(vec![KeyEntry::new("key_1", secret, 0, None, None)]);
//! let now = 1_700_000_000;
//! assert_eq!(ring.verify_signature(b"user-42", &signature, now), Ok("key_1"));
//! assert!(ring.verify_signature(b"user-43", &signature, now).is_err());
//! ```
#![warn(missing_docs)]

pub mod diagnosis;
pub mod encoding;
pub mod error;
pub mod jcs;
pub mod keyring;
pub mod keys;
mod mac;
pub mod numeric_date;
pub mod proof;
pub mod secret;
pub mod token;

pub use diagnosis::Cause;
pub use encoding::SignatureEncoding;
pub use error::ProofError;
pub use keyring::{KeyEntry, KeyRing, KeyStatus, VerifiedBy};
pub use keys::Mode;
pub use secret::Secret;
pub use token::IdentityClaims;

/// The `serde_json` version this crate uses, re-exported so callers build attribute maps
/// with the same types.
pub use serde_json;
