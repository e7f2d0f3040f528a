//! Handle registry: maps opaque 64-bit handles to live objects.
//!
//! A handle is `kind << 63 | generation << 32 | (slot + 1)`. Each slot holds a
//! pointer to the object (which records the handle it was issued under); a
//! lookup is an epoch pin plus one pointer load and an id comparison.
//!
//! Freed objects are reclaimed with epochs, so that calls in flight on other
//! threads finish safely and no shared counter is written per call (which
//! would bounce a cache line between cores on every call):
//! - a call *pins*: it publishes the current global epoch in its thread's own
//!   participant record (SeqCst), then loads the slot pointer; it unpins with
//!   a Release store (a swap would be a second full barrier on x86);
//! - a free swaps the slot pointer to null, bumps the epoch and retires the
//!   object tagged with the epoch it was unlinked in;
//! - a retired object is dropped once no participant is pinned at an epoch
//!   at or before its tag (checked at frees, at registrations and when a call
//!   unpins while something is waiting).
//!
//! Calls that start after a free find a null pointer (or another id) and fail
//! with BAD_HANDLE; generations make reused slots reject stale handles.
//!
//! Memory: registering an object (and a thread's first call) may fail for
//! lack of memory, changing nothing; freeing never allocates. The free list
//! keeps room for every slot of the segments allocated so far, and the
//! retired list room for every live object plus those already retired
//! (both reserved by `insert`, which may fail).
//!
//! The protocol, and why it never frees what a pinned call can see, is in
//! `epoch.rs`.

use std::cell::Cell;
use std::ptr::{self, NonNull};
use std::sync::atomic::{AtomicPtr, AtomicU32, AtomicU64, AtomicUsize, Ordering::*};
use std::sync::{Mutex, MutexGuard, OnceLock};

use crate::engine::alloc::{try_box, try_reserve};
use crate::engine::{Map, SnapshotData};
use crate::epoch;

const SEG_BITS: u32 = 10;
const SEG_SLOTS: usize = 1 << SEG_BITS;
const MAX_SEGS: usize = 4096;
/// Maximum number of live maps plus snapshots.
pub(crate) const MAX_LIVE: usize = SEG_SLOTS * MAX_SEGS;
const SNAPSHOT_BIT: u64 = 1 << 63;
const GEN_MASK: u32 = 0x7FFF_FFFF;

pub struct Snapshot {
    pub data: SnapshotData,
    pub secret: [u64; 2],
}

pub enum Object {
    Map(Map),
    Snapshot(Snapshot),
}

pub struct Live {
    pub id: u64,
    pub object: Object,
}

#[derive(Default)]
struct Slot {
    /// `Box<Live>` raw pointer, or null when the slot is free.
    live: AtomicPtr<Live>,
    generation: AtomicU32,
}

struct FreeList {
    /// FIFO, so a freed slot is reused as late as possible and stale handles
    /// meet a new generation rarely; a slot whose generation is exhausted is
    /// never reused (its stale handles could otherwise match again).
    free: std::collections::VecDeque<u32>,
    next: u32,
    /// Objects registered and not yet freed.
    live: usize,
}

/// An unlinked object waiting for in-flight calls to finish.
struct Retired {
    epoch: u64,
    live: NonNull<Live>,
}

// SAFETY: a retired object is owned by the retired list alone (unlinked from
// its slot); `Live` is Send + Sync (maps are internally synchronised).
unsafe impl Send for Retired {}

struct Registry {
    /// Slot segments, allocated on demand under the free-list lock and never
    /// freed (null: not yet allocated). Plain pointers rather than `OnceLock`s:
    /// every call looks its handle up here, and each check on that path
    /// costs (see `get`).
    segments: [AtomicPtr<[Slot; SEG_SLOTS]>; MAX_SEGS],
    free: Mutex<FreeList>,
    epoch: AtomicU64,
    participants: Mutex<Vec<&'static Participant>>,
    retired: Mutex<Vec<Retired>>,
    /// Length of `retired`, readable without the lock.
    pending: AtomicUsize,
    /// Oldest pinned epoch seen by the last reclamation: the thread that
    /// unpins from it (or older) retries.
    blocked_at: AtomicU64,
}

