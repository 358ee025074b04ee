//! The backend-agnostic store suite.
//!
//! Every case is an `async fn(Arc<dyn Store>)` that receives a freshly opened, empty and
//! *unmigrated* store of the backend under test, and only talks to it through the [`Store`]
//! trait. `store_suite.rs` (SQLite) and `pg_suite.rs` (PostgreSQL, direct and through PgBouncer)
//! instantiate every case with [`store_suite!`] (one `#[tokio::test]` each); cases listed as
//! concurrent run on a multi-thread runtime. Include this module with `#[macro_use] mod suite;`.

/// Generates one test per case. `factory(case_name).await` returns the store and a guard that
/// cleans up after it (dropped once the case has finished and released the store).
macro_rules! store_suite {
    (
        factory = $factory:path;
        cases = [$($case:ident),* $(,)?];
        concurrent = [$($concurrent:ident),* $(,)?] $(;)?
    ) => {
        $(
            #[tokio::test]
            async fn $case() {
                let (store, guard) = $factory(stringify!($case)).await;
                crate::suite::$case(store).await;
                drop(guard);
            }
        )*
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $concurrent() {
                let (store, guard) = $factory(stringify!($concurrent)).await;
                crate::suite::$concurrent(store).await;
                drop(guard);
            }
        )*
    };
}

/// Every case of the suite, for one backend: `store_suite_all! { factory = path::to::factory; }`.
/// A new case is added here (and as an `async fn` below) and so runs against every backend.
macro_rules! store_suite_all {
    (factory = $factory:path $(;)?) => {
        store_suite! {
            factory = $factory;
            cases = [
                migrate_is_idempotent,
                tenants,
                clients,
                register_and_login,
                duplicate_email,
                upgrade_password_hash,
                refresh_rotation_and_reuse,
                expired_refresh_token,
                refresh_wrong_client,
                insert_refresh_token,
                revoke_refresh_family,
                revoke_all_for_user,
                find_user_by_email,
                app_metadata,
                disable_and_enable_user,
                sessions,
                events_commit_with_their_change,
                rolled_back_change_writes_no_event,
                webhook_endpoints,
                webhook_delivery_lifecycle,
                events_only_for_subscribers,
                prune_webhook_events,
            ];
            concurrent = [concurrent_rotation, signing_keys, concurrent_webhook_claims];
        }
    };
}

use std::sync::Arc;

use hellojohn_storage::{
    DeliveryFilter, DeliveryResult, DeliveryStatus, Event, EventDraft, NewClient, NewRefreshToken,
    NewSession, NewUser, NewWebhookEndpoint, RefreshToken, RotateOutcome, Session, SigningKey,
    Store, StoreError, Tenant, TokenHash, User, WebhookEndpoint,
};
use serde_json::json;
use uuid::Uuid;

/// "Now" for every case: the store never reads a clock for domain data.
const NOW: i64 = 1_700_000_000;
const REFRESH_TTL: i64 = 30 * 24 * 3600;
const APP: &str = "web-app";

// ----- helpers ------------------------------------------------------------------------------

async fn migrated(store: &Arc<dyn Store>) {
    let status = store.migrate().await.expect("migrate");
    assert!(
        status.pending().is_empty(),
        "pending after migrate: {status:?}"
    );
}

/// A random token hash (stands in for the SHA-256 of a random secret).
fn new_hash() -> TokenHash {
    let mut hash = [0u8; 32];
    hash[..16].copy_from_slice(Uuid::new_v4().as_bytes());
    hash[16..].copy_from_slice(Uuid::new_v4().as_bytes());
    hash
}

async fn tenant(store: &Arc<dyn Store>, slug: &str) -> Tenant {
    store
        .create_tenant(slug, &format!("Tenant {slug}"), NOW)
        .await
        .expect("create tenant")
}

fn new_user(tenant: &Tenant, email: &str) -> NewUser {
    NewUser {
        id: Uuid::new_v4(),
        tenant_id: tenant.id,
        email: email.to_owned(),
        name: Some("Ada Lovelace".to_owned()),
        custom_fields: json!({ "plan": "pro", "seats": 3, "tags": ["a", "b"] }),
    }
}

fn refresh_for(user: &NewUser, family_id: Uuid, issued_at: i64) -> NewRefreshToken {
    NewRefreshToken {
        token_hash: new_hash(),
        family_id,
        user_id: user.id,
        tenant_id: user.tenant_id,
        client_id: APP.to_owned(),
        issued_at,
        expires_at: issued_at + REFRESH_TTL,
    }
}

/// The successor presented at rotation (the store puts it in the old token's family).
fn successor(user: &User, issued_at: i64) -> NewRefreshToken {
    NewRefreshToken {
        token_hash: new_hash(),
        family_id: Uuid::new_v4(),
        user_id: user.id,
        tenant_id: user.tenant_id,
        client_id: APP.to_owned(),
        issued_at,
        expires_at: issued_at + REFRESH_TTL,
    }
}

/// Registers `email` in `tenant`; returns the user and their first refresh token.
async fn register(store: &Arc<dyn Store>, tenant: &Tenant, email: &str) -> (User, NewRefreshToken) {
    let new = new_user(tenant, email);
    let refresh = refresh_for(&new, Uuid::new_v4(), NOW);
    let user = store
        .register_user(
            new,
            "$argon2id$v=19$old".to_owned(),
            refresh.clone(),
            None,
            NOW,
        )
        .await
        .expect("register");
    (user, refresh)
}

async fn token(store: &Arc<dyn Store>, hash: TokenHash) -> RefreshToken {
    store
        .find_refresh_token(hash)
        .await
        .expect("find refresh token")
        .expect("the token exists")
}

fn assert_conflict<T: std::fmt::Debug>(result: Result<T, StoreError>, what: &str) {
    match result {
        Err(StoreError::Conflict(payload)) => {
            assert!(
                payload.contains(what),
                "conflict on {payload:?}, expected {what:?}"
            )
        }
        other => panic!("expected Conflict({what}), got {other:?}"),
    }
}

// ----- cases --------------------------------------------------------------------------------

pub async fn migrate_is_idempotent(store: Arc<dyn Store>) {
    assert!(["sqlite", "postgres"].contains(&store.backend()));
    store.ping().await.expect("ping");

    let fresh = store.migration_status().await.expect("status before");
    assert!(fresh.applied.is_empty(), "{fresh:?}");
    assert!(!fresh.known.is_empty());
    assert_eq!(fresh.pending(), fresh.known);
    assert!(
        matches!(store.list_tenants().await, Err(StoreError::Schema(_))),
        "an unmigrated store reports a Schema error"
    );

    let first = store.migrate().await.expect("first migrate");
    assert_eq!(first.applied, fresh.known);
    assert_eq!(first.known, fresh.known);
    assert!(first.pending().is_empty() && first.unknown().is_empty());

    let second = store.migrate().await.expect("second migrate");
    assert_eq!(second, first);
    let status = store.migration_status().await.expect("status after");
    assert_eq!(status, first);
    assert!(status.pending().is_empty());

    assert_eq!(
        store.list_tenants().await.expect("list"),
        Vec::<Tenant>::new()
    );
    store.ping().await.expect("ping after migrate");
}

pub async fn tenants(store: Arc<dyn Store>) {
    migrated(&store).await;
    let acme = store
        .create_tenant("acme", "Acme Inc", NOW)
        .await
        .expect("acme");
    assert_eq!(
        (acme.slug.as_str(), acme.name.as_str(), acme.created_at),
        ("acme", "Acme Inc", NOW)
    );
    let globex = store
        .create_tenant("globex", "Globex", NOW + 1)
        .await
        .expect("globex");
    assert_ne!(acme.id, globex.id);

    let mut all = store.list_tenants().await.expect("list");
    all.sort_by(|a, b| a.slug.cmp(&b.slug));
    assert_eq!(all, vec![acme.clone(), globex.clone()]);

    let find = |key: String| {
        let store = Arc::clone(&store);
        async move { store.find_tenant(&key).await.expect("find tenant") }
    };
    assert_eq!(find("acme".into()).await, Some(acme.clone()));
    assert_eq!(find(globex.id.to_string()).await, Some(globex.clone()));
    assert_eq!(
        find(acme.id.hyphenated().to_string().to_uppercase()).await,
        Some(acme.clone())
    );
    assert_eq!(find(acme.id.simple().to_string()).await, Some(acme.clone()));
    assert_eq!(find("nope".into()).await, None);
    assert_eq!(find(Uuid::new_v4().to_string()).await, None);

    assert_conflict(
        store.create_tenant("acme", "Another Acme", NOW + 2).await,
        "slug",
    );
    assert_eq!(store.list_tenants().await.expect("list").len(), 2);
    assert_eq!(find("acme".into()).await, Some(acme));
}

