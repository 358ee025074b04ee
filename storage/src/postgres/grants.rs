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
    AuditEntry, ClientGrants, GrantQuery, GrantState, GrantStats, RefreshGrant, RevokeSelector,
    RevokedSession, SessionGrant, StoreError, StoreFuture,
};

impl GrantAdmin for PgStore {
    fn list_refresh_tokens(&self, query: GrantQuery) -> StoreFuture<'_, Vec<RefreshGrant>> {
        self.call("list_refresh_tokens", move |c| {
            Box::pin(async move { list_families(c, &query).await })
        })
    }

    fn count_refresh_tokens(&self, query: GrantQuery) -> StoreFuture<'_, u64> {
        self.call("count_refresh_tokens", move |c| {
            Box::pin(async move {
                let (sql, params) = families_sql(&GrantQuery {
                    after: None,
                    ..query
                });
                count(c, &sql, &params).await
            })
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

    fn token_stats(&self, tenant_id: Uuid, now: i64, since: i64) -> StoreFuture<'_, GrantStats> {
        self.call("token_stats", move |c| {
            Box::pin(stats(c, FAMILY_STATS, tenant_id, now, since))
        })
    }

    fn revoke_refresh_tokens(
        &self,
        tenant_id: Uuid,
        selector: RevokeSelector,
        now: i64,
        audit: AuditEntry,
    ) -> StoreFuture<'_, Vec<Uuid>> {
        self.call("revoke_refresh_tokens", move |c| {
            Box::pin(async move { revoke_families(c, tenant_id, &selector, now, audit).await })
        })
    }

    fn list_sessions(&self, query: GrantQuery) -> StoreFuture<'_, Vec<SessionGrant>> {
        self.call("list_sessions", move |c| {
            Box::pin(async move { list_sessions(c, &query).await })
        })
    }

    fn count_sessions(&self, query: GrantQuery) -> StoreFuture<'_, u64> {
        self.call("count_sessions", move |c| {
            Box::pin(async move {
                let (sql, params) = sessions_sql(&GrantQuery {
                    after: None,
                    ..query
                });
                count(c, &sql, &params).await
            })
        })
    }

    fn get_session(&self, tenant_id: Uuid, id: Uuid) -> StoreFuture<'_, Option<SessionGrant>> {
        self.call("get_session", move |c| {
            Box::pin(get_session(c, tenant_id, id))
        })
    }

    fn session_stats(&self, tenant_id: Uuid, now: i64, since: i64) -> StoreFuture<'_, GrantStats> {
        self.call("session_stats", move |c| {
            Box::pin(stats(c, SESSION_STATS, tenant_id, now, since))
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

/// `alias.tenant_id = $1` and the conditions of `query` on the user, the client, the user's
/// email (`users u`) and the cursor over a table aliased `alias`, their values bound in
/// `params`.
fn filter_sql(query: &GrantQuery, alias: &str, params: &mut Params) -> String {
    let mut sql = format!(
        "{alias}.tenant_id = {}",
        params.bind(query.tenant_id, Type::UUID)
    );
    if let Some(email) = &query.email {
        let part = params.bind(email.to_lowercase(), Type::TEXT);
        sql.push_str(&format!(" AND strpos(lower(u.email), {part}) > 0"));
    }
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

/// The conditions (each after ` AND `) of `state` on a row whose revocation is `revoked` and
/// whose expiry is `expires`, their values bound in `params`.
fn state_sql(
    state: Option<(GrantState, i64)>,
    revoked: &str,
    expires: &str,
    params: &mut Params,
) -> String {
    let Some((state, now)) = state else {
        return String::new();
    };
    if state == GrantState::Revoked {
        return format!(" AND {revoked} IS NOT NULL");
    }
    let at = params.bind(now, Type::INT8);
    let op = if state == GrantState::Active {
        ">"
    } else {
        "<="
    };
    format!(" AND {revoked} IS NULL AND {expires} {op} {at}")
}

/// The expiry of a family: its latest token's (a family always has a token; the `COALESCE`
/// keeps one without any readable).
const FAMILY_EXPIRES: &str = "COALESCE(max(t.expires_at), f.created_at)";

/// A family with the expiry of its latest token and its user's email: the columns of
/// [`family_from`], grouped by family (`GROUP BY f.id, u.email`).
const FAMILY_SELECT: &str = "SELECT f.id, f.tenant_id, f.user_id, f.client_id, f.created_at, \
     COALESCE(max(t.issued_at), f.created_at), COALESCE(max(t.expires_at), f.created_at), \
     f.revoked_at, f.scopes, u.email \
     FROM refresh_families f JOIN users u ON u.id = f.user_id \
     LEFT JOIN refresh_tokens t ON t.family_id = f.id";

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
        user_email: row.try_get(9)?,
    })
}

