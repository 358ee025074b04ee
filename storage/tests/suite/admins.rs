//! Cases: admin accounts, their refresh tokens and TOTP factor. Every change an operator makes
//! writes its audit entry in the change's transaction, once, and only when the change applied;
//! the cases count the rows of `audit_log` behind the store's back ([`Raw`]).

use store::{AdminAccount, AdminChanges, AdminRefresh, AuditEntry, EventMeta, NewAdmin};

use super::*;

const HOUR: i64 = 3600;

impl Raw {
    /// The number `sql` answers (a `count(*)`); its parameters `$1`, `$2`, ... are all text.
    async fn number(&self, sql: &str, params: &[&str]) -> i64 {
        match self {
            Raw::Sqlite(path) => {
                let conn = rusqlite::Connection::open(path).expect("open the database");
                // `$1` → `?1`; a `$` of a JSON path stays.
                let mut sql = sql.to_owned();
                for i in (1..=params.len()).rev() {
                    sql = sql.replace(&format!("${i}"), &format!("?{i}"));
                }
                conn.query_row(&sql, rusqlite::params_from_iter(params.iter()), |row| {
                    row.get(0)
                })
                .unwrap_or_else(|e| panic!("{sql}: {e}"))
            }
            Raw::Postgres(url) => {
                let client = testkit::pg::admin(url).await;
                let params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = params
                    .iter()
                    .map(|p| p as &(dyn tokio_postgres::types::ToSql + Sync))
                    .collect();
                client
                    .query_one(sql, &params)
                    .await
                    .unwrap_or_else(|e| panic!("{sql}: {e}"))
                    .get(0)
            }
        }
    }

    /// How many audit entries there are in all.
    async fn all_audits(&self) -> i64 {
        self.number("SELECT count(*) FROM audit_log", &[]).await
    }

    /// How many refresh tokens of the account are not revoked.
    async fn unrevoked(&self, admin: &AdminAccount) -> i64 {
        self.number(
            "SELECT count(*) FROM admin_refresh_tokens \
             WHERE CAST(admin_id AS TEXT) = $1 AND revoked_at IS NULL",
            &[&admin.id.to_string()],
        )
        .await
    }
}

/// An operator's audit entry about the admin `target`, by the admin `Root`.
fn audit(action: &str, target: Uuid) -> AuditEntry {
    let mut metadata = EventMeta::new();
    metadata.insert("reason", "test");
    AuditEntry {
        id: Uuid::now_v7(),
        tenant_id: None,
        action: action.into(),
        actor_type: "admin".into(),
        actor_id: Some("root-id".into()),
        actor_name: Some("Root".into()),
        target_type: Some("admin".into()),
        target_id: Some(target.to_string()),
        ip_address: Some("192.0.2.1".into()),
        user_agent: Some("curl/8".into()),
        request_id: Some("req-1".into()),
        metadata,
        result: "success".into(),
        created_at: NOW,
    }
}

/// `Conflict(what)`, named exactly as the engine matches it.
fn assert_exact_conflict<T: std::fmt::Debug>(result: Result<T, StoreError>, what: &str) {
    match result {
        Err(StoreError::Conflict(named)) => assert_eq!(named, what),
        other => panic!("expected Conflict({what}), got {other:?}"),
    }
}

fn new_admin(email: &str, created_at: i64) -> NewAdmin {
    NewAdmin {
        id: Uuid::new_v4(),
        email: email.into(),
        name: Some("Grace Hopper".into()),
        scope: "admin".into(),
        password_hash: "$argon2id$v=19$admin".into(),
        created_at,
    }
}

async fn create(store: &Arc<dyn Store>, email: &str, created_at: i64) -> AdminAccount {
    let admin = new_admin(email, created_at);
    store
        .create_admin(admin.clone(), audit("admin.create", admin.id))
        .await
        .expect("create admin")
}

