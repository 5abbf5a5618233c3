//! docs/api.md against the server: its error table is `ErrorCode::ALL` with each
//! code's status, its routes are exactly the live OpenAPI document's (plus the
//! pages it documents, which must exist), each route's documented errors are
//! ones its operation answers, and every webhook event type is described.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};

use crate::common::*;
use reqwest::Method;
use serde_json::Value;
use vouch_server::error::ErrorCode;
use vouch_server::events::EventType;

const DOC: &str = include_str!("../../../../docs/api.md");
const README: &str = include_str!("../../../../README.md");
const INTEGRATION: &str = include_str!("../../../../docs/integration.md");

const METHODS: [&str; 5] = ["GET", "POST", "PUT", "PATCH", "DELETE"];

/// The router's own answer for a path no route serves.
const FALLBACK_MESSAGE: &str = "No such endpoint; see /openapi.json for the API.";

/// The lines of the section under the heading `heading` (up to the next heading of the
/// same or a higher level).
fn section<'a>(doc: &'a str, heading: &str) -> Vec<&'a str> {
    let level = heading.chars().take_while(|c| *c == '#').count();
    let mut lines = doc.lines().skip_while(|l| l.trim_end() != heading);
    assert!(lines.next().is_some(), "docs/api.md has no {heading:?}");
    lines
        .take_while(|l| {
            let hashes = l.chars().take_while(|c| *c == '#').count();
            hashes == 0 || hashes > level || !l[hashes..].starts_with(' ')
        })
        .collect()
}

/// The cells of a Markdown table row, trimmed (None for other lines and separators).
fn cells(line: &str) -> Option<Vec<&str>> {
    let inner = line.trim().strip_prefix('|')?.strip_suffix('|')?;
    let cells: Vec<&str> = inner.split('|').map(str::trim).collect();
    (!cells
        .iter()
        .all(|c| c.chars().all(|ch| ch == '-' || ch == ':')))
    .then_some(cells)
}

/// The text of a cell that is exactly one code span.
fn code_span(cell: &str) -> Option<&str> {
    cell.strip_prefix('`')?.strip_suffix('`')
}

/// Every code span of `text`.
fn code_spans(text: &str) -> Vec<&str> {
    text.split('`').skip(1).step_by(2).collect()
}

/// A route heading: `### \`METHOD /path\``, as (method, path).
fn route_heading(line: &str) -> Option<(String, String)> {
    let text = line.trim_start_matches('#');
    if text.len() == line.len() {
        return None;
    }
    let span = code_span(text.trim())?;
    let (method, path) = span.split_once(' ')?;
    (METHODS.contains(&method) && path.starts_with('/'))
        .then(|| (method.to_string(), path.to_string()))
}

/// Every documented route with the text of its section.
fn documented_routes() -> BTreeMap<(String, String), String> {
    let mut routes = BTreeMap::new();
    let mut current: Option<(String, String)> = None;
    for line in DOC.lines() {
        if line.starts_with('#') {
            current = route_heading(line);
            if let Some(r) = &current {
                let fresh = routes.insert(r.clone(), String::new()).is_none();
                assert!(fresh, "{r:?} is documented twice");
            }
            continue;
        }
        if let Some(r) = &current {
            let text = routes.get_mut(r).unwrap();
            text.push_str(line);
            text.push('\n');
        }
    }
    routes
}

/// The documented errors of a route section: the code spans of its `Errors:` paragraph
/// that are error codes (None when it has no such paragraph).
fn documented_errors(section: &str) -> Option<BTreeSet<String>> {
    let start = section.find("Errors:")?;
    let paragraph = section[start..].split("\n\n").next().unwrap_or_default();
    let codes: BTreeSet<&str> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
    Some(
        code_spans(paragraph)
            .into_iter()
            .filter(|s| codes.contains(s))
            .map(str::to_string)
            .collect(),
    )
}

/// Pages the doc may list beside the OpenAPI routes: the admin UI, the SDK, the demo.
fn is_page(path: &str) -> bool {
    (path.starts_with("/admin") && !path.starts_with("/admin/v1/"))
        || path.starts_with("/sdk/")
        || path == "/demo"
        || path.starts_with("/demo/")
}

/// Every operation of the OpenAPI document: (METHOD, path) → operation.
fn operations(doc: &Value) -> BTreeMap<(String, String), Value> {
    let mut ops = BTreeMap::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("a path item") {
            ops.insert((method.to_uppercase(), path.clone()), op.clone());
        }
    }
    ops
}

/// The error codes an operation lists, over all its responses.
fn answered_codes(op: &Value) -> BTreeSet<String> {
    op["responses"]
        .as_object()
        .expect("responses")
        .values()
        .filter_map(|r| r["x-error-codes"].as_array())
        .flatten()
        .map(|c| c.as_str().expect("a code").to_string())
        .collect()
}

async fn live_openapi(s: &Server) -> Value {
    s.get("/openapi.json", None).await.expect_status(200)
}

