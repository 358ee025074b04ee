//! The OAuth-facing surface over real HTTP: the RFC 6749 token endpoint (errors and every
//! advertised grant), sign-out with `post_logout_redirect_uri`, and CORS (preflight, `Vary`).

use serde_json::json;

use crate::auth::{assert_error, assert_tokens, oauth_refresh, str_of};
use crate::support::{status_and_json, TestServer, PASSWORD};
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_preflight_allows_only_configured_origins() {
    let srv = TestServer::with(&[("HELLOJOHN_CORS_ORIGINS", "https://app.example")]).await;
    let preflight = |origin: &'static str| {
        srv.client
            .request(reqwest::Method::OPTIONS, srv.url("/v2/auth/login"))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "content-type, authorization, x-csrf-token",
            )
            .send()
    };
    let resp = preflight("https://app.example").await.unwrap();
    assert_eq!(resp.status(), 204);
    let h = resp.headers();
    assert_eq!(h["access-control-allow-origin"], "https://app.example");
    assert_eq!(h["access-control-allow-credentials"], "true");
    let allowed: Vec<String> = h["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .split(',')
        .map(|s| s.trim().to_ascii_lowercase())
        .collect();
    for want in [
        "authorization",
        "content-type",
        "x-csrf-token",
        "x-tenant-id",
        "x-tenant-slug",
    ] {
        assert!(allowed.iter().any(|a| a == want), "{want} in {allowed:?}");
    }
    assert!(h["access-control-allow-methods"]
        .to_str()
        .unwrap()
        .contains("POST"));
    assert!(h
        .get_all("vary")
        .iter()
        .any(|v| v.to_str().unwrap().contains("Origin")));

    let resp = preflight("https://evil.example").await.unwrap();
    assert_eq!(resp.status(), 204);
    assert!(resp.headers().get("access-control-allow-origin").is_none());
    assert!(resp
        .headers()
        .get("access-control-allow-credentials")
        .is_none());

    // Actual requests: the allowed origin is echoed, errors included; others get nothing.
    let resp = srv
        .client
        .post(srv.url("/v2/auth/login"))
        .header("origin", "https://app.example")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    assert_eq!(
        resp.headers()["access-control-allow-origin"],
        "https://app.example"
    );
    let resp = srv
        .client
        .get(srv.url("/ping"))
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert!(resp.headers().get("access-control-allow-origin").is_none());
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oauth_token_endpoint_answers_rfc6749_errors() {
    let srv = TestServer::start().await;
    let fx = srv.fixture().await;
    let cid = fx.client_id();
    let reg = srv.register(&fx, "ada@example.com").await;
    let token = assert_tokens(&reg);

    let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
        (
            vec![("grant_type", "password"), ("client_id", cid)],
            "unsupported_grant_type",
        ),
        (
            vec![
                ("grant_type", "authorization_code"),
                ("client_id", cid),
                ("code", "x"),
            ],
            "invalid_grant",
        ),
        (
            vec![("grant_type", "implicit"), ("client_id", cid)],
            "unsupported_grant_type",
        ),
        (
            vec![("grant_type", "refresh_token"), ("client_id", cid)],
            "invalid_request",
        ),
        (
            vec![
                ("grant_type", "refresh_token"),
                ("client_id", cid),
                ("refresh_token", ""),
            ],
            "invalid_request",
        ),
        (
            vec![("client_id", cid), ("refresh_token", &token)],
            "invalid_request",
        ),
        (
            vec![("grant_type", "refresh_token"), ("refresh_token", &token)],
            "invalid_request",
        ),
        (
            vec![
                ("grant_type", "refresh_token"),
                ("client_id", cid),
                ("refresh_token", "bogus"),
            ],
            "invalid_grant",
        ),
    ];
    for (form, error) in cases {
        let resp = srv.post_form("/oauth2/token", &form).await;
        assert_eq!(resp.headers()["cache-control"], "no-store", "{form:?}");
        let (status, body) = status_and_json(resp).await;
        assert_eq!(status, 400, "{form:?}: {body}");
        assert_eq!(body["error"], error, "{form:?}: {body}");
        assert!(body["error_description"].is_string(), "{body}");
    }
    // A client that does not exist fails to authenticate (RFC 6749 section 5.2: 401
    // invalid_client), whatever the grant and even with another client's live token.
    let (status, body) = status_and_json(
        srv.post_form(
            "/oauth2/token",
            &[
                ("grant_type", "refresh_token"),
                ("client_id", "other"),
                ("refresh_token", &token),
            ],
        )
        .await,
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_client")),
        "{body}"
    );
    // GET is not allowed, in RFC 6749 shape too.
    let (status, body) = status_and_json(srv.get("/oauth2/token").await).await;
    assert_eq!(status, 405, "{body}");
    assert!(body["error"].is_string(), "{body}");

    // None of that burnt the token.
    let (status, body) = oauth_refresh(&srv, cid, &token).await;
    assert_eq!(status, 200, "{body}");
    assert_tokens(&body);
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_with_post_logout_redirect_uri() {
    let srv = TestServer::start().await;
    let fx = srv.fixture().await;
    let spa = srv
        .store()
        .create_client(
            store::NewClient {
                scopes: vec![],
                post_logout_redirect_uris: vec!["https://app.example/bye".into()],
                ..store::NewClient::new(fx.tenant.id, "spa", "spa")
            },
            engine::unix_now(),
            None,
        )
        .await
        .unwrap();
    let reg = srv.register(&fx, "ada@example.com").await;
    let access = str_of(&reg, "access_token");
    let mut token = assert_tokens(&reg);

    // Not registered for the client (or no client named at all, as the bootstrap client
    // `local-app` with no URIs): signed out all the same, without a redirect.
    for (client_id, uri) in [
        (Some(spa.client_id.as_str()), "https://evil.example/"),
        (Some(fx.client_id()), "http://localhost:5173"),
        (None, "https://app.example/bye"),
    ] {
        let mut body = json!({
            "tenant_id": fx.slug(),
            "refresh_token": token,
            "post_logout_redirect_uri": uri,
        });
        if let Some(c) = client_id {
            body["client_id"] = json!(c);
        }
        let resp = srv.post_json_bearer("/v2/auth/logout", access, &body).await;
        assert_eq!(resp.status(), 204, "{client_id:?} {uri}");
        let (status, body) = srv.refresh(fx.client_id(), &token).await;
        assert_error(status, &body, 401, "TOKEN_INVALID");
        let (status, body) = srv.login(&fx, "ada@example.com", PASSWORD).await;
        assert_eq!(status, 200, "{body}");
        token = assert_tokens(&body);
    }

    let resp = srv
        .post_json_bearer(
            "/v2/auth/logout",
            access,
            &json!({
                "tenant_id": fx.slug(),
                "client_id": spa.client_id,
                "refresh_token": token,
                "post_logout_redirect_uri": "https://app.example/bye",
            }),
        )
        .await;
    let (status, body) = status_and_json(resp).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({ "post_logout_redirect_uri": "https://app.example/bye" })
    );
    let (status, body) = srv.refresh(fx.client_id(), &token).await;
    assert_error(status, &body, 401, "TOKEN_INVALID");

    // A bad Bearer is refused.
    let resp = srv
        .post_json_bearer(
            "/v2/auth/logout",
            "nope",
            &json!({ "client_id": fx.client_id() }),
        )
        .await;
    let (status, body) = status_and_json(resp).await;
    assert_error(status, &body, 401, "TOKEN_INVALID");
    srv.stop().await;
}

