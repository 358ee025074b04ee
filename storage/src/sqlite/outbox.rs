//! The outbox's claim, completion, backlog and pruning, once for both kinds (mail and webhook
//! deliveries): the statements have one shape, and what differs between the kinds (table,
//! status and columns of a finished item, what a claim reads back) is in a static [`Table`]
//! per kind.
//!
//! A claim is one conditional `UPDATE` on the single writer, inside a `BEGIN IMMEDIATE`
//! transaction (which also excludes other processes sharing the file): it leases the due rows
//! it picks with a fresh lease id, so no other caller can pick them until the lease ends; they
//! are then read back by that id.

use rusqlite::{params, Connection, Row, ToSql, TransactionBehavior};
use uuid::Uuid;

use super::error::{db, uuid_at};
use super::events::{event_from, EVENT_COLUMNS};
use super::webhooks::{endpoint_from, ENDPOINT_COLUMNS};
use crate::{Claimed, DeliveryPayload, MailPayload, OutboxKind, OutboxResult, Payload, StoreError};

/// What differs between the kinds, as SQL fragments. Only names and fixed text: every value
/// is a bound parameter.
struct Table {
    /// The table, and its alias in the claim's read-back.
    table: &'static str,
    alias: &'static str,
    /// A finished item's status and the column that records when.
    done: &'static str,
    done_at: &'static str,
    /// More conditions a claimable row meets.
    claimable: &'static str,
    /// More assignments when done. Parameters: ?1 id, ?2 at_ms, ?3 counted (0 or 1), then
    /// ?4 the status code when `done_params` is 4.
    on_done: &'static str,
    done_params: usize,
    /// More assignments on a failure. Parameters: ?1 id, ?2 lease id, ?3 retry_at_ms (NULL:
    /// exhausted), ?4 error, then ?5 at_ms and ?6 the status code when `failed_params` is 6.
    on_failed: &'static str,
    failed_params: usize,
    /// The claim's read-back: the generation, the payload's columns, and the joins they need.
    generation: &'static str,
    payload_columns: &'static [&'static str],
    joins: &'static str,
    /// The payload from the read-back's columns, starting at the given index.
    payload: fn(&Row<'_>, usize) -> rusqlite::Result<Payload>,
    /// Deletes finished items: ?1 before (Unix seconds), ?2 limit.
    prune: &'static str,
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
    on_failed: ", message_sealed = CASE WHEN ?3 IS NULL THEN NULL ELSE message_sealed END",
    failed_params: 4,
    generation: "0",
    payload_columns: &["m.tenant_id, m.kind, m.message_sealed"],
    joins: "",
    payload: |row, at| {
        Ok(Payload::Mail(MailPayload {
            tenant_id: uuid_at(row, at)?,
            kind: row.get(at + 1)?,
            message_sealed: row.get(at + 2)?,
        }))
    },
    prune: "DELETE FROM mail_outbox WHERE id IN \
            (SELECT id FROM mail_outbox \
             WHERE status IN ('sent', 'exhausted') AND created_at < ?1 LIMIT ?2)",
};

const WEBHOOK: Table = Table {
    table: "webhook_deliveries",
    alias: "d",
    done: "delivered",
    done_at: "delivered_at_ms",
    claimable: "",
    // An attempt of this worker (counted) is its last attempt; a 2xx reported through Redis
    // keeps the code of the attempt that got it.
    on_done: ", last_attempt_at_ms = CASE WHEN ?3 = 1 THEN ?2 ELSE last_attempt_at_ms END, \
              last_status_code = coalesce(?4, last_status_code)",
    done_params: 4,
    on_failed: ", last_attempt_at_ms = ?5, last_status_code = ?6",
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
                SELECT v.id FROM webhook_events v WHERE v.created_at < ?1 \
                AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d \
                                WHERE d.event_id = v.id AND d.status IN ('pending', 'failed')) \
                LIMIT ?2)",
};

fn table(kind: OutboxKind) -> &'static Table {
    match kind {
        OutboxKind::Mail => &MAIL,
        OutboxKind::Webhook => &WEBHOOK,
    }
}

fn u32_at(row: &Row<'_>, idx: usize) -> rusqlite::Result<u32> {
    let v: i64 = row.get(idx)?;
    Ok(u32::try_from(v).unwrap_or(u32::MAX))
}

