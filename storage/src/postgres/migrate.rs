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
    /// Applied outside a transaction, statement by statement (see [`apply_online`]): for
    /// `CREATE INDEX CONCURRENTLY`, which cannot run in one. Its statements must be
    /// idempotent; the `schema_migrations` row is written after them, under the lock.
    online: bool,
}

/// Every migration this binary knows, ascending by version.
const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "init",
        sql: include_str!("../../../migrations/postgres/0001_init.sql"),
        online: false,
    },
    Migration {
        version: 2,
        name: "webhooks",
        sql: include_str!("../../../migrations/postgres/0002_webhooks.sql"),
        online: false,
    },
    Migration {
        version: 3,
        name: "app_metadata",
        sql: include_str!("../../../migrations/postgres/0003_app_metadata.sql"),
        online: false,
    },
    Migration {
        version: 4,
        name: "hot_writes",
        sql: include_str!("../../../migrations/postgres/0004_hot_writes.sql"),
        online: false,
    },
    Migration {
        version: 5,
        name: "oauth_clients",
        sql: include_str!("../../../migrations/postgres/0005_oauth_clients.sql"),
        online: false,
    },
    Migration {
        version: 6,
        name: "authorization_codes",
        sql: include_str!("../../../migrations/postgres/0006_authorization_codes.sql"),
        online: false,
    },
    Migration {
        version: 7,
        name: "signing_keys",
        sql: include_str!("../../../migrations/postgres/0007_signing_keys.sql"),
        online: false,
    },
    Migration {
        version: 8,
        name: "revoked_tokens",
        sql: include_str!("../../../migrations/postgres/0008_revoked_tokens.sql"),
        online: false,
    },
    Migration {
        version: 9,
        name: "client_algorithms",
        sql: include_str!("../../../migrations/postgres/0009_client_algorithms.sql"),
        online: false,
    },
    Migration {
        version: 10,
        name: "account_lifecycle",
        sql: include_str!("../../../migrations/postgres/0010_account_lifecycle.sql"),
        online: false,
    },
    Migration {
        version: 11,
        name: "rotate_refresh",
        sql: include_str!("../../../migrations/postgres/0011_rotate_refresh.sql"),
        online: false,
    },
    Migration {
        version: 12,
        name: "client_policy",
        sql: include_str!("../../../migrations/postgres/0012_client_policy.sql"),
        online: false,
    },
    Migration {
        version: 13,
        name: "tenant_issuers",
        sql: include_str!("../../../migrations/postgres/0013_tenant_issuers.sql"),
        online: false,
    },
    Migration {
        version: 14,
        name: "admin_api",
        sql: include_str!("../../../migrations/postgres/0014_admin_api.sql"),
        online: false,
    },
    Migration {
        version: 15,
        name: "admin_users",
        sql: include_str!("../../../migrations/postgres/0015_admin_users.sql"),
        online: false,
    },
    Migration {
        version: 16,
        name: "admin_accounts",
        sql: include_str!("../../../migrations/postgres/0016_admin_accounts.sql"),
        online: false,
    },
    Migration {
        version: 17,
        name: "tenant_settings",
        sql: include_str!("../../../migrations/postgres/0017_tenant_settings.sql"),
        online: false,
    },
    Migration {
        version: 18,
        name: "session_ids",
        sql: include_str!("../../../migrations/postgres/0018_session_ids.sql"),
        online: false,
    },
    Migration {
        version: 19,
        name: "admin_listings",
        sql: include_str!("../../../migrations/postgres/0019_admin_listings.sql"),
        online: true,
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

/// Takes the migration lock for the transaction. Polled (`pg_try_advisory_xact_lock`, a sleep
/// between tries), never waited for inside a statement, and over the simple-query protocol:
/// `CREATE INDEX CONCURRENTLY` (an online migration, run by whoever holds the lock) waits for
/// every transaction holding an older snapshot, and both a statement waiting on a lock and an
/// extended-protocol portal left open in an idle transaction hold one. Either would deadlock a
/// waiting migrator with the build it waits for.
async fn lock(tx: &Transaction<'_>) -> Result<(), StoreError> {
    loop {
        // A constant of this file, not input.
        let sql = format!("SELECT pg_try_advisory_xact_lock({MIGRATION_LOCK})");
        if first_value(tx.simple_query(&sql).await.map_err(db)?).as_deref() == Some("t") {
            return Ok(());
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// Whether `version` is recorded (simple-query protocol, for the reason of [`lock`]).
async fn is_applied(tx: &Transaction<'_>, version: i64) -> Result<bool, StoreError> {
    let sql = format!("SELECT EXISTS (SELECT 1 FROM schema_migrations WHERE version = {version})");
    Ok(first_value(tx.simple_query(&sql).await.map_err(db)?).as_deref() == Some("t"))
}

fn first_value(messages: Vec<tokio_postgres::SimpleQueryMessage>) -> Option<String> {
    messages.into_iter().find_map(|m| match m {
        tokio_postgres::SimpleQueryMessage::Row(row) => row.get(0).map(str::to_string),
        _ => None,
    })
}

async fn record(tx: &Transaction<'_>, migration: &Migration) -> Result<(), StoreError> {
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
    Ok(())
}

/// Applies the pending migrations, each with its `schema_migrations` row in one transaction
/// under the migration lock. Refuses (`Schema`) a database holding versions this binary does
/// not know.
pub(super) async fn migrate<F, Fut>(
    client: &mut Client,
    dedicated: F,
) -> Result<MigrationStatus, StoreError>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<Client, StoreError>>,
{
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
        if migration.online {
            // The lock is held on a connection of its own, in a transaction that stays idle
            // while this one builds (no snapshot for the builds to wait for), and records the
            // version once every index is valid.
            let mut holder = dedicated().await?;
            let tx = holder.transaction().await.map_err(db)?;
            lock(&tx).await?;
            let done = is_applied(&tx, migration.version).await?;
            if !done {
                apply_online(client, migration).await?;
                record(&tx, migration).await?;
            }
            tx.commit().await.map_err(db)?;
            if !done {
                tracing::info!(
                    version = migration.version,
                    name = migration.name,
                    "applied postgres migration (online)"
                );
            }
            continue;
        }
        let tx = client.transaction().await.map_err(db)?;
        lock(&tx).await?;
        let done = is_applied(&tx, migration.version).await?;
        if !done {
            tx.batch_execute(migration.sql)
                .await
                .map_err(|e| failed(migration, db(e)))?;
            record(&tx, migration).await?;
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

/// An online migration's statements, one at a time outside a transaction, then a wait until
/// every index they name is valid. `CREATE INDEX CONCURRENTLY IF NOT EXISTS` skips an index
/// another `hj migrate` is still building, so the build in progress is waited for; an index a
/// failed build left invalid (an interrupted migrate) is dropped and built again.
async fn apply_online(client: &Client, migration: &Migration) -> Result<(), StoreError> {
    let statements: Vec<String> = statements(migration.sql);
    let indexes: Vec<String> = statements.iter().filter_map(|s| index_name(s)).collect();
    for attempt in 0..3 {
        for statement in &statements {
            client
                .batch_execute(statement)
                .await
                .map_err(|e| failed(migration, db(e)))?;
        }
        loop {
            let rows = client
                .query_typed(
                    "SELECT c.relname::text, i.indisvalid, EXISTS (SELECT 1 FROM \
                     pg_stat_progress_create_index p WHERE p.index_relid = c.oid) \
                     FROM pg_class c JOIN pg_index i ON i.indexrelid = c.oid \
                     WHERE c.relname = ANY($1) AND c.relnamespace = current_schema()::regnamespace",
                    &[(&indexes, Type::TEXT_ARRAY)],
                )
                .await
                .map_err(db)?;
            let mut building = false;
            let mut broken = Vec::new();
            for row in &rows {
                let (name, valid, in_progress): (String, bool, bool) = (
                    row.try_get(0).map_err(db)?,
                    row.try_get(1).map_err(db)?,
                    row.try_get(2).map_err(db)?,
                );
                if !valid && in_progress {
                    building = true;
                } else if !valid {
                    broken.push(name);
                }
            }
            if building {
                tokio::time::sleep(std::time::Duration::from_millis(250)).await;
                continue;
            }
            if broken.is_empty() && rows.len() == indexes.len() {
                return Ok(());
            }
            for name in &broken {
                tracing::warn!(index = %name, "an earlier build left the index invalid; building it again");
                // A name from this binary's own migration text, never from input.
                client
                    .batch_execute(&format!("DROP INDEX CONCURRENTLY IF EXISTS {name}"))
                    .await
                    .map_err(|e| failed(migration, db(e)))?;
            }
            tracing::info!(attempt, "online migration: building its indexes again");
            break;
        }
    }
    Err(StoreError::Schema(format!(
        "migration {} ({}): its indexes are not valid after three builds",
        migration.version, migration.name
    )))
}

/// The statements of a migration's text: comment lines dropped, split at `;`.
fn statements(sql: &str) -> Vec<String> {
    let text: String = sql
        .lines()
        .filter(|l| !l.trim_start().starts_with("--"))
        .collect::<Vec<_>>()
        .join("\n");
    text.split(';')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// The index a `CREATE [UNIQUE] INDEX CONCURRENTLY IF NOT EXISTS name ...` builds.
fn index_name(statement: &str) -> Option<String> {
    let words: Vec<&str> = statement.split_whitespace().collect();
    let at = words
        .windows(3)
        .position(|w| w == ["IF", "NOT", "EXISTS"])?;
    words.get(at + 3).map(|w| w.to_string())
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

/// A migration's failure, naming it. A lost connection stays `Unavailable` (retrying is safe:
/// nothing of the migration was recorded); anything else is `Schema`, a unique violation of an
/// index build included (a conflict of the data, not of the caller's request).
fn failed(migration: &Migration, e: StoreError) -> StoreError {
    match e {
        StoreError::Unavailable(_) => e,
        StoreError::Internal(m) | StoreError::Schema(m) => StoreError::Schema(format!(
            "migration {} ({}) failed: {m}",
            migration.version, migration.name
        )),
        StoreError::Conflict(what) => StoreError::Schema(format!(
            "migration {} ({}) failed: the data breaks {what}",
            migration.version, migration.name
        )),
    }
}
