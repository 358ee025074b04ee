//! [`UserAdmin`] on SQLite: users as the admin API manages them, each change with its audit
//! entry in one `BEGIN IMMEDIATE` transaction, every lookup scoped by the tenant.

use super::error::db;
use rusqlite::types::Value;
use rusqlite::{params, params_from_iter, Connection, OptionalExtension, TransactionBehavior};
use store::UserAdmin;
use uuid::Uuid;

use super::error::to_json;
use super::user_row::{user_from, USER_COLUMNS, USER_COLUMNS_UNQUALIFIED};
use super::{audit_row, refresh, SqliteStore};
use crate::{
    AuditEntry, Metadata, NewUser, StoreError, StoreFuture, User, UserChanges, UserFilter,
    UserQuery, UserStatus,
};

impl UserAdmin for SqliteStore {
    fn find_user(&self, tenant_id: Uuid, user_id: Uuid) -> StoreFuture<'_, Option<User>> {
        self.pool
            .read(move |conn| find_user(conn, tenant_id, user_id))
    }

    fn list_users(&self, query: UserQuery) -> StoreFuture<'_, Vec<User>> {
        self.pool.read(move |conn| list_users(conn, &query))
    }

    fn count_users(&self, filter: UserFilter) -> StoreFuture<'_, u64> {
        self.pool.read(move |conn| count_users(conn, &filter))
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
        self.pool
            .write(move |conn| create_user(conn, user, password_hash.as_deref(), audit))
    }

    fn update_user(
        &self,
        tenant_id: Uuid,
        user_id: Uuid,
        changes: UserChanges,
        audit: AuditEntry,
    ) -> StoreFuture<'_, Option<User>> {
        self.pool
            .write(move |conn| update_user(conn, tenant_id, user_id, &changes, audit))
    }

    fn delete_user(
        &self,
        tenant_id: Uuid,
        user_id: Uuid,
        audit: AuditEntry,
    ) -> StoreFuture<'_, bool> {
        self.pool
            .write(move |conn| delete_user(conn, tenant_id, user_id, audit))
    }

    fn set_password(
        &self,
        tenant_id: Uuid,
        user_id: Uuid,
        password_hash: String,
        now: i64,
        audit: AuditEntry,
    ) -> StoreFuture<'_, Option<u64>> {
        self.pool
            .write(move |conn| set_password(conn, tenant_id, user_id, &password_hash, now, audit))
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
        self.pool.write(move |conn| {
            let status = (disabled, reason.as_deref());
            set_user_status(conn, tenant_id, user_id, status, now, audit)
        })
    }

    fn set_email_verified(
        &self,
        tenant_id: Uuid,
        user_id: Uuid,
        verified: bool,
        audit: AuditEntry,
    ) -> StoreFuture<'_, Option<User>> {
        self.pool
            .write(move |conn| set_email_verified(conn, tenant_id, user_id, verified, audit))
    }
}

fn find_user(
    conn: &Connection,
    tenant_id: Uuid,
    user_id: Uuid,
) -> Result<Option<User>, StoreError> {
    conn.prepare_cached(&format!(
        "SELECT {USER_COLUMNS} FROM users u WHERE u.id = ?1 AND u.tenant_id = ?2"
    ))
    .map_err(db)?
    .query_row(params![user_id.to_string(), tenant_id.to_string()], |row| {
        user_from(row, 0)
    })
    .optional()
    .map_err(db)
}

/// The `WHERE` clause of `filter` over `users u`, and its parameters (`?1` ..).
fn filter_sql(filter: &UserFilter) -> (String, Vec<Value>) {
    let mut sql = String::from("u.tenant_id = ?1");
    let mut values = vec![Value::Text(filter.tenant_id.to_string())];
    if let Some(email) = &filter.email {
        values.push(Value::Text(email.to_lowercase()));
        sql.push_str(&format!(
            " AND instr(lower(u.email), ?{}) > 0",
            values.len()
        ));
    }
    if let Some(status) = filter.status {
        values.push(Value::Integer(i64::from(status == UserStatus::Disabled)));
        sql.push_str(&format!(" AND u.disabled = ?{}", values.len()));
    }
    (sql, values)
}

fn list_users(conn: &Connection, query: &UserQuery) -> Result<Vec<User>, StoreError> {
    let (mut sql, mut values) = filter_sql(&query.filter);
    if let Some((created_at, id)) = query.after {
        values.push(Value::Integer(created_at));
        values.push(Value::Text(id.to_string()));
        sql.push_str(&format!(
            " AND (u.created_at, u.id) > (?{}, ?{})",
            values.len() - 1,
            values.len()
        ));
    }
    values.push(Value::Integer(i64::from(query.limit)));
    values.push(Value::Integer(i64::from(query.offset)));
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT {USER_COLUMNS} FROM users u WHERE {sql} \
             ORDER BY u.created_at, u.id LIMIT ?{} OFFSET ?{}",
            values.len() - 1,
            values.len()
        ))
        .map_err(db)?;
    let rows = stmt
        .query_map(params_from_iter(values), |row| user_from(row, 0))
        .map_err(db)?;
    rows.collect::<Result<_, _>>().map_err(db)
}

