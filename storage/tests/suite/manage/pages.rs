//! Cases: what the admin API's offset-paged listings need of users, refresh families and
//! sessions: an offset after the filters, a count of what the filters take (cursor, offset and
//! limit ignored), the state of a grant at a time, and a part of its user's email.

use store::{GrantQuery, GrantState, Metadata, UserFilter, UserQuery};

use super::audit;
use crate::suite::*;

/// A refresh token of `user` in a new family for `client_id`, issued at `at`, expiring at
/// `expires_at`.
async fn family(store: &Arc<dyn Store>, user: &User, at: i64, expires_at: i64) -> NewRefreshToken {
    let token = NewRefreshToken {
        token_hash: new_hash(),
        family_id: Uuid::new_v4(),
        user_id: user.id,
        tenant_id: user.tenant_id,
        client_id: APP.into(),
        issued_at: at,
        expires_at,
    };
    store
        .insert_refresh_token(token.clone(), None)
        .await
        .expect("family");
    token
}

/// `all[offset..offset + limit]`, clamped.
fn slice<T: Clone>(all: &[T], offset: usize, limit: usize) -> Vec<T> {
    all.iter().skip(offset).take(limit).cloned().collect()
}

pub async fn admin_offset_pages(store: Arc<dyn Store>) {
    migrated(&store).await;
    let acme = tenant(&store, "acme").await;
    let globex = tenant(&store, "globex").await;
    for i in 0..9 {
        store
            .create_user(
                new_user(&acme, &format!("user{i}@acme.test")),
                None,
                false,
                Metadata::empty(),
                NOW + i,
                audit("user.create"),
            )
            .await
            .expect("user");
    }
    let (_carol, _) = register(&store, &globex, "carol@globex.test").await;
    let query = |filter: UserFilter, offset: u32, limit: u32| UserQuery {
        filter,
        after: None,
        offset,
        limit,
    };
    let ids = |users: Vec<User>| users.into_iter().map(|u| u.id).collect::<Vec<_>>();
    let all = ids(store
        .list_users(query(UserFilter::tenant(acme.id), 0, 100))
        .await
        .expect("all"));
    assert_eq!(all.len(), 9);
    for offset in [0, 4, 8, 9, 20] {
        let page = store
            .list_users(query(UserFilter::tenant(acme.id), offset, 4))
            .await
            .expect("page");
        assert_eq!(ids(page), slice(&all, offset as usize, 4), "{offset}");
    }
    // The offset counts only what the filter takes; a cursor and an offset add up.
    let some = UserFilter {
        email: Some("USER".into()),
        ..UserFilter::tenant(acme.id)
    };
    let page = store.list_users(query(some, 2, 3)).await.expect("page");
    assert_eq!(ids(page), slice(&all, 2, 3));
    let first = store
        .list_users(query(UserFilter::tenant(acme.id), 0, 1))
        .await
        .expect("first");
    let after = store
        .list_users(UserQuery {
            after: Some((first[0].created_at, first[0].id)),
            ..query(UserFilter::tenant(acme.id), 2, 2)
        })
        .await
        .expect("after");
    assert_eq!(ids(after), slice(&all, 3, 2));
}

