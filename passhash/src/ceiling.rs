//! The raw Argon2id ceiling of a host: `workers` threads verifying a password back to back, each
//! with the [`Hasher`] a hash-pool thread owns. A sign-in costs exactly one such verification,
//! so no server can sign in more users per second than this with the same parameters and
//! threads. `hj bench ceiling` reports it; because it runs the engine's own hasher (arena, huge
//! pages, PHC parsing, constant-time comparison), the ratio of a server's sign-ins to it is the
//! server's overhead and nothing else.

use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use crate::{HashError, Hasher, Params, Verification};

/// What one measurement found.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ceiling {
    /// Verifications done by all threads together.
    pub hashes: u64,
    /// Hashes per second of busy time, summed over the threads.
    pub hashes_per_s: f64,
}

/// Verifies on `workers` threads (at least one) for `duration` each, after one untimed
/// verification per thread (a server that has been up a while is warm).
pub fn measure(params: Params, workers: usize, duration: Duration) -> Result<Ceiling, HashError> {
    const PASSWORD: &str = "hj-bench-ceiling-password";
    let phc = Hasher::new(params)?.hash(PASSWORD)?;
    let workers = workers.max(1);
    let barrier = Arc::new(Barrier::new(workers));
    let mut handles = Vec::with_capacity(workers);
    for i in 0..workers {
        let (phc, barrier) = (phc.clone(), barrier.clone());
        let spawned = std::thread::Builder::new()
            .name(format!("hj-ceiling-{i}"))
            .spawn(move || -> Result<(u64, Duration), HashError> {
                let mut hasher = Hasher::for_pool(params);
                let verify = |hasher: &mut Hasher| match hasher.verify(PASSWORD, &phc) {
                    Verification::Match { .. } => Ok(()),
                    Verification::Mismatch => Err(HashError::Failed(
                        "the ceiling's own hash did not verify".into(),
                    )),
                };
                // Every thread reaches the barrier, even one that failed, so none waits forever.
                let warm = hasher.as_mut().map_err(|e| e.clone()).and_then(verify);
                barrier.wait();
                let mut hasher = hasher?;
                warm?;
                let start = Instant::now();
                let mut n = 0u64;
                loop {
                    verify(&mut hasher)?;
                    n += 1;
                    let busy = start.elapsed();
                    if busy >= duration {
                        return Ok((n, busy));
                    }
                }
            });
        match spawned {
            Ok(h) => handles.push(h),
            Err(e) => {
                return Err(HashError::Failed(format!(
                    "cannot start a hashing thread: {e}"
                )))
            }
        }
    }
    let mut ceiling = Ceiling {
        hashes: 0,
        hashes_per_s: 0.0,
    };
    for h in handles {
        let (n, busy) = h
            .join()
            .map_err(|_| HashError::Failed("a hashing thread panicked".into()))??;
        ceiling.hashes += n;
        if busy > Duration::ZERO {
            ceiling.hashes_per_s += n as f64 / busy.as_secs_f64();
        }
    }
    Ok(ceiling)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn it_counts_verifications_on_every_thread() {
        let cheap = Params {
            memory_kib: 64,
            iterations: 1,
            parallelism: 1,
        };
        let c = measure(cheap, 2, Duration::from_millis(50)).unwrap();
        assert!(c.hashes >= 2, "{c:?}");
        assert!(c.hashes_per_s > 0.0, "{c:?}");
        let bad = Params {
            memory_kib: 1,
            ..cheap
        };
        assert!(matches!(
            measure(bad, 1, Duration::from_millis(10)),
            Err(HashError::InvalidParams(_))
        ));
    }
}
