//! Authorization codes.

use super::error::db;
use tokio_postgres::types::Type;
use tokio_postgres::{Client, GenericClient, Row};

use super::events;
use crate::{AuthCode, NewAuthCode, Redeem, Redemption, StoreError, TokenHash};

const CODE_COLUMNS: &str = "tenant_id, client_id, user_id, redirect_uri, scopes, nonce, \
                            code_challenge, auth_time, amr, family_id, created_at, expires_at, \
                            used_at, access_jti, access_expires_at";

fn code_from(row: &Row) -> Result<AuthCode, tokio_postgres::Error> {
    Ok(AuthCode {
        tenant_id: row.try_get(0)?,
        client_id: row.try_get(1)?,
        user_id: row.try_get(2)?,
        redirect_uri: row.try_get(3)?,
        scopes: row.try_get(4)?,
        nonce: row.try_get(5)?,
        code_challenge: row.try_get(6)?,
        auth_time: row.try_get(7)?,
        amr: row.try_get(8)?,
        family_id: row.try_get(9)?,
        created_at: row.try_get(10)?,
        expires_at: row.try_get(11)?,
        used_at: row.try_get(12)?,
        access_jti: row.try_get(13)?,
        access_expires_at: row.try_get(14)?,
    })
}

pub(super) async fn insert_auth_code(client: &Client, new: &NewAuthCode) -> Result<(), StoreError> {
    let c = &new.code;
    let hash: &[u8] = &new.code_hash;
    client
        .execute_typed(
            &format!(
                "INSERT INTO authorization_codes (code_hash, {CODE_COLUMNS}) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)"
            ),
            &[
                (&hash, Type::BYTEA),
                (&c.tenant_id, Type::UUID),
                (&c.client_id, Type::TEXT),
                (&c.user_id, Type::UUID),
                (&c.redirect_uri, Type::TEXT),
                (&c.scopes, Type::TEXT_ARRAY),
                (&c.nonce, Type::TEXT),
                (&c.code_challenge, Type::TEXT),
                (&c.auth_time, Type::INT8),
                (&c.amr, Type::TEXT_ARRAY),
                (&c.family_id, Type::UUID),
                (&c.created_at, Type::INT8),
                (&c.expires_at, Type::INT8),
                (&c.used_at, Type::INT8),
                (&c.access_jti, Type::TEXT),
                (&c.access_expires_at, Type::INT8),
            ],
        )
        .await
        .map_err(db)?;
    Ok(())
}

pub(super) async fn find_auth_code<C: GenericClient + Sync>(
    client: &C,
    code_hash: &TokenHash,
) -> Result<Option<AuthCode>, StoreError> {
    let hash: &[u8] = code_hash;
    let row = client
        .query_typed_opt(
            &format!("SELECT {CODE_COLUMNS} FROM authorization_codes WHERE code_hash = $1"),
            &[(&hash, Type::BYTEA)],
        )
        .await
        .map_err(db)?;
    row.as_ref().map(code_from).transpose().map_err(db)
}

