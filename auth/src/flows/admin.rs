//! Admin sign-in: the operators of the admin API and its console. Admins are no tenant's users:
//! their own accounts (`store::Admins`), their own tokens (`typ: hj-admin+jwt`, audience
//! `hellojohn-admin`, signed by the global keys), and the same defences as a user's sign-in:
//! Argon2 in the hash pool, a dummy hash for an unknown email, the failed-sign-in limit per
//! account, one answer for every failure, a TOTP second step, and refresh-token rotation with
//! reuse detection. Every sign-in, failure and reuse is in the audit log.

use std::time::Duration;

use protocol::token::{AdminClaims, ADMIN_AUDIENCE};
use store::{AdminAccount, AdminRefresh, AuditEntry, EventMeta, StoreError};
use uuid::Uuid;

use super::{normalize_email, Auth, Denial, Flow, Outcome};
use crate::events::Origin;
use crate::limiter::Limit;
use crate::password::Password;
use crate::password::Verification;
use crate::tokens::{hash_opaque, new_jti, new_opaque_token};

/// How long an admin access token lives.
pub const ADMIN_ACCESS_TTL: Duration = Duration::from_secs(15 * 60);
/// How long an admin refresh token lives.
pub const ADMIN_REFRESH_TTL: Duration = Duration::from_secs(12 * 3600);
/// How long the second step of a sign-in may wait for its code.
pub const ADMIN_MFA_TTL: i64 = 300;
/// The `typ` of the second step's token: neither an access token nor a user's challenge.
const TYP_ADMIN_MFA: &str = "hj-admin-mfa+jwt";

/// Tokens of an admin sign-in or refresh.
pub struct AdminTokens {
    pub admin: AdminAccount,
    pub access_token: String,
    pub expires_in: i64,
    pub refresh_token: String,
}

/// What a right password leads to.
pub enum AdminSignIn {
    Tokens(AdminTokens),
    /// The account has a TOTP factor: the code comes with `mfa_token` to
    /// [`Auth::admin_login_mfa`].
    MfaRequired {
        mfa_token: String,
    },
}

/// The second step's token: who passed the password, until when.
#[derive(serde::Serialize, serde::Deserialize)]
struct MfaClaims {
    iss: String,
    sub: String,
    aud: String,
    iat: i64,
    exp: i64,
}

/// The associated data a sealed admin TOTP secret is bound to.
fn totp_aad(admin_id: Uuid) -> Vec<u8> {
    let mut aad = b"admin:".to_vec();
    aad.extend_from_slice(admin_id.as_bytes());
    aad
}

/// A new TOTP factor of an admin: the secret to show once, as text and as an otpauth URL.
pub struct AdminEnrollment {
    pub secret_base32: String,
    pub otpauth_url: String,
}

/// The audit entry of an admin's own act (sign-in, refresh reuse).
pub fn admin_audit(
    action: &str,
    admin: Option<&AdminAccount>,
    origin: &Origin,
    now: i64,
) -> AuditEntry {
    let mut metadata = EventMeta::new();
    if let Some(id) = &origin.request_id {
        metadata.insert("request_id", id.as_str());
    }
    AuditEntry {
        id: Uuid::now_v7(),
        tenant_id: None,
        action: action.to_string(),
        actor_type: "admin".to_string(),
        actor_id: admin.map(|a| a.id.to_string()),
        actor_name: admin.map(|a| a.email.clone()),
        target_type: Some("admin".to_string()),
        target_id: admin.map(|a| a.id.to_string()),
        ip_address: origin.ip.map(|ip| ip.to_canonical().to_string()),
        user_agent: origin.user_agent.clone(),
        request_id: origin.request_id.clone(),
        metadata,
        result: "success".to_string(),
        created_at: now,
    }
}

fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

impl Auth {
    /// Hashes a new admin password in the hash pool (never on an event loop).
    pub async fn hash_admin_password(&self, password: Password) -> Flow<String> {
        match self.pool.hash(password).await {
            Ok(phc) => Ok(Outcome::Done(phc)),
            Err(o) => Ok(Outcome::Denied(Denial::Overloaded {
                retry_after: o.retry_after,
            })),
        }
    }

