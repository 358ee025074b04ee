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
    AuditEntry, ClientGrants, GrantQuery, GrantState, GrantStats, RefreshGrant, RevokeSelector,
    RevokedSession, SessionGrant, StoreError, StoreFuture,
};

impl GrantAdmin for SqliteStore {
    fn list_refresh_tokens(&self, query: GrantQuery) -> StoreFuture<'_, Vec<RefreshGrant>> {
        self.pool.read(move |conn| list_families(conn, &query))
    }

    fn count_refresh_tokens(&self, query: GrantQuery) -> StoreFuture<'_, u64> {
        self.pool.read(move |conn| count_families(conn, &query))
    }

    fn get_refresh_token(
        &self,
        tenant_id: Uuid,
        id: Uuid,
    ) -> StoreFuture<'_, Option<RefreshGrant>> {
        self.pool.read(move |conn| get_family(conn, tenant_id, id))
    }

    fn token_stats(&self, tenant_id: Uuid, now: i64, since: i64) -> StoreFuture<'_, GrantStats> {
        self.pool
            .read(move |conn| stats(conn, FAMILY_STATS, tenant_id, now, since))
    }

    fn revoke_refresh_tokens(
        &self,
        tenant_id: Uuid,
        selector: RevokeSelector,
        now: i64,
        audit: AuditEntry,
    ) -> StoreFuture<'_, Vec<Uuid>> {
        self.pool
            .write(move |conn| revoke_families(conn, tenant_id, &selector, now, audit))
    }

    fn list_sessions(&self, query: GrantQuery) -> StoreFuture<'_, Vec<SessionGrant>> {
        self.pool.read(move |conn| list_sessions(conn, &query))
    }

    fn count_sessions(&self, query: GrantQuery) -> StoreFuture<'_, u64> {
        self.pool.read(move |conn| count_sessions(conn, &query))
    }

    fn get_session(&self, tenant_id: Uuid, id: Uuid) -> StoreFuture<'_, Option<SessionGrant>> {
        self.pool.read(move |conn| get_session(conn, tenant_id, id))
    }

    fn session_stats(&self, tenant_id: Uuid, now: i64, since: i64) -> StoreFuture<'_, GrantStats> {
        self.pool
            .read(move |conn| stats(conn, SESSION_STATS, tenant_id, now, since))
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

/// The `WHERE` conditions of `query` on the user, the client, the user's email (`users u`)
/// and the cursor over a table aliased `alias`, after `?1` (the tenant), with their parameters.
fn filter_sql(query: &GrantQuery, alias: &str, values: &mut Vec<Value>) -> String {
    let mut sql = String::new();
    if let Some(email) = &query.email {
        values.push(Value::Text(email.to_lowercase()));
        sql.push_str(&format!(
            " AND instr(lower(u.email), ?{}) > 0",
            values.len()
        ));
    }
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

/// The conditions (each after ` AND `) of `state` on a row whose revocation is `revoked` and
/// whose expiry is `expires`, with their parameters.
fn state_sql(
    state: Option<(GrantState, i64)>,
    revoked: &str,
    expires: &str,
    values: &mut Vec<Value>,
) -> String {
    let Some((state, now)) = state else {
        return String::new();
    };
    if state == GrantState::Revoked {
        return format!(" AND {revoked} IS NOT NULL");
    }
    values.push(Value::Integer(now));
    let op = if state == GrantState::Active {
        ">"
    } else {
        "<="
    };
    format!(
        " AND {revoked} IS NULL AND {expires} {op} ?{}",
        values.len()
    )
}

/// The expiry of a family: its latest token's (a family always has a token; the `COALESCE`
/// keeps one without any readable).
const FAMILY_EXPIRES: &str = "COALESCE(max(t.expires_at), f.created_at)";

/// A family with the expiry of its latest token and its user's email: the columns of
/// [`family_from`], grouped by family.
const FAMILY_SELECT: &str = "SELECT f.id, f.tenant_id, f.user_id, f.client_id, f.created_at, \
     COALESCE(max(t.issued_at), f.created_at), COALESCE(max(t.expires_at), f.created_at), \
     f.revoked_at, f.scopes, u.email \
     FROM refresh_families f JOIN users u ON u.id = f.user_id \
     LEFT JOIN refresh_tokens t ON t.family_id = f.id";

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
        user_email: row.get(9)?,
    })
}

