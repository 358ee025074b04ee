//! [`GrantAdmin`] on PostgreSQL: a tenant's refresh families and cookie sessions as the
//! operator sees them, and their revocation with its audit entry in one transaction (the rows
//! locked in key order, as `refresh::revoke_all_in` locks them).

use super::error::db;
use store::GrantAdmin;
use tokio_postgres::types::Type;
use tokio_postgres::{Client, Row};
use uuid::Uuid;

use super::params::Params;
use super::{audit_row, PgStore};
use crate::{
    AuditEntry, GrantQuery, GrantStats, RefreshGrant, RevokeSelector, RevokedSession, SessionGrant,
    StoreError, StoreFuture,
};

impl GrantAdmin for PgStore {
    fn list_refresh_tokens(&self, query: GrantQuery) -> StoreFuture<'_, Vec<RefreshGrant>> {
        self.call("list_refresh_tokens", move |c| {
            Box::pin(async move { list_families(c, &query).await })
        })
    }

    fn get_refresh_token(
        &self,
        tenant_id: Uuid,
        id: Uuid,
    ) -> StoreFuture<'_, Option<RefreshGrant>> {
        self.call("get_refresh_token", move |c| {
            Box::pin(get_family(c, tenant_id, id))
        })
    }

    fn token_stats(&self, tenant_id: Uuid, now: i64) -> StoreFuture<'_, GrantStats> {
        self.call("token_stats", move |c| {
            Box::pin(stats(c, FAMILY_STATS, tenant_id, now))
        })
    }

    fn revoke_refresh_tokens(
        &self,
        tenant_id: Uuid,
        selector: RevokeSelector,
        now: i64,
        audit: AuditEntry,
    ) -> StoreFuture<'_, u64> {
        self.call("revoke_refresh_tokens", move |c| {
            Box::pin(async move { revoke_families(c, tenant_id, &selector, now, audit).await })
        })
    }

    fn list_sessions(&self, query: GrantQuery) -> StoreFuture<'_, Vec<SessionGrant>> {
        self.call("list_sessions", move |c| {
            Box::pin(async move { list_sessions(c, &query).await })
        })
    }

    fn get_session(&self, tenant_id: Uuid, id: Uuid) -> StoreFuture<'_, Option<SessionGrant>> {
        self.call("get_session", move |c| {
            Box::pin(get_session(c, tenant_id, id))
        })
    }

    fn session_stats(&self, tenant_id: Uuid, now: i64) -> StoreFuture<'_, GrantStats> {
        self.call("session_stats", move |c| {
            Box::pin(stats(c, SESSION_STATS, tenant_id, now))
        })
    }

    fn revoke_sessions(
        &self,
        tenant_id: Uuid,
        selector: RevokeSelector,
        now: i64,
        audit: AuditEntry,
    ) -> StoreFuture<'_, Vec<RevokedSession>> {
        self.call("revoke_sessions", move |c| {
            Box::pin(async move { revoke_sessions(c, tenant_id, &selector, now, audit).await })
        })
    }
}

/// `alias.tenant_id = $1` and the conditions of `query` on the user, the client and the
/// cursor over a table aliased `alias`, their values bound in `params`.
fn filter_sql(query: &GrantQuery, alias: &str, params: &mut Params) -> String {
    let mut sql = format!(
        "{alias}.tenant_id = {}",
        params.bind(query.tenant_id, Type::UUID)
    );
    if let Some(user_id) = query.user_id {
        let user = params.bind(user_id, Type::UUID);
        sql.push_str(&format!(" AND {alias}.user_id = {user}"));
    }
    if let Some(client_id) = &query.client_id {
        let client = params.bind(client_id.clone(), Type::TEXT);
        sql.push_str(&format!(" AND {alias}.client_id = {client}"));
    }
    if let Some((created_at, id)) = query.after {
        let (at, id) = (
            params.bind(created_at, Type::INT8),
            params.bind(id, Type::UUID),
        );
        sql.push_str(&format!(
            " AND ({alias}.created_at, {alias}.id) > ({at}, {id})"
        ));
    }
    sql
}

