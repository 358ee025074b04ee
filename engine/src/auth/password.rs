//! Passwords: Argon2id PHC hashing and verification, and the password policy.
//!
//! Hashing is CPU- and memory-heavy by design, so nothing here may run on an event loop: the
//! [`crate::auth::hashpool::HashPool`] runs it on dedicated threads. Each of those threads owns
//! a [`Hasher`] with an [`Arena`]: Argon2 working memory mapped once, at start, large enough
//! for the current parameters and for HelloJohn's own m=65536 hashes, faulted in for the
//! current parameters before the first sign-in, and reused by every job instead of allocating
//! (and page-faulting) tens of MiB per sign-in. An idle thread gives its pages back.
//!
//! A stored PHC string names its own cost, and verifying it costs what it names, so no stored
//! hash runs unless it is within [`HashBounds`] (`HELLOJOHN_ARGON2_MAX_*`): [`check_hash`] is
//! the one check, made before any verification and before any hash is written (see there).
//!
//! The implementation is RustCrypto's `argon2` crate. With its memory reused it was the fastest
//! Argon2id measured on the reference host: 15 % ahead of libsodium at the default parameters
//! and 12 % at m=65536 (libsodium maps and wipes fresh memory for every hash), 35 % ahead of
//! the reference C; see `perf/results/argon2-impls.md`.

use std::fmt;

use argon2::password_hash::{PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Version};
use rand::RngCore as _;
use subtle::ConstantTimeEq as _;
use zeroize::Zeroize as _;

use crate::config::Config;

/// Length of the Argon2 tag in the PHC strings this engine writes (as HelloJohn Go does).
pub const OUTPUT_LEN: usize = 32;
/// Length of the random salt of new hashes (the PHC recommendation).
pub const SALT_LEN: usize = 16;
/// Tags longer than this in a stored PHC string are refused as malformed: no real hasher
/// writes them, and the limit keeps the output buffer on the stack.
const MAX_OUTPUT_LEN: usize = 128;
/// The largest salt accepted in a stored PHC string (the PHC format's own limit is 48 bytes).
const MAX_SALT_LEN: usize = 64;

/// Argon2id cost parameters for new hashes (`HELLOJOHN_ARGON2_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Params {
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
}

impl Params {
    /// The OWASP recommendation, which is also the engine's default: m=19456 KiB, t=2, p=1.
    pub const OWASP: Params = Params {
        memory_kib: 19_456,
        iterations: 2,
        parallelism: 1,
    };

    pub fn from_config(config: &Config) -> Params {
        Params {
            memory_kib: config.argon2_memory_kib,
            iterations: config.argon2_iterations,
            parallelism: config.argon2_parallelism,
        }
    }

    /// The size of a hashing thread's arena in KiB: the current memory or HelloJohn's
    /// [`LEGACY_MEMORY_KIB`], whichever is larger.
    pub fn arena_kib(&self) -> u32 {
        self.memory_kib.max(LEGACY_MEMORY_KIB)
    }

    /// The argon2 crate's parameters, refusing combinations Argon2 cannot use (for example
    /// less than 8 KiB of memory per lane).
    pub fn to_argon2(&self) -> Result<argon2::Params, HashError> {
        argon2::Params::new(
            self.memory_kib,
            self.iterations,
            self.parallelism,
            Some(OUTPUT_LEN),
        )
        .map_err(|e| HashError::InvalidParams(e.to_string()))
    }
}

impl Default for Params {
    fn default() -> Params {
        Params::OWASP
    }
}

