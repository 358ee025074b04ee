//! Cases: users as the admin API manages them (`UserAdmin`): scoped by tenant, each change
//! audited once in its transaction, refused changes writing nothing.

use store::{EmailPurpose, Metadata, UserChanges, UserFilter, UserQuery, UserStatus};

use super::{audit, Raw};
use crate::suite::*;

const HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA";

fn meta(value: serde_json::Value) -> Metadata {
    Metadata::from(value)
}

async fn create(
    store: &Arc<dyn Store>,
    tenant: &Tenant,
    email: &str,
    password: Option<&str>,
    at: i64,
) -> User {
    store
        .create_user(
            new_user(tenant, email),
            password.map(str::to_owned),
            false,
            Metadata::empty(),
            at,
            audit("user.create"),
        )
        .await
        .expect("create user")
}

async fn audit_id_count(raw: &Raw, id: Uuid) -> i64 {
    raw.count(
        "SELECT count(*) FROM audit_log WHERE CAST(id AS TEXT) = $1",
        &[&id.to_string()],
    )
    .await
}

pub async fn admin_create_and_find_users(store: Arc<dyn Store>, raw: Raw) {
    migrated(&store).await;
    let acme = tenant(&store, "acme").await;
    let globex = tenant(&store, "globex").await;

    let created = audit("user.create");
    let new = new_user(&acme, "ada@acme.test");
    let ada = store
        .create_user(
            new.clone(),
            Some(HASH.into()),
            true,
            meta(json!({ "role": "admin" })),
            NOW,
            created.clone(),
        )
        .await
        .expect("ada");
    assert_eq!(
        ada,
        User {
            id: new.id,
            tenant_id: acme.id,
            email: "ada@acme.test".into(),
            email_verified: true,
            name: new.name.clone(),
            custom_fields: new.custom_fields.clone(),
            app_metadata: meta(json!({ "role": "admin" })),
            disabled: false,
            disabled_reason: None,
            mfa_enabled: false,
            created_at: NOW,
        }
    );
    assert!(
        raw.audited(&created, acme.id, ("user", &ada.id.to_string()))
            .await
    );
    let login = store
        .find_password_login(acme.id, "ada@acme.test")
        .await
        .expect("login")
        .expect("ada has a password");
    assert_eq!(
        (login.user, login.password_hash.as_str()),
        (ada.clone(), HASH)
    );
    assert_eq!(
        store.find_user(acme.id, ada.id).await.expect("find"),
        Some(ada.clone())
    );
    assert_eq!(
        store.get_user(ada.id).await.expect("get"),
        Some(ada.clone())
    );

    // Without a password: a user with no password identity, whom no password signs in.
    let bob = create(&store, &acme, "bob@acme.test", None, NOW + 1).await;
    assert_eq!(
        store
            .find_password_login(acme.id, "bob@acme.test")
            .await
            .expect("login"),
        None
    );
    assert_eq!(
        store.find_user(acme.id, bob.id).await.expect("find"),
        Some(bob.clone())
    );

    // Another tenant's user is nobody here.
    assert_eq!(
        store.find_user(globex.id, ada.id).await.expect("find"),
        None
    );
    assert_eq!(
        store
            .find_user(acme.id, Uuid::new_v4())
            .await
            .expect("find"),
        None
    );

    // A taken email: no user, no identity, no entry.
    let entry = audit("user.create");
    let taken = new_user(&acme, "ada@acme.test");
    assert_conflict(
        store
            .create_user(
                taken.clone(),
                Some(HASH.into()),
                false,
                Metadata::empty(),
                NOW,
                entry.clone(),
            )
            .await,
        "email",
    );
    assert_eq!(audit_id_count(&raw, entry.id).await, 0);
    assert_eq!(store.get_user(taken.id).await.expect("get"), None);
    assert_eq!(
        raw.count(
            "SELECT count(*) FROM password_identities WHERE CAST(user_id AS TEXT) = $1",
            &[&taken.id.to_string()],
        )
        .await,
        0
    );
    assert_eq!(
        store
            .count_users(UserFilter::tenant(acme.id))
            .await
            .expect("count"),
        2
    );
    // The same email in another tenant is another user.
    let other = create(&store, &globex, "ada@acme.test", Some(HASH), NOW).await;
    assert_ne!(other.id, ada.id);

    // An entry whose id is already written fails the change with it: one transaction.
    let again = new_user(&acme, "carol@acme.test");
    let reused = store
        .create_user(
            again.clone(),
            Some(HASH.into()),
            false,
            Metadata::empty(),
            NOW,
            store::AuditEntry {
                id: created.id,
                ..audit("user.create")
            },
        )
        .await;
    assert!(reused.is_err(), "{reused:?}");
    assert_eq!(store.get_user(again.id).await.expect("get"), None);
    assert_eq!(raw.audits("user.create").await, 3);
}

