//! Embedded migrations and the `schema_migrations` bookkeeping.
//!
//! Several processes may migrate at once (every instance of a rolling update, or `hj migrate`
//! run twice): each migration is applied in one transaction that first takes a
//! transaction-level advisory lock (session-level locks do not survive PgBouncer's transaction
//! pooling) and then re-checks whether the version is applied. Whoever comes second waits,
//! sees the version and applies nothing.

use super::error::db;
use tokio_postgres::types::Type;
use tokio_postgres::{Client, Transaction};

use crate::{MigrationStatus, StoreError};

/// The advisory lock key of migrations.
const MIGRATION_LOCK: i64 = 0x686a_5f6d_6967_7261; // "hj_migra"

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
        sql: include_str!("../../../migrations/postgres/0001_init.sql"),
    },
    Migration {
        version: 2,
        name: "webhooks",
        sql: include_str!("../../../migrations/postgres/0002_webhooks.sql"),
    },
    Migration {
        version: 3,
        name: "app_metadata",
        sql: include_str!("../../../migrations/postgres/0003_app_metadata.sql"),
    },
    Migration {
        version: 4,
        name: "hot_writes",
        sql: include_str!("../../../migrations/postgres/0004_hot_writes.sql"),
    },
    Migration {
        version: 5,
        name: "oauth_clients",
        sql: include_str!("../../../migrations/postgres/0005_oauth_clients.sql"),
    },
    Migration {
        version: 6,
        name: "authorization_codes",
        sql: include_str!("../../../migrations/postgres/0006_authorization_codes.sql"),
    },
    Migration {
        version: 7,
        name: "signing_keys",
        sql: include_str!("../../../migrations/postgres/0007_signing_keys.sql"),
    },
    Migration {
        version: 8,
        name: "revoked_tokens",
        sql: include_str!("../../../migrations/postgres/0008_revoked_tokens.sql"),
    },
    Migration {
        version: 9,
        name: "client_algorithms",
        sql: include_str!("../../../migrations/postgres/0009_client_algorithms.sql"),
    },
    Migration {
        version: 10,
        name: "account_lifecycle",
        sql: include_str!("../../../migrations/postgres/0010_account_lifecycle.sql"),
    },
    Migration {
        version: 11,
        name: "rotate_refresh",
        sql: include_str!("../../../migrations/postgres/0011_rotate_refresh.sql"),
    },
    Migration {
        version: 12,
        name: "client_policy",
        sql: include_str!("../../../migrations/postgres/0012_client_policy.sql"),
    },
    Migration {
        version: 13,
        name: "tenant_issuers",
        sql: include_str!("../../../migrations/postgres/0013_tenant_issuers.sql"),
    },
    Migration {
        version: 14,
        name: "admin_api",
        sql: include_str!("../../../migrations/postgres/0014_admin_api.sql"),
    },
    Migration {
        version: 15,
        name: "admin_users",
        sql: include_str!("../../../migrations/postgres/0015_admin_users.sql"),
    },
    Migration {
        version: 16,
        name: "admin_accounts",
        sql: include_str!("../../../migrations/postgres/0016_admin_accounts.sql"),
    },
    Migration {
        version: 17,
        name: "tenant_settings",
        sql: include_str!("../../../migrations/postgres/0017_tenant_settings.sql"),
    },
];

fn known() -> Vec<i64> {
    MIGRATIONS.iter().map(|m| m.version).collect()
}

async fn table_exists(client: &Client) -> Result<bool, StoreError> {
    client
        .query_typed_one("SELECT to_regclass('schema_migrations') IS NOT NULL", &[])
        .await
        .map_err(db)?
        .try_get(0)
        .map_err(db)
}

async fn applied(client: &Client) -> Result<Vec<i64>, StoreError> {
    let rows = client
        .query_typed(
            "SELECT version FROM schema_migrations ORDER BY version",
            &[],
        )
        .await
        .map_err(db)?;
    rows.iter()
        .map(|row| row.try_get(0))
        .collect::<Result<_, _>>()
        .map_err(db)
}

/// Applied versus known versions. A database never migrated has nothing applied.
pub(super) async fn status(client: &Client) -> Result<MigrationStatus, StoreError> {
    let applied = if table_exists(client).await? {
        applied(client).await?
    } else {
        Vec::new()
    };
    Ok(MigrationStatus {
        applied,
        known: known(),
    })
}

async fn lock(tx: &Transaction<'_>) -> Result<(), StoreError> {
    tx.execute_typed(
        "SELECT pg_advisory_xact_lock($1)",
        &[(&MIGRATION_LOCK, Type::INT8)],
    )
    .await
    .map_err(db)?;
    Ok(())
}

/// Applies the pending migrations, each with its `schema_migrations` row in one transaction
/// under the migration lock. Refuses (`Schema`) a database holding versions this binary does
/// not know.
pub(super) async fn migrate(client: &mut Client) -> Result<MigrationStatus, StoreError> {
    if !table_exists(client).await? {
        // Concurrent `CREATE TABLE IF NOT EXISTS` can still collide in the catalog: under the
        // lock too.
        let tx = client.transaction().await.map_err(db)?;
        lock(&tx).await?;
        tx.batch_execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (\
             version    bigint NOT NULL PRIMARY KEY, \
             name       text   NOT NULL, \
             applied_at bigint NOT NULL\
             )",
        )
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
    }
    let before = status(client).await?;
    refuse_unknown(&before)?;
    for migration in MIGRATIONS {
        if before.applied.contains(&migration.version) {
            continue;
        }
        let tx = client.transaction().await.map_err(db)?;
        lock(&tx).await?;
        let done: bool = tx
            .query_typed_one(
                "SELECT EXISTS (SELECT 1 FROM schema_migrations WHERE version = $1)",
                &[(&migration.version, Type::INT8)],
            )
            .await
            .map_err(db)?
            .try_get(0)
            .map_err(db)?;
        if !done {
            tx.batch_execute(migration.sql)
                .await
                .map_err(|e| failed(migration, db(e)))?;
            // The one clock read of the store: bookkeeping, not domain data.
            tx.execute_typed(
                "INSERT INTO schema_migrations (version, name, applied_at) \
                 VALUES ($1, $2, floor(extract(epoch FROM now()))::bigint)",
                &[
                    (&migration.version, Type::INT8),
                    (&migration.name, Type::TEXT),
                ],
            )
            .await
            .map_err(db)?;
        }
        tx.commit().await.map_err(db)?;
        if !done {
            tracing::info!(
                version = migration.version,
                name = migration.name,
                "applied postgres migration"
            );
        }
    }
    status(client).await
}

fn refuse_unknown(status: &MigrationStatus) -> Result<(), StoreError> {
    let unknown = status.unknown();
    if unknown.is_empty() {
        return Ok(());
    }
    Err(StoreError::Schema(format!(
        "the database has migrations {unknown:?} that this binary does not know \
         (it knows {:?}); upgrade the binary",
        status.known
    )))
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
