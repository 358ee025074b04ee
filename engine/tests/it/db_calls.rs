//! What the hot paths cost PostgreSQL, counted by the store (`hellojohn_db_calls_total{method}`):
//! a session check with Redis comes from the shared cache, a Bearer `/userinfo` from the shard's
//! user cache, and a refresh is one store call (one statement). Always on PostgreSQL with Redis,
//! whatever `HJ_TEST_STORE` says: the embedded store counts no calls.

use std::collections::BTreeMap;

use serde_json::json;

use crate::support::{status_and_json, StartOptions, TestServer, PASSWORD, TEST_MASTER_KEY};

/// `hellojohn_db_calls_total{method}` of the server now.
async fn calls(s: &TestServer) -> BTreeMap<String, f64> {
    s.metrics()
        .await
        .lines()
        .filter_map(|l| l.strip_prefix("hellojohn_db_calls_total{method=\""))
        .filter_map(|l| {
            let (method, rest) = l.split_once("\"} ")?;
            Some((method.to_string(), rest.trim().parse().ok()?))
        })
        .collect()
}

fn delta(before: &BTreeMap<String, f64>, after: &BTreeMap<String, f64>, method: &str) -> f64 {
    after.get(method).copied().unwrap_or(0.0) - before.get(method).copied().unwrap_or(0.0)
}

#[tokio::test]
async fn cached_paths_make_no_store_calls_and_a_refresh_makes_one() {
    let db = testkit::pg::TestDb::create("hj_calls").await;
    let redis = testkit::require_env("HJ_TEST_REDIS_URL");
    let url = db.direct_url();
    let s = TestServer::with_options(
        &[
            ("HELLOJOHN_DATABASE_URL", &url),
            ("HELLOJOHN_MASTER_KEY", TEST_MASTER_KEY),
            ("HELLOJOHN_REDIS_URL", &redis),
        ],
        StartOptions {
            redis_key_prefix: Some(format!("hj-it-calls-{}:", uuid::Uuid::new_v4().simple())),
            ..Default::default()
        },
    )
    .await;
    let fx = s.fixture().await;
    let reg = s.register(&fx, "calls@example.com").await;
    let access = reg["access_token"].as_str().unwrap().to_string();
    let resp = s
        .post_json(
            "/v2/session/login",
            &json!({ "tenant_id": fx.slug(), "client_id": fx.client_id(), "email": "calls@example.com", "password": PASSWORD }),
        )
        .await;
    assert_eq!(resp.status(), 204);
    let sid = crate::support::cookie_value(&crate::support::set_cookies(&resp), "sid").unwrap();
    // Warm the shard's user cache once.
    assert_eq!(s.get_bearer("/userinfo", &access).await.status(), 200);

    let before = calls(&s).await;
    for _ in 0..20 {
        let resp = s
            .client
            .get(s.url("/userinfo"))
            .header("cookie", format!("sid={sid}"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(s.get_bearer("/v2/me", &access).await.status(), 200);
    }
    let after = calls(&s).await;
    // A session found in Redis needs no database read; the user comes from the shard's cache
    // (read again at most once per USER_TTL, 5 s).
    assert_eq!(delta(&before, &after, "find_session"), 0.0, "{after:?}");
    assert!(
        delta(&before, &after, "get_user") <= 1.0,
        "{before:?} {after:?}"
    );

    // A refresh, with the client in the shard's cache: one store call, the rotation itself.
    // The first refresh warms the shard's client cache.
    let (st, body) = s
        .refresh(fx.client_id(), reg["refresh_token"].as_str().unwrap())
        .await;
    assert_eq!(st, 200, "{body}");
    let mut token = body["refresh_token"].as_str().unwrap().to_string();
    let before = calls(&s).await;
    for _ in 0..10 {
        let (st, body) = status_and_json(
            s.post_json(
                "/v2/auth/refresh",
                &json!({ "tenant_id": fx.slug(), "client_id": fx.client_id(), "refresh_token": token }),
            )
            .await,
        )
        .await;
        assert_eq!(st, 200, "{body}");
        token = body["refresh_token"].as_str().unwrap().to_string();
    }
    let after = calls(&s).await;
    assert_eq!(delta(&before, &after, "rotate_refresh"), 10.0, "{after:?}");
    for method in ["find_refresh_token", "find_client", "rotate_refresh_token"] {
        assert_eq!(delta(&before, &after, method), 0.0, "{method}: {after:?}");
    }
    s.stop().await;
}
