//! Cases: OAuth client settings, updating and deleting clients.

use super::*;

use store::{ClientChanges, ClientType, SecretHash, SigningAlg};

fn spa(tenant: &Tenant) -> NewClient {
    NewClient {
        redirect_uris: vec![
            "https://spa.acme.test/callback".into(),
            "http://localhost:3000/callback".into(),
        ],
        post_logout_redirect_uris: vec!["https://spa.acme.test".into()],
        allowed_origins: vec!["https://spa.acme.test".into()],
        require_email_verification: true,
        id_token_ttl: Some(300),
        ..NewClient::new(tenant.id, APP, "SPA")
    }
}

fn server(tenant: &Tenant) -> NewClient {
    NewClient {
        redirect_uris: vec!["com.acme.app:/cb".into()],
        grant_types: vec![
            "authorization_code".into(),
            "refresh_token".into(),
            "client_credentials".into(),
        ],
        client_type: ClientType::Confidential,
        secret_hash: Some(SecretHash::new("9f86d081884c7d659a2feaa0c55ad015")),
        access_token_ttl: Some(60),
        refresh_token_ttl: Some(3600),
        ..NewClient::new(tenant.id, "server", "Server")
    }
}

pub async fn client_settings(store: Arc<dyn Store>) {
    migrated(&store).await;
    let acme = tenant(&store, "acme").await;

    // The defaults of `NewClient::new`, as stored.
    let plain = store
        .create_client(NewClient::new(acme.id, "plain", "Plain"), NOW, None)
        .await
        .expect("plain");
    assert_eq!(plain.scopes, ["openid", "email", "profile"]);
    assert_eq!(plain.grant_types, ["authorization_code", "refresh_token"]);
    assert_eq!(plain.client_type, ClientType::Public);
    assert_eq!(plain.secret_hash, None);
    assert!(plain.redirect_uris.is_empty() && plain.allowed_origins.is_empty());
    assert!(!plain.require_email_verification);
    assert_eq!(
        (
            plain.access_token_ttl,
            plain.refresh_token_ttl,
            plain.id_token_ttl
        ),
        (None, None, None)
    );

    let spa_new = spa(&acme);
    let spa = store
        .create_client(spa_new.clone(), NOW + 1, None)
        .await
        .expect("spa");
    assert_eq!(spa.redirect_uris, spa_new.redirect_uris);
    assert_eq!(
        spa.post_logout_redirect_uris,
        spa_new.post_logout_redirect_uris
    );
    assert_eq!(spa.allowed_origins, spa_new.allowed_origins);
    assert!(spa.require_email_verification);
    assert_eq!(spa.id_token_ttl, Some(300));
    let server_new = server(&acme);
    let server = store
        .create_client(server_new.clone(), NOW + 2, None)
        .await
        .expect("server");
    assert_eq!(server.client_type, ClientType::Confidential);
    assert_eq!(server.secret_hash, server_new.secret_hash);
    assert_eq!(server.grant_types, server_new.grant_types);

    // Read back whole, by find and by both lists.
    for c in [&plain, &spa, &server] {
        assert_eq!(
            store
                .find_client(acme.id, &c.client_id)
                .await
                .expect("find"),
            Some(c.clone())
        );
    }
    let mut listed = store.list_clients(Some(acme.id)).await.expect("list");
    listed.sort_by_key(|c| c.created_at);
    assert_eq!(listed, vec![plain.clone(), spa.clone(), server.clone()]);
    let mut all = store.list_clients(None).await.expect("list all");
    all.sort_by_key(|c| c.created_at);
    assert_eq!(all, listed);

    // The hash never shows in Debug output.
    for text in [format!("{server:?}"), format!("{server_new:?}")] {
        assert!(!text.contains("9f86d081"), "{text}");
        assert!(text.contains("<redacted>"), "{text}");
    }
}

