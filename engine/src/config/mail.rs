//! The account lifecycle's settings: SMTP (`HELLOJOHN_SMTP_*`), the mail outbox, email
//! templates and links, and MFA.

use super::values::{positive, positive_duration, Reader};
use super::*;

/// How the SMTP connection is protected (`HELLOJOHN_SMTP_TLS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpTls {
    /// Plain connection upgraded with STARTTLS, which is required: a relay that does not
    /// offer it gets no mail (and no credentials). The default; port 587.
    StartTls,
    /// TLS from the first byte (implicit TLS, "SMTPS"); usually port 465.
    Tls,
    /// No TLS at all: only for a relay on loopback (127.0.0.0/8, ::1, localhost).
    None,
}

impl SmtpTls {
    pub fn as_str(self) -> &'static str {
        match self {
            SmtpTls::StartTls => "starttls",
            SmtpTls::Tls => "tls",
            SmtpTls::None => "none",
        }
    }

    fn parse(v: &str) -> Result<SmtpTls, String> {
        match v.to_ascii_lowercase().as_str() {
            "starttls" => Ok(SmtpTls::StartTls),
            "tls" => Ok(SmtpTls::Tls),
            "none" => Ok(SmtpTls::None),
            _ => Err("must be starttls, tls or none".to_string()),
        }
    }
}

/// Where account mail is sent. `None` in [`Config::smtp`] when `HELLOJOHN_SMTP_HOST` is unset:
/// mail is then disabled (it stays in the outbox).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmtpSettings {
    /// A host name or an IP address (IPv6 without brackets).
    pub host: String,
    pub port: u16,
    /// AUTH credentials: both or neither.
    pub username: Option<String>,
    pub password: Option<Secret>,
    /// The `From` of every mail: an address, or `Name <address>`.
    pub from: String,
    pub tls: SmtpTls,
}

/// Whether `host` is loopback: `localhost`, 127.0.0.0/8 or ::1.
pub fn is_loopback_host(host: &str) -> bool {
    let host = host.trim_end_matches('.');
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
        .map(|ip| ip.to_canonical().is_loopback())
        .unwrap_or(false)
}

/// What [`read`] returns, moved into [`Config`].
pub(super) struct Lifecycle {
    pub(super) smtp: Option<SmtpSettings>,
    pub(super) smtp_timeout: Duration,
    pub(super) mail_max_attempts: u32,
    pub(super) email_templates_dir: Option<PathBuf>,
    pub(super) email_verify_ttl: Duration,
    pub(super) password_reset_ttl: Duration,
    pub(super) mfa_issuer: String,
    pub(super) mfa_totp_window: u32,
    pub(super) mfa_challenge_ttl: Duration,
    pub(super) mfa_remember_device_ttl: Duration,
    pub(super) reauth_max_age: Duration,
}

/// Settings that mean an operator wants mail sent: set without a host, the start fails rather
/// than run with mail silently disabled. (`_PORT` and `_TLS` alone do not: a template of
/// variables may carry them with the host left empty.)
const SMTP_KEYS: [&str; 3] = [
    "HELLOJOHN_SMTP_USERNAME",
    "HELLOJOHN_SMTP_PASSWORD",
    "HELLOJOHN_SMTP_FROM",
];

fn error(r: &mut Reader<'_>, key: &str, message: String) {
    r.errors.push(ConfigError {
        key: key.to_string(),
        message,
    });
}

