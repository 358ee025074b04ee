//! The transactional outbox's records, common to its two kinds: account mail and webhook
//! deliveries. Both are rows written in the transaction of the change that causes them, then
//! leased by a worker ([`Claimed`]), attempted, and completed ([`OutboxResult`]); what differs
//! between the kinds is the payload a worker sends.

use uuid::Uuid;

use crate::{Event, WebhookEndpoint};

/// What an outbox item is: a mail (`mail_outbox`) or a webhook delivery
/// (`webhook_deliveries`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OutboxKind {
    Mail,
    Webhook,
}

impl OutboxKind {
    pub const ALL: [OutboxKind; 2] = [OutboxKind::Mail, OutboxKind::Webhook];

    pub fn as_str(self) -> &'static str {
        match self {
            OutboxKind::Mail => "mail",
            OutboxKind::Webhook => "webhook",
        }
    }

    pub fn parse(text: &str) -> Option<OutboxKind> {
        OutboxKind::ALL.into_iter().find(|k| k.as_str() == text)
    }
}

impl std::fmt::Display for OutboxKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A due item leased to one worker until `leased_until_ms`, with what it needs to send.
#[derive(Debug, Clone, PartialEq)]
pub struct Claimed {
    pub id: Uuid,
    /// Proves the lease when reporting a failure ([`OutboxResult::Failed`]).
    pub lease_id: Uuid,
    pub leased_until_ms: i64,
    /// Attempts made before this one (since the item was last requeued).
    pub attempts: u32,
    /// Times it was requeued by hand (`hj webhook redeliver`); always 0 for a mail.
    pub generation: u32,
    pub payload: Payload,
}

impl Claimed {
    pub fn kind(&self) -> OutboxKind {
        self.payload.kind()
    }
}

/// What a claimed item carries, by kind.
#[derive(Debug, Clone, PartialEq)]
pub enum Payload {
    Mail(MailPayload),
    /// Boxed: an event with its endpoint is several times the size of a mail's header.
    Webhook(Box<DeliveryPayload>),
}

impl Payload {
    pub fn kind(&self) -> OutboxKind {
        match self {
            Payload::Mail(_) => OutboxKind::Mail,
            Payload::Webhook(_) => OutboxKind::Webhook,
        }
    }
}

/// A claimed mail's content.
#[derive(Clone, PartialEq, Eq)]
pub struct MailPayload {
    pub tenant_id: Uuid,
    /// `verify_email`, `password_reset`, ...
    pub kind: String,
    /// The message sealed under the master key with the mail id as AAD (see
    /// [`crate::NewMail`]).
    pub message_sealed: Vec<u8>,
}

impl std::fmt::Debug for MailPayload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MailPayload")
            .field("tenant_id", &self.tenant_id)
            .field("kind", &self.kind)
            .field("message_sealed", &"<redacted>")
            .finish()
    }
}

/// A claimed delivery's content: the endpoint to post to and the event to post.
#[derive(Debug, Clone, PartialEq)]
pub struct DeliveryPayload {
    pub endpoint: WebhookEndpoint,
    pub event: Event,
}

/// What an attempt came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutboxResult {
    /// The relay accepted the mail or the endpoint answered 2xx (`status_code`), or another
    /// instance did and said so through Redis (`counted: false`: no attempt of this worker).
    /// Applies whoever holds the lease, unless the item is already done or exhausted; a mail's
    /// sealed message is dropped.
    Done {
        kind: OutboxKind,
        id: Uuid,
        at_ms: i64,
        /// The endpoint's answer (webhooks only; a mail has none).
        status_code: Option<u16>,
        counted: bool,
    },
    /// The attempt failed. Applies only while `lease_id` still holds the item. Scheduled again
    /// at `retry_at_ms`, or exhausted when `None` (a mail's sealed message is then dropped).
    Failed {
        kind: OutboxKind,
        id: Uuid,
        lease_id: Uuid,
        at_ms: i64,
        /// The endpoint's answer, if any (webhooks only).
        status_code: Option<u16>,
        error: String,
        retry_at_ms: Option<i64>,
    },
}

impl OutboxResult {
    pub fn kind(&self) -> OutboxKind {
        match self {
            OutboxResult::Done { kind, .. } | OutboxResult::Failed { kind, .. } => *kind,
        }
    }

    pub fn id(&self) -> Uuid {
        match self {
            OutboxResult::Done { id, .. } | OutboxResult::Failed { id, .. } => *id,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_have_stable_names() {
        for kind in OutboxKind::ALL {
            assert_eq!(OutboxKind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(OutboxKind::Mail.to_string(), "mail");
        assert_eq!(OutboxKind::Webhook.to_string(), "webhook");
        assert_eq!(OutboxKind::parse("wh"), None);
    }

    #[test]
    fn a_mail_payload_hides_its_message() {
        let mail = MailPayload {
            tenant_id: Uuid::nil(),
            kind: "verify_email".into(),
            message_sealed: b"secret link".to_vec(),
        };
        let text = format!("{mail:?}");
        assert!(
            text.contains("<redacted>") && !text.contains("115"),
            "{text}"
        );
    }
}
