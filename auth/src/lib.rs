#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]
//! HelloJohn's auth domain: what a sign-in, a sign-up, a refresh or a sign-out decides, and
//! nothing about how it travels.
//!
//! * [`flows`]: register, password sign-in, refresh rotation, sign-out, cookie sessions.
//!   Plain values in, [`flows::Outcome`] out; denials are outcomes, faults are errors.
//! * [`password`]: the password policy (hashing itself is the `passhash` crate);
//!   [`hashpool`]: the dedicated hashing threads with admission by expected wait.
//! * [`tokens`]: EdDSA access tokens, opaque secrets, CSRF tokens; [`keys`]: the master key
//!   and the signing-key ring.
//! * [`events`]: the event drafts the flows hand to the store (the webhook outbox).
//! * [`limiter`]: the rate-limit policy (GCRA) and the in-process limiter.
//! * [`api_keys`]: the admin API's key tokens (made, hashed) and their scopes.
//! * [`policy`]: which client may get which token (client type, grants, scopes, first or
//!   third party, verified email).
//! * [`token_cache`]: per-shard caches of verified access tokens and their users.
//! * [`ports`]: what the domain needs from outside and does not own: the shared session cache
//!   and the shared rate limiter (Redis in the engine). The store is `store::Store`.
//!
//! This crate has no HTTP, JSON or Redis dependency; the engine is the shell around it.

pub mod api_keys;
pub mod client_rules;
pub mod client_secret;
pub mod events;
pub mod flows;
pub mod hashpool;
pub mod keys;
pub mod limiter;
pub mod mfa;
pub mod oauth;
pub mod password;
pub mod policy;
pub mod ports;
pub mod revocations;
pub mod token_cache;
pub mod tokens;

pub use hashpool::{HashPool, HashStats, Overloaded};
pub use keys::{KeyError, KeyRing, MasterKey};
pub use password::{check_policy, HashError, Params, Password, PolicyViolation, Verification};
pub use tokens::{
    constant_time_eq, hash_opaque, new_csrf_token, new_opaque_token, CsrfKey, TokenError,
};
