//! Cases: the audit log (every filter, keyset paging, tenant-scoped reads, purges) and the
//! audit entry of every security event.

use store::{AuditEntry, AuditQuery};

use super::{assert_reads_back, audit, audit_ids, entry, everything};
use crate::suite::webhooks::{draft, endpoint, events_of};
use crate::suite::*;

/// Every filter of [`AuditQuery`], alone and together.
pub async fn audit_filters(store: Arc<dyn Store>) {
    migrated(&store).await;
    let (acme, other) = (Uuid::new_v4(), Uuid::new_v4());
    let login = entry("user.login", Some(acme), NOW);
    let disable = AuditEntry {
        actor_id: Some("admin-7".into()),
        target_id: Some("user-9".into()),
        ..entry("user.disable", Some(acme), NOW + 10)
    };
    let elsewhere = entry("user.login", Some(other), NOW + 20);
    let tenant_create = AuditEntry {
        actor_id: Some("admin-7".into()),
        ..entry("tenant.create", None, NOW + 30)
    };
    // Look-alikes of a prefix: other case, `_` and `%` where the prefix has `.`, no dot.
    let upper = entry("USER.login", Some(acme), NOW + 40);
    let underscore = entry("user_login", Some(acme), NOW + 41);
    let percent = entry("user%login", Some(acme), NOW + 42);
    let bare = entry("user", Some(acme), NOW + 43);
    let key_create = entry("api_key.create", None, NOW + 44);
    let key_lookalike = entry("apiXkey.create", None, NOW + 45);
    let all = [
        &login,
        &disable,
        &elsewhere,
        &tenant_create,
        &upper,
        &underscore,
        &percent,
        &bare,
        &key_create,
        &key_lookalike,
    ];
    for e in all {
        store.record_audit(e.clone()).await.expect("record");
    }
    let ids = |entries: &[&AuditEntry]| entries.iter().map(|e| e.id).collect::<Vec<_>>();

    // Everything, newest first, every field as written.
    let listed = audit(&store, everything()).await;
    let mut newest_first = all.to_vec();
    newest_first.reverse();
    assert_eq!(
        listed.iter().map(|r| r.id).collect::<Vec<_>>(),
        ids(&newest_first)
    );
    for (record, entry) in listed.iter().zip(&newest_first) {
        assert_reads_back(record, entry);
    }

    let query = |f: fn(&mut AuditQuery)| {
        let mut q = everything();
        f(&mut q);
        q
    };
    // The action: exact, or a prefix when it ends in `.`.
    assert_eq!(
        audit_ids(&store, query(|q| q.action = Some("user.login".into()))).await,
        ids(&[&elsewhere, &login])
    );
    assert_eq!(
        audit_ids(&store, query(|q| q.action = Some("user".into()))).await,
        ids(&[&bare])
    );
    assert_eq!(
        audit_ids(&store, query(|q| q.action = Some("user.".into()))).await,
        ids(&[&elsewhere, &disable, &login])
    );
    assert_eq!(
        audit_ids(&store, query(|q| q.action = Some("api_key.".into()))).await,
        ids(&[&key_create])
    );
    assert!(
        audit_ids(&store, query(|q| q.action = Some("user.log".into())))
            .await
            .is_empty(),
        "without a trailing dot, an exact action"
    );
    // Actor, target, tenant.
    assert_eq!(
        audit_ids(&store, query(|q| q.actor_id = Some("admin-7".into()))).await,
        ids(&[&tenant_create, &disable])
    );
    assert_eq!(
        audit_ids(&store, query(|q| q.target_id = Some("user-9".into()))).await,
        ids(&[&disable])
    );
    assert_eq!(
        audit_ids(
            &store,
            AuditQuery {
                tenant_id: Some(other),
                ..everything()
            }
        )
        .await,
        ids(&[&elsewhere])
    );
    assert_eq!(
        audit_ids(
            &store,
            AuditQuery {
                tenant_id: Some(acme),
                action: Some("user.".into()),
                ..everything()
            }
        )
        .await,
        ids(&[&disable, &login])
    );
    // Time: `from` inclusive, `to` exclusive.
    assert_eq!(
        audit_ids(
            &store,
            AuditQuery {
                from: Some(NOW + 10),
                to: Some(NOW + 30),
                ..everything()
            }
        )
        .await,
        ids(&[&elsewhere, &disable])
    );
    assert_eq!(
        audit_ids(&store, query(|q| q.from = Some(NOW + 43))).await,
        ids(&[&key_lookalike, &key_create, &bare])
    );
    assert_eq!(
        audit_ids(&store, query(|q| q.to = Some(NOW + 1))).await,
        ids(&[&login])
    );
    // Everything together, and a limit.
    assert_eq!(
        audit_ids(
            &store,
            AuditQuery {
                tenant_id: Some(acme),
                action: Some("user.".into()),
                actor_id: Some("admin-7".into()),
                target_id: Some("user-9".into()),
                from: Some(NOW),
                to: Some(NOW + 11),
                before: Some((NOW + 40, Uuid::max())),
                limit: 5,
            }
        )
        .await,
        ids(&[&disable])
    );
    assert_eq!(
        audit_ids(&store, query(|q| q.limit = 2)).await,
        ids(&[&key_lookalike, &key_create])
    );
}

