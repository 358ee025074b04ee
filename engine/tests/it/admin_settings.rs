//! Issue 27: a tenant's settings through the admin API (ETag and If-Match, merge, what is kept
//! and what is ignored), and that the server acts on them: the password policy at sign-up and
//! in `/v2/auth/password-policy`, the access-token lifetime at sign-in.

use reqwest::Method;
use serde_json::{json, Value};

use crate::admin::{mint, Admin, Answer};
use crate::support::{status_and_json, TestServer};

async fn put(a: &Admin<'_>, path: &str, etag: Option<&str>, body: Value) -> Answer {
    let mut req =
        a.s.client
            .request(Method::PUT, a.s.url(path))
            .header("x-api-key", &a.key)
            .json(&body);
    if let Some(tag) = etag {
        req = req.header("if-match", tag);
    }
    let resp = req.send().await.unwrap();
    let headers = resp.headers().clone();
    let (status, body) = status_and_json(resp).await;
    Answer {
        status,
        body,
        headers,
    }
}

fn etag(a: &Answer) -> String {
    a.headers["etag"].to_str().unwrap().to_string()
}

#[tokio::test]
async fn settings_are_versioned_merged_and_enforced() {
    let s = TestServer::start().await;
    let fx = s.fixture().await;
    let (_, key) = mint(&s, "root", "admin").await;
    let root = Admin { s: &s, key };
    let path = format!("/v2/admin/tenants/{}/settings", fx.slug());

    let first = root.get(&path).await;
    assert_eq!(first.status, 200, "{}", first.body);
    assert_eq!(first.body["issuerMode"], "global");
    let tag0 = etag(&first);

    // PUT needs the version it applies to.
    let r = put(&root, &path, None, json!({"sessionLifetimeSeconds": 600})).await;
    assert_eq!(
        (r.status, r.body["code"].as_str()),
        (428, Some("PRECONDITION_REQUIRED"))
    );
    let r = put(
        &root,
        &path,
        Some("\"99\""),
        json!({"sessionLifetimeSeconds": 600}),
    )
    .await;
    assert_eq!(
        (r.status, r.body["code"].as_str()),
        (412, Some("PRECONDITION_FAILED"))
    );

    // A policy, a lifetime, and keys this server does not keep (a secret among them).
    let r = put(
        &root,
        &path,
        Some(&tag0),
        json!({
            "security": {"passwordMinLength": 12, "requireSpecialChars": true},
            "accessTokenLifetimeSeconds": 120,
            "logoUrl": "https://example.com/logo.png",
            "smtp": {"host": "smtp.example.com", "password": "hunter2"},
            "userDb": {"dsn": "postgres://u:p@db/x"}
        }),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let tag1 = etag(&r);
    assert_ne!(tag1, tag0);
    assert_eq!(r.body["security"]["passwordMinLength"], 12);
    assert_eq!(r.body["accessTokenLifetimeSeconds"], 120);
    let text = r.body.to_string();
    assert!(
        !text.contains("hunter2") && !text.contains("postgres://"),
        "{text}"
    );
    // The old ETag is stale now.
    let r = put(&root, &path, Some(&tag0), json!({"brandColor": "#000"})).await;
    assert_eq!(r.status, 412);

    // A merge: absent keys stay; null resets one.
    let r = put(
        &root,
        &path,
        Some(&tag1),
        json!({"logoUrl": null, "brandColor": "#112233"}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["security"]["passwordMinLength"], 12, "kept");
    assert!(r.body.get("logoUrl").is_none(), "reset: {}", r.body);
    assert_eq!(r.body["brandColor"], "#112233");

    // The server acts on them.
    let (status, policy) = status_and_json(
        s.get(&format!("/v2/auth/password-policy?tenant_id={}", fx.slug()))
            .await,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        (
            policy["min_length"].as_u64(),
            policy["require_symbols"].as_bool()
        ),
        (Some(12), Some(true))
    );
    let weak = s
        .post_json(
            "/v2/auth/register",
            &json!({"tenant_id": fx.slug(), "client_id": fx.client_id(),
                    "email": "weak@example.com", "password": "Short-pw-1"}),
        )
        .await;
    let (status, body) = status_and_json(weak).await;
    assert_eq!(
        (status, body["detail"]["rule"].as_str()),
        (400, Some("min_length")),
        "{body}"
    );
    let strong = s
        .post_json(
            "/v2/auth/register",
            &json!({"tenant_id": fx.slug(), "client_id": fx.client_id(),
                    "email": "strong@example.com", "password": "Strong-pass-12!"}),
        )
        .await;
    let (status, body) = status_and_json(strong).await;
    assert_eq!(status, 200, "{body}");
    let (status, tokens) = s.login(&fx, "strong@example.com", "Strong-pass-12!").await;
    assert_eq!(
        (status, tokens["expires_in"].as_u64()),
        (200, Some(120)),
        "{tokens}"
    );

    // Bad values name their field; nothing changes.
    let now = root.get(&path).await;
    let tag = etag(&now);
    for (body, field) in [
        (
            json!({"sessionLifetimeSeconds": 5}),
            "sessionLifetimeSeconds",
        ),
        (
            json!({"security": {"passwordMinLength": 3}}),
            "security.passwordMinLength",
        ),
        (json!({"issuerMode": "subdomain"}), "issuerMode"),
    ] {
        let r = put(&root, &path, Some(&tag), body.clone()).await;
        assert_eq!(
            (r.status, r.body["detail"]["field"].as_str()),
            (400, Some(field)),
            "{body}: {}",
            r.body
        );
    }
    assert_eq!(etag(&root.get(&path).await), tag, "nothing written");

    // PATCH needs no If-Match; the issuer mode changes through it too.
    let r = root
        .call(Method::PATCH, &path, Some(json!({"issuerMode": "path"})))
        .await;
    assert_eq!(
        (r.status, r.body["issuerMode"].as_str()),
        (200, Some("path")),
        "{}",
        r.body
    );

    // Audited; a readonly key may read, not write.
    let log = root
        .get(&format!(
            "/v2/admin/tenants/{}/audit-logs?action=tenant.settings_update",
            fx.slug()
        ))
        .await;
    assert_eq!(
        log.body["items"].as_array().unwrap().len(),
        2,
        "{}",
        log.body
    );
    let (_, ro) = mint(&s, "ro", "readonly").await;
    let ro = Admin { s: &s, key: ro };
    assert_eq!(ro.get(&path).await.status, 200);
    assert_eq!(
        ro.call(Method::PATCH, &path, Some(json!({}))).await.status,
        403
    );
}

/// HelloJohn's console creates a tenant with its settings in the body: they are checked before
/// anything is written and stored with the tenant (version 0), what this server does not act
/// on (SMTP with its password) is not kept, and a tenant answer carries its settings.
#[tokio::test]
async fn a_tenant_is_created_with_its_settings_or_not_at_all() {
    let s = TestServer::start().await;
    let (_, key) = mint(&s, "root", "admin").await;
    let root = Admin { s: &s, key };

    let bad = root
        .post(
            "/v2/admin/tenants",
            json!({"slug": "initech", "settings": {"sessionLifetimeSeconds": 5}}),
        )
        .await;
    assert_eq!(bad.status, 400, "{}", bad.body);
    assert_eq!(bad.body["detail"]["field"], "sessionLifetimeSeconds");
    assert_eq!(root.get("/v2/admin/tenants/initech").await.status, 404);
    let bad = root
        .post(
            "/v2/admin/tenants",
            json!({"slug": "initech", "settings": [1]}),
        )
        .await;
    assert_eq!(bad.status, 400, "{}", bad.body);
    assert_eq!(root.get("/v2/admin/tenants/initech").await.status, 404);
    // The fuzzer's case: the mode named twice, the inner one invalid; then two valid ones apart.
    for (body, field) in [
        (
            json!({"slug": "initech", "issuer_mode": "global", "settings": {"issuerMode": "AAA"}}),
            "issuerMode",
        ),
        (
            json!({"slug": "initech", "issuer_mode": "global", "settings": {"issuerMode": "path"}}),
            "issuer_mode",
        ),
    ] {
        let bad = root.post("/v2/admin/tenants", body).await;
        assert_eq!(
            (bad.status, bad.body["detail"]["field"].as_str()),
            (400, Some(field)),
            "{}",
            bad.body
        );
    }
    assert_eq!(root.get("/v2/admin/tenants/initech").await.status, 404);

    let made = root
        .post(
            "/v2/admin/tenants",
            json!({"name": "Initech", "slug": "initech", "display_name": "Initech LLC",
                "settings": {"logoUrl": "https://initech.example/logo.png",
                    "sessionLifetimeSeconds": 7200, "security": {"passwordMinLength": 14},
                    "issuerMode": "path", "socialLoginEnabled": false,
                    "smtp": {"host": "smtp.initech.example", "password": "hunter2"}}}),
        )
        .await;
    assert_eq!(made.status, 201, "{}", made.body);
    assert_eq!(made.body["issuer_mode"], "path");
    assert_eq!(
        made.body["settings"],
        json!({"logoUrl": "https://initech.example/logo.png", "sessionLifetimeSeconds": 7200,
            "security": {"passwordMinLength": 14}, "issuerMode": "path"})
    );
    let got = root.get("/v2/admin/tenants/initech/settings").await;
    assert_eq!(got.status, 200);
    assert_eq!(etag(&got), "\"0\"");
    assert_eq!(got.body, made.body["settings"]);
    let listed = root.get("/v2/admin/tenants").await;
    let row = listed
        .body
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["slug"] == "initech")
        .cloned();
    assert_eq!(
        row.unwrap()["settings"]["logoUrl"],
        "https://initech.example/logo.png"
    );
    assert!(!listed.body.to_string().contains("hunter2"));
    // The policy is the tenant's from the start.
    let policy = s
        .client
        .get(s.url("/v2/auth/password-policy?tenant_id=initech"))
        .send()
        .await
        .unwrap();
    let (status, body) = status_and_json(policy).await;
    assert_eq!(
        (status, body["min_length"].as_u64()),
        (200, Some(14)),
        "{body}"
    );
    // An operator's passwords for the tenant's users follow it too: 12 characters are short.
    let users = "/v2/admin/tenants/initech/users";
    let short = root
        .post(
            users,
            json!({"email": "bob@initech.example", "password": "Short-pw-123"}),
        )
        .await;
    assert_eq!(
        (short.status, short.body["detail"]["field"].as_str()),
        (400, Some("password")),
        "{}",
        short.body
    );
    let bob = root
        .post(
            users,
            json!({"email": "bob@initech.example", "password": "Long-enough-pw-1"}),
        )
        .await;
    assert_eq!(bob.status, 201, "{}", bob.body);
    let set = format!("{users}/{}/set-password", bob.body["id"].as_str().unwrap());
    let short = root.post(&set, json!({"password": "Short-pw-123"})).await;
    assert_eq!(
        (short.status, short.body["detail"]["field"].as_str()),
        (400, Some("password")),
        "{}",
        short.body
    );
    assert_eq!(
        root.post(&set, json!({"password": "Another-long-pw-2"}))
            .await
            .status,
        200
    );

    // A change of the settings goes through .../settings and its If-Match.
    let r = root
        .put(
            "/v2/admin/tenants/initech",
            json!({"name": "Initech 2", "settings": {"logoUrl": null}}),
        )
        .await;
    assert_eq!(
        (r.status, r.body["detail"]["field"].as_str()),
        (400, Some("settings"))
    );
    let after = root.get("/v2/admin/tenants/initech").await;
    assert_eq!(after.body["name"], "Initech", "nothing changed");
}