/// Discovery must not advertise what the token endpoint refuses: a generic OpenID client
/// reads `grant_types_supported` and may try each.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_advertised_grant_type_is_accepted_by_the_token_endpoint() {
    let srv = TestServer::start().await;
    let fx = srv.fixture().await;
    srv.register(&fx, "ada@example.com").await;
    let (_, oidc) = status_and_json(srv.get("/.well-known/openid-configuration").await).await;
    let grants: Vec<String> = oidc["grant_types_supported"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g.as_str().unwrap().to_string())
        .collect();
    assert!(grants.iter().any(|g| g == "refresh_token"), "{grants:?}");
    for grant in &grants {
        let resp = srv
            .post_form(
                "/oauth2/token",
                &[
                    ("grant_type", grant.as_str()),
                    ("client_id", fx.client_id()),
                    ("username", "ada@example.com"),
                    ("password", PASSWORD),
                    ("refresh_token", "bm90LWEtdG9rZW4"),
                ],
            )
            .await;
        let (status, body) = status_and_json(resp).await;
        assert_ne!(
            body["error"], "unsupported_grant_type",
            "discovery advertises grant_type {grant:?} but /oauth2/token refuses it ({status}: {body})"
        );
    }
    srv.stop().await;
}

/// With CORS configured, answers depend on `Origin`, so every answer must say so with
/// `Vary: Origin`, or a shared cache may serve an answer without CORS headers to an allowed
/// origin (JWKS and discovery are `public, max-age=300`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cacheable_answers_vary_on_origin_when_cors_is_configured() {
    let srv = TestServer::with(&[("HELLOJOHN_CORS_ORIGINS", "https://app.example")]).await;
    for path in [
        "/.well-known/jwks.json",
        "/.well-known/openid-configuration",
    ] {
        for origin in [
            None,
            Some("https://evil.example"),
            Some("https://app.example"),
        ] {
            let mut req = srv.client.get(srv.url(path));
            if let Some(o) = origin {
                req = req.header("origin", o);
            }
            let resp = req.send().await.unwrap();
            assert_eq!(resp.status(), 200);
            assert!(resp.headers()["cache-control"]
                .to_str()
                .unwrap()
                .contains("public"));
            let vary: Vec<String> = resp
                .headers()
                .get_all("vary")
                .iter()
                .map(|v| v.to_str().unwrap().to_ascii_lowercase())
                .collect();
            assert!(
                vary.iter().any(|v| v.contains("origin")),
                "{path} with Origin {origin:?}: Vary is {vary:?}"
            );
        }
    }
    srv.stop().await;
}