static REGISTRY: Registry = Registry {
    segments: [const { AtomicPtr::new(ptr::null_mut()) }; MAX_SEGS],
    free: Mutex::new(FreeList {
        free: std::collections::VecDeque::new(),
        next: 0,
        live: 0,
    }),
    epoch: AtomicU64::new(1),
    participants: Mutex::new(Vec::new()),
    retired: Mutex::new(Vec::new()),
    pending: AtomicUsize::new(0),
    blocked_at: AtomicU64::new(u64::MAX),
};

/// One thread's published epoch; 0 when not inside a call. Records are leaked
/// and reused by later threads, so scanning them never races with a free.
#[repr(align(128))]
struct Participant {
    active: AtomicU64,
    in_use: AtomicU32,
}

/// This thread's participant record and call depth. No destructor: a
/// thread-local with one, first touched while the thread exits (C code may
/// call the library from pthread-key destructors), is never torn down and
/// its registration leaks; `release_key`'s destructor gives the record back
/// instead, which glibc also runs for keys armed by an earlier destructor,
/// for up to `PTHREAD_DESTRUCTOR_ITERATIONS` (4) rounds. A record first
/// claimed in the last round stays claimed (a leak of one record, bounded
/// by the threads that do that).
struct Local {
    me: Cell<Option<&'static Participant>>,
    depth: Cell<u32>,
}

thread_local! {
    static LOCAL: Local = const {
        Local {
            me: Cell::new(None),
            depth: Cell::new(0),
        }
    };
}

/// Claims a participant for this thread and arms `release_key` to give it
/// back when the thread exits. Out of line: it runs once per thread, and
/// inlined into every call it made the hot path measurably slower.
#[cold]
#[inline(never)]
fn claim_for_thread(l: &Local) -> Option<&'static Participant> {
    let p = claim_participant()?;
    // Without the key (or if arming it fails: ENOMEM) the record stays
    // claimed after the thread exits: one record leaked, never a use after
    // free. The thread keeps using it either way.
    if let Some(key) = release_key() {
        // SAFETY: a key made by `release_key`; the value points to a leaked,
        // never-freed participant.
        let armed = unsafe {
            libc::pthread_setspecific(key, p as *const Participant as *const libc::c_void)
        };
        debug_assert_eq!(armed, 0, "pthread_setspecific failed");
    }
    l.me.set(Some(p));
    Some(p)
}

/// The destructor of `release_key`: gives the exiting thread's participant
/// back. While a call of this thread is still pinned (only possible if the
/// thread exits in the middle of one, e.g. `pthread_exit` from a callback)
/// the record stays this thread's and the key is re-armed, so that a later
/// destructor round releases it once the call is over.
///
/// # Safety
/// `p` must be a value `claim_for_thread` stored under the key: a pointer
/// to a leaked `Participant` (pthread passes it back unchanged).
unsafe extern "C" fn release_participant(p: *mut libc::c_void) {
    // SAFETY: `claim_for_thread` set the value to a leaked `Participant`.
    let p = unsafe { &*(p as *const Participant) };
    let pinned = LOCAL.with(|l| {
        let pinned = l.depth.get() > 0;
        // Forget it unless pinned: a later call from another destructor
        // claims anew (and arms the key again).
        if !pinned {
            l.me.set(None);
        }
        pinned
    });
    if pinned {
        if let Some(key) = release_key() {
            // SAFETY: as in `claim_for_thread`.
            unsafe {
                libc::pthread_setspecific(key, p as *const Participant as *const libc::c_void)
            };
        }
        return;
    }
    p.active.store(0, Release);
    p.in_use.store(0, Release);
}

