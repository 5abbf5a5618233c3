//! The store's operations by resource, each an `impl Store` block: what a
//! handler may ask of the database, typed end to end.

mod environments;
mod tokens;
mod users;
mod webhooks;
