//! Signing keys.

use super::error::db;
use tokio_postgres::types::Type;
use tokio_postgres::{Client, Row};

use super::pipelined::pipelined3;
use crate::{SigningKey, StoreError};

/// The transaction-level advisory lock that serialises `insert_signing_key_if_none` and
/// `rotate_signing_key` across every instance (transaction-scoped, so it works behind
/// PgBouncer in transaction mode).
const SIGNING_KEY_LOCK: i64 = 0x686a_5f6b_6579_7321; // "hj_keys!"

/// `activates_at` NULL (rows from before migration 7, or from an older release) reads as
/// `created_at`; `tenant_id` NULL is a global key.
const KEY_COLUMNS: &str = "kid, alg, public_key, private_key_encrypted, created_at, \
                           COALESCE(activates_at, created_at), retired_at, tenant_id";

const INSERT: &str = "INSERT INTO signing_keys (kid, alg, public_key, private_key_encrypted, \
                                                created_at, activates_at, retired_at, tenant_id)";

/// A key row, or `None` for a key of an algorithm this release does not know (a newer
/// release's): it is skipped (see `tolerant::signing_alg`).
fn key_from(row: &Row) -> Result<Option<SigningKey>, StoreError> {
    let alg: String = row.try_get(1).map_err(db)?;
    let Some(alg) = crate::tolerant::signing_alg(&alg) else {
        return Ok(None);
    };
    Ok(Some(SigningKey {
        kid: row.try_get(0).map_err(db)?,
        alg,
        public_key: row.try_get(2).map_err(db)?,
        private_key_encrypted: row.try_get(3).map_err(db)?,
        created_at: row.try_get(4).map_err(db)?,
        activates_at: row.try_get(5).map_err(db)?,
        retired_at: row.try_get(6).map_err(db)?,
        tenant_id: row.try_get(7).map_err(db)?,
    }))
}

/// The known keys among `rows`.
fn keys_from(rows: &[Row]) -> Result<Vec<SigningKey>, StoreError> {
    let mut keys = Vec::with_capacity(rows.len());
    for row in rows {
        keys.extend(key_from(row)?);
    }
    Ok(keys)
}

/// Every key, retired ones included, oldest first.
pub(super) async fn list_signing_keys(client: &Client) -> Result<Vec<SigningKey>, StoreError> {
    let rows = client
        .query_typed(
            &format!(
                "SELECT {KEY_COLUMNS} FROM signing_keys ORDER BY created_at, kid COLLATE \"C\""
            ),
            &[],
        )
        .await
        .map_err(db)?;
    keys_from(&rows)
}

/// In one transaction holding the signing-key lock (so other instances wait): inserts `key`
/// only if no non-retired key of its algorithm and owner (global, or one tenant) exists, then
/// returns the non-retired keys of that algorithm and owner. The three statements are pipelined; each runs after the one before, on a
/// fresh snapshot.
pub(super) async fn insert_signing_key_if_none(
    client: &mut Client,
    key: &SigningKey,
) -> Result<Vec<SigningKey>, StoreError> {
    let alg = key.alg.as_str();
    let tx = client.transaction().await.map_err(db)?;
    let (locked, inserted, active) = pipelined3(
        async {
            tx.execute_typed(
                "SELECT pg_advisory_xact_lock($1)",
                &[(&SIGNING_KEY_LOCK, Type::INT8)],
            )
            .await
        },
        async {
            tx.execute_typed(
                &format!(
                    "{INSERT} SELECT $1, $2, $3, $4, $5, $6, $7, $8 \
                     WHERE NOT EXISTS (SELECT 1 FROM signing_keys \
                                       WHERE retired_at IS NULL AND alg = $2 \
                                         AND tenant_id IS NOT DISTINCT FROM $8)"
                ),
                &[
                    (&key.kid, Type::TEXT),
                    (&alg, Type::TEXT),
                    (&key.public_key, Type::BYTEA),
                    (&key.private_key_encrypted, Type::BYTEA),
                    (&key.created_at, Type::INT8),
                    (&key.activates_at, Type::INT8),
                    (&key.retired_at, Type::INT8),
                    (&key.tenant_id, Type::UUID),
                ],
            )
            .await
        },
        async {
            tx.query_typed(
                &format!(
                    "SELECT {KEY_COLUMNS} FROM signing_keys \
                     WHERE retired_at IS NULL AND alg = $1 AND tenant_id IS NOT DISTINCT FROM $2 \
                     ORDER BY created_at, kid COLLATE \"C\""
                ),
                &[(&alg, Type::TEXT), (&key.tenant_id, Type::UUID)],
            )
            .await
        },
    )
    .await;
    locked.map_err(db)?;
    inserted.map_err(db)?;
    let active = keys_from(&active.map_err(db)?)?;
    tx.commit().await.map_err(db)?;
    Ok(active)
}

/// In one transaction holding the signing-key lock: retires, at `key.activates_at`, every key
/// of its algorithm and owner not retired by then, and inserts `key` (pipelined, in that order). Returns
/// how many keys were retired.
pub(super) async fn rotate_signing_key(
    client: &mut Client,
    key: &SigningKey,
    audit: Option<crate::AuditEntry>,
) -> Result<u64, StoreError> {
    let alg = key.alg.as_str();
    let tx = client.transaction().await.map_err(db)?;
    let (locked, retired, inserted) = pipelined3(
        async {
            tx.execute_typed(
                "SELECT pg_advisory_xact_lock($1)",
                &[(&SIGNING_KEY_LOCK, Type::INT8)],
            )
            .await
        },
        async {
            tx.execute_typed(
                "UPDATE signing_keys SET retired_at = $1 \
                 WHERE alg = $2 AND tenant_id IS NOT DISTINCT FROM $3 \
                   AND (retired_at IS NULL OR retired_at > $1)",
                &[
                    (&key.activates_at, Type::INT8),
                    (&alg, Type::TEXT),
                    (&key.tenant_id, Type::UUID),
                ],
            )
            .await
        },
        async {
            tx.execute_typed(
                &format!("{INSERT} VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"),
                &[
                    (&key.kid, Type::TEXT),
                    (&alg, Type::TEXT),
                    (&key.public_key, Type::BYTEA),
                    (&key.private_key_encrypted, Type::BYTEA),
                    (&key.created_at, Type::INT8),
                    (&key.activates_at, Type::INT8),
                    (&key.retired_at, Type::INT8),
                    (&key.tenant_id, Type::UUID),
                ],
            )
            .await
        },
    )
    .await;
    locked.map_err(db)?;
    let retired = retired.map_err(db)?;
    inserted.map_err(db)?;
    if let Some(audit) = &audit {
        super::audit_row::insert_audit(&tx, audit).await?;
    }
    tx.commit().await.map_err(db)?;
    Ok(retired)
}
