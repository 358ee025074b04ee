//! Cases: `Store::rotate_refresh`, the rotation of a caller that names the client and its
//! tenant (one statement on PostgreSQL): the decision of `rotate_refresh_token`, a token of
//! another tenant or client is `NotFound` with nothing written, a reuse revokes the family
//! with its event, and of concurrent rotations exactly one wins.

use store::{AuthCode, NewAuthCode, NextRefresh, Redeem, RefreshRotation};

use super::webhooks::{draft, endpoint, events_of};
use super::*;

fn next(at: i64) -> NextRefresh {
    NextRefresh {
        token_hash: new_hash(),
        issued_at: at,
        expires_at: at + REFRESH_TTL,
    }
}

fn rotation(old: TokenHash, tenant: &Tenant, next: &NextRefresh, at: i64) -> RefreshRotation {
    RefreshRotation {
        old_hash: old,
        tenant_id: tenant.id,
        client_id: APP.into(),
        next: next.clone(),
        reuse_event: None,
        now: at,
    }
}

async fn rotate(store: &Arc<dyn Store>, rotation: RefreshRotation) -> RotateOutcome {
    store
        .rotate_refresh(rotation)
        .await
        .expect("rotate_refresh")
}

async fn absent(store: &Arc<dyn Store>, hash: TokenHash) {
    assert_eq!(
        store.find_refresh_token(hash).await.expect("find"),
        None,
        "nothing stored"
    );
}

pub async fn rotate_refresh_in_one_call(store: Arc<dyn Store>) {
    migrated(&store).await;
    let acme = tenant(&store, "acme").await;
    let (user, first) = register(&store, &acme, "ada@acme.test").await;
    let family = first.family_id;

    let second = next(NOW + 60);
    assert_eq!(
        rotate(&store, rotation(first.token_hash, &acme, &second, NOW + 60)).await,
        RotateOutcome::Rotated {
            user: user.clone(),
            family_id: family,
            scopes: None
        }
    );
    assert_eq!(
        token(&store, first.token_hash).await.rotated_at,
        Some(NOW + 60)
    );
    // The successor joins the old token's family, user, tenant and client.
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
    // The chain goes on, and mixes with `rotate_refresh_token`.
    let third = successor(&user, NOW + 120);
    assert!(matches!(
        store
            .rotate_refresh_token(second.token_hash, APP, third.clone(), None, NOW + 120)
            .await
            .expect("rotate"),
        RotateOutcome::Rotated { .. }
    ));
    let fourth = next(NOW + 180);
    assert!(matches!(
        rotate(
            &store,
            rotation(third.token_hash, &acme, &fourth, NOW + 180)
        )
        .await,
        RotateOutcome::Rotated { .. }
    ));

    // Unknown: nothing written.
    let stray = next(NOW + 200);
    assert_eq!(
        rotate(&store, rotation(new_hash(), &acme, &stray, NOW + 200)).await,
        RotateOutcome::NotFound
    );
    absent(&store, stray.token_hash).await;

    // Replaying the first token: reuse, the whole family is revoked, the latest token with it.
    let replay = next(NOW + 240);
    assert_eq!(
        rotate(
            &store,
            rotation(first.token_hash, &acme, &replay, NOW + 240)
        )
        .await,
        RotateOutcome::Reused {
            family_id: family,
            user_id: user.id
        }
    );
    absent(&store, replay.token_hash).await;
    for hash in [first.token_hash, second.token_hash, fourth.token_hash] {
        assert_eq!(token(&store, hash).await.family_revoked_at, Some(NOW + 240));
    }
    // Revoked, whether spent or live; the first revocation time stays.
    for hash in [fourth.token_hash, first.token_hash] {
        let after = next(NOW + 300);
        assert_eq!(
            rotate(&store, rotation(hash, &acme, &after, NOW + 300)).await,
            RotateOutcome::Revoked
        );
        absent(&store, after.token_hash).await;
    }
    assert_eq!(
        token(&store, first.token_hash).await.family_revoked_at,
        Some(NOW + 240)
    );

    // Expired: refused at its expiry and after, nothing written; spent after expiry: a reuse.
    let (bob, bobs) = register(&store, &acme, "bob@acme.test").await;
    let late = bobs.expires_at;
    for at in [late, late + 1000] {
        let after = next(at);
        assert_eq!(
            rotate(&store, rotation(bobs.token_hash, &acme, &after, at)).await,
            RotateOutcome::Expired
        );
        absent(&store, after.token_hash).await;
    }
    assert_eq!(token(&store, bobs.token_hash).await.rotated_at, None);
    let early = next(NOW + 10);
    assert!(matches!(
        rotate(&store, rotation(bobs.token_hash, &acme, &early, NOW + 10)).await,
        RotateOutcome::Rotated { .. }
    ));
    assert_eq!(
        rotate(
            &store,
            rotation(bobs.token_hash, &acme, &next(late + 5), late + 5)
        )
        .await,
        RotateOutcome::Reused {
            family_id: bobs.family_id,
            user_id: bob.id
        }
    );
}

