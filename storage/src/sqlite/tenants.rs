//! Tenants and clients.

use super::error::db;
use rusqlite::{params, Connection, OptionalExtension, Row, TransactionBehavior};
use uuid::Uuid;

use super::audit_row;
use super::error::{json_at, known_rows, to_json, uuid_at};
use crate::tolerant;
use crate::{
    AuditEntry, Client, ClientChanges, ClientType, IssuerMode, NewClient, SecretHash, SigningAlg,
    StoreError, Tenant, TenantSettings,
};

pub(super) const TENANT_COLUMNS: &str =
    "id, slug, name, created_at, issuer_mode, settings, settings_version";

pub(super) fn tenant_from(row: &Row<'_>) -> rusqlite::Result<Tenant> {
    let mode: String = row.get(4)?;
    Ok(Tenant {
        id: uuid_at(row, 0)?,
        slug: row.get(1)?,
        name: row.get(2)?,
        created_at: row.get(3)?,
        issuer_mode: tolerant::issuer_mode(&mode),
        settings: crate::TenantSettings::from_json(
            &serde_json::from_str(&row.get::<_, String>(5)?).unwrap_or_default(),
        ),
        settings_version: row.get(6)?,
    })
}

/// The tenant and `audit` (about it) in one transaction. `Conflict("slug")` when taken.
pub(super) fn create_tenant(
    conn: &mut Connection,
    slug: String,
    name: String,
    settings: TenantSettings,
    now: i64,
    audit: Option<AuditEntry>,
) -> Result<Tenant, StoreError> {
    let tenant = Tenant {
        id: Uuid::new_v4(),
        slug,
        name,
        created_at: now,
        settings,
        settings_version: 0,
        issuer_mode: IssuerMode::Global,
    };
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(db)?;
    tx.prepare_cached(
        "INSERT INTO tenants (id, slug, name, created_at, settings) VALUES (?1, ?2, ?3, ?4, ?5)",
    )
    .map_err(db)?
    .execute(params![
        tenant.id.to_string(),
        tenant.slug,
        tenant.name,
        tenant.created_at,
        tenant.settings.to_json().to_string()
    ])
    .map_err(db)?;
    let id = tenant.id.to_string();
    let audit = audit.map(|a| a.about(tenant.id, "tenant", &id));
    audit_row::insert_opt(&tx, audit.as_ref())?;
    tx.commit().map_err(db)?;
    Ok(tenant)
}

pub(super) fn list_tenants(conn: &Connection) -> Result<Vec<Tenant>, StoreError> {
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT {TENANT_COLUMNS} FROM tenants ORDER BY created_at, slug"
        ))
        .map_err(db)?;
    let rows = stmt.query_map([], tenant_from).map_err(db)?;
    rows.collect::<Result<_, _>>().map_err(db)
}

/// By UUID when `key` parses as one (any accepted spelling), else by slug.
pub(super) fn find_tenant(conn: &Connection, key: &str) -> Result<Option<Tenant>, StoreError> {
    let found = match Uuid::parse_str(key) {
        Ok(id) => conn
            .prepare_cached(&format!(
                "SELECT {TENANT_COLUMNS} FROM tenants WHERE id = ?1"
            ))
            .map_err(db)?
            .query_row([id.to_string()], tenant_from)
            .optional()
            .map_err(db)?,
        Err(_) => conn
            .prepare_cached(&format!(
                "SELECT {TENANT_COLUMNS} FROM tenants WHERE slug = ?1"
            ))
            .map_err(db)?
            .query_row([key], tenant_from)
            .optional()
            .map_err(db)?,
    };
    Ok(found)
}

pub(super) fn set_tenant_issuer_mode(
    conn: &Connection,
    tenant_id: Uuid,
    mode: IssuerMode,
) -> Result<bool, StoreError> {
    let changed = conn
        .prepare_cached("UPDATE tenants SET issuer_mode = ?1 WHERE id = ?2")
        .map_err(db)?
        .execute(params![mode.as_str(), tenant_id.to_string()])
        .map_err(db)?;
    Ok(changed > 0)
}

