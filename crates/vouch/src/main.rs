//! The `vouch` binary: parses the command line and calls the module that does the work.
//!
//! Exit status: 0 on success, 1 when `vouch verify` finds a proof invalid, `vouch
//! healthcheck` finds the server not ready, or the server fails; 2 on a usage error (bad
//! arguments, `VOUCH_SECRET` not set).

mod admin_token;
mod cli;
mod healthcheck;
mod input;
mod keygen;
mod migrate;
mod offline;
mod rotate;
mod serve;
mod sign;
mod verify;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command};
use crate::input::UsageError;

/// mimalloc: the server allocates many small, short-lived buffers per
/// request across threads, where glibc's allocator spends noticeably more.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => serve::serve(args).map(|()| ExitCode::SUCCESS),
        Command::Sign(args) => sign::run(args).map(|()| ExitCode::SUCCESS),
        Command::Verify(args) => verify::run(args),
        Command::Keygen(args) => keygen::run(&args).map(|()| ExitCode::SUCCESS),
        Command::MigrateStore(args) => migrate::run(&args).map(|()| ExitCode::SUCCESS),
        Command::Healthcheck(args) => healthcheck::run(&args),
        Command::AdminToken(command) => admin_token::run(&command).map(|()| ExitCode::SUCCESS),
        Command::RotateMasterKey(args) => rotate::run(&args).map(|()| ExitCode::SUCCESS),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            if e.downcast_ref::<UsageError>().is_some() {
                ExitCode::from(2)
            } else {
                ExitCode::from(1)
            }
        }
    }
}
