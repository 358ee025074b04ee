//! Admin accounts, their refresh tokens and TOTP factor ([`Admins`]).
//!
//! Every change an operator makes is written with its audit entry in one transaction, and the
//! entry only when the change applied. `admin_accounts.mfa_enabled` is written only here, in
//! the statements that confirm or remove the factor. A transaction that changes an account
//! and its refresh tokens or factor locks the account's row first (its `UPDATE` or `DELETE`,
//! or `FOR NO KEY UPDATE` in a rotation and a TOTP use): rotations of one account, and a
//! rotation and a disable or a password change, run one after the other, and none deadlocks
//! with another.

use super::error::db;
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{Client, GenericClient, Row, Transaction};
use uuid::Uuid;

use super::pipelined::pipelined2;
use super::PgStore;
use crate::admin_rotation::{admin_refresh_step, AdminStep, AdminToken};
use crate::{
    AdminAccount, AdminChanges, AdminLogin, AdminRefresh, AdminTotp, Admins, AuditEntry, NewAdmin,
    StoreError, StoreFuture, TokenHash,
};

/// The columns of [`admin_from`], in its order, for `admin_accounts` aliased `a`.
const ADMIN_COLUMNS: &str = "a.id, a.email, a.name, a.scope, a.mfa_enabled, a.last_seen_at, \
                             a.disabled_at, a.created_at, a.updated_at";
const ADMIN_COLUMN_COUNT: usize = 9;

/// An account from the [`ADMIN_COLUMNS`] starting at `at`.
fn admin_from(row: &Row, at: usize) -> Result<AdminAccount, tokio_postgres::Error> {
    Ok(AdminAccount {
        id: row.try_get(at)?,
        email: row.try_get(at + 1)?,
        name: row.try_get(at + 2)?,
        scope: row.try_get(at + 3)?,
        mfa_enabled: row.try_get(at + 4)?,
        last_seen_at: row.try_get(at + 5)?,
        disabled_at: row.try_get(at + 6)?,
        created_at: row.try_get(at + 7)?,
        updated_at: row.try_get(at + 8)?,
    })
}

/// [`db`], with the taken email named as the engine knows it (`Conflict("email")`).
fn email_taken(e: tokio_postgres::Error) -> StoreError {
    match db(e) {
        StoreError::Conflict(what) if what == "admin_accounts_email_key" => {
            StoreError::Conflict("email".into())
        }
        other => other,
    }
}

use super::audit_row::insert_audit;

/// Revokes every live refresh token of the account inside the caller's transaction, which
/// holds the account's row.
async fn revoke_all(tx: &Transaction<'_>, admin_id: Uuid, now: i64) -> Result<(), StoreError> {
    tx.execute_typed(
        "UPDATE admin_refresh_tokens SET revoked_at = $2 \
         WHERE admin_id = $1 AND revoked_at IS NULL",
        &[(&admin_id, Type::UUID), (&now, Type::INT8)],
    )
    .await
    .map_err(db)?;
    Ok(())
}

/// One transaction, the insert and the audit entry pipelined (a taken email fails the insert,
/// and the transaction with it).
async fn create_admin(
    client: &mut Client,
    admin: NewAdmin,
    audit: AuditEntry,
) -> Result<AdminAccount, StoreError> {
    let tx = client.transaction().await.map_err(db)?;
    let (created, audited) = pipelined2(
        async {
            tx.query_typed_one(
                &format!(
                    "INSERT INTO admin_accounts AS a (id, email, name, scope, password_hash, \
                     mfa_enabled, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, false, $6, $6) RETURNING {ADMIN_COLUMNS}"
                ),
                &[
                    (&admin.id, Type::UUID),
                    (&admin.email, Type::TEXT),
                    (&admin.name, Type::TEXT),
                    (&admin.scope, Type::TEXT),
                    (&admin.password_hash, Type::TEXT),
                    (&admin.created_at, Type::INT8),
                ],
            )
            .await
        },
        insert_audit(&tx, &audit),
    )
    .await;
    let created = admin_from(&created.map_err(email_taken)?, 0).map_err(db)?;
    audited?;
    tx.commit().await.map_err(db)?;
    Ok(created)
}

