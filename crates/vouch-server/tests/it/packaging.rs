//! The crate's shape. It compiles in only files it carries itself: an `include_str!`
//! that reaches outside the crate directory builds in the workspace but not from
//! `cargo package` (the browser SDK once came from `../../../../sdk/js`). And its
//! top-level modules depend on each other one way: no chain of `crate::` paths
//! leads from a module back to itself (`state → store → postgres → state` once did).
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

/// The top-level module a source file belongs to (`store/ops.rs` → `store`).
fn top_module(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).unwrap();
    let first = rel
        .components()
        .next()
        .unwrap()
        .as_os_str()
        .to_string_lossy();
    first.trim_end_matches(".rs").to_string()
}

/// The top-level modules named by `crate::…` paths in `source`, tests left out.
fn crate_paths(source: &str) -> std::collections::BTreeSet<String> {
    let code = source.split("#[cfg(test)]").next().unwrap_or("");
    let mut found = std::collections::BTreeSet::new();
    let mut rest = code;
    while let Some(i) = rest.find("crate::") {
        let tail = &rest[i + "crate::".len()..];
        if let Some(group) = tail.strip_prefix('{') {
            // `use crate::{a::X, b};`: the first segment of each item.
            let group = &group[..group.find('}').unwrap_or(group.len())];
            for item in group.split(',') {
                let name: String = item
                    .trim()
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                if !name.is_empty() {
                    found.insert(name);
                }
            }
        } else {
            let name: String = tail
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            found.insert(name);
        }
        rest = tail;
    }
    found
}

#[test]
fn no_module_depends_on_itself_through_others() {
    use std::collections::{BTreeMap, BTreeSet};
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut deps: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in &files {
        let module = top_module(&src, file);
        let named = crate_paths(&std::fs::read_to_string(file).unwrap());
        deps.entry(module.clone())
            .or_default()
            .extend(named.into_iter().filter(|m| *m != module));
    }
    assert!(deps.len() > 20, "the modules were found: {:?}", deps.keys());
    // A depth-first walk from every module; reaching the start again is a cycle.
    for start in deps.keys() {
        let mut stack: Vec<Vec<String>> = vec![vec![start.clone()]];
        let mut seen = BTreeSet::new();
        while let Some(path) = stack.pop() {
            let last = path.last().unwrap();
            for next in deps.get(last).into_iter().flatten() {
                assert!(
                    next != start,
                    "an import cycle: {} → {start}",
                    path.join(" → ")
                );
                if deps.contains_key(next) && seen.insert(next.clone()) {
                    let mut longer = path.clone();
                    longer.push(next.clone());
                    stack.push(longer);
                }
            }
        }
    }
}
