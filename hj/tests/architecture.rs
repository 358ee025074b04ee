//! The architecture's rules, checked on the source tree (rust-analyzer's `tidy` is the model):
//! each test reads files, never runs the server. A rule that needs an exception names it here,
//! with the reason, so an exception is a reviewed line and not a drift.
//!
//! See docs/ARCHITECTURE.md ("Invariants") for why each rule exists.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The workspace root (this file is `hj/tests/architecture.rs`).
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("hj/ has a parent")
        .to_path_buf()
}

/// The member crates: directory and package name.
const CRATES: [(&str, &str); 8] = [
    ("passhash", "hellojohn-passhash"),
    ("protocol", "hellojohn-protocol"),
    ("storage", "hellojohn-storage"),
    ("auth", "hellojohn-auth"),
    ("engine", "hellojohn-engine"),
    ("bench", "hellojohn-bench"),
    ("hj", "hj"),
    ("testkit", "hellojohn-testkit"),
];

/// Every `.rs` file under `dir`, recursively, sorted.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// Every source file of the workspace's crates (`src/`, `tests/`, `benches/`), relative to the
/// root with `/` separators.
fn workspace_sources() -> Vec<(String, String)> {
    let root = root();
    let mut out = Vec::new();
    for (dir, _) in CRATES {
        for sub in ["src", "tests", "benches"] {
            for p in rust_files(&root.join(dir).join(sub)) {
                let rel = p
                    .strip_prefix(&root)
                    .expect("under the root")
                    .to_string_lossy()
                    .replace('\\', "/");
                let text = std::fs::read_to_string(&p).expect("readable source");
                out.push((rel, text));
            }
        }
    }
    assert!(out.len() > 50, "found only {} sources", out.len());
    out
}

/// The dependency names of one `[section]` of a crate's Cargo.toml (the keys before `=` or
/// `.workspace`). A deliberately small reader: the manifests here use one key per line.
fn manifest_deps(dir: &str, section: &str) -> BTreeSet<String> {
    let text = std::fs::read_to_string(root().join(dir).join("Cargo.toml")).expect("manifest");
    let mut deps = BTreeSet::new();
    let mut inside = false;
    for line in text.lines().map(str::trim) {
        if line.starts_with('[') {
            inside = line == format!("[{section}]");
            continue;
        }
        if !inside || line.is_empty() || line.starts_with('#') {
            continue;
        }
        let key = line
            .split(['=', '.'])
            .next()
            .unwrap_or_default()
            .trim()
            .to_string();
        deps.insert(key);
    }
    deps
}

/// The workspace's own crates as `[workspace.dependencies]` names them.
const WORKSPACE_KEYS: [&str; 7] = [
    "passhash", "protocol", "storage", "auth", "engine", "bench", "testkit",
];

