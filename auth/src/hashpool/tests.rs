// Tests hash on the test thread to make hashes to verify (cheap parameters).
#![allow(clippy::disallowed_methods)]

use super::*;
use std::rc::Rc;

/// A verification as a sign-in makes it: a place reserved, then the job.
async fn verify(
    pool: &HashPool,
    password: Password,
    phc: String,
) -> Result<Verification, Overloaded> {
    pool.reserve()?.verify(password, phc).await
}

const CHEAP: Params = Params {
    memory_kib: 64,
    iterations: 1,
    parallelism: 1,
};

fn get(a: &AtomicU64) -> u64 {
    a.load(Ordering::Relaxed)
}

#[test]
fn expected_wait_counts_waves_ahead() {
    let avg = Duration::from_millis(100);
    for outstanding in 0..4 {
        assert_eq!(expected_wait(outstanding, 4, avg), Duration::ZERO);
    }
    assert_eq!(expected_wait(4, 4, avg), avg);
    assert_eq!(expected_wait(7, 4, avg), avg);
    assert_eq!(expected_wait(8, 4, avg), 2 * avg);
    assert_eq!(expected_wait(1, 1, avg), avg);
    assert_eq!(expected_wait(3, 1, avg), 3 * avg);
    assert_eq!(expected_wait(0, 0, avg), Duration::ZERO);
}

#[test]
fn retry_after_is_whole_seconds_at_least_one() {
    let at = |ms| Overloaded::after(Duration::from_millis(ms)).retry_after;
    assert_eq!(at(0), Duration::from_secs(1));
    assert_eq!(at(300), Duration::from_secs(1));
    assert_eq!(at(1000), Duration::from_secs(1));
    assert_eq!(at(1001), Duration::from_secs(2));
    assert_eq!(at(2500), Duration::from_secs(3));
}

/// "Passw0rd!" matches `phc` (made with the pool's parameters) and "Passw0rd?" does not.
async fn assert_right_and_wrong(pool: &HashPool, phc: &str) {
    assert_eq!(
        verify(pool, Password::new("Passw0rd!"), phc.to_string()).await,
        Ok(Verification::Match {
            needs_rehash: false
        })
    );
    assert_eq!(
        verify(pool, Password::new("Passw0rd?"), phc.to_string()).await,
        Ok(Verification::Mismatch)
    );
}

#[tokio::test]
async fn hashes_and_verifies_off_the_event_loop() {
    let metrics = Arc::new(HashStats::default());
    let pool = HashPool::new(
        2,
        CHEAP,
        Duration::from_secs(5),
        Duration::ZERO,
        metrics.clone(),
    )
    .unwrap();
    assert_eq!(get(&metrics.hash_workers), 2);
    assert!(pool.avg_job_time() > Duration::ZERO);
    assert!(
        pool.dummy_phc().starts_with("$argon2id$v=19$m=64,t=1,p=1$"),
        "{}",
        pool.dummy_phc()
    );

    let phc = pool.hash(Password::new("Passw0rd!")).await.unwrap();
    assert!(phc.starts_with("$argon2id$v=19$m=64,t=1,p=1$"));
    assert_right_and_wrong(&pool, &phc).await;
    // A hash made with other parameters verifies and asks for a rehash.
    let legacy = crate::password::hash(
        "Passw0rd!",
        &Params {
            memory_kib: 128,
            iterations: 2,
            parallelism: 1,
        },
    )
    .unwrap();
    assert_eq!(
        verify(&pool, Password::new("Passw0rd!"), legacy).await,
        Ok(Verification::Match { needs_rehash: true })
    );
    assert_eq!(
        verify(
            &pool,
            Password::new("Passw0rd!"),
            pool.dummy_phc().to_string()
        )
        .await,
        Ok(Verification::Mismatch)
    );

    assert_eq!(get(&metrics.hashes_total), 5);
    let arena = get(&metrics.hash_arena_bytes);
    assert!(
        (2 * 65_536 * 1024..=2 * (65_536 + 2049) * 1024).contains(&arena),
        "{arena}"
    );
    assert_eq!(get(&metrics.hash_arena_fresh_allocations_total), 0);
    assert_eq!(get(&metrics.hash_rejected_total), 0);
    assert_eq!(get(&metrics.hash_queue_depth), 0);
    assert_eq!(get(&metrics.hash_in_flight), 0);
    assert!(get(&metrics.hash_work_us_total) > 0);
    assert_eq!(pool.expected_wait(), Duration::ZERO);
}

