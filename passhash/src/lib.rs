#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]
//! Argon2id password hashing as the engine serves it: parameters, the bounds on stored hashes,
//! PHC strings, the per-thread [`Arena`] and the [`Hasher`] that uses it.
//!
//! A leaf crate (no engine, no I/O beyond the memory it maps), so that `hj bench ceiling`
//! measures the raw Argon2 ceiling with the very code that serves sign-ins, and the engine's
//! hash pool stays the only place that decides *when* to hash.
//!
//! Hashing is CPU- and memory-heavy by design, so nothing here may run on an event loop: the
//! engine's hash pool runs it on dedicated threads. Each of those threads owns a [`Hasher`] with
//! an [`Arena`]: Argon2 working memory mapped once, at start, large enough for the current
//! parameters and for HelloJohn's own m=65536 hashes, faulted in for the current parameters
//! before the first sign-in, and reused by every job instead of allocating (and page-faulting)
//! tens of MiB per sign-in. An idle thread gives its pages back.
//!
//! A stored PHC string names its own cost, and verifying it costs what it names, so no stored
//! hash runs unless it is within [`HashBounds`] (`HELLOJOHN_ARGON2_MAX_*`): [`check_hash`] is
//! the one check, made before any verification and before any hash is written (see there).
//!
//! The implementation is RustCrypto's `argon2` crate. With its memory reused it was the fastest
//! Argon2id measured on the reference host: 15 % ahead of libsodium at the default parameters
//! and 12 % at m=65536 (libsodium maps and wipes fresh memory for every hash), 35 % ahead of
//! the reference C; see `perf/results/argon2-impls.md`.

// clippy.toml keeps `Hasher::hash`/`verify` and `hash`/`verify` off the event loops by
// disallowing them everywhere but the hash pool's threads; this crate is where they are made.
#![allow(clippy::disallowed_methods)]

use std::fmt;

use argon2::password_hash::PasswordHash;
use argon2::{Algorithm, Version};
use zeroize::Zeroize as _;

mod arena;
pub mod ceiling;
mod hasher;

pub use arena::Arena;
pub use hasher::{hash, verify, Hasher};

/// Length of the Argon2 tag in the PHC strings this engine writes (as HelloJohn Go does).
pub const OUTPUT_LEN: usize = 32;
/// Length of the random salt of new hashes (the PHC recommendation).
pub const SALT_LEN: usize = 16;
/// Tags longer than this in a stored PHC string are refused as malformed: no real hasher
/// writes them, and the limit keeps the output buffer on the stack.
pub(crate) const MAX_OUTPUT_LEN: usize = 128;
/// The largest salt accepted in a stored PHC string (the PHC format's own limit is 48 bytes).
pub(crate) const MAX_SALT_LEN: usize = 64;

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

    /// The size of a hashing thread's arena in KiB: the current memory or HelloJohn's
    /// [`LEGACY_MEMORY_KIB`], whichever is larger.
    pub fn arena_kib(&self) -> u32 {
        self.memory_kib.max(LEGACY_MEMORY_KIB)
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

/// The memory of HelloJohn's own (Go) hashes, m=65536 KiB: every hashing thread's arena is at
/// least this large, so verifying those hashes never allocates.
pub const LEGACY_MEMORY_KIB: u32 = 65_536;

/// The largest Argon2 cost a stored hash may name (`HELLOJOHN_ARGON2_MAX_MEMORY_KIB`,
/// `_MAX_ITERATIONS`, `_MAX_PARALLELISM`).
///
/// A PHC string carries its own parameters and a verification costs what they say: t=300 at
/// 19 MiB holds a hashing thread for seconds per sign-in attempt, t=2^32-1 holds it for ever,
/// and m in the gigabytes makes it allocate them. Whoever can put a row into the password table
/// (a restored or imported dump, a corrupt row, a compromised admin path) could otherwise stall
/// every sign-in with a handful of requests. A hash beyond the bounds never runs: it is a
/// mismatch (see [`check_hash`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HashBounds {
    pub max_memory_kib: u32,
    pub max_iterations: u32,
    pub max_parallelism: u32,
}

impl HashBounds {
    /// 256 MiB, t=10, p=8: four times HelloJohn's own m=65536 and five times OWASP's t=2,
    /// while a hash at the bounds still ends in seconds, not minutes.
    pub const DEFAULT: HashBounds = HashBounds {
        max_memory_kib: 262_144,
        max_iterations: 10,
        max_parallelism: 8,
    };

    /// Whether hashes made with `params` are within the bounds.
    pub fn admits(&self, params: &Params) -> bool {
        self.admits_costs(params.memory_kib, params.iterations, params.parallelism)
    }

    fn admits_costs(&self, memory_kib: u32, iterations: u32, parallelism: u32) -> bool {
        memory_kib <= self.max_memory_kib
            && iterations <= self.max_iterations
            && parallelism <= self.max_parallelism
    }

