//! Epoch reclamation: when an object unlinked from a shared slot may be
//! freed while other threads may have loaded it without taking a lock or
//! writing any shared word (the registry's handles; see `registry.rs`).
//!
//! - A reader *pins* by storing the global epoch it loaded in its own
//!   record (nonzero), then loads the slot; it unpins by storing 0.
//! - A freer (one at a time per slot) stores null in the slot, then
//!   advances the global epoch; the value it advanced from is the object's
//!   *tag*.
//! - The object may be freed once every record is 0 or above its tag.
//!
//! Why: a reader that loaded the object before the null has `e <= tag`.
//! Its epoch load came before the epoch advance (had it read the advanced
//! epoch, it would have synchronised with the advance, which follows the
//! null store, and loaded null). And its record store is visible to any
//! scan that starts after the unlink: reader (record store, fence, slot
//! load) and freer (null store, fence, ..., fence, record loads) follow
//! Dekker's pattern, so if the reader's slot load missed the null, its
//! fence came first and the scan sees its record, or a later value of it
//! (0 or a later pin, both stored after its reads of the object with
//! Release). Unpinning with a Release store orders the reader's accesses
//! before the free of a scan that sees it.
//!
//! Limits: an object stays allocated while any thread stays pinned at or
//! before its tag, also one that never looks at it; records are scanned
//! at every reclamation (one per thread ever seen at once).
//!
//! `registry.rs` runs these functions over its slots and its participants'
//! records; `make loom` runs them, built over loom's atomics, in the models
//! at the end of this file.

use crate::sync::{fence, store_seq_cst, AtomicPtr, AtomicU64, Ordering::*};

/// Pins the thread whose record `mine` is: objects it loads with
/// `load_linked` from now on stay allocated until `unpin`.
#[inline(always)]
pub(crate) fn pin(global: &AtomicU64, mine: &AtomicU64) {
    let e = global.load(SeqCst);
    // Ordered before the slot loads that follow (see the module comment).
    store_seq_cst(mine, e);
}

/// The object linked in `slot` (null when none), for a pinned thread.
#[inline(always)]
pub(crate) fn load_linked<T>(slot: &AtomicPtr<T>) -> *mut T {
    slot.load(SeqCst)
}

/// Unpins `mine`; returns the epoch it was pinned at.
#[inline(always)]
pub(crate) fn unpin(mine: &AtomicU64) -> u64 {
    let e = mine.load(Relaxed);
    // Release, not a swap (a swap is a full barrier on x86): the thread's
    // accesses to what it loaded happen before a free whose scan sees 0.
    mine.store(0, Release);
    e
}

/// Unlinks the object in `slot` and returns its tag. The caller serialises
/// unlinks of a slot and owns the object from now on, to retire it.
#[inline]
pub(crate) fn unlink<T>(slot: &AtomicPtr<T>, global: &AtomicU64) -> u64 {
    store_seq_cst(slot, std::ptr::null_mut());
    global.fetch_add(1, SeqCst)
}

/// The oldest epoch any of `records` is pinned at (`u64::MAX` when none).
/// Call it after the unlinks whose objects it may free (in this thread or
/// ordered before it by a lock).
pub(crate) fn oldest_pinned<'a>(records: impl IntoIterator<Item = &'a AtomicU64>) -> u64 {
    // Pairs with the readers' pin (see the module comment); cheap next to
    // the locks around a reclamation.
    fence(SeqCst);
    records
        .into_iter()
        .map(|r| r.load(SeqCst))
        .filter(|&e| e != 0)
        .min()
        .unwrap_or(u64::MAX)
}

/// Whether an object tagged `tag` may be freed when no record is pinned
/// before `oldest_pinned`.
#[inline]
pub(crate) fn reclaimable(tag: u64, oldest_pinned: u64) -> bool {
    tag < oldest_pinned
}

/// Exhaustive checks of the protocol under loom (`make loom`). An object's
/// `alive` cell is read by every call that finds it and cleared by the free
/// (the memory itself is released after the model, so a wrong free cannot
/// corrupt the checker): loom fails the model when a read and the free are
/// not ordered by happens-before, and the assertion when a read follows it.
#[cfg(all(test, loom))]
mod models {
    use super::*;
    use loom::cell::UnsafeCell;
    use loom::sync::{Arc, Mutex};
    use loom::thread;

    struct Obj {
        alive: UnsafeCell<bool>,
    }

    struct Ptr(*mut Obj);
    // SAFETY: the model hands objects between its threads as the registry
    // does; loom checks every access to their cell.
    unsafe impl Send for Ptr {}

