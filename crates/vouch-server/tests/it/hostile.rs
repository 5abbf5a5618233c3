//! Hostile input: a table of malicious or broken requests, each of which must get
//! the contract's JSON error with the right status and code — never a 5xx — after which the
//! server still answers `/healthz`. Then the things a table cannot hold: secrets in every
//! field, slow clients that stall mid-request, and signature brute force.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use crate::common::*;
use base64ct::{Base64UrlUnpadded, Encoding};
use reqwest::Method;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use vouch_core::IdentityClaims;

/// Who a request authenticates as.
#[derive(Clone, Copy, Debug)]
enum Auth {
    None,
    Publishable,
    Session,
    Admin,
}

/// One row of the table.
struct Case {
    name: String,
    method: Method,
    path: String,
    auth: Auth,
    content_type: &'static str,
    body: Option<Vec<u8>>,
    status: u16,
    code: &'static str,
}

fn case(
    name: impl Into<String>,
    method: Method,
    path: &str,
    auth: Auth,
    body: impl Into<Vec<u8>>,
    status: u16,
    code: &'static str,
) -> Case {
    Case {
        name: name.into(),
        method,
        path: path.to_string(),
        auth,
        content_type: "application/json",
        body: Some(body.into()),
        status,
        code,
    }
}

fn post(
    name: impl Into<String>,
    path: &str,
    auth: Auth,
    body: impl Into<Vec<u8>>,
    status: u16,
    code: &'static str,
) -> Case {
    case(name, Method::POST, path, auth, body, status, code)
}

fn bare(
    name: &str,
    method: Method,
    path: &str,
    auth: Auth,
    status: u16,
    code: &'static str,
) -> Case {
    Case {
        name: name.to_string(),
        method,
        path: path.to_string(),
        auth,
        content_type: "",
        body: None,
        status,
        code,
    }
}

/// `depth` nested arrays around a number.
fn nested(depth: usize) -> String {
    format!("{}1{}", "[".repeat(depth), "]".repeat(depth))
}

/// A compact JWT with these header and claims and a signature that is not checked.
fn unsigned_jwt(header: &Value, claims: &Value, signature: &str) -> String {
    let enc = |v: &Value| Base64UrlUnpadded::encode_string(v.to_string().as_bytes());
    format!("{}.{}.{signature}", enc(header), enc(claims))
}

