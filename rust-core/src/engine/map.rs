//! The concurrent map: `SHARDS` shards chosen by the top bits of `h1`, each a
//! `ShardLock` (a reader-writer lock whose short reads skip the lock word)
//! over a `ShardData`, plus change counters (`counters`).
//!
//! Iteration order is global hash order (shard-major, then slot order), so a
//! position `(h1, h2)` names "where a scan is" independently of any table.
#![forbid(unsafe_code)]

use std::mem::{ManuallyDrop, MaybeUninit};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use super::alloc::{self, TryArc};
use super::bytes::copy_small_uninit;
use super::counters::Counters;
use super::hash::{fixed_keys, random_seed, KeyHasher, Pos, WEAK_HASH_ENV};
use super::pool;
use super::shard_lock::{Group, ReadGuard, ShardLock, WriteGuard};
use super::table::{
    BatchShare, Entry, Prepared, Relaid, ShardData, MAX_KEY_LEN, MAX_VALUE_LEN, SHARDS, SHARD_BITS,
    SLOT_BYTES,
};
use crate::status::{Error, McStatus, Result};

/// Map construction options.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Fixed hash seed: maps of one process built with the same seed lay
    /// keys out identically (`hash::fixed_keys`); `None` draws a random one.
    pub seed: Option<u64>,
    /// Test-only hasher that keeps 3 bits of `h1`, forcing long runs of
    /// equal hashes. `Map::new` refuses it with MC_ERR_INVALID_ARGUMENT
    /// unless the environment has `MAPCORE_ALLOW_WEAK_HASH=1`.
    pub weak_hash_for_testing: bool,
    /// Entries to reserve room for up front.
    pub capacity: usize,
}

#[repr(align(128))]
struct Shard {
    data: ShardLock<ShardData>,
}

/// Most entries one `reserve` (or `Options::capacity`) may ask room for:
/// beyond it the shards' tables (2^28 slots each) could not hold them.
pub(crate) const MAX_RESERVE: usize = 1 << 31;
/// Reservations whose slot tables take more than this are first checked
/// against the memory the system has available (see `Map::reserve`).
const RESERVE_CHECK_BYTES: usize = 64 << 20;

/// Storage statistics (see `Map::stats`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub entries: usize,
    pub slots: usize,
    pub arena_bytes: usize,
    pub arena_chunks: usize,
    /// Slot pages copied because a snapshot shared them.
    pub cow_pages: usize,
}

impl Stats {
    /// Bytes held by slot tables and arenas (capacity, not payload).
    pub fn memory_bytes(&self) -> usize {
        self.slots * super::table::SLOT_BYTES + self.arena_bytes
    }
}

/// Where a scan stands.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Cursor {
    pub started: bool,
    pub done: bool,
    /// The entry last returned is still there, not removed through this cursor.
    pub current: bool,
    /// Meaningful once `started`.
    pub at: At,
}

/// Where a started scan resumes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum At {
    /// After the entry at this position, wherever the layout has put it
    /// since: what a cursor-mode scan keeps, valid across any change.
    Pos(Pos),
    /// At slot `next` of shard `shard`; the current entry, if any, is at
    /// `next - 1`. Only a strict scan keeps this: its stamp proves that the
    /// layout is the one the slot numbers refer to, and resuming costs no
    /// hashing (a position needs both keyed hashes of the last key, and a
    /// walk of its run to find it again).
    Slot { shard: usize, next: usize },
}

impl Default for At {
    fn default() -> At {
        At::Pos(Pos::default())
    }
}

impl Cursor {
    /// The shard of the entry last returned (or of the place sought).
    fn shard(&self) -> usize {
        match self.at {
            At::Pos(p) => shard_of(p.h1),
            At::Slot { shard, .. } => shard,
        }
    }
}

/// How a scan call ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scan {
    /// `n` entries were passed to the visitor (n may be 0 if the first did not fit).
    Entries(usize),
    /// The scan is complete; nothing was passed to the visitor.
    Done,
}

pub struct Map {
    shards: Box<[Shard]>,
    /// Names this map's shard locks for batch reads spanning several.
    group: Group,
    hasher: KeyHasher,
    /// Secret for hiding positions in encoded tokens.
    secret: [u64; 2],
    poisoned: AtomicBool,
    /// Live snapshots of this map: while there are none, no page of its
    /// tables is shared, and a removal allocates nothing.
    snapshots: TryArc<AtomicUsize>,
    counters: &'static Counters,
}

impl Drop for Map {
    fn drop(&mut self) {
        Counters::give_back(self.counters);
        // In a forked child, a map whose lock was held at the fork may be
        // half-changed by a thread that no longer exists: dropping its
        // tables could free what is not allocated. Its memory is leaked.
        if self.shards.iter().any(|s| s.data.is_lost()) {
            std::mem::forget(std::mem::take(&mut self.shards));
        }
    }
}

pub fn check_key(key: &[u8]) -> Result<()> {
    if key.len() > MAX_KEY_LEN {
        return Err(Error::formatted(
            McStatus::MC_ERR_TOO_LARGE,
            format_args!("key is {} bytes; the limit is {MAX_KEY_LEN}", key.len()),
        ));
    }
    Ok(())
}

pub fn check_value(val: &[u8]) -> Result<()> {
    if val.len() > MAX_VALUE_LEN {
        return Err(Error::formatted(
            McStatus::MC_ERR_TOO_LARGE,
            format_args!("value is {} bytes; the limit is {MAX_VALUE_LEN}", val.len()),
        ));
    }
    Ok(())
}

/// The bit of `h1`'s shard in a shard mask (see `Map::read_many`).
#[inline]
pub fn shard_bit(h1: u64) -> u32 {
    1 << shard_of(h1)
}

#[inline]
pub fn shard_of(h1: u64) -> usize {
    (h1 >> (64 - SHARD_BITS)) as usize
}

/// Where a scan puts the entries it passes over: `Visit` hands each one to
/// a callback, `Pack` copies them into a caller's buffer.
pub(crate) trait Sink {
    /// Takes entries of `data` from the occupied slot `start` on, in order,
    /// until the sink is full or refuses one. Returns the last slot taken
    /// and whether the sink stopped inside this shard (false: the shard
    /// ended first).
    fn take(&mut self, data: &ShardData, start: usize) -> (Option<usize>, bool);
    /// Entries taken so far.
    fn taken(&self) -> usize;
}

/// A `Sink` passing up to `max` entries to `f`, which returns false for an
/// entry it cannot take.
pub(crate) struct Visit<'f, F> {
    f: &'f mut F,
    max: usize,
    taken: usize,
}

impl<'f, F: FnMut(&Entry<'_>) -> bool> Visit<'f, F> {
    pub fn new(max: usize, f: &'f mut F) -> Self {
        Visit { f, max, taken: 0 }
    }
}

impl<F: FnMut(&Entry<'_>) -> bool> Sink for Visit<'_, F> {
    fn take(&mut self, data: &ShardData, start: usize) -> (Option<usize>, bool) {
        let mut last = None;
        // A local count, kept in a register, not one written through `self`.
        let (mut n, max) = (self.taken, self.max);
        let f = &mut *self.f;
        let finished = data.visit_from(start, max - n, |i, e| {
            if n >= max || !f(&e) {
                return false;
            }
            n += 1;
            last = Some(i);
            // Stop once full rather than at the next entry: finding it
            // read its record, and past this shard's end took the next
            // shard's lock, for every single `next`.
            n < max
        });
        self.taken = n;
        (last, !finished)
    }

    fn taken(&self) -> usize {
        self.taken
    }
}

/// Bytes before each packed entry: its key length, then its value length,
/// as native-endian `u32`s.
pub(crate) const PACKED_HEADER: usize = 8;

/// A `Sink` copying up to `max` entries into a buffer, each as a
/// `PACKED_HEADER` followed by its key and value.
///
/// A batch is the hottest scan there is, so it has its own sink rather than
/// a callback: the loop keeps the buffer's unfilled tail and the counts in
/// locals, and writes them back once per shard (a callback's state lives
/// behind a pointer, loaded and stored again for every entry).
pub(crate) struct Pack<'b> {
    /// The unfilled tail, possibly uninitialised (a C caller's buffer): only
    /// written.
    rest: &'b mut [MaybeUninit<u8>],
    used: usize,
    max: usize,
    taken: usize,
    first_need: usize,
}

