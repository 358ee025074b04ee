//! Cases: events in the transaction of their change (the outbox) and webhook endpoints; the
//! helpers the delivery cases share.

use super::*;

/// A draft as the engine makes it: the type, the request's origin, the tenant when known.
pub(super) fn draft(event_type: &str, tenant_id: Option<Uuid>, at: i64) -> EventDraft {
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
            let mut m = store::EventMeta::new();
            m.insert("client_id", APP);
            m
        },
        result: "success".to_owned(),
        created_at: at,
    }
}

pub(super) async fn endpoint(
    store: &Arc<dyn Store>,
    tenant: &Tenant,
    events: &[&str],
) -> WebhookEndpoint {
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
            None,
        )
        .await
        .expect("create endpoint")
}

pub(super) async fn events_of(store: &Arc<dyn Store>, tenant: &Tenant) -> Vec<Event> {
    let mut events = store
        .list_events(Some(tenant.id), 1000)
        .await
        .expect("list events");
    events.reverse(); // oldest first
    events
}

pub(super) fn all_deliveries() -> DeliveryFilter {
    DeliveryFilter {
        endpoint_id: None,
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
            Some(first.clone()),
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
        reused.metadata.as_json()["family_id"],
        json!(first.family_id.to_string())
    );
    assert_eq!(events[5].actor_id, Some(ada.id), "session sign-out");
    assert_eq!(events[7].metadata.as_json()["revoked"], json!(1));
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
            Some(refresh),
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
                Some(again_refresh.clone()),
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
    assert!(store
        .delete_webhook_endpoint(a.id, None)
        .await
        .expect("delete"));
    assert!(!store
        .delete_webhook_endpoint(a.id, None)
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
                Some(refresh.clone()),
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