pub async fn clients(store: Arc<dyn Store>) {
    migrated(&store).await;
    let acme = tenant(&store, "acme").await;
    let globex = tenant(&store, "globex").await;
    let web = NewClient {
        tenant_id: acme.id,
        client_id: "web".into(),
        name: "Web".into(),
        scopes: vec!["openid".into(), "profile".into(), "email".into()],
        post_logout_redirect_uris: vec!["https://acme.test/bye".into()],
        access_token_ttl: Some(600),
        refresh_token_ttl: None,
    };
    let cli = NewClient {
        client_id: "cli".into(),
        name: "CLI".into(),
        scopes: vec![],
        post_logout_redirect_uris: vec![],
        access_token_ttl: None,
        refresh_token_ttl: Some(86_400),
        ..web.clone()
    };

    let web_client = store.create_client(web.clone(), NOW).await.expect("web");
    assert_eq!(web_client.tenant_id, acme.id);
    assert_eq!(web_client.client_id, "web");
    assert_eq!(web_client.name, "Web");
    assert_eq!(web_client.scopes, web.scopes);
    assert_eq!(
        web_client.post_logout_redirect_uris,
        web.post_logout_redirect_uris
    );
    assert_eq!(web_client.access_token_ttl, Some(600));
    assert_eq!(web_client.refresh_token_ttl, None);
    assert_eq!(web_client.created_at, NOW);
    let cli_client = store.create_client(cli, NOW + 1).await.expect("cli");

    assert_eq!(
        store.find_client(acme.id, "web").await.expect("find"),
        Some(web_client.clone())
    );
    assert_eq!(
        store.find_client(acme.id, "cli").await.expect("find"),
        Some(cli_client.clone())
    );
    assert_eq!(
        store.find_client(acme.id, "nope").await.expect("find"),
        None
    );
    assert_eq!(
        store.find_client(globex.id, "web").await.expect("find"),
        None
    );

    assert_conflict(
        store
            .create_client(
                NewClient {
                    name: "Web again".into(),
                    ..web.clone()
                },
                NOW + 2,
            )
            .await,
        "client_id",
    );

    // The same client_id in another tenant is another client.
    let globex_web = store
        .create_client(
            NewClient {
                tenant_id: globex.id,
                ..web.clone()
            },
            NOW + 3,
        )
        .await
        .expect("web in globex");
    assert_ne!(globex_web.id, web_client.id);
    assert_eq!(
        store.find_client(globex.id, "web").await.expect("find"),
        Some(globex_web.clone())
    );
    assert_eq!(
        store.find_client(acme.id, "web").await.expect("find"),
        Some(web_client.clone())
    );

    let mut of_acme = store.list_clients(Some(acme.id)).await.expect("list acme");
    of_acme.sort_by(|a, b| a.client_id.cmp(&b.client_id));
    assert_eq!(of_acme, vec![cli_client.clone(), web_client.clone()]);
    assert_eq!(
        store
            .list_clients(Some(globex.id))
            .await
            .expect("list globex"),
        vec![globex_web.clone()]
    );
    assert_eq!(
        store
            .list_clients(Some(Uuid::new_v4()))
            .await
            .expect("list none"),
        vec![]
    );
    let mut all = store.list_clients(None).await.expect("list all");
    all.sort_by_key(|c| c.created_at);
    assert_eq!(all, vec![web_client, cli_client, globex_web]);
}

pub async fn register_and_login(store: Arc<dyn Store>) {
    migrated(&store).await;
    let acme = tenant(&store, "acme").await;
    let new = new_user(&acme, "ada@acme.test");
    let refresh = refresh_for(&new, Uuid::new_v4(), NOW);
    let user = store
        .register_user(
            new.clone(),
            "$argon2id$v=19$hash".into(),
            refresh.clone(),
            None,
            NOW,
        )
        .await
        .expect("register");
    assert_eq!(
        user,
        User {
            id: new.id,
            tenant_id: acme.id,
            email: "ada@acme.test".into(),
            email_verified: false,
            name: Some("Ada Lovelace".into()),
            custom_fields: new.custom_fields.clone(),
            app_metadata: json!({}),
            disabled: false,
            created_at: NOW,
        }
    );
    assert_eq!(
        store.get_user(user.id).await.expect("get"),
        Some(user.clone())
    );
    assert_eq!(store.get_user(Uuid::new_v4()).await.expect("get"), None);

    let login = store
        .find_password_login(acme.id, "ada@acme.test")
        .await
        .expect("login")
        .expect("the login exists");
    assert_eq!(login.user, user);
    assert_eq!(login.password_hash, "$argon2id$v=19$hash");
    assert!(store
        .find_password_login(acme.id, "bob@acme.test")
        .await
        .expect("login")
        .is_none());
    let globex = tenant(&store, "globex").await;
    assert!(store
        .find_password_login(globex.id, "ada@acme.test")
        .await
        .expect("login")
        .is_none());

    // The first refresh token was written with its family.
    assert_eq!(
        token(&store, refresh.token_hash).await,
        RefreshToken {
            family_id: refresh.family_id,
            user_id: user.id,
            tenant_id: acme.id,
            client_id: APP.into(),
            issued_at: NOW,
            expires_at: NOW + REFRESH_TTL,
            rotated_at: None,
            family_revoked_at: None,
        }
    );
    assert_eq!(
        store.find_refresh_token(new_hash()).await.expect("find"),
        None
    );
}

pub async fn duplicate_email(store: Arc<dyn Store>) {
    migrated(&store).await;
    let acme = tenant(&store, "acme").await;
    let globex = tenant(&store, "globex").await;
    let (first, first_refresh) = register(&store, &acme, "ada@acme.test").await;

    let again = new_user(&acme, "ada@acme.test");
    let again_refresh = refresh_for(&again, Uuid::new_v4(), NOW + 5);
    let result = store
        .register_user(
            again.clone(),
            "$argon2id$second".into(),
            again_refresh.clone(),
            None,
            NOW + 5,
        )
        .await;
    assert_conflict(result, "email");
    // Nothing of the second attempt was written.
    assert_eq!(store.get_user(again.id).await.expect("get"), None);
    assert_eq!(
        store
            .find_refresh_token(again_refresh.token_hash)
            .await
            .expect("find"),
        None
    );
    let login = store
        .find_password_login(acme.id, "ada@acme.test")
        .await
        .expect("login")
        .expect("first login");
    assert_eq!(login.user, first);
    assert_eq!(login.password_hash, "$argon2id$v=19$old");
    assert_eq!(
        token(&store, first_refresh.token_hash).await.user_id,
        first.id
    );

    // The same email in another tenant is another user.
    let (other, other_refresh) = register(&store, &globex, "ada@acme.test").await;
    assert_ne!(other.id, first.id);
    assert_eq!(other.tenant_id, globex.id);
    let other_login = store
        .find_password_login(globex.id, "ada@acme.test")
        .await
        .expect("login")
        .expect("second tenant login");
    assert_eq!(other_login.user, other);
    assert_eq!(
        token(&store, other_refresh.token_hash).await.tenant_id,
        globex.id
    );
}

pub async fn upgrade_password_hash(store: Arc<dyn Store>) {
    migrated(&store).await;
    let acme = tenant(&store, "acme").await;
    let (user, _) = register(&store, &acme, "ada@acme.test").await;
    let hash_now = || {
        let store = Arc::clone(&store);
        async move {
            store
                .find_password_login(acme.id, "ada@acme.test")
                .await
                .expect("login")
                .expect("exists")
                .password_hash
        }
    };

    assert!(!store
        .upgrade_password_hash(user.id, "$argon2id$stale", "$argon2id$new")
        .await
        .expect("upgrade"));
    assert_eq!(hash_now().await, "$argon2id$v=19$old");

    assert!(store
        .upgrade_password_hash(user.id, "$argon2id$v=19$old", "$argon2id$new")
        .await
        .expect("upgrade"));
    assert_eq!(hash_now().await, "$argon2id$new");

    // A second upgrade from the old hash lost the race: no change.
    assert!(!store
        .upgrade_password_hash(user.id, "$argon2id$v=19$old", "$argon2id$other")
        .await
        .expect("upgrade"));
    assert_eq!(hash_now().await, "$argon2id$new");
    assert!(!store
        .upgrade_password_hash(Uuid::new_v4(), "$argon2id$new", "$argon2id$x")
        .await
        .expect("upgrade of an unknown user"));
}

