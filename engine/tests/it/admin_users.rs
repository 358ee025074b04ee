//! The admin API's users (`/v2/admin/tenants/{t}/users...`) over real HTTP, on the store the
//! suite runs on: the shapes HelloJohn's console reads, paging and search, bad input, each
//! scope's rights, tenant scoping, the audit entry of each action, and the effects on the user:
//! sign-in, Bearer tokens, refresh tokens and cookie sessions.

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use uuid::Uuid;

use crate::admin::{admin, code, mint, Admin};
use crate::support::{cookie_value, set_cookies, Fixture, TestServer, PASSWORD};

fn users(fx: &Fixture) -> String {
    format!("/v2/admin/tenants/{}/users", fx.slug())
}

/// The audit entries of exactly `action` in the fixture's tenant, newest first.
pub async fn audits(root: &Admin<'_>, fx: &Fixture, action: &str) -> Vec<Value> {
    let r = root
        .get(&format!(
            "/v2/admin/tenants/{}/audit-logs?action={action}",
            fx.slug()
        ))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == action)
        .cloned()
        .collect()
}

/// Asserts the newest entry of `action` is about `target` (type, id), by the key `root`.
pub async fn assert_audited(
    root: &Admin<'_>,
    fx: &Fixture,
    action: &str,
    target: (&str, &str),
) -> Value {
    let entries = audits(root, fx, action).await;
    let e = entries
        .first()
        .unwrap_or_else(|| panic!("no {action} entry"))
        .clone();
    assert_eq!(
        (
            e["target_type"].as_str(),
            e["target_id"].as_str(),
            e["actor_type"].as_str(),
            e["actor_name"].as_str(),
            e["tenant_id"].as_str(),
        ),
        (
            Some(target.0),
            Some(target.1),
            Some("api_key"),
            Some("root"),
            Some(fx.tenant.id.to_string().as_str())
        ),
        "{e}"
    );
    e
}

/// `/v2/me` with a Bearer token: its status.
async fn me(s: &TestServer, token: &str) -> u16 {
    s.get_bearer("/v2/me", token).await.status().as_u16()
}