/// Keyset paging on `(created_at, id)`: entries that share a second are neither repeated nor
/// skipped across pages.
pub async fn audit_paging(store: Arc<dyn Store>) {
    migrated(&store).await;
    let acme = Uuid::new_v4();
    let mut written = Vec::new();
    for (i, at) in [0, 1, 1, 1, 2, 2, 3].into_iter().enumerate() {
        let e = AuditEntry {
            // Random ids: the order within a second is the ids', not the insertion's.
            id: Uuid::new_v4(),
            ..entry(&format!("user.action{i}"), Some(acme), NOW + at)
        };
        store.record_audit(e.clone()).await.expect("record");
        written.push((e.created_at, e.id));
    }
    store
        .record_audit(entry("user.login", Some(Uuid::new_v4()), NOW + 1))
        .await
        .expect("another tenant's");
    written.sort_by(|a, b| b.cmp(a));
    let expected: Vec<Uuid> = written.iter().map(|(_, id)| *id).collect();

    for tenant_id in [Some(acme), None] {
        let page = |before: Option<(i64, Uuid)>| AuditQuery {
            tenant_id,
            action: Some("user.".into()),
            before,
            limit: 4,
            ..AuditQuery::default()
        };
        let mut seen = Vec::new();
        let mut before = None;
        let mut pages = 0;
        loop {
            let got = audit(&store, page(before)).await;
            pages += 1;
            let Some(last) = got.last() else { break };
            before = Some((last.created_at, last.id));
            seen.extend(got.iter().map(|r| r.id));
            assert!(pages <= 4, "paging does not end");
        }
        match tenant_id {
            Some(_) => {
                assert_eq!(seen, expected, "two pages, none repeated or missing");
                assert_eq!(pages, 3, "4 + 3, then an empty page");
            }
            None => {
                assert_eq!(seen.len(), expected.len() + 1);
                let mut sorted = seen.clone();
                sorted.sort();
                sorted.dedup();
                assert_eq!(sorted.len(), seen.len(), "no entry twice");
            }
        }
    }
}

/// One entry; a tenant-scoped read sees only that tenant's.
pub async fn get_audit_entry(store: Arc<dyn Store>) {
    migrated(&store).await;
    let (acme, other) = (Uuid::new_v4(), Uuid::new_v4());
    let mine = entry("user.disable", Some(acme), NOW);
    let global = entry("api_key.create", None, NOW);
    for e in [&mine, &global] {
        store.record_audit(e.clone()).await.expect("record");
    }
    let got = store
        .get_audit(None, mine.id)
        .await
        .expect("get")
        .expect("the entry");
    assert_reads_back(&got, &mine);
    assert_eq!(
        store.get_audit(Some(acme), mine.id).await.expect("get"),
        Some(got)
    );
    assert_eq!(
        store.get_audit(Some(other), mine.id).await.expect("get"),
        None
    );
    assert_eq!(
        store.get_audit(Some(acme), global.id).await.expect("get"),
        None
    );
    assert!(store
        .get_audit(None, global.id)
        .await
        .expect("get")
        .is_some());
    assert_eq!(
        store.get_audit(None, Uuid::now_v7()).await.expect("get"),
        None
    );
    // The same id twice is refused.
    assert_conflict(store.record_audit(mine.clone()).await, "audit_entry");
}

