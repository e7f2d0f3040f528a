//! How short readers and the writer of a shard exclude each other without
//! the readers writing the lock word (see `shard_lock.rs` for why).
//!
//! A short reader stores the id of what it reads (a shard lock's address,
//! or a group's odd id for a read spanning several shards of one map) in
//! its own thread's slot, then checks the shard's `writing` flag: down, it
//! reads; up, it withdraws and takes the read lock instead. The writer,
//! holding the write lock, raises the flag, then waits until no slot holds
//! the shard's id or its group's before it changes anything, and lowers
//! the flag when done, before releasing the lock.
//!
//! The announcement and the flag follow Dekker's pattern: each side stores
//! its own word, runs a `SeqCst` fence, then loads the other side's word.
//! The two fences are totally ordered, so the side whose fence comes second
//! sees the other's store: either the writer sees the announcement (and
//! waits for its withdrawal, whose Release store orders the read before
//! the writer's changes), or the reader sees the flag up (and does not read
//! unlocked). A reader that sees the flag down sees, through the Release
//! of `readmit_readers` and its Acquire load, every change of the writer
//! that lowered it. The reader's fence is a full barrier, like the lock's
//! own atomic instructions, but it writes only the reader's cache line.
//!
//! Limits: a writer waits for every reader announcing its group, also one
//! reading other shards of the map (one word per announcement); a reader
//! that never withdraws blocks the shard's writers for good.
//!
//! These functions are the protocol itself: `shard_lock.rs` runs them over
//! its slot table and lock, and `make loom` runs them, built over loom's
//! atomics, in the models at the end of this file.

use crate::sync::{fence, wait_round, AtomicBool, AtomicUsize, Ordering::*};

/// Reader: announces `id` in this thread's `slot`, before checking the
/// flag of any shard it covers.
#[inline(always)]
pub(crate) fn announce(slot: &AtomicUsize, id: usize) {
    // Release: a writer whose Acquire load sees this value also sees what
    // this thread did before (its earlier reads under a withdrawn
    // announcement, or a previous owner's of the slot).
    slot.store(id, Release);
    // Pairs with the fence in `exclude_readers`.
    fence(SeqCst);
}

/// Reader, after `announce`: whether a writer is active on the shard whose
/// flag this is. False means the shard's data may be read until `withdraw`.
#[inline(always)]
pub(crate) fn writer_active(writing: &AtomicBool) -> bool {
    // Acquire: pairs with the Release in `readmit_readers`.
    writing.load(Acquire)
}

/// Reader: ends the announcement (the read is over, or it was refused).
#[inline(always)]
pub(crate) fn withdraw(slot: &AtomicUsize) {
    // Release: the reads made under the announcement happen before the
    // writes of a writer whose Acquire load sees the slot cleared.
    slot.store(0, Release);
}

/// Writer, holding the write lock of the shard `id` of group `group`:
/// raises the shard's flag and returns once none of `slots` announces the
/// shard or its group. Changes may be made from then until
/// `readmit_readers`.
#[inline]
pub(crate) fn exclude_readers<'a>(
    writing: &AtomicBool,
    slots: impl IntoIterator<Item = &'a AtomicUsize>,
    id: usize,
    group: usize,
) {
    // Relaxed: ordered before the loads below by the fence.
    writing.store(true, Relaxed);
    // Pairs with the fence in `announce`.
    fence(SeqCst);
    for slot in slots {
        let mut round = 0u32;
        loop {
            // Acquire: the reader's reads happen before our writes.
            let announced = slot.load(Acquire);
            if announced != id && announced != group {
                break;
            }
            wait_round(round);
            round = round.saturating_add(1);
        }
    }
}

/// Writer, before releasing the write lock: lowers the flag.
#[inline(always)]
pub(crate) fn readmit_readers(writing: &AtomicBool) {
    // Release: a short reader whose Acquire load sees the flag down sees
    // every change made while it was up.
    writing.store(false, Release);
}

/// Exhaustive checks of the protocol under loom (`make loom`): every
/// interleaving (up to the preemption bound) and every value the memory
/// model lets each load return. Reads and writes of the shard's data go
/// through loom's `UnsafeCell`, which fails the model when a read and a
/// write are not ordered by happens-before, i.e. when they could overlap.
#[cfg(all(test, loom))]
mod models {
    use super::*;
    use loom::cell::UnsafeCell;
    use loom::sync::{Arc, RwLock};
    use loom::thread;

