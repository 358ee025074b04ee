//! Multi-factor authentication: a TOTP factor (RFC 6238) with single-use recovery codes, and
//! the sign-in challenge that a user with a factor must pass after the password.
//!
//! * Enrolment stores a new secret, sealed under the master key, unconfirmed; the first valid
//!   code confirms it (and sets `users.mfa_enabled`) and returns ten recovery codes, stored
//!   only as SHA-256.
//! * A code is accepted once: the store keeps the time step of the last accepted code and
//!   accepts only later steps (one conditional update, so two instances cannot both accept
//!   it).
//! * Wrong codes count against the account (`Limit::FailedSignIn`, keyed by the user, not the
//!   email) and against the challenge (at most [`MAX_CHALLENGE_FAILURES`]).
//! * The `mfa_token` of a challenge is opaque, stored as SHA-256 with its user, tenant, client
//!   and expiry, so any instance can finish it, once.

use crate::limiter::account_subject;
use crate::mfa::{recovery, totp};
use crate::ports::Mailer;
use store::{ChallengeGrant, ChallengeKind, MfaChallenge};

use super::*;

/// Wrong codes a challenge takes before it is dead (a new sign-in starts a new one).
pub const MAX_CHALLENGE_FAILURES: u32 = 5;
/// How recent an MFA sign-in must be for its access token alone to rotate recovery codes.
pub const FRESH_MFA_SECS: i64 = 300;

/// What the account lifecycle needs beyond the sign-in: settings and the master key.
pub struct Lifecycle {
    /// Seals TOTP secrets (the user id as AAD).
    pub master: crate::MasterKey,
    /// The `issuer` of otpauth URLs (what authenticator apps show).
    pub mfa_issuer: String,
    pub totp: totp::TotpParams,
    /// Life of an `mfa_token`.
    pub challenge_ttl: Duration,
    /// Life of a remembered device.
    pub remember_ttl: Duration,
    /// How recent a sign-in must be to enrol a factor (`HELLOJOHN_REAUTH_MAX_AGE`).
    pub reauth_max_age: Duration,
    /// Life of an email-verification link.
    pub verify_ttl: Duration,
    /// Life of a password-reset link.
    pub reset_ttl: Duration,
    /// Renders and seals mails for the outbox.
    pub mailer: Arc<dyn Mailer>,
}

/// A sign-in: done, or waiting for the second factor.
#[derive(Debug)]
pub enum SignIn<T> {
    Done(T),
    MfaRequired(MfaPending),
}

/// A sign-in whose password was right and whose second factor is due.
pub struct MfaPending {
    /// Opaque, single use, secret: it stands for the password just checked.
    pub mfa_token: String,
    pub expires_in: u64,
    pub factors: Vec<&'static str>,
    pub preferred: &'static str,
}

impl std::fmt::Debug for MfaPending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MfaPending")
            .field("mfa_token", &"<redacted>")
            .field("factors", &self.factors)
            .finish()
    }
}

/// A new TOTP secret, for the user's authenticator app.
pub struct Enrollment {
    pub secret_base32: String,
    pub otpauth_url: String,
}

/// What proves the user is at their authenticator (or holds a recovery code).
pub enum SecondFactor {
    Code(String),
    Recovery(String),
}

/// What a finished challenge gives.
pub enum ChallengeDone {
    Tokens(Issued),
    Session(NewSessionCookie),
}

/// A finished challenge, and the remembered-device cookie when one was asked for.
pub struct Passed {
    pub done: ChallengeDone,
    /// The cookie value (secret) and its life.
    pub trusted_device: Option<(String, Duration)>,
}

/// What proves the caller of a sensitive MFA change (disable, new recovery codes).
pub struct Proof {
    pub password: Option<Password>,
    pub factor: Option<SecondFactor>,
}

/// The `amr` of a sign-in with a second factor (RFC 8176: password, one-time password,
/// multiple factors).
pub fn mfa_amr() -> Vec<String> {
    ["pwd", "otp", "mfa"].map(String::from).to_vec()
}

fn mfa_subject(user: &User) -> String {
    account_subject(user.tenant_id, &format!("mfa:{}", user.id))
}

