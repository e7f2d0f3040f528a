//! Handle registry: maps opaque 64-bit handles to live objects.
//!
//! A handle is `kind << 63 | generation << 32 | (slot + 1)`. Each slot holds
//! an `ArcSwapOption` of the object and the handle it was issued under; a
//! lookup is one atomic load plus an id comparison, with no shared counter
//! written (arc-swap's guards use per-thread debt slots), so readers on
//! different cores do not bounce a cache line. Freeing swaps the slot to
//! `None`: calls already inside keep the object alive through their guard and
//! finish normally; calls that start later find no object (or another id) and
//! fail with BAD_HANDLE. Generations make reused slots reject stale handles.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use arc_swap::{ArcSwapOption, Guard};

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
    live: ArcSwapOption<Live>,
    generation: AtomicU32,
}

struct FreeList {
    free: Vec<u32>,
    next: u32,
}

struct Registry {
    segments: [OnceLock<Box<[Slot]>>; MAX_SEGS],
    free: Mutex<FreeList>,
}

static REGISTRY: Registry = Registry {
    segments: [const { OnceLock::new() }; MAX_SEGS],
    free: Mutex::new(FreeList {
        free: Vec::new(),
        next: 0,
    }),
};

pub type Handle = Guard<Option<Arc<Live>>>;

fn slot(index: usize) -> Option<&'static Slot> {
    let seg = REGISTRY.segments.get(index >> SEG_BITS)?.get()?;
    seg.get(index & (SEG_SLOTS - 1))
}

fn free_list() -> std::sync::MutexGuard<'static, FreeList> {
    // A panic while holding this lock cannot leave the list inconsistent.
    REGISTRY.free.lock().unwrap_or_else(|p| p.into_inner())
}

/// Registers an object; returns its handle, or None when the registry is full.
pub fn insert(object: Object) -> Option<u64> {
    let mut fl = free_list();
    let index = match fl.free.pop() {
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
    let mut gen = s.generation.load(Ordering::Relaxed).wrapping_add(1) & GEN_MASK;
    if gen == 0 {
        gen = 1;
    }
    s.generation.store(gen, Ordering::Relaxed);
    let kind = if matches!(object, Object::Snapshot(_)) {
        SNAPSHOT_BIT
    } else {
        0
    };
    let id = kind | (gen as u64) << 32 | (index as u64 + 1);
    s.live.store(Some(Arc::new(Live { id, object })));
    Some(id)
}

/// Finds the live object behind `id`. Any garbage id yields None.
pub fn get(id: u64) -> Option<Handle> {
    let low = (id & 0xFFFF_FFFF) as usize;
    if low == 0 {
        return None;
    }
    let g = slot(low - 1)?.live.load();
    match &*g {
        Some(live) if live.id == id => Some(g),
        _ => None,
    }
}

/// Retires `id`. Returns false if it is not a live handle (already freed, garbage).
pub fn remove(id: u64) -> bool {
    let mut fl = free_list();
    let low = (id & 0xFFFF_FFFF) as usize;
    if low == 0 {
        return false;
    }
    let Some(s) = slot(low - 1) else { return false };
    let current = s.live.load_full();
    match current {
        Some(live) if live.id == id => {
            s.live.store(None);
            fl.free.push((low - 1) as u32);
            // `live` (and any in-flight guards) drop the object when done.
            true
        }
        _ => false,
    }
}

pub fn is_snapshot_id(id: u64) -> bool {
    id & SNAPSHOT_BIT != 0
}
