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
const CRATES: [(&str, &str); 9] = [
    ("passhash", "hellojohn-passhash"),
    ("protocol", "hellojohn-protocol"),
    ("store", "hellojohn-store"),
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

/// Cargo's resolved dependency graph for this host (`cargo metadata`): for each package, its
/// direct dependencies with the kinds of each edge (`normal`, `dev`, `build`). What Cargo
/// resolves, not what a manifest says: a dependency renamed, pulled in by a feature or through
/// another crate counts too.
struct Graph {
    /// package id -> package name
    names: BTreeMap<String, String>,
    /// package id -> (dependency id, kinds)
    deps: BTreeMap<String, Vec<(String, Vec<String>)>>,
}

impl Graph {
    fn load() -> Graph {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let host = std::process::Command::new("rustc")
            .arg("-vV")
            .output()
            .expect("rustc -vV");
        let host = String::from_utf8_lossy(&host.stdout)
            .lines()
            .find_map(|l| l.strip_prefix("host: ").map(str::to_owned))
            .expect("rustc -vV names the host");
        let out = std::process::Command::new(cargo)
            .args([
                "metadata",
                "--format-version",
                "1",
                "--filter-platform",
                &host,
            ])
            .current_dir(root())
            .output()
            .expect("cargo metadata runs");
        assert!(
            out.status.success(),
            "cargo metadata: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let meta: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
        let mut names = BTreeMap::new();
        for p in meta["packages"].as_array().expect("packages") {
            names.insert(
                p["id"].as_str().expect("id").to_owned(),
                p["name"].as_str().expect("name").to_owned(),
            );
        }
        let mut deps = BTreeMap::new();
        for n in meta["resolve"]["nodes"].as_array().expect("resolve") {
            let edges = n["deps"]
                .as_array()
                .expect("deps")
                .iter()
                .map(|d| {
                    let kinds = d["dep_kinds"]
                        .as_array()
                        .expect("dep_kinds")
                        .iter()
                        .map(|k| k["kind"].as_str().unwrap_or("normal").to_owned())
                        .collect();
                    (d["pkg"].as_str().expect("pkg").to_owned(), kinds)
                })
                .collect();
            deps.insert(n["id"].as_str().expect("id").to_owned(), edges);
        }
        Graph { names, deps }
    }

    fn id(&self, name: &str) -> String {
        let found: Vec<&String> = self
            .names
            .iter()
            .filter(|(_, n)| *n == name)
            .map(|(id, _)| id)
            .collect();
        assert_eq!(found.len(), 1, "one package named {name}: {found:?}");
        found[0].clone()
    }

    /// The names of `package`'s direct dependencies by an edge of `kind`.
    fn direct(&self, package: &str, kind: &str) -> BTreeSet<String> {
        self.deps[&self.id(package)]
            .iter()
            .filter(|(_, kinds)| kinds.iter().any(|k| k == kind))
            .map(|(id, _)| self.names[id].clone())
            .collect()
    }

    /// Every package `package` is built with as a library: its normal dependencies, theirs,
    /// and so on (dev- and build-dependencies are not linked into it).
    fn normal_closure(&self, package: &str) -> BTreeSet<String> {
        let mut seen = BTreeSet::new();
        let mut stack = vec![self.id(package)];
        while let Some(id) = stack.pop() {
            for (dep, kinds) in &self.deps[&id] {
                if kinds.iter().any(|k| k == "normal") && seen.insert(dep.clone()) {
                    stack.push(dep.clone());
                }
            }
        }
        seen.into_iter().map(|id| self.names[&id].clone()).collect()
    }
}

#[test]
fn workspace_crates_depend_only_downward() {
    // Each crate and the workspace crates it may use: a layer sees only the layers below it.
    // `store` is the contract the domain owns; `storage` (the backends) implements it and only
    // the wiring (`engine`, `hj`) picks one.
    let allowed: BTreeMap<&str, &[&str]> = BTreeMap::from([
        ("hellojohn-passhash", &[][..]),
        ("hellojohn-protocol", &[][..]),
        ("hellojohn-store", &[][..]),
        ("hellojohn-storage", &["hellojohn-store"][..]),
        (
            "hellojohn-auth",
            &[
                "hellojohn-passhash",
                "hellojohn-protocol",
                "hellojohn-store",
            ][..],
        ),
        (
            "hellojohn-engine",
            &[
                "hellojohn-auth",
                "hellojohn-passhash",
                "hellojohn-protocol",
                "hellojohn-store",
                "hellojohn-storage",
            ][..],
        ),
        // The load generator talks to a server over HTTP; it shares only the hasher, so that
        // its Argon2 ceiling is measured with the code that serves.
        ("hellojohn-bench", &["hellojohn-passhash"][..]),
        (
            "hj",
            &[
                "hellojohn-auth",
                "hellojohn-passhash",
                "hellojohn-protocol",
                "hellojohn-store",
                "hellojohn-storage",
                "hellojohn-engine",
                "hellojohn-bench",
            ][..],
        ),
        ("hellojohn-testkit", &[][..]),
    ]);
    // Tests may use more: the test plumbing serves any crate, and the key ring's tests run on
    // the embedded store.
    let dev_extra: BTreeMap<&str, &[&str]> =
        BTreeMap::from([("hellojohn-auth", &["hellojohn-storage"][..])]);
    let graph = Graph::load();
    let workspace: BTreeSet<&str> = CRATES.iter().map(|(_, name)| *name).collect();
    let mut wrong = Vec::new();
    for (_, package) in CRATES {
        for kind in ["normal", "dev", "build"] {
            for dep in graph.direct(package, kind) {
                if !workspace.contains(dep.as_str()) {
                    continue;
                }
                let ok = allowed[package].contains(&dep.as_str())
                    || (kind == "dev"
                        && (dep == "hellojohn-testkit"
                            || dev_extra
                                .get(package)
                                .is_some_and(|extra| extra.contains(&dep.as_str()))));
                if !ok {
                    wrong.push(format!("{package} ({kind}) depends on {dep}"));
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
fn no_driver_or_http_crate_in_the_domains_closure() {
    // The domain (`auth`) and the contract it owns (`store`) are built without any database
    // driver, Redis client or HTTP stack, however they would arrive (directly, through a
    // workspace crate, through a third-party crate).
    const FORBIDDEN: [&str; 10] = [
        "rusqlite",
        "libsqlite3-sys",
        "tokio-postgres",
        "postgres-protocol",
        "redis",
        "hyper",
        "hyper-util",
        "reqwest",
        "hellojohn-storage",
        "hellojohn-engine",
    ];
    let graph = Graph::load();
    let mut wrong = Vec::new();
    for package in [
        "hellojohn-auth",
        "hellojohn-store",
        "hellojohn-protocol",
        "hellojohn-passhash",
    ] {
        let closure = graph.normal_closure(package);
        assert!(closure.len() > 3, "{package}: closure of {closure:?}");
        for f in FORBIDDEN {
            if closure.contains(f) {
                wrong.push(format!("{package} is built with {f}"));
            }
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
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
    // Direct dependencies, tests' included (the closure is checked above).
    let graph = Graph::load();
    for kind in ["normal", "dev"] {
        let deps = graph.direct("hellojohn-auth", kind);
        let found: Vec<&&str> = FORBIDDEN.iter().filter(|f| deps.contains(**f)).collect();
        assert!(found.is_empty(), "auth ({kind}) has {found:?}");
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
    // Handlers build wire types (protocol), the contract's metadata wraps a JSON object (store)
    // and the backends write JSON columns (storage); the engine and the domain see neither JSON
    // text nor JSON values. The load generator is a
    // separate program that writes its own reports. Tests may use JSON to check bodies.
    let may = ["protocol/", "store/", "storage/", "bench/"];
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
        "JSON outside protocol/, store/ and storage/: {wrong:#?}"
    );
    let graph = Graph::load();
    for package in ["hellojohn-auth", "hellojohn-engine", "hj"] {
        let deps = graph.direct(package, "normal");
        assert!(
            !deps.contains("serde_json") && !deps.contains("simd-json"),
            "{package} depends on a JSON crate"
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