pub async fn admin_update_and_delete_users(store: Arc<dyn Store>, raw: Raw) {
    migrated(&store).await;
    let acme = tenant(&store, "acme").await;
    let globex = tenant(&store, "globex").await;
    let (ada, refresh) = register(&store, &acme, "ada@acme.test").await;
    let bob = create(&store, &acme, "bob@acme.test", Some(HASH), NOW).await;

    // Verified by an operator; not across tenants.
    let entry = audit("user.verify_email");
    let verified = store
        .set_email_verified(acme.id, ada.id, true, entry.clone())
        .await
        .expect("verify")
        .expect("ada");
    assert!(verified.email_verified);
    assert!(
        raw.audited(&entry, acme.id, ("user", &ada.id.to_string()))
            .await
    );
    for (tenant_id, user_id) in [(globex.id, ada.id), (acme.id, Uuid::new_v4())] {
        assert_eq!(
            store
                .set_email_verified(tenant_id, user_id, false, audit("user.verify_email"))
                .await
                .expect("verify elsewhere"),
            None
        );
    }
    assert_eq!(raw.audits("user.verify_email").await, 1);

    // The same email again keeps it verified.
    let same = store
        .update_user(
            acme.id,
            ada.id,
            UserChanges {
                email: Some("ada@acme.test".into()),
                name: Some(Some("Ada King".into())),
                ..UserChanges::default()
            },
            audit("user.update"),
        )
        .await
        .expect("update")
        .expect("ada");
    assert!(same.email_verified);
    assert_eq!(same.name.as_deref(), Some("Ada King"));

    // A new email: not verified, and the links sent to the old one stop working.
    let link = super::super::email_token(&ada, EmailPurpose::Reset, NOW + 3600);
    super::super::issue(&store, &link, NOW * 1000).await;
    let entry = audit("user.update");
    let changed = store
        .update_user(
            acme.id,
            ada.id,
            UserChanges {
                email: Some("ada.king@acme.test".into()),
                name: Some(None),
                custom_fields: Some(meta(json!({ "plan": "free" }))),
                app_metadata: Some(meta(json!({ "role": "owner" }))),
            },
            entry.clone(),
        )
        .await
        .expect("update")
        .expect("ada");
    assert_eq!(
        changed,
        User {
            email: "ada.king@acme.test".into(),
            email_verified: false,
            name: None,
            custom_fields: meta(json!({ "plan": "free" })),
            app_metadata: meta(json!({ "role": "owner" })),
            ..ada.clone()
        }
    );
    assert!(
        raw.audited(&entry, acme.id, ("user", &ada.id.to_string()))
            .await
    );
    assert_eq!(
        store.find_email_token(link.token_hash).await.expect("link"),
        None
    );
    let login = store
        .find_password_login(acme.id, "ada.king@acme.test")
        .await
        .expect("login")
        .expect("by the new email");
    assert_eq!(login.user, changed);

    // A taken email: nothing changes (the name given with it included), no entry.
    let entry = audit("user.update");
    assert_conflict(
        store
            .update_user(
                acme.id,
                ada.id,
                UserChanges {
                    email: Some("bob@acme.test".into()),
                    name: Some(Some("Mallory".into())),
                    ..UserChanges::default()
                },
                entry.clone(),
            )
            .await,
        "email",
    );
    assert_eq!(
        store.find_user(acme.id, ada.id).await.expect("find"),
        Some(changed.clone())
    );
    assert_eq!(audit_id_count(&raw, entry.id).await, 0);
    // Another tenant's, or nothing to change: no entry.
    let rename = UserChanges {
        name: Some(Some("Eve".into())),
        ..UserChanges::default()
    };
    assert_eq!(
        store
            .update_user(globex.id, ada.id, rename.clone(), audit("user.update"))
            .await
            .expect("elsewhere"),
        None
    );
    assert_eq!(
        store
            .update_user(
                acme.id,
                ada.id,
                UserChanges::default(),
                audit("user.update")
            )
            .await
            .expect("nothing"),
        Some(changed.clone())
    );
    assert_eq!(raw.audits("user.update").await, 2);

    // Deleted with everything of hers; not from another tenant.
    store
        .create_session(session_for(&ada, NOW), None)
        .await
        .expect("session");
    store
        .put_consent(store::Consent {
            user_id: ada.id,
            tenant_id: acme.id,
            client_id: APP.into(),
            scopes: vec!["openid".into()],
            granted_at: NOW,
        })
        .await
        .expect("consent");
    assert!(!store
        .delete_user(globex.id, ada.id, audit("user.delete"))
        .await
        .expect("elsewhere"));
    assert!(store.get_user(ada.id).await.expect("get").is_some());
    let entry = audit("user.delete");
    assert!(store
        .delete_user(acme.id, ada.id, entry.clone())
        .await
        .expect("delete"));
    assert!(
        raw.audited(&entry, acme.id, ("user", &ada.id.to_string()))
            .await
    );
    assert_eq!(store.get_user(ada.id).await.expect("get"), None);
    assert_eq!(
        store
            .find_refresh_token(refresh.token_hash)
            .await
            .expect("token"),
        None
    );
    for table in [
        "password_identities",
        "refresh_families",
        "refresh_tokens",
        "sessions",
        "consents",
        "email_tokens",
    ] {
        let sql = format!("SELECT count(*) FROM {table} WHERE CAST(user_id AS TEXT) = $1");
        assert_eq!(
            raw.count(&sql, &[&ada.id.to_string()]).await,
            0,
            "{table} keeps rows of a deleted user"
        );
    }
    assert!(!store
        .delete_user(acme.id, ada.id, audit("user.delete"))
        .await
        .expect("again"));
    assert_eq!(raw.audits("user.delete").await, 1);
    assert_eq!(
        store.find_user(acme.id, bob.id).await.expect("bob"),
        Some(bob)
    );
}

