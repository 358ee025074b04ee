//! Issue 25, "faults are faults": during a PostgreSQL outage the authorization endpoint, the
//! hosted sign-in and sign-out pages, `/v2/auth/config`, `/v2/auth/logout` and the
//! client-authenticated OAuth endpoints (token, revoke, introspect) answer 503 with
//! `Retry-After` (a page for the pages), never "unknown client" or another denial; after the
//! outage the same requests are served again.

use crate::code_flow::authorize_path;
use crate::shared_client_ids::database_of;
use crate::support::{status_and_json, TestServer};

#[tokio::test]
async fn a_database_outage_is_503_on_the_pages_and_config_then_served_again() {
    if crate::support::test_store() != "postgres" {
        // Only a server's own PostgreSQL can be taken away under it (see shared_client_ids).
        return;
    }
    let srv = TestServer::start().await;
    let fx = srv.fixture().await;
    crate::code_flow::spa(&srv, &fx, "cold-spa").await;
    // A signed-in app (its tenant is now in the shard's cache, the client cold-spa is not).
    let reg = srv.register(&fx, "ada@example.com").await;
    let access = reg["access_token"].as_str().unwrap().to_string();
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
    let logout = "/oauth2/logout?client_id=cold-spa".to_string();
    let logout_body = serde_json::json!({
        "tenant_id": fx.slug(),
        "client_id": "cold-spa",
        "post_logout_redirect_uri": "https://app.example/bye",
    });
    let api_logout = || srv.post_json_bearer("/v2/auth/logout", &access, &logout_body);
    testkit::pg::take_database_away(&admin, &db).await;
    // The client was never looked up by this server: its cache cannot answer, the store must.
    for path in [&authorize, &login, &config, &logout] {
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
    // The API sign-out reads its client before it signs anything out.
    let resp = api_logout().await;
    assert_eq!(resp.headers()["retry-after"], "2");
    let (status, body) = status_and_json(resp).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["code"], "SERVICE_UNAVAILABLE", "{body}");
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
    let page = http.get(srv.url(&logout)).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("Sign out of Demo SPA?"));
    // The URI is not registered for cold-spa: signed out, no redirect.
    assert_eq!(api_logout().await.status(), 204);
    srv.stop().await;
}

