//! Buffers for slot pages and arena chunks; the big ones are carved from
//! 2 MiB regions of their own.
//!
//! Buffers of a pooled size (a power of two from `MIN_POOLED` to
//! `MAX_POOLED` bytes) whose owner asks for the pool come from 2 MiB-aligned
//! `mmap` regions, the rest from the global allocator. Two reasons:
//! - Memory comes back. With glibc's allocator, the table pages a growth
//!   frees stay in whichever per-thread arena freed them, so a map built
//!   from Go (whose calls arrive on many threads) kept 7-25 % more resident
//!   memory than the same map built from C. A region is unmapped as soon
//!   as its last block is freed.
//! - Huge pages, on request. With `MAPCORE_HUGEPAGES=1` in the environment
//!   (read once), regions are advised with `MADV_HUGEPAGE` (else with
//!   `MADV_NOHUGEPAGE`, whatever the system default), so a get's two
//!   random reads into a big map miss the cache but not the TLB. Measured
//!   on this project's virtual machine (bench/README): gets 5-15 % faster
//!   on a 1M map, but building it 40-90 % slower, because the hypervisor
//!   backs each fresh 2 MiB page when it is first touched. On hardware
//!   where huge pages fault cheaply, the trade is better; off by default.
//!
//! The pool is process-wide, one set of regions per block size, and hands
//! out the lowest free block so that live blocks crowd into few regions
//! (a region it has just mapped gives its own first block).
use std::alloc::Layout;
use std::marker::PhantomData;
use std::ptr::NonNull;
use std::sync::{Mutex, MutexGuard, OnceLock};

use super::bytes::copy_small_to;
use super::memcheck;

const REGION: usize = 2 << 20;
pub(crate) const MIN_POOLED: usize = 16 << 10;
pub(crate) const MAX_POOLED: usize = 256 << 10;
const CLASSES: usize = (MAX_POOLED.trailing_zeros() - MIN_POOLED.trailing_zeros() + 1) as usize;
const MAX_BLOCKS: usize = REGION / MIN_POOLED;
const _: () = assert!(MAX_BLOCKS <= 128, "a region's free blocks are a u128 mask");
const _: () = assert!(REGION / MAX_POOLED >= 2, "a new region keeps a free block");

/// Whether regions are advised for huge pages (`MAPCORE_HUGEPAGES=1`),
/// read once.
fn advise_huge_pages() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    *ON.get_or_init(|| super::env::is_one(c"MAPCORE_HUGEPAGES"))
}

/// Bytes the system could still give this process without swapping out
/// or killing anything: `MemAvailable` plus `SwapFree` from
/// `/proc/meminfo`. `None` where that cannot be read (not Linux, Miri).
pub(crate) fn memory_available() -> Option<usize> {
    if cfg!(miri) {
        return None;
    }
    // Read into a buffer on the stack (the file is about 1.5 KiB): this
    // runs when a reservation may not fit in memory, where an allocation
    // that aborts on failure would be the wrong tool.
    use std::io::Read;
    let mut buf = [0u8; 8192];
    let mut file = std::fs::File::open("/proc/meminfo").ok()?;
    let mut len = 0;
    while len < buf.len() {
        match file.read(&mut buf[len..]) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(_) => return None,
        }
    }
    let info = std::str::from_utf8(&buf[..len]).ok()?;
    let kib = |field: &str| -> Option<usize> {
        let line = info.lines().find(|l| l.starts_with(field))?;
        line[field.len()..]
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .ok()
    };
    kib("MemAvailable:")?
        .checked_add(kib("SwapFree:").unwrap_or(0))?
        .checked_mul(1024)
}

/// The size class of a buffer of `bytes`, if the pool serves it.
fn class_of(bytes: usize) -> Option<usize> {
    (bytes.is_power_of_two() && (MIN_POOLED..=MAX_POOLED).contains(&bytes))
        .then(|| (bytes.trailing_zeros() - MIN_POOLED.trailing_zeros()) as usize)
}

/// One 2 MiB region of a size class: which of its blocks are free.
struct Region {
    free: u128,
}