pub async fn refresh_rotation_and_reuse(store: Arc<dyn Store>) {
    migrated(&store).await;
    let acme = tenant(&store, "acme").await;
    let (user, first) = register(&store, &acme, "ada@acme.test").await;
    let family = first.family_id;

    let second = successor(&user, NOW + 60);
    let outcome = store
        .rotate_refresh_token(first.token_hash, APP, second.clone(), None, NOW + 60)
        .await
        .expect("rotate");
    assert_eq!(
        outcome,
        RotateOutcome::Rotated {
            user: user.clone(),
            family_id: family
        }
    );

    let old = token(&store, first.token_hash).await;
    assert_eq!(old.rotated_at, Some(NOW + 60));
    assert_eq!(old.family_revoked_at, None);
    assert_eq!(
        token(&store, second.token_hash).await,
        RefreshToken {
            family_id: family,
            user_id: user.id,
            tenant_id: acme.id,
            client_id: APP.into(),
            issued_at: NOW + 60,
            expires_at: NOW + 60 + REFRESH_TTL,
            rotated_at: None,
            family_revoked_at: None,
        }
    );

    // The chain goes on: the second token rotates too.
    let third = successor(&user, NOW + 120);
    assert_eq!(
        store
            .rotate_refresh_token(second.token_hash, APP, third.clone(), None, NOW + 120)
            .await
            .expect("rotate"),
        RotateOutcome::Rotated {
            user: user.clone(),
            family_id: family
        }
    );

    // Replaying the first token: reuse, the whole family is revoked.
    let replay = successor(&user, NOW + 180);
    assert_eq!(
        store
            .rotate_refresh_token(first.token_hash, APP, replay.clone(), None, NOW + 180)
            .await
            .expect("replay"),
        RotateOutcome::Reused {
            family_id: family,
            user_id: user.id
        }
    );
    assert_eq!(
        store
            .find_refresh_token(replay.token_hash)
            .await
            .expect("find"),
        None
    );
    for hash in [first.token_hash, second.token_hash, third.token_hash] {
        assert_eq!(token(&store, hash).await.family_revoked_at, Some(NOW + 180));
    }
    // The legitimate latest token is dead with its family.
    let after = successor(&user, NOW + 240);
    assert_eq!(
        store
            .rotate_refresh_token(third.token_hash, APP, after.clone(), None, NOW + 240)
            .await
            .expect("rotate after reuse"),
        RotateOutcome::Revoked
    );
    assert_eq!(
        store
            .find_refresh_token(after.token_hash)
            .await
            .expect("find"),
        None
    );
    // Replaying again: the family is already revoked.
    assert_eq!(
        store
            .rotate_refresh_token(
                first.token_hash,
                APP,
                successor(&user, NOW + 300),
                None,
                NOW + 300
            )
            .await
            .expect("second replay"),
        RotateOutcome::Revoked
    );
    assert_eq!(
        token(&store, first.token_hash).await.family_revoked_at,
        Some(NOW + 180)
    );
}

pub async fn concurrent_rotation(store: Arc<dyn Store>) {
    migrated(&store).await;
    let acme = tenant(&store, "acme").await;
    let (user, first) = register(&store, &acme, "ada@acme.test").await;

    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let store = Arc::clone(&store);
            let next = successor(&user, NOW + 60);
            tokio::spawn(async move {
                let outcome = store
                    .rotate_refresh_token(first.token_hash, APP, next.clone(), None, NOW + 60 + i)
                    .await
                    .expect("rotate");
                (outcome, next.token_hash)
            })
        })
        .collect();
    let mut results = Vec::new();
    for task in tasks {
        results.push(task.await.expect("task"));
    }

    let winners: Vec<_> = results
        .iter()
        .filter(|(o, _)| matches!(o, RotateOutcome::Rotated { .. }))
        .collect();
    assert_eq!(winners.len(), 1, "exactly one rotation wins: {results:?}");
    assert_eq!(
        winners[0].0,
        RotateOutcome::Rotated {
            user: user.clone(),
            family_id: first.family_id
        }
    );
    let reused = results
        .iter()
        .filter(|(o, _)| matches!(o, RotateOutcome::Reused { .. }))
        .count();
    let revoked = results
        .iter()
        .filter(|(o, _)| *o == RotateOutcome::Revoked)
        .count();
    assert_eq!(reused + revoked, 19, "{results:?}");
    assert!(reused >= 1, "the first loser detects the reuse");
    for (outcome, _) in &results {
        if let RotateOutcome::Reused { family_id, user_id } = outcome {
            assert_eq!((*family_id, *user_id), (first.family_id, user.id));
        }
    }

    // Only the winner's token was stored, and its family is revoked by the reuse.
    let mut stored = 0;
    for (_, hash) in &results {
        if let Some(t) = store.find_refresh_token(*hash).await.expect("find") {
            stored += 1;
            assert_eq!(t.family_id, first.family_id);
            assert!(t.family_revoked_at.is_some());
        }
    }
    assert_eq!(stored, 1);
}

pub async fn expired_refresh_token(store: Arc<dyn Store>) {
    migrated(&store).await;
    let acme = tenant(&store, "acme").await;
    let new = new_user(&acme, "ada@acme.test");
    let mut refresh = refresh_for(&new, Uuid::new_v4(), NOW);
    refresh.expires_at = NOW + 100;
    let user = store
        .register_user(new, "$argon2id$h".into(), refresh.clone(), None, NOW)
        .await
        .expect("register");

    for at in [NOW + 100, NOW + 1000] {
        let next = successor(&user, at);
        assert_eq!(
            store
                .rotate_refresh_token(refresh.token_hash, APP, next.clone(), None, at)
                .await
                .expect("rotate"),
            RotateOutcome::Expired
        );
        assert_eq!(
            store
                .find_refresh_token(next.token_hash)
                .await
                .expect("find"),
            None
        );
    }
    let stored = token(&store, refresh.token_hash).await;
    assert_eq!((stored.rotated_at, stored.family_revoked_at), (None, None));

    // One second before expiry it still rotates.
    assert!(matches!(
        store
            .rotate_refresh_token(
                refresh.token_hash,
                APP,
                successor(&user, NOW + 99),
                None,
                NOW + 99
            )
            .await
            .expect("rotate"),
        RotateOutcome::Rotated { .. }
    ));
}

pub async fn refresh_wrong_client(store: Arc<dyn Store>) {
    migrated(&store).await;
    let acme = tenant(&store, "acme").await;
    let (user, refresh) = register(&store, &acme, "ada@acme.test").await;

    let next = successor(&user, NOW + 1);
    assert_eq!(
        store
            .rotate_refresh_token(refresh.token_hash, "other-app", next.clone(), None, NOW + 1)
            .await
            .expect("rotate"),
        RotateOutcome::NotFound
    );
    assert_eq!(
        store
            .find_refresh_token(next.token_hash)
            .await
            .expect("find"),
        None
    );
    let stored = token(&store, refresh.token_hash).await;
    assert_eq!((stored.rotated_at, stored.family_revoked_at), (None, None));

    assert_eq!(
        store
            .rotate_refresh_token(new_hash(), APP, successor(&user, NOW + 1), None, NOW + 1)
            .await
            .expect("rotate unknown"),
        RotateOutcome::NotFound
    );
    // The right client still can.
    assert!(matches!(
        store
            .rotate_refresh_token(refresh.token_hash, APP, next, None, NOW + 2)
            .await
            .expect("rotate"),
        RotateOutcome::Rotated { .. }
    ));
}