/// Stores a sign-in's refresh token of `admin`, live for an hour from `now`.
async fn signed_in(store: &Arc<dyn Store>, admin: &AdminAccount, now: i64) -> TokenHash {
    let hash = new_hash();
    store
        .insert_admin_refresh(
            hash,
            admin.id,
            now,
            now + HOUR,
            audit("admin.login", admin.id),
        )
        .await
        .expect("insert admin refresh");
    hash
}

async fn rotate(store: &Arc<dyn Store>, old: TokenHash, now: i64) -> (AdminRefresh, TokenHash) {
    let new = new_hash();
    let outcome = store
        .rotate_admin_refresh(old, new, now, now + HOUR)
        .await
        .expect("rotate admin refresh");
    (outcome, new)
}

pub async fn admin_accounts(store: Arc<dyn Store>, raw: Raw) {
    migrated(&store).await;
    assert!(store.list_admins().await.expect("list").is_empty());

    let new = new_admin("ada@ops.test", NOW);
    let entry = audit("admin.create", new.id);
    let ada = store
        .create_admin(new.clone(), entry.clone())
        .await
        .expect("create");
    assert_eq!(
        ada,
        AdminAccount {
            id: new.id,
            email: "ada@ops.test".into(),
            name: Some("Grace Hopper".into()),
            scope: "admin".into(),
            mfa_enabled: false,
            last_seen_at: None,
            disabled_at: None,
            created_at: NOW,
            updated_at: NOW,
        }
    );
    assert_eq!(
        store.get_admin(ada.id).await.expect("get"),
        Some(ada.clone())
    );
    assert_eq!(store.get_admin(Uuid::new_v4()).await.expect("get"), None);
    // The entry is written as given, every column.
    let metadata = match raw {
        Raw::Sqlite(_) => "json_extract(metadata, '$.reason')",
        Raw::Postgres(_) => "metadata->>'reason'",
    };
    let exact = raw
        .number(
            &format!(
                "SELECT count(*) FROM audit_log WHERE CAST(id AS TEXT) = $1 \
                 AND tenant_id IS NULL AND action = 'admin.create' AND actor_type = 'admin' \
                 AND actor_id = 'root-id' AND actor_name = 'Root' AND target_type = 'admin' \
                 AND target_id = $2 AND ip_address = '192.0.2.1' AND user_agent = 'curl/8' \
                 AND request_id = 'req-1' AND {metadata} = 'test' AND result = 'success' \
                 AND created_at = {NOW}"
            ),
            &[&entry.id.to_string(), &ada.id.to_string()],
        )
        .await;
    assert_eq!(exact, 1);

    // A taken email writes nothing: no account, no audit entry.
    assert_exact_conflict(
        store
            .create_admin(
                new_admin("ada@ops.test", NOW),
                audit("admin.create", ada.id),
            )
            .await,
        "email",
    );
    assert_eq!(raw.audits("admin.create").await, 1);

    // Emails are stored as given (the engine normalises them) and listed oldest first.
    let bob = create(&store, "Bob@Ops.test", NOW + 1).await;
    assert_eq!(
        store.list_admins().await.expect("list"),
        vec![ada.clone(), bob.clone()]
    );
    let login = store
        .find_admin_login("Bob@Ops.test")
        .await
        .expect("find login")
        .expect("bob signs in");
    assert_eq!(login.admin, bob);
    assert_eq!(login.password_hash, "$argon2id$v=19$admin");
    assert!(store
        .find_admin_login("bob@ops.test")
        .await
        .expect("find login")
        .is_none());

    // Updates: `None` keeps a field, `Some(None)` clears the name.
    let renamed = store
        .update_admin(
            ada.id,
            AdminChanges {
                name: Some(None),
                scope: Some("readonly".into()),
                ..AdminChanges::default()
            },
            NOW + 10,
            audit("admin.update", ada.id),
        )
        .await
        .expect("update")
        .expect("ada exists");
    assert_eq!(
        renamed,
        AdminAccount {
            name: None,
            scope: "readonly".into(),
            updated_at: NOW + 10,
            ..ada.clone()
        }
    );
    assert_eq!(raw.audits("admin.update").await, 1);
    // A taken email, or an unknown account, changes and audits nothing.
    assert_exact_conflict(
        store
            .update_admin(
                ada.id,
                AdminChanges {
                    email: Some("Bob@Ops.test".into()),
                    name: Some(Some("Taken".into())),
                    ..AdminChanges::default()
                },
                NOW + 11,
                audit("admin.update", ada.id),
            )
            .await,
        "email",
    );
    assert_eq!(
        store.get_admin(ada.id).await.expect("get"),
        Some(renamed.clone())
    );
    assert_eq!(
        store
            .update_admin(
                Uuid::new_v4(),
                AdminChanges::default(),
                NOW + 11,
                audit("admin.update", ada.id)
            )
            .await
            .expect("update unknown"),
        None
    );
    assert_eq!(raw.audits("admin.update").await, 1);

    // A new password revokes every refresh token of the account, and only of it.
    let (first, second) = (
        signed_in(&store, &ada, NOW).await,
        signed_in(&store, &ada, NOW).await,
    );
    let bobs = signed_in(&store, &bob, NOW).await;
    let moved = store
        .update_admin(
            ada.id,
            AdminChanges {
                email: Some("ada@new.test".into()),
                password_hash: Some("$argon2id$v=19$new".into()),
                ..AdminChanges::default()
            },
            NOW + 20,
            audit("admin.update", ada.id),
        )
        .await
        .expect("update password")
        .expect("ada exists");
    assert_eq!(moved.email, "ada@new.test");
    assert_eq!(raw.unrevoked(&ada).await, 0);
    assert_eq!(raw.unrevoked(&bob).await, 1);
    for token in [first, second] {
        assert_eq!(
            rotate(&store, token, NOW + 30).await.0,
            AdminRefresh::Invalid
        );
    }
    assert!(matches!(
        rotate(&store, bobs, NOW + 30).await.0,
        AdminRefresh::Rotated(_)
    ));
    let login = store
        .find_admin_login("ada@new.test")
        .await
        .expect("find login")
        .expect("ada under her new email");
    assert_eq!(login.password_hash, "$argon2id$v=19$new");
    assert!(store
        .find_admin_login("ada@ops.test")
        .await
        .expect("find login")
        .is_none());

    // `last_seen_at`: set when unset, then at most once a minute.
    store.touch_admin(ada.id, NOW + 100).await.expect("touch");
    store.touch_admin(ada.id, NOW + 160).await.expect("touch");
    let seen = |a: Option<AdminAccount>| a.expect("ada").last_seen_at;
    assert_eq!(
        seen(store.get_admin(ada.id).await.expect("get")),
        Some(NOW + 100)
    );
    store.touch_admin(ada.id, NOW + 161).await.expect("touch");
    assert_eq!(
        seen(store.get_admin(ada.id).await.expect("get")),
        Some(NOW + 161)
    );
    store
        .touch_admin(Uuid::new_v4(), NOW)
        .await
        .expect("touch unknown");

    // Deleting takes the refresh tokens and the factor with the account; once.
    store
        .put_admin_totp(bob.id, vec![7; 40], NOW)
        .await
        .expect("put totp");
    assert!(store
        .delete_admin(bob.id, audit("admin.delete", bob.id))
        .await
        .expect("delete"));
    assert_eq!(store.get_admin(bob.id).await.expect("get"), None);
    assert_eq!(store.find_admin_totp(bob.id).await.expect("totp"), None);
    let tokens = raw
        .number(
            "SELECT count(*) FROM admin_refresh_tokens WHERE CAST(admin_id AS TEXT) = $1",
            &[&bob.id.to_string()],
        )
        .await;
    assert_eq!(tokens, 0);
    assert!(!store
        .delete_admin(bob.id, audit("admin.delete", bob.id))
        .await
        .expect("delete again"));
    assert_eq!(store.list_admins().await.expect("list").len(), 1);

    // Exactly one entry per applied change: 2 creations, 2 updates, 1 deletion.
    assert_eq!(raw.audits("admin.create").await, 2);
    assert_eq!(raw.audits("admin.update").await, 2);
    assert_eq!(raw.audits("admin.delete").await, 1);
    assert_eq!(raw.audits("admin.login").await, 3);
    assert_eq!(raw.all_audits().await, 8);
}