/// The pool's bookkeeping, per size class: its regions sorted by base
/// address, and the bases of those with a free block, sorted too. Plain
/// vectors, not trees: both keep room for every region (reserved when one
/// is added, which may fail), so giving a block back, which a dropped
/// `Buf` does and which must not need memory, never allocates. A class
/// has a few hundred regions at most (a 2 GiB map's worth), so the
/// insertions' moves cost less than the tree's node allocations did.
pub(crate) struct Pool {
    regions: [Vec<(usize, Region)>; CLASSES],
    with_free: [Vec<usize>; CLASSES],
}

static POOL: Mutex<Pool> = Mutex::new(Pool {
    regions: [const { Vec::new() }; CLASSES],
    with_free: [const { Vec::new() }; CLASSES],
});

/// Adds `base` to the sorted `set`, which has room for it.
fn set_insert(set: &mut Vec<usize>, base: usize) {
    if let Err(i) = set.binary_search(&base) {
        debug_assert!(set.len() < set.capacity(), "room reserved");
        set.insert(i, base);
    }
}

/// Removes `base` from the sorted `set`, if there.
fn set_remove(set: &mut Vec<usize>, base: usize) {
    if let Ok(i) = set.binary_search(&base) {
        set.remove(i);
    }
}

impl Pool {
    /// The lowest free block of a mapped region, if any has one.
    fn alloc(&mut self, class: usize) -> Option<NonNull<u8>> {
        let block = MIN_POOLED << class;
        let regions = &mut self.regions[class];
        let with_free = &mut self.with_free[class];
        let &base = with_free.first()?;
        let at = regions
            .binary_search_by_key(&base, |r| r.0)
            .expect("a region with free blocks is mapped");
        let region = &mut regions[at].1;
        let i = region.free.trailing_zeros() as usize;
        region.free &= !(1 << i);
        if region.free == 0 {
            with_free.remove(0);
        }
        NonNull::new((base + i * block) as *mut u8)
    }

    /// Adds a region `map_region` made (outside the lock) and hands out its
    /// first block. That block, not the pool's lowest free one: another
    /// thread may have freed a block elsewhere since this one found none,
    /// and a region none of whose blocks is ever handed out is never freed,
    /// so it would stay mapped for good. None, adding nothing, when the
    /// bookkeeping's room cannot be had (the caller unmaps the region).
    fn add_region(&mut self, class: usize, base: usize) -> Option<NonNull<u8>> {
        let (regions, with_free) = (&mut self.regions[class], &mut self.with_free[class]);
        regions.try_reserve(1).ok()?;
        with_free
            .try_reserve((regions.len() + 1).saturating_sub(with_free.len()))
            .ok()?;
        // A region holds at least two blocks of any class (asserted at the
        // top), so the others stay free.
        let Err(at) = regions.binary_search_by_key(&base, |r| r.0) else {
            debug_assert!(false, "region {base:#x} mapped twice");
            return None;
        };
        regions.insert(
            at,
            (
                base,
                Region {
                    free: all_blocks(class) & !1,
                },
            ),
        );
        set_insert(with_free, base);
        NonNull::new(base as *mut u8)
    }

    /// The region of a handed-out block and the block's bit in its mask.
    /// Panics for a block of no region or a free one: both checks are
    /// cheap, and a block freed twice while handed out again would let its
    /// region be unmapped under a live buffer.
    fn handed_out(&mut self, class: usize, p: NonNull<u8>) -> (usize, &mut Region, u128) {
        let block = MIN_POOLED << class;
        let addr = p.as_ptr() as usize;
        let base = addr & !(REGION - 1);
        let regions = &mut self.regions[class];
        let Ok(at) = regions.binary_search_by_key(&base, |r| r.0) else {
            panic!("freed block {addr:#x} is in no region")
        };
        let region = &mut regions[at].1;
        let bit = 1u128 << ((addr - base) / block);
        assert!(region.free & bit == 0, "block {addr:#x} freed twice");
        (base, region, bit)
    }

    /// Gives a block back (allocating nothing). Returns the base of its
    /// region when that region is now empty and forgotten: the caller
    /// unmaps it, outside the lock.
    #[must_use]
    fn free(&mut self, class: usize, p: NonNull<u8>) -> Option<usize> {
        let all = all_blocks(class);
        let (base, region, bit) = self.handed_out(class, p);
        region.free |= bit;
        if region.free == all {
            let regions = &mut self.regions[class];
            if let Ok(at) = regions.binary_search_by_key(&base, |r| r.0) {
                regions.remove(at);
            }
            set_remove(&mut self.with_free[class], base);
            Some(base)
        } else {
            // Room for every region was reserved when it was added.
            set_insert(&mut self.with_free[class], base);
            None
        }
    }
}