/// The refresh flow takes the client from the shard's cache when it knows exactly one of that
/// name; when the cache is behind (a second tenant has since created a client of the same
/// name), a refresh that names no tenant still finds the token's own client, and each tenant's
/// tokens keep working.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_by_client_name_survives_a_stale_client_cache() {
    let srv = TestServer::start().await;
    let acme = srv.fixture().await;
    let reg = srv.register(&acme, "ada@example.com").await;
    // Caches "acme-web" as acme's only client of that name (the test server has one shard).
    let (status, body) = oauth_refresh(&srv, acme.client_id(), &assert_tokens(&reg)).await;
    assert_eq!(status, 200, "{body}");
    let ada = assert_tokens(&body);

    let globex = srv.fixture_with("globex", acme.client_id()).await;
    let reg = srv.register(&globex, "bob@example.com").await;
    let (status, body) = oauth_refresh(&srv, acme.client_id(), &assert_tokens(&reg)).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = srv.refresh(acme.client_id(), &assert_tokens(&body)).await;
    assert_eq!(status, 200, "{body}");
    let resp = srv
        .post_json(
            "/v2/auth/refresh",
            &json!({ "tenant_id": globex.slug(), "client_id": acme.client_id(), "refresh_token": assert_tokens(&body) }),
        )
        .await;
    let (status, body) = status_and_json(resp).await;
    assert_eq!(status, 200, "{body}");
    // The token of one tenant is refused when the other is named.
    let resp = srv
        .post_json(
            "/v2/auth/refresh",
            &json!({ "tenant_id": acme.slug(), "client_id": acme.client_id(), "refresh_token": assert_tokens(&body) }),
        )
        .await;
    let (status, body) = status_and_json(resp).await;
    assert_error(status, &body, 401, "TOKEN_INVALID");

    let (status, body) = oauth_refresh(&srv, acme.client_id(), &ada).await;
    assert_eq!(status, 200, "{body}");
    srv.stop().await;
}

/// The denials of the client-authenticated endpoints, unchanged by the shared prologue: an
/// unknown client and a wrong secret are 401 `invalid_client` on the token (every grant),
/// revocation and introspection endpoints alike, with `WWW-Authenticate: Basic` when the
/// client used HTTP Basic (RFC 6749 section 5.2) and without it otherwise.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_clients_and_wrong_secrets_are_invalid_client_everywhere() {
    use crate::shared_client_ids::{basic, confidential};
    const SECRET: &str = "right-secret-0123456789abcdefghijklmnopqrstuv";
    let srv = TestServer::start().await;
    let fx = srv.fixture().await;
    let grants = ["client_credentials", "authorization_code", "refresh_token"];
    confidential(&srv, &fx.tenant, "svc", SECRET, &grants).await;
    let bodies: [(&str, Vec<(&str, &str)>); 5] = [
        (
            "/oauth2/token",
            vec![("grant_type", "authorization_code"), ("code", "x")],
        ),
        (
            "/oauth2/token",
            vec![("grant_type", "refresh_token"), ("refresh_token", "x")],
        ),
        ("/oauth2/token", vec![("grant_type", "client_credentials")]),
        ("/oauth2/revoke", vec![("token", "x")]),
        ("/oauth2/introspect", vec![("token", "x")]),
    ];
    for (path, form) in &bodies {
        for (client_id, secret) in [("nobody", SECRET), ("svc", "wrong-secret")] {
            // client_secret_basic: 401 with the Basic challenge.
            let resp = srv
                .client
                .post(srv.url(path))
                .header("authorization", basic(client_id, secret))
                .form(form)
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 401, "{path} {client_id} {form:?}");
            assert_eq!(
                resp.headers()["www-authenticate"],
                "Basic realm=\"hellojohn\"",
                "{path}"
            );
            assert_eq!(resp.headers()["cache-control"], "no-store", "{path}");
            let (_, body) = status_and_json(resp).await;
            assert_eq!(
                body["error"], "invalid_client",
                "{path} {client_id}: {body}"
            );
            // client_secret_post: 401, no challenge.
            let mut post_form = form.clone();
            post_form.extend([("client_id", client_id), ("client_secret", secret)]);
            let resp = srv.post_form(path, &post_form).await;
            assert_eq!(resp.status(), 401, "{path} {client_id} {form:?}");
            assert!(resp.headers().get("www-authenticate").is_none(), "{path}");
            let (_, body) = status_and_json(resp).await;
            assert_eq!(
                body["error"], "invalid_client",
                "{path} {client_id}: {body}"
            );
        }
    }
    // The right secret gets through to the grant itself.
    let (status, body) = status_and_json(
        srv.post_form(
            "/oauth2/token",
            &[
                ("grant_type", "authorization_code"),
                ("code", "x"),
                ("client_id", "svc"),
                ("client_secret", SECRET),
            ],
        )
        .await,
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "{body}"
    );
    srv.stop().await;
}