pub async fn insert_refresh_token(store: Arc<dyn Store>) {
    migrated(&store).await;
    let acme = tenant(&store, "acme").await;
    let (user, first) = register(&store, &acme, "ada@acme.test").await;

    // A sign-in: a new family.
    let sign_in = successor(&user, NOW + 10);
    store
        .insert_refresh_token(sign_in.clone(), None)
        .await
        .expect("insert");
    let stored = token(&store, sign_in.token_hash).await;
    assert_eq!(stored.family_id, sign_in.family_id);
    assert_ne!(stored.family_id, first.family_id);
    assert_eq!(
        (
            stored.user_id,
            stored.tenant_id,
            stored.issued_at,
            stored.expires_at
        ),
        (user.id, acme.id, NOW + 10, NOW + 10 + REFRESH_TTL)
    );
    assert_eq!((stored.rotated_at, stored.family_revoked_at), (None, None));

    // The same hash twice is a conflict.
    let duplicate = NewRefreshToken {
        family_id: Uuid::new_v4(),
        ..sign_in.clone()
    };
    assert!(matches!(
        store.insert_refresh_token(duplicate, None).await,
        Err(StoreError::Conflict(_))
    ));
    // One more token in the same family of the same user is kept in that family.
    let more = NewRefreshToken {
        family_id: sign_in.family_id,
        ..successor(&user, NOW + 11)
    };
    store
        .insert_refresh_token(more.clone(), None)
        .await
        .expect("same family");
    assert_eq!(
        token(&store, more.token_hash).await.family_id,
        sign_in.family_id
    );
    // A token in the family of another user is refused, and neither it nor its event is kept.
    endpoint(&store, &acme, &["*"]).await;
    let (other, _) = register(&store, &acme, "bob@acme.test").await;
    let events_before = events_of(&store, &acme).await.len();
    let intruder = NewRefreshToken {
        family_id: sign_in.family_id,
        ..successor(&other, NOW + 12)
    };
    assert!(matches!(
        store
            .insert_refresh_token(
                intruder.clone(),
                Some(draft("user.login", Some(acme.id), NOW + 12))
            )
            .await,
        Err(StoreError::Internal(_))
    ));
    assert!(store
        .find_refresh_token(intruder.token_hash)
        .await
        .expect("find")
        .is_none());
    assert_eq!(events_of(&store, &acme).await.len(), events_before);
    // Revoking one family leaves the other alive.
    store
        .revoke_refresh_family(sign_in.token_hash, None, NOW + 20)
        .await
        .expect("revoke");
    assert_eq!(
        token(&store, first.token_hash).await.family_revoked_at,
        None
    );
}

pub async fn revoke_refresh_family(store: Arc<dyn Store>) {
    migrated(&store).await;
    let acme = tenant(&store, "acme").await;
    let (user, refresh) = register(&store, &acme, "ada@acme.test").await;

    let expected = RefreshToken {
        family_id: refresh.family_id,
        user_id: user.id,
        tenant_id: acme.id,
        client_id: APP.into(),
        issued_at: NOW,
        expires_at: NOW + REFRESH_TTL,
        rotated_at: None,
        family_revoked_at: Some(NOW + 10),
    };
    assert_eq!(
        store
            .revoke_refresh_family(refresh.token_hash, None, NOW + 10)
            .await
            .expect("revoke"),
        Some(expected.clone())
    );
    // Idempotent: the first revocation time stays.
    assert_eq!(
        store
            .revoke_refresh_family(refresh.token_hash, None, NOW + 20)
            .await
            .expect("revoke again"),
        Some(expected.clone())
    );
    assert_eq!(token(&store, refresh.token_hash).await, expected);
    assert_eq!(
        store
            .revoke_refresh_family(new_hash(), None, NOW + 30)
            .await
            .expect("unknown"),
        None
    );
    assert_eq!(
        store
            .rotate_refresh_token(
                refresh.token_hash,
                APP,
                successor(&user, NOW + 40),
                None,
                NOW + 40
            )
            .await
            .expect("rotate"),
        RotateOutcome::Revoked
    );
}

fn session_for(user: &User, created_at: i64) -> NewSession {
    NewSession {
        id_hash: new_hash(),
        user_id: user.id,
        tenant_id: user.tenant_id,
        client_id: APP.into(),
        created_at,
        expires_at: created_at + 3600,
    }
}

pub async fn revoke_all_for_user(store: Arc<dyn Store>) {
    migrated(&store).await;
    let acme = tenant(&store, "acme").await;
    let (ada, ada_first) = register(&store, &acme, "ada@acme.test").await;
    let (bob, bob_first) = register(&store, &acme, "bob@acme.test").await;

    let ada_second = successor(&ada, NOW + 1);
    store
        .insert_refresh_token(ada_second.clone(), None)
        .await
        .expect("insert");
    let ada_third = successor(&ada, NOW + 2);
    store
        .insert_refresh_token(ada_third.clone(), None)
        .await
        .expect("insert");
    // Already revoked: not counted again.
    store
        .revoke_refresh_family(ada_third.token_hash, None, NOW + 3)
        .await
        .expect("revoke");

    let ada_s1 = session_for(&ada, NOW);
    let ada_s2 = session_for(&ada, NOW + 1);
    let ada_s3 = session_for(&ada, NOW + 2);
    let bob_s = session_for(&bob, NOW);
    for s in [&ada_s1, &ada_s2, &ada_s3, &bob_s] {
        store
            .create_session(s.clone(), None)
            .await
            .expect("session");
    }
    assert!(store
        .revoke_session(ada_s3.id_hash, None, NOW + 3)
        .await
        .expect("revoke"));

    // Two live families and two live sessions.
    assert_eq!(
        store
            .revoke_all_for_user(ada.id, None, NOW + 10)
            .await
            .expect("revoke all"),
        4
    );
    for hash in [ada_first.token_hash, ada_second.token_hash] {
        assert_eq!(token(&store, hash).await.family_revoked_at, Some(NOW + 10));
    }
    assert_eq!(
        token(&store, ada_third.token_hash).await.family_revoked_at,
        Some(NOW + 3)
    );
    for (s, at) in [(&ada_s1, NOW + 10), (&ada_s2, NOW + 10), (&ada_s3, NOW + 3)] {
        let found = store
            .find_session(s.id_hash)
            .await
            .expect("find")
            .expect("exists");
        assert_eq!(found.revoked_at, Some(at));
    }
    assert_eq!(
        store
            .rotate_refresh_token(
                ada_first.token_hash,
                APP,
                successor(&ada, NOW + 11),
                None,
                NOW + 11
            )
            .await
            .expect("rotate"),
        RotateOutcome::Revoked
    );

    // Bob is untouched.
    assert_eq!(
        token(&store, bob_first.token_hash).await.family_revoked_at,
        None
    );
    let bob_session = store
        .find_session(bob_s.id_hash)
        .await
        .expect("find")
        .expect("exists");
    assert_eq!(bob_session.revoked_at, None);

    // Nothing left to revoke.
    assert_eq!(
        store
            .revoke_all_for_user(ada.id, None, NOW + 20)
            .await
            .expect("again"),
        0
    );
    assert_eq!(
        store
            .revoke_all_for_user(Uuid::new_v4(), None, NOW + 20)
            .await
            .expect("nobody"),
        0
    );
}

pub async fn find_user_by_email(store: Arc<dyn Store>) {
    migrated(&store).await;
    let acme = tenant(&store, "acme").await;
    let globex = tenant(&store, "globex").await;
    let (ada, _) = register(&store, &acme, "ada@acme.test").await;
    assert_eq!(
        store
            .find_user_by_email(acme.id, "ada@acme.test")
            .await
            .expect("find"),
        Some(ada)
    );
    // Another tenant, another address: nobody.
    for (tenant, email) in [(&globex, "ada@acme.test"), (&acme, "bob@acme.test")] {
        assert_eq!(
            store
                .find_user_by_email(tenant.id, email)
                .await
                .expect("find"),
            None
        );
    }
}

/// App metadata is set by an operator, replaced whole, and read back by every path that
/// loads a user (by id, by email, with a password login, with a session, at rotation), while
/// the user metadata written at sign-up stays as it was.
pub async fn app_metadata(store: Arc<dyn Store>) {
    migrated(&store).await;
    let acme = tenant(&store, "acme").await;
    let (ada, first) = register(&store, &acme, "ada@acme.test").await;
    let (bob, _) = register(&store, &acme, "bob@acme.test").await;
    assert_eq!(ada.app_metadata, json!({}));

    let meta = json!({ "role": "admin", "org": { "id": 7, "tags": ["x"] } });
    let updated = store
        .set_user_app_metadata(ada.id, meta.clone())
        .await
        .expect("set")
        .expect("ada exists");
    assert_eq!(
        updated,
        User {
            app_metadata: meta.clone(),
            ..ada.clone()
        }
    );
    assert_eq!(updated.custom_fields, ada.custom_fields);
    assert_eq!(
        store.get_user(ada.id).await.expect("get"),
        Some(updated.clone())
    );
    assert_eq!(
        store
            .find_user_by_email(acme.id, "ada@acme.test")
            .await
            .expect("find"),
        Some(updated.clone())
    );
    let login = store
        .find_password_login(acme.id, "ada@acme.test")
        .await
        .expect("login")
        .expect("exists");
    assert_eq!(login.user, updated);
    assert_eq!(login.password_hash, "$argon2id$v=19$old");

    let session = session_for(&ada, NOW);
    store
        .create_session(session.clone(), None)
        .await
        .expect("session");
    assert_eq!(
        store
            .find_session(session.id_hash)
            .await
            .expect("find")
            .expect("exists")
            .user,
        updated
    );
    match store
        .rotate_refresh_token(
            first.token_hash,
            APP,
            successor(&ada, NOW + 1),
            None,
            NOW + 1,
        )
        .await
        .expect("rotate")
    {
        RotateOutcome::Rotated { user, .. } => assert_eq!(user, updated),
        other => panic!("expected Rotated, got {other:?}"),
    }

    // Replaced whole, not merged; Bob untouched; nobody to update is None.
    let replaced = store
        .set_user_app_metadata(ada.id, json!({ "plan": "team" }))
        .await
        .expect("set")
        .expect("exists");
    assert_eq!(replaced.app_metadata, json!({ "plan": "team" }));
    assert_eq!(
        store
            .get_user(bob.id)
            .await
            .expect("get")
            .expect("bob")
            .app_metadata,
        json!({})
    );
    assert_eq!(
        store
            .set_user_app_metadata(Uuid::new_v4(), json!({ "x": 1 }))
            .await
            .expect("set"),
        None
    );
}

