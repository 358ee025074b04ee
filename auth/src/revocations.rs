//! Revoked access tokens, by `jti`: the store keeps them (`revoked_tokens`), every instance
//! keeps the live ones in memory, so checking a token costs one hash lookup and no I/O.
//!
//! A revocation made on this instance is seen here at once; one made elsewhere when this
//! instance next reads the store ([`Revocations::refresh`], every few seconds from the engine's
//! background thread). Entries leave when their token would have expired anyway.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use arc_swap::ArcSwap;
use store::{Store, StoreError};

/// Seconds read again on each refresh before the last one, so a revocation committed with a
/// `revoked_at` slightly older than the previous read (another instance's clock, a slow
/// commit) is not missed.
const OVERLAP_SECS: i64 = 60;

#[derive(Default)]
pub struct Revocations {
    /// `jti` -> `exp` of every revoked token that has not expired yet.
    live: ArcSwap<HashMap<String, i64>>,
    /// The `now` of the last refresh (0: never).
    read_at: AtomicI64,
}

impl std::fmt::Debug for Revocations {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Revocations")
            .field("live", &self.live.load().len())
            .finish()
    }
}

impl Revocations {
    pub fn new() -> Revocations {
        Revocations::default()
    }

    /// Whether the token with this `jti` was revoked. Tokens without one (signed before `jti`
    /// existed) cannot be.
    pub fn is_revoked(&self, jti: &str) -> bool {
        !jti.is_empty() && self.live.load().contains_key(jti)
    }

    /// Notes a revocation made here (already stored).
    pub fn add(&self, jti: &str, expires_at: i64) {
        self.live.rcu(|live| {
            let mut next = HashMap::clone(live);
            next.insert(jti.to_string(), expires_at);
            Arc::new(next)
        });
    }

    /// Reads the revocations recorded since the last refresh (all live ones the first time)
    /// and drops the expired ones.
    pub async fn refresh(&self, store: &dyn Store, now: i64) -> Result<(), StoreError> {
        let last = self.read_at.load(Ordering::Relaxed);
        let since = if last == 0 { 0 } else { last - OVERLAP_SECS };
        let new = store.revoked_tokens_since(since, now).await?;
        self.live.rcu(|live| {
            let mut next: HashMap<String, i64> = live
                .iter()
                .filter(|(_, exp)| **exp > now)
                .map(|(j, e)| (j.clone(), *e))
                .collect();
            for (jti, exp) in &new {
                next.insert(jti.clone(), *exp);
            }
            Arc::new(next)
        });
        self.read_at.store(now, Ordering::Relaxed);
        Ok(())
    }

    /// How many revoked tokens are live (for tests and metrics).
    pub fn len(&self) -> usize {
        self.live.load().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_and_check() {
        let r = Revocations::new();
        assert!(!r.is_revoked("a"));
        r.add("a", 100);
        assert!(r.is_revoked("a"));
        assert!(!r.is_revoked(""));
        assert_eq!(r.len(), 1);
    }
}
