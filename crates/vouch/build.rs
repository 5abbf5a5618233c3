//! Puts the git commit of the build into `VOUCH_BUILD_COMMIT`, which `vouch --version`
//! prints beside the version. `VOUCH_GIT_COMMIT` overrides it (a build from a tarball or
//! a container context without `.git`); with neither, it is "unknown".

use std::path::Path;

#[path = "build/git_commit.rs"]
mod git_commit;

fn main() {
    println!("cargo::rerun-if-env-changed=VOUCH_GIT_COMMIT");
    let manifest_dir = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| ".".to_owned());
    let workspace = Path::new(&manifest_dir).join("../..");
    let override_value = std::env::var("VOUCH_GIT_COMMIT").ok();
    let found = git_commit::find(&workspace, override_value.as_deref());
    for path in &found.watch {
        println!("cargo::rerun-if-changed={}", path.display());
    }
    println!("cargo::rustc-env=VOUCH_BUILD_COMMIT={}", found.commit);
}
