//! Signatures and tokens produced by Node and Python exactly as a customer's
//! backend computes them, accepted by the server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common::*;
use serde_json::json;

fn node(script: &str, secret_value: &str, id: &str) -> String {
    program_stdout("node", &["-e", script], &[("S", secret_value), ("ID", id)])
        .trim_end_matches('\n')
        .to_string()
}

fn python(script: &str, secret_value: &str, id: &str) -> String {
    program_stdout(
        "python3",
        &["-c", script],
        &[("S", secret_value), ("ID", id)],
    )
    .trim_end_matches('\n')
    .to_string()
}

/// Runs a one-line customer script with `S` (secret) and `ID` in its environment.
type Runner = fn(&str, &str, &str) -> String;

const NODE_HEX: &str = "process.stdout.write(require('crypto').createHmac('sha256', process.env.S).update(process.env.ID).digest('hex'))";
const NODE_BASE64: &str = "process.stdout.write(require('crypto').createHmac('sha256', process.env.S).update(process.env.ID).digest('base64'))";
const NODE_BASE64URL: &str = "process.stdout.write(require('crypto').createHmac('sha256', process.env.S).update(process.env.ID).digest('base64url'))";
const PY_HEX: &str = "import hmac, hashlib, os; print(hmac.new(os.environ['S'].encode(), os.environ['ID'].encode(), hashlib.sha256).hexdigest())";
const PY_BASE64: &str = "import base64, hmac, hashlib, os; print(base64.b64encode(hmac.new(os.environ['S'].encode('utf-8'), os.environ['ID'].encode('utf-8'), hashlib.sha256).digest()).decode())";
const PY_BASE64URL: &str = "import base64, hmac, hashlib, os; print(base64.urlsafe_b64encode(hmac.new(os.environ['S'].encode(), os.environ['ID'].encode(), hashlib.sha256).digest()).decode().rstrip('='))";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_and_python_signatures_verify_users() {
    let s = Server::start().await;
    let env = s.env_with(json!({"enforcement": "enforce"})).await;
    let imported = "imported vendor secret — ünïcode 🔑";
    s.admin(
        reqwest::Method::POST,
        &format!("/admin/v1/environments/{}/secrets", env.id),
        Some(&json!({"value": imported})),
    )
    .await
    .expect_status(201);
    type Case = (&'static str, Runner, &'static str, usize);
    let cases: [Case; 6] = [
        ("node hex", node, NODE_HEX, 64),
        ("node base64", node, NODE_BASE64, 44),
        ("node base64url", node, NODE_BASE64URL, 43),
        ("python hex", python, PY_HEX, 64),
        ("python base64", python, PY_BASE64, 44),
        ("python base64url", python, PY_BASE64URL, 43),
    ];
    let mut n = 0;
    for secret_value in [env.secret.as_str(), imported] {
        for id in ["42", "user@example.com", "Zoë 名前"] {
            for (name, run, script, len) in cases {
                let user_id = format!("{id} #{n}");
                // The customer signs exactly the id it sends.
                let sig = run(script, secret_value, &user_id);
                assert_eq!(sig.len(), len, "{name}: {sig:?}");
                let out = s
                    .identify_ok(&env.pk, &json!({"user_id": user_id, "signature": sig}))
                    .await;
                assert_eq!(out["user"]["verified"], json!(true), "{name}");
                assert_eq!(out["user"]["verified_by"], json!("signature"), "{name}");
                let u = s.admin_user(&env.id, &user_id).await.expect_status(200);
                assert_eq!(u["verified"], json!(true), "{name}");
                n += 1;
            }
        }
    }
    // A Node signature of the id with a trailing newline is refused, as it must be.
    let wrong = node(NODE_HEX, &env.secret, "42\n");
    s.identify(&env.pk, &json!({"user_id": "42", "signature": wrong}))
        .await
        .expect_error(401, "invalid_signature");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_pyjwt_identity_tokens_verify_users() {
    let s = Server::start().await;
    let env = s.env_with(json!({"enforcement": "enforce"})).await;
    // A customer backend issuing an HS256 identity token with PyJWT.
    let script = "import jwt, os, time; print(jwt.encode({'sub': os.environ['ID'], 'exp': int(time.time()) + 600, 'attributes': {'plan': 'pro'}}, os.environ['S'], algorithm='HS256', headers={'kid': os.environ['KID']}))";
    let t = program_stdout(
        "python3",
        &["-c", script],
        &[
            ("S", &env.secret),
            ("ID", "py-token-user"),
            ("KID", &env.key_id),
        ],
    );
    let out = s
        .identify_ok(
            &env.pk,
            &json!({"user_id": "py-token-user", "token": t.trim()}),
        )
        .await;
    assert_eq!(out["user"]["verified_by"], json!("token"));
    assert_eq!(out["user"]["verified_attributes"], json!({"plan": "pro"}));
    // A Node backend's token, built with nothing but the standard library.
    let node_script = "const c=require('crypto');const b=o=>Buffer.from(JSON.stringify(o)).toString('base64url');const h=b({alg:'HS256',typ:'JWT'});const p=b({sub:process.env.ID,iat:Math.floor(Date.now()/1000)});process.stdout.write(h+'.'+p+'.'+c.createHmac('sha256',process.env.S).update(h+'.'+p).digest('base64url'))";
    let t = node(node_script, &env.secret, "node-token-user");
    let out = s
        .identify_ok(&env.pk, &json!({"user_id": "node-token-user", "token": t}))
        .await;
    assert_eq!(out["user"]["verified_by"], json!("token"));
}