    /// An admin access token for `admin`, with `amr`.
    pub fn admin_access_token(
        &self,
        admin: &AdminAccount,
        amr: &[&str],
        now: i64,
    ) -> (String, i64) {
        let ttl = secs(ADMIN_ACCESS_TTL);
        let claims = AdminClaims {
            iss: self.issuer.clone(),
            sub: admin.id.to_string(),
            aud: ADMIN_AUDIENCE.to_string(),
            iat: now,
            exp: now + ttl,
            jti: new_jti(),
            email: admin.email.clone(),
            scope: admin.scope.clone(),
            amr: amr.iter().map(|a| a.to_string()).collect(),
        };
        (self.keys.sign_admin(&claims), ttl)
    }

    /// Email and password. Every failure (unknown email, wrong password, disabled account) is
    /// the same `InvalidCredentials` after one real verification, and is audited.
    pub async fn admin_login(
        &self,
        email: &str,
        password: Password,
        origin: &Origin,
        now: i64,
    ) -> Flow<AdminSignIn> {
        let reservation = match self.pool.reserve() {
            Ok(r) => r,
            Err(o) => {
                return Ok(Outcome::Denied(Denial::Overloaded {
                    retry_after: o.retry_after,
                }))
            }
        };
        let normalized = normalize_email(email);
        let subject = format!(
            "admin:{}",
            normalized.as_deref().unwrap_or(email.trim()).to_lowercase()
        );
        if let Some(d) = self.limiter.take(Limit::FailedSignIn, &subject).await {
            if !d.allowed {
                return Ok(Outcome::Denied(Denial::RateLimited {
                    limit: Limit::FailedSignIn,
                    decision: d,
                }));
            }
        }
        let login = match normalized.as_deref() {
            Some(e) => match self.store.find_admin_login(e).await {
                Ok(l) => l,
                Err(err) => {
                    self.limiter.refund(Limit::FailedSignIn, &subject).await;
                    return Err(err);
                }
            },
            None => None,
        };
        let phc = login
            .as_ref()
            .map(|l| l.password_hash.clone())
            .unwrap_or_else(|| self.pool.dummy_phc().to_string());
        let verification = match reservation.verify(password, phc).await {
            Ok(v) => v,
            Err(o) => {
                self.limiter.refund(Limit::FailedSignIn, &subject).await;
                return Ok(Outcome::Denied(Denial::Overloaded {
                    retry_after: o.retry_after,
                }));
            }
        };
        let admin = match (login, verification) {
            (Some(l), Verification::Match { .. }) if l.admin.disabled_at.is_none() => l.admin,
            (login, _) => {
                let admin = login.map(|l| l.admin);
                let mut entry = admin_audit("admin.login_failed", admin.as_ref(), origin, now);
                entry.result = "failure".to_string();
                if admin.is_none() {
                    // Who was tried, for the operator (the email as typed, bounded).
                    let tried: String = email.trim().chars().take(254).collect();
                    entry.metadata.insert("email", tried);
                }
                if let Err(e) = self.store.record_audit(entry).await {
                    tracing::warn!(error = %e, "admin sign-in failure not audited");
                }
                return Ok(Outcome::Denied(Denial::InvalidCredentials));
            }
        };
        self.limiter.refund(Limit::FailedSignIn, &subject).await;
        if admin.mfa_enabled {
            let claims = MfaClaims {
                iss: self.issuer.clone(),
                sub: admin.id.to_string(),
                aud: ADMIN_AUDIENCE.to_string(),
                iat: now,
                exp: now + ADMIN_MFA_TTL,
            };
            let mfa_token = self.keys.sign_typed(TYP_ADMIN_MFA, &claims, now);
            return Ok(Outcome::Done(AdminSignIn::MfaRequired { mfa_token }));
        }
        Ok(
            match self.admin_tokens(admin, &["pwd"], origin, now).await? {
                Outcome::Done(t) => Outcome::Done(AdminSignIn::Tokens(t)),
                Outcome::Denied(d) => Outcome::Denied(d),
            },
        )
    }

