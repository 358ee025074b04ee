//! Test plumbing shared by the workspace's tests (a dev-dependency only; it depends on no crate
//! of the workspace, so any of them may use it).
//!
//! * [`require_env`] and [`services`]: the harness of `scripts/services.sh` / `scripts/test.sh`.
//!   Tests that need a service FAIL (never skip) when its variable is missing.
//! * [`pg`]: PostgreSQL URLs and a database per test case ([`pg::TestDb`]).
//! * [`TempDir`] and [`temp_dir`]: owner-only temporary directories.

// Test support: a failed set-up is a failed test, said loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod pg;
pub mod totp;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

/// The value of a harness variable, or a panic that says how to get it.
pub fn require_env(name: &str) -> String {
    match std::env::var(name) {
        Ok(value) if !value.is_empty() => value,
        _ => panic!(
            "{name} is not set: the test services are needed. Run `bash scripts/test.sh`, or \
             `bash scripts/services.sh start && source .hj-test/env` before `cargo test`."
        ),
    }
}

/// Runs `scripts/services.sh CMD` (e.g. `stop-redis`, `restart-postgres`) and asserts that it
/// succeeded.
pub fn services(cmd: &str) {
    let status = std::process::Command::new("bash")
        .arg(require_env("HJ_TEST_SERVICES_SH"))
        .arg(cmd)
        .status()
        .unwrap_or_else(|e| panic!("cannot run services.sh {cmd}: {e}"));
    assert!(status.success(), "services.sh {cmd} failed");
}

/// A fresh owner-only (0700, as a real data dir must be) directory under the system temp dir,
/// unique to this process and call, left in place.
pub fn temp_dir(tag: &str) -> PathBuf {
    use std::os::unix::fs::DirBuilderExt as _;
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "hj-{tag}-{}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed),
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
    dir
}

/// A [`temp_dir`] removed (with its contents) on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        TempDir(temp_dir(tag))
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temp_dirs_are_owner_only_unique_and_removed() {
        use std::os::unix::fs::PermissionsExt as _;
        let a = TempDir::new("kit");
        let b = TempDir::new("kit");
        assert_ne!(a.path(), b.path());
        let mode = std::fs::metadata(a.path()).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        let kept = a.path().to_path_buf();
        std::fs::write(kept.join("f"), b"x").unwrap();
        drop(a);
        assert!(!kept.exists());
    }
}
