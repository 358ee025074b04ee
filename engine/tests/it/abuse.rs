//! Abuse of the cookie routes and of sign-out: cross-site requests (login CSRF), bodies of the
//! wrong media type, revoking someone else's refresh token, sign-out floods, and a handler
//! that panics.

use serde_json::{json, Value};

use crate::support::{
    cookie_value, set_cookies, status_and_json, Fixture, StartOptions, TestServer, PASSWORD,
};

fn credentials(fx: &Fixture, email: &str) -> Value {
    json!({
        "tenant_id": fx.slug(),
        "client_id": fx.client_id(),
        "email": email,
        "password": PASSWORD,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cookie_sign_in_refuses_cross_site_requests_and_non_json_bodies() {
    let srv = TestServer::with(&[
        ("HELLOJOHN_BASE_URL", "http://auth.example.test"),
        ("HELLOJOHN_CORS_ORIGINS", "https://app.example.test"),
    ])
    .await;
    let fx = srv.fixture().await;
    srv.register(&fx, "ada@example.com").await;
    let body = credentials(&fx, "ada@example.com");
    let send = |headers: Vec<(&'static str, String)>, raw: Option<(&'static str, String)>| {
        let mut req = srv.client.post(srv.url("/v2/session/login"));
        for (k, v) in headers {
            req = req.header(k, v);
        }
        req = match raw {
            Some((content_type, text)) => req.header("content-type", content_type).body(text),
            None => req.json(&body),
        };
        req.send()
    };

    // Another site's page: by Origin, by Origin "null", by Sec-Fetch-Site.
    for headers in [
        vec![("origin", "https://evil.example".to_string())],
        vec![("origin", "null".to_string())],
        vec![(
            "origin",
            "http://auth.example.test.evil.example".to_string(),
        )],
        vec![("sec-fetch-site", "cross-site".to_string())],
        vec![
            ("sec-fetch-site", "cross-site".to_string()),
            ("origin", "http://auth.example.test".to_string()),
        ],
    ] {
        let resp = send(headers.clone(), None).await.unwrap();
        assert!(set_cookies(&resp).is_empty(), "{headers:?}");
        let (status, err) = status_and_json(resp).await;
        assert_eq!(status, 403, "{headers:?}: {err}");
        assert_eq!(err["code"], "CROSS_SITE_REQUEST", "{headers:?}");
    }
    // The classic login-CSRF bodies: a form, and JSON sent as text/plain (no preflight).
    let text = body.to_string();
    let form = format!(
        "tenant_id={}&client_id={}&email=ada%40example.com&password={PASSWORD}",
        fx.slug(),
        fx.client_id()
    );
    for (content_type, raw) in [
        ("text/plain", text.clone()),
        ("application/x-www-form-urlencoded", form),
        ("application/jsonx", text.clone()),
    ] {
        let resp = send(vec![], Some((content_type, raw))).await.unwrap();
        assert!(set_cookies(&resp).is_empty(), "{content_type}");
        let (status, err) = status_and_json(resp).await;
        assert_eq!(status, 415, "{content_type}: {err}");
        assert_eq!(err["code"], "UNSUPPORTED_MEDIA_TYPE");
    }
    // No cookie was set and no sign-in was counted by any of them.
    assert_eq!(
        srv.metric_value(r#"hellojohn_auth_sign_ins_total{method="session",status="success"}"#)
            .await,
        0.0
    );

    // This server's own pages, a configured origin (even from another site), and clients
    // that are not browsers are served.
    for headers in [
        vec![("origin", "http://auth.example.test".to_string())],
        vec![("sec-fetch-site", "same-origin".to_string())],
        vec![
            ("origin", "https://app.example.test".to_string()),
            ("sec-fetch-site", "cross-site".to_string()),
        ],
        vec![],
    ] {
        let resp = send(headers.clone(), None).await.unwrap();
        assert_eq!(resp.status(), 204, "{headers:?}");
        assert!(cookie_value(&set_cookies(&resp), "sid").is_some());
    }
    let resp = send(
        vec![],
        Some(("application/json; charset=utf-8", text.clone())),
    )
    .await
    .unwrap();
    assert_eq!(resp.status(), 204);

    // JSON routes refuse other media types; password sign-in still takes a form.
    for path in ["/v2/auth/register", "/v2/auth/login", "/v2/auth/refresh"] {
        let resp = srv
            .client
            .post(srv.url(path))
            .header("content-type", "text/plain")
            .body(text.clone())
            .send()
            .await
            .unwrap();
        let (status, err) = status_and_json(resp).await;
        assert_eq!(status, 415, "{path}: {err}");
        assert_eq!(err["code"], "UNSUPPORTED_MEDIA_TYPE", "{path}");
    }
    let resp = srv
        .post_form(
            "/v2/auth/login",
            &[
                ("tenant_id", fx.slug()),
                ("client_id", fx.client_id()),
                ("email", "ada@example.com"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(resp.status(), 200);
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_revokes_only_refresh_tokens_issued_to_the_caller() {
    let srv = TestServer::start().await;
    let fx = srv.fixture().await;
    let other_tenant = srv.fixture_with("globex", "globex-web").await;
    let victim = srv.register(&fx, "ada@example.com").await;
    let victim_refresh = victim["refresh_token"].as_str().unwrap().to_string();
    // Same tenant, another user; another tenant; the victim's own token of another client.
    let mallory = srv.register(&fx, "mallory@example.com").await;
    let outsider = srv.register(&other_tenant, "eve@example.com").await;
    let second_client = srv.add_client(&fx.tenant, "acme-mobile").await;
    let mobile = Fixture {
        tenant: fx.tenant.clone(),
        client: second_client,
    };
    let (status, victim_mobile) = srv.login(&mobile, "ada@example.com", PASSWORD).await;
    assert_eq!(status, 200);

    for (who, caller) in [("other user", &mallory), ("other tenant", &outsider)] {
        let resp = srv
            .post_json_bearer(
                "/v2/auth/logout",
                caller["access_token"].as_str().unwrap(),
                &json!({ "client_id": fx.client_id(), "refresh_token": victim_refresh }),
            )
            .await;
        let (status, err) = status_and_json(resp).await;
        assert_eq!(status, 403, "{who}: {err}");
        assert_eq!(err["code"], "FORBIDDEN", "{who}");
    }
    // The victim's web client token, revoked with the victim's mobile Bearer: another client.
    let resp = srv
        .post_json_bearer(
            "/v2/auth/logout",
            victim_mobile["access_token"].as_str().unwrap(),
            &json!({ "client_id": "acme-mobile", "refresh_token": victim_refresh }),
        )
        .await;
    assert_eq!(resp.status(), 403);
    // Nothing was revoked: the victim's family still rotates.
    let (status, rotated) = srv.refresh(fx.client_id(), &victim_refresh).await;
    assert_eq!(status, 200, "{rotated}");
    let current = rotated["refresh_token"].as_str().unwrap();

    // The owner's own Bearer revokes it.
    let resp = srv
        .post_json_bearer(
            "/v2/auth/logout",
            rotated["access_token"].as_str().unwrap(),
            &json!({ "client_id": fx.client_id(), "refresh_token": current }),
        )
        .await;
    assert_eq!(resp.status(), 204);
    let (status, _) = srv.refresh(fx.client_id(), current).await;
    assert_eq!(status, 401);

    // A cookie sign-out revokes a refresh token only of the session's user.
    let resp = srv
        .post_json(
            "/v2/session/login",
            &credentials(&fx, "mallory@example.com"),
        )
        .await;
    assert_eq!(resp.status(), 204);
    let cookies = set_cookies(&resp);
    let sid = cookie_value(&cookies, "sid").unwrap();
    let csrf = cookie_value(&cookies, "csrf_token").unwrap();
    let (status, fresh) = srv.login(&fx, "ada@example.com", PASSWORD).await;
    assert_eq!(status, 200);
    let resp = srv
        .client
        .post(srv.url("/v2/auth/logout"))
        .header("cookie", format!("sid={sid}; csrf_token={csrf}"))
        .header("x-csrf-token", &csrf)
        .json(&json!({ "refresh_token": fresh["refresh_token"] }))
        .send()
        .await
        .unwrap();
    let (status, err) = status_and_json(resp).await;
    assert_eq!(status, 403, "{err}");
    let (status, _) = srv
        .refresh(fx.client_id(), fresh["refresh_token"].as_str().unwrap())
        .await;
    assert_eq!(status, 200, "still valid");
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_is_limited_per_client_ip_before_any_write() {
    let srv = TestServer::with(&[
        ("HELLOJOHN_RATE_LIMIT_ENABLED", "true"),
        ("HELLOJOHN_RATE_LIMIT_LOGOUT", "3/1m"),
    ])
    .await;
    let fx = srv.fixture().await;
    let reg = srv.register(&fx, "ada@example.com").await;
    let access = reg["access_token"].as_str().unwrap();
    let body = json!({ "client_id": fx.client_id(), "refresh_token": "bm90LWEtdG9rZW4" });
    for i in 0..3 {
        let resp = srv.post_json_bearer("/v2/auth/logout", access, &body).await;
        assert_eq!(resp.status(), 204, "logout {i}");
    }
    let resp = srv.post_json_bearer("/v2/auth/logout", access, &body).await;
    assert!(resp.headers().get("retry-after").is_some());
    let (status, err) = status_and_json(resp).await;
    assert_eq!(status, 429, "{err}");
    assert_eq!(err["code"], "RATE_LIMIT_EXCEEDED");
    // logout-all shares the limit.
    let resp = srv
        .post_json_bearer("/v2/auth/logout-all", access, &json!({}))
        .await;
    assert_eq!(resp.status(), 429);
    assert_eq!(
        srv.metric_value(r#"hellojohn_rate_limit_rejections_total{limit="logout"}"#)
            .await,
        2.0
    );
    // Nothing was revoked by the refused logout-all: the register's family still rotates.
    let (status, _) = srv
        .refresh(fx.client_id(), reg["refresh_token"].as_str().unwrap())
        .await;
    assert_eq!(status, 200);
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_handler_costs_one_request_and_the_server_keeps_serving() {
    let srv = TestServer::with_options(
        &[],
        StartOptions {
            configure: Some(|c| c.test_panic_header = true),
            ..Default::default()
        },
    )
    .await;
    let fx = srv.fixture().await;
    srv.register(&fx, "ada@example.com").await;
    let panicking = [
        srv.client
            .post(srv.url("/v2/auth/login"))
            .json(&credentials(&fx, "ada@example.com")),
        srv.client.get(srv.url("/ping")),
    ];
    for req in panicking {
        let resp = req.header("x-hj-test-panic", "1").send().await.unwrap();
        let (status, err) = status_and_json(resp).await;
        assert_eq!(status, 500, "{err}");
        assert_eq!(err["code"], "INTERNAL_ERROR");
    }
    // The same shard (there is one) keeps serving, on the same client's connections.
    assert_eq!(srv.get("/ping").await.status(), 200);
    let (status, _) = srv.login(&fx, "ada@example.com", PASSWORD).await;
    assert_eq!(status, 200);
    assert_eq!(
        srv.metric_value("hellojohn_http_handler_panics_total")
            .await,
        2.0
    );
    srv.stop().await;
}
