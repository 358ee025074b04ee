//! `hj api-key create|list|revoke` as an operator runs them on the embedded store: the token
//! printed once and stored only as its hash, the list without tokens, revocation, the audit
//! entries each change writes, and the input refused.

mod support;

use std::path::Path;
use std::sync::Arc;

use store::{AuditQuery, Store};
use support::{hj, temp_dir};

/// Runs `hj` on the store in `dir` as OS user `user` (none: `$USER` unset).
fn run_as(dir: &Path, user: Option<&str>, args: &[&str]) -> (Option<i32>, String, String) {
    let mut cmd = hj();
    cmd.args(args)
        .env("HELLOJOHN_DATA_DIR", dir)
        .env("HELLOJOHN_LOG", "error");
    match user {
        Some(user) => cmd.env("USER", user),
        None => cmd.env_remove("USER"),
    };
    let out = cmd.output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn run(dir: &Path, args: &[&str]) -> (Option<i32>, String, String) {
    run_as(dir, Some("ops-tester"), args)
}

/// The value of `key=` on its own line of `out`.
fn value<'a>(out: &'a str, key: &str) -> &'a str {
    out.lines()
        .find_map(|line| line.strip_prefix(key)?.strip_prefix('='))
        .unwrap_or_else(|| panic!("no {key}= line in {out}"))
}

/// The data rows of `hj api-key list`, each split into its columns.
fn listed(dir: &Path) -> Vec<Vec<String>> {
    let (code, out, err) = run(dir, &["api-key", "list"]);
    assert_eq!(code, Some(0), "{err}");
    let mut lines = out.lines();
    assert_eq!(
        lines.next(),
        Some("ID\tNAME\tKEY_PREFIX\tSCOPE\tCREATED_BY\tCREATED\tLAST_USED\tEXPIRES\tACTIVE")
    );
    lines
        .map(|l| l.split('\t').map(str::to_string).collect())
        .collect()
}

/// The store the CLI wrote (the CLI has exited; nothing else has it open).
fn open_store(dir: &Path) -> Arc<dyn Store> {
    Arc::new(storage::sqlite::SqliteStore::open(&dir.join("hellojohn.db"), 1).unwrap())
}

