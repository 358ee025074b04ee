//! SQLite errors as [`StoreError`]s, and column conversions shared by the submodules.

use rusqlite::ffi;
use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ValueRef};
use rusqlite::{ErrorCode, Row};
use uuid::Uuid;

use crate::StoreError;

pub(crate) fn db(e: rusqlite::Error) -> StoreError {
    if let rusqlite::Error::SqliteFailure(failure, message) = &e {
        let text = message.as_deref().unwrap_or_default();
        match failure.code {
            ErrorCode::ConstraintViolation
                if failure.extended_code == ffi::SQLITE_CONSTRAINT_UNIQUE
                    || failure.extended_code == ffi::SQLITE_CONSTRAINT_PRIMARYKEY =>
            {
                return StoreError::Conflict(conflict_name(text));
            }
            ErrorCode::DatabaseBusy
            | ErrorCode::DatabaseLocked
            | ErrorCode::SystemIoFailure
            | ErrorCode::CannotOpen
            | ErrorCode::DiskFull
            | ErrorCode::FileLockingProtocolFailed
            | ErrorCode::PermissionDenied
            | ErrorCode::ReadOnly => return StoreError::Unavailable(e.to_string()),
            _ => {}
        }
    }
    let text = e.to_string();
    if text.contains("no such table") || text.contains("no such column") {
        return StoreError::Schema(format!("{text} (run the migrations)"));
    }
    StoreError::Internal(text)
}

/// What a UNIQUE violation is about, from SQLite's message
/// (`UNIQUE constraint failed: users.tenant_id, users.email`): the last column, named as the
/// engine knows it.
fn conflict_name(message: &str) -> String {
    let columns = message.rsplit(": ").next().unwrap_or(message);
    let last = columns.rsplit(", ").next().unwrap_or(columns).trim();
    match last.split_once('.') {
        Some(("tenants", "slug")) => "slug".into(),
        Some(("tenants", "id")) => "tenant_id".into(),
        Some(("clients", "client_id")) => "client_id".into(),
        Some(("clients", "id")) => "client".into(),
        Some(("users", "email")) => "email".into(),
        Some(("users", "id")) => "user_id".into(),
        Some(("password_identities", "user_id")) => "password_identity".into(),
        Some(("refresh_families", "id")) => "refresh_family".into(),
        Some(("refresh_tokens", "token_hash")) => "refresh_token".into(),
        Some(("sessions", "id_hash")) => "session".into(),
        Some(("signing_keys", "kid")) => "kid".into(),
        Some(("webhook_events", "id")) => "event_id".into(),
        Some(("webhook_endpoints", "id")) => "webhook_endpoint".into(),
        Some(("webhook_deliveries", "id" | "endpoint_id")) => "webhook_delivery".into(),
        Some(("api_keys", "id")) => "api_key".into(),
        Some(("api_keys", "key_hash")) => "key_hash".into(),
        Some(("audit_log", "id")) => "audit_entry".into(),
        _ => last.to_owned(),
    }
}

/// A UUID column (TEXT, canonical form).
struct DbUuid(Uuid);

impl FromSql for DbUuid {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        Uuid::parse_str(value.as_str()?)
            .map(DbUuid)
            .map_err(|e| FromSqlError::Other(Box::new(e)))
    }
}

pub(super) fn uuid_at(row: &Row<'_>, idx: usize) -> rusqlite::Result<Uuid> {
    Ok(row.get::<_, DbUuid>(idx)?.0)
}

/// A nullable UUID column.
pub(super) fn opt_uuid_at(row: &Row<'_>, idx: usize) -> rusqlite::Result<Option<Uuid>> {
    match row.get_ref(idx)? {
        ValueRef::Null => Ok(None),
        _ => uuid_at(row, idx).map(Some),
    }
}

/// A JSON column (TEXT) decoded into `T`.
pub(super) fn json_at<T: serde::de::DeserializeOwned>(
    row: &Row<'_>,
    idx: usize,
) -> rusqlite::Result<T> {
    let text = row.get_ref(idx)?.as_str().map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(idx, rusqlite::types::Type::Text, Box::new(e))
    })?;
    serde_json::from_str(text).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(idx, rusqlite::types::Type::Text, Box::new(e))
    })
}

/// The rows a tolerant reader kept: a row mapper returns `None` for a row it skips (a kind or
/// value this release does not know, see [`store::tolerance`]), and a list leaves it out.
pub(super) fn known_rows<T>(
    rows: impl Iterator<Item = rusqlite::Result<Option<T>>>,
) -> Result<Vec<T>, StoreError> {
    let mut kept = Vec::new();
    for row in rows {
        kept.extend(row.map_err(db)?);
    }
    Ok(kept)
}

/// A value as JSON text for a JSON column.
pub(super) fn to_json<T: serde::Serialize + ?Sized>(value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| StoreError::Internal(format!("json: {e}")))
}

#[cfg(test)]
mod tests {
    use super::conflict_name;

    #[test]
    fn names_the_conflicting_column() {
        assert_eq!(
            conflict_name("UNIQUE constraint failed: users.tenant_id, users.email"),
            "email"
        );
        assert_eq!(
            conflict_name("UNIQUE constraint failed: tenants.slug"),
            "slug"
        );
        assert_eq!(
            conflict_name("UNIQUE constraint failed: refresh_tokens.token_hash"),
            "refresh_token"
        );
        assert_eq!(conflict_name("UNIQUE constraint failed: x.y"), "x.y");
    }
}