async fn list_admins(client: &Client) -> Result<Vec<AdminAccount>, StoreError> {
    let rows = client
        .query_typed(
            &format!("SELECT {ADMIN_COLUMNS} FROM admin_accounts a ORDER BY a.created_at, a.id"),
            &[],
        )
        .await
        .map_err(db)?;
    rows.iter()
        .map(|row| admin_from(row, 0))
        .collect::<Result<_, _>>()
        .map_err(db)
}

async fn get_admin<C: GenericClient + Sync>(
    client: &C,
    id: Uuid,
) -> Result<Option<AdminAccount>, StoreError> {
    let row = client
        .query_typed_opt(
            &format!("SELECT {ADMIN_COLUMNS} FROM admin_accounts a WHERE a.id = $1"),
            &[(&id, Type::UUID)],
        )
        .await
        .map_err(db)?;
    row.map(|row| admin_from(&row, 0)).transpose().map_err(db)
}

async fn find_admin_login(client: &Client, email: &str) -> Result<Option<AdminLogin>, StoreError> {
    let row = client
        .query_typed_opt(
            &format!(
                "SELECT {ADMIN_COLUMNS}, a.password_hash FROM admin_accounts a WHERE a.email = $1"
            ),
            &[(&email, Type::TEXT)],
        )
        .await
        .map_err(db)?;
    let Some(row) = row else { return Ok(None) };
    Ok(Some(AdminLogin {
        admin: admin_from(&row, 0).map_err(db)?,
        password_hash: row.try_get(ADMIN_COLUMN_COUNT).map_err(db)?,
    }))
}

/// One transaction: the update (nothing else when there is no such account), then, pipelined,
/// the revocation of every refresh token with a new password and the audit entry.
async fn update_admin(
    client: &mut Client,
    id: Uuid,
    changes: AdminChanges,
    now: i64,
    audit: AuditEntry,
) -> Result<Option<AdminAccount>, StoreError> {
    let set_name = changes.name.is_some();
    let name = changes.name.as_ref().and_then(|n| n.as_deref());
    let tx = client.transaction().await.map_err(db)?;
    let row = tx
        .query_typed_opt(
            &format!(
                "UPDATE admin_accounts a SET \
                     email = COALESCE($2, a.email), \
                     name = CASE WHEN $3 THEN $4 ELSE a.name END, \
                     scope = COALESCE($5, a.scope), \
                     password_hash = COALESCE($6, a.password_hash), \
                     updated_at = $7 \
                 WHERE a.id = $1 RETURNING {ADMIN_COLUMNS}"
            ),
            &[
                (&id, Type::UUID),
                (&changes.email, Type::TEXT),
                (&set_name, Type::BOOL),
                (&name, Type::TEXT),
                (&changes.scope, Type::TEXT),
                (&changes.password_hash, Type::TEXT),
                (&now, Type::INT8),
            ],
        )
        .await
        .map_err(email_taken)?;
    let Some(row) = row else { return Ok(None) };
    let updated = admin_from(&row, 0).map_err(db)?;
    let (revoked, audited) = pipelined2(
        async {
            match changes.password_hash {
                Some(_) => revoke_all(&tx, id, now).await,
                None => Ok(()),
            }
        },
        insert_audit(&tx, &audit),
    )
    .await;
    revoked?;
    audited?;
    tx.commit().await.map_err(db)?;
    Ok(Some(updated))
}

/// One transaction: the account goes with its refresh tokens and factor (`ON DELETE CASCADE`),
/// and the audit entry is written when it existed.
async fn delete_admin(
    client: &mut Client,
    id: Uuid,
    audit: AuditEntry,
) -> Result<bool, StoreError> {
    let tx = client.transaction().await.map_err(db)?;
    let deleted = tx
        .execute_typed(
            "DELETE FROM admin_accounts WHERE id = $1",
            &[(&id, Type::UUID)],
        )
        .await
        .map_err(db)?;
    if deleted == 0 {
        return Ok(false);
    }
    insert_audit(&tx, &audit).await?;
    tx.commit().await.map_err(db)?;
    Ok(true)
}

