//! Password flows: sign-up, the password check every sign-in shares, and sign-in.

use uuid::Uuid;

use super::*;

impl Auth {
    /// Registers a user with a password and signs them in (`user.register`). The caller has
    /// checked [`crate::policy::password_sign_in`]. A client that requires a verified email
    /// gets no tokens: the user exists, unverified ([`Registered::PendingVerification`]).
    pub async fn register(
        &self,
        tenant: &Tenant,
        client: &Client,
        r: Registration,
        origin: &Origin,
        now: i64,
    ) -> Flow<Registered> {
        let Registration {
            email,
            password,
            name,
            custom_fields,
        } = r;
        let Some(email) = normalize_email(&email) else {
            deny!(Denial::InvalidEmail)
        };
        if let Err(v) =
            crate::password::Policy::of(&tenant.settings.security).check(password.expose())
        {
            deny!(Denial::WeakPassword(v))
        }
        // The hash runs before the uniqueness check, so a taken email costs the same as a new
        // one and registration does not reveal which emails exist by its timing.
        let phc = match self.pool.hash(password).await {
            Ok(phc) => phc,
            Err(o) => deny!(Denial::Overloaded {
                retry_after: o.retry_after
            }),
        };
        let user_id = Uuid::now_v7();
        // A new address is never verified: a client that requires it gets no tokens yet.
        let pending = client.require_email_verification;
        let family_id = Uuid::now_v7();
        let (refresh_token, refresh) = if pending {
            (None, None)
        } else {
            self.new_refresh_if_allowed(user_id, tenant.id, client, family_id, now)
        };
        let new_user = NewUser {
            id: user_id,
            tenant_id: tenant.id,
            email,
            name,
            custom_fields,
        };
        let event = events::with_meta(
            origin.event(EventType::UserRegister, Some(tenant.id), Some(user_id), now),
            "client_id",
            &client.client_id,
        );
        let user = match self
            .store
            .register_user(new_user, phc, refresh, Some(event), now)
            .await
        {
            Ok(u) => u,
            Err(StoreError::Conflict(_)) => deny!(Denial::EmailTaken),
            Err(e) => return Err(e),
        };
        if pending {
            return Ok(Outcome::Done(Registered::PendingVerification(user)));
        }
        let (access_token, expires_in) = self.access_token(
            &user,
            client,
            &crate::policy::user_scopes(client),
            self.access_ttl_for(Some(client)),
            now,
            refresh_token.is_some().then(|| family_id.to_string()),
        );
        Ok(Outcome::Done(Registered::Tokens(Issued {
            user,
            access_token,
            expires_in,
            refresh_token,
        })))
    }

    /// `Some(Denial::Overloaded)` when the hash pool would refuse a hash now
    /// ([`HashPool::check`]): a sign-in or sign-up is then refused before it is parsed or its
    /// tenant looked up. Takes no place in the pool.
    pub fn shed(&self) -> Option<Denial> {
        self.pool.check().err().map(|o| Denial::Overloaded {
            retry_after: o.retry_after,
        })
    }

