//! MFA: the TOTP factor, its recovery codes, sign-in challenges and remembered devices.
//!
//! `users.mfa_enabled` changes only in the transactions that confirm or remove a factor.
//! Every single-use step (a TOTP time step, a recovery code, a challenge) is one conditional
//! update, so of concurrent calls exactly one applies. Changes to the factor's dependants
//! (recovery codes) first lock or change the factor's row, so they serialise with its removal.

use super::error::db;
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{Client, Row, Transaction};
use uuid::Uuid;

use super::pipelined::{pipelined2, pipelined4};
use super::{events, refresh};
use crate::lifecycle::{ChallengeGrant, KeepSignIn, MfaChallenge, TotpFactor};
use crate::{EventDraft, StoreError, TokenHash};

pub(super) async fn find_totp(
    client: &Client,
    user_id: Uuid,
) -> Result<Option<TotpFactor>, StoreError> {
    let row = client
        .query_typed_opt(
            "SELECT secret_sealed, confirmed_at, last_step, created_at \
             FROM mfa_totp WHERE user_id = $1",
            &[(&user_id, Type::UUID)],
        )
        .await
        .map_err(db)?;
    let Some(row) = row else { return Ok(None) };
    Ok(Some(TotpFactor {
        user_id,
        secret_sealed: row.try_get(0).map_err(db)?,
        confirmed_at: row.try_get(1).map_err(db)?,
        last_step: row.try_get(2).map_err(db)?,
        created_at: row.try_get(3).map_err(db)?,
    }))
}

/// One statement: inserts the unconfirmed factor, or replaces an unconfirmed one; a confirmed
/// factor or a missing user changes nothing.
pub(super) async fn put_totp_secret(
    client: &Client,
    user_id: Uuid,
    secret_sealed: Vec<u8>,
    now: i64,
) -> Result<bool, StoreError> {
    let changed = client
        .execute_typed(
            "INSERT INTO mfa_totp (user_id, secret_sealed, confirmed_at, last_step, created_at) \
             SELECT u.id, $2, NULL, NULL, $3 FROM users u WHERE u.id = $1 \
             ON CONFLICT (user_id) DO UPDATE \
             SET secret_sealed = EXCLUDED.secret_sealed, last_step = NULL, \
             created_at = EXCLUDED.created_at \
             WHERE mfa_totp.confirmed_at IS NULL",
            &[
                (&user_id, Type::UUID),
                (&secret_sealed, Type::BYTEA),
                (&now, Type::INT8),
            ],
        )
        .await
        .map_err(db)?;
    Ok(changed == 1)
}

/// Replaces the user's recovery codes inside the caller's transaction (both statements
/// pipelined).
async fn replace_codes_in(
    tx: &Transaction<'_>,
    user_id: Uuid,
    recovery: &[TokenHash],
    now: i64,
) -> Result<(), StoreError> {
    let hashes: Vec<&[u8]> = recovery.iter().map(|h| h.as_slice()).collect();
    let (deleted, inserted) = pipelined2(
        async {
            tx.execute_typed(
                "DELETE FROM mfa_recovery_codes WHERE user_id = $1",
                &[(&user_id, Type::UUID)],
            )
            .await
        },
        async {
            tx.execute_typed(
                "INSERT INTO mfa_recovery_codes (user_id, code_hash, used_at, created_at) \
                 SELECT $1, h, NULL, $3 FROM unnest($2::bytea[]) AS h \
                 ON CONFLICT (user_id, code_hash) DO NOTHING",
                &[
                    (&user_id, Type::UUID),
                    (&hashes, Type::BYTEA_ARRAY),
                    (&now, Type::INT8),
                ],
            )
            .await
        },
    )
    .await;
    deleted.map_err(db)?;
    inserted.map_err(db)?;
    Ok(())
}

