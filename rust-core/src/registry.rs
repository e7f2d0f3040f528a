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

use std::cell::Cell;
use std::ptr::{self, NonNull};
use std::sync::atomic::{AtomicPtr, AtomicU32, AtomicU64, AtomicUsize, Ordering::*};
use std::sync::{Mutex, MutexGuard, OnceLock};

use crate::engine::{Map, SnapshotData};

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
    segments: [OnceLock<Box<[Slot]>>; MAX_SEGS],
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
    segments: [const { OnceLock::new() }; MAX_SEGS],
    free: Mutex::new(FreeList {
        free: std::collections::VecDeque::new(),
        next: 0,
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

struct Local {
    me: &'static Participant,
    depth: Cell<u32>,
}

impl Drop for Local {
    fn drop(&mut self) {
        if self.depth.get() > 0 {
            // Torn down while pinned (a Handle kept in another thread-local):
            // stay pinned and leak the record rather than free under a reader.
            return;
        }
        self.me.active.store(0, Release);
        self.me.in_use.store(0, Release);
    }
}

thread_local! {
    static LOCAL: Local = Local { me: claim_participant(), depth: Cell::new(0) };
}

fn lock<T>(m: &'static Mutex<T>) -> MutexGuard<'static, T> {
    // The registry's critical sections cannot leave their data inconsistent.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn claim_participant() -> &'static Participant {
    let mut all = lock(&REGISTRY.participants);
    for p in all.iter() {
        if p.in_use.compare_exchange(0, 1, AcqRel, Relaxed).is_ok() {
            return p;
        }
    }
    let p: &'static Participant = Box::leak(Box::new(Participant {
        active: AtomicU64::new(0),
        in_use: AtomicU32::new(1),
    }));
    all.push(p);
    p
}

/// Keeps the calling thread pinned; objects it loads stay allocated until drop.
pub struct PinGuard {
    /// A participant claimed for this call alone, when the thread's own
    /// record was unavailable (thread-local storage being torn down).
    temporary: Option<&'static Participant>,
    _not_send: std::marker::PhantomData<*const ()>,
}

fn publish(p: &Participant) {
    let e = REGISTRY.epoch.load(SeqCst);
    // SeqCst store: ordered before the slot load that follows, and against
    // the free's SeqCst swap and epoch bump.
    p.active.store(e, SeqCst);
}

fn pin() -> PinGuard {
    let pinned = LOCAL.try_with(|l| {
        let d = l.depth.get();
        if d == 0 {
            publish(l.me);
        }
        l.depth.set(d + 1);
    });
    let temporary = match pinned {
        Ok(()) => None,
        // A call from a thread-local destructor (e.g. a pthread key
        // destructor in C) after ours is gone: pin with a borrowed record.
        Err(_) => {
            let p = claim_participant();
            publish(p);
            Some(p)
        }
    };
    PinGuard {
        temporary,
        _not_send: std::marker::PhantomData,
    }
}

impl Drop for PinGuard {
    fn drop(&mut self) {
        let released_epoch = match self.temporary {
            Some(p) => {
                // Release stores, not swaps: a swap is a full barrier on x86.
                let e = p.active.load(Relaxed);
                p.active.store(0, Release);
                p.in_use.store(0, Release);
                Some(e)
            }
            None => LOCAL
                .try_with(|l| {
                    let d = l.depth.get() - 1;
                    l.depth.set(d);
                    (d == 0).then(|| {
                        let e = l.me.active.load(Relaxed);
                        l.me.active.store(0, Release);
                        e
                    })
                })
                .ok()
                .flatten(),
        };
        // Only the thread that held reclamation back retries it, so a
        // waiting retired object does not send every call to the locks.
        if let Some(e) = released_epoch {
            if REGISTRY.pending.load(Relaxed) > 0 && e <= REGISTRY.blocked_at.load(Relaxed) {
                reclaim();
            }
        }
    }
}

/// Drops retired objects no pinned thread can still see.
fn reclaim() {
    let mut retired = lock(&REGISTRY.retired);
    if retired.is_empty() {
        return;
    }
    let oldest_pinned = {
        let all = lock(&REGISTRY.participants);
        all.iter()
            .map(|p| p.active.load(SeqCst))
            .filter(|&e| e != 0)
            .min()
            .unwrap_or(u64::MAX)
    };
    REGISTRY.blocked_at.store(oldest_pinned, Relaxed);
    let mut done = Vec::new();
    retired.retain(|r| {
        if r.epoch < oldest_pinned {
            done.push(r.live);
            false
        } else {
            true
        }
    });
    REGISTRY.pending.store(retired.len(), Relaxed);
    drop(retired);
    for live in done {
        // SAFETY: the pointer came from Box::into_raw, was unlinked from its
        // slot before its epoch tag was taken, and every thread pinned at or
        // before that epoch has unpinned, so nobody can still reference it.
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

fn slot(index: usize) -> Option<&'static Slot> {
    let seg = REGISTRY.segments.get(index >> SEG_BITS)?.get()?;
    seg.get(index & (SEG_SLOTS - 1))
}

/// Registers an object; returns its handle, or None when the registry is full.
pub fn insert(object: Object) -> Option<u64> {
    if REGISTRY.pending.load(Relaxed) > 0 {
        reclaim();
    }
    let mut fl = lock(&REGISTRY.free);
    let index = match fl.free.pop_front() {
        Some(i) => i as usize,
        None => {
            let i = fl.next as usize;
            if i >= MAX_LIVE {
                return None;
            }
            REGISTRY.segments[i >> SEG_BITS]
                .get_or_init(|| (0..SEG_SLOTS).map(|_| Slot::default()).collect());
            fl.next += 1;
            i
        }
    };
    let s = slot(index).expect("segment initialised");
    let mut gen = s.generation.load(Relaxed).wrapping_add(1) & GEN_MASK;
    if gen == 0 {
        gen = 1;
    }
    s.generation.store(gen, Relaxed);
    let kind = if matches!(object, Object::Snapshot(_)) {
        SNAPSHOT_BIT
    } else {
        0
    };
    let id = kind | (gen as u64) << 32 | (index as u64 + 1);
    s.live
        .store(Box::into_raw(Box::new(Live { id, object })), Release);
    Some(id)
}

/// Finds the live object behind `id`. Any garbage id yields None.
pub fn get(id: u64) -> Option<Handle> {
    let low = (id & 0xFFFF_FFFF) as usize;
    if low == 0 {
        return None;
    }
    let s = slot(low - 1)?;
    let pin = pin();
    let live = NonNull::new(s.live.load(SeqCst))?;
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
        s.live.store(ptr::null_mut(), SeqCst);
        let epoch = REGISTRY.epoch.fetch_add(1, SeqCst);
        let mut retired = lock(&REGISTRY.retired);
        retired.push(Retired {
            epoch,
            live: NonNull::new(cur).expect("non-null"),
        });
        REGISTRY.pending.store(retired.len(), Relaxed);
        drop(retired);
        if s.generation.load(Relaxed) < GEN_MASK {
            fl.free.push_back((low - 1) as u32);
        }
    }
    reclaim();
    true
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
        // Other tests running in parallel may be pinned for a moment.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
        while retired_contains(id) && std::time::Instant::now() < deadline {
            std::thread::yield_now();
            reclaim();
        }
        assert!(!retired_contains(id), "reclaimed once no reader is pinned");
        assert!(!remove(id), "double free is refused");
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
