//! `/metrics` answers only to `HELLOJOHN_METRICS_ALLOW` (issue 24): its counters move only for
//! existing accounts (a reset mail is sent for them alone), so the public must not read them.
//! The address that decides is the client's as the engine sees it: the socket peer, or what a
//! trusted proxy forwards; an untrusted peer's forwarded header is ignored.

use crate::support::{status_and_json, TestServer};

/// A scrape with optional forwarding headers: status and body.
async fn scrape(srv: &TestServer, headers: &[(&str, &str)]) -> (u16, String) {
    let mut req = srv.client.get(srv.url("/metrics"));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = req.send().await.unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

/// A refusal: 403 `FORBIDDEN`, JSON, and not one metric in it.
fn assert_refused(status: u16, body: &str, why: &str) {
    assert_eq!(status, 403, "{why}: {body}");
    assert!(
        !body.contains("hellojohn_"),
        "{why}: metric text leaked: {body}"
    );
    let err: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(err["code"], "FORBIDDEN", "{why}");
}

fn assert_served(status: u16, body: &str, why: &str) {
    assert_eq!(status, 200, "{why}: {body}");
    assert!(body.contains("hellojohn_http_requests_total"), "{why}");
}

#[tokio::test]
async fn loopback_scrape_is_served_by_default() {
    let srv = TestServer::start().await;
    let (status, body) = scrape(&srv, &[]).await;
    assert_served(status, &body, "loopback, default list");
    // With no trusted proxy a forwarded header names nobody: the loopback peer decides.
    let (status, body) = scrape(&srv, &[("x-forwarded-for", "203.0.113.9")]).await;
    assert_served(status, &body, "untrusted header, loopback peer");
    srv.stop().await;
}

#[tokio::test]
async fn a_peer_outside_the_list_gets_403_and_no_metrics() {
    let srv = TestServer::with(&[("HELLOJOHN_METRICS_ALLOW", "192.0.2.0/24, 2001:db8::/32")]).await;
    let (status, body) = scrape(&srv, &[]).await;
    assert_refused(status, &body, "loopback outside the list");
    // Asking for Prometheus text changes nothing.
    let (status, body) = scrape(&srv, &[("accept", "text/plain")]).await;
    assert_refused(status, &body, "text/plain asked");
    // An untrusted peer cannot talk its way in with a forwarded address inside the list.
    for header in ["x-forwarded-for", "x-real-ip"] {
        let (status, body) = scrape(&srv, &[(header, "192.0.2.7")]).await;
        assert_refused(status, &body, header);
    }
    // Other routes are unaffected.
    let (status, _) = status_and_json(srv.get("/ping").await).await;
    assert_eq!(status, 200);
    srv.stop().await;

    let srv = TestServer::with(&[("HELLOJOHN_METRICS_ALLOW", "none")]).await;
    let (status, body) = scrape(&srv, &[]).await;
    assert_refused(status, &body, "none");
    srv.stop().await;
}

#[tokio::test]
async fn behind_a_trusted_proxy_the_forwarded_address_decides() {
    // The loopback peer is the proxy; the scraper's network is 10.0.0.0/8.
    let srv = TestServer::with(&[
        ("HELLOJOHN_TRUSTED_PROXIES", "127.0.0.1/32"),
        ("HELLOJOHN_METRICS_ALLOW", "10.0.0.0/8"),
    ])
    .await;
    let (status, body) = scrape(&srv, &[("x-forwarded-for", "10.1.2.3")]).await;
    assert_served(status, &body, "forwarded 10.1.2.3");
    // A forged hop to the left of the proxy's own does not count: the right-most does.
    let (status, body) = scrape(&srv, &[("x-forwarded-for", "10.1.2.3, 203.0.113.9")]).await;
    assert_refused(status, &body, "forged left hop");
    let (status, body) = scrape(&srv, &[("x-forwarded-for", "203.0.113.9")]).await;
    assert_refused(status, &body, "forwarded public address");
    // The proxy itself (no header) is not in the list either.
    let (status, body) = scrape(&srv, &[]).await;
    assert_refused(status, &body, "the proxy, no header");
    srv.stop().await;

    // The shipped topology: nginx on a private address is trusted and the default list is
    // in force. A scrape from the internet through nginx carries the client's public address
    // and is refused; Prometheus scraping the instance directly is served.
    let srv = TestServer::with(&[("HELLOJOHN_TRUSTED_PROXIES", "127.0.0.1/32")]).await;
    let (status, body) = scrape(&srv, &[("x-forwarded-for", "198.51.100.4")]).await;
    assert_refused(status, &body, "public client through the proxy");
    let (status, body) = scrape(&srv, &[("x-forwarded-for", "fe80::1")]).await;
    assert_refused(status, &body, "link-local is not in the default list");
    let (status, body) = scrape(&srv, &[]).await;
    assert_served(status, &body, "direct scrape");
    srv.stop().await;

    // x-real-ip mode reads only X-Real-IP.
    let srv = TestServer::with(&[
        ("HELLOJOHN_TRUSTED_PROXIES", "127.0.0.1/32"),
        ("HELLOJOHN_CLIENT_IP_HEADER", "x-real-ip"),
        ("HELLOJOHN_METRICS_ALLOW", "10.0.0.0/8"),
    ])
    .await;
    let (status, body) = scrape(&srv, &[("x-real-ip", "10.9.9.9")]).await;
    assert_served(status, &body, "x-real-ip inside");
    let (status, body) = scrape(
        &srv,
        &[
            ("x-real-ip", "203.0.113.9"),
            ("x-forwarded-for", "10.9.9.9"),
        ],
    )
    .await;
    assert_refused(status, &body, "x-real-ip outside, x-forwarded-for ignored");
    srv.stop().await;
}
