//! The [`Directory`] of the SQLite store (tenants and clients; their SQL is in `tenants`), and
//! the admin API's changes of a tenant: rename, new slug, deletion with everything of it.

use super::error::db;
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use store::Directory;
use uuid::Uuid;

use super::audit_row;
use super::tenants::{self, tenant_from, TENANT_COLUMNS};
use super::SqliteStore;
use crate::{
    AuditEntry, Client, ClientChanges, IssuerMode, NewClient, SettingsUpdate, StoreError,
    StoreFuture, Tenant, TenantChanges, TenantSettings,
};

impl Directory for SqliteStore {
    fn create_tenant(
        &self,
        slug: &str,
        name: &str,
        settings: TenantSettings,
        now: i64,
        audit: Option<AuditEntry>,
    ) -> StoreFuture<'_, Tenant> {
        let (slug, name) = (slug.to_owned(), name.to_owned());
        self.pool
            .write(move |conn| tenants::create_tenant(conn, slug, name, settings, now, audit))
    }

    fn list_tenants(&self) -> StoreFuture<'_, Vec<Tenant>> {
        self.pool.read(|conn| tenants::list_tenants(conn))
    }

    fn find_tenant(&self, key: &str) -> StoreFuture<'_, Option<Tenant>> {
        let key = key.to_owned();
        self.pool.read(move |conn| tenants::find_tenant(conn, &key))
    }

    fn set_tenant_issuer_mode(&self, tenant_id: Uuid, mode: IssuerMode) -> StoreFuture<'_, bool> {
        self.pool
            .write(move |conn| tenants::set_tenant_issuer_mode(conn, tenant_id, mode))
    }

    fn update_tenant(
        &self,
        tenant_id: Uuid,
        changes: TenantChanges,
        audit: AuditEntry,
    ) -> StoreFuture<'_, Option<Tenant>> {
        self.pool
            .write(move |conn| update_tenant(conn, tenant_id, &changes, audit))
    }

    fn delete_tenant(&self, tenant_id: Uuid, audit: AuditEntry) -> StoreFuture<'_, bool> {
        self.pool
            .write(move |conn| delete_tenant(conn, tenant_id, audit))
    }

    fn update_tenant_settings(
        &self,
        tenant_id: Uuid,
        settings: TenantSettings,
        if_version: Option<i64>,
        audit: AuditEntry,
    ) -> StoreFuture<'_, SettingsUpdate> {
        self.pool
            .write(move |conn| update_settings(conn, tenant_id, &settings, if_version, audit))
    }

    fn create_client(
        &self,
        client: NewClient,
        now: i64,
        audit: Option<AuditEntry>,
    ) -> StoreFuture<'_, Client> {
        self.pool
            .write(move |conn| tenants::create_client(conn, client, now, audit))
    }

    fn list_clients(&self, tenant_id: Option<Uuid>) -> StoreFuture<'_, Vec<Client>> {
        self.pool
            .read(move |conn| tenants::list_clients(conn, tenant_id))
    }

    fn find_client(&self, tenant_id: Uuid, client_id: &str) -> StoreFuture<'_, Option<Client>> {
        let client_id = client_id.to_owned();
        self.pool
            .read(move |conn| tenants::find_client(conn, tenant_id, &client_id))
    }

    fn find_clients_by_client_id(&self, client_id: &str) -> StoreFuture<'_, Vec<Client>> {
        let client_id = client_id.to_owned();
        self.pool
            .read(move |conn| tenants::find_clients_by_client_id(conn, &client_id))
    }

    fn update_client(
        &self,
        tenant_id: Uuid,
        client_id: &str,
        changes: ClientChanges,
        audit: Option<AuditEntry>,
    ) -> StoreFuture<'_, Option<Client>> {
        let client_id = client_id.to_owned();
        self.pool
            .write(move |conn| tenants::update_client(conn, tenant_id, &client_id, &changes, audit))
    }

    fn delete_client(
        &self,
        tenant_id: Uuid,
        client_id: &str,
        audit: Option<AuditEntry>,
    ) -> StoreFuture<'_, bool> {
        let client_id = client_id.to_owned();
        self.pool
            .write(move |conn| tenants::delete_client(conn, tenant_id, &client_id, audit))
    }
}

fn find_in(conn: &Connection, tenant_id: Uuid) -> Result<Option<Tenant>, StoreError> {
    conn.prepare_cached(&format!(
        "SELECT {TENANT_COLUMNS} FROM tenants WHERE id = ?1"
    ))
    .map_err(db)?
    .query_row([tenant_id.to_string()], tenant_from)
    .optional()
    .map_err(db)
}