pub async fn update_client(store: Arc<dyn Store>) {
    migrated(&store).await;
    let acme = tenant(&store, "acme").await;
    let globex = tenant(&store, "globex").await;
    let original = store
        .create_client(spa(&acme), NOW, None)
        .await
        .expect("spa");
    let other = store
        .create_client(spa(&globex), NOW, None)
        .await
        .expect("globex spa");
    let update = |changes: ClientChanges| {
        let store = Arc::clone(&store);
        async move {
            store
                .update_client(acme.id, APP, changes, None)
                .await
                .expect("update")
                .expect("the client exists")
        }
    };

    // Nothing to change: the client as it is.
    assert_eq!(update(ClientChanges::default()).await, original);

    // Plain fields and lists, each replaced only when given.
    let mut expected = original.clone();
    expected.name = "Renamed".into();
    expected.scopes = vec!["openid".into()];
    let after = update(ClientChanges {
        name: Some("Renamed".into()),
        scopes: Some(vec!["openid".into()]),
        ..ClientChanges::default()
    })
    .await;
    assert_eq!(after, expected);

    expected.redirect_uris = vec!["https://new.acme.test/cb".into()];
    expected.post_logout_redirect_uris = vec![];
    expected.allowed_origins = vec![
        "https://new.acme.test".into(),
        "http://localhost:5173".into(),
    ];
    expected.grant_types = vec!["client_credentials".into()];
    expected.require_email_verification = false;
    let after = update(ClientChanges {
        redirect_uris: Some(expected.redirect_uris.clone()),
        post_logout_redirect_uris: Some(vec![]),
        allowed_origins: Some(expected.allowed_origins.clone()),
        grant_types: Some(expected.grant_types.clone()),
        require_email_verification: Some(false),
        ..ClientChanges::default()
    })
    .await;
    assert_eq!(after, expected);

    // Type and secret: set, replaced, cleared.
    expected.client_type = ClientType::Confidential;
    expected.secret_hash = Some(SecretHash::new("first"));
    let after = update(ClientChanges {
        client_type: Some(ClientType::Confidential),
        secret_hash: Some(Some(SecretHash::new("first"))),
        ..ClientChanges::default()
    })
    .await;
    assert_eq!(after, expected);
    expected.secret_hash = Some(SecretHash::new("second"));
    let after = update(ClientChanges {
        secret_hash: Some(Some(SecretHash::new("second"))),
        ..ClientChanges::default()
    })
    .await;
    assert_eq!(after, expected);
    expected.client_type = ClientType::Public;
    expected.secret_hash = None;
    let after = update(ClientChanges {
        client_type: Some(ClientType::Public),
        secret_hash: Some(None),
        ..ClientChanges::default()
    })
    .await;
    assert_eq!(after, expected);

    // Lifetimes: set, left alone, cleared back to the server's.
    expected.access_token_ttl = Some(120);
    expected.refresh_token_ttl = Some(7200);
    expected.id_token_ttl = Some(600);
    let after = update(ClientChanges {
        access_token_ttl: Some(Some(120)),
        refresh_token_ttl: Some(Some(7200)),
        id_token_ttl: Some(Some(600)),
        ..ClientChanges::default()
    })
    .await;
    assert_eq!(after, expected);
    expected.access_token_ttl = None;
    expected.id_token_ttl = None;
    let after = update(ClientChanges {
        access_token_ttl: Some(None),
        id_token_ttl: Some(None),
        ..ClientChanges::default()
    })
    .await;
    assert_eq!(after, expected);

    // Signature algorithms: asked for, then one back to the server's default.
    expected.id_token_alg = Some(SigningAlg::EdDsa);
    expected.access_token_alg = Some(SigningAlg::Rs256);
    let after = update(ClientChanges {
        id_token_alg: Some(Some(SigningAlg::EdDsa)),
        access_token_alg: Some(Some(SigningAlg::Rs256)),
        ..ClientChanges::default()
    })
    .await;
    assert_eq!(after, expected);
    expected.id_token_alg = None;
    let after = update(ClientChanges {
        id_token_alg: Some(None),
        ..ClientChanges::default()
    })
    .await;
    assert_eq!(after, expected);

    // What find and list read is what the update returned; id and creation time are kept.
    assert_eq!(
        store.find_client(acme.id, APP).await.expect("find"),
        Some(expected.clone())
    );
    assert_eq!(
        store.list_clients(Some(acme.id)).await.expect("list"),
        vec![expected.clone()]
    );
    assert_eq!(
        (expected.id, expected.created_at),
        (original.id, original.created_at)
    );

    // No such client: None, and nothing changed anywhere.
    let rename = ClientChanges {
        name: Some("Ghost".into()),
        ..ClientChanges::default()
    };
    assert_eq!(
        store
            .update_client(acme.id, "nope", rename.clone(), None)
            .await
            .expect("update unknown"),
        None
    );
    assert_eq!(
        store
            .update_client(Uuid::new_v4(), APP, rename, None)
            .await
            .expect("update in unknown tenant"),
        None
    );
    assert_eq!(
        store.find_client(globex.id, APP).await.expect("find"),
        Some(other)
    );
    assert_eq!(
        store.list_clients(None).await.expect("list").len(),
        2,
        "an update creates nothing"
    );
}

