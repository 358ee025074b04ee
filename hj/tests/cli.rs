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
    assert!(err.contains("5 problem(s)"), "{err}");
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
    assert!(out.contains("applied migrations [1, 2]"), "{out}");
    let (code, out, _) = run(&["migrate", "status"]);
    assert_eq!(code, Some(0));
    assert!(out.contains("pending: []"), "{out}");

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
