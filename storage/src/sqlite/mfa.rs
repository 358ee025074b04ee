//! MFA: the TOTP factor, recovery codes, sign-in challenges and remembered devices.
//!
//! `users.mfa_enabled` is written only here, in the transactions that confirm or remove a
//! factor. Every single-use step (a TOTP time step, a recovery code, a challenge) is one
//! conditional `UPDATE` on the single writer: of concurrent calls exactly one changes the row.

use super::error::db;
use rusqlite::{params, Connection, OptionalExtension, Row, TransactionBehavior};
use uuid::Uuid;

use super::error::uuid_at;
use super::{events, refresh};
use crate::lifecycle::{ChallengeGrant, KeepSignIn, MfaChallenge, TotpFactor};
use crate::{EventDraft, StoreError, TokenHash};

pub(super) fn find_totp(
    conn: &Connection,
    user_id: Uuid,
) -> Result<Option<TotpFactor>, StoreError> {
    conn.prepare_cached(
        "SELECT user_id, secret_sealed, confirmed_at, last_step, created_at \
             FROM mfa_totp WHERE user_id = ?1",
    )
    .map_err(db)?
    .query_row([user_id.to_string()], |row| {
        Ok(TotpFactor {
            user_id: uuid_at(row, 0)?,
            secret_sealed: row.get(1)?,
            confirmed_at: row.get(2)?,
            last_step: row.get(3)?,
            created_at: row.get(4)?,
        })
    })
    .optional()
    .map_err(db)
}

/// One statement: a new unconfirmed factor, or the replacement of an unconfirmed one; nothing
/// when the factor is confirmed or the user does not exist.
pub(super) fn put_totp_secret(
    conn: &Connection,
    user_id: Uuid,
    secret_sealed: &[u8],
    now: i64,
) -> Result<bool, StoreError> {
    let changed = conn
        .prepare_cached(
            "INSERT INTO mfa_totp (user_id, secret_sealed, confirmed_at, last_step, created_at) \
             SELECT ?1, ?2, NULL, NULL, ?3 WHERE EXISTS (SELECT 1 FROM users WHERE id = ?1) \
             ON CONFLICT (user_id) DO UPDATE \
             SET secret_sealed = excluded.secret_sealed, last_step = NULL, \
                 created_at = excluded.created_at \
             WHERE mfa_totp.confirmed_at IS NULL",
        )
        .map_err(db)?
        .execute(params![user_id.to_string(), secret_sealed, now])
        .map_err(db)?;
    Ok(changed == 1)
}

/// Replaces the user's recovery codes inside the caller's transaction.
fn put_recovery_codes(
    conn: &Connection,
    user_id: &str,
    recovery: &[TokenHash],
    now: i64,
) -> Result<(), StoreError> {
    conn.prepare_cached("DELETE FROM mfa_recovery_codes WHERE user_id = ?1")
        .map_err(db)?
        .execute([user_id])
        .map_err(db)?;
    let mut insert = conn
        .prepare_cached(
            "INSERT INTO mfa_recovery_codes (user_id, code_hash, used_at, created_at) \
         VALUES (?1, ?2, NULL, ?3) ON CONFLICT (user_id, code_hash) DO NOTHING",
        )
        .map_err(db)?;
    for code in recovery {
        insert
            .execute(params![user_id, &code[..], now])
            .map_err(db)?;
    }
    Ok(())
}

/// Sets `users.mfa_enabled` inside the caller's transaction. Returns the user's tenant.
fn set_mfa_enabled(
    conn: &Connection,
    user_id: &str,
    enabled: bool,
) -> Result<Option<Uuid>, StoreError> {
    conn.prepare_cached("UPDATE users SET mfa_enabled = ?1 WHERE id = ?2 RETURNING tenant_id")
        .map_err(db)?
        .query_row(params![enabled, user_id], |row| uuid_at(row, 0))
        .optional()
        .map_err(db)
}

