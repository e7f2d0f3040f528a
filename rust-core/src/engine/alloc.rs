//! Fallible allocation: the primitives every allocation reachable from the
//! C ABI goes through, so that running out of memory is a status and never
//! an abort (`Box::new`, `Arc::new` and `Vec` growth abort on failure).
//!
//! - `try_box`: a `Box` whose allocation may fail (the value comes back).
//! - `TryArc`: a reference-counted pointer without weak references, made
//!   with a fallible allocation (stable Rust has no `Arc::try_new`). Its
//!   clone and drop never allocate.
//! - `try_vec`: a `Vec` with room for `n` elements, reserved fallibly.
//!
//! In tests a thread can make these (and the pool's buffers) fail after
//! `n` more succeed (`fail_after`), to reach every out-of-memory path.
use std::alloc::Layout;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Moves `v` into a new `Box`; gives `v` back when the memory cannot be had.
pub(crate) fn try_box<T>(v: T) -> Result<Box<T>, T> {
    let layout = Layout::new::<T>();
    if layout.size() == 0 {
        return Ok(Box::new(v));
    }
    if failure_injected() {
        return Err(v);
    }
    // SAFETY: the layout has a nonzero size.
    let Some(p) = NonNull::new(unsafe { std::alloc::alloc(layout) }.cast::<T>()) else {
        return Err(v);
    };
    // SAFETY: `p` is a fresh allocation with `T`'s layout, so writing a `T`
    // there and handing it to `Box` (which frees with that same layout
    // through the global allocator) is what `Box::new` does.
    unsafe {
        p.as_ptr().write(v);
        Ok(Box::from_raw(p.as_ptr()))
    }
}

/// An empty `Vec` with room for `n` elements; None when it cannot be had.
pub(crate) fn try_vec<T>(n: usize) -> Option<Vec<T>> {
    let mut v = Vec::new();
    try_reserve(&mut v, n)?;
    Some(v)
}

/// `Vec::try_reserve` (room for `n` more), failing on request in tests.
pub(crate) fn try_reserve<T>(v: &mut Vec<T>, n: usize) -> Option<()> {
    if n > v.capacity() - v.len() && failure_injected() {
        return None;
    }
    v.try_reserve(n).ok()
}

struct Inner<T> {
    count: AtomicUsize,
    value: T,
}

/// A shared, immutable `T` freed when its last `TryArc` goes: `Arc`
/// without weak references, made by a fallible allocation. Only these
/// operations exist: make (`try_new`), clone, read, count, and unique
/// write access (`get_mut`), which needs no weak count to be sound.
pub(crate) struct TryArc<T> {
    ptr: NonNull<Inner<T>>,
}

// SAFETY: as `Arc<T>`: the value is shared between threads (Sync) and
// dropped by whichever thread lets go last (Send).
unsafe impl<T: Send + Sync> Send for TryArc<T> {}
// SAFETY: as for `Send`.
unsafe impl<T: Send + Sync> Sync for TryArc<T> {}

impl<T> TryArc<T> {
    /// Shares `value`; gives it back when the memory cannot be had.
    pub(crate) fn try_new(value: T) -> Result<TryArc<T>, T> {
        match try_box(Inner {
            count: AtomicUsize::new(1),
            value,
        }) {
            Ok(b) => Ok(TryArc {
                // SAFETY: `Box::into_raw` never returns null.
                ptr: unsafe { NonNull::new_unchecked(Box::into_raw(b)) },
            }),
            Err(inner) => Err(inner.value),
        }
    }

    #[inline(always)]
    fn inner(&self) -> &Inner<T> {
        // SAFETY: the allocation lives while any `TryArc` to it does, and
        // this one does for the borrow.
        unsafe { self.ptr.as_ref() }
    }

    /// How many `TryArc`s share the value (a racy snapshot unless 1 is
    /// seen through `&mut`: then no other can appear, see `get_mut`).
    #[inline(always)]
    pub(crate) fn strong_count(this: &TryArc<T>) -> usize {
        this.inner().count.load(Ordering::Relaxed)
    }

    /// The value for writing, if this is its only `TryArc`.
    #[inline(always)]
    pub(crate) fn get_mut(this: &mut TryArc<T>) -> Option<&mut T> {
        // Acquire (a plain load on x86): pairs with the Release decrement
        // by which the last other holder (a dropped snapshot, maybe on
        // another thread) let go, so its reads of the value happen before
        // our writes. A load rather than a fence, which ThreadSanitizer
        // does not model.
        if this.inner().count.load(Ordering::Acquire) != 1 {
            return None;
        }
        // SAFETY: a count of 1 means `this` is the only `TryArc` (there are
        // no weak references), and holding it by `&mut` means no other can
        // be cloned from it while the returned borrow lives.
        Some(unsafe { &mut (*this.ptr.as_ptr()).value })
    }
}