/// A family with the expiry of its latest token: the columns of [`family_from`], grouped by
/// family (a family always has a token; the `COALESCE` keeps one without any readable).
const FAMILY_SELECT: &str = "SELECT f.id, f.tenant_id, f.user_id, f.client_id, f.created_at, \
     COALESCE(max(t.issued_at), f.created_at), COALESCE(max(t.expires_at), f.created_at), \
     f.revoked_at, f.scopes \
     FROM refresh_families f LEFT JOIN refresh_tokens t ON t.family_id = f.id";

fn family_from(row: &Row) -> Result<RefreshGrant, tokio_postgres::Error> {
    Ok(RefreshGrant {
        id: row.try_get(0)?,
        tenant_id: row.try_get(1)?,
        user_id: row.try_get(2)?,
        client_id: row.try_get(3)?,
        created_at: row.try_get(4)?,
        issued_at: row.try_get(5)?,
        expires_at: row.try_get(6)?,
        revoked_at: row.try_get(7)?,
        scopes: row.try_get(8)?,
    })
}

async fn list_families(
    client: &Client,
    query: &GrantQuery,
) -> Result<Vec<RefreshGrant>, StoreError> {
    let mut params = Params::default();
    let filter = filter_sql(query, "f", &mut params);
    let having = match query.active_at {
        Some(now) => format!(
            " HAVING f.revoked_at IS NULL AND max(t.expires_at) > {}",
            params.bind(now, Type::INT8)
        ),
        None => String::new(),
    };
    let limit = params.bind(i64::from(query.limit), Type::INT8);
    let rows = client
        .query_typed(
            &format!(
                "{FAMILY_SELECT} WHERE {filter} GROUP BY f.id{having} \
                 ORDER BY f.created_at, f.id LIMIT {limit}"
            ),
            &params.typed(),
        )
        .await
        .map_err(db)?;
    rows.iter()
        .map(family_from)
        .collect::<Result<_, _>>()
        .map_err(db)
}

async fn get_family(
    client: &mut Client,
    tenant_id: Uuid,
    id: Uuid,
) -> Result<Option<RefreshGrant>, StoreError> {
    let row = client
        .query_typed_opt(
            &format!("{FAMILY_SELECT} WHERE f.id = $1 AND f.tenant_id = $2 GROUP BY f.id"),
            &[(&id, Type::UUID), (&tenant_id, Type::UUID)],
        )
        .await
        .map_err(db)?;
    row.as_ref().map(family_from).transpose().map_err(db)
}

/// Per client of tenant `$1` at time `$2`: active, revoked, expired (see [`GrantStats`]).
const FAMILY_STATS: &str = "SELECT g.client_id, \
     sum(CASE WHEN g.revoked_at IS NULL AND g.expires_at > $2 THEN 1 ELSE 0 END), \
     sum(CASE WHEN g.revoked_at IS NOT NULL THEN 1 ELSE 0 END), \
     sum(CASE WHEN g.revoked_at IS NULL AND g.expires_at <= $2 THEN 1 ELSE 0 END) \
     FROM (SELECT f.client_id, f.revoked_at, \
                  COALESCE(max(t.expires_at), f.created_at) AS expires_at \
           FROM refresh_families f LEFT JOIN refresh_tokens t ON t.family_id = f.id \
           WHERE f.tenant_id = $1 GROUP BY f.id) g \
     GROUP BY g.client_id";

