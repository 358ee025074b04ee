//! The auth domain's ports (`auth::ports`) over the Redis client: the engine owns Redis, the
//! domain sees two small traits. Errors were already counted and logged by the client
//! (`hellojohn_redis_fallbacks_total`); the domain only learns that the cache is unavailable.

use std::time::Duration;

use auth::ports::{SessionCache, SharedLimiter, SharedStep, Unavailable};
use futures_util::future::BoxFuture;
use storage::redis::Redis;
use store::{CachedSession, Session, TokenHash};
use uuid::Uuid;

/// Redis as the domain's session cache and shared limiter.
pub struct RedisPorts(pub Redis);

impl SessionCache for RedisPorts {
    fn session_get<'a>(
        &'a self,
        id: &'a TokenHash,
    ) -> BoxFuture<'a, Result<Option<CachedSession>, Unavailable>> {
        Box::pin(async move { self.0.session_get(id).await.map_err(|_| Unavailable) })
    }

    fn session_put<'a>(
        &'a self,
        id: &'a TokenHash,
        session: &'a Session,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<(), Unavailable>> {
        Box::pin(async move {
            self.0
                .session_put(id, session, ttl)
                .await
                .map_err(|_| Unavailable)
        })
    }

    fn session_revoke<'a>(
        &'a self,
        id: &'a TokenHash,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<(), Unavailable>> {
        Box::pin(async move {
            self.0
                .session_revoke(id, ttl)
                .await
                .map_err(|_| Unavailable)
        })
    }

    fn revoke_user_sessions(
        &self,
        user_id: Uuid,
        ttl: Duration,
    ) -> BoxFuture<'_, Result<(), Unavailable>> {
        Box::pin(async move {
            self.0
                .revoke_user_sessions(user_id, ttl)
                .await
                .map_err(|_| Unavailable)
        })
    }

    fn family_revoked(&self, family_id: Uuid) -> BoxFuture<'_, Result<bool, Unavailable>> {
        Box::pin(async move {
            self.0
                .family_revoked(family_id)
                .await
                .map_err(|_| Unavailable)
        })
    }

    fn family_revoke(
        &self,
        family_id: Uuid,
        ttl: Duration,
    ) -> BoxFuture<'_, Result<(), Unavailable>> {
        Box::pin(async move {
            self.0
                .family_revoke(family_id, ttl)
                .await
                .map_err(|_| Unavailable)
        })
    }
}

impl SharedLimiter for RedisPorts {
    fn take<'a>(
        &'a self,
        key: &'a str,
        interval: Duration,
        burst: u32,
    ) -> BoxFuture<'a, Result<SharedStep, Unavailable>> {
        Box::pin(async move {
            let r = self
                .0
                .gcra(key, interval, burst, true)
                .await
                .map_err(|_| Unavailable)?;
            Ok(SharedStep {
                allowed: r.allowed,
                remaining: r.remaining,
                retry_after: r.retry_after,
                reset: r.reset,
            })
        })
    }

    fn refund<'a>(
        &'a self,
        key: &'a str,
        interval: Duration,
    ) -> BoxFuture<'a, Result<(), Unavailable>> {
        Box::pin(async move {
            self.0
                .gcra_refund(key, interval)
                .await
                .map_err(|_| Unavailable)
        })
    }
}
