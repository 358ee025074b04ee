//! Cookie sessions and the CSRF double-submit check of logout.

use serde_json::json;

use crate::support::{cookie_value, set_cookies, status_and_json, Fixture, TestServer, PASSWORD};

async fn session_login(srv: &TestServer, fx: &Fixture, password: &str) -> reqwest::Response {
    srv.post_json(
        "/v2/session/login",
        &json!({
            "tenant_id": fx.slug(),
            "client_id": fx.client_id(),
            "email": "ada@example.com",
            "password": password,
        }),
    )
    .await
}

async fn with_cookie(srv: &TestServer, path: &str, cookie: &str) -> (u16, serde_json::Value) {
    let resp = srv
        .client
        .get(srv.url(path))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    status_and_json(resp).await
}

/// Logs in and returns the `sid` cookie value, after checking the raw `Set-Cookie`.
async fn new_session(srv: &TestServer, fx: &Fixture) -> String {
    let resp = session_login(srv, fx, PASSWORD).await;
    assert_eq!(resp.status(), 204);
    assert_eq!(resp.headers()["cache-control"], "no-store");
    let cookies = set_cookies(&resp);
    assert_eq!(
        cookies.len(),
        2,
        "the session and its CSRF token: {cookies:?}"
    );
    let raw = &cookies[0];
    assert!(raw.starts_with("sid="), "{raw}");
    // The CSRF cookie is for the page's script: not HttpOnly, same lifetime.
    let csrf = &cookies[1];
    assert!(csrf.starts_with("csrf_token="), "{csrf}");
    assert!(!csrf.contains("HttpOnly"), "{csrf}");
    assert!(csrf.contains("Max-Age=86400"), "{csrf}");
    let attrs: Vec<&str> = raw.split(';').map(str::trim).collect();
    assert!(attrs.contains(&"HttpOnly"), "{raw}");
    assert!(attrs.contains(&"SameSite=Lax"), "{raw}");
    assert!(attrs.contains(&"Path=/"), "{raw}");
    // Plain http base URL: no Secure (a browser would drop the cookie on http).
    assert!(!attrs.contains(&"Secure"), "{raw}");
    assert!(attrs.contains(&"Max-Age=86400"), "{raw}");
    assert!(resp.bytes().await.unwrap().is_empty());
    let sid = cookie_value(&cookies, "sid").unwrap();
    assert_eq!(sid.len(), 43, "{raw}");
    sid
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_cookie_login_userinfo_and_csrf_protected_logout() {
    let srv = TestServer::start().await;
    let fx = srv.fixture().await;
    let reg = srv.register(&fx, "ada@example.com").await;
    let user_id = reg["user_id"].as_str().unwrap().to_string();

    // Wrong password: no cookie.
    let resp = session_login(&srv, &fx, "Wrong-Password-1").await;
    assert!(set_cookies(&resp).is_empty());
    let (status, body) = status_and_json(resp).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["code"], "INVALID_CREDENTIALS");

    let sid = new_session(&srv, &fx).await;
    let sid_cookie = format!("sid={sid}");

    let (status, info) = with_cookie(&srv, "/userinfo", &sid_cookie).await;
    assert_eq!(status, 200, "{info}");
    assert_eq!(info["sub"], user_id.as_str());
    assert_eq!(info["email"], "ada@example.com");
    assert_eq!(info["email_verified"], false);
    let (status, me) = with_cookie(&srv, "/v2/me", &sid_cookie).await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["sub"], user_id.as_str());
    assert_eq!(me["aud"], fx.client_id());
    // A made-up session id.
    let (status, body) = with_cookie(&srv, "/userinfo", "sid=bm9wZQ").await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["code"], "SESSION_EXPIRED");

    // Without a session, /v2/csrf hands out a fresh random token each time (body and cookie
    // agree); it binds nothing.
    let resp = srv.get("/v2/csrf").await;
    let cookies = set_cookies(&resp);
    let (status, body) = status_and_json(resp).await;
    assert_eq!(status, 200, "{body}");
    let unbound = body["csrf_token"].as_str().unwrap().to_string();
    assert!(unbound.len() >= 16, "{unbound}");
    assert_eq!(
        cookie_value(&cookies, "csrf_token").as_deref(),
        Some(unbound.as_str())
    );
    assert!(cookies[0].contains("SameSite=Lax"), "{cookies:?}");
    let (_, again) = status_and_json(srv.get("/v2/csrf").await).await;
    assert_ne!(again["csrf_token"], body["csrf_token"]);
    // With the session cookie, the token is the session's: the same on every call.
    let bound = csrf_of(&srv, &sid_cookie).await;
    assert_eq!(bound, csrf_of(&srv, &sid_cookie).await);
    assert_ne!(bound, unbound);

    // Logout without a Bearer and without the session's CSRF token: 403, session intact. A
    // pair the caller chose itself (cookie = header) is not the session's token.
    let forged: [(String, Option<&str>); 6] = [
        (sid_cookie.clone(), None),
        (format!("{sid_cookie}; csrf_token={bound}"), None),
        (sid_cookie.clone(), Some(unbound.as_str())),
        (
            format!("{sid_cookie}; csrf_token={unbound}"),
            Some(unbound.as_str()),
        ),
        (
            format!("{sid_cookie}; csrf_token={bound}"),
            Some("something-else"),
        ),
        (format!("csrf_token={bound}"), Some(bound.as_str())),
    ];
    for (cookie, header) in &forged {
        let mut req = srv
            .client
            .post(srv.url("/v2/auth/logout"))
            .header("cookie", cookie);
        if let Some(h) = header {
            req = req.header("x-csrf-token", *h);
        }
        let (status, body) = status_and_json(req.send().await.unwrap()).await;
        assert_eq!(status, 403, "{cookie} {header:?}: {body}");
        assert_eq!(body["code"], "CSRF_TOKEN_INVALID");
    }
    let (status, _) = with_cookie(&srv, "/userinfo", &sid_cookie).await;
    assert_eq!(status, 200, "a refused logout leaves the session alone");

    // The real logout: the session cookie and its token in the header.
    let resp = srv
        .client
        .post(srv.url("/v2/auth/logout"))
        .header("cookie", format!("{sid_cookie}; csrf_token={bound}"))
        .header("x-csrf-token", &bound)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    let cleared = set_cookies(&resp);
    assert!(
        cleared
            .iter()
            .any(|c| c.starts_with("sid=;") && c.contains("Max-Age=0")),
        "the sid cookie is cleared: {cleared:?}"
    );
    assert!(
        cleared
            .iter()
            .any(|c| c.starts_with("csrf_token=;") && c.contains("Max-Age=0")),
        "the csrf cookie is cleared: {cleared:?}"
    );
    let (status, body) = with_cookie(&srv, "/userinfo", &sid_cookie).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["code"], "SESSION_EXPIRED");
    let (status, body) = with_cookie(&srv, "/v2/me", &sid_cookie).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["code"], "SESSION_EXPIRED");

    // Idempotent.
    let resp = srv
        .client
        .post(srv.url("/v2/auth/logout"))
        .header("cookie", format!("{sid_cookie}; csrf_token={bound}"))
        .header("x-csrf-token", &bound)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);

    let text = srv.metrics().await;
    let m = |s: &str| crate::support::metric(&text, s).unwrap();
    assert_eq!(
        m(r#"hellojohn_auth_sign_ins_total{method="session",status="success"}"#),
        1.0
    );
    assert_eq!(
        m(r#"hellojohn_auth_sign_ins_total{method="session",status="invalid_credentials"}"#),
        1.0
    );
    srv.stop().await;
}

/// The CSRF token `/v2/csrf` hands the holder of `cookie`.
async fn csrf_of(srv: &TestServer, cookie: &str) -> String {
    let (status, body) = with_cookie(srv, "/v2/csrf", cookie).await;
    assert_eq!(status, 200, "{body}");
    body["csrf_token"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_all_ends_every_session() {
    let srv = TestServer::start().await;
    let fx = srv.fixture().await;
    let reg = srv.register(&fx, "ada@example.com").await;
    let access = reg["access_token"].as_str().unwrap();

    let sid = new_session(&srv, &fx).await;
    let second = new_session(&srv, &fx).await;
    for s in [&sid, &second] {
        let (status, _) = with_cookie(&srv, "/userinfo", &format!("sid={s}")).await;
        assert_eq!(status, 200);
    }

    let resp = srv
        .post_json_bearer("/v2/auth/logout-all", access, &json!({}))
        .await;
    assert_eq!(resp.status(), 204);
    for s in [&sid, &second] {
        let (status, body) = with_cookie(&srv, "/userinfo", &format!("sid={s}")).await;
        assert_eq!(status, 401, "{body}");
        assert_eq!(body["code"], "SESSION_EXPIRED");
    }
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secure_base_url_uses_host_prefixed_secure_cookies() {
    let srv = TestServer::with(&[("HELLOJOHN_BASE_URL", "https://id.example")]).await;
    let fx = srv.fixture().await;
    srv.register(&fx, "ada@example.com").await;
    let resp = session_login(&srv, &fx, PASSWORD).await;
    assert_eq!(resp.status(), 204);
    let cookies = set_cookies(&resp);
    let raw = &cookies[0];
    assert!(raw.starts_with("__Host-sid="), "{raw}");
    let attrs: Vec<&str> = raw.split(';').map(str::trim).collect();
    for want in ["HttpOnly", "SameSite=Lax", "Path=/", "Secure"] {
        assert!(attrs.contains(&want), "{want} in {raw}");
    }
    assert!(!raw.contains("Domain="), "{raw}");
    let sid = cookie_value(&cookies, "__Host-sid").unwrap();
    let sid_cookie = format!("__Host-sid={sid}");
    let (status, body) = with_cookie(&srv, "/userinfo", &sid_cookie).await;
    assert_eq!(status, 200, "{body}");
    // The CSRF cookie is host-bound too, and it is the session's token.
    let raw = &cookies[1];
    assert!(raw.starts_with("__Host-csrf="), "{raw}");
    let attrs: Vec<&str> = raw.split(';').map(str::trim).collect();
    for want in ["SameSite=Lax", "Path=/", "Secure"] {
        assert!(attrs.contains(&want), "{want} in {raw}");
    }
    assert!(!raw.contains("Domain="), "{raw}");
    let csrf = cookie_value(&cookies, "__Host-csrf").unwrap();
    assert_eq!(csrf, csrf_of(&srv, &sid_cookie).await);
    let resp = srv
        .client
        .post(srv.url("/v2/auth/logout"))
        .header("cookie", format!("{sid_cookie}; __Host-csrf={csrf}"))
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    let cleared = set_cookies(&resp);
    assert!(
        cleared.iter().any(|c| c.starts_with("__Host-csrf=;")),
        "{cleared:?}"
    );
    let (status, _) = with_cookie(&srv, "/userinfo", &sid_cookie).await;
    assert_eq!(status, 401);
    srv.stop().await;
}
