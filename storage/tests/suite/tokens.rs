//! Cases: refresh tokens (rotation, reuse, expiry, revocation) and cookie sessions.

use super::*;

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
            family_id: family,
            scopes: None
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
            scopes: None,
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
            family_id: family,
            scopes: None
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
            family_id: first.family_id,
            scopes: None
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
        .register_user(new, "$argon2id$h".into(), Some(refresh.clone()), None, NOW)
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
        scopes: None,
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
        amr: vec!["pwd".into()],
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
