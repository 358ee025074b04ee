//! The hasher a hashing thread owns: current parameters, bounds, and an [`Arena`].

use argon2::password_hash::SaltString;
use argon2::{Algorithm, Argon2, Block, Version};
use rand::RngCore as _;
use subtle::ConstantTimeEq as _;
use zeroize::Zeroize as _;

use crate::arena::{reserve_blocks, Arena};
use crate::{
    parse_stored, HashBounds, HashError, Params, Stored, Verification, MAX_OUTPUT_LEN,
    MAX_SALT_LEN, OUTPUT_LEN, SALT_LEN,
};

/// Computes Argon2 hashes in one reused, pre-faulted [`Arena`].
pub struct Hasher {
    params: Params,
    argon2: Argon2<'static>,
    /// Blocks the current parameters need.
    blocks: usize,
    pub(crate) arena: Arena,
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
    pub(crate) fn compute(
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