/// Disabling a user revokes their live refresh families and sessions in the same change;
/// enabling revokes nothing and does not bring them back.
pub async fn disable_and_enable_user(store: Arc<dyn Store>) {
    migrated(&store).await;
    let acme = tenant(&store, "acme").await;
    let (ada, ada_first) = register(&store, &acme, "ada@acme.test").await;
    let (bob, bob_first) = register(&store, &acme, "bob@acme.test").await;
    let ada_s = session_for(&ada, NOW);
    let bob_s = session_for(&bob, NOW);
    for s in [&ada_s, &bob_s] {
        store
            .create_session(s.clone(), None)
            .await
            .expect("session");
    }

    // One family and one session.
    assert_eq!(
        store
            .set_user_disabled(ada.id, true, NOW + 10)
            .await
            .expect("disable"),
        Some(2)
    );
    let disabled = store.get_user(ada.id).await.expect("get").expect("ada");
    assert!(disabled.disabled);
    assert_eq!(
        token(&store, ada_first.token_hash).await.family_revoked_at,
        Some(NOW + 10)
    );
    let session = store
        .find_session(ada_s.id_hash)
        .await
        .expect("find")
        .expect("exists");
    assert_eq!(session.revoked_at, Some(NOW + 10));
    assert!(session.user.disabled);
    assert!(
        store
            .find_password_login(acme.id, "ada@acme.test")
            .await
            .expect("login")
            .expect("exists")
            .user
            .disabled
    );
    assert_eq!(
        store
            .rotate_refresh_token(
                ada_first.token_hash,
                APP,
                successor(&ada, NOW + 11),
                None,
                NOW + 11
            )
            .await
            .expect("rotate"),
        RotateOutcome::Revoked
    );

    // Bob is untouched.
    assert!(
        !store
            .get_user(bob.id)
            .await
            .expect("get")
            .expect("bob")
            .disabled
    );
    assert_eq!(
        token(&store, bob_first.token_hash).await.family_revoked_at,
        None
    );
    assert_eq!(
        store
            .find_session(bob_s.id_hash)
            .await
            .expect("find")
            .expect("exists")
            .revoked_at,
        None
    );

    // Disabling again revokes nothing more; enabling revokes nothing and restores nothing.
    assert_eq!(
        store
            .set_user_disabled(ada.id, true, NOW + 12)
            .await
            .expect("again"),
        Some(0)
    );
    assert_eq!(
        store
            .set_user_disabled(ada.id, false, NOW + 13)
            .await
            .expect("enable"),
        Some(0)
    );
    assert!(
        !store
            .get_user(ada.id)
            .await
            .expect("get")
            .expect("ada")
            .disabled
    );
    assert_eq!(
        token(&store, ada_first.token_hash).await.family_revoked_at,
        Some(NOW + 10)
    );
    assert_eq!(
        store
            .set_user_disabled(Uuid::new_v4(), true, NOW + 14)
            .await
            .expect("nobody"),
        None
    );
}

pub async fn sessions(store: Arc<dyn Store>) {
    migrated(&store).await;
    let acme = tenant(&store, "acme").await;
    let (user, _) = register(&store, &acme, "ada@acme.test").await;
    let session = session_for(&user, NOW);
    store
        .create_session(session.clone(), None)
        .await
        .expect("create");

    let live = Session {
        user: user.clone(),
        client_id: APP.into(),
        created_at: NOW,
        expires_at: NOW + 3600,
        revoked_at: None,
    };
    assert_eq!(
        store.find_session(session.id_hash).await.expect("find"),
        Some(live.clone())
    );
    assert_eq!(
        store.find_session(new_hash()).await.expect("find unknown"),
        None
    );
    assert!(matches!(
        store.create_session(session.clone(), None).await,
        Err(StoreError::Conflict(_))
    ));

    assert!(store
        .revoke_session(session.id_hash, None, NOW + 5)
        .await
        .expect("revoke"));
    assert!(!store
        .revoke_session(session.id_hash, None, NOW + 6)
        .await
        .expect("revoke again"));
    assert!(!store
        .revoke_session(new_hash(), None, NOW + 6)
        .await
        .expect("revoke unknown"));
    assert_eq!(
        store.find_session(session.id_hash).await.expect("find"),
        Some(Session {
            revoked_at: Some(NOW + 5),
            ..live
        })
    );
}

fn signing_key(kid: &str, created_at: i64) -> SigningKey {
    SigningKey {
        kid: kid.into(),
        public_key: vec![1; 32],
        private_key_encrypted: kid.as_bytes().iter().copied().chain([7; 60]).collect(),
        created_at,
        retired_at: None,
    }
}

pub async fn signing_keys(store: Arc<dyn Store>) {
    migrated(&store).await;
    assert_eq!(store.list_signing_keys().await.expect("list"), vec![]);

    let (a, b) = (signing_key("kid-a", NOW), signing_key("kid-b", NOW));
    let (store_a, store_b) = (Arc::clone(&store), Arc::clone(&store));
    let task_a = tokio::spawn(async move { store_a.insert_signing_key_if_none(a).await });
    let task_b = tokio::spawn(async move { store_b.insert_signing_key_if_none(b).await });
    let got_a = task_a.await.expect("task a").expect("insert a");
    let got_b = task_b.await.expect("task b").expect("insert b");
    assert_eq!(got_a.len(), 1, "{got_a:?}");
    assert_eq!(got_a, got_b, "both callers see the same single key");
    let winner = got_a[0].clone();
    assert!(["kid-a", "kid-b"].contains(&winner.kid.as_str()));
    assert_eq!(winner, signing_key(&winner.kid, NOW));
    assert_eq!(
        store.list_signing_keys().await.expect("list"),
        vec![winner.clone()]
    );

    // Later starts find the key and insert nothing.
    assert_eq!(
        store
            .insert_signing_key_if_none(signing_key("kid-c", NOW + 10))
            .await
            .expect("insert c"),
        vec![winner.clone()]
    );
    assert_eq!(store.list_signing_keys().await.expect("list"), vec![winner]);
}

// ----- webhooks -----------------------------------------------------------------------------

/// A draft as the engine makes it: the type, the request's origin, the tenant when known.
fn draft(event_type: &str, tenant_id: Option<Uuid>, at: i64) -> EventDraft {
    EventDraft {
        id: Uuid::now_v7(),
        event_type: event_type.to_owned(),
        tenant_id,
        actor_id: None,
        actor_type: None,
        target_id: None,
        target_type: None,
        ip_address: Some("203.0.113.7".to_owned()),
        user_agent: Some("suite/1.0".to_owned()),
        metadata: {
            let mut m = hellojohn_storage::EventMeta::new();
            m.insert("client_id", APP);
            m
        },
        result: "success".to_owned(),
        created_at: at,
    }
}

async fn endpoint(store: &Arc<dyn Store>, tenant: &Tenant, events: &[&str]) -> WebhookEndpoint {
    store
        .create_webhook_endpoint(
            NewWebhookEndpoint {
                id: Uuid::now_v7(),
                tenant_id: tenant.id,
                url: format!("https://hooks.example.com/{}", Uuid::new_v4().simple()),
                events: events.iter().map(|e| e.to_string()).collect(),
                secret_encrypted: vec![7; 40],
            },
            NOW,
        )
        .await
        .expect("create endpoint")
}

