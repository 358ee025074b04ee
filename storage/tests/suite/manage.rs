//! Cases: the store side of the admin API. Here what they share (audit entries, reading rows
//! behind the store's back) and the directory's changes: audit entries on tenants and clients,
//! `update_tenant`, and `delete_tenant`, which leaves no row of the tenant in any table. Users
//! are in `users`, refresh families and sessions in `grants`.
//!
//! Audit entries are read with [`Raw`] (the audit log's reader is another branch's work): each
//! change writes exactly one, in its transaction, and a refused change none.

use store::{AuditEntry, ChallengeGrant, ChallengeKind, KeepSignIn, MfaChallenge, TenantChanges};

use super::webhooks::{draft, endpoint};
use super::*;

mod grants;
mod pages;
mod users;

pub use grants::*;
pub use pages::*;
pub use users::*;

impl Raw {
    /// `sql` as PostgreSQL spells it; SQLite runs it without its `::type` casts.
    fn spelled(&self, sql: &str) -> String {
        match self {
            Raw::Sqlite(_) => without_casts(sql),
            Raw::Postgres(_) => sql.to_owned(),
        }
    }

    /// Runs a change (parameters all text: cast them, `$1::text::uuid`). Returns the rows.
    pub async fn run(&self, sql: &str, params: &[&str]) -> u64 {
        self.exec(&self.spelled(sql), params).await
    }

    /// The one integer a query answers (parameters all text, compared as `CAST(col AS TEXT)`).
    pub async fn count(&self, sql: &str, params: &[&str]) -> i64 {
        let sql = self.spelled(sql);
        match self {
            Raw::Sqlite(path) => {
                let conn = rusqlite::Connection::open(path).expect("open the database");
                let sql = sql.replace('$', "?");
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
                    .query_one(&sql, &params)
                    .await
                    .unwrap_or_else(|e| panic!("{sql}: {e}"))
                    .get(0)
            }
        }
    }

    /// Audit entries of `action`.
    pub async fn audits(&self, action: &str) -> i64 {
        self.count(
            "SELECT count(*) FROM audit_log WHERE action = $1",
            &[action],
        )
        .await
    }

    /// Whether the entry `entry` was written once, about `target` (type, id) of `tenant`,
    /// with its actor and request as given.
    pub async fn audited(&self, entry: &AuditEntry, tenant: Uuid, target: (&str, &str)) -> bool {
        let n = self
            .count(
                "SELECT count(*) FROM audit_log WHERE CAST(id AS TEXT) = $1 AND action = $2 \
                 AND actor_type = $3 AND actor_id = $4 AND actor_name = $5 AND request_id = $6 \
                 AND CAST(tenant_id AS TEXT) = $7 AND target_type = $8 AND target_id = $9 \
                 AND result = 'success' AND created_at = CAST($10::text AS BIGINT)",
                &[
                    &entry.id.to_string(),
                    &entry.action,
                    &entry.actor_type,
                    entry.actor_id.as_deref().unwrap_or_default(),
                    entry.actor_name.as_deref().unwrap_or_default(),
                    entry.request_id.as_deref().unwrap_or_default(),
                    &tenant.to_string(),
                    target.0,
                    target.1,
                    &entry.created_at.to_string(),
                ],
            )
            .await;
        n == 1
    }

    /// Whether the entry `id`'s metadata has `"revoked": n`.
    pub async fn audit_revoked(&self, id: Uuid, n: u64) -> bool {
        self.count(
            "SELECT count(*) FROM audit_log WHERE CAST(id AS TEXT) = $1 \
             AND REPLACE(CAST(metadata AS TEXT), ' ', '') LIKE $2",
            &[&id.to_string(), &format!("%\"revoked\":{n}%")],
        )
        .await
            == 1
    }

    /// Writes an API key scoped `scope` (the API keys' own store is another branch's work).
    pub async fn api_key(&self, scope: &str) -> Uuid {
        let id = Uuid::new_v4();
        self.run(
            "INSERT INTO api_keys (id, name, key_prefix, key_hash, scope, created_by, created_at) \
             VALUES ($1::text::uuid, 'ops', 'hjk_12345678', $2::text::bytea, $3, 'cli', 1)",
            &[&id.to_string(), &id.simple().to_string(), scope],
        )
        .await;
        id
    }

