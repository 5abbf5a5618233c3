//! What the handlers' annotations do not say about errors: each operation of
//! the OpenAPI document gets one response per error status it can answer,
//! listing its codes (in the description and as `x-error-codes`), and a `5XX`.
//!
//! The codes follow from what an operation is: its authentication (the
//! extractors `WidgetAuth`, `SessionAuth`, `AdminAuth`), whether it reads a
//! JSON body or a query, whether it names an object in its path, and for the
//! proof-checking and conflicting routes, the route itself.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::error::ErrorCode::{self, *};

/// Routes that check a proof of identity (wrong ones count towards the limits).
const PROOF_ROUTES: [&str; 2] = ["/v1/identify", "/v1/group"];

/// The error codes of one operation.
pub fn error_codes(method: &str, path: &str, op: &Value) -> Vec<ErrorCode> {
    let scheme = op["security"]
        .as_array()
        .and_then(|s| s.first())
        .and_then(Value::as_object)
        .and_then(|m| m.keys().next().cloned())
        .unwrap_or_default();
    let mut codes = Vec::new();
    let reads_body = op.get("requestBody").is_some();
    let reads_query = op["parameters"]
        .as_array()
        .is_some_and(|p| p.iter().any(|p| p["in"] == "query"));
    if reads_body || reads_query {
        codes.push(InvalidRequest);
    }
    if reads_body {
        codes.extend([PayloadTooLarge, UnsupportedMediaType]);
    }
    match scheme.as_str() {
        "publishable_key" => {
            codes.extend([InvalidPublishableKey, OriginNotAllowed, SecretKeyExposed])
        }
        "session" => codes.extend([
            InvalidSession,
            SessionExpired,
            SignatureRequired,
            OriginNotAllowed,
            AnonymousNotAllowed,
            SecretKeyExposed,
        ]),
        "admin_token" => {
            codes.push(InvalidAdminToken);
            // A viewer may read and diagnose; the token list and a revealed
            // secret need more than that.
            let full_read = path == "/admin/v1/admin-tokens"
                || path == "/admin/v1/audit"
                || path == "/admin/v1/environments/{env}/secrets/{key_id}";
            if (method != "get" && !path.ends_with("/diagnose")) || full_read {
                codes.push(Forbidden);
            }
            if path.contains('{') {
                codes.push(NotFound);
            }
        }
        _ => {}
    }
    match (method, path) {
        ("post", "/v1/sessions") => codes.push(AnonymousNotAllowed),
        ("post", "/v1/identify") => codes.extend([
            MalformedSignature,
            InvalidSignature,
            SignatureRequired,
            InvalidToken,
            TokenExpired,
            InvalidAttributesSignature,
            UnsignedLimitReached,
        ]),
        ("post", "/v1/group") => codes.extend([MalformedSignature, InvalidSignature]),
        ("post", "/admin/v1/environments/{env}/secrets")
        | ("delete", "/admin/v1/admin-tokens/{id}")
        | ("post", "/admin/v1/environments/{env}/webhooks/{id}/replay") => codes.push(Conflict),
        _ => {}
    }
    if PROOF_ROUTES.contains(&path) {
        codes.push(RateLimited);
    }
    let mut unique = Vec::with_capacity(codes.len());
    for c in codes {
        if !unique.contains(&c) {
            unique.push(c);
        }
    }
    unique
}

fn error_response(description: String, codes: &[ErrorCode]) -> Value {
    json!({
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorOut"}}},
        "x-error-codes": codes.iter().map(|c| c.as_str()).collect::<Vec<_>>(),
    })
}

fn listed(codes: &[ErrorCode]) -> String {
    codes
        .iter()
        .map(|c| format!("`{}`", c.as_str()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Names the codes of the error responses an annotation gave a single status
/// (`/readyz`'s 503): every code with that status.
fn name_annotated(op: &mut Value) {
    let Some(responses) = op.get_mut("responses").and_then(Value::as_object_mut) else {
        return;
    };
    for (status, r) in responses.iter_mut() {
        let Ok(status) = status.parse::<u16>() else {
            continue;
        };
        let codes: Vec<&str> = ErrorCode::ALL
            .iter()
            .filter(|c| c.status().as_u16() == status)
            .map(|c| c.as_str())
            .collect();
        if status >= 400 && !codes.is_empty() && r.get("x-error-codes").is_none() {
            r["x-error-codes"] = json!(codes);
        }
    }
}

/// Adds the error responses to every operation that answers errors (those the
/// annotations give a `4XX`); operations without one (`/healthz`, the JWKS…)
/// are left as they are.
pub fn complete(doc: &mut Value) {
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else {
        return;
    };
    for (path, item) in paths.iter_mut() {
        let Some(item) = item.as_object_mut() else {
            continue;
        };
        for (method, op) in item.iter_mut() {
            if op.pointer("/responses/4XX").is_none() {
                name_annotated(op);
                continue;
            }
            let codes = error_codes(method, path, op);
            let mut by_status: BTreeMap<u16, Vec<ErrorCode>> = BTreeMap::new();
            for c in codes {
                by_status.entry(c.status().as_u16()).or_default().push(c);
            }
            let Some(responses) = op.get_mut("responses").and_then(Value::as_object_mut) else {
                continue;
            };
            for (status, codes) in &by_status {
                let mut r = error_response(listed(codes), codes);
                if codes.contains(&RateLimited) {
                    r["description"] = json!(format!(
                        "{}: too many wrong proofs from this client; a correct proof is still accepted",
                        listed(codes)
                    ));
                    r["headers"] = json!({"Retry-After": {
                        "description": "Seconds until the client's failure window ends",
                        "schema": {"type": "integer", "minimum": 1},
                    }});
                }
                responses.insert(status.to_string(), r);
            }
            responses.insert(
                "4XX".into(),
                error_response(
                    "`invalid_request` with status 405 (method not allowed on this path) or 408 (the request did not arrive within the time allowed)".into(),
                    &[InvalidRequest],
                ),
            );
            responses.insert(
                "5XX".into(),
                error_response(
                    "`internal` (500, logged with details the answer does not carry) or `unavailable` (503, the database does not answer; retry)".into(),
                    &[Internal, Unavailable],
                ),
            );
        }
    }
}
