//! One SMTP send, with lettre: `starttls` (STARTTLS required: a relay that does not offer it
//! gets neither the mail nor the credentials), `tls` (implicit TLS) or `none` (plain, only to a
//! relay on loopback; the configuration refuses it elsewhere). Certificates are checked against
//! the system's roots (rustls). One connection per mail: account mail is rare.

use std::time::Duration;

use lettre::message::{header::ContentType, Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport as _, Tokio1Executor};
use uuid::Uuid;

use super::Message;
use crate::config::{is_loopback_host, SmtpSettings, SmtpTls};

/// The relay and the sender.
pub struct Smtp {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    timeout: Duration,
    /// `host:port (tls)`, for logs.
    pub relay: String,
}

impl std::fmt::Debug for Smtp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Smtp")
            .field("relay", &self.relay)
            .field("from", &self.from.to_string())
            .finish_non_exhaustive()
    }
}

impl Smtp {
    /// The transport of `settings`. Fails on a bad sender, on `none` to a relay that is not on
    /// loopback (the configuration already refuses it), or when TLS cannot be set up.
    pub fn new(settings: &SmtpSettings, timeout: Duration) -> Result<Smtp, String> {
        let from: Mailbox = settings
            .from
            .parse()
            .map_err(|e| format!("HELLOJOHN_SMTP_FROM: {e}"))?;
        let host = settings.host.as_str();
        let tls = match settings.tls {
            SmtpTls::StartTls => Tls::Required(tls_parameters(host)?),
            SmtpTls::Tls => Tls::Wrapper(tls_parameters(host)?),
            SmtpTls::None if is_loopback_host(host) => Tls::None,
            SmtpTls::None => {
                return Err(format!(
                    "HELLOJOHN_SMTP_TLS=none is only allowed for a relay on loopback, not {host:?}"
                ))
            }
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
            .port(settings.port)
            .tls(tls)
            .timeout(Some(timeout));
        if let (Some(user), Some(password)) = (&settings.username, &settings.password) {
            builder = builder.credentials(Credentials::new(
                user.clone(),
                password.expose().to_string(),
            ));
        }
        Ok(Smtp {
            transport: builder.build(),
            from,
            timeout,
            relay: format!("{host}:{} ({})", settings.port, settings.tls.as_str()),
        })
    }

    /// The MIME message: `multipart/alternative` with the text and the HTML, a `Message-ID`
    /// made from the mail's id (the same on every attempt, so a receiver can tell a repeat).
    pub fn build(&self, mail_id: Uuid, m: &Message) -> Result<lettre::Message, String> {
        let to: Mailbox =
            m.to.parse()
                .map_err(|e| format!("bad recipient address: {e}"))?;
        let domain = self.from.email.domain();
        lettre::Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(m.subject.as_str())
            .message_id(Some(format!("<{mail_id}@{domain}>")))
            .multipart(
                MultiPart::alternative()
                    .singlepart(
                        SinglePart::builder()
                            .header(ContentType::TEXT_PLAIN)
                            .body(m.text.to_string()),
                    )
                    .singlepart(
                        SinglePart::builder()
                            .header(ContentType::TEXT_HTML)
                            .body(m.html.to_string()),
                    ),
            )
            .map_err(|e| format!("cannot build the message: {e}"))
    }

    /// Sends one mail; the relay accepted it when this returns `Ok`.
    pub async fn send(&self, mail_id: Uuid, m: &Message) -> Result<(), String> {
        let message = self.build(mail_id, m)?;
        match tokio::time::timeout(self.timeout, self.transport.send(message)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(describe(&e)),
            Err(_) => Err(format!("timed out after {:?}", self.timeout)),
        }
    }
}

fn tls_parameters(host: &str) -> Result<TlsParameters, String> {
    TlsParameters::new(host.to_string()).map_err(|e| format!("cannot set up TLS for {host}: {e}"))
}

/// An SMTP error for `last_error` and logs: what lettre says, and the relay's code.
fn describe(e: &lettre::transport::smtp::Error) -> String {
    let mut s = e.to_string();
    // lettre joins the relay's lines; keep the record short.
    if s.len() > 500 {
        let mut end = 500;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
    if let Some(code) = e.status() {
        format!("SMTP {code}: {s}")
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use zeroize::Zeroizing;

    fn settings(tls: SmtpTls, host: &str) -> SmtpSettings {
        SmtpSettings {
            host: host.into(),
            port: 2525,
            username: None,
            password: None,
            from: "Acme <no-reply@acme.test>".into(),
            tls,
        }
    }

    #[test]
    fn plain_smtp_only_on_loopback() {
        assert!(Smtp::new(
            &settings(SmtpTls::None, "127.0.0.1"),
            Duration::from_secs(1)
        )
        .is_ok());
        assert!(Smtp::new(
            &settings(SmtpTls::None, "localhost"),
            Duration::from_secs(1)
        )
        .is_ok());
        assert!(Smtp::new(&settings(SmtpTls::None, "::1"), Duration::from_secs(1)).is_ok());
        let e = Smtp::new(
            &settings(SmtpTls::None, "smtp.acme.test"),
            Duration::from_secs(1),
        )
        .unwrap_err();
        assert!(e.contains("loopback"), "{e}");
        assert!(Smtp::new(
            &settings(SmtpTls::StartTls, "smtp.acme.test"),
            Duration::from_secs(1)
        )
        .is_ok());
        assert!(Smtp::new(
            &settings(SmtpTls::Tls, "smtp.acme.test"),
            Duration::from_secs(1)
        )
        .is_ok());
    }

    #[test]
    fn messages_have_both_parts_and_a_stable_id() {
        let smtp = Smtp::new(
            &settings(SmtpTls::None, "127.0.0.1"),
            Duration::from_secs(1),
        )
        .unwrap();
        let id = Uuid::now_v7();
        let m = Message {
            to: "ada@example.com".into(),
            subject: Zeroizing::new("Hello é".into()),
            text: Zeroizing::new("text body".into()),
            html: Zeroizing::new("<p>html body</p>".into()),
        };
        let raw = String::from_utf8(smtp.build(id, &m).unwrap().formatted()).unwrap();
        assert!(
            raw.contains(&format!("Message-ID: <{id}@acme.test>")),
            "{raw}"
        );
        assert!(raw.contains("From: Acme <no-reply@acme.test>"), "{raw}");
        assert!(raw.contains("To: ada@example.com"), "{raw}");
        assert!(raw.contains("multipart/alternative"), "{raw}");
        assert!(
            raw.contains("text/plain") && raw.contains("text/html"),
            "{raw}"
        );
        let bad = Message {
            to: "not an address".into(),
            ..m
        };
        assert!(smtp.build(id, &bad).is_err());
    }
}
