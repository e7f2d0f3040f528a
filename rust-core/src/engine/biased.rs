//! A reader-writer lock whose short reads can skip the lock while no one
//! writes (read bias, after Dice and Kogan's BRAVO).
//!
//! Taking a read lock is two atomic read-modify-writes on a shared word: on
//! x86 each is a full barrier, so a loop of lookups cannot overlap one
//! lookup's cache misses with the next one's, and two reading cores bounce the
//! lock's cache line. While a shard is *biased*, a short read instead stores
//! the lock's address in its own thread's reader record, checks the bias flag
//! and reads — no shared write, no barrier instruction (see `fence`).
//!
//! A writer takes the underlying lock, and if the shard is biased clears the
//! flag, runs the heavy fence and waits until no reader record names this
//! lock. Readers that arrive later see the flag down and use the lock. The
//! bias comes back once `REBIAS_AFTER` locked reads passed without a write, so
//! write-heavy phases pay the lock as before and read-heavy phases pay one
//! revocation (one system call) per shard when they end.
//!
//! Only *short* reads may take the biased path: the closure runs while every
//! writer of this lock waits, so it must not block or call into any map (a
//! write to a lock this thread announced would wait for itself).

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering::*};
use std::sync::Mutex;

use parking_lot::{RwLock, RwLockReadGuard, RwLockWriteGuard};

use super::fence;

/// Locked reads without a write after which a lock is biased again.
const REBIAS_AFTER: u32 = 4096;

/// One thread's announcement: the address of the lock it is reading without
/// locking, or 0. Records are leaked and reused by later threads, so a writer
/// scanning them never races with a thread's exit.
#[repr(align(128))]
struct Reader {
    reading: AtomicUsize,
    in_use: AtomicBool,
}

static READERS: Mutex<Vec<&'static Reader>> = Mutex::new(Vec::new());

fn readers() -> std::sync::MutexGuard<'static, Vec<&'static Reader>> {
    READERS.lock().unwrap_or_else(|p| p.into_inner())
}

struct Local {
    me: &'static Reader,
    /// Set while this thread is inside a biased read (they never nest).
    busy: Cell<bool>,
}

impl Drop for Local {
    fn drop(&mut self) {
        self.me.reading.store(0, Release);
        self.me.in_use.store(false, Release);
    }
}

thread_local! {
    static LOCAL: Local = Local { me: claim(), busy: Cell::new(false) };
}

fn claim() -> &'static Reader {
    let mut all = readers();
    for r in all.iter() {
        if r.in_use
            .compare_exchange(false, true, AcqRel, Relaxed)
            .is_ok()
        {
            return r;
        }
    }
    let r: &'static Reader = Box::leak(Box::new(Reader {
        reading: AtomicUsize::new(0),
        in_use: AtomicBool::new(true),
    }));
    all.push(r);
    r
}

pub struct BiasedRwLock<T> {
    lock: RwLock<T>,
    biased: AtomicBool,
    quiet_reads: AtomicU32,
}

/// Clears the thread's announcement when a biased read ends, even by a panic.
struct Announced {
    me: &'static Reader,
}

impl Drop for Announced {
    fn drop(&mut self) {
        // Release: the reads made under the announcement happen before a
        // writer's Acquire load that sees the record cleared.
        self.me.reading.store(0, Release);
        let _ = LOCAL.try_with(|l| l.busy.set(false));
    }
}

impl<T> BiasedRwLock<T> {
    pub fn new(value: T) -> Self {
        BiasedRwLock {
            lock: RwLock::new(value),
            biased: AtomicBool::new(false),
            quiet_reads: AtomicU32::new(0),
        }
    }

    fn id(&self) -> usize {
        self as *const Self as usize
    }

