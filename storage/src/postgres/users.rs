//! Users and password identities.

use super::error::db;
use tokio_postgres::types::Type;
use tokio_postgres::Client;
use uuid::Uuid;

use super::pipelined::pipelined4;
use super::user_row::{user_from, USER_COLUMNS, USER_COLUMN_COUNT};
use super::{events, refresh};
use crate::{EventDraft, NewRefreshToken, NewUser, PasswordLogin, StoreError, User};

/// User, password identity, a new refresh family and its first token, and the event, in one
/// transaction (the inserts pipelined: one round trip). `Conflict("email")` (and nothing
/// written) when the email is taken in the tenant.
pub(super) async fn register_user(
    client: &mut Client,
    new: NewUser,
    password_hash: &str,
    token: Option<&NewRefreshToken>,
    event: Option<EventDraft>,
    now: i64,
) -> Result<User, StoreError> {
    if token.is_some_and(|t| t.user_id != new.id || t.tenant_id != new.tenant_id) {
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
    let event = event
        .map(|d| d.for_user(user.tenant_id, user.id))
        .transpose()?;
    let tx = client.transaction().await.map_err(db)?;
    let (inserted_user, inserted_password, family, inserted_event) = pipelined4(
        async {
            tx.execute_typed(
                "INSERT INTO users (id, tenant_id, email, email_verified, name, custom_fields, \
                 disabled, created_at, app_metadata) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                &[
                    (&user.id, Type::UUID),
                    (&user.tenant_id, Type::UUID),
                    (&user.email, Type::TEXT),
                    (&user.email_verified, Type::BOOL),
                    (&user.name, Type::TEXT),
                    (user.custom_fields.as_json(), Type::JSONB),
                    (&user.disabled, Type::BOOL),
                    (&user.created_at, Type::INT8),
                    (user.app_metadata.as_json(), Type::JSONB),
                ],
            )
            .await
        },
        async {
            tx.execute_typed(
                "INSERT INTO password_identities (user_id, password_hash, updated_at) \
                 VALUES ($1, $2, $3)",
                &[
                    (&user.id, Type::UUID),
                    (&password_hash, Type::TEXT),
                    (&now, Type::INT8),
                ],
            )
            .await
        },
        async {
            let Some(token) = token else { return Ok(()) };
            let hash: &[u8] = &token.token_hash;
            let written: bool = tx
                .query_typed_one(
                    &format!("SELECT {}", refresh::INSERT_TOKEN_CALL),
                    &refresh::token_params(token, &hash),
                )
                .await
                .map_err(db)?
                .try_get(0)
                .map_err(db)?;
            if written {
                Ok(())
            } else {
                Err(refresh::family_of_another_user())
            }
        },
        events::insert_opt(&tx, event.as_ref()),
    )
    .await;
    // The first failure in statement order is the cause; later ones only report the aborted
    // transaction.
    inserted_user.map_err(db)?;
    inserted_password.map_err(db)?;
    family?;
    inserted_event?;
    tx.commit().await.map_err(db)?;
    Ok(user)
}

pub(super) async fn get_user(client: &Client, user_id: Uuid) -> Result<Option<User>, StoreError> {
    let row = client
        .query_typed_opt(
            &format!("SELECT {USER_COLUMNS} FROM users u WHERE u.id = $1"),
            &[(&user_id, Type::UUID)],
        )
        .await
        .map_err(db)?;
    row.map(|row| user_from(&row, 0)).transpose().map_err(db)
}

pub(super) async fn find_password_login(
    client: &Client,
    tenant_id: Uuid,
    email: &str,
) -> Result<Option<PasswordLogin>, StoreError> {
    let row = client
        .query_typed_opt(
            &format!(
                "SELECT {USER_COLUMNS}, p.password_hash \
                 FROM users u JOIN password_identities p ON p.user_id = u.id \
                 WHERE u.tenant_id = $1 AND u.email = $2"
            ),
            &[(&tenant_id, Type::UUID), (&email, Type::TEXT)],
        )
        .await
        .map_err(db)?;
    let Some(row) = row else { return Ok(None) };
    Ok(Some(PasswordLogin {
        user: user_from(&row, 0).map_err(db)?,
        password_hash: row.try_get(USER_COLUMN_COUNT).map_err(db)?,
    }))
}