    /// `(scope, revoked)` of an API key.
    pub async fn api_key_state(&self, id: Uuid, scope: &str) -> (bool, bool) {
        let id = id.to_string();
        let same_scope = self
            .count(
                "SELECT count(*) FROM api_keys WHERE CAST(id AS TEXT) = $1 AND scope = $2",
                &[&id, scope],
            )
            .await;
        let revoked = self
            .count(
                "SELECT count(*) FROM api_keys WHERE CAST(id AS TEXT) = $1 \
                 AND revoked_at IS NOT NULL",
                &[&id],
            )
            .await;
        (same_scope == 1, revoked == 1)
    }
}

/// `sql` without PostgreSQL's `::type` casts.
fn without_casts(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut rest = sql;
    while let Some(at) = rest.find("::") {
        out.push_str(&rest[..at]);
        rest = rest[at + 2..].trim_start_matches(|c: char| c.is_ascii_alphanumeric() || c == '_');
    }
    out.push_str(rest);
    out
}

/// An admin action's audit entry, with an actor and a request, and no target (the store
/// completes it).
pub fn audit(action: &str) -> AuditEntry {
    let mut entry = AuditEntry::new(action, "api_key", NOW);
    entry.actor_id = Some("key-1".into());
    entry.actor_name = Some("ops".into());
    entry.request_id = Some(Uuid::new_v4().simple().to_string());
    entry
}

/// Every audit entry, and the rows of every table.
async fn audit_rows(raw: &Raw) -> i64 {
    raw.count("SELECT count(*) FROM audit_log", &[]).await
}

pub async fn admin_directory_audits(store: Arc<dyn Store>, raw: Raw) {
    migrated(&store).await;
    // Without an entry (the embedded store's first start), nothing is audited.
    let globex = tenant(&store, "globex").await;
    assert_eq!(audit_rows(&raw).await, 0);

    let entry = audit("tenant.create");
    let acme = store
        .create_tenant("acme", "Acme", Default::default(), NOW, Some(entry.clone()))
        .await
        .expect("acme");
    let id = acme.id.to_string();
    assert!(raw.audited(&entry, acme.id, ("tenant", &id)).await);
    // A taken slug writes neither a tenant nor an entry.
    assert_conflict(
        store
            .create_tenant(
                "acme",
                "Acme 2",
                Default::default(),
                NOW,
                Some(audit("tenant.create")),
            )
            .await,
        "slug",
    );
    assert_eq!(raw.audits("tenant.create").await, 1);
    assert_eq!(store.list_tenants().await.expect("list").len(), 2);
    // A tenant made with settings has them from the start, at version 0.
    let settings = store::TenantSettings {
        session_lifetime_seconds: Some(7200),
        logo_url: Some("https://umbrella.example/logo.png".into()),
        ..Default::default()
    };
    let made = store
        .create_tenant("umbrella", "Umbrella", settings.clone(), NOW, None)
        .await
        .expect("umbrella");
    let found = store
        .find_tenant("umbrella")
        .await
        .expect("find")
        .expect("there");
    assert_eq!((found.settings, found.settings_version), (settings, 0));
    assert_eq!(made.settings_version, 0);

    let entry = audit("client.create");
    let web = store
        .create_client(
            NewClient::new(acme.id, "web", "Web"),
            NOW,
            Some(entry.clone()),
        )
        .await
        .expect("web");
    assert!(raw.audited(&entry, acme.id, ("client", "web")).await);
    assert_conflict(
        store
            .create_client(
                NewClient::new(acme.id, "web", "Web again"),
                NOW,
                Some(audit("client.create")),
            )
            .await,
        "client_id",
    );
    assert_eq!(raw.audits("client.create").await, 1);

    let entry = audit("client.update");
    let rename = store::ClientChanges {
        name: Some("Web app".into()),
        ..Default::default()
    };
    let renamed = store
        .update_client(acme.id, "web", rename.clone(), Some(entry.clone()))
        .await
        .expect("update")
        .expect("web exists");
    assert_eq!(renamed.name, "Web app");
    assert!(raw.audited(&entry, acme.id, ("client", "web")).await);
    // Another tenant's client, or none: nothing changes, nothing is audited.
    for (tenant_id, client_id) in [(globex.id, "web"), (acme.id, "nope")] {
        assert_eq!(
            store
                .update_client(
                    tenant_id,
                    client_id,
                    rename.clone(),
                    Some(audit("client.update"))
                )
                .await
                .expect("update"),
            None
        );
        assert!(!store
            .delete_client(tenant_id, client_id, Some(audit("client.delete")))
            .await
            .expect("delete"));
    }
    assert_eq!(raw.audits("client.update").await, 1);
    assert_eq!(raw.audits("client.delete").await, 0);

    let entry = audit("client.delete");
    assert!(store
        .delete_client(acme.id, "web", Some(entry.clone()))
        .await
        .expect("delete"));
    assert!(raw.audited(&entry, acme.id, ("client", "web")).await);
    assert!(!store
        .delete_client(acme.id, "web", Some(audit("client.delete")))
        .await
        .expect("delete again"));
    assert_eq!(raw.audits("client.delete").await, 1);
    assert_eq!(audit_rows(&raw).await, 4);
    assert_eq!(web.client_id, "web");

    // An entry whose id is already written fails the change with it: one transaction.
    let reused = store
        .create_tenant(
            "initech",
            "Initech",
            Default::default(),
            NOW,
            Some(entry.clone()),
        )
        .await;
    assert!(reused.is_err(), "{reused:?}");
    assert_eq!(store.find_tenant("initech").await.expect("find"), None);
}

