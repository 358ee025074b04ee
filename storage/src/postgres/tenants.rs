//! Tenants and clients.

use super::error::db;
use tokio_postgres::types::Type;
use tokio_postgres::{Client, Row};
use uuid::Uuid;

use super::audit_row;
use crate::{
    AuditEntry, Client as AppClient, ClientChanges, ClientType, IssuerMode, NewClient, SecretHash,
    SigningAlg, StoreError, Tenant, TenantSettings,
};

pub(super) const TENANT_COLUMNS: &str =
    "id, slug, name, created_at, issuer_mode, settings, settings_version";
const CLIENT_COLUMNS: &str = "id, tenant_id, client_id, name, scopes, redirect_uris, \
                              post_logout_redirect_uris, allowed_origins, grant_types, \
                              client_type, secret_hash, require_email_verification, \
                              access_token_ttl, refresh_token_ttl, id_token_ttl, created_at, \
                              id_token_alg, access_token_alg, third_party";

pub(super) fn tenant_from(row: &Row) -> Result<Tenant, StoreError> {
    let mode: &str = row.try_get(4).map_err(db)?;
    Ok(Tenant {
        id: row.try_get(0).map_err(db)?,
        slug: row.try_get(1).map_err(db)?,
        name: row.try_get(2).map_err(db)?,
        created_at: row.try_get(3).map_err(db)?,
        issuer_mode: crate::tolerant::issuer_mode(mode),
        settings: crate::TenantSettings::from_json(
            &row.try_get::<_, serde_json::Value>(5).map_err(db)?,
        ),
        settings_version: row.try_get(6).map_err(db)?,
    })
}

/// The tenant and `audit` (about it) in one transaction. `Conflict("slug")` when taken.
pub(super) async fn create_tenant(
    client: &mut Client,
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
    let audit = audit.map(|a| a.about(tenant.id, "tenant", &tenant.id.to_string()));
    let tx = client.transaction().await.map_err(db)?;
    tx.execute_typed(
        "INSERT INTO tenants (id, slug, name, created_at, settings) VALUES ($1, $2, $3, $4, $5)",
        &[
            (&tenant.id, Type::UUID),
            (&tenant.slug, Type::TEXT),
            (&tenant.name, Type::TEXT),
            (&tenant.created_at, Type::INT8),
            (&tenant.settings.to_json(), Type::JSONB),
        ],
    )
    .await
    .map_err(db)?;
    audit_row::insert_opt(&tx, audit.as_ref()).await?;
    tx.commit().await.map_err(db)?;
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
        .await
        .map_err(db)?;
    rows.iter().map(tenant_from).collect()
}

/// By UUID when `key` parses as one (any accepted spelling), else by slug.
pub(super) async fn find_tenant(client: &Client, key: &str) -> Result<Option<Tenant>, StoreError> {
    let row = match Uuid::parse_str(key) {
        Ok(id) => client
            .query_typed_opt(
                &format!("SELECT {TENANT_COLUMNS} FROM tenants WHERE id = $1"),
                &[(&id, Type::UUID)],
            )
            .await
            .map_err(db)?,
        Err(_) => client
            .query_typed_opt(
                &format!("SELECT {TENANT_COLUMNS} FROM tenants WHERE slug = $1"),
                &[(&key, Type::TEXT)],
            )
            .await
            .map_err(db)?,
    };
    row.as_ref().map(tenant_from).transpose()
}

pub(super) async fn set_tenant_issuer_mode(
    client: &Client,
    tenant_id: Uuid,
    mode: IssuerMode,
) -> Result<bool, StoreError> {
    let changed = client
        .execute_typed(
            "UPDATE tenants SET issuer_mode = $1 WHERE id = $2",
            &[(&mode.as_str(), Type::TEXT), (&tenant_id, Type::UUID)],
        )
        .await
        .map_err(db)?;
    Ok(changed > 0)
}

