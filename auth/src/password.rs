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
    MinLength,
    MaxLength,
    Uppercase,
    Lowercase,
    Digit,
}

impl PolicyViolation {
    /// A stable machine-readable name of the rule, for API error details.
    pub fn rule(&self) -> &'static str {
        match self {
            PolicyViolation::MinLength => "min_length",
            PolicyViolation::MaxLength => "max_length",
            PolicyViolation::Uppercase => "uppercase",
            PolicyViolation::Lowercase => "lowercase",
            PolicyViolation::Digit => "digit",
        }
    }

    /// A sentence for people.
    pub fn message(&self) -> String {
        match self {
            PolicyViolation::MinLength => {
                format!("password must be at least {MIN_LENGTH} characters long (min_length)")
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
        }
    }
}

impl fmt::Display for PolicyViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message())
    }
}

impl std::error::Error for PolicyViolation {}

/// Checks a new password against the policy, reporting the first rule it breaks. Length is
/// counted in characters, not bytes, so non-ASCII passwords are not penalised.
pub fn check_policy(password: &str) -> Result<(), PolicyViolation> {
    let length = password.chars().count();
    if length < MIN_LENGTH {
        return Err(PolicyViolation::MinLength);
    }
    if length > MAX_LENGTH {
        return Err(PolicyViolation::MaxLength);
    }
    if !password.chars().any(char::is_uppercase) {
        return Err(PolicyViolation::Uppercase);
    }
    if !password.chars().any(char::is_lowercase) {
        return Err(PolicyViolation::Lowercase);
    }
    if !password.chars().any(|c| c.is_ascii_digit()) {
        return Err(PolicyViolation::Digit);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_rules() {
        assert_eq!(check_policy("Abcdefg1"), Ok(()));
        assert_eq!(check_policy("Abcdef1"), Err(PolicyViolation::MinLength));
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
        assert_eq!(PolicyViolation::MinLength.rule(), "min_length");
        assert_eq!(PolicyViolation::Digit.rule(), "digit");
        assert!(PolicyViolation::Uppercase.message().contains("uppercase"));
        assert_eq!(
            PolicyViolation::MinLength.to_string(),
            "password must be at least 8 characters long (min_length)"
        );
    }
}
