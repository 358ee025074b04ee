//! Issue 27: a tenant's webhooks and signing keys through the admin API, over real HTTP, on the
//! store the suite runs on: what each route answers, what it refuses, what it audits, and that
//! a test delivery really reaches the endpoint, signed with the secret shown at creation.

use std::time::Duration;

use serde_json::{json, Value};

use crate::admin::{mint, Admin, Answer};
use crate::support::{TestServer, TEST_MASTER_KEY};
use crate::webhook_receiver::{verify, Receiver};

async fn server(allow_private: bool) -> TestServer {
    TestServer::with(&[
        ("HELLOJOHN_MASTER_KEY", TEST_MASTER_KEY),
        (
            "HELLOJOHN_WEBHOOK_ALLOW_PRIVATE",
            if allow_private { "true" } else { "false" },
        ),
        ("HELLOJOHN_WEBHOOK_POLL_INTERVAL", "50ms"),
    ])
    .await
}

fn code(a: &Answer) -> &str {
    a.body["code"].as_str().unwrap_or("")
}

async fn audited(root: &Admin<'_>, tenant: &str, action: &str) -> Vec<Value> {
    let r = root
        .get(&format!(
            "/v2/admin/tenants/{tenant}/audit-logs?action={action}"
        ))
        .await;
    r.body["items"].as_array().cloned().unwrap_or_default()
}

