//! Refresh tokens and their families, and "log out everywhere".

use super::error::db;
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use uuid::Uuid;

use super::error::uuid_at;
use super::{events, user_row};
use crate::rotation::{rotation_step, RotationStep};
use crate::{
    EventDraft, NewRefreshToken, NextRefresh, RefreshRotation, RefreshToken, RotateOutcome,
    StoreError, TokenHash,
};

/// Inserts the token's family unless it exists (`created_at` for a new one), then the token.
/// Runs inside the caller's transaction. A family of another user is refused.
pub(super) fn insert_family_and_token(
    conn: &Connection,
    token: &NewRefreshToken,
    created_at: i64,
) -> Result<(), StoreError> {
    let family_id = token.family_id.to_string();
    let user_id = token.user_id.to_string();
    let inserted = conn
        .prepare_cached(
            "INSERT INTO refresh_families (id, user_id, tenant_id, client_id, created_at) \
             VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (id) DO NOTHING",
        )
        .map_err(db)?
        .execute(params![
            family_id,
            user_id,
            token.tenant_id.to_string(),
            token.client_id,
            created_at
        ])
        .map_err(db)?;
    if inserted == 0 {
        let owner = conn
            .prepare_cached("SELECT user_id FROM refresh_families WHERE id = ?1")
            .map_err(db)?
            .query_row([&family_id], |row| uuid_at(row, 0))
            .map_err(db)?;
        if owner != token.user_id {
            return Err(StoreError::Internal(
                "refresh token for a family of another user".into(),
            ));
        }
    }
    insert_token(conn, token, &family_id, &user_id)
}

fn insert_token(
    conn: &Connection,
    token: &NewRefreshToken,
    family_id: &str,
    user_id: &str,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO refresh_tokens (token_hash, family_id, user_id, tenant_id, client_id, \
                                     issued_at, expires_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )
    .map_err(db)?
    .execute(params![
        &token.token_hash[..],
        family_id,
        user_id,
        token.tenant_id.to_string(),
        token.client_id,
        token.issued_at,
        token.expires_at,
    ])
    .map_err(db)?;
    Ok(())
}

/// A new family on sign-in (or one more token in an existing family of the same user), and the
/// event, in one transaction.
pub(super) fn insert_refresh_token(
    conn: &mut Connection,
    token: &NewRefreshToken,
    event: Option<EventDraft>,
) -> Result<(), StoreError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(db)?;
    insert_family_and_token(&tx, token, token.issued_at)?;
    events::insert_draft(&tx, event, |d| d.for_user(token.tenant_id, token.user_id))?;
    tx.commit().map_err(db)?;
    Ok(())
}

pub(super) fn find_refresh_token(
    conn: &Connection,
    token_hash: &TokenHash,
) -> Result<Option<RefreshToken>, StoreError> {
    conn.prepare_cached(
        "SELECT t.family_id, t.user_id, t.tenant_id, t.client_id, t.issued_at, t.expires_at, \
                    t.rotated_at, f.revoked_at, f.scopes \
             FROM refresh_tokens t JOIN refresh_families f ON f.id = t.family_id \
             WHERE t.token_hash = ?1",
    )
    .map_err(db)?
    .query_row([&token_hash[..]], |row| {
        Ok(RefreshToken {
            family_id: uuid_at(row, 0)?,
            user_id: uuid_at(row, 1)?,
            tenant_id: uuid_at(row, 2)?,
            client_id: row.get(3)?,
            issued_at: row.get(4)?,
            expires_at: row.get(5)?,
            rotated_at: row.get(6)?,
            family_revoked_at: row.get(7)?,
            scopes: row
                .get::<_, Option<String>>(8)?
                .map(|text| serde_json::from_str(&text))
                .transpose()
                .map_err(|e| {
                    rusqlite::Error::FromSqlConversionFailure(
                        8,
                        rusqlite::types::Type::Text,
                        Box::new(e),
                    )
                })?,
        })
    })
    .optional()
    .map_err(db)
}

/// Sets `revoked_at` on the family unless already set. Returns whether it changed.
fn revoke_family(conn: &Connection, family_id: Uuid, now: i64) -> Result<bool, StoreError> {
    let changed = conn
        .prepare_cached(
            "UPDATE refresh_families SET revoked_at = ?1 WHERE id = ?2 AND revoked_at IS NULL",
        )
        .map_err(db)?
        .execute(params![now, family_id.to_string()])
        .map_err(db)?;
    Ok(changed == 1)
}

/// One `BEGIN IMMEDIATE` transaction that carries out [`rotation_step`]'s decision: the
/// conditional update marks the token rotated and, if it did, the new token joins the same
/// family.
pub(super) fn rotate_refresh_token(
    conn: &mut Connection,
    old_hash: &TokenHash,
    client_id: &str,
    new: &NewRefreshToken,
    reuse_event: Option<EventDraft>,
    now: i64,
) -> Result<RotateOutcome, StoreError> {
    let next = NextRefresh {
        token_hash: new.token_hash,
        issued_at: new.issued_at,
        expires_at: new.expires_at,
    };
    rotate(conn, old_hash, None, client_id, &next, reuse_event, now)
}

