//! The admin API's refresh tokens and cookie sessions (`/v2/admin/tenants/{t}/tokens...`,
//! `.../sessions...`) over real HTTP, on the store the suite runs on: the shapes HelloJohn's
//! console reads, filters and pages, stats, bad input, scopes, tenant scoping, audit entries,
//! and the effect of each revocation: the refresh token refused, the cookie refused, also where
//! Redis caches sessions (the marks a sign-out writes).

use std::time::Duration;

use serde_json::{json, Value};
use uuid::Uuid;

use crate::admin::{admin, code, mint, Admin};
use crate::admin_users::{assert_audited, me_with_cookie, session_cookie};
use crate::support::{Fixture, StartOptions, TestServer, PASSWORD};

fn tokens(fx: &Fixture) -> String {
    format!("/v2/admin/tenants/{}/tokens", fx.slug())
}

fn sessions(fx: &Fixture) -> String {
    format!("/v2/admin/tenants/{}/sessions", fx.slug())
}

fn user_id(body: &Value) -> String {
    body["user_id"].as_str().unwrap().to_string()
}

/// Signs `email` in through `client_id`; returns the refresh token.
async fn sign_in(s: &TestServer, fx: &Fixture, client_id: &str, email: &str) -> String {
    let (status, body) = crate::support::status_and_json(
        s.post_json(
            "/v2/auth/login",
            &json!({"tenant_id": fx.slug(), "client_id": client_id,
                    "email": email, "password": PASSWORD}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body["refresh_token"].as_str().unwrap().to_string()
}

/// The ids (and the listing) of `GET path`, asserted 200.
async fn ids(root: &Admin<'_>, path: &str, key: &str) -> (Vec<String>, Value) {
    let r = root.get(path).await;
    assert_eq!(r.status, 200, "{path}: {}", r.body);
    let ids = r.body[key]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap().to_string())
        .collect();
    (ids, r.body)
}

#[tokio::test]
async fn refresh_tokens_are_listed_filtered_paged_and_counted() {
    let day = engine::unix_now() / 86_400;
    let s = TestServer::start().await;
    let fx = s.fixture().await;
    let other = s.fixture_with("other", "other-app").await;
    let root = admin(&s).await;
    s.add_client(&fx.tenant, "acme-cli").await;
    let short = store::NewClient {
        refresh_token_ttl: Some(1),
        ..store::NewClient::new(fx.tenant.id, "acme-short", "short")
    };
    s.store()
        .create_client(short, engine::unix_now(), None)
        .await
        .unwrap();
    let ada = user_id(&s.register(&fx, "ada@example.com").await);
    let bob = user_id(&s.register(&fx, "bob@example.com").await);
    sign_in(&s, &fx, "acme-cli", "ada@example.com").await;
    sign_in(&s, &fx, "acme-short", "bob@example.com").await;
    s.register(&other, "carol@example.com").await;
    // The short-lived family expires (its client gives refresh tokens one second).
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let base = tokens(&fx);

    // Active by default: three families, in the console's shape.
    let (active, body) = ids(&root, &base, "tokens").await;
    assert_eq!(active.len(), 3, "{body}");
    assert_eq!(
        (
            body["total_count"].as_u64(),
            body["page"].as_u64(),
            body["page_size"].as_u64()
        ),
        (Some(3), Some(1), Some(25))
    );
    let t = &body["tokens"][0];
    for field in [
        "id",
        "user_id",
        "user_email",
        "client_id",
        "issued_at",
        "expires_at",
    ] {
        assert!(t[field].is_string(), "{field}: {t}");
    }
    assert_eq!(
        (
            t["status"].as_str(),
            t["user_id"].as_str(),
            t["user_email"].as_str()
        ),
        (Some("active"), Some(ada.as_str()), Some("ada@example.com"))
    );
    assert!(!body.to_string().contains("refresh_token"));
    let issued = protocol::admin::parse_time(t["issued_at"].as_str().unwrap()).unwrap();
    assert!(protocol::admin::parse_time(t["expires_at"].as_str().unwrap()).unwrap() > issued);

    // Filters: status, client, user, a part of the email; pages of 2.
    let count = |query: String| {
        let root = &root;
        let base = &base;
        async move {
            let r = root.get(&format!("{base}?{query}")).await;
            assert_eq!(r.status, 200, "{query}: {}", r.body);
            (
                r.body["total_count"].as_u64().unwrap(),
                r.body["tokens"].as_array().unwrap().len(),
            )
        }
    };
    assert_eq!(count("status=all".into()).await, (4, 4));
    assert_eq!(count("status=expired".into()).await, (1, 1));
    assert_eq!(count("status=revoked".into()).await, (0, 0));
    assert_eq!(count("client_id=acme-cli".into()).await, (1, 1));
    assert_eq!(count(format!("user_id={bob}")).await, (1, 1));
    assert_eq!(count(format!("user_id={bob}&status=all")).await, (2, 2));
    assert_eq!(count("search=ADA@".into()).await, (2, 2));
    assert_eq!(count("search=carol".into()).await, (0, 0));
    let (page1, _) = ids(&root, &format!("{base}?status=all&page_size=2"), "tokens").await;
    let (page2, body2) = ids(
        &root,
        &format!("{base}?status=all&page_size=2&page=2"),
        "tokens",
    )
    .await;
    assert_eq!((page1.len(), page2.len()), (2, 2));
    assert_eq!(body2["total_count"], 4);
    assert!(page1.iter().all(|id| !page2.contains(id)));
    for (query, field) in [
        ("status=odd", "status"),
        ("user_id=nope", "user_id"),
        ("page_size=500", "page_size"),
        (
            &format!("client_id={}", "c".repeat(201)) as &str,
            "client_id",
        ),
    ] {
        let r = root.get(&format!("{base}?{query}")).await;
        assert_eq!(
            (r.status, r.body["detail"]["field"].as_str()),
            (400, Some(field)),
            "{query}"
        );
    }

    // One by id; another tenant's, or no UUID, is 404.
    let one = root.get(&format!("{base}/{}", active[0])).await;
    assert_eq!((one.status, &one.body), (200, &body["tokens"][0]));
    let (theirs, _) = ids(&root, &tokens(&other), "tokens").await;
    for path in [
        format!("{base}/{}", theirs[0]),
        format!("{base}/nope"),
        format!("{base}/{}", Uuid::now_v7()),
    ] {
        assert_eq!(root.get(&path).await.status, 404, "{path}");
        assert_eq!(root.delete(&path).await.status, 404, "{path}");
    }

    // Stats: what the listings say, and a mean life in hours.
    let st = root.get(&format!("{base}/stats")).await;
    assert_eq!(st.status, 200, "{}", st.body);
    let lifetimes: Vec<f64> = body["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            let at = |f: &str| protocol::admin::parse_time(t[f].as_str().unwrap()).unwrap();
            (at("expires_at") - at("issued_at")) as f64 / 3600.0
        })
        .collect();
    let mean = lifetimes.iter().sum::<f64>() / lifetimes.len() as f64;
    let avg = st.body["avg_lifetime_hours"].as_f64().unwrap();
    assert!((avg - mean).abs() < 0.01, "{avg} {mean}");
    assert_eq!(st.body["total_active"], 3, "{}", st.body);
    if engine::unix_now() / 86_400 == day {
        // Everything was made today (UTC), unless the test ran over midnight.
        assert_eq!(
            (
                st.body["issued_today"].as_u64(),
                st.body["revoked_today"].as_u64()
            ),
            (Some(4), Some(0)),
            "{}",
            st.body
        );
    }
    assert_eq!(
        st.body["by_client"],
        json!([{"client_id": "acme-cli", "count": 1}, {"client_id": "acme-web", "count": 2}])
    );
    let empty = root.get(&format!("{}/stats", tokens(&other))).await;
    assert_eq!(empty.body["total_active"], 1);
}

#[tokio::test]
async fn refresh_tokens_are_revoked_one_by_user_by_client_and_all() {
    let s = TestServer::start().await;
    let fx = s.fixture().await;
    let other = s.fixture_with("other", "other-app").await;
    let root = admin(&s).await;
    s.add_client(&fx.tenant, "acme-cli").await;
    let ada_reg = s.register(&fx, "ada@example.com").await;
    let ada = user_id(&ada_reg);
    let ada_web = ada_reg["refresh_token"].as_str().unwrap().to_string();
    let bob_reg = s.register(&fx, "bob@example.com").await;
    let bob = user_id(&bob_reg);
    let bob_web = bob_reg["refresh_token"].as_str().unwrap().to_string();
    let ada_cli = sign_in(&s, &fx, "acme-cli", "ada@example.com").await;
    let carol_reg = s.register(&other, "carol@example.com").await;
    let carol = user_id(&carol_reg);
    let carol_token = carol_reg["refresh_token"].as_str().unwrap().to_string();
    let base = tokens(&fx);
    let refreshes = |client_id: &'static str, token: String| {
        let s = &s;
        async move { s.refresh(client_id, &token).await.0 == 200 }
    };

    // One: the family of ada's web sign-in.
    let (ada_ids, _) = ids(
        &root,
        &format!("{base}?user_id={ada}&client_id=acme-web"),
        "tokens",
    )
    .await;
    let r = root.delete(&format!("{base}/{}", ada_ids[0])).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["revoked_count"], 1);
    assert!(r.body["message"].is_string());
    assert_audited(&root, &fx, "token.revoke", ("token", &ada_ids[0])).await;
    assert!(!refreshes("acme-web", ada_web).await);
    let gone = root.get(&format!("{base}/{}", ada_ids[0])).await;
    assert_eq!(gone.body["status"], "revoked");
    assert!(gone.body["revoked_at"].is_string());
    let again = root.delete(&format!("{base}/{}", ada_ids[0])).await;
    assert_eq!(
        (again.status, &again.body["revoked_count"]),
        (200, &json!(0))
    );

    // Bad input, and what names nothing in this tenant.
    let by_user = format!("{base}/revoke-by-user");
    let by_client = format!("{base}/revoke-by-client");
    for (path, body, field) in [
        (&by_user, json!({}), "user_id"),
        (&by_user, json!({"user_id": "nope"}), "user_id"),
        (&by_client, json!({}), "client_id"),
        (
            &by_client,
            json!({"client_id": "acme-cli", "reason": "x".repeat(501)}),
            "reason",
        ),
    ] {
        let r = root.post(path, body.clone()).await;
        assert_eq!(
            (r.status, r.body["detail"]["field"].as_str()),
            (400, Some(field)),
            "{body}"
        );
    }
    for (path, body) in [
        (&by_user, json!({"user_id": carol})),
        (&by_user, json!({"user_id": Uuid::now_v7()})),
        (&by_client, json!({"client_id": "other-app"})),
    ] {
        let r = root.post(path, body.clone()).await;
        assert_eq!((r.status, code(&r)), (404, "NOT_FOUND"), "{body}");
    }

    // A user's: bob's only.
    let r = root.post(&by_user, json!({"user_id": bob})).await;
    assert_eq!(
        (r.status, &r.body["revoked_count"]),
        (200, &json!(1)),
        "{}",
        r.body
    );
    assert_audited(&root, &fx, "token.revoke_by_user", ("user", &bob)).await;
    assert!(!refreshes("acme-web", bob_web).await);
    let ada_cli = {
        let (status, body) = s.refresh("acme-cli", &ada_cli).await;
        assert_eq!(status, 200, "ada's other family still works: {body}");
        body["refresh_token"].as_str().unwrap().to_string()
    };

    // A client's, then the whole tenant's; the other tenant's are untouched.
    let r = root
        .post(
            &by_client,
            json!({"client_id": "acme-cli", "reason": "rotated"}),
        )
        .await;
    assert_eq!((r.status, &r.body["revoked_count"]), (200, &json!(1)));
    let e = assert_audited(&root, &fx, "token.revoke_by_client", ("client", "acme-cli")).await;
    assert_eq!(e["metadata"]["reason"], "rotated");
    assert_eq!(e["metadata"]["revoked"], 1);
    assert!(!refreshes("acme-cli", ada_cli).await);
    let dave = s.register(&fx, "dave@example.com").await["refresh_token"]
        .as_str()
        .unwrap()
        .to_string();
    let r = root.post(&format!("{base}/revoke-all"), json!({})).await;
    assert_eq!((r.status, &r.body["revoked_count"]), (200, &json!(1)));
    let tenant = fx.tenant.id.to_string();
    assert_audited(&root, &fx, "token.revoke_all", ("tenant", &tenant)).await;
    assert!(!refreshes("acme-web", dave).await);
    assert!(refreshes("other-app", carol_token).await);
    // Nothing left: revoked nothing, audited nothing.
    let none = root.post(&format!("{base}/revoke-all"), json!({})).await;
    assert_eq!(none.body["revoked_count"], 0);
    let all = crate::admin_users::audits(&root, &fx, "token.revoke_all").await;
    assert_eq!(all.len(), 1);
    let st = root.get(&format!("{base}/stats")).await;
    assert_eq!(
        (
            st.body["total_active"].as_u64(),
            st.body["total_revoked"].as_u64()
        ),
        (Some(0), Some(4))
    );
    assert_eq!(st.body["avg_lifetime_hours"], 0.0);
}