fn release_key() -> Option<libc::pthread_key_t> {
    static KEY: OnceLock<Option<libc::pthread_key_t>> = OnceLock::new();
    *KEY.get_or_init(|| {
        let mut key: libc::pthread_key_t = 0;
        // SAFETY: `key` is a valid out-pointer; `release_participant` has the
        // destructor signature pthread expects.
        (unsafe { libc::pthread_key_create(&mut key, Some(release_participant)) } == 0)
            .then_some(key)
    })
}

fn lock<T>(m: &'static Mutex<T>) -> MutexGuard<'static, T> {
    // The registry's critical sections cannot leave their data inconsistent.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A free participant record, or a new one; None when a new one is needed
/// and its memory cannot be had.
fn claim_participant() -> Option<&'static Participant> {
    let mut all = lock(&REGISTRY.participants);
    for p in all.iter() {
        if p.in_use.compare_exchange(0, 1, AcqRel, Relaxed).is_ok() {
            return Some(p);
        }
    }
    try_reserve(&mut all, 1)?;
    let p = try_box(Participant {
        active: AtomicU64::new(0),
        in_use: AtomicU32::new(1),
    })
    .ok()?;
    let p: &'static Participant = Box::leak(p);
    all.push(p);
    Some(p)
}

/// Whether this thread has (or can now get) its participant record: false
/// when it has none and the memory for one cannot be had, which is why a
/// lookup (`get`) then fails although the handle may be good.
#[cold]
pub fn thread_registered() -> bool {
    LOCAL.with(|l| l.me.get().is_some() || claim_for_thread(l).is_some())
}

/// Keeps the calling thread pinned; objects it loads stay allocated until drop.
pub struct PinGuard {
    me: &'static Participant,
    _not_send: std::marker::PhantomData<*const ()>,
}

/// Pins this thread; None when it has no participant record yet and the
/// memory for one cannot be had.
#[inline]
fn pin() -> Option<PinGuard> {
    let me = LOCAL.with(|l| {
        let me = match l.me.get() {
            Some(p) => p,
            None => claim_for_thread(l)?,
        };
        let d = l.depth.get();
        if d == 0 {
            epoch::pin(&REGISTRY.epoch, &me.active);
        }
        l.depth.set(d + 1);
        Some(me)
    })?;
    Some(PinGuard {
        me,
        _not_send: std::marker::PhantomData,
    })
}

impl Drop for PinGuard {
    #[inline]
    fn drop(&mut self) {
        let outermost = LOCAL.with(|l| {
            let d = l.depth.get() - 1;
            l.depth.set(d);
            d == 0
        });
        if !outermost {
            return;
        }
        let e = epoch::unpin(&self.me.active);
        // Only the thread that held reclamation back retries it, so a
        // waiting retired object does not send every call to the locks.
        if REGISTRY.pending.load(Relaxed) > 0 && e <= REGISTRY.blocked_at.load(Relaxed) {
            reclaim();
        }
    }
}

/// Drops retired objects no pinned thread can still see. Allocates nothing
/// (a free calls it): each object is taken off the list under the lock and
/// dropped outside it, one at a time.
fn reclaim() {
    let oldest_pinned = {
        let retired = lock(&REGISTRY.retired);
        if retired.is_empty() {
            return;
        }
        let all = lock(&REGISTRY.participants);
        let oldest = epoch::oldest_pinned(all.iter().map(|p| &p.active));
        REGISTRY.blocked_at.store(oldest, Relaxed);
        oldest
    };
    loop {
        let live = {
            let mut retired = lock(&REGISTRY.retired);
            let reclaimable = |r: &Retired| epoch::reclaimable(r.epoch, oldest_pinned);
            let Some(i) = retired.iter().position(reclaimable) else {
                return;
            };
            let r = retired.swap_remove(i);
            REGISTRY.pending.store(retired.len(), Relaxed);
            r.live
        };
        // SAFETY: the pointer came from Box::into_raw, was unlinked from its
        // slot before its epoch tag was taken, and every thread pinned at or
        // before that epoch has unpinned, so nobody can still reference it;
        // it was taken off the list above, so no other reclaim drops it.
        drop(unsafe { Box::from_raw(live.as_ptr()) });
    }
}

/// A pinned reference to a live object.
pub struct Handle {
    live: NonNull<Live>,
    _pin: PinGuard,
}

impl std::ops::Deref for Handle {
    type Target = Live;
    fn deref(&self) -> &Live {
        // SAFETY: the object was linked when loaded under the pin; reclamation
        // waits for this thread to unpin, which happens after `self` is dropped.
        unsafe { self.live.as_ref() }
    }
}

#[inline]
fn slot(index: usize) -> Option<&'static Slot> {
    let seg = REGISTRY.segments.get(index >> SEG_BITS)?.load(Acquire);
    // SAFETY: a non-null segment pointer comes from a leaked Box (see
    // `insert`), published with Release after its slots were initialised,
    // and is never freed.
    let seg: &'static [Slot; SEG_SLOTS] = unsafe { seg.as_ref() }?;
    Some(&seg[index & (SEG_SLOTS - 1)])
}

