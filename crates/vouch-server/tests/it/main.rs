//! vouch-server's integration tests, linked into one binary. Most modules are black-box
//! stories against the real server started in-process (`common::Server`, on a temporary
//! SQLite file, or on a fresh PostgreSQL database when `VOUCH_TEST_DATABASE_URL` is set);
//! `group_commit` and `store_conformance` test the stores at their own API, the `*_doc`
//! modules hold docs/ to what the server serves, `packaging` checks the crate's shape, and
//! `postgres_*` run several nodes on one PostgreSQL. `postgres_restart` and `postgres_tls`
//! change the machine's PostgreSQL, so they are `#[ignore]`d and run one at a time by
//! scripts/test-postgres.sh (`cargo test -p vouch-server --test it -- --ignored
//! postgres_tls::`). Files they run live in `tests/support/` (and the repository's
//! `tests/support/`).

mod common;

mod admin;
mod admin_listener;
mod admin_tokens;
mod admin_ui;
mod api_doc;
mod binding;
mod client_addr;
mod connections;
mod customer_backends;
mod demo_switch;
mod diagnose_candidates;
mod durability;
mod enforcement;
mod erasure;
mod errors;
mod group_commit;
mod hostile;
mod identity_model;
mod limits;
mod metrics;
mod metrics_doc;
mod numeric_dates;
mod origins;
mod packaging;
mod postgres_nodes;
mod postgres_restart;
mod postgres_tls;
mod proofs;
mod secrets;
mod sessions_jwks;
mod startup;
mod store_conformance;
mod webhook_urls;
mod webhooks;