/// A purge deletes a tenant's oldest entries (up to its limit) and records itself.
pub async fn purge_audit(store: Arc<dyn Store>) {
    migrated(&store).await;
    let (acme, other) = (Uuid::new_v4(), Uuid::new_v4());
    let mut old = Vec::new();
    for i in 0..3 {
        let e = entry("user.login", Some(acme), NOW + i);
        store.record_audit(e.clone()).await.expect("record");
        old.push(e.id);
    }
    let recent = entry("user.login", Some(acme), NOW + 100);
    let others: Vec<AuditEntry> = (0..2)
        .map(|i| entry("user.login", Some(other), NOW + i))
        .collect();
    let global = entry("tenant.create", None, NOW);
    for e in others.iter().chain([&recent, &global]) {
        store.record_audit(e.clone()).await.expect("record");
    }

    // The purge's own entry is older than the cut, and survives it: written after the delete.
    let purge = entry("audit_log.purge", Some(acme), NOW + 2);
    assert_eq!(
        store
            .purge_audit(Some(acme), NOW + 50, 2, Some(purge.clone()))
            .await
            .expect("purge"),
        2
    );
    let tenant = |tenant_id| AuditQuery {
        tenant_id: Some(tenant_id),
        ..everything()
    };
    let mut left = audit_ids(&store, tenant(acme)).await;
    left.sort();
    let mut expected = vec![old[2], recent.id, purge.id];
    expected.sort();
    assert_eq!(left, expected, "the 2 oldest went");
    assert_reads_back(
        &store
            .get_audit(Some(acme), purge.id)
            .await
            .expect("get")
            .expect("the purge entry"),
        &purge,
    );

    // Again, without a limit that bites and without an entry: the rest before the cut.
    assert_eq!(
        store
            .purge_audit(Some(acme), NOW + 50, 100, None)
            .await
            .expect("purge"),
        2
    );
    assert_eq!(audit_ids(&store, tenant(acme)).await, vec![recent.id]);
    assert_eq!(audit(&store, tenant(other)).await.len(), 2, "untouched");
    assert!(store
        .get_audit(None, global.id)
        .await
        .expect("get")
        .is_some());

    // Every tenant's, global entries included; the cut is exclusive.
    let all_purge = entry("audit_log.purge", None, NOW + 200);
    assert_eq!(
        store
            .purge_audit(None, NOW + 100, 100, Some(all_purge.clone()))
            .await
            .expect("purge all"),
        3
    );
    assert_eq!(
        audit_ids(&store, everything()).await,
        vec![all_purge.id, recent.id]
    );
}

