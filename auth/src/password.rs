//! Passwords: Argon2id PHC hashing and verification, and the password policy.
//!
//! Hashing itself (parameters, bounds, PHC strings, arenas, the hasher) is the `passhash`
//! crate's, re-exported here; this module adds the password policy.

use std::fmt;

pub use passhash::{
    check_hash, hash, verify, Arena, HashBounds, HashError, Hasher, Params, Password,
    StoredHashError, Verification, LEGACY_MEMORY_KIB, MAX_MEMORY_KIB, OUTPUT_LEN, SALT_LEN,
};

/// The password policy: 8 to 128 characters, with an upper-case letter, a lower-case letter
/// and a digit.
pub const MIN_LENGTH: usize = 8;
pub const MAX_LENGTH: usize = 128;

/// The first policy rule a password breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyViolation {
    /// Shorter than the policy's minimum (which it carries).
    MinLength(usize),
    MaxLength,
    Uppercase,
    Lowercase,
    Digit,
    Special,
}

impl PolicyViolation {
    /// A stable machine-readable name of the rule, for API error details.
    pub fn rule(&self) -> &'static str {
        match self {
            PolicyViolation::MinLength(_) => "min_length",
            PolicyViolation::MaxLength => "max_length",
            PolicyViolation::Uppercase => "uppercase",
            PolicyViolation::Lowercase => "lowercase",
            PolicyViolation::Digit => "digit",
            PolicyViolation::Special => "special",
        }
    }

    /// A sentence for people.
    pub fn message(&self) -> String {
        match self {
            PolicyViolation::MinLength(min) => {
                format!("password must be at least {min} characters long (min_length)")
            }
            PolicyViolation::MaxLength => {
                format!("password must be at most {MAX_LENGTH} characters long (max_length)")
            }
            PolicyViolation::Uppercase => {
                "password must contain an upper-case letter (uppercase)".to_string()
            }
            PolicyViolation::Lowercase => {
                "password must contain a lower-case letter (lowercase)".to_string()
            }
            PolicyViolation::Digit => "password must contain a digit (digit)".to_string(),
            PolicyViolation::Special => {
                "password must contain a character that is not a letter or a digit (special)"
                    .to_string()
            }
        }
    }
}

impl fmt::Display for PolicyViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message())
    }
}

impl std::error::Error for PolicyViolation {}

/// A password policy: the server's ([`Policy::default`]), or a tenant's settings over it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    pub min_length: usize,
    pub uppercase: bool,
    pub lowercase: bool,
    pub digit: bool,
    pub special: bool,
}

impl Default for Policy {
    fn default() -> Policy {
        Policy {
            min_length: MIN_LENGTH,
            uppercase: true,
            lowercase: true,
            digit: true,
            special: false,
        }
    }
}

impl Policy {
    /// A tenant's policy: its `security` settings over the server's rules.
    pub fn of(settings: &store::SecuritySettings) -> Policy {
        let d = Policy::default();
        Policy {
            min_length: settings
                .password_min_length
                .map_or(d.min_length, |n| usize::try_from(n).unwrap_or(MAX_LENGTH))
                .clamp(MIN_LENGTH, MAX_LENGTH),
            uppercase: settings.require_uppercase.unwrap_or(d.uppercase),
            lowercase: settings.require_lowercase.unwrap_or(d.lowercase),
            digit: settings.require_numbers.unwrap_or(d.digit),
            special: settings.require_special_chars.unwrap_or(d.special),
        }
    }

    /// Checks a new password, reporting the first rule it breaks. Length is counted in
    /// characters, not bytes, so non-ASCII passwords are not penalised.
    pub fn check(&self, password: &str) -> Result<(), PolicyViolation> {
        let length = password.chars().count();
        if length < self.min_length {
            return Err(PolicyViolation::MinLength(self.min_length));
        }
        if length > MAX_LENGTH {
            return Err(PolicyViolation::MaxLength);
        }
        if self.uppercase && !password.chars().any(char::is_uppercase) {
            return Err(PolicyViolation::Uppercase);
        }
        if self.lowercase && !password.chars().any(char::is_lowercase) {
            return Err(PolicyViolation::Lowercase);
        }
        if self.digit && !password.chars().any(|c| c.is_ascii_digit()) {
            return Err(PolicyViolation::Digit);
        }
        if self.special && password.chars().all(char::is_alphanumeric) {
            return Err(PolicyViolation::Special);
        }
        Ok(())
    }
}

/// Checks a new password against the server's policy (see [`Policy::check`]).
pub fn check_policy(password: &str) -> Result<(), PolicyViolation> {
    Policy::default().check(password)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_rules() {
        assert_eq!(check_policy("Abcdefg1"), Ok(()));
        assert_eq!(check_policy("Abcdef1"), Err(PolicyViolation::MinLength(8)));
        assert_eq!(
            check_policy(&format!("Ab1{}", "x".repeat(126))),
            Err(PolicyViolation::MaxLength)
        );
        assert_eq!(
            check_policy(&format!("Ab1{}", "x".repeat(125))),
            Ok(()),
            "128 characters is allowed"
        );
        assert_eq!(check_policy("abcdefg1"), Err(PolicyViolation::Uppercase));
        assert_eq!(check_policy("ABCDEFG1"), Err(PolicyViolation::Lowercase));
        assert_eq!(check_policy("Abcdefgh"), Err(PolicyViolation::Digit));
        // Eight characters but sixteen bytes: long enough.
        assert_eq!(check_policy("Äöüßéè1a"), Ok(()));
        let strict = Policy::of(&store::SecuritySettings {
            password_min_length: Some(12),
            require_special_chars: Some(true),
            require_uppercase: Some(false),
            ..Default::default()
        });
        assert_eq!(strict.check("abcdefghij1!"), Ok(()));
        assert_eq!(
            strict.check("abcdefgh1!"),
            Err(PolicyViolation::MinLength(12))
        );
        assert_eq!(strict.check("abcdefghijk1"), Err(PolicyViolation::Special));
        let lax = Policy::of(&store::SecuritySettings {
            password_min_length: Some(2),
            ..Default::default()
        });
        assert_eq!(
            lax.min_length, MIN_LENGTH,
            "never below the server's minimum"
        );
        assert_eq!(PolicyViolation::MinLength(8).rule(), "min_length");
        assert_eq!(PolicyViolation::Digit.rule(), "digit");
        assert!(PolicyViolation::Uppercase.message().contains("uppercase"));
        assert_eq!(
            PolicyViolation::MinLength(8).to_string(),
            "password must be at least 8 characters long (min_length)"
        );
    }
}