#[tokio::test]
async fn larger_legacy_hashes_verify_in_the_arena_without_allocating() {
    // Made by libsodium 1.0.18 with HelloJohn's own parameters, for "S3cret-password".
    const SODIUM_65536: &str = "$argon2id$v=19$m=65536,t=3,p=1$bjlpkUHJbzsnLPCYJZJlJA$wBEX29pYGz8hhtct169jfuaacoW2akVgziLWFTeGjvA";
    let metrics = Arc::new(HashStats::default());
    let pool = HashPool::new(
        1,
        Params::OWASP,
        Duration::from_secs(30),
        Duration::ZERO,
        metrics.clone(),
    )
    .unwrap();
    // Mapped before `new` returned: 64 MiB, and at most 2 MiB of slack to start on a
    // huge-page boundary; of it only the current parameters' 19 MiB is faulted in.
    let arena = get(&metrics.hash_arena_bytes);
    assert!(
        (65_536 * 1024..=(65_536 + 2049) * 1024).contains(&arena),
        "{arena}"
    );
    assert_eq!(get(&metrics.hash_arena_resident_bytes), 19_456 * 1024);
    assert_eq!(get(&metrics.argon2_memory_kib), 19_456);
    assert_eq!(get(&metrics.argon2_iterations), 2);
    assert_eq!(get(&metrics.argon2_parallelism), 1);
    assert_eq!(
        verify(
            &pool,
            Password::new("S3cret-password"),
            SODIUM_65536.to_string()
        )
        .await,
        Ok(Verification::Match { needs_rehash: true })
    );
    // It ran in the arena, now resident in full, and allocated nothing.
    assert_eq!(get(&metrics.hash_arena_resident_bytes), 65_536 * 1024);
    assert_eq!(get(&metrics.hash_arena_fresh_allocations_total), 0);
    // The arena now holds the right password's blocks; a wrong one still fails.
    assert_eq!(
        verify(
            &pool,
            Password::new("S3cret-passworD"),
            SODIUM_65536.to_string()
        )
        .await,
        Ok(Verification::Mismatch)
    );
    let phc = pool.hash(Password::new("S3cret-password")).await.unwrap();
    assert_eq!(
        verify(&pool, Password::new("S3cret-password"), phc).await,
        Ok(Verification::Match {
            needs_rehash: false
        })
    );
    assert_eq!(get(&metrics.hashes_total), 4);
    assert_eq!(get(&metrics.hash_arena_fresh_allocations_total), 0);
    // Never released (the idle release is off here).
    assert_eq!(get(&metrics.hash_arena_releases_total), 0);
    drop(pool);
    assert_eq!(get(&metrics.hash_arena_bytes), 0);
    assert_eq!(get(&metrics.hash_arena_resident_bytes), 0);
}

