use super::*;
use argon2::password_hash::{PasswordHasher as _, SaltString};
use argon2::{Argon2, Block};

use crate::arena::PAGE;

/// Cheap parameters so that tests run quickly.
const CHEAP: Params = Params {
    memory_kib: 64,
    iterations: 1,
    parallelism: 1,
};

#[test]
fn hash_is_phc_with_current_params_and_verifies() {
    let phc = hash("Correct horse 1", &CHEAP).unwrap();
    assert!(phc.starts_with("$argon2id$v=19$m=64,t=1,p=1$"), "{phc}");
    let parsed = PasswordHash::new(&phc).unwrap();
    assert_eq!(parsed.salt.unwrap().len(), 22); // 16 bytes in unpadded base64
    assert_eq!(parsed.hash.unwrap().len(), OUTPUT_LEN);
    assert_eq!(
        verify("Correct horse 1", &phc, &CHEAP),
        Verification::Match {
            needs_rehash: false
        }
    );
    assert_eq!(
        verify("Correct horse 2", &phc, &CHEAP),
        Verification::Mismatch
    );
    // Two hashes of one password differ (random salt).
    assert_ne!(phc, hash("Correct horse 1", &CHEAP).unwrap());
}

#[test]
fn our_hash_verifies_with_the_argon2_crate() {
    use argon2::password_hash::PasswordVerifier as _;
    let phc = hash("Tr0ub4dor&3", &CHEAP).unwrap();
    let parsed = PasswordHash::new(&phc).unwrap();
    assert!(Argon2::default()
        .verify_password(b"Tr0ub4dor&3", &parsed)
        .is_ok());
    assert!(Argon2::default()
        .verify_password(b"wrong", &parsed)
        .is_err());
}

#[test]
fn hellojohn_go_parameters_verify_and_need_rehash() {
    let go = argon2::Params::new(65_536, 3, 1, Some(32)).unwrap();
    let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, go);
    let salt = SaltString::encode_b64(b"0123456789abcdef").unwrap();
    let phc = argon2
        .hash_password(b"S3cret-password", &salt)
        .unwrap()
        .to_string();
    assert!(phc.starts_with("$argon2id$v=19$m=65536,t=3,p=1$"), "{phc}");
    // A one-off hasher's arena fits the current parameters only: the stored hash gets
    // memory of its own, and that is counted.
    let mut hasher = Hasher::new(Params::OWASP).unwrap();
    assert!(hasher.arena_bytes() >= 19_456 * 1024);
    assert_eq!(
        hasher.verify("S3cret-password", &phc),
        Verification::Match { needs_rehash: true }
    );
    assert_eq!(
        hasher.verify("S3cret-passworD", &phc),
        Verification::Mismatch
    );
    assert_eq!(hasher.fresh_allocations(), 2);
    // With the same parameters as the stored hash, no rehash is due.
    let same = Params {
        memory_kib: 65_536,
        iterations: 3,
        parallelism: 1,
    };
    assert_eq!(
        verify("S3cret-password", &phc, &same),
        Verification::Match {
            needs_rehash: false
        }
    );
}

#[test]
fn other_variants_verify_and_need_rehash() {
    let p = argon2::Params::new(64, 1, 1, Some(32)).unwrap();
    let salt = SaltString::encode_b64(b"0123456789abcdef").unwrap();
    for (alg, ver) in [
        (Algorithm::Argon2i, Version::V0x13),
        (Algorithm::Argon2id, Version::V0x10),
    ] {
        let phc = Argon2::new(alg, ver, p.clone())
            .hash_password(b"pw", &salt)
            .unwrap()
            .to_string();
        assert_eq!(
            verify("pw", &phc, &CHEAP),
            Verification::Match { needs_rehash: true },
            "{phc}"
        );
    }
    // Changing only the iterations also calls for a rehash.
    let phc = hash("pw", &CHEAP).unwrap();
    let more = Params {
        iterations: 2,
        ..CHEAP
    };
    assert_eq!(
        verify("pw", &phc, &more),
        Verification::Match { needs_rehash: true }
    );
}