/// Why `insert` refused an object (which it dropped).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// `MAX_LIVE` objects are registered.
    Full,
    /// The registry's memory (or the object's record) cannot be had.
    OutOfMemory,
}

/// A segment of empty slots, or None when its memory cannot be had.
fn new_segment() -> Option<NonNull<[Slot; SEG_SLOTS]>> {
    let layout = std::alloc::Layout::new::<[Slot; SEG_SLOTS]>();
    if crate::engine::alloc::failure_injected() {
        return None;
    }
    // SAFETY: the layout has a nonzero size. All-zero bytes are a valid
    // `Slot` (a null pointer and generation 0: `Slot::default()`).
    NonNull::new(unsafe { std::alloc::alloc_zeroed(layout) }.cast())
}

/// Registers an object; returns its handle. Refused (the object dropped,
/// nothing changed) when the registry is full or out of memory.
pub fn insert(object: Object) -> Result<u64, Refused> {
    crate::fork::arm();
    if REGISTRY.pending.load(Relaxed) > 0 {
        reclaim();
    }
    // Its record first: a failure leaves nothing to undo.
    let live = try_box(Live { id: 0, object }).map_err(|_| Refused::OutOfMemory)?;
    let mut fl = lock(&REGISTRY.free);
    {
        // Room for this object on the retired list, for when it is freed.
        let mut retired = lock(&REGISTRY.retired);
        try_reserve(&mut retired, fl.live + 1).ok_or(Refused::OutOfMemory)?;
    }
    let index = match fl.free.pop_front() {
        Some(i) => i as usize,
        None => {
            let i = fl.next as usize;
            if i >= MAX_LIVE {
                return Err(Refused::Full);
            }
            let seg = &REGISTRY.segments[i >> SEG_BITS];
            if seg.load(Relaxed).is_null() {
                // Room on the free list for each slot handed out, so that
                // `remove` never allocates.
                let room = (i + SEG_SLOTS).saturating_sub(fl.free.len());
                fl.free
                    .try_reserve(room)
                    .map_err(|_| Refused::OutOfMemory)?;
                let slots = new_segment().ok_or(Refused::OutOfMemory)?;
                seg.store(slots.as_ptr(), Release);
            }
            fl.next += 1;
            i
        }
    };
    fl.live += 1;
    let s = slot(index).expect("segment initialised");
    let mut gen = s.generation.load(Relaxed).wrapping_add(1) & GEN_MASK;
    if gen == 0 {
        gen = 1;
    }
    s.generation.store(gen, Relaxed);
    let kind = if matches!(live.object, Object::Snapshot(_)) {
        SNAPSHOT_BIT
    } else {
        0
    };
    let id = kind | (gen as u64) << 32 | (index as u64 + 1);
    let mut live = live;
    live.id = id;
    s.live.store(Box::into_raw(live), Release);
    Ok(id)
}