#[tokio::test]
async fn webhooks_are_managed_tested_and_audited() {
    let s = server(true).await;
    let fx = s.fixture().await;
    let other = s.fixture_with("other", "other-app").await;
    let (_, key) = mint(&s, "root", "admin").await;
    let root = Admin { s: &s, key };
    let rx = Receiver::start().await;
    let base = format!("/v2/admin/tenants/{}/webhooks", fx.slug());

    let made = root
        .post(
            &base,
            json!({"url": rx.url(), "events": ["user.login", "user.register"]}),
        )
        .await;
    assert_eq!(made.status, 201, "{}", made.body);
    let id = made.body["id"].as_str().unwrap().to_string();
    let secret = made.body["secret"].as_str().unwrap().to_string();
    assert_eq!(made.body["events"], json!(["user.login", "user.register"]));
    let got = root.get(&format!("{base}/{id}")).await;
    assert_eq!(got.status, 200);
    assert!(got.body.get("secret").is_none(), "{}", got.body);
    assert!(!root.get(&base).await.body.to_string().contains(&secret));
    // Another tenant's path does not reach it.
    let theirs = format!("/v2/admin/tenants/{}/webhooks/{id}", other.slug());
    assert_eq!(root.get(&theirs).await.status, 404);
    assert_eq!(root.delete(&theirs).await.status, 404);

    // A test delivery reaches the endpoint, signed with the secret shown once.
    let t = root.post(&format!("{base}/{id}/test"), json!({})).await;
    assert_eq!(
        (t.status, t.body["enqueued"].as_bool()),
        (202, Some(true)),
        "{}",
        t.body
    );
    let delivery_id = t.body["delivery_id"].as_str().unwrap().to_string();
    let received = rx.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(received[0].header("x-hellojohn-event"), "webhook.test");
    assert_eq!(received[0].delivery_id(), delivery_id);
    verify(&received[0], &secret);
    let mut delivered = Value::Null;
    for _ in 0..50 {
        let d = root.get(&format!("{base}/{id}/deliveries")).await;
        assert_eq!(d.status, 200, "{}", d.body);
        delivered = d.body["deliveries"][0].clone();
        if delivered["status"] == "delivered" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(delivered["id"], delivery_id.as_str());
    assert_eq!(delivered["status"], "delivered", "{delivered}");
    assert_eq!(delivered["event_type"], "webhook.test");
    assert_eq!(delivered["http_status"], 200);

    // Update: events, and a new secret shown once.
    let up = root
        .put(
            &format!("{base}/{id}"),
            json!({"events": ["*"], "rotate_secret": true}),
        )
        .await;
    assert_eq!(up.status, 200, "{}", up.body);
    assert_eq!(up.body["events"], json!(["*"]));
    let new_secret = up.body["secret"].as_str().unwrap().to_string();
    assert_ne!(new_secret, secret);
    root.post(&format!("{base}/{id}/test"), json!({})).await;
    let received = rx.wait_for(2, Duration::from_secs(10)).await;
    verify(&received[1], &new_secret);

    // Bad input names its field and writes nothing.
    for (body, field) in [
        (
            json!({"url": "javascript:alert(1)", "events": ["*"]}),
            "url",
        ),
        (json!({"url": rx.url(), "events": []}), "events"),
        (json!({"url": rx.url(), "events": ["user.nope"]}), "events"),
        (
            json!({"url": rx.url(), "events": ["*"], "secret": "short"}),
            "secret",
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
    assert_eq!(root.get(&base).await.body.as_array().unwrap().len(), 1);
    let r = root.get(&format!("{base}/{id}/deliveries?limit=0")).await;
    assert_eq!(r.status, 400);

    // Delete, then it is gone.
    assert_eq!(root.delete(&format!("{base}/{id}")).await.status, 204);
    assert_eq!(root.get(&format!("{base}/{id}")).await.status, 404);

    for action in [
        "webhook.create",
        "webhook.update",
        "webhook.test",
        "webhook.delete",
    ] {
        let entries = audited(&root, fx.slug(), action).await;
        assert!(!entries.is_empty(), "{action} audited");
        assert_eq!(entries[0]["target_id"], id.as_str(), "{action}");
        assert_eq!(entries[0]["actor_name"], "root", "{action}");
    }
}

#[tokio::test]
async fn private_addresses_are_refused_unless_allowed() {
    let s = server(false).await;
    let fx = s.fixture().await;
    let (_, key) = mint(&s, "root", "admin").await;
    let root = Admin { s: &s, key };
    let r = root
        .post(
            &format!("/v2/admin/tenants/{}/webhooks", fx.slug()),
            json!({"url": "http://127.0.0.1:9/hook", "events": ["*"]}),
        )
        .await;
    assert_eq!(
        (r.status, r.body["detail"]["field"].as_str()),
        (400, Some("url")),
        "{}",
        r.body
    );
}

#[tokio::test]
async fn signing_keys_are_listed_and_rotated_by_whom_may() {
    let s = server(false).await;
    let fx = s.fixture().await;
    let (_, key) = mint(&s, "root", "admin").await;
    let root = Admin { s: &s, key };
    let (_, tkey) = mint(&s, "ops", &format!("tenant:{}", fx.slug())).await;
    let ops = Admin { s: &s, key: tkey };
    let keys = format!("/v2/admin/tenants/{}/keys", fx.slug());

    // Issuer mode global: the global keys, which only an admin scope rotates.
    let listed = root.get(&keys).await;
    assert_eq!(listed.status, 200, "{}", listed.body);
    let all = listed.body["keys"].as_array().unwrap().clone();
    assert!(
        all.iter().all(|k| k["owner"] == "global"),
        "{}",
        listed.body
    );
    assert!(all
        .iter()
        .any(|k| k["status"] == "active" && k["alg"] == "EdDSA"));
    assert!(
        !listed.body.to_string().contains("private"),
        "no key material"
    );
    let r = ops.post(&format!("{keys}/rotate"), json!({})).await;
    assert_eq!((r.status, code(&r)), (403, "FORBIDDEN"));
    let r = root
        .post(&format!("{keys}/rotate"), json!({"alg": "EdDSA"}))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["rotated"][0]["alg"], "EdDSA");
    assert_eq!(r.body["rotated"][0]["retired"], 1);
    let bad = root
        .post(&format!("{keys}/rotate"), json!({"alg": "HS256"}))
        .await;
    assert_eq!(
        (bad.status, bad.body["detail"]["field"].as_str()),
        (400, Some("alg"))
    );

    // Issuer mode path: the tenant's own keys, which its own key may rotate.
    let up = root
        .put(
            &format!("/v2/admin/tenants/{}", fx.slug()),
            json!({"issuer_mode": "path"}),
        )
        .await;
    assert_eq!(up.status, 200, "{}", up.body);
    let own = ops.get(&keys).await;
    assert_eq!(own.status, 200, "{}", own.body);
    let own_keys = own.body["keys"].as_array().unwrap().clone();
    assert!(!own_keys.is_empty() && own_keys.iter().all(|k| k["owner"] == "tenant"));
    let r = ops.post(&format!("{keys}/rotate"), json!({})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["rotated"].as_array().unwrap().len(), 2);

    let entries = audited(&root, fx.slug(), "signing_key.rotate").await;
    assert_eq!(entries.len(), 3, "one per algorithm rotated");
    assert_eq!(entries[0]["actor_name"], "ops");
    assert_eq!(entries[0]["metadata"]["keys"], "tenant");
    assert_eq!(entries[2]["metadata"]["keys"], "global");
}

/// The paths HelloJohn's console calls: `GET /v2/admin/keys[?tenant_id=]` and
/// `POST /v2/admin/keys/rotate` with `tenant_id` in the body, answering `{kid, grace_seconds,
/// message}` (which its keys page reads) besides `rotated`.
#[tokio::test]
async fn the_consoles_key_paths_list_and_rotate_by_tenant_in_query_or_body() {
    let s = server(false).await;
    let fx = s.fixture().await;
    let (_, key) = mint(&s, "root", "admin").await;
    let root = Admin { s: &s, key };
    let (_, tkey) = mint(&s, "ops", &format!("tenant:{}", fx.slug())).await;
    let ops = Admin { s: &s, key: tkey };

    let global = root.get("/v2/admin/keys").await;
    assert_eq!(global.status, 200, "{}", global.body);
    let keys = global.body["keys"].as_array().unwrap().clone();
    assert!(!keys.is_empty());
    for k in &keys {
        assert_eq!(
            (k["owner"].as_str(), k["use"].as_str()),
            (Some("global"), Some("sig")),
            "{k}"
        );
        assert!(k.get("tenant_id").is_none(), "{k}");
    }
    // Global routes: a tenant's key may not call them, even naming its own tenant.
    let r = ops
        .get(&format!("/v2/admin/keys?tenant_id={}", fx.slug()))
        .await;
    assert_eq!((r.status, code(&r)), (403, "FORBIDDEN"));
    let r = ops.post("/v2/admin/keys/rotate", json!({})).await;
    assert_eq!((r.status, code(&r)), (403, "FORBIDDEN"));
    let r = root.get("/v2/admin/keys?tenant_id=no-such-tenant").await;
    assert_eq!((r.status, code(&r)), (404, "NOT_FOUND"));

    // The tenant's own keys once it is in issuer mode path.
    let up = root
        .put(
            &format!("/v2/admin/tenants/{}", fx.slug()),
            json!({"issuer_mode": "path"}),
        )
        .await;
    assert_eq!(up.status, 200, "{}", up.body);
    let tenant_id = up.body["id"].as_str().unwrap().to_string();
    let own = root
        .get(&format!("/v2/admin/keys?tenant_id={}", fx.slug()))
        .await;
    assert_eq!(own.status, 200, "{}", own.body);
    let own_keys = own.body["keys"].as_array().unwrap().clone();
    assert!(!own_keys.is_empty());
    for k in &own_keys {
        assert_eq!(
            (k["owner"].as_str(), k["tenant_id"].as_str()),
            (Some("tenant"), Some(tenant_id.as_str())),
            "{k}"
        );
    }
    // The console's rotation: tenant by slug in the body, grace_seconds not honoured.
    let r = root
        .post(
            "/v2/admin/keys/rotate",
            json!({"tenant_id": fx.slug(), "grace_seconds": 7 * 3600}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let rotated = r.body["rotated"].as_array().unwrap().clone();
    assert_eq!(rotated.len(), 2, "{}", r.body);
    assert_eq!(r.body["kid"], rotated[0]["kid"]);
    let grace = r.body["grace_seconds"].as_i64().unwrap();
    assert!(grace > 0 && grace != 7 * 3600, "{}", r.body);
    assert!(r.body["message"]
        .as_str()
        .unwrap()
        .contains(&grace.to_string()));
    let listed = root
        .get(&format!("/v2/admin/keys?tenant_id={tenant_id}"))
        .await;
    let kids: Vec<&str> = listed.body["keys"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|k| k["kid"].as_str())
        .collect();
    assert!(
        kids.contains(&r.body["kid"].as_str().unwrap()),
        "{}",
        listed.body
    );
    let entries = audited(&root, fx.slug(), "signing_key.rotate").await;
    assert_eq!(
        entries.len(),
        2,
        "audited under the tenant, one per algorithm"
    );
    assert_eq!(entries[0]["metadata"]["keys"], "tenant");

    // Without a tenant: the global keys.
    let before = root.get("/v2/admin/keys").await.body["keys"]
        .as_array()
        .unwrap()
        .len();
    let r = root
        .post("/v2/admin/keys/rotate", json!({"alg": "EdDSA"}))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["rotated"].as_array().unwrap().len(), 1);
    let after = root.get("/v2/admin/keys").await.body["keys"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(after, before + 1);

    // The tenant's own path names the tenant: a body tenant_id is refused, nothing rotates.
    let r = root
        .post(
            &format!("/v2/admin/tenants/{}/keys/rotate", fx.slug()),
            json!({"tenant_id": "other"}),
        )
        .await;
    assert_eq!(
        (r.status, r.body["detail"]["field"].as_str()),
        (400, Some("tenant_id")),
        "{}",
        r.body
    );
    assert_eq!(
        audited(&root, fx.slug(), "signing_key.rotate").await.len(),
        2
    );
}
