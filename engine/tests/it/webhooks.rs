//! Webhooks end to end: a receiver on loopback (a tiny hyper server inside the test) records
//! every request; the engine delivers the events of real sign-ups and sign-ins to it, signed,
//! retried, once per event across instances sharing one store and Redis.
//!
//! The multi-instance tests need `HJ_TEST_REDIS_URL` (`bash scripts/services.sh start` and
//! `source .hj-test/env`); they fail without it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use engine::config::Config;
use serde_json::{json, Value};
use store::{DeliveryFilter, DeliveryStatus, NewWebhookEndpoint, WebhookDelivery};
use uuid::Uuid;

use crate::support::{
    status_and_json, test_store, Fixture, StartOptions, TestServer, PASSWORD, TEST_MASTER_KEY,
};
use crate::webhook_receiver::*;

// ----- servers ---------------------------------------------------------------------------------

/// One master key for every instance of a test deployment (so each decrypts endpoint secrets).
const MASTER: &str = TEST_MASTER_KEY;

fn base_settings() -> Vec<(&'static str, &'static str)> {
    vec![
        ("HELLOJOHN_MASTER_KEY", MASTER),
        ("HELLOJOHN_WEBHOOK_ALLOW_PRIVATE", "true"),
        ("HELLOJOHN_WEBHOOK_POLL_INTERVAL", "50ms"),
        ("HELLOJOHN_WEBHOOK_TIMEOUT", "5s"),
        ("HELLOJOHN_WEBHOOK_MAX_ATTEMPTS", "12"),
        ("HELLOJOHN_BASE_URL", "http://auth.hellojohn.test"),
    ]
}

/// Short retries: 20 ms, 40 ms, ... up to 300 ms.
fn fast_retries(c: &mut Config) {
    c.webhook_backoff_base = Duration::from_millis(20);
    c.webhook_backoff_max = Duration::from_millis(300);
}

/// Short retries and a lease shorter than a slow receiver's answer, so that leases run out
/// while a delivery is still being sent and other instances claim it again.
fn short_lease(c: &mut Config) {
    fast_retries(c);
    c.webhook_lease = Some(Duration::from_millis(250));
}

async fn server(extra: &[(&'static str, &'static str)]) -> TestServer {
    let mut settings = base_settings();
    settings.extend_from_slice(extra);
    TestServer::with_options(
        &settings,
        StartOptions {
            configure: Some(fast_retries),
            ..Default::default()
        },
    )
    .await
}

/// Registers an endpoint for `events` (comma-separated) through the store, its secret sealed
/// under the deployment's master key.
async fn endpoint(s: &TestServer, fx: &Fixture, url: &str, events: &str) -> Uuid {
    let master = auth::MasterKey::parse(MASTER).unwrap();
    let id = Uuid::now_v7();
    s.store()
        .create_webhook_endpoint(
            NewWebhookEndpoint {
                id,
                tenant_id: fx.tenant.id,
                url: url.to_string(),
                events: engine::webhook::parse_event_list(events).unwrap(),
                secret_encrypted: engine::webhook::seal_secret(&master, id, &test_secret())
                    .unwrap(),
            },
            engine::unix_now(),
            None,
        )
        .await
        .unwrap();
    id
}

async fn deliveries(s: &TestServer) -> Vec<WebhookDelivery> {
    s.store()
        .list_webhook_deliveries(DeliveryFilter {
            endpoint_id: None,
            status: None,
            tenant_id: None,
            limit: 100_000,
        })
        .await
        .unwrap()
}

