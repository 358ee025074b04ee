//! `hj admin create|list`: the first admin account, made on the store directly (the
//! break-glass path): the password printed once (or read from stdin and never printed), the
//! Argon2id hash stored, the audit entry it writes, the input refused.

mod support;

use std::path::Path;
use std::sync::Arc;

use store::{AuditQuery, Store};
use support::{hj, temp_dir};

fn run(dir: &Path, args: &[&str], stdin: Option<&str>) -> (Option<i32>, String, String) {
    use std::io::Write as _;
    let mut cmd = hj();
    cmd.args(args)
        .env("HELLOJOHN_DATA_DIR", dir)
        .env("HELLOJOHN_LOG", "error")
        .env("HELLOJOHN_ARGON2_MEMORY_KIB", "64")
        .env("HELLOJOHN_ARGON2_ITERATIONS", "1")
        .env("USER", "ops-tester")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    if let Some(text) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
    }
    drop(child.stdin.take());
    let out = child.wait_with_output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn the_first_admin_comes_from_the_cli() {
    let dir = temp_dir("admins");
    let (code, out, err) = run(
        &dir,
        &[
            "admin",
            "create",
            "--email",
            "Ops@Example.com",
            "--scope",
            "admin",
        ],
        None,
    );
    assert_eq!(code, Some(0), "{err}");
    let password = out
        .lines()
        .find_map(|l| l.strip_prefix("password="))
        .unwrap_or_else(|| panic!("no password= line in {out}"))
        .to_string();
    assert!(auth::password::check_policy(&password).is_ok());
    assert!(out.contains("ops@example.com\tadmin\tactive"), "{out}");

    // A password from stdin is not printed back.
    let (code, out, err) = run(
        &dir,
        &[
            "admin",
            "create",
            "--email",
            "ro@example.com",
            "--scope",
            "readonly",
            "--password-stdin",
        ],
        Some("Stdin-Password-42\n"),
    );
    assert_eq!(code, Some(0), "{err}");
    assert!(
        !out.contains("password=") && !out.contains("Stdin-Password-42"),
        "{out}"
    );

    let (code, out, _) = run(&dir, &["admin", "list"], None);
    assert_eq!(code, Some(0));
    assert_eq!(out.lines().count(), 2, "{out}");

    // Refused: a taken email, a bad scope, an unknown tenant, a weak password.
    for (args, stdin) in [
        (vec!["admin", "create", "--email", "ops@example.com"], None),
        (
            vec![
                "admin",
                "create",
                "--email",
                "x@example.com",
                "--scope",
                "root",
            ],
            None,
        ),
        (
            vec![
                "admin",
                "create",
                "--email",
                "x@example.com",
                "--scope",
                "tenant:nope",
            ],
            None,
        ),
        (vec!["admin", "create", "--email", "not-an-email"], None),
        (
            vec![
                "admin",
                "create",
                "--email",
                "x@example.com",
                "--password-stdin",
            ],
            Some("short\n"),
        ),
    ] {
        let (code, _, err) = run(&dir, &args, stdin);
        assert_ne!(code, Some(0), "{args:?} should fail");
        assert!(err.starts_with("hj: "), "{args:?}: {err}");
    }

    // Audited, with the operating-system user as the actor's name.
    let store: Arc<dyn Store> =
        Arc::new(storage::sqlite::SqliteStore::open(&dir.join("hellojohn.db"), 1).unwrap());
    let entries = store
        .list_audit(AuditQuery {
            action: Some("admin.create".into()),
            limit: 10,
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[0].actor_type, "cli");
    assert_eq!(entries[0].actor_name.as_deref(), Some("ops-tester"));

    // Stored as an Argon2id PHC string, never as the password.
    let login = store
        .find_admin_login("ops@example.com")
        .await
        .unwrap()
        .unwrap();
    assert!(login.password_hash.starts_with("$argon2id$"));
    assert!(!login.password_hash.contains(&password));
}
