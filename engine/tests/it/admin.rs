//! Issue 27: the admin API over real HTTP, on the store the suite runs on: API keys and their
//! scopes, tenants, clients, the audit log, bad input. Each scope is shown doing what it may
//! and refused what it may not.

use reqwest::Method;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::support::{status_and_json, TestServer, PASSWORD};

/// An API key made through the store, as `hj api-key create` makes the first one.
pub async fn mint(s: &TestServer, name: &str, scope: &str) -> (Uuid, String) {
    let (token, key_prefix, key_hash) = auth::api_keys::generate();
    let id = Uuid::now_v7();
    let now = engine::unix_now();
    let key = store::NewApiKey {
        id,
        name: name.into(),
        key_prefix,
        key_hash,
        scope: scope.into(),
        created_by: "cli".into(),
        created_at: now,
        expires_at: None,
    };
    s.store()
        .create_api_key(key, cli_audit("api_key.create", id, now))
        .await
        .unwrap();
    (id, token)
}

fn cli_audit(action: &str, target: Uuid, now: i64) -> store::AuditEntry {
    store::AuditEntry {
        id: Uuid::now_v7(),
        tenant_id: None,
        action: action.into(),
        actor_type: "cli".into(),
        actor_id: None,
        actor_name: None,
        target_type: Some("api_key".into()),
        target_id: Some(target.to_string()),
        ip_address: None,
        user_agent: None,
        request_id: None,
        metadata: store::EventMeta::new(),
        result: "success".into(),
        created_at: now,
    }
}

/// A caller of the admin API with one key.
pub struct Admin<'a> {
    pub s: &'a TestServer,
    pub key: String,
}

pub struct Answer {
    pub status: u16,
    pub body: Value,
    pub headers: reqwest::header::HeaderMap,
}

