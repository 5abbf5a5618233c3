//! The `vouch` binary, black-box: sign/verify/keygen against the committed test vectors
//! (`vectors/vectors.json`, computed by Node, Python, Ruby, PHP and Go).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Command, Output, Stdio};

use base64ct::{Base64, Base64UrlUnpadded, Encoding};
use serde_json::Value;

const VECTORS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../vectors/vectors.json");
const SECRET: &str = "sk_test_cli_tests_0123456789abcdefghijklmnop";

/// Runs `vouch` with `VOUCH_SECRET` set to `secret` (or unset), stdin closed.
fn vouch(args: &[&str], secret: Option<&str>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_vouch"));
    cmd.args(args)
        .stdin(Stdio::null())
        .env_remove("VOUCH_SECRET");
    if let Some(secret) = secret {
        cmd.env("VOUCH_SECRET", secret);
    }
    cmd.output().expect("the vouch binary runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).expect("stdout is UTF-8")
}

fn stderr(o: &Output) -> String {
    String::from_utf8(o.stderr.clone()).expect("stderr is UTF-8")
}

/// The single line `vouch sign` (or `keygen`) printed; fails unless it succeeded and
/// printed exactly one line.
fn one_line(o: &Output) -> String {
    assert!(
        o.status.success(),
        "status {:?}, stderr: {}",
        o.status,
        stderr(o)
    );
    let out = stdout(o);
    let line = out
        .strip_suffix('\n')
        .unwrap_or_else(|| panic!("no final newline: {out:?}"));
    assert!(!line.contains('\n'), "more than one line: {out:?}");
    line.to_owned()
}

fn sign(args: &[&str], secret: &str) -> String {
    one_line(&vouch(&[&["sign"], args].concat(), Some(secret)))
}

fn section(name: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(VECTORS).expect("vectors/vectors.json is readable");
    let v: Value = serde_json::from_str(&text).expect("vectors.json is JSON");
    let entries = v[name].as_array().cloned().unwrap_or_default();
    assert!(!entries.is_empty(), "vectors.json has no {name}");
    entries
}

fn field<'a>(v: &'a Value, name: &str) -> &'a str {
    v[name]
        .as_str()
        .unwrap_or_else(|| panic!("{} has no {name}", v["id"]))
}

fn payload(token: &str) -> Value {
    let part = token.split('.').nth(1).expect("a JWT has a payload");
    serde_json::from_slice(&Base64UrlUnpadded::decode_vec(part).expect("base64url payload"))
        .expect("JSON payload")
}

fn header(token: &str) -> Value {
    let part = token.split('.').next().expect("a JWT has a header");
    serde_json::from_slice(&Base64UrlUnpadded::decode_vec(part).expect("base64url header"))
        .expect("JSON header")
}

#[test]
fn sign_matches_every_signature_vector_in_every_encoding() {
    for v in section("signatures") {
        let (secret, message) = (field(&v, "secret"), field(&v, "message"));
        assert_eq!(sign(&[message], secret), field(&v, "hex"), "{}", v["id"]);
        assert_eq!(
            sign(&[message, "--base64"], secret),
            field(&v, "base64"),
            "{}",
            v["id"]
        );
        assert_eq!(
            sign(&["--base64url", message], secret),
            field(&v, "base64url"),
            "{}",
            v["id"]
        );
    }
}

#[test]
fn company_signature_is_the_same_hmac() {
    assert_eq!(
        sign(&["--company", "acme-inc"], SECRET),
        sign(&["acme-inc"], SECRET)
    );
}

#[test]
fn sign_attributes_matches_every_attribute_vector() {
    for v in section("attributes") {
        let (secret, json) = (field(&v, "secret"), field(&v, "json"));
        assert_eq!(
            sign(&["--attributes", json], secret),
            field(&v, "hex"),
            "{}",
            v["id"]
        );
        assert_eq!(
            sign(&["--attributes", json, "--base64"], secret),
            field(&v, "base64"),
            "{}",
            v["id"]
        );
        // A user id may be given too; the attributes signature does not cover it.
        assert_eq!(
            sign(&["42", "--attributes", json], secret),
            field(&v, "hex"),
            "{}",
            v["id"]
        );
    }
}