#[test]
fn malformed_phc_is_a_mismatch() {
    let good = hash("pw", &CHEAP).unwrap();
    let truncated = &good[..good.len() - 10];
    for bad in [
        "",
        "not a hash",
        "$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHQ",
        "$bcrypt$v=19$m=64,t=1,p=1$c2FsdHNhbHRzYWx0$AAAA",
        "$argon2id$v=19$m=1,t=1,p=1$c2FsdHNhbHRzYWx0$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW",
    ] {
        assert_eq!(verify("pw", bad, &CHEAP), Verification::Mismatch, "{bad}");
    }
    // A truncated tag is a different tag: a mismatch, not a crash.
    assert_eq!(verify("pw", truncated, &CHEAP), Verification::Mismatch);
}

/// PHC strings made by libsodium 1.0.18 (`crypto_pwhash_str`), for "S3cret-password".
const SODIUM_65536: &str = "$argon2id$v=19$m=65536,t=3,p=1$bjlpkUHJbzsnLPCYJZJlJA$wBEX29pYGz8hhtct169jfuaacoW2akVgziLWFTeGjvA";
const SODIUM_19456: &str = "$argon2id$v=19$m=19456,t=2,p=1$FOSyBt/wgafi7hBOTnv3ww$O5dgQLiPxu8xZ1bzFYNzUMa0gbpyzUNCi00peWSEVt8";

#[test]
fn pool_hasher_verifies_other_implementations_hashes_in_its_arena() {
    let mut hasher = Hasher::for_pool(Params::OWASP).unwrap();
    assert!(hasher.arena_bytes() >= 65_536 * 1024);
    assert!(hasher.arena_bytes() <= 65_536 * 1024 + (2 << 20) + 1024);
    // HelloJohn's m=65536 hashes, larger than the current parameters, fit the arena.
    assert_eq!(
        hasher.verify("S3cret-password", SODIUM_65536),
        Verification::Match { needs_rehash: true }
    );
    // A wrong password still fails with the arena full of the right one's blocks.
    assert_eq!(
        hasher.verify("S3cret-passworD", SODIUM_65536),
        Verification::Mismatch
    );
    assert_eq!(
        hasher.verify("S3cret-password", SODIUM_19456),
        Verification::Match {
            needs_rehash: false
        }
    );
    assert_eq!(hasher.verify("", SODIUM_19456), Verification::Mismatch);
    // Our own hashes, made in the same dirty arena, verify with the argon2 crate's
    // allocating path.
    let ours = hasher.hash("S3cret-password").unwrap();
    assert_eq!(
        Hasher::new(Params::OWASP)
            .unwrap()
            .verify("S3cret-password", &ours),
        Verification::Match {
            needs_rehash: false
        }
    );
    assert_eq!(hasher.fresh_allocations(), 0);
}

#[test]
fn raw_tags_match_libsodium_and_the_reference_implementation() {
    // Tags checked equal by libsodium 1.0.18 and libargon2 20171227 (perf/argon2 `check`);
    // no secret, no associated data, 32-byte output, computed in an arena left dirty by a
    // larger hash.
    let mut hasher = Hasher::with_arena(CHEAP, 19_456).unwrap();
    let _ = hasher.hash("fill the arena first");
    type Case = (u32, u32, &'static [u8], &'static [u8], &'static str);
    let cases: [Case; 3] = [
        (
            64,
            1,
            b"password",
            b"somesaltsomesalt",
            "e793d64ef75d58f503d4631b2b149f7f80127c5f3993d89b1c9b781e51d0b413",
        ),
        (
            64,
            1,
            b"Bench-Passw0rd!2024",
            &[0; 16],
            "90827d0ff70ccfabb3a894208ca548f0ae475259b97efb93c0de74738a36f4be",
        ),
        (
            19_456,
            2,
            b"password",
            b"somesaltsomesalt",
            "2b5dc4054886ec957ef59c73b661c54dd6fb274590b278f657c6d96aac8fa6d1",
        ),
    ];
    for (m, t, password, salt, want) in cases {
        let params = argon2::Params::new(m, t, 1, Some(32)).unwrap();
        let blocks = params.block_count();
        let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
        let mut tag = [0u8; 32];
        hasher
            .compute(&argon2, blocks, password, salt, &mut tag)
            .unwrap();
        let hex: String = tag.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, want, "m={m} t={t}");
    }
    assert_eq!(hasher.fresh_allocations(), 0);
}