    /// A read lock for long or callback-running reads (never biased).
    pub fn read(&self) -> RwLockReadGuard<'_, T> {
        self.lock.read()
    }

    /// The write lock; revokes the bias first if readers may be inside.
    pub fn write(&self) -> RwLockWriteGuard<'_, T> {
        let g = self.lock.write();
        if self.biased.load(Relaxed) {
            self.revoke();
        }
        self.quiet_reads.store(0, Relaxed);
        g
    }

    fn revoke(&self) {
        self.biased.store(false, Relaxed);
        // Pairs with `fence::light` in `announce`: from here on, a reader
        // either sees the flag down or its announcement is visible below.
        fence::heavy();
        let id = self.id();
        for r in readers().iter() {
            let mut spins = 0u32;
            // Acquire: the reader's reads happen before our writes.
            while r.reading.load(Acquire) == id {
                spins += 1;
                if spins < 64 {
                    std::hint::spin_loop();
                } else {
                    std::thread::yield_now();
                }
            }
        }
    }

    fn announce(&self) -> Option<Announced> {
        let me = LOCAL
            .try_with(|l| {
                if l.busy.replace(true) {
                    return None;
                }
                Some(l.me)
            })
            .ok()
            .flatten()?;
        me.reading.store(self.id(), Relaxed);
        fence::light();
        let announced = Announced { me };
        // Acquire: pairs with the Release that raised the bias, after which
        // the last writer's changes are visible.
        if self.biased.load(Acquire) {
            Some(announced)
        } else {
            None
        }
    }

    /// Runs a short read `f`; see the module comment for what `f` may do.
    pub fn read_short<R>(&self, f: impl FnOnce(&T) -> R) -> R {
        if let Some(_announced) = self.announce() {
            // SAFETY: the bias flag was up after our announcement was made
            // visible (`fence::light`/`fence::heavy` pairing), so any writer
            // that takes the lock from now on waits in `revoke` until
            // `_announced` is dropped, and no writer held the lock when the
            // flag was raised (it is raised under a read lock and cleared by
            // every writer before it writes). Nothing mutates `T` while the
            // reference lives.
            return f(unsafe { &*self.lock.data_ptr() });
        }
        let g = self.lock.read();
        if self.quiet_reads.fetch_add(1, Relaxed) >= REBIAS_AFTER && !self.biased.load(Relaxed) {
            // Under the read lock no writer is inside; the next one revokes.
            self.biased.store(true, Release);
        }
        f(&g)
    }

    /// Whether short reads currently skip the lock (statistics).
    pub fn is_biased(&self) -> bool {
        self.biased.load(Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn bias_comes_after_quiet_reads_and_goes_with_a_write() {
        let l = BiasedRwLock::new(0u64);
        for _ in 0..=REBIAS_AFTER {
            assert_eq!(l.read_short(|v| *v), 0);
        }
        assert!(l.is_biased());
        *l.write() = 7;
        assert!(!l.is_biased());
        assert_eq!(l.read_short(|v| *v), 7);
    }

    #[test]
    fn writers_never_overlap_biased_readers() {
        // A writer keeps two words equal under the lock; a reader must never
        // see them differ, whatever path it takes.
        let l = Arc::new(BiasedRwLock::new([0u64; 2]));
        let stop = Arc::new(AtomicBool::new(false));
        let readers: Vec<_> = (0..2)
            .map(|_| {
                let (l, stop) = (l.clone(), stop.clone());
                std::thread::spawn(move || {
                    let mut n = 0u64;
                    while !stop.load(Relaxed) {
                        let (a, b) = l.read_short(|v| {
                            let a = v[0];
                            std::hint::spin_loop();
                            (a, v[1])
                        });
                        assert_eq!(a, b, "torn read");
                        n += 1;
                    }
                    n
                })
            })
            .collect();
        for i in 1..=2000u64 {
            {
                let mut g = l.write();
                g[0] = i;
                std::hint::spin_loop();
                g[1] = i;
            }
            // Let the readers re-bias now and then.
            if i % 200 == 0 {
                std::thread::sleep(std::time::Duration::from_millis(2));
            }
        }
        stop.store(true, Relaxed);
        let total: u64 = readers.into_iter().map(|t| t.join().unwrap()).sum();
        assert!(total > 0);
    }
}