pub async fn admin_refresh_rotation(store: Arc<dyn Store>, raw: Raw) {
    migrated(&store).await;
    let ada = create(&store, "ada@ops.test", NOW).await;
    let bob = create(&store, "bob@ops.test", NOW).await;

    // Each rotation uses its token and answers the account as it stands.
    let first = signed_in(&store, &ada, NOW).await;
    let (outcome, second) = rotate(&store, first, NOW + 10).await;
    assert_eq!(outcome, AdminRefresh::Rotated(ada.clone()));
    let (outcome, third) = rotate(&store, second, NOW + 20).await;
    assert_eq!(outcome, AdminRefresh::Rotated(ada.clone()));
    let other_session = signed_in(&store, &ada, NOW + 20).await;
    let bobs = signed_in(&store, &bob, NOW + 20).await;
    assert_eq!(raw.unrevoked(&ada).await, 4);

    // A replay of a used token revokes every token of the account (not another's); a second
    // replay then finds it revoked.
    assert_eq!(
        rotate(&store, first, NOW + 30).await.0,
        AdminRefresh::Reused
    );
    assert_eq!(raw.unrevoked(&ada).await, 0);
    assert_eq!(raw.unrevoked(&bob).await, 1);
    for token in [third, other_session, first] {
        assert_eq!(
            rotate(&store, token, NOW + 40).await.0,
            AdminRefresh::Invalid
        );
    }
    // A used token is a replay even after it expired.
    let (outcome, _) = rotate(&store, bobs, NOW + 50).await;
    assert!(matches!(outcome, AdminRefresh::Rotated(_)));
    assert_eq!(
        rotate(&store, bobs, NOW + 10 * HOUR).await.0,
        AdminRefresh::Reused
    );

    // Unknown and expired tokens change nothing.
    assert_eq!(
        rotate(&store, new_hash(), NOW).await.0,
        AdminRefresh::Invalid
    );
    let live = signed_in(&store, &ada, NOW).await;
    assert_eq!(
        rotate(&store, live, NOW + HOUR).await.0,
        AdminRefresh::Invalid
    );
    assert_eq!(raw.unrevoked(&ada).await, 1);
    let (outcome, live) = rotate(&store, live, NOW + HOUR - 1).await;
    assert!(matches!(outcome, AdminRefresh::Rotated(_)));

    // A sign-out revokes a live token only; its replay is not a reuse.
    assert!(!store
        .revoke_admin_refresh(new_hash(), NOW)
        .await
        .expect("revoke unknown"));
    let used = signed_in(&store, &ada, NOW).await;
    let (_, successor) = rotate(&store, used, NOW + 1).await;
    assert!(!store
        .revoke_admin_refresh(used, NOW + 2)
        .await
        .expect("revoke used"));
    assert!(store
        .revoke_admin_refresh(successor, NOW + 2)
        .await
        .expect("sign out"));
    assert!(!store
        .revoke_admin_refresh(successor, NOW + 3)
        .await
        .expect("sign out again"));
    assert_eq!(
        rotate(&store, successor, NOW + 4).await.0,
        AdminRefresh::Invalid
    );
    // `live`, and the two used ones (a used token is not revoked unless replayed).
    assert_eq!(raw.unrevoked(&ada).await, 3);

    // Disabling revokes every token; the account's tokens are refused, and stay revoked once
    // it is enabled again. Only a change of state writes an entry.
    let before_disable = signed_in(&store, &ada, NOW).await;
    let disabled = store
        .set_admin_disabled(ada.id, true, NOW + 60, audit("admin.disable", ada.id))
        .await
        .expect("disable")
        .expect("ada exists");
    assert_eq!(disabled.disabled_at, Some(NOW + 60));
    assert_eq!(disabled.updated_at, NOW + 60);
    assert_eq!(raw.unrevoked(&ada).await, 0);
    assert_eq!(
        rotate(&store, live, NOW + 61).await.0,
        AdminRefresh::Invalid
    );
    let while_disabled = signed_in(&store, &ada, NOW + 61).await;
    assert_eq!(
        rotate(&store, while_disabled, NOW + 62).await.0,
        AdminRefresh::Invalid
    );
    assert_eq!(
        store
            .set_admin_disabled(ada.id, true, NOW + 70, audit("admin.disable", ada.id))
            .await
            .expect("disable again"),
        Some(disabled.clone())
    );
    let enabled = store
        .set_admin_disabled(ada.id, false, NOW + 80, audit("admin.enable", ada.id))
        .await
        .expect("enable")
        .expect("ada exists");
    assert_eq!(enabled.disabled_at, None);
    assert_eq!(enabled.updated_at, NOW + 80);
    assert_eq!(
        rotate(&store, before_disable, NOW + 81).await.0,
        AdminRefresh::Invalid
    );
    let (outcome, _) = rotate(&store, while_disabled, NOW + 81).await;
    assert_eq!(outcome, AdminRefresh::Rotated(enabled.clone()));
    assert_eq!(
        store
            .set_admin_disabled(Uuid::new_v4(), true, NOW, audit("admin.disable", ada.id))
            .await
            .expect("disable unknown"),
        None
    );

    // A token stored twice is a conflict, and its audit entry goes with it.
    let logins = raw.audits("admin.login").await;
    assert!(store
        .insert_admin_refresh(
            while_disabled,
            ada.id,
            NOW,
            NOW + HOUR,
            audit("admin.login", ada.id)
        )
        .await
        .is_err());
    assert_eq!(raw.audits("admin.login").await, logins);

    // Rotations, replays and sign-outs write no entry; each applied change one.
    assert_eq!(raw.audits("admin.disable").await, 1);
    assert_eq!(raw.audits("admin.enable").await, 1);
    assert_eq!(logins, 7);
    assert_eq!(raw.all_audits().await, 2 + logins + 2);
}