    /// The second step: the `mfa_token` of [`Auth::admin_login`] and a TOTP code.
    pub async fn admin_login_mfa(
        &self,
        mfa_token: &str,
        code: &str,
        origin: &Origin,
        now: i64,
    ) -> Flow<AdminTokens> {
        let Ok(claims) = self
            .keys
            .verify_typed::<MfaClaims>(mfa_token, now, TYP_ADMIN_MFA)
        else {
            return Ok(Outcome::Denied(Denial::MfaTokenInvalid));
        };
        let fresh = claims.aud == ADMIN_AUDIENCE && claims.iss == self.issuer && now < claims.exp;
        let Some(id) = Uuid::parse_str(&claims.sub).ok().filter(|_| fresh) else {
            return Ok(Outcome::Denied(Denial::MfaTokenInvalid));
        };
        let subject = format!("admin-mfa:{id}");
        if let Some(d) = self.limiter.take(Limit::FailedSignIn, &subject).await {
            if !d.allowed {
                return Ok(Outcome::Denied(Denial::RateLimited {
                    limit: Limit::FailedSignIn,
                    decision: d,
                }));
            }
        }
        let Some(admin) = self.store.get_admin(id).await? else {
            return Ok(Outcome::Denied(Denial::MfaTokenInvalid));
        };
        if admin.disabled_at.is_some() {
            return Ok(Outcome::Denied(Denial::MfaTokenInvalid));
        }
        match self.check_admin_totp(&admin, code, now).await? {
            true => {
                self.limiter.refund(Limit::FailedSignIn, &subject).await;
                self.admin_tokens(admin, &["pwd", "otp"], origin, now).await
            }
            false => {
                let mut entry = admin_audit("admin.mfa_failed", Some(&admin), origin, now);
                entry.result = "failure".to_string();
                if let Err(e) = self.store.record_audit(entry).await {
                    tracing::warn!(error = %e, "admin MFA failure not audited");
                }
                Ok(Outcome::Denied(Denial::InvalidMfaCode))
            }
        }
    }

    /// Whether `code` is the admin's current TOTP code, not used before (the factor must be
    /// confirmed). A confirmed use moves the last accepted step.
    pub async fn check_admin_totp(
        &self,
        admin: &AdminAccount,
        code: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        let Some(factor) = self.store.find_admin_totp(admin.id).await? else {
            return Ok(false);
        };
        if factor.confirmed_at.is_none() {
            return Ok(false);
        }
        let Some(step) = self.admin_totp_step(admin.id, &factor.secret_sealed, code, now) else {
            return Ok(false);
        };
        self.store.use_admin_totp(admin.id, step, now, None).await
    }

    /// The time step `code` matches for a sealed secret of `admin_id`, if any.
    pub fn admin_totp_step(
        &self,
        admin_id: Uuid,
        sealed: &[u8],
        code: &str,
        now: i64,
    ) -> Option<i64> {
        let lc = self.lifecycle.as_ref()?;
        let Some(bytes) = lc.master.decrypt(sealed, &totp_aad(admin_id)) else {
            tracing::error!(%admin_id, "admin TOTP secret cannot be opened with this master key");
            return None;
        };
        let secret = crate::mfa::totp::TotpSecret::from_bytes(&bytes);
        crate::mfa::totp::verify(&secret, code, now, &lc.totp)
    }

