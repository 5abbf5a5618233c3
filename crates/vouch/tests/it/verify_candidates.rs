//! `vouch verify`, black-box: candidate values (`--email`, `--expect`) and the mistakes it
//! names for signatures made with the wrong tool (openssl output lines, plain SHA-256,
//! base64 of the hex text).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::process::{Command, Output, Stdio};

use base64ct::{Base64, Encoding};

const SECRET: &str = "sk_test_verify_candidates_0123456789abcdef";

/// Runs `vouch` with `VOUCH_SECRET` set, stdin closed.
fn vouch(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vouch"))
        .args(args)
        .stdin(Stdio::null())
        .env("VOUCH_SECRET", SECRET)
        .output()
        .expect("the vouch binary runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).expect("stdout is UTF-8")
}

/// The hex signature `vouch sign` prints for `message`.
fn sign(message: &str) -> String {
    let o = vouch(&["sign", message]);
    assert!(o.status.success(), "{o:?}");
    stdout(&o).trim_end().to_owned()
}

/// `vouch verify ID --signature SIG EXTRA…`, which must find the signature invalid (exit
/// status 1); returns its `likely cause:` line.
fn likely_cause(id: &str, signature: &str, extra: &[&str]) -> String {
    let o = vouch(&[&["verify", id, "--signature", signature], extra].concat());
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(!out.contains(SECRET), "the secret was printed: {out}");
    out.lines()
        .find_map(|l| l.strip_prefix("likely cause: "))
        .unwrap_or_else(|| panic!("no likely cause in {out:?}"))
        .to_owned()
}

/// What `printf %s MESSAGE | openssl dgst -sha256 [-hmac SECRET]` prints, as a customer would
/// paste it.
fn openssl(message: &str, hmac: bool) -> String {
    let mut args = vec!["dgst", "-sha256"];
    if hmac {
        args.extend(["-hmac", SECRET]);
    }
    let mut child = Command::new("openssl")
        .args(&args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("openssl runs (Debian package openssl)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(message.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn an_email_signed_instead_of_the_id_is_named_with_email() {
    let sig = sign("ada@example.com");
    let cause = likely_cause("42", &sig, &["--email", "ada@example.com"]);
    assert!(
        cause.contains("HMAC of \"ada@example.com\", not of the user id"),
        "{cause}"
    );
    assert!(cause.contains("(the --email value)"), "{cause}");
}

#[test]
fn any_of_several_expected_values_is_named() {
    let sig = sign("legacy-42");
    let cause = likely_cause(
        "42",
        &sig,
        &[
            "--email",
            "ada@example.com",
            "--expect",
            "ada",
            "--expect",
            "legacy-42",
        ],
    );
    assert!(cause.contains("\"legacy-42\""), "{cause}");
    assert!(cause.contains("(the --expect value)"), "{cause}");
}

#[test]
fn without_the_right_candidate_the_cause_stays_unknown_and_says_how_to_check_one() {
    let sig = sign("ada@example.com");
    let bare = likely_cause("42", &sig, &[]);
    assert!(bare.contains("--email or --expect"), "{bare}");
    let wrong = likely_cause("42", &sig, &["--email", "bob@example.com"]);
    assert!(wrong.contains("matches no secret"), "{wrong}");
    assert!(!wrong.contains("bob@example.com"), "{wrong}");
}

#[test]
fn a_valid_signature_is_valid_whatever_the_candidates() {
    let o = vouch(&[
        "verify",
        "42",
        "--signature",
        &sign("42"),
        "--email",
        "ada@example.com",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    assert!(stdout(&o).starts_with("valid (signature of \"42\""));
}

#[test]
fn candidates_are_bounded_and_need_a_signature() {
    let sig = sign("42");
    let mut args: Vec<String> = ["verify", "42", "--signature", &sig]
        .map(String::from)
        .to_vec();
    for i in 0..21 {
        args.extend(["--expect".to_owned(), format!("v{i}")]);
    }
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let too_many = vouch(&refs);
    assert_eq!(too_many.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&too_many.stderr).contains("at most 20"));

    let long = "x".repeat(256);
    for bad in [
        &["verify", "42", "--signature", &sig, "--expect", ""][..],
        &["verify", "42", "--signature", &sig, "--email", &long],
        &["verify", "--token", "a.b.c", "--email", "ada@example.com"],
        &["verify", "--email", "ada@example.com"],
    ] {
        let o = vouch(bad);
        assert_eq!(o.status.code(), Some(2), "{bad:?}: {}", stdout(&o));
        assert!(stdout(&o).is_empty(), "{bad:?}");
    }
}

#[test]
fn a_pasted_openssl_output_line_is_recognised() {
    // The right HMAC, but the whole line: only the hex must be sent.
    let line = openssl("42", true);
    assert!(line.contains("(stdin)= "), "{line}");
    let cause = likely_cause("42", &line, &[]);
    assert!(cause.contains("openssl dgst"), "{cause}");
    assert!(cause.contains("inside is correct"), "{cause}");

    // `echo 42 | openssl …`: the newline echo adds, found inside the line.
    let echoed = openssl("42\n", true);
    let cause = likely_cause("42", &echoed, &[]);
    assert!(
        cause.contains("openssl dgst") && cause.contains("trailing newline"),
        "{cause}"
    );

    // The email, signed with openssl and pasted whole.
    let email = openssl("ada@example.com", true);
    let cause = likely_cause("42", &email, &["--email", "ada@example.com"]);
    assert!(
        cause.contains("openssl dgst") && cause.contains("(the --email value)"),
        "{cause}"
    );
}

#[test]
fn a_plain_sha256_is_not_an_hmac() {
    let line = openssl("42", false);
    let hex = line.trim().rsplit(' ').next().unwrap().to_owned();
    assert_eq!(hex.len(), 64);
    let cause = likely_cause("42", &hex, &[]);
    assert!(cause.contains("plain SHA-256"), "{cause}");
    // Pasted with openssl's prefix: both mistakes are named.
    let cause = likely_cause("42", &line, &[]);
    assert!(
        cause.contains("openssl dgst") && cause.contains("plain SHA-256"),
        "{cause}"
    );
}

#[test]
fn base64_of_the_hex_text_is_named() {
    // What `… | openssl dgst -hmac … -hex | base64` or `btoa(hexDigest)` gives.
    let sig = Base64::encode_string(sign("42").as_bytes());
    assert_eq!(sig.len(), 88);
    let cause = likely_cause("42", &sig, &[]);
    assert!(cause.contains("base64 of the hex digest"), "{cause}");
    assert!(cause.contains("inside is correct"), "{cause}");
}