/// A password in memory. Its `Debug` never shows it, so it cannot leak through a log line or
/// a derived `Debug` of a request, and its bytes are wiped when it is dropped.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl Password {
    pub fn new(password: impl Into<String>) -> Password {
        Password(password.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<String> for Password {
    fn from(password: String) -> Password {
        Password(password)
    }
}

impl From<&str> for Password {
    fn from(password: &str) -> Password {
        Password(password.to_string())
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

impl Drop for Password {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

/// The outcome of checking a password against a stored hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verification {
    /// The password is right. `needs_rehash` is true when the stored hash was made with other
    /// parameters than the current ones, so the caller should store a fresh hash.
    Match { needs_rehash: bool },
    /// The password is wrong, or the stored hash is unusable.
    Mismatch,
}

impl Verification {
    pub fn is_match(&self) -> bool {
        matches!(self, Verification::Match { .. })
    }
}

/// Hashing failed. With validated parameters this cannot happen in practice.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HashError {
    #[error("invalid Argon2 parameters: {0}")]
    InvalidParams(String),
    #[error("password hashing failed: {0}")]
    Failed(String),
}

/// The memory of HelloJohn's own (Go) hashes, m=65536 KiB: every hashing thread's arena is at
/// least this large, so verifying those hashes never allocates.
pub const LEGACY_MEMORY_KIB: u32 = 65_536;

/// The largest Argon2 cost a stored hash may name (`HELLOJOHN_ARGON2_MAX_MEMORY_KIB`,
/// `_MAX_ITERATIONS`, `_MAX_PARALLELISM`).
///
/// A PHC string carries its own parameters and a verification costs what they say: t=300 at
/// 19 MiB holds a hashing thread for seconds per sign-in attempt, t=2^32-1 holds it for ever,
/// and m in the gigabytes makes it allocate them. Whoever can put a row into the password table
/// (a restored or imported dump, a corrupt row, a compromised admin path) could otherwise stall
/// every sign-in with a handful of requests. A hash beyond the bounds never runs: it is a
/// mismatch (see [`check_hash`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HashBounds {
    pub max_memory_kib: u32,
    pub max_iterations: u32,
    pub max_parallelism: u32,
}

impl HashBounds {
    /// 256 MiB, t=10, p=8: four times HelloJohn's own m=65536 and five times OWASP's t=2,
    /// while a hash at the bounds still ends in seconds, not minutes.
    pub const DEFAULT: HashBounds = HashBounds {
        max_memory_kib: 262_144,
        max_iterations: 10,
        max_parallelism: 8,
    };

    pub fn from_config(config: &Config) -> HashBounds {
        HashBounds {
            max_memory_kib: config.argon2_max_memory_kib,
            max_iterations: config.argon2_max_iterations,
            max_parallelism: config.argon2_max_parallelism,
        }
    }

    /// Whether hashes made with `params` are within the bounds.
    pub fn admits(&self, params: &Params) -> bool {
        self.admits_costs(params.memory_kib, params.iterations, params.parallelism)
    }

    fn admits_costs(&self, memory_kib: u32, iterations: u32, parallelism: u32) -> bool {
        memory_kib <= self.max_memory_kib
            && iterations <= self.max_iterations
            && parallelism <= self.max_parallelism
    }

    /// These bounds, raised where needed to admit `params`: a hasher always verifies the hashes
    /// it makes itself.
    fn admitting(self, params: &Params) -> HashBounds {
        HashBounds {
            max_memory_kib: self.max_memory_kib.max(params.memory_kib),
            max_iterations: self.max_iterations.max(params.iterations),
            max_parallelism: self.max_parallelism.max(params.parallelism),
        }
    }
}

/// The default largest memory of a stored hash, [`HashBounds::DEFAULT`]'s: 256 MiB.
pub const MAX_MEMORY_KIB: u32 = HashBounds::DEFAULT.max_memory_kib;
const _: () = assert!(LEGACY_MEMORY_KIB <= MAX_MEMORY_KIB);

impl Default for HashBounds {
    fn default() -> HashBounds {
        HashBounds::DEFAULT
    }
}

/// Why a stored PHC string is refused without running Argon2. The message never contains the
/// string itself (it is a credential), only what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoredHashError {
    #[error("not a usable Argon2 PHC string: {0}")]
    Malformed(String),
    #[error(
        "its Argon2 cost m={memory_kib},t={iterations},p={parallelism} exceeds the limits \
         m={},t={},p={} (HELLOJOHN_ARGON2_MAX_*)",
        bounds.max_memory_kib,
        bounds.max_iterations,
        bounds.max_parallelism
    )]
    OutOfBounds {
        memory_kib: u32,
        iterations: u32,
        parallelism: u32,
        bounds: HashBounds,
    },
}

