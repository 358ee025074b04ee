//! Embedded migrations and the `schema_migrations` bookkeeping.

use super::error::db;
use rusqlite::{Connection, TransactionBehavior};

use crate::{MigrationStatus, StoreError};

struct Migration {
    version: i64,
    name: &'static str,
    sql: &'static str,
}

/// Every migration this binary knows, ascending by version.
const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "init",
        sql: include_str!("../../../migrations/sqlite/0001_init.sql"),
    },
    Migration {
        version: 2,
        name: "webhooks",
        sql: include_str!("../../../migrations/sqlite/0002_webhooks.sql"),
    },
    Migration {
        version: 3,
        name: "app_metadata",
        sql: include_str!("../../../migrations/sqlite/0003_app_metadata.sql"),
    },
    Migration {
        version: 4,
        name: "hot_writes",
        sql: include_str!("../../../migrations/sqlite/0004_hot_writes.sql"),
    },
    Migration {
        version: 5,
        name: "oauth_clients",
        sql: include_str!("../../../migrations/sqlite/0005_oauth_clients.sql"),
    },
    Migration {
        version: 6,
        name: "authorization_codes",
        sql: include_str!("../../../migrations/sqlite/0006_authorization_codes.sql"),
    },
    Migration {
        version: 7,
        name: "signing_keys",
        sql: include_str!("../../../migrations/sqlite/0007_signing_keys.sql"),
    },
    Migration {
        version: 8,
        name: "revoked_tokens",
        sql: include_str!("../../../migrations/sqlite/0008_revoked_tokens.sql"),
    },
    Migration {
        version: 9,
        name: "client_algorithms",
        sql: include_str!("../../../migrations/sqlite/0009_client_algorithms.sql"),
    },
    Migration {
        version: 10,
        name: "account_lifecycle",
        sql: include_str!("../../../migrations/sqlite/0010_account_lifecycle.sql"),
    },
    Migration {
        version: 11,
        name: "rotate_refresh",
        sql: include_str!("../../../migrations/sqlite/0011_rotate_refresh.sql"),
    },
    Migration {
        version: 12,
        name: "client_policy",
        sql: include_str!("../../../migrations/sqlite/0012_client_policy.sql"),
    },
    Migration {
        version: 13,
        name: "tenant_issuers",
        sql: include_str!("../../../migrations/sqlite/0013_tenant_issuers.sql"),
    },
    Migration {
        version: 14,
        name: "admin_api",
        sql: include_str!("../../../migrations/sqlite/0014_admin_api.sql"),
    },
    Migration {
        version: 15,
        name: "admin_users",
        sql: include_str!("../../../migrations/sqlite/0015_admin_users.sql"),
    },
    Migration {
        version: 16,
        name: "admin_accounts",
        sql: include_str!("../../../migrations/sqlite/0016_admin_accounts.sql"),
    },
    Migration {
        version: 17,
        name: "tenant_settings",
        sql: include_str!("../../../migrations/sqlite/0017_tenant_settings.sql"),
    },
    Migration {
        version: 18,
        name: "session_ids",
        sql: include_str!("../../../migrations/sqlite/0018_session_ids.sql"),
    },
    Migration {
        version: 19,
        name: "admin_listings",
        sql: include_str!("../../../migrations/sqlite/0019_admin_listings.sql"),
    },
];

fn known() -> Vec<i64> {
    MIGRATIONS.iter().map(|m| m.version).collect()
}

/// Applied versus known versions. A database never migrated has nothing applied.
pub(super) fn status(conn: &Connection) -> Result<MigrationStatus, StoreError> {
    let exists: bool = conn
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM sqlite_schema \
             WHERE type = 'table' AND name = 'schema_migrations')",
        )
        .map_err(db)?
        .query_row([], |row| row.get(0))
        .map_err(db)?;
    let applied = if exists {
        let mut stmt = conn
            .prepare_cached("SELECT version FROM schema_migrations ORDER BY version")
            .map_err(db)?;
        let rows = stmt.query_map([], |row| row.get::<_, i64>(0)).map_err(db)?;
        rows.collect::<Result<Vec<_>, _>>().map_err(db)?
    } else {
        Vec::new()
    };
    Ok(MigrationStatus {
        applied,
        known: known(),
    })
}

/// Applies the pending migrations, each with its `schema_migrations` row in one
/// `BEGIN IMMEDIATE` transaction that re-checks the version: another process migrating the
/// same file at the same time makes this a no-op, never a double application.
///
/// Refuses (`Schema`) a database holding versions this binary does not know.
pub(super) fn migrate(conn: &mut Connection) -> Result<MigrationStatus, StoreError> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (\
             version    INTEGER PRIMARY KEY, \
             name       TEXT    NOT NULL, \
             applied_at INTEGER NOT NULL\
         )",
    )
    .map_err(db)?;
    let before = status(conn)?;
    let unknown = before.unknown();
    if !unknown.is_empty() {
        return Err(StoreError::Schema(format!(
            "the database has migrations {unknown:?} that this binary does not know \
             (it knows {:?}); upgrade the binary",
            before.known
        )));
    }
    for migration in MIGRATIONS {
        if before.applied.contains(&migration.version) {
            continue;
        }
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(db)?;
        let applied: bool = tx
            .prepare_cached("SELECT EXISTS (SELECT 1 FROM schema_migrations WHERE version = ?1)")
            .map_err(db)?
            .query_row([migration.version], |row| row.get(0))
            .map_err(db)?;
        if !applied {
            tx.execute_batch(migration.sql)
                .map_err(|e| failed(migration, db(e)))?;
            // The one clock read of the store: bookkeeping, not domain data.
            tx.prepare_cached(
                "INSERT INTO schema_migrations (version, name, applied_at) \
                 VALUES (?1, ?2, CAST(strftime('%s', 'now') AS INTEGER))",
            )
            .map_err(db)?
            .execute(rusqlite::params![migration.version, migration.name])
            .map_err(db)?;
        }
        tx.commit().map_err(db)?;
        if !applied {
            tracing::info!(
                version = migration.version,
                name = migration.name,
                "applied sqlite migration"
            );
        }
    }
    status(conn)
}

fn failed(migration: &Migration, e: StoreError) -> StoreError {
    match e {
        StoreError::Internal(m) | StoreError::Schema(m) => StoreError::Schema(format!(
            "migration {} ({}) failed: {m}",
            migration.version, migration.name
        )),
        other => other,
    }
}
