//! Tenants and clients.

use rusqlite::{params, Connection, OptionalExtension, Row};
use uuid::Uuid;

use super::error::{json_at, to_json, uuid_at};
use crate::{Client, NewClient, StoreError, Tenant};

fn tenant_from(row: &Row<'_>) -> rusqlite::Result<Tenant> {
    Ok(Tenant {
        id: uuid_at(row, 0)?,
        slug: row.get(1)?,
        name: row.get(2)?,
        created_at: row.get(3)?,
    })
}

pub(super) fn create_tenant(
    conn: &Connection,
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
    conn.prepare_cached(
        "INSERT INTO tenants (id, slug, name, created_at) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![
        tenant.id.to_string(),
        tenant.slug,
        tenant.name,
        tenant.created_at
    ])?;
    Ok(tenant)
}

pub(super) fn list_tenants(conn: &Connection) -> Result<Vec<Tenant>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, slug, name, created_at FROM tenants ORDER BY created_at, slug",
    )?;
    let rows = stmt.query_map([], tenant_from)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// By UUID when `key` parses as one (any accepted spelling), else by slug.
pub(super) fn find_tenant(conn: &Connection, key: &str) -> Result<Option<Tenant>, StoreError> {
    let found = match Uuid::parse_str(key) {
        Ok(id) => conn
            .prepare_cached("SELECT id, slug, name, created_at FROM tenants WHERE id = ?1")?
            .query_row([id.to_string()], tenant_from)
            .optional()?,
        Err(_) => conn
            .prepare_cached("SELECT id, slug, name, created_at FROM tenants WHERE slug = ?1")?
            .query_row([key], tenant_from)
            .optional()?,
    };
    Ok(found)
}

fn client_from(row: &Row<'_>) -> rusqlite::Result<Client> {
    Ok(Client {
        id: uuid_at(row, 0)?,
        tenant_id: uuid_at(row, 1)?,
        client_id: row.get(2)?,
        name: row.get(3)?,
        scopes: json_at(row, 4)?,
        post_logout_redirect_uris: json_at(row, 5)?,
        access_token_ttl: row.get(6)?,
        refresh_token_ttl: row.get(7)?,
        created_at: row.get(8)?,
    })
}

/// `Conflict("client_id")` when the tenant already has that `client_id`.
pub(super) fn create_client(
    conn: &Connection,
    new: NewClient,
    now: i64,
) -> Result<Client, StoreError> {
    let client = Client {
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
    conn.prepare_cached(
        "INSERT INTO clients (id, tenant_id, client_id, name, scopes, post_logout_redirect_uris, \
                              access_token_ttl, refresh_token_ttl, created_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?
    .execute(params![
        client.id.to_string(),
        client.tenant_id.to_string(),
        client.client_id,
        client.name,
        to_json(&client.scopes)?,
        to_json(&client.post_logout_redirect_uris)?,
        client.access_token_ttl,
        client.refresh_token_ttl,
        client.created_at,
    ])?;
    Ok(client)
}

pub(super) fn list_clients(
    conn: &Connection,
    tenant_id: Option<Uuid>,
) -> Result<Vec<Client>, StoreError> {
    let clients = match tenant_id {
        Some(tenant_id) => {
            let mut stmt = conn.prepare_cached(
                "SELECT id, tenant_id, client_id, name, scopes, post_logout_redirect_uris, \
                        access_token_ttl, refresh_token_ttl, created_at \
                 FROM clients WHERE tenant_id = ?1 ORDER BY client_id",
            )?;
            let rows = stmt.query_map([tenant_id.to_string()], client_from)?;
            rows.collect::<Result<_, _>>()?
        }
        None => {
            let mut stmt = conn.prepare_cached(
                "SELECT id, tenant_id, client_id, name, scopes, post_logout_redirect_uris, \
                        access_token_ttl, refresh_token_ttl, created_at \
                 FROM clients ORDER BY tenant_id, client_id",
            )?;
            let rows = stmt.query_map([], client_from)?;
            rows.collect::<Result<_, _>>()?
        }
    };
    Ok(clients)
}

pub(super) fn find_client(
    conn: &Connection,
    tenant_id: Uuid,
    client_id: &str,
) -> Result<Option<Client>, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT id, tenant_id, client_id, name, scopes, post_logout_redirect_uris, \
                    access_token_ttl, refresh_token_ttl, created_at \
             FROM clients WHERE tenant_id = ?1 AND client_id = ?2",
        )?
        .query_row(params![tenant_id.to_string(), client_id], client_from)
        .optional()?)
}