pub async fn admin_totp(store: Arc<dyn Store>, raw: Raw) {
    migrated(&store).await;
    let ada = create(&store, "ada@ops.test", NOW).await;
    let mfa = |a: Option<AdminAccount>| a.expect("ada").mfa_enabled;

    // Enrolment: an unconfirmed factor is replaced at will; no code has been used yet.
    assert_eq!(store.find_admin_totp(ada.id).await.expect("find"), None);
    store
        .put_admin_totp(ada.id, vec![1; 40], NOW)
        .await
        .expect("put");
    store
        .put_admin_totp(ada.id, vec![2; 40], NOW + 1)
        .await
        .expect("put again");
    let factor = store
        .find_admin_totp(ada.id)
        .await
        .expect("find")
        .expect("enrolled");
    assert_eq!(
        (factor.secret_sealed, factor.confirmed_at, factor.last_step),
        (vec![2; 40], None, None)
    );
    assert!(!mfa(store.get_admin(ada.id).await.expect("get")));

    // The first code confirms the factor (any step) and turns MFA on.
    assert!(store
        .use_admin_totp(
            ada.id,
            100,
            NOW + 2,
            Some(audit("admin.mfa_enable", ada.id))
        )
        .await
        .expect("confirm"));
    let factor = store
        .find_admin_totp(ada.id)
        .await
        .expect("find")
        .expect("confirmed");
    assert_eq!(
        (factor.confirmed_at, factor.last_step),
        (Some(NOW + 2), Some(100))
    );
    assert!(mfa(store.get_admin(ada.id).await.expect("get")));
    assert_eq!(raw.audits("admin.mfa_enable").await, 1);

    // A confirmed factor is not replaced.
    assert_exact_conflict(
        store.put_admin_totp(ada.id, vec![3; 40], NOW + 3).await,
        "totp",
    );
    let factor = store.find_admin_totp(ada.id).await.expect("find");
    assert_eq!(factor.expect("kept").secret_sealed, vec![2; 40]);

    // Later codes: only a later step than the last one, each once. A refused step writes no
    // entry.
    for step in [100, 99] {
        assert!(!store
            .use_admin_totp(ada.id, step, NOW + 4, Some(audit("admin.mfa_use", ada.id)))
            .await
            .expect("an old step"));
    }
    assert_eq!(raw.audits("admin.mfa_use").await, 0);
    assert!(store
        .use_admin_totp(ada.id, 101, NOW + 5, Some(audit("admin.mfa_use", ada.id)))
        .await
        .expect("a later step"));
    assert!(store
        .use_admin_totp(ada.id, 102, NOW + 6, None)
        .await
        .expect("a later step, no entry"));
    let factor = store
        .find_admin_totp(ada.id)
        .await
        .expect("find")
        .expect("confirmed");
    assert_eq!(
        (factor.confirmed_at, factor.last_step),
        (Some(NOW + 2), Some(102))
    );
    assert_eq!(raw.audits("admin.mfa_use").await, 1);

    // Removal clears the flag, once.
    assert!(store
        .delete_admin_totp(ada.id, audit("admin.mfa_disable", ada.id))
        .await
        .expect("delete"));
    assert_eq!(store.find_admin_totp(ada.id).await.expect("find"), None);
    assert!(!mfa(store.get_admin(ada.id).await.expect("get")));
    assert!(!store
        .delete_admin_totp(ada.id, audit("admin.mfa_disable", ada.id))
        .await
        .expect("delete again"));
    assert!(!store
        .use_admin_totp(ada.id, 200, NOW + 7, Some(audit("admin.mfa_use", ada.id)))
        .await
        .expect("no factor"));

    // A new factor starts over: its first code may have any step.
    store
        .put_admin_totp(ada.id, vec![4; 40], NOW + 8)
        .await
        .expect("enrol again");
    assert!(store
        .use_admin_totp(ada.id, 5, NOW + 9, None)
        .await
        .expect("confirm again"));
    assert!(mfa(store.get_admin(ada.id).await.expect("get")));

    // No account: nothing to enrol, nothing written.
    let nobody = Uuid::new_v4();
    store
        .put_admin_totp(nobody, vec![5; 40], NOW)
        .await
        .expect("put for no account");
    assert_eq!(store.find_admin_totp(nobody).await.expect("find"), None);

    assert_eq!(raw.audits("admin.mfa_disable").await, 1);
    assert_eq!(raw.all_audits().await, 1 + 1 + 1 + 1);
}

