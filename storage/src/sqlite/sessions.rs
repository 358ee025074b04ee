//! Cookie sessions.

use super::error::db;
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use super::error::uuid_at;
use super::events;
use super::user_row::{user_from, USER_COLUMNS, USER_COLUMN_COUNT};
use crate::{Consent, EventDraft, NewSession, Session, StoreError, TokenHash};

/// The session and the event, in one transaction.
pub(super) fn create_session(
    conn: &mut Connection,
    session: &NewSession,
    event: Option<EventDraft>,
) -> Result<(), StoreError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(db)?;
    tx.prepare_cached(
        "INSERT INTO sessions (id_hash, user_id, tenant_id, client_id, created_at, expires_at, \
                               amr, id) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )
    .map_err(db)?
    .execute(params![
        &session.id_hash[..],
        session.user_id.to_string(),
        session.tenant_id.to_string(),
        session.client_id,
        session.created_at,
        session.expires_at,
        crate::model::amr_column(&session.amr),
        uuid::Uuid::new_v4().to_string(),
    ])
    .map_err(db)?;
    events::insert_draft(&tx, event, |d| {
        d.for_user(session.tenant_id, session.user_id)
    })?;
    tx.commit().map_err(db)?;
    Ok(())
}

/// The session and its user, whatever the session's state.
pub(super) fn find_session(
    conn: &Connection,
    id_hash: &TokenHash,
) -> Result<Option<Session>, StoreError> {
    conn.prepare_cached(&format!(
        "SELECT {USER_COLUMNS}, s.client_id, s.created_at, s.expires_at, s.revoked_at, \
                    s.amr \
             FROM sessions s JOIN users u ON u.id = s.user_id \
             WHERE s.id_hash = ?1"
    ))
    .map_err(db)?
    .query_row([&id_hash[..]], |row| {
        let at = USER_COLUMN_COUNT;
        Ok(Session {
            user: user_from(row, 0)?,
            client_id: row.get(at)?,
            created_at: row.get(at + 1)?,
            expires_at: row.get(at + 2)?,
            revoked_at: row.get(at + 3)?,
            amr: crate::model::amr_from_column(row.get::<_, Option<String>>(at + 4)?.as_deref()),
        })
    })
    .optional()
    .map_err(db)
}

/// Idempotent. True when this call revoked a not-yet-revoked session; only then is the event
/// written, in the same transaction.
pub(super) fn revoke_session(
    conn: &mut Connection,
    id_hash: &TokenHash,
    event: Option<EventDraft>,
    now: i64,
) -> Result<bool, StoreError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(db)?;
    let revoked = tx
        .prepare_cached(
            "UPDATE sessions SET revoked_at = ?1 WHERE id_hash = ?2 AND revoked_at IS NULL \
             RETURNING tenant_id, user_id",
        )
        .map_err(db)?
        .query_row(params![now, &id_hash[..]], |row| {
            Ok((uuid_at(row, 0)?, uuid_at(row, 1)?))
        })
        .optional()
        .map_err(db)?;
    let Some((tenant_id, user_id)) = revoked else {
        return Ok(false);
    };
    events::insert_draft(&tx, event, |d| d.for_user(tenant_id, user_id))?;
    tx.commit().map_err(db)?;
    Ok(true)
}

/// The scopes `user_id` granted `client_id`, if any.
pub(super) fn find_consent(
    conn: &Connection,
    user_id: uuid::Uuid,
    client_id: &str,
) -> Result<Option<Vec<String>>, StoreError> {
    let scopes: Option<String> = conn
        .prepare_cached(
            "SELECT c.scopes FROM consents c JOIN users u ON u.id = c.user_id \
             WHERE c.user_id = ?1 AND c.client_id = ?2 AND c.tenant_id = u.tenant_id",
        )
        .map_err(db)?
        .query_row(params![user_id.to_string(), client_id], |row| row.get(0))
        .optional()
        .map_err(db)?;
    Ok(scopes.map(|s| s.split_ascii_whitespace().map(str::to_string).collect()))
}

/// Records a consent, replacing the user's earlier one for that client.
pub(super) fn put_consent(conn: &mut Connection, consent: &Consent) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO consents (user_id, tenant_id, client_id, scopes, granted_at) \
         VALUES (?1, ?2, ?3, ?4, ?5) \
         ON CONFLICT (user_id, client_id) DO UPDATE \
         SET scopes = excluded.scopes, granted_at = excluded.granted_at, \
             tenant_id = excluded.tenant_id",
    )
    .map_err(db)?
    .execute(params![
        consent.user_id.to_string(),
        consent.tenant_id.to_string(),
        consent.client_id,
        consent.scopes.join(" "),
        consent.granted_at,
    ])
    .map_err(db)?;
    Ok(())
}