    /// The registry's shape: slots, the global epoch, one record per
    /// calling thread, the retired list, and what has been freed.
    struct World {
        global: AtomicU64,
        records: [AtomicU64; 2],
        slots: [AtomicPtr<Obj>; 2],
        retired: Mutex<Vec<(u64, Ptr)>>,
        freed: Mutex<Vec<Ptr>>,
    }

    impl World {
        fn new() -> Arc<World> {
            let obj = || {
                Box::into_raw(Box::new(Obj {
                    alive: UnsafeCell::new(true),
                }))
            };
            Arc::new(World {
                global: AtomicU64::new(1),
                records: [AtomicU64::new(0), AtomicU64::new(0)],
                slots: [AtomicPtr::new(obj()), AtomicPtr::new(obj())],
                retired: Mutex::new(Vec::new()),
                freed: Mutex::new(Vec::new()),
            })
        }

        /// `registry::get` of each of `slots` inside one pin (a call),
        /// then the unpin's reclamation retry; which slots were found.
        fn call(&self, record: usize, slots: &[usize]) -> Vec<bool> {
            pin(&self.global, &self.records[record]);
            let found = slots
                .iter()
                .map(|&s| {
                    let p = load_linked(&self.slots[s]);
                    if !p.is_null() {
                        // SAFETY: the protocol under test keeps it allocated
                        // (the model never releases memory before its end).
                        let alive = unsafe { &*p }.alive.with(|a| unsafe { *a });
                        assert!(alive, "a pinned call uses a freed object");
                    }
                    !p.is_null()
                })
                .collect();
            unpin(&self.records[record]);
            self.reclaim();
            found
        }

        /// `registry::remove`: unlink, retire, reclaim.
        fn free(&self, slot: usize) {
            let p = self.slots[slot].load(Relaxed);
            let tag = unlink(&self.slots[slot], &self.global);
            self.retired.lock().unwrap().push((tag, Ptr(p)));
            self.reclaim();
        }

        /// `registry::reclaim`.
        fn reclaim(&self) {
            let mut retired = self.retired.lock().unwrap();
            let oldest = oldest_pinned(&self.records);
            let mut freed = self.freed.lock().unwrap();
            retired.retain(|(tag, p)| {
                if !reclaimable(*tag, oldest) {
                    return true;
                }
                // SAFETY: as in `call`.
                unsafe { &*p.0 }.alive.with_mut(|a| unsafe { *a = false });
                freed.push(Ptr(p.0));
                false
            });
        }

        /// After the threads are joined: everything retired was freed, and
        /// the memory is released.
        fn finish(&self) {
            self.reclaim();
            assert!(
                self.retired.lock().unwrap().is_empty(),
                "retired objects left once no thread is pinned"
            );
            for p in self.freed.lock().unwrap().drain(..) {
                // SAFETY: made by `Box::into_raw` in `new`, freed once.
                drop(unsafe { Box::from_raw(p.0) });
            }
            for s in &self.slots {
                let p = s.load(Relaxed);
                if !p.is_null() {
                    // SAFETY: as above; still linked, so never freed.
                    drop(unsafe { Box::from_raw(p) });
                }
            }
        }
    }

    /// (b) A free racing an in-flight call, and a call that starts after
    /// the free: the in-flight call that found the object uses it safely
    /// (it is freed only after the call unpins), the later call gets
    /// "bad handle" (null), and the object is freed in the end.
    #[test]
    fn a_free_racing_calls() {
        loom::model(|| {
            let w = World::new();
            let freed = Arc::new(crate::sync::AtomicBool::new(false));
            let in_flight = {
                let w = w.clone();
                thread::spawn(move || {
                    w.call(0, &[0]);
                })
            };
            let later = {
                let (w, freed) = (w.clone(), freed.clone());
                thread::spawn(move || {
                    if freed.load(Acquire) {
                        assert_eq!(w.call(1, &[0]), [false], "a call after the free found it");
                    }
                })
            };
            w.free(0);
            freed.store(true, Release);
            in_flight.join().unwrap();
            later.join().unwrap();
            w.finish();
        });
    }

    /// (c) Two objects freed one after the other (two tags) while one call
    /// resolves both and another resolves the second: no free of either
    /// while a thread that can still see it is pinned.
    #[test]
    fn reclamation_waits_for_every_thread_that_can_see_the_object() {
        loom::model(|| {
            let w = World::new();
            let both = {
                let w = w.clone();
                thread::spawn(move || {
                    w.call(0, &[0, 1]);
                })
            };
            let second = {
                let w = w.clone();
                thread::spawn(move || {
                    w.call(1, &[1]);
                })
            };
            w.free(0);
            w.free(1);
            both.join().unwrap();
            second.join().unwrap();
            w.finish();
        });
    }
}
