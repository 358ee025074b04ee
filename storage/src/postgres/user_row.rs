//! How a user is read from a row: one place for the columns and their order, used by every
//! module that returns users (users, refresh rotation, sessions).

use tokio_postgres::Row;

use crate::User;

/// The [`USER_COLUMN_COUNT`] user columns of [`user_from`], for a table aliased `u`.
pub(super) const USER_COLUMNS: &str =
    "u.id, u.tenant_id, u.email, u.email_verified, u.name, u.custom_fields, u.disabled, \
     u.created_at, u.app_metadata, u.mfa_enabled, u.disabled_reason";

/// [`USER_COLUMNS`] for the user `hj_rotate_refresh` answers (migration 11): its result has no
/// `disabled_reason` column, and a user it rotates for is enabled, so the reason is NULL.
pub(super) const ROTATED_USER_COLUMNS: &str =
    "u.id, u.tenant_id, u.email, u.email_verified, u.name, u.custom_fields, u.disabled, \
     u.created_at, u.app_metadata, u.mfa_enabled, NULL::text";

/// How many columns [`user_from`] reads: the first column after them is `at + USER_COLUMN_COUNT`.
pub(super) const USER_COLUMN_COUNT: usize = 11;

/// A user from [`USER_COLUMN_COUNT`] columns starting at `at`, in the order of [`USER_COLUMNS`]:
/// `id, tenant_id, email, email_verified, name, custom_fields, disabled, created_at,
/// app_metadata, mfa_enabled, disabled_reason`. The reason reads only for a disabled user (an
/// older release that enables one leaves it in place).
pub(super) fn user_from(row: &Row, at: usize) -> Result<User, tokio_postgres::Error> {
    let disabled: bool = row.try_get(at + 6)?;
    Ok(User {
        id: row.try_get(at)?,
        tenant_id: row.try_get(at + 1)?,
        email: row.try_get(at + 2)?,
        email_verified: row.try_get(at + 3)?,
        name: row.try_get(at + 4)?,
        custom_fields: crate::Metadata::from_json(row.try_get(at + 5)?),
        disabled,
        disabled_reason: if disabled {
            row.try_get(at + 10)?
        } else {
            None
        },
        created_at: row.try_get(at + 7)?,
        app_metadata: crate::Metadata::from_json(row.try_get(at + 8)?),
        mfa_enabled: row.try_get(at + 9)?,
    })
}
