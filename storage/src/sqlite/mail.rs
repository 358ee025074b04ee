//! Single-use email tokens (verification, password reset) and the mail outbox.
//!
//! A token and its mail are written in one transaction. Using a token is one conditional
//! `UPDATE` on the single writer, with what it proves in the same transaction. The outbox's
//! claim, results and pruning are shared with webhook deliveries (`outbox.rs`).

use super::error::db;
use rusqlite::{params, Connection, OptionalExtension, Row, TransactionBehavior};
use uuid::Uuid;

use super::error::uuid_at;
use super::{events, refresh};
use crate::lifecycle::{EmailPurpose, EmailToken, MailRecord, NewMail};
use crate::{EventDraft, StoreError, TokenHash};

const TOKEN_COLUMNS: &str = "token_hash, purpose, user_id, tenant_id, client_id, email, \
                             redirect_uri, expires_at, used_at, created_at";

/// A token row, or `None` for one of a purpose this release does not know (see
/// `tolerant::email_purpose`).
fn token_from(row: &Row<'_>) -> rusqlite::Result<Option<EmailToken>> {
    let purpose: String = row.get(1)?;
    let Some(purpose) = crate::tolerant::email_purpose(&purpose) else {
        return Ok(None);
    };
    Ok(Some(EmailToken {
        token_hash: row.get(0)?,
        purpose,
        user_id: uuid_at(row, 2)?,
        tenant_id: uuid_at(row, 3)?,
        client_id: row.get(4)?,
        email: row.get(5)?,
        redirect_uri: row.get(6)?,
        expires_at: row.get(7)?,
        used_at: row.get(8)?,
        created_at: row.get(9)?,
    }))
}

fn u32_at(row: &Row<'_>, idx: usize) -> rusqlite::Result<u32> {
    let v: i64 = row.get(idx)?;
    Ok(u32::try_from(v).unwrap_or(u32::MAX))
}

/// The token and its mail (pending, due at once), in one transaction.
pub(super) fn issue_email_token(
    conn: &mut Connection,
    token: &EmailToken,
    mail: &NewMail,
) -> Result<(), StoreError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(db)?;
    tx.prepare_cached(&format!(
        "INSERT INTO email_tokens ({TOKEN_COLUMNS}) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"
    ))
    .map_err(db)?
    .execute(params![
        &token.token_hash[..],
        token.purpose.as_str(),
        token.user_id.to_string(),
        token.tenant_id.to_string(),
        token.client_id,
        token.email,
        token.redirect_uri,
        token.expires_at,
        token.used_at,
        token.created_at,
    ])
    .map_err(db)?;
    tx.prepare_cached(
        "INSERT INTO mail_outbox (id, tenant_id, kind, status, message_sealed, attempts, \
                                  next_attempt_at_ms, created_at) \
         VALUES (?1, ?2, ?3, 'pending', ?4, 0, ?5, ?6)",
    )
    .map_err(db)?
    .execute(params![
        mail.id.to_string(),
        mail.tenant_id.to_string(),
        mail.kind,
        mail.message_sealed,
        mail.created_at_ms,
        mail.created_at_ms.div_euclid(1000),
    ])
    .map_err(db)?;
    tx.commit().map_err(db)?;
    Ok(())
}

pub(super) fn find_email_token(
    conn: &Connection,
    token_hash: &TokenHash,
) -> Result<Option<EmailToken>, StoreError> {
    conn.prepare_cached(&format!(
        "SELECT {TOKEN_COLUMNS} FROM email_tokens WHERE token_hash = ?1"
    ))
    .map_err(db)?
    .query_row([&token_hash[..]], token_from)
    .optional()
    .map(Option::flatten)
    .map_err(db)
}

/// The conditional update that uses an unused, unexpired token of `purpose`, inside the
/// caller's transaction. Returns the token as it stands after it.
fn use_token(
    conn: &Connection,
    token_hash: &TokenHash,
    purpose: EmailPurpose,
    now: i64,
) -> Result<Option<EmailToken>, StoreError> {
    conn.prepare_cached(&format!(
        "UPDATE email_tokens SET used_at = ?2 \
             WHERE token_hash = ?1 AND used_at IS NULL AND expires_at > ?2 AND purpose = ?3 \
             RETURNING {TOKEN_COLUMNS}"
    ))
    .map_err(db)?
    .query_row(params![&token_hash[..], now, purpose.as_str()], token_from)
    .optional()
    .map(Option::flatten)
    .map_err(db)
}

