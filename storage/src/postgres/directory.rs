//! The [`Directory`] of the PostgreSQL store (tenants and clients; their SQL is in `tenants`),
//! and the admin API's changes of a tenant: rename, new slug, deletion with everything of it.

use super::error::db;
use store::Directory;
use tokio_postgres::types::Type;
use tokio_postgres::{Client, Transaction};
use uuid::Uuid;

use super::audit_row;
use super::tenants::{self, tenant_from, TENANT_COLUMNS};
use super::PgStore;
use crate::{
    AuditEntry, Client as AppClient, ClientChanges, IssuerMode, NewClient, SettingsUpdate,
    StoreError, StoreFuture, Tenant, TenantChanges, TenantSettings,
};

impl Directory for PgStore {
    fn create_tenant(
        &self,
        slug: &str,
        name: &str,
        settings: TenantSettings,
        now: i64,
        audit: Option<AuditEntry>,
    ) -> StoreFuture<'_, Tenant> {
        let (slug, name) = (slug.to_owned(), name.to_owned());
        self.call("create_tenant", move |c| {
            Box::pin(tenants::create_tenant(c, slug, name, settings, now, audit))
        })
    }

    fn list_tenants(&self) -> StoreFuture<'_, Vec<Tenant>> {
        self.call("list_tenants", |c| Box::pin(tenants::list_tenants(c)))
    }

    fn find_tenant(&self, key: &str) -> StoreFuture<'_, Option<Tenant>> {
        let key = key.to_owned();
        self.call("find_tenant", move |c| {
            Box::pin(async move { tenants::find_tenant(c, &key).await })
        })
    }

    fn set_tenant_issuer_mode(&self, tenant_id: Uuid, mode: IssuerMode) -> StoreFuture<'_, bool> {
        self.call("set_tenant_issuer_mode", move |c| {
            Box::pin(tenants::set_tenant_issuer_mode(c, tenant_id, mode))
        })
    }

    fn update_tenant(
        &self,
        tenant_id: Uuid,
        changes: TenantChanges,
        audit: AuditEntry,
    ) -> StoreFuture<'_, Option<Tenant>> {
        self.call("update_tenant", move |c| {
            Box::pin(async move { update_tenant(c, tenant_id, &changes, audit).await })
        })
    }

    fn delete_tenant(&self, tenant_id: Uuid, audit: AuditEntry) -> StoreFuture<'_, bool> {
        self.call("delete_tenant", move |c| {
            Box::pin(delete_tenant(c, tenant_id, audit))
        })
    }

    fn update_tenant_settings(
        &self,
        tenant_id: Uuid,
        settings: TenantSettings,
        if_version: Option<i64>,
        audit: AuditEntry,
    ) -> StoreFuture<'_, SettingsUpdate> {
        self.call("update_tenant_settings", move |c| {
            Box::pin(
                async move { update_settings(c, tenant_id, &settings, if_version, audit).await },
            )
        })
    }

    fn create_client(
        &self,
        client: NewClient,
        now: i64,
        audit: Option<AuditEntry>,
    ) -> StoreFuture<'_, AppClient> {
        self.call("create_client", move |c| {
            Box::pin(tenants::create_client(c, client, now, audit))
        })
    }

    fn list_clients(&self, tenant_id: Option<Uuid>) -> StoreFuture<'_, Vec<AppClient>> {
        self.call("list_clients", move |c| {
            Box::pin(tenants::list_clients(c, tenant_id))
        })
    }

    fn find_client(&self, tenant_id: Uuid, client_id: &str) -> StoreFuture<'_, Option<AppClient>> {
        let client_id = client_id.to_owned();
        self.call("find_client", move |c| {
            Box::pin(async move { tenants::find_client(c, tenant_id, &client_id).await })
        })
    }

    fn find_clients_by_client_id(&self, client_id: &str) -> StoreFuture<'_, Vec<AppClient>> {
        let client_id = client_id.to_owned();
        self.call("find_clients_by_client_id", move |c| {
            Box::pin(async move { tenants::find_clients_by_client_id(c, &client_id).await })
        })
    }

    fn update_client(
        &self,
        tenant_id: Uuid,
        client_id: &str,
        changes: ClientChanges,
        audit: Option<AuditEntry>,
    ) -> StoreFuture<'_, Option<AppClient>> {
        let client_id = client_id.to_owned();
        self.call("update_client", move |c| {
            Box::pin(async move {
                tenants::update_client(c, tenant_id, &client_id, &changes, audit).await
            })
        })
    }

    fn delete_client(
        &self,
        tenant_id: Uuid,
        client_id: &str,
        audit: Option<AuditEntry>,
    ) -> StoreFuture<'_, bool> {
        let client_id = client_id.to_owned();
        self.call("delete_client", move |c| {
            Box::pin(async move { tenants::delete_client(c, tenant_id, &client_id, audit).await })
        })
    }
}

/// The tenant, its row locked until the transaction ends (a concurrent change of it waits).
async fn lock_tenant(tx: &Transaction<'_>, tenant_id: Uuid) -> Result<Option<Tenant>, StoreError> {
    let row = tx
        .query_typed_opt(
            &format!("SELECT {TENANT_COLUMNS} FROM tenants WHERE id = $1 FOR UPDATE"),
            &[(&tenant_id, Type::UUID)],
        )
        .await
        .map_err(db)?;
    row.as_ref().map(tenant_from).transpose()
}