fn all_blocks(class: usize) -> u128 {
    let n = REGION / (MIN_POOLED << class);
    if n == 128 {
        u128::MAX
    } else {
        (1u128 << n) - 1
    }
}

/// Maps a fresh 2 MiB-aligned region and advises huge pages for it.
#[cfg(unix)]
fn map_region() -> Option<usize> {
    // Map twice the size, then unmap the unaligned head and tail.
    let len = 2 * REGION;
    // SAFETY: an anonymous private mapping at an address of the kernel's
    // choosing touches no existing memory.
    let raw = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if raw == libc::MAP_FAILED {
        return None;
    }
    let start = raw as usize;
    let base = (start + REGION - 1) & !(REGION - 1);
    let head = base - start;
    let tail = len - head - REGION;
    // SAFETY: both ranges lie inside the mapping just made and outside the
    // region kept; nothing refers to them.
    unsafe {
        if head > 0 {
            libc::munmap(raw, head);
        }
        if tail > 0 {
            libc::munmap((base + REGION) as *mut libc::c_void, tail);
        }
    }
    // Off unless asked for, even where the system default is "always":
    // see the module comment for what huge pages cost on first touch.
    #[cfg(target_os = "linux")]
    {
        let advice = if advise_huge_pages() {
            libc::MADV_HUGEPAGE
        } else {
            libc::MADV_NOHUGEPAGE
        };
        // SAFETY: advice on our own mapping; it changes no contents.
        // Failure (no transparent huge pages here) leaves 4 KiB pages.
        unsafe {
            libc::madvise(base as *mut libc::c_void, REGION, advice);
        }
    }
    memcheck::region_mapped(base, REGION);
    Some(base)
}

#[cfg(unix)]
fn unmap_region(base: usize) {
    // SAFETY: `base` is a region `map_region` made whose blocks are all
    // free: no `Buf` points into it.
    unsafe {
        libc::munmap(base as *mut libc::c_void, REGION);
    }
}

/// Gives a freed block's pages back to the system while it is still ours
/// (before the pool can hand it out again): a block freed into a region
/// that stays mapped would otherwise stay resident until reused. Measured
/// after building a 10M-entry map: 0.4 B per entry less resident memory
/// (64.05 → 63.64), 1M: 71.3 → 69.5. The next owner faults in zeroed pages.
#[cfg(unix)]
fn release_pages(p: NonNull<u8>, len: usize) {
    // SAFETY: `p..p + len` is a pooled block this thread is freeing: no
    // `Buf` refers to it any more, and its contents are not needed. The
    // advice only drops pages; the mapping stays valid.
    unsafe {
        libc::madvise(p.as_ptr().cast(), len, libc::MADV_DONTNEED);
    }
}

#[cfg(not(unix))]
fn release_pages(_p: NonNull<u8>, _len: usize) {}

#[cfg(not(unix))]
fn map_region() -> Option<usize> {
    None
}

#[cfg(not(unix))]
fn unmap_region(_base: usize) {}

/// A fixed-capacity vector of `Copy` elements: a `Vec` whose memory may come
/// from the pool. It grows only by reallocating into a new buffer
/// (`try_reserve_exact`), never in place.
pub(crate) struct Buf<T: Copy> {
    ptr: NonNull<T>,
    len: usize,
    cap: usize,
    /// Whether the memory is a pool block (else the global allocator's, or
    /// none when `cap` is 0).
    pooled: bool,
    _owns: PhantomData<T>,
}

// SAFETY: a `Buf` owns its elements like a `Vec` does; `T: Copy` elements
// have no drop glue, and the pool is behind a lock.
unsafe impl<T: Copy + Send> Send for Buf<T> {}
// SAFETY: as for `Send`: shared access only reads the elements.
unsafe impl<T: Copy + Sync> Sync for Buf<T> {}

impl<T: Copy> Buf<T> {
    fn empty(ptr: NonNull<T>, cap: usize, pooled: bool) -> Buf<T> {
        Buf {
            ptr,
            len: 0,
            cap,
            pooled,
            _owns: PhantomData,
        }
    }

