//! Argon2id implementations compared on this host, on the same parameters, in one run.
//!
//! ```text
//! hellojohn-argon2-bench check
//! hellojohn-argon2-bench bench [--params M,T,P]... [--impls LIST] [--threads N] [--secs S]
//!                              [--rounds R] [--thp off|on|both] [--pin off|on|both] [--label L]
//! ```
//!
//! Implementations (`--impls`, comma-separated):
//! * `rustcrypto`: the `argon2` crate (RustCrypto) with one reused, pre-faulted arena per thread
//!   (`hash_password_into_with_memory`), as the engine's hash workers do;
//! * `rustcrypto-fresh`: the same crate allocating its memory for every hash (`hash_password_into`);
//! * `sodium`: libsodium's `crypto_pwhash` (p=1 only); its API has no way to pass memory in, so it
//!   maps, wipes and unmaps its own for every hash;
//! * `ref`: the reference C implementation (libargon2) given the reused arena through its
//!   `allocate_cbk` (it still wipes the memory after every hash: `FLAG_clear_internal_memory`).
//!
//! `bench` prints one tab-separated line per measurement: label, impl, m, t, p, threads, thp, pin,
//! hashes/s (all threads, by wall time), hashes per CPU-second (all threads, each by its own CPU
//! time: robust to other processes on a shared host), CPU ms per hash, and the process's
//! AnonHugePages in KiB. `run.sh`
//! runs the builds alternately and takes medians.

use std::cell::Cell;
use std::ffi::{c_char, c_int, c_ulonglong, c_void, CStr, CString};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use argon2::password_hash::{PasswordHash, PasswordHasher as _, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};

#[cfg(feature = "bundled-sodium")]
use libsodium_sys as _;

mod ffi {
    use super::*;

    pub const ARGON2_ID: c_int = 2;
    pub const ARGON2_VERSION_13: u32 = 0x13;
    pub const ARGON2_MEMORY_ALLOCATION_ERROR: c_int = -22;

    #[repr(C)]
    pub struct Argon2Context {
        pub out: *mut u8,
        pub outlen: u32,
        pub pwd: *mut u8,
        pub pwdlen: u32,
        pub salt: *mut u8,
        pub saltlen: u32,
        pub secret: *mut u8,
        pub secretlen: u32,
        pub ad: *mut u8,
        pub adlen: u32,
        pub t_cost: u32,
        pub m_cost: u32,
        pub lanes: u32,
        pub threads: u32,
        pub version: u32,
        pub allocate_cbk: Option<extern "C" fn(*mut *mut u8, usize) -> c_int>,
        pub free_cbk: Option<extern "C" fn(*mut u8, usize)>,
        pub flags: u32,
    }

    extern "C" {
        // libargon2 (reference C)
        pub fn argon2_ctx(context: *mut Argon2Context, kind: c_int) -> c_int;
        pub fn argon2_verify(
            encoded: *const c_char,
            pwd: *const c_void,
            pwdlen: usize,
            kind: c_int,
        ) -> c_int;
        pub fn argon2_error_message(code: c_int) -> *const c_char;

        // libsodium
        pub fn sodium_init() -> c_int;
        pub fn sodium_version_string() -> *const c_char;
        pub fn crypto_pwhash(
            out: *mut u8,
            outlen: c_ulonglong,
            passwd: *const c_char,
            passwdlen: c_ulonglong,
            salt: *const u8,
            opslimit: c_ulonglong,
            memlimit: usize,
            alg: c_int,
        ) -> c_int;
        pub fn crypto_pwhash_str(
            out: *mut c_char,
            passwd: *const c_char,
            passwdlen: c_ulonglong,
            opslimit: c_ulonglong,
            memlimit: usize,
        ) -> c_int;
        pub fn crypto_pwhash_str_verify(
            s: *const c_char,
            passwd: *const c_char,
            passwdlen: c_ulonglong,
        ) -> c_int;
    }
}

const HUGE_PAGE: usize = 2 << 20;
const PAGE: usize = 4096;

/// Argon2 working memory reused across hashes: allocated once, optionally advised for
/// transparent huge pages, and written in full before first use so no hash pays page faults.
struct Arena {
    buf: Vec<Block>,
    start: usize,
    len: usize,
}

