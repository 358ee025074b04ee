//! `hj bench`: the HelloJohn load suite.
//!
//! It drives a running server through its public HTTP API only (it knows nothing of the engine or
//! the storage crates), so the numbers it reports are what a client of the server sees.
//!
//! * `seed` registers `bench-<i>@bench.hellojohn.test` users and writes a seed file.
//! * `run` offers one scenario at a fixed arrival rate (open loop, latency measured from each
//!   request's intended start, so a stalled server shows up as queueing delay instead of a lower
//!   send rate) or with C back-to-back connections (closed loop), and writes `summary.json`,
//!   `latency.hgrm` and `latency.svg`.
//! * `capacity` searches the highest rate that keeps p99 and the error rate under their targets,
//!   next to the raw Argon2 ceiling of the host (`ceiling`).
//!
//! The binary wires this crate in as `hj bench` with [`command`] and [`main`].
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod capacity;
pub mod ceiling;
mod cli;
pub mod client;
pub mod hgrm;
pub mod load;
pub mod metrics;
pub mod report;
pub mod scenario;
pub mod seed;
pub mod stats;
pub mod svg;
pub mod target;
pub mod util;

pub use cli::{command, main};
