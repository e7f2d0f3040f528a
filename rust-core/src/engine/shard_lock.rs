//! The shard lock: a reader-writer lock whose short reads do not write the
//! lock's shared word.
//!
//! Taking a read lock is an atomic read-modify-write of the lock word, so two
//! cores reading the same shards bounce that cache line between them on
//! every lookup (measured: two threads getting from a 1M map ran at 1.1–1.3×
//! one thread with the lock, 1.6–1.9× without it). A *short* read — one that
//! copies a value out and calls no user code — instead announces the shard it
//! reads in its own thread's slot, checks that no writer is active, and reads
//! without touching the lock. A writer takes the lock, raises the shard's
//! `writing` flag, and waits until no slot announces the shard before it
//! changes anything. That protocol, and why it excludes them, is in
//! `shard_lock_protocol.rs`; this file gives it a slot table and a lock.
//!
//! A read that spans several shards of one map (a batch lookup) announces
//! the map's *group* instead, checks the flag of every shard it reads, and
//! writers of any shard in the group wait for it the same way (also writers
//! of shards it does not read: the price of one word per announcement).
//!
//! A thread gets a slot on its first short read and gives it back when it
//! exits (from a pthread-key destructor, which glibc runs also when that
//! first read came from another destructor during the thread's exit).
//! Without a slot (all taken) a short read simply takes the read lock.
//!
//! The lock word is std's `RwLock` (a futex on Linux) over `()`, with the
//! data in an `UnsafeCell` beside it: short reads need the data without the
//! lock, which std's lock does not lend. A std lock allocates nothing, not
//! even when threads first wait on it (parking_lot builds a process-wide
//! wait table then, and aborts when that allocation fails), and it has no
//! queue of parked threads that a fork could leave locked in the child.

use std::cell::{Cell, UnsafeCell};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::*};
use std::sync::{OnceLock, RwLock, RwLockReadGuard, RwLockWriteGuard, TryLockError};

use super::shard_lock_protocol::{
    announce, exclude_readers, readmit_readers, withdraw, writer_active,
};

/// Threads that can hold a slot at once; others read through the lock.
const SLOTS: usize = 256;

/// One thread's announcement: the address of the shard lock it is reading
/// without locking, or 0. Padded so that no two threads share a line.
#[repr(align(128))]
struct Slot {
    reading: AtomicUsize,
    taken: AtomicBool,
}

#[allow(clippy::declare_interior_mutable_const)] // only used to build the array
const FREE: Slot = Slot {
    reading: AtomicUsize::new(0),
    taken: AtomicBool::new(false),
};

static TABLE: [Slot; SLOTS] = [FREE; SLOTS];

/// Slots ever taken: writers scan `TABLE[..IN_USE]`.
static IN_USE: AtomicUsize = AtomicUsize::new(0);

/// This thread's slot and whether it is announcing. No destructor: a
/// thread-local with one, first touched while the thread exits (C code may
/// call the library from pthread-key destructors), would never be torn down
/// and its registration would leak; the slot is given back by the
/// destructor of `release_key` instead, which glibc runs in that case too.
struct Local {
    slot: Cell<Option<&'static Slot>>,
    /// Set once this thread found no slot (all taken): it then reads
    /// through the lock without scanning the table on every read.
    no_slot: Cell<bool>,
    busy: Cell<bool>,
}

thread_local! {
    static LOCAL: Local = const {
        Local {
            slot: Cell::new(None),
            no_slot: Cell::new(false),
            busy: Cell::new(false),
        }
    };
}

/// Takes a free slot for this thread and arms `release_key` to give it back.
#[cold]
#[inline(never)]
fn claim(l: &Local) -> Option<&'static Slot> {
    let slot = TABLE.iter().enumerate().find_map(|(i, s)| {
        s.taken
            .compare_exchange(false, true, Acquire, Relaxed)
            .ok()?;
        let armed = release_key().is_some_and(|key| {
            // SAFETY: a key made by `release_key`; the value points to a
            // static.
            unsafe { libc::pthread_setspecific(key, s as *const Slot as *const libc::c_void) == 0 }
        });
        if !armed {
            s.taken.store(false, Release);
            return None;
        }
        IN_USE.fetch_max(i + 1, AcqRel);
        Some(s)
    });
    l.slot.set(slot);
    l.no_slot.set(slot.is_none());
    slot
}

fn release(slot: &Slot) {
    slot.reading.store(0, Release);
    slot.taken.store(false, Release);
}

