//! The `hj` binary as an operator runs it: exit codes, help, signals.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use support::{hj, signal, start_server, temp_dir, wait_exit};

#[test]
fn config_errors_are_all_reported_then_exit_64() {
    let out = hj()
        .arg("serve")
        .env("HELLOJOHN_READ_TIMEOUT", "soon")
        .env("HELLOJOHN_DB_MAX_OPEN_CONNS", "-3")
        .env("HELLOJOHN_LOG_FORMAT", "xml")
        .env("HELLOJOHN_REDIS_URL", "http://cache:6379")
        .env("HELLOJOHN_NOT_A_SETTING", "1")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    let err = String::from_utf8_lossy(&out.stderr);
    for key in [
        "HELLOJOHN_READ_TIMEOUT",
        "HELLOJOHN_DB_MAX_OPEN_CONNS",
        "HELLOJOHN_LOG_FORMAT",
        "HELLOJOHN_REDIS_URL",
        "HELLOJOHN_NOT_A_SETTING",
    ] {
        assert!(err.contains(key), "{key} missing from:\n{err}");
    }
    // An unknown key is no problem (a newer release's setting survives a rollback), but it is
    // shown with the problems, with its typo hint.
    assert!(err.contains("4 problem(s)"), "{err}");
    assert!(
        err.contains("warning: HELLOJOHN_NOT_A_SETTING: unknown setting, ignored"),
        "{err}"
    );
}

#[test]
fn version_names_the_release_and_the_commit() {
    let out = hj().arg("--version").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.starts_with(&format!("hj {} (commit ", env!("CARGO_PKG_VERSION"))),
        "{text}"
    );
    // A release the upgrade test and `hj migrate status` know.
    assert!(
        storage::releases::RELEASES
            .iter()
            .any(|r| r.version == env!("CARGO_PKG_VERSION")),
        "{} is not in storage::releases::RELEASES",
        env!("CARGO_PKG_VERSION")
    );
}

#[test]
fn a_flag_overrides_its_variable_and_is_validated_too() {
    let out = hj()
        .args(["serve", "--idle-timeout", "forever"])
        .env("HELLOJOHN_IDLE_TIMEOUT", "5s")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&out.stderr).contains("HELLOJOHN_IDLE_TIMEOUT"));
}

#[test]
fn serve_help_lists_every_setting_with_env_and_default() {
    let out = hj().args(["serve", "--help"]).output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for s in engine::config::SETTINGS {
        assert!(
            help.contains(&format!("--{}", s.flag)),
            "--{} missing",
            s.flag
        );
        assert!(
            help.contains(&format!("[env: {}]", s.env)),
            "{} missing",
            s.env
        );
        if !s.default.is_empty() {
            assert!(
                help.contains(&format!("[default: {}]", s.default)),
                "default of {} missing",
                s.env
            );
        }
    }
}

