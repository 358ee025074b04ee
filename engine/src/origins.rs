//! The browser origins the clients registered (`hj client create|update --allowed-origin`):
//! trusted for CORS with credentials and by the same-site check, like `HELLOJOHN_CORS_ORIGINS`.
//!
//! A request names no client before it is read (a CORS preflight has no body), so the check
//! is against every client's origins: one set per instance, read from the store at start and
//! again with the signing keys (every `HELLOJOHN_*` key reload interval, 30 s), swapped whole,
//! so the per-request check takes no lock and does no I/O.

use std::collections::HashSet;
use std::sync::Arc;

use arc_swap::ArcSwap;
use store::{Store, StoreError};

#[derive(Default)]
pub struct ClientOrigins {
    set: ArcSwap<HashSet<String>>,
}

impl std::fmt::Debug for ClientOrigins {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientOrigins")
            .field("origins", &self.set.load().len())
            .finish()
    }
}

impl ClientOrigins {
    /// Whether some client registered this origin (exact, as sent in `Origin`).
    pub fn contains(&self, origin: &str) -> bool {
        self.set.load().contains(origin)
    }

    /// Reads every client's origins again.
    pub async fn refresh(&self, store: &dyn Store) -> Result<(), StoreError> {
        let clients = store.list_clients(None).await?;
        let set: HashSet<String> = clients
            .into_iter()
            .flat_map(|c| c.allowed_origins)
            .collect();
        self.set.store(Arc::new(set));
        Ok(())
    }
}