pub async fn admin_grant_states_emails_and_counts(store: Arc<dyn Store>) {
    migrated(&store).await;
    let acme = tenant(&store, "acme").await;
    let globex = tenant(&store, "globex").await;
    let (ada, _) = register(&store, &acme, "ada@acme.test").await;
    let (bob, _) = register(&store, &acme, "bob@acme.test").await;
    let (carol, _) = register(&store, &globex, "carol@globex.test").await;
    for i in 1..=6 {
        family(&store, &ada, NOW + i, NOW + i + REFRESH_TTL).await;
    }
    let expired = family(&store, &bob, NOW + 7, NOW + 50).await;
    let revoked = family(&store, &bob, NOW + 8, NOW + 8 + REFRESH_TTL).await;
    store
        .revoke_refresh_family(revoked.token_hash, None, NOW + 9)
        .await
        .expect("sign out")
        .expect("the token");
    let at = NOW + 100;

    let q = GrantQuery::tenant(acme.id, 100);
    let all = store.list_refresh_tokens(q.clone()).await.expect("all");
    assert_eq!(all.len(), 10);
    let ids: Vec<Uuid> = all.iter().map(|g| g.id).collect();
    let families = |q: GrantQuery| {
        let store = Arc::clone(&store);
        async move {
            let listed = store.list_refresh_tokens(q.clone()).await.expect("list");
            let count = store.count_refresh_tokens(q).await.expect("count");
            (listed.into_iter().map(|g| g.id).collect::<Vec<_>>(), count)
        }
    };
    for offset in [0, 3, 9, 10, 15] {
        let page = GrantQuery {
            offset,
            limit: 3,
            ..q.clone()
        };
        // The count is of the whole listing, whatever page is asked.
        assert_eq!(
            families(page).await,
            (slice(&ids, offset as usize, 3), 10),
            "{offset}"
        );
    }
    let in_state = |state: GrantState| GrantQuery {
        state: Some((state, at)),
        ..q.clone()
    };
    let (active, n) = families(in_state(GrantState::Active)).await;
    assert_eq!(n, 8);
    assert!(!active.contains(&expired.family_id) && !active.contains(&revoked.family_id));
    assert_eq!(
        families(in_state(GrantState::Expired)).await,
        (vec![expired.family_id], 1)
    );
    assert_eq!(
        families(in_state(GrantState::Revoked)).await,
        (vec![revoked.family_id], 1)
    );
    assert!(all
        .iter()
        .all(|g| (g.state(at) == GrantState::Active) == active.contains(&g.id)));
    // A part of the user's email, any case; with a state; with an offset.
    let bobs: Vec<Uuid> = all
        .iter()
        .filter(|g| g.user_id == bob.id)
        .map(|g| g.id)
        .collect();
    assert_eq!(bobs.len(), 3);
    let by_email = GrantQuery {
        email: Some("BOB@".into()),
        ..q.clone()
    };
    assert_eq!(families(by_email.clone()).await, (bobs.clone(), 3));
    assert_eq!(
        families(GrantQuery {
            state: Some((GrantState::Expired, at)),
            ..by_email.clone()
        })
        .await,
        (vec![expired.family_id], 1)
    );
    assert_eq!(
        families(GrantQuery {
            offset: 1,
            limit: 1,
            ..by_email
        })
        .await,
        (bobs[1..2].to_vec(), 3)
    );
    assert!(all.iter().all(|g| g.user_email
        == if g.user_id == ada.id {
            "ada@acme.test"
        } else {
            "bob@acme.test"
        }));
    assert_eq!(
        families(GrantQuery {
            email: Some("carol".into()),
            ..q.clone()
        })
        .await,
        (vec![], 0),
        "another tenant's user is not found by email"
    );
    let (theirs, n) = families(GrantQuery::tenant(globex.id, 10)).await;
    assert_eq!((theirs.len(), n), (1, 1));

    // Sessions: the same filters and counts.
    let mut made = Vec::new();
    for i in 0..4 {
        made.push(session_for(&ada, NOW + i));
    }
    let old = NewSession {
        expires_at: NOW + 50,
        ..session_for(&bob, NOW + 4)
    };
    let out = session_for(&bob, NOW + 5);
    made.push(old.clone());
    made.push(out.clone());
    made.push(session_for(&carol, NOW));
    for s in &made {
        store
            .create_session(s.clone(), None)
            .await
            .expect("session");
    }
    assert!(store
        .revoke_session(out.id_hash, None, NOW + 6)
        .await
        .expect("sign out"));
    let all = store.list_sessions(q.clone()).await.expect("all");
    assert_eq!(all.len(), 6);
    let ids: Vec<Uuid> = all.iter().map(|s| s.id).collect();
    let sessions = |q: GrantQuery| {
        let store = Arc::clone(&store);
        async move {
            let listed = store.list_sessions(q.clone()).await.expect("list");
            let count = store.count_sessions(q).await.expect("count");
            (listed.into_iter().map(|s| s.id).collect::<Vec<_>>(), count)
        }
    };
    for offset in [0, 4, 6] {
        let page = GrantQuery {
            offset,
            limit: 4,
            ..q.clone()
        };
        assert_eq!(
            sessions(page).await,
            (slice(&ids, offset as usize, 4), 6),
            "{offset}"
        );
    }
    assert_eq!(
        sessions(in_state(GrantState::Active)).await,
        (ids[..4].to_vec(), 4)
    );
    assert_eq!(
        sessions(in_state(GrantState::Expired)).await,
        (vec![ids[4]], 1)
    );
    assert_eq!(
        sessions(in_state(GrantState::Revoked)).await,
        (vec![ids[5]], 1)
    );
    assert_eq!(
        sessions(GrantQuery {
            email: Some("Bob".into()),
            ..q.clone()
        })
        .await,
        (ids[4..].to_vec(), 2)
    );
    assert!(all.iter().all(|s| s.user_email
        == if s.user_id == ada.id {
            "ada@acme.test"
        } else {
            "bob@acme.test"
        }));
    assert_eq!(
        all.iter().map(|s| s.state(at)).collect::<Vec<_>>(),
        [
            GrantState::Active,
            GrantState::Active,
            GrantState::Active,
            GrantState::Active,
            GrantState::Expired,
            GrantState::Revoked
        ]
    );
}