    /// Checks email and password. An unknown email is verified against a dummy hash, so it
    /// costs one real verification, exactly like a wrong password.
    ///
    /// Every attempt takes one unit of the account's failed-sign-in limit before the store or
    /// the hash is asked (an account over its limit is refused there, with no hash), and a
    /// success gives it back. Every failed verification is recorded as a
    /// `user.login_failed` event (refusals before any verification are not: they cost nothing
    /// and must stay cheap under attack).
    pub async fn check_password(
        &self,
        tenant: &Tenant,
        email: &str,
        password: Password,
        origin: &Origin,
        now: i64,
    ) -> Flow<User> {
        // Admission first, before any database or Redis work: a flood is refused at once, and
        // only requests that will really be hashed spend a database round trip.
        let reservation = match self.pool.reserve() {
            Ok(r) => r,
            Err(o) => deny!(Denial::Overloaded {
                retry_after: o.retry_after
            }),
        };
        let normalized = normalize_email(email);
        let account = account_subject(
            tenant.id,
            normalized
                .as_deref()
                .unwrap_or(email.trim().to_lowercase().as_str()),
        );
        // The attempt is counted before the hash, atomically (one GCRA step, in Redis when
        // configured), so concurrent guesses cannot all pass a look taken before any of them
        // failed: at most the burst of attempts per account is ever hashed. A success gives
        // the unit back below, so only failures use up the limit.
        let taken = self.limiter.take(Limit::FailedSignIn, &account).await;
        if let Some(decision) = taken {
            if !decision.allowed {
                deny!(Denial::RateLimited {
                    limit: Limit::FailedSignIn,
                    decision
                })
            }
        }
        let login = match normalized.as_deref() {
            Some(e) => match self.store.find_password_login(tenant.id, e).await {
                Ok(login) => login,
                Err(err) => {
                    // Nothing was tried: the store fault must not cost the account an attempt.
                    self.limiter.refund(Limit::FailedSignIn, &account).await;
                    return Err(err);
                }
            },
            None => None,
        };
        let phc = login
            .as_ref()
            .map(|l| l.password_hash.clone())
            .unwrap_or_else(|| self.pool.dummy_phc().to_string());
        // Kept for the rehash below; dropped (and wiped) when this function returns.
        let retained = Password::new(password.expose());
        let verification = match reservation.verify(password, phc).await {
            Ok(v) => v,
            Err(o) => {
                self.limiter.refund(Limit::FailedSignIn, &account).await;
                deny!(Denial::Overloaded {
                    retry_after: o.retry_after
                })
            }
        };
        let (login, needs_rehash) = match (login, verification) {
            (Some(l), Verification::Match { needs_rehash }) if !l.user.disabled => {
                self.limiter.refund(Limit::FailedSignIn, &account).await;
                (l, needs_rehash)
            }
            // Unknown email, wrong password or disabled user: the failure taken above stands.
            (login, verification) => {
                let reason = match (&login, verification) {
                    (None, _) => "unknown_user",
                    (Some(l), Verification::Match { .. }) if l.user.disabled => "user_disabled",
                    _ => "invalid_password",
                };
                let user = login.as_ref().map(|l| l.user.id);
                self.login_failed(tenant, user, normalized.as_deref(), reason, origin, now)
                    .await;
                if taken.is_some_and(|d| d.remaining == 0) {
                    // This failure used up the account's limit: one lockout event, not one
                    // per refused attempt after it (those cost nothing, and write nothing).
                    self.locked(tenant, user, normalized.as_deref(), origin, now)
                        .await;
                }
                deny!(Denial::InvalidCredentials)
            }
        };
        if needs_rehash {
            self.upgrade_hash(&login.user, &login.password_hash, retained)
                .await;
        }
        Ok(Outcome::Done(login.user))
    }

    /// Records a failed sign-in. Best effort: the denial stands when the store cannot write it.
    async fn login_failed(
        &self,
        tenant: &Tenant,
        user: Option<Uuid>,
        email: Option<&str>,
        reason: &str,
        origin: &Origin,
        now: i64,
    ) {
        let mut event = events::with_meta(
            events::failed(origin.event(EventType::UserLoginFailed, Some(tenant.id), None, now)),
            "reason",
            reason,
        );
        // The account that was tried is the target; nobody is authenticated as an actor.
        event.target_id = user;
        event.target_type = user.map(|_| "user".to_string());
        if let Some(email) = email {
            event = events::with_meta(event, "email", email);
        }
        if let Err(e) = self.store.record_event(event).await {
            tracing::warn!(error = %e, "user.login_failed event not stored");
        }
    }