#[tokio::test]
async fn create_list_and_revoke() {
    let dir = temp_dir("api-keys");
    let (code, _, err) = run(&dir, &["tenant", "create", "--slug", "acme"]);
    assert_eq!(code, Some(0), "{err}");

    let (code, out, err) = run(
        &dir,
        &[
            "api-key",
            "create",
            "--name",
            "deploy bot",
            "--scope",
            "admin",
            "--expires-in",
            "30d",
        ],
    );
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("not shown again"), "{err}");
    let token = value(&out, "api_key").to_string();
    let body = token.strip_prefix("hjk_").expect("hjk_ token");
    assert_eq!(body.len(), 43, "{token}");
    assert!(body
        .bytes()
        .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'));
    let id = value(&out, "id").to_string();
    assert_eq!(value(&out, "key_prefix"), &token[..12]);
    assert_eq!(value(&out, "scope"), "admin");
    assert_eq!(value(&out, "name"), "deploy bot");
    assert!(value(&out, "expires_at").ends_with('Z'), "{out}");

    let (code, out, err) = run_as(
        &dir,
        None,
        &[
            "api-key",
            "create",
            "--name",
            "acme",
            "--scope",
            "tenant:acme",
        ],
    );
    assert_eq!(code, Some(0), "{err}");
    let tenant_token = value(&out, "api_key").to_string();
    let tenant_id = value(&out, "id").to_string();
    assert_eq!(value(&out, "scope"), "tenant:acme");
    assert_eq!(value(&out, "expires_at"), "-");
    assert_ne!(tenant_token, token);

    // Listed newest first, both active, with their prefixes and never their tokens.
    let (_, out, _) = run(&dir, &["api-key", "list"]);
    assert!(
        !out.contains(&token) && !out.contains(&tenant_token),
        "{out}"
    );
    let rows = listed(&dir);
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!(rows[0][0], tenant_id);
    assert_eq!(rows[1][0], id);
    let row = &rows[1];
    assert_eq!(
        (row[1].as_str(), row[2].as_str(), row[3].as_str()),
        ("deploy bot", &token[..12], "admin")
    );
    assert_eq!((row[4].as_str(), row[6].as_str()), ("cli", "-"));
    assert!(row[7].ends_with('Z'), "{row:?}");
    assert_eq!(rows[0][7], "-");
    assert!(rows.iter().all(|r| r[8] == "yes"), "{rows:?}");

    // Revoked: listed inactive; a second revocation says so and changes nothing.
    let (code, out, err) = run(&dir, &["api-key", "revoke", &id]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(out.trim(), format!("revoked {id}"));
    let rows = listed(&dir);
    assert_eq!(
        (rows[1][0].as_str(), rows[1][8].as_str()),
        (id.as_str(), "no")
    );
    assert_eq!(rows[0][8], "yes", "the other key stays active");
    let (code, out, err) = run(&dir, &["api-key", "revoke", &id]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("already revoked"), "{out}");
    let unknown = uuid::Uuid::now_v7().to_string();
    let (code, _, err) = run(&dir, &["api-key", "revoke", &unknown]);
    assert_eq!(code, Some(1));
    assert!(err.contains("no API key"), "{err}");
    let (code, _, err) = run(&dir, &["api-key", "revoke", "not-an-id"]);
    assert_eq!(code, Some(1));
    assert!(err.contains("not an API key id"), "{err}");

    // What the store holds: the token's SHA-256, and one audit entry per change.
    let store = open_store(&dir);
    let stored = store
        .find_api_key(auth::api_keys::hash(&token))
        .await
        .unwrap()
        .expect("the key, found by its token's hash");
    assert_eq!(stored.id.to_string(), id);
    assert!(stored.revoked_at.is_some());
    let entries = store
        .list_audit(AuditQuery {
            action: Some("api_key.".into()),
            limit: 100,
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    let seen: Vec<_> = entries
        .iter()
        .map(|e| {
            (
                e.action.as_str(),
                e.target_id.clone().unwrap_or_default(),
                e.actor_name.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        vec![
            ("api_key.revoke", id.clone(), Some("ops-tester")),
            ("api_key.create", tenant_id.clone(), None),
            ("api_key.create", id.clone(), Some("ops-tester")),
        ],
        "the second revocation wrote nothing"
    );
    for e in &entries {
        assert_eq!(e.actor_type, "cli");
        assert_eq!(
            (e.tenant_id, e.target_type.as_deref()),
            (None, Some("api_key"))
        );
        assert_eq!(e.result, "success");
        assert!(!e.metadata.to_string().contains(&token), "{e:?}");
    }
}

#[test]
fn bad_input_is_refused() {
    let dir = temp_dir("api-keys-refused");
    let (code, _, err) = run(&dir, &["tenant", "create", "--slug", "acme"]);
    assert_eq!(code, Some(0), "{err}");
    for (args, says) in [
        (&["--scope", "root"][..], "--scope must be"),
        (&["--scope", "tenant:"], "--scope must be"),
        (&["--scope", "tenant:Acme"], "--scope must be"),
        (&["--scope", "Admin"], "--scope must be"),
        (&["--scope", "tenant:nope"], "no tenant with slug \"nope\""),
        (&["--scope", "admin", "--expires-in", "1y"], "--expires-in"),
        (&["--scope", "admin", "--expires-in", "0d"], "--expires-in"),
        (&["--scope", "admin", "--expires-in", "30"], "--expires-in"),
    ] {
        let (code, out, err) = run(
            &dir,
            &[&["api-key", "create", "--name", "k"][..], args].concat(),
        );
        assert_eq!(code, Some(1), "{args:?}: {out}{err}");
        assert!(err.contains(says), "{args:?}: {err}");
        assert!(!out.contains("api_key="), "{args:?}: {out}");
    }
    let (code, _, err) = run(
        &dir,
        &["api-key", "create", "--name", " ", "--scope", "admin"],
    );
    assert_eq!(code, Some(1));
    assert!(err.contains("--name"), "{err}");
    let (code, _, _) = run(&dir, &["api-key", "create", "--name", "k"]);
    assert_eq!(code, Some(2), "clap: --scope is required");
    assert!(listed(&dir).is_empty(), "nothing was created");
}