/// Concurrent rotations of one token: exactly one rotates, the next is a replay that revokes
/// every token of the account, and the others find the token revoked; concurrent uses of one
/// TOTP step: exactly one applies.
pub async fn concurrent_admin_rotation_and_totp(store: Arc<dyn Store>) {
    migrated(&store).await;
    let ada = create(&store, "ada@ops.test", NOW).await;
    let token = signed_in(&store, &ada, NOW).await;
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let store = Arc::clone(&store);
            tokio::spawn(async move { rotate(&store, token, NOW + 1).await })
        })
        .collect();
    let (mut rotated, mut reused, mut invalid) = (Vec::new(), 0, 0);
    for task in tasks {
        match task.await.expect("task") {
            (AdminRefresh::Rotated(_), new) => rotated.push(new),
            (AdminRefresh::Reused, _) => reused += 1,
            (AdminRefresh::Invalid, _) => invalid += 1,
        }
    }
    assert_eq!((rotated.len(), reused, invalid), (1, 1, 6));
    assert_eq!(
        rotate(&store, rotated[0], NOW + 2).await.0,
        AdminRefresh::Invalid,
        "revoked by the replays"
    );

    store
        .put_admin_totp(ada.id, vec![1; 40], NOW)
        .await
        .expect("put");
    assert!(store
        .use_admin_totp(ada.id, 10, NOW, None)
        .await
        .expect("confirm"));
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let store = Arc::clone(&store);
            let id = ada.id;
            tokio::spawn(async move { store.use_admin_totp(id, 11, NOW + 1, None).await })
        })
        .collect();
    let mut applied = 0;
    for task in tasks {
        if task.await.expect("task").expect("use step") {
            applied += 1;
        }
    }
    assert_eq!(applied, 1);
}
