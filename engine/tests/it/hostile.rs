//! Hostile requests over real HTTP: each gets its 4xx and the server stays up.

use bytes::Bytes;
use serde_json::Value;

use crate::support::{metric, status_and_json, TestServer, PASSWORD};

/// `prefix`, then `open` repeated, a leaf, spaces, `close` as often as `open` (when `closed`)
/// and `suffix`: exactly `size` bytes, as deep as that allows.
fn deep_body(
    prefix: &str,
    open: &str,
    close: &str,
    suffix: &str,
    closed: bool,
    size: usize,
) -> Bytes {
    let per_level = open.len() + if closed { close.len() } else { 0 };
    let levels = (size - prefix.len() - suffix.len() - 1) / per_level;
    let mut body = Vec::with_capacity(size);
    body.extend_from_slice(prefix.as_bytes());
    body.extend(open.repeat(levels).into_bytes());
    body.push(b'1');
    let padding = size - body.len() - suffix.len() - if closed { close.len() * levels } else { 0 };
    body.extend(b" ".repeat(padding));
    if closed {
        body.extend(close.repeat(levels).into_bytes());
    }
    body.extend_from_slice(suffix.as_bytes());
    assert_eq!(body.len(), size);
    Bytes::from(body)
}

/// Issue 11: `{"zzz":[[[…]]]}` of 40 KB overflowed a shard thread's stack and aborted the whole
/// process. 1,000 bodies of the largest accepted size, nested as deep as that allows, in every
/// JSON route that reads credentials or a logout: each is 400 `INVALID_JSON`, and afterwards the
/// server answers and signs users in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deep_json_at_the_body_limit_is_refused_and_the_server_stays_up() {
    let srv = TestServer::start().await;
    let fx = srv.fixture().await;
    let limit = srv.handle().app().config.max_body_bytes;
    let register_prefix = format!(
        r#"{{"tenant_id":"{}","client_id":"{}","email":"deep@example.com","password":"{PASSWORD}","custom_fields":"#,
        fx.slug(),
        fx.client_id()
    );
    let bodies = [
        deep_body(r#"{"zzz":"#, "[", "]", "}", true, limit),
        deep_body(r#"{"zzz":"#, r#"{"a":"#, "}", "}", true, limit),
        deep_body(r#"{"zzz":"#, "[", "]", "", false, limit),
        deep_body(&register_prefix, r#"{"a":"#, "}", "}", true, limit),
    ];
    let routes = [
        "/v2/auth/logout",
        "/v2/auth/register",
        "/v2/auth/login",
        "/v2/session/login",
    ];

    // Four keep-alive connections' worth of clients, 250 requests each.
    let mut tasks = tokio::task::JoinSet::new();
    for worker in 0..4usize {
        let client = srv.client.clone();
        let base = srv.base.clone();
        let bodies = bodies.clone();
        tasks.spawn(async move {
            for i in 0..250usize {
                let n = worker * 250 + i;
                let route = routes[n % routes.len()];
                let body = bodies[(n / routes.len()) % bodies.len()].clone();
                let resp = client
                    .post(format!("{base}{route}"))
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await
                    .unwrap_or_else(|e| panic!("request {n} to {route}: {e}"));
                let (status, err) = status_and_json(resp).await;
                assert_eq!(status, 400, "request {n} to {route}: {err}");
                assert_eq!(err["code"], "INVALID_JSON", "request {n} to {route}: {err}");
                assert_eq!(
                    err["detail"]["max_depth"],
                    Value::from(protocol::json::MAX_JSON_DEPTH),
                    "{err}"
                );
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap();
    }

    // Every request reached its handler and was counted there.
    let metrics = srv.metrics().await;
    for route in routes {
        let series = format!(
            r#"hellojohn_http_requests_total{{method="POST",path="{route}",status="400"}}"#
        );
        assert_eq!(metric(&metrics, &series), Some(250.0), "{series}");
    }

    // The bodies were at the limit, not over it: one byte more is 413.
    let over = deep_body(r#"{"zzz":"#, "[", "]", "}", true, limit + 1);
    let resp = srv
        .client
        .post(srv.url("/v2/auth/logout"))
        .header("content-type", "application/json")
        .body(over)
        .send()
        .await
        .unwrap();
    let (status, err) = status_and_json(resp).await;
    assert_eq!(
        (status, err["code"].as_str()),
        (413, Some("PAYLOAD_TOO_LARGE"))
    );

    // Still serving: liveness, a sign-up and a sign-in.
    let ping = srv.get("/ping").await;
    assert_eq!(ping.status(), 200);
    srv.register(&fx, "after@example.com").await;
    let (status, body) = srv.login(&fx, "after@example.com", PASSWORD).await;
    assert_eq!(status, 200, "{body}");
    assert!(body["access_token"].is_string(), "{body}");
}
