//! Single-use email tokens (verification, password reset) and the mail outbox.
//!
//! A token and its mail are written in one transaction. Using a token is one conditional
//! update (unused, unexpired, of the right purpose), so of concurrent calls exactly one gets
//! it, and what the use changes commits with it.
//!
//! The outbox's claim, results and pruning are shared with webhook deliveries (`outbox.rs`).

use super::error::db;
use tokio_postgres::types::Type;
use tokio_postgres::{Client, Row};
use uuid::Uuid;

use super::pipelined::pipelined2;
use super::{events, refresh};
use crate::lifecycle::{EmailPurpose, EmailToken, MailRecord, NewMail};
use crate::{EventDraft, StoreError, TokenHash};

/// The token columns of [`token_from`] (the token hash is the caller's).
const TOKEN_COLUMNS: &str = "purpose, user_id, tenant_id, client_id, email, redirect_uri, \
                             expires_at, used_at, created_at";

/// A token row, or `None` for one of a purpose this release does not know (see
/// `tolerant::email_purpose`).
fn token_from(token_hash: TokenHash, row: &Row) -> Result<Option<EmailToken>, StoreError> {
    let purpose: String = row.try_get(0).map_err(db)?;
    let Some(purpose) = crate::tolerant::email_purpose(&purpose) else {
        return Ok(None);
    };
    Ok(Some(EmailToken {
        token_hash,
        purpose,
        user_id: row.try_get(1).map_err(db)?,
        tenant_id: row.try_get(2).map_err(db)?,
        client_id: row.try_get(3).map_err(db)?,
        email: row.try_get(4).map_err(db)?,
        redirect_uri: row.try_get(5).map_err(db)?,
        expires_at: row.try_get(6).map_err(db)?,
        used_at: row.try_get(7).map_err(db)?,
        created_at: row.try_get(8).map_err(db)?,
    }))
}

/// The token and its mail (pending, due at once), pipelined in one transaction.
pub(super) async fn issue_email_token(
    client: &mut Client,
    token: EmailToken,
    mail: NewMail,
) -> Result<(), StoreError> {
    let hash: &[u8] = &token.token_hash;
    let created_at = mail.created_at_ms.div_euclid(1000);
    let tx = client.transaction().await.map_err(db)?;
    let (stored, queued) = pipelined2(
        async {
            tx.execute_typed(
                &format!(
                    "INSERT INTO email_tokens (token_hash, {TOKEN_COLUMNS}) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
                ),
                &[
                    (&hash, Type::BYTEA),
                    (&token.purpose.as_str(), Type::TEXT),
                    (&token.user_id, Type::UUID),
                    (&token.tenant_id, Type::UUID),
                    (&token.client_id, Type::TEXT),
                    (&token.email, Type::TEXT),
                    (&token.redirect_uri, Type::TEXT),
                    (&token.expires_at, Type::INT8),
                    (&token.used_at, Type::INT8),
                    (&token.created_at, Type::INT8),
                ],
            )
            .await
        },
        async {
            tx.execute_typed(
                "INSERT INTO mail_outbox (id, tenant_id, kind, status, message_sealed, attempts, \
                 next_attempt_at_ms, created_at) \
                 VALUES ($1, $2, $3, 'pending', $4, 0, $5, $6)",
                &[
                    (&mail.id, Type::UUID),
                    (&mail.tenant_id, Type::UUID),
                    (&mail.kind, Type::TEXT),
                    (&mail.message_sealed, Type::BYTEA),
                    (&mail.created_at_ms, Type::INT8),
                    (&created_at, Type::INT8),
                ],
            )
            .await
        },
    )
    .await;
    stored.map_err(db)?;
    queued.map_err(db)?;
    tx.commit().await.map_err(db)?;
    Ok(())
}

pub(super) async fn find_email_token(
    client: &Client,
    token_hash: TokenHash,
) -> Result<Option<EmailToken>, StoreError> {
    let hash: &[u8] = &token_hash;
    let row = client
        .query_typed_opt(
            &format!("SELECT {TOKEN_COLUMNS} FROM email_tokens WHERE token_hash = $1"),
            &[(&hash, Type::BYTEA)],
        )
        .await
        .map_err(db)?;
    Ok(row
        .map(|row| token_from(token_hash, &row))
        .transpose()?
        .flatten())
}

/// Uses the token inside the caller's transaction: one conditional update. The token as used,
/// or `None` (unknown, used, expired, or of another purpose).
async fn use_token(
    tx: &tokio_postgres::Transaction<'_>,
    token_hash: TokenHash,
    purpose: EmailPurpose,
    now: i64,
) -> Result<Option<EmailToken>, StoreError> {
    let hash: &[u8] = &token_hash;
    let row = tx
        .query_typed_opt(
            &format!(
                "UPDATE email_tokens SET used_at = $2 \
                 WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2 AND purpose = $3 \
                 RETURNING {TOKEN_COLUMNS}"
            ),
            &[
                (&hash, Type::BYTEA),
                (&now, Type::INT8),
                (&purpose.as_str(), Type::TEXT),
            ],
        )
        .await
        .map_err(db)?;
    Ok(row
        .map(|row| token_from(token_hash, &row))
        .transpose()?
        .flatten())
}

