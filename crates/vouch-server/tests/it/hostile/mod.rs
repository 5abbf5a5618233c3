//! Hostile input: a table of malicious or broken requests, each of which must get
//! the contract's JSON error with the right status and code — never a 5xx — after which the
//! server still answers `/healthz`. Then the things a table cannot hold: secrets in every
//! field, slow clients that stall mid-request, and signature brute force.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod bodies;
mod brute_force;
mod exposed_secrets;
mod slow_clients;
mod table;

use crate::common::Server;

/// `depth` nested arrays around a number.
fn nested(depth: usize) -> String {
    format!("{}1{}", "[".repeat(depth), "]".repeat(depth))
}

/// A body of exactly `len` bytes: an identify whose one attribute pads it out.
/// An identify of exactly `len` bytes: a 16 KiB attribute (within the stored
/// attribute limit), then JSON whitespace up to the length.
fn identify_of_len(user_id: &str, len: usize) -> Vec<u8> {
    let blob = "x".repeat(BLOB);
    let body = format!(r#"{{"user_id":"{user_id}","attributes":{{"blob":"{blob}"}}}}"#);
    let pad = " ".repeat(len - body.len());
    let body = format!("{{{pad}{}", &body[1..]);
    assert_eq!(body.len(), len);
    body.into_bytes()
}

const BLOB: usize = 16 * 1024;

const BODY_LIMIT: usize = 64 * 1024;

async fn assert_alive(s: &Server, after: &str) {
    let r = s.get("/healthz", None).await;
    assert_eq!(r.status, 200, "/healthz after {after}: {}", r.text);
}