    /// Records that an account reached its failed-sign-in limit. Best effort, like
    /// [`Self::login_failed`].
    async fn locked(
        &self,
        tenant: &Tenant,
        user: Option<Uuid>,
        email: Option<&str>,
        origin: &Origin,
        now: i64,
    ) {
        let mut event = origin.event(EventType::UserLocked, Some(tenant.id), None, now);
        event.target_id = user;
        event.target_type = user.map(|_| "user".to_string());
        if let Some(email) = email {
            event = events::with_meta(event, "email", email);
        }
        if let Err(e) = self.store.record_event(event).await {
            tracing::warn!(error = %e, "user.locked event not stored");
        }
    }

    /// Re-hashes a password made with old parameters. Best effort: a full pool or a failed
    /// write leaves the old (still valid) hash for the next sign-in.
    async fn upgrade_hash(&self, user: &User, old: &str, password: Password) {
        match self.pool.hash(password).await {
            Ok(new) => match self.store.upgrade_password_hash(user.id, old, &new).await {
                Ok(_) => {
                    tracing::info!(user_id = %user.id, "password hash upgraded to current parameters")
                }
                Err(e) => {
                    tracing::warn!(user_id = %user.id, error = %e, "password hash upgrade not stored")
                }
            },
            Err(_) => {
                tracing::debug!(user_id = %user.id, "hash pool full; password hash upgrade deferred")
            }
        }
    }

    /// After a right password: refused when the client requires a verified email and the
    /// user's is not; a challenge when a second factor is due.
    pub(super) async fn after_password(
        &self,
        user: &User,
        client: &Client,
        kind: store::ChallengeKind,
        trusted_device: Option<&str>,
        now: i64,
    ) -> Flow<Option<MfaPending>> {
        if !crate::policy::email_ok(client, user) {
            deny!(Denial::EmailNotVerified)
        }
        Ok(Outcome::Done(
            self.second_factor_due(user, client, kind, trusted_device, now)
                .await?,
        ))
    }

    /// Password sign-in: tokens for a new refresh family (`user.login`), or a challenge for
    /// the second factor. `trusted_device`: the remembered-device cookie, if the browser sent
    /// one.
    #[allow(clippy::too_many_arguments)]
    pub async fn login(
        &self,
        tenant: &Tenant,
        client: &Client,
        email: &str,
        password: Password,
        trusted_device: Option<&str>,
        origin: &Origin,
        now: i64,
    ) -> Flow<SignIn<Issued>> {
        let user = match self
            .check_password(tenant, email, password, origin, now)
            .await?
        {
            Outcome::Done(u) => u,
            Outcome::Denied(d) => deny!(d),
        };
        match self
            .after_password(
                &user,
                client,
                store::ChallengeKind::Tokens,
                trusted_device,
                now,
            )
            .await?
        {
            Outcome::Done(Some(pending)) => return Ok(Outcome::Done(SignIn::MfaRequired(pending))),
            Outcome::Done(None) => {}
            Outcome::Denied(d) => deny!(d),
        }
        let family_id = Uuid::now_v7();
        let (refresh_token, refresh) =
            self.new_refresh_if_allowed(user.id, tenant.id, client, family_id, now);
        let event = login_event(
            origin,
            tenant.id,
            user.id,
            &client.client_id,
            "password",
            now,
        );
        match refresh {
            Some(refresh) => {
                self.store
                    .insert_refresh_token(refresh, Some(event))
                    .await?
            }
            None => {
                self.store.record_event(event).await?;
            }
        }
        let ttl = self.access_ttl_for(Some(client));
        // `amr` is `pwd` also on a remembered device: no second factor was presented now, so
        // the token must not claim one (nor count as a fresh MFA sign-in).
        let claims = self.access_claims(
            &user,
            &client.client_id,
            &crate::policy::user_scopes(client),
            ttl,
            now,
            refresh_token.is_some().then(|| family_id.to_string()),
        );
        let access_token = self.sign_access(client, &claims);
        Ok(Outcome::Done(SignIn::Done(Issued {
            user,
            access_token,
            expires_in: ttl.as_secs(),
            refresh_token,
        })))
    }
}