/// The new name and slug, the API keys of the old slug moved to the new one, and `audit`, in
/// one transaction. Empty changes write nothing.
async fn update_tenant(
    client: &mut Client,
    tenant_id: Uuid,
    changes: &TenantChanges,
    audit: AuditEntry,
) -> Result<Option<Tenant>, StoreError> {
    let tx = client.transaction().await.map_err(db)?;
    let Some(before) = lock_tenant(&tx, tenant_id).await? else {
        return Ok(None);
    };
    if changes.is_empty() {
        return Ok(Some(before));
    }
    let row = tx
        .query_typed_one(
            &format!(
                "UPDATE tenants SET name = COALESCE($2, name), slug = COALESCE($3, slug), \
                 issuer_mode = COALESCE($4, issuer_mode) \
                 WHERE id = $1 RETURNING {TENANT_COLUMNS}"
            ),
            &[
                (&tenant_id, Type::UUID),
                (&changes.name, Type::TEXT),
                (&changes.slug, Type::TEXT),
                (&changes.issuer_mode.map(|m| m.as_str()), Type::TEXT),
            ],
        )
        .await
        .map_err(db)?;
    let after = tenant_from(&row)?;
    if after.slug != before.slug {
        let (old, new) = (
            format!("tenant:{}", before.slug),
            format!("tenant:{}", after.slug),
        );
        tx.execute_typed(
            "UPDATE api_keys SET scope = $2 WHERE scope = $1",
            &[(&old, Type::TEXT), (&new, Type::TEXT)],
        )
        .await
        .map_err(db)?;
    }
    let audit = audit.about(tenant_id, "tenant", &tenant_id.to_string());
    audit_row::insert_audit(&tx, &audit).await?;
    tx.commit().await.map_err(db)?;
    Ok(Some(after))
}

/// The tables that name a tenant without a foreign key to it (their rows of its users go
/// with the users too; these catch any other). Every other row of the tenant goes by the
/// foreign keys' `ON DELETE CASCADE`: clients, users (and through them password identities,
/// refresh families and tokens, sessions, codes, consents, MFA rows, email tokens), webhook
/// endpoints, events and deliveries, mail, and the tenant's own signing keys.
const WITHOUT_FOREIGN_KEY: [&str; 8] = [
    "DELETE FROM refresh_families WHERE tenant_id = $1",
    "DELETE FROM refresh_tokens WHERE tenant_id = $1",
    "DELETE FROM sessions WHERE tenant_id = $1",
    "DELETE FROM authorization_codes WHERE tenant_id = $1",
    "DELETE FROM consents WHERE tenant_id = $1",
    "DELETE FROM email_tokens WHERE tenant_id = $1",
    "DELETE FROM mfa_challenges WHERE tenant_id = $1",
    "DELETE FROM revoked_tokens WHERE tenant_id = $1",
];

/// Everything of the tenant, its API keys revoked, and `audit`, in one transaction (the tenant
/// row locked first, so a concurrent insert of a row of it waits, then fails on the foreign
/// key).
async fn delete_tenant(
    client: &mut Client,
    tenant_id: Uuid,
    audit: AuditEntry,
) -> Result<bool, StoreError> {
    let tx = client.transaction().await.map_err(db)?;
    let Some(tenant) = lock_tenant(&tx, tenant_id).await? else {
        return Ok(false);
    };
    for sql in WITHOUT_FOREIGN_KEY {
        tx.execute_typed(sql, &[(&tenant_id, Type::UUID)])
            .await
            .map_err(db)?;
    }
    let scope = format!("tenant:{}", tenant.slug);
    tx.execute_typed(
        "UPDATE api_keys SET revoked_at = $2 WHERE scope = $1 AND revoked_at IS NULL",
        &[(&scope, Type::TEXT), (&audit.created_at, Type::INT8)],
    )
    .await
    .map_err(db)?;
    tx.execute_typed(
        "DELETE FROM tenants WHERE id = $1",
        &[(&tenant_id, Type::UUID)],
    )
    .await
    .map_err(db)?;
    let audit = audit.about(tenant_id, "tenant", &tenant_id.to_string());
    audit_row::insert_audit(&tx, &audit).await?;
    tx.commit().await.map_err(db)?;
    Ok(true)
}

/// See [`store::Directory::update_tenant_settings`]: the tenant's row is locked, so the version
/// check and the write are one decision.
async fn update_settings(
    client: &mut Client,
    tenant_id: Uuid,
    settings: &TenantSettings,
    if_version: Option<i64>,
    audit: AuditEntry,
) -> Result<SettingsUpdate, StoreError> {
    let tx = client.transaction().await.map_err(db)?;
    let Some(before) = lock_tenant(&tx, tenant_id).await? else {
        return Ok(SettingsUpdate::NotFound);
    };
    if if_version.is_some_and(|v| v != before.settings_version) {
        return Ok(SettingsUpdate::Stale {
            current: before.settings_version,
        });
    }
    let json = settings.to_json();
    let row = tx
        .query_typed_one(
            &format!(
                "UPDATE tenants SET settings = $2, settings_version = settings_version + 1 \
                 WHERE id = $1 RETURNING {TENANT_COLUMNS}"
            ),
            &[(&tenant_id, Type::UUID), (&json, Type::JSONB)],
        )
        .await
        .map_err(db)?;
    let after = tenant_from(&row)?;
    let audit = audit.about(tenant_id, "tenant", &tenant_id.to_string());
    audit_row::insert_audit(&tx, &audit).await?;
    tx.commit().await.map_err(db)?;
    Ok(SettingsUpdate::Updated(Box::new(after)))
}
