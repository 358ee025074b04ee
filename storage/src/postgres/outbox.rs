//! The outbox's claim, completion, backlog and pruning, once for both kinds (mail and webhook
//! deliveries): the statements have one shape, and what differs between the kinds (table,
//! status and columns of a finished item, what a claim reads back) is in a static [`Table`]
//! per kind.
//!
//! A claim runs in one transaction: `SELECT … FOR UPDATE SKIP LOCKED` picks due rows that no
//! concurrent claim holds, and the same statement sets their lease, so instances sharing the
//! database never pick the same item while its lease holds (PgBouncer's transaction pooling
//! included: nothing outlives the transaction).

use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{Client, GenericClient, Row};
use uuid::Uuid;

use super::error::db;
use super::events::{event_from, EVENT_COLUMNS};
use super::webhooks::{endpoint_from, ENDPOINT_COLUMNS};
use crate::{Claimed, DeliveryPayload, MailPayload, OutboxKind, OutboxResult, Payload, StoreError};

/// What differs between the kinds, as SQL fragments. Only names and fixed text: every value
/// is a bound parameter.
pub(super) struct Table {
    /// The table, and its alias in the claim's read-back.
    table: &'static str,
    alias: &'static str,
    /// A finished item's status and the column that records when.
    done: &'static str,
    done_at: &'static str,
    /// More conditions a claimable row meets.
    claimable: &'static str,
    /// More assignments when done. Parameters: $1 id, $2 at_ms, $3 counted (0 or 1), then
    /// $4 the status code when `done_params` is 4.
    on_done: &'static str,
    done_params: usize,
    /// More assignments on a failure. Parameters: $1 id, $2 lease id, $3 retry_at_ms (NULL:
    /// exhausted), $4 error, then $5 at_ms and $6 the status code when `failed_params` is 6.
    on_failed: &'static str,
    failed_params: usize,
    /// The claim's read-back: the generation, the payload's columns, and the joins they need.
    generation: &'static str,
    payload_columns: &'static [&'static str],
    joins: &'static str,
    /// The payload from the read-back's columns, starting at the given index.
    payload: fn(&Row, usize) -> Result<Payload, tokio_postgres::Error>,
    /// Deletes finished items: $1 before (Unix seconds), $2 limit.
    prune: &'static str,
    /// The names the pool counts its calls by (`claim`, `complete`, `backlog`, `prune`): the
    /// names of the methods they were before the kinds shared them.
    pub(super) ops: [&'static str; 4],
}

const MAIL: Table = Table {
    table: "mail_outbox",
    alias: "m",
    done: "sent",
    done_at: "sent_at_ms",
    // A finished mail's message is dropped; one without it is never sent.
    claimable: "AND message_sealed IS NOT NULL",
    on_done: ", message_sealed = NULL",
    done_params: 3,
    on_failed: ", message_sealed = CASE WHEN $3::bigint IS NULL THEN NULL \
                ELSE message_sealed END",
    failed_params: 4,
    generation: "0",
    payload_columns: &["m.tenant_id, m.kind, m.message_sealed"],
    joins: "",
    payload: |row, at| {
        Ok(Payload::Mail(MailPayload {
            tenant_id: row.try_get(at)?,
            kind: row.try_get(at + 1)?,
            message_sealed: row.try_get(at + 2)?,
        }))
    },
    prune: "DELETE FROM mail_outbox WHERE id IN \
            (SELECT id FROM mail_outbox \
             WHERE status IN ('sent', 'exhausted') AND created_at < $1 LIMIT $2)",
    ops: ["claim_mail", "complete_mail", "mail_backlog", "prune_mail"],
};

const WEBHOOK: Table = Table {
    table: "webhook_deliveries",
    alias: "d",
    done: "delivered",
    done_at: "delivered_at_ms",
    claimable: "",
    // An attempt of this worker (counted) is its last attempt; a 2xx reported through Redis
    // keeps the code of the attempt that got it.
    on_done: ", last_attempt_at_ms = CASE WHEN $3 = 1 THEN $2 ELSE last_attempt_at_ms END, \
              last_status_code = coalesce($4, last_status_code)",
    done_params: 4,
    on_failed: ", last_attempt_at_ms = $5, last_status_code = $6",
    failed_params: 6,
    generation: "d.generation",
    payload_columns: &[ENDPOINT_COLUMNS, EVENT_COLUMNS],
    joins: "JOIN webhook_endpoints e ON e.id = d.endpoint_id \
            JOIN webhook_events v ON v.id = d.event_id",
    payload: |row, at| {
        Ok(Payload::Webhook(Box::new(DeliveryPayload {
            endpoint: endpoint_from(row, at)?,
            event: event_from(row, at + 6)?,
        })))
    },
    // The deliveries go with their event (ON DELETE CASCADE).
    prune: "DELETE FROM webhook_events WHERE id IN (\
            SELECT v.id FROM webhook_events v WHERE v.created_at < $1 \
            AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d \
            WHERE d.event_id = v.id AND d.status IN ('pending', 'failed')) \
            LIMIT $2)",
    ops: [
        "claim_webhook_deliveries",
        "complete_webhook_delivery",
        "webhook_backlog",
        "prune_webhook_events",
    ],
};

pub(super) fn table(kind: OutboxKind) -> &'static Table {
    match kind {
        OutboxKind::Mail => &MAIL,
        OutboxKind::Webhook => &WEBHOOK,
    }
}

fn count(row: &Row, idx: usize) -> Result<u32, tokio_postgres::Error> {
    let v: i32 = row.try_get(idx)?;
    Ok(u32::try_from(v).unwrap_or(0))
}

