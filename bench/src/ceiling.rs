//! The raw Argon2id ceiling of this host: `workers` threads verifying a password back to back,
//! each with the hasher a hash-pool thread of the server owns (`passhash::ceiling`: the same
//! crate, arena and code path as a sign-in's verification). A sign-in costs exactly one Argon2
//! verification, so no server can sign in more users per second than this with the same
//! parameters and threads; `capacity` reports how close the server comes.

use std::time::Duration;

use anyhow::anyhow;
use serde::{Deserialize, Serialize};

/// Argon2id parameters and how hard to measure them.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct CeilingConfig {
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
    pub workers: usize,
    pub duration: Duration,
}

/// The measured ceiling.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CeilingResult {
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
    pub workers: usize,
    pub duration_s: f64,
    pub hashes: u64,
    /// All workers together.
    pub hashes_per_s: f64,
    pub hashes_per_s_per_worker: f64,
    /// Mean time of one hash on one worker.
    pub ms_per_hash: f64,
}

impl CeilingResult {
    /// `argon2id m=19456 t=2 p=1`.
    pub fn params(&self) -> String {
        format!(
            "argon2id m={} t={} p={}",
            self.memory_kib, self.iterations, self.parallelism
        )
    }

    /// One line for people.
    pub fn line(&self) -> String {
        format!(
            "Argon2 ceiling: {} on {} worker{}: {:.1} hashes/s ({:.1}/s per worker, {:.1} ms per hash)",
            self.params(),
            self.workers,
            if self.workers == 1 { "" } else { "s" },
            self.hashes_per_s,
            self.hashes_per_s_per_worker,
            self.ms_per_hash
        )
    }
}

/// Verifies on `cfg.workers` threads for `cfg.duration`.
pub fn measure(cfg: &CeilingConfig) -> anyhow::Result<CeilingResult> {
    let params = passhash::Params {
        memory_kib: cfg.memory_kib,
        iterations: cfg.iterations,
        parallelism: cfg.parallelism,
    };
    let workers = cfg.workers.max(1);
    let c = passhash::ceiling::measure(params, workers, cfg.duration)
        .map_err(|e| anyhow!("Argon2 ceiling: {e}"))?;
    let per_worker = c.hashes_per_s / workers as f64;
    Ok(CeilingResult {
        memory_kib: cfg.memory_kib,
        iterations: cfg.iterations,
        parallelism: cfg.parallelism,
        workers,
        duration_s: cfg.duration.as_secs_f64(),
        hashes: c.hashes,
        hashes_per_s: c.hashes_per_s,
        hashes_per_s_per_worker: per_worker,
        ms_per_hash: if per_worker > 0.0 {
            1e3 / per_worker
        } else {
            0.0
        },
    })
}
