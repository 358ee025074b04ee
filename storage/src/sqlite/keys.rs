//! Signing keys.

use rusqlite::{params, Connection, Row, TransactionBehavior};

use crate::{SigningKey, StoreError};

fn key_from(row: &Row<'_>) -> rusqlite::Result<SigningKey> {
    Ok(SigningKey {
        kid: row.get(0)?,
        public_key: row.get(1)?,
        private_key_encrypted: row.get(2)?,
        created_at: row.get(3)?,
        retired_at: row.get(4)?,
    })
}

/// Every key, retired ones included, oldest first.
pub(super) fn list_signing_keys(conn: &Connection) -> Result<Vec<SigningKey>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT kid, public_key, private_key_encrypted, created_at, retired_at \
         FROM signing_keys ORDER BY created_at, kid",
    )?;
    let rows = stmt.query_map([], key_from)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

fn active_keys(conn: &Connection) -> Result<Vec<SigningKey>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT kid, public_key, private_key_encrypted, created_at, retired_at \
         FROM signing_keys WHERE retired_at IS NULL ORDER BY created_at, kid",
    )?;
    let rows = stmt.query_map([], key_from)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// In one `BEGIN IMMEDIATE` transaction (which also excludes other processes): inserts `key`
/// only if no non-retired key exists, then returns the non-retired keys.
pub(super) fn insert_signing_key_if_none(
    conn: &mut Connection,
    key: &SigningKey,
) -> Result<Vec<SigningKey>, StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let any_active: bool = tx
        .prepare_cached("SELECT EXISTS (SELECT 1 FROM signing_keys WHERE retired_at IS NULL)")?
        .query_row([], |row| row.get(0))?;
    if !any_active {
        tx.prepare_cached(
            "INSERT INTO signing_keys (kid, public_key, private_key_encrypted, created_at, \
                                       retired_at) \
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )?
        .execute(params![
            key.kid,
            key.public_key,
            key.private_key_encrypted,
            key.created_at,
            key.retired_at,
        ])?;
    }
    let active = active_keys(&tx)?;
    tx.commit()?;
    Ok(active)
}
