//! Account mail (email verification, password reset) through a transactional outbox.
//!
//! * The auth flows compose a mail with [`EngineMailer`] (the domain's
//!   [`auth::ports::Mailer`]): the tenant's [`templates`] are rendered and the message
//!   (recipient, subject, text, HTML) is sealed under the master key with the mail's id as AAD,
//!   as webhook secrets are. The store writes it with its single-use token, in one transaction.
//! * [`worker`] runs on every instance, on its own thread: the outbox worker (`outbox`, shared
//!   with webhook deliveries) leases due mails, opens and sends each through [`smtp`] and
//!   records the result; failures are retried with the webhooks' backoff until
//!   `HELLOJOHN_MAIL_MAX_ATTEMPTS`. With Redis each attempt is guarded
//!   so that instances never send one mail twice. It also prunes sent mails, expired email
//!   tokens and expired MFA records.
//! * Without `HELLOJOHN_SMTP_HOST` mail is disabled (logged once at start): the worker claims
//!   and sends nothing, the flows answer as if the mail was sent, and mails wait in the outbox
//!   (`pending`) until an instance with SMTP settings sends them.

pub mod smtp;
pub mod templates;
pub mod worker;

use std::fmt;
use std::sync::Arc;

use auth::ports::{MailVars, Mailer};
use auth::{KeyError, MasterKey};
use store::NewMail;
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::config::Config;
pub use templates::{TemplateError, Templates};

/// A mail as sealed in the outbox. The link in its bodies carries a single-use token, so its
/// `Debug` shows only the recipient, and it is wiped when dropped.
#[derive(Clone, PartialEq, Eq)]
pub struct Message {
    pub to: String,
    pub subject: Zeroizing<String>,
    pub text: Zeroizing<String>,
    pub html: Zeroizing<String>,
}

impl fmt::Debug for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Message")
            .field("to", &self.to)
            .field("subject", &"<redacted>")
            .field("text", &"<redacted>")
            .field("html", &"<redacted>")
            .finish()
    }
}

/// The version byte of [`Message::encode`].
const FORMAT_V1: u8 = 1;

impl Message {
    /// `1`, then each field as a 4-byte big-endian length and its UTF-8 bytes.
    pub fn encode(&self) -> Zeroizing<Vec<u8>> {
        let fields = [
            self.to.as_str(),
            self.subject.as_str(),
            self.text.as_str(),
            self.html.as_str(),
        ];
        let mut out = Zeroizing::new(Vec::with_capacity(
            1 + fields.iter().map(|f| 4 + f.len()).sum::<usize>(),
        ));
        out.push(FORMAT_V1);
        for f in fields {
            let len = u32::try_from(f.len()).unwrap_or(u32::MAX);
            out.extend_from_slice(&len.to_be_bytes());
            out.extend_from_slice(&f.as_bytes()[..len as usize]);
        }
        out
    }

    /// The message of [`Message::encode`]; `None` for anything else.
    pub fn decode(bytes: &[u8]) -> Option<Message> {
        let (&version, mut rest) = bytes.split_first()?;
        if version != FORMAT_V1 {
            return None;
        }
        let mut next = || -> Option<Zeroizing<String>> {
            let (len, tail) = rest.split_first_chunk::<4>()?;
            let len = usize::try_from(u32::from_be_bytes(*len)).ok()?;
            if tail.len() < len {
                return None;
            }
            let (field, tail) = tail.split_at(len);
            rest = tail;
            std::str::from_utf8(field)
                .ok()
                .map(|s| Zeroizing::new(s.to_string()))
        };
        let to = next()?;
        let subject = next()?;
        let text = next()?;
        let html = next()?;
        if !rest.is_empty() {
            return None;
        }
        Some(Message {
            to: to.as_str().to_string(),
            subject,
            text,
            html,
        })
    }
}

/// Seals a message under the master key, bound to the mail's id.
pub fn seal(master: &MasterKey, mail_id: Uuid, message: &Message) -> Result<Vec<u8>, KeyError> {
    master.encrypt(&message.encode(), mail_id.as_bytes())
}

/// The message of a claimed mail, sealed under the master key with the mail's id; `None` when
/// the master key is not the one that sealed it (or the row was tampered with).
pub fn open_sealed(master: &MasterKey, mail_id: Uuid, sealed: &[u8]) -> Option<Message> {
    let bytes = master.decrypt(sealed, mail_id.as_bytes())?;
    Message::decode(&bytes)
}

/// Renders and seals account mail: the engine's [`Mailer`].
#[derive(Clone)]
pub struct EngineMailer {
    master: MasterKey,
    templates: Arc<Templates>,
}

