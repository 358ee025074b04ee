#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]
//! The HelloJohn store's backends: the embedded SQLite default, PostgreSQL, and Redis (the
//! shared cache, limiter and worker guards).
//!
//! Each implements the contract of crate `store` (the records and the traits the domain owns);
//! only `engine` and `hj` depend on this crate, to pick a backend at start-up.

mod admin_rotation;
pub mod postgres;
pub mod redis;
pub mod releases;
pub mod sqlite;
mod tolerant;

// The contract, under the paths the backends' modules name it by (`crate::model::User`,
// `crate::StoreError`). Private: callers name the contract's crate.
#[allow(unused_imports)]
use store::{authcode, event_meta, lifecycle, model, prelude::*, rotation, signing, *};
