//! Events: the transactional outbox. Each event is written inside the transaction of the
//! change that caused it, with its audit entry and one delivery per subscribed endpoint of its
//! tenant.

use super::error::db;
use rusqlite::{params, Connection, Row, TransactionBehavior};
use uuid::Uuid;

use super::error::{json_at, opt_uuid_at, to_json, uuid_at};
use crate::{Event, EventDraft, StoreError};

/// The 12 event columns of [`event_from`], for a table aliased `v`.
pub(super) const EVENT_COLUMNS: &str =
    "v.id, v.tenant_id, v.type, v.actor_id, v.actor_type, v.target_id, v.target_type, \
     v.ip_address, v.user_agent, v.metadata, v.result, v.created_at";

/// An event from 12 columns starting at `at`, in the order of [`EVENT_COLUMNS`].
pub(super) fn event_from(row: &Row<'_>, at: usize) -> rusqlite::Result<Event> {
    Ok(Event {
        id: uuid_at(row, at)?,
        tenant_id: uuid_at(row, at + 1)?,
        event_type: row.get(at + 2)?,
        actor_id: opt_uuid_at(row, at + 3)?,
        actor_type: row.get(at + 4)?,
        target_id: opt_uuid_at(row, at + 5)?,
        target_type: row.get(at + 6)?,
        ip_address: row.get(at + 7)?,
        user_agent: row.get(at + 8)?,
        metadata: crate::Metadata::from_json(json_at(row, at + 9)?),
        result: row.get(at + 10)?,
        created_at: row.get(at + 11)?,
    })
}

/// Writes the event's audit entry, then the event and its deliveries (one per endpoint of the
/// tenant subscribed to its type, or to `*`), inside the caller's transaction. The audit entry
/// is always written; the event and deliveries only when an endpoint subscribes (tenants
/// without webhooks pay no outbox). Deliveries are due at once. The same as `hj_record_event`
/// (migrations/postgres/0014_admin_api.sql) on PostgreSQL.
pub(super) fn insert_event(conn: &Connection, event: &Event) -> Result<(), StoreError> {
    let id = event.id.to_string();
    let tenant_id = event.tenant_id.to_string();
    let metadata = to_json(event.metadata.as_json())?;
    let request_id = event
        .metadata
        .as_json()
        .get("request_id")
        .and_then(|v| v.as_str());
    conn.prepare_cached(
        "INSERT INTO audit_log (id, tenant_id, action, actor_type, actor_id, target_type, \
                                target_id, ip_address, user_agent, request_id, metadata, \
                                result, created_at) \
         VALUES (?1, ?2, ?3, COALESCE(?4, 'system'), ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13) \
         ON CONFLICT (id) DO NOTHING",
    )
    .map_err(db)?
    .execute(params![
        id,
        tenant_id,
        event.event_type,
        event.actor_type,
        event.actor_id.map(|u| u.to_string()),
        event.target_type,
        event.target_id.map(|u| u.to_string()),
        event.ip_address,
        event.user_agent,
        request_id,
        metadata,
        event.result,
        event.created_at,
    ])
    .map_err(db)?;
    let endpoints: Vec<String> = {
        let mut stmt = conn
            .prepare_cached(
                "SELECT e.id FROM webhook_endpoints e \
             WHERE e.tenant_id = ?1 \
             AND EXISTS (SELECT 1 FROM json_each(e.events) WHERE value IN (?2, '*'))",
            )
            .map_err(db)?;
        let rows = stmt
            .query_map(params![tenant_id, event.event_type], |row| row.get(0))
            .map_err(db)?;
        rows.collect::<Result<_, _>>().map_err(db)?
    };
    if endpoints.is_empty() {
        return Ok(());
    }
    conn.prepare_cached(
        "INSERT INTO webhook_events (id, tenant_id, type, actor_id, actor_type, target_id, \
                                     target_type, ip_address, user_agent, metadata, result, \
                                     created_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
    )
    .map_err(db)?
    .execute(params![
        id,
        tenant_id,
        event.event_type,
        event.actor_id.map(|u| u.to_string()),
        event.actor_type,
        event.target_id.map(|u| u.to_string()),
        event.target_type,
        event.ip_address,
        event.user_agent,
        metadata,
        event.result,
        event.created_at,
    ])
    .map_err(db)?;
    let due_ms = event.created_at.saturating_mul(1000);
    for endpoint_id in endpoints {
        conn.prepare_cached(
            "INSERT INTO webhook_deliveries (id, event_id, endpoint_id, tenant_id, status, \
                                             attempts, generation, next_attempt_at_ms, \
                                             created_at) \
             VALUES (?1, ?2, ?3, ?4, 'pending', 0, 0, ?5, ?6)",
        )
        .map_err(db)?
        .execute(params![
            Uuid::new_v4().to_string(),
            id,
            endpoint_id,
            tenant_id,
            due_ms,
            event.created_at,
        ])
        .map_err(db)?;
    }
    Ok(())
}

/// [`insert_event`] for an optional draft completed by `complete`.
pub(super) fn insert_draft(
    conn: &Connection,
    draft: Option<EventDraft>,
    complete: impl FnOnce(EventDraft) -> Result<Event, StoreError>,
) -> Result<(), StoreError> {
    match draft {
        Some(draft) => insert_event(conn, &complete(draft)?),
        None => Ok(()),
    }
}

/// An event with no other change, in its own transaction.
pub(super) fn record_event(conn: &mut Connection, draft: EventDraft) -> Result<Event, StoreError> {
    let event = draft.into_event()?;
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(db)?;
    insert_event(&tx, &event)?;
    tx.commit().map_err(db)?;
    Ok(event)
}

pub(super) fn list_events(
    conn: &Connection,
    tenant_id: Option<Uuid>,
    limit: u32,
) -> Result<Vec<Event>, StoreError> {
    let events = match tenant_id {
        Some(tenant_id) => {
            let mut stmt = conn
                .prepare_cached(&format!(
                    "SELECT {EVENT_COLUMNS} FROM webhook_events v WHERE v.tenant_id = ?1 \
                 ORDER BY v.created_at DESC, v.id DESC LIMIT ?2"
                ))
                .map_err(db)?;
            let rows = stmt
                .query_map(params![tenant_id.to_string(), limit], |row| {
                    event_from(row, 0)
                })
                .map_err(db)?;
            rows.collect::<Result<_, _>>().map_err(db)?
        }
        None => {
            let mut stmt = conn
                .prepare_cached(&format!(
                    "SELECT {EVENT_COLUMNS} FROM webhook_events v \
                 ORDER BY v.created_at DESC, v.id DESC LIMIT ?1"
                ))
                .map_err(db)?;
            let rows = stmt
                .query_map(params![limit], |row| event_from(row, 0))
                .map_err(db)?;
            rows.collect::<Result<_, _>>().map_err(db)?
        }
    };
    Ok(events)
}