    /// An empty buffer with room for `cap` elements, from the pool when
    /// `pool` is set and `cap` elements make a pooled size (on Unix).
    /// None when the memory cannot be had.
    pub(crate) fn try_with_capacity(cap: usize, pool: bool) -> Option<Buf<T>> {
        let layout = Layout::array::<T>(cap).ok()?;
        if layout.size() == 0 {
            return Some(Buf::empty(NonNull::dangling(), cap, false));
        }
        if super::alloc::failure_injected() {
            return None;
        }
        if let Some(class) = class_of(layout.size()).filter(|_| pool && cfg!(unix)) {
            debug_assert!(layout.align() <= MIN_POOLED);
            // A new region is mapped outside the lock (a system call); two
            // threads racing here just map one region more than needed.
            let got = locked_pool().alloc(class);
            let got = got.or_else(|| {
                let base = map_region()?;
                let got = locked_pool().add_region(class, base);
                if got.is_none() {
                    unmap_region(base);
                }
                got
            });
            if let Some(p) = got {
                memcheck::block_allocated(p.as_ptr(), layout.size());
                return Some(Buf::empty(p.cast(), cap, true));
            }
        }
        // SAFETY: the layout has a nonzero size.
        let p = NonNull::new(unsafe { std::alloc::alloc(layout) })?;
        Some(Buf::empty(p.cast(), cap, false))
    }

    /// The elements' address, with the buffer's own provenance: valid for
    /// reads while the buffer lives, and for writes through `&mut self`.
    #[inline]
    pub(crate) fn as_non_null(&self) -> NonNull<T> {
        self.ptr
    }

    pub(crate) fn capacity(&self) -> usize {
        self.cap
    }

    /// A copy with the same capacity and pooling; None when the memory
    /// cannot be had.
    pub(crate) fn try_clone(&self) -> Option<Buf<T>> {
        let mut c = Buf::try_with_capacity(self.cap, self.pooled)?;
        c.extend_from_slice(self);
        Some(c)
    }

    /// Whether the memory came from the pool.
    #[cfg(test)]
    pub(crate) fn is_pooled(&self) -> bool {
        self.pooled
    }

    /// Makes room for `additional` more elements, moving the contents into
    /// a buffer of exactly `len + additional`, pooled if `pool` allows.
    pub(crate) fn try_reserve_exact(&mut self, additional: usize, pool: bool) -> Option<()> {
        if self.cap - self.len >= additional {
            return Some(());
        }
        let mut grown = Buf::try_with_capacity(self.len.checked_add(additional)?, pool)?;
        grown.extend_from_slice(self);
        *self = grown;
        Some(())
    }

    /// Appends `s`, which must fit: a `Buf` never grows on its own. Inline
    /// always: for a record's two header bytes the copy is then a 2-byte
    /// store (out of line it was a call and a `memcpy` call, 36
    /// instructions per insert).
    #[inline(always)]
    pub(crate) fn extend_from_slice(&mut self, s: &[T]) {
        assert!(self.cap - self.len >= s.len(), "Buf overflow");
        // SAFETY: the destination has room for `s` (checked above) and lies
        // in this buffer's allocation, which `s` (a shared borrow) cannot
        // overlap while `self` is borrowed mutably.
        unsafe {
            std::ptr::copy_nonoverlapping(s.as_ptr(), self.ptr.as_ptr().add(self.len), s.len());
        }
        self.len += s.len();
    }

    /// Appends `n` copies of `x`, which must fit.
    pub(crate) fn extend_with(&mut self, n: usize, x: T) {
        assert!(self.cap - self.len >= n, "Buf overflow");
        for i in 0..n {
            // SAFETY: `len + i < cap`: inside the allocation.
            unsafe { self.ptr.as_ptr().add(self.len + i).write(x) };
        }
        self.len += n;
    }
}

impl Buf<u8> {
    /// `extend_from_slice` for the short keys and values of records:
    /// fixed-size moves instead of a `memcpy` call (see `copy_small_to`).
    #[inline(always)]
    pub(crate) fn extend_from_bytes(&mut self, s: &[u8]) {
        assert!(self.cap - self.len >= s.len(), "Buf overflow");
        // SAFETY: the destination has room for `s` (checked above) and lies
        // in this buffer's allocation, which `s` (a shared borrow) cannot
        // overlap while `self` is borrowed mutably.
        unsafe { copy_small_to(self.ptr.as_ptr().add(self.len), s) };
        self.len += s.len();
    }
}

