//! `hj client` as an operator runs it: create, update, rotate-secret, delete and list, the
//! checks that refuse bad input before anything is written, and the client `hj serve`
//! bootstraps on a fresh embedded store.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::Duration;
use store::prelude::*;

use storage::sqlite::SqliteStore;
use store::ClientType;
use support::{hj, signal, start_server, temp_dir, wait_exit};

/// Runs `hj` on the embedded store in `dir`: exit code, stdout, stderr.
fn run_in(dir: &Path, args: &[&str]) -> (Option<i32>, String, String) {
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

/// The value of the `client_secret=` line; panics unless there is exactly one.
fn secret_of(out: &str) -> String {
    let secrets: Vec<&str> = out
        .lines()
        .filter_map(|l| l.strip_prefix("client_secret="))
        .collect();
    assert_eq!(secrets.len(), 1, "{out}");
    assert_eq!(secrets[0].len(), 43, "{out}");
    secrets[0].to_string()
}

/// The line of `client_id` in `hj client list`, split into its columns.
fn listed(dir: &Path, client_id: &str) -> Option<Vec<String>> {
    let (code, out, err) = run_in(dir, &["client", "list"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        out.starts_with("TENANT\tCLIENT_ID\tNAME\tSCOPES\tTYPE\tGRANT_TYPES\tREDIRECT_URIS\t"),
        "{out}"
    );
    out.lines()
        .map(|l| l.split('\t').map(String::from).collect::<Vec<_>>())
        .find(|cols| cols.get(1).map(String::as_str) == Some(client_id))
        .inspect(|cols| assert_eq!(cols.len(), 16, "{cols:?}"))
}

/// The client as stored (the CLI never prints the secret's hash).
async fn stored(dir: &Path, client_id: &str) -> Option<store::Client> {
    let store = SqliteStore::open(&dir.join("hellojohn.db"), 1).unwrap();
    let tenant = store.find_tenant("acme").await.unwrap().unwrap();
    store.find_client(tenant.id, client_id).await.unwrap()
}

fn acme(tag: &str) -> std::path::PathBuf {
    let dir = temp_dir(tag);
    let (code, _, err) = run_in(&dir, &["tenant", "create", "--slug", "acme"]);
    assert_eq!(code, Some(0), "{err}");
    dir
}

#[tokio::test]
async fn create_update_rotate_and_delete() {
    let dir = acme("clients");
    let run = |args: &[&str]| run_in(&dir, args);

    // A public SPA: no secret printed; the first four columns are those of before.
    let (code, out, err) = run(&[
        "client",
        "create",
        "--tenant",
        "acme",
        "--client-id",
        "spa",
        "--redirect-uri",
        "https://app.acme.test/callback",
        "--redirect-uri",
        "http://localhost:5173/callback",
        "--post-logout-redirect-uri",
        "https://app.acme.test",
        "--allowed-origin",
        "https://App.Acme.test/",
        "--id-token-ttl",
        "300",
        "--require-email-verification",
        "true",
    ]);
    assert_eq!(code, Some(0), "{err}");
    assert!(!out.contains("client_secret"), "{out}");
    assert!(
        out.starts_with("acme\tspa\tspa\topenid email profile\tpublic\t"),
        "{out}"
    );
    assert_eq!(
        listed(&dir, "spa").unwrap(),
        [
            "acme",
            "spa",
            "spa",
            "openid email profile",
            "public",
            "authorization_code refresh_token",
            "https://app.acme.test/callback http://localhost:5173/callback",
            "https://app.acme.test",
            "https://app.acme.test",
            "true",
            "-",
            "-",
            "300",
            "-",
            "-",
            "false",
        ]
    );

    // A confidential server: its secret once, on its own line; only the hash is stored.
    let (code, out, err) = run(&[
        "client",
        "create",
        "--tenant",
        "acme",
        "--client-id",
        "api",
        "--name",
        "Back office",
        "--confidential",
        "--grant-types",
        "client_credentials",
        "--scopes",
        "orders:read",
        "--access-token-ttl",
        "60",
    ]);
    assert_eq!(code, Some(0), "{err}");
    let first = secret_of(&out);
    let api = stored(&dir, "api").await.unwrap();
    assert_eq!(api.client_type, ClientType::Confidential);
    assert_eq!(api.grant_types, ["client_credentials"]);
    let hash = api.secret_hash.clone().unwrap();
    assert!(auth::client_secret::verify(&first, hash.as_str()));
    assert!(!hash.as_str().contains(&first));
    assert_eq!(
        listed(&dir, "api").unwrap()[2..6],
        [
            "Back office",
            "orders:read",
            "confidential",
            "client_credentials"
        ]
    );

    // rotate-secret: a new secret; the old one stops verifying.
    let (code, out, err) = run(&[
        "client",
        "rotate-secret",
        "--tenant",
        "acme",
        "--client-id",
        "api",
    ]);
    assert_eq!(code, Some(0), "{err}");
    let second = secret_of(&out);
    assert_eq!(out.lines().count(), 1, "{out}");
    assert_ne!(first, second);
    let hash = stored(&dir, "api").await.unwrap().secret_hash.unwrap();
    assert!(auth::client_secret::verify(&second, hash.as_str()));
    assert!(!auth::client_secret::verify(&first, hash.as_str()));
    let (code, _, err) = run(&[
        "client",
        "rotate-secret",
        "--tenant",
        "acme",
        "--client-id",
        "spa",
    ]);
    assert_eq!(code, Some(1));
    assert!(err.contains("public"), "{err}");

    // update: a list option replaces the list, --clear-... empties it, the rest is kept.
    let (code, out, err) = run(&[
        "client",
        "update",
        "--tenant",
        "acme",
        "--client-id",
        "spa",
        "--redirect-uri",
        "com.acme.app:/oauth2redirect",
        "--clear-allowed-origins",
        "--id-token-ttl",
        "default",
        "--refresh-token-ttl",
        "86400",
        "--name",
        "Acme SPA",
    ]);
    assert_eq!(code, Some(0), "{err}");
    assert!(!out.contains("client_secret"), "{out}");
    let cols = listed(&dir, "spa").unwrap();
    assert_eq!(cols[2], "Acme SPA");
    assert_eq!(cols[6], "com.acme.app:/oauth2redirect");
    assert_eq!(cols[7], "https://app.acme.test");
    assert_eq!(cols[8], "-");
    assert_eq!(cols[9..], ["true", "-", "86400", "-", "-", "-", "false"]);

    // Signature algorithms: asked for, back to the server's with `default`, nothing else.
    let alg = |extra: &[&str]| {
        let mut args = vec!["client", "update", "--tenant", "acme", "--client-id", "spa"];
        args.extend_from_slice(extra);
        run(&args)
    };
    let (code, _, err) = alg(&["--id-token-alg", "EdDSA", "--access-token-alg", "RS256"]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(listed(&dir, "spa").unwrap()[13..15], ["EdDSA", "RS256"]);
    let (code, _, err) = alg(&["--id-token-alg", "default"]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(listed(&dir, "spa").unwrap()[13..15], ["-", "RS256"]);
    let (code, _, err) = alg(&["--access-token-alg", "HS256"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("HS256"), "{err}");
    assert_eq!(listed(&dir, "spa").unwrap()[13..15], ["-", "RS256"]);

    // Turning a public client confidential prints its secret; back to public drops it.
    let update_spa = |extra: &[&str]| {
        let mut args = vec!["client", "update", "--tenant", "acme", "--client-id", "spa"];
        args.extend_from_slice(extra);
        run(&args)
    };
    let (code, out, err) = update_spa(&["--confidential"]);
    assert_eq!(code, Some(0), "{err}");
    let spa_secret = secret_of(&out);
    let spa = stored(&dir, "spa").await.unwrap();
    assert_eq!(spa.client_type, ClientType::Confidential);
    assert!(auth::client_secret::verify(
        &spa_secret,
        spa.secret_hash.unwrap().as_str()
    ));
    // Already confidential: no new secret (rotate-secret is for that).
    let (code, out, err) = update_spa(&["--confidential"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(!out.contains("client_secret"), "{out}");
    let (code, _, err) = update_spa(&["--public"]);
    assert_eq!(code, Some(0), "{err}");
    let spa = stored(&dir, "spa").await.unwrap();
    assert_eq!(
        (spa.client_type, spa.secret_hash),
        (ClientType::Public, None)
    );

    // Nothing to change, or both --public and --confidential: refused.
    let (code, _, err) = update_spa(&[]);
    assert_eq!(code, Some(1));
    assert!(err.contains("nothing to change"), "{err}");
    let (code, _, _) = update_spa(&["--public", "--confidential"]);
    assert_eq!(code, Some(2), "clap refuses conflicting flags");
    let (code, _, err) = run(&[
        "client",
        "update",
        "--tenant",
        "acme",
        "--client-id",
        "nope",
        "--name",
        "x",
    ]);
    assert_eq!(code, Some(1));
    assert!(err.contains("no client \"nope\""), "{err}");

    // delete: gone from the list; a second delete is an error.
    let (code, out, err) = run(&["client", "delete", "--tenant", "acme", "--client-id", "api"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("deleted client \"api\""), "{out}");
    assert!(listed(&dir, "api").is_none());
    assert!(stored(&dir, "api").await.is_none());
    let (code, _, err) = run(&["client", "delete", "--tenant", "acme", "--client-id", "api"]);
    assert_eq!(code, Some(1));
    assert!(err.contains("no client"), "{err}");
    assert!(listed(&dir, "spa").is_some());
    let _ = std::fs::remove_dir_all(&dir);
}

/// Bad input is refused with a message and a non-zero exit, and nothing is written.
#[tokio::test]
async fn bad_settings_are_refused_and_nothing_is_written() {
    let dir = acme("clients-bad");
    let run = |args: &[&str]| run_in(&dir, args);
    let (code, _, err) = run(&["client", "create", "--tenant", "acme", "--client-id", "web"]);
    assert_eq!(code, Some(0), "{err}");
    let before = stored(&dir, "web").await.unwrap();

    let create = |extra: &[&str]| {
        let mut args = vec![
            "client",
            "create",
            "--tenant",
            "acme",
            "--client-id",
            "other",
        ];
        args.extend_from_slice(extra);
        run(&args)
    };
    let update = |extra: &[&str]| {
        let mut args = vec!["client", "update", "--tenant", "acme", "--client-id", "web"];
        args.extend_from_slice(extra);
        run(&args)
    };
    for (args, why) in [
        (&["--redirect-uri", "http://app.acme.test/cb"][..], "https"),
        (
            &["--redirect-uri", "https://app.acme.test/cb#x"],
            "fragment",
        ),
        (&["--redirect-uri", "/callback"], "absolute"),
        (&["--redirect-uri", "javascript:alert(1)"], "reverse-domain"),
        (
            &["--post-logout-redirect-uri", "http://evil.test/"],
            "https",
        ),
        (
            &["--allowed-origin", "https://app.acme.test/path"],
            "no path",
        ),
        (&["--allowed-origin", "app.acme.test"], "scheme://host"),
        (&["--grant-types", "password"], "unknown grant type"),
        (
            &["--grant-types", "implicit,refresh_token"],
            "unknown grant type",
        ),
        (&["--grant-types", "client_credentials"], "confidential"),
        (&["--scopes", "a\"b"], "scope"),
        (&["--name", "two\tcolumns"], "control"),
    ] {
        for (cmd, (code, out, err)) in [("create", create(args)), ("update", update(args))] {
            assert_eq!(code, Some(1), "{cmd} {args:?}: {out}");
            assert!(err.contains(why), "{cmd} {args:?}: {err}");
            assert!(!out.contains("client_secret"), "{out}");
        }
    }
    for args in [
        &["--access-token-ttl", "0"][..],
        &["--id-token-ttl", "soon"],
        &["--require-email-verification", "maybe"],
    ] {
        assert_eq!(create(args).0, Some(2), "{args:?}");
        assert_eq!(update(args).0, Some(2), "{args:?}");
    }
    // A confidential client with client_credentials cannot go public without dropping it.
    let (code, out, err) = run(&[
        "client",
        "create",
        "--tenant",
        "acme",
        "--client-id",
        "m2m",
        "--confidential",
        "--grant-types",
        "client_credentials",
    ]);
    assert_eq!(code, Some(0), "{err}");
    secret_of(&out);
    let (code, _, err) = run(&[
        "client",
        "update",
        "--tenant",
        "acme",
        "--client-id",
        "m2m",
        "--public",
    ]);
    assert_eq!(code, Some(1));
    assert!(err.contains("confidential"), "{err}");
    assert_eq!(
        stored(&dir, "m2m").await.unwrap().client_type,
        ClientType::Confidential
    );

    assert_eq!(stored(&dir, "web").await, Some(before));
    assert!(stored(&dir, "other").await.is_none());
    let _ = std::fs::remove_dir_all(&dir);
}

/// One HTTP/1.1 request to `addr`: status and JSON body.
fn http(
    addr: std::net::SocketAddr,
    path: &str,
    body: &serde_json::Value,
) -> (u16, serde_json::Value) {
    let body = body.to_string();
    let mut conn = TcpStream::connect(addr).unwrap();
    write!(
        conn,
        "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
         Connection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut resp = String::new();
    conn.read_to_string(&mut resp).unwrap();
    let status = resp[9..12].parse().unwrap();
    let (_, text) = resp.split_once("\r\n\r\n").unwrap();
    (status, serde_json::from_str(text).unwrap_or_default())
}

/// `hj serve` on a fresh embedded store creates client `local-app` for the origins of
/// HELLOJOHN_CORS_ORIGINS, with the JS SDK's defaults; deleting the client ends its refresh
/// tokens, even once a client with the same id is created again.
#[test]
fn bootstrap_client_gets_the_cors_origins_and_delete_ends_its_tokens() {
    let mut srv = start_server(&[(
        "HELLOJOHN_CORS_ORIGINS",
        "https://app.example.com/, http://localhost:5173",
    )]);
    let dir = srv.dir.clone();
    let cols = listed(&dir, "local-app").expect("the bootstrap client");
    assert_eq!(
        cols,
        [
            "local",
            "local-app",
            "Local app",
            "openid email profile",
            "public",
            "authorization_code refresh_token",
            "https://app.example.com/callback http://localhost:5173/callback",
            "https://app.example.com http://localhost:5173",
            "https://app.example.com http://localhost:5173",
            "false",
            "-",
            "-",
            "-",
            "-",
            "-",
            "false",
        ]
    );

    let (status, reg) = http(
        srv.addr,
        "/v2/auth/register",
        &serde_json::json!({
            "tenant_id": "local", "client_id": "local-app",
            "email": "ada@example.com", "password": "Correct-Horse-42",
        }),
    );
    assert_eq!(status, 200, "{reg}");
    let refresh = |token: &serde_json::Value| {
        http(
            srv.addr,
            "/v2/auth/refresh",
            &serde_json::json!({ "client_id": "local-app", "refresh_token": token }),
        )
    };
    let (status, refreshed) = refresh(&reg["refresh_token"]);
    assert_eq!(status, 200, "{refreshed}");

    let (code, _, err) = run_in(
        &dir,
        &[
            "client",
            "delete",
            "--tenant",
            "local",
            "--client-id",
            "local-app",
        ],
    );
    assert_eq!(code, Some(0), "{err}");
    let (status, body) = refresh(&refreshed["refresh_token"]);
    assert_eq!(status, 401, "{body}");
    let (code, _, err) = run_in(
        &dir,
        &[
            "client",
            "create",
            "--tenant",
            "local",
            "--client-id",
            "local-app",
        ],
    );
    assert_eq!(code, Some(0), "{err}");
    let (status, body) = refresh(&refreshed["refresh_token"]);
    assert_eq!(status, 401, "{body}");

    signal(&srv.child, 15);
    assert_eq!(wait_exit(&mut srv.child, Duration::from_secs(15)), Some(0));
}

#[tokio::test]
async fn third_party_clients_are_marked_and_can_be_made_first_party() {
    let dir = acme("third-party");
    let run = |args: &[&str]| run_in(&dir, args);
    let (code, _, err) = run(&[
        "client",
        "create",
        "--tenant",
        "acme",
        "--client-id",
        "partner",
        "--redirect-uri",
        "https://partner.test/cb",
        "--third-party",
    ]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(listed(&dir, "partner").unwrap()[15], "true");
    assert!(stored(&dir, "partner").await.unwrap().third_party);
    // Other changes leave it as it is; --first-party turns it back.
    let (code, _, err) = run(&[
        "client",
        "update",
        "--tenant",
        "acme",
        "--client-id",
        "partner",
        "--name",
        "Partner",
    ]);
    assert_eq!(code, Some(0), "{err}");
    assert!(stored(&dir, "partner").await.unwrap().third_party);
    let (code, _, err) = run(&[
        "client",
        "update",
        "--tenant",
        "acme",
        "--client-id",
        "partner",
        "--first-party",
    ]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(listed(&dir, "partner").unwrap()[15], "false");
    let (code, _, err) = run(&[
        "client",
        "update",
        "--tenant",
        "acme",
        "--client-id",
        "partner",
        "--third-party",
    ]);
    assert_eq!(code, Some(0), "{err}");
    assert!(stored(&dir, "partner").await.unwrap().third_party);
    // Both at once is refused.
    let (code, _, _) = run(&[
        "client",
        "update",
        "--tenant",
        "acme",
        "--client-id",
        "partner",
        "--third-party",
        "--first-party",
    ]);
    assert_ne!(code, Some(0));
}
