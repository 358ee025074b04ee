//! [`UserAdmin`] on PostgreSQL: users as the admin API manages them, each change with its
//! audit entry in one transaction, every lookup scoped by the tenant.

use super::error::db;
use store::UserAdmin;
use tokio_postgres::types::Type;
use tokio_postgres::{Client, GenericClient, Transaction};
use uuid::Uuid;

use super::params::Params;
use super::user_row::{user_from, USER_COLUMNS};
use super::{audit_row, refresh, PgStore};
use crate::{
    AuditEntry, Metadata, NewUser, StoreError, StoreFuture, User, UserChanges, UserFilter,
    UserQuery, UserStatus,
};

impl UserAdmin for PgStore {
    fn find_user(&self, tenant_id: Uuid, user_id: Uuid) -> StoreFuture<'_, Option<User>> {
        self.call("find_user", move |c| {
            Box::pin(async move { find_user(&*c, tenant_id, user_id, "").await })
        })
    }

    fn list_users(&self, query: UserQuery) -> StoreFuture<'_, Vec<User>> {
        self.call("list_users", move |c| {
            Box::pin(async move { list_users(c, &query).await })
        })
    }

    fn count_users(&self, filter: UserFilter) -> StoreFuture<'_, u64> {
        self.call("count_users", move |c| {
            Box::pin(async move { count_users(c, &filter).await })
        })
    }

    fn create_user(
        &self,
        user: NewUser,
        password_hash: Option<String>,
        email_verified: bool,
        app_metadata: Metadata,
        now: i64,
        audit: AuditEntry,
    ) -> StoreFuture<'_, User> {
        let user = User {
            id: user.id,
            tenant_id: user.tenant_id,
            email: user.email,
            email_verified,
            name: user.name,
            custom_fields: user.custom_fields,
            app_metadata,
            disabled: false,
            disabled_reason: None,
            mfa_enabled: false,
            created_at: now,
        };
        self.call("create_user", move |c| {
            Box::pin(async move { create_user(c, user, password_hash, audit).await })
        })
    }

    fn update_user(
        &self,
        tenant_id: Uuid,
        user_id: Uuid,
        changes: UserChanges,
        audit: AuditEntry,
    ) -> StoreFuture<'_, Option<User>> {
        self.call("update_user", move |c| {
            Box::pin(async move { update_user(c, tenant_id, user_id, &changes, audit).await })
        })
    }

    fn delete_user(
        &self,
        tenant_id: Uuid,
        user_id: Uuid,
        audit: AuditEntry,
    ) -> StoreFuture<'_, bool> {
        self.call("delete_user", move |c| {
            Box::pin(delete_user(c, tenant_id, user_id, audit))
        })
    }

    fn set_password(
        &self,
        tenant_id: Uuid,
        user_id: Uuid,
        password_hash: String,
        now: i64,
        audit: AuditEntry,
    ) -> StoreFuture<'_, Option<u64>> {
        self.call("set_password", move |c| {
            Box::pin(set_password(
                c,
                tenant_id,
                user_id,
                password_hash,
                now,
                audit,
            ))
        })
    }

    fn set_user_status(
        &self,
        tenant_id: Uuid,
        user_id: Uuid,
        disabled: bool,
        reason: Option<String>,
        now: i64,
        audit: AuditEntry,
    ) -> StoreFuture<'_, Option<u64>> {
        self.call("set_user_status", move |c| {
            Box::pin(set_user_status(
                c,
                tenant_id,
                user_id,
                (disabled, reason),
                now,
                audit,
            ))
        })
    }

    fn set_email_verified(
        &self,
        tenant_id: Uuid,
        user_id: Uuid,
        verified: bool,
        audit: AuditEntry,
    ) -> StoreFuture<'_, Option<User>> {
        self.call("set_email_verified", move |c| {
            Box::pin(set_email_verified(c, tenant_id, user_id, verified, audit))
        })
    }
}

