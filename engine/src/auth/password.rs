//! Passwords: Argon2id PHC hashing and verification, and the password policy.
//!
//! Hashing is CPU- and memory-heavy by design, so nothing here may run on an event loop: the
//! [`crate::auth::hashpool::HashPool`] runs it on dedicated threads. Each of those threads owns
//! a [`Hasher`], which keeps its Argon2 working memory between jobs instead of allocating (and
//! page-faulting) tens of MiB for every sign-in.

use std::fmt;

use argon2::password_hash::{PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Version};
use rand::RngCore as _;
use subtle::ConstantTimeEq as _;
use zeroize::Zeroize as _;

use crate::config::Config;

/// Length of the Argon2 tag in the PHC strings this engine writes (as HelloJohn Go does).
pub const OUTPUT_LEN: usize = 32;
/// Length of the random salt of new hashes (the PHC recommendation).
pub const SALT_LEN: usize = 16;
/// Tags longer than this in a stored PHC string are refused as malformed: no real hasher
/// writes them, and the limit keeps the output buffer on the stack.
const MAX_OUTPUT_LEN: usize = 128;
/// The largest salt accepted in a stored PHC string (the PHC format's own limit is 48 bytes).
const MAX_SALT_LEN: usize = 64;

/// Argon2id cost parameters for new hashes (`HELLOJOHN_ARGON2_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Params {
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
}

impl Params {
    /// The OWASP recommendation, which is also the engine's default: m=19456 KiB, t=2, p=1.
    pub const OWASP: Params = Params {
        memory_kib: 19_456,
        iterations: 2,
        parallelism: 1,
    };

    pub fn from_config(config: &Config) -> Params {
        Params {
            memory_kib: config.argon2_memory_kib,
            iterations: config.argon2_iterations,
            parallelism: config.argon2_parallelism,
        }
    }

    /// The argon2 crate's parameters, refusing combinations Argon2 cannot use (for example
    /// less than 8 KiB of memory per lane).
    pub fn to_argon2(&self) -> Result<argon2::Params, HashError> {
        argon2::Params::new(
            self.memory_kib,
            self.iterations,
            self.parallelism,
            Some(OUTPUT_LEN),
        )
        .map_err(|e| HashError::InvalidParams(e.to_string()))
    }
}

impl Default for Params {
    fn default() -> Params {
        Params::OWASP
    }
}

