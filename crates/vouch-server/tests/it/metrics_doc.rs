//! docs/metrics.md and docs/grafana-dashboard.json against what `/metrics`
//! serves: every family exported is documented, every metric a query or a
//! dashboard panel names exists, and the session gauges move with traffic.
//! The metrics are process-wide and other tests of the binary move them too, so
//! the checks are lower bounds on what this test alone adds.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;

use crate::common::*;
use serde_json::{Value, json};

const DOC: &str = include_str!("../../../../docs/metrics.md");
const DASHBOARD: &str = include_str!("../../../../docs/grafana-dashboard.json");

/// Families declared by `# TYPE` lines.
fn families(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

/// Every `vouch_…` identifier in `text`, reduced to its family name.
fn named(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = text;
    while let Some(i) = rest.find("vouch_") {
        let tail = &rest[i..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        let mut name = &tail[..end];
        for suffix in ["_total", "_bucket", "_sum", "_count"] {
            if let Some(base) = name.strip_suffix(suffix) {
                name = base;
                break;
            }
        }
        out.insert(name.to_string());
        rest = &tail[end..];
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_documented_metrics_and_dashboard_match_what_is_served() {
    let s = Server::start_sqlite().await;
    // Request metrics exist once a request has been answered.
    assert_eq!(s.get("/healthz", None).await.status, 200);
    let text = s.get("/metrics", None).await.text.clone();
    let served = families(&text);
    assert!(served.len() >= 10, "{served:?}");

    let documented = named(DOC);
    for f in &served {
        assert!(
            documented.contains(f),
            "{f} is served but not documented in docs/metrics.md"
        );
    }
    for f in &documented {
        assert!(
            served.contains(f),
            "docs/metrics.md names {f}, which /metrics does not serve"
        );
    }

    let dashboard: Value = serde_json::from_str(DASHBOARD).expect("the dashboard is JSON");
    let panels = dashboard["panels"].as_array().expect("panels");
    assert!(panels.len() >= 8);
    let mut charted = BTreeSet::new();
    for p in panels {
        let targets = p["targets"].as_array().expect("every panel has targets");
        assert!(!targets.is_empty(), "{} has no query", p["title"]);
        for t in targets {
            let expr = t["expr"].as_str().expect("a PromQL expression");
            let names = named(expr);
            assert!(!names.is_empty(), "{expr} reads no Vouch metric");
            for n in names {
                assert!(
                    served.contains(&n),
                    "panel {} queries {n}, which /metrics does not serve",
                    p["title"]
                );
                charted.insert(n);
            }
        }
    }
    // The dashboard charts every family.
    assert_eq!(charted, served);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_sessions_and_the_session_cache_move_with_traffic() {
    let s = Server::start_sqlite().await;
    let env = s.env().await;
    let before = s.get("/metrics", None).await.text.clone();
    let out = s
        .identify_ok(
            &env.pk,
            &json!({"user_id": "gauge-1", "signature": env.sign("gauge-1")}),
        )
        .await;
    let token = out["session_token"].as_str().unwrap();
    for _ in 0..3 {
        assert_eq!(s.get("/v1/me", Some(token)).await.status, 200);
    }
    let after = s.get("/metrics", None).await.text.clone();
    assert!(sample(&after, "vouch_open_sessions ") >= 1.0, "{after}");
    let hits = "vouch_session_cache_lookups_total{outcome=\"hit\"}";
    let misses = "vouch_session_cache_lookups_total{outcome=\"miss\"}";
    // The first /v1/me verifies the token, the next two find it cached.
    assert!(sample(&after, misses) - sample(&before, misses) >= 1.0);
    assert!(
        sample(&after, hits) - sample(&before, hits) >= 2.0,
        "{after}"
    );
    s.stop().await;
}
