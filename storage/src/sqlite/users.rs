//! Users and password identities.

use rusqlite::{params, Connection, OptionalExtension, Row, TransactionBehavior};
use uuid::Uuid;

use super::error::{json_at, to_json, uuid_at};
use super::{events, refresh};
use crate::{EventDraft, NewRefreshToken, NewUser, PasswordLogin, StoreError, User};

/// A user from 8 columns starting at `at`, in this order:
/// `id, tenant_id, email, email_verified, name, custom_fields, disabled, created_at`.
pub(super) fn user_from(row: &Row<'_>, at: usize) -> rusqlite::Result<User> {
    Ok(User {
        id: uuid_at(row, at)?,
        tenant_id: uuid_at(row, at + 1)?,
        email: row.get(at + 2)?,
        email_verified: row.get(at + 3)?,
        name: row.get(at + 4)?,
        custom_fields: json_at(row, at + 5)?,
        disabled: row.get(at + 6)?,
        created_at: row.get(at + 7)?,
    })
}

/// User, password identity, a new refresh family and its first token, and the event, in one
/// transaction. `Conflict("email")` (and nothing written) when the email is taken in the tenant.
pub(super) fn register_user(
    conn: &mut Connection,
    new: NewUser,
    password_hash: &str,
    refresh: &NewRefreshToken,
    event: Option<EventDraft>,
    now: i64,
) -> Result<User, StoreError> {
    if refresh.user_id != new.id || refresh.tenant_id != new.tenant_id {
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
        disabled: false,
        created_at: now,
    };
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    tx.prepare_cached(
        "INSERT INTO users (id, tenant_id, email, email_verified, name, custom_fields, disabled, \
                            created_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![
        user.id.to_string(),
        user.tenant_id.to_string(),
        user.email,
        user.email_verified,
        user.name,
        to_json(&user.custom_fields)?,
        user.disabled,
        user.created_at,
    ])?;
    tx.prepare_cached(
        "INSERT INTO password_identities (user_id, password_hash, updated_at) VALUES (?1, ?2, ?3)",
    )?
    .execute(params![user.id.to_string(), password_hash, now])?;
    refresh::insert_family_and_token(&tx, refresh, now)?;
    events::insert_draft(&tx, event, |d| d.for_user(user.tenant_id, user.id))?;
    tx.commit()?;
    Ok(user)
}

pub(super) fn get_user(conn: &Connection, user_id: Uuid) -> Result<Option<User>, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT id, tenant_id, email, email_verified, name, custom_fields, disabled, created_at \
             FROM users WHERE id = ?1",
        )?
        .query_row([user_id.to_string()], |row| user_from(row, 0))
        .optional()?)
}

pub(super) fn find_password_login(
    conn: &Connection,
    tenant_id: Uuid,
    email: &str,
) -> Result<Option<PasswordLogin>, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT u.id, u.tenant_id, u.email, u.email_verified, u.name, u.custom_fields, \
                    u.disabled, u.created_at, p.password_hash \
             FROM users u JOIN password_identities p ON p.user_id = u.id \
             WHERE u.tenant_id = ?1 AND u.email = ?2",
        )?
        .query_row(params![tenant_id.to_string(), email], |row| {
            Ok(PasswordLogin {
                user: user_from(row, 0)?,
                password_hash: row.get(8)?,
            })
        })
        .optional()?)
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
        )?
        .execute(params![new_hash, user_id.to_string(), old_hash])?;
    Ok(changed == 1)
}