/// Every event is an audit entry (with the request id its metadata carries), whether or not a
/// webhook endpoint subscribes, and goes with its change when that is rolled back.
pub async fn security_events_are_audited(store: Arc<dyn Store>) {
    migrated(&store).await;
    let quiet = tenant(&store, "quiet").await;
    let hooked = tenant(&store, "hooked").await;
    endpoint(&store, &hooked, &["*"]).await;

    for t in [&quiet, &hooked] {
        let mut failed = draft("user.login_failed", Some(t.id), NOW);
        failed.metadata.insert("request_id", "req-42");
        failed.metadata.insert("reason", "bad_password");
        let event = store.record_event(failed.clone()).await.expect("record");

        let entries = audit(
            &store,
            AuditQuery {
                tenant_id: Some(t.id),
                ..everything()
            },
        )
        .await;
        assert_eq!(entries.len(), 1, "{}: {entries:?}", t.slug);
        let a = &entries[0];
        assert_eq!(a.id, event.id);
        assert_eq!(a.tenant_id, Some(t.id));
        assert_eq!(a.action, "user.login_failed");
        assert_eq!(a.actor_type, "system", "no actor: the system's");
        assert_eq!(
            (a.actor_id.as_deref(), a.actor_name.as_deref()),
            (None, None)
        );
        assert_eq!(
            (a.target_type.as_deref(), a.target_id.as_deref()),
            (None, None)
        );
        assert_eq!(a.ip_address.as_deref(), Some("203.0.113.7"));
        assert_eq!(a.user_agent.as_deref(), Some("suite/1.0"));
        assert_eq!(a.request_id.as_deref(), Some("req-42"));
        assert_eq!(
            a.metadata,
            json!({ "client_id": APP, "request_id": "req-42", "reason": "bad_password" })
        );
        assert_eq!((a.result.as_str(), a.created_at), ("success", NOW));
    }
    assert!(events_of(&store, &quiet).await.is_empty(), "no outbox row");
    assert_eq!(events_of(&store, &hooked).await.len(), 1);

    // An event of a change: actor and target completed by the store, as text; no request id.
    let new = new_user(&quiet, "ada@quiet.test");
    let refresh = refresh_for(&new, Uuid::new_v4(), NOW + 1);
    let register = draft("user.register", Some(quiet.id), NOW + 1);
    let ada = store
        .register_user(
            new,
            "$argon2id$h".into(),
            Some(refresh.clone()),
            Some(register.clone()),
            NOW + 1,
        )
        .await
        .expect("register");
    let a = store
        .get_audit(Some(quiet.id), register.id)
        .await
        .expect("get")
        .expect("the registration's entry");
    assert_eq!(a.action, "user.register");
    assert_eq!(
        (a.actor_type.as_str(), a.actor_id.clone()),
        ("user", Some(ada.id.to_string()))
    );
    assert_eq!(
        (a.target_type.as_deref(), a.target_id.clone()),
        (Some("user"), Some(ada.id.to_string()))
    );
    assert_eq!(a.request_id, None);

    // The hot paths (sign-in, sign-out, reuse) write theirs too.
    let login = draft("user.login", Some(quiet.id), NOW + 2);
    store
        .insert_refresh_token(
            refresh_for(&ada_new(&ada), Uuid::new_v4(), NOW + 2),
            Some(login.clone()),
        )
        .await
        .expect("sign-in");
    let session = draft("user.login", Some(quiet.id), NOW + 2);
    store
        .create_session(session_for(&ada, NOW + 2), Some(session.clone()))
        .await
        .expect("session");
    let logout = draft("user.logout", None, NOW + 3);
    store
        .revoke_refresh_family(refresh.token_hash, Some(logout.clone()), NOW + 3)
        .await
        .expect("sign-out")
        .expect("the family");
    for e in [&login, &session, &logout] {
        let a = store
            .get_audit(Some(quiet.id), e.id)
            .await
            .expect("get")
            .unwrap_or_else(|| panic!("no audit entry for {}", e.event_type));
        assert_eq!(a.action, e.event_type);
        assert_eq!(a.actor_id, Some(ada.id.to_string()));
    }

    // A change that fails takes its event's audit entry with it.
    let again = new_user(&quiet, "ada@quiet.test");
    let lost = draft("user.register", Some(quiet.id), NOW + 4);
    assert_conflict(
        store
            .register_user(
                again.clone(),
                "$argon2id$h".into(),
                Some(refresh_for(&again, Uuid::new_v4(), NOW + 4)),
                Some(lost.clone()),
                NOW + 4,
            )
            .await,
        "email",
    );
    assert_eq!(store.get_audit(None, lost.id).await.expect("get"), None);
}

/// The [`NewUser`] a registered user was made from, for [`refresh_for`].
fn ada_new(user: &User) -> NewUser {
    NewUser {
        id: user.id,
        tenant_id: user.tenant_id,
        email: user.email.clone(),
        name: None,
        custom_fields: store::Metadata::empty(),
    }
}