/// One transaction: the conditional update that redeems the code, then the refresh family
/// (with the granted scopes) and token, and `event`; or, for a code redeemed before, the
/// revocation of its family and `reuse_event`. Not a hot path (once per code-flow sign-in,
/// beside a hash): plain statements in a transaction.
pub(super) async fn redeem_auth_code(
    client: &mut Client,
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
    let hash: &[u8] = code_hash;
    let tx = client.transaction().await.map_err(db)?;
    let redeemed = tx
        .query_typed_opt(
            &format!(
                "UPDATE authorization_codes \
                 SET used_at = $2, access_jti = $3, access_expires_at = $4 \
                 WHERE code_hash = $1 AND used_at IS NULL AND expires_at > $2 \
                 RETURNING {CODE_COLUMNS}"
            ),
            &[
                (&hash, Type::BYTEA),
                (&now, Type::INT8),
                (&access_jti, Type::TEXT),
                (&access_exp, Type::INT8),
            ],
        )
        .await
        .map_err(db)?;
    if let Some(row) = redeemed {
        let code = code_from(&row).map_err(db)?;
        if let Some(t) = &refresh {
            tx.execute_typed(
                "INSERT INTO refresh_families (id, user_id, tenant_id, client_id, created_at, scopes) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
                &[
                    (&code.family_id, Type::UUID),
                    (&code.user_id, Type::UUID),
                    (&code.tenant_id, Type::UUID),
                    (&code.client_id, Type::TEXT),
                    (&now, Type::INT8),
                    (&code.scopes, Type::TEXT_ARRAY),
                ],
            )
            .await.map_err(db)?;
            let token_hash: &[u8] = &t.token_hash;
            tx.execute_typed(
                "INSERT INTO refresh_tokens (token_hash, family_id, user_id, tenant_id, client_id, \
                 issued_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                &[
                    (&token_hash, Type::BYTEA),
                    (&code.family_id, Type::UUID),
                    (&code.user_id, Type::UUID),
                    (&code.tenant_id, Type::UUID),
                    (&code.client_id, Type::TEXT),
                    (&t.issued_at, Type::INT8),
                    (&t.expires_at, Type::INT8),
                ],
            )
            .await.map_err(db)?;
        }
        let event = event
            .map(|d| d.for_user(code.tenant_id, code.user_id))
            .transpose()?;
        events::insert_opt(&tx, event.as_ref()).await?;
        tx.commit().await.map_err(db)?;
        return Ok(Redemption::Redeemed(code));
    }
    let Some(code) = find_auth_code(&tx, code_hash).await? else {
        return Ok(Redemption::Unknown);
    };
    if code.used_at.is_none() {
        return Ok(Redemption::Expired);
    }
    let revoked = tx
        .execute_typed(
            "UPDATE refresh_families SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL",
            &[(&code.family_id, Type::UUID), (&now, Type::INT8)],
        )
        .await
        .map_err(db)?;
    if revoked > 0 {
        let event = reuse_event
            .map(|d| d.for_user(code.tenant_id, code.user_id))
            .transpose()?;
        events::insert_opt(&tx, event.as_ref()).await?;
    }
    tx.commit().await.map_err(db)?;
    Ok(Redemption::Reused(code))
}

/// Deletes up to `limit` codes that expired before `before`. Returns how many.
pub(super) async fn prune_auth_codes(
    client: &Client,
    before: i64,
    limit: u32,
) -> Result<u64, StoreError> {
    let limit = i64::from(limit);
    client
        .execute_typed(
            "DELETE FROM authorization_codes WHERE code_hash IN \
             (SELECT code_hash FROM authorization_codes WHERE expires_at < $1 LIMIT $2)",
            &[(&before, Type::INT8), (&limit, Type::INT8)],
        )
        .await
        .map_err(db)
}

pub(super) async fn revoke_access_token(
    client: &Client,
    jti: &str,
    tenant_id: uuid::Uuid,
    expires_at: i64,
    now: i64,
) -> Result<(), StoreError> {
    client
        .execute_typed(
            "INSERT INTO revoked_tokens (jti, tenant_id, expires_at, revoked_at) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (jti) DO NOTHING",
            &[
                (&jti, Type::TEXT),
                (&tenant_id, Type::UUID),
                (&expires_at, Type::INT8),
                (&now, Type::INT8),
            ],
        )
        .await
        .map_err(db)?;
    Ok(())
}

pub(super) async fn revoked_tokens_since(
    client: &Client,
    since: i64,
    now: i64,
) -> Result<Vec<(String, i64)>, StoreError> {
    let rows = client
        .query_typed(
            "SELECT jti, expires_at FROM revoked_tokens WHERE revoked_at >= $1 AND expires_at > $2",
            &[(&since, Type::INT8), (&now, Type::INT8)],
        )
        .await
        .map_err(db)?;
    rows.iter()
        .map(|r| Ok::<_, tokio_postgres::Error>((r.try_get(0)?, r.try_get(1)?)))
        .collect::<Result<_, _>>()
        .map_err(db)
}

pub(super) async fn prune_revoked_tokens(
    client: &Client,
    before: i64,
    limit: u32,
) -> Result<u64, StoreError> {
    let limit = i64::from(limit);
    client
        .execute_typed(
            "DELETE FROM revoked_tokens WHERE jti IN \
             (SELECT jti FROM revoked_tokens WHERE expires_at < $1 LIMIT $2)",
            &[(&before, Type::INT8), (&limit, Type::INT8)],
        )
        .await
        .map_err(db)
}
