//! Refresh tokens: rotation with reuse detection, sign-out of one family, sign-out everywhere.

use store::{NextRefresh, RefreshRotation};
use uuid::Uuid;

use super::*;

impl Auth {
    /// Exchanges a refresh token for new tokens (rotation). `tenant`, when the caller named
    /// one, must be the token's tenant. A confidential client must authenticate with its
    /// secret; a public client sends none. A reused token revokes its family
    /// (`token.reuse_detected`).
    ///
    /// `known` is the client `who` names as the caller's cache has it, when the cache knows
    /// exactly one (in `tenant` when one is named, else the only client of that name): the
    /// client is then authenticated first and the token rotated by one store call
    /// ([`Store::rotate_refresh`](store::Tokens::rotate_refresh), one round trip on
    /// PostgreSQL). Otherwise, and whenever that answer may be the cache's fault (a failed
    /// authentication, or an unknown token where no tenant was named: another tenant may have
    /// created a client of that name since), the token is read first and the client with it.
    pub async fn refresh(
        &self,
        who: ClientAuth<'_>,
        known: Option<&Client>,
        refresh_token: &str,
        tenant: Option<&Tenant>,
        origin: &Origin,
        now: i64,
    ) -> Flow<Issued> {
        let old_hash = hash_opaque(refresh_token);
        let known = known
            .filter(|c| c.client_id == who.client_id && tenant.is_none_or(|t| t.id == c.tenant_id))
            .filter(|c| authenticate_client(c, who.secret));
        if let Some(d) = known.and_then(refresh_refusal) {
            deny!(d)
        }
        // A client that requires a verified email takes the path that reads the user before
        // anything is rotated, so that a refusal writes nothing.
        if let Some(client) = known.filter(|c| !c.require_email_verification) {
            // No look at the Redis "family revoked" mark here: it needs the family, which only
            // the rotation reads, and it is a fast path only. A family revoked on any instance
            // is revoked in the database, which refuses the rotation (`Revoked`).
            let (new_token, hash) = new_opaque_token();
            let rotation = RefreshRotation {
                old_hash,
                tenant_id: client.tenant_id,
                client_id: client.client_id.clone(),
                next: NextRefresh {
                    token_hash: hash,
                    issued_at: now,
                    expires_at: now + secs(self.refresh_ttl_for(client)),
                },
                // The store completes the user (actor and target) from the token.
                reuse_event: Some(origin.event(
                    EventType::TokenReuseDetected,
                    Some(client.tenant_id),
                    None,
                    now,
                )),
                now,
            };
            match self.store.rotate_refresh(rotation).await? {
                RotateOutcome::NotFound if tenant.is_none() => {} // nothing written: read it
                outcome => return self.rotated(outcome, client, new_token, now).await,
            }
        }
        self.refresh_by_token(who, old_hash, tenant, origin, now)
            .await
    }

    /// [`Auth::refresh`] without a known client: reads the token (its tenant, family, user),
    /// then the client, then rotates.
    async fn refresh_by_token(
        &self,
        who: ClientAuth<'_>,
        old_hash: TokenHash,
        tenant: Option<&Tenant>,
        origin: &Origin,
        now: i64,
    ) -> Flow<Issued> {
        let client_id = who.client_id;
        let Some(current) = self.store.find_refresh_token(old_hash).await? else {
            deny!(Denial::TokenInvalid)
        };
        if tenant.is_some_and(|t| t.id != current.tenant_id) || current.client_id != client_id {
            deny!(Denial::TokenInvalid)
        }
        if let Some(cache) = &self.cache {
            // Signed out or caught reusing on some instance moments ago: no need to go on.
            if let Ok(true) = cache.family_revoked(current.family_id).await {
                deny!(Denial::TokenInvalid)
            }
        }
        let Some(client) = self.store.find_client(current.tenant_id, client_id).await? else {
            deny!(Denial::TokenInvalid)
        };
        if !authenticate_client(&client, who.secret) {
            deny!(Denial::InvalidClient)
        }
        if let Some(d) = refresh_refusal(&client) {
            deny!(d)
        }
        if client.require_email_verification {
            match self.store.get_user(current.user_id).await? {
                Some(user) if !crate::policy::email_ok(&client, &user) => {
                    deny!(Denial::EmailNotVerified)
                }
                _ => {}
            }
        }
        let (new_token, new) = self.new_refresh(
            current.user_id,
            current.tenant_id,
            &client,
            current.family_id,
            now,
        );
        let reuse = origin.event(
            EventType::TokenReuseDetected,
            Some(current.tenant_id),
            Some(current.user_id),
            now,
        );
        let outcome = self
            .store
            .rotate_refresh_token(old_hash, client_id, new, Some(reuse), now)
            .await?;
        self.rotated(outcome, &client, new_token, now).await
    }

