//! `hj tenant create|update --issuer-mode` and `hj keys list|rotate --tenant` as an operator
//! runs them, and what a server on that store then publishes (issue 24).

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};

use support::{hj, start_server, temp_dir};

const BASE: &str = "http://id.test";

fn run(dir: &std::path::Path, args: &[&str]) -> (Option<i32>, String, String) {
    let out = hj()
        .args(args)
        .env("HELLOJOHN_DATA_DIR", dir)
        .env("HELLOJOHN_LOG", "error")
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn get(addr: SocketAddr, path: &str) -> serde_json::Value {
    let mut conn = TcpStream::connect(addr).unwrap();
    write!(
        conn,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut resp = String::new();
    conn.read_to_string(&mut resp).unwrap();
    assert!(resp.starts_with("HTTP/1.1 200"), "{path}: {resp}");
    let (_, body) = resp.split_once("\r\n\r\n").unwrap();
    serde_json::from_str(body).unwrap()
}

fn issuer_of(addr: SocketAddr, slug: &str) -> String {
    let doc = get(addr, &format!("/t/{slug}/.well-known/openid-configuration"));
    doc["issuer"].as_str().unwrap().to_string()
}

fn jwks_kids(addr: SocketAddr, path: &str) -> Vec<String> {
    let mut kids: Vec<String> = get(addr, path)["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_string())
        .collect();
    kids.sort();
    kids
}

/// The kids `hj keys list` prints (sorted), with `args` (`--tenant SLUG`).
fn listed_kids(dir: &std::path::Path, args: &[&str]) -> Vec<String> {
    let (code, out, err) = run(dir, &[&["keys", "list"], args].concat());
    assert_eq!(code, Some(0), "{err}");
    let mut kids: Vec<String> = out
        .lines()
        .map(|l| l.split('\t').next().unwrap().to_string())
        .collect();
    kids.sort();
    kids
}

fn serve(dir: &std::path::Path) -> support::Server {
    start_server(&[
        ("HELLOJOHN_DATA_DIR", dir.to_str().unwrap()),
        ("HELLOJOHN_BASE_URL", BASE),
    ])
}

#[test]
fn issuer_mode_is_set_at_creation_and_switched_with_tenant_update() {
    let dir = temp_dir("issuer-mode");
    assert_eq!(run(&dir, &["migrate"]).0, Some(0));
    let (code, out, err) = run(
        &dir,
        &[
            "tenant",
            "create",
            "--slug",
            "acme",
            "--issuer-mode",
            "path",
        ],
    );
    assert_eq!(code, Some(0), "{err}");
    assert!(out.ends_with("\tacme\tacme\tpath\n"), "{out}");
    let (code, out, _) = run(&dir, &["tenant", "create", "--slug", "beta"]);
    assert_eq!(code, Some(0));
    assert!(out.ends_with("\tbeta\tbeta\tglobal\n"), "{out}");
    let (code, _, err) = run(
        &dir,
        &[
            "tenant",
            "create",
            "--slug",
            "gamma",
            "--issuer-mode",
            "tenant",
        ],
    );
    assert_eq!(code, Some(2), "clap refuses the value: {err}");

    // Entering path mode made acme's own keys, one per algorithm; the global list is apart.
    let (code, out, _) = run(&dir, &["keys", "list", "--tenant", "acme"]);
    assert_eq!(code, Some(0));
    let mut rows: Vec<Vec<&str>> = out.lines().map(|l| l.split('\t').collect()).collect();
    rows.sort_by_key(|r| r[1]);
    assert_eq!(rows.len(), 2, "{out}");
    assert_eq!((rows[0][1], rows[1][1]), ("EdDSA", "RS256"));
    assert!(rows.iter().all(|r| r[5] == "active"), "{out}");
    assert!(listed_kids(&dir, &[]).is_empty());
    assert!(listed_kids(&dir, &["--tenant", "beta"]).is_empty());

    // What is refused, and why.
    for (args, why) in [
        (
            &[
                "tenant",
                "update",
                "--slug",
                "nope",
                "--issuer-mode",
                "path",
            ][..],
            "no tenant",
        ),
        (
            &["tenant", "update", "--slug", "acme"][..],
            "nothing to change",
        ),
        (&["keys", "list", "--tenant", "nope"][..], "no tenant"),
        (
            &["keys", "rotate", "--tenant", "beta"][..],
            "issuer mode global",
        ),
    ] {
        let (code, _, err) = run(&dir, args);
        assert_eq!(code, Some(1), "{args:?}");
        assert!(err.contains(why), "{args:?}: {err}");
    }
    let (_, out, _) = run(&dir, &["tenant", "list"]);
    assert!(out.starts_with("ID\tSLUG\tNAME\tISSUER_MODE\n"), "{out}");
    assert!(out.contains("\tacme\tacme\tpath\n") && out.contains("\tbeta\tbeta\tglobal\n"));

    // A server on that store: acme's own issuer and keys, beta the server's.
    let acme_keys = listed_kids(&dir, &["--tenant", "acme"]);
    let server = serve(&dir);
    assert_eq!(issuer_of(server.addr, "acme"), format!("{BASE}/t/acme"));
    assert_eq!(issuer_of(server.addr, "beta"), BASE);
    assert_eq!(
        jwks_kids(server.addr, "/.well-known/jwks/acme.json"),
        acme_keys
    );
    let global = jwks_kids(server.addr, "/.well-known/jwks.json");
    assert_eq!(
        global,
        listed_kids(&dir, &[]),
        "the server made the global keys"
    );
    assert_eq!(
        jwks_kids(server.addr, "/.well-known/jwks/beta.json"),
        global
    );
    drop(server);

    // Switch both; rotate beta's new keys.
    let (code, out, err) = run(
        &dir,
        &[
            "tenant",
            "update",
            "--slug",
            "acme",
            "--issuer-mode",
            "global",
        ],
    );
    assert_eq!(code, Some(0), "{err}");
    assert!(out.ends_with("\tacme\tacme\tglobal\n"), "{out}");
    let (code, out, err) = run(
        &dir,
        &[
            "tenant",
            "update",
            "--slug",
            "beta",
            "--issuer-mode",
            "path",
        ],
    );
    assert_eq!(code, Some(0), "{err}");
    assert!(out.ends_with("\tbeta\tbeta\tpath\n"), "{out}");
    let (code, out, err) = run(
        &dir,
        &["keys", "rotate", "--tenant", "beta", "--alg", "EdDSA"],
    );
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(out.lines().count(), 1, "{out}");
    assert!(
        out.contains("\tEdDSA\tsigns from ") && out.ends_with("\t1 key(s) retire then\n"),
        "{out}"
    );
    let beta_keys = listed_kids(&dir, &["--tenant", "beta"]);
    assert_eq!(beta_keys.len(), 3);
    assert_eq!(listed_kids(&dir, &[]), global, "global keys untouched");

    let server = serve(&dir);
    assert_eq!(issuer_of(server.addr, "acme"), BASE);
    assert_eq!(issuer_of(server.addr, "beta"), format!("{BASE}/t/beta"));
    assert_eq!(
        jwks_kids(server.addr, "/.well-known/jwks/acme.json"),
        global
    );
    assert_eq!(
        jwks_kids(server.addr, "/.well-known/jwks/beta.json"),
        beta_keys
    );
    assert_eq!(jwks_kids(server.addr, "/.well-known/jwks.json"), global);
}