pub async fn update_tenant(store: Arc<dyn Store>, raw: Raw) {
    migrated(&store).await;
    let acme = tenant(&store, "acme").await;
    let globex = tenant(&store, "globex").await;
    let acme_key = raw.api_key("tenant:acme").await;
    let globex_key = raw.api_key("tenant:globex").await;
    let admin_key = raw.api_key("admin").await;

    let entry = audit("tenant.update");
    let renamed = store
        .update_tenant(
            acme.id,
            TenantChanges {
                name: Some("Acme Corporation".into()),
                slug: None,
                issuer_mode: None,
            },
            entry.clone(),
        )
        .await
        .expect("rename")
        .expect("acme exists");
    assert_eq!(
        (renamed.id, renamed.slug.as_str(), renamed.name.as_str()),
        (acme.id, "acme", "Acme Corporation")
    );
    assert!(
        raw.audited(&entry, acme.id, ("tenant", &acme.id.to_string()))
            .await
    );
    assert_eq!(
        raw.api_key_state(acme_key, "tenant:acme").await,
        (true, false)
    );

    // A new slug: found by it, not by the old one; its API keys follow it.
    let moved = store
        .update_tenant(
            acme.id,
            TenantChanges {
                name: None,
                slug: Some("acme-corp".into()),
                issuer_mode: None,
            },
            audit("tenant.update"),
        )
        .await
        .expect("new slug")
        .expect("acme exists");
    assert_eq!(moved.slug, "acme-corp");
    assert_eq!(moved.name, "Acme Corporation");
    assert_eq!(store.find_tenant("acme").await.expect("find"), None);
    assert_eq!(
        store.find_tenant("acme-corp").await.expect("find"),
        Some(moved.clone())
    );
    assert_eq!(
        raw.api_key_state(acme_key, "tenant:acme-corp").await,
        (true, false)
    );
    assert_eq!(
        raw.api_key_state(globex_key, "tenant:globex").await,
        (true, false)
    );
    assert_eq!(raw.api_key_state(admin_key, "admin").await, (true, false));
    assert_eq!(raw.audits("tenant.update").await, 2);

    // A taken slug: nothing changes, the name given with it included; no entry.
    assert_conflict(
        store
            .update_tenant(
                acme.id,
                TenantChanges {
                    name: Some("Hijacked".into()),
                    slug: Some("globex".into()),
                    issuer_mode: None,
                },
                audit("tenant.update"),
            )
            .await,
        "slug",
    );
    assert_eq!(
        store.find_tenant(&acme.id.to_string()).await.expect("find"),
        Some(moved.clone())
    );
    assert_eq!(
        raw.api_key_state(acme_key, "tenant:acme-corp").await,
        (true, false)
    );
    // No such tenant, or nothing to change: no entry.
    assert_eq!(
        store
            .update_tenant(
                Uuid::new_v4(),
                TenantChanges::default(),
                audit("tenant.update")
            )
            .await
            .expect("unknown"),
        None
    );
    assert_eq!(
        store
            .update_tenant(globex.id, TenantChanges::default(), audit("tenant.update"))
            .await
            .expect("nothing"),
        Some(globex.clone())
    );
    assert_eq!(raw.audits("tenant.update").await, 2);
}

/// The tables with a `tenant_id` column, and the ones keyed by a user only.
const TENANT_TABLES: [&str; 16] = [
    "clients",
    "users",
    "refresh_families",
    "refresh_tokens",
    "sessions",
    "authorization_codes",
    "revoked_tokens",
    "consents",
    "mfa_challenges",
    "email_tokens",
    "mail_outbox",
    "webhook_endpoints",
    "webhook_events",
    "webhook_deliveries",
    "signing_keys",
    "audit_log",
];
const USER_TABLES: [&str; 4] = [
    "password_identities",
    "mfa_totp",
    "mfa_recovery_codes",
    "mfa_trusted_devices",
];