/// A token presented for another tenant or another client is `NotFound` and changes nothing:
/// a live token is not spent, a spent one does not revoke its family, and no event is written.
pub async fn rotate_refresh_elsewhere_is_not_found(store: Arc<dyn Store>) {
    migrated(&store).await;
    let acme = tenant(&store, "acme").await;
    let globex = tenant(&store, "globex").await;
    endpoint(&store, &acme, &["*"]).await;
    endpoint(&store, &globex, &["*"]).await;
    let (user, first) = register(&store, &acme, "ada@acme.test").await;
    let before = events_of(&store, &acme).await.len();

    let probe = |old: TokenHash, tenant: &Tenant, client: &str, at: i64| RefreshRotation {
        client_id: client.into(),
        reuse_event: Some(draft("token.reuse_detected", None, at)),
        ..rotation(old, tenant, &next(at), at)
    };
    for (tenant, client) in [(&globex, APP), (&acme, "other-app"), (&globex, "other-app")] {
        let attempt = probe(first.token_hash, tenant, client, NOW + 10);
        let stray = attempt.next.token_hash;
        assert_eq!(rotate(&store, attempt).await, RotateOutcome::NotFound);
        absent(&store, stray).await;
        assert_eq!(token(&store, first.token_hash).await.rotated_at, None);
    }

    // Spent: a replay from elsewhere neither revokes the family nor records anything.
    let second = next(NOW + 20);
    assert!(matches!(
        rotate(&store, rotation(first.token_hash, &acme, &second, NOW + 20)).await,
        RotateOutcome::Rotated { .. }
    ));
    for (tenant, client) in [(&globex, APP), (&acme, "other-app")] {
        let attempt = probe(first.token_hash, tenant, client, NOW + 30);
        assert_eq!(rotate(&store, attempt).await, RotateOutcome::NotFound);
    }
    assert_eq!(
        token(&store, first.token_hash).await.family_revoked_at,
        None
    );
    assert_eq!(events_of(&store, &acme).await.len(), before);
    assert!(events_of(&store, &globex).await.is_empty());

    // The rightful client still rotates the live token.
    assert_eq!(
        rotate(
            &store,
            rotation(second.token_hash, &acme, &next(NOW + 40), NOW + 40)
        )
        .await,
        RotateOutcome::Rotated {
            user,
            family_id: first.family_id,
            scopes: None
        }
    );
}