async fn events_of(store: &Arc<dyn Store>, tenant: &Tenant) -> Vec<Event> {
    let mut events = store
        .list_events(Some(tenant.id), 1000)
        .await
        .expect("list events");
    events.reverse(); // oldest first
    events
}

fn all_deliveries() -> DeliveryFilter {
    DeliveryFilter {
        status: None,
        tenant_id: None,
        limit: 10_000,
    }
}

/// (event type, endpoint) of every delivery, sorted.
async fn fan_out(store: &Arc<dyn Store>) -> Vec<(String, Uuid)> {
    let mut pairs: Vec<(String, Uuid)> = store
        .list_webhook_deliveries(all_deliveries())
        .await
        .expect("deliveries")
        .into_iter()
        .map(|d| (d.event_type, d.endpoint_id))
        .collect();
    pairs.sort();
    pairs
}

pub async fn events_commit_with_their_change(store: Arc<dyn Store>) {
    migrated(&store).await;
    let acme = tenant(&store, "acme").await;
    let other = tenant(&store, "other").await;
    let sign_ins = endpoint(&store, &acme, &["user.register", "user.login"]).await;
    let everything = endpoint(&store, &acme, &["*"]).await;
    let reuse_only = endpoint(&store, &acme, &["token.reuse_detected"]).await;
    let _elsewhere = endpoint(&store, &other, &["*"]).await;

    // Registration: the engine knows everything; the store completes actor and target.
    let new = new_user(&acme, "ada@acme.test");
    let first = refresh_for(&new, Uuid::new_v4(), NOW);
    let register = draft("user.register", Some(acme.id), NOW);
    let ada = store
        .register_user(
            new,
            "$argon2id$h".into(),
            first.clone(),
            Some(register.clone()),
            NOW,
        )
        .await
        .expect("register");
    let events = events_of(&store, &acme).await;
    assert_eq!(events.len(), 1);
    let e = &events[0];
    assert_eq!(e.id, register.id);
    assert_eq!(e.tenant_id, acme.id);
    assert_eq!(e.event_type, "user.register");
    assert_eq!(
        (e.actor_id, e.actor_type.as_deref()),
        (Some(ada.id), Some("user"))
    );
    assert_eq!(
        (e.target_id, e.target_type.as_deref()),
        (Some(ada.id), Some("user"))
    );
    assert_eq!(e.ip_address.as_deref(), Some("203.0.113.7"));
    assert_eq!(e.user_agent.as_deref(), Some("suite/1.0"));
    assert_eq!(e.metadata, json!({ "client_id": APP }));
    assert_eq!((e.result.as_str(), e.created_at), ("success", NOW));
    let mut expected = vec![
        ("user.register".to_owned(), sign_ins.id),
        ("user.register".to_owned(), everything.id),
    ];
    expected.sort();
    assert_eq!(fan_out(&store).await, expected, "only subscribed endpoints");
    let delivery = &store
        .list_webhook_deliveries(all_deliveries())
        .await
        .expect("deliveries")[0];
    assert_eq!(delivery.status, DeliveryStatus::Pending);
    assert_eq!((delivery.attempts, delivery.generation), (0, 0));
    assert_eq!(delivery.next_attempt_at_ms, NOW * 1000);
    assert_eq!(delivery.event_id, register.id);
    assert_eq!(delivery.tenant_id, acme.id);

    // Sign-in: a new family with its event.
    let sign_in = refresh_for(&new_user(&acme, "x"), Uuid::new_v4(), NOW + 1);
    let sign_in = NewRefreshToken {
        user_id: ada.id,
        ..sign_in
    };
    store
        .insert_refresh_token(
            sign_in.clone(),
            Some(draft("user.login", Some(acme.id), NOW + 1)),
        )
        .await
        .expect("sign in");

    // Sign-out: only the token is known; the store fills in the rest, once.
    let logout = draft("user.logout", None, NOW + 2);
    store
        .revoke_refresh_family(sign_in.token_hash, Some(logout.clone()), NOW + 2)
        .await
        .expect("logout");
    store
        .revoke_refresh_family(
            sign_in.token_hash,
            Some(draft("user.logout", None, NOW + 3)),
            NOW + 3,
        )
        .await
        .expect("logout again");
    store
        .revoke_refresh_family(
            new_hash(),
            Some(draft("user.logout", None, NOW + 3)),
            NOW + 3,
        )
        .await
        .expect("logout unknown");

    // Rotation writes no event; reuse does, in the transaction that revokes the family.
    let second = successor(&ada, NOW + 4);
    assert!(matches!(
        store
            .rotate_refresh_token(
                first.token_hash,
                APP,
                second.clone(),
                Some(draft("token.reuse_detected", None, NOW + 4)),
                NOW + 4
            )
            .await
            .expect("rotate"),
        RotateOutcome::Rotated { .. }
    ));
    let reuse = draft("token.reuse_detected", None, NOW + 5);
    assert!(matches!(
        store
            .rotate_refresh_token(
                first.token_hash,
                APP,
                successor(&ada, NOW + 5),
                Some(reuse.clone()),
                NOW + 5
            )
            .await
            .expect("replay"),
        RotateOutcome::Reused { .. }
    ));
    // Revoked already: nothing happens, no event.
    assert_eq!(
        store
            .rotate_refresh_token(
                first.token_hash,
                APP,
                successor(&ada, NOW + 6),
                Some(draft("token.reuse_detected", None, NOW + 6)),
                NOW + 6
            )
            .await
            .expect("replay again"),
        RotateOutcome::Revoked
    );

    // Cookie session in and out (the second sign-out changes nothing: no event).
    let session = session_for(&ada, NOW + 7);
    store
        .create_session(
            session.clone(),
            Some(draft("user.login", Some(acme.id), NOW + 7)),
        )
        .await
        .expect("session");
    for at in [NOW + 8, NOW + 9] {
        store
            .revoke_session(session.id_hash, Some(draft("user.logout", None, at)), at)
            .await
            .expect("end session");
    }

    // Sign-out everywhere: the count joins the metadata.
    store
        .insert_refresh_token(
            successor(&ada, NOW + 10),
            Some(draft("user.login", Some(acme.id), NOW + 10)),
        )
        .await
        .expect("sign in again");
    assert_eq!(
        store
            .revoke_all_for_user(
                ada.id,
                Some(draft("user.logout_all", Some(acme.id), NOW + 11)),
                NOW + 11
            )
            .await
            .expect("logout all"),
        1
    );

    // A failed sign-in has no other change.
    let mut failed = draft("user.login_failed", Some(acme.id), NOW + 12);
    failed.result = "failure".into();
    failed.metadata.insert("reason", "invalid_password");
    let recorded = store.record_event(failed.clone()).await.expect("record");
    assert_eq!(recorded.id, failed.id);
    assert!(
        matches!(
            store
                .record_event(draft("user.login_failed", None, NOW + 12))
                .await,
            Err(StoreError::Internal(_))
        ),
        "an event needs a tenant"
    );

    let events = events_of(&store, &acme).await;
    let types: Vec<&str> = events.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(
        types,
        [
            "user.register",
            "user.login",
            "user.logout",
            "token.reuse_detected",
            "user.login",
            "user.logout",
            "user.login",
            "user.logout_all",
            "user.login_failed",
        ]
    );
    let logged_out = &events[2];
    assert_eq!(logged_out.id, logout.id);
    assert_eq!(logged_out.tenant_id, acme.id);
    assert_eq!(logged_out.actor_id, Some(ada.id));
    assert_eq!(logged_out.target_id, Some(ada.id));
    assert_eq!(
        logged_out.metadata,
        json!({ "client_id": APP, "family_id": sign_in.family_id.to_string() })
    );
    let reused = &events[3];
    assert_eq!(reused.id, reuse.id);
    assert_eq!(reused.actor_id, Some(ada.id));
    assert_eq!(
        reused.metadata["family_id"],
        json!(first.family_id.to_string())
    );
    assert_eq!(events[5].actor_id, Some(ada.id), "session sign-out");
    assert_eq!(events[7].metadata["revoked"], json!(1));
    assert_eq!(events[8].result, "failure");
    assert_eq!(events[8].actor_id, None);

    // Fan-out of all of them: `*` gets every event, the others what they subscribed to.
    let deliveries = fan_out(&store).await;
    let to = |id: Uuid| deliveries.iter().filter(|(_, e)| *e == id).count();
    assert_eq!(to(everything.id), 9);
    assert_eq!(to(sign_ins.id), 4, "user.register and user.login x3");
    assert_eq!(to(reuse_only.id), 1);
    assert!(store
        .list_events(Some(other.id), 10)
        .await
        .expect("other")
        .is_empty());
    assert_eq!(
        store.list_events(None, 3).await.expect("limit").len(),
        3,
        "newest first, limited"
    );
}

