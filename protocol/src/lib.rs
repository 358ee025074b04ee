#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]
//! HelloJohn wire types: request and response bodies, error codes and JSON encoding.
//!
//! This crate does no I/O. Only it knows JSON: the engine converts these types into domain
//! values at the handler and back.

pub mod account;
pub mod admin;
pub mod admin_hooks;
pub mod admin_settings;
pub mod admin_users;
pub mod auth;
pub mod error;
pub mod grant;
pub mod json;
pub mod metadata;
pub mod oidc;
pub mod system;
pub mod token;
pub mod webhook;

pub use error::{ApiError, Detail, DetailValue, ErrorCode, OAuthError, OAuthErrorCode};
pub use grant::GrantType;

#[cfg(test)]
mod props;