impl Arena {
    fn new(blocks: usize, thp: bool) -> Arena {
        let extra = if thp { HUGE_PAGE / Block::SIZE + 1 } else { 0 };
        let mut buf: Vec<Block> = Vec::with_capacity(blocks + extra);
        let addr = buf.as_ptr() as usize;
        let start = if thp {
            ((HUGE_PAGE - addr % HUGE_PAGE) % HUGE_PAGE).div_ceil(Block::SIZE)
        } else {
            0
        };
        if thp {
            advise_huge(addr, (blocks + extra) * Block::SIZE);
        }
        // Writes every block, so every page is faulted in now (as huge pages where advised).
        buf.resize(start + blocks, Block::default());
        Arena {
            buf,
            start,
            len: blocks,
        }
    }

    fn blocks(&mut self) -> &mut [Block] {
        &mut self.buf[self.start..self.start + self.len]
    }
}

/// `madvise(MADV_HUGEPAGE)` on the whole pages inside `[addr, addr + len)`.
fn advise_huge(addr: usize, len: usize) {
    let start = addr.div_ceil(PAGE) * PAGE;
    let end = (addr + len) / PAGE * PAGE;
    if end > start {
        // SAFETY: the range lies inside an allocation this process owns; MADV_HUGEPAGE only
        // changes how the kernel backs it and never its contents.
        let rc = unsafe { libc::madvise(start as *mut c_void, end - start, libc::MADV_HUGEPAGE) };
        if rc != 0 {
            eprintln!(
                "madvise(MADV_HUGEPAGE) failed: {}",
                std::io::Error::last_os_error()
            );
        }
    }
}