/// A stored PHC string, parsed and checked, ready to verify against.
struct Stored<'a> {
    algorithm: Algorithm,
    version: Version,
    params: argon2::Params,
    expected: argon2::password_hash::Output,
    salt: &'a [u8],
}

/// Parses `phc` and checks it against `bounds` without running Argon2; the salt is decoded
/// into `salt_buf`.
fn parse_stored<'a>(
    phc: &str,
    bounds: &HashBounds,
    salt_buf: &'a mut [u8; MAX_SALT_LEN],
) -> Result<Stored<'a>, StoredHashError> {
    let malformed = |e: &dyn fmt::Display| StoredHashError::Malformed(e.to_string());
    let parsed = PasswordHash::new(phc).map_err(|e| malformed(&e))?;
    let algorithm = Algorithm::try_from(parsed.algorithm).map_err(|e| malformed(&e))?;
    // A PHC string without `v=` predates version 1.3 of Argon2 (RFC 9106 §3.1).
    let version = match parsed.version {
        Some(v) => Version::try_from(v).map_err(|e| malformed(&e))?,
        None => Version::V0x10,
    };
    let expected = parsed
        .hash
        .ok_or_else(|| malformed(&"the hash has no tag"))?;
    if expected.len() > MAX_OUTPUT_LEN {
        return Err(malformed(&"the tag is too long"));
    }
    let salt = parsed
        .salt
        .ok_or_else(|| malformed(&"the hash has no salt"))?
        .decode_b64(salt_buf)
        .map_err(|e| malformed(&format!("salt: {e}")))?;
    let params = argon2::Params::try_from(&parsed).map_err(|e| malformed(&e))?;
    if !bounds.admits_costs(params.m_cost(), params.t_cost(), params.p_cost()) {
        return Err(StoredHashError::OutOfBounds {
            memory_kib: params.m_cost(),
            iterations: params.t_cost(),
            parallelism: params.p_cost(),
            bounds: *bounds,
        });
    }
    Ok(Stored {
        algorithm,
        version,
        params,
        expected,
        salt,
    })
}

/// The one check of a stored password hash: `Ok` when `phc` is an Argon2 PHC string this
/// engine can verify and its cost is within `bounds`. Nothing runs Argon2 on a hash that fails
/// it: every verification goes through it ([`Hasher::verify`] treats a failure as a mismatch,
/// and the hash pool verifies its dummy hash in its place, so a refused hash costs and answers
/// exactly what a wrong password does).
///
/// Every hash written to the store must pass it first. Today the engine writes only the hashes
/// its pool makes ([`crate::auth::hashpool::HashPool::hash`] checks them): at sign-up and when
/// a sign-in upgrades an old hash. A path that imports hashes from elsewhere (a migration from
/// another system, an admin command) must refuse those that fail it, so that an imported
/// account is not one that cannot sign in or that stalls the pool.
pub fn check_hash(phc: &str, bounds: &HashBounds) -> Result<(), StoredHashError> {
    let mut salt_buf = [0u8; MAX_SALT_LEN];
    parse_stored(phc, bounds, &mut salt_buf).map(|_| ())
}

