//! Tells valgrind's memcheck about the region pool's blocks.
//!
//! Memcheck sees a pool region as one `mmap`: without these requests, a
//! read of a pooled block after it was freed (say a value pointer a C
//! caller kept past its `mc_map_get_with` callback) would go unreported
//! while the region stays mapped. With them, regions start inaccessible,
//! each block handed out counts as a heap block, and a freed block is
//! inaccessible again, so such a read is reported like one into freed
//! malloc memory, and a block never given back shows up as a leak.
//!
//! A request is valgrind's documented client-request sequence (valgrind.h):
//! rotations of `rdi` by 128 bits in all, which leave it unchanged, then
//! `xchg rbx, rbx`. Natively that is a handful of register instructions
//! with no effect; under valgrind it passes the request in `rax`. Only
//! x86-64 Linux issues them (not under Miri, which runs no assembly);
//! elsewhere these functions do nothing.

/// `VG_USERREQ__MALLOCLIKE_BLOCK` (valgrind.h).
const MALLOCLIKE_BLOCK: usize = 0x1301;
/// `VG_USERREQ__FREELIKE_BLOCK` (valgrind.h).
const FREELIKE_BLOCK: usize = 0x1302;
/// `VG_USERREQ__MAKE_MEM_NOACCESS` (memcheck.h): tool base `('M','C')`.
const MAKE_MEM_NOACCESS: usize = (b'M' as usize) << 24 | (b'C' as usize) << 16;

#[cfg(all(target_arch = "x86_64", target_os = "linux", not(miri)))]
#[inline]
fn request(req: usize, a1: usize, a2: usize, a3: usize, a4: usize) {
    let args: [usize; 6] = [req, a1, a2, a3, a4, 0];
    // SAFETY: the sequence only rotates `rdi` (declared clobbered; the
    // rotations sum to 128 bits, so natively it keeps its value anyway) and
    // exchanges `rbx` with itself; valgrind, when present, reads the six
    // words at `rax` and writes its answer to `rdx` (declared). `args`
    // outlives the block, and memory is not declared untouched, so it is
    // stored before the sequence runs.
    unsafe {
        std::arch::asm!(
            "rol rdi, 3",
            "rol rdi, 13",
            "rol rdi, 61",
            "rol rdi, 51",
            "xchg rbx, rbx",
            in("rax") args.as_ptr(),
            inout("rdx") 0usize => _,
            out("rdi") _,
            options(nostack),
        );
    }
}

#[cfg(not(all(target_arch = "x86_64", target_os = "linux", not(miri))))]
#[inline]
fn request(_req: usize, _a1: usize, _a2: usize, _a3: usize, _a4: usize) {}

/// A freshly mapped region: nothing in it may be touched until a block of
/// it is handed out.
pub(crate) fn region_mapped(base: usize, len: usize) {
    request(MAKE_MEM_NOACCESS, base, len, 0, 0);
}

/// A block handed out: accessible, contents undefined until written.
pub(crate) fn block_allocated(p: *const u8, len: usize) {
    request(MALLOCLIKE_BLOCK, p as usize, len, 0, 0);
}

/// A block given back: inaccessible again.
pub(crate) fn block_freed(p: *const u8) {
    request(FREELIKE_BLOCK, p as usize, 0, 0, 0);
}