/// A body of exactly `len` bytes: an identify whose one attribute pads it out.
/// An identify of exactly `len` bytes: a 16 KiB attribute (within the stored
/// attribute limit), then JSON whitespace up to the length.
fn identify_of_len(user_id: &str, len: usize) -> Vec<u8> {
    let blob = "x".repeat(BLOB);
    let body = format!(r#"{{"user_id":"{user_id}","attributes":{{"blob":"{blob}"}}}}"#);
    let pad = " ".repeat(len - body.len());
    let body = format!("{{{pad}{}", &body[1..]);
    assert_eq!(body.len(), len);
    body.into_bytes()
}

const BLOB: usize = 16 * 1024;

async fn assert_alive(s: &Server, after: &str) {
    let r = s.get("/healthz", None).await;
    assert_eq!(r.status, 200, "/healthz after {after}: {}", r.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_inputs_get_json_errors_and_the_server_stays_up() {
    let mut s = Server::start().await;
    // Every request on a new connection: the server closes a connection whose
    // body it refused (413) or could not parse, and a pooled client racing that
    // close fails with `IncompleteMessage` on its next request (seen once in
    // ~10 runs on /healthz) — a client artefact, not the server going down.
    s.http = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(0)
        .timeout(std::time::Duration::from_secs(30))
        .build()
        .unwrap();
    let env = s.env().await;
    let session = s.identify_ok(&env.pk, &json!({"user_id": "victim"})).await["session_token"]
        .as_str()
        .unwrap()
        .to_string();
    let env_path = format!("/admin/v1/environments/{}", env.id);
    let env_path = env_path.as_str();
    let (pk, sess, adm, none) = (Auth::Publishable, Auth::Session, Auth::Admin, Auth::None);
    let now = now();
    let deep = nested(10_000);
    let over = BODY_LIMIT + 1;

    let none_token = unsigned_jwt(
        &json!({"alg": "none", "typ": "JWT"}),
        &json!({"sub": "victim", "exp": now + 600}),
        "",
    );
    let none_token_sig = unsigned_jwt(
        &json!({"alg": "none"}),
        &json!({"sub": "victim", "exp": now + 600}),
        "AAAA",
    );
    let none_case_token = unsigned_jwt(
        &json!({"alg": "None", "kid": env.key_id}),
        &json!({"sub": "victim"}),
        "x",
    );
    let hs256_unsigned = unsigned_jwt(&json!({"alg": "HS256"}), &json!({"sub": "victim"}), "x");
    let forged_session = unsigned_jwt(
        &json!({"alg": "none"}),
        &json!({"iss": s.base, "aud": env.id, "sub": "victim", "verified": true, "iat": now, "exp": now + 600}),
        "AAAA",
    );
    let hs_session = vouch_core::proof::issue_identity_token(
        &secret(&env.secret),
        None,
        &IdentityClaims::new("victim").with_expiry(now + 600),
    )
    .unwrap();

    let cases: Vec<Case> = vec![
        // Malformed and truncated JSON.
        post(
            "truncated identify",
            "/v1/identify",
            pk,
            r#"{"user_id": "u"#,
            400,
            "invalid_request",
        ),
        post(
            "truncated attributes",
            "/v1/identify",
            pk,
            r#"{"user_id":"u","attributes":{"a":[1,2"#,
            400,
            "invalid_request",
        ),
        post(
            "trailing garbage",
            "/v1/identify",
            pk,
            r#"{"user_id":"u"} {}"#,
            400,
            "invalid_request",
        ),
        post(
            "trailing comma",
            "/v1/identify",
            pk,
            r#"{"user_id":"u",}"#,
            400,
            "invalid_request",
        ),
        post(
            "single quotes",
            "/v1/identify",
            pk,
            "{'user_id':'u'}",
            400,
            "invalid_request",
        ),
        post("empty body", "/v1/identify", pk, "", 400, "invalid_request"),
        post(
            "only whitespace",
            "/v1/identify",
            pk,
            "  \n ",
            400,
            "invalid_request",
        ),
        post(
            "bare string",
            "/v1/identify",
            pk,
            r#""u""#,
            400,
            "invalid_request",
        ),
        post("null", "/v1/identify", pk, "null", 400, "invalid_request"),
        post(
            "truncated group",
            "/v1/group",
            sess,
            r#"{"company_id":"#,
            400,
            "invalid_request",
        ),
        post(
            "truncated track",
            "/v1/track",
            sess,
            r#"{"event":"e","properties":{"#,
            400,
            "invalid_request",
        ),
        post(
            "truncated session",
            "/v1/sessions",
            pk,
            "{",
            400,
            "invalid_request",
        ),
        post(
            "session body is an array",
            "/v1/sessions",
            pk,
            "[]",
            400,
            "invalid_request",
        ),
        case(
            "truncated admin PATCH",
            Method::PATCH,
            env_path,
            adm,
            r#"{"enforcement":"#,
            400,
            "invalid_request",
        ),
        post(
            "truncated admin create",
            "/admin/v1/environments",
            adm,
            r#"{"name":"x""#,
            400,
            "invalid_request",
        ),
        post(
            "truncated diagnose",
            &format!("{env_path}/diagnose"),
            adm,
            r#"{"user_id":"#,
            400,
            "invalid_request",
        ),
        // Wrong types.
        post(
            "user_id number",
            "/v1/identify",
            pk,
            r#"{"user_id":42}"#,
            400,
            "invalid_request",
        ),
        post(
            "user_id object",
            "/v1/identify",
            pk,
            r#"{"user_id":{"id":"u"}}"#,
            400,
            "invalid_request",
        ),
        post(
            "attributes string",
            "/v1/identify",
            pk,
            r#"{"user_id":"u","attributes":"a=1"}"#,
            400,
            "invalid_request",
        ),
        post(
            "attributes array",
            "/v1/identify",
            pk,
            r#"{"user_id":"u","attributes":[1]}"#,
            400,
            "invalid_request",
        ),
        post(
            "signature object",
            "/v1/identify",
            pk,
            r#"{"user_id":"u","signature":{}}"#,
            400,
            "invalid_request",
        ),
        post(
            "token number",
            "/v1/identify",
            pk,
            r#"{"user_id":"u","token":5}"#,
            400,
            "invalid_request",
        ),
        post(
            "attributes_signature bool",
            "/v1/identify",
            pk,
            r#"{"user_id":"u","attributes":{},"attributes_signature":true}"#,
            400,
            "invalid_request",
        ),
        post(
            "number out of range",
            "/v1/identify",
            pk,
            r#"{"user_id":"u","attributes":{"n":1e400}}"#,
            400,
            "invalid_request",
        ),
        post(
            "company_id array",
            "/v1/group",
            sess,
            r#"{"company_id":["c"]}"#,
            400,
            "invalid_request",
        ),
        post(
            "group attributes number",
            "/v1/group",
            sess,
            r#"{"company_id":"c","attributes":3}"#,
            400,
            "invalid_request",
        ),
        post(
            "event object",
            "/v1/track",
            sess,
            r#"{"event":{}}"#,
            400,
            "invalid_request",
        ),
        post(
            "properties array",
            "/v1/track",
            sess,
            r#"{"event":"e","properties":[1]}"#,
            400,
            "invalid_request",
        ),
        post(
            "missing event",
            "/v1/track",
            sess,
            r#"{}"#,
            400,
            "invalid_request",
        ),
        case(
            "enforcement unknown",
            Method::PATCH,
            env_path,
            adm,
            r#"{"enforcement":"maybe"}"#,
            400,
            "invalid_request",
        ),
        case(
            "ttl as string",
            Method::PATCH,
            env_path,
            adm,
            r#"{"session_ttl_seconds":"10"}"#,
            400,
            "invalid_request",
        ),
        case(
            "ttl negative",
            Method::PATCH,
            env_path,
            adm,
            r#"{"session_ttl_seconds":-1}"#,
            400,
            "invalid_request",
        ),
        case(
            "ttl huge",
            Method::PATCH,
            env_path,
            adm,
            r#"{"session_ttl_seconds":9223372036854775807}"#,
            400,
            "invalid_request",
        ),
        case(
            "origins string",
            Method::PATCH,
            env_path,
            adm,
            r#"{"allowed_origins":"*"}"#,
            400,
            "invalid_request",
        ),
        case(
            "origin with path",
            Method::PATCH,
            env_path,
            adm,
            r#"{"allowed_origins":["https://a.example/x"]}"#,
            400,
            "invalid_request",
        ),
        case(
            "negative limit",
            Method::PATCH,
            env_path,
            adm,
            r#"{"unsigned_session_limit":-1}"#,
            400,
            "invalid_request",
        ),
        case(
            "rate limit overflow",
            Method::PATCH,
            env_path,
            adm,
            r#"{"rate_limit_per_user":1e20}"#,
            400,
            "invalid_request",
        ),
        case(
            "rate limit zero",
            Method::PATCH,
            env_path,
            adm,
            r#"{"rate_limit_per_address":0}"#,
            400,
            "invalid_request",
        ),
        case(
            "unknown setting",
            Method::PATCH,
            env_path,
            adm,
            r#"{"enforce":true}"#,
            400,
            "invalid_request",
        ),
        case(
            "mode change",
            Method::PATCH,
            env_path,
            adm,
            r#"{"mode":"live"}"#,
            400,
            "invalid_request",
        ),
        case(
            "blank name",
            Method::PATCH,
            env_path,
            adm,
            r#"{"name":"   "}"#,
            400,
            "invalid_request",
        ),
        case(
            "PATCH body array",
            Method::PATCH,
            env_path,
            adm,
            "[]",
            400,
            "invalid_request",
        ),
        // Deep nesting.
        post(
            "10 000 nested arrays in attributes",
            "/v1/identify",
            pk,
            format!(r#"{{"user_id":"u","attributes":{{"a":{deep}}}}}"#),
            400,
            "invalid_request",
        ),
        post(
            "deep signed attributes",
            "/v1/identify",
            pk,
            format!(
                r#"{{"user_id":"u","attributes":{{"a":{deep}}},"attributes_signature":"{}"}}"#,
                "0".repeat(64)
            ),
            400,
            "invalid_request",
        ),
        post(
            "deep objects",
            "/v1/identify",
            pk,
            format!(
                r#"{{"user_id":"u","attributes":{}1{}}}"#,
                r#"{"a":"#.repeat(5_000),
                "}".repeat(5_000)
            ),
            400,
            "invalid_request",
        ),
        post(
            "deep properties",
            "/v1/track",
            sess,
            format!(r#"{{"event":"e","properties":{{"p":{deep}}}}}"#),
            400,
            "invalid_request",
        ),
        post(
            "deep group attributes",
            "/v1/group",
            sess,
            format!(r#"{{"company_id":"c","attributes":{{"p":{deep}}}}}"#),
            400,
            "invalid_request",
        ),
        case(
            "deep PATCH",
            Method::PATCH,
            env_path,
            adm,
            format!(r#"{{"name":{deep}}}"#),
            400,
            "invalid_request",
        ),
        post(
            "deep session body",
            "/v1/sessions",
            pk,
            format!(r#"{{"a":{deep}}}"#),
            400,
            "invalid_request",
        ),
        // Huge strings.
        post(
            "user_id of 256 bytes",
            "/v1/identify",
            pk,
            format!(r#"{{"user_id":"{}"}}"#, "u".repeat(256)),
            400,
            "invalid_request",
        ),
        post(
            "user_id of 60 KiB",
            "/v1/identify",
            pk,
            format!(r#"{{"user_id":"{}"}}"#, "u".repeat(60 * 1024)),
            400,
            "invalid_request",
        ),
        post(
            "company_id of 256 bytes",
            "/v1/group",
            sess,
            format!(r#"{{"company_id":"{}"}}"#, "c".repeat(256)),
            400,
            "invalid_request",
        ),
        post(
            "event of 256 bytes",
            "/v1/track",
            sess,
            format!(r#"{{"event":"{}"}}"#, "e".repeat(256)),
            400,
            "invalid_request",
        ),
        post(
            "identify 1 byte over 64 KiB",
            "/v1/identify",
            pk,
            identify_of_len("big", over),
            413,
            "payload_too_large",
        ),
        post(
            "identify of 1 MiB",
            "/v1/identify",
            pk,
            identify_of_len("big", 1 << 20),
            413,
            "payload_too_large",
        ),
        post(
            "track over 64 KiB",
            "/v1/track",
            sess,
            format!(
                r#"{{"event":"e","properties":{{"p":"{}"}}}}"#,
                "p".repeat(over)
            ),
            413,
            "payload_too_large",
        ),
        case(
            "PATCH over 64 KiB",
            Method::PATCH,
            env_path,
            adm,
            format!(r#"{{"name":"{}"}}"#, "n".repeat(over)),
            413,
            "payload_too_large",
        ),
        case(
            "name of 60 KiB",
            Method::PATCH,
            env_path,
            adm,
            format!(r#"{{"name":"{}"}}"#, "n".repeat(60 * 1024)),
            400,
            "invalid_request",
        ),
        // Invalid UTF-8, lone surrogates, NUL.
        post(
            "invalid UTF-8 in user_id",
            "/v1/identify",
            pk,
            b"{\"user_id\":\"\xff\xfe\"}".to_vec(),
            400,
            "invalid_request",
        ),
        post(
            "overlong UTF-8",
            "/v1/identify",
            pk,
            b"{\"user_id\":\"\xc0\xaf\"}".to_vec(),
            400,
            "invalid_request",
        ),
        post(
            "invalid UTF-8 in attributes",
            "/v1/identify",
            pk,
            b"{\"user_id\":\"u\",\"attributes\":{\"a\":\"\xed\xa0\x80\"}}".to_vec(),
            400,
            "invalid_request",
        ),
        post(
            "invalid UTF-8 in event",
            "/v1/track",
            sess,
            b"{\"event\":\"\x80\"}".to_vec(),
            400,
            "invalid_request",
        ),
        case(
            "invalid UTF-8 in PATCH",
            Method::PATCH,
            env_path,
            adm,
            b"{\"name\":\"\xff\"}".to_vec(),
            400,
            "invalid_request",
        ),
        post(
            "lone high surrogate",
            "/v1/identify",
            pk,
            r#"{"user_id":"\ud800"}"#,
            400,
            "invalid_request",
        ),
        post(
            "lone low surrogate",
            "/v1/identify",
            pk,
            r#"{"user_id":"u","attributes":{"a":"\udc00"}}"#,
            400,
            "invalid_request",
        ),
        post(
            "surrogate in key",
            "/v1/identify",
            pk,
            r#"{"user_id":"u","attributes":{"\ud800":1}}"#,
            400,
            "invalid_request",
        ),
        post(
            "surrogate in signed attributes",
            "/v1/identify",
            pk,
            format!(
                r#"{{"user_id":"u","attributes":{{"a":"\ud800x"}},"attributes_signature":"{}"}}"#,
                "0".repeat(64)
            ),
            400,
            "invalid_request",
        ),
        post(
            "surrogate in event",
            "/v1/track",
            sess,
            r#"{"event":"\udfff"}"#,
            400,
            "invalid_request",
        ),
        post(
            "NUL in user_id",
            "/v1/identify",
            pk,
            r#"{"user_id":"a\u0000b"}"#,
            400,
            "invalid_request",
        ),
        post(
            "raw NUL byte",
            "/v1/identify",
            pk,
            b"{\"user_id\":\"a\x00b\"}".to_vec(),
            400,
            "invalid_request",
        ),
        post(
            "NUL in company_id",
            "/v1/group",
            sess,
            r#"{"company_id":"\u0000"}"#,
            400,
            "invalid_request",
        ),
        post(
            "NUL in event",
            "/v1/track",
            sess,
            r#"{"event":"e\u0000"}"#,
            400,
            "invalid_request",
        ),
        // Wrong content types.
        Case {
            content_type: "text/plain",
            ..post(
                "text/plain",
                "/v1/identify",
                pk,
                r#"{"user_id":"u"}"#,
                415,
                "unsupported_media_type",
            )
        },
        Case {
            content_type: "",
            ..post(
                "no content type",
                "/v1/track",
                sess,
                r#"{"event":"e"}"#,
                415,
                "unsupported_media_type",
            )
        },
        Case {
            content_type: "application/jsonx",
            ..case(
                "jsonx PATCH",
                Method::PATCH,
                env_path,
                adm,
                "{}",
                415,
                "unsupported_media_type",
            )
        },
        // Proofs that must not pass: alg none, unsigned, forged.
        post(
            "alg none, empty signature",
            "/v1/identify",
            pk,
            json!({"user_id": "victim", "token": none_token}).to_string(),
            401,
            "invalid_token",
        ),
        post(
            "alg none with signature",
            "/v1/identify",
            pk,
            json!({"user_id": "victim", "token": none_token_sig}).to_string(),
            401,
            "invalid_token",
        ),
        post(
            "alg None with kid",
            "/v1/identify",
            pk,
            json!({"user_id": "victim", "token": none_case_token}).to_string(),
            401,
            "invalid_token",
        ),
        post(
            "HS256 with a junk signature",
            "/v1/identify",
            pk,
            json!({"user_id": "victim", "token": hs256_unsigned}).to_string(),
            401,
            "invalid_token",
        ),
        post(
            "token of one part",
            "/v1/identify",
            pk,
            json!({"user_id": "victim", "token": "abc"}).to_string(),
            401,
            "invalid_token",
        ),
        post(
            "token of four parts",
            "/v1/identify",
            pk,
            json!({"user_id": "victim", "token": "a.b.c.d"}).to_string(),
            401,
            "invalid_token",
        ),
        post(
            "signature of the wrong length",
            "/v1/identify",
            pk,
            json!({"user_id": "victim", "signature": "abc"}).to_string(),
            400,
            "malformed_signature",
        ),
        post(
            "signature with a NUL",
            "/v1/identify",
            pk,
            json!({"user_id": "victim", "signature": format!("{}\u{0}", "a".repeat(63))})
                .to_string(),
            400,
            "malformed_signature",
        ),
        bare(
            "alg none session",
            Method::GET,
            "/v1/me",
            Auth::None,
            401,
            "invalid_session",
        ),
        // Unknown routes and methods.
        bare(
            "unknown route",
            Method::GET,
            "/nope",
            none,
            404,
            "not_found",
        ),
        bare(
            "unknown widget route",
            Method::POST,
            "/v1/identify/extra",
            pk,
            404,
            "not_found",
        ),
        bare(
            "encoded NUL in path",
            Method::GET,
            "/v1/%00",
            none,
            404,
            "not_found",
        ),
        bare(
            "8 KiB path",
            Method::GET,
            &format!("/{}", "a".repeat(8 * 1024)),
            none,
            404,
            "not_found",
        ),
        bare(
            "GET identify",
            Method::GET,
            "/v1/identify",
            pk,
            405,
            "invalid_request",
        ),
        bare(
            "DELETE track",
            Method::DELETE,
            "/v1/track",
            sess,
            405,
            "invalid_request",
        ),
        bare(
            "PUT environments",
            Method::PUT,
            "/admin/v1/environments",
            adm,
            405,
            "invalid_request",
        ),
        bare(
            "unknown method",
            Method::from_bytes(b"BREW").unwrap(),
            "/v1/identify",
            pk,
            405,
            "invalid_request",
        ),
        bare(
            "unknown environment",
            Method::GET,
            "/admin/v1/environments/env_nope",
            adm,
            404,
            "not_found",
        ),
        bare(
            "user id with NUL",
            Method::GET,
            &format!("{env_path}/users/a%00b"),
            adm,
            404,
            "not_found",
        ),
        bare(
            "NUL in a query",
            Method::GET,
            &format!("{env_path}/events?user_id=a%00"),
            adm,
            400,
            "invalid_request",
        ),
        bare(
            "no admin token",
            Method::GET,
            "/admin/v1/environments",
            none,
            401,
            "invalid_admin_token",
        ),
        post(
            "identify without a key",
            "/v1/identify",
            none,
            r#"{"user_id":"u"}"#,
            401,
            "invalid_publishable_key",
        ),
    ];
    for c in &cases {
        let bearer = match c.auth {
            Auth::None => None,
            Auth::Publishable => Some(env.pk.as_str()),
            Auth::Session => Some(session.as_str()),
            Auth::Admin => Some(ADMIN_TOKEN),
        };
        let bearer = if c.name == "alg none session" {
            Some(forged_session.as_str())
        } else {
            bearer
        };
        let body = c.body.clone().map(|b| (c.content_type, b));
        let r = s
            .request(c.method.clone(), &c.path, bearer, &[], body)
            .await;
        assert!(
            r.status < 500,
            "{}: a server error {}: {}",
            c.name,
            r.status,
            r.text
        );
        assert_eq!(
            (r.status, r.body["error"]["code"].as_str()),
            (c.status, Some(c.code)),
            "{}: {}",
            c.name,
            r.text.chars().take(300).collect::<String>()
        );
        assert_json_error_shape(&r);
        for secret in [env.secret.as_str(), ADMIN_TOKEN] {
            assert!(
                !r.text.contains(secret),
                "{}: the answer holds a secret",
                c.name
            );
        }
        assert_alive(&s, &c.name).await;
    }
    // An HS256 identity token is not a session token.
    s.get("/v1/me", Some(&hs_session))
        .await
        .expect_error(401, "invalid_session");

    // None of it changed the environment or let anyone in.
    let e = s.admin_get(env_path).await;
    assert_eq!(e["enforcement"], json!("off"));
    assert_eq!(e["allowed_origins"], json!([]));
    let user = s.admin_user(&env.id, "victim").await.expect_status(200);
    assert_eq!(user["verified"], json!(false));
    s.admin_user(&env.id, "big")
        .await
        .expect_error(404, "not_found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_up_to_exactly_64_kib_and_odd_but_valid_values_are_accepted() {
    let s = Server::start().await;
    let env = s.env().await;
    let r = s
        .post_raw(
            "/v1/identify",
            Some(&env.pk),
            "application/json",
            identify_of_len("edge", BODY_LIMIT),
        )
        .await;
    r.expect_status(200);
    let stored = s.admin_user(&env.id, "edge").await.expect_status(200);
    assert_eq!(stored["attributes"]["blob"].as_str().unwrap().len(), BLOB);
    // A NUL inside an attribute value, escaped surrogate pairs and deep but allowed nesting.
    let body = json!({
        "user_id": "odd",
        "attributes": {"nul": "a\u{0}b", "emoji": "\u{1F600}", "nested": serde_json::from_str::<Value>(&nested(100)).unwrap()},
    });
    let r = s.identify(&env.pk, &body).await;
    let out = r.expect_status(200);
    assert_eq!(out["user"]["attributes"]["nul"], json!("a\u{0}b"));
    assert_eq!(out["user"]["attributes"]["emoji"], json!("\u{1F600}"));
    let r = s
        .post_raw(
            "/v1/identify",
            Some(&env.pk),
            "application/json",
            r#"{"user_id":"pair","attributes":{"e":"\ud83d\ude00"}}"#,
        )
        .await;
    assert_eq!(
        r.expect_status(200)["user"]["attributes"]["e"],
        json!("\u{1F600}")
    );
    assert_alive(&s, "odd values").await;
}

/// A token whose `exp` is the largest integer, with a `jti`: its replay window must not
/// wrap around (it once overflowed `exp + leeway`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_in_any_field_of_any_widget_call_is_revoked_and_refused() {
    let s = Server::start().await;
    let env = s.env().await;
    let session = s.identify_ok(&env.pk, &json!({"user_id": "u1"})).await["session_token"]
        .as_str()
        .unwrap()
        .to_string();
    let secrets_path = format!("/admin/v1/environments/{}/secrets", env.id);
    type Place = fn(&str) -> (&'static str, bool, Value);
    // (name, call) where call gives (path, authenticate with the session?, body).
    let places: Vec<(&str, Place)> = vec![
        ("identify user_id", |k| {
            ("/v1/identify", false, json!({"user_id": k}))
        }),
        ("identify attribute value", |k| {
            (
                "/v1/identify",
                false,
                json!({"user_id": "u", "attributes": {"note": k}}),
            )
        }),
        ("identify attribute key", |k| {
            (
                "/v1/identify",
                false,
                json!({"user_id": "u", "attributes": {k: 1}}),
            )
        }),
        ("identify nested attribute", |k| {
            (
                "/v1/identify",
                false,
                json!({"user_id": "u", "attributes": {"a": [{"b": k}]}}),
            )
        }),
        ("identify embedded in text", |k| {
            (
                "/v1/identify",
                false,
                json!({"user_id": "u", "attributes": {"note": format!("my key is {k}, ok")}}),
            )
        }),
        ("identify signature", |k| {
            (
                "/v1/identify",
                false,
                json!({"user_id": "u", "signature": k}),
            )
        }),
        ("identify token", |k| {
            ("/v1/identify", false, json!({"user_id": "u", "token": k}))
        }),
        ("identify attributes_signature", |k| {
            (
                "/v1/identify",
                false,
                json!({"user_id": "u", "attributes": {}, "attributes_signature": k}),
            )
        }),
        ("identify unknown field", |k| {
            ("/v1/identify", false, json!({"user_id": "u", "secret": k}))
        }),
        ("sessions body", |k| {
            ("/v1/sessions", false, json!({"x": k}))
        }),
        ("group company_id", |k| {
            ("/v1/group", true, json!({"company_id": k}))
        }),
        ("group attributes", |k| {
            (
                "/v1/group",
                true,
                json!({"company_id": "c", "attributes": {"k": k}}),
            )
        }),
        ("group signature", |k| {
            (
                "/v1/group",
                true,
                json!({"company_id": "c", "signature": k}),
            )
        }),
        ("track event", |k| ("/v1/track", true, json!({"event": k}))),
        ("track properties", |k| {
            (
                "/v1/track",
                true,
                json!({"event": "e", "properties": {"k": k}}),
            )
        }),
    ];
    let fresh = || async {
        let created = s
            .admin(Method::POST, &secrets_path, Some(&json!({})))
            .await
            .expect_status(201);
        (
            created["id"].as_str().unwrap().to_string(),
            created["value"].as_str().unwrap().to_string(),
        )
    };
    for (name, place) in &places {
        let (key_id, value) = fresh().await;
        let (path, with_session, body) = place(&value);
        let bearer = if with_session { &session } else { &env.pk };
        let r = s.post(path, Some(bearer), &body).await;
        r.expect_error(403, "secret_key_exposed");
        assert!(
            !r.text.contains(&value),
            "{name}: the answer echoes the secret"
        );
        assert_eq!(s.secret_status(&env.id, &key_id).await, "revoked", "{name}");
    }
    // As the publishable key, and as the session token.
    for (name, path, body) in [
        ("publishable key", "/v1/identify", json!({"user_id": "u"})),
        ("publishable key on sessions", "/v1/sessions", json!({})),
    ] {
        let (key_id, value) = fresh().await;
        s.post(path, Some(&value), &body)
            .await
            .expect_error(403, "secret_key_exposed");
        assert_eq!(s.secret_status(&env.id, &key_id).await, "revoked", "{name}");
    }
    for path in ["/v1/me", "/v1/track"] {
        let (key_id, value) = fresh().await;
        let r = if path == "/v1/me" {
            s.get(path, Some(&value)).await
        } else {
            s.post(path, Some(&value), &json!({"event": "e"})).await
        };
        r.expect_error(403, "secret_key_exposed");
        assert_eq!(
            s.secret_status(&env.id, &key_id).await,
            "revoked",
            "session {path}"
        );
    }
    // An imported secret (no recognisable prefix) is caught too.
    let imported = "imported-legacy-secret-0123456789";
    let created = s
        .admin(
            Method::POST,
            &secrets_path,
            Some(&json!({"value": imported})),
        )
        .await
        .expect_status(201);
    s.identify(
        &env.pk,
        &json!({"user_id": "u", "attributes": {"x": imported}}),
    )
    .await
    .expect_error(403, "secret_key_exposed");
    assert_eq!(
        s.secret_status(&env.id, created["id"].as_str().unwrap())
            .await,
        "revoked"
    );
    // The environment's first secret was never exposed and still verifies.
    s.identify_ok(
        &env.pk,
        &json!({"user_id": "u9", "signature": env.sign("u9")}),
    )
    .await;
    assert_alive(&s, "exposures").await;
}

/// Reads until the peer closes the connection; returns what arrived and when it closed.
async fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> (Vec<u8>, Duration) {
    let start = Instant::now();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let left = limit.checked_sub(start.elapsed()).unwrap_or_default();
        match tokio::time::timeout(left, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return (got, start.elapsed()),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
            Err(_) => panic!(
                "the server kept a stalled connection open for {limit:?}; got {:?}",
                String::from_utf8_lossy(&got)
            ),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_clients_hold_nothing() {
    let s = Server::start().await;
    let env = s.env().await;
    // Many clients that send half a request line or half the headers, then stall.
    let mut stalled = Vec::new();
    for i in 0..40 {
        let mut c = TcpStream::connect(s.addr).await.unwrap();
        let part: &[u8] = if i % 2 == 0 {
            b"POST /v1/ident"
        } else {
            b"POST /v1/identify HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        };
        c.write_all(part).await.unwrap();
        stalled.push(c);
    }
    // One that sends its headers and half its body.
    let mut half_body = TcpStream::connect(s.addr).await.unwrap();
    half_body
        .write_all(
            format!(
                "POST /v1/identify HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"user_id\":",
                env.pk
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    // Meanwhile everyone else is served promptly.
    for i in 0..20 {
        let started = Instant::now();
        s.identify_ok(&env.pk, &json!({"user_id": format!("meanwhile-{i}")}))
            .await;
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "a normal request waited"
        );
    }
    // The half-sent body gets a JSON error once the body read times out, then the close.
    let (answer, after) = read_until_closed(&mut half_body, Duration::from_secs(25)).await;
    let text = String::from_utf8_lossy(&answer);
    assert!(
        text.starts_with("HTTP/1.1 400") || text.starts_with("HTTP/1.1 408"),
        "half-sent body answered {text:?}"
    );
    assert!(
        text.contains("\"error\":{\"code\":"),
        "not a JSON error: {text:?}"
    );
    assert!(
        after >= Duration::from_secs(5),
        "the body timeout fired early ({after:?})"
    );
    // The stalled headers are dropped by the header read timeout.
    for c in &mut stalled {
        let (_, after) = read_until_closed(c, Duration::from_secs(25)).await;
        assert!(after < Duration::from_secs(25));
    }
    assert_alive(&s, "slow clients").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn brute_forcing_a_signature_is_cut_off() {
    let s = Server::start().await;
    let env = s.env().await;
    avoid_minute_boundary(30).await;
    let mut answers = Vec::new();
    for i in 0..40u32 {
        let guess = format!("{:064x}", u128::from(i) * 0x9e37_79b9_7f4a_7c15);
        let r = s
            .identify(&env.pk, &json!({"user_id": "target", "signature": guess}))
            .await;
        assert!(r.status == 401 || r.status == 429, "guess {i}: {}", r.text);
        if r.status == 429 {
            r.expect_error(429, "rate_limited");
            let retry: u64 = r.header("retry-after").unwrap().parse().unwrap();
            assert!((1..=60).contains(&retry), "Retry-After {retry}");
        } else {
            r.expect_error(401, "invalid_signature");
        }
        answers.push(r.status);
    }
    // The default 10 wrong guesses a minute answer 401; the rest 429.
    assert_eq!(
        answers.iter().filter(|&&c| c == 401).count(),
        10,
        "{answers:?}"
    );
    assert!(answers[10..].iter().all(|&c| c == 429), "{answers:?}");
    // The right signature is never refused by a limit (a guess that is right
    // is no guess: the secret alone makes it).
    s.identify_ok(
        &env.pk,
        &json!({"user_id": "target", "signature": env.sign("target")}),
    )
    .await;
    // The moment the client was throttled is audited once, not per request.
    let throttled = s
        .audit(&env.id)
        .await
        .iter()
        .filter(|a| a["kind"] == "client.throttled")
        .count();
    assert_eq!(throttled, 1);
    // Spreading guesses over user ids hits the per-address limit.
    let spread = s
        .env_with(json!({"rate_limit_per_address": 15, "rate_limit_per_user": 1000}))
        .await;
    let mut refused_at = None;
    for i in 0..30 {
        let r = s
            .identify(
                &spread.pk,
                &json!({"user_id": format!("user-{i}"), "signature": "0".repeat(64)}),
            )
            .await;
        if r.status == 429 {
            r.expect_error(429, "rate_limited");
            assert!(r.header("retry-after").is_some());
            refused_at = Some(i);
            break;
        }
        r.expect_error(401, "invalid_signature");
    }
    assert_eq!(refused_at, Some(15));
    assert_alive(&s, "brute force").await;
}

const BODY_LIMIT: usize = 64 * 1024;