#[test]
fn sign_attributes_reads_a_file() {
    let v = &section("attributes")[0];
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("attributes.json");
    std::fs::write(&path, field(v, "json")).unwrap();
    let arg = format!("@{}", path.display());
    assert_eq!(
        sign(&["--attributes", &arg], field(v, "secret")),
        field(v, "hex")
    );
}

#[test]
fn sign_refuses_ambiguous_attributes() {
    for json in [
        r#"{"a":1,"a":2}"#,
        r#"{"id":9007199254740993}"#,
        "[1,2]",
        "{",
    ] {
        let o = vouch(&["sign", "--attributes", json], Some(SECRET));
        assert_eq!(o.status.code(), Some(2), "{json}");
        assert!(stdout(&o).is_empty(), "{json}");
        assert!(stderr(&o).contains("attributes"), "{json}: {}", stderr(&o));
    }
}

#[test]
fn every_token_vector_verifies_through_the_cli() {
    for v in section("tokens") {
        let at = v["valid_at"].as_i64().unwrap().to_string();
        let sub = field(&v["claims"], "sub");
        let o = vouch(
            &["verify", sub, "--token", field(&v, "token"), "--at", &at],
            Some(field(&v, "secret")),
        );
        assert_eq!(o.status.code(), Some(0), "{}: {}", v["id"], stdout(&o));
        assert!(stdout(&o).starts_with("valid ("), "{}", v["id"]);
    }
}

#[test]
fn token_round_trips_through_verify() {
    let token = sign(
        &[
            "user_123",
            "--token",
            "--ttl",
            "2h",
            "--jti",
            "tok-1",
            "--kid",
            "key_abc",
            "--attributes",
            r#"{"plan":"pro","seats":3}"#,
        ],
        SECRET,
    );
    let claims = payload(&token);
    assert_eq!(claims["sub"], "user_123");
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        7_200
    );
    assert_eq!(claims["jti"], "tok-1");
    assert_eq!(
        claims["attributes"],
        serde_json::json!({"plan": "pro", "seats": 3})
    );
    assert_eq!(header(&token)["alg"], "HS256");
    assert_eq!(header(&token)["kid"], "key_abc");

    let ok = vouch(&["verify", "--token", &token], Some(SECRET));
    assert_eq!(ok.status.code(), Some(0), "{}", stdout(&ok));
    assert!(stdout(&ok).starts_with("valid (identity token for sub \"user_123\""));

    let with_sub = vouch(&["verify", "user_123", "--token", &token], Some(SECRET));
    assert_eq!(with_sub.status.code(), Some(0));

    let other_user = vouch(&["verify", "user_124", "--token", &token], Some(SECRET));
    assert_eq!(other_user.status.code(), Some(1));
    assert!(
        stdout(&other_user).contains("sub"),
        "{}",
        stdout(&other_user)
    );

    let other_secret = vouch(
        &["verify", "--token", &token],
        Some("another-secret-0123456789"),
    );
    assert_eq!(other_secret.status.code(), Some(1));

    let expired = payload(&token)["exp"].as_i64().unwrap() + 61;
    let late = vouch(
        &["verify", "--token", &token, "--at", &expired.to_string()],
        Some(SECRET),
    );
    assert_eq!(late.status.code(), Some(1));
    assert!(stdout(&late).contains("expired"), "{}", stdout(&late));
}

#[test]
fn token_defaults_to_ten_minutes_and_random_jti_is_fresh() {
    let a = payload(&sign(&["42", "--token", "--jti-random"], SECRET));
    let b = payload(&sign(&["42", "--token", "--jti-random"], SECRET));
    assert_eq!(a["exp"].as_i64().unwrap() - a["iat"].as_i64().unwrap(), 600);
    assert!(a["jti"].as_str().is_some_and(|j| j.len() >= 16));
    assert_ne!(a["jti"], b["jti"]);
    assert!(
        payload(&sign(&["42", "--token"], SECRET))
            .get("jti")
            .is_none()
    );
}

#[test]
fn token_flags_are_checked() {
    for args in [
        &["sign", "42", "--token", "--ttl", "10 minutes"][..],
        &["sign", "42", "--token", "--ttl", "0s"],
        &["sign", "42", "--ttl", "10m"],
        &["sign", "42", "--jti", "x"],
        &["sign", "--token"],
        &["sign", "42", "--token", "--base64"],
        &["sign", "42", "--base64", "--base64url"],
    ] {
        let o = vouch(args, Some(SECRET));
        assert_eq!(o.status.code(), Some(2), "{args:?} was accepted");
        assert!(stdout(&o).is_empty(), "{args:?}");
    }
}

