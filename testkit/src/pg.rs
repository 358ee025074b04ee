//! PostgreSQL for tests: URL rewriting, an administration connection, and a database per test
//! case, reachable directly and through PgBouncer.

use tokio_postgres::NoTls;
use uuid::Uuid;

use crate::require_env;

/// `url` with its database name replaced by `db` (query parameters kept).
pub fn with_database(url: &str, db: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let authority_end = base[scheme_end..]
        .find('/')
        .map(|i| scheme_end + i)
        .unwrap_or(base.len());
    let mut out = format!("{}/{db}", &base[..authority_end]);
    if let Some(query) = query {
        out.push('?');
        out.push_str(query);
    }
    out
}

/// `url` with `sslmode` (and any `sslrootcert`) replaced by `params` (e.g.
/// `sslmode=verify-full&sslrootcert=/path`).
pub fn with_ssl(url: &str, params: &str) -> String {
    let (base, query) = url.split_once('?').unwrap_or((url, ""));
    let mut kept: Vec<&str> = query
        .split('&')
        .filter(|p| !p.is_empty() && !p.starts_with("sslmode=") && !p.starts_with("sslrootcert="))
        .collect();
    if !params.is_empty() {
        kept.push(params);
    }
    if kept.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", kept.join("&"))
    }
}

/// A plain connection (no TLS) for administration and checks behind the store's back. Its
/// driver runs on the current runtime.
pub async fn admin(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, NoTls)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to the test PostgreSQL: {e}"));
    tokio::spawn(async move {
        let _ = connection.await;
    });
    client
}

/// Creates `<prefix>_<uuid>` on `HJ_TEST_DATABASE_URL` and returns its name; nothing drops it
/// (for a server that outlives the test's values; the test services are thrown away after a
/// run).
pub async fn create_database(prefix: &str) -> String {
    let admin_url = require_env("HJ_TEST_DATABASE_URL");
    let name = format!("{prefix}_{}", Uuid::new_v4().simple());
    admin(&admin_url)
        .await
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .unwrap_or_else(|e| panic!("CREATE DATABASE {name}: {e}"));
    name
}

/// A database created for one test case on `HJ_TEST_DATABASE_URL`, dropped (best effort,
/// `WITH (FORCE)`) on drop.
pub struct TestDb {
    pub name: String,
    admin_url: String,
}

impl TestDb {
    /// `CREATE DATABASE <prefix>_<uuid>` over a direct connection.
    pub async fn create(prefix: &str) -> TestDb {
        let name = create_database(prefix).await;
        TestDb {
            name,
            admin_url: require_env("HJ_TEST_DATABASE_URL"),
        }
    }

    /// The database, directly.
    pub fn direct_url(&self) -> String {
        with_database(&self.admin_url, &self.name)
    }

    /// The database through PgBouncer (transaction pooling; its `[databases]` has `*`).
    pub fn bouncer_url(&self) -> String {
        with_database(&require_env("HJ_TEST_PGBOUNCER_URL"), &self.name)
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        // Drop may run inside the test's runtime: a thread of its own with a runtime of its own.
        let (url, name) = (self.admin_url.clone(), self.name.clone());
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            runtime.block_on(async {
                let (client, connection) = tokio_postgres::connect(&url, NoTls).await.ok()?;
                tokio::spawn(async move {
                    let _ = connection.await;
                });
                client
                    .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .await
                    .ok()
            })
        })
        .join();
        if !matches!(dropped, Ok(Some(()))) {
            eprintln!("could not drop the test database {}", self.name);
        }
    }
}

/// Takes database `db` away from its clients: no new connection is accepted and every open one
/// is terminated. Terminated again until none is left for a while: a connection whose start-up
/// passed the `ALLOW_CONNECTIONS` check just before it changed would otherwise survive the first
/// round (seen under the full suite's load), and a test of the outage would talk to a live
/// database. `ALTER DATABASE {db} ALLOW_CONNECTIONS true` brings it back.
pub async fn take_database_away(admin: &tokio_postgres::Client, db: &str) {
    admin
        .batch_execute(&format!("ALTER DATABASE {db} ALLOW_CONNECTIONS false"))
        .await
        .unwrap_or_else(|e| panic!("cannot close {db}: {e}"));
    let mut quiet = 0;
    for _ in 0..100 {
        let left: i64 = admin
            .query_one(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
                 WHERE datname = $1 AND pid <> pg_backend_pid()",
                &[&db],
            )
            .await
            .unwrap_or_else(|e| panic!("cannot terminate the sessions of {db}: {e}"))
            .get(0);
        quiet = if left == 0 { quiet + 1 } else { 0 };
        if quiet == 3 {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(30)).await;
    }
    panic!("{db} still has sessions after 100 rounds of termination");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_rewriting() {
        assert_eq!(
            with_database(
                "postgresql://u:p@127.0.0.1:5/hellojohn?sslmode=disable",
                "x"
            ),
            "postgresql://u:p@127.0.0.1:5/x?sslmode=disable"
        );
        assert_eq!(with_database("postgres://h:5", "x"), "postgres://h:5/x");
        assert_eq!(
            with_database("postgresql://u@h/a/b?x=1", "y"),
            "postgresql://u@h/y?x=1"
        );
        assert_eq!(
            with_ssl("postgres://h/x?sslmode=disable&a=b", "sslmode=require"),
            "postgres://h/x?a=b&sslmode=require"
        );
        assert_eq!(
            with_ssl("postgres://h/x?sslmode=disable", ""),
            "postgres://h/x"
        );
    }
}