/// The families of `query` (every column of [`FAMILY_SELECT`], unordered, without limit),
/// with their parameters.
fn families_sql(query: &GrantQuery) -> (String, Vec<Value>) {
    let mut values = vec![Value::Text(query.tenant_id.to_string())];
    let filter = filter_sql(query, "f", &mut values);
    let state = state_sql(query.state, "f.revoked_at", FAMILY_EXPIRES, &mut values);
    (
        format!("{FAMILY_SELECT} WHERE f.tenant_id = ?1{filter} GROUP BY f.id HAVING 1 = 1{state}"),
        values,
    )
}

fn list_families(conn: &Connection, query: &GrantQuery) -> Result<Vec<RefreshGrant>, StoreError> {
    let (sql, mut values) = families_sql(query);
    values.push(Value::Integer(i64::from(query.limit)));
    values.push(Value::Integer(i64::from(query.offset)));
    let mut stmt = conn
        .prepare_cached(&format!(
            "{sql} ORDER BY f.created_at, f.id LIMIT ?{} OFFSET ?{}",
            values.len() - 1,
            values.len()
        ))
        .map_err(db)?;
    let rows = stmt
        .query_map(params_from_iter(values), family_from)
        .map_err(db)?;
    rows.collect::<Result<_, _>>().map_err(db)
}

fn count_families(conn: &Connection, query: &GrantQuery) -> Result<u64, StoreError> {
    let query = GrantQuery {
        after: None,
        ..query.clone()
    };
    let (sql, values) = families_sql(&query);
    count(conn, &sql, values)
}

/// How many rows `sql` answers.
fn count(conn: &Connection, sql: &str, values: Vec<Value>) -> Result<u64, StoreError> {
    let n: i64 = conn
        .prepare_cached(&format!("SELECT count(*) FROM ({sql})"))
        .map_err(db)?
        .query_row(params_from_iter(values), |row| row.get(0))
        .map_err(db)?;
    Ok(u64::try_from(n).unwrap_or(0))
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

/// Per client of `g` (rows of `client_id`, `created_at`, `issued_at`, `expires_at`,
/// `revoked_at`) at time `?2`, `since` being `?3`: the columns of [`ClientGrants`].
macro_rules! stats_sql {
    ($rows:literal) => {
        concat!(
            "SELECT g.client_id, \
             sum(CASE WHEN g.revoked_at IS NULL AND g.expires_at > ?2 THEN 1 ELSE 0 END), \
             sum(CASE WHEN g.revoked_at IS NOT NULL THEN 1 ELSE 0 END), \
             sum(CASE WHEN g.revoked_at IS NULL AND g.expires_at <= ?2 THEN 1 ELSE 0 END), \
             sum(CASE WHEN g.created_at >= ?3 THEN 1 ELSE 0 END), \
             sum(CASE WHEN g.revoked_at >= ?3 THEN 1 ELSE 0 END), \
             sum(CASE WHEN g.revoked_at IS NULL AND g.expires_at > ?2 \
                      THEN g.expires_at - g.issued_at ELSE 0 END) \
             FROM (",
            $rows,
            ") g GROUP BY g.client_id"
        )
    };
}

/// Per client of tenant `?1` (see [`GrantStats`]): a family as its latest token stands.
const FAMILY_STATS: &str = stats_sql!(
    "SELECT f.client_id, f.created_at, f.revoked_at, \
            COALESCE(max(t.issued_at), f.created_at) AS issued_at, \
            COALESCE(max(t.expires_at), f.created_at) AS expires_at \
     FROM refresh_families f LEFT JOIN refresh_tokens t ON t.family_id = f.id \
     WHERE f.tenant_id = ?1 GROUP BY f.id"
);

/// [`FAMILY_STATS`] for sessions: a session is issued when it is created.
const SESSION_STATS: &str = stats_sql!(
    "SELECT s.client_id, s.created_at, s.revoked_at, s.created_at AS issued_at, s.expires_at \
     FROM sessions s WHERE s.tenant_id = ?1"
);

fn stats(
    conn: &Connection,
    sql: &str,
    tenant_id: Uuid,
    now: i64,
    since: i64,
) -> Result<GrantStats, StoreError> {
    let mut stmt = conn.prepare_cached(sql).map_err(db)?;
    let n = |row: &Row<'_>, i: usize| -> rusqlite::Result<u64> {
        Ok(u64::try_from(row.get::<_, i64>(i)?).unwrap_or(0))
    };
    let rows = stmt
        .query_map(params![tenant_id.to_string(), now, since], |row| {
            Ok(ClientGrants {
                client_id: row.get(0)?,
                active: n(row, 1)?,
                revoked: n(row, 2)?,
                expired: n(row, 3)?,
                created_since: n(row, 4)?,
                revoked_since: n(row, 5)?,
                active_lifetime_secs: n(row, 6)?,
            })
        })
        .map_err(db)?;
    let per_client = rows.collect::<Result<_, _>>().map_err(db)?;
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

/// One `UPDATE ... RETURNING` of the selected families active at `now` (the column a sign-out
/// sets), and `audit` when it revoked any.
fn revoke_families(
    conn: &mut Connection,
    tenant_id: Uuid,
    selector: &RevokeSelector,
    now: i64,
    audit: AuditEntry,
) -> Result<Vec<Uuid>, StoreError> {
    let (condition, value) = selector_sql(selector, "f");
    let mut values = vec![Value::Text(tenant_id.to_string()), Value::Integer(now)];
    values.extend(value.map(Value::Text));
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(db)?;
    let revoked: Vec<Uuid> = {
        let mut stmt = tx
            .prepare_cached(&format!(
                "UPDATE refresh_families AS f SET revoked_at = ?2 \
                 WHERE f.tenant_id = ?1 AND f.revoked_at IS NULL{condition} \
                 AND EXISTS (SELECT 1 FROM refresh_tokens t \
                             WHERE t.family_id = f.id AND t.expires_at > ?2) \
                 RETURNING id"
            ))
            .map_err(db)?;
        let rows = stmt
            .query_map(params_from_iter(values), |row| uuid_at(row, 0))
            .map_err(db)?;
        rows.collect::<Result<_, _>>().map_err(db)?
    };
    if !revoked.is_empty() {
        let (kind, target) = selector.target(tenant_id, "token");
        let audit = audit
            .about(tenant_id, kind, &target)
            .with_count("revoked", revoked.len() as u64);
        audit_row::insert_audit(&tx, &audit)?;
        tx.commit().map_err(db)?;
    }
    Ok(revoked)
}

/// The columns of [`session_from`], over `sessions s JOIN users u`.
const SESSION_COLUMNS: &str = "s.id, s.tenant_id, s.user_id, s.client_id, s.created_at, \
     s.expires_at, s.revoked_at, s.amr, u.email";

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
        user_email: row.get(8)?,
    })
}