/// The destructor of `release_key`: gives the thread's slot back.
///
/// # Safety
/// `slot` must be a value `claim` stored under the key: a pointer to a
/// `Slot` of `TABLE` (pthread passes it back unchanged).
unsafe extern "C" fn release_slot(slot: *mut libc::c_void) {
    // Forget it first: a later read from another destructor claims anew.
    LOCAL.with(|l| l.slot.set(None));
    // SAFETY: `claim` set the value to a pointer to a `Slot` of `TABLE`.
    release(unsafe { &*(slot as *const Slot) });
}

/// The pthread key whose destructor gives slots back (None if it could not
/// be created: then no thread takes a slot).
fn release_key() -> Option<libc::pthread_key_t> {
    static KEY: OnceLock<Option<libc::pthread_key_t>> = OnceLock::new();
    *KEY.get_or_init(|| {
        let mut key: libc::pthread_key_t = 0;
        // SAFETY: `key` is a valid out-pointer; `release_slot` has the
        // destructor signature pthread expects.
        (unsafe { libc::pthread_key_create(&mut key, Some(release_slot)) } == 0).then_some(key)
    })
}

/// An announcement in this thread's slot; withdrawn on drop (also when the
/// read panics).
struct Announcement {
    slot: &'static Slot,
    /// Withdrawn on the thread that made it (its drop clears that thread's
    /// `busy` flag): neither `Send` nor `Sync`.
    _this_thread: std::marker::PhantomData<*const ()>,
}

impl Announcement {
    /// Announces `id`, or None when this thread has no slot (or is already
    /// announcing: short reads never nest, but a caller must not rely on it).
    // Always inlined: as a separate function (it became one when a second
    // caller appeared) every get in the C benchmark took ~120 ns more
    // (get hit, 1M: 330-345 vs 203-210 ns), like the inlined slot claim
    // before it; the hot path is sensitive to its shape in ways the
    // instruction counts do not show.
    #[inline(always)]
    fn new(id: usize) -> Option<Announcement> {
        let slot = LOCAL.with(|l| {
            if l.busy.get() {
                return None;
            }
            let s = match l.slot.get() {
                Some(s) => s,
                None if l.no_slot.get() => return None,
                None => claim(l)?,
            };
            l.busy.set(true);
            Some(s)
        })?;
        announce(&slot.reading, id);
        Some(Announcement {
            slot,
            _this_thread: std::marker::PhantomData,
        })
    }
}

impl Drop for Announcement {
    fn drop(&mut self) {
        withdraw(&self.slot.reading);
        LOCAL.with(|l| l.busy.set(false));
    }
}

pub struct ShardLock<T> {
    /// Held to read `data` for long, or to write it.
    lock: RwLock<()>,
    data: UnsafeCell<T>,
    /// Raised by the write-lock holder before it waits for announced readers.
    writing: AtomicBool,
    /// Set in a forked child when the lock was held at the fork: its holder
    /// may not exist in the child, so taking it panics instead of waiting.
    lost: AtomicBool,
    /// The group id of the map this shard belongs to (see `Group`).
    group: usize,
}

// SAFETY: `data` is shared as `&T` only under the read lock or a short
// read's announcement, and lent as `&mut T` only under the write lock once
// no announcement names the shard (the protocol in this file): what
// `RwLock<T>` requires of `T`, it requires here.
unsafe impl<T: Send + Sync> Sync for ShardLock<T> {}

/// Names the shards of one map for reads spanning several of them. Group
/// ids are odd, so they never equal a lock's address (the announcement of a
/// single-shard read).
#[derive(Clone, Copy)]
pub struct Group(usize);

impl Group {
    pub fn new() -> Group {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        Group(NEXT.fetch_add(1, Relaxed) * 2 + 1)
    }

    /// Reads several shards of this group without their lock words: the
    /// data of every lock in `locks` (all of this group), or `None` when a
    /// writer is active on any of them or this thread has no slot (then take
    /// their read locks). Writers of the group wait while the result lives,
    /// so hold it only for a short read, as for `ShardLock::read_short`.
    pub fn read_unlocked<'a, T, const N: usize>(
        &self,
        locks: [Option<&'a ShardLock<T>>; N],
    ) -> Option<GroupRead<'a, T, N>> {
        let announced = Announcement::new(self.0)?;
        debug_assert!(locks.iter().flatten().all(|l| l.group == self.0));
        if locks.iter().flatten().any(|l| writer_active(&l.writing)) {
            return None;
        }
        // SAFETY: as in `ShardLock::read_short`: the group announcement was
        // visible before we saw each lock's flag down, so any writer of these
        // locks waits (it compares announcements with its group too) until
        // the returned guard, which owns `announced`, is dropped; `data`
        // only lends the references for as long as the guard is borrowed.
        let data = locks.map(|l| l.map(|l| unsafe { &*l.data.get() }));
        Some(GroupRead {
            data,
            _announced: announced,
        })
    }
}

