//! `vouch --version` names the crate version and the git commit the binary was built
//! from; the build script's commit lookup (`build/git_commit.rs`, the same file the build
//! runs) is checked against real git repositories: a checkout, a worktree, packed refs, a
//! copy of the sources inside some other repository, no git at all, and the override.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../../build/git_commit.rs"]
mod git_commit;

use std::path::{Path, PathBuf};
use std::process::Command;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `git -C dir ARGS` with a fixed identity; panics when it fails.
fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args([
            "-c",
            "user.name=Vouch Test",
            "-c",
            "user.email=test@example.invalid",
        ])
        .args(args)
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// A new repository on branch `main` with one commit.
fn repo() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    git(dir.path(), &["init", "-q", "-b", "main"]);
    commit(dir.path(), "first");
    dir
}

fn commit(dir: &Path, message: &str) -> String {
    git(dir, &["commit", "-q", "--allow-empty", "-m", message]);
    git(dir, &["rev-parse", "--short=12", "HEAD"])
}

fn canonical(paths: &[PathBuf]) -> Vec<PathBuf> {
    paths.iter().map(|p| p.canonicalize().unwrap()).collect()
}

#[test]
fn version_names_the_crate_version_and_the_commit_it_was_built_from() {
    // What this test's own build saw: the override when one was given (cargo passes the
    // same environment to the build script and to the test), else this checkout's HEAD.
    let expected_commit = match std::env::var("VOUCH_GIT_COMMIT") {
        Ok(v) if !v.trim().is_empty() => v.trim().to_owned(),
        _ => Command::new("git")
            .arg("-C")
            .arg(workspace())
            .args(["rev-parse", "--short=12", "HEAD"])
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8(o.stdout).unwrap().trim().to_owned())
            .unwrap_or_else(|| git_commit::UNKNOWN.to_owned()),
    };
    for flag in ["--version", "-V"] {
        let out = Command::new(env!("CARGO_BIN_EXE_vouch"))
            .arg(flag)
            .output()
            .expect("the vouch binary runs");
        assert!(out.status.success(), "{flag}: {out:?}");
        assert_eq!(
            String::from_utf8(out.stdout).unwrap(),
            format!("vouch {} ({expected_commit})\n", env!("CARGO_PKG_VERSION")),
            "{flag}"
        );
    }
}

#[test]
fn a_checkout_reports_its_head_and_follows_new_commits() {
    let dir = repo();
    let first = git(dir.path(), &["rev-parse", "--short=12", "HEAD"]);
    let found = git_commit::find(dir.path(), None);
    assert_eq!(found.commit, first);
    assert_eq!(found.commit.len(), git_commit::SHORT_LEN);
    let git_dir = dir.path().join(".git");
    assert_eq!(
        canonical(&found.watch),
        canonical(&[git_dir.join("HEAD"), git_dir.join("refs/heads/main")]),
        "HEAD and the branch's ref are watched"
    );

    let second = commit(dir.path(), "second");
    assert_ne!(second, first);
    assert_eq!(git_commit::find(dir.path(), None).commit, second);

    // A detached HEAD names no branch: only HEAD is watched.
    git(dir.path(), &["checkout", "-q", "--detach", "HEAD~1"]);
    let detached = git_commit::find(dir.path(), None);
    assert_eq!(detached.commit, first);
    assert_eq!(
        canonical(&detached.watch),
        canonical(&[git_dir.join("HEAD")])
    );
}

#[test]
fn a_packed_branch_is_watched_through_packed_refs_and_its_folder() {
    let dir = repo();
    git(dir.path(), &["pack-refs", "--all"]);
    let git_dir = dir.path().join(".git");
    assert!(
        !git_dir.join("refs/heads/main").exists(),
        "the ref is packed"
    );
    let found = git_commit::find(dir.path(), None);
    assert_eq!(
        found.commit,
        git(dir.path(), &["rev-parse", "--short=12", "HEAD"])
    );
    assert_eq!(
        canonical(&found.watch),
        canonical(&[
            git_dir.join("HEAD"),
            git_dir.join("refs/heads"),
            git_dir.join("packed-refs")
        ])
    );
}

#[test]
fn a_worktree_reports_its_own_head_and_watches_its_own_files() {
    let dir = repo();
    let main_commit = git(dir.path(), &["rev-parse", "--short=12", "HEAD"]);
    let tree = dir.path().join("wt");
    git(
        dir.path(),
        &[
            "worktree",
            "add",
            "-q",
            "-b",
            "feature",
            tree.to_str().unwrap(),
        ],
    );
    let feature_commit = commit(&tree, "on the feature branch");
    assert!(tree.join(".git").is_file(), "a worktree's .git is a file");

    let found = git_commit::find(&tree, None);
    assert_eq!(found.commit, feature_commit);
    let git_dir = dir.path().join(".git");
    assert_eq!(
        canonical(&found.watch),
        canonical(&[
            git_dir.join("worktrees/wt/HEAD"),
            git_dir.join("refs/heads/feature")
        ])
    );
    assert_eq!(git_commit::find(dir.path(), None).commit, main_commit);
}

#[test]
fn sources_without_git_report_unknown() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("crates/vouch")).unwrap();
    let found = git_commit::find(dir.path(), None);
    assert_eq!(found.commit, "unknown");
    assert!(found.watch.is_empty());
}

#[test]
fn sources_copied_into_another_repository_report_unknown() {
    // A tarball unpacked inside someone else's checkout must not print their commit.
    let dir = repo();
    let vendored = dir.path().join("third_party/vouch-0.1.0");
    std::fs::create_dir_all(&vendored).unwrap();
    let found = git_commit::find(&vendored, None);
    assert_eq!(found.commit, "unknown");
    assert!(found.watch.is_empty());
}

#[test]
fn vouch_git_commit_overrides_what_git_says() {
    let dir = repo();
    let found = git_commit::find(dir.path(), Some("release-build-7"));
    assert_eq!(found.commit, "release-build-7");
    assert!(found.watch.is_empty());
    let none = tempfile::tempdir().unwrap();
    assert_eq!(
        git_commit::find(none.path(), Some(" abc123 ")).commit,
        "abc123"
    );
    // An empty override is no override.
    assert_eq!(
        git_commit::find(dir.path(), Some("  ")).commit,
        git(dir.path(), &["rev-parse", "--short=12", "HEAD"])
    );
}
