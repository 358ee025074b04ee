//! Rate limits, client IPs and the shared session cache, on one instance and on two sharing
//! one Redis (standalone and a 3-node cluster), including a Redis outage mid-test.
//!
//! Needs `HJ_TEST_REDIS_URL`, `HJ_TEST_REDIS_CLUSTER_URL` and `HJ_TEST_SERVICES_SH`
//! (`bash scripts/services.sh start; source .hj-test/env`): these tests fail without them.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::support::{
    cookie_value, set_cookies, status_and_json, Fixture, StartOptions, TestServer, PASSWORD,
};

/// Tests that use the standalone Redis hold this: one of them stops Redis for a while.
pub(crate) static STANDALONE: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

use testkit::{require_env as env, services};

fn unique(tag: &str) -> String {
    format!("{tag}-{}", &uuid::Uuid::new_v4().simple().to_string()[..12])
}

const HASHES: &str = "hellojohn_hash_pool_hashes_total";

/// Two instances of one deployment: one store, one Redis (when `redis` is set), the same
/// settings. Instance `a` has a tenant, a client and a registered user.
struct Pair {
    a: TestServer,
    b: TestServer,
    fx: Fixture,
    email: String,
}

async fn pair(settings: &[(&str, &str)], redis: Option<&str>) -> Pair {
    let prefix = format!("{}:", unique("hj-it"));
    // One deployment: one master key, so each instance decrypts the shared signing keys.
    let master = format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    let mut all: Vec<(&str, &str)> = vec![
        ("HELLOJOHN_RATE_LIMIT_ENABLED", "true"),
        ("HELLOJOHN_MASTER_KEY", &master),
        // ... and one public URL: tokens of one instance are valid on the other.
        ("HELLOJOHN_BASE_URL", "http://auth.hellojohn.test"),
    ];
    if let Some(url) = redis {
        all.push(("HELLOJOHN_REDIS_URL", url));
    }
    all.extend_from_slice(settings);
    let a = TestServer::with_options(
        &all,
        StartOptions {
            redis_key_prefix: Some(prefix.clone()),
            store: None,
            ..Default::default()
        },
    )
    .await;
    let b = TestServer::with_options(
        &all,
        StartOptions {
            redis_key_prefix: Some(prefix),
            store: Some(a.store()),
            ..Default::default()
        },
    )
    .await;
    let fx = a.fixture_with(&unique("rl"), "web").await;
    let email = format!("{}@example.com", unique("user"));
    a.register(&fx, &email).await;
    Pair { a, b, fx, email }
}

/// One password sign-in, optionally "through a proxy" that reports `xff` as the client.
async fn sign_in(
    server: &TestServer,
    fx: &Fixture,
    email: &str,
    password: &str,
    xff: Option<&str>,
) -> reqwest::Response {
    let mut req = server
        .client
        .post(server.url("/v2/auth/login"))
        .json(&json!({
            "tenant_id": fx.slug(),
            "client_id": fx.client_id(),
            "email": email,
            "password": password,
        }));
    if let Some(x) = xff {
        req = req.header("x-forwarded-for", x);
    }
    req.send().await.unwrap()
}

/// `n` sign-ins alternating between the two instances; returns (admitted, rejected). Anything
/// but 200 and 429 fails the test.
async fn alternate(p: &Pair, n: usize, xff: Option<&str>) -> (usize, usize) {
    let (mut ok, mut limited) = (0, 0);
    for i in 0..n {
        let server = if i % 2 == 0 { &p.a } else { &p.b };
        let resp = sign_in(server, &p.fx, &p.email, PASSWORD, xff).await;
        match resp.status().as_u16() {
            200 => ok += 1,
            429 => limited += 1,
            s => panic!(
                "sign-in {i}: unexpected status {s}: {}",
                resp.text().await.unwrap()
            ),
        }
    }
    (ok, limited)
}