pub async fn rolled_back_change_writes_no_event(store: Arc<dyn Store>) {
    migrated(&store).await;
    let acme = tenant(&store, "acme").await;
    endpoint(&store, &acme, &["*"]).await;
    let new = new_user(&acme, "ada@acme.test");
    let refresh = refresh_for(&new, Uuid::new_v4(), NOW);
    store
        .register_user(
            new,
            "$argon2id$h".into(),
            refresh,
            Some(draft("user.register", Some(acme.id), NOW)),
            NOW,
        )
        .await
        .expect("register");
    let again = new_user(&acme, "ada@acme.test");
    let again_refresh = refresh_for(&again, Uuid::new_v4(), NOW + 1);
    let lost = draft("user.register", Some(acme.id), NOW + 1);
    assert_conflict(
        store
            .register_user(
                again,
                "$argon2id$h".into(),
                again_refresh.clone(),
                Some(lost.clone()),
                NOW + 1,
            )
            .await,
        "email",
    );
    let events = events_of(&store, &acme).await;
    assert_eq!(
        events.len(),
        1,
        "the rolled-back registration left no event"
    );
    assert!(events.iter().all(|e| e.id != lost.id));
    assert_eq!(fan_out(&store).await.len(), 1, "and no delivery");
    assert!(store
        .find_refresh_token(again_refresh.token_hash)
        .await
        .expect("find")
        .is_none());

    // A sign-in whose token collides is rolled back with its event.
    let (user, first) = register(&store, &acme, "bob@acme.test").await;
    let duplicate = NewRefreshToken {
        family_id: Uuid::new_v4(),
        ..first.clone()
    };
    assert!(matches!(
        store
            .insert_refresh_token(duplicate, Some(draft("user.login", Some(acme.id), NOW + 2)))
            .await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(events_of(&store, &acme).await.len(), 1);
    assert_eq!(fan_out(&store).await.len(), 1);
    let _ = user;
}

pub async fn webhook_endpoints(store: Arc<dyn Store>) {
    migrated(&store).await;
    let acme = tenant(&store, "acme").await;
    let other = tenant(&store, "other").await;
    let a = endpoint(&store, &acme, &["user.login"]).await;
    let b = endpoint(&store, &acme, &["*"]).await;
    let c = endpoint(&store, &other, &["user.register", "user.login"]).await;
    assert_eq!(a.events, ["user.login"]);
    assert_eq!(a.secret_encrypted, vec![7; 40]);
    assert_eq!(a.created_at, NOW);
    assert!(
        !format!("{a:?}").contains("[7, 7"),
        "the secret is redacted"
    );

    let all = store.list_webhook_endpoints(None).await.expect("list");
    assert_eq!(all.len(), 3);
    assert!(all.contains(&a) && all.contains(&b) && all.contains(&c));
    let of_acme = store
        .list_webhook_endpoints(Some(acme.id))
        .await
        .expect("list acme");
    let mut ids: Vec<Uuid> = of_acme.iter().map(|e| e.id).collect();
    ids.sort();
    let mut want = vec![a.id, b.id];
    want.sort();
    assert_eq!(ids, want);

    // Deleting an endpoint deletes its deliveries, not the events.
    store
        .record_event(draft("user.login", Some(acme.id), NOW))
        .await
        .expect("event");
    assert_eq!(fan_out(&store).await.len(), 2);
    assert!(store.delete_webhook_endpoint(a.id).await.expect("delete"));
    assert!(!store
        .delete_webhook_endpoint(a.id)
        .await
        .expect("delete again"));
    assert_eq!(fan_out(&store).await, vec![("user.login".to_owned(), b.id)]);
    assert_eq!(events_of(&store, &acme).await.len(), 1);
    assert_eq!(
        store
            .list_webhook_endpoints(None)
            .await
            .expect("list")
            .len(),
        2
    );
}

pub async fn webhook_delivery_lifecycle(store: Arc<dyn Store>) {
    migrated(&store).await;
    let acme = tenant(&store, "acme").await;
    let hook = endpoint(&store, &acme, &["*"]).await;
    let ms = NOW * 1000;
    let event = store
        .record_event(draft("user.login", Some(acme.id), NOW))
        .await
        .expect("event");
    assert_eq!(store.webhook_backlog(ms - 1).await.expect("backlog"), 0);
    assert_eq!(store.webhook_backlog(ms).await.expect("backlog"), 1);
    assert!(store
        .claim_webhook_deliveries(ms - 1, ms + 10_000, 10)
        .await
        .expect("claim early")
        .is_empty());

    // The claim carries what a worker needs to send.
    let claimed = store
        .claim_webhook_deliveries(ms, ms + 10_000, 10)
        .await
        .expect("claim");
    assert_eq!(claimed.len(), 1);
    let first = &claimed[0];
    assert_eq!(first.event, event);
    assert_eq!(first.endpoint, hook);
    assert_eq!((first.attempts, first.generation), (0, 0));
    assert_eq!(first.leased_until_ms, ms + 10_000);
    let id = first.id;
    let stored = store
        .get_webhook_delivery(id)
        .await
        .expect("get")
        .expect("exists");
    assert_eq!(stored.leased_until_ms, Some(ms + 10_000));
    assert_eq!(stored.url, hook.url);
    assert_eq!(stored.event_type, "user.login");
    assert_eq!(
        store.webhook_backlog(ms).await.expect("backlog"),
        1,
        "leased still counts"
    );

    // Leased: nobody else gets it until the lease ends; then it is leased anew.
    assert!(store
        .claim_webhook_deliveries(ms + 9_999, ms + 20_000, 10)
        .await
        .expect("claim while leased")
        .is_empty());
    let again = store
        .claim_webhook_deliveries(ms + 10_000, ms + 20_000, 10)
        .await
        .expect("claim after lease");
    assert_eq!(again.len(), 1);
    assert_ne!(again[0].lease_id, first.lease_id);

    // A failure reported under the expired lease does not apply; under the current one it does.
    let failed = |lease_id, at_ms, retry_at_ms| DeliveryResult::Failed {
        id,
        lease_id,
        at_ms,
        status_code: Some(500),
        error: "HTTP 500".into(),
        retry_at_ms,
    };
    assert!(!store
        .complete_webhook_delivery(failed(first.lease_id, ms + 10_001, Some(ms + 11_000)))
        .await
        .expect("stale"));
    assert!(store
        .complete_webhook_delivery(failed(again[0].lease_id, ms + 10_001, Some(ms + 11_000)))
        .await
        .expect("failed"));
    let d = store
        .get_webhook_delivery(id)
        .await
        .expect("get")
        .expect("d");
    assert_eq!(d.status, DeliveryStatus::Failed);
    assert_eq!(d.attempts, 1);
    assert_eq!(d.next_attempt_at_ms, ms + 11_000);
    assert_eq!(d.leased_until_ms, None);
    assert_eq!(d.last_status_code, Some(500));
    assert_eq!(d.last_error.as_deref(), Some("HTTP 500"));
    assert_eq!(d.last_attempt_at_ms, Some(ms + 10_001));
    assert_eq!(store.webhook_backlog(ms + 10_999).await.expect("b"), 0);
    assert!(store
        .claim_webhook_deliveries(ms + 10_999, ms + 30_000, 10)
        .await
        .expect("not yet due")
        .is_empty());

    // The retry succeeds: delivered, whoever reports it.
    let retry = store
        .claim_webhook_deliveries(ms + 11_000, ms + 30_000, 10)
        .await
        .expect("retry");
    assert_eq!(retry.len(), 1);
    assert_eq!(retry[0].attempts, 1);
    let delivered = DeliveryResult::Delivered {
        id,
        at_ms: ms + 11_050,
        status_code: Some(204),
        counted: true,
    };
    assert!(store
        .complete_webhook_delivery(delivered.clone())
        .await
        .expect("delivered"));
    assert!(
        !store
            .complete_webhook_delivery(delivered)
            .await
            .expect("twice"),
        "a delivery is delivered once"
    );
    let d = store
        .get_webhook_delivery(id)
        .await
        .expect("get")
        .expect("d");
    assert_eq!(d.status, DeliveryStatus::Delivered);
    assert_eq!(d.attempts, 2);
    assert_eq!(d.delivered_at_ms, Some(ms + 11_050));
    assert_eq!(d.last_status_code, Some(204));
    assert_eq!(d.last_error, None);
    assert!(!store
        .complete_webhook_delivery(failed(retry[0].lease_id, ms + 11_060, None))
        .await
        .expect("fail after delivered"));
    assert!(store
        .claim_webhook_deliveries(ms + 100_000, ms + 200_000, 10)
        .await
        .expect("nothing due")
        .is_empty());
    assert_eq!(store.webhook_backlog(ms + 100_000).await.expect("b"), 0);

    // Redelivery by hand: pending again, a new generation, attempts from zero.
    assert!(store
        .redeliver_webhook(id, ms + 200_000)
        .await
        .expect("redeliver"));
    assert!(!store
        .redeliver_webhook(Uuid::new_v4(), ms)
        .await
        .expect("unknown"));
    let d = store
        .get_webhook_delivery(id)
        .await
        .expect("get")
        .expect("d");
    assert_eq!(d.status, DeliveryStatus::Pending);
    assert_eq!((d.attempts, d.generation), (0, 1));
    let redo = store
        .claim_webhook_deliveries(ms + 200_000, ms + 210_000, 10)
        .await
        .expect("claim redelivery");
    assert_eq!((redo[0].attempts, redo[0].generation), (0, 1));

    // The last failure exhausts it.
    assert!(store
        .complete_webhook_delivery(failed(redo[0].lease_id, ms + 200_100, None))
        .await
        .expect("exhausted"));
    let d = store
        .get_webhook_delivery(id)
        .await
        .expect("get")
        .expect("d");
    assert_eq!(d.status, DeliveryStatus::Exhausted);
    assert!(store
        .claim_webhook_deliveries(i64::MAX / 2, i64::MAX / 2 + 1, 10)
        .await
        .expect("exhausted is never due")
        .is_empty());

    // A Delivered report from another instance (through Redis) does not count an attempt.
    store
        .record_event(draft("user.logout", Some(acme.id), NOW + 1))
        .await
        .expect("event");
    let other = store
        .list_webhook_deliveries(DeliveryFilter {
            status: Some(DeliveryStatus::Pending),
            tenant_id: Some(acme.id),
            limit: 10,
        })
        .await
        .expect("pending");
    assert_eq!(other.len(), 1);
    assert_eq!(other[0].event_type, "user.logout");
    assert!(store
        .complete_webhook_delivery(DeliveryResult::Delivered {
            id: other[0].id,
            at_ms: ms + 300_000,
            status_code: None,
            counted: false,
        })
        .await
        .expect("delivered elsewhere"));
    let d = store
        .get_webhook_delivery(other[0].id)
        .await
        .expect("get")
        .expect("d");
    assert_eq!((d.status, d.attempts), (DeliveryStatus::Delivered, 0));

    // Filters: by status, by tenant, newest first, limited.
    let list = |status, limit| {
        store.list_webhook_deliveries(DeliveryFilter {
            status,
            tenant_id: None,
            limit,
        })
    };
    assert_eq!(list(None, 10).await.expect("all").len(), 2);
    assert_eq!(list(None, 1).await.expect("one")[0].id, other[0].id);
    assert_eq!(
        list(Some(DeliveryStatus::Exhausted), 10)
            .await
            .expect("exhausted")[0]
            .id,
        id
    );
    assert!(list(Some(DeliveryStatus::Failed), 10)
        .await
        .expect("failed")
        .is_empty());
    assert!(store
        .list_webhook_deliveries(DeliveryFilter {
            status: None,
            tenant_id: Some(Uuid::new_v4()),
            limit: 10,
        })
        .await
        .expect("other tenant")
        .is_empty());
}

/// Eight claimers racing over 120 due deliveries: each is leased exactly once.
pub async fn concurrent_webhook_claims(store: Arc<dyn Store>) {
    migrated(&store).await;
    let acme = tenant(&store, "acme").await;
    endpoint(&store, &acme, &["*"]).await;
    endpoint(&store, &acme, &["user.login"]).await;
    for i in 0..60 {
        store
            .record_event(draft("user.login", Some(acme.id), NOW + i))
            .await
            .expect("event");
    }
    let now_ms = (NOW + 100) * 1000;
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let batch = store
                    .claim_webhook_deliveries(now_ms, now_ms + 60_000, 7)
                    .await
                    .expect("claim");
                if batch.is_empty() {
                    return mine;
                }
                mine.extend(batch.into_iter().map(|c| c.id));
            }
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.expect("task"));
    }
    let total = all.len();
    all.sort();
    all.dedup();
    assert_eq!(total, 120, "every delivery claimed");
    assert_eq!(all.len(), 120, "none claimed twice");
}

