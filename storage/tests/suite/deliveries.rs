//! Cases: webhook deliveries (lease, retry, exhaustion, concurrent claims) and pruning.

use super::webhooks::{all_deliveries, draft, endpoint, events_of};
use super::*;

pub async fn webhook_delivery_lifecycle(store: Arc<dyn Store>) {
    migrated(&store).await;
    let acme = tenant(&store, "acme").await;
    let hook = endpoint(&store, &acme, &["*"]).await;
    let ms = NOW * 1000;
    let event = store
        .record_event(draft("user.login", Some(acme.id), NOW))
        .await
        .expect("event");
    assert_eq!(
        store
            .backlog(OutboxKind::Webhook, ms - 1)
            .await
            .expect("backlog"),
        0
    );
    assert_eq!(
        store
            .backlog(OutboxKind::Webhook, ms)
            .await
            .expect("backlog"),
        1
    );
    assert!(store
        .claim(OutboxKind::Webhook, ms - 1, ms + 10_000, 10)
        .await
        .expect("claim early")
        .is_empty());

    // The claim carries what a worker needs to send.
    let claimed = store
        .claim(OutboxKind::Webhook, ms, ms + 10_000, 10)
        .await
        .expect("claim");
    assert_eq!(claimed.len(), 1);
    let first = &claimed[0];
    assert_eq!(delivery_of(first).event, event);
    assert_eq!(delivery_of(first).endpoint, hook);
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
        store
            .backlog(OutboxKind::Webhook, ms)
            .await
            .expect("backlog"),
        1,
        "leased still counts"
    );

    // Leased: nobody else gets it until the lease ends; then it is leased anew.
    assert!(store
        .claim(OutboxKind::Webhook, ms + 9_999, ms + 20_000, 10)
        .await
        .expect("claim while leased")
        .is_empty());
    let again = store
        .claim(OutboxKind::Webhook, ms + 10_000, ms + 20_000, 10)
        .await
        .expect("claim after lease");
    assert_eq!(again.len(), 1);
    assert_ne!(again[0].lease_id, first.lease_id);

    // A failure reported under the expired lease does not apply; under the current one it does.
    let failed = |lease_id, at_ms, retry_at_ms| OutboxResult::Failed {
        kind: OutboxKind::Webhook,
        id,
        lease_id,
        at_ms,
        status_code: Some(500),
        error: "HTTP 500".into(),
        retry_at_ms,
    };
    assert!(!store
        .complete(failed(first.lease_id, ms + 10_001, Some(ms + 11_000)))
        .await
        .expect("stale"));
    assert!(store
        .complete(failed(again[0].lease_id, ms + 10_001, Some(ms + 11_000)))
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
    assert_eq!(
        store
            .backlog(OutboxKind::Webhook, ms + 10_999)
            .await
            .expect("b"),
        0
    );
    assert!(store
        .claim(OutboxKind::Webhook, ms + 10_999, ms + 30_000, 10)
        .await
        .expect("not yet due")
        .is_empty());

    // The retry succeeds: delivered, whoever reports it.
    let retry = store
        .claim(OutboxKind::Webhook, ms + 11_000, ms + 30_000, 10)
        .await
        .expect("retry");
    assert_eq!(retry.len(), 1);
    assert_eq!(retry[0].attempts, 1);
    let delivered = OutboxResult::Done {
        kind: OutboxKind::Webhook,
        id,
        at_ms: ms + 11_050,
        status_code: Some(204),
        counted: true,
    };
    assert!(store.complete(delivered.clone()).await.expect("delivered"));
    assert!(
        !store.complete(delivered).await.expect("twice"),
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
        .complete(failed(retry[0].lease_id, ms + 11_060, None))
        .await
        .expect("fail after delivered"));
    assert!(store
        .claim(OutboxKind::Webhook, ms + 100_000, ms + 200_000, 10)
        .await
        .expect("nothing due")
        .is_empty());
    assert_eq!(
        store
            .backlog(OutboxKind::Webhook, ms + 100_000)
            .await
            .expect("b"),
        0
    );

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
        .claim(OutboxKind::Webhook, ms + 200_000, ms + 210_000, 10)
        .await
        .expect("claim redelivery");
    assert_eq!((redo[0].attempts, redo[0].generation), (0, 1));

    // The last failure exhausts it.
    assert!(store
        .complete(failed(redo[0].lease_id, ms + 200_100, None))
        .await
        .expect("exhausted"));
    let d = store
        .get_webhook_delivery(id)
        .await
        .expect("get")
        .expect("d");
    assert_eq!(d.status, DeliveryStatus::Exhausted);
    assert!(store
        .claim(OutboxKind::Webhook, i64::MAX / 2, i64::MAX / 2 + 1, 10)
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
            endpoint_id: None,
            status: Some(DeliveryStatus::Pending),
            tenant_id: Some(acme.id),
            limit: 10,
        })
        .await
        .expect("pending");
    assert_eq!(other.len(), 1);
    assert_eq!(other[0].event_type, "user.logout");
    assert!(store
        .complete(OutboxResult::Done {
            kind: OutboxKind::Webhook,
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
            endpoint_id: None,
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
            endpoint_id: None,
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
                    .claim(OutboxKind::Webhook, now_ms, now_ms + 60_000, 7)
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
        .claim(OutboxKind::Webhook, ms + 10_000, ms + 20_000, 10)
        .await
        .expect("claim");
    for (i, event) in ids.iter().enumerate() {
        let id = of(*event);
        let lease_id = claimed.iter().find(|c| c.id == id).unwrap().lease_id;
        let result = match i {
            2 | 3 => OutboxResult::Failed {
                kind: OutboxKind::Webhook,
                id,
                lease_id,
                at_ms: ms + 10_001,
                status_code: Some(500),
                error: "HTTP 500".into(),
                retry_at_ms: (i == 3).then_some(ms + 60_000),
            },
            _ => OutboxResult::Done {
                kind: OutboxKind::Webhook,
                id,
                at_ms: ms + 10_001,
                status_code: Some(200),
                counted: true,
            },
        };
        assert!(store.complete(result).await.expect("complete"));
    }
    assert_eq!(
        store
            .prune(OutboxKind::Webhook, NOW + 4, 1)
            .await
            .expect("prune"),
        1,
        "limited"
    );
    assert_eq!(
        store
            .prune(OutboxKind::Webhook, NOW + 4, 100)
            .await
            .expect("prune"),
        2
    );
    assert_eq!(
        store
            .prune(OutboxKind::Webhook, NOW + 4, 100)
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

/// A mail and a webhook delivery go through the same claim and completion: each kind's claim
/// gets only its own items, leased; a failure under the lease schedules a retry (backoff), the
/// last one exhausts; an exhausted item is never claimed again, and the prune of each kind
/// takes it. A result names its kind: one for the other kind's table never applies.
pub async fn outbox_kinds_share_one_life(store: Arc<dyn Store>) {
    migrated(&store).await;
    let acme = tenant(&store, "acme").await;
    let hook = endpoint(&store, &acme, &["*"]).await;
    let (user, _) = register(&store, &acme, "ada@acme.test").await;
    let ms = NOW * 1000;
    let event = store
        .record_event(draft("user.login", Some(acme.id), NOW))
        .await
        .expect("event");
    let mail = issue(
        &store,
        &email_token(&user, store::EmailPurpose::Verify, NOW + 600),
        ms,
    )
    .await;
    // Where an item stands: its status and attempts, read the kind's own way.
    let state = |kind: OutboxKind, id: Uuid| {
        let store = store.clone();
        async move {
            match kind {
                OutboxKind::Mail => {
                    let all = store.list_mail(None, 100).await.expect("list mail");
                    let m = all.into_iter().find(|m| m.id == id).expect("the mail");
                    (m.status, m.attempts)
                }
                OutboxKind::Webhook => {
                    let d = store
                        .get_webhook_delivery(id)
                        .await
                        .expect("get")
                        .expect("the delivery");
                    (d.status.as_str().to_string(), d.attempts)
                }
            }
        }
    };
    let mut ids = Vec::new();
    for kind in OutboxKind::ALL {
        assert_eq!(store.backlog(kind, ms - 1).await.expect("backlog"), 0);
        assert_eq!(store.backlog(kind, ms).await.expect("backlog"), 1, "{kind}");
        let claimed = store.claim(kind, ms, ms + 10_000, 10).await.expect("claim");
        assert_eq!(claimed.len(), 1, "{kind}: its own item only");
        let c = &claimed[0];
        assert_eq!(c.kind(), kind);
        assert_eq!((c.attempts, c.generation), (0, 0));
        assert_eq!(c.leased_until_ms, ms + 10_000);
        match kind {
            OutboxKind::Mail => {
                assert_eq!(c.id, mail.id);
                assert_eq!(mail_of(c).message_sealed, mail.message_sealed);
            }
            OutboxKind::Webhook => {
                assert_eq!(delivery_of(c).event, event);
                assert_eq!(delivery_of(c).endpoint, hook);
            }
        }
        assert!(
            store
                .claim(kind, ms + 9_999, ms + 20_000, 10)
                .await
                .expect("claim while leased")
                .is_empty(),
            "{kind}: leased"
        );
        // The same failure, addressed to the other kind, applies to nothing.
        let failed = |kind, lease_id, retry_at_ms| OutboxResult::Failed {
            kind,
            id: c.id,
            lease_id,
            at_ms: ms + 100,
            status_code: None,
            error: "try again".into(),
            retry_at_ms,
        };
        let other = OutboxKind::ALL.into_iter().find(|k| *k != kind).unwrap();
        assert!(!store
            .complete(failed(other, c.lease_id, Some(ms + 5_000)))
            .await
            .expect("other kind"));
        assert!(store
            .complete(failed(kind, c.lease_id, Some(ms + 5_000)))
            .await
            .expect("failed"));
        assert_eq!(state(kind, c.id).await, ("failed".to_string(), 1), "{kind}");
        assert_eq!(store.backlog(kind, ms + 4_999).await.expect("backlog"), 0);
        assert!(store
            .claim(kind, ms + 4_999, ms + 20_000, 10)
            .await
            .expect("not yet due")
            .is_empty());
        // The retry, due after the backoff, fails for good: exhausted.
        let retry = store
            .claim(kind, ms + 5_000, ms + 20_000, 10)
            .await
            .expect("retry");
        assert_eq!(retry.len(), 1, "{kind}");
        assert_eq!((retry[0].id, retry[0].attempts), (c.id, 1));
        assert!(!store
            .complete(failed(kind, c.lease_id, None))
            .await
            .expect("the first lease is gone"));
        assert!(store
            .complete(failed(kind, retry[0].lease_id, None))
            .await
            .expect("exhausted"));
        assert_eq!(
            state(kind, c.id).await,
            ("exhausted".to_string(), 2),
            "{kind}"
        );
        let done = OutboxResult::Done {
            kind,
            id: c.id,
            at_ms: ms + 6_000,
            status_code: None,
            counted: false,
        };
        assert!(!store.complete(done).await.expect("done after exhausted"));
        assert!(store
            .claim(kind, i64::MAX / 2, i64::MAX / 2 + 1, 10)
            .await
            .expect("exhausted is never due")
            .is_empty());
        assert_eq!(store.backlog(kind, i64::MAX / 2).await.expect("backlog"), 0);
        ids.push((kind, c.id));
    }
    // Finished, both go with their kind's prune.
    for (kind, _) in &ids {
        assert_eq!(store.prune(*kind, NOW, 100).await.expect("prune"), 0);
        assert_eq!(
            store.prune(*kind, NOW + 1, 100).await.expect("prune"),
            1,
            "{kind}"
        );
    }
    assert!(store.list_mail(None, 10).await.expect("mail").is_empty());
    assert!(store
        .list_webhook_deliveries(all_deliveries())
        .await
        .expect("deliveries")
        .is_empty());
}
