//! Admin accounts, their refresh tokens and TOTP factor ([`Admins`]).
//!
//! Every change an operator makes is written with its audit entry in one `BEGIN IMMEDIATE`
//! transaction, and the entry only when the change applied. `admin_accounts.mfa_enabled` is
//! written only here, in the transactions that confirm or remove the factor.

use super::error::{db, uuid_at};
use rusqlite::{params, Connection, OptionalExtension, Row, TransactionBehavior};
use uuid::Uuid;

use super::SqliteStore;
use crate::admin_rotation::{admin_refresh_step, AdminStep, AdminToken};
use crate::{
    AdminAccount, AdminChanges, AdminLogin, AdminRefresh, AdminTotp, Admins, AuditEntry, NewAdmin,
    StoreError, StoreFuture, TokenHash,
};

/// The columns of [`admin_from`], in its order.
const ADMIN_COLUMNS: &str = "id, email, name, scope, mfa_enabled, last_seen_at, disabled_at, \
                             created_at, updated_at";
const ADMIN_COLUMN_COUNT: usize = 9;

fn admin_from(row: &Row<'_>) -> rusqlite::Result<AdminAccount> {
    Ok(AdminAccount {
        id: uuid_at(row, 0)?,
        email: row.get(1)?,
        name: row.get(2)?,
        scope: row.get(3)?,
        mfa_enabled: row.get(4)?,
        last_seen_at: row.get(5)?,
        disabled_at: row.get(6)?,
        created_at: row.get(7)?,
        updated_at: row.get(8)?,
    })
}

/// [`db`], with the taken email named as the engine knows it (`Conflict("email")`).
fn email_taken(e: rusqlite::Error) -> StoreError {
    match db(e) {
        StoreError::Conflict(what) if what == "admin_accounts.email" => {
            StoreError::Conflict("email".into())
        }
        other => other,
    }
}

use super::audit_row::insert_audit;

/// Revokes every live refresh token of the account inside the caller's transaction.
fn revoke_all(conn: &Connection, admin_id: &str, now: i64) -> Result<(), StoreError> {
    conn.prepare_cached(
        "UPDATE admin_refresh_tokens SET revoked_at = ?2 \
         WHERE admin_id = ?1 AND revoked_at IS NULL",
    )
    .map_err(db)?
    .execute(params![admin_id, now])
    .map_err(db)?;
    Ok(())
}

fn create_admin(
    conn: &mut Connection,
    admin: &NewAdmin,
    audit: &AuditEntry,
) -> Result<AdminAccount, StoreError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(db)?;
    let created = tx
        .prepare_cached(&format!(
            "INSERT INTO admin_accounts (id, email, name, scope, password_hash, mfa_enabled, \
                                         created_at, updated_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, 0, ?6, ?6) RETURNING {ADMIN_COLUMNS}"
        ))
        .map_err(db)?
        .query_row(
            params![
                admin.id.to_string(),
                admin.email,
                admin.name,
                admin.scope,
                admin.password_hash,
                admin.created_at,
            ],
            admin_from,
        )
        .map_err(email_taken)?;
    insert_audit(&tx, audit)?;
    tx.commit().map_err(db)?;
    Ok(created)
}

fn list_admins(conn: &Connection) -> Result<Vec<AdminAccount>, StoreError> {
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT {ADMIN_COLUMNS} FROM admin_accounts ORDER BY created_at, id"
        ))
        .map_err(db)?;
    let rows = stmt.query_map([], admin_from).map_err(db)?;
    rows.collect::<Result<_, _>>().map_err(db)
}

fn get_admin(conn: &Connection, id: Uuid) -> Result<Option<AdminAccount>, StoreError> {
    conn.prepare_cached(&format!(
        "SELECT {ADMIN_COLUMNS} FROM admin_accounts WHERE id = ?1"
    ))
    .map_err(db)?
    .query_row([id.to_string()], admin_from)
    .optional()
    .map_err(db)
}

fn find_admin_login(conn: &Connection, email: &str) -> Result<Option<AdminLogin>, StoreError> {
    conn.prepare_cached(&format!(
        "SELECT {ADMIN_COLUMNS}, password_hash FROM admin_accounts WHERE email = ?1"
    ))
    .map_err(db)?
    .query_row([email], |row| {
        Ok(AdminLogin {
            admin: admin_from(row)?,
            password_hash: row.get(ADMIN_COLUMN_COUNT)?,
        })
    })
    .optional()
    .map_err(db)
}