fn count_users(conn: &Connection, filter: &UserFilter) -> Result<u64, StoreError> {
    let (sql, values) = filter_sql(filter);
    let n: i64 = conn
        .prepare_cached(&format!("SELECT count(*) FROM users u WHERE {sql}"))
        .map_err(db)?
        .query_row(params_from_iter(values), |row| row.get(0))
        .map_err(db)?;
    Ok(u64::try_from(n).unwrap_or(0))
}

/// The user, their password identity when they have a password, and `audit`.
fn create_user(
    conn: &mut Connection,
    user: User,
    password_hash: Option<&str>,
    audit: AuditEntry,
) -> Result<User, StoreError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(db)?;
    tx.prepare_cached(
        "INSERT INTO users (id, tenant_id, email, email_verified, name, custom_fields, disabled, \
                            created_at, app_metadata) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, 0, ?7, ?8)",
    )
    .map_err(db)?
    .execute(params![
        user.id.to_string(),
        user.tenant_id.to_string(),
        user.email,
        user.email_verified,
        user.name,
        to_json(user.custom_fields.as_json())?,
        user.created_at,
        to_json(user.app_metadata.as_json())?,
    ])
    .map_err(db)?;
    if let Some(hash) = password_hash {
        tx.prepare_cached(
            "INSERT INTO password_identities (user_id, password_hash, updated_at) \
             VALUES (?1, ?2, ?3)",
        )
        .map_err(db)?
        .execute(params![user.id.to_string(), hash, user.created_at])
        .map_err(db)?;
    }
    let audit = audit.about(user.tenant_id, "user", &user.id.to_string());
    audit_row::insert_audit(&tx, &audit)?;
    tx.commit().map_err(db)?;
    Ok(user)
}

/// One `UPDATE ... RETURNING` (each field replaced when given; SQLite evaluates every `SET`
/// on the row as it was, so `email_verified` compares with the old email), the email tokens of
/// an old address, and `audit`.
fn update_user(
    conn: &mut Connection,
    tenant_id: Uuid,
    user_id: Uuid,
    changes: &UserChanges,
    audit: AuditEntry,
) -> Result<Option<User>, StoreError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(db)?;
    let Some(before) = find_user(&tx, tenant_id, user_id)? else {
        return Ok(None);
    };
    if changes.is_empty() {
        return Ok(Some(before));
    }
    let (set_name, name) = match &changes.name {
        Some(name) => (true, name.as_deref()),
        None => (false, None),
    };
    let custom = changes
        .custom_fields
        .as_ref()
        .map(|m| to_json(m.as_json()))
        .transpose()?;
    let app = changes
        .app_metadata
        .as_ref()
        .map(|m| to_json(m.as_json()))
        .transpose()?;
    let after = tx
        .prepare_cached(&format!(
            "UPDATE users SET email = COALESCE(?3, email), \
                 email_verified = CASE WHEN ?3 IS NOT NULL AND ?3 <> email THEN 0 \
                                       ELSE email_verified END, \
                 name = CASE WHEN ?4 THEN ?5 ELSE name END, \
                 custom_fields = COALESCE(?6, custom_fields), \
                 app_metadata = COALESCE(?7, app_metadata) \
             WHERE id = ?1 AND tenant_id = ?2 RETURNING {USER_COLUMNS_UNQUALIFIED}"
        ))
        .map_err(db)?
        .query_row(
            params![
                user_id.to_string(),
                tenant_id.to_string(),
                changes.email,
                set_name,
                name,
                custom,
                app
            ],
            |row| user_from(row, 0),
        )
        .map_err(db)?;
    if after.email != before.email {
        // Links sent to the old address stop working: it may no longer be the user's.
        tx.prepare_cached("DELETE FROM email_tokens WHERE user_id = ?1 AND used_at IS NULL")
            .map_err(db)?
            .execute([user_id.to_string()])
            .map_err(db)?;
    }
    let audit = audit.about(tenant_id, "user", &user_id.to_string());
    audit_row::insert_audit(&tx, &audit)?;
    tx.commit().map_err(db)?;
    Ok(Some(after))
}