#[tokio::test]
async fn sessions_are_listed_counted_and_revoked() {
    let s = TestServer::start().await;
    let fx = s.fixture().await;
    let other = s.fixture_with("other", "other-app").await;
    let root = admin(&s).await;
    let ada = user_id(&s.register(&fx, "ada@example.com").await);
    let bob = user_id(&s.register(&fx, "bob@example.com").await);
    let carol = user_id(&s.register(&other, "carol@example.com").await);
    let ada1 = session_cookie(&s, &fx, "ada@example.com", PASSWORD).await;
    let ada2 = session_cookie(&s, &fx, "ada@example.com", PASSWORD).await;
    let bob1 = session_cookie(&s, &fx, "bob@example.com", PASSWORD).await;
    session_cookie(&s, &other, "carol@example.com", PASSWORD).await;
    let base = sessions(&fx);

    let (all, body) = ids(&root, &base, "sessions").await;
    assert_eq!(all.len(), 3, "{body}");
    assert_eq!(
        (
            body["total"].as_u64(),
            body["page"].as_u64(),
            body["page_size"].as_u64(),
            body["total_pages"].as_u64()
        ),
        (Some(3), Some(1), Some(25), Some(1))
    );
    // Sessions of one second are in no particular order: one of ada's.
    let first = body["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["user_email"] == "ada@example.com")
        .unwrap();
    let first_id = first["id"].as_str().unwrap().to_string();
    assert_eq!(
        (
            first["user_id"].as_str(),
            first["user_email"].as_str(),
            first["status"].as_str(),
            first["client_id"].as_str()
        ),
        (
            Some(ada.as_str()),
            Some("ada@example.com"),
            Some("active"),
            Some("acme-web")
        )
    );
    for field in ["created_at", "expires_at"] {
        assert!(protocol::admin::parse_time(first[field].as_str().unwrap()).is_some());
    }
    // What is not recorded is not made up.
    for field in [
        "ip_address",
        "device_type",
        "browser",
        "os",
        "last_activity",
    ] {
        assert!(first.get(field).is_none(), "{field}: {first}");
    }
    let paged = root.get(&format!("{base}?page_size=2&page=2")).await;
    assert_eq!(
        (
            paged.body["total_pages"].as_u64(),
            paged.body["sessions"].as_array().unwrap().len()
        ),
        (Some(2), 1)
    );
    assert_eq!(
        root.get(&format!("{base}?search=BOB")).await.body["total"],
        1
    );
    assert_eq!(
        root.get(&format!("{base}?user_id={ada}")).await.body["total"],
        2
    );
    let r = root.get(&format!("{base}?device_type=desktop")).await;
    assert_eq!(
        (r.status, r.body["detail"]["field"].as_str()),
        (400, Some("device_type"))
    );
    let st = root.get(&format!("{base}/stats")).await;
    assert_eq!(st.status, 200, "{}", st.body);
    assert_eq!(
        (
            &st.body["total_active"],
            &st.body["by_device"],
            &st.body["by_client"]
        ),
        (
            &json!(3),
            &json!([]),
            &json!([{"client_id": "acme-web", "count": 3}])
        )
    );
    let one = root.get(&format!("{base}/{first_id}")).await;
    assert_eq!((one.status, &one.body), (200, first));
    let (theirs, _) = ids(&root, &sessions(&other), "sessions").await;
    for path in [
        format!("{base}/{}", theirs[0]),
        format!("{base}/nope"),
        format!("{base}/{}/revoke", theirs[0]),
    ] {
        let r = if path.ends_with("/revoke") {
            root.post(&path, json!({})).await
        } else {
            root.get(&path).await
        };
        assert_eq!((r.status, code(&r)), (404, "NOT_FOUND"), "{path}");
    }

    // One, with a reason: that cookie stops, ada's other one works.
    let r = root
        .post(
            &format!("{base}/{first_id}/revoke"),
            json!({"reason": "lost laptop"}),
        )
        .await;
    assert_eq!(
        (r.status, &r.body["revoked_count"]),
        (200, &json!(1)),
        "{}",
        r.body
    );
    let e = assert_audited(&root, &fx, "session.revoke", ("session", &first_id)).await;
    assert_eq!(e["metadata"]["reason"], "lost laptop");
    let mut statuses = [
        me_with_cookie(&s, &ada1).await,
        me_with_cookie(&s, &ada2).await,
    ];
    statuses.sort();
    assert_eq!(
        statuses,
        [200, 401],
        "that cookie stops, ada's other one works"
    );
    assert_eq!(
        root.get(&format!("{base}?status=revoked")).await.body["total"],
        1
    );

    // A user's (another tenant's user is 404), then every session of the tenant.
    let by_user = format!("{base}/revoke-by-user");
    let r = root.post(&by_user, json!({"user_id": carol})).await;
    assert_eq!(r.status, 404);
    let r = root
        .post(&by_user, json!({"user_id": ada, "reason": "support call"}))
        .await;
    assert_eq!((r.status, &r.body["revoked_count"]), (200, &json!(1)));
    assert_audited(&root, &fx, "session.revoke_by_user", ("user", &ada)).await;
    assert_eq!(me_with_cookie(&s, &ada1).await, 401);
    assert_eq!(me_with_cookie(&s, &ada2).await, 401);
    assert_eq!(me_with_cookie(&s, &bob1).await, 200);
    let r = root.post(&format!("{base}/revoke-all"), json!({})).await;
    assert_eq!((r.status, &r.body["revoked_count"]), (200, &json!(1)));
    let tenant = fx.tenant.id.to_string();
    assert_audited(&root, &fx, "session.revoke_all", ("tenant", &tenant)).await;
    assert_eq!(me_with_cookie(&s, &bob1).await, 401);
    assert_eq!(root.get(&base).await.body["total"], 3);
    assert_eq!(
        root.get(&format!("{base}?status=active")).await.body["total"],
        0
    );
    assert_eq!(
        root.get(&sessions(&other)).await.body["sessions"][0]["status"],
        "active"
    );
    let _ = bob;
}

#[tokio::test]
async fn each_scope_may_do_what_it_says_on_tokens_and_sessions() {
    let s = TestServer::start().await;
    let fx = s.fixture().await;
    let other = s.fixture_with("other", "other-app").await;
    let ada = user_id(&s.register(&fx, "ada@example.com").await);
    let (_, ro) = mint(&s, "ro", "readonly").await;
    let ro = Admin { s: &s, key: ro };
    let (_, theirs) = mint(&s, "other-ops", &format!("tenant:{}", other.slug())).await;
    let theirs = Admin { s: &s, key: theirs };
    let (_, mine) = mint(&s, "acme-ops", &format!("tenant:{}", fx.slug())).await;
    let mine = Admin { s: &s, key: mine };
    let (t, se) = (tokens(&fx), sessions(&fx));
    let (token_ids, _) = ids(&ro, &t, "tokens").await;
    let id = &token_ids[0];
    for path in [
        &t,
        &format!("{t}/stats"),
        &format!("{t}/{id}"),
        &se,
        &format!("{se}/stats"),
    ] {
        assert_eq!(ro.get(path).await.status, 200, "{path}");
        assert_eq!(mine.get(path).await.status, 200, "{path}");
        let r = theirs.get(path).await;
        assert_eq!((r.status, code(&r)), (403, "FORBIDDEN"), "{path}");
    }
    let changes = [
        (format!("{t}/revoke-by-user"), json!({"user_id": ada})),
        (
            format!("{t}/revoke-by-client"),
            json!({"client_id": fx.client_id()}),
        ),
        (format!("{t}/revoke-all"), json!({})),
        (format!("{se}/revoke-by-user"), json!({"user_id": ada})),
        (format!("{se}/revoke-all"), json!({})),
    ];
    for who in [&ro, &theirs] {
        for (path, body) in &changes {
            let r = who.post(path, body.clone()).await;
            assert_eq!((r.status, code(&r)), (403, "FORBIDDEN"), "{path}");
        }
        let r = who.delete(&format!("{t}/{id}")).await;
        assert_eq!((r.status, code(&r)), (403, "FORBIDDEN"));
    }
    assert_eq!(
        ids(&ro, &t, "tokens").await.0.len(),
        1,
        "nothing was revoked"
    );
    let r = mine.delete(&format!("{t}/{id}")).await;
    assert_eq!((r.status, &r.body["revoked_count"]), (200, &json!(1)));
}

/// A server whose sessions are cached in Redis (`HJ_TEST_REDIS_URL`), under its own prefix.
async fn with_redis() -> TestServer {
    let redis = testkit::require_env("HJ_TEST_REDIS_URL");
    TestServer::with_options(
        &[("HELLOJOHN_REDIS_URL", &redis)],
        StartOptions {
            redis_key_prefix: Some(format!("hj-it-admin-{}:", Uuid::new_v4().simple())),
            ..Default::default()
        },
    )
    .await
}

/// Where Redis caches sessions, a revoked session or a user's new password must still stop
/// the cookie at once (the cached copy is marked), and revoked families are marked as a
/// sign-out marks them.
#[tokio::test]
async fn revocations_mark_the_shared_cache_as_a_sign_out_does() {
    let s = with_redis().await;
    let fx = s.fixture().await;
    let root = admin(&s).await;
    let app = s.handle().app().clone();
    let cache = app.auth.cache.as_ref().expect("the Redis session cache");
    let ada = user_id(&s.register(&fx, "ada@example.com").await);
    let bob = user_id(&s.register(&fx, "bob@example.com").await);

    // A session cached at its sign-in, revoked by id.
    let cookie = session_cookie(&s, &fx, "ada@example.com", PASSWORD).await;
    assert_eq!(me_with_cookie(&s, &cookie).await, 200);
    let (listed, _) = ids(&root, &sessions(&fx), "sessions").await;
    let r = root
        .post(
            &format!("{}/{}/revoke", sessions(&fx), listed[0]),
            json!({}),
        )
        .await;
    assert_eq!(r.body["revoked_count"], 1, "{}", r.body);
    assert_eq!(me_with_cookie(&s, &cookie).await, 401);

    // Every session of a user, by user and by tenant.
    let c1 = session_cookie(&s, &fx, "ada@example.com", PASSWORD).await;
    let c2 = session_cookie(&s, &fx, "bob@example.com", PASSWORD).await;
    assert_eq!(me_with_cookie(&s, &c1).await, 200);
    assert_eq!(me_with_cookie(&s, &c2).await, 200);
    let by_user = format!("{}/revoke-by-user", sessions(&fx));
    assert_eq!(
        root.post(&by_user, json!({"user_id": ada})).await.status,
        200
    );
    assert_eq!(me_with_cookie(&s, &c1).await, 401);
    assert_eq!(me_with_cookie(&s, &c2).await, 200);
    let all = format!("{}/revoke-all", sessions(&fx));
    assert_eq!(root.post(&all, json!({})).await.status, 200);
    assert_eq!(me_with_cookie(&s, &c2).await, 401);

    // A new password: the user's cached sessions are marked (the user is still enabled).
    let c3 = session_cookie(&s, &fx, "bob@example.com", PASSWORD).await;
    assert_eq!(me_with_cookie(&s, &c3).await, 200);
    let r = root
        .post(
            &format!("/v2/admin/tenants/{}/users/{bob}/set-password", fx.slug()),
            json!({"password": "New-Password-77"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(me_with_cookie(&s, &c3).await, 401);

    // Refresh families: marked revoked, and refused.
    let token = sign_in(&s, &fx, "acme-web", "ada@example.com").await;
    let (active, _) = ids(&root, &format!("{}?user_id={ada}", tokens(&fx)), "tokens").await;
    assert_eq!(active.len(), 2);
    for id in &active {
        assert_eq!(cache.family_revoked(id.parse().unwrap()).await, Ok(false));
    }
    let r = root
        .post(
            &format!("{}/revoke-by-user", tokens(&fx)),
            json!({"user_id": ada}),
        )
        .await;
    assert_eq!(r.body["revoked_count"], 2, "{}", r.body);
    for id in &active {
        assert_eq!(
            cache.family_revoked(id.parse().unwrap()).await,
            Ok(true),
            "{id}"
        );
    }
    assert_ne!(s.refresh("acme-web", &token).await.0, 200);
}