/// The user of the tenant; `lock` is appended to the query (`FOR NO KEY UPDATE` in a
/// transaction that changes it, or nothing).
async fn find_user<C: GenericClient + Sync>(
    client: &C,
    tenant_id: Uuid,
    user_id: Uuid,
    lock: &str,
) -> Result<Option<User>, StoreError> {
    let row = client
        .query_typed_opt(
            &format!(
                "SELECT {USER_COLUMNS} FROM users u WHERE u.id = $1 AND u.tenant_id = $2{lock}"
            ),
            &[(&user_id, Type::UUID), (&tenant_id, Type::UUID)],
        )
        .await
        .map_err(db)?;
    row.map(|row| user_from(&row, 0)).transpose().map_err(db)
}

/// The `WHERE` clause of `filter` over `users u`, its values bound in `params`.
fn filter_sql(filter: &UserFilter, params: &mut Params) -> String {
    let mut sql = format!(
        "u.tenant_id = {}",
        params.bind(filter.tenant_id, Type::UUID)
    );
    if let Some(email) = &filter.email {
        let part = params.bind(email.to_lowercase(), Type::TEXT);
        sql.push_str(&format!(" AND strpos(lower(u.email), {part}) > 0"));
    }
    if let Some(status) = filter.status {
        let disabled = params.bind(status == UserStatus::Disabled, Type::BOOL);
        sql.push_str(&format!(" AND u.disabled = {disabled}"));
    }
    sql
}

async fn list_users(client: &Client, query: &UserQuery) -> Result<Vec<User>, StoreError> {
    let mut params = Params::default();
    let mut sql = filter_sql(&query.filter, &mut params);
    if let Some((created_at, id)) = query.after {
        let (at, id) = (
            params.bind(created_at, Type::INT8),
            params.bind(id, Type::UUID),
        );
        sql.push_str(&format!(" AND (u.created_at, u.id) > ({at}, {id})"));
    }
    let limit = params.bind(i64::from(query.limit), Type::INT8);
    let offset = params.bind(i64::from(query.offset), Type::INT8);
    let rows = client
        .query_typed(
            &format!(
                "SELECT {USER_COLUMNS} FROM users u WHERE {sql} \
                 ORDER BY u.created_at, u.id LIMIT {limit} OFFSET {offset}"
            ),
            &params.typed(),
        )
        .await
        .map_err(db)?;
    rows.iter()
        .map(|row| user_from(row, 0))
        .collect::<Result<_, _>>()
        .map_err(db)
}

async fn count_users(client: &Client, filter: &UserFilter) -> Result<u64, StoreError> {
    let mut params = Params::default();
    let sql = filter_sql(filter, &mut params);
    let n: i64 = client
        .query_typed_one(
            &format!("SELECT count(*) FROM users u WHERE {sql}"),
            &params.typed(),
        )
        .await
        .map_err(db)?
        .try_get(0)
        .map_err(db)?;
    Ok(u64::try_from(n).unwrap_or(0))
}

/// The user, their password identity when they have a password, and `audit`.
async fn create_user(
    client: &mut Client,
    user: User,
    password_hash: Option<String>,
    audit: AuditEntry,
) -> Result<User, StoreError> {
    let audit = audit.about(user.tenant_id, "user", &user.id.to_string());
    let tx = client.transaction().await.map_err(db)?;
    tx.execute_typed(
        "INSERT INTO users (id, tenant_id, email, email_verified, name, custom_fields, \
         disabled, created_at, app_metadata) \
         VALUES ($1, $2, $3, $4, $5, $6, false, $7, $8)",
        &[
            (&user.id, Type::UUID),
            (&user.tenant_id, Type::UUID),
            (&user.email, Type::TEXT),
            (&user.email_verified, Type::BOOL),
            (&user.name, Type::TEXT),
            (user.custom_fields.as_json(), Type::JSONB),
            (&user.created_at, Type::INT8),
            (user.app_metadata.as_json(), Type::JSONB),
        ],
    )
    .await
    .map_err(db)?;
    if let Some(hash) = &password_hash {
        tx.execute_typed(
            "INSERT INTO password_identities (user_id, password_hash, updated_at) \
             VALUES ($1, $2, $3)",
            &[
                (&user.id, Type::UUID),
                (hash, Type::TEXT),
                (&user.created_at, Type::INT8),
            ],
        )
        .await
        .map_err(db)?;
    }
    audit_row::insert_audit(&tx, &audit).await?;
    tx.commit().await.map_err(db)?;
    Ok(user)
}

