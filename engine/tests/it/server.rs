//! The engine foundation: liveness, readiness, metrics, routing errors, timeouts, shards.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::support::{metric, TestServer};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ping_answers_ok_with_request_id() {
    let srv = TestServer::start().await;
    let resp = srv.get("/ping").await;
    assert_eq!(resp.status(), 200);
    assert!(resp.headers().get("x-request-id").is_some());
    assert_eq!(resp.headers()["content-type"], "application/json");
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body, serde_json::json!({"status": "ok"}));

    // A sane client-supplied request id is echoed back.
    let resp = srv
        .client
        .get(srv.url("/ping"))
        .header("x-request-id", "abc-123")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["x-request-id"], "abc-123");
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_readyz_report_components() {
    let srv = TestServer::start().await;
    for (path, ready) in [("/health", "ok"), ("/readyz", "ready")] {
        let resp = srv.get(path).await;
        assert_eq!(resp.status(), 200, "{path}");
        let body: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(body["status"], ready);
        if path == "/readyz" {
            // HelloJohn's block, which its admin console's dashboard reads unguarded.
            assert_eq!(
                body["cluster"],
                serde_json::json!({"mode": "off", "role": "standalone", "leader_id": "",
                    "peers_configured": 0, "peers_connected": 0})
            );
        } else {
            assert!(body.get("cluster").is_none(), "{body}");
        }
        assert_eq!(body["components"]["database"], "ok");
        assert_eq!(body["components"]["redis"], "disabled");
        assert_eq!(body["components"]["keystore"], "ok");
        assert_eq!(body["version"], engine::VERSION);
    }
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_requests_exactly_by_route_template() {
    let srv = TestServer::start().await;
    for _ in 0..7 {
        assert_eq!(srv.get("/ping").await.status(), 200);
    }
    for path in ["/nope", "/users/123", "/v2/auth/login/extra"] {
        assert_eq!(srv.get(path).await.status(), 404);
    }
    assert_eq!(srv.get("/health").await.status(), 200);
    let text = srv.metrics().await;

    let count =
        |series: &str| metric(&text, series).unwrap_or_else(|| panic!("{series} missing:\n{text}"));
    assert_eq!(
        count(r#"hellojohn_http_requests_total{method="GET",path="/ping",status="200"}"#),
        7.0
    );
    // Unknown paths share one label value, whatever the raw URL.
    assert_eq!(
        count(r#"hellojohn_http_requests_total{method="GET",path="unmatched",status="404"}"#),
        3.0
    );
    assert_eq!(
        count(r#"hellojohn_http_requests_total{method="GET",path="/health",status="200"}"#),
        1.0
    );
    assert!(!text.contains("/users/123"));
    for route in ["/ping", "unmatched", "/health"] {
        for q in ["0.5", "0.9", "0.99"] {
            let series = format!(
                r#"hellojohn_http_request_duration_seconds{{method="GET",path="{route}",quantile="{q}"}}"#
            );
            let v = count(&series);
            assert!(v > 0.0 && v < 5.0, "{series} = {v}");
        }
    }
    assert_eq!(
        count(r#"hellojohn_http_request_duration_seconds_count{method="GET",path="/ping"}"#),
        7.0
    );
    // The aggregatable histogram: +Inf bucket equals the count.
    assert_eq!(
        count(
            r#"hellojohn_http_request_latency_seconds_bucket{method="GET",path="/ping",le="+Inf"}"#
        ),
        7.0
    );
    assert!(text.contains("# TYPE hellojohn_http_request_latency_seconds histogram"));
    // The database pool gauges: the per-instance budget on PostgreSQL (25 by default, one
    // shard), nothing for the embedded store.
    let max = count(r#"hellojohn_db_pool_connections{state="max"}"#);
    let in_use = count(r#"hellojohn_db_pool_connections{state="in_use"}"#);
    let idle = count(r#"hellojohn_db_pool_connections{state="idle"}"#);
    if crate::support::test_store() == "sqlite" {
        assert_eq!((idle, in_use, max), (0.0, 0.0, 0.0));
    } else {
        assert_eq!(max, 25.0);
        // The pool has opened connections and stays within its budget. Which of them is idle
        // at scrape time is a race with the background readiness probe and outbox poller.
        assert!(
            idle + in_use >= 1.0 && idle + in_use <= max,
            "idle {idle} in_use {in_use}"
        );
    }
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_method_is_405_with_error_body() {
    let srv = TestServer::start().await;
    let resp = srv.client.post(srv.url("/ping")).send().await.unwrap();
    assert_eq!(resp.status(), 405);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["code"], "METHOD_NOT_ALLOWED");
    let resp = srv.get("/nope").await;
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(
        body,
        serde_json::json!({"code": "NOT_FOUND", "message": "no such route", "detail": null})
    );
    srv.stop().await;
}

/// Reads until EOF or error; returns what was read and how long it took.
fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> (Vec<u8>, Duration) {
    let start = Instant::now();
    stream.set_read_timeout(Some(limit)).unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut =>
            {
                panic!("connection still open after {limit:?}")
            }
            Err(_) => break,
        }
    }
    (out, start.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_half_request_is_cut_off_by_read_timeout() {
    let srv = TestServer::with(&[
        ("HELLOJOHN_READ_TIMEOUT", "1s"),
        ("HELLOJOHN_IDLE_TIMEOUT", "30s"),
    ])
    .await;
    let addr = srv.addr;
    let (read, elapsed) = tokio::task::spawn_blocking(move || {
        let mut s = TcpStream::connect(addr).unwrap();
        // Half a request: the headers never end.
        s.write_all(b"GET /ping HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            .unwrap();
        read_until_closed(&mut s, Duration::from_secs(10))
    })
    .await
    .unwrap();
    assert!(
        read.is_empty() || !read.starts_with(b"HTTP/1.1 200"),
        "no response to half a request"
    );
    assert!(
        elapsed >= Duration::from_millis(900),
        "cut off too early: {elapsed:?}"
    );
    assert!(
        elapsed < Duration::from_secs(5),
        "cut off too late: {elapsed:?}"
    );
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_body_is_cut_off_by_read_timeout() {
    let srv = TestServer::with(&[("HELLOJOHN_READ_TIMEOUT", "1s")]).await;
    let addr = srv.addr;
    let elapsed = tokio::task::spawn_blocking(move || {
        let mut s = TcpStream::connect(addr).unwrap();
        s.write_all(b"POST /v2/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"email\":")
            .unwrap();
        read_until_closed(&mut s, Duration::from_secs(10)).1
    })
    .await
    .unwrap();
    assert!(
        elapsed < Duration::from_secs(5),
        "cut off too late: {elapsed:?}"
    );
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_keep_alive_connection_is_closed_after_idle_timeout() {
    let srv = TestServer::with(&[
        ("HELLOJOHN_IDLE_TIMEOUT", "1s"),
        ("HELLOJOHN_READ_TIMEOUT", "10s"),
    ])
    .await;
    let addr = srv.addr;
    let (first, elapsed) = tokio::task::spawn_blocking(move || {
        let mut s = TcpStream::connect(addr).unwrap();
        s.write_all(b"GET /ping HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        // The response arrives, then the connection stays open until the idle timeout.
        read_until_closed(&mut s, Duration::from_secs(10))
    })
    .await
    .unwrap();
    assert!(
        first.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&first)
    );
    assert!(
        elapsed >= Duration::from_millis(900),
        "closed too early: {elapsed:?}"
    );
    assert!(
        elapsed < Duration::from_secs(5),
        "closed too late: {elapsed:?}"
    );
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keep_alive_serves_several_requests_on_one_connection() {
    let srv = TestServer::start().await;
    let addr = srv.addr;
    let out = tokio::task::spawn_blocking(move || {
        let mut s = TcpStream::connect(addr).unwrap();
        s.write_all(b"GET /ping HTTP/1.1\r\nHost: x\r\n\r\nGET /ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .unwrap();
        read_until_closed(&mut s, Duration::from_secs(10)).0
    })
    .await
    .unwrap();
    let text = String::from_utf8_lossy(&out);
    assert_eq!(text.matches("HTTP/1.1 200 OK").count(), 2, "{text}");
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_are_spread_over_several_shards() {
    let srv = TestServer::with(&[("HELLOJOHN_SHARDS", "2")]).await;
    let addr = srv.addr;
    // SO_REUSEPORT hashes each connection's 4-tuple: 64 fresh connections reach both shards
    // with overwhelming probability (a miss is 2^-63).
    tokio::task::spawn_blocking(move || {
        for _ in 0..64 {
            let mut s = TcpStream::connect(addr).unwrap();
            s.write_all(b"GET /ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                .unwrap();
            let (out, _) = read_until_closed(&mut s, Duration::from_secs(10));
            assert!(out.starts_with(b"HTTP/1.1 200"));
        }
    })
    .await
    .unwrap();
    let text = srv.metrics().await;
    let a = metric(&text, r#"hellojohn_shard_connections_total{shard="0"}"#).unwrap();
    let b = metric(&text, r#"hellojohn_shard_connections_total{shard="1"}"#).unwrap();
    assert!(a > 0.0 && b > 0.0, "shard 0: {a}, shard 1: {b}");
    // The scrape's own connection is counted too.
    assert_eq!(a + b, 65.0);
    // Request counters merge across shards.
    assert_eq!(
        metric(
            &text,
            r#"hellojohn_http_requests_total{method="GET",path="/ping",status="200"}"#
        ),
        Some(64.0)
    );
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_turns_503_at_once_on_shutdown_while_delay_runs() {
    let srv = TestServer::with(&[("HELLOJOHN_SHUTDOWN_DELAY", "2s")]).await;
    assert_eq!(srv.get("/health").await.status(), 200);
    srv.handle().shutdown();
    let resp = srv.get("/health").await;
    assert_eq!(resp.status(), 503);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["status"], "draining");
    // Liveness is unaffected during the delay.
    assert_eq!(srv.get("/ping").await.status(), 200);
    srv.stop().await;
}