/// A request of the outage test: what it is, its path, its `Authorization` and its form.
type Case = (
    &'static str,
    &'static str,
    Option<String>,
    Vec<(&'static str, String)>,
);

/// The client-authenticated OAuth endpoints during an outage: every grant of the token
/// endpoint, revocation and introspection answer 503 `temporarily_unavailable` with
/// `Retry-After`, for clients this server never looked up (its cache cannot answer) and for
/// cached clients whose request itself needs the store; never `invalid_client` or
/// `invalid_grant`. Nothing is consumed: the same code and refresh token work afterwards.
#[tokio::test]
async fn a_database_outage_is_503_on_token_revoke_and_introspect_then_served_again() {
    use crate::code_flow::{sign_in_for_code, spa, Browser, REDIRECT, VERIFIER};
    use crate::shared_client_ids::{basic, confidential, post};
    if crate::support::test_store() != "postgres" {
        // Only a server's own PostgreSQL can be taken away under it (see shared_client_ids).
        return;
    }
    const SECRET: &str = "outage-secret-0123456789abcdefghijklmnopqrstu";
    let srv = TestServer::start().await;
    let fx = srv.fixture().await;
    spa(&srv, &fx, "warm-spa").await;
    srv.register(&fx, "ada@example.com").await;
    // A code for warm-spa (its client is now in the shard's cache).
    let mut browser = Browser::new(&srv);
    let code = sign_in_for_code(
        &mut browser,
        &authorize_path("warm-spa", &[]),
        "ada@example.com",
    )
    .await;
    // A refresh token of acme-web, refreshed once so the client is cached by name.
    let reg = srv.register(&fx, "bob@example.com").await;
    let refresh_form = |token: &str| {
        vec![
            ("grant_type", "refresh_token".to_string()),
            ("client_id", fx.client_id().to_string()),
            ("refresh_token", token.to_string()),
        ]
    };
    let send = |path: &'static str, auth: Option<String>, form: Vec<(&'static str, String)>| {
        let srv = &srv;
        async move {
            let pairs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let mut req = srv.client.post(srv.url(path)).form(&pairs);
            if let Some(auth) = auth {
                req = req.header("authorization", auth);
            }
            req.send().await.unwrap()
        }
    };
    let (status, body) = post(
        &srv,
        "/oauth2/token",
        None,
        &[
            ("grant_type", "refresh_token"),
            ("client_id", fx.client_id()),
            ("refresh_token", reg["refresh_token"].as_str().unwrap()),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let refresh_token = body["refresh_token"].as_str().unwrap().to_string();
    // A confidential machine client, used once (cached), and one never used.
    confidential(
        &srv,
        &fx.tenant,
        "warm-m2m",
        SECRET,
        &["client_credentials"],
    )
    .await;
    confidential(
        &srv,
        &fx.tenant,
        "cold-m2m",
        SECRET,
        &["client_credentials"],
    )
    .await;
    let m2m = |id: &str| {
        vec![
            ("grant_type", "client_credentials".to_string()),
            ("client_id", id.to_string()),
            ("client_secret", SECRET.to_string()),
        ]
    };
    let (status, body) = status_and_json(send("/oauth2/token", None, m2m("warm-m2m")).await).await;
    assert_eq!(status, 200, "{body}");
    let machine_token = body["access_token"].as_str().unwrap().to_string();

    let url = srv.handle().app().config.database_url.clone().unwrap();
    let db = database_of(url.expose());
    let admin = testkit::pg::admin(&testkit::require_env("HJ_TEST_DATABASE_URL")).await;
    testkit::pg::take_database_away(&admin, &db).await;

    let code_form = |client_id: &str, code: &str| {
        vec![
            ("grant_type", "authorization_code".to_string()),
            ("client_id", client_id.to_string()),
            ("code", code.to_string()),
            ("redirect_uri", REDIRECT.to_string()),
            ("code_verifier", VERIFIER.to_string()),
        ]
    };
    let cases: Vec<Case> = vec![
        // Clients this server never looked up.
        (
            "code grant, cold client",
            "/oauth2/token",
            None,
            code_form("cold-spa", "x"),
        ),
        (
            "refresh grant, cold client",
            "/oauth2/token",
            None,
            vec![
                ("grant_type", "refresh_token".to_string()),
                ("client_id", "cold-refresh".to_string()),
                ("refresh_token", "x".to_string()),
            ],
        ),
        (
            "client credentials, cold client (Basic)",
            "/oauth2/token",
            Some(basic("cold-m2m", SECRET)),
            vec![("grant_type", "client_credentials".to_string())],
        ),
        (
            "revoke, cold client",
            "/oauth2/revoke",
            None,
            vec![
                ("client_id", "cold-revoke".to_string()),
                ("token", "x".to_string()),
            ],
        ),
        (
            "introspect, cold client",
            "/oauth2/introspect",
            Some(basic("cold-m2m", SECRET)),
            vec![("token", "x".to_string())],
        ),
        // Cached clients whose request needs the store: the code, the refresh token.
        (
            "code grant, cached client",
            "/oauth2/token",
            None,
            code_form("warm-spa", &code),
        ),
        (
            "refresh grant, cached client",
            "/oauth2/token",
            None,
            refresh_form(&refresh_token),
        ),
        (
            "revoke, cached client",
            "/oauth2/revoke",
            None,
            vec![
                ("client_id", fx.client_id().to_string()),
                ("token", refresh_token.clone()),
            ],
        ),
        (
            "introspect, cached client",
            "/oauth2/introspect",
            None,
            vec![
                ("client_id", "warm-m2m".to_string()),
                ("client_secret", SECRET.to_string()),
                ("token", refresh_token.clone()),
            ],
        ),
    ];
    for (what, path, auth, form) in cases {
        let resp = send(path, auth, form).await;
        assert_eq!(resp.status(), 503, "{what}");
        assert_eq!(resp.headers()["retry-after"], "2", "{what}");
        assert_eq!(resp.headers()["cache-control"], "no-store", "{what}");
        assert!(resp.headers().get("www-authenticate").is_none(), "{what}");
        let (_, body) = status_and_json(resp).await;
        assert_eq!(body["error"], "temporarily_unavailable", "{what}: {body}");
        assert!(body["error_description"].is_string(), "{what}: {body}");
    }

    admin
        .batch_execute(&format!("ALTER DATABASE {db} ALLOW_CONNECTIONS true"))
        .await
        .unwrap();
    // Served again: the never-seen machine client first (the pool reconnects).
    let mut served = None;
    for _ in 0..50 {
        let resp = send(
            "/oauth2/token",
            Some(basic("cold-m2m", SECRET)),
            vec![("grant_type", "client_credentials".to_string())],
        )
        .await;
        if resp.status() == 200 {
            served = Some(status_and_json(resp).await.1);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let body = served.expect("the token endpoint is served after the outage");
    assert!(body["access_token"].is_string(), "{body}");
    // The code and the refresh token the outage refused were not consumed.
    let (status, body) =
        status_and_json(send("/oauth2/token", None, code_form("warm-spa", &code)).await).await;
    assert_eq!(status, 200, "{body}");
    assert!(body["id_token"].is_string(), "{body}");
    let (status, body) =
        status_and_json(send("/oauth2/token", None, refresh_form(&refresh_token)).await).await;
    assert_eq!(status, 200, "{body}");
    let rotated = body["refresh_token"].as_str().unwrap().to_string();
    let (status, body) = status_and_json(
        send(
            "/oauth2/introspect",
            Some(basic("warm-m2m", SECRET)),
            vec![("token", machine_token.clone())],
        )
        .await,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["active"], true, "{body}");
    assert_eq!(body["client_id"], "warm-m2m", "{body}");
    let resp = send(
        "/oauth2/revoke",
        None,
        vec![
            ("client_id", fx.client_id().to_string()),
            ("token", rotated.clone()),
        ],
    )
    .await;
    assert_eq!(resp.status(), 200);
    // The revocation held: the rotated token no longer refreshes.
    let (status, body) =
        status_and_json(send("/oauth2/token", None, refresh_form(&rotated)).await).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"], "invalid_grant", "{body}");
    // And the store answers again: a client that does not exist is a denial once more.
    let resp = send("/oauth2/token", None, code_form("cold-spa", "x")).await;
    assert_eq!(resp.status(), 401);
    let (_, body) = status_and_json(resp).await;
    assert_eq!(body["error"], "invalid_client", "{body}");
    srv.stop().await;
}