/// Shared access to several shards of one group without their lock words.
pub struct GroupRead<'a, T, const N: usize> {
    data: [Option<&'a T>; N],
    _announced: Announcement,
}

impl<T, const N: usize> GroupRead<'_, T, N> {
    /// The data of each lock passed to `Group::read_unlocked`.
    pub fn data(&self) -> [Option<&T>; N] {
        self.data
    }
}

/// Shared access under the read lock.
pub struct ReadGuard<'a, T> {
    data: &'a T,
    _guard: RwLockReadGuard<'a, ()>,
}

impl<T> std::ops::Deref for ReadGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        self.data
    }
}

/// Write access; lowers the `writing` flag when dropped.
pub struct WriteGuard<'a, T> {
    data: &'a UnsafeCell<T>,
    writing: &'a AtomicBool,
    _guard: RwLockWriteGuard<'a, ()>,
}

impl<T> std::ops::Deref for WriteGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: this guard holds the write lock and no short reader is
        // inside (`ShardLock::write`), so nothing else accesses the data.
        unsafe { &*self.data.get() }
    }
}

impl<T> std::ops::DerefMut for WriteGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as for `deref`; `&mut self` makes this borrow unique.
        unsafe { &mut *self.data.get() }
    }
}

impl<T> Drop for WriteGuard<'_, T> {
    fn drop(&mut self) {
        // The lock itself is released after this, when `_guard` drops.
        readmit_readers(self.writing);
    }
}

impl<T> ShardLock<T> {
    pub fn new(value: T, group: Group) -> Self {
        ShardLock {
            lock: RwLock::new(()),
            data: UnsafeCell::new(value),
            writing: AtomicBool::new(false),
            lost: AtomicBool::new(false),
            group: group.0,
        }
    }

    fn id(&self) -> usize {
        self as *const Self as usize
    }

    #[inline(always)]
    fn check_not_lost(&self) {
        if self.lost.load(Relaxed) {
            lost_in_fork();
        }
    }

    /// Whether `lose_if_held` found the lock held at a fork.
    pub fn is_lost(&self) -> bool {
        self.lost.load(Relaxed)
    }

    /// In a forked child (see `fork.rs`): marks the lock lost if it was held
    /// (read or write) when the process forked, and says whether it was.
    pub fn lose_if_held(&self) -> bool {
        let locked = matches!(self.lock.try_write(), Err(TryLockError::WouldBlock));
        let held = locked || self.writing.load(Relaxed);
        if held {
            self.lost.store(true, Relaxed);
        }
        held
    }

    /// A read lock, for reads that are long, hold several shards or run
    /// user code.
    pub fn read(&self) -> ReadGuard<'_, T> {
        self.check_not_lost();
        // A panic under the write lock poisons the map itself (see
        // `ffi::support::on_map`); the lock's own poison flag adds nothing.
        let guard = self.lock.read().unwrap_or_else(|e| e.into_inner());
        ReadGuard {
            // SAFETY: the read lock is held while the reference lives (the
            // guard owns both), so no writer changes the data.
            data: unsafe { &*self.data.get() },
            _guard: guard,
        }
    }

    /// Runs a short read: `f` must not block, call user code or call into
    /// any map, since writers of this shard wait for it to return.
    #[inline]
    pub fn read_short<R>(&self, f: impl FnOnce(&T) -> R) -> R {
        if let Some(announced) = Announcement::new(self.id()) {
            if !writer_active(&self.writing) {
                // SAFETY: our announcement was visible before we saw the flag
                // down (Dekker pairing with `write`), so a writer that takes
                // the lock from now on waits until `announced` is dropped
                // (after `f` returns) before changing anything, and a writer
                // that lowered the flag made its changes visible to us
                // (Acquire above). No one mutates `T` while this shared
                // reference lives.
                let r = f(unsafe { &*self.data.get() });
                drop(announced);
                return r;
            }
            // Withdraw before waiting for the lock: the writer holding it
            // waits for this announcement to go.
            drop(announced);
        }
        f(&self.read())
    }

    /// The write lock; returns once no short reader is inside.
    pub fn write(&self) -> WriteGuard<'_, T> {
        self.check_not_lost();
        let guard = self.lock.write().unwrap_or_else(|e| e.into_inner());
        let slots = TABLE[..IN_USE.load(Acquire)].iter().map(|s| &s.reading);
        exclude_readers(&self.writing, slots, self.id(), self.group);
        WriteGuard {
            data: &self.data,
            writing: &self.writing,
            _guard: guard,
        }
    }
}

