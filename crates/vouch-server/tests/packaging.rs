//! The crate compiles in only files it carries itself: an `include_str!` that reaches
//! outside the crate directory builds in the workspace but not from `cargo package`
//! (the browser SDK once came from `../../../../sdk/js`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The string literals given to `include_str!` / `include_bytes!` in `source`.
fn included_paths(source: &str) -> Vec<String> {
    let mut found = Vec::new();
    for mac in ["include_str!(\"", "include_bytes!(\""] {
        let mut rest = source;
        while let Some(i) = rest.find(mac) {
            let tail = &rest[i + mac.len()..];
            let end = tail.find('"').expect("a closing quote");
            found.push(tail[..end].to_string());
            rest = &tail[end..];
        }
    }
    found
}

#[test]
fn every_included_file_lives_inside_the_crate() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .canonicalize()
        .unwrap();
    let mut files = Vec::new();
    rust_files(&root.join("src"), &mut files);
    let mut included = Vec::new();
    for file in &files {
        let source = std::fs::read_to_string(file).unwrap();
        for rel in included_paths(&source) {
            let target = file.parent().unwrap().join(&rel);
            let target = target
                .canonicalize()
                .unwrap_or_else(|e| panic!("{}: {rel}: {e}", file.display()));
            assert!(
                target.starts_with(&root),
                "{} includes {rel}, outside the crate: `cargo package` would not carry it",
                file.display()
            );
            included.push(target.strip_prefix(&root).unwrap().to_path_buf());
        }
    }
    for sdk in ["vouch.js", "vouch.global.js", "vouch.d.ts"] {
        let path = Path::new("assets/sdk").join(sdk);
        assert!(
            included.contains(&path),
            "{} is not compiled in",
            path.display()
        );
    }
}

#[test]
fn the_include_scanner_finds_both_macros() {
    let paths = included_paths(
        r#"const A: &str = include_str!("../a.js"); const B: &[u8] = include_bytes!("b.png");"#,
    );
    assert_eq!(paths, ["../a.js", "b.png"]);
}
