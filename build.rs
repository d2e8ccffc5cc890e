//! Build script: records the git commit the binary is built from, for `--version`
//! ("0.1.0 (commit 1a2b3c4d5e6f)"). Only a checkout of this crate counts (not a parent
//! repository the sources happen to sit in); `OPENCLAW_TOKEN_SYNC_GIT_COMMIT` names the commit
//! for builds from a tarball. Without either, the version is the crate's alone.

use std::path::Path;
use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    let text = String::from_utf8(out.stdout).ok()?.trim().to_owned();
    (out.status.success() && !text.is_empty()).then_some(text)
}

fn commit_of_checkout(manifest_dir: &Path) -> Option<String> {
    let top = git(&["rev-parse", "--show-toplevel"])?;
    if Path::new(&top).canonicalize().ok()? != manifest_dir.canonicalize().ok()? {
        return None;
    }
    // Rebuild when HEAD moves: HEAD itself, the branch it names, and packed refs. Only files
    // that exist are watched: cargo reruns a build script (and rebuilds the crate) on every
    // build while a watched file is missing, and many clones have no `packed-refs` or no loose
    // branch ref. (A ref that appears later shows up as a change of HEAD's or packed-refs'.)
    // `logs/HEAD` (the reflog) grows with every commit and checkout, whichever ref moved.
    let mut watched = vec![
        "HEAD".to_owned(),
        "packed-refs".to_owned(),
        "logs/HEAD".to_owned(),
    ];
    watched.extend(git(&["symbolic-ref", "-q", "HEAD"]));
    for file in watched {
        if let Some(path) = git(&["rev-parse", "--git-path", &file]) {
            if Path::new(&path).exists() {
                println!("cargo:rerun-if-changed={path}");
            }
        }
    }
    git(&["rev-parse", "--short=12", "HEAD"])
}

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=OPENCLAW_TOKEN_SYNC_GIT_COMMIT");
    let manifest_dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let commit = std::env::var("OPENCLAW_TOKEN_SYNC_GIT_COMMIT")
        .ok()
        .filter(|c| !c.is_empty())
        .or_else(|| commit_of_checkout(Path::new(&manifest_dir)))
        .filter(|c| {
            c.chars()
                .all(|ch| ch.is_ascii_alphanumeric() || "-_.".contains(ch))
        });
    let version = env!("CARGO_PKG_VERSION");
    let full = match &commit {
        Some(commit) => format!("{version} (commit {commit})"),
        None => version.to_owned(),
    };
    println!("cargo:rustc-env=OCSYNC_VERSION={full}");
    println!(
        "cargo:rustc-env=OCSYNC_GIT_COMMIT={}",
        commit.unwrap_or_default()
    );
}