/// [`FAMILY_STATS`] for sessions.
const SESSION_STATS: &str = "SELECT s.client_id, \
     sum(CASE WHEN s.revoked_at IS NULL AND s.expires_at > $2 THEN 1 ELSE 0 END), \
     sum(CASE WHEN s.revoked_at IS NOT NULL THEN 1 ELSE 0 END), \
     sum(CASE WHEN s.revoked_at IS NULL AND s.expires_at <= $2 THEN 1 ELSE 0 END) \
     FROM sessions s WHERE s.tenant_id = $1 GROUP BY s.client_id";

async fn stats(
    client: &mut Client,
    sql: &'static str,
    tenant_id: Uuid,
    now: i64,
) -> Result<GrantStats, StoreError> {
    let rows = client
        .query_typed(sql, &[(&tenant_id, Type::UUID), (&now, Type::INT8)])
        .await
        .map_err(db)?;
    let n = |v: i64| u64::try_from(v).unwrap_or(0);
    let mut per_client = Vec::with_capacity(rows.len());
    for row in &rows {
        let (client_id, active, revoked, expired): (String, i64, i64, i64) = (
            row.try_get(0).map_err(db)?,
            row.try_get(1).map_err(db)?,
            row.try_get(2).map_err(db)?,
            row.try_get(3).map_err(db)?,
        );
        per_client.push((client_id, n(active), n(revoked), n(expired)));
    }
    Ok(GrantStats::from_clients(per_client))
}

/// The selector's condition on a table aliased `alias` (families and sessions both have `id`,
/// `user_id` and `client_id`), its value bound in `params`.
fn selector_sql(selector: &RevokeSelector, alias: &str, params: &mut Params) -> String {
    match selector {
        RevokeSelector::One(id) => format!(" AND {alias}.id = {}", params.bind(*id, Type::UUID)),
        RevokeSelector::User(user_id) => format!(
            " AND {alias}.user_id = {}",
            params.bind(*user_id, Type::UUID)
        ),
        RevokeSelector::Client(client_id) => format!(
            " AND {alias}.client_id = {}",
            params.bind(client_id.clone(), Type::TEXT)
        ),
        RevokeSelector::All => String::new(),
    }
}

/// One `UPDATE` of the selected families active at `now` (the column a sign-out sets), and
/// `audit` when it revoked any.
async fn revoke_families(
    client: &mut Client,
    tenant_id: Uuid,
    selector: &RevokeSelector,
    now: i64,
    audit: AuditEntry,
) -> Result<u64, StoreError> {
    let mut params = Params::default();
    let (tenant, at) = (
        params.bind(tenant_id, Type::UUID),
        params.bind(now, Type::INT8),
    );
    let condition = selector_sql(selector, "g", &mut params);
    let tx = client.transaction().await.map_err(db)?;
    let revoked = tx
        .execute_typed(
            &format!(
                "UPDATE refresh_families f SET revoked_at = {at} \
                 FROM (SELECT g.id FROM refresh_families g \
                       WHERE g.tenant_id = {tenant} AND g.revoked_at IS NULL{condition} \
                       AND EXISTS (SELECT 1 FROM refresh_tokens t \
                                   WHERE t.family_id = g.id AND t.expires_at > {at}) \
                       ORDER BY g.id FOR NO KEY UPDATE) live \
                 WHERE f.id = live.id AND f.revoked_at IS NULL"
            ),
            &params.typed(),
        )
        .await
        .map_err(db)?;
    if revoked > 0 {
        let (kind, target) = selector.target(tenant_id, "token");
        let audit = audit
            .about(tenant_id, kind, &target)
            .with_count("revoked", revoked);
        audit_row::insert_audit(&tx, &audit).await?;
        tx.commit().await.map_err(db)?;
    }
    Ok(revoked)
}

const SESSION_COLUMNS: &str =
    "s.id, s.tenant_id, s.user_id, s.client_id, s.created_at, s.expires_at, s.revoked_at, s.amr";

