//! Events: what the flows record about each change, drafted from the request's [`Origin`].
//!
//! A flow describes each change as an [`EventDraft`]; the store writes it in the change's own
//! transaction, with one webhook delivery per subscribed endpoint of the tenant (the
//! transactional outbox). An event exists iff its change committed.

use std::net::IpAddr;

use store::{EventDraft, EventMeta};
use uuid::Uuid;

/// The events HelloJohn emits, by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    UserRegister,
    UserLogin,
    UserLoginFailed,
    UserLogout,
    UserLogoutAll,
    TokenReuseDetected,
    MfaEnabled,
    MfaDisabled,
    UserEmailVerified,
    UserPasswordReset,
    /// The failed sign-in that used up an account's failed-sign-in limit: the account is
    /// refused until the limit lets attempts through again.
    UserLocked,
}

impl EventType {
    pub const ALL: [EventType; 11] = [
        EventType::UserRegister,
        EventType::UserLogin,
        EventType::UserLoginFailed,
        EventType::UserLogout,
        EventType::UserLogoutAll,
        EventType::TokenReuseDetected,
        EventType::MfaEnabled,
        EventType::MfaDisabled,
        EventType::UserEmailVerified,
        EventType::UserPasswordReset,
        EventType::UserLocked,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventType::UserRegister => "user.register",
            EventType::UserLogin => "user.login",
            EventType::UserLoginFailed => "user.login_failed",
            EventType::UserLogout => "user.logout",
            EventType::UserLogoutAll => "user.logout_all",
            EventType::TokenReuseDetected => "token.reuse_detected",
            EventType::MfaEnabled => "mfa.enabled",
            EventType::MfaDisabled => "mfa.disabled",
            EventType::UserEmailVerified => "user.email_verified",
            EventType::UserPasswordReset => "user.password_reset",
            EventType::UserLocked => "user.locked",
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
    /// The request's id (`X-Request-Id`): written into each event's metadata as `request_id`,
    /// so an audit entry and a webhook payload lead back to the access log's line.
    pub request_id: Option<String>,
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
        Origin {
            ip,
            user_agent,
            request_id: None,
        }
    }

    /// The same origin, with the request's id.
    pub fn with_request_id(mut self, request_id: &str) -> Origin {
        self.request_id = Some(request_id.to_string());
        self
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
        let mut metadata = EventMeta::new();
        if let Some(request_id) = &self.request_id {
            metadata.insert("request_id", request_id.as_str());
        }
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
            metadata,
            result: "success".to_string(),
            created_at: now,
        }
    }
}

/// Adds a string to an event's metadata.
pub fn with_meta(mut draft: EventDraft, key: &str, value: &str) -> EventDraft {
    draft.metadata.insert(key, value);
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
}