impl<'b> Pack<'b> {
    pub fn new(buf: &'b mut [MaybeUninit<u8>], max: usize) -> Self {
        Pack {
            rest: buf,
            used: 0,
            max,
            taken: 0,
            first_need: 0,
        }
    }

    /// Bytes of the buffer filled.
    pub fn used(&self) -> usize {
        self.used
    }

    /// With nothing taken because the first entry did not fit: the bytes it
    /// needs (0 otherwise).
    pub fn first_need(&self) -> usize {
        self.first_need
    }
}

impl Sink for Pack<'_> {
    fn take(&mut self, data: &ShardData, start: usize) -> (Option<usize>, bool) {
        let mut last = None;
        let (mut n, max) = (self.taken, self.max);
        let mut rest = std::mem::take(&mut self.rest);
        let room = rest.len();
        let mut need = 0;
        let finished = data.visit_from(start, max - n, |i, e| {
            let body = e.body();
            let rec = PACKED_HEADER + body.len();
            if n >= max {
                return false;
            }
            if rec > rest.len() {
                if n == 0 {
                    need = rec;
                }
                return false;
            }
            let (dst, tail) = std::mem::take(&mut rest).split_at_mut(rec);
            let (head, dst) = dst.split_at_mut(PACKED_HEADER);
            let lens = (e.key.len() as u32, e.value.len() as u32);
            copy_small_uninit(&mut head[..4], &lens.0.to_ne_bytes());
            copy_small_uninit(&mut head[4..], &lens.1.to_ne_bytes());
            copy_small_uninit(dst, body);
            rest = tail;
            n += 1;
            last = Some(i);
            n < max
        });
        self.used += room - rest.len();
        self.rest = rest;
        self.taken = n;
        if need > 0 {
            self.first_need = need;
        }
        (last, !finished)
    }

    fn taken(&self) -> usize {
        self.taken
    }
}

fn pos_at(data: &ShardData, hasher: &KeyHasher, i: usize) -> Pos {
    hasher.pos(data.entry_at(i).0)
}

/// The guards a scan holds: those of shards `first..end`, released together
/// when it ends. An array, not a `Vec` (a single `next` would allocate for
/// it), and only the visited range is walked on release: dropping the whole
/// array tested all `SHARDS` entries, on every call.
struct Held<G> {
    guards: ManuallyDrop<[Option<G>; SHARDS]>,
    first: usize,
    end: usize,
}

impl<G> Drop for Held<G> {
    fn drop(&mut self) {
        // Entries outside the range were never filled: nothing is leaked.
        for g in &mut self.guards[self.first..self.end] {
            drop(g.take());
        }
    }
}

/// Runs a scan over a sequence of shards. `shard(s)` gives access to shard `s`
/// (locking it if needed) or an error that aborts the scan when nothing was
/// consumed yet; with entries consumed it ends the call early instead.
/// `keep_slot` leaves the cursor on a slot rather than a position: only for
/// scans whose next call sees the same layout or fails (strict scans of a
/// map, which check the stamp, and scans of a snapshot, which never changes).
fn scan_with<'a, G: std::ops::Deref<Target = ShardData> + 'a>(
    hasher: &KeyHasher,
    cur: &mut Cursor,
    keep_slot: bool,
    sink: &mut impl Sink,
    mut shard: impl FnMut(usize) -> Result<G>,
) -> Result<Scan> {
    if cur.done {
        return Ok(Scan::Done);
    }
    let first = if cur.started { cur.shard() } else { 0 };
    // Where to start in the first shard; later shards start at their first entry.
    let mut resume = cur.started.then_some(cur.at);
    // The guards of every shard visited, held to the end: one call sees one
    // state.
    let mut held = Held {
        guards: ManuallyDrop::new([const { None }; SHARDS]),
        first,
        end: first,
    };
    let mut last: Option<(usize, usize)> = None;
    let mut exhausted = true;
    for s in first..SHARDS {
        let g = match shard(s) {
            Ok(g) => g,
            Err(e) if sink.taken() == 0 => return Err(e),
            Err(_) => {
                exhausted = false;
                break;
            }
        };
        held.end = s + 1;
        let data: &ShardData = held.guards[s].insert(g);
        let start = match resume.take() {
            None => data.occupied_from(0),
            Some(At::Pos(p)) => data.seek_after(hasher, Some(p)),
            Some(At::Slot { next, .. }) => data.occupied_from(next),
        };
        let Some(start) = start else {
            continue;
        };
        let (l, stopped) = sink.take(data, start);
        if let Some(i) = l {
            last = Some((s, i));
        }
        if stopped {
            exhausted = false;
            break;
        }
    }
    match last {
        Some((h, i)) => {
            cur.at = if keep_slot {
                At::Slot {
                    shard: h,
                    next: i + 1,
                }
            } else {
                At::Pos(pos_at(held.guards[h].as_deref().expect("held"), hasher, i))
            };
            cur.started = true;
            cur.current = true;
            Ok(Scan::Entries(sink.taken()))
        }
        None if exhausted => {
            cur.done = true;
            cur.current = false;
            Ok(Scan::Done)
        }
        None => Ok(Scan::Entries(0)),
    }
}

impl Map {
    /// A new map; MC_ERR_OUT_OF_MEMORY when any of its parts cannot be
    /// allocated (nothing is kept then).
    pub fn new(opts: &Options) -> Result<Map> {
        if opts.weak_hash_for_testing && !super::env::is_one(WEAK_HASH_ENV) {
            return Err(Error::new(
                McStatus::MC_ERR_INVALID_ARGUMENT,
                "the weak test hash is refused unless MAPCORE_ALLOW_WEAK_HASH=1 is set in the environment",
            ));
        }
        let (seed, h2_key) = match opts.seed {
            Some(s) => fixed_keys(s),
            None => (random_seed(), [random_seed(), random_seed()]),
        };
        let group = Group::new();
        let mut shards = alloc::try_vec(SHARDS).ok_or_else(|| oom("cannot allocate a map"))?;
        for _ in 0..SHARDS {
            shards.push(Shard {
                data: ShardLock::new(ShardData::try_new()?, group),
            });
        }
        let snapshots = TryArc::try_new(AtomicUsize::new(0))
            .map_err(|_| oom("cannot allocate a map's snapshot count"))?;
        let counters = Counters::take().ok_or_else(|| oom("cannot allocate a map's counters"))?;
        let map = Map {
            shards: shards.into_boxed_slice(),
            group,
            hasher: KeyHasher::new(seed, h2_key, opts.weak_hash_for_testing),
            // Never derived from the (possibly fixed, public) hash seed.
            secret: [random_seed(), random_seed()],
            poisoned: AtomicBool::new(false),
            snapshots,
            counters,
        };
        if opts.capacity > 0 {
            map.reserve(opts.capacity)?;
        }
        Ok(map)
    }

    pub fn hasher(&self) -> &KeyHasher {
        &self.hasher
    }

    pub fn secret(&self) -> [u64; 2] {
        self.secret
    }

    pub fn is_poisoned(&self) -> bool {
        self.poisoned.load(Ordering::Relaxed)
    }