/// One `UPDATE ... RETURNING` (each field replaced when given; every `SET` reads the row as
/// it was, so `email_verified` compares with the old email), the email tokens of an old
/// address, and `audit`.
async fn update_user(
    client: &mut Client,
    tenant_id: Uuid,
    user_id: Uuid,
    changes: &UserChanges,
    audit: AuditEntry,
) -> Result<Option<User>, StoreError> {
    let tx = client.transaction().await.map_err(db)?;
    let Some(before) = find_user(&tx, tenant_id, user_id, " FOR NO KEY UPDATE").await? else {
        return Ok(None);
    };
    if changes.is_empty() {
        return Ok(Some(before));
    }
    let (set_name, name) = match &changes.name {
        Some(name) => (true, name.clone()),
        None => (false, None),
    };
    let custom = changes.custom_fields.as_ref().map(Metadata::as_json);
    let app = changes.app_metadata.as_ref().map(Metadata::as_json);
    let row = tx
        .query_typed_one(
            &format!(
                "UPDATE users u SET email = COALESCE($3, u.email), \
                     email_verified = CASE WHEN $3 IS NOT NULL AND $3 <> u.email THEN false \
                                           ELSE u.email_verified END, \
                     name = CASE WHEN $4 THEN $5 ELSE u.name END, \
                     custom_fields = COALESCE($6, u.custom_fields), \
                     app_metadata = COALESCE($7, u.app_metadata) \
                 WHERE u.id = $1 AND u.tenant_id = $2 RETURNING {USER_COLUMNS}"
            ),
            &[
                (&user_id, Type::UUID),
                (&tenant_id, Type::UUID),
                (&changes.email, Type::TEXT),
                (&set_name, Type::BOOL),
                (&name, Type::TEXT),
                (&custom, Type::JSONB),
                (&app, Type::JSONB),
            ],
        )
        .await
        .map_err(db)?;
    let after = user_from(&row, 0).map_err(db)?;
    if after.email != before.email {
        // Links sent to the old address stop working: it may no longer be the user's.
        tx.execute_typed(
            "DELETE FROM email_tokens WHERE user_id = $1 AND used_at IS NULL",
            &[(&user_id, Type::UUID)],
        )
        .await
        .map_err(db)?;
    }
    let audit = audit.about(tenant_id, "user", &user_id.to_string());
    audit_row::insert_audit(&tx, &audit).await?;
    tx.commit().await.map_err(db)?;
    Ok(Some(after))
}

/// The user (everything of theirs goes by the foreign keys' `ON DELETE CASCADE`; refresh
/// tokens with their families) and `audit`.
async fn delete_user(
    client: &mut Client,
    tenant_id: Uuid,
    user_id: Uuid,
    audit: AuditEntry,
) -> Result<bool, StoreError> {
    let tx = client.transaction().await.map_err(db)?;
    let deleted = tx
        .execute_typed(
            "DELETE FROM users WHERE id = $1 AND tenant_id = $2",
            &[(&user_id, Type::UUID), (&tenant_id, Type::UUID)],
        )
        .await
        .map_err(db)?;
    if deleted == 0 {
        return Ok(false);
    }
    let audit = audit.about(tenant_id, "user", &user_id.to_string());
    audit_row::insert_audit(&tx, &audit).await?;
    tx.commit().await.map_err(db)?;
    Ok(true)
}

/// Locks the user's row for a change of theirs; false when the tenant has no such user.
async fn lock_user(
    tx: &Transaction<'_>,
    tenant_id: Uuid,
    user_id: Uuid,
) -> Result<bool, StoreError> {
    let row = tx
        .query_typed_opt(
            "SELECT 1 FROM users WHERE id = $1 AND tenant_id = $2 FOR NO KEY UPDATE",
            &[(&user_id, Type::UUID), (&tenant_id, Type::UUID)],
        )
        .await
        .map_err(db)?;
    Ok(row.is_some())
}