/// Argon2 working memory owned by one hashing thread and reused by every hash it runs.
///
/// It is its own anonymous memory mapping, sized for the largest hash it serves, of which
/// only the part the current parameters use is faulted in up front ([`Arena::prefault`]): the
/// first sign-in pays no page faults, and the rest (HelloJohn's m=65536 hashes) is faulted in
/// only if such a hash is ever verified. Arenas of 2 MiB or more start on a 2 MiB boundary and
/// ask the kernel for transparent huge pages (`MADV_HUGEPAGE`; Debian's THP mode is `madvise`):
/// Argon2 reads blocks at random across tens of MiB, and with 4 KiB pages nearly every such read
/// misses the TLB. That measured 6 to 16 % more hashes per CPU-second
/// (`perf/results/argon2-impls.md`).
///
/// A hashing thread that has been idle for a while gives the pages back with
/// [`Arena::release`] (`MADV_DONTNEED`; the mapping stays), so an idle server holds no Argon2
/// memory; the next hash faults them in again, once.
///
/// It is not wiped between hashes, because Argon2 needs no wipe: a hash writes each of the
/// blocks it uses before it reads it (the first two blocks of a lane from the initial hash, every
/// later block from blocks this same hash wrote; later passes XOR into blocks of this hash), so
/// what an earlier hash left there can never reach a result. Blocks past the current hash's
/// size keep an earlier, larger hash's state until they are reused or released; released and
/// unmapped pages go back to the kernel, which zeroes them before any other use.
pub struct Arena {
    /// The whole mapping (including the alignment slack) and its length in bytes.
    map: *mut libc::c_void,
    map_len: usize,
    /// The first block (on the 2 MiB boundary when huge pages are asked for).
    first: *mut Block,
    len: usize,
    /// Blocks from the start that may be resident: the most any use touched since the last
    /// release.
    touched: usize,
}

// SAFETY: an `Arena` is the only owner of its mapping (nothing else holds its pointers), and
// every access goes through `&mut self`, so moving it to another thread is sound.
#[allow(unsafe_code)]
unsafe impl Send for Arena {}

/// The size of a transparent huge page on x86-64 and (4 KiB-page) AArch64 Linux.
const HUGE_PAGE: usize = 2 << 20;
/// The smallest page size of the platforms served; releases round inward to it.
const PAGE: usize = 4096;

impl Arena {
    /// An arena for hashes of up to `memory_kib` KiB (one Argon2 block is 1 KiB), of which
    /// nothing is resident yet. Fails, rather than aborting the process, if the address space
    /// cannot be had.
    #[allow(unsafe_code)]
    pub fn new(memory_kib: u32) -> Result<Arena, HashError> {
        let len = (memory_kib as usize).max(1);
        let bytes = len * Block::SIZE;
        let huge = bytes >= HUGE_PAGE;
        // Room to start on the next 2 MiB boundary.
        let map_len = bytes + if huge { HUGE_PAGE } else { 0 };
        // SAFETY: a fresh private anonymous mapping; no existing memory is affected.
        let map = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                map_len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if map == libc::MAP_FAILED {
            return Err(HashError::Failed(format!(
                "cannot map {} MiB of Argon2 memory: {}",
                map_len >> 20,
                std::io::Error::last_os_error()
            )));
        }
        let addr = map as usize;
        let start = if huge {
            addr.next_multiple_of(HUGE_PAGE)
        } else {
            addr
        };
        if huge && !advise_huge_pages(start, bytes / HUGE_PAGE * HUGE_PAGE) {
            tracing::debug!("transparent huge pages unavailable for the Argon2 arena");
        }
        Ok(Arena {
            map,
            map_len,
            first: start as *mut Block,
            len,
            touched: 0,
        })
    }

    /// Faults in the first `blocks` blocks now (after the huge-page advice, so that the kernel
    /// can fault huge pages in), so that a hash of that size pays no page faults.
    #[allow(unsafe_code)]
    pub fn prefault(&mut self, blocks: usize) {
        let blocks = blocks.min(self.len);
        let base = self.first.cast::<u8>();
        for offset in (0..blocks * Block::SIZE).step_by(PAGE) {
            // SAFETY: `offset` is inside the first `blocks` blocks of the mapping, which is
            // readable and writable; a volatile write is not optimised away, so the page is
            // really touched. Every byte value is a valid part of a `Block` (plain `u64`s).
            unsafe { base.add(offset).write_volatile(0) };
        }
        self.touched = self.touched.max(blocks);
    }