    pub fn poison(&self) {
        self.poisoned.store(true, Ordering::Relaxed);
    }

    /// In a forked child (see `fork.rs`): poisons the map if one of its
    /// shard locks was held when the process forked (its holder may not
    /// exist here), and makes those locks panic rather than wait when
    /// taken. True if it did.
    pub(crate) fn lose_locks_held_at_fork(&self) -> bool {
        let mut lost = false;
        for shard in self.shards.iter() {
            lost |= shard.data.lose_if_held();
        }
        if lost {
            self.poison();
        }
        lost
    }

    /// The structural generation: the sum of the shards' structural counters.
    pub fn generation(&self) -> u64 {
        self.counters.structural()
    }

    /// The map's change counters (see `counters`).
    pub fn counters(&self) -> &'static Counters {
        self.counters
    }

    /// Counts a structural change of shard `s`; only with `s` write-locked.
    fn bump(&self, s: usize) {
        self.counters.count_structural(s);
    }

    /// Counts a value replaced; only with the shard write-locked.
    fn touch(&self) {
        self.counters.count_change();
    }

    /// Calls `f` with the value of `key` while the entry is guaranteed valid.
    pub fn get_with<R>(&self, key: &[u8], f: impl FnOnce(&[u8]) -> R) -> Option<R> {
        let h1 = self.hasher.h1(key);
        let g = self.shards[shard_of(h1)].data.read();
        g.get(&self.hasher, h1, key).map(f)
    }

    /// `get_with` for a short `f` (a copy, a check): it must not block, run
    /// user code or call into any map. Such reads skip the shard's lock word,
    /// so threads reading the same shards do not contend on it.
    #[inline]
    pub fn get_short<R>(&self, key: &[u8], f: impl FnOnce(&[u8]) -> R) -> Option<R> {
        let h1 = self.hasher.h1(key);
        self.shards[shard_of(h1)]
            .data
            .read_short(|d| d.get(&self.hasher, h1, key).map(f))
    }

    /// A cursor standing on `key`'s position, as if `key` had just been
    /// returned (whether or not it is present).
    pub fn cursor_at(&self, key: &[u8]) -> Cursor {
        Cursor {
            started: true,
            done: false,
            current: true,
            at: At::Pos(Pos {
                h1: self.hasher.h1(key),
                h2: self.hasher.h2(key),
            }),
        }
    }

    pub fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.get_short(key, |v| v.to_vec())
    }

    pub fn contains(&self, key: &[u8]) -> bool {
        self.get_short(key, |_| ()).is_some()
    }

    /// Inserts or overwrites; returns true if the key was new.
    pub fn insert(&self, key: &[u8], val: &[u8]) -> Result<bool> {
        check_key(key)?;
        check_value(val)?;
        let h1 = self.hasher.h1(key);
        let s = shard_of(h1);
        let mut g = self.shards[s].data.write();
        let r = g.insert(&self.hasher, h1, key, val);
        // A failed insert may already have re-laid the table: count it as
        // structural (a spurious invalidation is allowed, a missed one is not).
        if matches!(r, Ok(false)) {
            self.touch();
        } else {
            self.bump(s);
        }
        r
    }

    /// Removes `key`; returns true if it was present. Fails, changing
    /// nothing, only when a page a snapshot shares cannot be copied.
    pub fn remove(&self, key: &[u8]) -> Result<bool> {
        let h1 = self.hasher.h1(key);
        let s = shard_of(h1);
        let mut g = self.shards[s].data.write();
        let removed = g.remove(&self.hasher, h1, key)?;
        if removed {
            self.bump(s);
        }
        Ok(removed)
    }

    /// Entry count, read under all shard locks at one instant.
    pub fn len(&self) -> usize {
        let guards: [_; SHARDS] = std::array::from_fn(|s| self.shards[s].data.read());
        guards.iter().map(|g| g.entries()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Removes every entry, all shards at one instant. The empty shards
    /// are built first, before any lock is taken: MC_ERR_OUT_OF_MEMORY
    /// when they cannot be, with the map untouched; after that nothing
    /// can fail. The old contents are freed after the locks are let go.
    pub fn clear(&self) -> Result<()> {
        let mut fresh: [Option<ShardData>; SHARDS] = Default::default();
        for f in &mut fresh {
            *f = Some(ShardData::try_new()?);
        }
        let mut guards: [_; SHARDS] = std::array::from_fn(|s| self.shards[s].data.write());
        for (s, g) in guards.iter_mut().enumerate() {
            std::mem::swap(&mut **g, fresh[s].as_mut().expect("built above"));
            self.bump(s);
        }
        drop(guards);
        drop(fresh);
        Ok(())
    }

    /// Makes room for `additional` more entries. Always counted as a
    /// structural change, so strict tokens behave the same whether or not a
    /// table actually had to be re-laid.
    pub fn reserve(&self, additional: usize) -> Result<()> {
        if additional > MAX_RESERVE {
            return Err(Error::new(
                McStatus::MC_ERR_TOO_LARGE,
                "room asked for more than 2^31 entries",
            ));
        }
        // Tables are filled with empty slots at once, so a reservation the
        // system cannot back would get the process killed by the kernel
        // (memory is overcommitted) rather than fail: refuse it first.
        let table_bytes = (additional / 5).saturating_mul(8 * SLOT_BYTES);
        if table_bytes > RESERVE_CHECK_BYTES {
            if let Some(avail) = pool::memory_available().filter(|&a| table_bytes > a) {
                return Err(Error::formatted(
                    McStatus::MC_ERR_OUT_OF_MEMORY,
                    format_args!(
                        "room for {additional} entries needs {} MiB of slot tables; the system has {} MiB available",
                        table_bytes >> 20,
                        avail >> 20
                    ),
                ));
            }
        }
        // Keys spread evenly over shards; a margin absorbs the statistical skew.
        let per = additional / SHARDS;
        let per = per + (per as f64).sqrt() as usize * 4 + 8;
        // All or nothing: every shard's new table is built (under all the
        // write locks) before any is installed, so a failure leaves the map
        // exactly as it was, generation included. The price: at the peak,
        // the old and new tables of every growing shard are held at once.
        let mut guards: [_; SHARDS] = std::array::from_fn(|s| self.shards[s].data.write());
        let mut built: [Option<Relaid>; SHARDS] = Default::default();
        for (g, b) in guards.iter().zip(&mut built) {
            *b = g.reserved_table(per)?;
        }
        for (s, (g, b)) in guards.iter_mut().zip(built).enumerate() {
            if let Some(r) = b {
                g.install(r);
            }
            g.keep_room(per);
            self.bump(s);
        }
        Ok(())
    }

    /// Releases unused capacity. Re-laying a table is structural.
    pub fn shrink_to_fit(&self) -> Result<()> {
        // Every shard, even after one fails: each then ends its reservation
        // and releases what it can; the first error is reported.
        let mut result = Ok(());
        for (s, shard) in self.shards.iter().enumerate() {
            let mut g = shard.data.write();
            // Always structural, like reserve.
            let r = g.shrink_to_fit();
            self.bump(s);
            if result.is_ok() {
                result = r.map(drop);
            }
        }
        result
    }

    /// Point-in-time copy-on-write view: clones page pointers, not entries.
    /// MC_ERR_OUT_OF_MEMORY when the pointer lists cannot be allocated;
    /// the map is untouched either way.
    pub fn snapshot(&self) -> Result<SnapshotData> {
        let mut shards = alloc::try_vec(SHARDS).ok_or_else(|| oom("cannot allocate a snapshot"))?;
        let guards: [_; SHARDS] = std::array::from_fn(|s| self.shards[s].data.read());
        // Counted before any page is shared, while the read locks keep
        // writers out: a writer that then takes a shard's lock sees it.
        self.snapshots.fetch_add(1, Ordering::Relaxed);
        let live = SnapshotCount(self.snapshots.clone());
        for g in &guards {
            match g.try_clone() {
                Ok(c) => shards.push(c),
                Err(e) => {
                    // The copies let go of their pages before the count
                    // drops, and both before the locks go.
                    drop(shards);
                    drop(live);
                    return Err(e);
                }
            }
        }
        let len = shards.iter().map(|s| s.entries()).sum();
        Ok(SnapshotData {
            shards,
            hasher: self.hasher.clone(),
            len,
            _live: live,
        })
    }

    /// Removes every entry for which `keep` returns false, as one atomic
    /// step: every shard is write-locked for the whole call. `keep` is
    /// called once per entry. All or nothing on running out of memory.
    ///
    /// Deleting allocates only when a snapshot shares a slot page the
    /// delete writes (it copies that page). Without a live snapshot (which
    /// the locks keep from appearing) no page is shared, so each shard is
    /// filtered as it is walked. With one, `keep` first runs over every
    /// shard, recording the doomed slots in one bit per slot (allocated
    /// fallibly: slots / 8 bytes in all, an eighth of what the slot tables
    /// take), then every shard copies the shared pages its deletes will
    /// write (`ShardData::prepare_removals`), and only then does anything
    /// get deleted, allocating nothing. On failure `keep` may have been
    /// called on entries, but nothing was deleted.
    pub fn retain(&self, mut keep: impl FnMut(&[u8], &[u8]) -> bool) -> Result<usize> {
        // While shard 0 is write-locked no snapshot can start sharing pages:
        // a snapshot read-locks every shard, in ascending order, before it
        // counts itself and shares any.
        let mut cur = self.shards[0].data.write();
        // Acquire: pairs with the count's decrement after a dropped
        // snapshot let go of its pages (as in `remove_many`).
        if self.snapshots.load(Ordering::Acquire) > 0 {
            drop(cur);
            return self.retain_shared(keep);
        }
        // No page is shared, so deleting allocates nothing and the shards
        // are filtered one at a time, hand over hand: shard s + 1 is locked
        // before shard s is released, so a snapshot that starts meanwhile
        // cannot overtake the call and share a page it has yet to write.
        // Other calls wait only for the shard being filtered.
        let mut removed = 0;
        for s in 0..SHARDS {
            let mut here = 0;
            let mut i = 0;
            let no_alloc = alloc::NoAlloc::enter();
            while let Some(idx) = cur.occupied_from(i) {
                let (k, v) = cur.entry_at(idx);
                if keep(k, v) {
                    i = idx + 1;
                } else {
                    cur.remove_at(idx)?;
                    here += 1;
                    i = idx;
                }
            }
            drop(no_alloc);
            if here > 0 {
                cur.settle();
                self.bump(s);
            }
            removed += here;
            if s + 1 < SHARDS {
                // The next guard is taken before the assignment drops this one.
                cur = self.shards[s + 1].data.write();
            }
        }
        Ok(removed)
    }

    /// `retain` while a snapshot shares pages: deletes may need to copy
    /// them, so every shard is locked for the whole call, the predicate runs
    /// over every entry first (the doomed ones recorded in a bit per slot),
    /// the pages the deletes will write are copied, and only then does
    /// anything get deleted: out of memory changes nothing.
    fn retain_shared(&self, mut keep: impl FnMut(&[u8], &[u8]) -> bool) -> Result<usize> {
        let mut guards = self.lock_write_many(u32::MAX >> (32 - SHARDS));
        let mut removed = 0;
        let mut doomed: Vec<Vec<u64>> =
            alloc::try_vec(SHARDS).ok_or_else(|| oom("cannot allocate a retain's slot bits"))?;
        for g in guards.iter().flatten() {
            let words = g.slots().div_ceil(64);
            let mut bits =
                alloc::try_vec(words).ok_or_else(|| oom("cannot allocate a retain's slot bits"))?;
            bits.resize(words, 0u64);
            let mut i = 0;
            while let Some(idx) = g.occupied_from(i) {
                let (k, v) = g.entry_at(idx);
                if !keep(k, v) {
                    bits[idx / 64] |= 1 << (idx % 64);
                }
                i = idx + 1;
            }
            doomed.push(bits);
        }
        for (g, bits) in guards.iter_mut().flatten().zip(&doomed) {
            g.prepare_removals(bits)?;
        }
        let no_alloc = alloc::NoAlloc::enter();
        let mut here = [0usize; SHARDS];
        for ((g, bits), n) in guards.iter_mut().flatten().zip(&doomed).zip(&mut here) {
            // From the last slot down: a delete shifts only later slots.
            for (w, &word) in bits.iter().enumerate().rev() {
                let mut word = word;
                while word != 0 {
                    let b = 63 - word.leading_zeros() as usize;
                    word &= !(1 << b);
                    // Prepared: cannot fail (reported rather than assumed).
                    g.remove_at(w * 64 + b)?;
                    *n += 1;
                }
            }
        }
        drop(no_alloc);
        for (s, (g, &n)) in guards.iter_mut().flatten().zip(&here).enumerate() {
            if n > 0 {
                g.settle();
                self.bump(s);
            }
            removed += n;
        }
        Ok(removed)
    }

    /// Runs `f` with read access to every shard in `mask` (bit `s` for
    /// shard `s`: see `shard_bit`), so that `f` observes one consistent
    /// state: without their lock words while no writer is active on them (a
    /// group announcement, see `shard_lock`), else under all their read
    /// locks, taken in shard order. `f` must be short: copy, compare, no
    /// user code and no map calls.
    pub fn read_many<R>(&self, mask: u32, f: impl FnOnce(&ManyView<'_>) -> R) -> R {
        let locks: [Option<&ShardLock<ShardData>>; SHARDS] =
            std::array::from_fn(|s| (mask & (1 << s) != 0).then(|| &self.shards[s].data));
        if let Some(unlocked) = self.group.read_unlocked(locks) {
            return f(&self.many_view(unlocked.data()));
        }
        let guards: [Option<ReadGuard<'_, ShardData>>; SHARDS] =
            std::array::from_fn(|s| locks[s].map(ShardLock::read));
        let data = std::array::from_fn(|s| guards[s].as_deref());
        f(&self.many_view(data))
    }

    /// The view `read_many` hands out.
    fn many_view<'a>(&'a self, shards: [Option<&'a ShardData>; SHARDS]) -> ManyView<'a> {
        ManyView {
            shards,
            hasher: &self.hasher,
        }
    }

    /// The shards `keys` fall in, as a mask for `read_many`.
    fn shard_mask<'k>(&self, keys: impl Iterator<Item = &'k [u8]>) -> u32 {
        keys.fold(0, |m, k| m | shard_bit(self.hasher.h1(k)))
    }

    /// Inserts every `(key, value)` pair under all involved shard locks at
    /// once. Returns the number of new keys. Sizes are checked before anything
    /// changes. All or nothing on running out of memory, snapshot or not:
    /// every involved shard first makes room for its share of the batch
    /// (see `ShardData::prepare_writes`: table growth, empty slots, arena
    /// room for every record, private copies of the slot pages a snapshot
    /// shares that the writes will change), and then the writes allocate
    /// nothing. (A refused position collision, astronomically rare, stops
    /// the batch part-way.) Needs no scratch memory proportional to the
    /// batch (the arena room is where the records go): the pairs are walked
    /// for sizes and shards, per involved shard only to count new keys when
    /// its table may grow or to size its big records, once more under a
    /// snapshot to find the pages to copy, then once to insert.
    pub fn insert_many<'k>(
        &self,
        pairs: impl Iterator<Item = (&'k [u8], &'k [u8])> + Clone,
    ) -> Result<usize> {
        let mut mask = 0u32;
        let mut share = [BatchShare::default(); SHARDS];
        for (k, v) in pairs.clone() {
            check_key(k)?;
            check_value(v)?;
            let s = shard_of(self.hasher.h1(k));
            mask |= 1 << s;
            share[s].add(super::table::record_bytes(k.len(), v.len()));
        }
        let mut guards = self.lock_write_many(mask);
        let mut changed = 0u32;
        // Acquire: pairs with the count's decrement after a dropped
        // snapshot let go of its pages (as in `remove_many`).
        let shared = self.snapshots.load(Ordering::Acquire) > 0;
        let mut room: [Option<Prepared>; SHARDS] = Default::default();
        for s in (0..SHARDS).filter(|s| mask & (1 << s) != 0) {
            let keys = pairs
                .clone()
                .map(|(k, v)| {
                    (
                        self.hasher.h1(k),
                        k,
                        super::table::record_bytes(k.len(), v.len()),
                    )
                })
                .filter(|&(h, _, _)| shard_of(h) == s);
            let g = guards[s].as_mut().expect("locked");
            // On failure the room made so far is dropped: the map is as it was.
            room[s] = Some(g.prepare_writes(&self.hasher, &share[s], shared, keys)?);
        }
        if shared {
            // The slot pages the writes will change, copied (one walk over
            // the batch for all shards).
            for (k, _) in pairs.clone() {
                let h = self.hasher.h1(k);
                let s = shard_of(h);
                let p = room[s].as_mut().expect("prepared");
                guards[s]
                    .as_mut()
                    .expect("locked")
                    .note_write(p, &self.hasher, h, k)?;
            }
            for (g, p) in guards.iter_mut().zip(room.iter_mut()) {
                if let (Some(g), Some(p)) = (g, p) {
                    g.unshare_noted(p)?;
                }
            }
        }
        // Nothing allocates from here on (tests check it).
        let no_alloc = alloc::NoAlloc::enter();
        for (s, r) in room.into_iter().enumerate() {
            let Some(p) = r else { continue };
            if guards[s].as_mut().expect("locked").install_prepared(p) {
                changed |= 1 << s;
            }
        }
        let mut new_keys = 0;
        let mut overwrote = false;
        let mut result = Ok(());
        for (k, v) in pairs {
            let h = self.hasher.h1(k);
            let s = shard_of(h);
            let g = guards[s].as_mut().expect("locked");
            match g.insert_quiet(&self.hasher, h, k, v) {
                Ok(true) => {
                    new_keys += 1;
                    changed |= 1 << s;
                }
                Ok(false) => overwrote = true,
                Err(e) => {
                    changed |= 1 << s;
                    result = Err(e);
                    break;
                }
            }
        }
        drop(no_alloc);
        for g in guards.iter_mut().flatten() {
            g.tidy();
        }
        // One count is enough for the overwrites: readers of the change
        // count only ask whether it moved.
        self.bump_mask(changed);
        if overwrote && changed == 0 {
            self.touch();
        }
        drop(guards);
        result.map(|_| new_keys)
    }

    /// Removes every key; returns how many were present. All or nothing.
    /// Needs no memory proportional to the batch: the keys are walked (and
    /// hashed) once for their shards, once more to prepare while a snapshot
    /// lives, and once to remove.
    pub fn remove_many<'k>(&self, keys: impl Iterator<Item = &'k [u8]> + Clone) -> Result<usize> {
        let mut guards = self.lock_write_many(self.shard_mask(keys.clone()));
        // All or nothing: with a snapshot alive, first copy every page it
        // shares that a removal will write (the only allocation a removal
        // makes), so that the removals cannot fail. Acquire: pairs with the
        // count's decrement after a dropped snapshot let go of its pages.
        if self.snapshots.load(Ordering::Acquire) > 0 {
            for k in keys.clone() {
                let h = self.hasher.h1(k);
                guards[shard_of(h)]
                    .as_mut()
                    .expect("locked")
                    .prepare_remove(&self.hasher, h, k)?;
            }
        }
        let mut removed = 0;
        let mut changed = 0u32;
        let mut result = Ok(());
        for k in keys {
            let h = self.hasher.h1(k);
            let s = shard_of(h);
            match guards[s]
                .as_mut()
                .expect("locked")
                .remove(&self.hasher, h, k)
            {
                Ok(present) => {
                    removed += usize::from(present);
                    changed |= u32::from(present) << s;
                }
                // Not after the preparation; reported rather than assumed.
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
        }
        self.bump_mask(changed);
        result.map(|()| removed)
    }

    fn lock_write_many(&self, mask: u32) -> [Option<WriteGuard<'_, ShardData>>; SHARDS] {
        let mut guards: [Option<_>; SHARDS] = Default::default();
        for (s, g) in guards.iter_mut().enumerate() {
            if mask & (1 << s) != 0 {
                *g = Some(self.shards[s].data.write());
            }
        }
        guards
    }

    fn bump_mask(&self, mask: u32) {
        for s in 0..SHARDS {
            if mask & (1 << s) != 0 {
                self.bump(s);
            }
        }
    }

    /// Passes up to `max` entries after `cur` to `f` (which returns false for an
    /// entry it cannot take) and advances `cur` past the consumed ones. With
    /// `stamp`, the scan is strict: it fails with ITER_INVALIDATED if the map's
    /// structural generation differs from the stamp before anything is read.
    /// Every shard read stays locked until the call ends, so one call observes
    /// one consistent state.
    pub fn scan<F: FnMut(&Entry<'_>) -> bool>(
        &self,
        cur: &mut Cursor,
        stamp: Option<u64>,
        max: usize,
        f: &mut F,
    ) -> Result<Scan> {
        self.scan_into(cur, stamp, &mut Visit::new(max, f))
    }

    /// `scan` into any `Sink` (a `Pack`, say).
    pub(crate) fn scan_into(
        &self,
        cur: &mut Cursor,
        stamp: Option<u64>,
        sink: &mut impl Sink,
    ) -> Result<Scan> {
        if let Some(st) = stamp {
            if cur.done {
                self.check_stamp(st)?;
            }
        }
        scan_with(&self.hasher, cur, stamp.is_some(), sink, |s| {
            let g = self.shards[s].data.read();
            if let Some(st) = stamp {
                self.check_stamp(st)?;
            }
            Ok(g)
        })
    }

    fn check_stamp(&self, stamp: u64) -> Result<()> {
        let now = self.generation();
        if now != stamp {
            return Err(Error::formatted(
                McStatus::MC_ERR_ITER_INVALIDATED,
                format_args!(
                    "the map changed structurally since the iterator was stamped ({} change(s))",
                    now.wrapping_sub(stamp)
                ),
            ));
        }
        Ok(())
    }

    /// Removes the entry `cur` last returned. In strict mode the stamp is
    /// checked first and then moved past this removal, so only this token
    /// stays valid.
    pub fn remove_current(&self, cur: &mut Cursor, stamp: Option<&mut u64>) -> Result<()> {
        if let Some(st) = &stamp {
            self.check_stamp(**st)?;
        }
        if !cur.current {
            return Err(no_current());
        }
        let s = cur.shard();
        let mut g = self.shards[s].data.write();
        if let Some(st) = &stamp {
            self.check_stamp(**st)?;
        }
        let i = current_slot(&g, &self.hasher, cur, stamp.is_some())?;
        // Where to resume should a shrink re-lay the shard.
        let pos = match cur.at {
            At::Pos(p) => p,
            At::Slot { .. } => pos_at(&g, &self.hasher, i),
        };
        g.remove_at(i)?;
        let relaid = g.settle();
        self.bump(s);
        if let Some(st) = stamp {
            *st += 1;
        }
        cur.current = false;
        if let At::Slot { next, .. } = &mut cur.at {
            // The entries after slot `i` moved back by one or stayed put:
            // either way the scan goes on from `i`.
            *next = i;
            if relaid {
                cur.at = At::Pos(pos);
            }
        }
        Ok(())
    }

    /// Replaces the value of the entry `cur` last returned (not structural).
    pub fn set_current_value(&self, cur: &Cursor, stamp: Option<u64>, val: &[u8]) -> Result<()> {
        check_value(val)?;
        if let Some(st) = stamp {
            self.check_stamp(st)?;
        }
        if !cur.current {
            return Err(no_current());
        }
        let s = cur.shard();
        let mut g = self.shards[s].data.write();
        if let Some(st) = stamp {
            self.check_stamp(st)?;
        }
        let i = current_slot(&g, &self.hasher, cur, stamp.is_some())?;
        let r = g.set_value_at(i, val);
        if r.is_ok() {
            self.touch();
        }
        r
    }

    /// Storage statistics summed over shards.
    pub fn stats(&self) -> Stats {
        let mut st = Stats::default();
        for shard in self.shards.iter() {
            let g = shard.data.read();
            st.entries += g.entries();
            st.slots += g.slots();
            st.arena_bytes += g.arena_bytes();
            st.arena_chunks += g.chunks();
            st.cow_pages += g.cow_pages();
        }
        st
    }

    /// Checks every shard's invariants; used by tests.
    pub fn check_invariants(&self) -> std::result::Result<(), String> {
        for (s, shard) in self.shards.iter().enumerate() {
            let g = shard.data.read();
            g.check_invariants(&self.hasher)
                .map_err(|e| format!("shard {s}: {e}"))?;
        }
        Ok(())
    }
}

/// The slot of the entry `cur` returned last (`cur.current` is set), in the
/// locked shard `g`; `stamped` says that the caller checked a strict stamp
/// under the lock, without which a slot number means nothing.
fn current_slot(g: &ShardData, hasher: &KeyHasher, cur: &Cursor, stamped: bool) -> Result<usize> {
    match cur.at {
        At::Pos(p) => g.find_pos(hasher, p).ok_or_else(gone),
        At::Slot { next, .. } => match next.checked_sub(1) {
            Some(i) if stamped && g.is_occupied(i) => Ok(i),
            // No sealed token gets here (a matching stamp means the layout
            // is the one the slot refers to); a documented token error,
            // not INTERNAL, which promises a poisoned map.
            _ => Err(Error::new(
                McStatus::MC_ERR_BAD_TOKEN,
                "the iterator token's current slot does not hold an entry",
            )),
        },
    }
}

/// The out-of-memory error, with a static detail: the error path of a
/// failed allocation must not allocate.
fn oom(what: &'static str) -> Error {
    Error::new(McStatus::MC_ERR_OUT_OF_MEMORY, what)
}

fn no_current() -> Error {
    Error::new(
        McStatus::MC_ERR_NOT_FOUND,
        "the iterator has no current entry (not started, finished, or already removed)",
    )
}

fn gone() -> Error {
    Error::new(
        McStatus::MC_ERR_NOT_FOUND,
        "the iterator's current entry was removed by someone else",
    )
}

/// Read access to several locked shards at once (see `Map::read_many`).
pub struct ManyView<'a> {
    shards: [Option<&'a ShardData>; SHARDS],
    hasher: &'a KeyHasher,
}

impl<'a> ManyView<'a> {
    /// The map's key hasher.
    #[inline]
    pub fn hasher(&self) -> &'a KeyHasher {
        self.hasher
    }

    /// Starts fetching `h1`'s home slot, if its shard is in the view.
    #[inline]
    pub fn prefetch_home(&self, h1: u64) {
        if let Some(d) = self.shards[shard_of(h1)] {
            d.prefetch_home(h1);
        }
    }

    /// Where `h1`'s key most likely is; starts fetching its record. Pass
    /// the result to `get`.
    #[inline]
    pub fn candidate(&self, h1: u64) -> Candidate<'a> {
        Candidate(self.shards[shard_of(h1)].and_then(|d| d.candidate(h1)))
    }

    /// Looks up `key` whose `h1` was among the hashes passed to `read_many`,
    /// given `candidate(h1)` from this same view.
    #[inline]
    pub fn get(&self, h1: u64, key: &[u8], candidate: Candidate<'a>) -> Option<&[u8]> {
        self.shards[shard_of(h1)]
            .and_then(|d| d.get_at_candidate(self.hasher, h1, key, candidate.0))
    }
}

