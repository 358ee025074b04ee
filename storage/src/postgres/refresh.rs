//! Refresh tokens and their families, and "log out everywhere".
//!
//! Concurrency (READ COMMITTED): every change to a family's state — rotation, reuse detection,
//! revocation — first locks the family row (`FOR NO KEY UPDATE`), so the checks that follow
//! see every change committed before and none can interleave, as behind SQLite's single
//! writer. Rows of several families are locked in key order (`revoke_all_for_user`). Foreign
//! key checks only take `KEY SHARE` locks, which those do not block.
//!
//! The refresh flow's rotation ([`rotate_refresh`]) is one statement, the PL/pgSQL function
//! `hj_rotate_refresh` (migration `0011_rotate_refresh`), which takes the same lock first and
//! the same decision; `rotate_refresh_token` is the transaction of several statements.

use super::error::db;
use std::sync::LazyLock;

use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{Client, GenericClient, Row, Transaction};
use uuid::Uuid;

use super::events;
use super::pipelined::pipelined2;
use super::user_row::{user_from, ROTATED_USER_COLUMNS, USER_COLUMNS};
use crate::rotation::{rotation_step, RotationStep};
use crate::{
    EventDraft, NewRefreshToken, RefreshRotation, RefreshToken, RotateOutcome, StoreError,
    TokenHash,
};

const TOKEN_COLUMNS: &str = "t.family_id, t.user_id, t.tenant_id, t.client_id, t.issued_at, \
                             t.expires_at, t.rotated_at, f.revoked_at, f.scopes";

fn token_from(row: &Row) -> Result<RefreshToken, tokio_postgres::Error> {
    Ok(RefreshToken {
        family_id: row.try_get(0)?,
        user_id: row.try_get(1)?,
        tenant_id: row.try_get(2)?,
        client_id: row.try_get(3)?,
        issued_at: row.try_get(4)?,
        expires_at: row.try_get(5)?,
        rotated_at: row.try_get(6)?,
        family_revoked_at: row.try_get(7)?,
        scopes: row.try_get(8)?,
    })
}

/// `hj_insert_refresh_token` (migrations/postgres/0004_hot_writes.sql) with the token's 7
/// columns as `$1` .. `$7`, in the order of [`token_params`]: true when written; false, and
/// nothing written, for a family of another user.
pub(super) const INSERT_TOKEN_CALL: &str = "hj_insert_refresh_token($1, $2, $3, $4, $5, $6, $7)";