const CLIENT_COLUMNS: &str = "id, tenant_id, client_id, name, scopes, redirect_uris, \
                              post_logout_redirect_uris, allowed_origins, grant_types, \
                              client_type, secret_hash, require_email_verification, \
                              access_token_ttl, refresh_token_ttl, id_token_ttl, created_at, \
                              id_token_alg, access_token_alg, third_party";

/// A client row, or `None` for a client of a type this release does not know (a newer
/// release's): such a client is absent here (lookups, lists, updates). Reading it as either
/// known type would drop a requirement the newer type may carry (a public client needs no
/// secret, a confidential one no PKCE), so its sign-ins are refused as those of an unknown
/// client (with a warning and `hellojohn_unknown_values_total{kind="client_type"}`) until the
/// newer release serves again; every other client is unaffected.
fn client_from(row: &Row<'_>) -> rusqlite::Result<Option<Client>> {
    let client_type: String = row.get(9)?;
    let Some(client_type) = tolerant::client_type(&client_type) else {
        return Ok(None);
    };
    Ok(Some(Client {
        id: uuid_at(row, 0)?,
        tenant_id: uuid_at(row, 1)?,
        client_id: row.get(2)?,
        name: row.get(3)?,
        scopes: json_at(row, 4)?,
        redirect_uris: json_at(row, 5)?,
        post_logout_redirect_uris: json_at(row, 6)?,
        allowed_origins: json_at(row, 7)?,
        grant_types: json_at(row, 8)?,
        client_type,
        secret_hash: row.get::<_, Option<String>>(10)?.map(SecretHash::new),
        require_email_verification: row.get(11)?,
        access_token_ttl: row.get(12)?,
        refresh_token_ttl: row.get(13)?,
        id_token_ttl: row.get(14)?,
        created_at: row.get(15)?,
        id_token_alg: alg_at(row, 16)?,
        access_token_alg: alg_at(row, 17)?,
        third_party: row.get(18)?,
    }))
}

/// A signature algorithm column (NULL: the server's default).
fn alg_at(row: &Row<'_>, idx: usize) -> rusqlite::Result<Option<SigningAlg>> {
    Ok(row
        .get::<_, Option<String>>(idx)?
        .and_then(|name| tolerant::client_alg(&name)))
}

/// The client and `audit` (about it) in one transaction. `Conflict("client_id")` when the
/// tenant already has that `client_id`.
pub(super) fn create_client(
    conn: &mut Connection,
    new: NewClient,
    now: i64,
    audit: Option<AuditEntry>,
) -> Result<Client, StoreError> {
    let client = Client {
        id: Uuid::new_v4(),
        tenant_id: new.tenant_id,
        client_id: new.client_id,
        name: new.name,
        scopes: new.scopes,
        redirect_uris: new.redirect_uris,
        post_logout_redirect_uris: new.post_logout_redirect_uris,
        allowed_origins: new.allowed_origins,
        grant_types: new.grant_types,
        client_type: new.client_type,
        secret_hash: new.secret_hash,
        require_email_verification: new.require_email_verification,
        access_token_ttl: new.access_token_ttl,
        refresh_token_ttl: new.refresh_token_ttl,
        id_token_ttl: new.id_token_ttl,
        created_at: now,
        id_token_alg: new.id_token_alg,
        access_token_alg: new.access_token_alg,
        third_party: new.third_party,
    };
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(db)?;
    tx.prepare_cached(&format!(
        "INSERT INTO clients ({CLIENT_COLUMNS}) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, \
         ?19)"
    ))
    .map_err(db)?
    .execute(params![
        client.id.to_string(),
        client.tenant_id.to_string(),
        client.client_id,
        client.name,
        to_json(&client.scopes)?,
        to_json(&client.redirect_uris)?,
        to_json(&client.post_logout_redirect_uris)?,
        to_json(&client.allowed_origins)?,
        to_json(&client.grant_types)?,
        client.client_type.as_str(),
        client.secret_hash.as_ref().map(SecretHash::as_str),
        client.require_email_verification,
        client.access_token_ttl,
        client.refresh_token_ttl,
        client.id_token_ttl,
        client.created_at,
        client.id_token_alg.map(SigningAlg::as_str),
        client.access_token_alg.map(SigningAlg::as_str),
        client.third_party,
    ])
    .map_err(db)?;
    let audit = audit.map(|a| a.about(client.tenant_id, "client", &client.client_id));
    audit_row::insert_opt(&tx, audit.as_ref())?;
    tx.commit().map_err(db)?;
    Ok(client)
}

