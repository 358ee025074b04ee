//! Webhooks: events as a transactional outbox, signed HTTP deliveries, retries.
//!
//! * The auth flows describe each change as an event draft (`auth::events`, from the request's
//!   [`Origin`]); the store writes it in the change's own transaction, with one delivery per
//!   subscribed endpoint of the tenant. An event exists iff its change committed.
//! * [`worker`] runs on every instance, on its own thread: it leases due deliveries from the
//!   store, signs and POSTs them ([`signature`], [`send`]), and records the result; failures are
//!   retried with exponential backoff until `HELLOJOHN_WEBHOOK_MAX_ATTEMPTS`.
//! * [`ssrf`] refuses loopback, private, link-local and every other special-purpose target
//!   (IPv4 embedded in IPv6 included) unless `HELLOJOHN_WEBHOOK_ALLOW_PRIVATE=true`.
//!
//! See `docs/webhooks.md` for the wire format and the guarantees.

pub mod send;
pub mod signature;
pub mod ssrf;
pub mod worker;

pub use auth::events::{failed, parse_event_list, with_meta, EventType, Origin, ALL_EVENTS};
use auth::{KeyError, MasterKey};
use store::WebhookEndpoint;
use uuid::Uuid;
use zeroize::Zeroizing;

/// Encrypts an endpoint's signing secret under the master key, bound to the endpoint's id.
pub fn seal_secret(
    master: &MasterKey,
    endpoint_id: Uuid,
    secret: &str,
) -> Result<Vec<u8>, KeyError> {
    master.encrypt(secret.as_bytes(), endpoint_id.as_bytes())
}

/// The endpoint's signing secret; `None` when the master key is not the one that sealed it.
pub fn open_secret(master: &MasterKey, endpoint: &WebhookEndpoint) -> Option<Zeroizing<String>> {
    let bytes = master.decrypt(&endpoint.secret_encrypted, endpoint.id.as_bytes())?;
    std::str::from_utf8(&bytes)
        .ok()
        .map(|s| Zeroizing::new(s.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_sealed_to_their_endpoint() {
        let master = MasterKey::generate();
        let id = Uuid::now_v7();
        let sealed = seal_secret(&master, id, "whsec_abc").unwrap();
        let endpoint = WebhookEndpoint {
            id,
            tenant_id: Uuid::new_v4(),
            url: "https://example.com/h".into(),
            events: vec!["*".into()],
            secret_encrypted: sealed,
            created_at: 0,
        };
        assert_eq!(
            open_secret(&master, &endpoint).unwrap().as_str(),
            "whsec_abc"
        );
        let moved = WebhookEndpoint {
            id: Uuid::now_v7(),
            ..endpoint.clone()
        };
        assert!(
            open_secret(&master, &moved).is_none(),
            "bound to the endpoint id"
        );
        assert!(open_secret(&MasterKey::generate(), &endpoint).is_none());
    }
}