/// Finds the live object behind `id`. Any garbage id yields None.
#[inline]
pub fn get(id: u64) -> Option<Handle> {
    let low = (id & 0xFFFF_FFFF) as usize;
    if low == 0 {
        return None;
    }
    let s = slot(low - 1)?;
    let pin = pin()?;
    let live = NonNull::new(epoch::load_linked(&s.live))?;
    // SAFETY: pinned before the load, so the object cannot be reclaimed yet.
    if unsafe { live.as_ref() }.id != id {
        return None;
    }
    Some(Handle { live, _pin: pin })
}

/// Retires `id`. Returns false if it is not a live handle (already freed, garbage).
pub fn remove(id: u64) -> bool {
    let low = (id & 0xFFFF_FFFF) as usize;
    if low == 0 {
        return false;
    }
    let Some(s) = slot(low - 1) else { return false };
    {
        let mut fl = lock(&REGISTRY.free);
        let cur = s.live.load(SeqCst);
        // SAFETY: frees are serialised by the free-list lock, so a linked
        // pointer seen here cannot be unlinked and reclaimed concurrently.
        if cur.is_null() || unsafe { (*cur).id } != id {
            return false;
        }
        let tag = epoch::unlink(&s.live, &REGISTRY.epoch);
        fl.live -= 1;
        let mut retired = lock(&REGISTRY.retired);
        // Never grows: `insert` kept room for every live object.
        debug_assert!(retired.len() < retired.capacity());
        retired.push(Retired {
            epoch: tag,
            live: NonNull::new(cur).expect("non-null"),
        });
        REGISTRY.pending.store(retired.len(), Relaxed);
        drop(retired);
        if s.generation.load(Relaxed) < GEN_MASK {
            // Never grows: `insert` kept room for every slot.
            debug_assert!(fl.free.len() < fl.free.capacity());
            fl.free.push_back((low - 1) as u32);
        }
    }
    reclaim();
    true
}

/// Before a fork (see `fork.rs`): takes the registry's locks, in the order
/// its functions nest them, so that no other thread holds one when the
/// process forks. Dropping the result releases them.
pub(crate) fn lock_for_fork() -> ForkGuard {
    let free = lock(&REGISTRY.free);
    let retired = lock(&REGISTRY.retired);
    let participants = lock(&REGISTRY.participants);
    ForkGuard(participants, retired, free)
}

/// The registry's locks, held across a fork; dropped in field order, the
/// reverse of the order they were taken.
pub(crate) struct ForkGuard(
    #[allow(dead_code)] std::sync::MutexGuard<'static, Vec<&'static Participant>>,
    #[allow(dead_code)] std::sync::MutexGuard<'static, Vec<Retired>>,
    #[allow(dead_code)] std::sync::MutexGuard<'static, FreeList>,
);

/// After a fork, in the child, where only this thread exists (and the locks
/// are released): unpins the threads that did not survive (their calls will
/// never end) and gives their records back, and marks every live map one of
/// whose shard locks was held at the fork (see
/// `Map::lose_locks_held_at_fork`).
pub(crate) fn after_fork_child() {
    let mine = LOCAL.with(|l| l.me.get()).map(|p| p as *const Participant);
    for p in lock(&REGISTRY.participants).iter() {
        if Some(*p as *const Participant) != mine {
            p.active.store(0, Release);
            p.in_use.store(0, Release);
        }
    }
    let next = lock(&REGISTRY.free).next as usize;
    for s in (0..next).filter_map(slot) {
        // SAFETY: no other thread exists to unlink and reclaim the object
        // while we look at it.
        if let Some(live) = unsafe { s.live.load(Acquire).as_ref() } {
            if let Object::Map(map) = &live.object {
                map.lose_locks_held_at_fork();
            }
        }
    }
}

