//! Change counters that code outside the library can watch without a call.
//!
//! A binding that prefetches entries (the Go binding hands out entries from
//! a batch, one library call per batch) must learn of every write made
//! since the batch was read, including writes made by C code through the
//! same handle, without paying a call per entry. So every map counts its
//! changes, per shard, in memory the caller may read with atomic loads:
//! `structural` counts the structural changes (the strict stamp is their
//! sum) and `changes` counts every change, structural or not.
//!
//! Writers bump them under the shard's write lock, so before the change
//! becomes visible to any other call: whoever has seen a change and then
//! reads the counters sees it counted.
//!
//! The blocks are never freed: a reader racing with `mc_map_free` reads
//! counters, not freed memory. A freed map's block goes back to a free list
//! for the next map, whose counters simply go on growing from there.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use super::table::SHARDS;

/// One shard's counters, on a cache line of their own: writers of different
/// shards do not share lines.
#[repr(C, align(64))]
pub struct ShardCounters {
    pub structural: AtomicU64,
    pub changes: AtomicU64,
}

/// Distance between two shards' counters, in 64-bit words.
pub const STRIDE_WORDS: usize = std::mem::size_of::<ShardCounters>() / 8;
// The C ABI documents word 0 of a shard's record as `structural`, word 1 as
// `changes`.
const _: () = assert!(std::mem::offset_of!(ShardCounters, changes) == 8);

#[repr(C)]
pub struct Counters {
    pub shards: [ShardCounters; SHARDS],
}

static FREE: Mutex<Vec<&'static Counters>> = Mutex::new(Vec::new());

impl Counters {
    /// A block for a new map: a freed map's, or a new one that is never freed.
    pub fn take() -> &'static Counters {
        let reused = FREE.lock().unwrap_or_else(|e| e.into_inner()).pop();
        reused.unwrap_or_else(|| {
            Box::leak(Box::new(Counters {
                shards: std::array::from_fn(|_| ShardCounters {
                    structural: AtomicU64::new(0),
                    changes: AtomicU64::new(0),
                }),
            }))
        })
    }

    /// Hands the block of a map being dropped to the next map.
    pub fn give_back(c: &'static Counters) {
        FREE.lock().unwrap_or_else(|e| e.into_inner()).push(c);
    }

    /// Sum of the structural counters. Each only grows, so an unchanged sum
    /// means no shard changed structurally.
    pub fn structural(&self) -> u64 {
        self.shards
            .iter()
            .map(|s| s.structural.load(Ordering::Acquire))
            .sum()
    }

    /// Counts a structural change of shard `s`. Only with `s` write-locked:
    /// the lock makes this thread the counters' only writer, so a load and
    /// a store replace a locked add.
    pub fn bump_structural(&self, s: usize) {
        let c = &self.shards[s];
        c.structural
            .store(c.structural.load(Ordering::Relaxed) + 1, Ordering::Release);
        self.bump(s);
    }

    /// Counts a change of shard `s` that is not structural (a value
    /// replaced). Only with `s` write-locked.
    pub fn bump(&self, s: usize) {
        let c = &self.shards[s].changes;
        c.store(c.load(Ordering::Relaxed) + 1, Ordering::Release);
    }

    /// The first word, for the C ABI.
    pub fn as_words(&'static self) -> *const u64 {
        self.shards.as_ptr().cast()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn structural_changes_count_as_changes_too() {
        let c = Counters::take();
        let changes = |c: &Counters| c.shards[3].changes.load(Ordering::Relaxed);
        let (s0, c0) = (c.structural(), changes(c));
        c.bump_structural(3);
        c.bump(3);
        assert_eq!(c.structural(), s0 + 1);
        assert_eq!(changes(c), c0 + 2);
        Counters::give_back(c);
    }
}