/// One transaction: the conditional confirmation, the recovery codes, the user's flag and the
/// event.
pub(super) fn confirm_totp(
    conn: &mut Connection,
    user_id: Uuid,
    step: i64,
    recovery: &[TokenHash],
    keep: KeepSignIn,
    event: Option<EventDraft>,
    now: i64,
) -> Result<bool, StoreError> {
    let user = user_id.to_string();
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(db)?;
    let confirmed = tx
        .prepare_cached(
            "UPDATE mfa_totp SET confirmed_at = ?2, last_step = ?3 \
             WHERE user_id = ?1 AND confirmed_at IS NULL",
        )
        .map_err(db)?
        .execute(params![user, now, step])
        .map_err(db)?;
    if confirmed == 0 {
        return Ok(false);
    }
    put_recovery_codes(&tx, &user, recovery, now)?;
    // The sign-ins made without the factor end, but for the caller's own.
    tx.prepare_cached(
        "UPDATE refresh_families SET revoked_at = ?1 \
         WHERE user_id = ?2 AND revoked_at IS NULL AND (?3 IS NULL OR id <> ?3)",
    )
    .map_err(db)?
    .execute(params![now, user, keep.family_id.map(|f| f.to_string())])
    .map_err(db)?;
    tx.prepare_cached(
        "UPDATE sessions SET revoked_at = ?1 \
         WHERE user_id = ?2 AND revoked_at IS NULL AND (?3 IS NULL OR id_hash <> ?3)",
    )
    .map_err(db)?
    .execute(params![now, user, keep.session.as_ref().map(|h| &h[..])])
    .map_err(db)?;
    let tenant_id = set_mfa_enabled(&tx, &user, true)?
        .ok_or_else(|| StoreError::Internal(format!("TOTP factor of a missing user {user}")))?;
    events::insert_draft(&tx, event, |d| d.for_user(tenant_id, user_id))?;
    tx.commit().map_err(db)?;
    Ok(true)
}

pub(super) fn use_totp_step(
    conn: &Connection,
    user_id: Uuid,
    step: i64,
) -> Result<bool, StoreError> {
    let changed = conn
        .prepare_cached(
            "UPDATE mfa_totp SET last_step = ?2 \
             WHERE user_id = ?1 AND confirmed_at IS NOT NULL \
             AND (last_step IS NULL OR last_step < ?2)",
        )
        .map_err(db)?
        .execute(params![user_id.to_string(), step])
        .map_err(db)?;
    Ok(changed == 1)
}

/// One transaction: the factor, recovery codes, remembered devices and open challenges go, the
/// user's flag is cleared, and the event is written (only when a factor existed).
pub(super) fn delete_totp(
    conn: &mut Connection,
    user_id: Uuid,
    event: Option<EventDraft>,
) -> Result<bool, StoreError> {
    let user = user_id.to_string();
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(db)?;
    let deleted = tx
        .prepare_cached("DELETE FROM mfa_totp WHERE user_id = ?1")
        .map_err(db)?
        .execute([&user])
        .map_err(db)?;
    if deleted == 0 {
        return Ok(false);
    }
    tx.prepare_cached("DELETE FROM mfa_recovery_codes WHERE user_id = ?1")
        .map_err(db)?
        .execute([&user])
        .map_err(db)?;
    tx.prepare_cached("DELETE FROM mfa_trusted_devices WHERE user_id = ?1")
        .map_err(db)?
        .execute([&user])
        .map_err(db)?;
    tx.prepare_cached("DELETE FROM mfa_challenges WHERE user_id = ?1 AND completed_at IS NULL")
        .map_err(db)?
        .execute([&user])
        .map_err(db)?;
    let tenant_id = set_mfa_enabled(&tx, &user, false)?
        .ok_or_else(|| StoreError::Internal(format!("TOTP factor of a missing user {user}")))?;
    events::insert_draft(&tx, event, |d| d.for_user(tenant_id, user_id))?;
    tx.commit().map_err(db)?;
    Ok(true)
}