    /// These bounds, raised where needed to admit `params`: a hasher always verifies the hashes
    /// it makes itself.
    pub(crate) fn admitting(self, params: &Params) -> HashBounds {
        HashBounds {
            max_memory_kib: self.max_memory_kib.max(params.memory_kib),
            max_iterations: self.max_iterations.max(params.iterations),
            max_parallelism: self.max_parallelism.max(params.parallelism),
        }
    }
}

/// The default largest memory of a stored hash, [`HashBounds::DEFAULT`]'s: 256 MiB.
pub const MAX_MEMORY_KIB: u32 = HashBounds::DEFAULT.max_memory_kib;
const _: () = assert!(LEGACY_MEMORY_KIB <= MAX_MEMORY_KIB);

impl Default for HashBounds {
    fn default() -> HashBounds {
        HashBounds::DEFAULT
    }
}

/// Why a stored PHC string is refused without running Argon2. The message never contains the
/// string itself (it is a credential), only what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoredHashError {
    #[error("not a usable Argon2 PHC string: {0}")]
    Malformed(String),
    #[error(
        "its Argon2 cost m={memory_kib},t={iterations},p={parallelism} exceeds the limits \
         m={},t={},p={} (HELLOJOHN_ARGON2_MAX_*)",
        bounds.max_memory_kib,
        bounds.max_iterations,
        bounds.max_parallelism
    )]
    OutOfBounds {
        memory_kib: u32,
        iterations: u32,
        parallelism: u32,
        bounds: HashBounds,
    },
}

/// A stored PHC string, parsed and checked, ready to verify against.
pub(crate) struct Stored<'a> {
    pub(crate) algorithm: Algorithm,
    pub(crate) version: Version,
    pub(crate) params: argon2::Params,
    pub(crate) expected: argon2::password_hash::Output,
    pub(crate) salt: &'a [u8],
}

/// Parses `phc` and checks it against `bounds` without running Argon2; the salt is decoded
/// into `salt_buf`.
pub(crate) fn parse_stored<'a>(
    phc: &str,
    bounds: &HashBounds,
    salt_buf: &'a mut [u8; MAX_SALT_LEN],
) -> Result<Stored<'a>, StoredHashError> {
    let malformed = |e: &dyn fmt::Display| StoredHashError::Malformed(e.to_string());
    let parsed = PasswordHash::new(phc).map_err(|e| malformed(&e))?;
    let algorithm = Algorithm::try_from(parsed.algorithm).map_err(|e| malformed(&e))?;
    // A PHC string without `v=` predates version 1.3 of Argon2 (RFC 9106 §3.1).
    let version = match parsed.version {
        Some(v) => Version::try_from(v).map_err(|e| malformed(&e))?,
        None => Version::V0x10,
    };
    let expected = parsed
        .hash
        .ok_or_else(|| malformed(&"the hash has no tag"))?;
    if expected.len() > MAX_OUTPUT_LEN {
        return Err(malformed(&"the tag is too long"));
    }
    let salt = parsed
        .salt
        .ok_or_else(|| malformed(&"the hash has no salt"))?
        .decode_b64(salt_buf)
        .map_err(|e| malformed(&format!("salt: {e}")))?;
    let params = argon2::Params::try_from(&parsed).map_err(|e| malformed(&e))?;
    if !bounds.admits_costs(params.m_cost(), params.t_cost(), params.p_cost()) {
        return Err(StoredHashError::OutOfBounds {
            memory_kib: params.m_cost(),
            iterations: params.t_cost(),
            parallelism: params.p_cost(),
            bounds: *bounds,
        });
    }
    Ok(Stored {
        algorithm,
        version,
        params,
        expected,
        salt,
    })
}

/// The one check of a stored password hash: `Ok` when `phc` is an Argon2 PHC string this
/// engine can verify and its cost is within `bounds`. Nothing runs Argon2 on a hash that fails
/// it: every verification goes through it ([`Hasher::verify`] treats a failure as a mismatch,
/// and the hash pool verifies its dummy hash in its place, so a refused hash costs and answers
/// exactly what a wrong password does).
///
/// Every hash written to the store must pass it first. Today the engine writes only the hashes
/// its pool makes (the engine's `HashPool::hash` checks them): at sign-up and when
/// a sign-in upgrades an old hash. A path that imports hashes from elsewhere (a migration from
/// another system, an admin command) must refuse those that fail it, so that an imported
/// account is not one that cannot sign in or that stalls the pool.
pub fn check_hash(phc: &str, bounds: &HashBounds) -> Result<(), StoredHashError> {
    let mut salt_buf = [0u8; MAX_SALT_LEN];
    parse_stored(phc, bounds, &mut salt_buf).map(|_| ())
}

#[cfg(test)]
mod tests;
