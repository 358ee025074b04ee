//! [`GrantAdmin`] on SQLite: a tenant's refresh families and cookie sessions as the operator
//! sees them, and their revocation with its audit entry in one transaction.

use super::error::db;
use rusqlite::types::Value;
use rusqlite::{params, params_from_iter, Connection, OptionalExtension, Row, TransactionBehavior};
use store::GrantAdmin;
use uuid::Uuid;

use super::error::uuid_at;
use super::{audit_row, SqliteStore};
use crate::{
    AuditEntry, GrantQuery, GrantStats, RefreshGrant, RevokeSelector, RevokedSession, SessionGrant,
    StoreError, StoreFuture,
};

impl GrantAdmin for SqliteStore {
    fn list_refresh_tokens(&self, query: GrantQuery) -> StoreFuture<'_, Vec<RefreshGrant>> {
        self.pool.read(move |conn| list_families(conn, &query))
    }

    fn get_refresh_token(
        &self,
        tenant_id: Uuid,
        id: Uuid,
    ) -> StoreFuture<'_, Option<RefreshGrant>> {
        self.pool.read(move |conn| get_family(conn, tenant_id, id))
    }

    fn token_stats(&self, tenant_id: Uuid, now: i64) -> StoreFuture<'_, GrantStats> {
        self.pool
            .read(move |conn| stats(conn, FAMILY_STATS, tenant_id, now))
    }

    fn revoke_refresh_tokens(
        &self,
        tenant_id: Uuid,
        selector: RevokeSelector,
        now: i64,
        audit: AuditEntry,
    ) -> StoreFuture<'_, u64> {
        self.pool
            .write(move |conn| revoke_families(conn, tenant_id, &selector, now, audit))
    }

    fn list_sessions(&self, query: GrantQuery) -> StoreFuture<'_, Vec<SessionGrant>> {
        self.pool.read(move |conn| list_sessions(conn, &query))
    }

    fn get_session(&self, tenant_id: Uuid, id: Uuid) -> StoreFuture<'_, Option<SessionGrant>> {
        self.pool.read(move |conn| get_session(conn, tenant_id, id))
    }

    fn session_stats(&self, tenant_id: Uuid, now: i64) -> StoreFuture<'_, GrantStats> {
        self.pool
            .read(move |conn| stats(conn, SESSION_STATS, tenant_id, now))
    }

    fn revoke_sessions(
        &self,
        tenant_id: Uuid,
        selector: RevokeSelector,
        now: i64,
        audit: AuditEntry,
    ) -> StoreFuture<'_, Vec<RevokedSession>> {
        self.pool
            .write(move |conn| revoke_sessions(conn, tenant_id, &selector, now, audit))
    }
}