/// Waits until `/v2/me` refuses `token` (at most 5 s: the user cache's TTL).
pub async fn refused_within_5s(s: &TestServer, token: &str) {
    let start = Instant::now();
    loop {
        match me(s, token).await {
            401 => return,
            200 => assert!(
                start.elapsed() < Duration::from_secs(5),
                "still accepted after 5 s"
            ),
            other => panic!("/v2/me answered {other}"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A cookie session of `email` (`Cookie` header value).
pub async fn session_cookie(s: &TestServer, fx: &Fixture, email: &str, password: &str) -> String {
    let resp = s
        .post_json(
            "/v2/session/login",
            &json!({"tenant_id": fx.slug(), "client_id": fx.client_id(),
                    "email": email, "password": password}),
        )
        .await;
    assert_eq!(resp.status(), 204);
    let sid = cookie_value(&set_cookies(&resp), "sid").unwrap();
    format!("sid={sid}")
}

/// `/v2/me` with a session cookie: its status.
pub async fn me_with_cookie(s: &TestServer, cookie: &str) -> u16 {
    s.client
        .get(s.url("/v2/me"))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn users_are_created_read_updated_and_deleted_in_the_consoles_shape() {
    let s = TestServer::start().await;
    let fx = s.fixture().await;
    let root = admin(&s).await;
    let base = users(&fx);
    let r = root
        .post(
            &base,
            json!({"email": " Ada@Example.COM", "password": PASSWORD, "name": "Ada",
                   "email_verified": true, "custom_fields": {"plan": "pro"},
                   "app_metadata": {"role": "ops"}, "source_client_id": null}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let u = r.body.clone();
    let id = u["id"].as_str().unwrap().to_string();
    assert!(Uuid::parse_str(&id).is_ok());
    assert_eq!(u["tenant_id"], fx.tenant.id.to_string());
    assert_eq!(u["email"], "ada@example.com");
    assert_eq!(
        (
            &u["email_verified"],
            &u["name"],
            &u["disabled"],
            &u["mfa_enabled"]
        ),
        (&json!(true), &json!("Ada"), &json!(false), &json!(false))
    );
    assert_eq!(u["custom_fields"], json!({"plan": "pro"}));
    assert_eq!(u["app_metadata"], json!({"role": "ops"}));
    assert_eq!(u["metadata"], json!({"role": "ops"}));
    assert!(u.get("disabled_at").is_none() && u.get("disabled_reason").is_none());
    let created = protocol::admin::parse_time(u["created_at"].as_str().unwrap()).unwrap();
    assert!((created - engine::unix_now()).abs() < 60);
    let text = u.to_string().to_lowercase();
    assert!(
        !text.contains("password") && !text.contains("argon2"),
        "{text}"
    );
    // The password works, and the operator's metadata is in the token's `custom` claim.
    let (status, body) = s.login(&fx, "ada@example.com", PASSWORD).await;
    assert_eq!(status, 200, "{body}");
    let claims = s
        .get_bearer("/v2/me", body["access_token"].as_str().unwrap())
        .await
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(claims["custom"]["role"], "ops", "{claims}");
    assert_audited(&root, &fx, "user.create", ("user", &id)).await;

    // A taken email (any case) is 409; bad fields are 400 naming the field; nothing is made.
    let dup = root
        .post(
            &base,
            json!({"email": "ADA@example.com", "password": PASSWORD}),
        )
        .await;
    assert_eq!((dup.status, code(&dup)), (409, "CONFLICT"), "{}", dup.body);
    for (body, field) in [
        (json!({"email": "not-an-email"}), "email"),
        (json!({}), "email"),
        (
            json!({"email": "b@example.com", "password": "short"}),
            "password",
        ),
        (
            json!({"email": "b@example.com", "custom_fields": [1]}),
            "custom_fields",
        ),
        (
            json!({"email": "b@example.com", "app_metadata": {"a": "x".repeat(5000)}}),
            "app_metadata",
        ),
        (json!({"email": "b@example.com", "name": "a\u{7}b"}), "name"),
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
    assert_eq!(root.get(&base).await.body["total_count"], 1);

    // Without a password: made, and cannot sign in with one.
    let bare = root.post(&base, json!({"email": "bare@example.com"})).await;
    assert_eq!(bare.status, 201, "{}", bare.body);
    assert_eq!(bare.body["email_verified"], false);
    assert_eq!(s.login(&fx, "bare@example.com", PASSWORD).await.0, 401);

    // Read; update (the console's extra fields ignored); a new email is not verified.
    let one = root.get(&format!("{base}/{id}")).await;
    assert_eq!((one.status, &one.body), (200, &u));
    let up = root
        .put(
            &format!("{base}/{id}"),
            json!({"name": "Ada L.", "given_name": "Ada", "family_name": "L.", "locale": "en",
                   "source_client_id": null, "custom_fields": {"plan": "team"}}),
        )
        .await;
    assert_eq!(up.status, 200, "{}", up.body);
    assert_eq!(
        (
            &up.body["name"],
            &up.body["custom_fields"],
            &up.body["email_verified"]
        ),
        (&json!("Ada L."), &json!({"plan": "team"}), &json!(true))
    );
    assert_eq!(up.body["app_metadata"], json!({"role": "ops"}));
    let moved = root
        .call(
            reqwest::Method::PATCH,
            &format!("{base}/{id}"),
            Some(json!({"email": "ada.l@example.com", "name": null})),
        )
        .await;
    assert_eq!(moved.status, 200, "{}", moved.body);
    assert_eq!(moved.body["email"], "ada.l@example.com");
    assert_eq!(moved.body["email_verified"], false);
    assert!(moved.body.get("name").is_none(), "{}", moved.body);
    let e = assert_audited(&root, &fx, "user.update", ("user", &id)).await;
    assert_eq!(e["metadata"]["email"], "changed", "{e}");
    let taken = root
        .put(
            &format!("{base}/{id}"),
            json!({"email": "bare@example.com"}),
        )
        .await;
    assert_eq!((taken.status, code(&taken)), (409, "CONFLICT"));
    let bad = root
        .put(&format!("{base}/{id}"), json!({"app_metadata": "x"}))
        .await;
    assert_eq!(
        (bad.status, bad.body["detail"]["field"].as_str()),
        (400, Some("app_metadata"))
    );

    // Delete: the user is gone, and their password with them.
    assert_eq!(root.delete(&format!("{base}/{id}")).await.status, 204);
    assert_audited(&root, &fx, "user.delete", ("user", &id)).await;
    assert_eq!(root.get(&format!("{base}/{id}")).await.status, 404);
    assert_eq!(root.delete(&format!("{base}/{id}")).await.status, 404);
    assert_eq!(s.login(&fx, "ada.l@example.com", PASSWORD).await.0, 401);
    for path in [
        format!("{base}/not-a-uuid"),
        format!("{base}/{}", Uuid::now_v7()),
    ] {
        let r = root.get(&path).await;
        assert_eq!((r.status, code(&r)), (404, "NOT_FOUND"), "{path}");
    }
}

#[tokio::test]
async fn users_are_paged_searched_and_filtered() {
    let s = TestServer::start().await;
    let fx = s.fixture().await;
    let other = s.fixture_with("other", "other-app").await;
    let root = admin(&s).await;
    let base = users(&fx);
    for i in 0..6 {
        let r = root
            .post(&base, json!({"email": format!("user{i}@example.com")}))
            .await;
        assert_eq!(r.status, 201);
    }
    s.register(&fx, "ada@example.com").await;
    s.register(&other, "theirs@example.com").await;

    // Pages of 3: 3, 3, 1; together every user once; total_count on each.
    let mut seen = Vec::new();
    for (page, len) in [(1, 3), (2, 3), (3, 1), (4, 0)] {
        let r = root.get(&format!("{base}?page={page}&page_size=3")).await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(
            (
                r.body["total_count"].as_u64(),
                r.body["page"].as_u64(),
                r.body["page_size"].as_u64()
            ),
            (Some(7), Some(page), Some(3))
        );
        let list = r.body["users"].as_array().unwrap();
        assert_eq!(list.len(), len, "page {page}");
        seen.extend(
            list.iter()
                .map(|u| u["email"].as_str().unwrap().to_string()),
        );
    }
    let mut sorted = seen.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), 7, "{seen:?}");
    assert!(!seen.iter().any(|e| e.starts_with("theirs")));
    let default = root.get(&base).await;
    assert_eq!(
        (
            default.body["page"].as_u64(),
            default.body["page_size"].as_u64()
        ),
        (Some(1), Some(25))
    );
    assert_eq!(default.body["users"].as_array().unwrap().len(), 7);

    // Search is a part of the email, any case; status filters.
    let found = root.get(&format!("{base}?search=USER1")).await;
    assert_eq!(found.body["total_count"], 1);
    assert_eq!(found.body["users"][0]["email"], "user1@example.com");
    let id = found.body["users"][0]["id"].as_str().unwrap().to_string();
    let off = root
        .post(&format!("{base}/{id}/disable"), json!({"reason": "test"}))
        .await;
    assert_eq!(off.status, 200, "{}", off.body);
    let disabled = root.get(&format!("{base}?status=disabled")).await;
    assert_eq!(disabled.body["total_count"], 1);
    assert_eq!(disabled.body["users"][0]["id"], id.as_str());
    assert!(disabled.body["users"][0]["disabled_at"].is_string());
    let active = root
        .get(&format!(
            "{base}?status=active&search=example&page_size=100"
        ))
        .await;
    assert_eq!(active.body["total_count"], 6);

    // Bad parameters: 400 naming them.
    for (query, field) in [
        ("page=0", "page"),
        ("page=x", "page"),
        ("page_size=101", "page_size"),
        ("page_size=0", "page_size"),
        ("status=gone", "status"),
        (&format!("search={}", "a".repeat(201)) as &str, "search"),
    ] {
        let r = root.get(&format!("{base}?{query}")).await;
        assert_eq!((r.status, code(&r)), (400, "BAD_REQUEST"), "{query}");
        assert_eq!(r.body["detail"]["field"], field, "{query}");
    }
}

#[tokio::test]
async fn a_disabled_user_cannot_sign_in_and_their_tokens_stop() {
    let s = TestServer::start().await;
    let fx = s.fixture().await;
    let root = admin(&s).await;
    let reg = s.register(&fx, "ada@example.com").await;
    let id = reg["user_id"].as_str().unwrap().to_string();
    let access = reg["access_token"].as_str().unwrap().to_string();
    let refresh = reg["refresh_token"].as_str().unwrap().to_string();
    assert_eq!(me(&s, &access).await, 200);
    let base = format!("{}/{id}", users(&fx));

    // A duration cannot be honoured: refused, and the user stays enabled.
    let r = root
        .post(&format!("{base}/disable"), json!({"duration": "24h"}))
        .await;
    assert_eq!(
        (r.status, r.body["detail"]["field"].as_str()),
        (400, Some("duration"))
    );
    assert_eq!(me(&s, &access).await, 200);

    let r = root
        .post(
            &format!("{base}/disable"),
            json!({"reason": "chargeback", "duration": ""}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        (&r.body["disabled"], &r.body["disabled_reason"]),
        (&json!(true), &json!("chargeback"))
    );
    assert!(protocol::admin::parse_time(r.body["disabled_at"].as_str().unwrap()).is_some());
    let e = assert_audited(&root, &fx, "user.disable", ("user", &id)).await;
    assert_eq!(e["metadata"]["reason"], "chargeback");
    refused_within_5s(&s, &access).await;
    assert_eq!(s.login(&fx, "ada@example.com", PASSWORD).await.0, 401);
    assert_ne!(s.refresh(fx.client_id(), &refresh).await.0, 200);

    let r = root.post(&format!("{base}/enable"), json!({})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["disabled"], false);
    assert!(r.body.get("disabled_at").is_none() && r.body.get("disabled_reason").is_none());
    assert_audited(&root, &fx, "user.enable", ("user", &id)).await;
    let (status, body) = s.login(&fx, "ada@example.com", PASSWORD).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(me(&s, body["access_token"].as_str().unwrap()).await, 200);
    // The refresh token of before stays revoked.
    assert_ne!(s.refresh(fx.client_id(), &refresh).await.0, 200);

    // Email verification, set and cleared.
    for verified in [true, false] {
        let r = root
            .post(
                &format!("{base}/set-email-verified"),
                json!({"verified": verified}),
            )
            .await;
        assert_eq!(
            (r.status, &r.body["email_verified"]),
            (200, &json!(verified))
        );
        let e = assert_audited(&root, &fx, "user.set_email_verified", ("user", &id)).await;
        assert_eq!(e["metadata"]["verified"], verified.to_string());
    }
    let r = root
        .post(&format!("{base}/set-email-verified"), json!({}))
        .await;
    assert_eq!(
        (r.status, r.body["detail"]["field"].as_str()),
        (400, Some("verified"))
    );
}

#[tokio::test]
async fn a_new_password_replaces_the_old_and_ends_every_session() {
    let s = TestServer::start().await;
    let fx = s.fixture().await;
    let root = admin(&s).await;
    let reg = s.register(&fx, "ada@example.com").await;
    let id = reg["user_id"].as_str().unwrap().to_string();
    let refresh = reg["refresh_token"].as_str().unwrap().to_string();
    let cookie = session_cookie(&s, &fx, "ada@example.com", PASSWORD).await;
    assert_eq!(me_with_cookie(&s, &cookie).await, 200);
    let path = format!("{}/{id}/set-password", users(&fx));

    for (body, field) in [
        (json!({}), "password"),
        (json!({"password": "weak"}), "password"),
    ] {
        let r = root.post(&path, body.clone()).await;
        assert_eq!(
            (r.status, r.body["detail"]["field"].as_str()),
            (400, Some(field)),
            "{body}"
        );
    }
    let r = root
        .post(
            &format!("{}/{}/set-password", users(&fx), Uuid::now_v7()),
            json!({"password": "New-Password-77"}),
        )
        .await;
    assert_eq!(r.status, 404);

    let r = root
        .post(&path, json!({"password": "New-Password-77"}))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(!r.body.to_string().contains("New-Password-77"));
    let e = assert_audited(&root, &fx, "user.set_password", ("user", &id)).await;
    assert!(!e.to_string().contains("New-Password-77"));
    assert_eq!(s.login(&fx, "ada@example.com", PASSWORD).await.0, 401);
    assert_eq!(
        s.login(&fx, "ada@example.com", "New-Password-77").await.0,
        200
    );
    assert_ne!(s.refresh(fx.client_id(), &refresh).await.0, 200);
    assert_eq!(me_with_cookie(&s, &cookie).await, 401);
}

#[tokio::test]
async fn each_scope_may_do_what_it_says_on_users_and_only_in_its_tenant() {
    let s = TestServer::start().await;
    let fx = s.fixture().await;
    let other = s.fixture_with("other", "other-app").await;
    let root = admin(&s).await;
    let mine = s.register(&fx, "ada@example.com").await["user_id"]
        .as_str()
        .unwrap()
        .to_string();
    let theirs = s.register(&other, "bob@example.com").await["user_id"]
        .as_str()
        .unwrap()
        .to_string();
    let base = users(&fx);

    // readonly: reads, no change.
    let (_, ro) = mint(&s, "ro", "readonly").await;
    let ro = Admin { s: &s, key: ro };
    assert_eq!(ro.get(&base).await.status, 200);
    assert_eq!(ro.get(&format!("{base}/{mine}")).await.status, 200);
    for r in [
        ro.post(&base, json!({"email": "x@example.com"})).await,
        ro.put(&format!("{base}/{mine}"), json!({"name": "x"}))
            .await,
        ro.delete(&format!("{base}/{mine}")).await,
        ro.post(&format!("{base}/{mine}/disable"), json!({})).await,
        ro.post(&format!("{base}/{mine}/enable"), json!({})).await,
        ro.post(
            &format!("{base}/{mine}/set-password"),
            json!({"password": "New-Password-77"}),
        )
        .await,
        ro.post(
            &format!("{base}/{mine}/set-email-verified"),
            json!({"verified": true}),
        )
        .await,
    ] {
        assert_eq!((r.status, code(&r)), (403, "FORBIDDEN"), "{}", r.body);
    }

    // tenant:{slug}: its own tenant's users, by slug or id; not another tenant's.
    let (_, tk) = mint(&s, "acme-ops", &format!("tenant:{}", fx.slug())).await;
    let tk = Admin { s: &s, key: tk };
    let made = tk
        .post(
            &format!("/v2/admin/tenants/{}/users", fx.tenant.id),
            json!({"email": "ops@example.com"}),
        )
        .await;
    assert_eq!(made.status, 201, "{}", made.body);
    for r in [
        tk.get(&users(&other)).await,
        tk.get(&format!("{}/{theirs}", users(&other))).await,
        tk.post(&users(&other), json!({"email": "x@example.com"}))
            .await,
    ] {
        assert_eq!((r.status, code(&r)), (403, "FORBIDDEN"), "{}", r.body);
    }

    // Another tenant's user under this tenant's path: 404 for every route, and unchanged.
    for r in [
        root.get(&format!("{base}/{theirs}")).await,
        root.put(&format!("{base}/{theirs}"), json!({"name": "x"}))
            .await,
        root.delete(&format!("{base}/{theirs}")).await,
        root.post(&format!("{base}/{theirs}/disable"), json!({}))
            .await,
        root.post(&format!("{base}/{theirs}/enable"), json!({}))
            .await,
        root.post(
            &format!("{base}/{theirs}/set-password"),
            json!({"password": "New-Password-77"}),
        )
        .await,
        root.post(
            &format!("{base}/{theirs}/set-email-verified"),
            json!({"verified": true}),
        )
        .await,
    ] {
        assert_eq!((r.status, code(&r)), (404, "NOT_FOUND"), "{}", r.body);
    }
    let still = root.get(&format!("{}/{theirs}", users(&other))).await;
    assert_eq!(
        (&still.body["disabled"], &still.body["email_verified"]),
        (&json!(false), &json!(false))
    );
    assert_eq!(s.login(&other, "bob@example.com", PASSWORD).await.0, 200);
}