    /// The answer to a rotation's outcome: tokens for `client` (whose successor refresh token
    /// is `new_token`), or the denial.
    async fn rotated(
        &self,
        outcome: RotateOutcome,
        client: &Client,
        new_token: String,
        now: i64,
    ) -> Flow<Issued> {
        match outcome {
            RotateOutcome::Rotated {
                user,
                scopes,
                family_id,
            } => {
                if user.disabled {
                    deny!(Denial::TokenInvalid)
                }
                // A family of the code flow keeps the scopes granted then (never more than
                // the client has now); a password sign-in's family, the client's scopes.
                let scopes: Vec<String> = match scopes {
                    Some(granted) => crate::policy::user_scopes(client)
                        .into_iter()
                        .filter(|s| granted.contains(s))
                        .collect(),
                    None => crate::policy::user_scopes(client),
                };
                let ttl = self.access_ttl_for(Some(client));
                let mut claims = self.access_claims(
                    &user,
                    &client.client_id,
                    &scopes,
                    ttl,
                    now,
                    Some(family_id.to_string()),
                );
                // Nobody signed in now: the token does not count as a recent sign-in.
                claims.auth_time = None;
                Ok(Outcome::Done(Issued {
                    access_token: self.sign_access(client, &claims),
                    user,
                    expires_in: ttl.as_secs(),
                    refresh_token: Some(new_token),
                }))
            }
            RotateOutcome::Reused { family_id, user_id } => {
                tracing::warn!(%family_id, %user_id, "refresh token reuse detected; family revoked");
                if let Some(cache) = &self.cache {
                    let _ = cache.family_revoke(family_id, FAMILY_MARK_TTL).await;
                }
                deny!(Denial::TokenReuse)
            }
            RotateOutcome::NotFound | RotateOutcome::Expired | RotateOutcome::Revoked => {
                deny!(Denial::TokenInvalid)
            }
        }
    }

    /// Revokes the family of a refresh token (`user.logout`) on behalf of `owner`: the token
    /// must have been issued to that user, in that tenant (and to that client when one is
    /// named), else the answer is `Denied(NotOwner)` and nothing changes. Idempotent: an
    /// unknown or already revoked token is done, not an error.
    pub async fn revoke_refresh(
        &self,
        refresh_token: &str,
        owner: &TokenOwner,
        origin: &Origin,
        now: i64,
    ) -> Flow<()> {
        let hash = hash_opaque(refresh_token);
        let Some(token) = self.store.find_refresh_token(hash).await? else {
            return Ok(Outcome::Done(()));
        };
        let owned = token.user_id == owner.user_id
            && token.tenant_id == owner.tenant_id
            && owner
                .client_id
                .as_deref()
                .is_none_or(|c| c == token.client_id);
        if !owned {
            deny!(Denial::NotOwner)
        }
        // Only the token is known here: the store fills in its user and tenant.
        let event = origin.event(EventType::UserLogout, None, None, now);
        let revoked = self
            .store
            .revoke_refresh_family(hash, Some(event), now)
            .await?;
        if let (Some(cache), Some(t)) = (&self.cache, revoked) {
            let _ = cache.family_revoke(t.family_id, FAMILY_MARK_TTL).await;
        }
        Ok(Outcome::Done(()))
    }

    /// RFC 7009 for a refresh token: revokes its family (`user.logout`) when it was issued to
    /// `client`; an unknown token, or one of another client, changes nothing (and says
    /// nothing: the answer is the same).
    pub async fn revoke_for_client(
        &self,
        refresh_token: &str,
        client: &Client,
        origin: &Origin,
        now: i64,
    ) -> Result<(), StoreError> {
        let hash = hash_opaque(refresh_token);
        let Some(token) = self.store.find_refresh_token(hash).await? else {
            return Ok(());
        };
        if token.tenant_id != client.tenant_id || token.client_id != client.client_id {
            return Ok(());
        }
        let event = origin.event(EventType::UserLogout, None, None, now);
        if let Some(t) = self
            .store
            .revoke_refresh_family(hash, Some(event), now)
            .await?
        {
            if let Some(cache) = &self.cache {
                let _ = cache.family_revoke(t.family_id, FAMILY_MARK_TTL).await;
            }
        }
        Ok(())
    }

    /// RFC 7662 for a refresh token: its record when it is active (not rotated, revoked or
    /// expired) and was issued in `client`'s tenant; `None` otherwise.
    pub async fn active_refresh_token(
        &self,
        refresh_token: &str,
        client: &Client,
        now: i64,
    ) -> Result<Option<store::RefreshToken>, StoreError> {
        let found = self
            .store
            .find_refresh_token(hash_opaque(refresh_token))
            .await?;
        Ok(found.filter(|t| {
            t.tenant_id == client.tenant_id
                && t.rotated_at.is_none()
                && t.family_revoked_at.is_none()
                && t.expires_at > now
        }))
    }

    /// Revokes every session and refresh family of a user, and their cached sessions
    /// (`user.logout_all`).
    pub async fn logout_all(
        &self,
        user_id: Uuid,
        tenant_id: Option<Uuid>,
        origin: &Origin,
        now: i64,
    ) -> Result<u64, StoreError> {
        let event = origin.event(EventType::UserLogoutAll, tenant_id, Some(user_id), now);
        let n = self
            .store
            .revoke_all_for_user(user_id, Some(event), now)
            .await?;
        if let Some(cache) = &self.cache {
            let _ = cache.revoke_user_sessions(user_id, SESSION_CACHE_TTL).await;
        }
        Ok(n)
    }
}

/// Why `client` may not use the refresh grant: it lacks it, or it is not a user client.
fn refresh_refusal(client: &Client) -> Option<Denial> {
    (!crate::policy::issues_refresh(client)).then_some(Denial::UnauthorizedClient(
        "this client may not use the refresh_token grant",
    ))
}