/// The password identity (replaced or created), every live family and session revoked, the
/// unused reset tokens used up, and `audit`.
async fn set_password(
    client: &mut Client,
    tenant_id: Uuid,
    user_id: Uuid,
    password_hash: String,
    now: i64,
    audit: AuditEntry,
) -> Result<Option<u64>, StoreError> {
    let tx = client.transaction().await.map_err(db)?;
    if !lock_user(&tx, tenant_id, user_id).await? {
        return Ok(None);
    }
    tx.execute_typed(
        "INSERT INTO password_identities (user_id, password_hash, updated_at) \
         VALUES ($1, $2, $3) \
         ON CONFLICT (user_id) DO UPDATE \
         SET password_hash = EXCLUDED.password_hash, updated_at = EXCLUDED.updated_at",
        &[
            (&user_id, Type::UUID),
            (&password_hash, Type::TEXT),
            (&now, Type::INT8),
        ],
    )
    .await
    .map_err(db)?;
    let revoked = refresh::revoke_all_in(&tx, user_id, now).await?;
    tx.execute_typed(
        "UPDATE email_tokens SET used_at = $2 \
         WHERE user_id = $1 AND purpose = 'reset' AND used_at IS NULL",
        &[(&user_id, Type::UUID), (&now, Type::INT8)],
    )
    .await
    .map_err(db)?;
    let audit = audit
        .about(tenant_id, "user", &user_id.to_string())
        .with_count("revoked", revoked);
    audit_row::insert_audit(&tx, &audit).await?;
    tx.commit().await.map_err(db)?;
    Ok(Some(revoked))
}

/// The flag and its reason, every live family and session revoked on a disable, and `audit`.
async fn set_user_status(
    client: &mut Client,
    tenant_id: Uuid,
    user_id: Uuid,
    (disabled, reason): (bool, Option<String>),
    now: i64,
    audit: AuditEntry,
) -> Result<Option<u64>, StoreError> {
    let tx = client.transaction().await.map_err(db)?;
    let found = tx
        .execute_typed(
            "UPDATE users SET disabled = $3, disabled_reason = CASE WHEN $3 THEN $4 END \
             WHERE id = $1 AND tenant_id = $2",
            &[
                (&user_id, Type::UUID),
                (&tenant_id, Type::UUID),
                (&disabled, Type::BOOL),
                (&reason, Type::TEXT),
            ],
        )
        .await
        .map_err(db)?;
    if found == 0 {
        return Ok(None);
    }
    let revoked = if disabled {
        refresh::revoke_all_in(&tx, user_id, now).await?
    } else {
        0
    };
    let audit = audit
        .about(tenant_id, "user", &user_id.to_string())
        .with_count("revoked", revoked);
    audit_row::insert_audit(&tx, &audit).await?;
    tx.commit().await.map_err(db)?;
    Ok(Some(revoked))
}

async fn set_email_verified(
    client: &mut Client,
    tenant_id: Uuid,
    user_id: Uuid,
    verified: bool,
    audit: AuditEntry,
) -> Result<Option<User>, StoreError> {
    let tx = client.transaction().await.map_err(db)?;
    let row = tx
        .query_typed_opt(
            &format!(
                "UPDATE users u SET email_verified = $3 WHERE u.id = $1 AND u.tenant_id = $2 \
                 RETURNING {USER_COLUMNS}"
            ),
            &[
                (&user_id, Type::UUID),
                (&tenant_id, Type::UUID),
                (&verified, Type::BOOL),
            ],
        )
        .await
        .map_err(db)?;
    let Some(row) = row else { return Ok(None) };
    let user = user_from(&row, 0).map_err(db)?;
    let audit = audit.about(tenant_id, "user", &user_id.to_string());
    audit_row::insert_audit(&tx, &audit).await?;
    tx.commit().await.map_err(db)?;
    Ok(Some(user))
}
