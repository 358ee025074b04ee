//! The auth domain: passwords and the hash pool, tokens, signing keys.
//!
//! * [`password`]: Argon2id PHC hashing and verification, the password policy.
//! * [`hashpool`]: the dedicated hashing threads with admission by expected wait.
//! * [`tokens`]: EdDSA access tokens, opaque secrets, CSRF tokens.
//! * [`keys`]: the master key and the signing-key ring.

pub mod flows;
pub mod hashpool;
pub mod keys;
pub mod password;
pub mod tokens;

pub use hashpool::{HashPool, Overloaded};
pub use keys::{KeyError, KeyRing, MasterKey};
pub use password::{check_policy, HashError, Params, Password, PolicyViolation, Verification};
pub use tokens::{
    constant_time_eq, hash_opaque, new_csrf_token, new_opaque_token, CsrfKey, TokenError,
};
