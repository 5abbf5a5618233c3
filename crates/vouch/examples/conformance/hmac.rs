//! HMAC-SHA256 known answers (RFC 4231, NIST examples, empty keys) through vouch-core's
//! HMAC, its pre-keyed MAC (the key ring's), and `vouch sign` / `vouch verify`.

use serde_json::Value;
use vouch_core::proof::hmac_sha256;
use vouch_core::{KeyEntry, KeyRing, Secret};

use crate::{Context, Suite, hex, str_field, unhex};

/// One vector: key, data, and the whole MAC or (for a truncated tag) its prefix.
struct Case {
    name: String,
    key: Vec<u8>,
    data: Vec<u8>,
    expected: Vec<u8>,
    truncated: bool,
}

fn cases(v: &Value) -> Result<Vec<Case>, String> {
    let list = v["cases"].as_array().ok_or("no cases array")?;
    list.iter()
        .map(|c| {
            let name = str_field(c, "name")?.to_owned();
            let bytes = |field: &str| {
                unhex(str_field(c, field)?).ok_or_else(|| format!("{name}: {field} is not hex"))
            };
            let (expected, truncated) = match c["mac_hex"].as_str() {
                Some(_) => (bytes("mac_hex")?, false),
                None => (bytes("mac_prefix_hex")?, true),
            };
            Ok(Case {
                key: bytes("key_hex")?,
                data: bytes("data_hex")?,
                expected,
                truncated,
                name,
            })
        })
        .collect()
}

pub fn run(ctx: &Context) -> Vec<Suite> {
    let mut core = Suite::new("hmac: RFC 4231 / NIST / empty key through vouch-core");
    let mut cli = Suite::new("hmac: the same vectors through `vouch sign` and `vouch verify`");
    let cases = match ctx
        .json("hmac/hmac_sha256_vectors.json")
        .and_then(|v| cases(&v))
    {
        Ok(cases) => cases,
        Err(e) => {
            core.fail(e);
            return vec![core, cli];
        }
    };
    for case in &cases {
        check_core(&mut core, case);
        check_cli(ctx, &mut cli, case);
    }
    vec![core, cli]
}

fn matches(case: &Case, mac: &[u8; 32]) -> bool {
    mac.starts_with(&case.expected) && (case.truncated || case.expected.len() == 32)
}

fn check_core(suite: &mut Suite, case: &Case) {
    let mac = hmac_sha256(&case.key, &case.data);
    suite.check(matches(case, &mac), || {
        format!("{}: hmac_sha256 gave {}", case.name, hex(&mac))
    });
    // The key ring holds identity secrets, which are text: the pre-keyed MAC is reached
    // only through a UTF-8 key.
    let Ok(key) = std::str::from_utf8(&case.key) else {
        suite.not_applicable("pre-keyed MAC: identity secrets are UTF-8 text, this key is not");
        return;
    };
    let entry = KeyEntry::new("key_vector", Secret::new(key), 0, None, None);
    let mac = entry.mac(&case.data);
    suite.check(matches(case, &mac), || {
        format!("{}: pre-keyed MAC gave {}", case.name, hex(&mac))
    });
    if case.truncated {
        suite.not_applicable(
            "ring verification of a truncated tag: Vouch accepts only the whole 32-byte MAC",
        );
        return;
    }
    let ring = KeyRing::new(vec![entry]);
    let Ok(expected) = <[u8; 32]>::try_from(case.expected.as_slice()) else {
        suite.fail(format!("{}: a whole MAC is 32 bytes", case.name));
        return;
    };
    suite.check(ring.verify_mac(&case.data, &expected, 0).is_ok(), || {
        format!("{}: the key ring refused the known MAC", case.name)
    });
    let mut wrong = expected;
    wrong[31] ^= 1;
    suite.check(ring.verify_mac(&case.data, &wrong, 0).is_err(), || {
        format!(
            "{}: the key ring accepted a MAC with one bit changed",
            case.name
        )
    });
}

/// Why a case cannot go through the command line, if it cannot.
fn cli_obstacle(case: &Case) -> Option<&'static str> {
    let key = std::str::from_utf8(&case.key);
    let data = std::str::from_utf8(&case.data);
    match (key, data) {
        (Err(_), _) => Some("CLI: VOUCH_SECRET is text, this key is not UTF-8"),
        (Ok(""), _) => Some("CLI: vouch refuses an empty VOUCH_SECRET"),
        (Ok(k), _) if k.contains('\0') => {
            Some("CLI: an environment variable cannot hold a NUL byte")
        }
        (_, Err(_)) => Some("CLI: the USER_ID argument is text, this message is not UTF-8"),
        (_, Ok(d)) if d.is_empty() || d.contains('\0') || d.starts_with('-') => {
            Some("CLI: this message cannot be passed as a USER_ID argument")
        }
        _ => None,
    }
}

fn check_cli(ctx: &Context, suite: &mut Suite, case: &Case) {
    if let Some(reason) = cli_obstacle(case) {
        suite.not_applicable(reason);
        return;
    }
    let key = String::from_utf8_lossy(&case.key).into_owned();
    let data = String::from_utf8_lossy(&case.data).into_owned();
    let signed = match ctx.vouch(&["sign", &data], &key) {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout).trim_end().to_owned(),
        Ok(o) => {
            suite.fail(format!(
                "{}: vouch sign failed ({:?}): {}",
                case.name,
                o.status,
                String::from_utf8_lossy(&o.stderr)
            ));
            return;
        }
        Err(e) => {
            suite.fail(e);
            return;
        }
    };
    suite.check(
        signed.starts_with(&hex(&case.expected)) && signed.len() == 64,
        || format!("{}: vouch sign printed {signed:?}", case.name),
    );
    if case.truncated {
        suite.not_applicable(
            "CLI verification of a truncated tag: Vouch accepts only the whole MAC",
        );
        return;
    }
    for (signature, valid) in [
        (hex(&case.expected), true),
        (flip_last(&case.expected), false),
    ] {
        match ctx.vouch(&["verify", &data, "--signature", &signature], &key) {
            Ok(o) => suite.check(o.status.code() == Some(if valid { 0 } else { 1 }), || {
                format!(
                    "{}: vouch verify of the {} MAC exited {:?}: {}",
                    case.name,
                    if valid { "known" } else { "altered" },
                    o.status.code(),
                    String::from_utf8_lossy(&o.stdout)
                )
            }),
            Err(e) => suite.fail(e),
        }
    }
}

fn flip_last(mac: &[u8]) -> String {
    let mut altered = mac.to_vec();
    if let Some(last) = altered.last_mut() {
        *last ^= 1;
    }
    hex(&altered)
}