/// A password in memory. Its `Debug` never shows it, so it cannot leak through a log line or
/// a derived `Debug` of a request, and its bytes are wiped when it is dropped.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl Password {
    pub fn new(password: impl Into<String>) -> Password {
        Password(password.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<String> for Password {
    fn from(password: String) -> Password {
        Password(password)
    }
}

impl From<&str> for Password {
    fn from(password: &str) -> Password {
        Password(password.to_string())
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

impl Drop for Password {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

/// The outcome of checking a password against a stored hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verification {
    /// The password is right. `needs_rehash` is true when the stored hash was made with other
    /// parameters than the current ones, so the caller should store a fresh hash.
    Match { needs_rehash: bool },
    /// The password is wrong, or the stored hash is unusable.
    Mismatch,
}

impl Verification {
    pub fn is_match(&self) -> bool {
        matches!(self, Verification::Match { .. })
    }
}

/// Hashing failed. With validated parameters this cannot happen in practice.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HashError {
    #[error("invalid Argon2 parameters: {0}")]
    InvalidParams(String),
    #[error("password hashing failed: {0}")]
    Failed(String),
}

/// Computes Argon2 hashes, reusing one working-memory buffer across calls.
pub struct Hasher {
    params: Params,
    argon2: Argon2<'static>,
    /// Blocks the current parameters need.
    blocks: usize,
    /// Allocated on first use and sized for the current parameters, so an idle thread holds
    /// nothing. Hashes made with more memory (older, costlier settings) get a temporary
    /// buffer, so that one legacy hash does not pin its memory.
    memory: Vec<Block>,
}

impl Hasher {
    pub fn new(params: Params) -> Result<Hasher, HashError> {
        let argon2_params = params.to_argon2()?;
        Ok(Hasher {
            params,
            blocks: argon2_params.block_count(),
            argon2: Argon2::new(Algorithm::Argon2id, Version::V0x13, argon2_params),
            memory: Vec::new(),
        })
    }

    /// The reusable buffer when `needed` blocks fit the current parameters' size.
    fn memory_for(&mut self, needed: usize) -> Option<&mut [Block]> {
        if needed > self.blocks {
            return None;
        }
        if self.memory.len() < self.blocks {
            self.memory.resize(self.blocks, Block::default());
        }
        Some(&mut self.memory)
    }

    pub fn params(&self) -> Params {
        self.params
    }

    /// A PHC string (`$argon2id$v=19$m=…,t=…,p=…$salt$tag`) of `password` with a random
    /// 16-byte salt.
    pub fn hash(&mut self, password: &str) -> Result<String, HashError> {
        let mut salt = [0u8; SALT_LEN];
        rand::rngs::OsRng.fill_bytes(&mut salt);
        let mut tag = [0u8; OUTPUT_LEN];
        let argon2 = self.argon2.clone();
        let hashed = match self.memory_for(self.blocks) {
            Some(memory) => {
                argon2.hash_password_into_with_memory(password.as_bytes(), &salt, &mut tag, memory)
            }
            None => argon2.hash_password_into(password.as_bytes(), &salt, &mut tag),
        };
        hashed.map_err(|e| HashError::Failed(e.to_string()))?;
        let salt = SaltString::encode_b64(&salt).map_err(|e| HashError::Failed(e.to_string()))?;
        let tag_b64 =
            base64::Engine::encode(&base64::engine::general_purpose::STANDARD_NO_PAD, tag);
        Ok(format!(
            "$argon2id$v=19$m={},t={},p={}${}${}",
            self.params.memory_kib,
            self.params.iterations,
            self.params.parallelism,
            salt.as_str(),
            tag_b64
        ))
    }

    /// Checks `password` against a stored PHC string, whatever Argon2 parameters it was made
    /// with. A malformed string is a mismatch, logged without the string itself (it is a
    /// credential).
    pub fn verify(&mut self, password: &str, phc: &str) -> Verification {
        match self.try_verify(password, phc) {
            Ok(v) => v,
            Err(reason) => {
                tracing::warn!(
                    reason,
                    "stored password hash is not a usable Argon2 PHC string; treating it as a mismatch"
                );
                Verification::Mismatch
            }
        }
    }

    fn try_verify(&mut self, password: &str, phc: &str) -> Result<Verification, String> {
        let parsed = PasswordHash::new(phc).map_err(|e| e.to_string())?;
        let algorithm = Algorithm::try_from(parsed.algorithm).map_err(|e| e.to_string())?;
        // A PHC string without `v=` predates version 1.3 of Argon2 (RFC 9106 §3.1).
        let version = match parsed.version {
            Some(v) => Version::try_from(v).map_err(|e| e.to_string())?,
            None => Version::V0x10,
        };
        let expected = parsed.hash.ok_or("the hash has no tag")?;
        if expected.len() > MAX_OUTPUT_LEN {
            return Err("the tag is too long".to_string());
        }
        let salt = parsed.salt.ok_or("the hash has no salt")?;
        let mut salt_buf = [0u8; MAX_SALT_LEN];
        let salt = salt
            .decode_b64(&mut salt_buf)
            .map_err(|e| format!("salt: {e}"))?;
        let params = argon2::Params::try_from(&parsed).map_err(|e| e.to_string())?;
        let current = self.argon2.params();
        let needs_rehash = algorithm != Algorithm::Argon2id
            || version != Version::V0x13
            || params.m_cost() != current.m_cost()
            || params.t_cost() != current.t_cost()
            || params.p_cost() != current.p_cost()
            || expected.len() != OUTPUT_LEN
            || salt.len() < SALT_LEN
            || !params.keyid().is_empty()
            || !params.data().is_empty();

        let mut out_buf = [0u8; MAX_OUTPUT_LEN];
        let out = &mut out_buf[..expected.len()];
        let blocks = params.block_count();
        let argon2 = Argon2::new(algorithm, version, params);
        let hashed = match self.memory_for(blocks) {
            Some(memory) => {
                argon2.hash_password_into_with_memory(password.as_bytes(), salt, out, memory)
            }
            None => argon2.hash_password_into(password.as_bytes(), salt, out),
        };
        hashed.map_err(|e| e.to_string())?;
        let equal: bool = out.ct_eq(expected.as_bytes()).into();
        out_buf.zeroize();
        Ok(if equal {
            Verification::Match { needs_rehash }
        } else {
            Verification::Mismatch
        })
    }
}

/// Hashes `password` with `params` (allocating fresh working memory; the hash pool's threads
/// use a long-lived [`Hasher`] instead).
pub fn hash(password: &str, params: &Params) -> Result<String, HashError> {
    Hasher::new(*params)?.hash(password)
}

/// Verifies `password` against `phc`; `current` decides whether a rehash is due.
pub fn verify(password: &str, phc: &str, current: &Params) -> Verification {
    match Hasher::new(*current) {
        Ok(mut hasher) => hasher.verify(password, phc),
        Err(e) => {
            tracing::error!(error = %e, "cannot verify a password: invalid current Argon2 parameters");
            Verification::Mismatch
        }
    }
}

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
    use argon2::password_hash::PasswordHasher as _;

    /// Cheap parameters so that tests run quickly.
    const CHEAP: Params = Params {
        memory_kib: 64,
        iterations: 1,
        parallelism: 1,
    };

    #[test]
    fn hash_is_phc_with_current_params_and_verifies() {
        let phc = hash("Correct horse 1", &CHEAP).unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=64,t=1,p=1$"), "{phc}");
        let parsed = PasswordHash::new(&phc).unwrap();
        assert_eq!(parsed.salt.unwrap().len(), 22); // 16 bytes in unpadded base64
        assert_eq!(parsed.hash.unwrap().len(), OUTPUT_LEN);
        assert_eq!(
            verify("Correct horse 1", &phc, &CHEAP),
            Verification::Match {
                needs_rehash: false
            }
        );
        assert_eq!(
            verify("Correct horse 2", &phc, &CHEAP),
            Verification::Mismatch
        );
        // Two hashes of one password differ (random salt).
        assert_ne!(phc, hash("Correct horse 1", &CHEAP).unwrap());
    }

    #[test]
    fn our_hash_verifies_with_the_argon2_crate() {
        use argon2::password_hash::PasswordVerifier as _;
        let phc = hash("Tr0ub4dor&3", &CHEAP).unwrap();
        let parsed = PasswordHash::new(&phc).unwrap();
        assert!(Argon2::default()
            .verify_password(b"Tr0ub4dor&3", &parsed)
            .is_ok());
        assert!(Argon2::default()
            .verify_password(b"wrong", &parsed)
            .is_err());
    }

    #[test]
    fn hellojohn_go_parameters_verify_and_need_rehash() {
        let go = argon2::Params::new(65_536, 3, 1, Some(32)).unwrap();
        let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, go);
        let salt = SaltString::encode_b64(b"0123456789abcdef").unwrap();
        let phc = argon2
            .hash_password(b"S3cret-password", &salt)
            .unwrap()
            .to_string();
        assert!(phc.starts_with("$argon2id$v=19$m=65536,t=3,p=1$"), "{phc}");
        // The current parameters use less memory than the stored hash: the temporary buffer
        // path is taken.
        let mut hasher = Hasher::new(Params::OWASP).unwrap();
        assert_eq!(
            hasher.verify("S3cret-password", &phc),
            Verification::Match { needs_rehash: true }
        );
        assert_eq!(
            hasher.verify("S3cret-passworD", &phc),
            Verification::Mismatch
        );
        // With the same parameters as the stored hash, no rehash is due.
        let same = Params {
            memory_kib: 65_536,
            iterations: 3,
            parallelism: 1,
        };
        assert_eq!(
            verify("S3cret-password", &phc, &same),
            Verification::Match {
                needs_rehash: false
            }
        );
    }

    #[test]
    fn other_variants_verify_and_need_rehash() {
        let p = argon2::Params::new(64, 1, 1, Some(32)).unwrap();
        let salt = SaltString::encode_b64(b"0123456789abcdef").unwrap();
        for (alg, ver) in [
            (Algorithm::Argon2i, Version::V0x13),
            (Algorithm::Argon2id, Version::V0x10),
        ] {
            let phc = Argon2::new(alg, ver, p.clone())
                .hash_password(b"pw", &salt)
                .unwrap()
                .to_string();
            assert_eq!(
                verify("pw", &phc, &CHEAP),
                Verification::Match { needs_rehash: true },
                "{phc}"
            );
        }
        // Changing only the iterations also calls for a rehash.
        let phc = hash("pw", &CHEAP).unwrap();
        let more = Params {
            iterations: 2,
            ..CHEAP
        };
        assert_eq!(
            verify("pw", &phc, &more),
            Verification::Match { needs_rehash: true }
        );
    }

    #[test]
    fn malformed_phc_is_a_mismatch() {
        let good = hash("pw", &CHEAP).unwrap();
        let truncated = &good[..good.len() - 10];
        for bad in [
            "",
            "not a hash",
            "$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHQ",
            "$bcrypt$v=19$m=64,t=1,p=1$c2FsdHNhbHRzYWx0$AAAA",
            "$argon2id$v=19$m=1,t=1,p=1$c2FsdHNhbHRzYWx0$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            "$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW",
        ] {
            assert_eq!(verify("pw", bad, &CHEAP), Verification::Mismatch, "{bad}");
        }
        // A truncated tag is a different tag: a mismatch, not a crash.
        assert_eq!(verify("pw", truncated, &CHEAP), Verification::Mismatch);
    }

    #[test]
    fn rfc9106_argon2id_test_vector() {
        // RFC 9106 §5.3.
        let params = argon2::ParamsBuilder::new()
            .m_cost(32)
            .t_cost(3)
            .p_cost(4)
            .data(argon2::AssociatedData::new(&[0x04; 12]).unwrap())
            .output_len(32)
            .build()
            .unwrap();
        let secret = [0x03u8; 8];
        let argon2 =
            Argon2::new_with_secret(&secret, Algorithm::Argon2id, Version::V0x13, params).unwrap();
        let mut tag = [0u8; 32];
        argon2
            .hash_password_into(&[0x01; 32], &[0x02; 16], &mut tag)
            .unwrap();
        let expected: [u8; 32] = [
            0x0d, 0x64, 0x0d, 0xf5, 0x8d, 0x78, 0x76, 0x6c, 0x08, 0xc0, 0x37, 0xa3, 0x4a, 0x8b,
            0x53, 0xc9, 0xd0, 0x1e, 0xf0, 0x45, 0x2d, 0x75, 0xb6, 0x5e, 0xb5, 0x25, 0x20, 0xe9,
            0x6b, 0x01, 0xe6, 0x59,
        ];
        assert_eq!(tag, expected);
    }

    #[test]
    fn invalid_params_are_refused() {
        let bad = Params {
            memory_kib: 1,
            iterations: 1,
            parallelism: 1,
        };
        assert!(matches!(hash("pw", &bad), Err(HashError::InvalidParams(_))));
        assert!(Hasher::new(Params::OWASP).is_ok());
    }

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

    #[test]
    fn password_debug_is_redacted() {
        let p = Password::new("hunter2");
        assert_eq!(format!("{p:?}"), "Password(<redacted>)");
        assert_eq!(p.expose(), "hunter2");
    }
}