/// One transaction: the conditional update that confirms the factor (nothing else when there
/// is no unconfirmed factor), then the recovery codes, `users.mfa_enabled` and the event.
pub(super) async fn confirm_totp(
    client: &mut Client,
    user_id: Uuid,
    step: i64,
    recovery: Vec<TokenHash>,
    keep: KeepSignIn,
    event: Option<EventDraft>,
    now: i64,
) -> Result<bool, StoreError> {
    let tx = client.transaction().await.map_err(db)?;
    let confirmed = tx
        .query_typed_opt(
            "UPDATE mfa_totp t SET confirmed_at = $2, last_step = $3 FROM users u \
             WHERE t.user_id = $1 AND u.id = t.user_id AND t.confirmed_at IS NULL \
             RETURNING u.tenant_id",
            &[
                (&user_id, Type::UUID),
                (&now, Type::INT8),
                (&step, Type::INT8),
            ],
        )
        .await
        .map_err(db)?;
    let Some(row) = confirmed else {
        return Ok(false);
    };
    let tenant_id: Uuid = row.try_get(0).map_err(db)?;
    let event = event.map(|d| d.for_user(tenant_id, user_id)).transpose()?;
    let keep_session: Option<&[u8]> = keep.session.as_ref().map(|h| &h[..]);
    let (codes, families, sessions, flagged, recorded) = tokio::join!(
        biased;
        replace_codes_in(&tx, user_id, &recovery, now),
        // The sign-ins made without the factor end, but for the caller's own.
        async {
            tx.execute_typed(
                "UPDATE refresh_families SET revoked_at = $1 \
                 WHERE user_id = $2 AND revoked_at IS NULL AND ($3::uuid IS NULL OR id <> $3)",
                &[
                    (&now, Type::INT8),
                    (&user_id, Type::UUID),
                    (&keep.family_id, Type::UUID),
                ],
            )
            .await
        },
        async {
            tx.execute_typed(
                "UPDATE sessions SET revoked_at = $1 \
                 WHERE user_id = $2 AND revoked_at IS NULL \
                 AND ($3::bytea IS NULL OR id_hash <> $3)",
                &[
                    (&now, Type::INT8),
                    (&user_id, Type::UUID),
                    (&keep_session, Type::BYTEA),
                ],
            )
            .await
        },
        async {
            tx.execute_typed(
                "UPDATE users SET mfa_enabled = true WHERE id = $1",
                &[(&user_id, Type::UUID)],
            )
            .await
        },
        events::insert_opt(&tx, event.as_ref()),
    );
    codes?;
    families.map_err(db)?;
    sessions.map_err(db)?;
    flagged.map_err(db)?;
    recorded?;
    tx.commit().await.map_err(db)?;
    Ok(true)
}

/// One conditional update: of concurrent calls with one step, exactly one changes the row.
pub(super) async fn use_totp_step(
    client: &Client,
    user_id: Uuid,
    step: i64,
) -> Result<bool, StoreError> {
    let changed = client
        .execute_typed(
            "UPDATE mfa_totp SET last_step = $2 \
             WHERE user_id = $1 AND confirmed_at IS NOT NULL \
             AND (last_step IS NULL OR last_step < $2)",
            &[(&user_id, Type::UUID), (&step, Type::INT8)],
        )
        .await
        .map_err(db)?;
    Ok(changed == 1)
}

