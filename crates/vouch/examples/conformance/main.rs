//! Conformance runner: other projects' published test vectors, run through Vouch.
//!
//! ```text
//! cargo run -p vouch --example conformance -- PEER_DATA_DIR [--vouch PATH] [--numbers N]
//! ```
//!
//! PEER_DATA_DIR holds public vectors of other projects (RFC 8785 / JCS files and the ES6
//! number table, Standard Webhooks, RFC 4231 HMAC, RFC 7515 / 8037 JOSE, jwt.io, PyJWT);
//! `scripts/conformance.sh` describes where it comes from. Every applicable vector runs
//! through vouch-core (HMAC, the pre-keyed MAC, JCS, HS256 identity tokens), vouch-server
//! (webhook signing, Ed25519 session tokens) and the `vouch` binary (`--vouch`, by default
//! the `vouch` next to this example's directory). Each suite prints its counts: passed,
//! failed, and not applicable with the reason — a vector where Vouch deliberately differs
//! (only HS256 identity tokens, no integers beyond ±2^53 in signed attributes) is not
//! applicable, never passed. Any failure makes the exit status 1; a usage error, 2.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod hmac;
mod jcs;
mod jose;
mod webhooks;

use std::collections::BTreeMap;
use std::fmt::Display;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Output, Stdio};

use serde_json::Value;

/// The counts of one suite.
#[derive(Debug, Default)]
pub struct Suite {
    name: String,
    passed: usize,
    failed: Vec<String>,
    not_applicable: BTreeMap<String, usize>,
}

impl Suite {
    fn new(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            ..Self::default()
        }
    }

    /// Records one check: passed when `ok`, else a failure described by `what`.
    pub fn check(&mut self, ok: bool, what: impl FnOnce() -> String) {
        if ok {
            self.passed += 1;
        } else {
            self.failed.push(what());
        }
    }

    /// Records a check that passed.
    pub fn pass(&mut self) {
        self.passed += 1;
    }

    /// Records a failure.
    pub fn fail(&mut self, what: impl Display) {
        self.failed.push(what.to_string());
    }

    /// Records a vector that does not apply to Vouch, and why.
    pub fn not_applicable(&mut self, reason: impl Display) {
        *self.not_applicable.entry(reason.to_string()).or_default() += 1;
    }

    fn not_applicable_count(&self) -> usize {
        self.not_applicable.values().sum()
    }

    fn print(&self) {
        println!(
            "{}: {} passed, {} failed, {} not applicable",
            self.name,
            self.passed,
            self.failed.len(),
            self.not_applicable_count()
        );
        for (reason, n) in &self.not_applicable {
            println!("    not applicable ({n}): {reason}");
        }
        const SHOWN: usize = 20;
        for what in self.failed.iter().take(SHOWN) {
            println!("    FAILED: {what}");
        }
        if self.failed.len() > SHOWN {
            println!("    … and {} more failures", self.failed.len() - SHOWN);
        }
    }
}

/// What the suites share: the peer data folder and the `vouch` binary.
#[derive(Debug)]
pub struct Context {
    root: PathBuf,
    vouch: PathBuf,
    /// Lines of the ES6 number table to regenerate and hash.
    numbers: usize,
}

impl Context {
    /// The JSON file at `relative` under the peer data folder.
    pub fn json(&self, relative: &str) -> Result<Value, String> {
        let bytes = self.bytes(relative)?;
        serde_json::from_slice(&bytes).map_err(|e| format!("{relative}: not JSON: {e}"))
    }

    /// The bytes of the file at `relative` under the peer data folder.
    pub fn bytes(&self, relative: &str) -> Result<Vec<u8>, String> {
        std::fs::read(self.root.join(relative)).map_err(|e| format!("{relative}: {e}"))
    }

    /// The folder at `relative` under the peer data folder.
    pub fn path(&self, relative: &str) -> PathBuf {
        self.root.join(relative)
    }

    /// Runs the `vouch` binary with `VOUCH_SECRET` set to `secret`, stdin closed.
    pub fn vouch(&self, args: &[&str], secret: &str) -> Result<Output, String> {
        Command::new(&self.vouch)
            .args(args)
            .env("VOUCH_SECRET", secret)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run {}: {e}", self.vouch.display()))
    }
}

/// A string field of a JSON object, or a description of what is missing.
pub fn str_field<'a>(v: &'a Value, name: &str) -> Result<&'a str, String> {
    v[name]
        .as_str()
        .ok_or_else(|| format!("field {name} missing or not a string in {v}"))
}

/// Lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Bytes from hex (either case), or `None`.
pub fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

fn usage() -> ExitCode {
    eprintln!("usage: conformance PEER_DATA_DIR [--vouch PATH] [--numbers N]");
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let mut root = None;
    let mut vouch = None;
    let mut numbers = 1_000_000;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--vouch" => match args.next() {
                Some(path) => vouch = Some(PathBuf::from(path)),
                None => return usage(),
            },
            "--numbers" => match args.next().and_then(|n| n.parse().ok()) {
                Some(n) => numbers = n,
                None => return usage(),
            },
            _ if root.is_none() && !arg.starts_with("--") => root = Some(PathBuf::from(arg)),
            _ => return usage(),
        }
    }
    let Some(root) = root else {
        return usage();
    };
    if !root.is_dir() {
        eprintln!("conformance: {} is not a folder", root.display());
        return ExitCode::from(2);
    }
    let vouch = vouch.unwrap_or_else(default_vouch);
    let ctx = Context {
        root,
        vouch,
        numbers,
    };
    println!(
        "conformance: peer data {}, vouch binary {}",
        ctx.root.display(),
        ctx.vouch.display()
    );

    let mut suites = Vec::new();
    suites.extend(hmac::run(&ctx));
    suites.extend(jcs::run(&ctx));
    suites.extend(jose::run(&ctx));
    suites.extend(webhooks::run(&ctx));

    println!();
    for suite in &suites {
        suite.print();
    }
    let passed: usize = suites.iter().map(|s| s.passed).sum();
    let failed: usize = suites.iter().map(|s| s.failed.len()).sum();
    let not_applicable: usize = suites.iter().map(Suite::not_applicable_count).sum();
    println!(
        "\nconformance total: {passed} passed, {failed} failed, {not_applicable} not applicable"
    );
    if failed > 0 || passed == 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

/// `target/<profile>/vouch`, beside `target/<profile>/examples/` where this runs from.
fn default_vouch() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.parent()?.join("vouch")))
        .unwrap_or_else(|| Path::new("vouch").to_path_buf())
}
