//! Records the git commit the binary is built from, for `casewarden_build_info`: from
//! `CASEWARDEN_GIT_HASH` when a packager sets it (a build from a source tarball has no git), else
//! from `git rev-parse` where git and a checkout are there, else nothing ("unknown").
//!
//! Also tells cargo that `sqlx::migrate!` reads `migrations/`: once a build script names what
//! it depends on, cargo reruns it for nothing else, and without this a new migration file would
//! not rebuild the crate.

use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    (out.status.success() && !text.trim().is_empty()).then(|| text.trim().to_string())
}

fn main() {
    println!("cargo:rerun-if-changed=migrations");
    println!("cargo:rerun-if-env-changed=CASEWARDEN_GIT_HASH");
    let hash = std::env::var("CASEWARDEN_GIT_HASH")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| git(&["rev-parse", "--short=12", "HEAD"]));
    // Run again when the checkout moves to another commit: HEAD, and the branch it names.
    let branch = git(&["symbolic-ref", "-q", "HEAD"]);
    for name in ["HEAD", "packed-refs"].into_iter().chain(branch.as_deref()) {
        if let Some(path) = git(&["rev-parse", "--git-path", name])
            && std::path::Path::new(&path).exists()
        {
            println!("cargo:rerun-if-changed={path}");
        }
    }
    if let Some(hash) = hash {
        println!("cargo:rustc-env=CASEWARDEN_GIT_HASH={hash}");
    }
}
