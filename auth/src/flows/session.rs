//! Cookie sessions and the callers behind a request (Bearer token or session cookie).

use super::*;

impl Auth {
    /// Caches a live session for the other instances (and this one).
    pub(super) async fn cache_session(&self, id: &TokenHash, s: &Session, now: i64) {
        let Some(cache) = &self.cache else { return };
        let left = u64::try_from(s.expires_at.saturating_sub(now)).unwrap_or(0);
        let ttl = Duration::from_secs(left).min(SESSION_CACHE_TTL);
        if !ttl.is_zero() {
            let _ = cache.session_put(id, s, ttl).await;
        }
    }

    /// Starts a cookie session after checking the password (`user.login`). `page`: the
    /// hosted sign-in page asks (its challenge, if a factor is due, completes only there).
    #[allow(clippy::too_many_arguments)]
    pub async fn session_login(
        &self,
        tenant: &Tenant,
        client: &Client,
        email: &str,
        password: Password,
        trusted_device: Option<&str>,
        page: bool,
        origin: &Origin,
        now: i64,
    ) -> Flow<SignIn<NewSessionCookie>> {
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
                if page {
                    store::ChallengeKind::Page
                } else {
                    store::ChallengeKind::Session
                },
                trusted_device,
                now,
            )
            .await?
        {
            Outcome::Done(Some(pending)) => return Ok(Outcome::Done(SignIn::MfaRequired(pending))),
            Outcome::Done(None) => {}
            Outcome::Denied(d) => deny!(d),
        }
        let (value, id_hash) = new_opaque_token();
        let session_ttl = self.session_ttl_for(Some(tenant));
        let expires_at = now + secs(session_ttl);
        let event = login_event(
            origin,
            tenant.id,
            user.id,
            &client.client_id,
            "session",
            now,
        );
        self.store
            .create_session(
                NewSession {
                    id_hash,
                    user_id: user.id,
                    tenant_id: tenant.id,
                    client_id: client.client_id.clone(),
                    created_at: now,
                    expires_at,
                    amr: vec!["pwd".to_string()],
                },
                Some(event),
            )
            .await?;
        let session = Session {
            user,
            client_id: client.client_id.clone(),
            created_at: now,
            expires_at,
            revoked_at: None,
            amr: vec!["pwd".to_string()],
        };
        self.cache_session(&id_hash, &session, now).await;
        Ok(Outcome::Done(SignIn::Done(NewSessionCookie {
            value,
            max_age: session_ttl,
        })))
    }

    /// The caller behind a Bearer access token, unless it was revoked.
    pub fn bearer(&self, token: &str, now: i64) -> Result<Caller, TokenError> {
        let claims = self.keys.verify(token, now, &self.issuer)?;
        if self.revocations.is_revoked(&claims.jti) {
            return Err(TokenError::Revoked);
        }
        Ok(Caller { claims })
    }

    /// RFC 7009 for an access token: revokes it by `jti` until its `exp`, when it was issued
    /// to `client` (its audience, in its tenant) and is still good; anything else changes
    /// nothing. Seen here at once, on other instances within their next refresh.
    pub async fn revoke_access_token(
        &self,
        token: &str,
        client: &Client,
        now: i64,
    ) -> Result<(), StoreError> {
        let Ok(claims) = self.keys.verify(token, now, &self.issuer) else {
            return Ok(());
        };
        let owned = claims.aud == client.client_id && claims.tid == client.tenant_id.to_string();
        if !owned || claims.jti.is_empty() {
            return Ok(());
        }
        self.revoke_jti(&claims.jti, client.tenant_id, claims.exp, now)
            .await
    }

    /// Stores the revocation of a token id, then notes it here.
    pub(crate) async fn revoke_jti(
        &self,
        jti: &str,
        tenant_id: Uuid,
        expires_at: i64,
        now: i64,
    ) -> Result<(), StoreError> {
        self.store
            .revoke_access_token(jti, tenant_id, expires_at, now)
            .await?;
        self.revocations.add(jti, expires_at);
        Ok(())
    }

    /// The caller behind a session cookie, as claims shaped like an access token's. With
    /// Redis the session comes from the shared cache when it is there (no database read), and
    /// a sign-out on any instance is seen at once; without Redis, or while it is unreachable,
    /// from the database.
    pub async fn session(&self, cookie: &str, now: i64) -> Flow<(Caller, User)> {
        let id = hash_opaque(cookie);
        if let Some(cache) = &self.cache {
            match cache.session_get(&id).await {
                Ok(Some(CachedSession::Revoked)) => deny!(Denial::SessionExpired),
                Ok(Some(CachedSession::Live(s))) => return Ok(self.session_caller(*s, now)),
                Ok(None) | Err(_) => {}
            }
        }
        let Some(s) = self.store.find_session(id).await? else {
            deny!(Denial::SessionExpired)
        };
        let outcome = self.session_caller(s.clone(), now);
        if matches!(outcome, Outcome::Done(_)) {
            self.cache_session(&id, &s, now).await;
        }
        Ok(outcome)
    }

    fn session_caller(&self, s: Session, now: i64) -> Outcome<(Caller, User)> {
        if s.revoked_at.is_some() || s.expires_at <= now || s.user.disabled {
            return Outcome::Denied(Denial::SessionExpired);
        }
        let claims = AccessClaims {
            iss: self.issuer_for(s.user.tenant_id),
            sub: s.user.id.to_string(),
            aud: s.client_id.clone(),
            iat: s.created_at,
            nbf: s.created_at,
            exp: s.expires_at,
            tid: s.user.tenant_id.to_string(),
            amr: s.amr.clone(),
            scp: String::new(),
            custom: custom_claim(&s.user),
            sid: None,
            jti: String::new(),
            auth_time: Some(s.created_at),
        };
        Outcome::Done((Caller { claims }, s.user))
    }

    /// Signs a cookie session out: in the database (`user.logout`), then in the shared cache,
    /// so every instance refuses the cookie from its next request on.
    pub async fn end_session(
        &self,
        cookie: &str,
        origin: &Origin,
        now: i64,
    ) -> Result<bool, StoreError> {
        let id = hash_opaque(cookie);
        let event = events::with_meta(
            origin.event(EventType::UserLogout, None, None, now),
            "method",
            "session",
        );
        let live = self.store.revoke_session(id, Some(event), now).await?;
        if let Some(cache) = &self.cache {
            let _ = cache.session_revoke(&id, SESSION_CACHE_TTL).await;
        }
        Ok(live)
    }
}