/// One transaction. Only a change of state writes (the refresh tokens revoked with a disable,
/// the audit entry, both pipelined); an account already in the asked state is answered as it
/// stands.
async fn set_admin_disabled(
    client: &mut Client,
    id: Uuid,
    disabled: bool,
    now: i64,
    audit: AuditEntry,
) -> Result<Option<AdminAccount>, StoreError> {
    let tx = client.transaction().await.map_err(db)?;
    let row = tx
        .query_typed_opt(
            &format!(
                "UPDATE admin_accounts a \
                 SET disabled_at = CASE WHEN $2 THEN $3 ELSE NULL END, updated_at = $3 \
                 WHERE a.id = $1 AND (a.disabled_at IS NULL) = $2 RETURNING {ADMIN_COLUMNS}"
            ),
            &[
                (&id, Type::UUID),
                (&disabled, Type::BOOL),
                (&now, Type::INT8),
            ],
        )
        .await
        .map_err(db)?;
    let Some(row) = row else {
        return get_admin(&tx, id).await;
    };
    let changed = admin_from(&row, 0).map_err(db)?;
    let (revoked, audited) = pipelined2(
        async {
            if disabled {
                revoke_all(&tx, id, now).await
            } else {
                Ok(())
            }
        },
        insert_audit(&tx, &audit),
    )
    .await;
    revoked?;
    audited?;
    tx.commit().await.map_err(db)?;
    Ok(Some(changed))
}

async fn touch_admin(client: &Client, id: Uuid, now: i64) -> Result<(), StoreError> {
    client
        .execute_typed(
            "UPDATE admin_accounts SET last_seen_at = $2 \
             WHERE id = $1 AND (last_seen_at IS NULL OR last_seen_at < $2 - 60)",
            &[(&id, Type::UUID), (&now, Type::INT8)],
        )
        .await
        .map_err(db)?;
    Ok(())
}

/// The insert of a token, inside the caller's transaction.
async fn insert_token(
    tx: &Transaction<'_>,
    token_hash: &TokenHash,
    admin_id: Uuid,
    now: i64,
    expires_at: i64,
) -> Result<(), StoreError> {
    let hash: &[u8] = token_hash;
    tx.execute_typed(
        "INSERT INTO admin_refresh_tokens (token_hash, admin_id, issued_at, expires_at) \
         VALUES ($1, $2, $3, $4)",
        &[
            (&hash, Type::BYTEA),
            (&admin_id, Type::UUID),
            (&now, Type::INT8),
            (&expires_at, Type::INT8),
        ],
    )
    .await
    .map_err(db)?;
    Ok(())
}

/// One transaction, the token and the audit entry pipelined.
async fn insert_admin_refresh(
    client: &mut Client,
    token_hash: TokenHash,
    admin_id: Uuid,
    now: i64,
    expires_at: i64,
    audit: AuditEntry,
) -> Result<(), StoreError> {
    let tx = client.transaction().await.map_err(db)?;
    let (inserted, audited) = pipelined2(
        insert_token(&tx, &token_hash, admin_id, now, expires_at),
        insert_audit(&tx, &audit),
    )
    .await;
    inserted?;
    audited?;
    tx.commit().await.map_err(db)
}