pub async fn delete_client(store: Arc<dyn Store>) {
    migrated(&store).await;
    let acme = tenant(&store, "acme").await;
    let globex = tenant(&store, "globex").await;
    store
        .create_client(spa(&acme), NOW, None)
        .await
        .expect("spa");
    let kept = store
        .create_client(NewClient::new(acme.id, "kept", "Kept"), NOW, None)
        .await
        .expect("kept");
    let globex_spa = store
        .create_client(spa(&globex), NOW, None)
        .await
        .expect("globex spa");

    // A user with a refresh token and a session for the client (APP), and a refresh token
    // and a session for another client of the tenant.
    let (user, refresh) = register(&store, &acme, "ada@acme.test").await;
    let session = session_for(&user, NOW);
    store
        .create_session(session.clone(), None)
        .await
        .expect("session");
    let kept_refresh = NewRefreshToken {
        client_id: "kept".into(),
        ..successor(&user, NOW)
    };
    store
        .insert_refresh_token(kept_refresh.clone(), None)
        .await
        .expect("kept refresh");
    let kept_session = NewSession {
        client_id: "kept".into(),
        ..session_for(&user, NOW)
    };
    store
        .create_session(kept_session.clone(), None)
        .await
        .expect("kept session");

    assert!(store
        .delete_client(acme.id, APP, None)
        .await
        .expect("delete"));

    // Gone from find and from the lists; the other clients stay.
    assert_eq!(store.find_client(acme.id, APP).await.expect("find"), None);
    assert_eq!(
        store.list_clients(Some(acme.id)).await.expect("list"),
        vec![kept.clone()]
    );
    assert_eq!(
        store.find_client(globex.id, APP).await.expect("find"),
        Some(globex_spa)
    );

    // Its refresh token no longer rotates, and its session is gone.
    assert_eq!(
        store
            .rotate_refresh_token(
                refresh.token_hash,
                APP,
                successor(&user, NOW + 60),
                None,
                NOW + 60
            )
            .await
            .expect("rotate"),
        RotateOutcome::NotFound
    );
    assert_eq!(
        store
            .find_refresh_token(refresh.token_hash)
            .await
            .expect("find token"),
        None
    );
    assert_eq!(
        store
            .find_session(session.id_hash)
            .await
            .expect("find session"),
        None
    );

    // Those of the other client still work.
    assert!(matches!(
        store
            .rotate_refresh_token(
                kept_refresh.token_hash,
                "kept",
                NewRefreshToken {
                    client_id: "kept".into(),
                    ..successor(&user, NOW + 60)
                },
                None,
                NOW + 60,
            )
            .await
            .expect("rotate kept"),
        RotateOutcome::Rotated { .. }
    ));
    assert!(store
        .find_session(kept_session.id_hash)
        .await
        .expect("find kept session")
        .is_some());

    // A client created again with the same client_id does not bring them back.
    store
        .create_client(spa(&acme), NOW + 100, None)
        .await
        .expect("again");
    assert_eq!(
        store
            .rotate_refresh_token(
                refresh.token_hash,
                APP,
                successor(&user, NOW + 120),
                None,
                NOW + 120
            )
            .await
            .expect("rotate after re-create"),
        RotateOutcome::NotFound
    );

    // Deleting what does not exist: false.
    assert!(store
        .delete_client(acme.id, APP, None)
        .await
        .expect("delete again"));
    assert!(!store
        .delete_client(acme.id, APP, None)
        .await
        .expect("delete twice"));
    assert!(!store
        .delete_client(acme.id, "nope", None)
        .await
        .expect("delete unknown"));
    assert!(!store
        .delete_client(Uuid::new_v4(), "kept", None)
        .await
        .expect("delete in unknown tenant"));
    assert_eq!(
        store.list_clients(Some(acme.id)).await.expect("list"),
        vec![kept]
    );
}