/// The arguments of [`INSERT_TOKEN_CALL`], with their types (`hash` is the token's hash).
pub(super) fn token_params<'a>(
    token: &'a NewRefreshToken,
    hash: &'a &'a [u8],
) -> [(&'a (dyn ToSql + Sync), Type); 7] {
    [
        (hash, Type::BYTEA),
        (&token.family_id, Type::UUID),
        (&token.user_id, Type::UUID),
        (&token.tenant_id, Type::UUID),
        (&token.client_id, Type::TEXT),
        (&token.issued_at, Type::INT8),
        (&token.expires_at, Type::INT8),
    ]
}

pub(super) fn family_of_another_user() -> StoreError {
    StoreError::Internal("refresh token for a family of another user".into())
}

/// A new family on sign-in (or one more token in an existing family of the same user), and the
/// event: one statement (one round trip, atomic without `BEGIN`/`COMMIT`), calling functions
/// whose plans PostgreSQL caches per connection (a sign-in pays for this beside its hash). A
/// family of another user writes nothing and is refused.
pub(super) async fn insert_refresh_token(
    client: &Client,
    token: &NewRefreshToken,
    event: Option<EventDraft>,
) -> Result<(), StoreError> {
    static WITH_EVENT: LazyLock<String> = LazyLock::new(|| {
        format!(
            "SELECT CASE WHEN {INSERT_TOKEN_CALL} THEN {} ELSE false END",
            events::record_event_call(8)
        )
    });
    static WITHOUT_EVENT: LazyLock<String> =
        LazyLock::new(|| format!("SELECT {INSERT_TOKEN_CALL}"));
    let event = event
        .map(|d| d.for_user(token.tenant_id, token.user_id))
        .transpose()?;
    let hash: &[u8] = &token.token_hash;
    let mut params = token_params(token, &hash).to_vec();
    let sql = match &event {
        Some(event) => {
            params.extend(events::event_params(event));
            &*WITH_EVENT
        }
        None => &*WITHOUT_EVENT,
    };
    let written: bool = client
        .query_typed_one(sql, &params)
        .await
        .map_err(db)?
        .try_get(0)
        .map_err(db)?;
    if !written {
        return Err(family_of_another_user());
    }
    Ok(())
}

pub(super) async fn find_refresh_token<C: GenericClient + Sync>(
    client: &C,
    token_hash: &TokenHash,
) -> Result<Option<RefreshToken>, StoreError> {
    let hash: &[u8] = token_hash;
    let row = client
        .query_typed_opt(
            &format!(
                "SELECT {TOKEN_COLUMNS} \
                 FROM refresh_tokens t JOIN refresh_families f ON f.id = t.family_id \
                 WHERE t.token_hash = $1"
            ),
            &[(&hash, Type::BYTEA)],
        )
        .await
        .map_err(db)?;
    row.as_ref().map(token_from).transpose().map_err(db)
}

/// Sets `revoked_at` on the family unless already set. Returns whether it changed.
async fn revoke_family(
    tx: &Transaction<'_>,
    family_id: Uuid,
    now: i64,
) -> Result<bool, StoreError> {
    let changed = tx
        .execute_typed(
            "UPDATE refresh_families SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL",
            &[(&now, Type::INT8), (&family_id, Type::UUID)],
        )
        .await
        .map_err(db)?;
    Ok(changed == 1)
}

/// One transaction. Locks the token's family, then reads the token as it stands and carries out
/// [`rotation_step`]'s decision: one statement marks the token rotated and, if it did, inserts
/// the successor in the same family.
pub(super) async fn rotate_refresh_token(
    client: &mut Client,
    old_hash: &TokenHash,
    client_id: &str,
    new: &NewRefreshToken,
    reuse_event: Option<EventDraft>,
    now: i64,
) -> Result<RotateOutcome, StoreError> {
    let hash: &[u8] = old_hash;
    let tx = client.transaction().await.map_err(db)?;
    // Pipelined: the read runs once the lock is held, on a fresh snapshot.
    let (locked, row) = pipelined2(
        async {
            tx.execute_typed(
                "SELECT 1 FROM refresh_families \
                 WHERE id = (SELECT family_id FROM refresh_tokens WHERE token_hash = $1) \
                 FOR NO KEY UPDATE",
                &[(&hash, Type::BYTEA)],
            )
            .await
        },
        async {
            tx.query_typed_opt(
                &format!(
                    "SELECT {TOKEN_COLUMNS}, {USER_COLUMNS} \
                     FROM refresh_tokens t JOIN refresh_families f ON f.id = t.family_id \
                     LEFT JOIN users u ON u.id = t.user_id \
                     WHERE t.token_hash = $1"
                ),
                &[(&hash, Type::BYTEA)],
            )
            .await
        },
    )
    .await;
    locked.map_err(db)?;
    let row = row.map_err(db)?;
    let found = row.as_ref().map(token_from).transpose().map_err(db)?;
    let (step, old) = match rotation_step(found, None, client_id, now) {
        Ok(found) => found,
        Err(refused) => return Ok(refused.into()),
    };
    let reused = RotateOutcome::Reused {
        family_id: old.family_id,
        user_id: old.user_id,
    };
    if step == RotationStep::RevokeReused {
        revoke_reused(&tx, &old, reuse_event, now).await?;
        tx.commit().await.map_err(db)?;
        return Ok(reused);
    }
    // The successor always joins the old token's family, user and client.
    let new_hash: &[u8] = &new.token_hash;
    let inserted = tx
        .execute_typed(
            "WITH marked AS (\
             UPDATE refresh_tokens SET rotated_at = $2 \
             WHERE token_hash = $1 AND rotated_at IS NULL \
             RETURNING family_id, user_id, tenant_id, client_id\
             ) \
             INSERT INTO refresh_tokens (token_hash, family_id, user_id, tenant_id, client_id, \
             issued_at, expires_at) \
             SELECT $3, family_id, user_id, tenant_id, client_id, $4, $5 FROM marked",
            &[
                (&hash, Type::BYTEA),
                (&now, Type::INT8),
                (&new_hash, Type::BYTEA),
                (&new.issued_at, Type::INT8),
                (&new.expires_at, Type::INT8),
            ],
        )
        .await
        .map_err(db)?;
    if inserted == 0 {
        // Rotated by someone else in between (cannot happen under the family lock, but the
        // conditional update is what decides).
        revoke_reused(&tx, &old, reuse_event, now).await?;
        tx.commit().await.map_err(db)?;
        return Ok(reused);
    }
    let user = match row.as_ref() {
        Some(row) if row.try_get::<_, Option<Uuid>>(9).map_err(db)?.is_some() => {
            user_from(row, 9).map_err(db)?
        }
        _ => {
            return Err(StoreError::Internal(format!(
                "refresh token of a missing user {}",
                old.user_id
            )))
        }
    };
    tx.commit().await.map_err(db)?;
    Ok(RotateOutcome::Rotated {
        user,
        family_id: old.family_id,
        scopes: old.scopes,
    })
}

/// One statement, one round trip: `hj_rotate_refresh` (migrations/postgres/0011_rotate_refresh.sql)
/// locks the family, takes [`rotation_step`]'s decision (a token of another tenant than
/// `rotation.tenant_id` is `NotFound` too) and carries it out, the reuse event included, and
/// answers the outcome with the user and the family's scopes in one row. Atomic without
/// `BEGIN`/`COMMIT`; the function's plans are cached per server connection.
pub(super) async fn rotate_refresh(
    client: &Client,
    rotation: RefreshRotation,
) -> Result<RotateOutcome, StoreError> {
    static WITH_EVENT: LazyLock<String> = LazyLock::new(|| rotate_sql(true));
    static WITHOUT_EVENT: LazyLock<String> = LazyLock::new(|| rotate_sql(false));
    let RefreshRotation {
        old_hash,
        tenant_id,
        client_id,
        next,
        reuse_event,
        now,
    } = rotation;
    // The tenant is the token's whenever the event is written (another is `NotFound`); the
    // function fills in the rest from the token (actor, target, `family_id`).
    let event = reuse_event
        .map(|mut d| {
            d.tenant_id.get_or_insert(tenant_id);
            d.into_event()
        })
        .transpose()?;
    let (old, new): (&[u8], &[u8]) = (&old_hash, &next.token_hash);
    let mut params: Vec<(&(dyn ToSql + Sync), Type)> = vec![
        (&old, Type::BYTEA),
        (&tenant_id, Type::UUID),
        (&client_id, Type::TEXT),
        (&new, Type::BYTEA),
        (&next.issued_at, Type::INT8),
        (&next.expires_at, Type::INT8),
        (&now, Type::INT8),
    ];
    let sql = match &event {
        Some(event) => {
            params.extend(events::event_params(event));
            &*WITH_EVENT
        }
        None => &*WITHOUT_EVENT,
    };
    let row = client.query_typed_one(sql, &params).await.map_err(db)?;
    let outcome: String = row.try_get(0).map_err(db)?;
    Ok(match outcome.as_str() {
        "rotated" => RotateOutcome::Rotated {
            user: user_from(&row, 4).map_err(db)?,
            family_id: row.try_get(1).map_err(db)?,
            scopes: row.try_get(3).map_err(db)?,
        },
        "reused" => RotateOutcome::Reused {
            family_id: row.try_get(1).map_err(db)?,
            user_id: row.try_get(2).map_err(db)?,
        },
        "not_found" => RotateOutcome::NotFound,
        "revoked" => RotateOutcome::Revoked,
        "expired" => RotateOutcome::Expired,
        other => {
            return Err(StoreError::Internal(format!(
                "hj_rotate_refresh answered {other:?}"
            )))
        }
    })
}

/// The call of `hj_rotate_refresh`: 7 arguments, then the event's 12 ([`events::event_params`])
/// when there is one. Its user columns are named as in `users`, aliased `u`.
fn rotate_sql(with_event: bool) -> String {
    let last = if with_event { 19 } else { 7 };
    let args = (1..=last)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "SELECT u.o_outcome, u.o_family_id, u.o_user_id, u.o_scopes, {ROTATED_USER_COLUMNS} \
         FROM hj_rotate_refresh({args}) u"
    )
}