/// What `ManyView::candidate` found for a hash: only that function makes one,
/// so `get` cannot be handed a made-up record (`None` inside proves absence),
/// and it borrows the view's shards, so it cannot outlive the read access.
/// Pass it to `get` with the same `h1` it was found for.
#[derive(Clone, Copy)]
pub struct Candidate<'a>(Option<super::table::Candidate<'a>>);

/// An immutable point-in-time view sharing pages with the live map.
#[derive(Clone)]
pub struct SnapshotData {
    shards: Vec<ShardData>,
    hasher: KeyHasher,
    len: usize,
    /// Declared last, so dropped after `shards` has let go of the pages.
    _live: SnapshotCount,
}

/// One count in a map's live snapshots, given back on drop.
struct SnapshotCount(TryArc<AtomicUsize>);

impl Clone for SnapshotCount {
    /// A cloned snapshot shares the pages too.
    fn clone(&self) -> Self {
        self.0.fetch_add(1, Ordering::Relaxed);
        SnapshotCount(self.0.clone())
    }
}

impl Drop for SnapshotCount {
    fn drop(&mut self) {
        // Release: the snapshot's pages were let go before this.
        self.0.fetch_sub(1, Ordering::Release);
    }
}

impl SnapshotData {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn hasher(&self) -> &KeyHasher {
        &self.hasher
    }