#[cold]
#[inline(never)]
fn lost_in_fork() -> ! {
    panic!("a shard lock held when the process forked cannot be taken in the child");
}

/// In a forked child (see `fork.rs`), where only the forking thread exists:
/// withdraws the announcements of the threads that did not survive and
/// frees their slots. Their short reads changed nothing, so the shards they
/// were reading stay usable.
pub(crate) fn after_fork_child() {
    let mine = LOCAL.with(|l| l.slot.get()).map(|s| s as *const Slot);
    for slot in &TABLE {
        if Some(slot as *const Slot) != mine {
            release(slot);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn short_reads_never_overlap_a_writer() {
        // A writer keeps two words equal under the lock; a short reader must
        // never see them differ.
        let l = Arc::new(ShardLock::new([0u64; 2], Group::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let reads = Arc::new(AtomicUsize::new(0));
        let readers: Vec<_> = (0..2)
            .map(|_| {
                let (l, stop, reads) = (l.clone(), stop.clone(), reads.clone());
                std::thread::spawn(move || {
                    let mut n = 0u64;
                    while !stop.load(Relaxed) {
                        let (a, b) = l.read_short(|v| {
                            let a = std::hint::black_box(v)[0];
                            for _ in 0..32 {
                                std::hint::spin_loop();
                            }
                            (a, std::hint::black_box(v)[1])
                        });
                        assert_eq!(a, b, "torn read");
                        n += 1;
                        reads.fetch_add(1, Relaxed);
                    }
                    n
                })
            })
            .collect();
        // Bounded by work, not time: enough writes with enough reads
        // racing them, however slow the machine.
        let mut i = 0u64;
        while i < 20_000 || reads.load(Relaxed) < 20_000 {
            i += 1;
            let mut g = l.write();
            g[0] = i;
            for _ in 0..32 {
                std::hint::spin_loop();
            }
            g[1] = i;
        }
        stop.store(true, Relaxed);
        let total: u64 = readers.into_iter().map(|t| t.join().unwrap()).sum();
        assert!(total >= 20_000);
        assert_eq!(l.read_short(|v| *v), [i, i]);
    }

    /// A thread whose first short read comes from a pthread-key destructor,
    /// while it exits, still gives its slot back (else 300 such threads would
    /// leave every slot taken).
    #[test]
    fn slots_claimed_during_thread_exit_are_given_back() {
        static LOCK: OnceLock<ShardLock<u32>> = OnceLock::new();
        extern "C" fn read_at_exit(_: *mut libc::c_void) {
            let l = LOCK.get_or_init(|| ShardLock::new(7, Group::new()));
            assert_eq!(l.read_short(|v| *v), 7);
        }
        crate::test_support::call_only_during_thread_exit(300, read_at_exit);
        let taken = TABLE.iter().filter(|s| s.taken.load(Acquire)).count();
        assert!(
            taken < 64,
            "{taken} slots still taken after the threads exited"
        );
    }

    /// In a forked child, a lock held at the fork is marked lost; taking
    /// it then panics (an error for the call) instead of waiting forever.
    #[test]
    fn a_lock_held_at_a_fork_panics_instead_of_waiting() {
        let l = ShardLock::new(0u32, Group::new());
        let held = l.write();
        assert!(l.lose_if_held());
        drop(held);
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| *l.write() = 1));
        assert!(r.is_err(), "a lost lock was taken");
        assert!(std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| *l.read())).is_err());
        // A short read of a shard nobody writes needs no lock, so it works.
        assert_eq!(l.read_short(|v| *v), 0);
        let free = ShardLock::new(0u32, Group::new());
        assert!(!free.lose_if_held(), "a free lock is not lost");
        *free.write() = 1;
    }

    #[test]
    fn a_panicking_short_read_withdraws_its_announcement() {
        let l = ShardLock::new(1u32, Group::new());
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            l.read_short(|_| panic!("inside a short read"))
        }));
        assert!(r.is_err());
        // A writer would wait forever if the announcement were still up:
        // give it a minute (a liveness bound, not a speed one), on another
        // thread, rather than hang the test.
        let l = std::sync::Arc::new(l);
        let (done, wait) = std::sync::mpsc::channel();
        let writer = l.clone();
        std::thread::spawn(move || {
            *writer.write() = 2;
            done.send(()).unwrap();
        });
        wait.recv_timeout(std::time::Duration::from_secs(60))
            .expect("the writer still waits for the panicked read");
        assert_eq!(l.read_short(|v| *v), 2);
    }
}