/// One transaction, the statements pipelined: the factor, its recovery codes, the remembered
/// devices and open challenges go, `users.mfa_enabled` is cleared; then the event, only when a
/// factor existed.
pub(super) async fn delete_totp(
    client: &mut Client,
    user_id: Uuid,
    event: Option<EventDraft>,
) -> Result<bool, StoreError> {
    let tx = client.transaction().await.map_err(db)?;
    let id: [(&(dyn ToSql + Sync), Type); 1] = [(&user_id, Type::UUID)];
    let (factor, codes, devices, challenges, user) = tokio::join!(
        biased;
        async { tx.execute_typed("DELETE FROM mfa_totp WHERE user_id = $1", &id).await },
        async {
            tx.execute_typed("DELETE FROM mfa_recovery_codes WHERE user_id = $1", &id)
                .await
        },
        async {
            tx.execute_typed("DELETE FROM mfa_trusted_devices WHERE user_id = $1", &id)
                .await
        },
        async {
            tx.execute_typed(
                "DELETE FROM mfa_challenges WHERE user_id = $1 AND completed_at IS NULL",
                &id,
            )
            .await
        },
        async {
            tx.query_typed_opt(
                "UPDATE users SET mfa_enabled = false WHERE id = $1 RETURNING tenant_id",
                &id,
            )
            .await
        },
    );
    let existed = factor.map_err(db)? == 1;
    codes.map_err(db)?;
    devices.map_err(db)?;
    challenges.map_err(db)?;
    let user = user.map_err(db)?;
    if !existed {
        return Ok(false);
    }
    if let (Some(draft), Some(row)) = (event, user) {
        let tenant_id: Uuid = row.try_get(0).map_err(db)?;
        events::insert_event(&tx, &draft.for_user(tenant_id, user_id)?).await?;
    }
    tx.commit().await.map_err(db)?;
    Ok(true)
}

/// One transaction: locks the confirmed factor (a concurrent removal either waits for this or
/// wins, and then nothing changes), then replaces the codes.
pub(super) async fn replace_recovery_codes(
    client: &mut Client,
    user_id: Uuid,
    recovery: Vec<TokenHash>,
    now: i64,
) -> Result<bool, StoreError> {
    let tx = client.transaction().await.map_err(db)?;
    let factor = tx
        .query_typed_opt(
            "SELECT 1 FROM mfa_totp WHERE user_id = $1 AND confirmed_at IS NOT NULL FOR SHARE",
            &[(&user_id, Type::UUID)],
        )
        .await
        .map_err(db)?;
    if factor.is_none() {
        return Ok(false);
    }
    replace_codes_in(&tx, user_id, &recovery, now).await?;
    tx.commit().await.map_err(db)?;
    Ok(true)
}

pub(super) async fn use_recovery_code(
    client: &Client,
    user_id: Uuid,
    code_hash: TokenHash,
    now: i64,
) -> Result<bool, StoreError> {
    let hash: &[u8] = &code_hash;
    let changed = client
        .execute_typed(
            "UPDATE mfa_recovery_codes SET used_at = $3 \
             WHERE user_id = $1 AND code_hash = $2 AND used_at IS NULL",
            &[
                (&user_id, Type::UUID),
                (&hash, Type::BYTEA),
                (&now, Type::INT8),
            ],
        )
        .await
        .map_err(db)?;
    Ok(changed == 1)
}

pub(super) async fn recovery_codes_left(client: &Client, user_id: Uuid) -> Result<u32, StoreError> {
    let n: i64 = client
        .query_typed_one(
            "SELECT count(*) FROM mfa_recovery_codes WHERE user_id = $1 AND used_at IS NULL",
            &[(&user_id, Type::UUID)],
        )
        .await
        .map_err(db)?
        .try_get(0)
        .map_err(db)?;
    Ok(u32::try_from(n).unwrap_or(u32::MAX))
}

/// The challenge columns of [`challenge_from`] (the token hash is the caller's).
const CHALLENGE_COLUMNS: &str =
    "user_id, tenant_id, client_id, kind, failures, expires_at, completed_at, created_at";

/// A challenge row, or `None` for one of a kind this release does not know (see
/// `tolerant::challenge_kind`).
fn challenge_from(token_hash: TokenHash, row: &Row) -> Result<Option<MfaChallenge>, StoreError> {
    let kind: String = row.try_get(3).map_err(db)?;
    let Some(kind) = crate::tolerant::challenge_kind(&kind) else {
        return Ok(None);
    };
    let failures: i32 = row.try_get(4).map_err(db)?;
    Ok(Some(MfaChallenge {
        token_hash,
        user_id: row.try_get(0).map_err(db)?,
        tenant_id: row.try_get(1).map_err(db)?,
        client_id: row.try_get(2).map_err(db)?,
        kind,
        failures: u32::try_from(failures).unwrap_or(0),
        expires_at: row.try_get(5).map_err(db)?,
        completed_at: row.try_get(6).map_err(db)?,
        created_at: row.try_get(7).map_err(db)?,
    }))
}

