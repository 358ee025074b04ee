//! Webhooks: events as a transactional outbox, signed HTTP deliveries, retries.
//!
//! * The auth flows describe each change as an [`EventDraft`] (made here, from the request's
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

use std::net::IpAddr;

use storage::{EventDraft, WebhookEndpoint};
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::auth::{KeyError, MasterKey};

/// The events HelloJohn emits, by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    UserRegister,
    UserLogin,
    UserLoginFailed,
    UserLogout,
    UserLogoutAll,
    TokenReuseDetected,
}

impl EventType {
    pub const ALL: [EventType; 6] = [
        EventType::UserRegister,
        EventType::UserLogin,
        EventType::UserLoginFailed,
        EventType::UserLogout,
        EventType::UserLogoutAll,
        EventType::TokenReuseDetected,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventType::UserRegister => "user.register",
            EventType::UserLogin => "user.login",
            EventType::UserLoginFailed => "user.login_failed",
            EventType::UserLogout => "user.logout",
            EventType::UserLogoutAll => "user.logout_all",
            EventType::TokenReuseDetected => "token.reuse_detected",
        }
    }

    pub fn parse(name: &str) -> Option<EventType> {
        EventType::ALL.into_iter().find(|t| t.as_str() == name)
    }
}

/// Subscribes an endpoint to every event type.
pub const ALL_EVENTS: &str = "*";

/// Where a request came from: recorded with the events it causes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Origin {
    /// The client address (the socket peer, or what a trusted proxy reported).
    pub ip: Option<IpAddr>,
    /// The `User-Agent` header, cut to [`Origin::MAX_USER_AGENT`] bytes.
    pub user_agent: Option<String>,
}

impl Origin {
    pub const MAX_USER_AGENT: usize = 512;

    pub fn new(ip: Option<IpAddr>, user_agent: Option<&str>) -> Origin {
        let user_agent = user_agent
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .map(|u| {
                let mut end = u.len().min(Origin::MAX_USER_AGENT);
                while !u.is_char_boundary(end) {
                    end -= 1;
                }
                u[..end].to_string()
            });
        Origin { ip, user_agent }
    }

    /// A successful event of `kind`. `user` is its actor and target when known; the store
    /// fills in what is left (see [`EventDraft`]).
    pub fn event(
        &self,
        kind: EventType,
        tenant_id: Option<Uuid>,
        user: Option<Uuid>,
        now: i64,
    ) -> EventDraft {
        EventDraft {
            id: Uuid::now_v7(),
            event_type: kind.as_str().to_string(),
            tenant_id,
            actor_id: user,
            actor_type: user.map(|_| "user".to_string()),
            target_id: user,
            target_type: user.map(|_| "user".to_string()),
            ip_address: self.ip.map(|ip| ip.to_canonical().to_string()),
            user_agent: self.user_agent.clone(),
            metadata: serde_json::Value::Object(serde_json::Map::new()),
            result: "success".to_string(),
            created_at: now,
        }
    }
}

/// Adds a string to an event's metadata.
pub fn with_meta(mut draft: EventDraft, key: &str, value: &str) -> EventDraft {
    if let serde_json::Value::Object(m) = &mut draft.metadata {
        m.insert(
            key.to_string(),
            serde_json::Value::String(value.to_string()),
        );
    }
    draft
}

/// Marks an event as the record of a failure.
pub fn failed(mut draft: EventDraft) -> EventDraft {
    draft.result = "failure".to_string();
    draft
}

/// The event types an endpoint may subscribe to, checked: known names or `*`.
pub fn parse_event_list(list: &str) -> Result<Vec<String>, String> {
    let mut out: Vec<String> = Vec::new();
    for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        if name != ALL_EVENTS && EventType::parse(name).is_none() {
            let known: Vec<&str> = EventType::ALL.iter().map(|t| t.as_str()).collect();
            return Err(format!(
                "unknown event type {name:?} (known: {}, or {ALL_EVENTS} for all)",
                known.join(", ")
            ));
        }
        if !out.iter().any(|n| n == name) {
            out.push(name.to_string());
        }
    }
    if out.is_empty() {
        return Err("at least one event type is required".to_string());
    }
    Ok(out)
}

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
    fn event_types_round_trip() {
        for t in EventType::ALL {
            assert_eq!(EventType::parse(t.as_str()), Some(t));
        }
        assert_eq!(EventType::parse("user.deleted"), None);
    }

    #[test]
    fn event_lists_are_checked() {
        assert_eq!(
            parse_event_list(" user.register, user.login ,user.login").unwrap(),
            ["user.register", "user.login"]
        );
        assert_eq!(parse_event_list("*").unwrap(), ["*"]);
        assert!(parse_event_list("user.login,user.nope").is_err());
        assert!(parse_event_list(" , ").is_err());
    }

    #[test]
    fn user_agents_are_bounded() {
        let long = "é".repeat(400);
        let o = Origin::new(None, Some(&long));
        let ua = o.user_agent.unwrap();
        assert!(ua.len() <= Origin::MAX_USER_AGENT && ua.chars().all(|c| c == 'é'));
        assert_eq!(Origin::new(None, Some("  ")).user_agent, None);
    }

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
