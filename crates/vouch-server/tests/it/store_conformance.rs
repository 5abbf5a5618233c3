//! The store conformance suite: the same stories, at the store's own API, on
//! SQLite and on PostgreSQL (a fresh database on `VOUCH_TEST_POSTGRES`). Both
//! adapters run the same scripts; this checks they also read and write the
//! same way (types, NULLs, ordering, conflicts, counts).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common::store::{NOW, environment};
use serde_json::{Map, Value, json};
use vouch_core::{Mode, VerifiedBy};
use vouch_server::model::*;
use vouch_server::store::reads::{AuditQuery, EventQuery, UserQuery};
use vouch_server::store::{Bootstrap, Store, StoreError};

/// A bootstrapped store of each kind, with environment `env_a` (project `prj_1`).
async fn stores() -> Vec<(&'static str, Store, tempfile::TempDir)> {
    let mut out = Vec::new();
    for kind in ["sqlite", "postgres"] {
        let dir = tempfile::tempdir().unwrap();
        let url = match kind {
            "postgres" => {
                Some(crate::common::pg::fresh_database(&crate::common::pg::test_server_url()).await)
            }
            _ => None,
        };
        let store = vouch_server::store::open(url.as_deref(), dir.path())
            .await
            .unwrap();
        let (env, secret, _) = environment("env_a");
        store
            .bootstrap(Bootstrap {
                project_id: "prj_1".into(),
                project_name: "Default".into(),
                environment: env,
                secret,
                signing_key: SigningKeyRecord {
                    kid: "sig_1".into(),
                    ciphertext: vec![4, 5, 6],
                    public_key: vec![7; 32],
                    created_at: NOW,
                    retired_at: None,
                },
                admin_token: Some(token("tok_boot", AdminRole::Admin, None)),
                master_key_check: "check".into(),
                now: NOW,
            })
            .await
            .unwrap();
        out.push((kind, store, dir));
    }
    out
}

fn token(id: &str, role: AdminRole, envs: Option<Vec<String>>) -> AdminTokenRecord {
    AdminTokenRecord {
        id: id.into(),
        name: id.into(),
        role,
        environment_ids: envs,
        hash: vouch_core::keys::sha256(id.as_bytes()),
        created_at: NOW,
    }
}

fn audit(kind: &'static str, user: Option<&str>, at: Ts) -> NewAudit {
    NewAudit {
        env_id: Some("env_a".into()),
        kind,
        user_id: user.map(str::to_string),
        key_id: None,
        actor: Some("tok_boot".into()),
        detail: json!({"n": at}),
        at,
    }
}

fn obj(v: Value) -> Map<String, Value> {
    v.as_object().cloned().unwrap()
}

fn identify(user: &str, proof: bool, attributes: Value, now: Ts) -> IdentifyCommand {
    IdentifyCommand {
        env_id: "env_a".into(),
        user_id: user.into(),
        proof: proof.then(|| Proven {
            by: VerifiedBy::Signature,
            key_id: "key_env_a".into(),
        }),
        attributes: obj(attributes),
        verified_attributes: Map::new(),
        enforcement: Enforcement::Off,
        unsigned_limit: Some(2),
        jti: None,
        now,
    }
}