pub(super) fn list_clients(
    conn: &Connection,
    tenant_id: Option<Uuid>,
) -> Result<Vec<Client>, StoreError> {
    let clients = match tenant_id {
        Some(tenant_id) => {
            let mut stmt = conn
                .prepare_cached(&format!(
                    "SELECT {CLIENT_COLUMNS} FROM clients WHERE tenant_id = ?1 ORDER BY client_id"
                ))
                .map_err(db)?;
            let rows = stmt
                .query_map([tenant_id.to_string()], client_from)
                .map_err(db)?;
            known_rows(rows)?
        }
        None => {
            let mut stmt = conn
                .prepare_cached(&format!(
                    "SELECT {CLIENT_COLUMNS} FROM clients ORDER BY tenant_id, client_id"
                ))
                .map_err(db)?;
            let rows = stmt.query_map([], client_from).map_err(db)?;
            known_rows(rows)?
        }
    };
    Ok(clients)
}

pub(super) fn find_client(
    conn: &Connection,
    tenant_id: Uuid,
    client_id: &str,
) -> Result<Option<Client>, StoreError> {
    conn.prepare_cached(&format!(
        "SELECT {CLIENT_COLUMNS} FROM clients WHERE tenant_id = ?1 AND client_id = ?2"
    ))
    .map_err(db)?
    .query_row(params![tenant_id.to_string(), client_id], client_from)
    .optional()
    .map(Option::flatten)
    .map_err(db)
}

/// Every client named `client_id`, in any tenant.
pub(super) fn find_clients_by_client_id(
    conn: &Connection,
    client_id: &str,
) -> Result<Vec<Client>, StoreError> {
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT {CLIENT_COLUMNS} FROM clients WHERE client_id = ?1 ORDER BY tenant_id LIMIT 10"
        ))
        .map_err(db)?;
    let rows = stmt.query_map([client_id], client_from).map_err(db)?;
    known_rows(rows)
}

/// A list as JSON text, or `None` (unchanged).
fn json_opt(list: Option<&Vec<String>>) -> Result<Option<String>, StoreError> {
    list.map(to_json).transpose()
}

