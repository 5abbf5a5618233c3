//! vouch-core's integration tests, linked into one binary: each module is one story of
//! the public API (proofs, encodings, key formats and rings, canonical JSON, identity
//! tokens, diagnosis), plus the RFC and cross-language vectors and property tests.
//! `tests/data/` holds the Node-made JCS vectors; `properties.proptest-regressions` sits
//! beside its module, where `properties.rs` tells proptest to look.

mod diagnosis;
mod encodings;
mod hmac_vectors;
mod jcs;
mod keyring;
mod keys;
mod numeric_dates;
mod properties;
mod tokens;
mod vectors;