/// One transaction: the token's use, then `email_verified` on its user while the user's email
/// is still the token's, and the event (written with the use, whether or not the address is
/// still the user's, as the SQLite store does).
pub(super) async fn use_verify_token(
    client: &mut Client,
    token_hash: TokenHash,
    event: Option<EventDraft>,
    now: i64,
) -> Result<Option<EmailToken>, StoreError> {
    let tx = client.transaction().await.map_err(db)?;
    let Some(token) = use_token(&tx, token_hash, EmailPurpose::Verify, now).await? else {
        return Ok(None);
    };
    let event = event
        .map(|d| d.for_user(token.tenant_id, token.user_id))
        .transpose()?;
    let (verified, recorded) = pipelined2(
        async {
            tx.execute_typed(
                "UPDATE users SET email_verified = true WHERE id = $1 AND email = $2",
                &[(&token.user_id, Type::UUID), (&token.email, Type::TEXT)],
            )
            .await
        },
        events::insert_opt(&tx, event.as_ref()),
    )
    .await;
    verified.map_err(db)?;
    recorded?;
    tx.commit().await.map_err(db)?;
    Ok(Some(token))
}

/// One transaction: the token's use decides; then, pipelined, the new password hash,
/// `email_verified` (while the user's email is still the address the token proved), the
/// revocation of every refresh family and session of the user, the use
/// of the user's other unused tokens, and the event.
pub(super) async fn use_reset_token(
    client: &mut Client,
    token_hash: TokenHash,
    password_hash: String,
    event: Option<EventDraft>,
    now: i64,
) -> Result<Option<EmailToken>, StoreError> {
    let tx = client.transaction().await.map_err(db)?;
    let Some(token) = use_token(&tx, token_hash, EmailPurpose::Reset, now).await? else {
        return Ok(None);
    };
    let user_id = token.user_id;
    let hash: &[u8] = &token_hash;
    let event = event
        .map(|d| d.for_user(token.tenant_id, user_id))
        .transpose()?;
    let (password, verified, revoked, others, recorded) = tokio::join!(
        biased;
        async {
            tx.execute_typed(
                "UPDATE password_identities SET password_hash = $2, updated_at = $3 \
                 WHERE user_id = $1",
                &[
                    (&user_id, Type::UUID),
                    (&password_hash, Type::TEXT),
                    (&now, Type::INT8),
                ],
            )
            .await
        },
        async {
            tx.execute_typed(
                "UPDATE users SET email_verified = true WHERE id = $1 AND email = $2",
                &[(&user_id, Type::UUID), (&token.email, Type::TEXT)],
            )
            .await
        },
        refresh::revoke_all_in(&tx, user_id, now),
        async {
            tx.execute_typed(
                "UPDATE email_tokens SET used_at = $2 \
                 WHERE user_id = $1 AND used_at IS NULL AND token_hash <> $3",
                &[
                    (&user_id, Type::UUID),
                    (&now, Type::INT8),
                    (&hash, Type::BYTEA),
                ],
            )
            .await
        },
        events::insert_opt(&tx, event.as_ref()),
    );
    // The first failure in statement order is the cause; later ones only report the aborted
    // transaction.
    password.map_err(db)?;
    verified.map_err(db)?;
    revoked?;
    others.map_err(db)?;
    recorded?;
    tx.commit().await.map_err(db)?;
    Ok(Some(token))
}

pub(super) async fn prune_email_tokens(
    client: &Client,
    before: i64,
    limit: u32,
) -> Result<u64, StoreError> {
    client
        .execute_typed(
            "DELETE FROM email_tokens WHERE token_hash IN \
             (SELECT token_hash FROM email_tokens WHERE expires_at < $1 LIMIT $2)",
            &[(&before, Type::INT8), (&i64::from(limit), Type::INT8)],
        )
        .await
        .map_err(db)
}

pub(super) async fn list_mail(
    client: &Client,
    tenant_id: Option<Uuid>,
    limit: u32,
) -> Result<Vec<MailRecord>, StoreError> {
    let rows = client
        .query_typed(
            "SELECT id, tenant_id, kind, status, attempts, last_error, sent_at_ms, created_at \
             FROM mail_outbox WHERE ($1::uuid IS NULL OR tenant_id = $1) \
             ORDER BY created_at DESC, id DESC LIMIT $2",
            &[(&tenant_id, Type::UUID), (&i64::from(limit), Type::INT8)],
        )
        .await
        .map_err(db)?;
    rows.iter()
        .map(|row| {
            Ok(MailRecord {
                id: row.try_get(0)?,
                tenant_id: row.try_get(1)?,
                kind: row.try_get(2)?,
                status: row.try_get(3)?,
                attempts: u32::try_from(row.try_get::<_, i32>(4)?).unwrap_or(0),
                last_error: row.try_get(5)?,
                sent_at_ms: row.try_get(6)?,
                created_at: row.try_get(7)?,
            })
        })
        .collect::<Result<_, tokio_postgres::Error>>()
        .map_err(db)
}