#[tokio::test]
async fn idle_threads_give_their_arena_back_and_fault_it_in_again_on_use() {
    let metrics = Arc::new(HashStats::default());
    // Long enough that no scheduling stall of a busy test machine releases the arena between a
    // job and the assertion after it.
    let idle = Duration::from_secs(1);
    let pool = HashPool::new(
        1,
        Params::OWASP,
        Duration::from_secs(30),
        idle,
        metrics.clone(),
    )
    .unwrap();
    assert_eq!(get(&metrics.hash_arena_resident_bytes), 19_456 * 1024);
    let phc = pool.hash(Password::new("Passw0rd!")).await.unwrap();

    let deadline = Instant::now() + Duration::from_secs(10);
    while get(&metrics.hash_arena_releases_total) == 0 {
        assert!(
            Instant::now() < deadline,
            "the idle arena was never released"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // (That the pages really go back is `password`'s arena test, page by page.)
    assert_eq!(get(&metrics.hash_arena_resident_bytes), 0);

    // The next job faults the pages in again and is as correct as ever.
    assert_right_and_wrong(&pool, &phc).await;
    assert_eq!(get(&metrics.hash_arena_resident_bytes), 19_456 * 1024);
    assert_eq!(get(&metrics.hash_arena_fresh_allocations_total), 0);
    // Only one release per idle period: a released arena waits without a timeout.
    tokio::time::sleep(idle * 3).await;
    assert_eq!(get(&metrics.hash_arena_resident_bytes), 0);
    assert_eq!(get(&metrics.hash_arena_releases_total), 2);
    drop(pool);
    assert_eq!(get(&metrics.hash_arena_resident_bytes), 0);
}

#[tokio::test]
async fn overload_is_refused_at_once_and_counted() {
    // Real parameters, so that one job lasts far longer than submitting all of them.
    let metrics = Arc::new(HashStats::default());
    let pool = Rc::new(
        HashPool::new(
            1,
            Params::OWASP,
            Duration::from_millis(1),
            Duration::ZERO,
            metrics.clone(),
        )
        .unwrap(),
    );
    let phc = crate::password::hash("Passw0rd!", &Params::OWASP).unwrap();
    let local = tokio::task::LocalSet::new();
    let results = local
        .run_until(async {
            let tasks: Vec<_> = (0..6)
                .map(|_| {
                    let pool = pool.clone();
                    let phc = phc.clone();
                    tokio::task::spawn_local(async move {
                        let started = Instant::now();
                        let result = verify(&pool, Password::new("Passw0rd!"), phc).await;
                        (result, started.elapsed())
                    })
                })
                .collect();
            let mut results = Vec::new();
            for task in tasks {
                results.push(task.await.unwrap());
            }
            results
        })
        .await;

    let mut ok = 0;
    let mut refused = 0;
    for (result, took) in &results {
        match result {
            Ok(v) => {
                assert_eq!(
                    *v,
                    Verification::Match {
                        needs_rehash: false
                    }
                );
                ok += 1;
            }
            Err(e) => {
                assert!(*took < Duration::from_millis(10), "refusal took {took:?}");
                assert!(e.retry_after >= Duration::from_secs(1));
                assert_eq!(e.retry_after.subsec_nanos(), 0);
                refused += 1;
            }
        }
    }
    assert!(ok >= 1, "the first job is always admitted: {results:?}");
    assert!(
        refused >= 1,
        "one worker and a 1 ms budget must refuse: {results:?}"
    );
    assert_eq!(ok + refused, 6);
    assert_eq!(get(&metrics.hash_rejected_total), refused);
    assert_eq!(get(&metrics.hashes_total), ok);
    assert_eq!(get(&metrics.hash_queue_depth), 0);
    assert_eq!(get(&metrics.hash_in_flight), 0);
    assert!(get(&metrics.hash_work_us_total) > 0);
}

#[tokio::test]
async fn cancelled_jobs_are_skipped() {
    let metrics = Arc::new(HashStats::default());
    let pool = Rc::new(
        HashPool::new(
            1,
            Params::OWASP,
            Duration::from_secs(30),
            Duration::ZERO,
            metrics.clone(),
        )
        .unwrap(),
    );
    let phc = pool.dummy_phc().to_string();
    let local = tokio::task::LocalSet::new();
    local
        .run_until(async {
            let first = {
                let pool = pool.clone();
                let phc = phc.clone();
                tokio::task::spawn_local(
                    async move { verify(&pool, Password::new("x"), phc).await },
                )
            };
            // Let the first job reach the worker before the second is queued behind it.
            while pool.shared.outstanding.load(Ordering::Acquire) == 0 {
                tokio::task::yield_now().await;
            }
            // Polled once (queued behind the first job), then dropped: a cancelled
            // request.
            let cancelled =
                tokio::time::timeout(Duration::ZERO, verify(&pool, Password::new("y"), phc)).await;
            assert!(cancelled.is_err());
            assert_eq!(first.await.unwrap(), Ok(Verification::Mismatch));
        })
        .await;
    let pool = Rc::into_inner(pool).unwrap();
    drop(pool);
    assert_eq!(get(&metrics.hashes_total), 1);
    assert_eq!(get(&metrics.hash_queue_depth), 0);
    assert_eq!(get(&metrics.hash_in_flight), 0);
}

#[test]
fn threads_are_named_and_stop_on_drop() {
    let metrics = Arc::new(HashStats::default());
    let pool = HashPool::new(
        3,
        CHEAP,
        Duration::from_secs(1),
        Duration::ZERO,
        metrics.clone(),
    )
    .unwrap();
    assert_eq!(get(&metrics.hash_workers), 3);
    #[cfg(target_os = "linux")]
    {
        // A new thread sets its own kernel name once it runs, so give them a moment.
        let names = || -> Vec<String> {
            std::fs::read_dir("/proc/self/task")
                .unwrap()
                .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
                .map(|n| n.trim().to_string())
                .collect()
        };
        let all_named = || (0..3).all(|i| names().contains(&format!("hj-hash-{i}")));
        let deadline = Instant::now() + Duration::from_secs(5);
        while !all_named() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(all_named(), "{:?}", names());
    }
    drop(pool);
    assert_eq!(get(&metrics.hash_workers), 0);
    // Every thread has exited and released its handle on the shared state.
    assert_eq!(Arc::strong_count(&metrics), 1);
}

#[tokio::test]
async fn stored_hashes_beyond_the_bounds_cost_one_dummy_verification() {
    let metrics = Arc::new(HashStats::default());
    let pool = HashPool::new(
        1,
        CHEAP,
        Duration::from_secs(5),
        Duration::ZERO,
        metrics.clone(),
    )
    .unwrap();
    assert_eq!(pool.bounds(), HashBounds::DEFAULT);
    let tag = "MDEyMzQ1Njc4OWFiY2RlZg$T4/omaWL/5ukLzshadBItERFNqPjcXmxdIJraRbPTy0";
    for phc in [
        // Run, these would hold the only thread for a minute and for ever.
        format!("$argon2id$v=19$m=64,t=1000000,p=1${tag}"),
        format!("$argon2id$v=19$m=64,t=4294967295,p=1${tag}"),
        format!("$argon2id$v=19$m=2097152,t=1,p=1${tag}"),
        "not a hash at all".to_string(),
    ] {
        let before = get(&metrics.hashes_total);
        let started = Instant::now();
        let reservation = pool.reserve().unwrap();
        assert_eq!(
            reservation
                .verify(Password::new("Passw0rd!"), phc.clone())
                .await,
            Ok(Verification::Mismatch),
            "{phc}"
        );
        assert_eq!(
            verify(&pool, Password::new("Passw0rd!"), phc.clone()).await,
            Ok(Verification::Mismatch),
            "{phc}"
        );
        assert!(started.elapsed() < Duration::from_secs(1), "{phc}");
        // Each costs one verification (of the dummy hash), as a wrong password does.
        assert_eq!(get(&metrics.hashes_total), before + 2, "{phc}");
    }
    assert_eq!(get(&metrics.hash_arena_fresh_allocations_total), 0);
    assert_eq!(get(&metrics.hash_in_flight), 0);
    // The thread is free: a normal verification answers at once.
    let phc = pool.hash(Password::new("Passw0rd!")).await.unwrap();
    assert_right_and_wrong(&pool, &phc).await;
}

#[test]
fn params_beyond_the_bounds_fail_at_start() {
    let bounds = HashBounds {
        max_memory_kib: 32,
        ..HashBounds::DEFAULT
    };
    let err = HashPool::with_bounds(
        1,
        CHEAP,
        bounds,
        Duration::from_secs(1),
        Duration::ZERO,
        Arc::new(HashStats::default()),
    )
    .unwrap_err();
    assert!(matches!(err, HashError::InvalidParams(_)), "{err}");
}

#[test]
fn invalid_params_fail_at_start() {
    let bad = Params {
        memory_kib: 1,
        iterations: 1,
        parallelism: 1,
    };
    let err = HashPool::new(
        1,
        bad,
        Duration::from_secs(1),
        Duration::ZERO,
        Arc::new(HashStats::default()),
    )
    .unwrap_err();
    assert!(matches!(err, HashError::InvalidParams(_)));
}