pub(super) async fn insert_mfa_challenge(
    client: &Client,
    challenge: MfaChallenge,
) -> Result<(), StoreError> {
    let hash: &[u8] = &challenge.token_hash;
    client
        .execute_typed(
            &format!(
                "INSERT INTO mfa_challenges (token_hash, {CHALLENGE_COLUMNS}) \
                 VALUES ($1, $2, $3, $4, $5, 0, $6, NULL, $7)"
            ),
            &[
                (&hash, Type::BYTEA),
                (&challenge.user_id, Type::UUID),
                (&challenge.tenant_id, Type::UUID),
                (&challenge.client_id, Type::TEXT),
                (&challenge.kind.as_str(), Type::TEXT),
                (&challenge.expires_at, Type::INT8),
                (&challenge.created_at, Type::INT8),
            ],
        )
        .await
        .map_err(db)?;
    Ok(())
}

pub(super) async fn find_mfa_challenge(
    client: &Client,
    token_hash: TokenHash,
) -> Result<Option<MfaChallenge>, StoreError> {
    let hash: &[u8] = &token_hash;
    let row = client
        .query_typed_opt(
            &format!("SELECT {CHALLENGE_COLUMNS} FROM mfa_challenges WHERE token_hash = $1"),
            &[(&hash, Type::BYTEA)],
        )
        .await
        .map_err(db)?;
    Ok(row
        .map(|row| challenge_from(token_hash, &row))
        .transpose()?
        .flatten())
}

pub(super) async fn fail_mfa_challenge(
    client: &Client,
    token_hash: TokenHash,
) -> Result<u32, StoreError> {
    let hash: &[u8] = &token_hash;
    let row = client
        .query_typed_opt(
            "UPDATE mfa_challenges SET failures = failures + 1 WHERE token_hash = $1 \
             RETURNING failures",
            &[(&hash, Type::BYTEA)],
        )
        .await
        .map_err(db)?;
    let failures: i32 = match row {
        Some(row) => row.try_get(0).map_err(db)?,
        None => 0,
    };
    Ok(u32::try_from(failures).unwrap_or(0))
}

