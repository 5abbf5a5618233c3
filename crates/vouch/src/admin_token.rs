//! `vouch admin-token create|list|revoke`: admin tokens changed in the store
//! itself, for recovery when the admin API cannot be used (every token
//! deleted, lost or leaked). Each change is audited with the actor `cli`.

use serde_json::json;
use vouch_server::api::rfc3339;
use vouch_server::model::{AdminRole, AdminTokenRecord, NewAudit};
use vouch_server::store::{Store, StoreError};

use crate::cli::{
    AdminTokenCommand, AdminTokenCreateArgs, AdminTokenListArgs, AdminTokenRevokeArgs, Role,
};
use crate::input::UsageError;
use crate::offline;

/// The audit actor of every change made here.
const ACTOR: &str = "cli";

/// Runs one `vouch admin-token` subcommand.
pub fn run(command: &AdminTokenCommand) -> anyhow::Result<()> {
    let store_args = match command {
        AdminTokenCommand::Create(a) => &a.store,
        AdminTokenCommand::List(a) => &a.store,
        AdminTokenCommand::Revoke(a) => &a.store,
    };
    offline::runtime()?.block_on(async {
        let open = offline::open(store_args, "vouch admin-token").await?;
        let result = match command {
            AdminTokenCommand::Create(a) => create(&open.store, a).await,
            AdminTokenCommand::List(a) => list(&open.store, a).await,
            AdminTokenCommand::Revoke(a) => revoke(&open.store, a).await,
        };
        open.store.close().await;
        result
    })
}

fn scope(t: &AdminTokenRecord) -> String {
    match &t.environment_ids {
        None => "every environment".into(),
        Some(ids) => ids.join(","),
    }
}

async fn create(store: &Store, args: &AdminTokenCreateArgs) -> anyhow::Result<()> {
    let name = args.name.trim();
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(UsageError(
            "--name must be 1–100 characters, none of them control characters".into(),
        )
        .into());
    }
    let environment_ids = if args.environments.is_empty() {
        None
    } else {
        for id in &args.environments {
            if store.get_environment(id).await?.is_none() {
                return Err(UsageError(format!(
                    "--environment {id:?} is not an environment of this store"
                ))
                .into());
            }
        }
        Some(args.environments.clone())
    };
    let role = match args.role {
        Role::Admin => AdminRole::Admin,
        Role::Viewer => AdminRole::Viewer,
    };
    let value = vouch_core::keys::generate_admin_token();
    let record = AdminTokenRecord {
        id: vouch_core::keys::generate_id("tok"),
        name: name.to_string(),
        role,
        environment_ids,
        hash: vouch_core::keys::sha256(value.as_bytes()),
        created_at: vouch_server::clock::now(),
    };
    store.add_admin_token(record.clone()).await?;
    store
        .append_audit(NewAudit {
            env_id: None,
            kind: "admin_token.created",
            user_id: None,
            key_id: Some(record.id.clone()),
            actor: Some(ACTOR.into()),
            detail: json!({
                "name": record.name,
                "role": record.role,
                "environment_ids": record.environment_ids,
                "message": "Created with `vouch admin-token create`.",
            }),
            at: record.created_at,
        })
        .await?;
    println!("{}", value.expose());
    eprintln!(
        "Created admin token {} ({}, {}, {}). Its value is on standard output, shown only this once: Vouch keeps only its SHA-256.",
        record.id,
        record.name,
        role.as_str(),
        scope(&record)
    );
    Ok(())
}

async fn list(store: &Store, args: &AdminTokenListArgs) -> anyhow::Result<()> {
    let tokens = store.list_admin_tokens().await?;
    if args.json {
        let out: Vec<_> = tokens
            .iter()
            .map(|t| {
                json!({
                    "id": t.id,
                    "name": t.name,
                    "role": t.role,
                    "environment_ids": t.environment_ids,
                    "created_at": rfc3339(t.created_at),
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    let rows: Vec<[String; 5]> = tokens
        .iter()
        .map(|t| {
            [
                t.id.clone(),
                t.name.clone(),
                t.role.as_str().to_string(),
                scope(t),
                rfc3339(t.created_at),
            ]
        })
        .collect();
    let header = ["ID", "NAME", "ROLE", "SCOPE", "CREATED"].map(String::from);
    let mut widths = header.clone().map(|h| h.chars().count());
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    for row in std::iter::once(&header).chain(&rows) {
        let cells: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        println!("{}", cells.join("  ").trim_end());
    }
    if rows.is_empty() {
        eprintln!("No admin tokens: create one with `vouch admin-token create --name NAME`.");
    }
    Ok(())
}

async fn revoke(store: &Store, args: &AdminTokenRevokeArgs) -> anyhow::Result<()> {
    let audit = |last: bool| NewAudit {
        env_id: None,
        kind: "admin_token.deleted",
        user_id: None,
        key_id: Some(args.id.clone()),
        actor: Some(ACTOR.into()),
        detail: json!({
            "message": "Deleted with `vouch admin-token revoke`; the token is refused from now on.",
            "last_full_admin_token": last,
        }),
        at: vouch_server::clock::now(),
    };
    let deleted = match store.delete_admin_token(&args.id, audit(false)).await {
        Err(StoreError::Conflict(_)) if args.yes => {
            store.force_delete_admin_token(&args.id, audit(true)).await
        }
        other => other,
    };
    match deleted {
        Ok(()) => {
            eprintln!("Deleted admin token {}: it is refused from now on.", args.id);
            if args.yes && no_full_token_left(store).await? {
                eprintln!(
                    "No admin token with full access is left: create one with `vouch admin-token create --name NAME`."
                );
            }
            Ok(())
        }
        Err(StoreError::NotFound(_)) => Err(UsageError(format!(
            "no admin token {} (see `vouch admin-token list`)",
            args.id
        ))
        .into()),
        Err(StoreError::Conflict(_)) => Err(UsageError(format!(
            "{} is the last admin token with full access: without it nobody can manage this deployment through the admin API. \
             Create another one first (`vouch admin-token create --name NAME`), or, if it must go now (it leaked), \
             run this again with --yes and create a new one afterwards",
            args.id
        ))
        .into()),
        Err(e) => Err(e.into()),
    }
}

async fn no_full_token_left(store: &Store) -> anyhow::Result<bool> {
    Ok(!store
        .list_admin_tokens()
        .await?
        .iter()
        .any(|t| t.role == AdminRole::Admin && t.environment_ids.is_none()))
}