    pub fn get_with<R>(&self, key: &[u8], f: impl FnOnce(&[u8]) -> R) -> Option<R> {
        let h1 = self.hasher.h1(key);
        self.shards[shard_of(h1)].get(&self.hasher, h1, key).map(f)
    }

    pub fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.get_with(key, |v| v.to_vec())
    }

    pub fn scan<F: FnMut(&Entry<'_>) -> bool>(
        &self,
        cur: &mut Cursor,
        max: usize,
        f: &mut F,
    ) -> Result<Scan> {
        self.scan_into(cur, false, &mut Visit::new(max, f))
    }

    /// `scan` into any `Sink`. With `strict`, the cursor keeps slot numbers
    /// (see `At::Slot`): a snapshot's layout never changes.
    pub(crate) fn scan_into(
        &self,
        cur: &mut Cursor,
        strict: bool,
        sink: &mut impl Sink,
    ) -> Result<Scan> {
        scan_with(&self.hasher, cur, strict, sink, |s| Ok(&self.shards[s]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::pool;

    /// Without a snapshot, retain locks one shard at a time: while its
    /// predicate runs on one shard, another thread writes to another shard
    /// and the predicate sees that write finish (with every shard locked
    /// for the whole call, the writer would wait for the retain and the
    /// predicate would give up after a minute).
    #[test]
    fn retain_without_a_snapshot_leaves_other_shards_free() {
        let m = std::sync::Arc::new(Map::new(&Options::default()).unwrap());
        let keys: Vec<Vec<u8>> = (0..2000u32).map(|i| i.to_le_bytes().to_vec()).collect();
        for k in &keys {
            m.insert(k, b"v").unwrap();
        }
        let mut waited = false;
        let removed = m
            .retain(|k, _| {
                if !waited {
                    waited = true;
                    let here = shard_of(m.hasher().h1(k));
                    let other = keys
                        .iter()
                        .find(|o| shard_of(m.hasher().h1(o)) != here)
                        .unwrap()
                        .clone();
                    let (done, wait) = std::sync::mpsc::channel();
                    let writer = m.clone();
                    std::thread::spawn(move || {
                        writer.insert(&other, b"written during the retain").unwrap();
                        done.send(()).unwrap();
                    });
                    wait.recv_timeout(std::time::Duration::from_secs(60))
                        .expect("a write to another shard waited for the retain");
                }
                true
            })
            .unwrap();
        assert_eq!(removed, 0);
        assert!(waited);
    }

    /// Every entry, sorted.
    fn contents(m: &Map) -> Vec<(Vec<u8>, Vec<u8>)> {
        let mut all = Vec::new();
        let mut cur = Cursor::default();
        m.scan(&mut cur, None, usize::MAX, &mut |e| {
            all.push((e.key.to_vec(), e.value.to_vec()));
            true
        })
        .unwrap();
        all.sort();
        all
    }

    /// Every entry of a snapshot, sorted.
    fn snap_contents(snap: &SnapshotData) -> Vec<(Vec<u8>, Vec<u8>)> {
        let mut all = Vec::new();
        let mut cur = Cursor::default();
        snap.scan(&mut cur, usize::MAX, &mut |e| {
            all.push((e.key.to_vec(), e.value.to_vec()));
            true
        })
        .unwrap();
        all.sort();
        all
    }

    /// A map of `n` entries with a fixed seed (the same layout every time).
    fn filled(n: u32) -> Map {
        let m = Map::new(&Options {
            seed: Some(7),
            ..Options::default()
        })
        .unwrap();
        for i in 0..n {
            m.insert(&i.to_le_bytes(), &[i as u8; 9]).unwrap();
        }
        m
    }

    /// Fails each allocation `op` makes in turn, the first, the second...
    /// until `op` makes none that fails, once with that allocation alone
    /// failing and once with every later one failing too. Each time `op`
    /// must either succeed, leaving what it leaves without a failure (it
    /// recovered), or fail with OUT_OF_MEMORY leaving the map's contents
    /// as they were; the map must stay consistent and usable. Returns the
    /// number of failure points.
    fn sweep_failures(setup: impl Fn() -> Map, op: impl Fn(&Map) -> Result<()>) -> usize {
        sweep(setup, op, false)
    }

    /// `sweep_failures` with a snapshot of the map taken before each run
    /// of `op` (no allocation of that fails) and held through it: the
    /// snapshot must keep its contents whatever `op` did.
    fn sweep_under_snapshot(setup: impl Fn() -> Map, op: impl Fn(&Map) -> Result<()>) -> usize {
        sweep(setup, op, true)
    }

    fn sweep(setup: impl Fn() -> Map, op: impl Fn(&Map) -> Result<()>, snapshot: bool) -> usize {
        let clean = setup();
        op(&clean).unwrap();
        let after = contents(&clean);
        for sustained in [false, true] {
            for n in 0.. {
                let m = setup();
                let before = contents(&m);
                let snap = snapshot.then(|| m.snapshot().unwrap());
                let fired = alloc::injected_failures();
                if sustained {
                    alloc::fail_after(Some(n));
                } else {
                    alloc::fail_once_after(n);
                }
                let r = op(&m);
                alloc::fail_after(None);
                if alloc::injected_failures() == fired {
                    assert!(r.is_ok(), "{r:?} without a failure");
                    if !sustained {
                        return n;
                    }
                    break;
                }
                match r {
                    Ok(()) => assert!(contents(&m) == after, "recovered at {n}, wrong contents"),
                    Err(e) => {
                        assert_eq!(e.status, McStatus::MC_ERR_OUT_OF_MEMORY, "at {n}");
                        assert!(contents(&m) == before, "failure at {n} changed the map");
                    }
                }
                if let Some(snap) = snap {
                    assert!(
                        snap_contents(&snap) == before,
                        "the snapshot changed at {n}"
                    );
                }
                m.check_invariants().unwrap();
                m.insert(b"probe", b"p").unwrap();
                assert!(m.remove(b"probe").unwrap());
            }
        }
        unreachable!()
    }

    /// Out of memory is a status with the map unchanged, at every
    /// allocation of the calls that build before they commit.
    #[test]
    fn every_allocation_failure_leaves_the_map_as_it_was() {
        // Making a map: each failure point gives OUT_OF_MEMORY, no map.
        for n in 0.. {
            alloc::fail_once_after(n);
            let fired = alloc::injected_failures();
            let r = Map::new(&Options::default());
            alloc::fail_after(None);
            if alloc::injected_failures() == fired {
                assert!(
                    r.is_ok() && n > SHARDS,
                    "a map takes an allocation per shard"
                );
                break;
            }
            assert_eq!(
                r.err().map(|e| e.status),
                Some(McStatus::MC_ERR_OUT_OF_MEMORY)
            );
        }
        let small = || filled(300);
        assert!(sweep_failures(small, |m| m.clear()) >= SHARDS);
        assert!(sweep_failures(small, |m| m.reserve(50_000)) >= SHARDS);
        assert!(sweep_failures(small, |m| m.snapshot().map(drop)) > 0);
        // Growth: the first insert that re-lays a shard's table.
        let grown_at = {
            let m = small();
            let before = m.stats().slots;
            let mut i = 300u32;
            while m.stats().slots == before {
                m.insert(&i.to_le_bytes(), b"new").unwrap();
                i += 1;
            }
            i - 1
        };
        let before_growth = || {
            let m = small();
            for i in 300..grown_at {
                m.insert(&i.to_le_bytes(), b"new").unwrap();
            }
            m
        };
        assert!(
            sweep_failures(before_growth, |m| m
                .insert(&grown_at.to_le_bytes(), b"new")
                .map(drop))
                > 0
        );
        // Batches, prepared so that they write all or nothing: overwrites
        // and new keys, then enough new keys to grow every shard.
        let pairs = |r: std::ops::Range<u32>| -> Vec<([u8; 4], Vec<u8>)> {
            r.map(|i| (i.to_le_bytes(), vec![i as u8; 20])).collect()
        };
        for batch in [pairs(250..350), pairs(300..3_000)] {
            let write = |m: &Map| {
                m.insert_many(batch.iter().map(|(k, v)| (&k[..], &v[..])))
                    .map(drop)
            };
            assert!(sweep_failures(small, write) > 0);
        }
        // Writes under a snapshot, which copy the pages they touch.
        let with_snapshot = |m: &Map| -> Result<()> {
            let snap = m.snapshot()?;
            let r = m.insert(&5u32.to_le_bytes(), b"a longer value").map(drop);
            drop(snap);
            r
        };
        assert!(sweep_failures(small, with_snapshot) > 0);
        let set_current = |m: &Map| -> Result<()> {
            let snap = m.snapshot()?;
            let mut cur = Cursor::default();
            m.scan(&mut cur, None, 1, &mut |_| true)?;
            let r = m.set_current_value(&cur, None, b"another length");
            drop(snap);
            r
        };
        assert!(sweep_failures(small, set_current) > 0);
    }

    /// Batches write all or nothing on running out of memory, also under
    /// a live snapshot (which shares every page and chunk, so the writes
    /// copy pages) and beyond one chunk of records per shard: small and
    /// big batches of overwrites and new keys, one that grows every shard,
    /// and values of 100 KiB and 200 KiB (over half a chunk) that put
    /// more than a chunk's worth in each shard. The sweep panics if a
    /// prepared batch's writes allocate (`NoAlloc`).
    #[test]
    fn batches_write_all_or_nothing_under_a_snapshot_and_beyond_a_chunk() {
        let small = || filled(300);
        let pairs = |r: std::ops::Range<u32>, len: usize| -> Vec<([u8; 4], Vec<u8>)> {
            r.map(|i| (i.to_le_bytes(), vec![i as u8; len])).collect()
        };
        let batches = [
            pairs(0..40, 20),
            pairs(250..350, 20),
            pairs(300..3_000, 20),
            pairs(0..3_000, 1_000),
            pairs(290..330, 100 << 10),
            pairs(295..310, 200 << 10),
        ];
        for batch in &batches {
            let write = |m: &Map| {
                m.insert_many(batch.iter().map(|(k, v)| (&k[..], &v[..])))
                    .map(drop)
            };
            assert!(sweep_under_snapshot(small, write) > 0);
        }
        for batch in &batches[3..] {
            let write = |m: &Map| {
                m.insert_many(batch.iter().map(|(k, v)| (&k[..], &v[..])))
                    .map(drop)
            };
            assert!(sweep_failures(small, write) > 0);
        }
    }

    /// Retain deletes all or nothing on running out of memory, also under
    /// a live snapshot (whose pages its deletes must copy), and calls the
    /// predicate once per entry. The sweep panics if the deletes allocate
    /// (`NoAlloc`).
    #[test]
    fn retain_under_a_snapshot_deletes_all_or_nothing() {
        for n in [300, 20_000] {
            for modulus in [2u8, 7] {
                let setup = || filled(n);
                let retain = |m: &Map| {
                    let before = m.len();
                    let mut calls = 0;
                    let r = m.retain(|k, _| {
                        calls += 1;
                        k[0] % modulus != 0
                    });
                    // Once per entry; on failure at most that.
                    assert!(calls == before || r.is_err() && calls < before);
                    r.map(drop)
                };
                assert!(sweep_under_snapshot(setup, retain) > 0);
                sweep_failures(setup, retain);
            }
        }
        // Several pages per shard, each deleted from: the deletes find
        // every page they write copied already (else `NoAlloc` panics).
        let m = filled(150_000);
        let snap = m.snapshot().unwrap();
        let mut want = contents(&m);
        let all = want.clone();
        want.retain(|(k, _)| k[1] % 3 != 0);
        assert_eq!(
            m.retain(|k, _| k[1] % 3 != 0).unwrap(),
            all.len() - want.len()
        );
        assert!(contents(&m) == want);
        assert!(snap_contents(&snap) == all);
        assert!(
            m.stats().cow_pages > SHARDS,
            "deleted from several pages per shard"
        );
        m.check_invariants().unwrap();
    }

    /// Reserving fills slot tables at once: room for more entries than
    /// the system has memory for is refused with OUT_OF_MEMORY (on Linux,
    /// where memory is overcommitted, the kernel would otherwise kill the
    /// process once the tables are touched), and the map is left as it was.
    #[test]
    fn a_reservation_the_system_cannot_back_is_refused() {
        let need = (MAX_RESERVE / 5).saturating_mul(8 * SLOT_BYTES);
        let Some(avail) = pool::memory_available().filter(|&a| a < need) else {
            eprintln!("skipped: this machine could back {need} bytes of slot tables");
            return;
        };
        let m = Map::new(&Options::default()).unwrap();
        m.insert(b"k", b"v").unwrap();
        let before = m.stats().slots;
        let e = m.reserve(MAX_RESERVE).unwrap_err();
        assert_eq!(
            e.status,
            McStatus::MC_ERR_OUT_OF_MEMORY,
            "{avail} bytes available"
        );
        assert_eq!(m.stats().slots, before);
        assert_eq!(m.get(b"k").as_deref(), Some(&b"v"[..]));
        let opts = Options {
            capacity: MAX_RESERVE,
            ..Options::default()
        };
        assert_eq!(
            Map::new(&opts).err().map(|e| e.status),
            Some(McStatus::MC_ERR_OUT_OF_MEMORY)
        );
    }

    /// A strict scan that removes nearly every entry through its cursor
    /// makes the shards shrink under it: the cursor then trades its slot for
    /// the removed entry's position, and every entry is still returned once.
    #[test]
    fn strict_removal_through_the_cursor_survives_shrinks() {
        let m = Map::new(&Options::default()).unwrap();
        let n = 20_000u32;
        for i in 0..n {
            m.insert(&i.to_le_bytes(), b"v").unwrap();
        }
        let mut stamp = m.generation();
        let mut cur = Cursor::default();
        let mut seen = std::collections::HashSet::new();
        let mut fell_back = 0;
        loop {
            let mut k = Vec::new();
            let r = m.scan(&mut cur, Some(stamp), 1, &mut |e| {
                k = e.key.to_vec();
                true
            });
            match r.unwrap() {
                Scan::Done => break,
                Scan::Entries(taken) => assert_eq!(taken, 1),
            }
            assert!(
                matches!(cur.at, At::Slot { .. }),
                "a strict scan keeps a slot"
            );
            assert!(seen.insert(k.clone()), "returned twice");
            if u32::from_le_bytes(k[..].try_into().unwrap()) % 50 == 0 {
                m.set_current_value(&cur, Some(stamp), b"kept").unwrap();
            } else {
                m.remove_current(&mut cur, Some(&mut stamp)).unwrap();
                fell_back += matches!(cur.at, At::Pos(_)) as usize;
            }
        }
        assert_eq!(seen.len(), n as usize);
        assert!(fell_back > 0, "no shard shrank during the scan");
        assert_eq!(m.len(), (n / 50) as usize);
        for i in (0..n).step_by(50) {
            assert_eq!(m.get(&i.to_le_bytes()).as_deref(), Some(&b"kept"[..]));
        }
        m.check_invariants().unwrap();
    }

    /// Under a snapshot a delete first copies the slot pages it writes;
    /// when that copy cannot be allocated, every form of delete reports
    /// OUT_OF_MEMORY and changes nothing (a batch deletes all or nothing),
    /// and the same deletes succeed once memory is back.
    #[test]
    fn deletes_that_cannot_copy_a_shared_page_change_nothing() {
        let m = Map::new(&Options::default()).unwrap();
        let keys: Vec<[u8; 4]> = (0..40_000u32).map(u32::to_le_bytes).collect();
        for k in &keys {
            m.insert(k, k).unwrap();
        }
        let snap = m.snapshot().unwrap();
        let failing = |f: &dyn Fn() -> Result<usize>| {
            pool::fail_after(Some(0));
            let r = f();
            pool::fail_after(None);
            assert_eq!(r.map_err(|e| e.status), Err(McStatus::MC_ERR_OUT_OF_MEMORY));
            assert_eq!(m.len(), keys.len(), "nothing deleted");
            assert!(keys.iter().all(|k| m.get(k).as_deref() == Some(&k[..])));
        };
        // Every slot page is shared with the snapshot: the first removal
        // must copy one and fails, and so does a retain (which copies every
        // page it will write before it deletes anything).
        failing(&|| m.remove(&keys[1000]).map(usize::from));
        failing(&|| m.retain(|_, _| false));
        // The first key's slot page is copied now (a moved overwrite, then
        // the old value back): removing it alone would allocate nothing,
        // so only the preparation keeps the failing batch from removing it.
        m.insert(&keys[0], b"longer value").unwrap();
        m.insert(&keys[0], &keys[0]).unwrap();
        let batch: Vec<&[u8]> = keys[..500].iter().map(|k| &k[..]).collect();
        failing(&|| m.remove_many(batch.iter().copied()));
        assert_eq!(m.remove_many(batch.iter().copied()).unwrap(), 500);
        assert!(m.remove(&keys[1000]).unwrap());
        let odd_left = (500..40_000u32).filter(|i| i % 2 == 1).count();
        assert_eq!(m.retain(|k, _| k[0] % 2 == 0).unwrap(), odd_left);
        assert_eq!(snap.len(), keys.len(), "the snapshot kept every entry");
    }
}
