//! The deployment files agree with the binary and with each other: the packaged
//! `/etc/vouch/vouch.env` lists every `VOUCH_*` variable of `vouch serve --help`, commented
//! out with its default; the systemd unit, the .deb metadata and the maintainer script name
//! the same paths and user; the Dockerfile sets only real variables. A flag added without
//! its line in `deploy/vouch.env` fails here.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::process::Command;

fn repo_file(path: &str) -> String {
    let full = format!("{}/../../{path}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{full}: {e}"))
}

/// `VOUCH_*` variable → default (empty when the help shows none), from `vouch serve --help`.
fn serve_variables() -> BTreeMap<String, String> {
    let out = Command::new(env!("CARGO_BIN_EXE_vouch"))
        .args(["serve", "--help"])
        .env_clear()
        .output()
        .expect("the vouch binary runs");
    assert!(out.status.success(), "{out:?}");
    let help = String::from_utf8(out.stdout).unwrap();
    // One block per option: a header line indented by 2 or 6 that starts with `-`, then
    // its description lines.
    let mut blocks: Vec<String> = Vec::new();
    for line in help.lines() {
        let trimmed = line.trim_start();
        let indent = line.len() - trimmed.len();
        if (indent == 2 || indent == 6) && trimmed.starts_with('-') {
            blocks.push(String::new());
        }
        if let Some(block) = blocks.last_mut() {
            block.push_str(trimmed);
            block.push(' ');
        }
    }
    let between = |text: &str, open: &str, close: &[char]| -> Option<String> {
        let start = text.find(open)? + open.len();
        let end = text[start..].find(close)? + start;
        Some(text[start..end].to_owned())
    };
    let vars: BTreeMap<String, String> = blocks
        .iter()
        .filter_map(|b| {
            // `[env: NAME=]`, or `[env: NAME]` for the secrets whose values are hidden.
            let var = between(b, "[env: ", &['=', ']'])?;
            Some((var, between(b, "[default: ", &[']']).unwrap_or_default()))
        })
        .collect();
    for var in ["VOUCH_ADDR", "VOUCH_ADMIN_TOKEN", "VOUCH_MASTER_KEY"] {
        assert!(
            vars.contains_key(var),
            "{var} not found in the help: {vars:?}"
        );
    }
    vars
}

/// `NAME=value` lines of an env file, commented out or not: name → (commented, value).
fn env_file_entries(text: &str) -> BTreeMap<String, (bool, String)> {
    text.lines()
        .filter_map(|line| {
            let (commented, rest) = match line.strip_prefix('#') {
                Some(rest) => (true, rest),
                None => (false, line),
            };
            let (name, value) = rest.split_once('=')?;
            let is_name = name.starts_with("VOUCH_")
                && name.chars().all(|c| c.is_ascii_uppercase() || c == '_');
            is_name.then(|| (name.to_owned(), (commented, value.to_owned())))
        })
        .collect()
}

/// The values of `Key=` lines of a systemd unit, in order.
fn unit_values(unit: &str, key: &str) -> Vec<String> {
    let prefix = format!("{key}=");
    unit.lines()
        .filter_map(|l| l.strip_prefix(&prefix).map(str::to_owned))
        .collect()
}

#[test]
fn the_packaged_env_file_lists_every_serve_variable_with_its_default() {
    let entries = env_file_entries(&repo_file("deploy/vouch.env"));
    let unit = repo_file("deploy/vouch.service");
    let unit_data_dir = unit_values(&unit, "Environment")
        .iter()
        .find_map(|e| e.strip_prefix("VOUCH_DATA_DIR=").map(str::to_owned))
        .expect("the unit sets VOUCH_DATA_DIR");
    for (var, default) in serve_variables() {
        let Some((commented, value)) = entries.get(&var) else {
            panic!("deploy/vouch.env does not list {var} (default {default:?})");
        };
        assert!(
            commented,
            "{var} is set in deploy/vouch.env; it should show its default, commented out"
        );
        // The service's data directory is the unit's, not the binary's ./vouch-data.
        let expected = if var == "VOUCH_DATA_DIR" {
            &unit_data_dir
        } else {
            &default
        };
        assert_eq!(value, expected, "the default of {var} in deploy/vouch.env");
    }
    for (var, (commented, _)) in &entries {
        assert!(
            commented,
            "deploy/vouch.env sets {var}: it should only show defaults"
        );
    }
}

#[test]
fn the_unit_the_package_and_the_maintainer_script_agree() {
    let unit = repo_file("deploy/vouch.service");
    let manifest = repo_file("crates/vouch/Cargo.toml");
    let postinst = repo_file("deploy/debian/postinst");
    let one = |key: &str| -> String {
        let values = unit_values(&unit, key);
        assert_eq!(values.len(), 1, "{key}= in the unit: {values:?}");
        values[0].clone()
    };
    assert_eq!(one("ExecStart"), "/usr/bin/vouch serve");
    assert!(manifest.contains(r#"["target/release/vouch", "usr/bin/", "755"]"#));
    assert_eq!(one("EnvironmentFile"), "/etc/vouch/vouch.env");
    assert!(manifest.contains(r#"["../../deploy/vouch.env", "etc/vouch/vouch.env", "640"]"#));
    assert_eq!(one("User"), "vouch");
    assert_eq!(one("Group"), "vouch");
    assert!(postinst.contains("adduser --system --group --home /var/lib/vouch"));
    // The data directory is the state directory systemd keeps writable under
    // ProtectSystem=strict.
    assert_eq!(one("StateDirectory"), "vouch");
    assert_eq!(one("StateDirectoryMode"), "0700");
    assert_eq!(one("WorkingDirectory"), "/var/lib/vouch");
    assert_eq!(one("ProtectSystem"), "strict");
    assert!(
        unit_values(&unit, "Environment").contains(&"VOUCH_DATA_DIR=/var/lib/vouch".to_owned())
    );
}

#[test]
fn the_dockerfile_sets_real_variables_and_checks_health_with_vouch() {
    let dockerfile = repo_file("Dockerfile");
    let known = serve_variables();
    let instructions: String = dockerfile
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .collect::<Vec<_>>()
        .join("\n");
    let set: Vec<&str> = instructions
        .split(|c: char| c.is_whitespace() || c == '\\')
        .filter_map(|w| w.split_once('=').map(|(name, _)| name))
        .filter(|name| name.starts_with("VOUCH_") && *name != "VOUCH_GIT_COMMIT")
        .collect();
    assert!(
        set.contains(&"VOUCH_ADDR") && set.contains(&"VOUCH_DATA_DIR"),
        "{set:?}"
    );
    for name in set {
        assert!(
            known.contains_key(name),
            "the Dockerfile sets {name}, which vouch serve does not read"
        );
    }
    assert!(dockerfile.contains("ENV VOUCH_ADDR=0.0.0.0:8080"));
    assert!(dockerfile.contains("VOUCH_DATA_DIR=/var/lib/vouch"));
    assert!(dockerfile.contains("VOLUME /var/lib/vouch"));
    assert!(dockerfile.contains("EXPOSE 8080"));
    assert!(dockerfile.contains(r#"CMD ["/usr/bin/vouch", "healthcheck""#));
    assert!(dockerfile.contains("USER vouch"));
}