impl Auth {
    pub(super) fn lifecycle(&self) -> Result<&Lifecycle, StoreError> {
        self.lifecycle
            .as_ref()
            .ok_or_else(|| StoreError::Internal("account lifecycle not configured".into()))
    }

    /// After a right password: the sign-in is done, or (the user has a factor and this browser
    /// is not remembered) a challenge is stored and its token returned.
    pub(super) async fn second_factor_due(
        &self,
        user: &User,
        client: &Client,
        kind: ChallengeKind,
        trusted_device: Option<&str>,
        now: i64,
    ) -> Result<Option<MfaPending>, StoreError> {
        if !user.mfa_enabled {
            return Ok(None);
        }
        if let Some(cookie) = trusted_device {
            if self
                .store
                .is_trusted_device(user.id, hash_opaque(cookie), now)
                .await?
            {
                return Ok(None);
            }
        }
        let lc = self.lifecycle()?;
        let (mfa_token, token_hash) = new_opaque_token();
        self.store
            .insert_mfa_challenge(MfaChallenge {
                token_hash,
                user_id: user.id,
                tenant_id: user.tenant_id,
                client_id: client.client_id.clone(),
                kind,
                failures: 0,
                expires_at: now + secs(lc.challenge_ttl),
                completed_at: None,
                created_at: now,
            })
            .await?;
        Ok(Some(MfaPending {
            mfa_token,
            expires_in: lc.challenge_ttl.as_secs(),
            factors: vec!["totp"],
            preferred: "totp",
        }))
    }

    /// Starts (or restarts) TOTP enrolment: a new secret, unconfirmed until a code proves it.
    /// `auth_time`: when the caller signed in; older than
    /// [`Lifecycle::reauth_max_age`] (or unknown: a refreshed token) is
    /// `Denied(ReauthenticationRequired)`, so a stolen or long-lived token cannot bind a factor
    /// of the thief's and lock the user out. `Denied(MfaAlreadyEnabled)` when the user already
    /// has a confirmed factor.
    pub async fn totp_enroll(
        &self,
        user: &User,
        auth_time: Option<i64>,
        now: i64,
    ) -> Flow<Enrollment> {
        let lc = self.lifecycle()?;
        let fresh = auth_time.is_some_and(|t| now.saturating_sub(t) <= secs(lc.reauth_max_age));
        if !fresh {
            deny!(Denial::ReauthenticationRequired)
        }
        let secret = totp::TotpSecret::generate();
        let sealed = lc
            .master
            .encrypt(secret.as_bytes(), user.id.as_bytes())
            .map_err(|e| StoreError::Internal(e.to_string()))?;
        if !self.store.put_totp_secret(user.id, sealed, now).await? {
            deny!(Denial::MfaAlreadyEnabled)
        }
        Ok(Outcome::Done(Enrollment {
            secret_base32: secret.to_base32(),
            otpauth_url: totp::otpauth_url(&secret, &lc.mfa_issuer, &user.email, &lc.totp),
        }))
    }

    /// The user's secret, opened; `None` when there is none (or it was sealed under another
    /// master key, which is logged).
    async fn totp_secret(
        &self,
        user_id: Uuid,
    ) -> Result<Option<(store::TotpFactor, totp::TotpSecret)>, StoreError> {
        let lc = self.lifecycle()?;
        let Some(factor) = self.store.find_totp(user_id).await? else {
            return Ok(None);
        };
        match lc.master.decrypt(&factor.secret_sealed, user_id.as_bytes()) {
            Some(bytes) => {
                let secret = totp::TotpSecret::from_bytes(&bytes);
                Ok(Some((factor, secret)))
            }
            None => {
                tracing::error!(%user_id, "TOTP secret cannot be opened with this master key");
                Ok(None)
            }
        }
    }

    /// Takes one unit of the user's failed-code limit; `Some(denial)` when over it.
    async fn take_code_attempt(&self, user: &User) -> Option<Denial> {
        let decision = self
            .limiter
            .take(Limit::FailedSignIn, &mfa_subject(user))
            .await?;
        (!decision.allowed).then_some(Denial::RateLimited {
            limit: Limit::FailedSignIn,
            decision,
        })
    }

