//! The Argon2 working memory of one hashing thread.

use argon2::Block;

use crate::HashError;

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
    pub(crate) first: *mut Block,
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
pub(crate) const PAGE: usize = 4096;

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
    pub(crate) fn get(&mut self, needed: usize) -> Option<&mut [Block]> {
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
pub(crate) fn reserve_blocks(n: usize) -> Result<Vec<Block>, HashError> {
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