pub async fn admin_user_paging(store: Arc<dyn Store>, raw: Raw) {
    migrated(&store).await;
    let acme = tenant(&store, "acme").await;
    let globex = tenant(&store, "globex").await;
    // 23 users, three to a second (the id breaks the ties), every fourth disabled.
    let mut users = Vec::new();
    for i in 0..23i64 {
        let user = create(
            &store,
            &acme,
            &format!("user{i:02}@acme.test"),
            None,
            NOW + i / 3,
        )
        .await;
        if i % 4 == 0 {
            store
                .set_user_status(acme.id, user.id, true, None, NOW, audit("user.disable"))
                .await
                .expect("disable")
                .expect("the user");
        }
        users.push(user);
    }
    for i in 0..5 {
        create(&store, &globex, &format!("user{i:02}@acme.test"), None, NOW).await;
    }
    users.sort_by_key(|u| (u.created_at, u.id));
    let ids = |list: &[User]| list.iter().map(|u| u.id).collect::<Vec<_>>();

    let page_through = |filter: UserFilter, limit: u32| {
        let store = Arc::clone(&store);
        async move {
            let mut all: Vec<User> = Vec::new();
            let mut after = None;
            loop {
                let page = store
                    .list_users(UserQuery {
                        filter: filter.clone(),
                        after,
                        offset: 0,
                        limit,
                    })
                    .await
                    .expect("page");
                assert!(page.len() <= limit as usize);
                let Some(last) = page.last() else { break };
                after = Some((last.created_at, last.id));
                all.extend(page);
            }
            all
        }
    };
    let all = page_through(UserFilter::tenant(acme.id), 4).await;
    assert_eq!(ids(&all), ids(&users), "every user once, in order");
    assert!(all.iter().all(|u| u.tenant_id == acme.id));
    assert_eq!(
        store
            .count_users(UserFilter::tenant(acme.id))
            .await
            .expect("count"),
        23
    );
    assert_eq!(
        store
            .count_users(UserFilter::tenant(globex.id))
            .await
            .expect("count"),
        5
    );

    // Filters: a part of the email in any case, the status, both, paged the same.
    let cases = [
        (Some("USER1"), None),
        (Some("@ACME"), Some(UserStatus::Disabled)),
        (None, Some(UserStatus::Active)),
        (Some("2@"), Some(UserStatus::Active)),
        (Some("nobody"), None),
    ];
    for (email, status) in cases {
        let expected: Vec<User> = users
            .iter()
            .filter(|u| email.is_none_or(|e| u.email.contains(&e.to_lowercase())))
            .filter(|u| match status {
                Some(UserStatus::Disabled) => disabled(&u.email),
                Some(UserStatus::Active) => !disabled(&u.email),
                None => true,
            })
            .cloned()
            .collect();
        let filter = UserFilter {
            tenant_id: acme.id,
            email: email.map(str::to_owned),
            status,
        };
        let found = page_through(filter.clone(), 3).await;
        assert_eq!(ids(&found), ids(&expected), "{email:?} {status:?}");
        assert_eq!(
            store.count_users(filter).await.expect("count"),
            expected.len() as u64,
            "{email:?} {status:?}"
        );
    }
    // Past the last one: nothing.
    let last = users.last().expect("users");
    let past = store
        .list_users(UserQuery {
            filter: UserFilter::tenant(acme.id),
            after: Some((last.created_at, last.id)),
            offset: 0,
            limit: 10,
        })
        .await
        .expect("past the end");
    assert!(past.is_empty());
    assert_eq!(raw.audits("user.disable").await, 6);
}