    /// Confirms enrolment with a first code: the factor is on from now, and ten recovery codes
    /// (shown once) replace any earlier ones (`mfa.enabled`). Every other sign-in of the user
    /// (refresh families and cookie sessions but `keep`, the caller's) ends in the same
    /// transaction: they were made without the factor.
    pub async fn totp_confirm(
        &self,
        user: &User,
        code: &str,
        keep: store::KeepSignIn,
        origin: &Origin,
        now: i64,
    ) -> Flow<Vec<String>> {
        let lc = self.lifecycle()?;
        let Some((factor, secret)) = self.totp_secret(user.id).await? else {
            deny!(Denial::MfaNotEnrolled)
        };
        if factor.confirmed_at.is_some() {
            deny!(Denial::MfaAlreadyEnabled)
        }
        if let Some(d) = self.take_code_attempt(user).await {
            deny!(d)
        }
        let Some(step) = totp::verify(&secret, code, now, &lc.totp) else {
            deny!(Denial::InvalidMfaCode)
        };
        self.limiter
            .refund(Limit::FailedSignIn, &mfa_subject(user))
            .await;
        let codes = recovery::generate();
        let hashes = hash_recovery_codes(lc, &codes);
        let event = events::with_meta(
            origin.event(
                EventType::MfaEnabled,
                Some(user.tenant_id),
                Some(user.id),
                now,
            ),
            "factor",
            "totp",
        );
        if !self
            .store
            .confirm_totp(user.id, step, hashes, keep, Some(event), now)
            .await?
        {
            // A concurrent confirmation won.
            deny!(Denial::MfaAlreadyEnabled)
        }
        if let Some(cache) = &self.cache {
            // Cached sessions end too; the caller's is cached again as it stands.
            let _ = cache.revoke_user_sessions(user.id, SESSION_CACHE_TTL).await;
            if let Some(kept) = keep.session {
                if let Some(s) = self.store.find_session(kept).await? {
                    self.cache_session(&kept, &s, now).await;
                }
            }
        }
        Ok(Outcome::Done(codes))
    }

