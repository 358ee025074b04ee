//! The Redis client against real Redis: the GCRA script, the session cache, degradation.
//! Needs `HJ_TEST_REDIS_URL` and `HJ_TEST_REDIS_CLUSTER_URL` (scripts/services.sh); fails
//! without them.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hellojohn_storage::redis::{
    AttemptLock, CachedSession, OutboxAttempt, Redis, RedisError, RedisOptions,
};
use store::{OutboxKind, Session, User};
use uuid::Uuid;

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run `bash scripts/services.sh start` and `source .hj-test/env`")
    })
}

async fn client(url: &str) -> (Redis, Arc<AtomicU64>) {
    let fallbacks = Arc::new(AtomicU64::new(0));
    let f = fallbacks.clone();
    let redis = Redis::connect(
        url,
        RedisOptions {
            key_prefix: format!("hj-test-{}:", Uuid::new_v4()),
            on_fallback: Some(Arc::new(move || {
                f.fetch_add(1, Ordering::Relaxed);
            })),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    (redis, fallbacks)
}

async fn gcra_semantics(url: &str) {
    let (redis, fallbacks) = client(url).await;
    assert!(redis.is_up(), "connected to {}", redis.kind());
    let interval = Duration::from_secs(10);
    // Many subjects, so that a cluster spreads them over its nodes.
    for s in 0..12 {
        let subject = format!("rl:test:{s}");
        for want in [2, 1, 0] {
            let r = redis.gcra(&subject, interval, 3, true).await.unwrap();
            assert!(r.allowed);
            assert_eq!(r.remaining, want);
        }
        // Looking changes nothing; the 4th request is refused until one interval passes.
        for _ in 0..2 {
            let r = redis.gcra(&subject, interval, 3, false).await.unwrap();
            assert!(!r.allowed);
        }
        let r = redis.gcra(&subject, interval, 3, true).await.unwrap();
        assert!(!r.allowed);
        assert!(
            r.retry_after > Duration::from_secs(9) && r.retry_after <= interval,
            "{r:?}"
        );
        assert!(r.reset > Duration::from_secs(29) && r.reset <= Duration::from_secs(30));
    }
    // A fast rate refills: 2 per 200 ms.
    let interval = Duration::from_millis(100);
    assert!(
        redis
            .gcra("rl:fast", interval, 2, true)
            .await
            .unwrap()
            .allowed
    );
    assert!(
        redis
            .gcra("rl:fast", interval, 2, true)
            .await
            .unwrap()
            .allowed
    );
    assert!(
        !redis
            .gcra("rl:fast", interval, 2, true)
            .await
            .unwrap()
            .allowed
    );
    tokio::time::sleep(Duration::from_millis(120)).await;
    assert!(
        redis
            .gcra("rl:fast", interval, 2, true)
            .await
            .unwrap()
            .allowed
    );
    assert_eq!(fallbacks.load(Ordering::Relaxed), 0);
    redis.ping().await.unwrap();
}

#[tokio::test]
async fn gcra_standalone() {
    gcra_semantics(&env("HJ_TEST_REDIS_URL")).await;
}

#[tokio::test]
async fn gcra_cluster() {
    gcra_semantics(&env("HJ_TEST_REDIS_CLUSTER_URL")).await;
}

fn session(user_id: Uuid, expires_at: i64) -> Session {
    Session {
        user: User {
            id: user_id,
            tenant_id: Uuid::now_v7(),
            email: "ada@example.com".into(),
            email_verified: true,
            name: None,
            custom_fields: store::Metadata::from(serde_json::json!({})),
            app_metadata: store::Metadata::from(serde_json::json!({})),
            disabled: false,
            disabled_reason: None,
            mfa_enabled: false,
            created_at: 1,
        },
        client_id: "web".into(),
        created_at: 2,
        expires_at,
        revoked_at: None,
        amr: vec!["pwd".into(), "otp".into(), "mfa".into()],
    }
}

async fn session_cache(url: &str) {
    let (redis, _) = client(url).await;
    let ttl = Duration::from_secs(60);
    let user = Uuid::now_v7();
    let (a, b, c) = ([1u8; 32], [2u8; 32], [3u8; 32]);
    assert_eq!(redis.session_get(&a).await.unwrap(), None);
    let s = session(user, 99);
    redis.session_put(&a, &s, ttl).await.unwrap();
    assert_eq!(
        redis.session_get(&a).await.unwrap(),
        Some(CachedSession::Live(Box::new(s.clone())))
    );
    // A sign-out mark wins over a later put (a read that raced the sign-out).
    redis.session_revoke(&a, ttl).await.unwrap();
    redis.session_put(&a, &s, ttl).await.unwrap();
    assert_eq!(
        redis.session_get(&a).await.unwrap(),
        Some(CachedSession::Revoked)
    );
    // Signing out everywhere reaches every cached session of the user.
    redis.session_put(&b, &s, ttl).await.unwrap();
    redis.session_put(&c, &s, ttl).await.unwrap();
    redis.revoke_user_sessions(user, ttl).await.unwrap();
    for id in [b, c] {
        assert_eq!(
            redis.session_get(&id).await.unwrap(),
            Some(CachedSession::Revoked)
        );
    }
    // Family marks.
    let fam = Uuid::now_v7();
    assert!(!redis.family_revoked(fam).await.unwrap());
    redis.family_revoke(fam, ttl).await.unwrap();
    assert!(redis.family_revoked(fam).await.unwrap());
}

#[tokio::test]
async fn session_cache_standalone() {
    session_cache(&env("HJ_TEST_REDIS_URL")).await;
}

#[tokio::test]
async fn session_cache_cluster() {
    session_cache(&env("HJ_TEST_REDIS_CLUSTER_URL")).await;
}

/// The guard of one outbox attempt, of either kind: one holder; released only by its holder; a
/// done mark wins; a new attempt (or a webhook's new generation) is another key.
async fn attempt_guard(url: &str) {
    let (redis, _) = client(url).await;
    let ttl = Duration::from_secs(30);
    for kind in OutboxKind::ALL {
        for _ in 0..6 {
            let attempt = OutboxAttempt {
                kind,
                id: Uuid::new_v4(),
                generation: 0,
                attempts: 0,
            };
            let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
            assert_eq!(
                redis.attempt_lock(&attempt, a, ttl).await.unwrap(),
                AttemptLock::Acquired
            );
            assert_eq!(
                redis.attempt_lock(&attempt, b, ttl).await.unwrap(),
                AttemptLock::Held
            );
            redis.attempt_release(&attempt, b).await.unwrap();
            assert_eq!(
                redis.attempt_lock(&attempt, b, ttl).await.unwrap(),
                AttemptLock::Held
            );
            redis.attempt_release(&attempt, a).await.unwrap();
            assert_eq!(
                redis.attempt_lock(&attempt, b, ttl).await.unwrap(),
                AttemptLock::Acquired
            );
            redis.attempt_done(&attempt, ttl).await.unwrap();
            assert_eq!(
                redis.attempt_lock(&attempt, a, ttl).await.unwrap(),
                AttemptLock::Done
            );
            redis.attempt_release(&attempt, b).await.unwrap();
            assert_eq!(
                redis.attempt_lock(&attempt, a, ttl).await.unwrap(),
                AttemptLock::Done
            );
            // The other kind's attempt of the same id is another key.
            let other_kind = OutboxAttempt {
                kind: OutboxKind::ALL.into_iter().find(|k| *k != kind).unwrap(),
                ..attempt
            };
            assert_eq!(
                redis.attempt_lock(&other_kind, a, ttl).await.unwrap(),
                AttemptLock::Acquired
            );
            let next = OutboxAttempt {
                attempts: 1,
                ..attempt
            };
            assert_eq!(
                redis.attempt_lock(&next, a, ttl).await.unwrap(),
                AttemptLock::Acquired
            );
            // A mail has no generation: only a webhook delivery's redelivery is a new key.
            let redelivered = OutboxAttempt {
                generation: 1,
                ..attempt
            };
            let want = match kind {
                OutboxKind::Mail => AttemptLock::Done,
                OutboxKind::Webhook => AttemptLock::Acquired,
            };
            assert_eq!(
                redis.attempt_lock(&redelivered, a, ttl).await.unwrap(),
                want
            );
        }
        // The guard expires with its holder's lease.
        let attempt = OutboxAttempt {
            kind,
            id: Uuid::new_v4(),
            generation: 0,
            attempts: 0,
        };
        let short = Duration::from_millis(50);
        assert_eq!(
            redis
                .attempt_lock(&attempt, Uuid::new_v4(), short)
                .await
                .unwrap(),
            AttemptLock::Acquired
        );
        tokio::time::sleep(Duration::from_millis(120)).await;
        assert_eq!(
            redis
                .attempt_lock(&attempt, Uuid::new_v4(), ttl)
                .await
                .unwrap(),
            AttemptLock::Acquired
        );
    }
}

#[tokio::test]
async fn attempt_guard_standalone() {
    attempt_guard(&env("HJ_TEST_REDIS_URL")).await;
}

#[tokio::test]
async fn attempt_guard_cluster() {
    attempt_guard(&env("HJ_TEST_REDIS_CLUSTER_URL")).await;
}

/// The guard's keys and marks are those of the release that had one guard per kind, so that
/// during a rolling upgrade both releases guard the same attempts: a mark either writes, the
/// other reads.
#[tokio::test]
async fn attempt_guard_keeps_the_previous_keys() {
    let url = env("HJ_TEST_REDIS_URL");
    let prefix = format!("hj-test-{}:", Uuid::new_v4());
    let redis = Redis::connect(
        &url,
        RedisOptions {
            key_prefix: prefix.clone(),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let mut raw = ::redis::Client::open(url.as_str())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let ttl = Duration::from_secs(30);
    for (kind, key, mark) in [
        (OutboxKind::Mail, "mail:{id}:3", "sent"),
        (OutboxKind::Webhook, "wh:{id}:2:3", "delivered"),
    ] {
        // Marked by this release: the previous release's key holds its mark.
        let id = Uuid::new_v4();
        let attempt = OutboxAttempt {
            kind,
            id,
            generation: 2,
            attempts: 3,
        };
        redis.attempt_done(&attempt, ttl).await.unwrap();
        let full = format!("{prefix}{}", key.replace("{id}", &id.to_string()));
        let value: Option<String> = ::redis::cmd("GET")
            .arg(&full)
            .query_async(&mut raw)
            .await
            .unwrap();
        assert_eq!(value.as_deref(), Some(mark), "{full}");
        // Marked by the previous release: this one reads it as done.
        let id = Uuid::new_v4();
        let full = format!("{prefix}{}", key.replace("{id}", &id.to_string()));
        let () = ::redis::cmd("SET")
            .arg(&full)
            .arg(mark)
            .arg("PX")
            .arg(30_000)
            .query_async(&mut raw)
            .await
            .unwrap();
        let attempt = OutboxAttempt { id, ..attempt };
        assert_eq!(
            redis
                .attempt_lock(&attempt, Uuid::new_v4(), ttl)
                .await
                .unwrap(),
            AttemptLock::Done,
            "{full}"
        );
        // Held by the previous release (its token): held.
        let id = Uuid::new_v4();
        let full = format!("{prefix}{}", key.replace("{id}", &id.to_string()));
        let () = ::redis::cmd("SET")
            .arg(&full)
            .arg(Uuid::new_v4().to_string())
            .arg("PX")
            .arg(30_000)
            .query_async(&mut raw)
            .await
            .unwrap();
        let attempt = OutboxAttempt { id, ..attempt };
        assert_eq!(
            redis
                .attempt_lock(&attempt, Uuid::new_v4(), ttl)
                .await
                .unwrap(),
            AttemptLock::Held,
            "{full}"
        );
    }
}

#[tokio::test]
async fn unreachable_redis_fails_fast_and_counts_fallbacks() {
    // A port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let t = Instant::now();
    let (redis, fallbacks) = client(&format!("redis://127.0.0.1:{port}/0")).await;
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
    assert!(!redis.is_up());
    let t = Instant::now();
    for _ in 0..100 {
        let e = redis
            .gcra("rl:x", Duration::from_secs(1), 1, true)
            .await
            .unwrap_err();
        assert!(matches!(e, RedisError::Unavailable), "{e}");
    }
    assert!(redis.session_get(&[0; 32]).await.is_err());
    assert!(
        t.elapsed() < Duration::from_millis(100),
        "{:?}",
        t.elapsed()
    );
    assert_eq!(fallbacks.load(Ordering::Relaxed), 101);
}

#[tokio::test]
async fn bad_urls_are_refused() {
    for url in [
        "http://h:1",
        "redis+cluster://a:1,b:2/5",
        "redis+cluster:///0",
    ] {
        assert!(
            matches!(
                Redis::connect(url, RedisOptions::default()).await,
                Err(RedisError::InvalidUrl(_))
            ),
            "{url}"
        );
    }
}

#[tokio::test]
async fn hung_redis_does_not_hold_up_the_start() {
    // Accepts connections and never answers: a blackholed Redis.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let held = tokio::spawn(async move {
        let mut conns = Vec::new();
        while let Ok((c, _)) = listener.accept().await {
            conns.push(c);
        }
    });
    let t = Instant::now();
    let (redis, _) = client(&format!("redis://127.0.0.1:{port}/0")).await;
    let took = t.elapsed();
    assert!(took < Duration::from_millis(2500), "{took:?}");
    assert!(!redis.is_up());
    let t = Instant::now();
    assert!(redis.ping().await.is_err());
    assert!(t.elapsed() < Duration::from_millis(50));
    held.abort();
}

/// A private redis-server on `port`, killed on drop.
struct Server(std::process::Child);

impl Server {
    fn start(port: u16) -> Server {
        let child = std::process::Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("redis-server (scripts/services.sh install-deps)");
        Server(child)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn wait_for(what: &str, limit: Duration, mut f: impl FnMut() -> bool) -> Duration {
    let t = Instant::now();
    while !f() {
        assert!(t.elapsed() < limit, "{what} not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    t.elapsed()
}

#[tokio::test]
async fn a_dead_connection_opens_the_breaker_and_a_restart_closes_it() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let server = Server::start(port);
    let url = format!("redis://127.0.0.1:{port}/0");
    let redis = Redis::connect(
        &url,
        RedisOptions {
            // Slow heartbeat: the failing operation, not the heartbeat, must open the breaker.
            probe_interval: Duration::from_secs(2),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    wait_for("first connection", Duration::from_secs(10), || {
        redis.is_up()
    })
    .await;
    assert!(
        redis
            .gcra("rl:t", Duration::from_secs(1), 5, true)
            .await
            .unwrap()
            .allowed
    );
    drop(server);
    let t = Instant::now();
    let mut failed = false;
    for _ in 0..3 {
        failed |= redis
            .gcra("rl:t", Duration::from_secs(1), 5, true)
            .await
            .is_err();
    }
    assert!(failed);
    assert!(!redis.is_up(), "the breaker is open");
    assert!(
        t.elapsed() < Duration::from_millis(800),
        "{:?}",
        t.elapsed()
    );
    let _server = Server::start(port);
    let back = wait_for("reconnect", Duration::from_secs(10), || redis.is_up()).await;
    assert!(back < Duration::from_secs(5), "{back:?}");
    assert!(redis
        .gcra("rl:t", Duration::from_secs(1), 5, true)
        .await
        .is_ok());
}