/// One transaction: the update (nothing else when there is no such account), the revocation
/// of every refresh token with a new password, the audit entry.
fn update_admin(
    conn: &mut Connection,
    id: Uuid,
    changes: &AdminChanges,
    now: i64,
    audit: &AuditEntry,
) -> Result<Option<AdminAccount>, StoreError> {
    let admin = id.to_string();
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(db)?;
    let updated = tx
        .prepare_cached(&format!(
            "UPDATE admin_accounts SET \
                 email = COALESCE(?2, email), \
                 name = CASE WHEN ?3 THEN ?4 ELSE name END, \
                 scope = COALESCE(?5, scope), \
                 password_hash = COALESCE(?6, password_hash), \
                 updated_at = ?7 \
             WHERE id = ?1 RETURNING {ADMIN_COLUMNS}"
        ))
        .map_err(db)?
        .query_row(
            params![
                admin,
                changes.email,
                changes.name.is_some(),
                changes.name.as_ref().and_then(|n| n.as_deref()),
                changes.scope,
                changes.password_hash,
                now,
            ],
            admin_from,
        )
        .optional()
        .map_err(email_taken)?;
    let Some(updated) = updated else {
        return Ok(None);
    };
    if changes.password_hash.is_some() {
        revoke_all(&tx, &admin, now)?;
    }
    insert_audit(&tx, audit)?;
    tx.commit().map_err(db)?;
    Ok(Some(updated))
}

/// One transaction: the account goes with its refresh tokens and factor (`ON DELETE CASCADE`),
/// and the audit entry is written when it existed.
fn delete_admin(conn: &mut Connection, id: Uuid, audit: &AuditEntry) -> Result<bool, StoreError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(db)?;
    let deleted = tx
        .prepare_cached("DELETE FROM admin_accounts WHERE id = ?1")
        .map_err(db)?
        .execute([id.to_string()])
        .map_err(db)?;
    if deleted == 0 {
        return Ok(false);
    }
    insert_audit(&tx, audit)?;
    tx.commit().map_err(db)?;
    Ok(true)
}

/// One transaction. Only a change of state writes (the refresh tokens revoked with a disable,
/// the audit entry); an account already in the asked state is answered as it stands.
fn set_admin_disabled(
    conn: &mut Connection,
    id: Uuid,
    disabled: bool,
    now: i64,
    audit: &AuditEntry,
) -> Result<Option<AdminAccount>, StoreError> {
    let admin = id.to_string();
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(db)?;
    let changed = tx
        .prepare_cached(&format!(
            "UPDATE admin_accounts \
             SET disabled_at = CASE WHEN ?2 THEN ?3 ELSE NULL END, updated_at = ?3 \
             WHERE id = ?1 AND (disabled_at IS NULL) = ?2 RETURNING {ADMIN_COLUMNS}"
        ))
        .map_err(db)?
        .query_row(params![admin, disabled, now], admin_from)
        .optional()
        .map_err(db)?;
    let Some(changed) = changed else {
        return get_admin(&tx, id);
    };
    if disabled {
        revoke_all(&tx, &admin, now)?;
    }
    insert_audit(&tx, audit)?;
    tx.commit().map_err(db)?;
    Ok(Some(changed))
}

fn touch_admin(conn: &Connection, id: Uuid, now: i64) -> Result<(), StoreError> {
    conn.prepare_cached(
        "UPDATE admin_accounts SET last_seen_at = ?2 \
         WHERE id = ?1 AND (last_seen_at IS NULL OR last_seen_at < ?2 - 60)",
    )
    .map_err(db)?
    .execute(params![id.to_string(), now])
    .map_err(db)?;
    Ok(())
}

fn insert_admin_refresh(
    conn: &mut Connection,
    token_hash: &TokenHash,
    admin_id: Uuid,
    now: i64,
    expires_at: i64,
    audit: &AuditEntry,
) -> Result<(), StoreError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(db)?;
    insert_token(&tx, token_hash, &admin_id.to_string(), now, expires_at)?;
    insert_audit(&tx, audit)?;
    tx.commit().map_err(db)
}

fn insert_token(
    conn: &Connection,
    token_hash: &TokenHash,
    admin_id: &str,
    now: i64,
    expires_at: i64,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO admin_refresh_tokens (token_hash, admin_id, issued_at, expires_at) \
         VALUES (?1, ?2, ?3, ?4)",
    )
    .map_err(db)?
    .execute(params![&token_hash[..], admin_id, now, expires_at])
    .map_err(db)?;
    Ok(())
}

