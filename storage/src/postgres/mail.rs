//! Single-use email tokens (verification, password reset) and the mail outbox.
//!
//! A token and its mail are written in one transaction. Using a token is one conditional
//! update (unused, unexpired, of the right purpose), so of concurrent calls exactly one gets
//! it, and what the use changes commits with it.
//!
//! The outbox is leased like webhook deliveries (`webhooks`): a claim runs in one transaction
//! where `SELECT … FOR UPDATE SKIP LOCKED` picks due rows no concurrent claim holds and the
//! same statement sets their lease, so instances sharing the database never pick the same mail
//! while its lease holds (PgBouncer's transaction pooling included).

use super::error::db;
use tokio_postgres::types::Type;
use tokio_postgres::{Client, Row};
use uuid::Uuid;

use super::pipelined::pipelined2;
use super::{events, refresh};
use crate::lifecycle::{ClaimedMail, EmailPurpose, EmailToken, MailRecord, MailResult, NewMail};
use crate::{EventDraft, StoreError, TokenHash};

/// The token columns of [`token_from`] (the token hash is the caller's).
const TOKEN_COLUMNS: &str = "purpose, user_id, tenant_id, client_id, email, redirect_uri, \
                             expires_at, used_at, created_at";

fn token_from(token_hash: TokenHash, row: &Row) -> Result<EmailToken, StoreError> {
    let purpose: String = row.try_get(0).map_err(db)?;
    Ok(EmailToken {
        token_hash,
        purpose: EmailPurpose::parse(&purpose)
            .ok_or_else(|| StoreError::Internal(format!("unknown token purpose {purpose:?}")))?,
        user_id: row.try_get(1).map_err(db)?,
        tenant_id: row.try_get(2).map_err(db)?,
        client_id: row.try_get(3).map_err(db)?,
        email: row.try_get(4).map_err(db)?,
        redirect_uri: row.try_get(5).map_err(db)?,
        expires_at: row.try_get(6).map_err(db)?,
        used_at: row.try_get(7).map_err(db)?,
        created_at: row.try_get(8).map_err(db)?,
    })
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
    row.map(|row| token_from(token_hash, &row)).transpose()
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
    row.map(|row| token_from(token_hash, &row)).transpose()
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

fn count(row: &Row, idx: usize) -> Result<u32, tokio_postgres::Error> {
    let v: i32 = row.try_get(idx)?;
    Ok(u32::try_from(v).unwrap_or(0))
}

/// Leases up to `limit` due mails: one statement in one transaction. Rows locked by a
/// concurrent claim are skipped; a row another claim leased and committed meanwhile is
/// re-checked against the condition (READ COMMITTED) and no longer matches.
pub(super) async fn claim_mail(
    client: &mut Client,
    now_ms: i64,
    leased_until_ms: i64,
    limit: u32,
) -> Result<Vec<ClaimedMail>, StoreError> {
    let lease_id = Uuid::new_v4();
    let limit = i64::from(limit);
    let tx = client.transaction().await.map_err(db)?;
    let rows = tx
        .query_typed(
            "WITH due AS (\
             SELECT id FROM mail_outbox \
             WHERE status IN ('pending', 'failed') AND next_attempt_at_ms <= $1 \
             AND (leased_until_ms IS NULL OR leased_until_ms <= $1) \
             AND message_sealed IS NOT NULL \
             ORDER BY next_attempt_at_ms, id LIMIT $4 \
             FOR UPDATE SKIP LOCKED\
             ), claimed AS (\
             UPDATE mail_outbox m SET leased_until_ms = $2, lease_id = $3 \
             FROM due WHERE m.id = due.id \
             RETURNING m.id, m.tenant_id, m.kind, m.attempts, m.message_sealed, \
             m.next_attempt_at_ms\
             ) \
             SELECT id, tenant_id, kind, attempts, message_sealed FROM claimed \
             ORDER BY next_attempt_at_ms, id",
            &[
                (&now_ms, Type::INT8),
                (&leased_until_ms, Type::INT8),
                (&lease_id, Type::UUID),
                (&limit, Type::INT8),
            ],
        )
        .await
        .map_err(db)?;
    let claimed = rows
        .iter()
        .map(|row| {
            Ok(ClaimedMail {
                id: row.try_get(0)?,
                tenant_id: row.try_get(1)?,
                kind: row.try_get(2)?,
                lease_id,
                leased_until_ms,
                attempts: count(row, 3)?,
                message_sealed: row.try_get(4)?,
            })
        })
        .collect::<Result<Vec<_>, tokio_postgres::Error>>()
        .map_err(db)?;
    tx.commit().await.map_err(db)?;
    Ok(claimed)
}

/// One conditional update (see [`MailResult`]): `Sent` applies unless already sent or
/// exhausted, whoever holds the lease; `Failed` only while its lease holds the mail.
pub(super) async fn complete_mail(
    client: &Client,
    result: &MailResult,
) -> Result<bool, StoreError> {
    let changed = match result {
        MailResult::Sent { id, at_ms, counted } => {
            let counted = i32::from(*counted);
            client
                .execute_typed(
                    "UPDATE mail_outbox \
                     SET status = 'sent', attempts = attempts + $3, sent_at_ms = $2, \
                     message_sealed = NULL, last_error = NULL, \
                     leased_until_ms = NULL, lease_id = NULL \
                     WHERE id = $1 AND status IN ('pending', 'failed')",
                    &[
                        (id, Type::UUID),
                        (at_ms, Type::INT8),
                        (&counted, Type::INT4),
                    ],
                )
                .await
                .map_err(db)?
        }
        MailResult::Failed {
            id,
            lease_id,
            at_ms: _,
            error,
            retry_at_ms,
        } => client
            .execute_typed(
                "UPDATE mail_outbox \
                     SET status = CASE WHEN $3::bigint IS NULL THEN 'exhausted' ELSE 'failed' END, \
                     attempts = attempts + 1, \
                     next_attempt_at_ms = coalesce($3, next_attempt_at_ms), \
                     message_sealed = CASE WHEN $3::bigint IS NULL THEN NULL \
                     ELSE message_sealed END, \
                     last_error = $4, leased_until_ms = NULL, lease_id = NULL \
                     WHERE id = $1 AND lease_id = $2 AND status IN ('pending', 'failed')",
                &[
                    (id, Type::UUID),
                    (lease_id, Type::UUID),
                    (retry_at_ms, Type::INT8),
                    (error, Type::TEXT),
                ],
            )
            .await
            .map_err(db)?,
    };
    Ok(changed == 1)
}

pub(super) async fn mail_backlog(client: &Client, now_ms: i64) -> Result<u64, StoreError> {
    let n: i64 = client
        .query_typed_one(
            "SELECT count(*) FROM mail_outbox \
             WHERE status IN ('pending', 'failed') AND next_attempt_at_ms <= $1",
            &[(&now_ms, Type::INT8)],
        )
        .await
        .map_err(db)?
        .try_get(0)
        .map_err(db)?;
    Ok(u64::try_from(n).unwrap_or(0))
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
                attempts: count(row, 4)?,
                last_error: row.try_get(5)?,
                sent_at_ms: row.try_get(6)?,
                created_at: row.try_get(7)?,
            })
        })
        .collect::<Result<_, tokio_postgres::Error>>()
        .map_err(db)
}

pub(super) async fn prune_mail(
    client: &Client,
    before: i64,
    limit: u32,
) -> Result<u64, StoreError> {
    client
        .execute_typed(
            "DELETE FROM mail_outbox WHERE id IN \
             (SELECT id FROM mail_outbox \
             WHERE status IN ('sent', 'exhausted') AND created_at < $1 LIMIT $2)",
            &[(&before, Type::INT8), (&i64::from(limit), Type::INT8)],
        )
        .await
        .map_err(db)
}