/// How many of the arena's first `blocks` blocks' pages are resident, by `mincore`.
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
fn resident_pages(arena: &Arena, blocks: usize) -> usize {
    let bytes = blocks * Block::SIZE;
    let mut vec = vec![0u8; bytes.div_ceil(PAGE)];
    // SAFETY: the range lies inside the arena's mapping, which starts on a page boundary,
    // and `vec` has one byte per page of it.
    let rc = unsafe { libc::mincore(arena.first.cast(), bytes, vec.as_mut_ptr()) };
    assert_eq!(rc, 0, "mincore: {}", std::io::Error::last_os_error());
    vec.iter().filter(|&&b| b & 1 == 1).count()
}

#[cfg(target_os = "linux")]
#[test]
fn the_arena_faults_in_what_is_used_and_release_gives_it_back() {
    let current = Params::OWASP.memory_kib as usize;
    let all = LEGACY_MEMORY_KIB as usize;
    let mut hasher = Hasher::for_pool(Params::OWASP).unwrap();
    let pages = |blocks| blocks * Block::SIZE / PAGE;
    // Faulted in up front: the current parameters' blocks, not HelloJohn's m=65536 tail.
    assert_eq!(resident_pages(&hasher.arena, current), pages(current));
    assert_eq!(hasher.arena_resident_bytes(), current * Block::SIZE);
    // (With huge pages the kernel may round up to the next 2 MiB, never much more.)
    assert!(resident_pages(&hasher.arena, all) <= pages(current) + pages(2048));

    let phc = hasher.hash("Passw0rd!").unwrap();
    // Released up to the end of the last huge page used.
    assert_eq!(
        hasher.release_arena(),
        (current * Block::SIZE).next_multiple_of(2 << 20)
    );
    assert_eq!(resident_pages(&hasher.arena, all), 0);
    assert_eq!(hasher.arena_resident_bytes(), 0);
    assert_eq!(hasher.release_arena(), 0);

    // Used again after the release: right answers, and the pages are back.
    assert_eq!(
        hasher.verify("Passw0rd!", &phc),
        Verification::Match {
            needs_rehash: false
        }
    );
    assert_eq!(hasher.verify("Passw0rd?", &phc), Verification::Mismatch);
    assert_eq!(resident_pages(&hasher.arena, current), pages(current));
    assert_eq!(hasher.fresh_allocations(), 0);
}

#[test]
fn hashes_beyond_the_arena_allocate_and_beyond_the_cap_are_refused() {
    let mut hasher = Hasher::with_arena(CHEAP, 64).unwrap();
    let bigger = Params {
        memory_kib: 128,
        ..CHEAP
    };
    let phc = hash("pw", &bigger).unwrap();
    assert_eq!(
        hasher.verify("pw", &phc),
        Verification::Match { needs_rehash: true }
    );
    assert_eq!(hasher.fresh_allocations(), 1);
    // Above the hard cap: refused before any work or allocation.
    let huge = "$argon2id$v=19$m=2097152,t=1,p=1$MDEyMzQ1Njc4OWFiY2RlZg$T4/omaWL/5ukLzshadBItERFNqPjcXmxdIJraRbPTy0";
    let started = std::time::Instant::now();
    assert_eq!(hasher.verify("pw", huge), Verification::Mismatch);
    assert!(started.elapsed() < std::time::Duration::from_secs(1));
    assert_eq!(hasher.fresh_allocations(), 1);
    assert_eq!(Params::OWASP.arena_kib(), LEGACY_MEMORY_KIB);
    let large = Params {
        memory_kib: 100_000,
        ..Params::OWASP
    };
    assert_eq!(large.arena_kib(), 100_000);
}

