//! fork(): what a child process inherits from the library.
//!
//! A child has one thread, the one that called fork(); any lock another
//! thread held at that moment stays held in the child, with no thread to
//! release it. The handlers registered with `pthread_atfork` keep that from
//! hanging the child:
//! - Before the fork, the forking thread takes the process-wide locks (the
//!   registry's, the freed counter blocks', the memory pool's), so no other
//!   thread is inside one when the process forks; both processes release
//!   them after. These locks are only held briefly and never while running
//!   user code, so taking them cannot wait on the forking thread itself
//!   (which may be inside a callback, holding a shard lock).
//! - Shard locks are per map and may be held for as long as a callback
//!   runs, so they are not taken. In the child, every live map with a shard
//!   lock held at the fork (by any thread, the forking one included) is
//!   poisoned: calls on it return MC_ERR_POISONED, and only freeing it
//!   works. Its data may be half-changed by a writer that no longer exists,
//!   so freeing it leaks its memory rather than drop what may be broken.
//!   Taking such a lock in the child panics instead of waiting, so a call
//!   of the forking thread still in progress in the child (a fork from a
//!   callback) ends with MC_ERR_INTERNAL if it needs one again.
//! - The short-read announcements and the epoch pins of the threads that
//!   did not survive are withdrawn, so writers do not wait for them and
//!   freed maps are reclaimed. A short read changes nothing, so a map that
//!   was only being read that way stays usable.
//!
//! Every lock these handlers or the shard locks rely on is one of std's
//! futex locks, which keep no queue of parked threads: a fork cannot leave
//! one in a state the child cannot undo. glibc's malloc has its own
//! handlers.

use std::cell::RefCell;
use std::sync::Once;

use crate::engine::{counters::Counters, pool, shard_lock};
use crate::registry;

/// Registers the handlers, once per process (before the first map or
/// snapshot exists). If registration fails (ENOMEM) a child behaves as
/// without them.
pub(crate) fn arm() {
    static ARMED: Once = Once::new();
    ARMED.call_once(|| {
        // SAFETY: the handlers are `extern "C" fn()` that do not unwind.
        unsafe { libc::pthread_atfork(Some(prepare), Some(parent), Some(child)) };
    });
}

/// The locks `prepare` holds across a fork, in a value that needs no
/// memory (a fork may come when none is left).
type Held = Option<(
    registry::ForkGuard,
    std::sync::MutexGuard<'static, Option<&'static Counters>>,
    std::sync::MutexGuard<'static, pool::Pool>,
)>;

thread_local! {
    /// The guards `prepare` took, on the forking thread, until `parent` or
    /// `child` drops them. The locks are std's futex mutexes: unlocking one
    /// in the child leaves it free even if threads of the parent were
    /// waiting for it (a lock that hands itself to a waiter could be handed
    /// to one of them).
    static HELD: RefCell<Held> = const { RefCell::new(None) };
}

/// Takes the locks in the order the library nests them: registry first,
/// then the counter blocks and the pool (both only ever taken alone).
extern "C" fn prepare() {
    let guards = (
        registry::lock_for_fork(),
        Counters::lock_for_fork(),
        pool::lock_for_fork(),
    );
    // A fork from a thread-exit destructor, after `HELD` is gone, keeps no
    // guard: the locks are released at once, as without the handlers.
    let _ = HELD.try_with(|h| *h.borrow_mut() = Some(guards));
}

/// Releases the locks, in the reverse order of `prepare`.
fn release() {
    if let Ok(Some((registry, counters, pool))) = HELD.try_with(|h| h.borrow_mut().take()) {
        drop(pool);
        drop(counters);
        drop(registry);
    }
}

extern "C" fn parent() {
    release();
}

extern "C" fn child() {
    release();
    shard_lock::after_fork_child();
    registry::after_fork_child();
}