/// Whether `user{i}@...` is one `admin_user_paging` disabled (every fourth).
fn disabled(email: &str) -> bool {
    email[4..6].parse::<i64>().is_ok_and(|i| i % 4 == 0)
}

pub async fn admin_passwords_and_status(store: Arc<dyn Store>, raw: Raw) {
    migrated(&store).await;
    let acme = tenant(&store, "acme").await;
    let globex = tenant(&store, "globex").await;
    let (ada, first) = register(&store, &acme, "ada@acme.test").await;
    let second = NewRefreshToken {
        token_hash: new_hash(),
        family_id: Uuid::new_v4(),
        ..first.clone()
    };
    store
        .insert_refresh_token(second.clone(), None)
        .await
        .expect("second family");
    let session = session_for(&ada, NOW);
    store
        .create_session(session.clone(), None)
        .await
        .expect("session");
    let link = super::super::email_token(&ada, EmailPurpose::Reset, NOW + 3600);
    super::super::issue(&store, &link, NOW * 1000).await;

    // A new password ends every sign-in and every reset link.
    let entry = audit("user.set_password");
    let revoked = store
        .set_password(acme.id, ada.id, HASH.into(), NOW + 5, entry.clone())
        .await
        .expect("set password");
    assert_eq!(revoked, Some(3));
    assert!(
        raw.audited(&entry, acme.id, ("user", &ada.id.to_string()))
            .await
    );
    assert!(raw.audit_revoked(entry.id, 3).await);
    let login = store
        .find_password_login(acme.id, "ada@acme.test")
        .await
        .expect("login")
        .expect("ada");
    assert_eq!(login.password_hash, HASH);
    assert_eq!(
        store
            .rotate_refresh_token(
                first.token_hash,
                APP,
                successor(&ada, NOW + 6),
                None,
                NOW + 6
            )
            .await
            .expect("rotate"),
        RotateOutcome::Revoked
    );
    assert_eq!(
        token(&store, second.token_hash).await.family_revoked_at,
        Some(NOW + 5)
    );
    let found = store
        .find_session(session.id_hash)
        .await
        .expect("session")
        .expect("kept, revoked");
    assert_eq!(found.revoked_at, Some(NOW + 5));
    let used = store
        .find_email_token(link.token_hash)
        .await
        .expect("link")
        .expect("kept, used");
    assert_eq!(used.used_at, Some(NOW + 5));

    // A user without a password gets one; another tenant's user is nobody here.
    let bob = create(&store, &acme, "bob@acme.test", None, NOW).await;
    assert_eq!(
        store
            .set_password(
                acme.id,
                bob.id,
                HASH.into(),
                NOW + 5,
                audit("user.set_password")
            )
            .await
            .expect("bob"),
        Some(0)
    );
    assert!(store
        .find_password_login(acme.id, "bob@acme.test")
        .await
        .expect("login")
        .is_some());
    assert_eq!(
        store
            .set_password(
                globex.id,
                ada.id,
                "$argon2id$other".into(),
                NOW,
                audit("user.set_password")
            )
            .await
            .expect("elsewhere"),
        None
    );
    assert_eq!(
        store
            .find_password_login(acme.id, "ada@acme.test")
            .await
            .expect("login")
            .expect("ada")
            .password_hash,
        HASH
    );
    assert_eq!(raw.audits("user.set_password").await, 2);

    // Disabled with a reason, which every reader of the user shows.
    let bob_session = session_for(&bob, NOW + 7);
    store
        .create_session(bob_session.clone(), None)
        .await
        .expect("bob's session");
    let entry = audit("user.disable");
    assert_eq!(
        store
            .set_user_status(
                acme.id,
                bob.id,
                true,
                Some("chargeback".into()),
                NOW + 8,
                entry.clone()
            )
            .await
            .expect("disable"),
        Some(1)
    );
    assert!(
        raw.audited(&entry, acme.id, ("user", &bob.id.to_string()))
            .await
    );
    assert!(raw.audit_revoked(entry.id, 1).await);
    let reason = Some("chargeback".to_string());
    let found = store
        .find_user(acme.id, bob.id)
        .await
        .expect("find")
        .expect("bob");
    assert!(found.disabled);
    assert_eq!(found.disabled_reason, reason);
    assert_eq!(
        store
            .get_user(bob.id)
            .await
            .expect("get")
            .expect("bob")
            .disabled_reason,
        reason
    );
    let session = store
        .find_session(bob_session.id_hash)
        .await
        .expect("session")
        .expect("bob's");
    assert_eq!(
        (session.revoked_at, session.user.disabled_reason),
        (Some(NOW + 8), reason.clone())
    );
    assert_eq!(
        store
            .list_users(UserQuery {
                filter: UserFilter {
                    tenant_id: acme.id,
                    email: None,
                    status: Some(UserStatus::Disabled),
                },
                after: None,
                offset: 0,
                limit: 10,
            })
            .await
            .expect("list")
            .into_iter()
            .map(|u| (u.id, u.disabled_reason))
            .collect::<Vec<_>>(),
        vec![(bob.id, reason.clone())]
    );
    // Not from another tenant.
    assert_eq!(
        store
            .set_user_status(
                globex.id,
                bob.id,
                false,
                None,
                NOW + 9,
                audit("user.enable")
            )
            .await
            .expect("elsewhere"),
        None
    );
    assert!(
        store
            .find_user(acme.id, bob.id)
            .await
            .expect("find")
            .expect("bob")
            .disabled
    );
    // Enabled: the reason goes (a reason given with it is ignored).
    assert_eq!(
        store
            .set_user_status(
                acme.id,
                bob.id,
                false,
                Some("ignored".into()),
                NOW + 9,
                audit("user.enable")
            )
            .await
            .expect("enable"),
        Some(0)
    );
    let enabled = store
        .find_user(acme.id, bob.id)
        .await
        .expect("find")
        .expect("bob");
    assert_eq!((enabled.disabled, enabled.disabled_reason), (false, None));
    // The older path (hj user disable) sets no reason and clears an earlier one.
    store
        .set_user_status(
            acme.id,
            bob.id,
            true,
            Some("spam".into()),
            NOW + 10,
            audit("user.disable"),
        )
        .await
        .expect("disable")
        .expect("bob");
    store
        .set_user_disabled(bob.id, true, NOW + 11)
        .await
        .expect("disable")
        .expect("bob");
    let again = store.get_user(bob.id).await.expect("get").expect("bob");
    assert_eq!((again.disabled, again.disabled_reason), (true, None));
    assert_eq!(raw.audits("user.disable").await, 2);
    assert_eq!(raw.audits("user.enable").await, 1);
}