/// One `BEGIN IMMEDIATE` transaction (the single writer holds the old row until it commits)
/// that carries out [`admin_refresh_step`]'s decision.
fn rotate_admin_refresh(
    conn: &mut Connection,
    old: &TokenHash,
    new: &TokenHash,
    now: i64,
    expires_at: i64,
) -> Result<AdminRefresh, StoreError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(db)?;
    let token = tx
        .prepare_cached(
            "SELECT admin_id, expires_at, used_at, revoked_at \
             FROM admin_refresh_tokens WHERE token_hash = ?1",
        )
        .map_err(db)?
        .query_row([&old[..]], |row| {
            Ok(AdminToken {
                admin_id: uuid_at(row, 0)?,
                expires_at: row.get(1)?,
                used_at: row.get(2)?,
                revoked_at: row.get(3)?,
            })
        })
        .optional()
        .map_err(db)?;
    let Some(token) = token else {
        return Ok(AdminRefresh::Invalid);
    };
    let Some(account) = get_admin(&tx, token.admin_id)? else {
        return Ok(AdminRefresh::Invalid);
    };
    let admin = token.admin_id.to_string();
    match admin_refresh_step(&token, &account, now) {
        AdminStep::Refuse => Ok(AdminRefresh::Invalid),
        AdminStep::RevokeAll => {
            revoke_all(&tx, &admin, now)?;
            tx.commit().map_err(db)?;
            Ok(AdminRefresh::Reused)
        }
        AdminStep::Rotate => {
            tx.prepare_cached(
                "UPDATE admin_refresh_tokens SET used_at = ?2 \
                 WHERE token_hash = ?1 AND used_at IS NULL AND revoked_at IS NULL",
            )
            .map_err(db)?
            .execute(params![&old[..], now])
            .map_err(db)?;
            insert_token(&tx, new, &admin, now, expires_at)?;
            tx.commit().map_err(db)?;
            Ok(AdminRefresh::Rotated(account))
        }
    }
}

/// A sign-out: only a live token (neither used, revoked nor expired) is revoked.
fn revoke_admin_refresh(
    conn: &Connection,
    token_hash: &TokenHash,
    now: i64,
) -> Result<bool, StoreError> {
    let changed = conn
        .prepare_cached(
            "UPDATE admin_refresh_tokens SET revoked_at = ?2 \
             WHERE token_hash = ?1 AND revoked_at IS NULL AND used_at IS NULL \
             AND expires_at > ?2",
        )
        .map_err(db)?
        .execute(params![&token_hash[..], now])
        .map_err(db)?;
    Ok(changed == 1)
}

fn find_admin_totp(conn: &Connection, id: Uuid) -> Result<Option<AdminTotp>, StoreError> {
    conn.prepare_cached(
        "SELECT secret_sealed, confirmed_at, last_step FROM admin_totp WHERE admin_id = ?1",
    )
    .map_err(db)?
    .query_row([id.to_string()], |row| {
        Ok(AdminTotp {
            secret_sealed: row.get(0)?,
            confirmed_at: row.get(1)?,
            last_step: row.get(2)?,
        })
    })
    .optional()
    .map_err(db)
}

/// One statement: a new unconfirmed factor, or the replacement of an unconfirmed one. Nothing
/// changes for a confirmed factor (`Conflict("totp")`) or a missing account (no error: there
/// is nothing to enrol).
fn put_admin_totp(
    conn: &Connection,
    id: Uuid,
    secret_sealed: &[u8],
    now: i64,
) -> Result<(), StoreError> {
    let admin = id.to_string();
    let changed = conn
        .prepare_cached(
            "INSERT INTO admin_totp (admin_id, secret_sealed, confirmed_at, last_step, \
                                     created_at) \
             SELECT ?1, ?2, NULL, NULL, ?3 \
             WHERE EXISTS (SELECT 1 FROM admin_accounts WHERE id = ?1) \
             ON CONFLICT (admin_id) DO UPDATE \
             SET secret_sealed = excluded.secret_sealed, last_step = NULL, \
                 created_at = excluded.created_at \
             WHERE admin_totp.confirmed_at IS NULL",
        )
        .map_err(db)?
        .execute(params![admin, secret_sealed, now])
        .map_err(db)?;
    if changed == 0 && get_admin(conn, id)?.is_some() {
        return Err(StoreError::Conflict("totp".into()));
    }
    Ok(())
}

/// One transaction: the conditional update of the factor decides (an unconfirmed one is
/// confirmed by any step, a confirmed one takes only a later step than its last); when it
/// applied, the account's flag is set and the audit entry written.
fn use_admin_totp(
    conn: &mut Connection,
    id: Uuid,
    step: i64,
    now: i64,
    audit: Option<&AuditEntry>,
) -> Result<bool, StoreError> {
    let admin = id.to_string();
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(db)?;
    let used = tx
        .prepare_cached(
            "UPDATE admin_totp SET confirmed_at = COALESCE(confirmed_at, ?3), last_step = ?2 \
             WHERE admin_id = ?1 \
             AND (confirmed_at IS NULL OR last_step IS NULL OR last_step < ?2)",
        )
        .map_err(db)?
        .execute(params![admin, step, now])
        .map_err(db)?;
    if used == 0 {
        return Ok(false);
    }
    tx.prepare_cached(
        "UPDATE admin_accounts SET mfa_enabled = 1 WHERE id = ?1 AND mfa_enabled = 0",
    )
    .map_err(db)?
    .execute([&admin])
    .map_err(db)?;
    if let Some(audit) = audit {
        insert_audit(&tx, audit)?;
    }
    tx.commit().map_err(db)?;
    Ok(true)
}