/// The outbox is not an audit log: an event no endpoint of its tenant subscribes to is not
/// written (and costs nothing).
pub async fn events_only_for_subscribers(store: Arc<dyn Store>) {
    migrated(&store).await;
    let quiet = tenant(&store, "quiet").await;
    let picky = tenant(&store, "picky").await;
    let hook = endpoint(&store, &picky, &["user.logout"]).await;
    for t in [&quiet, &picky] {
        let new = new_user(t, "ada@example.test");
        let refresh = refresh_for(&new, Uuid::new_v4(), NOW);
        store
            .register_user(
                new,
                "$argon2id$h".into(),
                refresh.clone(),
                Some(draft("user.register", Some(t.id), NOW)),
                NOW,
            )
            .await
            .expect("register");
        store
            .record_event(draft("user.login_failed", Some(t.id), NOW + 1))
            .await
            .expect("record");
        store
            .revoke_refresh_family(
                refresh.token_hash,
                Some(draft("user.logout", None, NOW + 2)),
                NOW + 2,
            )
            .await
            .expect("logout");
    }
    assert!(events_of(&store, &quiet).await.is_empty());
    let picky_events = events_of(&store, &picky).await;
    assert_eq!(picky_events.len(), 1);
    assert_eq!(picky_events[0].event_type, "user.logout");
    assert_eq!(
        fan_out(&store).await,
        vec![("user.logout".to_owned(), hook.id)]
    );
}

/// Old events whose deliveries are all finished go, with their deliveries; open ones stay.
pub async fn prune_webhook_events(store: Arc<dyn Store>) {
    migrated(&store).await;
    let acme = tenant(&store, "acme").await;
    endpoint(&store, &acme, &["*"]).await;
    let ms = NOW * 1000;
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(
            store
                .record_event(draft("user.login", Some(acme.id), NOW + i))
                .await
                .expect("event")
                .id,
        );
    }
    let deliveries = store
        .list_webhook_deliveries(all_deliveries())
        .await
        .expect("deliveries");
    let of = |event: Uuid| deliveries.iter().find(|d| d.event_id == event).unwrap().id;
    // Events 0 and 1 delivered, 2 exhausted, 3 still failing, 4 delivered but recent.
    let claimed = store
        .claim_webhook_deliveries(ms + 10_000, ms + 20_000, 10)
        .await
        .expect("claim");
    for (i, event) in ids.iter().enumerate() {
        let id = of(*event);
        let lease_id = claimed.iter().find(|c| c.id == id).unwrap().lease_id;
        let result = match i {
            2 | 3 => DeliveryResult::Failed {
                id,
                lease_id,
                at_ms: ms + 10_001,
                status_code: Some(500),
                error: "HTTP 500".into(),
                retry_at_ms: (i == 3).then_some(ms + 60_000),
            },
            _ => DeliveryResult::Delivered {
                id,
                at_ms: ms + 10_001,
                status_code: Some(200),
                counted: true,
            },
        };
        assert!(store
            .complete_webhook_delivery(result)
            .await
            .expect("complete"));
    }
    assert_eq!(
        store.prune_webhook_events(NOW + 4, 1).await.expect("prune"),
        1,
        "limited"
    );
    assert_eq!(
        store
            .prune_webhook_events(NOW + 4, 100)
            .await
            .expect("prune"),
        2
    );
    assert_eq!(
        store
            .prune_webhook_events(NOW + 4, 100)
            .await
            .expect("again"),
        0
    );
    let left: Vec<Uuid> = events_of(&store, &acme)
        .await
        .iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(left, [ids[3], ids[4]]);
    let left_deliveries = store
        .list_webhook_deliveries(all_deliveries())
        .await
        .expect("deliveries");
    assert_eq!(left_deliveries.len(), 2, "deliveries go with their events");
}