/// The families of `query` (every column of [`FAMILY_SELECT`], unordered, without limit),
/// their values bound in the parameters returned.
fn families_sql(query: &GrantQuery) -> (String, Params) {
    let mut params = Params::default();
    let filter = filter_sql(query, "f", &mut params);
    let state = state_sql(query.state, "f.revoked_at", FAMILY_EXPIRES, &mut params);
    (
        format!("{FAMILY_SELECT} WHERE {filter} GROUP BY f.id, u.email HAVING true{state}"),
        params,
    )
}

/// How many rows `sql` answers.
async fn count(client: &Client, sql: &str, params: &Params) -> Result<u64, StoreError> {
    let n: i64 = client
        .query_typed_one(&format!("SELECT count(*) FROM ({sql}) c"), &params.typed())
        .await
        .map_err(db)?
        .try_get(0)
        .map_err(db)?;
    Ok(u64::try_from(n).unwrap_or(0))
}

async fn list_families(
    client: &Client,
    query: &GrantQuery,
) -> Result<Vec<RefreshGrant>, StoreError> {
    let (sql, mut params) = families_sql(query);
    let limit = params.bind(i64::from(query.limit), Type::INT8);
    let offset = params.bind(i64::from(query.offset), Type::INT8);
    let rows = client
        .query_typed(
            &format!("{sql} ORDER BY f.created_at, f.id LIMIT {limit} OFFSET {offset}"),
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
            &format!("{FAMILY_SELECT} WHERE f.id = $1 AND f.tenant_id = $2 GROUP BY f.id, u.email"),
            &[(&id, Type::UUID), (&tenant_id, Type::UUID)],
        )
        .await
        .map_err(db)?;
    row.as_ref().map(family_from).transpose().map_err(db)
}

/// Per client of `g` (rows of `client_id`, `created_at`, `issued_at`, `expires_at`,
/// `revoked_at`) at time `$2`, `since` being `$3`: the columns of [`ClientGrants`], as
/// `bigint` (a `sum` of `bigint` is `numeric`).
macro_rules! stats_sql {
    ($rows:literal) => {
        concat!(
            "SELECT g.client_id, \
             CAST(sum(CASE WHEN g.revoked_at IS NULL AND g.expires_at > $2 THEN 1 ELSE 0 END) \
                  AS bigint), \
             CAST(sum(CASE WHEN g.revoked_at IS NOT NULL THEN 1 ELSE 0 END) AS bigint), \
             CAST(sum(CASE WHEN g.revoked_at IS NULL AND g.expires_at <= $2 THEN 1 ELSE 0 END) \
                  AS bigint), \
             CAST(sum(CASE WHEN g.created_at >= $3 THEN 1 ELSE 0 END) AS bigint), \
             CAST(sum(CASE WHEN g.revoked_at >= $3 THEN 1 ELSE 0 END) AS bigint), \
             CAST(sum(CASE WHEN g.revoked_at IS NULL AND g.expires_at > $2 \
                           THEN g.expires_at - g.issued_at ELSE 0 END) AS bigint) \
             FROM (",
            $rows,
            ") g GROUP BY g.client_id"
        )
    };
}

/// Per client of tenant `$1` (see [`GrantStats`]): a family as its latest token stands.
const FAMILY_STATS: &str = stats_sql!(
    "SELECT f.client_id, f.created_at, f.revoked_at, \
            COALESCE(max(t.issued_at), f.created_at) AS issued_at, \
            COALESCE(max(t.expires_at), f.created_at) AS expires_at \
     FROM refresh_families f LEFT JOIN refresh_tokens t ON t.family_id = f.id \
     WHERE f.tenant_id = $1 GROUP BY f.id"
);

/// [`FAMILY_STATS`] for sessions: a session is issued when it is created.
const SESSION_STATS: &str = stats_sql!(
    "SELECT s.client_id, s.created_at, s.revoked_at, s.created_at AS issued_at, s.expires_at \
     FROM sessions s WHERE s.tenant_id = $1"
);