#[test]
fn missing_secret_fails_and_names_vouch_secret() {
    for args in [
        &["sign", "42"][..],
        &["sign", "--attributes", "{}"],
        &["sign", "42", "--token"],
        &["verify", "42", "--signature", &"0".repeat(64)],
    ] {
        for secret in [None, Some("")] {
            let o = vouch(args, secret);
            assert_eq!(o.status.code(), Some(2), "{args:?}");
            assert!(stdout(&o).is_empty(), "{args:?}");
            assert!(
                stderr(&o).contains("VOUCH_SECRET"),
                "{args:?}: {}",
                stderr(&o)
            );
        }
    }
}

#[test]
fn secret_is_never_an_argument() {
    let o = vouch(&["sign", "42", "--secret", SECRET], None);
    assert_eq!(o.status.code(), Some(2));
    assert!(!stderr(&o).contains(SECRET), "the secret was echoed back");
}

#[test]
fn verify_exit_codes_are_zero_when_valid_and_one_when_not() {
    let sig = sign(&["42"], SECRET);
    for form in [
        sig.clone(),
        sig.to_ascii_uppercase(),
        sign(&["42", "--base64"], SECRET),
        sign(&["42", "--base64url"], SECRET),
    ] {
        let o = vouch(&["verify", "42", "--signature", &form], Some(SECRET));
        assert_eq!(o.status.code(), Some(0), "{form}: {}", stdout(&o));
        assert!(stdout(&o).starts_with("valid ("), "{}", stdout(&o));
    }

    let wrong = vouch(&["verify", "43", "--signature", &sig], Some(SECRET));
    assert_eq!(wrong.status.code(), Some(1));
    let out = stdout(&wrong);
    assert!(
        out.contains("Incorrect user identity verification signature"),
        "{out}"
    );
    assert!(out.contains("likely cause:"), "{out}");
    assert!(!out.contains(SECRET) && !stderr(&wrong).contains(SECRET));

    let sha1 = vouch(
        &["verify", "42", "--signature", &"a".repeat(40)],
        Some(SECRET),
    );
    assert_eq!(sha1.status.code(), Some(1));
    assert!(stdout(&sha1).contains("SHA-1"), "{}", stdout(&sha1));
}

#[test]
fn verify_diagnoses_a_trailing_newline_in_the_signed_id() {
    // What `echo 42 | openssl dgst -hmac …` produces.
    let sig = sign(&["42\n"], SECRET);
    let o = vouch(&["verify", "42", "--signature", &sig], Some(SECRET));
    assert_eq!(o.status.code(), Some(1));
    assert!(stdout(&o).contains("trailing newline"), "{}", stdout(&o));
}