/// The user (everything of theirs goes by the foreign keys' `ON DELETE CASCADE`; refresh
/// tokens with their families) and `audit`.
fn delete_user(
    conn: &mut Connection,
    tenant_id: Uuid,
    user_id: Uuid,
    audit: AuditEntry,
) -> Result<bool, StoreError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(db)?;
    let deleted = tx
        .prepare_cached("DELETE FROM users WHERE id = ?1 AND tenant_id = ?2")
        .map_err(db)?
        .execute(params![user_id.to_string(), tenant_id.to_string()])
        .map_err(db)?;
    if deleted == 0 {
        return Ok(false);
    }
    let audit = audit.about(tenant_id, "user", &user_id.to_string());
    audit_row::insert_audit(&tx, &audit)?;
    tx.commit().map_err(db)?;
    Ok(true)
}

fn exists(conn: &Connection, tenant_id: Uuid, user_id: Uuid) -> Result<bool, StoreError> {
    conn.prepare_cached("SELECT EXISTS (SELECT 1 FROM users WHERE id = ?1 AND tenant_id = ?2)")
        .map_err(db)?
        .query_row(params![user_id.to_string(), tenant_id.to_string()], |row| {
            row.get(0)
        })
        .map_err(db)
}

/// The password identity (replaced or created), every live family and session revoked, the
/// unused reset tokens used up, and `audit`.
fn set_password(
    conn: &mut Connection,
    tenant_id: Uuid,
    user_id: Uuid,
    password_hash: &str,
    now: i64,
    audit: AuditEntry,
) -> Result<Option<u64>, StoreError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(db)?;
    if !exists(&tx, tenant_id, user_id)? {
        return Ok(None);
    }
    let user = user_id.to_string();
    tx.prepare_cached(
        "INSERT INTO password_identities (user_id, password_hash, updated_at) \
         VALUES (?1, ?2, ?3) \
         ON CONFLICT (user_id) DO UPDATE \
         SET password_hash = excluded.password_hash, updated_at = excluded.updated_at",
    )
    .map_err(db)?
    .execute(params![user, password_hash, now])
    .map_err(db)?;
    let revoked = refresh::revoke_all_in(&tx, user_id, now)?;
    tx.prepare_cached(
        "UPDATE email_tokens SET used_at = ?2 \
         WHERE user_id = ?1 AND purpose = 'reset' AND used_at IS NULL",
    )
    .map_err(db)?
    .execute(params![user, now])
    .map_err(db)?;
    let audit = audit
        .about(tenant_id, "user", &user)
        .with_count("revoked", revoked);
    audit_row::insert_audit(&tx, &audit)?;
    tx.commit().map_err(db)?;
    Ok(Some(revoked))
}

/// The flag and its reason, every live family and session revoked on a disable, and `audit`.
fn set_user_status(
    conn: &mut Connection,
    tenant_id: Uuid,
    user_id: Uuid,
    (disabled, reason): (bool, Option<&str>),
    now: i64,
    audit: AuditEntry,
) -> Result<Option<u64>, StoreError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(db)?;
    let found = tx
        .prepare_cached(
            "UPDATE users SET disabled = ?3, disabled_reason = CASE WHEN ?3 THEN ?4 END \
             WHERE id = ?1 AND tenant_id = ?2",
        )
        .map_err(db)?
        .execute(params![
            user_id.to_string(),
            tenant_id.to_string(),
            disabled,
            reason
        ])
        .map_err(db)?;
    if found == 0 {
        return Ok(None);
    }
    let revoked = if disabled {
        refresh::revoke_all_in(&tx, user_id, now)?
    } else {
        0
    };
    let audit = audit
        .about(tenant_id, "user", &user_id.to_string())
        .with_count("revoked", revoked);
    audit_row::insert_audit(&tx, &audit)?;
    tx.commit().map_err(db)?;
    Ok(Some(revoked))
}

fn set_email_verified(
    conn: &mut Connection,
    tenant_id: Uuid,
    user_id: Uuid,
    verified: bool,
    audit: AuditEntry,
) -> Result<Option<User>, StoreError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(db)?;
    let user = tx
        .prepare_cached(&format!(
            "UPDATE users SET email_verified = ?3 WHERE id = ?1 AND tenant_id = ?2 \
             RETURNING {USER_COLUMNS_UNQUALIFIED}"
        ))
        .map_err(db)?
        .query_row(
            params![user_id.to_string(), tenant_id.to_string(), verified],
            |row| user_from(row, 0),
        )
        .optional()
        .map_err(db)?;
    if user.is_some() {
        let audit = audit.about(tenant_id, "user", &user_id.to_string());
        audit_row::insert_audit(&tx, &audit)?;
        tx.commit().map_err(db)?;
    }
    Ok(user)
}