/// A reuse revokes the family and writes its event in the same call, completed from the token
/// (actor, target, `family_id`, `client_id`); a rotation and a refused call write none.
pub async fn rotate_refresh_reuse_event(store: Arc<dyn Store>) {
    migrated(&store).await;
    let acme = tenant(&store, "acme").await;
    endpoint(&store, &acme, &["token.reuse_detected"]).await;
    let (ada, first) = register(&store, &acme, "ada@acme.test").await;
    let with_event = |old: TokenHash, at: i64, tenant_id: Option<Uuid>| RefreshRotation {
        reuse_event: Some(draft("token.reuse_detected", tenant_id, at)),
        ..rotation(old, &acme, &next(at), at)
    };

    assert!(matches!(
        rotate(&store, with_event(first.token_hash, NOW + 1, None)).await,
        RotateOutcome::Rotated { .. }
    ));
    assert!(events_of(&store, &acme).await.is_empty(), "rotation: none");

    let reuse = with_event(first.token_hash, NOW + 2, None);
    let reuse_id = reuse.reuse_event.as_ref().expect("draft").id;
    assert_eq!(
        rotate(&store, reuse).await,
        RotateOutcome::Reused {
            family_id: first.family_id,
            user_id: ada.id
        }
    );
    assert_eq!(
        token(&store, first.token_hash).await.family_revoked_at,
        Some(NOW + 2)
    );
    // Revoked already: nothing happens, no event.
    assert_eq!(
        rotate(&store, with_event(first.token_hash, NOW + 3, Some(acme.id))).await,
        RotateOutcome::Revoked
    );

    let events = events_of(&store, &acme).await;
    assert_eq!(events.len(), 1, "{events:?}");
    let e = &events[0];
    assert_eq!(e.id, reuse_id);
    assert_eq!(
        (e.tenant_id, e.event_type.as_str()),
        (acme.id, "token.reuse_detected")
    );
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
    assert_eq!(
        e.metadata,
        json!({ "client_id": APP, "family_id": first.family_id.to_string() })
    );
    assert_eq!((e.result.as_str(), e.created_at), ("success", NOW + 2));
    // It is an audit entry too (on PostgreSQL, `hj_rotate_refresh` calls `hj_record_event`).
    let audited = store
        .get_audit(Some(acme.id), reuse_id)
        .await
        .expect("get audit")
        .expect("the reuse's audit entry");
    assert_eq!(
        (audited.action.as_str(), audited.actor_id),
        ("token.reuse_detected", Some(ada.id.to_string()))
    );
    assert_eq!(audited.metadata, e.metadata);
    assert_eq!(
        store
            .list_webhook_deliveries(DeliveryFilter {
                endpoint_id: None,
                status: None,
                tenant_id: Some(acme.id),
                limit: 100,
            })
            .await
            .expect("deliveries")
            .len(),
        1,
        "fanned out to the subscribed endpoint"
    );

    // An actor the caller names stays, and so does metadata it set.
    let (bob, bobs) = register(&store, &acme, "bob@acme.test").await;
    assert!(matches!(
        rotate(
            &store,
            rotation(bobs.token_hash, &acme, &next(NOW + 4), NOW + 4)
        )
        .await,
        RotateOutcome::Rotated { .. }
    ));
    let mut named = with_event(bobs.token_hash, NOW + 5, Some(acme.id));
    if let Some(d) = named.reuse_event.as_mut() {
        d.actor_id = Some(ada.id);
        d.actor_type = Some("admin".into());
        d.metadata.insert("family_id", "given");
    }
    assert!(matches!(
        rotate(&store, named).await,
        RotateOutcome::Reused { .. }
    ));
    let events = events_of(&store, &acme).await;
    let e = events.last().expect("the second reuse");
    assert_eq!(
        (e.actor_id, e.actor_type.as_deref()),
        (Some(ada.id), Some("admin"))
    );
    assert_eq!(
        (e.target_id, e.target_type.as_deref()),
        (Some(bob.id), Some("user"))
    );
    assert_eq!(
        e.metadata,
        json!({ "client_id": APP, "family_id": "given" })
    );
}

/// A family of the code flow keeps its granted scopes through the one-call rotation.
pub async fn rotate_refresh_keeps_granted_scopes(store: Arc<dyn Store>) {
    migrated(&store).await;
    let acme = tenant(&store, "acme").await;
    let (user, _) = register(&store, &acme, "ada@acme.test").await;
    let scopes = vec!["openid".to_string(), "email".to_string()];
    let code = NewAuthCode {
        code_hash: new_hash(),
        code: AuthCode {
            tenant_id: acme.id,
            client_id: APP.into(),
            user_id: user.id,
            redirect_uri: "https://app.example/cb".into(),
            scopes: scopes.clone(),
            nonce: None,
            code_challenge: None,
            auth_time: NOW,
            amr: vec!["pwd".into()],
            family_id: Uuid::new_v4(),
            created_at: NOW,
            expires_at: NOW + 600,
            used_at: None,
            access_jti: None,
            access_expires_at: None,
        },
    };
    store.insert_auth_code(code.clone()).await.expect("insert");
    let refresh = successor(&user, NOW + 10);
    let redeem = Redeem {
        refresh: Some(refresh.clone()),
        ..Redeem::default()
    };
    store
        .redeem_auth_code(code.code_hash, redeem, NOW + 10)
        .await
        .expect("redeem");
    assert_eq!(
        rotate(
            &store,
            rotation(refresh.token_hash, &acme, &next(NOW + 20), NOW + 20)
        )
        .await,
        RotateOutcome::Rotated {
            user,
            family_id: code.code.family_id,
            scopes: Some(scopes)
        }
    );
}

/// Twenty concurrent rotations of one token: exactly one `Rotated`, the others `Reused` (at
/// least the first loser) or `Revoked`, and only the winner's successor stored, in the now
/// revoked family.
pub async fn concurrent_rotate_refresh(store: Arc<dyn Store>) {
    migrated(&store).await;
    let acme = tenant(&store, "acme").await;
    let (user, first) = register(&store, &acme, "ada@acme.test").await;

    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let store = Arc::clone(&store);
            let next = next(NOW + 60);
            let rotation = rotation(first.token_hash, &acme, &next, NOW + 60 + i);
            tokio::spawn(async move {
                let outcome = store.rotate_refresh(rotation).await.expect("rotate");
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
