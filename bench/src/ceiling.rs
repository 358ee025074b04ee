//! The raw Argon2id ceiling of this host: `workers` threads hashing back to back, each reusing
//! one pre-allocated, pre-faulted memory arena, as the server's hash pool does. A sign-in costs
//! exactly one Argon2 verification, so no server can sign in more users per second than this
//! with the same parameters and threads; `capacity` reports how close the server comes.
//!
//! The implementation and memory handling are the server's: RustCrypto's `argon2` crate, which
//! with its memory reused was the fastest Argon2id measured on the reference host, in an arena
//! that starts on a 2 MiB boundary, asks for transparent huge pages and is faulted in before the
//! clock starts (`perf/results/argon2-impls.md`). That is a copy of the engine's `Arena` (a few
//! lines), not a dependency on the engine crate.

use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context};
use argon2::{Algorithm, Argon2, Block, Params, Version};
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

/// Hashes on `cfg.workers` threads for `cfg.duration`.
pub fn measure(cfg: &CeilingConfig) -> anyhow::Result<CeilingResult> {
    let params = Params::new(cfg.memory_kib, cfg.iterations, cfg.parallelism, Some(32))
        .map_err(|e| anyhow!("invalid Argon2 parameters: {e}"))?;
    let workers = cfg.workers.max(1);
    let barrier = Arc::new(Barrier::new(workers));
    let mut handles = Vec::with_capacity(workers);
    for i in 0..workers {
        let (params, barrier, duration) = (params.clone(), barrier.clone(), cfg.duration);
        handles.push(
            std::thread::Builder::new()
                .name(format!("hj-ceiling-{i}"))
                .spawn(move || hash_loop(params, &barrier, duration, i))
                .context("cannot start a hashing thread")?,
        );
    }
    let mut hashes = 0u64;
    let mut rate = 0.0;
    for h in handles {
        let (n, busy) = h
            .join()
            .map_err(|_| anyhow!("a hashing thread panicked"))??;
        hashes += n;
        if busy > Duration::ZERO {
            rate += n as f64 / busy.as_secs_f64();
        }
    }
    let per_worker = rate / workers as f64;
    Ok(CeilingResult {
        memory_kib: cfg.memory_kib,
        iterations: cfg.iterations,
        parallelism: cfg.parallelism,
        workers,
        duration_s: cfg.duration.as_secs_f64(),
        hashes,
        hashes_per_s: rate,
        hashes_per_s_per_worker: per_worker,
        ms_per_hash: if per_worker > 0.0 {
            1e3 / per_worker
        } else {
            0.0
        },
    })
}

/// Hashes until `duration` is over (at least once); returns the hashes done and the time they
/// took.
fn hash_loop(
    params: Params,
    barrier: &Barrier,
    duration: Duration,
    worker: usize,
) -> anyhow::Result<(u64, Duration)> {
    let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
    let mut arena = arena(params.block_count());
    let memory = arena.as_mut_slice();
    let mut out = [0u8; 32];
    let password = b"hj-bench-ceiling-password";
    let mut salt = [0u8; 16];
    salt[..8].copy_from_slice(&(worker as u64).to_le_bytes());
    // One untimed hash warms the caches and the CPU feature detection, as a server that has
    // been up for a while is warm.
    argon
        .hash_password_into_with_memory(password, &salt, &mut out, &mut *memory)
        .map_err(|e| anyhow!("argon2: {e}"))?;
    barrier.wait();
    let start = Instant::now();
    let mut n = 0u64;
    loop {
        salt[8..].copy_from_slice(&n.to_le_bytes());
        argon
            .hash_password_into_with_memory(password, &salt, &mut out, &mut *memory)
            .map_err(|e| anyhow!("argon2: {e}"))?;
        n += 1;
        let busy = start.elapsed();
        if busy >= duration {
            return Ok((n, busy));
        }
    }
}

/// Transparent huge page size on x86-64 and (4 KiB-page) AArch64 Linux.
const HUGE_PAGE: usize = 2 << 20;

/// `blocks` Argon2 blocks as the engine's hash workers hold them: from a 2 MiB boundary, with
/// `MADV_HUGEPAGE` asked for, every block written (so every page is faulted in now).
fn arena(blocks: usize) -> Arena {
    let huge = blocks * Block::SIZE >= HUGE_PAGE;
    let slack = if huge { HUGE_PAGE / Block::SIZE + 1 } else { 0 };
    let mut buf: Vec<Block> = Vec::with_capacity(blocks + slack);
    let addr = buf.as_ptr() as usize;
    let mut start = 0;
    if huge {
        let boundary = addr.next_multiple_of(HUGE_PAGE);
        let end = (addr + buf.capacity() * Block::SIZE) / HUGE_PAGE * HUGE_PAGE;
        start = (boundary - addr).div_ceil(Block::SIZE);
        if end > boundary {
            advise_huge_pages(boundary, end - boundary);
        }
    }
    buf.resize(start + blocks, Block::default());
    Arena { buf, start }
}

struct Arena {
    buf: Vec<Block>,
    start: usize,
}

impl Arena {
    fn as_mut_slice(&mut self) -> &mut [Block] {
        &mut self.buf[self.start..]
    }
}

/// `madvise(MADV_HUGEPAGE)` on a 2 MiB-aligned range: a hint, whose failure changes only speed.
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
fn advise_huge_pages(addr: usize, len: usize) {
    // SAFETY: the range lies inside a live `Vec` buffer owned by the caller and is aligned to
    // 2 MiB (so to the page size); MADV_HUGEPAGE changes only how the kernel backs those pages,
    // never their contents or whether they are mapped.
    let _ = unsafe { libc::madvise(addr as *mut libc::c_void, len, libc::MADV_HUGEPAGE) };
}

#[cfg(not(target_os = "linux"))]
fn advise_huge_pages(_addr: usize, _len: usize) {}