impl<T> Clone for TryArc<T> {
    #[inline]
    fn clone(&self) -> TryArc<T> {
        // Relaxed as in `Arc`: a new reference is made from an existing
        // one, which already orders everything before it.
        let old = self.inner().count.fetch_add(1, Ordering::Relaxed);
        if old > isize::MAX as usize {
            // As `Arc`: so many clones means leaked ones; never wrap.
            std::process::abort();
        }
        TryArc { ptr: self.ptr }
    }
}

impl<T> Drop for TryArc<T> {
    #[inline]
    fn drop(&mut self) {
        if self.inner().count.fetch_sub(1, Ordering::Release) != 1 {
            return;
        }
        // Every other holder's use happened before its Release decrement
        // (a load rather than a fence, as in `get_mut`).
        self.inner().count.load(Ordering::Acquire);
        // SAFETY: the count reached 0, so this was the last reference; the
        // allocation came from `try_box` (a `Box`).
        drop(unsafe { Box::from_raw(self.ptr.as_ptr()) });
    }
}

impl<T> std::ops::Deref for TryArc<T> {
    type Target = T;
    #[inline(always)]
    fn deref(&self) -> &T {
        &self.inner().value
    }
}

#[cfg(test)]
thread_local! {
    /// How many more allocations this thread may make before the next one
    /// fails (`None`: no limit); see `fail_after`.
    static ALLOWED: std::cell::Cell<Option<usize>> = const { std::cell::Cell::new(None) };
}

/// Makes this thread's fallible allocations (these primitives and the
/// pool's buffers) fail after `n` more succeed (`None` lifts the limit),
/// so tests reach the out-of-memory paths. With `sustained` false only
/// that one fails; with true every later one does too.
#[cfg(test)]
pub(crate) fn fail_after(n: Option<usize>) {
    ALLOWED.with(|a| a.set(n));
    SUSTAINED.with(|s| s.set(true));
}

/// `fail_after` for exactly one failing allocation: the `n + 1`-th.
#[cfg(test)]
pub(crate) fn fail_once_after(n: usize) {
    ALLOWED.with(|a| a.set(Some(n)));
    SUSTAINED.with(|s| s.set(false));
}

/// Marks a stretch of code that must not allocate: a prepared batch's
/// writes, whose room was made beforehand so that they cannot fail. In
/// tests every fallible allocation (these primitives and the pool's
/// buffers) made by this thread while one is alive panics; elsewhere it
/// costs nothing.
pub(crate) struct NoAlloc {
    #[cfg(test)]
    outer: bool,
}

impl NoAlloc {
    #[inline(always)]
    pub(crate) fn enter() -> NoAlloc {
        NoAlloc {
            #[cfg(test)]
            outer: FORBIDDEN.with(|f| f.replace(true)),
        }
    }
}

impl Drop for NoAlloc {
    #[inline(always)]
    fn drop(&mut self) {
        #[cfg(test)]
        FORBIDDEN.with(|f| f.set(self.outer));
    }
}

#[cfg(test)]
thread_local! {
    /// Whether a `NoAlloc` is alive on this thread.
    static FORBIDDEN: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    static SUSTAINED: std::cell::Cell<bool> = const { std::cell::Cell::new(true) };
    /// Allocations this thread has made fail so far.
    static INJECTED: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// How many allocations this thread has made fail so far (tests only).
#[cfg(test)]
pub(crate) fn injected_failures() -> usize {
    INJECTED.with(|i| i.get())
}

/// Whether the allocation about to be made must fail (tests only).
#[inline(always)]
pub(crate) fn failure_injected() -> bool {
    #[cfg(test)]
    {
        assert!(
            !FORBIDDEN.with(|f| f.get()),
            "an allocation where `NoAlloc` forbids one"
        );
        let fail = ALLOWED.with(|a| match a.get() {
            Some(0) => true,
            Some(n) => {
                a.set(Some(n - 1));
                false
            }
            None => false,
        });
        if fail {
            INJECTED.with(|i| i.set(i.get() + 1));
            if !SUSTAINED.with(|s| s.get()) {
                ALLOWED.with(|a| a.set(None));
            }
        }
        fail
    }
    #[cfg(not(test))]
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn try_arc_counts_and_frees_once() {
        let a = TryArc::try_new(vec![1u8, 2]).ok().unwrap();
        let mut b = a.clone();
        assert_eq!(TryArc::strong_count(&a), 2);
        assert!(TryArc::get_mut(&mut b).is_none());
        drop(a);
        TryArc::get_mut(&mut b).unwrap().push(3);
        assert_eq!(*b, vec![1, 2, 3]);
    }

    #[test]
    fn failures_give_the_value_back() {
        fail_once_after(0);
        let v = try_box(String::from("kept")).unwrap_err();
        assert_eq!(v, "kept");
        assert!(try_box(1u64).is_ok(), "only one failure");
        fail_after(Some(1));
        assert!(TryArc::try_new(1u64).is_ok());
        assert_eq!(TryArc::try_new(7u64).err(), Some(7));
        assert!(try_vec::<u8>(10).is_none(), "sustained");
        fail_after(None);
        assert_eq!(try_vec::<u8>(10).unwrap().capacity(), 10);
    }
}