#[test]
fn the_error_table_lists_every_code_once_with_its_status() {
    let mut documented = BTreeMap::new();
    for line in section(DOC, "## Errors") {
        let Some(row) = cells(line) else { continue };
        let [status, code, when] = row[..] else {
            panic!("an error table row has three cells: {line}");
        };
        let Some(code) = code_span(code) else {
            continue;
        };
        assert!(!when.is_empty(), "{code} says when it happens");
        let status: u16 = status.parse().expect("a numeric status");
        assert!(
            documented.insert(code.to_string(), status).is_none(),
            "{code} is listed twice"
        );
    }
    let expected: BTreeMap<String, u16> = ErrorCode::ALL
        .iter()
        .map(|c| (c.as_str().to_string(), c.status().as_u16()))
        .collect();
    assert_eq!(documented, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_is_documented_and_every_documented_route_exists() {
    let s = Server::start_configured(|c| c.demo = true).await;
    let ops = operations(&live_openapi(&s).await);
    assert!(ops.len() >= 30, "{:?}", ops.keys());
    let documented = documented_routes();

    let undocumented: Vec<_> = ops
        .keys()
        .filter(|r| !documented.contains_key(*r))
        .collect();
    assert!(
        undocumented.is_empty(),
        "not in docs/api.md: {undocumented:?}"
    );

    let pages: Vec<_> = documented
        .keys()
        .filter(|r| !ops.contains_key(*r))
        .collect();
    for (method, path) in &pages {
        assert!(
            is_page(path),
            "docs/api.md documents {method} {path}, which the OpenAPI document does not have"
        );
        // A page must be served: the router's fallback (404) or a 405 means it is gone.
        let concrete = path
            .replace("{env}", "env_none")
            .replace("{name}", "none.js");
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        let body = (method == Method::POST).then(|| ("application/json", b"{}".to_vec()));
        let r = s.request(method.clone(), &concrete, None, &[], body).await;
        assert_ne!(r.status, 405, "{method} {path}: {}", r.text);
        assert_ne!(
            r.body["error"]["message"].as_str(),
            Some(FALLBACK_MESSAGE),
            "{method} {path} is documented but not served"
        );
    }
    // The doc's page list is not empty by accident, and covers each kind of page.
    for prefix in ["/admin", "/sdk/", "/demo"] {
        assert!(
            pages.iter().any(|(_, p)| p.starts_with(prefix)),
            "no {prefix} page documented"
        );
    }
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_route_documents_only_errors_its_operation_answers() {
    let s = Server::start().await;
    let ops = operations(&live_openapi(&s).await);
    let documented = documented_routes();
    for (route, op) in &ops {
        let text = documented.get(route).expect("every route is documented");
        let errors = documented_errors(text)
            .unwrap_or_else(|| panic!("{route:?} has no `Errors:` paragraph in docs/api.md"));
        let answered = answered_codes(op);
        let extra: Vec<_> = errors.difference(&answered).collect();
        assert!(
            extra.is_empty(),
            "docs/api.md says {route:?} can answer {extra:?}; its OpenAPI operation lists {answered:?}"
        );
    }
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_error_responses_name_real_codes_at_their_status() {
    let s = Server::start().await;
    let doc = live_openapi(&s).await;
    // The error body's `code` is the enum of every code.
    let schema: Vec<&str> = doc["components"]["schemas"]["ErrorCode"]["enum"]
        .as_array()
        .expect("an ErrorCode enum")
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    let all: Vec<&str> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
    assert_eq!(schema, all);
    assert_eq!(
        doc["components"]["schemas"]["ErrorDetail"]["properties"]["code"]["$ref"],
        "#/components/schemas/ErrorCode"
    );

    let mut seen = BTreeSet::new();
    for ((method, path), op) in operations(&doc) {
        let responses = op["responses"].as_object().unwrap();
        let answers_errors = responses.contains_key("4XX");
        if answers_errors {
            assert!(responses.contains_key("5XX"), "{method} {path} has no 5XX");
        }
        for (status, r) in responses {
            let Some(codes) = r["x-error-codes"].as_array() else {
                assert!(
                    !status.starts_with(['4', '5']),
                    "{method} {path} {status} names no codes"
                );
                continue;
            };
            assert_eq!(
                r["content"]["application/json"]["schema"]["$ref"], "#/components/schemas/ErrorOut",
                "{method} {path} {status}"
            );
            for c in codes {
                let c = c.as_str().unwrap();
                let code = ErrorCode::ALL
                    .into_iter()
                    .find(|k| k.as_str() == c)
                    .unwrap_or_else(|| panic!("{method} {path} names unknown code {c}"));
                let want = code.status().as_u16().to_string();
                let range = format!("{}XX", &want[..1]);
                assert!(
                    *status == want || *status == range,
                    "{method} {path}: {c} is listed under {status}, its status is {want}"
                );
                seen.insert(c.to_string());
            }
            if codes.iter().any(|c| c == "rate_limited") {
                assert!(r["headers"]["Retry-After"].is_object(), "{method} {path}");
            }
        }
    }
    // Every code is answered by some operation (`not_found` at least by the admin routes).
    let all: BTreeSet<String> = all.iter().map(|c| c.to_string()).collect();
    assert_eq!(seen, all);
    s.stop().await;
}

#[test]
fn every_webhook_event_type_is_documented() {
    let mut documented = BTreeSet::new();
    for line in section(DOC, "### Event types") {
        let Some(row) = cells(line) else { continue };
        let Some(kind) = code_span(row[0]) else {
            continue;
        };
        assert_eq!(row.len(), 3, "type, when, data: {line}");
        assert!(!row[1].is_empty() && !row[2].is_empty(), "{line}");
        assert!(documented.insert(kind.to_string()), "{kind} twice");
    }
    let all: BTreeSet<String> = EventType::ALL
        .iter()
        .map(|t| t.as_str().to_string())
        .collect();
    assert_eq!(documented, all);
}

#[test]
fn the_readme_and_the_integration_guide_link_the_api_reference() {
    assert!(README.contains("](docs/api.md)"));
    assert!(INTEGRATION.contains("](api.md"));
}