/// The `WHERE` conditions of `query` on the user, the client and the cursor over a table
/// aliased `alias`, after `?1` (the tenant), with their parameters.
fn filter_sql(query: &GrantQuery, alias: &str, values: &mut Vec<Value>) -> String {
    let mut sql = String::new();
    if let Some(user_id) = query.user_id {
        values.push(Value::Text(user_id.to_string()));
        sql.push_str(&format!(" AND {alias}.user_id = ?{}", values.len()));
    }
    if let Some(client_id) = &query.client_id {
        values.push(Value::Text(client_id.clone()));
        sql.push_str(&format!(" AND {alias}.client_id = ?{}", values.len()));
    }
    if let Some((created_at, id)) = query.after {
        values.push(Value::Integer(created_at));
        values.push(Value::Text(id.to_string()));
        sql.push_str(&format!(
            " AND ({alias}.created_at, {alias}.id) > (?{}, ?{})",
            values.len() - 1,
            values.len()
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

fn family_from(row: &Row<'_>) -> rusqlite::Result<RefreshGrant> {
    Ok(RefreshGrant {
        id: uuid_at(row, 0)?,
        tenant_id: uuid_at(row, 1)?,
        user_id: uuid_at(row, 2)?,
        client_id: row.get(3)?,
        created_at: row.get(4)?,
        issued_at: row.get(5)?,
        expires_at: row.get(6)?,
        revoked_at: row.get(7)?,
        scopes: row
            .get::<_, Option<String>>(8)?
            .map(|text| serde_json::from_str(&text))
            .transpose()
            .map_err(|e| {
                rusqlite::Error::FromSqlConversionFailure(
                    8,
                    rusqlite::types::Type::Text,
                    Box::new(e),
                )
            })?,
    })
}

fn list_families(conn: &Connection, query: &GrantQuery) -> Result<Vec<RefreshGrant>, StoreError> {
    let mut values = vec![Value::Text(query.tenant_id.to_string())];
    let filter = filter_sql(query, "f", &mut values);
    let having = match query.active_at {
        Some(now) => {
            values.push(Value::Integer(now));
            format!(
                " HAVING f.revoked_at IS NULL AND max(t.expires_at) > ?{}",
                values.len()
            )
        }
        None => String::new(),
    };
    values.push(Value::Integer(i64::from(query.limit)));
    let mut stmt = conn
        .prepare_cached(&format!(
            "{FAMILY_SELECT} WHERE f.tenant_id = ?1{filter} GROUP BY f.id{having} \
             ORDER BY f.created_at, f.id LIMIT ?{}",
            values.len()
        ))
        .map_err(db)?;
    let rows = stmt
        .query_map(params_from_iter(values), family_from)
        .map_err(db)?;
    rows.collect::<Result<_, _>>().map_err(db)
}

fn get_family(
    conn: &Connection,
    tenant_id: Uuid,
    id: Uuid,
) -> Result<Option<RefreshGrant>, StoreError> {
    conn.prepare_cached(&format!(
        "{FAMILY_SELECT} WHERE f.id = ?1 AND f.tenant_id = ?2 GROUP BY f.id"
    ))
    .map_err(db)?
    .query_row(params![id.to_string(), tenant_id.to_string()], family_from)
    .optional()
    .map_err(db)
}

/// Per client of tenant `?1` at time `?2`: active, revoked, expired (see [`GrantStats`]).
const FAMILY_STATS: &str = "SELECT g.client_id, \
     sum(CASE WHEN g.revoked_at IS NULL AND g.expires_at > ?2 THEN 1 ELSE 0 END), \
     sum(CASE WHEN g.revoked_at IS NOT NULL THEN 1 ELSE 0 END), \
     sum(CASE WHEN g.revoked_at IS NULL AND g.expires_at <= ?2 THEN 1 ELSE 0 END) \
     FROM (SELECT f.client_id, f.revoked_at, \
                  COALESCE(max(t.expires_at), f.created_at) AS expires_at \
           FROM refresh_families f LEFT JOIN refresh_tokens t ON t.family_id = f.id \
           WHERE f.tenant_id = ?1 GROUP BY f.id) g \
     GROUP BY g.client_id";

/// [`FAMILY_STATS`] for sessions.
const SESSION_STATS: &str = "SELECT s.client_id, \
     sum(CASE WHEN s.revoked_at IS NULL AND s.expires_at > ?2 THEN 1 ELSE 0 END), \
     sum(CASE WHEN s.revoked_at IS NOT NULL THEN 1 ELSE 0 END), \
     sum(CASE WHEN s.revoked_at IS NULL AND s.expires_at <= ?2 THEN 1 ELSE 0 END) \
     FROM sessions s WHERE s.tenant_id = ?1 GROUP BY s.client_id";

fn stats(
    conn: &Connection,
    sql: &str,
    tenant_id: Uuid,
    now: i64,
) -> Result<GrantStats, StoreError> {
    let mut stmt = conn.prepare_cached(sql).map_err(db)?;
    let rows = stmt
        .query_map(params![tenant_id.to_string(), now], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, i64>(1)?,
                row.get::<_, i64>(2)?,
                row.get::<_, i64>(3)?,
            ))
        })
        .map_err(db)?;
    let mut per_client = Vec::new();
    for row in rows {
        let (client_id, active, revoked, expired) = row.map_err(db)?;
        let n = |v: i64| u64::try_from(v).unwrap_or(0);
        per_client.push((client_id, n(active), n(revoked), n(expired)));
    }
    Ok(GrantStats::from_clients(per_client))
}

/// The selector's condition on a table aliased `alias` (families and sessions both have
/// `id`, `user_id` and `client_id`), as parameter `?3`.
fn selector_sql(selector: &RevokeSelector, alias: &str) -> (String, Option<String>) {
    match selector {
        RevokeSelector::One(id) => (format!(" AND {alias}.id = ?3"), Some(id.to_string())),
        RevokeSelector::User(user_id) => (
            format!(" AND {alias}.user_id = ?3"),
            Some(user_id.to_string()),
        ),
        RevokeSelector::Client(client_id) => (
            format!(" AND {alias}.client_id = ?3"),
            Some(client_id.clone()),
        ),
        RevokeSelector::All => (String::new(), None),
    }
}

/// One `UPDATE` of the selected families active at `now` (the column a sign-out sets), and
/// `audit` when it revoked any.
fn revoke_families(
    conn: &mut Connection,
    tenant_id: Uuid,
    selector: &RevokeSelector,
    now: i64,
    audit: AuditEntry,
) -> Result<u64, StoreError> {
    let (condition, value) = selector_sql(selector, "f");
    let mut values = vec![Value::Text(tenant_id.to_string()), Value::Integer(now)];
    values.extend(value.map(Value::Text));
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(db)?;
    let revoked = tx
        .prepare_cached(&format!(
            "UPDATE refresh_families AS f SET revoked_at = ?2 \
             WHERE f.tenant_id = ?1 AND f.revoked_at IS NULL{condition} \
             AND EXISTS (SELECT 1 FROM refresh_tokens t \
                         WHERE t.family_id = f.id AND t.expires_at > ?2)"
        ))
        .map_err(db)?
        .execute(params_from_iter(values))
        .map_err(db)? as u64;
    if revoked > 0 {
        let (kind, target) = selector.target(tenant_id, "token");
        let audit = audit
            .about(tenant_id, kind, &target)
            .with_count("revoked", revoked);
        audit_row::insert_audit(&tx, &audit)?;
        tx.commit().map_err(db)?;
    }
    Ok(revoked)
}

const SESSION_COLUMNS: &str =
    "s.id, s.tenant_id, s.user_id, s.client_id, s.created_at, s.expires_at, s.revoked_at, s.amr";

fn session_from(row: &Row<'_>) -> rusqlite::Result<SessionGrant> {
    Ok(SessionGrant {
        id: uuid_at(row, 0)?,
        tenant_id: uuid_at(row, 1)?,
        user_id: uuid_at(row, 2)?,
        client_id: row.get(3)?,
        created_at: row.get(4)?,
        expires_at: row.get(5)?,
        revoked_at: row.get(6)?,
        amr: crate::model::amr_from_column(row.get::<_, Option<String>>(7)?.as_deref()),
    })
}

fn list_sessions(conn: &Connection, query: &GrantQuery) -> Result<Vec<SessionGrant>, StoreError> {
    let mut values = vec![Value::Text(query.tenant_id.to_string())];
    let mut filter = filter_sql(query, "s", &mut values);
    if let Some(now) = query.active_at {
        values.push(Value::Integer(now));
        filter.push_str(&format!(
            " AND s.revoked_at IS NULL AND s.expires_at > ?{}",
            values.len()
        ));
    }
    values.push(Value::Integer(i64::from(query.limit)));
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT {SESSION_COLUMNS} FROM sessions s WHERE s.tenant_id = ?1{filter} \
             ORDER BY s.created_at, s.id LIMIT ?{}",
            values.len()
        ))
        .map_err(db)?;
    let rows = stmt
        .query_map(params_from_iter(values), session_from)
        .map_err(db)?;
    rows.collect::<Result<_, _>>().map_err(db)
}