/// Replaces the recovery codes in one transaction, only while a confirmed factor exists.
pub(super) fn replace_recovery_codes(
    conn: &mut Connection,
    user_id: Uuid,
    recovery: &[TokenHash],
    now: i64,
) -> Result<bool, StoreError> {
    let user = user_id.to_string();
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(db)?;
    let confirmed: bool = tx
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM mfa_totp \
                            WHERE user_id = ?1 AND confirmed_at IS NOT NULL)",
        )
        .map_err(db)?
        .query_row([&user], |row| row.get(0))
        .map_err(db)?;
    if !confirmed {
        return Ok(false);
    }
    put_recovery_codes(&tx, &user, recovery, now)?;
    tx.commit().map_err(db)?;
    Ok(true)
}

pub(super) fn use_recovery_code(
    conn: &Connection,
    user_id: Uuid,
    code_hash: &TokenHash,
    now: i64,
) -> Result<bool, StoreError> {
    let changed = conn
        .prepare_cached(
            "UPDATE mfa_recovery_codes SET used_at = ?3 \
             WHERE user_id = ?1 AND code_hash = ?2 AND used_at IS NULL",
        )
        .map_err(db)?
        .execute(params![user_id.to_string(), &code_hash[..], now])
        .map_err(db)?;
    Ok(changed == 1)
}

pub(super) fn recovery_codes_left(conn: &Connection, user_id: Uuid) -> Result<u32, StoreError> {
    let n: i64 = conn
        .prepare_cached(
            "SELECT count(*) FROM mfa_recovery_codes WHERE user_id = ?1 AND used_at IS NULL",
        )
        .map_err(db)?
        .query_row([user_id.to_string()], |row| row.get(0))
        .map_err(db)?;
    Ok(u32::try_from(n).unwrap_or(u32::MAX))
}

const CHALLENGE_COLUMNS: &str = "token_hash, user_id, tenant_id, client_id, kind, failures, \
                                 expires_at, completed_at, created_at";

/// A challenge row, or `None` for one of a kind this release does not know (see
/// `tolerant::challenge_kind`).
fn challenge_from(row: &Row<'_>) -> rusqlite::Result<Option<MfaChallenge>> {
    let kind: String = row.get(4)?;
    let Some(kind) = crate::tolerant::challenge_kind(&kind) else {
        return Ok(None);
    };
    let failures: i64 = row.get(5)?;
    Ok(Some(MfaChallenge {
        token_hash: row.get(0)?,
        user_id: uuid_at(row, 1)?,
        tenant_id: uuid_at(row, 2)?,
        client_id: row.get(3)?,
        kind,
        failures: u32::try_from(failures).unwrap_or(u32::MAX),
        expires_at: row.get(6)?,
        completed_at: row.get(7)?,
        created_at: row.get(8)?,
    }))
}

pub(super) fn insert_mfa_challenge(
    conn: &Connection,
    challenge: &MfaChallenge,
) -> Result<(), StoreError> {
    conn.prepare_cached(&format!(
        "INSERT INTO mfa_challenges ({CHALLENGE_COLUMNS}) \
         VALUES (?1, ?2, ?3, ?4, ?5, 0, ?6, NULL, ?7)"
    ))
    .map_err(db)?
    .execute(params![
        &challenge.token_hash[..],
        challenge.user_id.to_string(),
        challenge.tenant_id.to_string(),
        challenge.client_id,
        challenge.kind.as_str(),
        challenge.expires_at,
        challenge.created_at,
    ])
    .map_err(db)?;
    Ok(())
}

pub(super) fn find_mfa_challenge(
    conn: &Connection,
    token_hash: &TokenHash,
) -> Result<Option<MfaChallenge>, StoreError> {
    conn.prepare_cached(&format!(
        "SELECT {CHALLENGE_COLUMNS} FROM mfa_challenges WHERE token_hash = ?1"
    ))
    .map_err(db)?
    .query_row([&token_hash[..]], challenge_from)
    .optional()
    .map(Option::flatten)
    .map_err(db)
}

pub(super) fn fail_mfa_challenge(
    conn: &Connection,
    token_hash: &TokenHash,
) -> Result<u32, StoreError> {
    let failures: Option<i64> = conn
        .prepare_cached(
            "UPDATE mfa_challenges SET failures = failures + 1 WHERE token_hash = ?1 \
             RETURNING failures",
        )
        .map_err(db)?
        .query_row([&token_hash[..]], |row| row.get(0))
        .optional()
        .map_err(db)?;
    Ok(failures.map_or(0, |n| u32::try_from(n).unwrap_or(u32::MAX)))
}

