//! The account lifecycle's records: MFA (a TOTP factor, recovery codes, sign-in challenges,
//! remembered devices), single-use email tokens (verification, password reset) and the mail
//! outbox. Secrets are stored as SHA-256 ([`TokenHash`]) or sealed by the engine under the
//! master key; the store never sees them in the clear.

use uuid::Uuid;

use crate::{NewRefreshToken, NewSession, TokenHash};

/// The sign-in a change that ends the user's others keeps: the caller's refresh family or
/// cookie session.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KeepSignIn {
    pub family_id: Option<Uuid>,
    pub session: Option<TokenHash>,
}

/// A user's TOTP factor as stored.
#[derive(Clone, PartialEq, Eq)]
pub struct TotpFactor {
    pub user_id: Uuid,
    /// The shared secret sealed under the master key (the user id as AAD).
    pub secret_sealed: Vec<u8>,
    /// When a first code proved it; `None` while enrolment is unfinished (not yet a factor).
    pub confirmed_at: Option<i64>,
    /// The time step of the last code accepted: only later steps are accepted again.
    pub last_step: Option<i64>,
    pub created_at: i64,
}

impl std::fmt::Debug for TotpFactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TotpFactor")
            .field("user_id", &self.user_id)
            .field("secret_sealed", &"<redacted>")
            .field("confirmed_at", &self.confirmed_at)
            .field("last_step", &self.last_step)
            .finish()
    }
}

/// What a finished MFA challenge gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChallengeKind {
    /// Tokens (`/v2/auth/login`).
    Tokens,
    /// A cookie session (`/v2/session/login`).
    Session,
    /// A cookie session on the hosted sign-in page, which alone may complete it (and completes
    /// nothing else).
    Page,
}

impl ChallengeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ChallengeKind::Tokens => "tokens",
            ChallengeKind::Session => "session",
            ChallengeKind::Page => "page",
        }
    }

    pub fn parse(text: &str) -> Option<ChallengeKind> {
        match text {
            "tokens" => Some(ChallengeKind::Tokens),
            "session" => Some(ChallengeKind::Session),
            "page" => Some(ChallengeKind::Page),
            _ => None,
        }
    }
}

/// A sign-in whose password was right, waiting for its second factor. Found by the SHA-256 of
/// its `mfa_token`.
#[derive(Clone, PartialEq, Eq)]
pub struct MfaChallenge {
    pub token_hash: TokenHash,
    pub user_id: Uuid,
    pub tenant_id: Uuid,
    pub client_id: String,
    pub kind: ChallengeKind,
    /// Wrong codes presented so far.
    pub failures: u32,
    pub expires_at: i64,
    pub completed_at: Option<i64>,
    pub created_at: i64,
}

impl std::fmt::Debug for MfaChallenge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MfaChallenge")
            .field("token_hash", &"<redacted>")
            .field("user_id", &self.user_id)
            .field("tenant_id", &self.tenant_id)
            .field("client_id", &self.client_id)
            .field("kind", &self.kind)
            .field("failures", &self.failures)
            .field("expires_at", &self.expires_at)
            .field("completed_at", &self.completed_at)
            .finish()
    }
}

/// What completing a challenge writes in the same transaction as marking it completed.
#[derive(Debug, Default)]
pub struct ChallengeGrant {
    /// The refresh token of a `Tokens` challenge (a new family).
    pub refresh: Option<NewRefreshToken>,
    /// The cookie session of a `Session` challenge.
    pub session: Option<NewSession>,
    /// A device to remember: the SHA-256 of the cookie's value and its expiry.
    pub trusted_device: Option<(TokenHash, i64)>,
    /// `user.login` (with `amr`), completed from the challenge's user and tenant.
    pub event: Option<crate::EventDraft>,
}

/// What an email token is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmailPurpose {
    /// Proves the address (`GET /v2/auth/verify-email?token=`).
    Verify,
    /// Sets a new password (`POST /v2/auth/reset`).
    Reset,
}

impl EmailPurpose {
    pub fn as_str(self) -> &'static str {
        match self {
            EmailPurpose::Verify => "verify",
            EmailPurpose::Reset => "reset",
        }
    }

    pub fn parse(text: &str) -> Option<EmailPurpose> {
        match text {
            "verify" => Some(EmailPurpose::Verify),
            "reset" => Some(EmailPurpose::Reset),
            _ => None,
        }
    }
}

/// A single-use email token as stored (found by the SHA-256 of the token).
#[derive(Clone, PartialEq, Eq)]
pub struct EmailToken {
    pub token_hash: TokenHash,
    pub purpose: EmailPurpose,
    pub user_id: Uuid,
    pub tenant_id: Uuid,
    pub client_id: String,
    /// The address it was sent to: a verification token verifies only this address.
    pub email: String,
    /// Where the browser goes after verification (already checked against the client's).
    pub redirect_uri: Option<String>,
    pub expires_at: i64,
    pub used_at: Option<i64>,
    pub created_at: i64,
}

impl std::fmt::Debug for EmailToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmailToken")
            .field("token_hash", &"<redacted>")
            .field("purpose", &self.purpose)
            .field("user_id", &self.user_id)
            .field("client_id", &self.client_id)
            .field("expires_at", &self.expires_at)
            .field("used_at", &self.used_at)
            .finish()
    }
}

/// A mail to send, written to the outbox with the change that causes it.
#[derive(Clone, PartialEq, Eq)]
pub struct NewMail {
    /// UUIDv7.
    pub id: Uuid,
    pub tenant_id: Uuid,
    /// `verify_email`, `password_reset`, ...: for operators' listings and metrics.
    pub kind: String,
    /// The message (recipient, subject, bodies) sealed by the engine under the master key with
    /// the mail id as AAD: it carries a single-use token.
    pub message_sealed: Vec<u8>,
    /// Unix milliseconds: due at once.
    pub created_at_ms: i64,
}

impl std::fmt::Debug for NewMail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewMail")
            .field("id", &self.id)
            .field("tenant_id", &self.tenant_id)
            .field("kind", &self.kind)
            .field("message_sealed", &"<redacted>")
            .finish()
    }
}

/// A mail's state, for operators and tests (`hj mail list`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailRecord {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub kind: String,
    /// `pending`, `failed`, `sent`, `exhausted`.
    pub status: String,
    pub attempts: u32,
    pub last_error: Option<String>,
    pub sent_at_ms: Option<i64>,
    pub created_at: i64,
}