fn group(user: &str, company: &str, proof: bool, now: Ts) -> GroupCommand {
    GroupCommand {
        env_id: "env_a".into(),
        user_id: user.into(),
        company_id: company.into(),
        proof: proof.then(|| "key_env_a".into()),
        attributes: obj(json!({"seen": now})),
        enforcement: Enforcement::Off,
        now,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bootstrap_meta_environments_and_secrets_read_back_the_same() {
    for (kind, s, _dir) in stores().await {
        assert!(!s.is_empty().await.unwrap(), "{kind}");
        assert_eq!(
            s.get_meta("master_key_check").await.unwrap().as_deref(),
            Some("check")
        );
        assert_eq!(s.default_project().await.unwrap().as_deref(), Some("prj_1"));
        // A second bootstrap is refused.
        let (env, secret, _) = environment("env_b");
        let again = s
            .bootstrap(Bootstrap {
                project_id: "prj_2".into(),
                project_name: "x".into(),
                environment: env,
                secret,
                signing_key: SigningKeyRecord {
                    kid: "sig_2".into(),
                    ciphertext: vec![1],
                    public_key: vec![1],
                    created_at: NOW,
                    retired_at: None,
                },
                admin_token: None,
                master_key_check: "x".into(),
                now: NOW,
            })
            .await;
        assert!(
            matches!(again, Err(StoreError::Conflict(_))),
            "{kind}: {again:?}"
        );
        let (env_b, secret_b, created) = environment("env_b");
        s.create_environment(env_b.clone(), secret_b, created)
            .await
            .unwrap();
        let dup = s
            .create_environment(
                env_b.clone(),
                secret_for("env_b", "key_x"),
                audit("x", None, NOW),
            )
            .await;
        assert!(
            matches!(dup, Err(StoreError::Conflict(_))),
            "{kind}: {dup:?}"
        );
        let by_pk = s.environment_by_pk("pk_test_env_b").await.unwrap().unwrap();
        assert_eq!(by_pk.id, "env_b");
        assert_eq!(by_pk.settings, EnvSettings::new("env_b".into(), Mode::Test));
        assert_eq!(by_pk.sessions_revoked_at, None);
        // Settings and session revocation.
        let mut settings = by_pk.settings.clone();
        settings.enforcement = Enforcement::Enforce;
        s.update_environment(
            "env_b",
            settings.clone(),
            audit("environment.updated", None, NOW + 1),
        )
        .await
        .unwrap();
        s.revoke_sessions("env_b", audit("sessions.revoked", None, NOW + 2))
            .await
            .unwrap();
        let env = s.get_environment("env_b").await.unwrap().unwrap();
        assert_eq!(
            (env.settings, env.sessions_revoked_at),
            (settings, Some(NOW + 2))
        );
        assert!(matches!(
            s.revoke_sessions("env_nope", audit("x", None, NOW)).await,
            Err(StoreError::NotFound("environment"))
        ));
        // Rotation: the other active secrets get an expiry; revocation returns the record.
        s.insert_secret(
            secret_for("env_b", "key_new"),
            Some(NOW + 60),
            audit("secret.rotated", None, NOW),
        )
        .await
        .unwrap();
        let secrets = s.list_secrets("env_b").await.unwrap();
        assert_eq!(secrets.len(), 2, "{kind}");
        assert_eq!(secrets[0].expires_at, Some(NOW + 60));
        assert_eq!(secrets[1].expires_at, None);
        let revoked = s
            .revoke_secret(
                "env_b",
                "key_new",
                false,
                audit("secret.revoked", None, NOW + 5),
            )
            .await
            .unwrap();
        assert_eq!(revoked.revoked_at, Some(NOW + 5));
        assert!(matches!(
            s.revoke_secret("env_b", "key_nope", false, audit("x", None, NOW))
                .await,
            Err(StoreError::NotFound("secret"))
        ));
        assert_eq!(s.list_all_secrets().await.unwrap().len(), 3);
        s.delete_environment("env_b", audit("environment.deleted", None, NOW))
            .await
            .unwrap();
        assert!(s.get_environment("env_b").await.unwrap().is_none());
        assert_eq!(s.list_environments().await.unwrap().len(), 1);
        s.close().await;
    }
}

fn secret_for(env: &str, id: &str) -> SecretRecord {
    SecretRecord {
        id: id.into(),
        env_id: env.into(),
        ciphertext: vec![9, 9],
        imported: true,
        created_at: NOW + 1,
        expires_at: None,
        revoked_at: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identify_rules_counts_and_the_unchanged_path_agree() {
    for (kind, s, _dir) in stores().await {
        let first = s
            .identify(identify("42", true, json!({"plan": "pro"}), NOW))
            .await
            .unwrap()
            .unwrap();
        assert!(first.created && first.write, "{kind}");
        // The same again within the minute: nothing written, the stored user answers.
        let again = s
            .identify(identify("42", true, json!({"plan": "pro"}), NOW + 5))
            .await
            .unwrap()
            .unwrap();
        assert!(!again.write, "{kind}");
        assert_eq!(again.user, first.user, "{kind}");
        let stored = s.get_user("env_a", "42").await.unwrap().unwrap();
        assert_eq!(stored, first.user, "{kind}: read back exactly");
        // Once verified, an unproven identify is refused.
        let r = s
            .identify(identify("42", false, json!({}), NOW + 6))
            .await
            .unwrap();
        assert!(
            matches!(r, Err(IdentifyRejection::SignatureRequired(_))),
            "{kind}"
        );
        // The unsigned cap (2) counts distinct users once.
        for u in ["u1", "u2", "u1"] {
            s.identify(identify(u, false, json!({}), NOW))
                .await
                .unwrap()
                .unwrap();
        }
        let r = s
            .identify(identify("u3", false, json!({}), NOW))
            .await
            .unwrap();
        assert_eq!(
            r.unwrap_err(),
            IdentifyRejection::UnsignedLimitReached,
            "{kind}"
        );
        assert_eq!(
            s.get_environment("env_a")
                .await
                .unwrap()
                .unwrap()
                .unsigned_count,
            2
        );
        // A jti is single-use.
        let mut with_jti = identify("j", true, json!({}), NOW);
        with_jti.jti = Some(("jti-1".into(), NOW + 600));
        s.identify(with_jti.clone()).await.unwrap().unwrap();
        assert_eq!(
            s.identify(with_jti).await.unwrap().unwrap_err(),
            IdentifyRejection::TokenReplayed,
            "{kind}"
        );
        // Stats are exact at once (the pending counts are written first).
        let c = s.coverage("env_a", NOW - 60).await.unwrap();
        assert_eq!((c.verified, c.unverified, c.rejected), (3, 3, 0), "{kind}");
        // Paging users: verified filter, id prefix, cursor.
        let page = s
            .list_users(UserQuery {
                env_id: "env_a".into(),
                verified: Some(false),
                limit: 1,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(page.data[0].id, "u1");
        assert_eq!(page.next_cursor.as_deref(), Some("u1"));
        let next = s
            .list_users(UserQuery {
                env_id: "env_a".into(),
                verified: Some(false),
                after: page.next_cursor,
                limit: 5,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(
            next.data.iter().map(|u| u.id.as_str()).collect::<Vec<_>>(),
            vec!["u2"]
        );
        let prefix = s
            .list_users(UserQuery {
                env_id: "env_a".into(),
                prefix: Some("u".into()),
                limit: 50,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(prefix.data.len(), 2, "{kind}");
        s.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memberships_erasure_and_tombstones_agree() {
    for (kind, s, _dir) in stores().await {
        for u in ["alice", "mallory"] {
            s.identify(identify(u, true, json!({"email": format!("{u}@x")}), NOW))
                .await
                .unwrap()
                .unwrap();
        }
        s.group(group("mallory", "acme", false, NOW))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(s.user_companies("env_a", "mallory").await.unwrap().len(), 1);
        let acme = s
            .group(group("alice", "acme", true, NOW + 1))
            .await
            .unwrap()
            .unwrap();
        assert!(acme.verified);
        assert!(
            s.user_companies("env_a", "mallory")
                .await
                .unwrap()
                .is_empty(),
            "{kind}"
        );
        assert_eq!(
            s.user_companies("env_a", "alice").await.unwrap()[0].id,
            "acme"
        );
        let r = s
            .group(group("mallory", "acme", false, NOW + 2))
            .await
            .unwrap();
        assert!(
            matches!(r, Err(IdentifyRejection::SignatureRequired(_))),
            "{kind}"
        );
        // Events, then erasure of alice: user, memberships and events go; a tombstone stays.
        for i in 0..3 {
            s.track(EventRecord {
                seq: 0,
                id: format!("evt_{kind}_{i}"),
                env_id: "env_a".into(),
                user_id: Some("alice".into()),
                visitor_id: None,
                name: "opened".into(),
                properties: obj(json!({"i": i})),
                created_at: NOW,
            })
            .await
            .unwrap();
        }
        let events = s
            .list_events(EventQuery {
                env_id: "env_a".into(),
                user_id: Some("alice".into()),
                limit: 2,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(events.data.len(), 2);
        assert_eq!(events.data[0].properties["i"], 2, "{kind}: newest first");
        s.delete_user(
            "env_a",
            "alice",
            audit("user.deleted", Some("alice"), NOW + 3),
        )
        .await
        .unwrap();
        assert!(s.get_user("env_a", "alice").await.unwrap().is_none());
        let events = s
            .list_events(EventQuery {
                env_id: "env_a".into(),
                user_id: Some("alice".into()),
                limit: 50,
                ..Default::default()
            })
            .await
            .unwrap();
        assert!(events.data.is_empty(), "{kind}");
        let tomb = s.tombstones(NOW).await.unwrap();
        assert_eq!(
            tomb,
            vec![Tombstone {
                env_id: "env_a".into(),
                user_id: "alice".into(),
                deleted_at: NOW + 3
            }]
        );
        assert!(matches!(
            s.delete_user(
                "env_a",
                "alice",
                audit("user.deleted", Some("alice"), NOW + 4)
            )
            .await,
            Err(StoreError::NotFound("user"))
        ));
        s.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_filters_admin_tokens_and_failure_counts_agree() {
    for (kind, s, _dir) in stores().await {
        for (i, k) in ["identity.rejected", "secret.revealed", "identity.rejected"]
            .into_iter()
            .enumerate()
        {
            let user = (k == "identity.rejected").then_some("bob");
            s.append_audit(audit(k, user, NOW + i as i64 * 100))
                .await
                .unwrap();
        }
        let q = |kind: Option<&str>, user: Option<&str>, since: Option<Ts>, until: Option<Ts>| {
            AuditQuery {
                env_id: Some("env_a".into()),
                kind: kind.map(str::to_string),
                user_id: user.map(str::to_string),
                since,
                until,
                limit: 50,
                ..Default::default()
            }
        };
        let all = s.list_audit(q(None, None, None, None)).await.unwrap().data;
        assert_eq!(all.len(), 3, "{kind}");
        assert_eq!(all[0].actor.as_deref(), Some("tok_boot"));
        let rejected = s
            .list_audit(q(Some("identity.rejected"), Some("bob"), None, None))
            .await
            .unwrap();
        assert_eq!(rejected.data.len(), 2, "{kind}");
        let window = s
            .list_audit(q(None, None, Some(NOW + 100), Some(NOW + 200)))
            .await
            .unwrap();
        assert_eq!(
            window
                .data
                .iter()
                .map(|a| a.kind.as_str())
                .collect::<Vec<_>>(),
            vec!["secret.revealed"]
        );
        // Admin tokens: by hash, listed, the last full one kept.
        assert_eq!(
            s.admin_token(vouch_core::keys::sha256(b"tok_boot"))
                .await
                .unwrap()
                .unwrap()
                .role,
            AdminRole::Admin
        );
        s.add_admin_token(token(
            "tok_view",
            AdminRole::Viewer,
            Some(vec!["env_a".into()]),
        ))
        .await
        .unwrap();
        let listed = s.list_admin_tokens().await.unwrap();
        assert_eq!(listed.len(), 2, "{kind}");
        assert_eq!(
            listed[1].environment_ids.as_deref(),
            Some(&["env_a".to_string()][..])
        );
        let last = s
            .delete_admin_token("tok_boot", audit("admin_token.deleted", None, NOW))
            .await;
        assert!(
            matches!(last, Err(StoreError::Conflict(_))),
            "{kind}: {last:?}"
        );
        s.delete_admin_token("tok_view", audit("admin_token.deleted", None, NOW))
            .await
            .unwrap();
        assert!(matches!(
            s.delete_admin_token("tok_view", audit("x", None, NOW))
                .await,
            Err(StoreError::NotFound("admin token"))
        ));
        // Failure counters: per key, per window.
        let keys = vec!["k1".to_string(), "k2".to_string()];
        assert_eq!(s.count_failures(&keys, NOW).await.unwrap(), vec![1, 1]);
        assert_eq!(
            s.count_failures(&keys[..1], NOW + 1).await.unwrap(),
            vec![2]
        );
        assert_eq!(
            s.count_failures(&keys[..1], NOW + 120).await.unwrap(),
            vec![1],
            "{kind}: a new window"
        );
        s.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_outbox_claims_retries_disables_and_replays_the_same_way() {
    for (kind, s, _dir) in stores().await {
        s.create_webhook(WebhookEndpoint {
            id: "wh_1".into(),
            env_id: "env_a".into(),
            url: "https://hooks.example.com/x".into(),
            event_types: Some(vec!["user.created".into()]),
            secrets: vec![1, 2, 3],
            disabled_at: None,
            disabled_reason: None,
            created_at: NOW,
            updated_at: NOW,
        })
        .await
        .unwrap();
        // user.created is subscribed, user.updated not.
        s.identify(identify("w", true, json!({"a": 1}), NOW))
            .await
            .unwrap()
            .unwrap();
        s.identify(identify("w", true, json!({"a": 2}), NOW))
            .await
            .unwrap()
            .unwrap();
        let now_ms = NOW * 1000;
        let claimed = s.claim_deliveries(now_ms, 10, vec![5_000]).await.unwrap();
        assert_eq!(claimed.len(), 1, "{kind}");
        let d = claimed[0].clone();
        assert_eq!((d.attempt, d.next_attempt_at), (1, Some(now_ms + 5_000)));
        let body: Value = serde_json::from_str(&d.payload).unwrap();
        assert_eq!(
            (body["type"].as_str(), body["data"]["id"].as_str()),
            (Some("user.created"), Some("w"))
        );
        // Nothing else due until the retry time.
        assert!(
            s.claim_deliveries(now_ms + 1, 10, vec![5_000])
                .await
                .unwrap()
                .is_empty()
        );
        let fail = |delivery: ClaimedDelivery, at: i64| AttemptOutcome {
            delivery,
            status_code: Some(500),
            latency_ms: 3,
            response: Some("boom".into()),
            error: None,
            success: false,
            at_ms: at,
        };
        s.record_attempt(fail(d, now_ms + 10)).await.unwrap();
        // The retry is the last one (schedule of one delay): its failure disables the endpoint.
        let retry = s
            .claim_deliveries(now_ms + 5_000, 10, vec![5_000])
            .await
            .unwrap();
        assert_eq!(
            (retry.len(), retry[0].attempt, retry[0].next_attempt_at),
            (1, 2, None),
            "{kind}"
        );
        s.record_attempt(fail(retry[0].clone(), now_ms + 5_010))
            .await
            .unwrap();
        let w = s.get_webhook("env_a", "wh_1").await.unwrap().unwrap();
        assert!(
            w.disabled_at.is_some() && w.disabled_reason.is_some(),
            "{kind}"
        );
        let attempts = s.list_attempts("env_a", "wh_1", None, 50).await.unwrap();
        assert_eq!(attempts.data.len(), 2);
        assert_eq!(attempts.data[0].next_retry_at, None);
        assert_eq!(attempts.data[1].next_retry_at, Some(now_ms + 5_000));
        let disabled = s
            .list_audit(AuditQuery {
                env_id: Some("env_a".into()),
                kind: Some("webhook.disabled".into()),
                limit: 5,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(disabled.data.len(), 1, "{kind}");
        // Enable and replay: the dead delivery is queued again.
        s.enable_webhook("env_a", "wh_1", audit("webhook.enabled", None, NOW))
            .await
            .unwrap();
        assert_eq!(
            s.replay_webhook("env_a", "wh_1", now_ms + 6_000)
                .await
                .unwrap(),
            1,
            "{kind}"
        );
        assert_eq!(
            s.claim_deliveries(now_ms + 6_000, 10, vec![])
                .await
                .unwrap()
                .len(),
            1
        );
        assert!(matches!(
            s.replay_webhook("env_a", "wh_nope", now_ms).await,
            Err(StoreError::NotFound("webhook endpoint"))
        ));
        s.delete_webhook("env_a", "wh_1", audit("webhook.deleted", None, NOW))
            .await
            .unwrap();
        assert!(s.list_webhooks("env_a").await.unwrap().is_empty());
        s.close().await;
    }
}