/// One transaction: the conditional update that completes the challenge and, only if it did,
/// the grant's refresh family and token, session, remembered device and event.
pub(super) fn complete_mfa_challenge(
    conn: &mut Connection,
    token_hash: &TokenHash,
    max_failures: u32,
    grant: ChallengeGrant,
    now: i64,
) -> Result<bool, StoreError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(db)?;
    let completed = tx
        .prepare_cached(
            "UPDATE mfa_challenges SET completed_at = ?2 \
             WHERE token_hash = ?1 AND completed_at IS NULL AND expires_at > ?2 \
             AND failures < ?3 \
             RETURNING user_id, tenant_id",
        )
        .map_err(db)?
        .query_row(
            params![&token_hash[..], now, i64::from(max_failures)],
            |row| Ok((uuid_at(row, 0)?, uuid_at(row, 1)?)),
        )
        .optional()
        .map_err(db)?;
    let Some((user_id, tenant_id)) = completed else {
        return Ok(false);
    };
    let ChallengeGrant {
        refresh,
        session,
        trusted_device,
        event,
    } = grant;
    if let Some(token) = &refresh {
        if token.user_id != user_id {
            return Err(StoreError::Internal(
                "complete_mfa_challenge: the refresh token is for another user".into(),
            ));
        }
        refresh::insert_family_and_token(&tx, token, token.issued_at)?;
    }
    if let Some(session) = &session {
        if session.user_id != user_id {
            return Err(StoreError::Internal(
                "complete_mfa_challenge: the session is for another user".into(),
            ));
        }
        tx.prepare_cached(
            "INSERT INTO sessions (id_hash, user_id, tenant_id, client_id, created_at, \
                                   expires_at, amr, id) \
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
            Uuid::new_v4().to_string(),
        ])
        .map_err(db)?;
    }
    if let Some((device_hash, expires_at)) = trusted_device {
        tx.prepare_cached(
            "INSERT INTO mfa_trusted_devices (token_hash, user_id, expires_at, created_at) \
             VALUES (?1, ?2, ?3, ?4)",
        )
        .map_err(db)?
        .execute(params![
            &device_hash[..],
            user_id.to_string(),
            expires_at,
            now
        ])
        .map_err(db)?;
    }
    events::insert_draft(&tx, event, |d| d.for_user(tenant_id, user_id))?;
    tx.commit().map_err(db)?;
    Ok(true)
}

pub(super) fn is_trusted_device(
    conn: &Connection,
    user_id: Uuid,
    token_hash: &TokenHash,
    now: i64,
) -> Result<bool, StoreError> {
    conn.prepare_cached(
        "SELECT EXISTS (SELECT 1 FROM mfa_trusted_devices \
                            WHERE token_hash = ?1 AND user_id = ?2 AND expires_at > ?3)",
    )
    .map_err(db)?
    .query_row(params![&token_hash[..], user_id.to_string(), now], |row| {
        row.get(0)
    })
    .map_err(db)
}

/// Up to `limit` rows in all: expired challenges first, then expired remembered devices.
pub(super) fn prune_mfa(conn: &mut Connection, before: i64, limit: u32) -> Result<u64, StoreError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(db)?;
    let challenges = tx
        .prepare_cached(
            "DELETE FROM mfa_challenges WHERE token_hash IN \
             (SELECT token_hash FROM mfa_challenges WHERE expires_at < ?1 LIMIT ?2)",
        )
        .map_err(db)?
        .execute(params![before, limit])
        .map_err(db)?;
    let left = u64::from(limit).saturating_sub(challenges as u64);
    let devices = if left == 0 {
        0
    } else {
        tx.prepare_cached(
            "DELETE FROM mfa_trusted_devices WHERE token_hash IN \
             (SELECT token_hash FROM mfa_trusted_devices WHERE expires_at < ?1 LIMIT ?2)",
        )
        .map_err(db)?
        .execute(params![before, left as i64])
        .map_err(db)?
    };
    tx.commit().map_err(db)?;
    Ok((challenges + devices) as u64)
}
