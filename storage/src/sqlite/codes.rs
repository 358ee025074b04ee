//! Authorization codes.

use super::error::db;
use rusqlite::{params, Connection, OptionalExtension, Row, TransactionBehavior};

use super::error::{json_at, to_json, uuid_at};
use super::events;
use crate::{AuthCode, NewAuthCode, Redeem, Redemption, StoreError, TokenHash};

const CODE_COLUMNS: &str = "tenant_id, client_id, user_id, redirect_uri, scopes, nonce, \
                            code_challenge, auth_time, amr, family_id, created_at, expires_at, \
                            used_at, access_jti, access_expires_at";

fn code_from(row: &Row<'_>) -> rusqlite::Result<AuthCode> {
    Ok(AuthCode {
        tenant_id: uuid_at(row, 0)?,
        client_id: row.get(1)?,
        user_id: uuid_at(row, 2)?,
        redirect_uri: row.get(3)?,
        scopes: json_at(row, 4)?,
        nonce: row.get(5)?,
        code_challenge: row.get(6)?,
        auth_time: row.get(7)?,
        amr: json_at(row, 8)?,
        family_id: uuid_at(row, 9)?,
        created_at: row.get(10)?,
        expires_at: row.get(11)?,
        used_at: row.get(12)?,
        access_jti: row.get(13)?,
        access_expires_at: row.get(14)?,
    })
}

pub(super) fn insert_auth_code(conn: &Connection, new: &NewAuthCode) -> Result<(), StoreError> {
    let c = &new.code;
    conn.prepare_cached(&format!(
        "INSERT INTO authorization_codes (code_hash, {CODE_COLUMNS}) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)"
    ))
    .map_err(db)?
    .execute(params![
        &new.code_hash[..],
        c.tenant_id.to_string(),
        c.client_id,
        c.user_id.to_string(),
        c.redirect_uri,
        to_json(&c.scopes)?,
        c.nonce,
        c.code_challenge,
        c.auth_time,
        to_json(&c.amr)?,
        c.family_id.to_string(),
        c.created_at,
        c.expires_at,
        c.used_at,
        c.access_jti,
        c.access_expires_at,
    ])
    .map_err(db)?;
    Ok(())
}

pub(super) fn find_auth_code(
    conn: &Connection,
    code_hash: &TokenHash,
) -> Result<Option<AuthCode>, StoreError> {
    conn.prepare_cached(&format!(
        "SELECT {CODE_COLUMNS} FROM authorization_codes WHERE code_hash = ?1"
    ))
    .map_err(db)?
    .query_row([&code_hash[..]], code_from)
    .optional()
    .map_err(db)
}

/// One transaction: the conditional update that redeems the code, then the refresh family
/// (with the granted scopes) and token, and `event`; or, for a code redeemed before, the
/// revocation of its family and `reuse_event`.
pub(super) fn redeem_auth_code(
    conn: &mut Connection,
    code_hash: &TokenHash,
    redeem: Redeem,
    now: i64,
) -> Result<Redemption, StoreError> {
    let Redeem {
        refresh,
        access,
        event,
        reuse_event,
    } = redeem;
    let (access_jti, access_exp) = access.unzip();
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(db)?;
    let redeemed = tx
        .prepare_cached(&format!(
            "UPDATE authorization_codes SET used_at = ?2, access_jti = ?3, access_expires_at = ?4 \
             WHERE code_hash = ?1 AND used_at IS NULL AND expires_at > ?2 \
             RETURNING {CODE_COLUMNS}"
        ))
        .map_err(db)?
        .query_row(
            params![&code_hash[..], now, access_jti, access_exp],
            code_from,
        )
        .optional()
        .map_err(db)?;
    if let Some(code) = redeemed {
        if let Some(t) = &refresh {
            tx.prepare_cached(
                "INSERT INTO refresh_families (id, user_id, tenant_id, client_id, created_at, scopes) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            ).map_err(db)?
            .execute(params![
                code.family_id.to_string(),
                code.user_id.to_string(),
                code.tenant_id.to_string(),
                code.client_id,
                now,
                to_json(&code.scopes)?,
            ]).map_err(db)?;
            tx.prepare_cached(
                "INSERT INTO refresh_tokens (token_hash, family_id, user_id, tenant_id, client_id, \
                 issued_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            ).map_err(db)?
            .execute(params![
                &t.token_hash[..],
                code.family_id.to_string(),
                code.user_id.to_string(),
                code.tenant_id.to_string(),
                code.client_id,
                t.issued_at,
                t.expires_at,
            ]).map_err(db)?;
        }
        events::insert_draft(&tx, event, |d| d.for_user(code.tenant_id, code.user_id))?;
        tx.commit().map_err(db)?;
        return Ok(Redemption::Redeemed(code));
    }
    let Some(code) = find_auth_code(&tx, code_hash)? else {
        return Ok(Redemption::Unknown);
    };
    if code.used_at.is_none() {
        return Ok(Redemption::Expired);
    }
    let revoked = tx
        .prepare_cached(
            "UPDATE refresh_families SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL",
        )
        .map_err(db)?
        .execute(params![code.family_id.to_string(), now])
        .map_err(db)?;
    if revoked > 0 {
        events::insert_draft(&tx, reuse_event, |d| {
            d.for_user(code.tenant_id, code.user_id)
        })?;
    }
    tx.commit().map_err(db)?;
    Ok(Redemption::Reused(code))
}

/// Deletes up to `limit` codes that expired before `before`. Returns how many.
pub(super) fn prune_auth_codes(
    conn: &Connection,
    before: i64,
    limit: u32,
) -> Result<u64, StoreError> {
    let n = conn
        .prepare_cached(
            "DELETE FROM authorization_codes WHERE code_hash IN \
             (SELECT code_hash FROM authorization_codes WHERE expires_at < ?1 LIMIT ?2)",
        )
        .map_err(db)?
        .execute(params![before, limit])
        .map_err(db)?;
    Ok(n as u64)
}

pub(super) fn revoke_access_token(
    conn: &Connection,
    jti: &str,
    tenant_id: uuid::Uuid,
    expires_at: i64,
    now: i64,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO revoked_tokens (jti, tenant_id, expires_at, revoked_at) \
         VALUES (?1, ?2, ?3, ?4) ON CONFLICT (jti) DO NOTHING",
    )
    .map_err(db)?
    .execute(params![jti, tenant_id.to_string(), expires_at, now])
    .map_err(db)?;
    Ok(())
}

pub(super) fn revoked_tokens_since(
    conn: &Connection,
    since: i64,
    now: i64,
) -> Result<Vec<(String, i64)>, StoreError> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT jti, expires_at FROM revoked_tokens WHERE revoked_at >= ?1 AND expires_at > ?2",
        )
        .map_err(db)?;
    let rows = stmt
        .query_map(params![since, now], |row| Ok((row.get(0)?, row.get(1)?)))
        .map_err(db)?;
    rows.collect::<Result<_, _>>().map_err(db)
}

pub(super) fn prune_revoked_tokens(
    conn: &Connection,
    before: i64,
    limit: u32,
) -> Result<u64, StoreError> {
    let n = conn
        .prepare_cached(
            "DELETE FROM revoked_tokens WHERE jti IN \
             (SELECT jti FROM revoked_tokens WHERE expires_at < ?1 LIMIT ?2)",
        )
        .map_err(db)?
        .execute(params![before, limit])
        .map_err(db)?;
    Ok(n as u64)
}