/// One transaction: the token's use, `email_verified` on its user if the user's email is still
/// the token's, and the event.
pub(super) fn use_verify_token(
    conn: &mut Connection,
    token_hash: &TokenHash,
    event: Option<EventDraft>,
    now: i64,
) -> Result<Option<EmailToken>, StoreError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(db)?;
    let Some(token) = use_token(&tx, token_hash, EmailPurpose::Verify, now)? else {
        return Ok(None);
    };
    tx.prepare_cached("UPDATE users SET email_verified = 1 WHERE id = ?1 AND email = ?2")
        .map_err(db)?
        .execute(params![token.user_id.to_string(), token.email])
        .map_err(db)?;
    events::insert_draft(&tx, event, |d| d.for_user(token.tenant_id, token.user_id))?;
    tx.commit().map_err(db)?;
    Ok(Some(token))
}

/// One transaction: the token's use, the new password hash, `email_verified` (for the address
/// the token was sent to), the revocation of every refresh family and session of the user and
/// of the user's other live email tokens, and the event.
pub(super) fn use_reset_token(
    conn: &mut Connection,
    token_hash: &TokenHash,
    password_hash: &str,
    event: Option<EventDraft>,
    now: i64,
) -> Result<Option<EmailToken>, StoreError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(db)?;
    let Some(token) = use_token(&tx, token_hash, EmailPurpose::Reset, now)? else {
        return Ok(None);
    };
    let user = token.user_id.to_string();
    tx.prepare_cached(
        "UPDATE password_identities SET password_hash = ?2, updated_at = ?3 WHERE user_id = ?1",
    )
    .map_err(db)?
    .execute(params![user, password_hash, now])
    .map_err(db)?;
    tx.prepare_cached("UPDATE users SET email_verified = 1 WHERE id = ?1 AND email = ?2")
        .map_err(db)?
        .execute(params![user, token.email])
        .map_err(db)?;
    refresh::revoke_all_in(&tx, token.user_id, now)?;
    tx.prepare_cached(
        "UPDATE email_tokens SET used_at = ?2 WHERE user_id = ?1 AND used_at IS NULL",
    )
    .map_err(db)?
    .execute(params![user, now])
    .map_err(db)?;
    events::insert_draft(&tx, event, |d| d.for_user(token.tenant_id, token.user_id))?;
    tx.commit().map_err(db)?;
    Ok(Some(token))
}

pub(super) fn prune_email_tokens(
    conn: &Connection,
    before: i64,
    limit: u32,
) -> Result<u64, StoreError> {
    let n = conn
        .prepare_cached(
            "DELETE FROM email_tokens WHERE token_hash IN \
             (SELECT token_hash FROM email_tokens WHERE expires_at < ?1 LIMIT ?2)",
        )
        .map_err(db)?
        .execute(params![before, limit])
        .map_err(db)?;
    Ok(n as u64)
}

pub(super) fn list_mail(
    conn: &Connection,
    tenant_id: Option<Uuid>,
    limit: u32,
) -> Result<Vec<MailRecord>, StoreError> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT id, tenant_id, kind, status, attempts, last_error, sent_at_ms, created_at \
         FROM mail_outbox WHERE (?1 IS NULL OR tenant_id = ?1) \
         ORDER BY created_at DESC, id DESC LIMIT ?2",
        )
        .map_err(db)?;
    let rows = stmt
        .query_map(params![tenant_id.map(|t| t.to_string()), limit], |row| {
            Ok(MailRecord {
                id: uuid_at(row, 0)?,
                tenant_id: uuid_at(row, 1)?,
                kind: row.get(2)?,
                status: row.get(3)?,
                attempts: u32_at(row, 4)?,
                last_error: row.get(5)?,
                sent_at_ms: row.get(6)?,
                created_at: row.get(7)?,
            })
        })
        .map_err(db)?;
    rows.collect::<Result<_, _>>().map_err(db)
}
