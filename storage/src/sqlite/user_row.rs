//! How a user is read from a row: one place for the columns and their order, used by every
//! module that returns users (users, refresh rotation, sessions).

use super::error::db;
use rusqlite::{Connection, OptionalExtension, Row};
use uuid::Uuid;

use super::error::{json_at, uuid_at};
use crate::{StoreError, User};

/// The [`USER_COLUMN_COUNT`] user columns of [`user_from`], for a table aliased `u`.
pub(super) const USER_COLUMNS: &str =
    "u.id, u.tenant_id, u.email, u.email_verified, u.name, u.custom_fields, u.disabled, \
     u.created_at, u.app_metadata, u.mfa_enabled, u.disabled_reason";

/// [`USER_COLUMNS`] without the table alias, for `RETURNING` (where SQLite allows none).
pub(super) const USER_COLUMNS_UNQUALIFIED: &str =
    "id, tenant_id, email, email_verified, name, custom_fields, disabled, created_at, \
     app_metadata, mfa_enabled, disabled_reason";

/// How many columns [`user_from`] reads: the first column after them is `at + USER_COLUMN_COUNT`.
pub(super) const USER_COLUMN_COUNT: usize = 11;

/// A user from [`USER_COLUMN_COUNT`] columns starting at `at`, in the order of [`USER_COLUMNS`]:
/// `id, tenant_id, email, email_verified, name, custom_fields, disabled, created_at,
/// app_metadata, mfa_enabled, disabled_reason`. The reason reads only for a disabled user (an
/// older release that enables one leaves it in place).
pub(super) fn user_from(row: &Row<'_>, at: usize) -> rusqlite::Result<User> {
    let disabled: bool = row.get(at + 6)?;
    Ok(User {
        id: uuid_at(row, at)?,
        tenant_id: uuid_at(row, at + 1)?,
        email: row.get(at + 2)?,
        email_verified: row.get(at + 3)?,
        name: row.get(at + 4)?,
        custom_fields: crate::Metadata::from_json(json_at(row, at + 5)?),
        disabled,
        disabled_reason: if disabled { row.get(at + 10)? } else { None },
        created_at: row.get(at + 7)?,
        app_metadata: crate::Metadata::from_json(json_at(row, at + 8)?),
        mfa_enabled: row.get(at + 9)?,
    })
}

pub(super) fn get_user(conn: &Connection, user_id: Uuid) -> Result<Option<User>, StoreError> {
    conn.prepare_cached(&format!(
        "SELECT {USER_COLUMNS} FROM users u WHERE u.id = ?1"
    ))
    .map_err(db)?
    .query_row([user_id.to_string()], |row| user_from(row, 0))
    .optional()
    .map_err(db)
}