async fn wait_for_status(s: &TestServer, id: Uuid, status: DeliveryStatus) -> WebhookDelivery {
    let start = Instant::now();
    loop {
        let d = s.store().get_webhook_delivery(id).await.unwrap().unwrap();
        if d.status == status {
            return d;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "delivery {id} is {:?}, not {status:?}: {d:?}",
            d.status
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn register_body(fx: &Fixture, email: &str) -> Value {
    json!({
        "tenant_id": fx.slug(),
        "client_id": fx.client_id(),
        "email": email,
        "password": PASSWORD,
    })
}

fn unique_email(tag: &str) -> String {
    format!(
        "{tag}-{}@example.com",
        &Uuid::new_v4().simple().to_string()[..12]
    )
}

// ----- tests -----------------------------------------------------------------------------------

#[tokio::test]
async fn sign_up_and_sign_in_are_delivered_signed() {
    let s = server(&[]).await;
    let fx = s.fixture().await;
    let rx = Receiver::start().await;
    let endpoint_id = endpoint(&s, &fx, &rx.url(), "user.register,user.login").await;

    let email = unique_email("ada");
    let resp = s
        .client
        .post(s.url("/v2/auth/register"))
        .header("user-agent", "webhook-test/1.0")
        .json(&register_body(&fx, &email))
        .send()
        .await
        .unwrap();
    let (status, registered) = status_and_json(resp).await;
    assert_eq!(status, 200, "{registered}");
    let user_id = registered["user_id"].as_str().unwrap().to_string();
    let (status, _) = s.login(&fx, &email, PASSWORD).await;
    assert_eq!(status, 200);
    // Not subscribed: a failed sign-in is recorded but not sent here.
    let (status, _) = s.login(&fx, &email, "Wrong-Password-1").await;
    assert_eq!(status, 401);

    let got = rx.wait_for(2, Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(rx.count(), 2, "only the subscribed events");
    let mut types: Vec<String> = got
        .iter()
        .map(|r| r.header("x-hellojohn-event").to_string())
        .collect();
    types.sort();
    assert_eq!(types, ["user.login", "user.register"]);
    for r in &got {
        verify(r, &test_secret());
        let e = r.json();
        let keys: Vec<&str> = e.as_object().unwrap().keys().map(String::as_str).collect();
        for key in [
            "id",
            "tenant_id",
            "type",
            "actor_id",
            "actor_type",
            "target_id",
            "target_type",
            "ip_address",
            "user_agent",
            "metadata",
            "result",
            "created_at",
        ] {
            assert!(keys.contains(&key), "{key} missing from {e}");
        }
        assert_eq!(e["tenant_id"], fx.tenant.id.to_string());
        assert_eq!(e["actor_id"], user_id);
        assert_eq!(e["actor_type"], "user");
        assert_eq!(e["target_id"], user_id);
        assert_eq!(e["ip_address"], "127.0.0.1");
        assert_eq!(e["result"], "success");
        assert_eq!(e["metadata"]["client_id"], fx.client_id());
        let created = e["created_at"].as_str().unwrap();
        assert_eq!(created.len(), 20, "{created}");
        assert!(
            created.ends_with('Z') && &created[10..11] == "T",
            "{created}"
        );
    }
    let register = got
        .iter()
        .find(|r| r.header("x-hellojohn-event") == "user.register")
        .unwrap();
    assert_eq!(register.json()["user_agent"], "webhook-test/1.0");
    let login = got
        .iter()
        .find(|r| r.header("x-hellojohn-event") == "user.login")
        .unwrap();
    assert_eq!(login.json()["metadata"]["method"], "password");

    let ds = deliveries(&s).await;
    assert_eq!(ds.len(), 2);
    for d in &ds {
        let d = wait_for_status(&s, d.id, DeliveryStatus::Delivered).await;
        assert_eq!(d.attempts, 1);
        assert_eq!(d.endpoint_id, endpoint_id);
        assert_eq!(d.last_status_code, Some(200));
    }
    let metrics = s.metrics().await;
    let value = |series: &str| crate::support::metric(&metrics, series).unwrap_or(0.0);
    assert_eq!(
        value(r#"hellojohn_webhook_deliveries_total{status="delivered"}"#),
        2.0
    );
    assert_eq!(
        value("hellojohn_webhook_delivery_latency_seconds_count"),
        2.0
    );
    assert!(metrics.contains("hellojohn_webhook_backlog "));
    s.stop().await;
}

#[tokio::test]
async fn every_event_type_reaches_a_catch_all_endpoint() {
    let s = server(&[]).await;
    let fx = s.fixture().await;
    let rx = Receiver::start().await;
    endpoint(&s, &fx, &rx.url(), "*").await;

    let email = unique_email("bob");
    let registered = s.register(&fx, &email).await;
    let user_id = registered["user_id"].as_str().unwrap().to_string();
    let first = registered["refresh_token"].as_str().unwrap().to_string();
    let (status, _) = s.login(&fx, &email, "Wrong-Password-1").await;
    assert_eq!(status, 401);
    let (status, _) = s.login(&fx, "nobody@example.com", "Wrong-Password-1").await;
    assert_eq!(status, 401);
    // Rotation, then the rotated token again: reuse.
    let (status, rotated) = s.refresh(fx.client_id(), &first).await;
    assert_eq!(status, 200, "{rotated}");
    let (status, _) = s.refresh(fx.client_id(), &first).await;
    assert_eq!(status, 401);
    // A sign-in, its sign-out (twice: the second changes nothing), then everywhere.
    let (status, signed_in) = s.login(&fx, &email, PASSWORD).await;
    assert_eq!(status, 200);
    let access = signed_in["access_token"].as_str().unwrap();
    let refresh = signed_in["refresh_token"].as_str().unwrap();
    for _ in 0..2 {
        let resp = s
            .post_json_bearer(
                "/v2/auth/logout",
                access,
                &json!({ "client_id": fx.client_id(), "refresh_token": refresh }),
            )
            .await;
        assert_eq!(resp.status(), 204);
    }
    let resp = s
        .post_json_bearer("/v2/auth/logout-all", access, &json!({}))
        .await;
    assert_eq!(resp.status(), 204);

    let want = [
        "user.register",
        "user.login_failed",
        "user.login_failed",
        "token.reuse_detected",
        "user.login",
        "user.logout",
        "user.logout_all",
    ];
    let got = rx.wait_for(want.len(), Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(rx.count(), want.len(), "one event per change");
    let by_type = |t: &str| -> Vec<Value> {
        got.iter()
            .map(Received::json)
            .filter(|e| e["type"] == t)
            .collect()
    };
    for t in want {
        assert!(!by_type(t).is_empty(), "no {t}");
    }
    for r in &got {
        verify(r, &test_secret());
    }
    let failed = by_type("user.login_failed");
    let known = failed
        .iter()
        .find(|e| e["metadata"]["reason"] == "invalid_password")
        .expect("wrong password");
    assert_eq!(known["result"], "failure");
    assert_eq!(known["target_id"], user_id);
    assert!(known["actor_id"].is_null());
    assert_eq!(known["metadata"]["email"], email);
    let unknown = failed
        .iter()
        .find(|e| e["metadata"]["reason"] == "unknown_user")
        .expect("unknown user");
    assert!(unknown["target_id"].is_null());
    let reuse = &by_type("token.reuse_detected")[0];
    assert_eq!(reuse["actor_id"], user_id);
    assert_eq!(reuse["metadata"]["client_id"], fx.client_id());
    assert!(reuse["metadata"]["family_id"].is_string());
    let logout = &by_type("user.logout")[0];
    assert_eq!(logout["actor_id"], user_id, "completed by the store");
    assert_eq!(logout["tenant_id"], fx.tenant.id.to_string());
    let all = &by_type("user.logout_all")[0];
    assert_eq!(all["actor_id"], user_id);
    // Both families were already revoked (reuse, sign-out): nothing left to count.
    assert_eq!(all["metadata"]["revoked"], 0);
    s.stop().await;
}

#[tokio::test]
async fn a_failing_endpoint_gets_the_same_delivery_until_it_succeeds() {
    let s = server(&[]).await;
    let fx = s.fixture().await;
    let rx = Receiver::start().await;
    rx.answer(&[500, 500, 500]);
    endpoint(&s, &fx, &rx.url(), "user.register").await;
    s.register(&fx, &unique_email("carol")).await;

    let got = rx.wait_for(4, Duration::from_secs(10)).await;
    let ids: Vec<String> = got.iter().map(Received::delivery_id).collect();
    assert!(
        ids.iter().all(|id| *id == ids[0]),
        "one delivery id: {ids:?}"
    );
    let events: Vec<String> = got.iter().map(Received::event_id).collect();
    assert!(events.iter().all(|e| *e == events[0]));
    for r in &got {
        verify(r, &test_secret());
    }
    let d = wait_for_status(&s, ids[0].parse().unwrap(), DeliveryStatus::Delivered).await;
    assert_eq!(d.attempts, 4, "delivered on the fourth attempt");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(rx.count(), 4);
    let metrics = s.metrics().await;
    let value = |series: &str| crate::support::metric(&metrics, series).unwrap_or(0.0);
    assert_eq!(
        value(r#"hellojohn_webhook_deliveries_total{status="failed"}"#),
        3.0
    );
    assert_eq!(
        value(r#"hellojohn_webhook_deliveries_total{status="delivered"}"#),
        1.0
    );
    s.stop().await;
}

#[tokio::test]
async fn an_exhausted_delivery_can_be_redelivered() {
    let s = server(&[("HELLOJOHN_WEBHOOK_MAX_ATTEMPTS", "3")]).await;
    let fx = s.fixture().await;
    let rx = Receiver::start().await;
    rx.answer(&[503, 503, 503]);
    endpoint(&s, &fx, &rx.url(), "user.register").await;
    s.register(&fx, &unique_email("dave")).await;

    let got = rx.wait_for(3, Duration::from_secs(10)).await;
    let id: Uuid = got[0].delivery_id().parse().unwrap();
    let d = wait_for_status(&s, id, DeliveryStatus::Exhausted).await;
    assert_eq!(d.attempts, 3);
    assert_eq!(d.last_status_code, Some(503));
    assert_eq!(d.last_error.as_deref(), Some("HTTP 503"));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(rx.count(), 3, "no attempt after the last");
    assert!(s
        .metrics()
        .await
        .contains(r#"hellojohn_webhook_deliveries_total{status="exhausted"} 1"#));

    assert!(s
        .store()
        .redeliver_webhook(id, engine::unix_now() * 1000)
        .await
        .unwrap());
    let got = rx.wait_for(4, Duration::from_secs(10)).await;
    assert_eq!(got[3].delivery_id(), id.to_string(), "the same delivery id");
    let d = wait_for_status(&s, id, DeliveryStatus::Delivered).await;
    assert_eq!((d.attempts, d.generation), (1, 1));
    s.stop().await;
}

#[tokio::test]
async fn deliveries_wait_while_the_receiver_is_down_and_none_is_lost() {
    let s = server(&[]).await;
    let fx = s.fixture().await;
    let mut rx = Receiver::start().await;
    endpoint(&s, &fx, &rx.url(), "user.register").await;
    rx.stop().await;
    for i in 0..5 {
        s.register(&fx, &unique_email(&format!("down{i}"))).await;
    }
    // Several attempts fail (connection refused) and are rescheduled.
    let start = Instant::now();
    loop {
        let ds = deliveries(&s).await;
        if ds.len() == 5 && ds.iter().all(|d| d.attempts >= 2) {
            assert!(ds.iter().all(|d| d.status == DeliveryStatus::Failed));
            assert!(
                ds[0].last_error.as_deref().unwrap().contains("connect"),
                "{ds:?}"
            );
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "{ds:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(rx.count(), 0);
    rx.restart().await;
    let got = rx.wait_for(5, Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(rx.count(), 5, "each once");
    let mut events: Vec<String> = got.iter().map(Received::event_id).collect();
    events.sort();
    events.dedup();
    assert_eq!(events.len(), 5, "none lost");
    for d in deliveries(&s).await {
        wait_for_status(&s, d.id, DeliveryStatus::Delivered).await;
    }
    s.stop().await;
}

#[tokio::test]
async fn private_addresses_are_refused_unless_allowed() {
    let s = server(&[("HELLOJOHN_WEBHOOK_ALLOW_PRIVATE", "false")]).await;
    let fx = s.fixture().await;
    let rx = Receiver::start().await;
    endpoint(&s, &fx, &rx.url(), "user.register").await;
    s.register(&fx, &unique_email("eve")).await;
    let start = Instant::now();
    let d = loop {
        let ds = deliveries(&s).await;
        if let Some(d) = ds.into_iter().find(|d| d.attempts >= 1) {
            break d;
        }
        assert!(start.elapsed() < Duration::from_secs(10));
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let error = d.last_error.unwrap();
    assert!(
        error.contains("refused") && error.contains("loopback"),
        "{error}"
    );
    assert_eq!(d.last_status_code, None);
    assert_eq!(rx.count(), 0, "never connected");
    s.stop().await;
}

/// A fixture tenant and client, made on the first instance.
async fn deployment(
    n: usize,
    redis: Option<&str>,
    configure: fn(&mut Config),
) -> (Vec<TestServer>, String) {
    let prefix = format!("hj-it-wh-{}:", &Uuid::new_v4().simple().to_string()[..12]);
    let mut settings = base_settings();
    // Three instances share one PostgreSQL with the other tests: a small pool each.
    settings.push(("HELLOJOHN_DB_MAX_OPEN_CONNS", "8"));
    settings.push(("HELLOJOHN_DB_MAX_IDLE_CONNS", "4"));
    if let Some(url) = redis {
        settings.push(("HELLOJOHN_REDIS_URL", url));
    }
    let first = TestServer::with_options(
        &settings,
        StartOptions {
            redis_key_prefix: Some(prefix.clone()),
            configure: Some(configure),
            ..Default::default()
        },
    )
    .await;
    // On SQLite the instances share the store object; on PostgreSQL each opens its own
    // connection pools on the same database, as separate processes would.
    let database_url = first
        .handle()
        .app()
        .config
        .database_url
        .as_ref()
        .map(|u| u.expose().to_string());
    let mut servers = vec![first];
    for _ in 1..n {
        let mut settings = settings.clone();
        let store = match &database_url {
            Some(url) => {
                settings.push(("HELLOJOHN_DATABASE_URL", url.as_str()));
                None
            }
            None => Some(servers[0].store()),
        };
        let s = TestServer::with_options(
            &settings,
            StartOptions {
                redis_key_prefix: Some(prefix.clone()),
                store,
                configure: Some(configure),
            },
        )
        .await;
        servers.push(s);
    }
    (servers, prefix)
}

/// 1,000 sign-ups spread over three instances; the receiver answers every 25th request slowly
/// (longer than the lease), so other instances claim those deliveries again meanwhile.
/// Returns how many times each event arrived.
async fn thousand_sign_ups(redis: Option<&str>) -> (HashMap<String, usize>, Vec<TestServer>) {
    const USERS: usize = 1000;
    let (servers, _) = deployment(3, redis, short_lease).await;
    let fx = servers[0].fixture().await;
    let rx = Receiver::start().await;
    rx.slow_every(25);
    endpoint(&servers[0], &fx, &rx.url(), "user.register").await;

    let started = Instant::now();
    let bodies: Vec<Value> = (0..USERS)
        .map(|i| register_body(&fx, &format!("u{i}-{}", unique_email("many"))))
        .collect();
    let client = servers[0].client.clone();
    let urls: Vec<String> = servers.iter().map(|s| s.url("/v2/auth/register")).collect();
    let next = Arc::new(AtomicUsize::new(0));
    let bodies = Arc::new(bodies);
    let mut tasks = Vec::new();
    for _ in 0..24 {
        let (client, urls, next, bodies) =
            (client.clone(), urls.clone(), next.clone(), bodies.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= bodies.len() {
                    return;
                }
                let resp = client
                    .post(&urls[i % urls.len()])
                    .json(&bodies[i])
                    .send()
                    .await
                    .unwrap();
                assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let signed_up = started.elapsed();

    let got = rx.wait_for(USERS, Duration::from_secs(40)).await;
    // Let late duplicates, if any, arrive.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let got = if rx.count() > got.len() {
        rx.requests()
    } else {
        got
    };
    let mut counts: HashMap<String, usize> = HashMap::new();
    for r in &got {
        *counts.entry(r.event_id()).or_default() += 1;
    }
    assert_eq!(counts.len(), USERS, "every event delivered");
    // Every sign-up became one delivered delivery.
    let start = Instant::now();
    loop {
        let ds = deliveries(&servers[0]).await;
        assert_eq!(ds.len(), USERS);
        if ds.iter().all(|d| d.status == DeliveryStatus::Delivered) {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "not all recorded delivered"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut per_instance = Vec::new();
    for s in &servers {
        let text = s.metrics().await;
        per_instance.push(
            crate::support::metric(
                &text,
                r#"hellojohn_webhook_deliveries_total{status="delivered"}"#,
            )
            .unwrap_or(0.0),
        );
    }
    eprintln!(
        "webhooks ({}, redis: {}): {USERS} sign-ups in {signed_up:?}, delivered in {:?}, \
         2xx per instance {per_instance:?}, requests {}",
        test_store(),
        redis.is_some(),
        started.elapsed(),
        got.len()
    );
    (counts, servers)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_with_redis_deliver_each_event_exactly_once() {
    // Exactly once needs Redis up throughout: not while a rate-limit test stops and restarts
    // the shared Redis (without Redis, delivery is at-least-once by design).
    let _redis_stays_up = crate::ratelimit::STANDALONE.lock().await;
    let redis = std::env::var("HJ_TEST_REDIS_URL").unwrap_or_else(|_| {
        panic!("HJ_TEST_REDIS_URL is not set: run `bash scripts/services.sh start` and `source .hj-test/env`")
    });
    let (counts, servers) = thousand_sign_ups(Some(&redis)).await;
    let twice: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "delivered more than once: {twice:?}");
    for s in servers {
        s.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_without_redis_deliver_each_event_at_least_once() {
    let (counts, servers) = thousand_sign_ups(None).await;
    assert!(counts.values().all(|n| *n >= 1));
    let extra: usize = counts.values().map(|n| n - 1).sum();
    eprintln!("without Redis: {extra} duplicate deliveries (at-least-once)");
    for s in servers {
        s.stop().await;
    }
}
