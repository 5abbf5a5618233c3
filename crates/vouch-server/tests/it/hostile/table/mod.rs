//! The table: each malicious or broken request gets the contract's JSON error with the
//! right status and code, never a 5xx, and the server still answers `/healthz` after it.
//! The rows, by theme, are in `json_rows`, `string_rows` and `request_rows`.

mod json_rows;
mod request_rows;
mod string_rows;

use base64ct::{Base64UrlUnpadded, Encoding};
use reqwest::Method;
use serde_json::{Value, json};
use vouch_core::IdentityClaims;

use super::{BODY_LIMIT, assert_alive, nested};
use crate::common::*;

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

/// A compact JWT with these header and claims and a signature that is not checked.
fn unsigned_jwt(header: &Value, claims: &Value, signature: &str) -> String {
    let enc = |v: &Value| Base64UrlUnpadded::encode_string(v.to_string().as_bytes());
    format!("{}.{}.{signature}", enc(header), enc(claims))
}

/// What the rows are made of: who calls, the environment's admin path, the oversized and
/// over-deep parts, and the unsigned tokens.
#[derive(Clone, Copy)]
struct Rows<'a> {
    pk: Auth,
    sess: Auth,
    adm: Auth,
    none: Auth,
    env_path: &'a str,
    deep: &'a str,
    over: usize,
    none_token: &'a str,
    none_token_sig: &'a str,
    none_case_token: &'a str,
    hs256_unsigned: &'a str,
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

    let rows = Rows {
        pk,
        sess,
        adm,
        none,
        env_path,
        deep: &deep,
        over,
        none_token: &none_token,
        none_token_sig: &none_token_sig,
        none_case_token: &none_case_token,
        hs256_unsigned: &hs256_unsigned,
    };
    let cases: Vec<Case> = [
        json_rows::rows(&rows),
        string_rows::rows(&rows),
        request_rows::rows(&rows),
    ]
    .into_iter()
    .flatten()
    .collect();
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
