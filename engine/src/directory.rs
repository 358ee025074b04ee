//! A per-shard cache of tenants and clients.
//!
//! Every sign-in names a tenant and a client; both change rarely, so looking them up in the
//! database on every request would spend two round trips on data that is almost always the
//! same. Each shard keeps its own small cache (no locks: only its thread touches it) with a
//! short time to live, so a tenant or client created through `hj` is seen by every instance
//! within [`TTL`], and an unknown name is remembered for [`NEGATIVE_TTL`] so a flood of
//! requests for a missing tenant does not become a flood of queries.

use std::cell::RefCell;
use std::collections::HashMap;
use std::time::{Duration, Instant};

use store::{Client, Store, StoreError, Tenant};
use uuid::Uuid;

pub const TTL: Duration = Duration::from_secs(30);
pub const NEGATIVE_TTL: Duration = Duration::from_secs(2);
/// Entries per map before the cache starts over: bounds memory under a flood of random names.
const MAX_ENTRIES: usize = 10_000;

struct Entry<T> {
    at: Instant,
    value: Option<T>,
}

impl<T: Clone> Entry<T> {
    fn fresh(&self, now: Instant) -> Option<Option<T>> {
        let ttl = if self.value.is_some() {
            TTL
        } else {
            NEGATIVE_TTL
        };
        (now.duration_since(self.at) < ttl).then(|| self.value.clone())
    }
}

fn insert<K: std::hash::Hash + Eq, T>(
    map: &mut HashMap<K, Entry<T>>,
    key: K,
    value: Option<T>,
    now: Instant,
) {
    if map.len() >= MAX_ENTRIES {
        map.clear();
    }
    map.insert(key, Entry { at: now, value });
}

#[derive(Default)]
pub struct Directory {
    tenants: RefCell<HashMap<String, Entry<Tenant>>>,
    clients: RefCell<HashMap<(Uuid, String), Entry<Client>>>,
    /// Clients by `client_id` alone, across tenants (the OAuth endpoints that name no tenant).
    by_client_id: RefCell<HashMap<String, Entry<Vec<Client>>>>,
}

impl Directory {
    /// The tenant by slug or UUID.
    pub async fn tenant(&self, store: &dyn Store, key: &str) -> Result<Option<Tenant>, StoreError> {
        let now = Instant::now();
        if let Some(hit) = self.tenants.borrow().get(key).and_then(|e| e.fresh(now)) {
            return Ok(hit);
        }
        let found = store.find_tenant(key).await?;
        insert(
            &mut self.tenants.borrow_mut(),
            key.to_string(),
            found.clone(),
            now,
        );
        Ok(found)
    }

    /// The client `client_id` of a tenant.
    pub async fn client(
        &self,
        store: &dyn Store,
        tenant_id: Uuid,
        client_id: &str,
    ) -> Result<Option<Client>, StoreError> {
        let now = Instant::now();
        let key = (tenant_id, client_id.to_string());
        if let Some(hit) = self.clients.borrow().get(&key).and_then(|e| e.fresh(now)) {
            return Ok(hit);
        }
        let mut found = store.find_client(tenant_id, client_id).await?;
        if let Some(c) = found.as_mut() {
            self.with_tenant_defaults(store, c).await?;
        }
        insert(&mut self.clients.borrow_mut(), key, found.clone(), now);
        Ok(found)
    }

    /// Every client named `client_id`, in any tenant (usually one): for the OAuth endpoints,
    /// whose requests name a client but no tenant. An empty list is cached like an unknown
    /// name.
    pub async fn clients_named(
        &self,
        store: &dyn Store,
        client_id: &str,
    ) -> Result<Vec<Client>, StoreError> {
        let now = Instant::now();
        let cached = self
            .by_client_id
            .borrow()
            .get(client_id)
            .and_then(|e| e.fresh(now));
        if let Some(hit) = cached {
            return Ok(hit.unwrap_or_default());
        }
        let mut found = store.find_clients_by_client_id(client_id).await?;
        for c in &mut found {
            self.with_tenant_defaults(store, c).await?;
        }
        let value = (!found.is_empty()).then(|| found.clone());
        insert(
            &mut self.by_client_id.borrow_mut(),
            client_id.to_string(),
            value,
            now,
        );
        Ok(found)
    }

    /// Fills the lifetimes a client leaves to its tenant (`accessTokenLifetimeSeconds`,
    /// `refreshTokenLifetimeSeconds`): a client's own setting wins, then its tenant's, then the
    /// server's.
    async fn with_tenant_defaults(
        &self,
        store: &dyn Store,
        client: &mut Client,
    ) -> Result<(), StoreError> {
        if client.access_token_ttl.is_some() && client.refresh_token_ttl.is_some() {
            return Ok(());
        }
        let Some(tenant) = Box::pin(self.tenant(store, &client.tenant_id.to_string())).await?
        else {
            return Ok(());
        };
        let s = &tenant.settings;
        client.access_token_ttl = client.access_token_ttl.or(s.access_token_lifetime_seconds);
        client.refresh_token_ttl = client
            .refresh_token_ttl
            .or(s.refresh_token_lifetime_seconds);
        Ok(())
    }

    /// Forgets every entry: after a change made through this shard (the admin API), so the
    /// shard that made it sees it at once. Other shards and instances see it within [`TTL`].
    pub fn forget(&self) {
        self.tenants.borrow_mut().clear();
        self.clients.borrow_mut().clear();
        self.by_client_id.borrow_mut().clear();
    }
}