/// One transaction that carries out [`admin_refresh_step`]'s decision on what it read under
/// the locks: the account's row, then the old token's (both statements pipelined; the read
/// runs once the account's lock is held, on a fresh snapshot).
async fn rotate_admin_refresh(
    client: &mut Client,
    old: TokenHash,
    new: TokenHash,
    now: i64,
    expires_at: i64,
) -> Result<AdminRefresh, StoreError> {
    let old: &[u8] = &old;
    let tx = client.transaction().await.map_err(db)?;
    let (locked, row) = pipelined2(
        async {
            tx.execute_typed(
                "SELECT 1 FROM admin_accounts \
                 WHERE id = (SELECT admin_id FROM admin_refresh_tokens WHERE token_hash = $1) \
                 FOR NO KEY UPDATE",
                &[(&old, Type::BYTEA)],
            )
            .await
        },
        async {
            tx.query_typed_opt(
                &format!(
                    "SELECT t.admin_id, t.expires_at, t.used_at, t.revoked_at, {ADMIN_COLUMNS} \
                     FROM admin_refresh_tokens t JOIN admin_accounts a ON a.id = t.admin_id \
                     WHERE t.token_hash = $1 FOR UPDATE OF t"
                ),
                &[(&old, Type::BYTEA)],
            )
            .await
        },
    )
    .await;
    locked.map_err(db)?;
    // No row: an unknown token (or one whose account went with it).
    let Some(row) = row.map_err(db)? else {
        return Ok(AdminRefresh::Invalid);
    };
    let token = AdminToken {
        admin_id: row.try_get(0).map_err(db)?,
        expires_at: row.try_get(1).map_err(db)?,
        used_at: row.try_get(2).map_err(db)?,
        revoked_at: row.try_get(3).map_err(db)?,
    };
    let account = admin_from(&row, 4).map_err(db)?;
    match admin_refresh_step(&token, &account, now) {
        AdminStep::Refuse => Ok(AdminRefresh::Invalid),
        AdminStep::RevokeAll => {
            revoke_all(&tx, token.admin_id, now).await?;
            tx.commit().await.map_err(db)?;
            Ok(AdminRefresh::Reused)
        }
        AdminStep::Rotate => {
            let new: &[u8] = &new;
            let params: [(&(dyn ToSql + Sync), Type); 4] = [
                (&old, Type::BYTEA),
                (&now, Type::INT8),
                (&new, Type::BYTEA),
                (&expires_at, Type::INT8),
            ];
            tx.execute_typed(
                "WITH used AS (\
                 UPDATE admin_refresh_tokens SET used_at = $2 \
                 WHERE token_hash = $1 AND used_at IS NULL AND revoked_at IS NULL \
                 RETURNING admin_id\
                 ) \
                 INSERT INTO admin_refresh_tokens (token_hash, admin_id, issued_at, expires_at) \
                 SELECT $3, admin_id, $2, $4 FROM used",
                &params,
            )
            .await
            .map_err(db)?;
            tx.commit().await.map_err(db)?;
            Ok(AdminRefresh::Rotated(account))
        }
    }
}

/// A sign-out: only a live token (neither used, revoked nor expired) is revoked.
async fn revoke_admin_refresh(
    client: &Client,
    token_hash: TokenHash,
    now: i64,
) -> Result<bool, StoreError> {
    let hash: &[u8] = &token_hash;
    let changed = client
        .execute_typed(
            "UPDATE admin_refresh_tokens SET revoked_at = $2 \
             WHERE token_hash = $1 AND revoked_at IS NULL AND used_at IS NULL \
             AND expires_at > $2",
            &[(&hash, Type::BYTEA), (&now, Type::INT8)],
        )
        .await
        .map_err(db)?;
    Ok(changed == 1)
}

async fn find_admin_totp(client: &Client, id: Uuid) -> Result<Option<AdminTotp>, StoreError> {
    let row = client
        .query_typed_opt(
            "SELECT secret_sealed, confirmed_at, last_step FROM admin_totp WHERE admin_id = $1",
            &[(&id, Type::UUID)],
        )
        .await
        .map_err(db)?;
    let Some(row) = row else { return Ok(None) };
    Ok(Some(AdminTotp {
        secret_sealed: row.try_get(0).map_err(db)?,
        confirmed_at: row.try_get(1).map_err(db)?,
        last_step: row.try_get(2).map_err(db)?,
    }))
}

