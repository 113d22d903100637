//! Records the commit the binary is built from, and that commit's date as the build date (so
//! builds of one commit are alike), for `packyard --version`, `status` and `/api/system`; and
//! rebuilds the crate when its migrations change.

use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
        .filter(|s| !s.is_empty())
}

fn main() {
    let commit = git(&["rev-parse", "--short=12", "HEAD"]).unwrap_or_else(|| "unknown".into());
    let date = git(&["log", "-1", "--format=%cs"]).unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=PACKYARD_COMMIT={commit}");
    println!("cargo:rustc-env=PACKYARD_BUILD_DATE={date}");
    if let Some(git_dir) = git(&["rev-parse", "--git-dir"]) {
        println!("cargo:rerun-if-changed={git_dir}/HEAD");
        println!("cargo:rerun-if-changed={git_dir}/refs/heads");
    }
    println!("cargo:rerun-if-changed=build.rs");
    // `sqlx::migrate!` embeds the migrations: a new or changed one must rebuild the crate.
    println!("cargo:rerun-if-changed=migrations");
}