/// `email` is already normalised by the caller.
pub(super) async fn find_user_by_email(
    client: &Client,
    tenant_id: Uuid,
    email: &str,
) -> Result<Option<User>, StoreError> {
    let row = client
        .query_typed_opt(
            &format!("SELECT {USER_COLUMNS} FROM users u WHERE u.tenant_id = $1 AND u.email = $2"),
            &[(&tenant_id, Type::UUID), (&email, Type::TEXT)],
        )
        .await
        .map_err(db)?;
    row.map(|row| user_from(&row, 0)).transpose().map_err(db)
}

/// One statement: the new app metadata, and the user as it stands after it.
pub(super) async fn set_user_app_metadata(
    client: &Client,
    user_id: Uuid,
    app_metadata: &serde_json::Value,
) -> Result<Option<User>, StoreError> {
    let row = client
        .query_typed_opt(
            &format!(
                "UPDATE users u SET app_metadata = $1 WHERE u.id = $2 RETURNING {USER_COLUMNS}"
            ),
            &[(app_metadata, Type::JSONB), (&user_id, Type::UUID)],
        )
        .await
        .map_err(db)?;
    row.map(|row| user_from(&row, 0)).transpose().map_err(db)
}

/// `||` of an object of scalars replaces each key; the length bound is checked on the result
/// in the same statement.
pub(super) async fn merge_user_metadata(
    client: &Client,
    user_id: Uuid,
    patch: &serde_json::Value,
    max_bytes: usize,
) -> Result<Option<User>, StoreError> {
    let max = i64::try_from(max_bytes).unwrap_or(i64::MAX);
    let row = client
        .query_typed_opt(
            &format!(
                "UPDATE users u SET custom_fields = u.custom_fields || $1 \
                 WHERE u.id = $2 AND octet_length((u.custom_fields || $1)::text) <= $3 \
                 RETURNING {USER_COLUMNS}"
            ),
            &[
                (patch, Type::JSONB),
                (&user_id, Type::UUID),
                (&max, Type::INT8),
            ],
        )
        .await
        .map_err(db)?;
    row.map(|row| user_from(&row, 0)).transpose().map_err(db)
}

/// The flag and, when disabling, the revocation of every live refresh family and session of
/// the user, in one transaction: a disabled user keeps no way to get new tokens.
pub(super) async fn set_user_disabled(
    client: &mut Client,
    user_id: Uuid,
    disabled: bool,
    now: i64,
) -> Result<Option<u64>, StoreError> {
    let tx = client.transaction().await.map_err(db)?;
    let found = tx
        .execute_typed(
            "UPDATE users SET disabled = $1, disabled_reason = NULL WHERE id = $2",
            &[(&disabled, Type::BOOL), (&user_id, Type::UUID)],
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
    tx.commit().await.map_err(db)?;
    Ok(Some(revoked))
}

/// Compare-and-set on the hash: a concurrent change (another upgrade, a password reset) wins.
pub(super) async fn upgrade_password_hash(
    client: &Client,
    user_id: Uuid,
    old_hash: &str,
    new_hash: &str,
) -> Result<bool, StoreError> {
    // The trait passes no `now`; the database clock stamps `updated_at`.
    let changed = client
        .execute_typed(
            "UPDATE password_identities \
             SET password_hash = $1, updated_at = floor(extract(epoch FROM now()))::bigint \
             WHERE user_id = $2 AND password_hash = $3",
            &[
                (&new_hash, Type::TEXT),
                (&user_id, Type::UUID),
                (&old_hash, Type::TEXT),
            ],
        )
        .await
        .map_err(db)?;
    Ok(changed == 1)
}