/// One statement: a new unconfirmed factor, or the replacement of an unconfirmed one. Nothing
/// changes for a confirmed factor (`Conflict("totp")`) or a missing account (no error: there
/// is nothing to enrol).
async fn put_admin_totp(
    client: &Client,
    id: Uuid,
    secret_sealed: Vec<u8>,
    now: i64,
) -> Result<(), StoreError> {
    let row = client
        .query_typed_one(
            "WITH put AS (\
             INSERT INTO admin_totp (admin_id, secret_sealed, confirmed_at, last_step, \
             created_at) \
             SELECT a.id, $2, NULL, NULL, $3 FROM admin_accounts a WHERE a.id = $1 \
             ON CONFLICT (admin_id) DO UPDATE \
             SET secret_sealed = EXCLUDED.secret_sealed, last_step = NULL, \
             created_at = EXCLUDED.created_at \
             WHERE admin_totp.confirmed_at IS NULL \
             RETURNING 1\
             ) \
             SELECT EXISTS (SELECT 1 FROM put), \
             EXISTS (SELECT 1 FROM admin_accounts WHERE id = $1)",
            &[
                (&id, Type::UUID),
                (&secret_sealed, Type::BYTEA),
                (&now, Type::INT8),
            ],
        )
        .await
        .map_err(db)?;
    let put: bool = row.try_get(0).map_err(db)?;
    let exists: bool = row.try_get(1).map_err(db)?;
    if !put && exists {
        return Err(StoreError::Conflict("totp".into()));
    }
    Ok(())
}

/// One statement locks the account's row, then the conditional update of the factor decides
/// (an unconfirmed one is confirmed by any step, a confirmed one takes only a later step than
/// its last) and the account's flag is set; with an audit entry, that statement and the entry
/// in one transaction, the entry written only when the step was accepted.
async fn use_admin_totp(
    client: &mut Client,
    id: Uuid,
    step: i64,
    now: i64,
    audit: Option<AuditEntry>,
) -> Result<bool, StoreError> {
    const USE: &str = "WITH locked AS (\
         SELECT id FROM admin_accounts WHERE id = $1 FOR NO KEY UPDATE\
         ), used AS (\
         UPDATE admin_totp SET confirmed_at = COALESCE(confirmed_at, $3), last_step = $2 \
         WHERE admin_id = (SELECT id FROM locked) \
         AND (confirmed_at IS NULL OR last_step IS NULL OR last_step < $2) \
         RETURNING admin_id\
         ), flagged AS (\
         UPDATE admin_accounts SET mfa_enabled = true \
         WHERE id IN (SELECT admin_id FROM used) AND NOT mfa_enabled\
         ) \
         SELECT EXISTS (SELECT 1 FROM used)";
    let params: [(&(dyn ToSql + Sync), Type); 3] =
        [(&id, Type::UUID), (&step, Type::INT8), (&now, Type::INT8)];
    let Some(audit) = audit else {
        let row = client.query_typed_one(USE, &params).await.map_err(db)?;
        return row.try_get(0).map_err(db);
    };
    let tx = client.transaction().await.map_err(db)?;
    let row = tx.query_typed_one(USE, &params).await.map_err(db)?;
    let used: bool = row.try_get(0).map_err(db)?;
    if !used {
        return Ok(false);
    }
    insert_audit(&tx, &audit).await?;
    tx.commit().await.map_err(db)?;
    Ok(true)
}

/// One transaction: the account's flag is cleared and the factor goes (pipelined, the
/// account's row first), then the audit entry, only when there was a factor.
async fn delete_admin_totp(
    client: &mut Client,
    id: Uuid,
    audit: AuditEntry,
) -> Result<bool, StoreError> {
    let tx = client.transaction().await.map_err(db)?;
    let params: [(&(dyn ToSql + Sync), Type); 1] = [(&id, Type::UUID)];
    let (cleared, deleted) = pipelined2(
        async {
            tx.execute_typed(
                "UPDATE admin_accounts SET mfa_enabled = false WHERE id = $1",
                &params,
            )
            .await
        },
        async {
            tx.execute_typed("DELETE FROM admin_totp WHERE admin_id = $1", &params)
                .await
        },
    )
    .await;
    cleared.map_err(db)?;
    let deleted = deleted.map_err(db)?;
    if deleted == 0 {
        return Ok(false);
    }
    insert_audit(&tx, &audit).await?;
    tx.commit().await.map_err(db)?;
    Ok(true)
}

