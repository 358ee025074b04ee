//! Issue 25, "faults are faults": during a PostgreSQL outage the authorization endpoint, the
//! hosted sign-in page and `/v2/auth/config` answer 503 with `Retry-After` (a page for the
//! pages), never "unknown client"; after the outage the same requests are served again.

use crate::code_flow::authorize_path;
use crate::shared_client_ids::database_of;
use crate::support::TestServer;

#[tokio::test]
async fn a_database_outage_is_503_on_the_pages_and_config_then_served_again() {
    if crate::support::test_store() != "postgres" {
        // Only a server's own PostgreSQL can be taken away under it (see shared_client_ids).
        return;
    }
    let srv = TestServer::start().await;
    let fx = srv.fixture().await;
    crate::code_flow::spa(&srv, &fx, "cold-spa").await;
    let url = srv.handle().app().config.database_url.clone().unwrap();
    let db = database_of(url.expose());
    let admin = testkit::pg::admin(&testkit::require_env("HJ_TEST_DATABASE_URL")).await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let authorize = authorize_path("cold-spa", &[]);
    let login = format!(
        "/oauth2/login?{}",
        form_urlencoded::Serializer::new(String::new())
            .append_pair("return_to", &authorize)
            .finish()
    );
    let config = "/v2/auth/config?client_id=cold-spa".to_string();
    admin
        .batch_execute(&format!(
            "ALTER DATABASE {db} ALLOW_CONNECTIONS false; \
             SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{db}'"
        ))
        .await
        .unwrap();
    // The client was never looked up by this server: its cache cannot answer, the store must.
    for path in [&authorize, &login, &config] {
        let resp = http.get(srv.url(path)).send().await.unwrap();
        assert_eq!(resp.status(), 503, "{path}");
        assert_eq!(resp.headers()["retry-after"], "2", "{path}");
        let html = resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html");
        let body = resp.text().await.unwrap();
        if path == &config {
            assert!(body.contains("SERVICE_UNAVAILABLE"), "{body}");
        } else {
            assert!(
                html && body.contains("temporarily_unavailable"),
                "{path}: {body}"
            );
        }
    }
    admin
        .batch_execute(&format!("ALTER DATABASE {db} ALLOW_CONNECTIONS true"))
        .await
        .unwrap();
    // Served again: the sign-in page, the authorize redirect, the config.
    let mut served = false;
    for _ in 0..50 {
        let a = http.get(srv.url(&authorize)).send().await.unwrap();
        if a.status() == 302 {
            served = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(served, "authorize is served after the outage");
    assert_eq!(
        http.get(srv.url(&login)).send().await.unwrap().status(),
        200
    );
    assert_eq!(
        http.get(srv.url(&config)).send().await.unwrap().status(),
        200
    );
    srv.stop().await;
}
