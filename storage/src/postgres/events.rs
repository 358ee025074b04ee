//! Events: the transactional outbox. Each event is written inside the transaction of the
//! change that caused it, by one statement that also fans it out: one delivery per endpoint
//! of its tenant subscribed to its type (or to `*`).

use super::error::db;
use std::sync::LazyLock;

use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{GenericClient, Row};
use uuid::Uuid;

use crate::{Event, EventDraft, StoreError};

/// The 12 event columns of [`event_from`], for a table aliased `v`.
pub(super) const EVENT_COLUMNS: &str =
    "v.id, v.tenant_id, v.type, v.actor_id, v.actor_type, v.target_id, v.target_type, \
     v.ip_address, v.user_agent, v.metadata, v.result, v.created_at";

/// An event from 12 columns starting at `at`, in the order of [`EVENT_COLUMNS`].
pub(super) fn event_from(row: &Row, at: usize) -> Result<Event, tokio_postgres::Error> {
    Ok(Event {
        id: row.try_get(at)?,
        tenant_id: row.try_get(at + 1)?,
        event_type: row.try_get(at + 2)?,
        actor_id: row.try_get(at + 3)?,
        actor_type: row.try_get(at + 4)?,
        target_id: row.try_get(at + 5)?,
        target_type: row.try_get(at + 6)?,
        ip_address: row.try_get(at + 7)?,
        user_agent: row.try_get(at + 8)?,
        metadata: crate::Metadata::from_json(row.try_get(at + 9)?),
        result: row.try_get(at + 10)?,
        created_at: row.try_get(at + 11)?,
    })
}

/// `hj_record_event` with the event's 12 columns as `$first` .. `$first + 11`, in the order of
/// [`event_params`].
pub(super) fn record_event_call(first: usize) -> String {
    let args = (first..first + 12)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ");
    format!("hj_record_event({args})")
}

/// The arguments of [`record_event_call`], with their types.
pub(super) fn event_params(event: &Event) -> [(&(dyn ToSql + Sync), Type); 12] {
    [
        (&event.id, Type::UUID),
        (&event.tenant_id, Type::UUID),
        (&event.event_type, Type::TEXT),
        (&event.actor_id, Type::UUID),
        (&event.actor_type, Type::TEXT),
        (&event.target_id, Type::UUID),
        (&event.target_type, Type::TEXT),
        (&event.ip_address, Type::TEXT),
        (&event.user_agent, Type::TEXT),
        (event.metadata.as_json(), Type::JSONB),
        (&event.result, Type::TEXT),
        (&event.created_at, Type::INT8),
    ]
}

/// Writes the event and its deliveries (one per endpoint of the tenant subscribed to its type,
/// or to `*`) in one statement, so it pipelines with the change's own statements; nothing when
/// no endpoint subscribes. The fan-out is `hj_record_event`
/// (migrations/postgres/0004_hot_writes.sql), whose plans PostgreSQL caches per connection.
pub(super) async fn insert_event<C: GenericClient + Sync>(
    client: &C,
    event: &Event,
) -> Result<(), StoreError> {
    static SQL: LazyLock<String> = LazyLock::new(|| format!("SELECT {}", record_event_call(1)));
    client
        .execute_typed(&SQL, &event_params(event))
        .await
        .map_err(db)?;
    Ok(())
}

/// [`insert_event`] for an optional, already completed event.
pub(super) async fn insert_opt<C: GenericClient + Sync>(
    client: &C,
    event: Option<&Event>,
) -> Result<(), StoreError> {
    match event {
        Some(event) => insert_event(client, event).await,
        None => Ok(()),
    }
}

/// An event with no other change: one statement, atomic on its own.
pub(super) async fn record_event<C: GenericClient + Sync>(
    client: &C,
    draft: EventDraft,
) -> Result<Event, StoreError> {
    let event = draft.into_event()?;
    insert_event(client, &event).await?;
    Ok(event)
}

pub(super) async fn list_events<C: GenericClient + Sync>(
    client: &C,
    tenant_id: Option<Uuid>,
    limit: u32,
) -> Result<Vec<Event>, StoreError> {
    let limit = i64::from(limit);
    let rows = client
        .query_typed(
            &format!(
                "SELECT {EVENT_COLUMNS} FROM webhook_events v \
                 WHERE ($1::uuid IS NULL OR v.tenant_id = $1) \
                 ORDER BY v.created_at DESC, v.id DESC LIMIT $2"
            ),
            &[(&tenant_id, Type::UUID), (&limit, Type::INT8)],
        )
        .await
        .map_err(db)?;
    rows.iter()
        .map(|row| event_from(row, 0))
        .collect::<Result<_, _>>()
        .map_err(db)
}
