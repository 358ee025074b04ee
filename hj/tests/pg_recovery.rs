//! PostgreSQL outage under load, end to end through `hj serve`: requests in flight fail with
//! 503 (never 500, never half-written), `/health` reports the database down, and service
//! resumes by itself once the database is back.
//!
//! This is the only test of its binary on purpose: it stops the shared test PostgreSQL, and
//! cargo runs test binaries one at a time, so no other test sees the outage.

mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use support::{hj, start_server};

use testkit::{require_env as env, services};

/// A fresh database on the test PostgreSQL; returns its URL.
async fn fresh_database() -> (String, tokio_postgres::Client) {
    let admin = env("HJ_TEST_DATABASE_URL");
    let db = format!("hj_rec_{}", std::process::id());
    let (client, conn) = tokio_postgres::connect(&admin, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    client
        .batch_execute(&format!("DROP DATABASE IF EXISTS {db}"))
        .await
        .unwrap();
    client
        .batch_execute(&format!("CREATE DATABASE {db}"))
        .await
        .unwrap();
    let (head, query) = admin.split_once('?').unwrap_or((&admin, ""));
    let base = &head[..head.rfind('/').unwrap()];
    (format!("{base}/{db}?{query}"), client)
}

const MASTER_KEY: &str = "202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_outage_gives_503_then_recovers_with_nothing_half_written() {
    let (url, _admin) = fresh_database().await;
    let admin_cmd = |args: &[&str]| {
        let out = hj()
            .args(args)
            .env("HELLOJOHN_DATABASE_URL", &url)
            .env("HELLOJOHN_LOG", "error")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "hj {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    admin_cmd(&["migrate"]);
    admin_cmd(&["tenant", "create", "--slug", "acme"]);
    admin_cmd(&["client", "create", "--tenant", "acme", "--client-id", "web"]);

    let srv = start_server(&[
        ("HELLOJOHN_DATABASE_URL", &url),
        ("HELLOJOHN_MASTER_KEY", MASTER_KEY),
        ("HELLOJOHN_RATE_LIMIT_ENABLED", "false"),
    ]);
    let base = format!("http://{}", srv.addr);
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(15))
        .build()
        .unwrap();
    let register = {
        let http = http.clone();
        let base = base.clone();
        move |email: String| {
            let http = http.clone();
            let base = base.clone();
            async move {
                let r = http
                .post(format!("{base}/v2/auth/register"))
                .json(&serde_json::json!({
                    "tenant_id": "acme", "client_id": "web", "email": email, "password": "Outage-proof-1"
                }))
                .send()
                .await
                .unwrap();
                let status = r.status().as_u16();
                let body: serde_json::Value = r.json().await.unwrap_or_default();
                (status, body)
            }
        }
    };
    assert_eq!(register("warm@example.com".into()).await.0, 200);

    // Load: four clients registering new users back to back.
    let stop = Arc::new(AtomicBool::new(false));
    let outcomes: Arc<Mutex<Vec<(String, u16, serde_json::Value)>>> = Arc::default();
    let mut tasks = Vec::new();
    for t in 0..4 {
        let stop = stop.clone();
        let outcomes = outcomes.clone();
        let register = register.clone();
        tasks.push(tokio::spawn(async move {
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                let email = format!("load-{t}-{i}@example.com");
                let (status, body) = register(email.clone()).await;
                outcomes.lock().unwrap().push((email, status, body));
                i += 1;
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;

    tokio::task::spawn_blocking(|| services("stop-postgres"))
        .await
        .unwrap();
    let health = http.get(format!("{base}/health")).send().await.unwrap();
    assert_eq!(health.status(), 503);
    let body: serde_json::Value = health.json().await.unwrap();
    assert_eq!(body["components"]["database"], "down", "{body}");
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let down_until = outcomes.lock().unwrap().len();
    tokio::task::spawn_blocking(|| services("start-postgres"))
        .await
        .unwrap();

    // Service resumes by itself: a registration succeeds again within seconds.
    let back = Instant::now();
    loop {
        let (status, _) =
            register(format!("probe-{}@example.com", back.elapsed().as_micros())).await;
        if status == 200 {
            break;
        }
        assert!(
            back.elapsed() < Duration::from_secs(10),
            "not recovered after 10 s (last status {status})"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.unwrap();
    }
    let health = http.get(format!("{base}/health")).send().await.unwrap();
    assert_eq!(health.status(), 200);

    let outcomes = outcomes.lock().unwrap().clone();
    let unavailable: Vec<_> = outcomes.iter().filter(|(_, s, _)| *s == 503).collect();
    assert!(
        !unavailable.is_empty(),
        "the outage produced no 503 among {} requests",
        outcomes.len()
    );
    for (_, status, body) in &outcomes {
        assert!(
            *status == 200 || *status == 503,
            "unexpected {status}: {body}"
        );
        if *status == 503 {
            assert_eq!(body["code"], "SERVICE_UNAVAILABLE", "{body}");
        }
    }
    assert!(
        outcomes[down_until..].iter().any(|(_, s, _)| *s == 200),
        "load succeeded again after the restart"
    );

    // Nothing half-written: every user has its password and its first refresh token, and every
    // 200 is a stored user.
    let (db, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    let orphans: i64 = db
        .query_one(
            "SELECT count(*) FROM users u WHERE NOT EXISTS (SELECT 1 FROM password_identities p WHERE p.user_id = u.id) \
             OR NOT EXISTS (SELECT 1 FROM refresh_tokens r WHERE r.user_id = u.id)",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(orphans, 0);
    for (email, status, _) in &outcomes {
        if *status == 200 {
            let n: i64 = db
                .query_one("SELECT count(*) FROM users WHERE email = $1", &[email])
                .await
                .unwrap()
                .get(0);
            assert_eq!(n, 1, "{email} answered 200 but is not stored");
        }
    }
    drop(srv);
}