impl fmt::Debug for EngineMailer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EngineMailer").finish_non_exhaustive()
    }
}

impl EngineMailer {
    /// Loads the templates (`HELLOJOHN_EMAIL_TEMPLATES_DIR`): a bad file stops the start.
    pub fn new(config: &Config, master: MasterKey) -> Result<EngineMailer, TemplateError> {
        let templates = Templates::load(config.email_templates_dir.as_deref())?;
        Ok(EngineMailer::with_templates(master, templates))
    }

    pub fn with_templates(master: MasterKey, templates: Templates) -> EngineMailer {
        EngineMailer {
            master,
            templates: Arc::new(templates),
        }
    }

    /// The message `vars` describes, rendered from the tenant's templates.
    pub fn render(&self, vars: &MailVars<'_>) -> Message {
        let expires_in = templates::human_duration(vars.ttl);
        let parts = self.templates.render(
            vars.kind,
            &vars.tenant.slug,
            &templates::Vars {
                email: vars.to,
                tenant_name: &vars.tenant.name,
                link: vars.link,
                expires_in: &expires_in,
            },
        );
        Message {
            to: vars.to.to_string(),
            subject: Zeroizing::new(parts.subject),
            text: Zeroizing::new(parts.text),
            html: Zeroizing::new(parts.html),
        }
    }
}

impl Mailer for EngineMailer {
    fn compose(&self, vars: &MailVars<'_>, now_ms: i64) -> NewMail {
        let id = Uuid::now_v7();
        let message = self.render(vars);
        let message_sealed = match seal(&self.master, id, &message) {
            Ok(sealed) => sealed,
            Err(e) => {
                // Not expected (the cipher cannot fail on this input); the worker cannot open
                // an empty message and records the mail as failed, visibly.
                tracing::error!(error = %e, mail_id = %id, "cannot seal a mail");
                Vec::new()
            }
        };
        NewMail {
            id,
            tenant_id: vars.tenant.id,
            kind: vars.kind.as_str().to_string(),
            message_sealed,
            created_at_ms: now_ms,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use auth::ports::MailKind;
    use std::time::Duration;

    fn tenant() -> store::Tenant {
        store::Tenant {
            id: Uuid::now_v7(),
            slug: "acme".into(),
            name: "Acme".into(),
            created_at: 0,
            settings: Default::default(),
            settings_version: 0,
            issuer_mode: store::IssuerMode::Global,
        }
    }

    #[test]
    fn composed_mails_are_sealed_to_their_id() {
        let master = MasterKey::generate();
        let mailer = EngineMailer::with_templates(master.clone(), Templates::builtin());
        let t = tenant();
        let link = "https://id.acme.test/v2/auth/verify-email?token=SECRET";
        let mail = mailer.compose(
            &MailVars {
                kind: MailKind::VerifyEmail,
                tenant: &t,
                to: "ada@example.com",
                link,
                ttl: Duration::from_secs(48 * 3600),
            },
            1234,
        );
        assert_eq!(mail.kind, "verify_email");
        assert_eq!(mail.tenant_id, t.id);
        assert_eq!(mail.created_at_ms, 1234);
        assert!(!String::from_utf8_lossy(&mail.message_sealed).contains("SECRET"));
        let m = open_sealed(&master, mail.id, &mail.message_sealed).unwrap();
        assert_eq!(m.to, "ada@example.com");
        assert_eq!(m.subject.as_str(), "Confirm your email address for Acme");
        assert!(m.text.contains(link) && m.text.contains("48 hours"));
        assert!(m.html.contains("token=SECRET"));
        assert!(!format!("{m:?}").contains("SECRET"));
        assert!(open_sealed(&master, Uuid::now_v7(), &mail.message_sealed).is_none());
        assert!(open_sealed(&MasterKey::generate(), mail.id, &mail.message_sealed).is_none());
    }

    #[test]
    fn the_encoding_round_trips_and_refuses_garbage() {
        let m = Message {
            to: "a@b.test".into(),
            subject: Zeroizing::new("Sübject".into()),
            text: Zeroizing::new(String::new()),
            html: Zeroizing::new("<p>x</p>".into()),
        };
        let bytes = m.encode();
        assert_eq!(Message::decode(&bytes).unwrap(), m);
        for cut in 0..bytes.len() {
            assert!(Message::decode(&bytes[..cut]).is_none(), "{cut}");
        }
        let mut longer = bytes.to_vec();
        longer.push(0);
        assert!(Message::decode(&longer).is_none());
        let mut v2 = bytes.to_vec();
        v2[0] = 2;
        assert!(Message::decode(&v2).is_none());
    }
}