fn get_session(
    conn: &Connection,
    tenant_id: Uuid,
    id: Uuid,
) -> Result<Option<SessionGrant>, StoreError> {
    conn.prepare_cached(&format!(
        "SELECT {SESSION_COLUMNS} FROM sessions s WHERE s.id = ?1 AND s.tenant_id = ?2"
    ))
    .map_err(db)?
    .query_row(params![id.to_string(), tenant_id.to_string()], session_from)
    .optional()
    .map_err(db)
}

/// One `UPDATE ... RETURNING` of the selected sessions active at `now` (the column a sign-out
/// sets), and `audit` when it revoked any.
fn revoke_sessions(
    conn: &mut Connection,
    tenant_id: Uuid,
    selector: &RevokeSelector,
    now: i64,
    audit: AuditEntry,
) -> Result<Vec<RevokedSession>, StoreError> {
    let (condition, value) = selector_sql(selector, "s");
    let mut values = vec![Value::Text(tenant_id.to_string()), Value::Integer(now)];
    values.extend(value.map(Value::Text));
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(db)?;
    let revoked: Vec<RevokedSession> = {
        let mut stmt = tx
            .prepare_cached(&format!(
                "UPDATE sessions AS s SET revoked_at = ?2 \
                 WHERE s.tenant_id = ?1 AND s.revoked_at IS NULL AND s.expires_at > ?2\
                 {condition} RETURNING id, id_hash, user_id"
            ))
            .map_err(db)?;
        let rows = stmt
            .query_map(params_from_iter(values), |row| {
                Ok(RevokedSession {
                    id: uuid_at(row, 0)?,
                    id_hash: row.get(1)?,
                    user_id: uuid_at(row, 2)?,
                })
            })
            .map_err(db)?;
        rows.collect::<Result<_, _>>().map_err(db)?
    };
    if !revoked.is_empty() {
        let (kind, target) = selector.target(tenant_id, "session");
        let audit = audit
            .about(tenant_id, kind, &target)
            .with_count("revoked", revoked.len() as u64);
        audit_row::insert_audit(&tx, &audit)?;
        tx.commit().map_err(db)?;
    }
    Ok(revoked)
}