#[test]
fn verify_checks_attribute_signatures() {
    for v in section("attributes").iter().take(4) {
        let o = vouch(
            &[
                "verify",
                "--attributes",
                field(v, "json"),
                "--attributes-signature",
                field(v, "base64url"),
            ],
            Some(field(v, "secret")),
        );
        assert_eq!(o.status.code(), Some(0), "{}: {}", v["id"], stdout(&o));
    }
    // Signing the JSON text as written rather than its canonical form.
    let json = r#"{ "b": 1, "a": 2 }"#;
    let raw = sign(&[json], SECRET);
    let o = vouch(
        &[
            "verify",
            "--attributes",
            json,
            "--attributes-signature",
            &raw,
        ],
        Some(SECRET),
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(stdout(&o).contains(r#"{"a":2,"b":1}"#), "{}", stdout(&o));
}

#[test]
fn verify_needs_exactly_one_proof() {
    for args in [
        &["verify", "42"][..],
        &["verify", "--signature", "abc"],
        &["verify", "42", "--signature", "abc", "--token", "a.b.c"],
        &["verify", "--attributes", "{}"],
    ] {
        assert_eq!(vouch(args, Some(SECRET)).status.code(), Some(2), "{args:?}");
    }
}

#[test]
fn keygen_prints_each_format() {
    let master = one_line(&vouch(&["keygen", "--master-key"], None));
    assert_eq!(
        Base64::decode_vec(&master).map(|k| k.len()),
        Ok(32),
        "{master}"
    );

    let test = one_line(&vouch(&["keygen", "--secret"], None));
    assert!(test.starts_with("sk_test_"), "{test}");
    assert!(vouch_core::keys::looks_like_secret(&test), "{test}");
    let live = one_line(&vouch(&["keygen", "--secret", "--live"], None));
    assert!(live.starts_with("sk_live_") && vouch_core::keys::looks_like_secret(&live));

    let admin = one_line(&vouch(&["keygen", "--admin-token"], None));
    assert!(admin.starts_with("vat_") && admin.len() >= 32, "{admin}");

    let webhook = one_line(&vouch(&["keygen", "--webhook-secret"], None));
    let raw = Base64::decode_vec(webhook.strip_prefix("whsec_").expect("whsec_ prefix")).unwrap();
    assert!((24..=64).contains(&raw.len()), "{webhook}");

    assert_ne!(one_line(&vouch(&["keygen", "--master-key"], None)), master);
}

#[test]
fn keygen_wants_exactly_one_kind() {
    for args in [
        &["keygen"][..],
        &["keygen", "--master-key", "--secret"],
        &["keygen", "--live"],
        &["keygen", "--admin-token", "--live"],
    ] {
        assert_eq!(vouch(args, None).status.code(), Some(2), "{args:?}");
    }
}

#[test]
fn help_works_for_every_command() {
    for (args, needle) in [
        (&["--help"][..], "identity verification"),
        (&["help"], "keygen"),
        (&["serve", "--help"], "VOUCH_ALLOW_PRIVATE_WEBHOOKS"),
        (&["sign", "--help"], "VOUCH_SECRET"),
        (&["verify", "--help"], "exits 1"),
        (&["keygen", "--help"], "--master-key"),
        (&["help", "sign"], "--attributes"),
    ] {
        let o = vouch(args, None);
        assert_eq!(o.status.code(), Some(0), "{args:?}");
        assert!(
            stdout(&o).to_lowercase().contains(&needle.to_lowercase()),
            "{args:?} lacks {needle:?}"
        );
    }
    let serve = stdout(&vouch(&["serve", "--help"], None));
    for var in [
        "VOUCH_ADDR",
        "VOUCH_DATA_DIR",
        "VOUCH_DATABASE_URL",
        "VOUCH_MASTER_KEY",
        "VOUCH_PUBLIC_URL",
        "VOUCH_ADMIN_TOKEN",
        "VOUCH_LOG_FORMAT",
        "127.0.0.1:8080",
    ] {
        assert!(serve.contains(var), "serve --help lacks {var}");
    }
}

#[test]
fn help_never_shows_secret_environment_values() {
    let o = Command::new(env!("CARGO_BIN_EXE_vouch"))
        .args(["serve", "--help"])
        .env("VOUCH_MASTER_KEY", "master-key-value-never-shown")
        .env("VOUCH_ADMIN_TOKEN", "admin-token-value-never-shown")
        .env(
            "VOUCH_DATABASE_URL",
            "postgres://user:password-never-shown@db/vouch",
        )
        .output()
        .unwrap();
    let out = stdout(&o);
    assert!(!out.contains("never-shown"), "{out}");
}

#[test]
fn version_is_printed() {
    let o = vouch(&["--version"], None);
    assert!(stdout(&o).starts_with("vouch "), "{}", stdout(&o));
}

#[test]
fn booleans_other_than_true_false_1_0_are_refused() {
    for bad in ["yes", "TRUE", "on", "2"] {
        let o = Command::new(env!("CARGO_BIN_EXE_vouch"))
            .arg("serve")
            .env("VOUCH_ALLOW_PRIVATE_WEBHOOKS", bad)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(2), "{bad}");
        assert!(
            stderr(&o).contains("true, false, 1 or 0"),
            "{bad}: {}",
            stderr(&o)
        );

        let flag = format!("--allow-private-webhooks={bad}");
        let o = vouch(&["serve", &flag], None);
        assert_eq!(o.status.code(), Some(2), "{flag}");
        assert!(stderr(&o).contains("true, false, 1 or 0"), "{flag}");
    }
}