impl<T: Copy> std::ops::Deref for Buf<T> {
    type Target = [T];
    #[inline(always)]
    fn deref(&self) -> &[T] {
        // SAFETY: the first `len` elements are initialised (every append
        // writes them before raising `len`), and the pointer is valid and
        // aligned for `cap >= len` elements, or dangling with `len` 0.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl<T: Copy> std::ops::DerefMut for Buf<T> {
    #[inline(always)]
    fn deref_mut(&mut self) -> &mut [T] {
        // SAFETY: as in `deref`, and `&mut self` makes the borrow unique.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

impl<T: Copy> Clone for Buf<T> {
    /// A copy with the same capacity and pooling (on allocation failure,
    /// aborts as `Vec::clone` does).
    fn clone(&self) -> Buf<T> {
        self.try_clone().unwrap_or_else(|| {
            std::alloc::handle_alloc_error(Layout::array::<T>(self.cap).expect("a valid layout"))
        })
    }
}

impl<T: Copy> Drop for Buf<T> {
    fn drop(&mut self) {
        let Ok(layout) = Layout::array::<T>(self.cap) else {
            return;
        };
        if layout.size() == 0 {
            return;
        }
        if self.pooled {
            let class = class_of(layout.size()).expect("a pooled size");
            // Slot pages give their pages back; chunks keep them. A growth
            // frees a whole table's pages at once, and they would stay
            // resident until a later table reused them. A freed chunk is
            // soon refilled by the repack that freed it: releasing chunks
            // as well cost a 10M-entry build 0.5 s of system time in page
            // faults and saved no more memory. Not with huge pages, whose
            // 2 MiB pages a 16 KiB release would split.
            let release = layout.size() < MAX_POOLED && !advise_huge_pages();
            if release {
                // Checked before the pages go: a block freed twice, and
                // handed out again meanwhile, would lose its new owner's
                // data.
                locked_pool().handed_out(class, self.ptr.cast());
            }
            // Before the block goes back: another thread may be handed it
            // as soon as it is.
            memcheck::block_freed(self.ptr.as_ptr().cast());
            if release {
                release_pages(self.ptr.cast(), layout.size());
            }
            let emptied = locked_pool().free(class, self.ptr.cast());
            if let Some(base) = emptied {
                unmap_region(base);
            }
        } else {
            // SAFETY: allocated by the global allocator with this layout
            // (`try_with_capacity`), and freed only here.
            unsafe { std::alloc::dealloc(self.ptr.as_ptr().cast(), layout) };
        }
    }
}

/// Makes this thread's buffer allocations fail after `n` more succeed
/// (see `alloc::fail_after`).
#[cfg(test)]
pub(crate) use super::alloc::fail_after;

/// The pool, locked. A std mutex: a forked child can release it (see
/// `fork.rs`) whoever waited for it in the parent.
fn locked_pool() -> MutexGuard<'static, Pool> {
    // The pool's critical sections cannot leave it inconsistent.
    POOL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Before a fork (see `fork.rs`): takes the pool's lock, so that no other
/// thread holds it when the process forks. Dropping the result releases it.
pub(crate) fn lock_for_fork() -> MutexGuard<'static, Pool> {
    locked_pool()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// How many pages of `addr..addr + len` (mapped) are resident.
    #[cfg(target_os = "linux")]
    fn resident_pages(addr: usize, len: usize) -> usize {
        let page = 4096;
        let mut v = vec![0u8; len.div_ceil(page)];
        // SAFETY: the range is mapped (its region is) and `v` has a byte
        // per 4 KiB page of it (more than enough for larger pages).
        let r = unsafe { libc::mincore(addr as *mut libc::c_void, len, v.as_mut_ptr()) };
        assert_eq!(r, 0, "mincore");
        v.iter().filter(|&&b| b & 1 != 0).count()
    }

    /// Regions mapped for blocks of `bytes`.
    fn regions_of(bytes: usize) -> usize {
        locked_pool().regions[class_of(bytes).expect("a pooled size")].len()
    }

    /// The state a thread meets when it mapped a region because the pool
    /// had no free block, and another thread freed one in the meantime:
    /// the new region must still hand out a block, or it would never be
    /// freed, hence never unmapped. (Pool bookkeeping only: the addresses
    /// are never touched.)
    #[test]
    fn a_region_added_after_a_race_hands_out_its_own_block() {
        let class = 0;
        let block = MIN_POOLED << class;
        let mut pool = Pool {
            regions: [const { Vec::new() }; CLASSES],
            with_free: [const { Vec::new() }; CLASSES],
        };
        let (low, high) = (REGION, 2 * REGION);
        let first = pool.add_region(class, low).expect("a block");
        let mut held: Vec<_> = std::iter::from_fn(|| pool.alloc(class)).collect();
        assert_eq!(held.len(), REGION / block - 1, "the low region is full");
        // This thread found no free block and mapped `high`; another one
        // frees a block of `low` before `high` is added.
        assert_eq!(pool.free(class, held.pop().unwrap()), None);
        let got = pool.add_region(class, high).expect("a block");
        assert_eq!(got.as_ptr() as usize & !(REGION - 1), high);
        assert_eq!(
            pool.free(class, got),
            Some(high),
            "freeing it unmaps `high`"
        );
        for p in held.into_iter().chain([first]) {
            let _ = pool.free(class, p);
        }
        assert!(pool.regions[class].is_empty() && pool.with_free[class].is_empty());
    }

    #[test]
    fn pooled_buffers_are_distinct_aligned_and_given_back() {
        // A size the engine does not pool, so no other test shares its
        // regions.
        const SIZE: usize = 128 << 10;
        let n = 3 * REGION / SIZE;
        let bufs: Vec<Buf<u8>> = (0..n)
            .map(|i| {
                let mut b = Buf::try_with_capacity(SIZE, true).expect("memory");
                b.extend_with(SIZE, i as u8);
                b
            })
            .collect();
        if !cfg!(unix) {
            return;
        }
        let mut addrs: Vec<usize> = bufs.iter().map(|b| b.as_ptr() as usize).collect();
        assert!(bufs.iter().all(Buf::is_pooled));
        assert!(addrs.iter().all(|a| a % SIZE == 0));
        addrs.sort_unstable();
        addrs.dedup();
        assert_eq!(addrs.len(), n, "every block is distinct");
        for (i, b) in bufs.iter().enumerate() {
            assert!(b.iter().all(|&x| x == i as u8), "no block overlaps another");
        }
        assert_eq!(regions_of(SIZE), 3, "the lowest free blocks first");
        let kept = bufs[0].as_ptr() as usize & !(REGION - 1);
        let neighbours: Vec<usize> = bufs[1..]
            .iter()
            .map(|b| b.as_ptr() as usize)
            .filter(|&a| a & !(REGION - 1) == kept)
            .collect();
        assert_eq!(neighbours.len(), REGION / SIZE - 1);
        let mut bufs = bufs;
        bufs.truncate(1);
        assert_eq!(regions_of(SIZE), 1, "emptied regions are unmapped");
        #[cfg(target_os = "linux")]
        if !advise_huge_pages() {
            for a in neighbours {
                assert_eq!(
                    resident_pages(a, SIZE),
                    0,
                    "a block freed into a mapped region gives its pages back"
                );
            }
        }
        drop(bufs);
        assert_eq!(regions_of(SIZE), 0);
    }

    #[test]
    fn growth_moves_into_the_pool_and_keeps_the_contents() {
        let mut b: Buf<u64> = Buf::try_with_capacity(100, true).expect("memory");
        assert!(!b.is_pooled(), "800 bytes is not a pooled size");
        b.extend_with(100, 7);
        b.try_reserve_exact(MIN_POOLED / 8 - 100, true)
            .expect("memory");
        assert_eq!(b.capacity(), MIN_POOLED / 8);
        assert_eq!(b.is_pooled(), cfg!(unix));
        assert!(b.iter().all(|&x| x == 7) && b.len() == 100);
        let c = b.clone();
        assert_eq!(&c[..], &b[..]);
        let heap: Buf<u64> = Buf::try_with_capacity(MIN_POOLED / 8, false).expect("memory");
        assert!(!heap.is_pooled());
        let empty: Buf<u8> = Buf::try_with_capacity(0, true).expect("no memory needed");
        assert!(empty.is_empty());
    }

    #[test]
    fn only_powers_of_two_in_range_are_pooled() {
        assert_eq!(class_of(MIN_POOLED), Some(0));
        assert_eq!(class_of(MAX_POOLED), Some(CLASSES - 1));
        assert_eq!(class_of(MIN_POOLED / 2), None);
        assert_eq!(class_of(MAX_POOLED * 2), None);
        assert_eq!(class_of(MIN_POOLED + 8), None);
        assert_eq!(all_blocks(0).count_ones() as usize, REGION / MIN_POOLED);
        assert_eq!(
            all_blocks(CLASSES - 1).count_ones() as usize,
            REGION / MAX_POOLED
        );
    }

    /// Two threads allocate, fill, check and free buffers of two pooled
    /// sizes the engine does not use (32 and 64 KiB), handing some to the
    /// other thread to free. Every live block must keep its own pattern (no
    /// overlap), no two live blocks may share an address range, and once all
    /// are freed no region may stay mapped (no lost free).
    #[test]
    fn pool_blocks_never_overlap_and_every_free_is_counted() {
        use std::collections::BTreeMap;
        use std::sync::mpsc;
        use std::sync::Mutex as StdMutex;
        const SIZES: [usize; 2] = [32 << 10, 64 << 10];
        if !cfg!(unix) {
            return;
        }
        static LIVE: StdMutex<BTreeMap<usize, usize>> = StdMutex::new(BTreeMap::new());
        fn claim(b: &Buf<u64>) {
            let (a, n) = (b.as_ptr() as usize, b.capacity() * 8);
            let mut live = LIVE.lock().unwrap();
            if let Some((&s, &l)) = live.range(..a + n).next_back() {
                assert!(
                    s + l <= a,
                    "block {a:#x}+{n:#x} overlaps live {s:#x}+{l:#x}"
                );
            }
            live.insert(a, n);
        }
        fn release(b: Buf<u64>, tag: u64) {
            assert!(
                b.iter().all(|&x| x == tag),
                "block {:p} was overwritten",
                b.as_ptr()
            );
            assert!(LIVE
                .lock()
                .unwrap()
                .remove(&(b.as_ptr() as usize))
                .is_some());
            drop(b);
        }
        let (tx0, rx0) = mpsc::channel::<(Buf<u64>, u64)>();
        let (tx1, rx1) = mpsc::channel::<(Buf<u64>, u64)>();
        let run =
            |t: u64, tx: mpsc::Sender<(Buf<u64>, u64)>, rx: mpsc::Receiver<(Buf<u64>, u64)>| {
                let mut rng = 0x9E37_79B9_7F4A_7C15u64 ^ (t + 1);
                let mut next = move || {
                    rng ^= rng << 13;
                    rng ^= rng >> 7;
                    rng ^= rng << 17;
                    rng
                };
                let mut mine: Vec<(Buf<u64>, u64)> = Vec::new();
                for step in 0..20_000u64 {
                    let r = next();
                    match r % 8 {
                        0..=3 => {
                            let bytes = SIZES[(r >> 8) as usize % 2];
                            let mut b: Buf<u64> = Buf::try_with_capacity(bytes / 8, true).unwrap();
                            assert!(b.is_pooled());
                            assert_eq!(b.as_ptr() as usize % bytes, 0, "aligned to its size");
                            claim(&b);
                            let tag = t << 32 | step;
                            b.extend_with(bytes / 8, tag);
                            mine.push((b, tag));
                        }
                        4 => {
                            // Clone keeps the pooled flag: a second block.
                            if let Some((b, tag)) = mine.last() {
                                let (mut c, tag) = (b.clone(), *tag);
                                assert!(c.is_pooled());
                                claim(&c);
                                let new = tag | 1 << 63;
                                c.iter_mut().for_each(|x| *x = new);
                                mine.push((c, new));
                            }
                        }
                        5 => {
                            if !mine.is_empty() {
                                let k = (r >> 8) as usize % mine.len();
                                let _ = tx.send(mine.swap_remove(k));
                            }
                        }
                        _ => {
                            if !mine.is_empty() {
                                let k = (r >> 8) as usize % mine.len();
                                let (b, tag) = mine.swap_remove(k);
                                release(b, tag);
                            }
                        }
                    }
                    while let Ok((b, tag)) = rx.try_recv() {
                        release(b, tag);
                    }
                    if mine.len() > 300 {
                        for (b, tag) in mine.drain(..150) {
                            release(b, tag);
                        }
                    }
                }
                for (b, tag) in mine {
                    release(b, tag);
                }
                drop(tx);
                for (b, tag) in rx {
                    release(b, tag);
                }
            };
        std::thread::scope(|s| {
            s.spawn(|| run(0, tx0, rx1));
            s.spawn(|| run(1, tx1, rx0));
        });
        assert!(LIVE.lock().unwrap().is_empty());
        for bytes in SIZES {
            assert_eq!(
                regions_of(bytes),
                0,
                "a region of {bytes}-byte blocks stayed mapped"
            );
        }
    }

    /// Maps of several sizes (small ones on the heap, bigger ones on pooled
    /// pages and full pooled chunks) built, snapshotted, rewritten under the
    /// snapshot (copy-on-write page clones) and dropped from two threads;
    /// each snapshot is checked and dropped on the other thread.
    #[test]
    fn maps_built_and_freed_on_two_threads_keep_their_contents() {
        use crate::engine::{Map, Options, SnapshotData};
        use std::sync::mpsc;
        fn key(t: u64, r: u64, i: u64) -> Vec<u8> {
            format!("{t}-{r}-{i:08}").into_bytes()
        }
        fn val(t: u64, r: u64, i: u64, v: u64) -> Vec<u8> {
            format!(
                "{t}/{r}/{i}/{v}/{:020}",
                i.wrapping_mul(0x9E37_79B9_7F4A_7C15)
            )
            .into_bytes()
        }
        type Sent = (SnapshotData, u64, u64, u64);
        fn check_snapshot((s, t, r, n): Sent) {
            assert_eq!(s.len() as u64, n);
            for i in (0..n).step_by(7) {
                assert_eq!(
                    s.get(&key(t, r, i)).as_deref(),
                    Some(&val(t, r, i, 0)[..]),
                    "snapshot {t}-{r} key {i}"
                );
            }
        }
        let sizes: [u64; 5] = [1_000, 30_000, 90_000, 5_000, 150_000];
        let (tx0, rx0) = mpsc::channel::<Sent>();
        let (tx1, rx1) = mpsc::channel::<Sent>();
        let run = |t: u64, tx: mpsc::Sender<Sent>, rx: mpsc::Receiver<Sent>| {
            let mut kept: Vec<(Map, u64, u64)> = Vec::new();
            for (r, &n) in sizes.iter().enumerate() {
                let r = r as u64;
                let m = Map::new(&Options::default()).unwrap();
                for i in 0..n {
                    assert!(m.insert(&key(t, r, i), &val(t, r, i, 0)).unwrap());
                }
                let snap = m.snapshot().unwrap();
                // Rewrite under the snapshot: every page it shares is copied.
                for i in (0..n).step_by(3) {
                    assert!(!m.insert(&key(t, r, i), &val(t, r, i, 1)).unwrap());
                }
                for i in (1..n).step_by(5) {
                    m.remove(&key(t, r, i)).unwrap();
                }
                if n == 150_000 {
                    assert!(regions_of(MIN_POOLED) > 0, "pages are pooled");
                    assert!(regions_of(MAX_POOLED) > 0, "full chunks are pooled");
                    assert!(m.stats().cow_pages > 0, "pages were copied");
                }
                tx.send((snap, t, r, n)).unwrap();
                while let Ok(s) = rx.try_recv() {
                    check_snapshot(s);
                }
                m.check_invariants().unwrap();
                if r % 2 == 0 {
                    kept.push((m, r, n));
                }
            }
            for (m, r, n) in &kept {
                for i in 0..*n {
                    let want = if i % 5 == 1 {
                        None
                    } else {
                        Some(val(t, *r, i, u64::from(i % 3 == 0)))
                    };
                    assert_eq!(m.get(&key(t, *r, i)), want, "map {t}-{r} key {i}");
                }
            }
            drop(kept);
            drop(tx);
            for s in rx {
                check_snapshot(s);
            }
        };
        std::thread::scope(|s| {
            s.spawn(|| run(0, tx0, rx1));
            s.spawn(|| run(1, tx1, rx0));
        });
    }
}