/// Leases up to `limit` due items in one `BEGIN IMMEDIATE` transaction: one conditional update
/// marks them with a fresh lease id, then they are read back by it.
pub(super) fn claim(
    conn: &mut Connection,
    kind: OutboxKind,
    now_ms: i64,
    leased_until_ms: i64,
    limit: u32,
) -> Result<Vec<Claimed>, StoreError> {
    let t = table(kind);
    let lease_id = Uuid::new_v4();
    let lease = lease_id.to_string();
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(db)?;
    let claimed = tx
        .prepare_cached(&format!(
            "UPDATE {table} SET leased_until_ms = ?2, lease_id = ?3 \
             WHERE id IN (\
                 SELECT id FROM {table} \
                 WHERE status IN ('pending', 'failed') AND next_attempt_at_ms <= ?1 \
                 AND (leased_until_ms IS NULL OR leased_until_ms <= ?1) {claimable} \
                 ORDER BY next_attempt_at_ms, id LIMIT ?4\
             ) \
             AND status IN ('pending', 'failed') \
             AND (leased_until_ms IS NULL OR leased_until_ms <= ?1)",
            table = t.table,
            claimable = t.claimable,
        ))
        .map_err(db)?
        .execute(params![now_ms, leased_until_ms, lease, limit])
        .map_err(db)?;
    let out = if claimed == 0 {
        Vec::new()
    } else {
        let a = t.alias;
        let mut stmt = tx
            .prepare_cached(&format!(
                "SELECT {a}.id, {a}.attempts, {generation}, {columns} \
                 FROM {table} {a} {joins} \
                 WHERE {a}.lease_id = ?1 ORDER BY {a}.next_attempt_at_ms, {a}.id",
                generation = t.generation,
                columns = t.payload_columns.join(", "),
                table = t.table,
                joins = t.joins,
            ))
            .map_err(db)?;
        let rows = stmt
            .query_map([&lease], |row| {
                Ok(Claimed {
                    id: uuid_at(row, 0)?,
                    lease_id,
                    leased_until_ms,
                    attempts: u32_at(row, 1)?,
                    generation: u32_at(row, 2)?,
                    payload: (t.payload)(row, 3)?,
                })
            })
            .map_err(db)?;
        rows.collect::<Result<_, _>>().map_err(db)?
    };
    tx.commit().map_err(db)?;
    Ok(out)
}

/// One conditional update (see [`OutboxResult`]): `Done` applies unless already done or
/// exhausted, whoever holds the lease; `Failed` only while its lease holds the item.
pub(super) fn complete(conn: &Connection, result: &OutboxResult) -> Result<bool, StoreError> {
    let t = table(result.kind());
    let changed = match result {
        OutboxResult::Done {
            kind: _,
            id,
            at_ms,
            status_code,
            counted,
        } => {
            let id = id.to_string();
            let counted = i64::from(*counted);
            let code = status_code.map(i64::from);
            let all: [&dyn ToSql; 4] = [&id, at_ms, &counted, &code];
            conn.prepare_cached(&format!(
                "UPDATE {table} \
                 SET status = '{done}', attempts = attempts + ?3, {done_at} = ?2, \
                     last_error = NULL, leased_until_ms = NULL, lease_id = NULL{more} \
                 WHERE id = ?1 AND status IN ('pending', 'failed')",
                table = t.table,
                done = t.done,
                done_at = t.done_at,
                more = t.on_done,
            ))
            .map_err(db)?
            .execute(&all[..t.done_params])
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
            let id = id.to_string();
            let lease = lease_id.to_string();
            let code = status_code.map(i64::from);
            let all: [&dyn ToSql; 6] = [&id, &lease, retry_at_ms, error, at_ms, &code];
            conn.prepare_cached(&format!(
                "UPDATE {table} \
                 SET status = CASE WHEN ?3 IS NULL THEN 'exhausted' ELSE 'failed' END, \
                     attempts = attempts + 1, \
                     next_attempt_at_ms = coalesce(?3, next_attempt_at_ms), \
                     last_error = ?4, leased_until_ms = NULL, lease_id = NULL{more} \
                 WHERE id = ?1 AND lease_id = ?2 AND status IN ('pending', 'failed')",
                table = t.table,
                more = t.on_failed,
            ))
            .map_err(db)?
            .execute(&all[..t.failed_params])
            .map_err(db)?
        }
    };
    Ok(changed == 1)
}

pub(super) fn backlog(conn: &Connection, kind: OutboxKind, now_ms: i64) -> Result<u64, StoreError> {
    let n: i64 = conn
        .prepare_cached(&format!(
            "SELECT count(*) FROM {table} \
             WHERE status IN ('pending', 'failed') AND next_attempt_at_ms <= ?1",
            table = table(kind).table,
        ))
        .map_err(db)?
        .query_row([now_ms], |row| row.get(0))
        .map_err(db)?;
    Ok(u64::try_from(n).unwrap_or(0))
}

pub(super) fn prune(
    conn: &Connection,
    kind: OutboxKind,
    before: i64,
    limit: u32,
) -> Result<u64, StoreError> {
    let n = conn
        .prepare_cached(table(kind).prune)
        .map_err(db)?
        .execute(params![before, limit])
        .map_err(db)?;
    Ok(n as u64)
}