fn smtp(r: &mut Reader<'_>) -> Option<SmtpSettings> {
    let host = r.parse("HELLOJOHN_SMTP_HOST", None, |v| {
        let h = v.trim_start_matches('[').trim_end_matches(']');
        if v.is_empty() {
            Ok(None)
        } else if h.is_empty()
            || h.contains("://")
            || h.chars()
                .any(|c| c.is_whitespace() || c.is_control() || c == '/')
        {
            Err("must be a host name or an IP address, such as smtp.example.com".to_string())
        } else {
            Ok(Some(h.to_string()))
        }
    });
    let port = r.parse("HELLOJOHN_SMTP_PORT", 587, positive::<u16>);
    let username = r.parse("HELLOJOHN_SMTP_USERNAME", None, |v| {
        Ok((!v.is_empty()).then(|| v.to_string()))
    });
    let password = r.parse("HELLOJOHN_SMTP_PASSWORD", None, |v| {
        Ok((!v.is_empty()).then(|| Secret(v.to_string())))
    });
    let from = r.parse("HELLOJOHN_SMTP_FROM", None, |v| {
        if v.is_empty() {
            return Ok(None);
        }
        v.parse::<lettre::message::Mailbox>()
            .map(|_| Some(v.to_string()))
            .map_err(|_| {
                "must be an email address, such as no-reply@example.com or \
                 \"Acme <no-reply@example.com>\""
                    .to_string()
            })
    });
    let tls = r.parse("HELLOJOHN_SMTP_TLS", SmtpTls::StartTls, SmtpTls::parse);
    let Some(host) = host else {
        // Settings for a relay that is not named: most likely a forgotten or misspelt host.
        if r.errors.iter().all(|e| e.key != "HELLOJOHN_SMTP_HOST") {
            for key in SMTP_KEYS {
                if r.raw(key).is_some() && r.errors.iter().all(|e| e.key != key) {
                    error(r, key, "set without HELLOJOHN_SMTP_HOST".to_string());
                }
            }
        }
        return None;
    };
    let mut ok = true;
    if from.is_none() && r.raw("HELLOJOHN_SMTP_FROM").is_none() {
        error(
            r,
            "HELLOJOHN_SMTP_HOST",
            "requires HELLOJOHN_SMTP_FROM, the sender of account mail".to_string(),
        );
        ok = false;
    }
    if username.is_some() != password.is_some() {
        let (key, other) = if username.is_some() {
            ("HELLOJOHN_SMTP_USERNAME", "HELLOJOHN_SMTP_PASSWORD")
        } else {
            ("HELLOJOHN_SMTP_PASSWORD", "HELLOJOHN_SMTP_USERNAME")
        };
        error(r, key, format!("requires {other} too"));
        ok = false;
    }
    if tls == SmtpTls::None && !is_loopback_host(&host) {
        error(
            r,
            "HELLOJOHN_SMTP_TLS",
            format!(
                "none is only allowed for a relay on loopback (127.0.0.0/8, ::1, localhost), \
                 not {host:?}: use starttls or tls"
            ),
        );
        ok = false;
    }
    let from = from?;
    ok.then_some(SmtpSettings {
        host,
        port,
        username,
        password,
        from,
        tls,
    })
}

/// Reads the lifecycle settings, recording every problem in `r`.
pub(super) fn read(r: &mut Reader<'_>) -> Lifecycle {
    let smtp = smtp(r);
    let smtp_timeout = r.parse(
        "HELLOJOHN_SMTP_TIMEOUT",
        Duration::from_secs(10),
        positive_duration,
    );
    let mail_max_attempts = r.parse("HELLOJOHN_MAIL_MAX_ATTEMPTS", 8, positive::<u32>);
    let email_templates_dir = r.parse("HELLOJOHN_EMAIL_TEMPLATES_DIR", None, |v| {
        Ok((!v.is_empty()).then(|| PathBuf::from(v)))
    });
    let email_verify_ttl = r.parse(
        "HELLOJOHN_EMAIL_VERIFY_TTL",
        Duration::from_secs(48 * 3600),
        positive_duration,
    );
    let password_reset_ttl = r.parse(
        "HELLOJOHN_PASSWORD_RESET_TTL",
        Duration::from_secs(3600),
        positive_duration,
    );
    let mfa_issuer = r.parse("HELLOJOHN_MFA_ISSUER", "HelloJohn".to_string(), |v| {
        if v.is_empty() || v.chars().count() > 100 || v.chars().any(char::is_control) {
            Err("must be 1 to 100 printable characters".to_string())
        } else {
            Ok(v.to_string())
        }
    });
    let mfa_totp_window = r.parse("HELLOJOHN_MFA_TOTP_WINDOW", 1, |v| match v.parse::<u32>() {
        Ok(n) if n <= 3 => Ok(n),
        _ => Err("must be 0, 1, 2 or 3 (time steps accepted either side of now)".to_string()),
    });
    let mfa_challenge_ttl = r.parse(
        "HELLOJOHN_MFA_CHALLENGE_TTL",
        Duration::from_secs(300),
        positive_duration,
    );
    let mfa_remember_device_ttl = r.parse(
        "HELLOJOHN_MFA_REMEMBER_DEVICE_TTL",
        Duration::from_secs(30 * 24 * 3600),
        positive_duration,
    );
    let reauth_max_age = r.parse(
        "HELLOJOHN_REAUTH_MAX_AGE",
        Duration::from_secs(600),
        positive_duration,
    );
    Lifecycle {
        reauth_max_age,
        smtp,
        smtp_timeout,
        mail_max_attempts,
        email_templates_dir,
        email_verify_ttl,
        password_reset_ttl,
        mfa_issuer,
        mfa_totp_window,
        mfa_challenge_ttl,
        mfa_remember_device_ttl,
    }
}
