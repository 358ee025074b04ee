//! Per-shard caches of verified access tokens and of the users behind them.
//!
//! An Ed25519 verification costs tens of microseconds, the largest cost of a Bearer request such
//! as `/userinfo` (measured with `perf/profile.sh userinfo`). Clients present the same token for
//! its whole lifetime, so each shard remembers the claims of tokens it verified, keyed by the
//! exact token text, until their `exp`. A different byte anywhere is a different key and is
//! verified in full; nothing is shared between shards (no locks).
//!
//! A valid signature is not enough: a token must stop working soon after its user is disabled
//! (or deleted, or their tenant deleted), long before its `exp`. So `/v2/me` and `/userinfo`
//! also look the user up, through [`UserCache`]: each shard trusts a user record it read for
//! at most [`USER_TTL`]. That bounds how long any token, cached or not, outlives a disable,
//! and keeps a busy Bearer client at one user read per shard every few seconds.

use std::cell::RefCell;
use std::collections::HashMap;
use std::time::{Duration, Instant};

use protocol::token::AccessClaims;
use store::User;
use uuid::Uuid;

/// Entries before the cache starts over: bounds memory whatever the traffic.
const MAX_ENTRIES: usize = 8192;

#[derive(Default)]
pub struct TokenCache {
    map: RefCell<HashMap<Box<str>, AccessClaims>>,
}

impl TokenCache {
    /// The claims of a token verified before and not yet expired at `now`.
    pub fn get(&self, token: &str, now: i64) -> Option<AccessClaims> {
        let map = self.map.borrow();
        map.get(token).filter(|c| c.exp > now).cloned()
    }

    pub fn insert(&self, token: &str, claims: &AccessClaims) {
        let mut map = self.map.borrow_mut();
        if map.len() >= MAX_ENTRIES {
            map.clear();
        }
        map.insert(token.into(), claims.clone());
    }
}

/// How long a shard trusts a user record (enabled or not, tenant, metadata) before reading
/// it again: the longest a disabled user's access token is still accepted.
pub const USER_TTL: Duration = Duration::from_secs(5);
/// Users a shard keeps at most: bounds memory whatever the traffic. Only users seen in the
/// last [`USER_TTL`] are worth keeping, so this is a burst of distinct users per shard; past it
/// requests read the store, as every `/userinfo` did before the cache. A user is a few hundred
/// bytes with typical metadata, at most about 9 KiB with both metadata at their limits.
const MAX_USERS: usize = 4096;

/// Users (or their absence) as read from the store, each for at most its TTL.
pub struct UserCache {
    ttl: Duration,
    map: RefCell<HashMap<Uuid, (Instant, Option<User>)>>,
}

impl Default for UserCache {
    fn default() -> Self {
        UserCache::new(USER_TTL)
    }
}

impl UserCache {
    pub fn new(ttl: Duration) -> UserCache {
        UserCache {
            ttl,
            map: RefCell::default(),
        }
    }

    /// The user as read less than the TTL before `now` (`Some(None)`: read and not found);
    /// `None` when it must be read again.
    pub fn get(&self, id: Uuid, now: Instant) -> Option<Option<User>> {
        let map = self.map.borrow();
        let (at, user) = map.get(&id)?;
        (now.saturating_duration_since(*at) < self.ttl).then(|| user.clone())
    }

    /// Forgets `id`, so that its next use reads the store: this shard sees a change it made
    /// (a user disabled, deleted or given a new password) at once, the others within the TTL.
    pub fn forget(&self, id: Uuid) {
        self.map.borrow_mut().remove(&id);
    }