#[test]
fn sigterm_finishes_in_flight_request_refuses_new_connections_and_exits_0() {
    let mut srv = start_server(&[("HELLOJOHN_DRAIN_TIMEOUT", "20s")]);
    let body = br#"{"tenant_id":"local","client_id":"local-app","email":"nobody@example.com","password":"Wrong-password-1"}"#;
    // A slow client: headers and half the body now, the rest after SIGTERM.
    let mut slow = TcpStream::connect(srv.addr).unwrap();
    write!(
        slow,
        "POST /v2/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .unwrap();
    slow.write_all(&body[..20]).unwrap();
    std::thread::sleep(Duration::from_millis(200));

    signal(&srv.child, 15);
    // Listeners close (no shutdown delay configured): new connections are refused.
    let start = Instant::now();
    loop {
        match TcpStream::connect_timeout(&srv.addr, Duration::from_millis(200)) {
            Err(_) => break,
            Ok(_) => {
                assert!(
                    start.elapsed() < Duration::from_secs(5),
                    "still accepting connections"
                );
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
    assert!(
        srv.child.try_wait().unwrap().is_none(),
        "exited before the in-flight request finished"
    );

    // The in-flight request completes with a real answer.
    slow.write_all(&body[20..]).unwrap();
    slow.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut resp = Vec::new();
    let _ = slow.read_to_end(&mut resp);
    let text = String::from_utf8_lossy(&resp);
    assert!(text.starts_with("HTTP/1.1 401"), "{text}");
    assert!(text.contains("INVALID_CREDENTIALS"), "{text}");

    assert_eq!(wait_exit(&mut srv.child, Duration::from_secs(15)), Some(0));
}

#[test]
fn sigterm_with_idle_server_exits_0_quickly() {
    let mut srv = start_server(&[]);
    let mut s = TcpStream::connect(srv.addr).unwrap();
    s.write_all(b"GET /ping HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut buf = [0u8; 256];
    let n = s.read(&mut buf).unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
    // An idle keep-alive connection does not hold the shutdown up.
    signal(&srv.child, 15);
    assert_eq!(wait_exit(&mut srv.child, Duration::from_secs(10)), Some(0));
}

#[test]
fn tenant_and_client_administration_on_the_embedded_store() {
    let dir = temp_dir("admin");
    let run = |args: &[&str]| {
        let out = hj()
            .args(args)
            .env("HELLOJOHN_DATA_DIR", &dir)
            .env("HELLOJOHN_LOG", "error")
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, out, _) = run(&["migrate"]);
    assert_eq!(code, Some(0));
    // Every migration from the first (later ones may follow 5).
    assert!(out.contains("applied migrations [1, 2, 3, 4, 5"), "{out}");
    let (code, out, _) = run(&["migrate", "status"]);
    assert_eq!(code, Some(0));
    assert!(out.contains("pending: []"), "{out}");
    // The question before a rollback: 0.1.0 refuses the data later releases write.
    assert!(
        out.contains(&format!(
            "releases that can run on this schema: {}",
            storage::releases::FIRST_TOLERANT
        )),
        "{out}"
    );
    assert!(out.contains("cannot run on it: 0.1.0 ("), "{out}");

    let (code, out, _) = run(&["tenant", "create", "--slug", "acme", "--name", "Acme Inc"]);
    assert_eq!(code, Some(0));
    assert!(out.contains("\tacme\tAcme Inc"), "{out}");
    let (code, _, err) = run(&["tenant", "create", "--slug", "acme"]);
    assert_eq!(code, Some(1));
    assert!(err.contains("already exists"), "{err}");
    let (code, _, err) = run(&["tenant", "create", "--slug", "Not Valid"]);
    assert_eq!(code, Some(1));
    assert!(err.contains("slug"), "{err}");

    let (code, _, _) = run(&[
        "client",
        "create",
        "--tenant",
        "acme",
        "--client-id",
        "web",
        "--scopes",
        "openid,email",
    ]);
    assert_eq!(code, Some(0));
    let (code, _, err) = run(&["client", "create", "--tenant", "nope", "--client-id", "web"]);
    assert_eq!(code, Some(1));
    assert!(err.contains("no tenant"), "{err}");
    let (code, out, _) = run(&["client", "list", "--tenant", "acme"]);
    assert_eq!(code, Some(0));
    assert!(out.contains("acme\tweb\tweb\topenid email"), "{out}");
    let (code, out, _) = run(&["tenant", "list"]);
    assert_eq!(code, Some(0));
    assert_eq!(out.lines().count(), 2, "{out}");
}

/// `hj webhook create` refuses internal targets at once, in every form that reaches one:
/// IPv4 embedded in IPv6, special-purpose ranges, numeric hosts, localhost names.
#[test]
fn webhook_create_refuses_internal_targets_in_every_form() {
    let dir = temp_dir("webhook-ssrf");
    let run = |args: &[&str]| {
        let out = hj()
            .args(args)
            .env("HELLOJOHN_DATA_DIR", &dir)
            .env("HELLOJOHN_LOG", "error")
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, _, err) = run(&["tenant", "create", "--slug", "acme"]);
    assert_eq!(code, Some(0), "{err}");
    for url in [
        "http://127.0.0.1/hook",
        "http://[::127.0.0.1]/hook",
        "http://[::ffff:169.254.169.254]/hook",
        "http://[64:ff9b::7f00:1]/hook",
        "http://[2002:7f00:1::1]/hook",
        "http://[fec0::1]/hook",
        "http://192.0.0.1/hook",
        "http://198.18.0.1/hook",
        "http://2130706433/hook",
        "http://127.1:8080/hook",
        "https://localhost/hook",
    ] {
        let (code, _, err) = run(&[
            "webhook",
            "create",
            "--tenant",
            "acme",
            "--url",
            url,
            "--events",
            "user.register",
        ]);
        assert_eq!(code, Some(1), "{url}: {err}");
        assert!(
            err.contains("HELLOJOHN_WEBHOOK_ALLOW_PRIVATE"),
            "{url}: {err}"
        );
    }
    let (code, out, _) = run(&["webhook", "list"]);
    assert_eq!(code, Some(0));
    assert_eq!(
        out.lines().count(),
        1,
        "only the header: nothing was created: {out}"
    );
}

/// One HTTP/1.1 request to `addr` (the connection closed after it): status and JSON body
/// (`Null` when empty).
fn http(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    bearer: Option<&str>,
    body: Option<&serde_json::Value>,
) -> (u16, serde_json::Value) {
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let auth = bearer
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let mut conn = TcpStream::connect(addr).unwrap();
    write!(
        conn,
        "{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n{auth}\
         Connection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut resp = String::new();
    conn.read_to_string(&mut resp).unwrap();
    let status = resp[9..12].parse().unwrap();
    let (_, text) = resp.split_once("\r\n\r\n").unwrap();
    let json = if text.is_empty() {
        serde_json::Value::Null
    } else {
        serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {resp}"))
    };
    (status, json)
}

/// `hj user` against the store of a running `hj serve`: a sign-up's custom fields are user
/// metadata; app metadata set by the CLI is in the next token; a disabled user can neither
/// refresh nor sign in, and their access token stops working within the user cache's TTL.
#[test]
fn user_commands_show_set_app_metadata_disable_and_enable() {
    let srv = start_server(&[]);
    let run = |args: &[&str]| {
        let out = hj()
            .args(args)
            .env("HELLOJOHN_DATA_DIR", &srv.dir)
            .env("HELLOJOHN_LOG", "error")
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let creds = serde_json::json!({
        "tenant_id": "local", "client_id": "local-app",
        "email": "ada@example.com", "password": "Correct-Horse-42",
    });
    let mut register = creds.clone();
    register["custom_fields"] = serde_json::json!({ "role": "admin" });
    let (status, reg) = http(srv.addr, "POST", "/v2/auth/register", None, Some(&register));
    assert_eq!(status, 200, "{reg}");
    let user_id = reg["user_id"].as_str().unwrap().to_string();

    // The address is found however it is typed (normalised as at sign-in).
    let (code, out, err) = run(&[
        "user",
        "show",
        "--tenant",
        "local",
        "--email",
        "ＡＤＡ@example.com",
    ]);
    assert_eq!(code, Some(0), "{err}");
    for line in [
        format!("id\t{user_id}"),
        "email\tada@example.com".to_string(),
        "disabled\tfalse".to_string(),
        "user_metadata\t{\"role\":\"admin\"}".to_string(),
        "app_metadata\t{}".to_string(),
    ] {
        assert!(
            out.lines().any(|l| l == line),
            "{line:?} missing from:\n{out}"
        );
    }
    let (code, _, err) = run(&[
        "user",
        "show",
        "--tenant",
        "local",
        "--email",
        "bob@example.com",
    ]);
    assert_eq!(code, Some(1));
    assert!(err.contains("no user"), "{err}");
    let (code, _, err) = run(&[
        "user",
        "show",
        "--tenant",
        "local",
        "--email",
        "\u{200b}ada@example.com",
    ]);
    assert_eq!(code, Some(1));
    assert!(err.contains("not a valid email"), "{err}");

    // App metadata: refused unless a small, shallow object; then in the next token.
    for (json, why) in [
        ("[1]", "object"),
        ("{\"a\":", "not valid JSON"),
        (
            &format!(
                "{}{}",
                "{\"a\":".repeat(9),
                "{}".to_string() + &"}".repeat(9)
            ),
            "levels",
        ),
        (&format!("{{\"a\":\"{}\"}}", "x".repeat(5000)), "bytes"),
    ] {
        let (code, _, err) = run(&[
            "user",
            "set-app-metadata",
            "--tenant",
            "local",
            "--email",
            "ada@example.com",
            "--json",
            json,
        ]);
        assert_eq!(code, Some(1), "{json:.40}");
        assert!(err.contains(why), "{json:.40}: {err}");
    }
    let (code, out, err) = run(&[
        "user",
        "set-app-metadata",
        "--tenant",
        "local",
        "--email",
        "ada@example.com",
        "--json",
        r#"{"role": "admin", "org": 7}"#,
    ]);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        out.contains("app_metadata\t{\"org\":7,\"role\":\"admin\"}"),
        "{out}"
    );
    let (status, me) = http(
        srv.addr,
        "GET",
        "/v2/me",
        reg["access_token"].as_str(),
        None,
    );
    assert_eq!(status, 200, "{me}");
    assert!(me["custom"].is_null(), "issued before the change: {me}");
    let refresh =
        serde_json::json!({ "client_id": "local-app", "refresh_token": reg["refresh_token"] });
    let (status, refreshed) = http(srv.addr, "POST", "/v2/auth/refresh", None, Some(&refresh));
    assert_eq!(status, 200, "{refreshed}");
    let access = refreshed["access_token"].as_str().unwrap().to_string();
    let (status, me) = http(srv.addr, "GET", "/v2/me", Some(&access), None);
    assert_eq!(status, 200, "{me}");
    assert_eq!(
        me["custom"],
        serde_json::json!({ "role": "admin", "org": 7 }),
        "{me}"
    );
    assert_eq!(
        me["user_metadata"],
        serde_json::json!({ "role": "admin" }),
        "{me}"
    );

    // Disable: refresh and sign-in refused at once, the access token within the TTL.
    let (code, out, err) = run(&[
        "user",
        "disable",
        "--tenant",
        "local",
        "--email",
        "ada@example.com",
    ]);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        out.contains("revoked 1 sessions and refresh token families"),
        "{out}"
    );
    let disabled_at = Instant::now();
    let refresh = serde_json::json!({ "client_id": "local-app", "refresh_token": refreshed["refresh_token"] });
    let (status, body) = http(srv.addr, "POST", "/v2/auth/refresh", None, Some(&refresh));
    assert_eq!(
        (status, body["code"].as_str()),
        (401, Some("TOKEN_INVALID")),
        "{body}"
    );
    let (status, body) = http(srv.addr, "POST", "/v2/auth/login", None, Some(&creds));
    assert_eq!(status, 401, "{body}");
    loop {
        let (status, body) = http(srv.addr, "GET", "/userinfo", Some(&access), None);
        if status == 401 {
            assert_eq!(body["code"], "TOKEN_INVALID", "{body}");
            break;
        }
        assert_eq!(status, 200, "{body}");
        assert!(
            disabled_at.elapsed() < Duration::from_secs(7),
            "still accepted: {body}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let (code, out, _) = run(&[
        "user",
        "show",
        "--tenant",
        "local",
        "--email",
        "ada@example.com",
    ]);
    assert_eq!(code, Some(0));
    assert!(out.lines().any(|l| l == "disabled\ttrue"), "{out}");

    let (code, out, err) = run(&[
        "user",
        "enable",
        "--tenant",
        "local",
        "--email",
        "ada@example.com",
    ]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.starts_with("enabled "), "{out}");
    let (status, body) = http(srv.addr, "POST", "/v2/auth/login", None, Some(&creds));
    assert_eq!(status, 200, "{body}");
}

/// `hj webhook` against the store of a running `hj serve`: an endpoint made by the CLI gets a
/// sign-up's event, signed, and the delivery shows up in `hj webhook deliveries`.
#[test]
fn webhook_commands_and_a_delivery_from_hj_serve() {
    let srv = start_server(&[
        ("HELLOJOHN_WEBHOOK_ALLOW_PRIVATE", "true"),
        ("HELLOJOHN_WEBHOOK_POLL_INTERVAL", "50ms"),
    ]);
    let run = |args: &[&str]| {
        let out = hj()
            .args(args)
            .env("HELLOJOHN_DATA_DIR", &srv.dir)
            .env("HELLOJOHN_LOG", "error")
            .env("HELLOJOHN_WEBHOOK_ALLOW_PRIVATE", "true")
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    // A receiver that answers 204 to one request and keeps it.
    let receiver = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", receiver.local_addr().unwrap());
    let got = std::thread::spawn(move || {
        let (mut conn, _) = receiver.accept().unwrap();
        conn.set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut request = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            let n = conn.read(&mut buf).unwrap();
            request.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&request).to_string();
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                let len: usize = head
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length:")
                            .map(|v| v.trim().parse().unwrap())
                    })
                    .unwrap();
                if body.len() >= len {
                    break;
                }
            }
            assert!(n > 0, "connection closed early");
        }
        conn.write_all(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n")
            .unwrap();
        String::from_utf8_lossy(&request).to_string()
    });

    let (code, _, err) = run(&[
        "webhook",
        "create",
        "--tenant",
        "local",
        "--url",
        &url,
        "--events",
        "user.nope",
    ]);
    assert_eq!(code, Some(1));
    assert!(err.contains("unknown event type"), "{err}");
    let (code, out, err) = run(&[
        "webhook",
        "create",
        "--tenant",
        "local",
        "--url",
        &url,
        "--events",
        "user.register",
    ]);
    assert_eq!(code, Some(0), "{err}");
    let endpoint_id = out.split('\t').next().unwrap().to_string();
    let secret = out
        .lines()
        .find_map(|l| l.strip_prefix("secret: "))
        .expect("a generated secret is printed");
    assert!(secret.starts_with("whsec_"), "{secret}");
    let (code, out, _) = run(&["webhook", "list"]);
    assert_eq!(code, Some(0));
    assert!(
        out.contains(&format!("{endpoint_id}\tlocal\t{url}\tuser.register")),
        "{out}"
    );
    assert!(!out.contains(secret), "list never shows the secret");

    let body = br#"{"tenant_id":"local","client_id":"local-app","email":"hook@example.com","password":"Correct-Horse-42"}"#;
    let mut conn = TcpStream::connect(srv.addr).unwrap();
    write!(
        conn,
        "POST /v2/auth/register HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .unwrap();
    conn.write_all(body).unwrap();
    let mut resp = String::new();
    conn.read_to_string(&mut resp).unwrap();
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");

    let request = got.join().unwrap();
    assert!(request.starts_with("POST /hook HTTP/1.1"), "{request}");
    let lower = request.to_ascii_lowercase();
    for header in [
        "x-hellojohn-signature: t=",
        "x-hellojohn-event: user.register",
        "x-hellojohn-delivery-id: ",
        "webhook-id: ",
        "webhook-timestamp: ",
        "webhook-signature: v1,",
    ] {
        assert!(lower.contains(header), "{header} missing: {request}");
    }
    assert!(request.contains(r#""type":"user.register""#), "{request}");

    let start = Instant::now();
    let delivery = loop {
        let (code, out, _) = run(&["webhook", "deliveries", "--status", "delivered"]);
        assert_eq!(code, Some(0));
        if let Some(line) = out.lines().nth(1) {
            break line.to_string();
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "not delivered: {out}"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let fields: Vec<&str> = delivery.split('\t').collect();
    assert_eq!(
        &fields[1..6],
        ["user.register", "delivered", "1", "-", "204"],
        "{delivery}"
    );
    let (code, out, _) = run(&["webhook", "redeliver", fields[0]]);
    assert_eq!(code, Some(0), "{out}");
    // Queued again: the receiver is gone, so it waits (pending) or fails and waits (failed).
    let (code, out, _) = run(&["webhook", "deliveries", "--limit", "5"]);
    assert_eq!(code, Some(0));
    let line = out.lines().find(|l| l.starts_with(fields[0])).unwrap();
    let status = line.split('\t').nth(2).unwrap();
    assert!(["pending", "failed"].contains(&status), "{line}");
    let (code, out, _) = run(&["webhook", "delete", &endpoint_id]);
    assert_eq!(code, Some(0), "{out}");
    let (code, out, _) = run(&["webhook", "deliveries"]);
    assert_eq!(code, Some(0));
    assert_eq!(out.lines().count(), 1, "deleted with its endpoint: {out}");
    let (code, _, err) = run(&["webhook", "delete", &endpoint_id]);
    assert_eq!(code, Some(1));
    assert!(err.contains("no webhook endpoint"), "{err}");
}

/// The mappings of process `pid`: (size in KiB, VmFlags) from `/proc/PID/smaps`.
fn mappings(pid: u32) -> Vec<(u64, String)> {
    let smaps = std::fs::read_to_string(format!("/proc/{pid}/smaps")).unwrap();
    let mut out = Vec::new();
    let mut size = 0;
    for line in smaps.lines() {
        if let Some(kib) = line.strip_prefix("Size:") {
            size = kib.trim().trim_end_matches(" kB").parse().unwrap();
        } else if let Some(flags) = line.strip_prefix("VmFlags:") {
            out.push((size, flags.trim().to_string()));
        }
    }
    out
}

#[test]
fn huge_pages_are_asked_for_the_argon2_arena_and_not_for_the_heap() {
    // Debian's default THP mode is `madvise`: only advised mappings get huge pages.
    assert!(
        std::path::Path::new("/sys/kernel/mm/transparent_hugepage/enabled").exists(),
        "this test needs a kernel with transparent huge pages"
    );
    let srv = start_server(&[]);
    let maps = mappings(srv.child.id());
    let advised = |flag: &str| -> Vec<u64> {
        maps.iter()
            .filter(|(_, flags)| flags.split(' ').any(|f| f == flag))
            .map(|(size, _)| *size)
            .collect()
    };
    // One hash worker: its arena, HelloJohn's m=65536 from a 2 MiB boundary (the kernel splits
    // off the alignment slack, not advised), is the only mapping advised for huge pages.
    assert_eq!(advised("hg"), vec![65_536], "{maps:?}");
    // mimalloc's heap region (it reserves 1 GiB at a time) is advised against them.
    assert!(
        advised("nh").iter().any(|&kib| kib >= 64 * 1024),
        "{maps:?}"
    );
}

/// `hj user reset-mfa` removes a second factor an operator's user lost: the password alone
/// signs in again, and `hj user show` says so.
#[test]
fn user_reset_mfa_removes_the_second_factor() {
    let srv = start_server(&[]);
    let run = |args: &[&str]| {
        let out = hj()
            .args(args)
            .env("HELLOJOHN_DATA_DIR", &srv.dir)
            .env("HELLOJOHN_LOG", "error")
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let creds = serde_json::json!({
        "tenant_id": "local", "client_id": "local-app",
        "email": "mfa@example.com", "password": "Correct-Horse-42",
    });
    let (status, reg) = http(srv.addr, "POST", "/v2/auth/register", None, Some(&creds));
    assert_eq!(status, 200, "{reg}");
    let access = reg["access_token"].as_str().unwrap();
    let (status, enrol) = http(srv.addr, "POST", "/v2/mfa/totp/enroll", Some(access), None);
    assert_eq!(status, 200, "{enrol}");
    let secret = testkit::totp::base32_decode(enrol["secret_base32"].as_str().unwrap());
    let code = testkit::totp::code(&secret, testkit::totp::step_now());
    let (status, body) = http(
        srv.addr,
        "POST",
        "/v2/mfa/totp/verify",
        Some(access),
        Some(&serde_json::json!({ "code": code })),
    );
    assert_eq!(status, 200, "{body}");
    let (_, body) = http(srv.addr, "POST", "/v2/auth/login", None, Some(&creds));
    assert_eq!(body["mfa_required"], true, "{body}");
    let who = ["--tenant", "local", "--email", "mfa@example.com"];
    let (code, out) = run(&[&["user", "show"][..], &who].concat());
    assert_eq!(code, Some(0));
    assert!(out.lines().any(|l| l == "mfa_enabled\ttrue"), "{out}");

    let (code, out) = run(&[&["user", "reset-mfa"][..], &who].concat());
    assert_eq!(code, Some(0));
    assert!(out.starts_with("removed the second factor"), "{out}");
    let (_, body) = http(srv.addr, "POST", "/v2/auth/login", None, Some(&creds));
    assert!(body["access_token"].is_string(), "{body}");
    let (_, out) = run(&[&["user", "show"][..], &who].concat());
    assert!(out.lines().any(|l| l == "mfa_enabled\tfalse"), "{out}");
    let (code, out) = run(&[&["user", "reset-mfa"][..], &who].concat());
    assert_eq!(code, Some(0));
    assert!(out.contains("has no second factor"), "{out}");
}