/// Leases up to `limit` due items: one statement in one transaction. Rows locked by a
/// concurrent claim are skipped; a row another claim leased and committed meanwhile is
/// re-checked against the condition (READ COMMITTED) and no longer matches.
pub(super) async fn claim(
    client: &mut Client,
    kind: OutboxKind,
    now_ms: i64,
    leased_until_ms: i64,
    limit: u32,
) -> Result<Vec<Claimed>, StoreError> {
    let t = table(kind);
    let lease_id = Uuid::new_v4();
    let limit = i64::from(limit);
    let a = t.alias;
    let sql = format!(
        "WITH due AS (\
         SELECT id FROM {table} \
         WHERE status IN ('pending', 'failed') AND next_attempt_at_ms <= $1 \
         AND (leased_until_ms IS NULL OR leased_until_ms <= $1) {claimable} \
         ORDER BY next_attempt_at_ms, id LIMIT $4 \
         FOR UPDATE SKIP LOCKED\
         ), claimed AS (\
         UPDATE {table} {a} SET leased_until_ms = $2, lease_id = $3 \
         FROM due WHERE {a}.id = due.id RETURNING {a}.*\
         ) \
         SELECT {a}.id, {a}.attempts, {generation}, {columns} \
         FROM claimed {a} {joins} \
         ORDER BY {a}.next_attempt_at_ms, {a}.id",
        table = t.table,
        claimable = t.claimable,
        generation = t.generation,
        columns = t.payload_columns.join(", "),
        joins = t.joins,
    );
    let tx = client.transaction().await.map_err(db)?;
    let rows = tx
        .query_typed(
            &sql,
            &[
                (&now_ms, Type::INT8),
                (&leased_until_ms, Type::INT8),
                (&lease_id, Type::UUID),
                (&limit, Type::INT8),
            ],
        )
        .await
        .map_err(db)?;
    let claimed = rows
        .iter()
        .map(|row| {
            Ok(Claimed {
                id: row.try_get(0)?,
                lease_id,
                leased_until_ms,
                attempts: count(row, 1)?,
                generation: count(row, 2)?,
                payload: (t.payload)(row, 3)?,
            })
        })
        .collect::<Result<Vec<_>, tokio_postgres::Error>>()
        .map_err(db)?;
    tx.commit().await.map_err(db)?;
    Ok(claimed)
}

/// One conditional update (see [`OutboxResult`]): `Done` applies unless already done or
/// exhausted, whoever holds the lease; `Failed` only while its lease holds the item.
pub(super) async fn complete(client: &Client, result: &OutboxResult) -> Result<bool, StoreError> {
    let t = table(result.kind());
    let changed = match result {
        OutboxResult::Done {
            kind: _,
            id,
            at_ms,
            status_code,
            counted,
        } => {
            let counted = i32::from(*counted);
            let code = status_code.map(i32::from);
            let all: [(&(dyn ToSql + Sync), Type); 4] = [
                (id, Type::UUID),
                (at_ms, Type::INT8),
                (&counted, Type::INT4),
                (&code, Type::INT4),
            ];
            let sql = format!(
                "UPDATE {table} \
                 SET status = '{done}', attempts = attempts + $3, {done_at} = $2, \
                 last_error = NULL, leased_until_ms = NULL, lease_id = NULL{more} \
                 WHERE id = $1 AND status IN ('pending', 'failed')",
                table = t.table,
                done = t.done,
                done_at = t.done_at,
                more = t.on_done,
            );
            client
                .execute_typed(&sql, &all[..t.done_params])
                .await
                .map_err(db)?
        }
        OutboxResult::Failed {
            kind: _,
            id,
            lease_id,
            at_ms,
            status_code,
            error,
            retry_at_ms,
        } => {
            let code = status_code.map(i32::from);
            let all: [(&(dyn ToSql + Sync), Type); 6] = [
                (id, Type::UUID),
                (lease_id, Type::UUID),
                (retry_at_ms, Type::INT8),
                (error, Type::TEXT),
                (at_ms, Type::INT8),
                (&code, Type::INT4),
            ];
            let sql = format!(
                "UPDATE {table} \
                 SET status = CASE WHEN $3::bigint IS NULL THEN 'exhausted' ELSE 'failed' END, \
                 attempts = attempts + 1, \
                 next_attempt_at_ms = coalesce($3, next_attempt_at_ms), \
                 last_error = $4, leased_until_ms = NULL, lease_id = NULL{more} \
                 WHERE id = $1 AND lease_id = $2 AND status IN ('pending', 'failed')",
                table = t.table,
                more = t.on_failed,
            );
            client
                .execute_typed(&sql, &all[..t.failed_params])
                .await
                .map_err(db)?
        }
    };
    Ok(changed == 1)
}

pub(super) async fn backlog<C: GenericClient + Sync>(
    client: &C,
    kind: OutboxKind,
    now_ms: i64,
) -> Result<u64, StoreError> {
    let sql = format!(
        "SELECT count(*) FROM {table} \
         WHERE status IN ('pending', 'failed') AND next_attempt_at_ms <= $1",
        table = table(kind).table,
    );
    let n: i64 = client
        .query_typed_one(&sql, &[(&now_ms, Type::INT8)])
        .await
        .map_err(db)?
        .try_get(0)
        .map_err(db)?;
    Ok(u64::try_from(n).unwrap_or(0))
}

pub(super) async fn prune<C: GenericClient + Sync>(
    client: &C,
    kind: OutboxKind,
    before: i64,
    limit: u32,
) -> Result<u64, StoreError> {
    client
        .execute_typed(
            table(kind).prune,
            &[(&before, Type::INT8), (&i64::from(limit), Type::INT8)],
        )
        .await
        .map_err(db)
}
