//! Cases: migrations, tenants and clients, users and their passwords, metadata, signing keys.

use super::*;

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
        .create_tenant("acme", "Acme Inc", Default::default(), NOW, None)
        .await
        .expect("acme");
    assert_eq!(
        (acme.slug.as_str(), acme.name.as_str(), acme.created_at),
        ("acme", "Acme Inc", NOW)
    );
    let globex = store
        .create_tenant("globex", "Globex", Default::default(), NOW + 1, None)
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
        store
            .create_tenant("acme", "Another Acme", Default::default(), NOW + 2, None)
            .await,
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
        scopes: vec!["openid".into(), "profile".into(), "email".into()],
        post_logout_redirect_uris: vec!["https://acme.test/bye".into()],
        access_token_ttl: Some(600),
        ..NewClient::new(acme.id, "web", "Web")
    };
    let cli = NewClient {
        scopes: vec![],
        refresh_token_ttl: Some(86_400),
        ..NewClient::new(acme.id, "cli", "CLI")
    };

    let web_client = store
        .create_client(web.clone(), NOW, None)
        .await
        .expect("web");
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
    let cli_client = store.create_client(cli, NOW + 1, None).await.expect("cli");

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
                None,
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
            None,
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
            Some(refresh.clone()),
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
            app_metadata: store::Metadata::from(json!({})),
            disabled: false,
            disabled_reason: None,
            mfa_enabled: false,
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
            scopes: None,
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
            Some(again_refresh.clone()),
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
        .set_user_app_metadata(ada.id, store::Metadata::from(meta.clone()))
        .await
        .expect("set")
        .expect("ada exists");
    assert_eq!(
        updated,
        User {
            app_metadata: store::Metadata::from(meta.clone()),
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
        .set_user_app_metadata(ada.id, store::Metadata::from(json!({ "plan": "team" })))
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
            .set_user_app_metadata(Uuid::new_v4(), store::Metadata::from(json!({ "x": 1 })))
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

fn signing_key(kid: &str, created_at: i64) -> SigningKey {
    SigningKey {
        kid: kid.into(),
        alg: store::SigningAlg::EdDsa,
        public_key: vec![1; 32],
        private_key_encrypted: kid.as_bytes().iter().copied().chain([7; 60]).collect(),
        created_at,
        activates_at: created_at,
        retired_at: None,
        tenant_id: None,
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
