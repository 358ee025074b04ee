//! Cases: refresh families and cookie sessions as the admin API sees them (`GrantAdmin`):
//! listed and counted per tenant, revoked by selector with the effect of a sign-out, each
//! revocation that revoked something audited once in its transaction.

use store::{GrantQuery, GrantState, GrantStats, RevokeSelector, SessionGrant};

use super::{audit, Raw};
use crate::suite::*;

/// A refresh token of `user` in a new family, for `client_id`, issued at `at`, expiring at
/// `expires_at`.
async fn family(
    store: &Arc<dyn Store>,
    user: &User,
    client_id: &str,
    at: i64,
    expires_at: i64,
) -> NewRefreshToken {
    let token = NewRefreshToken {
        token_hash: new_hash(),
        family_id: Uuid::new_v4(),
        user_id: user.id,
        tenant_id: user.tenant_id,
        client_id: client_id.into(),
        issued_at: at,
        expires_at,
    };
    store
        .insert_refresh_token(token.clone(), None)
        .await
        .expect("family");
    token
}

fn query(tenant: &Tenant) -> GrantQuery {
    GrantQuery::tenant(tenant.id, 100)
}

pub async fn admin_refresh_grants(store: Arc<dyn Store>, raw: Raw) {
    migrated(&store).await;
    let acme = tenant(&store, "acme").await;
    let globex = tenant(&store, "globex").await;
    let (ada, first) = register(&store, &acme, "ada@acme.test").await;
    let bob = store
        .create_user(
            new_user(&acme, "bob@acme.test"),
            None,
            false,
            store::Metadata::empty(),
            NOW,
            audit("user.create"),
        )
        .await
        .expect("bob");
    let (carol, carol_token) = register(&store, &globex, "carol@globex.test").await;
    // ada: her sign-up's family, rotated at NOW + 10; one for the CLI; one signed out.
    let next = successor(&ada, NOW + 10);
    assert!(matches!(
        store
            .rotate_refresh_token(first.token_hash, APP, next.clone(), None, NOW + 10)
            .await
            .expect("rotate"),
        RotateOutcome::Rotated { .. }
    ));
    let cli = family(&store, &ada, "cli", NOW + 1, NOW + 1 + REFRESH_TTL).await;
    let out = family(&store, &ada, APP, NOW + 2, NOW + 2 + REFRESH_TTL).await;
    store
        .revoke_refresh_family(out.token_hash, None, NOW + 3)
        .await
        .expect("sign out")
        .expect("the token");
    // bob: one that expired.
    let old = family(&store, &bob, APP, NOW + 3, NOW + 50).await;

    let listed = store.list_refresh_tokens(query(&acme)).await.expect("list");
    let ids: Vec<Uuid> = listed.iter().map(|g| g.id).collect();
    assert_eq!(
        ids,
        [first.family_id, cli.family_id, out.family_id, old.family_id]
    );
    let sign_up = &listed[0];
    assert_eq!(
        (
            sign_up.tenant_id,
            sign_up.user_id,
            sign_up.client_id.as_str()
        ),
        (acme.id, ada.id, APP)
    );
    // It stands as its latest token: issued at the rotation.
    assert_eq!(
        (sign_up.created_at, sign_up.issued_at, sign_up.expires_at),
        (NOW, NOW + 10, next.expires_at)
    );
    assert_eq!((sign_up.revoked_at, sign_up.scopes.clone()), (None, None));
    assert_eq!(sign_up.user_email, "ada@acme.test");
    assert_eq!(listed[3].user_email, "bob@acme.test");
    assert_eq!(listed[2].revoked_at, Some(NOW + 3));
    assert!(sign_up.is_active(NOW + 100) && !listed[3].is_active(NOW + 100));

    // Filters, and pages.
    let list = |q: GrantQuery| {
        let store = Arc::clone(&store);
        async move {
            store
                .list_refresh_tokens(q)
                .await
                .expect("list")
                .into_iter()
                .map(|g| g.id)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        list(GrantQuery {
            user_id: Some(bob.id),
            ..query(&acme)
        })
        .await,
        [old.family_id]
    );
    assert_eq!(
        list(GrantQuery {
            client_id: Some("cli".into()),
            ..query(&acme)
        })
        .await,
        [cli.family_id]
    );
    assert_eq!(
        list(GrantQuery {
            state: Some((GrantState::Active, NOW + 100)),
            ..query(&acme)
        })
        .await,
        [first.family_id, cli.family_id]
    );
    let page = GrantQuery {
        limit: 2,
        ..query(&acme)
    };
    assert_eq!(list(page.clone()).await, ids[..2]);
    assert_eq!(
        list(GrantQuery {
            after: Some((listed[1].created_at, listed[1].id)),
            ..page
        })
        .await,
        ids[2..]
    );
    assert_eq!(
        list(query(&globex)).await,
        [carol_token.family_id],
        "each tenant sees its own"
    );

    // One by id, in its tenant only.
    assert_eq!(
        store
            .get_refresh_token(acme.id, first.family_id)
            .await
            .expect("get"),
        Some(sign_up.clone())
    );
    assert_eq!(
        store
            .get_refresh_token(globex.id, first.family_id)
            .await
            .expect("get"),
        None
    );
    assert_eq!(
        store
            .get_refresh_token(acme.id, carol_token.family_id)
            .await
            .expect("get"),
        None
    );

    // Since NOW + 2: `out` and `old` were created, `out` revoked; the two active ones were
    // each given REFRESH_TTL by their latest token.
    assert_eq!(
        store
            .token_stats(acme.id, NOW + 100, NOW + 2)
            .await
            .expect("stats"),
        GrantStats {
            active: 2,
            revoked: 1,
            expired: 1,
            created_since: 2,
            revoked_since: 1,
            active_lifetime_secs: 2 * REFRESH_TTL as u64,
            by_client: vec![("cli".into(), 1), (APP.into(), 1)],
        }
    );

    // Revocations: another tenant's, a revoked or an expired one revoke nothing, audit nothing.
    let revoke = |tenant_id: Uuid, selector: RevokeSelector| {
        let store = Arc::clone(&store);
        async move {
            let entry = audit("token.revoke");
            let ids = store
                .revoke_refresh_tokens(tenant_id, selector, NOW + 100, entry.clone())
                .await
                .expect("revoke");
            (ids, entry)
        }
    };
    for selector in [
        RevokeSelector::One(carol_token.family_id),
        RevokeSelector::One(out.family_id),
        RevokeSelector::One(old.family_id),
        RevokeSelector::User(carol.id),
        RevokeSelector::User(bob.id),
        RevokeSelector::Client("nope".into()),
    ] {
        assert!(
            revoke(acme.id, selector.clone()).await.0.is_empty(),
            "{selector:?}"
        );
    }
    assert_eq!(raw.audits("token.revoke").await, 0);
    assert_eq!(
        token(&store, carol_token.token_hash)
            .await
            .family_revoked_at,
        None
    );

    // One: the family no longer refreshes, as after a sign-out.
    let (ids, entry) = revoke(acme.id, RevokeSelector::One(first.family_id)).await;
    assert_eq!(ids, [first.family_id]);
    let family_id = first.family_id.to_string();
    assert!(raw.audited(&entry, acme.id, ("token", &family_id)).await);
    assert!(raw.audit_revoked(entry.id, 1).await);
    assert_eq!(
        token(&store, next.token_hash).await.family_revoked_at,
        Some(NOW + 100)
    );
    assert_eq!(
        store
            .rotate_refresh_token(
                next.token_hash,
                APP,
                successor(&ada, NOW + 101),
                None,
                NOW + 101
            )
            .await
            .expect("rotate"),
        RotateOutcome::Revoked
    );
    // A client's.
    let (ids, entry) = revoke(acme.id, RevokeSelector::Client("cli".into())).await;
    assert_eq!(ids, [cli.family_id]);
    assert!(raw.audited(&entry, acme.id, ("client", "cli")).await);
    assert_eq!(
        token(&store, cli.token_hash).await.family_revoked_at,
        Some(NOW + 100)
    );
    // A user's, then the whole tenant's.
    let again = family(&store, &ada, APP, NOW + 90, NOW + 90 + REFRESH_TTL).await;
    let bobs = family(&store, &bob, APP, NOW + 91, NOW + 91 + REFRESH_TTL).await;
    let (ids, entry) = revoke(acme.id, RevokeSelector::User(ada.id)).await;
    assert_eq!(ids, [again.family_id]);
    assert!(
        raw.audited(&entry, acme.id, ("user", &ada.id.to_string()))
            .await
    );
    assert!(token(&store, again.token_hash)
        .await
        .family_revoked_at
        .is_some());
    assert_eq!(token(&store, bobs.token_hash).await.family_revoked_at, None);
    let (ids, entry) = revoke(acme.id, RevokeSelector::All).await;
    assert_eq!(ids, [bobs.family_id]);
    assert!(
        raw.audited(&entry, acme.id, ("tenant", &acme.id.to_string()))
            .await
    );
    assert!(token(&store, bobs.token_hash)
        .await
        .family_revoked_at
        .is_some());
    assert!(revoke(acme.id, RevokeSelector::All).await.0.is_empty());
    assert_eq!(raw.audits("token.revoke").await, 4);
    assert_eq!(
        store
            .token_stats(acme.id, NOW + 100, NOW + 2)
            .await
            .expect("stats"),
        GrantStats {
            active: 0,
            revoked: 5,
            expired: 1,
            created_since: 4,
            revoked_since: 5,
            active_lifetime_secs: 0,
            by_client: vec![],
        }
    );
    // The other tenant's is untouched; an entry whose id is already written fails the
    // revocation with it (one transaction).
    let reused = store
        .revoke_refresh_tokens(globex.id, RevokeSelector::All, NOW + 100, entry)
        .await;
    assert!(reused.is_err(), "{reused:?}");
    assert_eq!(
        token(&store, carol_token.token_hash)
            .await
            .family_revoked_at,
        None
    );
    assert_eq!(
        store
            .token_stats(globex.id, NOW + 100, NOW + 2)
            .await
            .expect("stats"),
        GrantStats {
            active: 1,
            revoked: 0,
            expired: 0,
            created_since: 0,
            revoked_since: 0,
            active_lifetime_secs: REFRESH_TTL as u64,
            by_client: vec![(APP.into(), 1)],
        }
    );
}

/// A session as an older release writes it: without an id.
async fn session_without_id(raw: &Raw, user: &User) {
    let sql = match raw {
        Raw::Sqlite(_) => {
            "INSERT INTO sessions (id_hash, user_id, tenant_id, client_id, created_at, \
             expires_at) VALUES (randomblob(32), $1, $2, 'old-app', 1700000004, 1700009999)"
        }
        Raw::Postgres(_) => {
            "INSERT INTO sessions (id_hash, user_id, tenant_id, client_id, created_at, \
             expires_at) VALUES (decode(md5(random()::text) || md5(random()::text), 'hex'), \
             $1::text::uuid, $2::text::uuid, 'old-app', 1700000004, 1700009999)"
        }
    };
    let n = raw
        .exec(sql, &[&user.id.to_string(), &user.tenant_id.to_string()])
        .await;
    assert_eq!(n, 1);
}

pub async fn admin_session_grants(store: Arc<dyn Store>, raw: Raw) {
    migrated(&store).await;
    let acme = tenant(&store, "acme").await;
    let globex = tenant(&store, "globex").await;
    let (ada, _) = register(&store, &acme, "ada@acme.test").await;
    let (bob, _) = register(&store, &acme, "bob@acme.test").await;
    let (carol, _) = register(&store, &globex, "carol@globex.test").await;
    let web = session_for(&ada, NOW);
    let cli = NewSession {
        client_id: "cli".into(),
        ..session_for(&ada, NOW + 1)
    };
    let out = session_for(&ada, NOW + 2);
    let old = NewSession {
        expires_at: NOW + 50,
        ..session_for(&bob, NOW + 3)
    };
    let theirs = session_for(&carol, NOW);
    for s in [&web, &cli, &out, &old, &theirs] {
        store
            .create_session(s.clone(), None)
            .await
            .expect("session");
    }
    assert!(store
        .revoke_session(out.id_hash, None, NOW + 3)
        .await
        .expect("sign out"));
    session_without_id(&raw, &bob).await;

    let listed = store.list_sessions(query(&acme)).await.expect("list");
    let clients: Vec<&str> = listed.iter().map(|s| s.client_id.as_str()).collect();
    assert_eq!(clients, [APP, "cli", APP, APP, "old-app"]);
    let mut ids: Vec<Uuid> = listed.iter().map(|s| s.id).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 5, "every session has an id of its own");
    assert!(listed
        .iter()
        .all(|s| !s.id.is_nil() && s.tenant_id == acme.id));
    assert_eq!(
        listed[0],
        SessionGrant {
            id: listed[0].id,
            tenant_id: acme.id,
            user_id: ada.id,
            user_email: "ada@acme.test".into(),
            client_id: APP.into(),
            created_at: NOW,
            expires_at: NOW + 3600,
            revoked_at: None,
            amr: vec!["pwd".into()],
        }
    );
    assert_eq!(listed[2].revoked_at, Some(NOW + 3));
    let [web_id, cli_id, _, old_id, older_id] = [0, 1, 2, 3, 4].map(|i| listed[i].id);

    let list = |q: GrantQuery| {
        let store = Arc::clone(&store);
        async move {
            store
                .list_sessions(q)
                .await
                .expect("list")
                .into_iter()
                .map(|s| s.id)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        list(GrantQuery {
            user_id: Some(bob.id),
            ..query(&acme)
        })
        .await,
        [old_id, older_id]
    );
    assert_eq!(
        list(GrantQuery {
            client_id: Some("cli".into()),
            ..query(&acme)
        })
        .await,
        [cli_id]
    );
    assert_eq!(
        list(GrantQuery {
            state: Some((GrantState::Active, NOW + 100)),
            ..query(&acme)
        })
        .await,
        [web_id, cli_id, older_id]
    );
    assert_eq!(
        list(GrantQuery {
            after: Some((listed[2].created_at, listed[2].id)),
            limit: 1,
            ..query(&acme)
        })
        .await,
        [old_id]
    );
    let theirs_id = list(query(&globex)).await;
    assert_eq!(theirs_id.len(), 1);

    assert_eq!(
        store.get_session(acme.id, web_id).await.expect("get"),
        Some(listed[0].clone())
    );
    assert_eq!(
        store.get_session(globex.id, web_id).await.expect("get"),
        None
    );
    assert_eq!(
        store.get_session(acme.id, theirs_id[0]).await.expect("get"),
        None
    );

    // Since NOW + 2: `out`, `old` and the older release's were created, `out` revoked; the
    // active ones were given an hour, an hour and 9995 s.
    assert_eq!(
        store
            .session_stats(acme.id, NOW + 100, NOW + 2)
            .await
            .expect("stats"),
        GrantStats {
            active: 3,
            revoked: 1,
            expired: 1,
            created_since: 3,
            revoked_since: 1,
            active_lifetime_secs: 3600 + 3600 + 9995,
            by_client: vec![("cli".into(), 1), ("old-app".into(), 1), (APP.into(), 1)],
        }
    );

    let revoke = |tenant_id: Uuid, selector: RevokeSelector| {
        let store = Arc::clone(&store);
        async move {
            let entry = audit("session.revoke");
            let revoked = store
                .revoke_sessions(tenant_id, selector, NOW + 100, entry.clone())
                .await
                .expect("revoke");
            (revoked, entry)
        }
    };
    for selector in [
        RevokeSelector::One(theirs_id[0]),
        RevokeSelector::One(listed[2].id),
        RevokeSelector::One(old_id),
        RevokeSelector::User(carol.id),
        RevokeSelector::Client("nope".into()),
    ] {
        assert!(
            revoke(acme.id, selector.clone()).await.0.is_empty(),
            "{selector:?}"
        );
    }
    assert_eq!(raw.audits("session.revoke").await, 0);

    // One: the cookie's session is revoked, as by a sign-out; the engine gets its hash.
    let (revoked, entry) = revoke(acme.id, RevokeSelector::One(web_id)).await;
    assert_eq!(revoked.len(), 1);
    assert_eq!(
        (revoked[0].id, revoked[0].id_hash, revoked[0].user_id),
        (web_id, web.id_hash, ada.id)
    );
    assert!(
        raw.audited(&entry, acme.id, ("session", &web_id.to_string()))
            .await
    );
    assert!(raw.audit_revoked(entry.id, 1).await);
    let found = store
        .find_session(web.id_hash)
        .await
        .expect("find")
        .expect("web");
    assert_eq!(found.revoked_at, Some(NOW + 100));
    assert!(!store
        .revoke_session(web.id_hash, None, NOW + 101)
        .await
        .expect("sign out again"));
    // A client's; a user's (bob's live one is the older release's).
    let (revoked, entry) = revoke(acme.id, RevokeSelector::Client("cli".into())).await;
    assert_eq!(
        revoked.iter().map(|r| r.id_hash).collect::<Vec<_>>(),
        [cli.id_hash]
    );
    assert!(raw.audited(&entry, acme.id, ("client", "cli")).await);
    let (revoked, entry) = revoke(acme.id, RevokeSelector::User(bob.id)).await;
    assert_eq!(
        revoked
            .iter()
            .map(|r| (r.id, r.user_id))
            .collect::<Vec<_>>(),
        [(older_id, bob.id)]
    );
    assert!(
        raw.audited(&entry, acme.id, ("user", &bob.id.to_string()))
            .await
    );
    // The whole tenant's.
    let fresh = session_for(&bob, NOW + 90);
    store
        .create_session(fresh.clone(), None)
        .await
        .expect("fresh");
    let (revoked, entry) = revoke(acme.id, RevokeSelector::All).await;
    assert_eq!(
        revoked.iter().map(|r| r.id_hash).collect::<Vec<_>>(),
        [fresh.id_hash]
    );
    assert!(
        raw.audited(&entry, acme.id, ("tenant", &acme.id.to_string()))
            .await
    );
    assert!(revoke(acme.id, RevokeSelector::All).await.0.is_empty());
    assert_eq!(raw.audits("session.revoke").await, 4);
    assert_eq!(
        store
            .session_stats(acme.id, NOW + 100, NOW + 2)
            .await
            .expect("stats"),
        GrantStats {
            active: 0,
            revoked: 5,
            expired: 1,
            created_since: 4,
            revoked_since: 5,
            active_lifetime_secs: 0,
            by_client: vec![],
        }
    );

    // The other tenant's is untouched; an entry whose id is already written fails the
    // revocation with it (one transaction).
    let reused = store
        .revoke_sessions(globex.id, RevokeSelector::All, NOW + 100, entry)
        .await;
    assert!(reused.is_err(), "{reused:?}");
    let carols = store
        .find_session(theirs.id_hash)
        .await
        .expect("find")
        .expect("carol's");
    assert_eq!(carols.revoked_at, None);
}