async fn stats(
    client: &mut Client,
    sql: &'static str,
    tenant_id: Uuid,
    now: i64,
    since: i64,
) -> Result<GrantStats, StoreError> {
    let rows = client
        .query_typed(
            sql,
            &[
                (&tenant_id, Type::UUID),
                (&now, Type::INT8),
                (&since, Type::INT8),
            ],
        )
        .await
        .map_err(db)?;
    let n = |row: &Row, i: usize| -> Result<u64, StoreError> {
        let v: i64 = row.try_get(i).map_err(db)?;
        Ok(u64::try_from(v).unwrap_or(0))
    };
    let mut per_client = Vec::with_capacity(rows.len());
    for row in &rows {
        per_client.push(ClientGrants {
            client_id: row.try_get(0).map_err(db)?,
            active: n(row, 1)?,
            revoked: n(row, 2)?,
            expired: n(row, 3)?,
            created_since: n(row, 4)?,
            revoked_since: n(row, 5)?,
            active_lifetime_secs: n(row, 6)?,
        });
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

/// One `UPDATE ... RETURNING` of the selected families active at `now` (the column a sign-out
/// sets), and `audit` when it revoked any.
async fn revoke_families(
    client: &mut Client,
    tenant_id: Uuid,
    selector: &RevokeSelector,
    now: i64,
    audit: AuditEntry,
) -> Result<Vec<Uuid>, StoreError> {
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
                "UPDATE refresh_families f SET revoked_at = {at} \
                 FROM (SELECT g.id FROM refresh_families g \
                       WHERE g.tenant_id = {tenant} AND g.revoked_at IS NULL{condition} \
                       AND EXISTS (SELECT 1 FROM refresh_tokens t \
                                   WHERE t.family_id = g.id AND t.expires_at > {at}) \
                       ORDER BY g.id FOR NO KEY UPDATE) live \
                 WHERE f.id = live.id AND f.revoked_at IS NULL \
                 RETURNING f.id"
            ),
            &params.typed(),
        )
        .await
        .map_err(db)?;
    let revoked = rows
        .iter()
        .map(|row| row.try_get(0))
        .collect::<Result<Vec<Uuid>, _>>()
        .map_err(db)?;
    if !revoked.is_empty() {
        let (kind, target) = selector.target(tenant_id, "token");
        let audit = audit
            .about(tenant_id, kind, &target)
            .with_count("revoked", revoked.len() as u64);
        audit_row::insert_audit(&tx, &audit).await?;
        tx.commit().await.map_err(db)?;
    }
    Ok(revoked)
}

/// The columns of [`session_from`], over `sessions s JOIN users u`.
const SESSION_COLUMNS: &str = "s.id, s.tenant_id, s.user_id, s.client_id, s.created_at, \
     s.expires_at, s.revoked_at, s.amr, u.email";

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
        user_email: row.try_get(8)?,
    })
}

/// The sessions of `query` (every column of [`SESSION_COLUMNS`], unordered, without limit),
/// their values bound in the parameters returned.
fn sessions_sql(query: &GrantQuery) -> (String, Params) {
    let mut params = Params::default();
    let mut filter = filter_sql(query, "s", &mut params);
    filter.push_str(&state_sql(
        query.state,
        "s.revoked_at",
        "s.expires_at",
        &mut params,
    ));
    (
        format!(
            "SELECT {SESSION_COLUMNS} FROM sessions s JOIN users u ON u.id = s.user_id \
             WHERE {filter}"
        ),
        params,
    )
}

async fn list_sessions(
    client: &Client,
    query: &GrantQuery,
) -> Result<Vec<SessionGrant>, StoreError> {
    let (sql, mut params) = sessions_sql(query);
    let limit = params.bind(i64::from(query.limit), Type::INT8);
    let offset = params.bind(i64::from(query.offset), Type::INT8);
    let rows = client
        .query_typed(
            &format!("{sql} ORDER BY s.created_at, s.id LIMIT {limit} OFFSET {offset}"),
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
                "SELECT {SESSION_COLUMNS} FROM sessions s JOIN users u ON u.id = s.user_id \
                 WHERE s.id = $1 AND s.tenant_id = $2"
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
