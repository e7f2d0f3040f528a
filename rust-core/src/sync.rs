//! The atomics the concurrency protocols use: std's, or loom's when built
//! with `--cfg loom` (`make loom`), so that the model checker explores the
//! protocol code the library runs.
//!
//! loom models `SeqCst` *fences* exactly but treats `SeqCst` loads, stores
//! and read-modify-writes as `AcqRel`, which would make it report store
//! buffering the real `SeqCst` accesses forbid. The few stores whose order
//! before this thread's later loads matters therefore go through
//! [`store_seq_cst`], which adds the equivalent fence under loom only.

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{fence, AtomicBool, AtomicPtr, AtomicU64, AtomicUsize};
pub(crate) use std::sync::atomic::Ordering;
#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{fence, AtomicBool, AtomicPtr, AtomicU64, AtomicUsize};

/// A `SeqCst` store: no later `SeqCst` load of this thread is ordered before
/// it. Under loom, a `SeqCst` store and a `SeqCst` fence, which loom models
/// with that guarantee.
#[inline(always)]
pub(crate) fn store_seq_cst<A: SeqCstStore>(a: &A, v: A::Value) {
    a.store_seq_cst(v);
    #[cfg(loom)]
    fence(Ordering::SeqCst);
}

pub(crate) trait SeqCstStore {
    type Value;
    fn store_seq_cst(&self, v: Self::Value);
}

impl SeqCstStore for AtomicU64 {
    type Value = u64;
    #[inline(always)]
    fn store_seq_cst(&self, v: u64) {
        self.store(v, Ordering::SeqCst)
    }
}

impl<T> SeqCstStore for AtomicPtr<T> {
    type Value = *mut T;
    #[inline(always)]
    fn store_seq_cst(&self, v: *mut T) {
        self.store(v, Ordering::SeqCst)
    }
}

/// One round of a wait loop that polls another thread's word: spins for
/// the first rounds, then yields the processor. Under loom, yields to the
/// scheduler (a spinning loop would never let the other thread run).
#[inline]
pub(crate) fn wait_round(round: u32) {
    #[cfg(loom)]
    {
        let _ = round;
        loom::thread::yield_now();
    }
    #[cfg(not(loom))]
    if round < 64 {
        std::hint::spin_loop();
    } else {
        std::thread::yield_now();
    }
}