/// A well-formed PHC string with the given cost (its tag is arbitrary: nothing matches it).
fn phc_with(m: u64, t: u64, p: u64) -> String {
    format!(
        "$argon2id$v=19$m={m},t={t},p={p}$MDEyMzQ1Njc4OWFiY2RlZg$T4/omaWL/5ukLzshadBItERFNqPjcXmxdIJraRbPTy0"
    )
}

#[test]
fn stored_hash_bounds() {
    let bounds = HashBounds::DEFAULT;
    let out = |m: u32, t: u32, p: u32| {
        Err(StoredHashError::OutOfBounds {
            memory_kib: m,
            iterations: t,
            parallelism: p,
            bounds,
        })
    };
    // Within the bounds: the engine's own, HelloJohn's, libsodium's, and the bounds.
    assert_eq!(check_hash(&hash("pw", &CHEAP).unwrap(), &bounds), Ok(()));
    assert_eq!(check_hash(SODIUM_65536, &bounds), Ok(()));
    assert_eq!(check_hash(SODIUM_19456, &bounds), Ok(()));
    assert_eq!(check_hash(&phc_with(262_144, 10, 8), &bounds), Ok(()));
    // Beyond them, one cost at a time.
    assert_eq!(
        check_hash(&phc_with(19_456, 300, 1), &bounds),
        out(19_456, 300, 1)
    );
    assert_eq!(
        check_hash(&phc_with(64, 4_294_967_295, 1), &bounds),
        out(64, 4_294_967_295, 1)
    );
    assert_eq!(check_hash(&phc_with(64, 11, 1), &bounds), out(64, 11, 1));
    assert_eq!(
        check_hash(&phc_with(262_145, 1, 1), &bounds),
        out(262_145, 1, 1)
    );
    assert_eq!(
        check_hash(&phc_with(4_294_967_295, 1, 1), &bounds),
        out(4_294_967_295, 1, 1)
    );
    assert_eq!(check_hash(&phc_with(72, 1, 9), &bounds), out(72, 1, 9));
    assert_eq!(
        check_hash(&phc_with(134_217_720, 1, 16_777_215), &bounds),
        out(134_217_720, 1, 16_777_215)
    );
    // Settable: raised bounds admit what the defaults refuse.
    let raised = HashBounds {
        max_iterations: 300,
        ..bounds
    };
    assert_eq!(check_hash(&phc_with(19_456, 300, 1), &raised), Ok(()));
    // Garbage and costs Argon2 itself refuses are malformed, never out of bounds.
    for bad in [
        "".to_string(),
        "garbage".to_string(),
        "$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHQ".to_string(),
        "$bcrypt$v=19$m=64,t=1,p=1$c2FsdHNhbHRzYWx0$AAAA".to_string(),
        "$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW".to_string(),
        phc_with(64, 4_294_967_296, 1),
        phc_with(64, 0, 1),
        phc_with(4_294_967_296, 1, 1),
        phc_with(64, 1, 16_777_216),
        phc_with(64, 1, 0),
        phc_with(1, 1, 1),
        "$argon2id$v=19$m=64,t=1,p=1$!!!!$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA".to_string(),
        "$argon2id$v=99$m=64,t=1,p=1$MDEyMzQ1Njc4OWFiY2RlZg$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA".to_string(),
    ] {
        assert!(
            matches!(check_hash(&bad, &bounds), Err(StoredHashError::Malformed(_))),
            "{bad}: {:?}",
            check_hash(&bad, &bounds)
        );
    }
    // The message names the cost and the limits, never the string.
    let message = check_hash(&phc_with(19_456, 300, 1), &bounds)
        .unwrap_err()
        .to_string();
    assert!(
        message.contains("t=300") && message.contains("t=10"),
        "{message}"
    );
    assert!(!message.contains("MDEyMzQ1Njc4OWFiY2RlZg"), "{message}");
}