async fn shared_limit(url: &str) {
    let p = pair(&[("HELLOJOHN_RATE_LIMIT_SIGN_IN", "5/1m")], Some(url)).await;
    for s in [&p.a, &p.b] {
        let (status, body) = s.health().await;
        assert_eq!(
            (status, body["components"]["redis"].as_str()),
            (200, Some("ok"))
        );
    }
    // Burst of 5 for this IP across both instances together, then nothing for 12 s.
    let (ok, limited) = alternate(&p, 14, None).await;
    assert_eq!((ok, limited), (5, 9), "one limit across both instances");
    // Both instances counted rejections.
    for s in [&p.a, &p.b] {
        let m = s
            .metric_value(r#"hellojohn_rate_limit_rejections_total{limit="sign_in"}"#)
            .await;
        assert!(m >= 4.0, "{m}");
        assert_eq!(s.metric_value("hellojohn_redis_fallbacks_total").await, 0.0);
    }
}

#[tokio::test]
async fn shared_limit_across_instances_standalone_redis() {
    let _g = STANDALONE.lock().await;
    shared_limit(&env("HJ_TEST_REDIS_URL")).await;
}

#[tokio::test]
async fn shared_limit_across_instances_redis_cluster() {
    shared_limit(&env("HJ_TEST_REDIS_CLUSTER_URL")).await;
}

/// A fresh connection per request, so the kernel spreads requests over the shards.
async fn sign_in_fresh(server: &TestServer, fx: &Fixture, email: &str) -> u16 {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    client
        .post(server.url("/v2/auth/login"))
        .json(&json!({
            "tenant_id": fx.slug(),
            "client_id": fx.client_id(),
            "email": email,
            "password": PASSWORD,
        }))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn without_redis_each_instance_has_its_own_limit_shared_by_its_shards() {
    let p = pair(
        &[
            ("HELLOJOHN_RATE_LIMIT_SIGN_IN", "5/1m"),
            ("HELLOJOHN_SHARDS", "2"),
        ],
        None,
    )
    .await;
    for s in [&p.a, &p.b] {
        let (status, body) = s.health().await;
        assert_eq!(
            (status, body["components"]["redis"].as_str()),
            (200, Some("disabled"))
        );
    }
    // Each instance: 5 of 16 over fresh connections, whichever shard takes each.
    let mut total = 0;
    for s in [&p.a, &p.b] {
        let mut ok = 0;
        for _ in 0..16 {
            match sign_in_fresh(s, &p.fx, &p.email).await {
                200 => ok += 1,
                429 => {}
                other => panic!("status {other}"),
            }
        }
        assert_eq!(ok, 5, "one limiter for all shards of an instance");
        let text = s.metrics().await;
        for shard in ["0", "1"] {
            let series = format!(r#"hellojohn_shard_connections_total{{shard="{shard}"}}"#);
            assert!(
                crate::support::metric(&text, &series).unwrap_or(0.0) > 0.0,
                "shard {shard} served connections"
            );
        }
        total += ok;
    }
    assert_eq!(total, 10, "without Redis every instance admits its own N");
}

async fn session_login(server: &TestServer, p: &Pair) -> String {
    let resp = server
        .post_json(
            "/v2/session/login",
            &json!({
                "tenant_id": p.fx.slug(),
                "client_id": p.fx.client_id(),
                "email": p.email,
                "password": PASSWORD,
            }),
        )
        .await;
    assert_eq!(resp.status(), 204);
    cookie_value(&set_cookies(&resp), "sid").expect("a session cookie")
}

async fn me_with_cookie(server: &TestServer, sid: &str) -> u16 {
    server
        .client
        .get(server.url("/v2/me"))
        .header("cookie", format!("sid={sid}"))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

async fn logout_cookie(server: &TestServer, sid: &str) {
    // The session's CSRF token (the same on every instance of one deployment).
    let resp = server
        .client
        .get(server.url("/v2/csrf"))
        .header("cookie", format!("sid={sid}"))
        .send()
        .await
        .unwrap();
    let (_, body) = status_and_json(resp).await;
    let csrf = body["csrf_token"].as_str().unwrap().to_string();
    let resp = server
        .client
        .post(server.url("/v2/auth/logout"))
        .header("cookie", format!("sid={sid}; csrf_token={csrf}"))
        .header("x-csrf-token", csrf)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
}

async fn sessions_across_instances(url: &str) {
    let p = pair(&[("HELLOJOHN_RATE_LIMIT_SIGN_IN", "100/1m")], Some(url)).await;
    // Signed in on A, known on B.
    let sid = session_login(&p.a, &p).await;
    assert_eq!(me_with_cookie(&p.b, &sid).await, 200);
    assert_eq!(me_with_cookie(&p.a, &sid).await, 200);
    // Signed out on A: refused on B from its very next request.
    logout_cookie(&p.a, &sid).await;
    assert_eq!(me_with_cookie(&p.b, &sid).await, 401);
    assert_eq!(me_with_cookie(&p.a, &sid).await, 401);

    // The session check is served from the shared cache, not the database: a revocation
    // written to the database behind the engine's back is not seen while the entry lives.
    let sid = session_login(&p.a, &p).await;
    assert_eq!(me_with_cookie(&p.b, &sid).await, 200);
    p.a.store()
        .revoke_session(auth::hash_opaque(&sid), None, engine::unix_now())
        .await
        .unwrap();
    assert_eq!(
        me_with_cookie(&p.b, &sid).await,
        200,
        "served from the cache"
    );
    // Signing out through the engine (here on B) reaches the cache: A refuses it too.
    logout_cookie(&p.b, &sid).await;
    assert_eq!(me_with_cookie(&p.a, &sid).await, 401);

    // Signing out everywhere (Bearer of the user) reaches every cached session.
    let sid1 = session_login(&p.a, &p).await;
    let sid2 = session_login(&p.b, &p).await;
    assert_eq!(me_with_cookie(&p.a, &sid2).await, 200);
    assert_eq!(me_with_cookie(&p.b, &sid1).await, 200);
    let (_, tokens) = p.b.login(&p.fx, &p.email, PASSWORD).await;
    let token = tokens["access_token"].as_str().unwrap();
    let resp =
        p.a.post_json_bearer("/v2/auth/logout-all", token, &json!({}))
            .await;
    assert_eq!(resp.status(), 204);
    for s in [&p.a, &p.b] {
        assert_eq!(me_with_cookie(s, &sid1).await, 401);
        assert_eq!(me_with_cookie(s, &sid2).await, 401);
    }
}

#[tokio::test]
async fn logout_on_one_instance_is_seen_by_the_other_standalone_redis() {
    let _g = STANDALONE.lock().await;
    sessions_across_instances(&env("HJ_TEST_REDIS_URL")).await;
}

#[tokio::test]
async fn logout_on_one_instance_is_seen_by_the_other_redis_cluster() {
    sessions_across_instances(&env("HJ_TEST_REDIS_CLUSTER_URL")).await;
}

#[tokio::test]
async fn without_redis_sessions_are_read_from_the_database() {
    let p = pair(&[], None).await;
    let sid = session_login(&p.a, &p).await;
    assert_eq!(me_with_cookie(&p.b, &sid).await, 200);
    p.a.store()
        .revoke_session(auth::hash_opaque(&sid), None, engine::unix_now())
        .await
        .unwrap();
    assert_eq!(me_with_cookie(&p.b, &sid).await, 401);
}

#[tokio::test]
async fn forwarded_for_is_believed_only_from_trusted_proxies() {
    // Untrusted peer: whatever X-Forwarded-For says, the key is the socket peer.
    let p = pair(&[("HELLOJOHN_RATE_LIMIT_SIGN_IN", "3/1m")], None).await;
    let mut ok = 0;
    for i in 0..8 {
        let xff = format!("198.51.100.{i}");
        let resp = sign_in(&p.a, &p.fx, &p.email, PASSWORD, Some(&xff)).await;
        if resp.status() == 200 {
            ok += 1;
        }
    }
    assert_eq!(ok, 3, "a forged X-Forwarded-For does not change the key");

    // Trusted proxy (the test client on 127.0.0.1): each reported client has its own bucket.
    let p = pair(
        &[
            ("HELLOJOHN_RATE_LIMIT_SIGN_IN", "3/1m"),
            ("HELLOJOHN_TRUSTED_PROXIES", "127.0.0.1/32"),
        ],
        None,
    )
    .await;
    for client in ["198.51.100.1", "198.51.100.2"] {
        let mut ok = 0;
        for _ in 0..5 {
            if sign_in(&p.a, &p.fx, &p.email, PASSWORD, Some(client))
                .await
                .status()
                == 200
            {
                ok += 1;
            }
        }
        assert_eq!(ok, 3, "{client} has its own bucket");
    }
    // The client prepends a forged hop; the right-most untrusted address (what our proxy saw)
    // is still the key, so the forgery buys nothing.
    let resp = sign_in(
        &p.a,
        &p.fx,
        &p.email,
        PASSWORD,
        Some("203.0.113.50, 198.51.100.1"),
    )
    .await;
    assert_eq!(resp.status(), 429);
    // A new client behind the proxy is fresh.
    let resp = sign_in(&p.a, &p.fx, &p.email, PASSWORD, Some("198.51.100.3")).await;
    assert_eq!(resp.status(), 200);
    // X-Real-IP is not the configured header (HELLOJOHN_CLIENT_IP_HEADER defaults to
    // x-forwarded-for): ignored, so every request without X-Forwarded-For is the peer's, whatever
    // X-Real-IP it names.
    let mut ok = 0;
    for i in 0..4 {
        let resp = sign_in_real_ip(&p, &format!("198.51.100.{}", 20 + i), None).await;
        if resp.status() == 200 {
            ok += 1;
        }
    }
    assert_eq!(ok, 3, "one bucket: the peer's");
}

/// One sign-in on instance `a` naming the client in `X-Real-IP` (and `xff`, when set, in
/// `X-Forwarded-For`).
async fn sign_in_real_ip(p: &Pair, real_ip: &str, xff: Option<&str>) -> reqwest::Response {
    let mut req =
        p.a.client
            .post(p.a.url("/v2/auth/login"))
            .header("x-real-ip", real_ip)
            .json(&json!({
                "tenant_id": p.fx.slug(),
                "client_id": p.fx.client_id(),
                "email": p.email,
                "password": PASSWORD,
            }));
    if let Some(x) = xff {
        req = req.header("x-forwarded-for", x);
    }
    req.send().await.unwrap()
}

#[tokio::test]
async fn x_real_ip_mode_believes_only_x_real_ip() {
    // A proxy that sets only X-Real-IP passes the client's own X-Forwarded-For through: with
    // HELLOJOHN_CLIENT_IP_HEADER=x-real-ip, that header is ignored.
    let p = pair(
        &[
            ("HELLOJOHN_RATE_LIMIT_SIGN_IN", "3/1m"),
            ("HELLOJOHN_TRUSTED_PROXIES", "127.0.0.1/32"),
            ("HELLOJOHN_CLIENT_IP_HEADER", "x-real-ip"),
        ],
        None,
    )
    .await;
    // The client at 198.51.100.9 forges a new X-Forwarded-For on every attempt: one bucket.
    let mut ok = 0;
    for i in 0..6 {
        let forged = format!("203.0.113.{i}");
        let resp = sign_in_real_ip(&p, "198.51.100.9", Some(&forged)).await;
        if resp.status() == 200 {
            ok += 1;
        }
    }
    assert_eq!(ok, 3, "a forged X-Forwarded-For does not change the key");
    // Another client behind the proxy has its own bucket.
    let resp = sign_in_real_ip(&p, "198.51.100.10", Some("203.0.113.1")).await;
    assert_eq!(resp.status(), 200);
    // X-Forwarded-For alone names nobody: the key is the peer's, fresh until now.
    for _ in 0..3 {
        let resp = sign_in(&p.a, &p.fx, &p.email, PASSWORD, Some("198.51.100.9")).await;
        assert_eq!(resp.status(), 200);
    }
    let resp = sign_in(&p.a, &p.fx, &p.email, PASSWORD, Some("198.51.100.11")).await;
    assert_eq!(resp.status(), 429);
}

fn header_u64(resp: &reqwest::Response, name: &str) -> u64 {
    resp.headers()
        .get(name)
        .unwrap_or_else(|| panic!("{name} missing"))
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

#[tokio::test]
async fn rejections_carry_headers_and_cost_no_hash() {
    let p = pair(
        &[
            ("HELLOJOHN_RATE_LIMIT_SIGN_IN", "2/1m"),
            ("HELLOJOHN_RATE_LIMIT_TOKEN", "2/1m"),
            ("HELLOJOHN_RATE_LIMIT_SIGN_UP", "2/1m"),
        ],
        None,
    )
    .await;
    let s = &p.a;
    // Admitted sign-ins report the limit too.
    for want_remaining in [1, 0] {
        let resp = sign_in(s, &p.fx, &p.email, PASSWORD, None).await;
        assert_eq!(resp.status(), 200);
        assert_eq!(header_u64(&resp, "x-ratelimit-limit"), 2);
        assert_eq!(header_u64(&resp, "x-ratelimit-remaining"), want_remaining);
        let reset = header_u64(&resp, "x-ratelimit-reset");
        assert!((1..=60).contains(&reset), "{reset}");
        assert!(resp.headers().get("retry-after").is_none());
    }
    let hashes = s.metric_value(HASHES).await;
    let resp = sign_in(s, &p.fx, &p.email, PASSWORD, None).await;
    assert_eq!(resp.status(), 429);
    let retry = header_u64(&resp, "retry-after");
    assert!((1..=30).contains(&retry), "{retry}");
    assert_eq!(header_u64(&resp, "x-ratelimit-limit"), 2);
    assert_eq!(header_u64(&resp, "x-ratelimit-remaining"), 0);
    let reset = header_u64(&resp, "x-ratelimit-reset");
    assert!((31..=60).contains(&reset), "{reset}");
    let (_, body) = status_and_json(resp).await;
    assert_eq!(body["code"], "RATE_LIMIT_EXCEEDED");
    // Session login shares the sign-in limit.
    let resp = s
        .post_json(
            "/v2/session/login",
            &json!({
                "tenant_id": p.fx.slug(),
                "client_id": p.fx.client_id(),
                "email": p.email,
                "password": PASSWORD,
            }),
        )
        .await;
    assert_eq!(resp.status(), 429);
    assert!(resp.headers().get("retry-after").is_some());
    assert_eq!(
        s.metric_value(HASHES).await,
        hashes,
        "no hash for a rejection"
    );
    let text = s.metrics().await;
    let m = |series: &str| crate::support::metric(&text, series).unwrap_or(0.0);
    assert_eq!(
        m(r#"hellojohn_rate_limit_rejections_total{limit="sign_in"}"#),
        2.0
    );
    assert_eq!(
        m(r#"hellojohn_auth_sign_ins_total{method="password",status="rate_limited"}"#),
        1.0
    );
    assert_eq!(
        m(r#"hellojohn_auth_sign_ins_total{method="session",status="rate_limited"}"#),
        1.0
    );

    // Token endpoints: /v2/auth/refresh and /oauth2/token share one limit per IP.
    let (status, _) = s.refresh(p.fx.client_id(), "not-a-token").await;
    assert_eq!(status, 401);
    let (status, _) = s.refresh(p.fx.client_id(), "not-a-token").await;
    assert_eq!(status, 401);
    let resp = s
        .post_form(
            "/oauth2/token",
            &[
                ("grant_type", "refresh_token"),
                ("client_id", p.fx.client_id()),
                ("refresh_token", "not-a-token"),
            ],
        )
        .await;
    assert_eq!(resp.status(), 429, "429 in the OAuth shape too");
    assert!(header_u64(&resp, "retry-after") >= 1);
    assert_eq!(header_u64(&resp, "x-ratelimit-remaining"), 0);
    let (_, body) = status_and_json(resp).await;
    assert!(body["error"].is_string(), "{body}");
    // A refused client_credentials request is counted under its own grant.
    let resp = s
        .post_form(
            "/oauth2/token",
            &[
                ("grant_type", "client_credentials"),
                ("client_id", "x"),
                ("client_secret", "y"),
            ],
        )
        .await;
    assert_eq!(resp.status(), 429);
    assert_eq!(
        s.metric_value(
            r#"hellojohn_auth_sign_ins_total{method="client_credentials",status="rate_limited"}"#
        )
        .await,
        1.0
    );
    let (status, body) = s.refresh(p.fx.client_id(), "not-a-token").await;
    assert_eq!(
        (status, body["code"].as_str()),
        (429, Some("RATE_LIMIT_EXCEEDED"))
    );
    assert_eq!(
        s.metric_value(r#"hellojohn_auth_sign_ins_total{method="refresh",status="rate_limited"}"#)
            .await,
        2.0
    );
    assert_eq!(
        s.metric_value(r#"hellojohn_rate_limit_rejections_total{limit="token"}"#)
            .await,
        3.0
    );

    // Sign-up: the pair's set-up registered once already.
    let reg = |email: String| {
        let body = json!({
            "tenant_id": p.fx.slug(),
            "client_id": p.fx.client_id(),
            "email": email,
            "password": PASSWORD,
        });
        async move { s.post_json("/v2/auth/register", &body).await }
    };
    assert_eq!(
        reg(format!("{}@example.com", unique("u"))).await.status(),
        200
    );
    let hashes = s.metric_value(HASHES).await;
    let resp = reg(format!("{}@example.com", unique("u"))).await;
    assert_eq!(resp.status(), 429);
    assert!(header_u64(&resp, "retry-after") >= 1);
    assert_eq!(s.metric_value(HASHES).await, hashes);
}

#[tokio::test]
async fn failed_sign_ins_are_limited_per_account_before_hashing() {
    let p = pair(
        &[
            ("HELLOJOHN_RATE_LIMIT_SIGN_IN", "100/1m"),
            ("HELLOJOHN_RATE_LIMIT_FAILED_SIGN_IN", "3/15m"),
        ],
        None,
    )
    .await;
    let other = format!("{}@example.com", unique("other"));
    p.a.register(&p.fx, &other).await;
    // Three failures (the email's case does not make another account).
    for email in [p.email.clone(), p.email.to_uppercase(), p.email.clone()] {
        let resp = sign_in(&p.a, &p.fx, &email, "Wrong-Password-1", None).await;
        assert_eq!(resp.status(), 401);
    }
    // The account is now refused, even with the right password, without a hash.
    let hashes = p.a.metric_value(HASHES).await;
    let resp = sign_in(&p.a, &p.fx, &p.email, PASSWORD, None).await;
    assert_eq!(resp.status(), 429);
    let retry = header_u64(&resp, "retry-after");
    assert!((1..=300).contains(&retry), "{retry}");
    assert_eq!(header_u64(&resp, "x-ratelimit-limit"), 3);
    assert_eq!(p.a.metric_value(HASHES).await, hashes);
    assert_eq!(
        p.a.metric_value(r#"hellojohn_rate_limit_rejections_total{limit="failed_sign_in"}"#)
            .await,
        1.0
    );
    assert_eq!(
        p.a.metric_value(
            r#"hellojohn_auth_sign_ins_total{method="password",status="rate_limited"}"#
        )
        .await,
        1.0
    );
    // Another account from the same IP is unaffected; the limited one is limited everywhere
    // (this pair has no Redis, so "everywhere" is this instance).
    let (status, _) = p.a.login(&p.fx, &other, PASSWORD).await;
    assert_eq!(status, 200);
    let (status, _) = p.b.login(&p.fx, &other, PASSWORD).await;
    assert_eq!(status, 200);
}

/// 30 concurrent wrong passwords for one account with the limit at 5/15m: at most 5 are
/// hashed and answered 401, the rest are refused (429, or 503 when the pool is full) without
/// a hash. Successful sign-ins give their unit back, so they never use up the limit.
async fn concurrent_guesses_get_at_most_the_burst(redis: Option<&str>) {
    let p = pair(
        &[
            ("HELLOJOHN_RATE_LIMIT_SIGN_IN", "1000/1m"),
            ("HELLOJOHN_RATE_LIMIT_FAILED_SIGN_IN", "5/15m"),
        ],
        redis,
    )
    .await;
    // Ten good sign-ins in a row: each takes a unit before its hash and gives it back.
    for i in 0..10 {
        let resp = sign_in(&p.a, &p.fx, &p.email, PASSWORD, None).await;
        assert_eq!(resp.status(), 200, "good sign-in {i}");
    }
    let hashes = p.a.metric_value(HASHES).await;
    let mut tasks = Vec::new();
    for _ in 0..30 {
        let (client, url) = (p.a.client.clone(), p.a.url("/v2/auth/login"));
        let body = json!({
            "tenant_id": p.fx.slug(),
            "client_id": p.fx.client_id(),
            "email": p.email,
            "password": "Wrong-Password-1",
        });
        tasks.push(tokio::spawn(async move {
            let resp = client.post(url).json(&body).send().await.unwrap();
            resp.status().as_u16()
        }));
    }
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap());
    }
    let count = |s: u16| statuses.iter().filter(|&&x| x == s).count();
    assert!(count(401) <= 5, "{statuses:?}");
    assert!(count(401) >= 1, "{statuses:?}");
    assert_eq!(count(401) + count(429) + count(503), 30, "{statuses:?}");
    assert!(count(429) >= 25 - count(503), "{statuses:?}");
    let hashed = p.a.metric_value(HASHES).await - hashes;
    assert!(hashed <= 5.0, "{hashed} hashes for {statuses:?}");
    assert_eq!(
        hashed,
        count(401) as f64,
        "one hash per 401, none for the refusals"
    );
}

#[tokio::test]
async fn concurrent_wrong_passwords_are_limited_to_the_burst_locally() {
    concurrent_guesses_get_at_most_the_burst(None).await;
}

#[tokio::test]
async fn concurrent_wrong_passwords_are_limited_to_the_burst_with_redis() {
    let _g = STANDALONE.lock().await;
    concurrent_guesses_get_at_most_the_burst(Some(&env("HJ_TEST_REDIS_URL"))).await;
}

/// Restarts the standalone Redis when dropped, so a failing test leaves it running.
struct RedisBack;

impl Drop for RedisBack {
    fn drop(&mut self) {
        let _ = std::process::Command::new("bash")
            .arg(env("HJ_TEST_SERVICES_SH"))
            .arg("start-redis")
            .status();
    }
}

/// Polls `/health` of both instances until `components.redis` is `want` (status 200 all along).
async fn wait_redis_health(p: &Pair, want: &str) -> Duration {
    let t = Instant::now();
    loop {
        let mut all = true;
        for s in [&p.a, &p.b] {
            let (status, body) = s.health().await;
            assert_eq!(status, 200, "{body}");
            all &= body["components"]["redis"] == want;
        }
        if all {
            return t.elapsed();
        }
        assert!(
            t.elapsed() < Duration::from_secs(15),
            "redis never reported {want}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn redis_outage_degrades_to_local_limits_and_recovers() {
    let _g = STANDALONE.lock().await;
    let p = pair(
        &[
            ("HELLOJOHN_RATE_LIMIT_SIGN_IN", "3/1m"),
            // The test client plays a proxy, to give each phase a fresh client address.
            ("HELLOJOHN_TRUSTED_PROXIES", "127.0.0.1/32"),
        ],
        Some(&env("HJ_TEST_REDIS_URL")),
    )
    .await;
    let sid = session_login(&p.a, &p).await;
    assert_eq!(me_with_cookie(&p.b, &sid).await, 200);
    // Up: one limit for both.
    assert_eq!(alternate(&p, 8, Some("192.0.2.1")).await, (3, 5));

    // Redis goes away: requests keep being served, /health stays 200 and says degraded.
    let _back = RedisBack;
    services("stop-redis");
    let t = Instant::now();
    let (ok, limited) = alternate(&p, 8, Some("192.0.2.2")).await;
    let served = t.elapsed();
    assert_eq!(ok + limited, 8);
    assert_eq!(
        me_with_cookie(&p.b, &sid).await,
        200,
        "sessions from the database"
    );
    assert_eq!(me_with_cookie(&p.a, &sid).await, 200);
    let noticed = wait_redis_health(&p, "degraded").await;
    // Local limits: each instance admits its own 3 for a new client.
    assert_eq!(alternate(&p, 12, Some("192.0.2.3")).await, (6, 6));
    for s in [&p.a, &p.b] {
        assert!(s.metric_value("hellojohn_redis_fallbacks_total").await > 0.0);
    }
    // A sign-out while Redis is down still takes effect (database, and the mark is written
    // when Redis is back).
    let sid2 = session_login(&p.a, &p).await;
    logout_cookie(&p.a, &sid2).await;
    assert_eq!(me_with_cookie(&p.b, &sid2).await, 401);

    // Redis back: reconnected without a restart, the shared limit applies again.
    services("start-redis");
    let recovered = wait_redis_health(&p, "ok").await;
    assert_eq!(alternate(&p, 8, Some("192.0.2.4")).await, (3, 5));
    assert_eq!(me_with_cookie(&p.a, &sid).await, 200);
    assert_eq!(me_with_cookie(&p.b, &sid2).await, 401);
    eprintln!(
        "outage: 8 sign-ins served in {served:?}; degraded seen after {noticed:?}; \
         reconnected {recovered:?} after start-redis"
    );
}
