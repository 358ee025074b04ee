//! The engine's integration tests: each starts a real server on 127.0.0.1:0 and talks HTTP.

extern crate hellojohn_engine as engine;

mod abuse;
mod accounts;
mod admin;
mod admin_fuzz_regressions;
mod admin_openapi;
mod admin_openapi_types;
mod attacks;
mod auth;
mod client_policy;
mod code_flow;
mod data_dir;
mod db_calls;
mod email_flows;
mod hostile;
mod input;
mod issuer;
mod keys;
mod mail;
mod metrics_access;
mod mfa;
mod oauth;
mod oidc_provider;
mod overload;
mod public;
mod ratelimit;
mod server;
mod session;
mod shared_client_ids;
mod smtp;
mod store_faults;
mod stored_hashes;
mod support;
mod tolerance;
mod webhook_receiver;
mod webhooks;
