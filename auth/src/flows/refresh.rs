//! Refresh tokens: rotation with reuse detection, sign-out of one family, sign-out everywhere.

use uuid::Uuid;

use super::*;

impl Auth {
    /// Exchanges a refresh token for new tokens (rotation). `tenant`, when the caller named
    /// one, must be the token's tenant. A confidential client must authenticate with its
    /// secret; a public client sends none. A reused token revokes its family
    /// (`token.reuse_detected`).
    pub async fn refresh(
        &self,
        who: ClientAuth<'_>,
        refresh_token: &str,
        tenant: Option<&Tenant>,
        origin: &Origin,
        now: i64,
    ) -> Flow<Issued> {
        let client_id = who.client_id;
        let old_hash = hash_opaque(refresh_token);
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
        match self
            .store
            .rotate_refresh_token(old_hash, client_id, new, Some(reuse), now)
            .await?
        {
            RotateOutcome::Rotated { user, scopes, .. } => {
                if user.disabled {
                    deny!(Denial::TokenInvalid)
                }
                // A family of the code flow keeps the scopes granted then (never more than
                // the client has now); a password sign-in's family, the client's scopes.
                let scopes: Vec<String> = match scopes {
                    Some(granted) => client
                        .scopes
                        .iter()
                        .filter(|s| granted.contains(s))
                        .cloned()
                        .collect(),
                    None => client.scopes.clone(),
                };
                let (access_token, expires_in) = self.access_token(
                    &user,
                    &client,
                    &scopes,
                    self.access_ttl_for(Some(&client)),
                    now,
                    None,
                );
                Ok(Outcome::Done(Issued {
                    user,
                    access_token,
                    expires_in,
                    refresh_token: new_token,
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
    ) -> Result<Option<storage::RefreshToken>, StoreError> {
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
