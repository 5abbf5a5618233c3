//! Standard Webhooks vectors through vouch-server's webhook signing: the specification's
//! known answer, signatures checked by the reference Python library (PyPI
//! `standardwebhooks`, the peer), and the secret format.

use std::io::Write;
use std::process::{Command, Stdio};

use base64ct::{Base64, Encoding};
use serde_json::{Value, json};
use vouch_server::webhooks::{EndpointSecret, sign, signature_header};

use crate::{Context, Suite, str_field};

pub fn run(ctx: &Context) -> Vec<Suite> {
    let mut suite = Suite::new("webhooks: Standard Webhooks through vouch-server signing");
    match ctx.json("webhooks/standard_webhooks_vectors.json") {
        Ok(v) => {
            known_answer(&mut suite, &v["sign_known_answer"]);
            verify_cases(&mut suite, &v);
            secret_format(&mut suite, &v["spec"]);
        }
        Err(e) => suite.fail(e),
    }
    vec![suite]
}

fn endpoint(value: &str) -> EndpointSecret {
    EndpointSecret {
        value: value.to_owned(),
        expires_at: None,
    }
}

fn known_answer(suite: &mut Suite, v: &Value) {
    let (Ok(secret), Ok(msg_id), Some(timestamp), Ok(payload), Ok(expected)) = (
        str_field(v, "secret"),
        str_field(v, "msg_id"),
        v["timestamp"].as_i64(),
        str_field(v, "payload"),
        str_field(v, "signature"),
    ) else {
        return suite.fail("sign_known_answer: missing fields");
    };
    let signed = sign(secret, msg_id, timestamp, payload.as_bytes()).map(|s| format!("v1,{s}"));
    suite.check(signed.as_deref() == Some(expected), || {
        format!("sign gave {signed:?}, the known answer is {expected}")
    });
    let header = signature_header(
        &[endpoint(secret)],
        msg_id,
        timestamp,
        payload.as_bytes(),
        0,
    );
    suite.check(header == expected, || {
        format!("webhook-signature header {header:?}, the known answer is {expected}")
    });
}

/// The receiver-side cases that a signer can take part in: Vouch signs, the reference
/// Python library verifies.
fn verify_cases(suite: &mut Suite, v: &Value) {
    let fixture = &v["verify_fixture"];
    let (Ok(msg_id), Ok(payload), Ok(secret)) = (
        str_field(fixture, "msg_id"),
        str_field(fixture, "payload"),
        str_field(fixture, "secret"),
    ) else {
        return suite.fail("verify_fixture: missing fields");
    };
    let prefixed = format!("whsec_{secret}");
    for case in v["verify_cases"].as_array().into_iter().flatten() {
        let name = case["name"].as_str().unwrap_or("?");
        if let Some(only) = case["only"].as_str() {
            suite.not_applicable(format!(
                "{only}-only receiver behaviour (tolerating an unpadded secret)"
            ));
            continue;
        }
        if case["expect"] != "valid" {
            suite.not_applicable(
                "receiver-side rejection: Vouch signs webhooks, it never receives them",
            );
            continue;
        }
        let secrets = match (
            case["secret_prefix"].as_str(),
            case["signature_list"].is_array(),
        ) {
            (Some(_), _) => vec![endpoint(&prefixed)],
            // Several signatures in one header, one of them valid: Vouch's header during a
            // rotation, signed with another secret and the receiver's.
            (None, true) => vec![
                endpoint(&format!("whsec_{}", Base64::encode_string(&[7u8; 32]))),
                endpoint(&prefixed),
            ],
            (None, false) => {
                suite.not_applicable(
                    "receiver-side: accepting a secret written without whsec_ (Vouch's secrets always carry it)",
                );
                continue;
            }
        };
        let now = time_now();
        let header = signature_header(&secrets, msg_id, now, payload.as_bytes(), now);
        let headers = json!({
            "webhook-id": msg_id,
            "webhook-timestamp": now.to_string(),
            "webhook-signature": header,
        });
        match python_verify(&prefixed, payload, &headers) {
            Ok(true) => suite.pass(),
            Ok(false) => suite.fail(format!(
                "{name}: the standardwebhooks library refused Vouch's signature {header}"
            )),
            Err(missing) if std::env::var_os("CI").is_none() => suite.not_applicable(missing),
            Err(missing) => suite.fail(format!("{name}: {missing}")),
        }
    }
}

/// Asks PyPI `standardwebhooks` (the reference implementation) whether the headers verify.
/// `Err` when Python or the library is not installed.
fn python_verify(secret: &str, payload: &str, headers: &Value) -> Result<bool, String> {
    const SCRIPT: &str = "import json, sys\n\
        from standardwebhooks.webhooks import Webhook, WebhookVerificationError\n\
        d = json.load(sys.stdin)\n\
        try:\n    Webhook(d['secret']).verify(d['payload'], d['headers'])\n    print('valid')\n\
        except WebhookVerificationError as e:\n    print('invalid', e)\n";
    let missing = "the reference verifier (python3 with PyPI standardwebhooks; scripts/ci-install.sh installs it) is not installed";
    let mut child = Command::new("python3")
        .args(["-c", SCRIPT])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|_| missing.to_owned())?;
    let input = json!({"secret": secret, "payload": payload, "headers": headers}).to_string();
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(input.as_bytes())
            .map_err(|e| format!("python3: {e}"))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| format!("python3: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        return Err(if stderr.contains("ModuleNotFoundError") {
            missing.to_owned()
        } else {
            format!("python3 failed: {stderr}")
        });
    }
    Ok(stdout.starts_with("valid"))
}

/// Secrets Vouch generates: `whsec_` and base64 of a length within the specification's.
fn secret_format(suite: &mut Suite, spec: &Value) {
    let (Ok(prefix), Some(min), Some(max)) = (
        str_field(spec, "secret_prefix"),
        spec["secret_bytes_min"].as_u64(),
        spec["secret_bytes_max"].as_u64(),
    ) else {
        return suite.fail("spec: missing secret format");
    };
    for _ in 0..20 {
        let secret = vouch_core::keys::generate_webhook_secret();
        let bytes = secret
            .expose()
            .strip_prefix(prefix)
            .and_then(|b| Base64::decode_vec(b).ok())
            .map_or(0, |b| b.len() as u64);
        suite.check((min..=max).contains(&bytes), || {
            format!("a generated webhook secret is not {prefix} + base64 of {min}-{max} bytes")
        });
    }
    suite.not_applicable(
        "header names: checked by the server's webhook tests against a live receiver",
    );
}

fn time_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}
