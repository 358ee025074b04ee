//! Issue 27: admin accounts over real HTTP: sign-in (one answer for every failure), the TOTP
//! step, refresh with reuse detection, sign-out, the console's sign-in through `/v2/auth/login`
//! and `/v2/me`, `/v2/admin/admins`, and that an admin's token and a user's never pass as each
//! other.

use reqwest::Method;
use serde_json::{json, Value};

use crate::admin::{mint, Admin};
use crate::support::{status_and_json, TestServer};

const ADMIN_PASSWORD: &str = "Admin-Password-42";

async fn post(s: &TestServer, path: &str, body: Value) -> (u16, Value) {
    status_and_json(s.post_json(path, &body).await).await
}

async fn bearer(
    s: &TestServer,
    method: Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = s.client.request(method, s.url(path)).bearer_auth(token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    status_and_json(req.send().await.unwrap()).await
}

/// An admin account made through the API with an admin key.
async fn account(root: &Admin<'_>, email: &str, scope: &str) -> String {
    let r = root
        .post(
            "/v2/admin/admins",
            json!({"email": email, "password": ADMIN_PASSWORD, "scope": scope, "name": "Ops"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert!(
        !r.body.to_string().contains("argon2"),
        "no hash in an answer"
    );
    r.body["id"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn admins_sign_in_refresh_and_sign_out() {
    let s = TestServer::start().await;
    let fx = s.fixture().await;
    let (_, key) = mint(&s, "root", "admin").await;
    let root = Admin { s: &s, key };
    let id = account(&root, "ops@example.com", "admin").await;

    // Every failure is the same answer.
    let wrong = post(
        &s,
        "/v2/admin/login",
        json!({"email": "ops@example.com", "password": "Wrong-Pass-1"}),
    )
    .await;
    let unknown = post(
        &s,
        "/v2/admin/login",
        json!({"email": "nobody@example.com", "password": "Wrong-Pass-1"}),
    )
    .await;
    assert_eq!(wrong.0, 401);
    assert_eq!(
        wrong, unknown,
        "an unknown email answers like a wrong password"
    );

    let (status, t) = post(
        &s,
        "/v2/admin/login",
        json!({"email": "OPS@example.com", "password": ADMIN_PASSWORD}),
    )
    .await;
    assert_eq!(status, 200, "{t}");
    assert_eq!(
        (t["token_type"].as_str(), t["expires_in"].as_i64()),
        (Some("Bearer"), Some(900))
    );
    assert_eq!(t["admin"]["id"], id.as_str());
    let access = t["access_token"].as_str().unwrap().to_string();
    let refresh = t["refresh_token"].as_str().unwrap().to_string();

    // The token works on the admin API with the account's scope.
    let (status, me) = bearer(&s, Method::GET, "/v2/admin/me", &access, None).await;
    assert_eq!(
        (status, me["email"].as_str()),
        (200, Some("ops@example.com"))
    );
    let (status, _) = bearer(&s, Method::GET, "/v2/admin/tenants", &access, None).await;
    assert_eq!(status, 200);

    // An admin's token is no user's, and a user's is no admin's.
    s.register(&fx, "user@example.com").await;
    let (_, user) = s
        .login(&fx, "user@example.com", crate::support::PASSWORD)
        .await;
    let user_token = user["access_token"].as_str().unwrap();
    let (status, _) = bearer(&s, Method::GET, "/v2/admin/tenants", user_token, None).await;
    assert_eq!(status, 401, "a user's access token on the admin API");
    let (status, _) = bearer(&s, Method::GET, "/userinfo", &access, None).await;
    assert_eq!(status, 401, "an admin's token at /userinfo");
    let (status, _) = bearer(
        &s,
        Method::POST,
        "/v2/mfa/totp/enroll",
        &access,
        Some(json!({})),
    )
    .await;
    assert_eq!(status, 401, "an admin's token on a user's account route");

    // Refresh: a new pair; the old refresh token replayed revokes the account's tokens.
    let (status, r2) = post(&s, "/v2/admin/refresh", json!({"refresh_token": refresh})).await;
    assert_eq!(status, 200, "{r2}");
    let refresh2 = r2["refresh_token"].as_str().unwrap().to_string();
    let (status, reuse) = post(&s, "/v2/admin/refresh", json!({"refresh_token": refresh})).await;
    assert_eq!(
        (status, reuse["code"].as_str()),
        (401, Some("REFRESH_TOKEN_REUSE")),
        "{reuse}"
    );
    let (status, _) = post(&s, "/v2/admin/refresh", json!({"refresh_token": refresh2})).await;
    assert_eq!(
        status, 401,
        "the whole account's refresh tokens went with the reuse"
    );

    // Sign-out revokes a refresh token.
    let (_, t3) = post(
        &s,
        "/v2/admin/login",
        json!({"email": "ops@example.com", "password": ADMIN_PASSWORD}),
    )
    .await;
    let refresh3 = t3["refresh_token"].as_str().unwrap().to_string();
    let resp = s
        .post_json("/v2/admin/logout", &json!({"refresh_token": refresh3}))
        .await;
    assert_eq!(resp.status(), 204);
    let (status, _) = post(&s, "/v2/admin/refresh", json!({"refresh_token": refresh3})).await;
    assert_eq!(status, 401);

    // Audited.
    let log = root.get("/v2/admin/audit-logs?action=admin.").await;
    let actions: Vec<&str> = log.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    for a in [
        "admin.create",
        "admin.login",
        "admin.login_failed",
        "admin.token_reuse_detected",
    ] {
        assert!(actions.contains(&a), "{a} in {actions:?}");
    }
}

#[tokio::test]
async fn the_console_signs_in_through_the_user_api() {
    let s = TestServer::start().await;
    let (_, key) = mint(&s, "root", "admin").await;
    let root = Admin { s: &s, key };
    account(&root, "console@example.com", "admin").await;

    // As HelloJohn's console sends it: empty tenant and client.
    let (status, t) = post(
        &s,
        "/v2/auth/login",
        json!({"email": "console@example.com", "password": ADMIN_PASSWORD, "tenant_id": "", "client_id": ""}),
    )
    .await;
    assert_eq!(status, 200, "{t}");
    assert!(t["expires_in"].as_i64().unwrap() > 0);
    let access = t["access_token"].as_str().unwrap().to_string();
    let (status, me) = bearer(&s, Method::GET, "/v2/me", &access, None).await;
    assert_eq!(
        (status, me["email"].as_str()),
        (200, Some("console@example.com")),
        "{me}"
    );
    let (status, tenants) = bearer(&s, Method::GET, "/v2/admin/tenants", &access, None).await;
    assert_eq!(status, 200);
    assert!(
        tenants.is_array(),
        "the console reads a bare array: {tenants}"
    );
    let (status, r) = post(
        &s,
        "/v2/auth/refresh",
        json!({"refresh_token": t["refresh_token"]}),
    )
    .await;
    assert_eq!(status, 200, "{r}");
    assert!(r["access_token"].is_string() && r["refresh_token"].is_string());

    // A wrong password is the user API's 401.
    let (status, _) = post(
        &s,
        "/v2/auth/login",
        json!({"email": "console@example.com", "password": "Wrong-Pass-1", "tenant_id": "", "client_id": ""}),
    )
    .await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn admins_with_totp_take_a_second_step() {
    let s = TestServer::start().await;
    let (_, key) = mint(&s, "root", "admin").await;
    let root = Admin { s: &s, key };
    account(&root, "mfa@example.com", "admin").await;
    let (_, t) = post(
        &s,
        "/v2/admin/login",
        json!({"email": "mfa@example.com", "password": ADMIN_PASSWORD}),
    )
    .await;
    let access = t["access_token"].as_str().unwrap().to_string();

    let (status, e) = bearer(
        &s,
        Method::POST,
        "/v2/admin/me/mfa/totp/enroll",
        &access,
        Some(json!({})),
    )
    .await;
    assert_eq!(status, 200, "{e}");
    let secret = testkit::totp::base32_decode(e["secret_base32"].as_str().unwrap());
    let step = testkit::totp::step_now();
    let (status, _) = bearer(
        &s,
        Method::POST,
        "/v2/admin/me/mfa/totp/verify",
        &access,
        Some(json!({"code": "000000"})),
    )
    .await;
    assert_eq!(status, 401, "a wrong code");
    let code = testkit::totp::code(&secret, step);
    let (status, v) = bearer(
        &s,
        Method::POST,
        "/v2/admin/me/mfa/totp/verify",
        &access,
        Some(json!({"code": code})),
    )
    .await;
    assert_eq!(status, 204, "{v}");

    // The password alone now gives an mfa_token, not tokens.
    let (status, m) = post(
        &s,
        "/v2/admin/login",
        json!({"email": "mfa@example.com", "password": ADMIN_PASSWORD}),
    )
    .await;
    assert_eq!(
        (status, m["mfa_required"].as_bool()),
        (200, Some(true)),
        "{m}"
    );
    assert!(m.get("access_token").is_none());
    let mfa_token = m["mfa_token"].as_str().unwrap().to_string();
    // The code already used is refused; the next step's works once.
    let (status, _) = post(
        &s,
        "/v2/admin/login/mfa",
        json!({"mfa_token": mfa_token, "code": code}),
    )
    .await;
    assert_eq!(status, 401, "a code is good once");
    let next = testkit::totp::code(&secret, step + 1);
    let (status, done) = post(
        &s,
        "/v2/admin/login/mfa",
        json!({"mfa_token": mfa_token, "code": next}),
    )
    .await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(done["admin"]["mfa_enabled"], true);
    // An mfa_token is no access token, and a user's challenge is no admin's.
    let (status, _) = bearer(&s, Method::GET, "/v2/admin/me", &mfa_token, None).await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn admins_are_managed_and_their_scope_holds() {
    let s = TestServer::start().await;
    let fx = s.fixture().await;
    let (_, key) = mint(&s, "root", "admin").await;
    let root = Admin { s: &s, key };
    let id = account(
        &root,
        "tenant-ops@example.com",
        &format!("tenant:{}", fx.slug()),
    )
    .await;
    let dup = root
        .post(
            "/v2/admin/admins",
            json!({"email": "tenant-ops@example.com", "password": ADMIN_PASSWORD}),
        )
        .await;
    assert_eq!(dup.status, 409);
    for (body, field) in [
        (json!({"email": "x", "password": ADMIN_PASSWORD}), "email"),
        (
            json!({"email": "y@example.com", "password": "short"}),
            "password",
        ),
        (
            json!({"email": "y@example.com", "password": ADMIN_PASSWORD, "scope": "root"}),
            "scope",
        ),
    ] {
        let r = root.post("/v2/admin/admins", body.clone()).await;
        assert_eq!(
            (r.status, r.body["detail"]["field"].as_str()),
            (400, Some(field)),
            "{body}"
        );
    }
    let list = root.get("/v2/admin/admins").await;
    assert_eq!((list.status, list.body["total"].as_u64()), (200, Some(1)));
    assert_eq!(list.body["admins"][0]["type"], "tenant");

    let (_, t) = post(
        &s,
        "/v2/admin/login",
        json!({"email": "tenant-ops@example.com", "password": ADMIN_PASSWORD}),
    )
    .await;
    let access = t["access_token"].as_str().unwrap().to_string();
    let own = format!("/v2/admin/tenants/{}/clients", fx.slug());
    assert_eq!(bearer(&s, Method::GET, &own, &access, None).await.0, 200);
    assert_eq!(
        bearer(&s, Method::GET, "/v2/admin/admins", &access, None)
            .await
            .0,
        403
    );
    assert_eq!(
        bearer(&s, Method::GET, "/v2/admin/api-keys", &access, None)
            .await
            .0,
        403
    );

    // Disabled: its token stops (within the 2 s cache), and it cannot sign in.
    let r = root
        .post(&format!("/v2/admin/admins/{id}/disable"), json!({}))
        .await;
    assert_eq!(
        (r.status, r.body["status"].as_str()),
        (200, Some("disabled"))
    );
    let mut stopped = false;
    for _ in 0..40 {
        if bearer(&s, Method::GET, &own, &access, None).await.0 == 401 {
            stopped = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(stopped, "a disabled admin's token stops within seconds");
    let (status, _) = post(
        &s,
        "/v2/admin/login",
        json!({"email": "tenant-ops@example.com", "password": ADMIN_PASSWORD}),
    )
    .await;
    assert_eq!(status, 401);
    let r = root
        .post(&format!("/v2/admin/admins/{id}/enable"), json!({}))
        .await;
    assert_eq!(r.body["status"], "active");
    let r = root
        .put(
            &format!("/v2/admin/admins/{id}"),
            json!({"scope": "readonly", "name": "RO"}),
        )
        .await;
    assert_eq!(
        (r.status, r.body["scope"].as_str()),
        (200, Some("readonly")),
        "{}",
        r.body
    );
    assert_eq!(
        root.delete(&format!("/v2/admin/admins/{id}")).await.status,
        204
    );
    assert_eq!(
        root.get(&format!("/v2/admin/admins/{id}")).await.status,
        404
    );
    let log = root.get("/v2/admin/audit-logs?action=admin.").await;
    let actions: Vec<&str> = log.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    for a in [
        "admin.create",
        "admin.disable",
        "admin.enable",
        "admin.update",
        "admin.delete",
    ] {
        assert!(actions.contains(&a), "{a} in {actions:?}");
    }
}

/// HelloJohn's console runs on its own origin: every admin call is preflighted. A known route
/// allows its methods and the admin headers; an admin path this server lacks is allowed too,
/// so the console gets the request's 404 (which it reads as "not available") rather than a CORS
/// failure; another origin gets no CORS headers anywhere.
#[tokio::test]
async fn admin_preflights_from_the_console_origin() {
    let s = TestServer::with(&[("HELLOJOHN_CORS_ORIGINS", "http://console.example")]).await;
    let preflight = |path: &'static str, origin: &'static str| {
        s.client
            .request(reqwest::Method::OPTIONS, s.url(path))
            .header("origin", origin)
            .header("access-control-request-method", "GET")
            .header(
                "access-control-request-headers",
                "authorization, content-type, if-match",
            )
            .send()
    };
    let known = preflight("/v2/admin/tenants/acme/settings", "http://console.example")
        .await
        .unwrap();
    assert_eq!(known.status(), 204);
    let h = known.headers();
    assert_eq!(h["access-control-allow-origin"], "http://console.example");
    assert_eq!(
        h["access-control-allow-methods"],
        "GET, HEAD, PUT, PATCH, OPTIONS"
    );
    // Any OPTIONS names what the resource allows (RFC 9110 9.3.7).
    assert_eq!(h["allow"], "GET, HEAD, PUT, PATCH, OPTIONS");
    assert!(h["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .contains("If-Match"));

    let unknown = preflight(
        "/v2/admin/tenants/acme/rbac/roles",
        "http://console.example",
    )
    .await
    .unwrap();
    assert_eq!(unknown.status(), 204);
    let h = unknown.headers();
    assert_eq!(h["access-control-allow-origin"], "http://console.example");
    assert_eq!(
        h["access-control-allow-methods"],
        "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"
    );
    let get = s
        .client
        .get(s.url("/v2/admin/tenants/acme/rbac/roles"))
        .header("origin", "http://console.example")
        .send()
        .await
        .unwrap();
    assert_eq!(get.status(), 404);
    assert_eq!(
        get.headers()["access-control-allow-origin"],
        "http://console.example"
    );
    let (_, body) = status_and_json(get).await;
    assert_eq!(body["code"], "NOT_FOUND");

    // Another origin: no CORS headers, and outside /v2/admin an unknown path stays a 404.
    let other = preflight("/v2/admin/tenants/acme/rbac/roles", "http://evil.example")
        .await
        .unwrap();
    assert_eq!(other.status(), 404);
    assert!(other.headers().get("access-control-allow-origin").is_none());
    let public = preflight("/v2/nothing-here", "http://console.example")
        .await
        .unwrap();
    assert_eq!(public.status(), 404);
    let login = preflight("/v2/auth/login", "http://evil.example")
        .await
        .unwrap();
    assert_eq!(login.status(), 204);
    assert_eq!(login.headers()["allow"], "POST, OPTIONS");
}