    /// Gives the faulted-in pages back to the kernel; the mapping stays and the next use
    /// faults them in again. Returns the bytes released.
    #[allow(unsafe_code)]
    pub fn release(&mut self) -> usize {
        // Rounded up to the huge page that the last used block may have brought in whole.
        let granule = if self.map_len >= HUGE_PAGE {
            HUGE_PAGE
        } else {
            PAGE
        };
        let bytes = (self.touched * Block::SIZE).next_multiple_of(granule);
        let bytes = bytes.min(self.map_len - (self.first as usize - self.map as usize));
        if bytes == 0 {
            return 0;
        }
        // SAFETY: the range is inside this arena's own private anonymous mapping, starting at
        // a page boundary (the mapping's start or a 2 MiB boundary), and no reference into it
        // is alive (this takes `&mut self`). After MADV_DONTNEED the pages read as zeroes,
        // which are valid `Block`s; their old contents are never needed (see the type's docs).
        let released = unsafe { libc::madvise(self.first.cast(), bytes, libc::MADV_DONTNEED) == 0 };
        if !released {
            return 0;
        }
        self.touched = 0;
        bytes
    }

    /// Bytes of address space held (the mapping, including the alignment slack).
    pub fn bytes(&self) -> usize {
        self.map_len
    }

    /// Bytes that may be resident: what has been used since the last release.
    pub fn resident_bytes(&self) -> usize {
        self.touched * Block::SIZE
    }

    /// The most blocks one hash can use without allocating.
    pub fn blocks(&self) -> usize {
        self.len
    }

    /// The first `needed` blocks, or `None` when the arena is smaller.
    #[allow(unsafe_code)]
    fn get(&mut self, needed: usize) -> Option<&mut [Block]> {
        if needed > self.len {
            return None;
        }
        self.touched = self.touched.max(needed);
        // SAFETY: the first `len` blocks lie inside the mapping, which is readable, writable
        // and aligned for `Block` (page-aligned); its bytes are always initialised (zero pages
        // or earlier writes) and any bytes are a valid `Block`. The borrow of `self` makes
        // this the only reference into the mapping while it lives.
        Some(unsafe { std::slice::from_raw_parts_mut(self.first, needed) })
    }
}

impl Drop for Arena {
    /// Unmaps the arena: its pages go back to the kernel, which zeroes them before any reuse.
    #[allow(unsafe_code)]
    fn drop(&mut self) {
        // SAFETY: the mapping was made by `Arena::new` with this address and length, and no
        // reference into it outlives `self`.
        unsafe {
            libc::munmap(self.map, self.map_len);
        }
    }
}

/// An empty vector with room for `n` blocks, or an error when the memory cannot be had.
fn reserve_blocks(n: usize) -> Result<Vec<Block>, HashError> {
    let mut blocks = Vec::new();
    blocks.try_reserve_exact(n).map_err(|_| {
        HashError::Failed(format!(
            "cannot allocate {} MiB of Argon2 memory",
            (n * Block::SIZE) >> 20
        ))
    })?;
    Ok(blocks)
}

/// Asks the kernel to back `[addr, addr + len)`, 2 MiB-aligned, with transparent huge pages.
/// A hint only: where THP is off or unsupported the call fails and nothing changes but speed.
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
fn advise_huge_pages(addr: usize, len: usize) -> bool {
    // SAFETY: the caller passes a range inside a mapping it owns, aligned to 2 MiB and so to
    // the page size. MADV_HUGEPAGE changes only how the kernel backs those pages, never their
    // contents or whether they are mapped, so no Rust value can observe it.
    unsafe { libc::madvise(addr as *mut libc::c_void, len, libc::MADV_HUGEPAGE) == 0 }
}

#[cfg(not(target_os = "linux"))]
fn advise_huge_pages(_addr: usize, _len: usize) -> bool {
    false
}

/// Computes Argon2 hashes in one reused, pre-faulted [`Arena`].
pub struct Hasher {
    params: Params,
    argon2: Argon2<'static>,
    /// Blocks the current parameters need.
    blocks: usize,
    arena: Arena,
    /// Stored hashes beyond these are refused without running Argon2.
    bounds: HashBounds,
    /// Hashes that did not fit the arena and allocated memory of their own.
    fresh_allocations: u64,
}

