//! A per-shard cache of verified access tokens.
//!
//! An Ed25519 verification costs tens of microseconds, the largest cost of a Bearer request such
//! as `/userinfo` (measured with `perf/profile.sh userinfo`). Clients present the same token for
//! its whole lifetime, so each shard remembers the claims of tokens it verified, keyed by the
//! exact token text, until their `exp`. A different byte anywhere is a different key and is
//! verified in full; nothing is shared between shards (no locks).

use std::cell::RefCell;
use std::collections::HashMap;

use protocol::token::AccessClaims;

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

#[cfg(test)]
mod tests {
    use super::*;

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
            custom: serde_json::Value::Null,
            sid: None,
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
