//! The `vouch` binary's integration tests, linked into one test binary: each module
//! runs the real `vouch` executable (CLI commands, `serve` with its data directory,
//! logs, health check, admin listener, webhook crash recovery, store migration and
//! the offline admin commands) or checks a shipped file against it (deploy files,
//! docs/operations.md, `--version`). `offline` is their shared harness.

mod offline;

mod admin_addr;
mod admin_token_cli;
mod cli;
mod data_dir;
mod deploy_files;
mod healthcheck;
mod migrate_store;
mod operations_doc;
mod rotate_master_key;
mod server_logs;
mod verify_candidates;
mod version;
mod webhooks_crash;
