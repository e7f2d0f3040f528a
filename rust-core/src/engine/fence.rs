//! Asymmetric fences: a *light* side run on every call and a *heavy* side run
//! by rare operations (revoking a shard's read bias, reclaiming a freed handle).
//!
//! The pattern both users follow is Dekker's: the frequent side stores a flag
//! and then loads the other side's flag; the rare side stores its flag and
//! then loads the frequent side's. Correctness needs a full barrier between
//! the store and the load on *both* sides. On x86 a full barrier is a locked
//! instruction that also stops later loads from starting before earlier cache
//! misses complete — on a lookup-heavy loop that serialises every lookup.
//!
//! Linux `membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED)` makes every running
//! thread of the process execute a full barrier before it returns (a thread
//! that is not running passes one when it is switched out). With it, the
//! frequent side only needs to keep the compiler from reordering its store and
//! load; the heavy side pays one system call. This is the scheme of liburcu's
//! membarrier flavour and folly's `asymmetricLightBarrier`.
//!
//! When the system call is unavailable (another OS, an old kernel, seccomp,
//! valgrind) both sides fall back to `fence(SeqCst)`, which is correct on its
//! own. The choice is made once per process and never changes, so the two
//! sides always agree.

use std::sync::atomic::{compiler_fence, fence, Ordering::SeqCst};
use std::sync::OnceLock;

static ASYMMETRIC: OnceLock<bool> = OnceLock::new();

#[cfg(target_os = "linux")]
fn register() -> bool {
    const CMD_QUERY: libc::c_long = 0;
    const CMD_PRIVATE_EXPEDITED: libc::c_long = 1 << 3;
    const CMD_REGISTER_PRIVATE_EXPEDITED: libc::c_long = 1 << 4;
    // SAFETY: membarrier takes two integer arguments and touches no memory of
    // ours; an unknown command or a missing system call returns -1.
    let supported = unsafe { libc::syscall(libc::SYS_membarrier, CMD_QUERY, 0 as libc::c_long) };
    if supported < 0 || supported & CMD_PRIVATE_EXPEDITED == 0 {
        return false;
    }
    // SAFETY: as above.
    unsafe {
        libc::syscall(
            libc::SYS_membarrier,
            CMD_REGISTER_PRIVATE_EXPEDITED,
            0 as libc::c_long,
        ) == 0
    }
}

#[cfg(not(target_os = "linux"))]
fn register() -> bool {
    false
}

fn asymmetric() -> bool {
    *ASYMMETRIC.get_or_init(register)
}

/// Whether the light side is a compiler fence only (for statistics and tests).
pub fn is_asymmetric() -> bool {
    asymmetric()
}

/// The frequent side: orders this thread's earlier stores before its later
/// loads, *as observed by a thread running `heavy`*.
#[inline]
pub fn light() {
    if asymmetric() {
        compiler_fence(SeqCst);
    } else {
        fence(SeqCst);
    }
}

/// The rare side: after it returns, every store a thread made before its
/// `light()` is visible here, or that thread's loads after `light()` see
/// every store this thread made before calling `heavy()`.
pub fn heavy() {
    if asymmetric() {
        #[cfg(target_os = "linux")]
        {
            const CMD_PRIVATE_EXPEDITED: libc::c_long = 1 << 3;
            // SAFETY: see `register`; the process registered for this command.
            let r = unsafe {
                libc::syscall(
                    libc::SYS_membarrier,
                    CMD_PRIVATE_EXPEDITED,
                    0 as libc::c_long,
                )
            };
            // Registered once and never unregistered, so it cannot fail; if it
            // ever did, the barrier below still orders this thread, but the
            // light side would be unprotected — refuse to continue.
            assert!(r == 0, "membarrier failed after registration");
        }
    }
    fence(SeqCst);
}