fn anon_huge_kib() -> u64 {
    std::fs::read_to_string("/proc/self/smaps_rollup")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("AnonHugePages:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Impl {
    RustCrypto,
    RustCryptoFresh,
    Sodium,
    Ref,
}

impl Impl {
    fn parse(s: &str) -> Impl {
        match s {
            "rustcrypto" => Impl::RustCrypto,
            "rustcrypto-fresh" => Impl::RustCryptoFresh,
            "sodium" => Impl::Sodium,
            "ref" => Impl::Ref,
            other => die(&format!("unknown impl {other}")),
        }
    }
    fn name(self) -> &'static str {
        match self {
            Impl::RustCrypto => "rustcrypto",
            Impl::RustCryptoFresh => "rustcrypto-fresh",
            Impl::Sodium => "sodium",
            Impl::Ref => "ref",
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct Cost {
    m: u32,
    t: u32,
    p: u32,
}

thread_local! {
    /// The arena handed to libargon2 by `ref_alloc` (its callbacks take no user pointer).
    static REF_ARENA: Cell<(*mut u8, usize)> = const { Cell::new((std::ptr::null_mut(), 0)) };
}

extern "C" fn ref_alloc(memory: *mut *mut u8, bytes: usize) -> c_int {
    let (ptr, len) = REF_ARENA.with(Cell::get);
    if ptr.is_null() || bytes > len {
        return ffi::ARGON2_MEMORY_ALLOCATION_ERROR;
    }
    // SAFETY: libargon2 passes a valid out-pointer.
    unsafe { *memory = ptr };
    0
}

extern "C" fn ref_free(_memory: *mut u8, _bytes: usize) {}

/// One implementation, set up for one thread: hashes `pwd` with `salt` into `out`.
struct Hasher {
    which: Impl,
    cost: Cost,
    argon: Argon2<'static>,
    arena: Option<Arena>,
}

impl Hasher {
    fn new(which: Impl, cost: Cost, thp: bool) -> Hasher {
        let params =
            Params::new(cost.m, cost.t, cost.p, Some(32)).unwrap_or_else(|e| die(&e.to_string()));
        let blocks = params.block_count();
        let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
        let arena = match which {
            Impl::RustCrypto | Impl::Ref => Some(Arena::new(blocks, thp)),
            _ => None,
        };
        let mut h = Hasher {
            which,
            cost,
            argon,
            arena,
        };
        if which == Impl::Ref {
            let blocks = h.arena.as_mut().map(|a| a.blocks()).unwrap_or_default();
            let bytes = blocks.len() * Block::SIZE;
            let ptr = blocks.as_mut_ptr().cast::<u8>();
            REF_ARENA.with(|c| c.set((ptr, bytes)));
        }
        h
    }

    fn hash(&mut self, pwd: &[u8], salt: &[u8], out: &mut [u8]) -> Result<(), String> {
        match self.which {
            Impl::RustCrypto => {
                let memory = self.arena.as_mut().map(Arena::blocks).unwrap_or_default();
                self.argon
                    .hash_password_into_with_memory(pwd, salt, out, memory)
                    .map_err(|e| e.to_string())
            }
            Impl::RustCryptoFresh => self
                .argon
                .hash_password_into(pwd, salt, out)
                .map_err(|e| e.to_string()),
            Impl::Sodium => {
                if self.cost.p != 1 || salt.len() != 16 {
                    return Err("libsodium does p=1 and 16-byte salts only".into());
                }
                // SAFETY: every pointer is valid for the length passed with it.
                let rc = unsafe {
                    ffi::crypto_pwhash(
                        out.as_mut_ptr(),
                        out.len() as c_ulonglong,
                        pwd.as_ptr().cast(),
                        pwd.len() as c_ulonglong,
                        salt.as_ptr(),
                        self.cost.t as c_ulonglong,
                        self.cost.m as usize * 1024,
                        ffi::ARGON2_ID,
                    )
                };
                if rc == 0 {
                    Ok(())
                } else {
                    Err(format!("crypto_pwhash failed ({rc})"))
                }
            }
            Impl::Ref => ref_hash(self.cost, pwd, salt, &mut [], &mut [], out, true),
        }
    }
}

/// libargon2's `argon2_ctx` (Argon2id v1.3); with `arena`, its memory is this thread's arena.
fn ref_hash(
    cost: Cost,
    pwd: &[u8],
    salt: &[u8],
    secret: &mut [u8],
    ad: &mut [u8],
    out: &mut [u8],
    arena: bool,
) -> Result<(), String> {
    let mut pwd = pwd.to_vec();
    let mut salt = salt.to_vec();
    let mut ctx = ffi::Argon2Context {
        out: out.as_mut_ptr(),
        outlen: out.len() as u32,
        pwd: pwd.as_mut_ptr(),
        pwdlen: pwd.len() as u32,
        salt: salt.as_mut_ptr(),
        saltlen: salt.len() as u32,
        secret: if secret.is_empty() {
            std::ptr::null_mut()
        } else {
            secret.as_mut_ptr()
        },
        secretlen: secret.len() as u32,
        ad: if ad.is_empty() {
            std::ptr::null_mut()
        } else {
            ad.as_mut_ptr()
        },
        adlen: ad.len() as u32,
        t_cost: cost.t,
        m_cost: cost.m,
        lanes: cost.p,
        threads: 1,
        version: ffi::ARGON2_VERSION_13,
        allocate_cbk: if arena { Some(ref_alloc) } else { None },
        free_cbk: if arena { Some(ref_free) } else { None },
        flags: 0,
    };
    // SAFETY: the context's pointers are valid for their lengths for the whole call.
    let rc = unsafe { ffi::argon2_ctx(&mut ctx, ffi::ARGON2_ID) };
    if rc == 0 {
        Ok(())
    } else {
        // SAFETY: libargon2 returns a static string for every code.
        let msg = unsafe { CStr::from_ptr(ffi::argon2_error_message(rc)) };
        Err(format!("argon2_ctx: {}", msg.to_string_lossy()))
    }
}

fn die(msg: &str) -> ! {
    eprintln!("hellojohn-argon2-bench: {msg}");
    std::process::exit(2)
}

fn sodium_init() {
    // SAFETY: sodium_init may be called any number of times, from any thread.
    if unsafe { ffi::sodium_init() } < 0 {
        die("sodium_init failed");
    }
}

fn sodium_version() -> String {
    // SAFETY: a static NUL-terminated string.
    unsafe { CStr::from_ptr(ffi::sodium_version_string()) }
        .to_string_lossy()
        .into_owned()
}

/// CPU time of the calling thread: unlike wall time, it leaves out the time other processes on
/// this shared host took the core.
fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid out-pointer for clock_gettime.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// `threads` threads hashing back to back for `secs`: hashes per second over all threads, by
/// wall time and by each thread's CPU time, and the process's huge pages.
fn measure(
    which: Impl,
    cost: Cost,
    threads: usize,
    secs: f64,
    thp: bool,
    pin: bool,
) -> (f64, f64, u64) {
    let barrier = Arc::new(Barrier::new(threads + 1));
    let cores = core_affinity::get_core_ids().unwrap_or_default();
    let handles: Vec<_> = (0..threads)
        .map(|i| {
            let barrier = barrier.clone();
            let core = cores.get(i % cores.len().max(1)).copied();
            std::thread::spawn(move || {
                if pin {
                    if let Some(core) = core {
                        core_affinity::set_for_current(core);
                    }
                }
                let mut h = Hasher::new(which, cost, thp);
                let mut out = [0u8; 32];
                let mut salt = [0u8; 16];
                salt[..8].copy_from_slice(&(i as u64).to_le_bytes());
                // One hash before timing: the allocator's and the library's first-use costs
                // are not what a long-running server pays.
                h.hash(b"warm-up", &salt, &mut out)
                    .unwrap_or_else(|e| die(&e));
                barrier.wait(); // arenas ready
                barrier.wait(); // go
                let started = Instant::now();
                let cpu_started = thread_cpu();
                let limit = Duration::from_secs_f64(secs);
                let mut n = 0u64;
                loop {
                    salt[8..].copy_from_slice(&n.to_le_bytes());
                    h.hash(b"hj-bench-password", &salt, &mut out)
                        .unwrap_or_else(|e| die(&e));
                    n += 1;
                    let busy = started.elapsed();
                    if busy >= limit {
                        let cpu = thread_cpu().saturating_sub(cpu_started);
                        return (
                            n as f64 / busy.as_secs_f64(),
                            n as f64 / cpu.as_secs_f64().max(1e-9),
                        );
                    }
                }
            })
        })
        .collect();
    barrier.wait();
    let huge = anon_huge_kib();
    barrier.wait();
    let (mut rate, mut cpu_rate) = (0.0, 0.0);
    for h in handles {
        let (r, c) = h.join().unwrap_or_else(|_| die("thread panicked"));
        rate += r;
        cpu_rate += c;
    }
    (rate, cpu_rate, huge)
}

fn modes(arg: &str) -> Vec<bool> {
    match arg {
        "off" => vec![false],
        "on" => vec![true],
        "both" => vec![false, true],
        other => die(&format!("expected off, on or both, not {other}")),
    }
}

fn bench(args: &[String]) {
    let mut costs = Vec::new();
    let mut impls = vec![
        Impl::RustCrypto,
        Impl::RustCryptoFresh,
        Impl::Sodium,
        Impl::Ref,
    ];
    let mut threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut secs = 5.0;
    let mut rounds = 1;
    let mut thp = vec![false];
    let mut pin = vec![false];
    let mut label = String::from("default");
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let mut value = || {
            it.next()
                .cloned()
                .unwrap_or_else(|| die(&format!("{flag} needs a value")))
        };
        match flag.as_str() {
            "--params" => {
                let v: Vec<u32> = value()
                    .split(',')
                    .map(|x| x.parse().unwrap_or_else(|_| die("--params M,T,P")))
                    .collect();
                if v.len() != 3 {
                    die("--params M,T,P");
                }
                costs.push(Cost {
                    m: v[0],
                    t: v[1],
                    p: v[2],
                });
            }
            "--impls" => impls = value().split(',').map(Impl::parse).collect(),
            "--threads" => threads = value().parse().unwrap_or_else(|_| die("--threads N")),
            "--secs" => secs = value().parse().unwrap_or_else(|_| die("--secs S")),
            "--rounds" => rounds = value().parse().unwrap_or_else(|_| die("--rounds R")),
            "--thp" => thp = modes(&value()),
            "--pin" => pin = modes(&value()),
            "--label" => label = value(),
            other => die(&format!("unknown flag {other}")),
        }
    }
    if costs.is_empty() {
        costs.push(Cost {
            m: 19456,
            t: 2,
            p: 1,
        });
    }
    sodium_init();
    for round in 0..rounds {
        for cost in &costs {
            // Rotate the order every round, so no implementation always runs first.
            let n = impls.len();
            for k in 0..n {
                let which = impls[(k + round) % n];
                if which == Impl::Sodium && cost.p != 1 {
                    continue;
                }
                for &thp in &thp {
                    if thp && !matches!(which, Impl::RustCrypto | Impl::Ref) {
                        continue;
                    }
                    for &pin in &pin {
                        let (rate, cpu_rate, huge) = measure(which, *cost, threads, secs, thp, pin);
                        let per_thread = cpu_rate / threads as f64;
                        println!(
                            "{label}\t{}\t{}\t{}\t{}\t{threads}\t{}\t{}\t{rate:.2}\t{cpu_rate:.2}\t{:.3}\t{huge}",
                            which.name(),
                            cost.m,
                            cost.t,
                            cost.p,
                            if thp { "on" } else { "off" },
                            if pin { "on" } else { "off" },
                            1e3 / per_thread,
                        );
                    }
                }
            }
        }
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn check_eq(what: &str, got: &[u8], want: &[u8], failures: &mut u32) {
    if got == want {
        println!("ok   {what}: {}", hex(got));
    } else {
        println!("FAIL {what}: got {} want {}", hex(got), hex(want));
        *failures += 1;
    }
}

fn check_true(what: &str, ok: bool, failures: &mut u32) {
    println!("{} {what}", if ok { "ok  " } else { "FAIL" });
    if !ok {
        *failures += 1;
    }
}

fn sodium_verify(phc: &str, pwd: &[u8]) -> bool {
    let phc = CString::new(phc).unwrap_or_else(|_| die("NUL in PHC"));
    // SAFETY: NUL-terminated string, and a pointer valid for its length.
    unsafe {
        ffi::crypto_pwhash_str_verify(phc.as_ptr(), pwd.as_ptr().cast(), pwd.len() as c_ulonglong)
            == 0
    }
}

fn ref_verify(phc: &str, pwd: &[u8]) -> bool {
    let phc = CString::new(phc).unwrap_or_else(|_| die("NUL in PHC"));
    // SAFETY: NUL-terminated string, and a pointer valid for its length.
    unsafe { ffi::argon2_verify(phc.as_ptr(), pwd.as_ptr().cast(), pwd.len(), ffi::ARGON2_ID) == 0 }
}

/// Test vectors: every implementation must give the same bytes.
fn check() {
    sodium_init();
    println!("libsodium {}", sodium_version());
    let mut failures = 0;

    // RFC 9106 §5.3 (Argon2id with secret and associated data: libsodium has no API for those).
    let rfc: [u8; 32] = [
        0x0d, 0x64, 0x0d, 0xf5, 0x8d, 0x78, 0x76, 0x6c, 0x08, 0xc0, 0x37, 0xa3, 0x4a, 0x8b, 0x53,
        0xc9, 0xd0, 0x1e, 0xf0, 0x45, 0x2d, 0x75, 0xb6, 0x5e, 0xb5, 0x25, 0x20, 0xe9, 0x6b, 0x01,
        0xe6, 0x59,
    ];
    let rfc_params = argon2::ParamsBuilder::new()
        .m_cost(32)
        .t_cost(3)
        .p_cost(4)
        .data(argon2::AssociatedData::new(&[0x04; 12]).unwrap_or_else(|e| die(&e.to_string())))
        .output_len(32)
        .build()
        .unwrap_or_else(|e| die(&e.to_string()));
    let rfc_argon =
        Argon2::new_with_secret(&[0x03; 8], Algorithm::Argon2id, Version::V0x13, rfc_params)
            .unwrap_or_else(|e| die(&e.to_string()));
    let mut out = [0u8; 32];
    let mut arena = Arena::new(32, false);
    let r = rfc_argon.hash_password_into_with_memory(
        &[0x01; 32],
        &[0x02; 16],
        &mut out,
        arena.blocks(),
    );
    check_true("rustcrypto RFC 9106 runs", r.is_ok(), &mut failures);
    check_eq("rustcrypto RFC 9106 Argon2id", &out, &rfc, &mut failures);
    let mut out = [0u8; 32];
    let r = ref_hash(
        Cost { m: 32, t: 3, p: 4 },
        &[0x01; 32],
        &[0x02; 16],
        &mut [0x03; 8],
        &mut [0x04; 12],
        &mut out,
        false,
    );
    check_true("ref RFC 9106 runs", r.is_ok(), &mut failures);
    check_eq("ref RFC 9106 Argon2id", &out, &rfc, &mut failures);

    // Raw tags without secret or associated data: RustCrypto's, reproduced by the others, with
    // the same reused arena (ref, rustcrypto) used first for a larger hash.
    let costs = [
        Cost { m: 8, t: 1, p: 1 },
        Cost { m: 64, t: 1, p: 1 },
        Cost {
            m: 19456,
            t: 2,
            p: 1,
        },
        Cost {
            m: 65536,
            t: 3,
            p: 1,
        },
        Cost {
            m: 47104,
            t: 1,
            p: 1,
        },
    ];
    for cost in costs {
        for (pwd, salt) in [
            (&b"password"[..], &b"somesaltsomesalt"[..]),
            (&b"Bench-Passw0rd!2024"[..], &[0u8; 16][..]),
            (&b""[..], &[0xffu8; 16][..]),
        ] {
            let mut want = [0u8; 32];
            let r = Hasher::new(Impl::RustCryptoFresh, cost, false).hash(pwd, salt, &mut want);
            check_true("rustcrypto-fresh runs", r.is_ok(), &mut failures);
            for which in [Impl::RustCrypto, Impl::Sodium, Impl::Ref] {
                let mut h = Hasher::new(
                    which,
                    Cost {
                        m: 65536,
                        t: 1,
                        p: 1,
                    },
                    false,
                );
                let mut junk = [0u8; 32];
                let _ = h.hash(b"another password", b"another salt 123", &mut junk);
                // Same thread, same arena, now with the cost under test.
                let mut h2 = Hasher::new(which, cost, false);
                if which != Impl::Sodium {
                    // Reuse the larger arena that still holds the first hash's blocks.
                    h2.arena = h.arena.take();
                    if which == Impl::Ref {
                        let blocks = h2.arena.as_mut().map(Arena::blocks).unwrap_or_default();
                        let bytes = blocks.len() * Block::SIZE;
                        let ptr = blocks.as_mut_ptr().cast::<u8>();
                        REF_ARENA.with(|c| c.set((ptr, bytes)));
                    }
                }
                let mut got = [0u8; 32];
                let r = h2.hash(pwd, salt, &mut got);
                check_true(
                    &format!("{} m={} t={} runs: {r:?}", which.name(), cost.m, cost.t),
                    r.is_ok(),
                    &mut failures,
                );
                check_eq(
                    &format!(
                        "{} m={} t={} p={} pwd={:?}",
                        which.name(),
                        cost.m,
                        cost.t,
                        cost.p,
                        String::from_utf8_lossy(pwd)
                    ),
                    &got,
                    &want,
                    &mut failures,
                );
            }
        }
    }

    // HelloJohn-format PHC strings (32-byte tag, 16-byte salt): RustCrypto's verify in the C
    // libraries, libsodium's re-made byte for byte by RustCrypto.
    for (m, t) in [(65536u32, 3u32), (19456, 2)] {
        let params = Params::new(m, t, 1, Some(32)).unwrap_or_else(|e| die(&e.to_string()));
        let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
        let salt =
            SaltString::encode_b64(b"0123456789abcdef").unwrap_or_else(|e| die(&e.to_string()));
        let phc = argon
            .hash_password(b"S3cret-password", &salt)
            .unwrap_or_else(|e| die(&e.to_string()))
            .to_string();
        println!("     rustcrypto PHC {phc}");
        check_true(
            "libsodium verifies the rustcrypto PHC",
            sodium_verify(&phc, b"S3cret-password"),
            &mut failures,
        );
        check_true(
            "libsodium refuses a wrong password",
            !sodium_verify(&phc, b"S3cret-passworD"),
            &mut failures,
        );
        check_true(
            "ref verifies the rustcrypto PHC",
            ref_verify(&phc, b"S3cret-password"),
            &mut failures,
        );
        check_true(
            "ref refuses a wrong password",
            !ref_verify(&phc, b"S3cret-passworD"),
            &mut failures,
        );

        let mut buf = [0 as c_char; 128];
        let pwd = b"S3cret-password";
        // SAFETY: a 128-byte output buffer (crypto_pwhash_STRBYTES) and a valid password.
        let rc = unsafe {
            ffi::crypto_pwhash_str(
                buf.as_mut_ptr(),
                pwd.as_ptr().cast(),
                pwd.len() as c_ulonglong,
                t as c_ulonglong,
                m as usize * 1024,
            )
        };
        check_true("libsodium crypto_pwhash_str", rc == 0, &mut failures);
        // SAFETY: NUL-terminated by libsodium.
        let sodium_phc = unsafe { CStr::from_ptr(buf.as_ptr()) }
            .to_string_lossy()
            .into_owned();
        println!("     libsodium  PHC {sodium_phc}");
        let remade = PasswordHash::new(&sodium_phc)
            .ok()
            .and_then(|parsed| parsed.salt.map(|s| s.to_string()))
            .and_then(|salt| {
                let salt = SaltString::from_b64(&salt).ok()?;
                Some(argon.hash_password(pwd, &salt).ok()?.to_string())
            })
            .unwrap_or_default();
        check_true(
            "rustcrypto re-makes libsodium's PHC string byte for byte",
            remade == sodium_phc,
            &mut failures,
        );
    }

    println!("{failures} failed");
    if failures > 0 {
        std::process::exit(1);
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("check") => check(),
        Some("bench") => bench(&args[1..]),
        Some("version") => {
            sodium_init();
            println!("libsodium {}", sodium_version());
        }
        _ => die("usage: hellojohn-argon2-bench check | bench [flags] | version"),
    }
}