/// Rows per table of the tenant (`tenants` itself first), and of its users in the tables
/// keyed by a user only.
async fn rows_of(raw: &Raw, tenant: &Tenant, users: &[Uuid]) -> Vec<(&'static str, i64)> {
    let id = tenant.id.to_string();
    let mut rows = vec![(
        "tenants",
        raw.count(
            "SELECT count(*) FROM tenants WHERE CAST(id AS TEXT) = $1",
            &[&id],
        )
        .await,
    )];
    for table in TENANT_TABLES {
        let sql = format!("SELECT count(*) FROM {table} WHERE CAST(tenant_id AS TEXT) = $1");
        rows.push((table, raw.count(&sql, &[&id]).await));
    }
    for table in USER_TABLES {
        let mut n = 0;
        for user in users {
            let sql = format!("SELECT count(*) FROM {table} WHERE CAST(user_id AS TEXT) = $1");
            n += raw.count(&sql, &[&user.to_string()]).await;
        }
        rows.push((table, n));
    }
    rows
}

/// Gives the tenant a row in every table: a client, a user with everything a user can have
/// (password, refresh family, session, code, consent, TOTP factor, recovery codes, challenge,
/// remembered device, email token and its mail), a user without a password, a revoked access
/// token, a webhook endpoint with an event and its delivery, and its own signing key. Returns
/// its users.
async fn populate(store: &Arc<dyn Store>, tenant: &Tenant) -> Vec<Uuid> {
    store
        .create_client(NewClient::new(tenant.id, APP, "App"), NOW, None)
        .await
        .expect("client");
    endpoint(store, tenant, &["*"]).await;
    let (ada, _) = register(store, tenant, &format!("ada@{}.test", tenant.slug)).await;
    let bare = store
        .create_user(
            new_user(tenant, &format!("bare@{}.test", tenant.slug)),
            None,
            false,
            store::Metadata::empty(),
            NOW,
            audit("user.create"),
        )
        .await
        .expect("user without password");
    store
        .create_session(session_for(&ada, NOW), Some(draft("user.login", None, NOW)))
        .await
        .expect("session");
    store
        .insert_auth_code(store::NewAuthCode {
            code_hash: new_hash(),
            code: store::AuthCode {
                tenant_id: tenant.id,
                client_id: APP.into(),
                user_id: ada.id,
                redirect_uri: "https://app.example/cb".into(),
                scopes: vec!["openid".into()],
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
        })
        .await
        .expect("code");
    store
        .revoke_access_token(&Uuid::new_v4().to_string(), tenant.id, NOW + 600, NOW)
        .await
        .expect("revoked access token");
    store
        .put_consent(store::Consent {
            user_id: ada.id,
            tenant_id: tenant.id,
            client_id: APP.into(),
            scopes: vec!["openid".into()],
            granted_at: NOW,
        })
        .await
        .expect("consent");
    assert!(store
        .put_totp_secret(ada.id, vec![1; 40], NOW)
        .await
        .expect("secret"));
    assert!(store
        .confirm_totp(
            ada.id,
            100,
            vec![new_hash(), new_hash()],
            KeepSignIn::default(),
            None,
            NOW
        )
        .await
        .expect("confirm"));
    let challenge = |kind| MfaChallenge {
        token_hash: new_hash(),
        user_id: ada.id,
        tenant_id: tenant.id,
        client_id: APP.into(),
        kind,
        failures: 0,
        expires_at: NOW + 300,
        completed_at: None,
        created_at: NOW,
    };
    let done = challenge(ChallengeKind::Session);
    store
        .insert_mfa_challenge(done.clone())
        .await
        .expect("challenge");
    store
        .insert_mfa_challenge(challenge(ChallengeKind::Tokens))
        .await
        .expect("open challenge");
    assert!(store
        .complete_mfa_challenge(
            done.token_hash,
            5,
            ChallengeGrant {
                session: Some(session_for(&ada, NOW)),
                trusted_device: Some((new_hash(), NOW + 3600)),
                ..ChallengeGrant::default()
            },
            NOW,
        )
        .await
        .expect("complete"));
    let token = super::email_token(&ada, store::EmailPurpose::Verify, NOW + 3600);
    super::issue(store, &token, NOW * 1000).await;
    store
        .insert_signing_key_if_none(SigningKey {
            kid: format!("{}-key", tenant.slug),
            alg: store::SigningAlg::EdDsa,
            public_key: vec![1; 32],
            private_key_encrypted: vec![2; 40],
            created_at: NOW,
            activates_at: NOW,
            retired_at: None,
            tenant_id: Some(tenant.id),
        })
        .await
        .expect("the tenant's key");
    vec![ada.id, bare.id]
}

pub async fn delete_tenant_leaves_nothing(store: Arc<dyn Store>, raw: Raw) {
    migrated(&store).await;
    let acme = tenant(&store, "acme").await;
    let globex = tenant(&store, "globex").await;
    let acme_users = populate(&store, &acme).await;
    let globex_users = populate(&store, &globex).await;
    let acme_key = raw.api_key("tenant:acme").await;
    let globex_key = raw.api_key("tenant:globex").await;
    let global_key = store
        .insert_signing_key_if_none(SigningKey {
            kid: "global".into(),
            alg: store::SigningAlg::EdDsa,
            public_key: vec![3; 32],
            private_key_encrypted: vec![4; 40],
            created_at: NOW,
            activates_at: NOW,
            retired_at: None,
            tenant_id: None,
        })
        .await
        .expect("global key");

    let before = rows_of(&raw, &acme, &acme_users).await;
    for (table, n) in &before {
        assert!(
            *n > 0,
            "acme has no row in {table}: the case proves nothing there"
        );
    }
    let globex_before = rows_of(&raw, &globex, &globex_users).await;

    // Another tenant's id deletes nothing and audits nothing.
    assert!(!store
        .delete_tenant(Uuid::new_v4(), audit("tenant.delete"))
        .await
        .expect("unknown"));
    assert_eq!(raw.audits("tenant.delete").await, 0);

    let entry = audit("tenant.delete");
    assert!(store
        .delete_tenant(acme.id, entry.clone())
        .await
        .expect("delete"));
    assert!(
        raw.audited(&entry, acme.id, ("tenant", &acme.id.to_string()))
            .await
    );
    let after = rows_of(&raw, &acme, &acme_users).await;
    for ((table, n), (_, was)) in after.iter().zip(&before) {
        let expected = match *table {
            // The entries about it stay, and its deletion's is one more.
            "audit_log" => was + 1,
            _ => 0,
        };
        assert_eq!(*n, expected, "rows of the deleted tenant left in {table}");
    }
    // No row anywhere names a user or a family that no longer exists.
    for (table, column) in [
        ("password_identities", "user_id"),
        ("refresh_families", "user_id"),
        ("refresh_tokens", "user_id"),
        ("sessions", "user_id"),
        ("authorization_codes", "user_id"),
        ("consents", "user_id"),
        ("mfa_totp", "user_id"),
        ("mfa_recovery_codes", "user_id"),
        ("mfa_challenges", "user_id"),
        ("mfa_trusted_devices", "user_id"),
        ("email_tokens", "user_id"),
    ] {
        let sql =
            format!("SELECT count(*) FROM {table} WHERE {column} NOT IN (SELECT id FROM users)");
        assert_eq!(raw.count(&sql, &[]).await, 0, "orphans in {table}");
    }
    assert_eq!(
        raw.count(
            "SELECT count(*) FROM refresh_tokens WHERE family_id NOT IN \
             (SELECT id FROM refresh_families)",
            &[]
        )
        .await,
        0
    );
    // The other tenant is untouched, and so are the global keys.
    assert_eq!(rows_of(&raw, &globex, &globex_users).await, globex_before);
    assert_eq!(store.find_tenant("acme").await.expect("find"), None);
    assert_eq!(
        store.find_tenant("globex").await.expect("find"),
        Some(globex.clone())
    );
    let kids: Vec<String> = store
        .list_signing_keys()
        .await
        .expect("keys")
        .into_iter()
        .map(|k| k.kid)
        .collect();
    assert!(kids.contains(&"global".to_string()) && kids.contains(&"globex-key".to_string()));
    assert!(!kids.contains(&"acme-key".to_string()), "{kids:?}");
    assert_eq!(global_key.len(), 1);
    // Its API keys are revoked: none reaches a tenant later created with its slug.
    assert_eq!(
        raw.api_key_state(acme_key, "tenant:acme").await,
        (true, true)
    );
    assert_eq!(
        raw.api_key_state(globex_key, "tenant:globex").await,
        (true, false)
    );
    // Deleting it again does nothing.
    assert!(!store
        .delete_tenant(acme.id, audit("tenant.delete"))
        .await
        .expect("again"));
    assert_eq!(raw.audits("tenant.delete").await, 1);
    // And the slug is free again.
    tenant(&store, "acme").await;
}