fn session_from(row: &Row) -> Result<SessionGrant, tokio_postgres::Error> {
    Ok(SessionGrant {
        id: row.try_get(0)?,
        tenant_id: row.try_get(1)?,
        user_id: row.try_get(2)?,
        client_id: row.try_get(3)?,
        created_at: row.try_get(4)?,
        expires_at: row.try_get(5)?,
        revoked_at: row.try_get(6)?,
        amr: crate::model::amr_from_column(row.try_get::<_, Option<String>>(7)?.as_deref()),
    })
}

async fn list_sessions(
    client: &Client,
    query: &GrantQuery,
) -> Result<Vec<SessionGrant>, StoreError> {
    let mut params = Params::default();
    let mut filter = filter_sql(query, "s", &mut params);
    if let Some(now) = query.active_at {
        let at = params.bind(now, Type::INT8);
        filter.push_str(&format!(
            " AND s.revoked_at IS NULL AND s.expires_at > {at}"
        ));
    }
    let limit = params.bind(i64::from(query.limit), Type::INT8);
    let rows = client
        .query_typed(
            &format!(
                "SELECT {SESSION_COLUMNS} FROM sessions s WHERE {filter} \
                 ORDER BY s.created_at, s.id LIMIT {limit}"
            ),
            &params.typed(),
        )
        .await
        .map_err(db)?;
    rows.iter()
        .map(session_from)
        .collect::<Result<_, _>>()
        .map_err(db)
}

async fn get_session(
    client: &mut Client,
    tenant_id: Uuid,
    id: Uuid,
) -> Result<Option<SessionGrant>, StoreError> {
    let row = client
        .query_typed_opt(
            &format!(
                "SELECT {SESSION_COLUMNS} FROM sessions s WHERE s.id = $1 AND s.tenant_id = $2"
            ),
            &[(&id, Type::UUID), (&tenant_id, Type::UUID)],
        )
        .await
        .map_err(db)?;
    row.as_ref().map(session_from).transpose().map_err(db)
}

/// One `UPDATE ... RETURNING` of the selected sessions active at `now` (the column a sign-out
/// sets), and `audit` when it revoked any.
async fn revoke_sessions(
    client: &mut Client,
    tenant_id: Uuid,
    selector: &RevokeSelector,
    now: i64,
    audit: AuditEntry,
) -> Result<Vec<RevokedSession>, StoreError> {
    let mut params = Params::default();
    let (tenant, at) = (
        params.bind(tenant_id, Type::UUID),
        params.bind(now, Type::INT8),
    );
    let condition = selector_sql(selector, "g", &mut params);
    let tx = client.transaction().await.map_err(db)?;
    let rows = tx
        .query_typed(
            &format!(
                "UPDATE sessions s SET revoked_at = {at} \
                 FROM (SELECT g.id_hash FROM sessions g \
                       WHERE g.tenant_id = {tenant} AND g.revoked_at IS NULL \
                       AND g.expires_at > {at}{condition} \
                       ORDER BY g.id_hash FOR NO KEY UPDATE) live \
                 WHERE s.id_hash = live.id_hash AND s.revoked_at IS NULL \
                 RETURNING s.id, s.id_hash, s.user_id"
            ),
            &params.typed(),
        )
        .await
        .map_err(db)?;
    let mut revoked = Vec::with_capacity(rows.len());
    for row in &rows {
        let hash: &[u8] = row.try_get(1).map_err(db)?;
        revoked.push(RevokedSession {
            id: row.try_get(0).map_err(db)?,
            id_hash: hash
                .try_into()
                .map_err(|_| StoreError::Internal("a session hash of another length".into()))?,
            user_id: row.try_get(2).map_err(db)?,
        });
    }
    if !revoked.is_empty() {
        let (kind, target) = selector.target(tenant_id, "session");
        let audit = audit
            .about(tenant_id, kind, &target)
            .with_count("revoked", revoked.len() as u64);
        audit_row::insert_audit(&tx, &audit).await?;
        tx.commit().await.map_err(db)?;
    }
    Ok(revoked)
}