#[test]
fn workspace_crates_depend_only_downward() {
    // Each crate and the workspace crates it may use: a layer sees only the layers below it.
    let allowed: BTreeMap<&str, &[&str]> = BTreeMap::from([
        ("passhash", &[][..]),
        ("protocol", &[][..]),
        ("storage", &["protocol"][..]),
        ("auth", &["passhash", "protocol", "storage"][..]),
        ("engine", &["auth", "passhash", "protocol", "storage"][..]),
        // The load generator talks to a server over HTTP; it shares only the hasher, so that
        // its Argon2 ceiling is measured with the code that serves.
        ("bench", &["passhash"][..]),
        (
            "hj",
            &["auth", "passhash", "protocol", "storage", "engine", "bench"][..],
        ),
        ("testkit", &[][..]),
    ]);
    let mut wrong = Vec::new();
    for (dir, _) in CRATES {
        let may = allowed[dir];
        for section in ["dependencies", "dev-dependencies"] {
            for dep in manifest_deps(dir, section) {
                // The test plumbing may serve any crate's tests, and nothing else.
                if dep == "testkit" && section == "dev-dependencies" {
                    continue;
                }
                if WORKSPACE_KEYS.contains(&dep.as_str()) && !may.contains(&dep.as_str()) {
                    wrong.push(format!("{dir} [{section}] depends on {dep}"));
                }
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "dependencies against the layering:\n{wrong:#?}"
    );
}

#[test]
fn the_domain_sees_no_http_json_redis_or_sql() {
    const FORBIDDEN: [&str; 10] = [
        "hyper",
        "hyper-util",
        "http",
        "http-body-util",
        "serde_json",
        "simd-json",
        "redis",
        "tokio-postgres",
        "rusqlite",
        "reqwest",
    ];
    for section in ["dependencies", "dev-dependencies"] {
        let deps = manifest_deps("auth", section);
        let found: Vec<&&str> = FORBIDDEN.iter().filter(|f| deps.contains(**f)).collect();
        assert!(found.is_empty(), "auth [{section}] has {found:?}");
    }
    let mut wrong = Vec::new();
    for (path, text) in workspace_sources() {
        if !path.starts_with("auth/") {
            continue;
        }
        for needle in [
            "serde_json",
            "hyper::",
            "http::",
            "redis::Redis",
            "tokio_postgres",
        ] {
            if text.contains(needle) {
                wrong.push(format!("{path} mentions {needle}"));
            }
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}

#[test]
fn only_protocol_and_storage_know_json() {
    // Handlers build wire types (protocol) and the store writes JSON columns (storage); the
    // engine and the domain see neither JSON text nor JSON values. The load generator is a
    // separate program that writes its own reports. Tests may use JSON to check bodies.
    let may = ["protocol/", "storage/", "bench/"];
    let mut wrong = Vec::new();
    for (path, text) in workspace_sources() {
        let test_code = path.contains("/tests/") || path.contains("/props/");
        if test_code || may.iter().any(|p| path.starts_with(p)) {
            continue;
        }
        if text.contains("serde_json") || text.contains("simd_json") {
            wrong.push(path);
        }
    }
    assert!(
        wrong.is_empty(),
        "JSON outside protocol/ and storage/: {wrong:#?}"
    );
    for dir in ["auth", "engine", "hj"] {
        let deps = manifest_deps(dir, "dependencies");
        assert!(
            !deps.contains("serde_json") && !deps.contains("simd-json"),
            "{dir} [dependencies] has a JSON crate"
        );
    }
}

#[test]
fn only_storage_speaks_sql() {
    let mut wrong = Vec::new();
    for (path, text) in workspace_sources() {
        // Tests and their plumbing check the database behind the store's back.
        if path.starts_with("storage/") || path.starts_with("testkit/") || path.contains("/tests/")
        {
            continue;
        }
        for needle in [
            "tokio_postgres",
            "rusqlite",
            "SELECT ",
            "INSERT INTO",
            "DELETE FROM",
        ] {
            if text.contains(needle) {
                wrong.push(format!("{path} contains {needle:?}"));
            }
        }
    }
    assert!(wrong.is_empty(), "SQL outside storage/:\n{wrong:#?}");
}

#[test]
fn modules_depend_one_way() {
    // (files, modules they must not use): the lower module of each pair the review found in a
    // cycle. The server calls the handlers, not the reverse (the connection state both share is
    // `conn`); `users` writes refresh tokens at sign-up, so refresh rotation and sessions read
    // users through `user_row`, never through `users`.
    let rules: [(&str, &[&str]); 4] = [
        ("engine/src/handlers/", &["crate::server"]),
        ("engine/src/conn.rs", &["crate::server", "crate::handlers"]),
        ("storage/src/sqlite/", &["super::users", "users::"]),
        ("storage/src/postgres/", &["super::users", "users::"]),
    ];
    let exempt = ["storage/src/sqlite/users.rs", "storage/src/sqlite/mod.rs"];
    let exempt_pg = [
        "storage/src/postgres/users.rs",
        "storage/src/postgres/mod.rs",
    ];
    let mut wrong = Vec::new();
    for (path, text) in workspace_sources() {
        if exempt.contains(&path.as_str()) || exempt_pg.contains(&path.as_str()) {
            continue;
        }
        for (prefix, banned) in &rules {
            if !path.starts_with(prefix) {
                continue;
            }
            for b in *banned {
                if text.contains(b) {
                    wrong.push(format!("{path} uses {b}"));
                }
            }
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}

#[test]
fn the_wall_clock_is_read_in_one_place() {
    // Time is read once per request (`engine::unix_now`, via `Ctx::now`) and passed down, so a
    // flow and its store calls agree on "now". The exceptions and why:
    let allowed = [
        // `engine::unix_now`: the one reading.
        "engine/src/lib.rs",
        // The load generator stamps its reports; it is a separate program.
        "bench/src/util.rs",
        // Checks tokens with the jsonwebtoken crate, which compares `exp` with the wall clock.
        "auth/src/tokens.rs",
        // Test plumbing: the TOTP codes tests type in are those of the tests' own clock.
        "testkit/src/totp.rs",
    ];
    let mut wrong = Vec::new();
    for (path, text) in workspace_sources() {
        // Tests may read the clock (they check what the server stamped).
        if path.contains("/tests/") {
            continue;
        }
        if text.contains("SystemTime::now") && !allowed.contains(&path.as_str()) {
            wrong.push(path);
        }
    }
    assert!(
        wrong.is_empty(),
        "SystemTime::now outside the clock: {wrong:#?}"
    );
}

#[test]
fn unsafe_code_lives_where_memory_is_mapped() {
    // The workspace denies `unsafe_code`; the Argon2 arena (mmap, madvise) allows it locally,
    // and so does the one call of `hj serve` named below.
    let allowed = [
        "passhash/src/arena.rs",
        // Counts the arena's resident pages with mincore.
        "passhash/src/tests.rs",
        // `hj serve` advises mimalloc's heap region MADV_NOHUGEPAGE, once at start, so that
        // only the Argon2 arenas get huge pages (docs/ARCHITECTURE.md, "Decisions").
        "hj/src/main.rs",
    ];
    let mut wrong = Vec::new();
    for (path, text) in workspace_sources() {
        if path == "hj/tests/architecture.rs" {
            continue;
        }
        if text.contains("allow(unsafe_code)") && !allowed.contains(&path.as_str()) {
            wrong.push(path);
        }
    }
    assert!(
        wrong.is_empty(),
        "unsafe code outside the arena: {wrong:#?}"
    );
}

#[test]
fn no_source_file_is_over_800_lines() {
    // A file that grows past this has seams: split it along them (issue 13 split the last ten).
    let mut wrong = Vec::new();
    for (path, text) in workspace_sources() {
        let lines = text.lines().count();
        if lines > 800 {
            wrong.push(format!("{path}: {lines} lines"));
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}