/// One `UPDATE ... RETURNING`: each field is replaced when its parameter says so and kept
/// otherwise (`COALESCE` for the non-null ones, a flag for the nullable ones); with `audit`,
/// when a client changed, in one transaction.
pub(super) fn update_client(
    conn: &mut Connection,
    tenant_id: Uuid,
    client_id: &str,
    changes: &ClientChanges,
    audit: Option<AuditEntry>,
) -> Result<Option<Client>, StoreError> {
    let (set_secret, secret) = nullable(changes.secret_hash.as_ref().map(|s| s.as_ref()));
    let (set_access, access) = nullable(changes.access_token_ttl);
    let (set_refresh, refresh) = nullable(changes.refresh_token_ttl);
    let (set_id, id) = nullable(changes.id_token_ttl);
    let (set_id_alg, id_alg) = nullable(changes.id_token_alg);
    let (set_access_alg, access_alg) = nullable(changes.access_token_alg);
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(db)?;
    let updated = tx
        .prepare_cached(&format!(
            "UPDATE clients SET \
                 name = COALESCE(?3, name), \
                 scopes = COALESCE(?4, scopes), \
                 redirect_uris = COALESCE(?5, redirect_uris), \
                 post_logout_redirect_uris = COALESCE(?6, post_logout_redirect_uris), \
                 allowed_origins = COALESCE(?7, allowed_origins), \
                 grant_types = COALESCE(?8, grant_types), \
                 client_type = COALESCE(?9, client_type), \
                 secret_hash = CASE WHEN ?10 THEN ?11 ELSE secret_hash END, \
                 require_email_verification = COALESCE(?12, require_email_verification), \
                 access_token_ttl = CASE WHEN ?13 THEN ?14 ELSE access_token_ttl END, \
                 refresh_token_ttl = CASE WHEN ?15 THEN ?16 ELSE refresh_token_ttl END, \
                 id_token_ttl = CASE WHEN ?17 THEN ?18 ELSE id_token_ttl END, \
                 id_token_alg = CASE WHEN ?19 THEN ?20 ELSE id_token_alg END, \
                 access_token_alg = CASE WHEN ?21 THEN ?22 ELSE access_token_alg END, \
                 third_party = COALESCE(?23, third_party) \
             WHERE tenant_id = ?1 AND client_id = ?2 AND {} \
             RETURNING {CLIENT_COLUMNS}",
            tolerant::KNOWN_CLIENT_TYPE
        ))
        .map_err(db)?
        .query_row(
            params![
                tenant_id.to_string(),
                client_id,
                changes.name,
                json_opt(changes.scopes.as_ref())?,
                json_opt(changes.redirect_uris.as_ref())?,
                json_opt(changes.post_logout_redirect_uris.as_ref())?,
                json_opt(changes.allowed_origins.as_ref())?,
                json_opt(changes.grant_types.as_ref())?,
                changes.client_type.map(ClientType::as_str),
                set_secret,
                secret.map(SecretHash::as_str),
                changes.require_email_verification,
                set_access,
                access,
                set_refresh,
                refresh,
                set_id,
                id,
                set_id_alg,
                id_alg.map(SigningAlg::as_str),
                set_access_alg,
                access_alg.map(SigningAlg::as_str),
                changes.third_party,
            ],
            client_from,
        )
        .optional()
        .map(Option::flatten)
        .map_err(db)?;
    if let (Some(client), Some(audit)) = (&updated, audit) {
        audit_row::insert_audit(&tx, &audit.about(tenant_id, "client", &client.client_id))?;
    }
    tx.commit().map_err(db)?;
    Ok(updated)
}

/// A change of a nullable field as (whether to set it, the new value).
fn nullable<T>(change: Option<Option<T>>) -> (bool, Option<T>) {
    match change {
        Some(value) => (true, value),
        None => (false, None),
    }
}

/// Deletes the client, then its refresh families (their tokens go with them: the foreign key
/// cascades) and its sessions, in one transaction. Those rows name the client by `client_id`
/// text, without a foreign key, so they are deleted here.
pub(super) fn delete_client(
    conn: &mut Connection,
    tenant_id: Uuid,
    client_id: &str,
    audit: Option<AuditEntry>,
) -> Result<bool, StoreError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(db)?;
    let audit = audit.map(|a| a.about(tenant_id, "client", client_id));
    let tenant_id = tenant_id.to_string();
    let deleted = tx
        .prepare_cached("DELETE FROM clients WHERE tenant_id = ?1 AND client_id = ?2")
        .map_err(db)?
        .execute(params![tenant_id, client_id])
        .map_err(db)?;
    if deleted == 0 {
        return Ok(false);
    }
    tx.prepare_cached("DELETE FROM refresh_families WHERE tenant_id = ?1 AND client_id = ?2")
        .map_err(db)?
        .execute(params![tenant_id, client_id])
        .map_err(db)?;
    tx.prepare_cached("DELETE FROM sessions WHERE tenant_id = ?1 AND client_id = ?2")
        .map_err(db)?
        .execute(params![tenant_id, client_id])
        .map_err(db)?;
    tx.prepare_cached("DELETE FROM authorization_codes WHERE tenant_id = ?1 AND client_id = ?2")
        .map_err(db)?
        .execute(params![tenant_id, client_id])
        .map_err(db)?;
    tx.prepare_cached("DELETE FROM consents WHERE tenant_id = ?1 AND client_id = ?2")
        .map_err(db)?
        .execute(params![tenant_id, client_id])
        .map_err(db)?;
    audit_row::insert_opt(&tx, audit.as_ref())?;
    tx.commit().map_err(db)?;
    Ok(true)
}
