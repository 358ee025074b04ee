//! Users and password identities.

use super::error::db;
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use uuid::Uuid;

use super::error::to_json;
use super::user_row::{user_from, USER_COLUMNS, USER_COLUMNS_UNQUALIFIED, USER_COLUMN_COUNT};
use super::{events, refresh};
use crate::{EventDraft, NewRefreshToken, NewUser, PasswordLogin, StoreError, User};

/// User, password identity, a new refresh family and its first token, and the event, in one
/// transaction. `Conflict("email")` (and nothing written) when the email is taken in the tenant.
pub(super) fn register_user(
    conn: &mut Connection,
    new: NewUser,
    password_hash: &str,
    refresh: Option<&NewRefreshToken>,
    event: Option<EventDraft>,
    now: i64,
) -> Result<User, StoreError> {
    if refresh.is_some_and(|t| t.user_id != new.id || t.tenant_id != new.tenant_id) {
        return Err(StoreError::Internal(
            "register_user: the refresh token is for another user".into(),
        ));
    }
    let user = User {
        id: new.id,
        tenant_id: new.tenant_id,
        email: new.email,
        email_verified: false,
        name: new.name,
        custom_fields: new.custom_fields,
        app_metadata: crate::Metadata::empty(),
        disabled: false,
        disabled_reason: None,
        mfa_enabled: false,
        created_at: now,
    };
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(db)?;
    tx.prepare_cached(
        "INSERT INTO users (id, tenant_id, email, email_verified, name, custom_fields, disabled, \
                            created_at, app_metadata) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )
    .map_err(db)?
    .execute(params![
        user.id.to_string(),
        user.tenant_id.to_string(),
        user.email,
        user.email_verified,
        user.name,
        to_json(user.custom_fields.as_json())?,
        user.disabled,
        user.created_at,
        to_json(user.app_metadata.as_json())?,
    ])
    .map_err(db)?;
    tx.prepare_cached(
        "INSERT INTO password_identities (user_id, password_hash, updated_at) VALUES (?1, ?2, ?3)",
    )
    .map_err(db)?
    .execute(params![user.id.to_string(), password_hash, now])
    .map_err(db)?;
    if let Some(refresh) = refresh {
        refresh::insert_family_and_token(&tx, refresh, now)?;
    }
    events::insert_draft(&tx, event, |d| d.for_user(user.tenant_id, user.id))?;
    tx.commit().map_err(db)?;
    Ok(user)
}

/// `email` is already normalised by the caller.
pub(super) fn find_user_by_email(
    conn: &Connection,
    tenant_id: Uuid,
    email: &str,
) -> Result<Option<User>, StoreError> {
    conn.prepare_cached(&format!(
        "SELECT {USER_COLUMNS} FROM users u WHERE u.tenant_id = ?1 AND u.email = ?2"
    ))
    .map_err(db)?
    .query_row(params![tenant_id.to_string(), email], |row| {
        user_from(row, 0)
    })
    .optional()
    .map_err(db)
}

/// One statement: the new app metadata, and the user as it stands after it.
pub(super) fn set_user_app_metadata(
    conn: &Connection,
    user_id: Uuid,
    app_metadata: &serde_json::Value,
) -> Result<Option<User>, StoreError> {
    conn.prepare_cached(&format!(
        "UPDATE users SET app_metadata = ?1 WHERE id = ?2 RETURNING {USER_COLUMNS_UNQUALIFIED}"
    ))
    .map_err(db)?
    .query_row(
        params![to_json(app_metadata)?, user_id.to_string()],
        |row| user_from(row, 0),
    )
    .optional()
    .map_err(db)
}

/// `json_patch` (RFC 7396) of an object of scalars replaces each key, as `||` does on
/// PostgreSQL; the length bound is checked on the result in the same statement.
pub(super) fn merge_user_metadata(
    conn: &Connection,
    user_id: Uuid,
    patch: &serde_json::Value,
    max_bytes: usize,
) -> Result<Option<User>, StoreError> {
    let max = i64::try_from(max_bytes).unwrap_or(i64::MAX);
    conn.prepare_cached(&format!(
        "UPDATE users SET custom_fields = json_patch(custom_fields, ?1) \
             WHERE id = ?2 AND length(json_patch(custom_fields, ?1)) <= ?3 \
             RETURNING {USER_COLUMNS_UNQUALIFIED}"
    ))
    .map_err(db)?
    .query_row(params![to_json(patch)?, user_id.to_string(), max], |row| {
        user_from(row, 0)
    })
    .optional()
    .map_err(db)
}

/// The flag and, when disabling, the revocation of every live refresh family and session of
/// the user, in one transaction: a disabled user keeps no way to get new tokens.
pub(super) fn set_user_disabled(
    conn: &mut Connection,
    user_id: Uuid,
    disabled: bool,
    now: i64,
) -> Result<Option<u64>, StoreError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(db)?;
    let found = tx
        .prepare_cached("UPDATE users SET disabled = ?1, disabled_reason = NULL WHERE id = ?2")
        .map_err(db)?
        .execute(params![disabled, user_id.to_string()])
        .map_err(db)?;
    if found == 0 {
        return Ok(None);
    }
    let revoked = if disabled {
        refresh::revoke_all_in(&tx, user_id, now)?
    } else {
        0
    };
    tx.commit().map_err(db)?;
    Ok(Some(revoked))
}

pub(super) fn find_password_login(
    conn: &Connection,
    tenant_id: Uuid,
    email: &str,
) -> Result<Option<PasswordLogin>, StoreError> {
    conn.prepare_cached(&format!(
        "SELECT {USER_COLUMNS}, p.password_hash \
             FROM users u JOIN password_identities p ON p.user_id = u.id \
             WHERE u.tenant_id = ?1 AND u.email = ?2"
    ))
    .map_err(db)?
    .query_row(params![tenant_id.to_string(), email], |row| {
        Ok(PasswordLogin {
            user: user_from(row, 0)?,
            password_hash: row.get(USER_COLUMN_COUNT)?,
        })
    })
    .optional()
    .map_err(db)
}

/// Compare-and-set on the hash: a concurrent change (another upgrade, a password reset) wins.
pub(super) fn upgrade_password_hash(
    conn: &Connection,
    user_id: Uuid,
    old_hash: &str,
    new_hash: &str,
) -> Result<bool, StoreError> {
    // The trait passes no `now`; the database clock stamps `updated_at`.
    let changed = conn
        .prepare_cached(
            "UPDATE password_identities \
             SET password_hash = ?1, updated_at = CAST(strftime('%s', 'now') AS INTEGER) \
             WHERE user_id = ?2 AND password_hash = ?3",
        )
        .map_err(db)?
        .execute(params![new_hash, user_id.to_string(), old_hash])
        .map_err(db)?;
    Ok(changed == 1)
}
