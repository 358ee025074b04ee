//! Proves the test-service harness (`scripts/services.sh`) works: PostgreSQL directly,
//! PostgreSQL through PgBouncer in transaction mode, standalone Redis and Redis Cluster.
//!
//! These tests need the services and FAIL (never skip) when the `HJ_TEST_*` variables are
//! missing. Run them with `scripts/test.sh`, or
//! `bash scripts/services.sh start && source .hj-test/env && cargo test ...`.

use redis::AsyncCommands;
use tokio_postgres::types::Type;
use tokio_postgres::NoTls;

/// The value of a harness variable, or a panic that says how to get it.
fn require_env(name: &str) -> String {
    match std::env::var(name) {
        Ok(value) if !value.is_empty() => value,
        _ => panic!(
            "{name} is not set: these tests need the test services. Run `scripts/test.sh`, \
             or `bash scripts/services.sh start && source .hj-test/env` before `cargo test`."
        ),
    }
}

async fn pg_connect(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, NoTls)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to {url}: {e}"));
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            eprintln!("postgres connection error: {e}");
        }
    });
    client
}

/// `redis+cluster://h1:p1,h2:p2,h3:p3/0` into `["redis://h1:p1", ...]` node URLs.
fn cluster_nodes(url: &str) -> Vec<String> {
    let rest = url
        .strip_prefix("redis+cluster://")
        .unwrap_or_else(|| panic!("not a redis+cluster:// URL: {url}"));
    // Cluster mode only has database 0, so the path is dropped.
    let hosts = rest.split('/').next().unwrap_or_default();
    let nodes: Vec<String> = hosts
        .split(',')
        .filter(|h| !h.is_empty())
        .map(|h| format!("redis://{h}"))
        .collect();
    assert!(!nodes.is_empty(), "no nodes in {url}");
    nodes
}

/// A key prefix unique to this run, so reruns against a live Redis do not collide.
fn key_prefix() -> String {
    format!("hj-services-test:{}", std::process::id())
}

#[tokio::test]
async fn postgres_direct_select_1() {
    let url = require_env("HJ_TEST_DATABASE_URL");
    let client = pg_connect(&url).await;
    let row = client.query_one("SELECT 1", &[]).await.expect("SELECT 1");
    assert_eq!(row.get::<_, i32>(0), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pgbouncer_transaction_pool_unnamed_statements() {
    let url = require_env("HJ_TEST_PGBOUNCER_URL");
    // Several clients at once, each sending unnamed (query_typed) statements: those are the
    // only kind that is safe under transaction pooling, where consecutive statements of one
    // client may run on different server connections.
    let mut tasks = Vec::new();
    for client_no in 0..8i32 {
        let url = url.clone();
        tasks.push(tokio::spawn(async move {
            let client = pg_connect(&url).await;
            for i in 0..25i32 {
                let val = client_no * 1000 + i;
                let rows = client
                    .query_typed("SELECT $1 + 1", &[(&val, Type::INT4)])
                    .await
                    .unwrap_or_else(|e| panic!("query_typed through PgBouncer: {e}"));
                assert_eq!(rows.len(), 1);
                assert_eq!(rows[0].get::<_, i32>(0), val + 1);
            }
            let msgs = client
                .simple_query("SELECT current_user")
                .await
                .expect("simple_query through PgBouncer");
            let user = msgs.iter().find_map(|m| match m {
                tokio_postgres::SimpleQueryMessage::Row(row) => row.get(0).map(str::to_owned),
                _ => None,
            });
            assert_eq!(user.as_deref(), Some("hellojohn"));
        }));
    }
    for task in tasks {
        task.await.expect("PgBouncer client task panicked");
    }
}

#[tokio::test]
async fn redis_standalone_ping_set_get() {
    let url = require_env("HJ_TEST_REDIS_URL");
    let client = redis::Client::open(url.as_str()).expect("redis URL");
    let mut con = client
        .get_multiplexed_async_connection()
        .await
        .unwrap_or_else(|e| panic!("cannot connect to {url}: {e}"));
    let pong: String = redis::cmd("PING")
        .query_async(&mut con)
        .await
        .expect("PING");
    assert_eq!(pong, "PONG");

    let key = format!("{}:standalone", key_prefix());
    let () = con.set_ex(&key, "value", 60).await.expect("SET");
    let got: Option<String> = con.get(&key).await.expect("GET");
    assert_eq!(got.as_deref(), Some("value"));
    let _: i64 = con.del(&key).await.expect("DEL");
}

#[test]
fn cluster_url_parsing() {
    assert_eq!(
        cluster_nodes("redis+cluster://127.0.0.1:7000,127.0.0.1:7001,127.0.0.1:7002/0"),
        [
            "redis://127.0.0.1:7000",
            "redis://127.0.0.1:7001",
            "redis://127.0.0.1:7002"
        ]
    );
    assert_eq!(
        cluster_nodes("redis+cluster://localhost:7000"),
        ["redis://localhost:7000"]
    );
}

#[tokio::test]
async fn redis_cluster_set_get_across_slots() {
    let url = require_env("HJ_TEST_REDIS_CLUSTER_URL");
    let nodes = cluster_nodes(&url);
    let client = redis::cluster::ClusterClient::new(nodes).expect("cluster client");
    let mut con = client
        .get_async_connection()
        .await
        .unwrap_or_else(|e| panic!("cannot connect to cluster {url}: {e}"));

    // Enough distinct keys to land in all three masters' slot ranges
    // (0-5460, 5461-10922, 10923-16383 for a 3-master cluster).
    let prefix = key_prefix();
    let mut ranges_hit = [false; 3];
    for i in 0..30 {
        let key = format!("{prefix}:{i}");
        let slot: i64 = redis::cmd("CLUSTER")
            .arg("KEYSLOT")
            .arg(&key)
            .query_async(&mut con)
            .await
            .expect("CLUSTER KEYSLOT");
        let range = match slot {
            0..=5460 => 0,
            5461..=10922 => 1,
            _ => 2,
        };
        ranges_hit[range] = true;

        let value = format!("v{i}");
        let () = con.set_ex(&key, &value, 60).await.expect("cluster SET");
        let got: Option<String> = con.get(&key).await.expect("cluster GET");
        assert_eq!(
            got.as_deref(),
            Some(value.as_str()),
            "key {key} (slot {slot})"
        );
        let _: i64 = con.del(&key).await.expect("cluster DEL");
    }
    assert_eq!(
        ranges_hit, [true; 3],
        "keys should have covered every master's slot range"
    );
}