    /// Checks a TOTP code or a recovery code of a user with a confirmed factor, using it up.
    /// `Ok(false)` for a wrong, replayed or used code (counted against the user).
    async fn check_second_factor(
        &self,
        user: &User,
        factor: &SecondFactor,
        now: i64,
    ) -> Result<Result<&'static str, Denial>, StoreError> {
        let lc = self.lifecycle()?;
        if let Some(d) = self.take_code_attempt(user).await {
            return Ok(Err(d));
        }
        let accepted = match factor {
            SecondFactor::Code(code) => match self.totp_secret(user.id).await? {
                Some((f, secret)) if f.confirmed_at.is_some() => {
                    match totp::verify(&secret, code, now, &lc.totp) {
                        Some(step) => self
                            .store
                            .use_totp_step(user.id, step)
                            .await?
                            .then_some("otp"),
                        None => None,
                    }
                }
                _ => return Ok(Err(Denial::MfaNotEnrolled)),
            },
            SecondFactor::Recovery(code) => match recovery::normalize(code) {
                Some(n) => self
                    .store
                    .use_recovery_code(user.id, recovery_hash(lc, &n), now)
                    .await?
                    .then_some("recovery"),
                None => None,
            },
        };
        match accepted {
            Some(how) => {
                self.limiter
                    .refund(Limit::FailedSignIn, &mfa_subject(user))
                    .await;
                Ok(Ok(how))
            }
            None => Ok(Err(Denial::InvalidMfaCode)),
        }
    }

    /// Checks what a sensitive change presents: a TOTP or recovery code, or the password.
    /// `fresh` (the caller's token is from an MFA sign-in of the last five minutes) stands in
    /// for a proof when none is given.
    async fn check_proof(&self, user: &User, proof: Proof, fresh: bool, now: i64) -> Flow<()> {
        if let Some(factor) = &proof.factor {
            return Ok(match self.check_second_factor(user, factor, now).await? {
                Ok(_) => Outcome::Done(()),
                Err(d) => Outcome::Denied(d),
            });
        }
        if let Some(password) = proof.password {
            let tenant = Tenant {
                id: user.tenant_id,
                slug: String::new(),
                name: String::new(),
                created_at: 0,
                settings: Default::default(),
                settings_version: 0,
                issuer_mode: Default::default(),
            };
            let origin = Origin::new(None, None);
            return Ok(
                match self
                    .check_password(&tenant, &user.email, password, &origin, now)
                    .await?
                {
                    Outcome::Done(u) if u.id == user.id => Outcome::Done(()),
                    Outcome::Done(_) => Outcome::Denied(Denial::InvalidCredentials),
                    Outcome::Denied(d) => Outcome::Denied(d),
                },
            );
        }
        if fresh {
            return Ok(Outcome::Done(()));
        }
        Ok(Outcome::Denied(Denial::MfaProofRequired))
    }

    /// Turns the factor off (`mfa.disabled`): the secret, recovery codes, remembered devices
    /// and open challenges go. Needs a code, a recovery code or the password.
    pub async fn totp_disable(
        &self,
        user: &User,
        proof: Proof,
        origin: &Origin,
        now: i64,
    ) -> Flow<()> {
        if self.store.find_totp(user.id).await?.is_none() {
            deny!(Denial::MfaNotEnrolled)
        }
        // An unconfirmed enrolment has nothing to protect: it is dropped without a proof.
        let confirmed = user.mfa_enabled;
        if confirmed {
            if let Outcome::Denied(d) = self.check_proof(user, proof, false, now).await? {
                deny!(d)
            }
        }
        let event = events::with_meta(
            origin.event(
                EventType::MfaDisabled,
                Some(user.tenant_id),
                Some(user.id),
                now,
            ),
            "factor",
            "totp",
        );
        self.store
            .delete_totp(user.id, confirmed.then_some(event), now)
            .await?;
        Ok(Outcome::Done(()))
    }

    /// Ten new recovery codes (shown once); the old ones stop working. Needs a code, a
    /// recovery code or the password, or an access token from an MFA sign-in of the last five
    /// minutes (`fresh`: what the SDK, which sends no body, relies on).
    pub async fn rotate_recovery_codes(
        &self,
        user: &User,
        proof: Proof,
        fresh: bool,
        now: i64,
    ) -> Flow<Vec<String>> {
        let lc = self.lifecycle()?;
        if !user.mfa_enabled {
            deny!(Denial::MfaNotEnrolled)
        }
        if let Outcome::Denied(d) = self.check_proof(user, proof, fresh, now).await? {
            deny!(d)
        }
        let codes = recovery::generate();
        if !self
            .store
            .replace_recovery_codes(user.id, hash_recovery_codes(lc, &codes), now)
            .await?
        {
            deny!(Denial::MfaNotEnrolled)
        }
        Ok(Outcome::Done(codes))
    }

    /// The user's factors: `["totp"]` with a confirmed factor, and how many recovery codes
    /// are left.
    pub async fn mfa_factors(&self, user: &User) -> Result<(Vec<&'static str>, u32), StoreError> {
        if !user.mfa_enabled {
            return Ok((Vec::new(), 0));
        }
        let left = self.store.recovery_codes_left(user.id).await?;
        Ok((vec!["totp"], left))
    }

    /// The second step of a sign-in: the `mfa_token` and a code (or a recovery code) give the
    /// tokens or the cookie session the first step would have given, with `amr` `pwd otp mfa`
    /// (`user.login`, `method` `mfa`). The token names its tenant: nothing else is needed.
    ///
    /// `allow_session`: whether a challenge that ends in a cookie session may finish here (a
    /// cross-site request must not sign a browser in: login CSRF). `page`: the hosted sign-in
    /// page asks, which completes only the challenges it started, and the API none of those.
    #[allow(clippy::too_many_arguments)]
    pub async fn mfa_challenge(
        &self,
        mfa_token: &str,
        factor: SecondFactor,
        allow_session: bool,
        page: bool,
        remember_device: bool,
        origin: &Origin,
        now: i64,
    ) -> Flow<Passed> {
        let lc = self.lifecycle()?;
        let token_hash = hash_opaque(mfa_token);
        let Some(challenge) = self.store.find_mfa_challenge(token_hash).await? else {
            deny!(Denial::MfaTokenInvalid)
        };
        if challenge.completed_at.is_some()
            || challenge.expires_at <= now
            || challenge.failures >= MAX_CHALLENGE_FAILURES
            || (challenge.kind == ChallengeKind::Session && !allow_session)
            || ((challenge.kind == ChallengeKind::Page) != page)
        {
            deny!(Denial::MfaTokenInvalid)
        }
        let Some(user) = self.store.get_user(challenge.user_id).await? else {
            deny!(Denial::MfaTokenInvalid)
        };
        if user.disabled || user.tenant_id != challenge.tenant_id {
            deny!(Denial::MfaTokenInvalid)
        }
        let Some(client) = self
            .store
            .find_client(challenge.tenant_id, &challenge.client_id)
            .await?
        else {
            deny!(Denial::MfaTokenInvalid)
        };
        let how = match self.check_second_factor(&user, &factor, now).await? {
            Ok(how) => how,
            Err(d) => {
                if d == Denial::InvalidMfaCode {
                    self.store.fail_mfa_challenge(token_hash).await?;
                }
                deny!(d)
            }
        };
        let mut event = login_event(
            origin,
            user.tenant_id,
            user.id,
            &client.client_id,
            "mfa",
            now,
        );
        event.metadata.insert("amr", mfa_amr().join(" ").as_str());
        event.metadata.insert("factor", how);
        let trusted = remember_device.then(|| {
            let (value, hash) = new_opaque_token();
            (value, hash, now + secs(lc.remember_ttl))
        });
        let mut grant = ChallengeGrant {
            trusted_device: trusted.as_ref().map(|(_, h, exp)| (*h, *exp)),
            event: Some(event),
            ..ChallengeGrant::default()
        };
        let done = match challenge.kind {
            ChallengeKind::Tokens => {
                let family_id = Uuid::now_v7();
                let (refresh_token, refresh) =
                    self.new_refresh_if_allowed(user.id, user.tenant_id, &client, family_id, now);
                grant.refresh = refresh;
                let mut claims = self.access_claims(
                    &user,
                    &client.client_id,
                    &crate::policy::user_scopes(&client),
                    self.access_ttl_for(Some(&client)),
                    now,
                    refresh_token.is_some().then(|| family_id.to_string()),
                );
                claims.amr = mfa_amr();
                let access_token = self.sign_access(&client, &claims);
                ChallengeDone::Tokens(Issued {
                    expires_in: self.access_ttl_for(Some(&client)).as_secs(),
                    user: user.clone(),
                    access_token,
                    refresh_token,
                })
            }
            ChallengeKind::Session | ChallengeKind::Page => {
                let tenant = self.store.find_tenant(&user.tenant_id.to_string()).await?;
                let session_ttl = self.session_ttl_for(tenant.as_ref());
                let (value, id_hash) = new_opaque_token();
                grant.session = Some(NewSession {
                    id_hash,
                    user_id: user.id,
                    tenant_id: user.tenant_id,
                    client_id: client.client_id.clone(),
                    created_at: now,
                    expires_at: now + secs(session_ttl),
                    amr: mfa_amr(),
                });
                ChallengeDone::Session(NewSessionCookie {
                    value,
                    max_age: session_ttl,
                })
            }
        };
        if !self
            .store
            .complete_mfa_challenge(token_hash, MAX_CHALLENGE_FAILURES, grant, now)
            .await?
        {
            // Completed by a concurrent request (or it expired meanwhile): nothing was issued.
            deny!(Denial::MfaTokenInvalid)
        }
        Ok(Outcome::Done(Passed {
            done,
            trusted_device: trusted.map(|(value, _, _)| (value, lc.remember_ttl)),
        }))
    }
}

/// The stored form of a recovery code: HMAC-SHA256 under a key derived from the master key.
/// A code holds 50 bits, few enough to brute-force a plain hash of a leaked table; keyed, the
/// table alone is useless.
fn recovery_hash(lc: &Lifecycle, normalized: &str) -> TokenHash {
    use hmac::{Hmac, Mac as _};
    let key = zeroize::Zeroizing::new(lc.master.derive("hellojohn/mfa-recovery/v1"));
    let mut mac = <Hmac<sha2::Sha256> as hmac::digest::KeyInit>::new_from_slice(key.as_ref())
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(normalized.as_bytes());
    mac.finalize().into_bytes().into()
}

fn hash_recovery_codes(lc: &Lifecycle, codes: &[String]) -> Vec<TokenHash> {
    codes
        .iter()
        .filter_map(|c| recovery::normalize(c))
        .map(|n| recovery_hash(lc, &n))
        .collect()
}