pub fn is_snapshot_id(id: u64) -> bool {
    id & SNAPSHOT_BIT != 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::Options;

    fn retired_contains(id: u64) -> bool {
        // SAFETY: retired objects stay allocated while listed.
        lock(&REGISTRY.retired)
            .iter()
            .any(|r| unsafe { r.live.as_ref() }.id == id)
    }

    #[test]
    fn freed_object_outlives_pinned_readers_and_is_then_reclaimed() {
        let id = insert(Object::Map(Map::new(&Options::default()).unwrap())).unwrap();
        let h = get(id).unwrap();
        let Object::Map(m) = &h.object else { panic!() };
        m.insert(b"k", b"v").unwrap();
        let other = std::thread::spawn(move || remove(id)).join().unwrap();
        assert!(other, "free succeeds while another thread is inside a call");
        assert!(
            get(id).is_none(),
            "calls that start after the free see a bad handle"
        );
        assert!(retired_contains(id), "not reclaimed while pinned");
        assert_eq!(m.get(b"k").unwrap(), b"v", "the in-flight call still works");
        drop(h);
        // Other tests running in parallel may be pinned for a moment (on a
        // loaded machine, a long one: the bound is for liveness only).
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while retired_contains(id) && std::time::Instant::now() < deadline {
            std::thread::yield_now();
            reclaim();
        }
        assert!(!retired_contains(id), "reclaimed once no reader is pinned");
        assert!(!remove(id), "double free is refused");
    }

    /// A thread whose first call comes from a pthread-key destructor, while
    /// it exits, still gives its participant record back (else each such
    /// thread would leave one more record claimed for good).
    #[test]
    fn participants_claimed_during_thread_exit_are_given_back() {
        static ID: OnceLock<u64> = OnceLock::new();
        extern "C" fn call_at_exit(_: *mut libc::c_void) {
            let id = *ID.get_or_init(|| {
                insert(Object::Map(Map::new(&Options::default()).unwrap())).unwrap()
            });
            assert!(get(id).is_some());
        }
        crate::test_support::call_only_during_thread_exit(300, call_at_exit);
        let claimed = lock(&REGISTRY.participants)
            .iter()
            .filter(|p| p.in_use.load(Acquire) != 0)
            .count();
        assert!(
            claimed < 64,
            "{claimed} participant records still claimed after the threads exited"
        );
        assert!(remove(*ID.get().unwrap()));
    }

    /// Registering may fail for lack of memory (changing nothing); freeing
    /// needs none, even with every allocation failing.
    #[test]
    fn insert_may_run_out_of_memory_and_remove_needs_none() {
        use crate::engine::alloc;
        let map = || Object::Map(Map::new(&Options::default()).unwrap());
        let (a, b) = (map(), map());
        alloc::fail_after(Some(0));
        let refused = insert(a);
        alloc::fail_after(None);
        assert_eq!(refused, Err(Refused::OutOfMemory));
        let id = insert(b).unwrap();
        assert!(get(id).is_some());
        alloc::fail_after(Some(0));
        let freed = remove(id);
        let injected = alloc::injected_failures();
        reclaim();
        alloc::fail_after(None);
        assert!(freed && get(id).is_none());
        assert_eq!(
            injected,
            alloc::injected_failures(),
            "nothing was allocated"
        );
    }

    #[test]
    fn garbage_ids_are_rejected() {
        for id in [
            0,
            1,
            u64::MAX,
            0x7FFF_FFFF_FFFF_FFFF,
            1 << 63,
            (5 << 32) | 3,
        ] {
            assert!(get(id).is_none());
            assert!(!remove(id));
        }
    }
}
