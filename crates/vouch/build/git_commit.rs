//! The git commit that `vouch --version` names, found at build time. Shared by `build.rs`
//! and its test (`tests/it/version.rs`), so the test runs the code the build runs.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Length of the abbreviated commit id.
pub const SHORT_LEN: usize = 12;

/// What is printed when the source is not a git checkout (a tarball, a vendored copy).
pub const UNKNOWN: &str = "unknown";

/// The commit to print and the files whose change means another commit.
#[derive(Debug)]
pub struct GitCommit {
    /// The override, the abbreviated commit of `HEAD`, or [`UNKNOWN`].
    pub commit: String,
    /// `HEAD`, the branch it points to (loose or packed) — for `rerun-if-changed`.
    pub watch: Vec<PathBuf>,
}

/// The commit of the checkout whose top level is `workspace`. A non-empty
/// `override_value` (`VOUCH_GIT_COMMIT`) wins; without git, or when `workspace` is not the
/// top of a checkout (the sources copied into some other repository), the commit is
/// [`UNKNOWN`].
pub fn find(workspace: &Path, override_value: Option<&str>) -> GitCommit {
    if let Some(value) = override_value.map(str::trim).filter(|v| !v.is_empty()) {
        return GitCommit {
            commit: value.to_owned(),
            watch: Vec::new(),
        };
    }
    let unknown = GitCommit {
        commit: UNKNOWN.to_owned(),
        watch: Vec::new(),
    };
    let Some(top) = git(workspace, &["rev-parse", "--show-toplevel"]) else {
        return unknown;
    };
    let same_dir = match (Path::new(&top).canonicalize(), workspace.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    };
    if !same_dir {
        return unknown;
    }
    let short = format!("--short={SHORT_LEN}");
    let Some(commit) = git(workspace, &["rev-parse", &short, "HEAD"]) else {
        return unknown;
    };
    GitCommit {
        commit,
        watch: watched_files(workspace),
    }
}

/// `HEAD` and, when it names a branch, that branch's loose ref and `packed-refs`. In a
/// worktree `.git` is a file and these live elsewhere, which `--git-path` resolves. Only
/// existing paths are returned: cargo reruns a build script on every build when a
/// watched path is missing. A branch that is only packed is watched through its folder,
/// where a commit creates the loose ref.
fn watched_files(workspace: &Path) -> Vec<PathBuf> {
    let path_of =
        |name: &str| git(workspace, &["rev-parse", "--git-path", name]).map(|p| workspace.join(p));
    let mut watch: Vec<PathBuf> = path_of("HEAD").into_iter().collect();
    if let Some(branch) = git(workspace, &["symbolic-ref", "-q", "HEAD"]) {
        if let Some(loose) = path_of(&branch) {
            if loose.is_file() {
                watch.push(loose);
            } else if let Some(parent) = loose.parent().filter(|p| p.is_dir()) {
                watch.push(parent.to_path_buf());
            }
        }
        watch.extend(path_of("packed-refs"));
    }
    watch.retain(|p| p.exists());
    watch
}

/// The trimmed standard output of `git -C dir ARGS`, or None when git is missing or fails.
fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8(out.stdout).ok()?;
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_owned())
}
