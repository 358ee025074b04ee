//! Email flows: verifying an address and resetting a forgotten password, by single-use links.
//!
//! A link's token is 32 random bytes (base64url), stored only as SHA-256 with its purpose,
//! user, the address it went to and its expiry. The mail is written to the outbox in the same
//! transaction as the token, sealed (it carries the token), and sent by the mail worker.
//!
//! The unauthenticated starts (`forgot`, `verify-email/start` with an email) must not tell
//! whether the address has an account: the engine answers before this work runs, the same
//! answer either way, and this work reports nothing back.

use crate::limiter::account_subject;
use crate::ports::{MailKind, MailVars};
use store::{EmailPurpose, EmailToken};

use super::*;

/// Mails of one kind to one address, at most (per [`Limit::FailedSignIn`]'s period): a form
/// cannot be used to flood a mailbox.
fn mail_subject(tenant_id: Uuid, kind: MailKind, email: &str) -> String {
    account_subject(tenant_id, &format!("mail:{}:{email}", kind.as_str()))
}

/// Where a verified browser goes, if anywhere.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub user_id: Uuid,
    pub redirect_uri: Option<String>,
}

/// Whether `uri` may receive a browser after an email flow: one of the client's registered
/// redirect or post-logout redirect URIs, compared exactly.
pub fn registered_redirect(client: &Client, uri: &str) -> bool {
    client
        .redirect_uris
        .iter()
        .chain(client.post_logout_redirect_uris.iter())
        .any(|u| u == uri)
}

impl Auth {
    /// Writes a token and its mail. Silently nothing when over the per-address mail limit.
    #[allow(clippy::too_many_arguments)]
    async fn send_link(
        &self,
        tenant: &Tenant,
        client: &Client,
        user: &User,
        kind: MailKind,
        redirect_uri: Option<String>,
        now: i64,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let lc = self.lifecycle()?;
        if let Some(d) = self
            .limiter
            .take(
                Limit::FailedSignIn,
                &mail_subject(tenant.id, kind, &user.email),
            )
            .await
        {
            if !d.allowed {
                tracing::info!(user_id = %user.id, kind = kind.as_str(), "mail not sent: over the per-address limit");
                return Ok(());
            }
        }
        let (purpose, ttl, path) = match kind {
            MailKind::VerifyEmail => (EmailPurpose::Verify, lc.verify_ttl, "verify-email"),
            MailKind::PasswordReset => (EmailPurpose::Reset, lc.reset_ttl, "reset"),
        };
        let (token, token_hash) = new_opaque_token();
        let link = format!(
            "{}/v2/auth/{path}?token={token}",
            self.issuer.trim_end_matches('/')
        );
        let mail = lc.mailer.compose(
            &MailVars {
                kind,
                tenant,
                to: &user.email,
                link: &link,
                ttl,
            },
            now_ms,
        );
        self.store
            .issue_email_token(
                EmailToken {
                    token_hash,
                    purpose,
                    user_id: user.id,
                    tenant_id: tenant.id,
                    client_id: client.client_id.clone(),
                    email: user.email.clone(),
                    redirect_uri,
                    expires_at: now + secs(ttl),
                    used_at: None,
                    created_at: now,
                },
                mail,
            )
            .await
    }

    /// Sends a verification link to `user` (already verified: nothing is sent).
    pub async fn start_email_verification(
        &self,
        tenant: &Tenant,
        client: &Client,
        user: &User,
        redirect_uri: Option<String>,
        now: i64,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        if user.email_verified || user.disabled {
            return Ok(());
        }
        self.send_link(
            tenant,
            client,
            user,
            MailKind::VerifyEmail,
            redirect_uri,
            now,
            now_ms,
        )
        .await
    }

    /// The unauthenticated start of a flow by email address: the link goes out only when the
    /// address has an enabled account in the tenant. Reports nothing either way.
    #[allow(clippy::too_many_arguments)]
    pub async fn start_by_email(
        &self,
        tenant: &Tenant,
        client: &Client,
        email: &str,
        kind: MailKind,
        redirect_uri: Option<String>,
        now: i64,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let Some(email) = normalize_email(email) else {
            return Ok(());
        };
        let Some(user) = self.store.find_user_by_email(tenant.id, &email).await? else {
            return Ok(());
        };
        if user.disabled {
            return Ok(());
        }
        match kind {
            MailKind::VerifyEmail => {
                self.start_email_verification(tenant, client, &user, redirect_uri, now, now_ms)
                    .await
            }
            MailKind::PasswordReset => {
                self.send_link(tenant, client, &user, kind, redirect_uri, now, now_ms)
                    .await
            }
        }
    }

    /// Follows a verification link: the address is verified (`user.email_verified`), once.
    pub async fn verify_email(&self, token: &str, origin: &Origin, now: i64) -> Flow<Verified> {
        let event = origin.event(EventType::UserEmailVerified, None, None, now);
        match self
            .store
            .use_verify_token(hash_opaque(token), Some(event), now)
            .await?
        {
            Some(t) => Ok(Outcome::Done(Verified {
                user_id: t.user_id,
                redirect_uri: t.redirect_uri,
            })),
            None => deny!(Denial::EmailTokenInvalid),
        }
    }

    /// Whether a reset token is live now (to refuse a dead link before hashing a password).
    pub async fn reset_token_live(&self, token: &str, now: i64) -> Result<bool, StoreError> {
        Ok(matches!(
            self.store.find_email_token(hash_opaque(token)).await?,
            Some(t) if t.purpose == EmailPurpose::Reset && t.used_at.is_none() && t.expires_at > now
        ))
    }

    /// Sets a new password with a reset link's token, once. In the same transaction every
    /// refresh family and session of the user is revoked, and the address counts as verified
    /// (`user.password_reset`). Cached sessions are marked signed out.
    pub async fn reset_password(
        &self,
        token: &str,
        password: Password,
        origin: &Origin,
        now: i64,
    ) -> Flow<Verified> {
        let live = match self.store.find_email_token(hash_opaque(token)).await? {
            Some(t)
                if t.purpose == EmailPurpose::Reset
                    && t.used_at.is_none()
                    && t.expires_at > now =>
            {
                t
            }
            _ => deny!(Denial::EmailTokenInvalid),
        };
        // The policy of the user's tenant (the server's when it cannot be read).
        let policy = match self.store.find_tenant(&live.tenant_id.to_string()).await? {
            Some(tenant) => crate::password::Policy::of(&tenant.settings.security),
            None => crate::password::Policy::default(),
        };
        if let Err(v) = policy.check(password.expose()) {
            deny!(Denial::WeakPassword(v))
        }
        let phc = match self.pool.hash(password).await {
            Ok(phc) => phc,
            Err(o) => deny!(Denial::Overloaded {
                retry_after: o.retry_after
            }),
        };
        let event = origin.event(EventType::UserPasswordReset, None, None, now);
        let Some(t) = self
            .store
            .use_reset_token(hash_opaque(token), phc, Some(event), now)
            .await?
        else {
            deny!(Denial::EmailTokenInvalid)
        };
        if let Some(cache) = &self.cache {
            let _ = cache
                .revoke_user_sessions(t.user_id, SESSION_CACHE_TTL)
                .await;
        }
        Ok(Outcome::Done(Verified {
            user_id: t.user_id,
            redirect_uri: t.redirect_uri,
        }))
    }
}