/// A client row, or `None` for a client of a type this release does not know: absent here
/// (see `tolerant::client_type` and the SQLite backend's `client_from`).
fn client_from(row: &Row) -> Result<Option<AppClient>, StoreError> {
    let client_type: String = row.try_get(9).map_err(db)?;
    let Some(client_type) = crate::tolerant::client_type(&client_type) else {
        return Ok(None);
    };
    Ok(Some(AppClient {
        id: row.try_get(0).map_err(db)?,
        tenant_id: row.try_get(1).map_err(db)?,
        client_id: row.try_get(2).map_err(db)?,
        name: row.try_get(3).map_err(db)?,
        scopes: row.try_get(4).map_err(db)?,
        redirect_uris: row.try_get(5).map_err(db)?,
        post_logout_redirect_uris: row.try_get(6).map_err(db)?,
        allowed_origins: row.try_get(7).map_err(db)?,
        grant_types: row.try_get(8).map_err(db)?,
        client_type,
        secret_hash: row
            .try_get::<_, Option<String>>(10)
            .map_err(db)?
            .map(SecretHash::new),
        require_email_verification: row.try_get(11).map_err(db)?,
        access_token_ttl: row.try_get(12).map_err(db)?,
        refresh_token_ttl: row.try_get(13).map_err(db)?,
        id_token_ttl: row.try_get(14).map_err(db)?,
        created_at: row.try_get(15).map_err(db)?,
        id_token_alg: alg_at(row, 16)?,
        access_token_alg: alg_at(row, 17)?,
        third_party: row.try_get(18).map_err(db)?,
    }))
}

/// A signature algorithm column (NULL: the server's default).
fn alg_at(row: &Row, idx: usize) -> Result<Option<SigningAlg>, StoreError> {
    Ok(row
        .try_get::<_, Option<String>>(idx)
        .map_err(db)?
        .and_then(|name| crate::tolerant::client_alg(&name)))
}

