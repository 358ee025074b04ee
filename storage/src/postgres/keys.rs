//! Signing keys.

use tokio_postgres::types::Type;
use tokio_postgres::{Client, Row};

use super::pipelined::pipelined3;
use crate::{SigningKey, StoreError};

/// The transaction-level advisory lock that serialises `insert_signing_key_if_none` across
/// every instance (transaction-scoped, so it works behind PgBouncer in transaction mode).
const SIGNING_KEY_LOCK: i64 = 0x686a_5f6b_6579_7321; // "hj_keys!"

const KEY_COLUMNS: &str = "kid, public_key, private_key_encrypted, created_at, retired_at";

fn key_from(row: &Row) -> Result<SigningKey, tokio_postgres::Error> {
    Ok(SigningKey {
        kid: row.try_get(0)?,
        public_key: row.try_get(1)?,
        private_key_encrypted: row.try_get(2)?,
        created_at: row.try_get(3)?,
        retired_at: row.try_get(4)?,
    })
}

fn keys_from(rows: &[Row]) -> Result<Vec<SigningKey>, StoreError> {
    Ok(rows.iter().map(key_from).collect::<Result<_, _>>()?)
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
        .await?;
    keys_from(&rows)
}

/// In one transaction holding the signing-key lock (so other instances wait): inserts `key`
/// only if no non-retired key exists, then returns the non-retired keys. The three statements
/// are pipelined; each runs after the one before, on a fresh snapshot.
pub(super) async fn insert_signing_key_if_none(
    client: &mut Client,
    key: &SigningKey,
) -> Result<Vec<SigningKey>, StoreError> {
    let tx = client.transaction().await?;
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
                    "INSERT INTO signing_keys ({KEY_COLUMNS}) \
                     SELECT $1, $2, $3, $4, $5 \
                     WHERE NOT EXISTS (SELECT 1 FROM signing_keys WHERE retired_at IS NULL)"
                ),
                &[
                    (&key.kid, Type::TEXT),
                    (&key.public_key, Type::BYTEA),
                    (&key.private_key_encrypted, Type::BYTEA),
                    (&key.created_at, Type::INT8),
                    (&key.retired_at, Type::INT8),
                ],
            )
            .await
        },
        async {
            tx.query_typed(
                &format!(
                    "SELECT {KEY_COLUMNS} FROM signing_keys WHERE retired_at IS NULL \
                     ORDER BY created_at, kid COLLATE \"C\""
                ),
                &[],
            )
            .await
        },
    )
    .await;
    locked?;
    inserted?;
    let active = keys_from(&active?)?;
    tx.commit().await?;
    Ok(active)
}
