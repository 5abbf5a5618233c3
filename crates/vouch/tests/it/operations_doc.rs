//! docs/operations.md's configuration reference must match `vouch serve --help`: every flag
//! and every `VOUCH_*` variable the help shows is in the table, with its default, and the
//! table names nothing the help does not show. Adding a flag without documenting it (or
//! documenting one that does not exist) fails here.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::process::Command;

const DOC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/operations.md");
const SECTION: &str = "## Configuration reference";

/// One option of `vouch serve --help`.
#[derive(Debug)]
struct HelpOption {
    flag: String,
    env: Option<String>,
    default: Option<String>,
}

fn serve_help() -> String {
    // A clean environment, so that no VOUCH_* value of the caller shows up in the help.
    let out = Command::new(env!("CARGO_BIN_EXE_vouch"))
        .args(["serve", "--help"])
        .env_clear()
        .output()
        .expect("the vouch binary runs");
    assert!(out.status.success(), "vouch serve --help failed: {out:?}");
    String::from_utf8(out.stdout).expect("help is UTF-8")
}

/// The text between `[name: ` and the next `=` or `]` on a line, e.g. `[env: VOUCH_ADDR=]`.
fn bracketed(line: &str, name: &str) -> Option<String> {
    let start = line.find(&format!("[{name}: "))? + name.len() + 3;
    let rest = &line[start..];
    let end = if name == "env" {
        rest.find(['=', ']'])?
    } else {
        rest.rfind(']')?
    };
    Some(rest[..end].to_string())
}

/// Options in the order the help lists them; `--help` itself is left out.
fn parse_help(help: &str) -> Vec<HelpOption> {
    let mut options: Vec<HelpOption> = Vec::new();
    for line in help.lines() {
        let trimmed = line.trim_start();
        let indent = line.len() - trimmed.len();
        // Option headers are indented by 2 (`-h, --help`) or 6 (`--addr <HOST:PORT>`);
        // descriptions are indented by 10.
        if (indent == 2 || indent == 6) && (trimmed.starts_with("--") || trimmed.starts_with('-')) {
            let flag = trimmed
                .split(|c: char| c.is_whitespace() || c == '[' || c == '<' || c == '=')
                .find(|w| w.starts_with("--"))
                .expect("an option header names a long flag")
                .trim_end_matches(',')
                .to_string();
            options.push(HelpOption {
                flag,
                env: None,
                default: None,
            });
        } else if let Some(last) = options.last_mut() {
            if let Some(env) = bracketed(trimmed, "env") {
                last.env = Some(env);
            }
            if let Some(default) = bracketed(trimmed, "default") {
                last.default = Some(default);
            }
        }
    }
    options.retain(|o| o.flag != "--help");
    options
}

/// The rows of the tables in the configuration reference section, as cells.
fn doc_rows(doc: &str) -> Vec<Vec<String>> {
    let start = doc
        .find(SECTION)
        .unwrap_or_else(|| panic!("docs/operations.md has no `{SECTION}` section"));
    let section = &doc[start + SECTION.len()..];
    let section = &section[..section.find("\n## ").unwrap_or(section.len())];
    section
        .lines()
        .filter(|l| l.trim_start().starts_with('|'))
        .map(|l| {
            // `\|` is a pipe inside a cell (as in `<text\|json>`), not a cell boundary.
            l.trim()
                .replace("\\|", "\u{0}")
                .trim_matches('|')
                .split('|')
                .map(|c| c.trim().replace('\u{0}', "|"))
                .collect::<Vec<_>>()
        })
        .filter(|cells| {
            !cells
                .iter()
                .all(|c| c.chars().all(|ch| ch == '-' || ch == ':'))
        })
        .collect()
}

/// Words in `cell` that start with `prefix`, up to the first character outside `[A-Za-z0-9_-]`.
fn words(cell: &str, prefix: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = cell;
    while let Some(i) = rest.find(prefix) {
        let tail = &rest[i..];
        let end = tail
            .char_indices()
            .skip(prefix.len())
            .find(|(_, c)| !(c.is_ascii_alphanumeric() || *c == '_' || *c == '-'))
            .map_or(tail.len(), |(j, _)| j);
        found.push(tail[..end].to_string());
        rest = &tail[end..];
    }
    found
}

#[test]
fn help_parser_sees_every_serve_option() {
    // Guards the parser itself: if the help format changed and nothing was parsed, the
    // comparison below would pass vacuously.
    let options = parse_help(&serve_help());
    let flags: Vec<&str> = options.iter().map(|o| o.flag.as_str()).collect();
    for expected in ["--addr", "--data-dir", "--master-key", "--admin-token"] {
        assert!(
            flags.contains(&expected),
            "{expected} not parsed from help: {flags:?}"
        );
    }
    let addr = options.iter().find(|o| o.flag == "--addr").unwrap();
    assert_eq!(addr.env.as_deref(), Some("VOUCH_ADDR"));
    assert_eq!(addr.default.as_deref(), Some("127.0.0.1:8080"));
}

#[test]
fn configuration_reference_lists_exactly_the_serve_flags_and_variables() {
    let options = parse_help(&serve_help());
    let doc = std::fs::read_to_string(DOC).expect("docs/operations.md exists");
    let rows = doc_rows(&doc);
    assert!(!rows.is_empty(), "the configuration reference has no table");

    let help_flags: BTreeSet<String> = options.iter().map(|o| o.flag.clone()).collect();
    let help_envs: BTreeSet<String> = options.iter().filter_map(|o| o.env.clone()).collect();
    let doc_flags: BTreeSet<String> = rows.iter().flat_map(|r| words(&r[0], "--")).collect();
    let doc_envs: BTreeSet<String> = rows
        .iter()
        .flat_map(|r| {
            r.iter()
                .skip(1)
                .take(1)
                .flat_map(|c| words(c, "VOUCH_"))
                .collect::<Vec<_>>()
        })
        .collect();

    let undocumented: Vec<_> = help_flags.difference(&doc_flags).collect();
    let unknown: Vec<_> = doc_flags.difference(&help_flags).collect();
    assert!(
        undocumented.is_empty() && unknown.is_empty(),
        "flags in `vouch serve --help` but not in docs/operations.md: {undocumented:?}; \
         in the doc but not in the help: {unknown:?}"
    );
    let undocumented: Vec<_> = help_envs.difference(&doc_envs).collect();
    let unknown: Vec<_> = doc_envs.difference(&help_envs).collect();
    assert!(
        undocumented.is_empty() && unknown.is_empty(),
        "variables in `vouch serve --help` but not in docs/operations.md: {undocumented:?}; \
         in the doc but not in the help: {unknown:?}"
    );
}

#[test]
fn each_documented_flag_has_its_variable_and_default_on_its_row() {
    let options = parse_help(&serve_help());
    let doc = std::fs::read_to_string(DOC).expect("docs/operations.md exists");
    let rows = doc_rows(&doc);
    for o in &options {
        let row = rows
            .iter()
            .find(|r| words(&r[0], "--").contains(&o.flag))
            .unwrap_or_else(|| panic!("no row for {} in the configuration reference", o.flag));
        if let Some(env) = &o.env {
            assert!(
                row.get(1).is_some_and(|c| words(c, "VOUCH_").contains(env)),
                "the row of {} should name {env} in its second column: {row:?}",
                o.flag
            );
        }
        if let Some(default) = &o.default {
            assert!(
                row.iter()
                    .skip(2)
                    .any(|c| c.contains(&format!("`{default}`"))),
                "the row of {} should give its default `{default}`: {row:?}",
                o.flag
            );
        }
    }
}
