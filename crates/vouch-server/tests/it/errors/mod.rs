//! Every error code of docs/api.md's table that bad input can produce, each as
//! `{"error": {"code", "message"}}` JSON — never axum's plain text, never a 5xx.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod credentials;
mod proofs;
mod requests;