// Each method runs the function of its name above on a connection of the calling thread's pool.
impl Admins for PgStore {
    fn create_admin(&self, admin: NewAdmin, audit: AuditEntry) -> StoreFuture<'_, AdminAccount> {
        self.call("create_admin", move |c| {
            Box::pin(create_admin(c, admin, audit))
        })
    }

    fn list_admins(&self) -> StoreFuture<'_, Vec<AdminAccount>> {
        self.call("list_admins", |c| Box::pin(list_admins(c)))
    }

    fn get_admin(&self, id: Uuid) -> StoreFuture<'_, Option<AdminAccount>> {
        self.call("get_admin", move |c| {
            Box::pin(async move { get_admin(&*c, id).await })
        })
    }

    fn find_admin_login(&self, email: &str) -> StoreFuture<'_, Option<AdminLogin>> {
        let email = email.to_owned();
        self.call("find_admin_login", move |c| {
            Box::pin(async move { find_admin_login(c, &email).await })
        })
    }

    fn update_admin(
        &self,
        id: Uuid,
        changes: AdminChanges,
        now: i64,
        audit: AuditEntry,
    ) -> StoreFuture<'_, Option<AdminAccount>> {
        self.call("update_admin", move |c| {
            Box::pin(update_admin(c, id, changes, now, audit))
        })
    }

    fn delete_admin(&self, id: Uuid, audit: AuditEntry) -> StoreFuture<'_, bool> {
        self.call("delete_admin", move |c| {
            Box::pin(delete_admin(c, id, audit))
        })
    }

    fn set_admin_disabled(
        &self,
        id: Uuid,
        disabled: bool,
        now: i64,
        audit: AuditEntry,
    ) -> StoreFuture<'_, Option<AdminAccount>> {
        self.call("set_admin_disabled", move |c| {
            Box::pin(set_admin_disabled(c, id, disabled, now, audit))
        })
    }

    fn touch_admin(&self, id: Uuid, now: i64) -> StoreFuture<'_, ()> {
        self.call("touch_admin", move |c| Box::pin(touch_admin(c, id, now)))
    }

    fn insert_admin_refresh(
        &self,
        token_hash: TokenHash,
        admin_id: Uuid,
        now: i64,
        expires_at: i64,
        audit: AuditEntry,
    ) -> StoreFuture<'_, ()> {
        self.call("insert_admin_refresh", move |c| {
            Box::pin(insert_admin_refresh(
                c, token_hash, admin_id, now, expires_at, audit,
            ))
        })
    }

    fn rotate_admin_refresh(
        &self,
        old: TokenHash,
        new: TokenHash,
        now: i64,
        expires_at: i64,
    ) -> StoreFuture<'_, AdminRefresh> {
        self.call("rotate_admin_refresh", move |c| {
            Box::pin(rotate_admin_refresh(c, old, new, now, expires_at))
        })
    }

    fn revoke_admin_refresh(&self, token_hash: TokenHash, now: i64) -> StoreFuture<'_, bool> {
        self.call("revoke_admin_refresh", move |c| {
            Box::pin(revoke_admin_refresh(c, token_hash, now))
        })
    }

    fn find_admin_totp(&self, id: Uuid) -> StoreFuture<'_, Option<AdminTotp>> {
        self.call("find_admin_totp", move |c| Box::pin(find_admin_totp(c, id)))
    }

    fn put_admin_totp(&self, id: Uuid, secret_sealed: Vec<u8>, now: i64) -> StoreFuture<'_, ()> {
        self.call("put_admin_totp", move |c| {
            Box::pin(put_admin_totp(c, id, secret_sealed, now))
        })
    }

    fn use_admin_totp(
        &self,
        id: Uuid,
        step: i64,
        now: i64,
        audit: Option<AuditEntry>,
    ) -> StoreFuture<'_, bool> {
        self.call("use_admin_totp", move |c| {
            Box::pin(use_admin_totp(c, id, step, now, audit))
        })
    }

    fn delete_admin_totp(&self, id: Uuid, audit: AuditEntry) -> StoreFuture<'_, bool> {
        self.call("delete_admin_totp", move |c| {
            Box::pin(delete_admin_totp(c, id, audit))
        })
    }
}
