//! Cookie sessions.

use super::error::db;
use std::sync::LazyLock;

use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::Client;
use uuid::Uuid;

use super::events;
use super::user_row::{user_from, USER_COLUMNS, USER_COLUMN_COUNT};
use crate::{Consent, EventDraft, NewSession, Session, StoreError, TokenHash};

/// The session and the event: one statement (one round trip, atomic without `BEGIN`/`COMMIT`),
/// calling functions whose plans PostgreSQL caches per connection
/// (migrations/postgres/0004_hot_writes.sql).
pub(super) async fn create_session(
    client: &Client,
    session: &NewSession,
    event: Option<EventDraft>,
) -> Result<(), StoreError> {
    const INSERT_SESSION_CALL: &str = "hj_insert_session($1, $2, $3, $4, $5, $6, $7)";
    static WITH_EVENT: LazyLock<String> = LazyLock::new(|| {
        format!(
            "SELECT {INSERT_SESSION_CALL} AND {}",
            events::record_event_call(8)
        )
    });
    static WITHOUT_EVENT: LazyLock<String> =
        LazyLock::new(|| format!("SELECT {INSERT_SESSION_CALL}"));
    let hash: &[u8] = &session.id_hash;
    let amr = crate::model::amr_column(&session.amr);
    let event = event
        .map(|d| d.for_user(session.tenant_id, session.user_id))
        .transpose()?;
    let mut params: Vec<(&(dyn ToSql + Sync), Type)> = vec![
        (&hash, Type::BYTEA),
        (&session.user_id, Type::UUID),
        (&session.tenant_id, Type::UUID),
        (&session.client_id, Type::TEXT),
        (&session.created_at, Type::INT8),
        (&session.expires_at, Type::INT8),
        (&amr, Type::TEXT),
    ];
    let sql = match &event {
        Some(event) => {
            params.extend(events::event_params(event));
            &*WITH_EVENT
        }
        None => &*WITHOUT_EVENT,
    };
    client.execute_typed(sql, &params).await.map_err(db)?;
    Ok(())
}

/// The session and its user, whatever the session's state.
pub(super) async fn find_session(
    client: &Client,
    id_hash: &TokenHash,
) -> Result<Option<Session>, StoreError> {
    let hash: &[u8] = id_hash;
    let row = client
        .query_typed_opt(
            &format!(
                "SELECT {USER_COLUMNS}, s.client_id, s.created_at, s.expires_at, s.revoked_at, \
                        s.amr \
                 FROM sessions s JOIN users u ON u.id = s.user_id \
                 WHERE s.id_hash = $1"
            ),
            &[(&hash, Type::BYTEA)],
        )
        .await
        .map_err(db)?;
    let Some(row) = row else { return Ok(None) };
    Ok(Some(Session {
        user: user_from(&row, 0).map_err(db)?,
        client_id: row.try_get(USER_COLUMN_COUNT).map_err(db)?,
        created_at: row.try_get(USER_COLUMN_COUNT + 1).map_err(db)?,
        expires_at: row.try_get(USER_COLUMN_COUNT + 2).map_err(db)?,
        revoked_at: row.try_get(USER_COLUMN_COUNT + 3).map_err(db)?,
        amr: crate::model::amr_from_column(
            row.try_get::<_, Option<String>>(USER_COLUMN_COUNT + 4)
                .map_err(db)?
                .as_deref(),
        ),
    }))
}

/// Idempotent. True when this call revoked a not-yet-revoked session; only then is the event
/// written, in the same transaction.
pub(super) async fn revoke_session(
    client: &mut Client,
    id_hash: &TokenHash,
    event: Option<EventDraft>,
    now: i64,
) -> Result<bool, StoreError> {
    let hash: &[u8] = id_hash;
    let tx = client.transaction().await.map_err(db)?;
    let row = tx
        .query_typed_opt(
            "UPDATE sessions SET revoked_at = $1 WHERE id_hash = $2 AND revoked_at IS NULL \
             RETURNING tenant_id, user_id",
            &[(&now, Type::INT8), (&hash, Type::BYTEA)],
        )
        .await
        .map_err(db)?;
    let Some(row) = row else {
        return Ok(false);
    };
    if let Some(draft) = event {
        let (tenant_id, user_id): (Uuid, Uuid) =
            (row.try_get(0).map_err(db)?, row.try_get(1).map_err(db)?);
        events::insert_event(&tx, &draft.for_user(tenant_id, user_id)?).await?;
    }
    tx.commit().await.map_err(db)?;
    Ok(true)
}

/// The scopes `user_id` granted `client_id`, if any.
pub(super) async fn find_consent(
    client: &Client,
    user_id: Uuid,
    client_id: &str,
) -> Result<Option<Vec<String>>, StoreError> {
    let row = client
        .query_typed_opt(
            "SELECT c.scopes FROM consents c JOIN users u ON u.id = c.user_id \
             WHERE c.user_id = $1 AND c.client_id = $2 AND c.tenant_id = u.tenant_id",
            &[(&user_id, Type::UUID), (&client_id, Type::TEXT)],
        )
        .await
        .map_err(db)?;
    let Some(row) = row else { return Ok(None) };
    let scopes: String = row.try_get(0).map_err(db)?;
    Ok(Some(
        scopes
            .split_ascii_whitespace()
            .map(str::to_string)
            .collect(),
    ))
}

/// Records a consent (one statement: insert, or replace the user's earlier one).
pub(super) async fn put_consent(client: &Client, consent: &Consent) -> Result<(), StoreError> {
    let scopes = consent.scopes.join(" ");
    client
        .execute_typed(
            "INSERT INTO consents (user_id, tenant_id, client_id, scopes, granted_at) \
             VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (user_id, client_id) DO UPDATE \
             SET scopes = EXCLUDED.scopes, granted_at = EXCLUDED.granted_at, \
                 tenant_id = EXCLUDED.tenant_id",
            &[
                (&consent.user_id, Type::UUID),
                (&consent.tenant_id, Type::UUID),
                (&consent.client_id, Type::TEXT),
                (&scopes, Type::TEXT),
                (&consent.granted_at, Type::INT8),
            ],
        )
        .await
        .map_err(db)?;
    Ok(())
}