impl Hasher {
    /// A hasher whose arena fits the current parameters only: for one-off use. Hashes made
    /// with more memory allocate their own (counted by [`Hasher::fresh_allocations`]).
    pub fn new(params: Params) -> Result<Hasher, HashError> {
        Hasher::with_arena(params, params.memory_kib)
    }

    /// A hasher for a hashing thread: its arena serves every hash of up to
    /// [`Params::arena_kib`], so neither the current parameters nor HelloJohn's m=65536
    /// hashes ever allocate.
    pub fn for_pool(params: Params) -> Result<Hasher, HashError> {
        Hasher::with_arena(params, params.arena_kib())
    }

    /// A hasher whose arena serves hashes of up to `arena_kib` KiB (at least the current
    /// parameters' memory). It refuses stored hashes beyond [`HashBounds::DEFAULT`] (raised to
    /// the current parameters where they are larger); see [`Hasher::bounded`].
    pub fn with_arena(params: Params, arena_kib: u32) -> Result<Hasher, HashError> {
        let argon2_params = params.to_argon2()?;
        let blocks = argon2_params.block_count();
        let arena_kib = arena_kib.max(u32::try_from(blocks).unwrap_or(u32::MAX));
        let mut arena = Arena::new(arena_kib)?;
        arena.prefault(blocks);
        Ok(Hasher {
            params,
            blocks,
            argon2: Argon2::new(Algorithm::Argon2id, Version::V0x13, argon2_params),
            arena,
            bounds: HashBounds::DEFAULT.admitting(&params),
            fresh_allocations: 0,
        })
    }

    /// This hasher, refusing stored hashes beyond `bounds`. Fails when the current parameters
    /// are themselves beyond them: its own hashes would never verify.
    pub fn bounded(mut self, bounds: HashBounds) -> Result<Hasher, HashError> {
        if !bounds.admits(&self.params) {
            return Err(HashError::InvalidParams(format!(
                "m={},t={},p={} exceeds the limits m={},t={},p={} (HELLOJOHN_ARGON2_MAX_*)",
                self.params.memory_kib,
                self.params.iterations,
                self.params.parallelism,
                bounds.max_memory_kib,
                bounds.max_iterations,
                bounds.max_parallelism
            )));
        }
        self.bounds = bounds;
        Ok(self)
    }

    pub fn bounds(&self) -> HashBounds {
        self.bounds
    }

    pub fn params(&self) -> Params {
        self.params
    }

    /// Bytes of address space held by this hasher's arena.
    pub fn arena_bytes(&self) -> usize {
        self.arena.bytes()
    }

    /// Bytes of the arena that may be resident (used since the last release).
    pub fn arena_resident_bytes(&self) -> usize {
        self.arena.resident_bytes()
    }

    /// Gives the arena's pages back to the kernel (see [`Arena::release`]); returns the bytes
    /// released.
    pub fn release_arena(&mut self) -> usize {
        self.arena.release()
    }

    /// How many hashes so far did not fit the arena and allocated their own memory.
    pub fn fresh_allocations(&self) -> u64 {
        self.fresh_allocations
    }

    /// Runs Argon2 into `out`, in the arena when `blocks` fit it, else in memory allocated for
    /// this hash alone.
    fn compute(
        &mut self,
        argon2: &Argon2<'_>,
        blocks: usize,
        password: &[u8],
        salt: &[u8],
        out: &mut [u8],
    ) -> Result<(), String> {
        match self.arena.get(blocks) {
            Some(memory) => argon2.hash_password_into_with_memory(password, salt, out, memory),
            None => {
                self.fresh_allocations += 1;
                tracing::info!(
                    blocks,
                    arena_kib = self.arena.blocks(),
                    "password hash larger than the hashing arena: allocating memory for it"
                );
                let mut memory = reserve_blocks(blocks).map_err(|e| e.to_string())?;
                memory.resize(blocks, Block::default());
                let hashed =
                    argon2.hash_password_into_with_memory(password, salt, out, &mut memory);
                for block in &mut memory {
                    block.as_mut().zeroize();
                }
                hashed
            }
        }
        .map_err(|e| e.to_string())
    }

