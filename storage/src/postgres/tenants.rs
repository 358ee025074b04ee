//! Tenants and clients.

use tokio_postgres::types::Type;
use tokio_postgres::{Client, Row};
use uuid::Uuid;

use crate::{Client as AppClient, NewClient, StoreError, Tenant};

const TENANT_COLUMNS: &str = "id, slug, name, created_at";
const CLIENT_COLUMNS: &str = "id, tenant_id, client_id, name, scopes, post_logout_redirect_uris, \
                              access_token_ttl, refresh_token_ttl, created_at";

fn tenant_from(row: &Row) -> Result<Tenant, tokio_postgres::Error> {
    Ok(Tenant {
        id: row.try_get(0)?,
        slug: row.try_get(1)?,
        name: row.try_get(2)?,
        created_at: row.try_get(3)?,
    })
}

pub(super) async fn create_tenant(
    client: &Client,
    slug: String,
    name: String,
    now: i64,
) -> Result<Tenant, StoreError> {
    let tenant = Tenant {
        id: Uuid::new_v4(),
        slug,
        name,
        created_at: now,
    };
    client
        .execute_typed(
            "INSERT INTO tenants (id, slug, name, created_at) VALUES ($1, $2, $3, $4)",
            &[
                (&tenant.id, Type::UUID),
                (&tenant.slug, Type::TEXT),
                (&tenant.name, Type::TEXT),
                (&tenant.created_at, Type::INT8),
            ],
        )
        .await?;
    Ok(tenant)
}

pub(super) async fn list_tenants(client: &Client) -> Result<Vec<Tenant>, StoreError> {
    let rows = client
        .query_typed(
            &format!(
                "SELECT {TENANT_COLUMNS} FROM tenants ORDER BY created_at, slug COLLATE \"C\""
            ),
            &[],
        )
        .await?;
    Ok(rows.iter().map(tenant_from).collect::<Result<_, _>>()?)
}

/// By UUID when `key` parses as one (any accepted spelling), else by slug.
pub(super) async fn find_tenant(client: &Client, key: &str) -> Result<Option<Tenant>, StoreError> {
    let row = match Uuid::parse_str(key) {
        Ok(id) => {
            client
                .query_typed_opt(
                    &format!("SELECT {TENANT_COLUMNS} FROM tenants WHERE id = $1"),
                    &[(&id, Type::UUID)],
                )
                .await?
        }
        Err(_) => {
            client
                .query_typed_opt(
                    &format!("SELECT {TENANT_COLUMNS} FROM tenants WHERE slug = $1"),
                    &[(&key, Type::TEXT)],
                )
                .await?
        }
    };
    Ok(row.as_ref().map(tenant_from).transpose()?)
}

fn client_from(row: &Row) -> Result<AppClient, tokio_postgres::Error> {
    Ok(AppClient {
        id: row.try_get(0)?,
        tenant_id: row.try_get(1)?,
        client_id: row.try_get(2)?,
        name: row.try_get(3)?,
        scopes: row.try_get(4)?,
        post_logout_redirect_uris: row.try_get(5)?,
        access_token_ttl: row.try_get(6)?,
        refresh_token_ttl: row.try_get(7)?,
        created_at: row.try_get(8)?,
    })
}

/// `Conflict("client_id")` when the tenant already has that `client_id`.
pub(super) async fn create_client(
    client: &Client,
    new: NewClient,
    now: i64,
) -> Result<AppClient, StoreError> {
    let app = AppClient {
        id: Uuid::new_v4(),
        tenant_id: new.tenant_id,
        client_id: new.client_id,
        name: new.name,
        scopes: new.scopes,
        post_logout_redirect_uris: new.post_logout_redirect_uris,
        access_token_ttl: new.access_token_ttl,
        refresh_token_ttl: new.refresh_token_ttl,
        created_at: now,
    };
    client
        .execute_typed(
            &format!("INSERT INTO clients ({CLIENT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"),
            &[
                (&app.id, Type::UUID),
                (&app.tenant_id, Type::UUID),
                (&app.client_id, Type::TEXT),
                (&app.name, Type::TEXT),
                (&app.scopes, Type::TEXT_ARRAY),
                (&app.post_logout_redirect_uris, Type::TEXT_ARRAY),
                (&app.access_token_ttl, Type::INT8),
                (&app.refresh_token_ttl, Type::INT8),
                (&app.created_at, Type::INT8),
            ],
        )
        .await?;
    Ok(app)
}

pub(super) async fn list_clients(
    client: &Client,
    tenant_id: Option<Uuid>,
) -> Result<Vec<AppClient>, StoreError> {
    let rows = match tenant_id {
        Some(tenant_id) => {
            client
                .query_typed(
                    &format!(
                        "SELECT {CLIENT_COLUMNS} FROM clients WHERE tenant_id = $1 \
                         ORDER BY client_id COLLATE \"C\""
                    ),
                    &[(&tenant_id, Type::UUID)],
                )
                .await?
        }
        None => {
            client
                .query_typed(
                    &format!(
                        "SELECT {CLIENT_COLUMNS} FROM clients \
                         ORDER BY tenant_id, client_id COLLATE \"C\""
                    ),
                    &[],
                )
                .await?
        }
    };
    Ok(rows.iter().map(client_from).collect::<Result<_, _>>()?)
}

pub(super) async fn find_client(
    client: &Client,
    tenant_id: Uuid,
    client_id: &str,
) -> Result<Option<AppClient>, StoreError> {
    let row = client
        .query_typed_opt(
            &format!(
                "SELECT {CLIENT_COLUMNS} FROM clients WHERE tenant_id = $1 AND client_id = $2"
            ),
            &[(&tenant_id, Type::UUID), (&client_id, Type::TEXT)],
        )
        .await?;
    Ok(row.as_ref().map(client_from).transpose()?)
}