/// One transaction: the factor goes, the account's flag is cleared, and the audit entry is
/// written, only when there was a factor.
fn delete_admin_totp(
    conn: &mut Connection,
    id: Uuid,
    audit: &AuditEntry,
) -> Result<bool, StoreError> {
    let admin = id.to_string();
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(db)?;
    let deleted = tx
        .prepare_cached("DELETE FROM admin_totp WHERE admin_id = ?1")
        .map_err(db)?
        .execute([&admin])
        .map_err(db)?;
    if deleted == 0 {
        return Ok(false);
    }
    tx.prepare_cached("UPDATE admin_accounts SET mfa_enabled = 0 WHERE id = ?1")
        .map_err(db)?
        .execute([&admin])
        .map_err(db)?;
    insert_audit(&tx, audit)?;
    tx.commit().map_err(db)?;
    Ok(true)
}

// Each method runs the function of its name above: reads on a reader thread, writes on the
// writer.
impl Admins for SqliteStore {
    fn create_admin(&self, admin: NewAdmin, audit: AuditEntry) -> StoreFuture<'_, AdminAccount> {
        self.pool
            .write(move |conn| create_admin(conn, &admin, &audit))
    }

    fn list_admins(&self) -> StoreFuture<'_, Vec<AdminAccount>> {
        self.pool.read(|conn| list_admins(conn))
    }

    fn get_admin(&self, id: Uuid) -> StoreFuture<'_, Option<AdminAccount>> {
        self.pool.read(move |conn| get_admin(conn, id))
    }

    fn find_admin_login(&self, email: &str) -> StoreFuture<'_, Option<AdminLogin>> {
        let email = email.to_owned();
        self.pool.read(move |conn| find_admin_login(conn, &email))
    }

    fn update_admin(
        &self,
        id: Uuid,
        changes: AdminChanges,
        now: i64,
        audit: AuditEntry,
    ) -> StoreFuture<'_, Option<AdminAccount>> {
        self.pool
            .write(move |conn| update_admin(conn, id, &changes, now, &audit))
    }

    fn delete_admin(&self, id: Uuid, audit: AuditEntry) -> StoreFuture<'_, bool> {
        self.pool.write(move |conn| delete_admin(conn, id, &audit))
    }

    fn set_admin_disabled(
        &self,
        id: Uuid,
        disabled: bool,
        now: i64,
        audit: AuditEntry,
    ) -> StoreFuture<'_, Option<AdminAccount>> {
        self.pool
            .write(move |conn| set_admin_disabled(conn, id, disabled, now, &audit))
    }

    fn touch_admin(&self, id: Uuid, now: i64) -> StoreFuture<'_, ()> {
        self.pool.write(move |conn| touch_admin(conn, id, now))
    }

    fn insert_admin_refresh(
        &self,
        token_hash: TokenHash,
        admin_id: Uuid,
        now: i64,
        expires_at: i64,
        audit: AuditEntry,
    ) -> StoreFuture<'_, ()> {
        self.pool.write(move |conn| {
            insert_admin_refresh(conn, &token_hash, admin_id, now, expires_at, &audit)
        })
    }

    fn rotate_admin_refresh(
        &self,
        old: TokenHash,
        new: TokenHash,
        now: i64,
        expires_at: i64,
    ) -> StoreFuture<'_, AdminRefresh> {
        self.pool
            .write(move |conn| rotate_admin_refresh(conn, &old, &new, now, expires_at))
    }

    fn revoke_admin_refresh(&self, token_hash: TokenHash, now: i64) -> StoreFuture<'_, bool> {
        self.pool
            .write(move |conn| revoke_admin_refresh(conn, &token_hash, now))
    }

    fn find_admin_totp(&self, id: Uuid) -> StoreFuture<'_, Option<AdminTotp>> {
        self.pool.read(move |conn| find_admin_totp(conn, id))
    }

    fn put_admin_totp(&self, id: Uuid, secret_sealed: Vec<u8>, now: i64) -> StoreFuture<'_, ()> {
        self.pool
            .write(move |conn| put_admin_totp(conn, id, &secret_sealed, now))
    }

    fn use_admin_totp(
        &self,
        id: Uuid,
        step: i64,
        now: i64,
        audit: Option<AuditEntry>,
    ) -> StoreFuture<'_, bool> {
        self.pool
            .write(move |conn| use_admin_totp(conn, id, step, now, audit.as_ref()))
    }

    fn delete_admin_totp(&self, id: Uuid, audit: AuditEntry) -> StoreFuture<'_, bool> {
        self.pool
            .write(move |conn| delete_admin_totp(conn, id, &audit))
    }
}
