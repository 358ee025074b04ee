//! Multi-factor authentication: the pure parts.
//!
//! * [`totp`]: time-based one-time passwords (RFC 6238 over RFC 4226 HOTP, HMAC-SHA1, the
//!   algorithm every authenticator app supports): secrets, base32, verification with a window
//!   and the matched step (for replay refusal), `otpauth://` enrolment URLs.
//! * [`recovery`]: single-use recovery codes: generation, normalisation of what a user types,
//!   and the hash that is stored instead of the code.
//!
//! Nothing here stores anything or reads the clock: callers pass the time and keep the state
//! (the last accepted step, the recovery-code hashes).

pub mod recovery;
pub mod totp;

pub use recovery::RECOVERY_CODES;
pub use totp::{TotpParams, TotpSecret};