    /// A PHC string (`$argon2id$v=19$m=…,t=…,p=…$salt$tag`) of `password` with a random
    /// 16-byte salt.
    pub fn hash(&mut self, password: &str) -> Result<String, HashError> {
        let mut salt = [0u8; SALT_LEN];
        rand::rngs::OsRng.fill_bytes(&mut salt);
        let mut tag = [0u8; OUTPUT_LEN];
        let argon2 = self.argon2.clone();
        self.compute(&argon2, self.blocks, password.as_bytes(), &salt, &mut tag)
            .map_err(HashError::Failed)?;
        let salt = SaltString::encode_b64(&salt).map_err(|e| HashError::Failed(e.to_string()))?;
        let tag_b64 =
            base64::Engine::encode(&base64::engine::general_purpose::STANDARD_NO_PAD, tag);
        Ok(format!(
            "$argon2id$v=19$m={},t={},p={}${}${}",
            self.params.memory_kib,
            self.params.iterations,
            self.params.parallelism,
            salt.as_str(),
            tag_b64
        ))
    }

    /// Checks `password` against a stored PHC string, whatever Argon2 parameters it was made
    /// with, within [`Hasher::bounds`]. A malformed string or one beyond the bounds is a
    /// mismatch without running Argon2 ([`check_hash`]), logged without the string itself (it
    /// is a credential).
    pub fn verify(&mut self, password: &str, phc: &str) -> Verification {
        match self.try_verify(password, phc) {
            Ok(v) => v,
            Err(reason) => {
                tracing::warn!(
                    reason,
                    "stored password hash is not usable; treating it as a mismatch"
                );
                Verification::Mismatch
            }
        }
    }

    fn try_verify(&mut self, password: &str, phc: &str) -> Result<Verification, String> {
        let mut salt_buf = [0u8; MAX_SALT_LEN];
        let Stored {
            algorithm,
            version,
            params,
            expected,
            salt,
        } = parse_stored(phc, &self.bounds, &mut salt_buf).map_err(|e| e.to_string())?;
        let current = self.argon2.params();
        let needs_rehash = algorithm != Algorithm::Argon2id
            || version != Version::V0x13
            || params.m_cost() != current.m_cost()
            || params.t_cost() != current.t_cost()
            || params.p_cost() != current.p_cost()
            || expected.len() != OUTPUT_LEN
            || salt.len() < SALT_LEN
            || !params.keyid().is_empty()
            || !params.data().is_empty();

        let mut out_buf = [0u8; MAX_OUTPUT_LEN];
        let out = &mut out_buf[..expected.len()];
        let blocks = params.block_count();
        let argon2 = Argon2::new(algorithm, version, params);
        self.compute(&argon2, blocks, password.as_bytes(), salt, out)?;
        let equal: bool = out.ct_eq(expected.as_bytes()).into();
        out_buf.zeroize();
        Ok(if equal {
            Verification::Match { needs_rehash }
        } else {
            Verification::Mismatch
        })
    }
}

/// Hashes `password` with `params` (allocating fresh working memory; the hash pool's threads
/// use a long-lived [`Hasher`] instead).
pub fn hash(password: &str, params: &Params) -> Result<String, HashError> {
    Hasher::new(*params)?.hash(password)
}

/// Verifies `password` against `phc`; `current` decides whether a rehash is due.
pub fn verify(password: &str, phc: &str, current: &Params) -> Verification {
    match Hasher::new(*current) {
        Ok(mut hasher) => hasher.verify(password, phc),
        Err(e) => {
            tracing::error!(error = %e, "cannot verify a password: invalid current Argon2 parameters");
            Verification::Mismatch
        }
    }
}

/// The password policy: 8 to 128 characters, with an upper-case letter, a lower-case letter
/// and a digit.
pub const MIN_LENGTH: usize = 8;
pub const MAX_LENGTH: usize = 128;

/// The first policy rule a password breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyViolation {
    MinLength,
    MaxLength,
    Uppercase,
    Lowercase,
    Digit,
}