    /// Remembers what the store answered at `at` (the time the read started, so the TTL is
    /// never longer than the record's real age).
    pub fn insert(&self, id: Uuid, user: Option<User>, at: Instant) {
        let mut map = self.map.borrow_mut();
        if map.len() >= MAX_USERS {
            // Expired entries go first. If most are still fresh, the cache starts over rather
            // than sweeping again on the next insert (each sweep frees a quarter at least).
            let ttl = self.ttl;
            map.retain(|_, (t, _)| at.saturating_duration_since(*t) < ttl);
            if map.len() > MAX_USERS / 4 * 3 {
                map.clear();
            }
        }
        map.insert(id, (at, user));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(disabled: bool) -> User {
        User {
            id: Uuid::now_v7(),
            tenant_id: Uuid::now_v7(),
            email: "ada@example.com".into(),
            email_verified: false,
            name: None,
            custom_fields: store::Metadata::empty(),
            app_metadata: store::Metadata::empty(),
            disabled,
            disabled_reason: None,
            mfa_enabled: false,
            created_at: 0,
        }
    }

    #[test]
    fn users_are_trusted_for_the_ttl_only() {
        let cache = UserCache::new(Duration::from_secs(5));
        let t0 = Instant::now();
        let ada = user(false);
        let nobody = Uuid::now_v7();
        cache.insert(ada.id, Some(ada.clone()), t0);
        cache.insert(nobody, None, t0);
        let almost = t0 + Duration::from_millis(4999);
        assert_eq!(cache.get(ada.id, almost), Some(Some(ada.clone())));
        assert_eq!(cache.get(nobody, almost), Some(None));
        let expired = t0 + Duration::from_secs(5);
        assert_eq!(cache.get(ada.id, expired), None);
        assert_eq!(cache.get(nobody, expired), None);
        assert_eq!(cache.get(Uuid::now_v7(), t0), None);
        // A newer read replaces the old one.
        let disabled = User {
            disabled: true,
            mfa_enabled: false,
            ..ada.clone()
        };
        cache.insert(ada.id, Some(disabled.clone()), expired);
        assert_eq!(cache.get(ada.id, expired), Some(Some(disabled)));
        // Forgotten: read again, however fresh it was.
        cache.forget(ada.id);
        assert_eq!(cache.get(ada.id, expired), None);
        assert_eq!(cache.get(nobody, almost), Some(None));
    }

    #[test]
    fn the_user_cache_is_bounded() {
        let cache = UserCache::default();
        let now = Instant::now();
        for _ in 0..3 * MAX_USERS {
            cache.insert(Uuid::now_v7(), None, now);
            assert!(cache.map.borrow().len() <= MAX_USERS);
        }
        // When full, expired entries are dropped and fresh ones kept.
        let cache = UserCache::default();
        for _ in 0..MAX_USERS / 2 {
            cache.insert(Uuid::now_v7(), None, now);
        }
        let later = now + USER_TTL;
        let kept: Vec<Uuid> = (0..MAX_USERS / 2).map(|_| Uuid::now_v7()).collect();
        for id in &kept {
            cache.insert(*id, None, later);
        }
        cache.insert(Uuid::now_v7(), None, later);
        assert_eq!(cache.map.borrow().len(), MAX_USERS / 2 + 1);
        assert!(kept.iter().all(|id| cache.get(*id, later).is_some()));
    }

    fn claims(exp: i64) -> AccessClaims {
        AccessClaims {
            iss: "i".into(),
            sub: "s".into(),
            aud: "a".into(),
            iat: 0,
            nbf: 0,
            exp,
            tid: "t".into(),
            amr: vec![],
            scp: String::new(),
            custom: Default::default(),
            sid: None,
            jti: String::new(),
            auth_time: None,
        }
    }

    #[test]
    fn hits_until_expiry_and_only_for_the_exact_token() {
        let cache = TokenCache::default();
        cache.insert("a.b.c", &claims(100));
        assert_eq!(cache.get("a.b.c", 99).map(|c| c.exp), Some(100));
        assert!(cache.get("a.b.c", 100).is_none(), "expired at exp");
        assert!(cache.get("a.b.d", 50).is_none());
    }
}