/// One transaction: the conditional update that completes the challenge decides; only when it
/// applied are the grant's refresh token (a new family, `hj_insert_refresh_token`), session
/// (`hj_insert_session`), remembered device and event written, pipelined.
pub(super) async fn complete_mfa_challenge(
    client: &mut Client,
    token_hash: TokenHash,
    max_failures: u32,
    grant: ChallengeGrant,
    now: i64,
) -> Result<bool, StoreError> {
    let hash: &[u8] = &token_hash;
    let max_failures = i64::from(max_failures);
    let tx = client.transaction().await.map_err(db)?;
    let completed = tx
        .query_typed_opt(
            "UPDATE mfa_challenges SET completed_at = $2 \
             WHERE token_hash = $1 AND completed_at IS NULL AND expires_at > $2 \
             AND failures < $3 \
             RETURNING user_id, tenant_id",
            &[
                (&hash, Type::BYTEA),
                (&now, Type::INT8),
                (&max_failures, Type::INT8),
            ],
        )
        .await
        .map_err(db)?;
    let Some(row) = completed else {
        return Ok(false);
    };
    let (user_id, tenant_id): (Uuid, Uuid) =
        (row.try_get(0).map_err(db)?, row.try_get(1).map_err(db)?);
    let ChallengeGrant {
        refresh,
        session,
        trusted_device,
        event,
    } = grant;
    // The grant is the challenge's user's, as the SQLite store checks too.
    if refresh.as_ref().is_some_and(|t| t.user_id != user_id) {
        return Err(StoreError::Internal(
            "complete_mfa_challenge: the refresh token is for another user".into(),
        ));
    }
    if session.as_ref().is_some_and(|s| s.user_id != user_id) {
        return Err(StoreError::Internal(
            "complete_mfa_challenge: the session is for another user".into(),
        ));
    }
    let event = event.map(|d| d.for_user(tenant_id, user_id)).transpose()?;
    let (family, signed_in, remembered, recorded) = pipelined4(
        async {
            let Some(token) = &refresh else {
                return Ok(());
            };
            let token_hash: &[u8] = &token.token_hash;
            let written: bool = tx
                .query_typed_one(
                    &format!("SELECT {}", refresh::INSERT_TOKEN_CALL),
                    &refresh::token_params(token, &token_hash),
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
        async {
            let Some(session) = &session else {
                return Ok(());
            };
            let id_hash: &[u8] = &session.id_hash;
            let amr = crate::model::amr_column(&session.amr);
            tx.execute_typed(
                "SELECT hj_insert_session($1, $2, $3, $4, $5, $6, $7)",
                &[
                    (&id_hash, Type::BYTEA),
                    (&session.user_id, Type::UUID),
                    (&session.tenant_id, Type::UUID),
                    (&session.client_id, Type::TEXT),
                    (&session.created_at, Type::INT8),
                    (&session.expires_at, Type::INT8),
                    (&amr, Type::TEXT),
                ],
            )
            .await
            .map_err(db)?;
            Ok::<_, StoreError>(())
        },
        async {
            let Some((device_hash, expires_at)) = &trusted_device else {
                return Ok(());
            };
            let device_hash: &[u8] = device_hash;
            tx.execute_typed(
                "INSERT INTO mfa_trusted_devices (token_hash, user_id, expires_at, created_at) \
                 VALUES ($1, $2, $3, $4)",
                &[
                    (&device_hash, Type::BYTEA),
                    (&user_id, Type::UUID),
                    (expires_at, Type::INT8),
                    (&now, Type::INT8),
                ],
            )
            .await
            .map_err(db)?;
            Ok::<_, StoreError>(())
        },
        events::insert_opt(&tx, event.as_ref()),
    )
    .await;
    // The first failure in statement order is the cause; later ones only report the aborted
    // transaction.
    family?;
    signed_in?;
    remembered?;
    recorded?;
    tx.commit().await.map_err(db)?;
    Ok(true)
}

pub(super) async fn is_trusted_device(
    client: &Client,
    user_id: Uuid,
    token_hash: TokenHash,
    now: i64,
) -> Result<bool, StoreError> {
    let hash: &[u8] = &token_hash;
    let found = client
        .query_typed_opt(
            "SELECT 1 FROM mfa_trusted_devices \
             WHERE token_hash = $1 AND user_id = $2 AND expires_at > $3",
            &[
                (&hash, Type::BYTEA),
                (&user_id, Type::UUID),
                (&now, Type::INT8),
            ],
        )
        .await
        .map_err(db)?;
    Ok(found.is_some())
}

/// Deletes up to `limit` rows in all: expired challenges first, then expired remembered
/// devices with what is left of the limit.
pub(super) async fn prune_mfa(client: &Client, before: i64, limit: u32) -> Result<u64, StoreError> {
    let challenges = client
        .execute_typed(
            "DELETE FROM mfa_challenges WHERE token_hash IN \
             (SELECT token_hash FROM mfa_challenges WHERE expires_at < $1 LIMIT $2)",
            &[(&before, Type::INT8), (&i64::from(limit), Type::INT8)],
        )
        .await
        .map_err(db)?;
    let left = u64::from(limit).saturating_sub(challenges);
    if left == 0 {
        return Ok(challenges);
    }
    let left = i64::try_from(left).unwrap_or(i64::MAX);
    let devices = client
        .execute_typed(
            "DELETE FROM mfa_trusted_devices WHERE token_hash IN \
             (SELECT token_hash FROM mfa_trusted_devices WHERE expires_at < $1 LIMIT $2)",
            &[(&before, Type::INT8), (&left, Type::INT8)],
        )
        .await
        .map_err(db)?;
    Ok(challenges + devices)
}