impl PolicyViolation {
    /// A stable machine-readable name of the rule, for API error details.
    pub fn rule(&self) -> &'static str {
        match self {
            PolicyViolation::MinLength => "min_length",
            PolicyViolation::MaxLength => "max_length",
            PolicyViolation::Uppercase => "uppercase",
            PolicyViolation::Lowercase => "lowercase",
            PolicyViolation::Digit => "digit",
        }
    }

    /// A sentence for people.
    pub fn message(&self) -> String {
        match self {
            PolicyViolation::MinLength => {
                format!("password must be at least {MIN_LENGTH} characters long (min_length)")
            }
            PolicyViolation::MaxLength => {
                format!("password must be at most {MAX_LENGTH} characters long (max_length)")
            }
            PolicyViolation::Uppercase => {
                "password must contain an upper-case letter (uppercase)".to_string()
            }
            PolicyViolation::Lowercase => {
                "password must contain a lower-case letter (lowercase)".to_string()
            }
            PolicyViolation::Digit => "password must contain a digit (digit)".to_string(),
        }
    }
}

impl fmt::Display for PolicyViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message())
    }
}

impl std::error::Error for PolicyViolation {}

/// Checks a new password against the policy, reporting the first rule it breaks. Length is
/// counted in characters, not bytes, so non-ASCII passwords are not penalised.
pub fn check_policy(password: &str) -> Result<(), PolicyViolation> {
    let length = password.chars().count();
    if length < MIN_LENGTH {
        return Err(PolicyViolation::MinLength);
    }
    if length > MAX_LENGTH {
        return Err(PolicyViolation::MaxLength);
    }
    if !password.chars().any(char::is_uppercase) {
        return Err(PolicyViolation::Uppercase);
    }
    if !password.chars().any(char::is_lowercase) {
        return Err(PolicyViolation::Lowercase);
    }
    if !password.chars().any(|c| c.is_ascii_digit()) {
        return Err(PolicyViolation::Digit);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use argon2::password_hash::PasswordHasher as _;

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
            0x0d, 0x64, 0x0d, 0xf5, 0x8d, 0x78, 0x76, 0x6c, 0x08, 0xc0, 0x37, 0xa3, 0x4a, 0x8b,
            0x53, 0xc9, 0xd0, 0x1e, 0xf0, 0x45, 0x2d, 0x75, 0xb6, 0x5e, 0xb5, 0x25, 0x20, 0xe9,
            0x6b, 0x01, 0xe6, 0x59,
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
    fn policy_rules() {
        assert_eq!(check_policy("Abcdefg1"), Ok(()));
        assert_eq!(check_policy("Abcdef1"), Err(PolicyViolation::MinLength));
        assert_eq!(
            check_policy(&format!("Ab1{}", "x".repeat(126))),
            Err(PolicyViolation::MaxLength)
        );
        assert_eq!(
            check_policy(&format!("Ab1{}", "x".repeat(125))),
            Ok(()),
            "128 characters is allowed"
        );
        assert_eq!(check_policy("abcdefg1"), Err(PolicyViolation::Uppercase));
        assert_eq!(check_policy("ABCDEFG1"), Err(PolicyViolation::Lowercase));
        assert_eq!(check_policy("Abcdefgh"), Err(PolicyViolation::Digit));
        // Eight characters but sixteen bytes: long enough.
        assert_eq!(check_policy("Äöüßéè1a"), Ok(()));
        assert_eq!(PolicyViolation::MinLength.rule(), "min_length");
        assert_eq!(PolicyViolation::Digit.rule(), "digit");
        assert!(PolicyViolation::Uppercase.message().contains("uppercase"));
        assert_eq!(
            PolicyViolation::MinLength.to_string(),
            "password must be at least 8 characters long (min_length)"
        );
    }

    #[test]
    fn password_debug_is_redacted() {
        let p = Password::new("hunter2");
        assert_eq!(format!("{p:?}"), "Password(<redacted>)");
        assert_eq!(p.expose(), "hunter2");
    }
}