/// Revokes the family of a reused token and writes the reuse event (pipelined).
async fn revoke_reused(
    tx: &Transaction<'_>,
    old: &RefreshToken,
    reuse_event: Option<EventDraft>,
    now: i64,
) -> Result<(), StoreError> {
    let event = reuse_event.map(|d| d.for_token(old)).transpose()?;
    let (revoked, recorded) = pipelined2(
        revoke_family(tx, old.family_id, now),
        events::insert_opt(tx, event.as_ref()),
    )
    .await;
    revoked?;
    recorded
}

/// Revokes the token's family (idempotent). Returns the token's record as it stands after the
/// call (`family_revoked_at` set), or `None` for an unknown token. One transaction: the update
/// and the read pipelined, then the event when this call revoked the family. The first
/// revocation time stays.
pub(super) async fn revoke_refresh_family(
    client: &mut Client,
    token_hash: &TokenHash,
    event: Option<EventDraft>,
    now: i64,
) -> Result<Option<RefreshToken>, StoreError> {
    let hash: &[u8] = token_hash;
    let tx = client.transaction().await.map_err(db)?;
    let (revoked, found) = pipelined2(
        async {
            tx.execute_typed(
                "UPDATE refresh_families SET revoked_at = $2 \
                 WHERE id = (SELECT family_id FROM refresh_tokens WHERE token_hash = $1) \
                 AND revoked_at IS NULL",
                &[(&hash, Type::BYTEA), (&now, Type::INT8)],
            )
            .await
        },
        find_refresh_token(&tx, token_hash),
    )
    .await;
    let (revoked, found) = (revoked.map_err(db)?, found?);
    if let (1, Some(token), Some(draft)) = (revoked, &found, event) {
        events::insert_event(&tx, &draft.for_token(token)?).await?;
    }
    tx.commit().await.map_err(db)?;
    Ok(found)
}