    /// A shard: the lock writers (and refused short readers) take, its flag,
    /// and the data, whose two words every writer keeps equal.
    struct Shard {
        lock: RwLock<()>,
        writing: AtomicBool,
        data: UnsafeCell<[u64; 2]>,
        id: usize,
        group: usize,
    }

    const GROUP: usize = 1;

    impl Shard {
        fn new(id: usize) -> Shard {
            Shard {
                lock: RwLock::new(()),
                writing: AtomicBool::new(false),
                data: UnsafeCell::new([0; 2]),
                id,
                group: GROUP,
            }
        }

        fn read(&self) -> [u64; 2] {
            // SAFETY: loom checks the access; the model only reads plain words.
            self.data.with(|p| unsafe { *p })
        }

        /// `ShardLock::write` and its guard's drop.
        fn write(&self, slots: &[AtomicUsize], v: u64) {
            let _locked = self.lock.write().unwrap();
            exclude_readers(&self.writing, slots, self.id, self.group);
            // SAFETY: as in `read`.
            self.data.with_mut(|p| unsafe { (*p)[0] = v });
            self.data.with_mut(|p| unsafe { (*p)[1] = v });
            readmit_readers(&self.writing);
        }

        /// `ShardLock::read_short`.
        fn read_short(&self, slot: &AtomicUsize) -> [u64; 2] {
            announce(slot, self.id);
            if !writer_active(&self.writing) {
                let v = self.read();
                withdraw(slot);
                return v;
            }
            withdraw(slot);
            let _locked = self.lock.read().unwrap();
            self.read()
        }
    }

    /// `Group::read_unlocked` over `shards` and the guard's drop; None when
    /// a writer was active on one of them.
    fn read_group(shards: &[&Shard], slot: &AtomicUsize) -> Option<Vec<[u64; 2]>> {
        announce(slot, GROUP);
        if shards.iter().any(|s| writer_active(&s.writing)) {
            withdraw(slot);
            return None;
        }
        let v = shards.iter().map(|s| s.read()).collect();
        withdraw(slot);
        Some(v)
    }

    fn consistent(v: [u64; 2], written: &[u64]) {
        assert_eq!(v[0], v[1], "torn read");
        assert!(v[0] == 0 || written.contains(&v[0]), "read {v:?}");
    }

    /// (a) A short reader and a writer of one shard, each twice: no read
    /// overlaps a write, and every read sees a whole write.
    #[test]
    fn short_reads_exclude_the_writer() {
        loom::model(|| {
            let shard = Arc::new(Shard::new(8));
            let slots = Arc::new([AtomicUsize::new(0)]);
            let reader = {
                let (shard, slots) = (shard.clone(), slots.clone());
                thread::spawn(move || {
                    for _ in 0..2 {
                        consistent(shard.read_short(&slots[0]), &[1, 2]);
                    }
                })
            };
            shard.write(&slots[..], 1);
            shard.write(&slots[..], 2);
            reader.join().unwrap();
            assert_eq!(shard.read(), [2, 2]);
        });
    }

    /// (a) Two short readers, each in its own slot, and a writer.
    #[test]
    fn two_short_readers_exclude_the_writer() {
        loom::model(|| {
            let shard = Arc::new(Shard::new(8));
            let slots = Arc::new([AtomicUsize::new(0), AtomicUsize::new(0)]);
            let readers: Vec<_> = (0..2)
                .map(|i| {
                    let (shard, slots) = (shard.clone(), slots.clone());
                    thread::spawn(move || consistent(shard.read_short(&slots[i]), &[1]))
                })
                .collect();
            shard.write(&slots[..], 1);
            for r in readers {
                r.join().unwrap();
            }
        });
    }

    /// (a) A batch read of two shards of one group (announcing the group)
    /// against a writer of each shard in turn: no read of either shard
    /// overlaps its writer, and a read either happens or is refused.
    #[test]
    fn group_reads_exclude_the_writers_of_every_shard() {
        loom::model(|| {
            let a = Arc::new(Shard::new(8));
            let b = Arc::new(Shard::new(16));
            let slots = Arc::new([AtomicUsize::new(0)]);
            let reader = {
                let (a, b, slots) = (a.clone(), b.clone(), slots.clone());
                thread::spawn(move || {
                    if let Some(v) = read_group(&[&a, &b], &slots[0]) {
                        consistent(v[0], &[1]);
                        consistent(v[1], &[2]);
                    }
                })
            };
            b.write(&slots[..], 2);
            a.write(&slots[..], 1);
            reader.join().unwrap();
        });
    }
}
