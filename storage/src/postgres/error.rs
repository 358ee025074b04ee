//! PostgreSQL errors as [`StoreError`]s, with the same meaning as the SQLite backend's.

use crate::StoreError;

pub(crate) fn db(e: tokio_postgres::Error) -> StoreError {
    if let Some(db) = e.as_db_error() {
        let code = db.code().code();
        let text = format!("{} ({code})", db.message());
        return match code {
            "23505" => StoreError::Conflict(conflict_name(db.constraint().unwrap_or_default())),
            "42P01" | "42703" => StoreError::Schema(format!("{text} (run the migrations)")),
            c if unavailable(c) => StoreError::Unavailable(text),
            _ => StoreError::Internal(text),
        };
    }
    let text = error_chain(&e);
    if e.is_closed() || connection_level(&e) {
        StoreError::Unavailable(text)
    } else {
        StoreError::Internal(text)
    }
}

/// SQLSTATEs after which the database is unreachable or gave up, and a retry may succeed.
fn unavailable(code: &str) -> bool {
    matches!(
        &code[..code.len().min(2)],
        "08" | "53" | "57" | "58" | "28" | "40"
    ) || matches!(code, "3D000" | "25P03" | "55P03" | "55006")
}

/// Errors of the connection rather than of the statement (I/O, TLS, connect, timeouts),
/// recognised by their I/O source or by tokio-postgres's fixed descriptions.
fn connection_level(e: &tokio_postgres::Error) -> bool {
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if s.is::<std::io::Error>() {
            return true;
        }
        source = s.source();
    }
    let text = e.to_string();
    [
        "error communicating with the server",
        "error performing TLS handshake",
        "error connecting to server",
        "timeout waiting for server",
        "connection closed",
        "unexpected message from server",
    ]
    .iter()
    .any(|prefix| text.starts_with(prefix))
}

/// The error and its sources, `: `-separated (tokio-postgres's Display already appends the
/// first source; later ones are added when not already in the text).
fn error_chain(e: &tokio_postgres::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        let part = s.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = s.source();
    }
    text
}

/// What a unique violation is about, from the constraint name (named explicitly in
/// `migrations/postgres/`), as the SQLite backend names it.
pub(super) fn conflict_name(constraint: &str) -> String {
    match constraint {
        "tenants_slug_key" => "slug",
        "tenants_pkey" => "tenant_id",
        "clients_tenant_id_client_id_key" => "client_id",
        "clients_pkey" => "client",
        "users_tenant_id_email_key" => "email",
        "users_pkey" => "user_id",
        "password_identities_pkey" => "password_identity",
        "refresh_families_pkey" => "refresh_family",
        "refresh_tokens_pkey" => "refresh_token",
        "sessions_pkey" => "session",
        "signing_keys_pkey" => "kid",
        "webhook_events_pkey" => "event_id",
        "webhook_endpoints_pkey" => "webhook_endpoint",
        "webhook_deliveries_pkey" | "webhook_deliveries_event_id_endpoint_id_key" => {
            "webhook_delivery"
        }
        "api_keys_pkey" => "api_key",
        "api_keys_key_hash_key" => "key_hash",
        "audit_log_pkey" => "audit_entry",
        other => other,
    }
    .to_owned()
}

/// A timeout of a whole store call (the connection is discarded).
pub(super) fn timed_out(what: &str, after: std::time::Duration) -> StoreError {
    StoreError::Unavailable(format!("{what} did not finish within {after:?}"))
}

/// The rows a tolerant reader kept: a row mapper returns `None` for a row it skips (a kind or
/// value this release does not know, see [`store::tolerance`]), and a list leaves it out.
pub(super) fn known<T>(
    rows: impl Iterator<Item = Result<Option<T>, StoreError>>,
) -> Result<Vec<T>, StoreError> {
    let mut kept = Vec::new();
    for row in rows {
        kept.extend(row?);
    }
    Ok(kept)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_conflict_like_sqlite() {
        assert_eq!(conflict_name("users_tenant_id_email_key"), "email");
        assert_eq!(conflict_name("tenants_slug_key"), "slug");
        assert_eq!(
            conflict_name("clients_tenant_id_client_id_key"),
            "client_id"
        );
        assert_eq!(conflict_name("refresh_tokens_pkey"), "refresh_token");
        assert_eq!(conflict_name("x_key"), "x_key");
    }

    #[test]
    fn classes_of_unavailability() {
        for code in [
            "08006", "08P01", "57P01", "57P03", "53300", "40001", "40P01", "3D000",
        ] {
            assert!(unavailable(code), "{code}");
        }
        for code in ["23505", "23503", "42P01", "22P02", "26000", "XX000"] {
            assert!(!unavailable(code), "{code}");
        }
    }
}