impl Admin<'_> {
    pub async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Answer {
        let mut req = self
            .s
            .client
            .request(method, self.s.url(path))
            .header("x-api-key", &self.key);
        if let Some(b) = body {
            req = req.json(&b);
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

    pub async fn get(&self, path: &str) -> Answer {
        self.call(Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Answer {
        self.call(Method::POST, path, Some(body)).await
    }

    pub async fn put(&self, path: &str, body: Value) -> Answer {
        self.call(Method::PUT, path, Some(body)).await
    }

    pub async fn delete(&self, path: &str) -> Answer {
        self.call(Method::DELETE, path, None).await
    }
}

pub async fn admin(s: &TestServer) -> Admin<'_> {
    let (_, key) = mint(s, "root", "admin").await;
    Admin { s, key }
}

pub fn code(a: &Answer) -> &str {
    a.body["code"].as_str().unwrap_or("")
}

#[tokio::test]
async fn requests_without_a_valid_key_are_401_and_say_nothing_else() {
    let s = TestServer::start().await;
    let (status, body) = status_and_json(s.get("/v2/admin/tenants").await).await;
    assert_eq!((status, body["code"].as_str()), (401, Some("UNAUTHORIZED")));
    for key in [
        "nonsense",
        "hjk_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    ] {
        let a = Admin {
            s: &s,
            key: key.into(),
        };
        let r = a.get("/v2/admin/tenants").await;
        assert_eq!((r.status, code(&r)), (401, "UNAUTHORIZED"), "{key}");
    }
    // A route that does not exist is 404 before any credential is asked for.
    let r = Admin {
        s: &s,
        key: "x".into(),
    }
    .get("/v2/admin/nothing")
    .await;
    assert_eq!(r.status, 404);
}

#[tokio::test]
async fn api_keys_are_shown_once_rotated_and_revoked() {
    let s = TestServer::start().await;
    let root = admin(&s).await;
    let r = root
        .post(
            "/v2/admin/api-keys",
            json!({"name": "ci", "scope": "readonly", "expires_in": "30d"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let token = r.body["token"].as_str().unwrap().to_string();
    let id = r.body["id"].as_str().unwrap().to_string();
    assert!(token.starts_with(r.body["key_prefix"].as_str().unwrap()));
    assert_eq!(r.body["scope"], "readonly");
    let expires = protocol::admin::parse_time(r.body["expires_at"].as_str().unwrap()).unwrap();
    assert!((expires - engine::unix_now() - 30 * 86_400).abs() < 60);

    // Listed and read without the token; the new key works.
    let list = root.get("/v2/admin/api-keys").await;
    assert_eq!(list.status, 200);
    let text = list.body.to_string();
    assert!(!text.contains(&token) && text.contains(&id), "{text}");
    let one = root.get(&format!("/v2/admin/api-keys/{id}")).await;
    assert_eq!(
        (one.status, one.body["is_active"].as_bool()),
        (200, Some(true))
    );
    assert!(one.body.get("token").is_none());
    let ci = Admin {
        s: &s,
        key: token.clone(),
    };
    assert_eq!(ci.get("/v2/admin/tenants").await.status, 200);

    // Rotation: the old token stops, the new one works with the same name and scope.
    let rot = root
        .post(&format!("/v2/admin/api-keys/{id}/rotate"), json!({}))
        .await;
    assert_eq!(rot.status, 200, "{}", rot.body);
    assert_eq!(rot.body["old_key_id"], id.as_str());
    assert_eq!(rot.body["new_key"]["name"], "ci");
    let new_token = rot.body["new_key"]["token"].as_str().unwrap().to_string();
    assert_eq!(ci.get("/v2/admin/tenants").await.status, 401);
    let ci2 = Admin {
        s: &s,
        key: new_token,
    };
    assert_eq!(ci2.get("/v2/admin/tenants").await.status, 200);
    // A revoked key cannot be rotated again.
    let again = root
        .post(&format!("/v2/admin/api-keys/{id}/rotate"), json!({}))
        .await;
    assert_eq!((again.status, code(&again)), (409, "CONFLICT"));

    // Revocation.
    let new_id = rot.body["new_key"]["id"].as_str().unwrap().to_string();
    let del = root.delete(&format!("/v2/admin/api-keys/{new_id}")).await;
    assert_eq!(
        (del.status, del.body["is_active"].as_bool()),
        (200, Some(false))
    );
    assert_eq!(ci2.get("/v2/admin/tenants").await.status, 401);
    assert_eq!(
        root.get(&format!("/v2/admin/api-keys/{}", Uuid::now_v7()))
            .await
            .status,
        404
    );
    assert_eq!(root.get("/v2/admin/api-keys/not-a-uuid").await.status, 404);

    // Bad input.
    for (body, field) in [
        (json!({"scope": "admin"}), "name"),
        (json!({"name": "x", "scope": "root"}), "scope"),
        (json!({"name": "x", "scope": "tenant:nope"}), "scope"),
        (
            json!({"name": "x", "scope": "admin", "expires_in": "soon"}),
            "expires_in",
        ),
    ] {
        let r = root.post("/v2/admin/api-keys", body.clone()).await;
        assert_eq!((r.status, code(&r)), (400, "BAD_REQUEST"), "{body}");
        assert_eq!(r.body["detail"]["field"], field, "{body}");
    }
}

#[tokio::test]
async fn each_scope_may_do_what_it_says_and_nothing_more() {
    let s = TestServer::start().await;
    let fx = s.fixture().await;
    let other = s.fixture_with("other", "other-app").await;
    let root = admin(&s).await;
    let (_, ro) = mint(&s, "ro", "readonly").await;
    let ro = Admin { s: &s, key: ro };
    let (_, tk) = mint(&s, "acme-ops", &format!("tenant:{}", fx.slug())).await;
    let tk = Admin { s: &s, key: tk };
    let own = format!("/v2/admin/tenants/{}/clients", fx.slug());
    let theirs = format!("/v2/admin/tenants/{}/clients", other.slug());

    // readonly: every GET, no change.
    assert_eq!(ro.get("/v2/admin/api-keys").await.status, 200);
    assert_eq!(ro.get(&theirs).await.status, 200);
    for r in [
        ro.post(&own, json!({"client_id": "x"})).await,
        ro.post("/v2/admin/tenants", json!({"slug": "x"})).await,
        ro.post("/v2/admin/api-keys", json!({"name": "x", "scope": "admin"}))
            .await,
        ro.delete(&format!("/v2/admin/tenants/{}", fx.slug())).await,
    ] {
        assert_eq!((r.status, code(&r)), (403, "FORBIDDEN"));
    }

    // tenant:{slug}: its own tenant's routes, by slug or id.
    let made = tk
        .post(&own, json!({"client_id": "ops-made", "name": "Ops"}))
        .await;
    assert_eq!(made.status, 201, "{}", made.body);
    let by_id = format!("/v2/admin/tenants/{}/clients/ops-made", fx.tenant.id);
    assert_eq!(tk.get(&by_id).await.status, 200);
    let mine = tk.get("/v2/admin/tenants").await;
    assert_eq!(mine.status, 200);
    let slugs: Vec<&str> = mine
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["slug"].as_str().unwrap())
        .collect();
    assert_eq!(slugs, vec![fx.slug()]);
    assert_eq!(
        tk.get(&format!("/v2/admin/tenants/{}", fx.slug()))
            .await
            .status,
        200
    );
    // Not another tenant (existing or not: the same 403), not keys, not tenants themselves.
    for r in [
        tk.get(&theirs).await,
        tk.get(&format!("/v2/admin/tenants/{}/clients", other.tenant.id))
            .await,
        tk.get("/v2/admin/tenants/no-such-tenant/clients").await,
        tk.get("/v2/admin/api-keys").await,
        tk.post("/v2/admin/api-keys", json!({"name": "x", "scope": "admin"}))
            .await,
        tk.post("/v2/admin/tenants", json!({"slug": "x"})).await,
        tk.put(
            &format!("/v2/admin/tenants/{}", fx.slug()),
            json!({"name": "x"}),
        )
        .await,
        tk.delete(&format!("/v2/admin/tenants/{}", fx.slug())).await,
        tk.get("/v2/admin/audit-logs").await,
    ] {
        assert_eq!((r.status, code(&r)), (403, "FORBIDDEN"), "{}", r.body);
    }
    // Nothing was made in the other tenant.
    let theirs_now = root.get(&theirs).await;
    assert!(!theirs_now.body.to_string().contains("ops-made"));
    // admin: an unknown tenant is 404.
    let r = root.get("/v2/admin/tenants/no-such-tenant/clients").await;
    assert_eq!((r.status, code(&r)), (404, "NOT_FOUND"));
}

#[tokio::test]
async fn tenants_are_created_read_renamed_and_deleted() {
    let s = TestServer::start().await;
    let root = admin(&s).await;
    let r = root
        .post(
            "/v2/admin/tenants",
            json!({"slug": "globex", "name": "Globex"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let id = r.body["id"].as_str().unwrap().to_string();
    assert_eq!(r.body["issuer_mode"], "global");
    let dup = root
        .post("/v2/admin/tenants", json!({"slug": "globex"}))
        .await;
    assert_eq!((dup.status, code(&dup)), (409, "CONFLICT"));
    for bad in [
        json!({"slug": "Globex"}),
        json!({"slug": "-x"}),
        json!({}),
        json!({"slug": "ok", "issuer_mode": "odd"}),
    ] {
        let r = root.post("/v2/admin/tenants", bad.clone()).await;
        assert_eq!((r.status, code(&r)), (400, "BAD_REQUEST"), "{bad}");
    }
    assert_eq!(
        root.get("/v2/admin/tenants/globex").await.body["id"],
        id.as_str()
    );
    assert_eq!(
        root.get(&format!("/v2/admin/tenants/{id}")).await.body["slug"],
        "globex"
    );

    let up = root
        .put(
            &format!("/v2/admin/tenants/{id}"),
            json!({"name": "Globex Corp", "slug": "globex-corp", "issuer_mode": "path"}),
        )
        .await;
    assert_eq!(up.status, 200, "{}", up.body);
    assert_eq!(
        (
            up.body["name"].as_str(),
            up.body["slug"].as_str(),
            up.body["issuer_mode"].as_str()
        ),
        (Some("Globex Corp"), Some("globex-corp"), Some("path"))
    );
    assert_eq!(root.get("/v2/admin/tenants/globex").await.status, 404);

    let del = root.delete("/v2/admin/tenants/globex-corp").await;
    assert_eq!(del.status, 204);
    assert_eq!(
        root.get(&format!("/v2/admin/tenants/{id}")).await.status,
        404
    );
    assert_eq!(
        root.delete(&format!("/v2/admin/tenants/{id}")).await.status,
        404
    );
}

#[tokio::test]
async fn clients_follow_hj_clients_rules_and_show_a_secret_once() {
    let s = TestServer::start().await;
    let fx = s.fixture().await;
    let root = admin(&s).await;
    let base = format!("/v2/admin/tenants/{}/clients", fx.slug());
    let r = root
        .post(
            &base,
            json!({"client_id": "billing", "name": "Billing", "type": "confidential",
                   "grant_types": ["client_credentials"], "scopes": ["api:read"]}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let secret = r.body["secret"].as_str().unwrap().to_string();
    assert!(secret.len() >= 32);
    assert_eq!(r.body["type"], "confidential");
    let got = root.get(&format!("{base}/billing")).await;
    assert_eq!(got.status, 200);
    assert!(got.body.get("secret").is_none() && got.body.get("secret_hash").is_none());
    assert!(!root.get(&base).await.body.to_string().contains(&secret));

    // The secret works at the token endpoint; after revoke-secret only the new one does.
    let token = |secret: String| {
        let s = &s;
        async move {
            s.client
                .post(s.url("/oauth2/token"))
                .basic_auth("billing", Some(secret))
                .form(&[("grant_type", "client_credentials")])
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(token(secret.clone()).await, 200);
    let rs = root
        .post(&format!("{base}/billing/revoke-secret"), json!({}))
        .await;
    assert_eq!(rs.status, 200, "{}", rs.body);
    let new_secret = rs.body["new_secret"].as_str().unwrap().to_string();
    assert_eq!(token(new_secret).await, 200);
    assert_eq!(token(secret).await, 401);

    // Bad input: each field's rule, a duplicate, a public client with client_credentials.
    for (body, field) in [
        (json!({"client_id": "a b"}), "client_id"),
        (
            json!({"client_id": "x", "redirect_uris": ["javascript:alert(1)"]}),
            "redirect_uris",
        ),
        (
            json!({"client_id": "x", "allowed_origins": ["not an origin"]}),
            "allowed_origins",
        ),
        (
            json!({"client_id": "x", "grant_types": ["password"]}),
            "grant_types",
        ),
        (
            json!({"client_id": "x", "grant_types": ["client_credentials"]}),
            "grant_types",
        ),
        (json!({"client_id": "x", "type": "secret"}), "type"),
        (
            json!({"client_id": "x", "access_token_ttl": 0}),
            "access_token_ttl",
        ),
    ] {
        let r = root.post(&base, body.clone()).await;
        assert_eq!(
            (r.status, code(&r)),
            (400, "BAD_REQUEST"),
            "{body}: {}",
            r.body
        );
        assert_eq!(r.body["detail"]["field"], field, "{body}");
    }
    let dup = root.post(&base, json!({"client_id": "billing"})).await;
    assert_eq!((dup.status, code(&dup)), (409, "CONFLICT"));

    // Update, then delete.
    let up = root
        .put(
            &format!("{base}/billing"),
            json!({"name": "Billing v2", "access_token_ttl": 600}),
        )
        .await;
    assert_eq!(
        (
            up.status,
            up.body["name"].as_str(),
            up.body["access_token_ttl"].as_i64()
        ),
        (200, Some("Billing v2"), Some(600))
    );
    let cleared = root
        .put(
            &format!("{base}/billing"),
            json!({"access_token_ttl": null}),
        )
        .await;
    assert!(
        cleared.body.get("access_token_ttl").is_none(),
        "{}",
        cleared.body
    );
    assert_eq!(root.delete(&format!("{base}/billing")).await.status, 204);
    assert_eq!(root.get(&format!("{base}/billing")).await.status, 404);
    assert_eq!(root.delete(&format!("{base}/billing")).await.status, 404);
}

#[tokio::test]
async fn bad_bodies_get_stable_4xx_and_change_nothing() {
    let s = TestServer::start().await;
    let root = admin(&s).await;
    let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
    let resp = s
        .client
        .post(s.url("/v2/admin/tenants"))
        .header("x-api-key", &root.key)
        .header("content-type", "application/json")
        .body(deep)
        .send()
        .await
        .unwrap();
    let (status, body) = status_and_json(resp).await;
    assert_eq!((status, body["code"].as_str()), (400, Some("INVALID_JSON")));
    let resp = s
        .client
        .post(s.url("/v2/admin/tenants"))
        .header("x-api-key", &root.key)
        .header("content-type", "text/plain")
        .body(r#"{"slug":"plain"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 415);
    let r = root.call(Method::PATCH, "/v2/admin/api-keys", None).await;
    assert_eq!((r.status, code(&r)), (405, "METHOD_NOT_ALLOWED"));
    assert_eq!(
        r.headers["allow"], "GET, HEAD, POST, OPTIONS",
        "RFC 9110: a 405 names them"
    );
    let resp = s
        .client
        .delete(s.url("/v2/auth/login"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 405);
    assert_eq!(resp.headers()["allow"], "POST, OPTIONS");
    let tenants = root.get("/v2/admin/tenants").await;
    assert_eq!(
        tenants.body.as_array().unwrap().len(),
        0,
        "{}",
        tenants.body
    );
}

#[tokio::test]
async fn the_audit_log_records_admin_actions_and_security_events() {
    let s = TestServer::start().await;
    let fx = s.fixture().await;
    let root = admin(&s).await;
    let base = format!("/v2/admin/tenants/{}", fx.slug());
    let made = root
        .post(&format!("{base}/clients"), json!({"client_id": "audited"}))
        .await;
    assert_eq!(made.status, 201);
    let request_id = made.headers["x-request-id"].to_str().unwrap().to_string();
    root.put(
        &format!("{base}/clients/audited"),
        json!({"name": "Audited"}),
    )
    .await;
    root.delete(&format!("{base}/clients/audited")).await;
    // A failed sign-in is a security event, audited with its request id.
    let failed = s
        .client
        .post(s.url("/v2/auth/login"))
        .header("x-request-id", "req-failed-login-1")
        .json(&json!({"tenant_id": fx.slug(), "client_id": fx.client_id(),
                      "email": "nobody@example.com", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(failed.status(), 401);

    let log = root.get(&format!("{base}/audit-logs")).await;
    assert_eq!(log.status, 200, "{}", log.body);
    let items = log.body["items"].as_array().unwrap().clone();
    let actions: Vec<&str> = items
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        vec![
            "user.login_failed",
            "client.delete",
            "client.update",
            "client.create"
        ],
        "{}",
        log.body
    );
    let create = &items[3];
    assert_eq!(create["actor_type"], "api_key");
    assert_eq!(create["actor_name"], "root");
    assert_eq!(create["target_type"], "client");
    assert_eq!(create["target_id"], "audited");
    assert_eq!(create["tenant_id"], fx.tenant.id.to_string());
    assert_eq!(create["ip_address"], "127.0.0.1");
    assert_eq!(create["request_id"], request_id.as_str());
    assert_eq!(items[0]["request_id"], "req-failed-login-1");
    assert_eq!(items[0]["result"], "failure");

    // Filters and paging.
    let only = root.get(&format!("{base}/audit-logs?action=client.")).await;
    assert_eq!(only.body["items"].as_array().unwrap().len(), 3);
    let page1 = root.get(&format!("{base}/audit-logs?limit=3")).await;
    let cursor = page1.body["next_cursor"].as_str().unwrap().to_string();
    let page2 = root
        .get(&format!("{base}/audit-logs?limit=3&cursor={cursor}"))
        .await;
    let p2: Vec<&str> = page2.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(p2, vec!["client.create"]);
    assert!(page2.body.get("next_cursor").is_none());
    let future = root
        .get(&format!("{base}/audit-logs?from=2100-01-01T00:00:00Z"))
        .await;
    assert_eq!(future.body["items"].as_array().unwrap().len(), 0);
    let bad = root.get(&format!("{base}/audit-logs?from=yesterday")).await;
    assert_eq!((bad.status, code(&bad)), (400, "BAD_REQUEST"));

    // One entry; another tenant's path does not show it.
    let id = create["id"].as_str().unwrap();
    assert_eq!(
        root.get(&format!("{base}/audit-logs/{id}")).await.body["action"],
        "client.create"
    );
    let other = s.fixture_with("other", "other-app").await;
    let r = root
        .get(&format!(
            "/v2/admin/tenants/{}/audit-logs/{id}",
            other.slug()
        ))
        .await;
    assert_eq!(r.status, 404);

    // Export as NDJSON: one entry per line.
    let resp = s
        .client
        .get(s.url(&format!("{base}/audit-logs/export")))
        .header("x-api-key", &root.key)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["content-type"], "application/x-ndjson");
    let text = resp.text().await.unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 4);

    // Purge everything before now + 1 day: the purge's own entry remains.
    let purged = root
        .post(
            &format!("{base}/audit-logs/purge"),
            json!({"before": engine::unix_now() + 86_400}),
        )
        .await;
    assert_eq!(
        (purged.status, purged.body["deleted"].as_u64()),
        (200, Some(4)),
        "{}",
        purged.body
    );
    let after = root.get(&format!("{base}/audit-logs")).await;
    let left: Vec<&str> = after.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(left, vec!["audit_log.purge"]);
    let r = root
        .post(&format!("{base}/audit-logs/purge"), json!({}))
        .await;
    assert_eq!((r.status, code(&r)), (400, "BAD_REQUEST"));

    // The global log has the key's own creation (by the CLI) and no tenant.
    let global = root.get("/v2/admin/audit-logs?action=api_key.create").await;
    let e = &global.body["items"][0];
    assert_eq!(
        (e["actor_type"].as_str(), e.get("tenant_id")),
        (Some("cli"), None)
    );
}

#[tokio::test]
async fn a_revoked_key_stops_on_every_instance_within_five_seconds() {
    let key = [("HELLOJOHN_MASTER_KEY", crate::support::TEST_MASTER_KEY)];
    let a = TestServer::with(&key).await;
    let b = TestServer::with_options(
        &key,
        crate::support::StartOptions {
            store: Some(a.store()),
            ..Default::default()
        },
    )
    .await;
    let root = admin(&a).await;
    let (id, key) = mint(&a, "short-lived", "readonly").await;
    let on_b = Admin { s: &b, key };
    assert_eq!(on_b.get("/v2/admin/tenants").await.status, 200);
    assert_eq!(
        root.delete(&format!("/v2/admin/api-keys/{id}"))
            .await
            .status,
        200
    );
    let start = std::time::Instant::now();
    loop {
        let status = on_b.get("/v2/admin/tenants").await.status;
        if status == 401 {
            break;
        }
        assert_eq!(status, 200);
        assert!(
            start.elapsed() < std::time::Duration::from_secs(5),
            "still accepted after 5 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_lockout_is_audited_once_and_refused_attempts_write_nothing() {
    let s = TestServer::with(&[
        ("HELLOJOHN_RATE_LIMIT_ENABLED", "true"),
        ("HELLOJOHN_RATE_LIMIT_FAILED_SIGN_IN", "2/15m"),
        ("HELLOJOHN_RATE_LIMIT_SIGN_IN", "1000/1m"),
        ("HELLOJOHN_RATE_LIMIT_SIGN_UP", "1000/1m"),
    ])
    .await;
    let fx = s.fixture().await;
    let root = admin(&s).await;
    s.register(&fx, "locked@example.com").await;
    for _ in 0..4 {
        let (status, _) = s.login(&fx, "locked@example.com", "Wrong-Password-9").await;
        assert!(status == 401 || status == 429, "{status}");
    }
    let log = root
        .get(&format!(
            "/v2/admin/tenants/{}/audit-logs?action=user.",
            fx.slug()
        ))
        .await;
    let actions: Vec<&str> = log.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        vec![
            "user.locked",
            "user.login_failed",
            "user.login_failed",
            "user.register"
        ],
        "{}",
        log.body
    );
}

#[tokio::test]
async fn the_admin_api_has_its_own_rate_limit_per_ip_and_per_key() {
    let s = TestServer::with(&[
        ("HELLOJOHN_RATE_LIMIT_ENABLED", "true"),
        ("HELLOJOHN_RATE_LIMIT_ADMIN", "3/1m"),
    ])
    .await;
    let (_, key) = mint(&s, "root", "admin").await;
    let root = Admin { s: &s, key };
    let bad = Admin {
        s: &s,
        key: "hjk_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA".into(),
    };
    // Refused keys count against the address before any lookup.
    for _ in 0..3 {
        assert_eq!(bad.get("/v2/admin/tenants").await.status, 401);
    }
    let r = bad.get("/v2/admin/tenants").await;
    assert_eq!((r.status, code(&r)), (429, "RATE_LIMIT_EXCEEDED"));
    assert!(r.headers.contains_key("retry-after"));
    let r = root.get("/v2/admin/tenants").await;
    assert_eq!(r.status, 429, "the same address, whatever the key");
    // The public API's limits are not the admin API's.
    assert_eq!(s.get("/v2/auth/password-policy").await.status(), 400);
}
