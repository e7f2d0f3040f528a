//! A buffer with an inaccessible page on each side, so that reading one byte
//! before or after a caller buffer placed flush against either guard faults
//! at once (stable Rust has no AddressSanitizer; this is the part of it these
//! targets need). One mapping per thread, reused by every run.

use std::cell::Cell;

const PAGE: usize = 4096;
/// Largest buffer `place` accepts.
pub const CAPACITY: usize = 64 * PAGE;

thread_local! {
    static BASE: Cell<*mut u8> = const { Cell::new(std::ptr::null_mut()) };
}

fn base() -> *mut u8 {
    BASE.with(|b| {
        if b.get().is_null() {
            let total = CAPACITY + 2 * PAGE;
            // SAFETY: a fresh anonymous private mapping; no existing memory is touched.
            let p = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    total,
                    libc::PROT_NONE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                    -1,
                    0,
                )
            };
            assert_ne!(p, libc::MAP_FAILED, "mmap of the guarded buffer failed");
            let p = p.cast::<u8>();
            // SAFETY: the middle CAPACITY bytes lie inside the mapping just made.
            let r = unsafe {
                libc::mprotect(
                    p.add(PAGE).cast(),
                    CAPACITY,
                    libc::PROT_READ | libc::PROT_WRITE,
                )
            };
            assert_eq!(r, 0, "mprotect of the guarded buffer failed");
            // SAFETY: PAGE is inside the mapping.
            b.set(unsafe { p.add(PAGE) });
        }
        b.get()
    })
}

/// Copies `data` into the guarded buffer, flush against the upper guard
/// page (`at_end`) or the lower one, and returns a pointer to the copy. It
/// stays valid and unchanged until the next `place` on this thread.
pub fn place(data: &[u8], at_end: bool) -> *mut u8 {
    assert!(
        data.len() <= CAPACITY,
        "input larger than the guarded buffer"
    );
    let b = base();
    let start = if at_end { CAPACITY - data.len() } else { 0 };
    // SAFETY: `start + data.len() <= CAPACITY`, inside the writable part of
    // the mapping, which nothing else references while the copy is made.
    unsafe {
        let dst = b.add(start);
        std::ptr::copy_nonoverlapping(data.as_ptr(), dst, data.len());
        dst
    }
}