    /// Starts a TOTP enrolment: a new secret, sealed, unconfirmed until
    /// [`Auth::admin_totp_confirm`]. `MfaAlreadyEnabled` when a factor is confirmed.
    pub async fn admin_totp_enroll(&self, admin: &AdminAccount, now: i64) -> Flow<AdminEnrollment> {
        let Some(lc) = self.lifecycle.as_ref() else {
            return Err(StoreError::Internal("MFA is not set up".into()));
        };
        let secret = crate::mfa::totp::TotpSecret::generate();
        let sealed = lc
            .master
            .encrypt(secret.as_bytes(), &totp_aad(admin.id))
            .map_err(|e| StoreError::Internal(e.to_string()))?;
        match self.store.put_admin_totp(admin.id, sealed, now).await {
            Ok(()) => {}
            Err(StoreError::Conflict(_)) => return Ok(Outcome::Denied(Denial::MfaAlreadyEnabled)),
            Err(e) => return Err(e),
        }
        Ok(Outcome::Done(AdminEnrollment {
            secret_base32: secret.to_base32(),
            otpauth_url: crate::mfa::totp::otpauth_url(
                &secret,
                &lc.mfa_issuer,
                &admin.email,
                &lc.totp,
            ),
        }))
    }

    /// Confirms an enrolment with its first code (the factor guards sign-ins from now on).
    pub async fn admin_totp_confirm(
        &self,
        admin: &AdminAccount,
        code: &str,
        audit: AuditEntry,
        now: i64,
    ) -> Flow<()> {
        let Some(factor) = self.store.find_admin_totp(admin.id).await? else {
            return Ok(Outcome::Denied(Denial::MfaNotEnrolled));
        };
        if factor.confirmed_at.is_some() {
            return Ok(Outcome::Denied(Denial::MfaAlreadyEnabled));
        }
        let step = self.admin_totp_step(admin.id, &factor.secret_sealed, code, now);
        match step {
            Some(step)
                if self
                    .store
                    .use_admin_totp(admin.id, step, now, Some(audit))
                    .await? =>
            {
                Ok(Outcome::Done(()))
            }
            _ => Ok(Outcome::Denied(Denial::InvalidMfaCode)),
        }
    }

    /// Tokens for an admin who passed the sign-in, with its audit entry.
    async fn admin_tokens(
        &self,
        admin: AdminAccount,
        amr: &[&str],
        origin: &Origin,
        now: i64,
    ) -> Flow<AdminTokens> {
        let (refresh_token, hash) = new_opaque_token();
        let mut entry = admin_audit("admin.login", Some(&admin), origin, now);
        entry.metadata.insert("amr", amr.join(" "));
        self.store
            .insert_admin_refresh(hash, admin.id, now, now + secs(ADMIN_REFRESH_TTL), entry)
            .await?;
        let (access_token, expires_in) = self.admin_access_token(&admin, amr, now);
        Ok(Outcome::Done(AdminTokens {
            admin,
            access_token,
            expires_in,
            refresh_token,
        }))
    }

    /// Rotates an admin refresh token. A replay revokes every refresh token of the account
    /// (audited as `admin.token_reuse_detected`).
    pub async fn admin_refresh(
        &self,
        refresh_token: &str,
        origin: &Origin,
        now: i64,
    ) -> Flow<AdminTokens> {
        let (new_token, new_hash) = new_opaque_token();
        let outcome = self
            .store
            .rotate_admin_refresh(
                hash_opaque(refresh_token),
                new_hash,
                now,
                now + secs(ADMIN_REFRESH_TTL),
            )
            .await?;
        match outcome {
            AdminRefresh::Rotated(admin) => {
                let (access_token, expires_in) = self.admin_access_token(&admin, &["pwd"], now);
                Ok(Outcome::Done(AdminTokens {
                    admin,
                    access_token,
                    expires_in,
                    refresh_token: new_token,
                }))
            }
            AdminRefresh::Invalid => Ok(Outcome::Denied(Denial::TokenInvalid)),
            AdminRefresh::Reused => {
                let mut entry = admin_audit("admin.token_reuse_detected", None, origin, now);
                entry.result = "failure".to_string();
                if let Err(e) = self.store.record_audit(entry).await {
                    tracing::warn!(error = %e, "admin token reuse not audited");
                }
                Ok(Outcome::Denied(Denial::TokenReuse))
            }
        }
    }
}