/// Revokes every live (not yet revoked) refresh family and session of the user, and writes the
/// event (its metadata gains `revoked`), in one transaction. Returns how many families plus
/// sessions were revoked.
pub(super) async fn revoke_all_for_user(
    client: &mut Client,
    user_id: Uuid,
    event: Option<EventDraft>,
    now: i64,
) -> Result<u64, StoreError> {
    let tx = client.transaction().await.map_err(db)?;
    let revoked = revoke_all_in(&tx, user_id, now).await?;
    if let Some(draft) = event {
        let tenant_id = match draft.tenant_id {
            Some(t) => t,
            None => tx
                .query_typed_one(
                    "SELECT tenant_id FROM users WHERE id = $1",
                    &[(&user_id, Type::UUID)],
                )
                .await
                .map_err(db)?
                .try_get(0)
                .map_err(db)?,
        };
        let event = draft.with_revoked(revoked).for_user(tenant_id, user_id)?;
        events::insert_event(&tx, &event).await?;
    }
    tx.commit().await.map_err(db)?;
    Ok(revoked)
}

/// Revokes every live refresh family and session of the user inside the caller's
/// transaction (the rows locked in key order, both statements pipelined). Returns how many
/// families plus sessions were revoked.
pub(super) async fn revoke_all_in(
    tx: &Transaction<'_>,
    user_id: Uuid,
    now: i64,
) -> Result<u64, StoreError> {
    let (families, sessions) = pipelined2(
        async {
            tx.execute_typed(
                "UPDATE refresh_families f SET revoked_at = $1 \
                 FROM (SELECT id FROM refresh_families \
                 WHERE user_id = $2 AND revoked_at IS NULL \
                 ORDER BY id FOR NO KEY UPDATE) live \
                 WHERE f.id = live.id AND f.revoked_at IS NULL",
                &[(&now, Type::INT8), (&user_id, Type::UUID)],
            )
            .await
        },
        async {
            tx.execute_typed(
                "UPDATE sessions s SET revoked_at = $1 \
                 FROM (SELECT id_hash FROM sessions \
                 WHERE user_id = $2 AND revoked_at IS NULL \
                 ORDER BY id_hash FOR NO KEY UPDATE) live \
                 WHERE s.id_hash = live.id_hash AND s.revoked_at IS NULL",
                &[(&now, Type::INT8), (&user_id, Type::UUID)],
            )
            .await
        },
    )
    .await;
    Ok(families.map_err(db)? + sessions.map_err(db)?)
}