/// The new name and slug, the API keys of the old slug moved to the new one, and `audit`, in
/// one transaction. Empty changes write nothing.
fn update_tenant(
    conn: &mut Connection,
    tenant_id: Uuid,
    changes: &TenantChanges,
    audit: AuditEntry,
) -> Result<Option<Tenant>, StoreError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(db)?;
    let Some(before) = find_in(&tx, tenant_id)? else {
        return Ok(None);
    };
    if changes.is_empty() {
        return Ok(Some(before));
    }
    let after = tx
        .prepare_cached(&format!(
            "UPDATE tenants SET name = COALESCE(?2, name), slug = COALESCE(?3, slug), \
             issuer_mode = COALESCE(?4, issuer_mode) WHERE id = ?1 RETURNING {TENANT_COLUMNS}"
        ))
        .map_err(db)?
        .query_row(
            params![
                tenant_id.to_string(),
                changes.name,
                changes.slug,
                changes.issuer_mode.map(|m| m.as_str())
            ],
            tenant_from,
        )
        .map_err(db)?;
    if after.slug != before.slug {
        tx.prepare_cached("UPDATE api_keys SET scope = ?2 WHERE scope = ?1")
            .map_err(db)?
            .execute(params![
                format!("tenant:{}", before.slug),
                format!("tenant:{}", after.slug)
            ])
            .map_err(db)?;
    }
    let audit = audit.about(tenant_id, "tenant", &tenant_id.to_string());
    audit_row::insert_audit(&tx, &audit)?;
    tx.commit().map_err(db)?;
    Ok(Some(after))
}

/// The tables that name a tenant without a foreign key to it (their rows of its users go
/// with the users too; these catch any other). Every other row of the tenant goes by the
/// foreign keys' `ON DELETE CASCADE`: clients, users (and through them password identities,
/// refresh families and tokens, sessions, codes, consents, MFA rows, email tokens), webhook
/// endpoints, events and deliveries, mail, and the tenant's own signing keys.
const WITHOUT_FOREIGN_KEY: [&str; 8] = [
    "DELETE FROM refresh_families WHERE tenant_id = ?1",
    "DELETE FROM refresh_tokens WHERE tenant_id = ?1",
    "DELETE FROM sessions WHERE tenant_id = ?1",
    "DELETE FROM authorization_codes WHERE tenant_id = ?1",
    "DELETE FROM consents WHERE tenant_id = ?1",
    "DELETE FROM email_tokens WHERE tenant_id = ?1",
    "DELETE FROM mfa_challenges WHERE tenant_id = ?1",
    "DELETE FROM revoked_tokens WHERE tenant_id = ?1",
];

/// Everything of the tenant, its API keys revoked, and `audit`, in one transaction.
fn delete_tenant(
    conn: &mut Connection,
    tenant_id: Uuid,
    audit: AuditEntry,
) -> Result<bool, StoreError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(db)?;
    let Some(tenant) = find_in(&tx, tenant_id)? else {
        return Ok(false);
    };
    let id = tenant_id.to_string();
    for sql in WITHOUT_FOREIGN_KEY {
        tx.prepare_cached(sql)
            .map_err(db)?
            .execute([&id])
            .map_err(db)?;
    }
    tx.prepare_cached(
        "UPDATE api_keys SET revoked_at = ?2 WHERE scope = ?1 AND revoked_at IS NULL",
    )
    .map_err(db)?
    .execute(params![format!("tenant:{}", tenant.slug), audit.created_at])
    .map_err(db)?;
    tx.prepare_cached("DELETE FROM tenants WHERE id = ?1")
        .map_err(db)?
        .execute([&id])
        .map_err(db)?;
    audit_row::insert_audit(&tx, &audit.about(tenant_id, "tenant", &id))?;
    tx.commit().map_err(db)?;
    Ok(true)
}

/// See [`store::Directory::update_tenant_settings`].
fn update_settings(
    conn: &mut Connection,
    tenant_id: Uuid,
    settings: &TenantSettings,
    if_version: Option<i64>,
    audit: AuditEntry,
) -> Result<SettingsUpdate, StoreError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(db)?;
    let Some(before) = find_in(&tx, tenant_id)? else {
        return Ok(SettingsUpdate::NotFound);
    };
    if if_version.is_some_and(|v| v != before.settings_version) {
        return Ok(SettingsUpdate::Stale {
            current: before.settings_version,
        });
    }
    let after = tx
        .prepare_cached(&format!(
            "UPDATE tenants SET settings = ?2, settings_version = settings_version + 1 \
             WHERE id = ?1 RETURNING {TENANT_COLUMNS}"
        ))
        .map_err(db)?
        .query_row(
            params![tenant_id.to_string(), settings.to_json().to_string()],
            tenant_from,
        )
        .map_err(db)?;
    audit_row::insert_audit(
        &tx,
        &audit.about(tenant_id, "tenant", &tenant_id.to_string()),
    )?;
    tx.commit().map_err(db)?;
    Ok(SettingsUpdate::Updated(Box::new(after)))
}