/// The client and `audit` (about it) in one transaction. `Conflict("client_id")` when the
/// tenant already has that `client_id`.
pub(super) async fn create_client(
    client: &mut Client,
    new: NewClient,
    now: i64,
    audit: Option<AuditEntry>,
) -> Result<AppClient, StoreError> {
    let app = AppClient {
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
    let client_type = app.client_type.as_str();
    let secret_hash = app.secret_hash.as_ref().map(SecretHash::as_str);
    let id_alg = app.id_token_alg.map(SigningAlg::as_str);
    let access_alg = app.access_token_alg.map(SigningAlg::as_str);
    let audit = audit.map(|a| a.about(app.tenant_id, "client", &app.client_id));
    let tx = client.transaction().await.map_err(db)?;
    tx.execute_typed(
        &format!(
            "INSERT INTO clients ({CLIENT_COLUMNS}) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, \
                 $17, $18, $19)"
        ),
        &[
            (&app.id, Type::UUID),
            (&app.tenant_id, Type::UUID),
            (&app.client_id, Type::TEXT),
            (&app.name, Type::TEXT),
            (&app.scopes, Type::TEXT_ARRAY),
            (&app.redirect_uris, Type::TEXT_ARRAY),
            (&app.post_logout_redirect_uris, Type::TEXT_ARRAY),
            (&app.allowed_origins, Type::TEXT_ARRAY),
            (&app.grant_types, Type::TEXT_ARRAY),
            (&client_type, Type::TEXT),
            (&secret_hash, Type::TEXT),
            (&app.require_email_verification, Type::BOOL),
            (&app.access_token_ttl, Type::INT8),
            (&app.refresh_token_ttl, Type::INT8),
            (&app.id_token_ttl, Type::INT8),
            (&app.created_at, Type::INT8),
            (&id_alg, Type::TEXT),
            (&access_alg, Type::TEXT),
            (&app.third_party, Type::BOOL),
        ],
    )
    .await
    .map_err(db)?;
    audit_row::insert_opt(&tx, audit.as_ref()).await?;
    tx.commit().await.map_err(db)?;
    Ok(app)
}

pub(super) async fn list_clients(
    client: &Client,
    tenant_id: Option<Uuid>,
) -> Result<Vec<AppClient>, StoreError> {
    let rows = match tenant_id {
        Some(tenant_id) => client
            .query_typed(
                &format!(
                    "SELECT {CLIENT_COLUMNS} FROM clients WHERE tenant_id = $1 \
                         ORDER BY client_id COLLATE \"C\""
                ),
                &[(&tenant_id, Type::UUID)],
            )
            .await
            .map_err(db)?,
        None => client
            .query_typed(
                &format!(
                    "SELECT {CLIENT_COLUMNS} FROM clients \
                         ORDER BY tenant_id, client_id COLLATE \"C\""
                ),
                &[],
            )
            .await
            .map_err(db)?,
    };
    super::error::known(rows.iter().map(client_from))
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
        .await
        .map_err(db)?;
    Ok(row.as_ref().map(client_from).transpose()?.flatten())
}

/// Every client named `client_id`, in any tenant.
pub(super) async fn find_clients_by_client_id(
    client: &Client,
    client_id: &str,
) -> Result<Vec<AppClient>, StoreError> {
    let rows = client
        .query_typed(
            &format!(
                "SELECT {CLIENT_COLUMNS} FROM clients WHERE client_id = $1 \
                 ORDER BY tenant_id LIMIT 10"
            ),
            &[(&client_id, Type::TEXT)],
        )
        .await
        .map_err(db)?;
    super::error::known(rows.iter().map(client_from))
}

/// A change of a nullable field as (whether to set it, the new value).
fn nullable<T>(change: Option<Option<T>>) -> (bool, Option<T>) {
    match change {
        Some(value) => (true, value),
        None => (false, None),
    }
}

/// One `UPDATE ... RETURNING`: each field is replaced when its parameter says so and kept
/// otherwise (`COALESCE` for the non-null ones, a flag for the nullable ones); with `audit`,
/// when a client changed, in one transaction.
pub(super) async fn update_client(
    client: &mut Client,
    tenant_id: Uuid,
    client_id: &str,
    changes: &ClientChanges,
    audit: Option<AuditEntry>,
) -> Result<Option<AppClient>, StoreError> {
    let (set_secret, secret) = nullable(changes.secret_hash.as_ref().map(|s| s.as_ref()));
    let secret = secret.map(SecretHash::as_str);
    let (set_access, access) = nullable(changes.access_token_ttl);
    let (set_refresh, refresh) = nullable(changes.refresh_token_ttl);
    let (set_id, id) = nullable(changes.id_token_ttl);
    let (set_id_alg, id_alg) = nullable(changes.id_token_alg);
    let id_alg = id_alg.map(SigningAlg::as_str);
    let (set_access_alg, access_alg) = nullable(changes.access_token_alg);
    let access_alg = access_alg.map(SigningAlg::as_str);
    let client_type = changes.client_type.map(ClientType::as_str);
    let tx = client.transaction().await.map_err(db)?;
    let row = tx
        .query_typed_opt(
            &format!(
                "UPDATE clients SET \
                     name = COALESCE($3, name), \
                     scopes = COALESCE($4, scopes), \
                     redirect_uris = COALESCE($5, redirect_uris), \
                     post_logout_redirect_uris = COALESCE($6, post_logout_redirect_uris), \
                     allowed_origins = COALESCE($7, allowed_origins), \
                     grant_types = COALESCE($8, grant_types), \
                     client_type = COALESCE($9, client_type), \
                     secret_hash = CASE WHEN $10 THEN $11 ELSE secret_hash END, \
                     require_email_verification = COALESCE($12, require_email_verification), \
                     access_token_ttl = CASE WHEN $13 THEN $14 ELSE access_token_ttl END, \
                     refresh_token_ttl = CASE WHEN $15 THEN $16 ELSE refresh_token_ttl END, \
                     id_token_ttl = CASE WHEN $17 THEN $18 ELSE id_token_ttl END, \
                     id_token_alg = CASE WHEN $19 THEN $20 ELSE id_token_alg END, \
                     access_token_alg = CASE WHEN $21 THEN $22 ELSE access_token_alg END, \
                     third_party = COALESCE($23, third_party) \
                 WHERE tenant_id = $1 AND client_id = $2 AND {} \
                 RETURNING {CLIENT_COLUMNS}",
                crate::tolerant::KNOWN_CLIENT_TYPE
            ),
            &[
                (&tenant_id, Type::UUID),
                (&client_id, Type::TEXT),
                (&changes.name, Type::TEXT),
                (&changes.scopes, Type::TEXT_ARRAY),
                (&changes.redirect_uris, Type::TEXT_ARRAY),
                (&changes.post_logout_redirect_uris, Type::TEXT_ARRAY),
                (&changes.allowed_origins, Type::TEXT_ARRAY),
                (&changes.grant_types, Type::TEXT_ARRAY),
                (&client_type, Type::TEXT),
                (&set_secret, Type::BOOL),
                (&secret, Type::TEXT),
                (&changes.require_email_verification, Type::BOOL),
                (&set_access, Type::BOOL),
                (&access, Type::INT8),
                (&set_refresh, Type::BOOL),
                (&refresh, Type::INT8),
                (&set_id, Type::BOOL),
                (&id, Type::INT8),
                (&set_id_alg, Type::BOOL),
                (&id_alg, Type::TEXT),
                (&set_access_alg, Type::BOOL),
                (&access_alg, Type::TEXT),
                (&changes.third_party, Type::BOOL),
            ],
        )
        .await
        .map_err(db)?;
    let updated = row.as_ref().map(client_from).transpose()?.flatten();
    if let (Some(app), Some(audit)) = (&updated, audit) {
        let audit = audit.about(tenant_id, "client", &app.client_id);
        audit_row::insert_audit(&tx, &audit).await?;
    }
    tx.commit().await.map_err(db)?;
    Ok(updated)
}

/// Deletes the client, then its refresh families (their tokens go with them: the foreign key
/// cascades) and its sessions, in one transaction. Those rows name the client by `client_id`
/// text, without a foreign key, so they are deleted here.
pub(super) async fn delete_client(
    client: &mut Client,
    tenant_id: Uuid,
    client_id: &str,
    audit: Option<AuditEntry>,
) -> Result<bool, StoreError> {
    let audit = audit.map(|a| a.about(tenant_id, "client", client_id));
    let tx = client.transaction().await.map_err(db)?;
    let params: [(&(dyn tokio_postgres::types::ToSql + Sync), Type); 2] =
        [(&tenant_id, Type::UUID), (&client_id, Type::TEXT)];
    let deleted = tx
        .execute_typed(
            "DELETE FROM clients WHERE tenant_id = $1 AND client_id = $2",
            &params,
        )
        .await
        .map_err(db)?;
    if deleted == 0 {
        return Ok(false);
    }
    tx.execute_typed(
        "DELETE FROM refresh_families WHERE tenant_id = $1 AND client_id = $2",
        &params,
    )
    .await
    .map_err(db)?;
    tx.execute_typed(
        "DELETE FROM sessions WHERE tenant_id = $1 AND client_id = $2",
        &params,
    )
    .await
    .map_err(db)?;
    tx.execute_typed(
        "DELETE FROM authorization_codes WHERE tenant_id = $1 AND client_id = $2",
        &params,
    )
    .await
    .map_err(db)?;
    tx.execute_typed(
        "DELETE FROM consents WHERE tenant_id = $1 AND client_id = $2",
        &params,
    )
    .await
    .map_err(db)?;
    audit_row::insert_opt(&tx, audit.as_ref()).await?;
    tx.commit().await.map_err(db)?;
    Ok(true)
}