/// [`rotate_refresh_token`] for a caller that names the token's tenant: one of another tenant
/// is `NotFound`.
pub(super) fn rotate_refresh(
    conn: &mut Connection,
    rotation: RefreshRotation,
) -> Result<RotateOutcome, StoreError> {
    rotate(
        conn,
        &rotation.old_hash,
        Some(rotation.tenant_id),
        &rotation.client_id,
        &rotation.next,
        rotation.reuse_event,
        rotation.now,
    )
}

fn rotate(
    conn: &mut Connection,
    old_hash: &TokenHash,
    tenant_id: Option<Uuid>,
    client_id: &str,
    next: &NextRefresh,
    reuse_event: Option<EventDraft>,
    now: i64,
) -> Result<RotateOutcome, StoreError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(db)?;
    let found = find_refresh_token(&tx, old_hash)?;
    let (step, old) = match rotation_step(found, tenant_id, client_id, now) {
        Ok(found) => found,
        Err(refused) => return Ok(refused.into()),
    };
    let reused = RotateOutcome::Reused {
        family_id: old.family_id,
        user_id: old.user_id,
    };
    if step == RotationStep::RevokeReused {
        revoke_family(&tx, old.family_id, now)?;
        events::insert_draft(&tx, reuse_event, |d| d.for_token(&old))?;
        tx.commit().map_err(db)?;
        return Ok(reused);
    }
    let marked = tx
        .prepare_cached(
            "UPDATE refresh_tokens SET rotated_at = ?1 WHERE token_hash = ?2 AND rotated_at IS NULL",
        ).map_err(db)?
        .execute(params![now, &old_hash[..]]).map_err(db)?;
    if marked == 0 {
        // Rotated by someone else in between (cannot happen behind the single writer, but the
        // conditional update is what decides).
        revoke_family(&tx, old.family_id, now)?;
        events::insert_draft(&tx, reuse_event, |d| d.for_token(&old))?;
        tx.commit().map_err(db)?;
        return Ok(reused);
    }
    let user = user_row::get_user(&tx, old.user_id)?.ok_or_else(|| {
        StoreError::Internal(format!("refresh token of a missing user {}", old.user_id))
    })?;
    // The successor always joins the old token's family, user and client.
    let successor = NewRefreshToken {
        token_hash: next.token_hash,
        family_id: old.family_id,
        user_id: old.user_id,
        tenant_id: old.tenant_id,
        client_id: old.client_id,
        issued_at: next.issued_at,
        expires_at: next.expires_at,
    };
    insert_token(
        &tx,
        &successor,
        &old.family_id.to_string(),
        &old.user_id.to_string(),
    )?;
    tx.commit().map_err(db)?;
    Ok(RotateOutcome::Rotated {
        user,
        family_id: old.family_id,
        scopes: old.scopes,
    })
}

/// Revokes the token's family (idempotent). Returns the token's record as it stands after the
/// call (`family_revoked_at` set), or `None` for an unknown token.
pub(super) fn revoke_refresh_family(
    conn: &mut Connection,
    token_hash: &TokenHash,
    event: Option<EventDraft>,
    now: i64,
) -> Result<Option<RefreshToken>, StoreError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(db)?;
    let Some(mut token) = find_refresh_token(&tx, token_hash)? else {
        return Ok(None);
    };
    if token.family_revoked_at.is_none() && revoke_family(&tx, token.family_id, now)? {
        token.family_revoked_at = Some(now);
        events::insert_draft(&tx, event, |d| d.for_token(&token))?;
    }
    tx.commit().map_err(db)?;
    Ok(Some(token))
}

/// Revokes every live (not yet revoked) refresh family and session of the user, and writes the
/// event (its metadata gains `revoked`), in one transaction. Returns how many families plus
/// sessions were revoked.
pub(super) fn revoke_all_for_user(
    conn: &mut Connection,
    user_id: Uuid,
    event: Option<EventDraft>,
    now: i64,
) -> Result<u64, StoreError> {
    let user = user_id;
    let user_id = user_id.to_string();
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(db)?;
    let revoked = revoke_all_in(&tx, user, now)?;
    if let Some(draft) = event {
        let tenant_id = match draft.tenant_id {
            Some(t) => t,
            None => tx
                .prepare_cached("SELECT tenant_id FROM users WHERE id = ?1")
                .map_err(db)?
                .query_row([&user_id], |row| uuid_at(row, 0))
                .map_err(db)?,
        };
        let event = draft.with_revoked(revoked).for_user(tenant_id, user)?;
        events::insert_event(&tx, &event)?;
    }
    tx.commit().map_err(db)?;
    Ok(revoked)
}

/// Revokes every live refresh family and session of the user inside the caller's
/// transaction. Returns how many families plus sessions were revoked.
pub(super) fn revoke_all_in(conn: &Connection, user_id: Uuid, now: i64) -> Result<u64, StoreError> {
    let user_id = user_id.to_string();
    let families = conn
        .prepare_cached(
            "UPDATE refresh_families SET revoked_at = ?1 WHERE user_id = ?2 AND revoked_at IS NULL",
        )
        .map_err(db)?
        .execute(params![now, user_id])
        .map_err(db)?;
    let sessions = conn
        .prepare_cached(
            "UPDATE sessions SET revoked_at = ?1 WHERE user_id = ?2 AND revoked_at IS NULL",
        )
        .map_err(db)?
        .execute(params![now, user_id])
        .map_err(db)?;
    Ok((families + sessions) as u64)
}