/// The sessions of `query` (every column of [`SESSION_COLUMNS`], unordered, without limit),
/// with their parameters.
fn sessions_sql(query: &GrantQuery) -> (String, Vec<Value>) {
    let mut values = vec![Value::Text(query.tenant_id.to_string())];
    let mut filter = filter_sql(query, "s", &mut values);
    filter.push_str(&state_sql(
        query.state,
        "s.revoked_at",
        "s.expires_at",
        &mut values,
    ));
    (
        format!(
            "SELECT {SESSION_COLUMNS} FROM sessions s JOIN users u ON u.id = s.user_id \
             WHERE s.tenant_id = ?1{filter}"
        ),
        values,
    )
}

fn list_sessions(conn: &Connection, query: &GrantQuery) -> Result<Vec<SessionGrant>, StoreError> {
    let (sql, mut values) = sessions_sql(query);
    values.push(Value::Integer(i64::from(query.limit)));
    values.push(Value::Integer(i64::from(query.offset)));
    let mut stmt = conn
        .prepare_cached(&format!(
            "{sql} ORDER BY s.created_at, s.id LIMIT ?{} OFFSET ?{}",
            values.len() - 1,
            values.len()
        ))
        .map_err(db)?;
    let rows = stmt
        .query_map(params_from_iter(values), session_from)
        .map_err(db)?;
    rows.collect::<Result<_, _>>().map_err(db)
}

fn count_sessions(conn: &Connection, query: &GrantQuery) -> Result<u64, StoreError> {
    let query = GrantQuery {
        after: None,
        ..query.clone()
    };
    let (sql, values) = sessions_sql(&query);
    count(conn, &sql, values)
}

fn get_session(
    conn: &Connection,
    tenant_id: Uuid,
    id: Uuid,
) -> Result<Option<SessionGrant>, StoreError> {
    conn.prepare_cached(&format!(
        "SELECT {SESSION_COLUMNS} FROM sessions s JOIN users u ON u.id = s.user_id \
         WHERE s.id = ?1 AND s.tenant_id = ?2"
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