#[test]
fn hashes_beyond_the_bounds_never_run() {
    let mut hasher = Hasher::new(CHEAP).unwrap();
    assert_eq!(hasher.bounds(), HashBounds::DEFAULT);
    for phc in [
        phc_with(64, 4_294_967_295, 1),
        phc_with(64, 1_000_000, 1),
        phc_with(4_194_304, 1, 1),
        phc_with(800, 1, 100),
    ] {
        let started = std::time::Instant::now();
        assert_eq!(hasher.verify("pw", &phc), Verification::Mismatch, "{phc}");
        // Run, the first would never end and the second would take a minute.
        assert!(
            started.elapsed() < std::time::Duration::from_secs(1),
            "{phc} ran: {:?}",
            started.elapsed()
        );
    }
    assert_eq!(
        hasher.fresh_allocations(),
        0,
        "nothing was allocated for them"
    );
    // A hash within raised bounds runs and verifies.
    let t12 = Params {
        iterations: 12,
        ..CHEAP
    };
    let phc = hash("pw", &t12).unwrap();
    assert_eq!(hasher.verify("pw", &phc), Verification::Mismatch);
    let raised = HashBounds {
        max_iterations: 12,
        ..HashBounds::DEFAULT
    };
    let mut hasher = hasher.bounded(raised).unwrap();
    assert_eq!(
        hasher.verify("pw", &phc),
        Verification::Match { needs_rehash: true }
    );
    // A hasher is never bounded below its own parameters.
    let low = HashBounds {
        max_iterations: 11,
        ..HashBounds::DEFAULT
    };
    assert!(matches!(
        Hasher::new(t12).unwrap().bounded(low),
        Err(HashError::InvalidParams(_))
    ));
    // Without explicit bounds, a hasher still verifies its own hashes.
    let mut own = Hasher::new(t12).unwrap();
    assert_eq!(own.bounds().max_iterations, 12);
    assert_eq!(
        own.verify("pw", &phc),
        Verification::Match {
            needs_rehash: false
        }
    );
}

#[test]
fn rfc9106_argon2id_test_vector() {
    // RFC 9106 §5.3.
    let params = argon2::ParamsBuilder::new()
        .m_cost(32)
        .t_cost(3)
        .p_cost(4)
        .data(argon2::AssociatedData::new(&[0x04; 12]).unwrap())
        .output_len(32)
        .build()
        .unwrap();
    let secret = [0x03u8; 8];
    let argon2 =
        Argon2::new_with_secret(&secret, Algorithm::Argon2id, Version::V0x13, params).unwrap();
    let mut tag = [0u8; 32];
    argon2
        .hash_password_into(&[0x01; 32], &[0x02; 16], &mut tag)
        .unwrap();
    // The same in a reused arena that a larger hash left dirty, as the hash pool runs it.
    let mut hasher = Hasher::new(Params {
        memory_kib: 256,
        ..CHEAP
    })
    .unwrap();
    let _ = hasher.hash("leave blocks behind");
    let mut in_arena = [0u8; 32];
    hasher
        .compute(&argon2, 32, &[0x01; 32], &[0x02; 16], &mut in_arena)
        .unwrap();
    assert_eq!(in_arena, tag);
    assert_eq!(hasher.fresh_allocations(), 0);
    let expected: [u8; 32] = [
        0x0d, 0x64, 0x0d, 0xf5, 0x8d, 0x78, 0x76, 0x6c, 0x08, 0xc0, 0x37, 0xa3, 0x4a, 0x8b, 0x53,
        0xc9, 0xd0, 0x1e, 0xf0, 0x45, 0x2d, 0x75, 0xb6, 0x5e, 0xb5, 0x25, 0x20, 0xe9, 0x6b, 0x01,
        0xe6, 0x59,
    ];
    assert_eq!(tag, expected);
}

#[test]
fn invalid_params_are_refused() {
    let bad = Params {
        memory_kib: 1,
        iterations: 1,
        parallelism: 1,
    };
    assert!(matches!(hash("pw", &bad), Err(HashError::InvalidParams(_))));
    assert!(Hasher::new(Params::OWASP).is_ok());
}

#[test]
fn password_debug_is_redacted() {
    let p = Password::new("hunter2");
    assert_eq!(format!("{p:?}"), "Password(<redacted>)");
    assert_eq!(p.expose(), "hunter2");
}
