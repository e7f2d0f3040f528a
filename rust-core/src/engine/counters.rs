//! Change counters that code outside the library can watch without a call.
//!
//! A binding that prefetches entries (the Go binding hands out entries from
//! a batch, one library call per batch) must learn of every write made
//! since the batch was read, including writes made by C code through the
//! same handle, without paying a call per entry. So every map counts its
//! changes in memory the caller may read with atomic loads: `changes`
//! counts every change to the map, structural or not, in one word (one
//! load tells a reader whether anything changed), and `structural[s]`
//! counts the structural changes of shard `s` (the strict stamp is their
//! sum; per shard, so that writers of different shards do not contend on
//! them).
//!
//! Writers bump them under the shard's write lock, so before the change
//! becomes visible to any other call: whoever has seen a change and then
//! reads the counters sees it counted.
//!
//! Writers of every shard would contend on `changes`, so it only counts
//! while some reader is registered (`watchers`, `mc_map_watch`); otherwise
//! a write just reads `watchers`, a line nobody writes. That is enough:
//! a reader registers before it reads the count and then the entries, and
//! reads the entries under the shard locks. A writer that finds no reader
//! registered (it looks under its write lock) therefore finished before
//! the reader's read of its shard began, which sees the write: had that
//! read come first, the reader's registration would have happened before
//! the write lock was taken, and the writer would have seen it.
//!
//! The blocks are never freed: a reader racing with `mc_map_free` reads
//! counters, not freed memory. A freed map's block goes back to a free list
//! for the next map, whose counters simply go on growing from there. The
//! list runs through the blocks themselves (`next_free`), so giving one back
//! (which `mc_map_free` does) needs no memory; taking a new one may fail.
#![forbid(unsafe_code)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use super::alloc::try_box;

use super::table::SHARDS;

/// A counter on a line of its own (two lines: Intel's adjacent-line
/// prefetcher pairs them), so that writers of different shards do not
/// share lines.
#[repr(C, align(128))]
pub struct Padded(pub AtomicU64);

/// Distance between two shards' structural counters, in 64-bit words.
pub const STRIDE_WORDS: usize = std::mem::size_of::<Padded>() / 8;

#[repr(C)]
pub struct Counters {
    pub changes: Padded,
    pub structural: [Padded; SHARDS],
    /// Readers of `changes` registered now.
    watchers: Padded,
    /// The next block of the free list while this one is on it (taken
    /// only under `FREE`'s lock, so never contended).
    next_free: Mutex<Option<&'static Counters>>,
}

/// The free list's first block.
static FREE: Mutex<Option<&'static Counters>> = Mutex::new(None);

impl Counters {
    /// A block for a new map: a freed map's, or a new one that is never
    /// freed. None when a new one is needed and its memory cannot be had.
    pub fn take() -> Option<&'static Counters> {
        {
            let mut head = FREE.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(c) = *head {
                *head = *c.next_free.lock().unwrap_or_else(|e| e.into_inner());
                return Some(c);
            }
        }
        let c = try_box(Counters {
            changes: Padded(AtomicU64::new(0)),
            structural: std::array::from_fn(|_| Padded(AtomicU64::new(0))),
            watchers: Padded(AtomicU64::new(0)),
            next_free: Mutex::new(None),
        })
        .ok()?;
        Some(Box::leak(c))
    }

    /// Hands the block of a map being dropped to the next map (allocating
    /// nothing).
    pub fn give_back(c: &'static Counters) {
        // Readers of the freed map can no longer unregister (their handle
        // is dead): the next map starts unwatched.
        c.watchers.0.store(0, Ordering::Relaxed);
        let mut head = FREE.lock().unwrap_or_else(|e| e.into_inner());
        *c.next_free.lock().unwrap_or_else(|e| e.into_inner()) = *head;
        *head = Some(c);
    }

    /// Before a fork (see `fork.rs`): takes the lock on the freed blocks,
    /// so that no other thread holds it when the process forks. Dropping
    /// the result releases it.
    pub(crate) fn lock_for_fork() -> std::sync::MutexGuard<'static, Option<&'static Counters>> {
        FREE.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers (`on`) or unregisters a reader of `changes`. False when
    /// unregistering with no reader registered.
    pub fn watch(&self, on: bool) -> bool {
        let w = &self.watchers.0;
        if on {
            w.fetch_add(1, Ordering::SeqCst);
            return true;
        }
        w.fetch_update(Ordering::SeqCst, Ordering::Relaxed, |n| n.checked_sub(1))
            .is_ok()
    }

    /// Sum of the structural counters. Each only grows, so an unchanged sum
    /// means no shard changed structurally.
    pub fn structural(&self) -> u64 {
        self.structural
            .iter()
            .map(|c| c.0.load(Ordering::Acquire))
            .sum()
    }

    pub fn changes(&self) -> u64 {
        self.changes.0.load(Ordering::Acquire)
    }

    /// Counts a structural change of shard `s`. Only with `s` write-locked:
    /// the lock makes this thread the shard counter's only writer, so a
    /// load and a store replace a locked add.
    pub fn count_structural(&self, s: usize) {
        let c = &self.structural[s].0;
        c.store(c.load(Ordering::Relaxed) + 1, Ordering::Release);
        self.count_change();
    }

    /// Counts a change that is not structural (a value replaced), if some
    /// reader watches. Only under the changed shard's write lock (see the
    /// module doc for why that makes the unlocked test enough).
    pub fn count_change(&self) {
        if self.watchers.0.load(Ordering::Relaxed) != 0 {
            self.changes.0.fetch_add(1, Ordering::Release);
        }
    }

    /// Where the C ABI's readers find the counters.
    pub fn changes_word(&'static self) -> *const u64 {
        self.changes.0.as_ptr().cast_const()
    }

    pub fn structural_words(&'static self) -> *const u64 {
        self.structural.as_ptr().cast()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_count_only_while_watched_and_structural_ones_always() {
        let c = Counters::take().unwrap();
        let (s0, c0) = (c.structural(), c.changes());
        c.count_structural(3);
        c.count_change();
        assert_eq!((c.structural(), c.changes()), (s0 + 1, c0), "unwatched");
        assert!(c.watch(true) && c.watch(true) && c.watch(false));
        c.count_structural(3);
        c.count_change();
        assert_eq!((c.structural(), c.changes()), (s0 + 2, c0 + 2), "watched");
        assert!(c.watch(false));
        assert!(!c.watch(false), "no reader left to unregister");
        c.count_change();
        assert_eq!(c.changes(), c0 + 2);
        Counters::give_back(c);
    }
}
