//! One shard's storage: a slot table kept sorted by key position, and an arena
//! holding the key and value bytes.
//!
//! The slot table uses linear probing without wrap-around. A key's home slot is
//! a monotone function of its hash (`h1`), and every run of occupied slots stays
//! sorted by position `(h1, h2)`. Positions are unique: an insert whose
//! position equals another key's is refused. So table order *is* hash order
//! whatever the capacity, and "resume after position P" is a question any
//! later table can answer — the basis of cursors that survive resizes.
//!
//! Both the slot table and the arena live in `TryArc`-held pages/chunks. Cloning a
//! `ShardData` clones pointers only (a snapshot); a later write copies just the
//! page it touches (see `unique_mut`) and never appends into a shared chunk.
//! Two exceptions copy a whole shard in one write, both amortised over many
//! writes: growth re-lays the table, and a shard whose chunks writes under
//! snapshots have crowded gets fresh ones (see `limit_chunks`).

use std::ptr::NonNull;

use super::alloc::{self, TryArc};
use super::bytes::{bytes_eq, copy_small};
use super::hash::{KeyHasher, Pos};
use super::pool::Buf;
use crate::status::{Error, McStatus, Result};

/// Number of top hash bits that choose the shard.
pub(crate) const SHARD_BITS: u32 = 4;
pub(crate) const SHARDS: usize = 1 << SHARD_BITS;

const PAGE_BITS: u32 = 11;
const PAGE_SLOTS: usize = 1 << PAGE_BITS;
const PAGE_MASK: usize = PAGE_SLOTS - 1;
const MIN_NOMINAL: usize = 8;
/// Largest nominal capacity per shard (2^28 slots, 2^32 over all shards):
/// homes are computed from a slot's 28-bit hash fragment (see `Table::home`).
const MAX_NOMINAL: usize = 1 << FRAG_BITS;

/// Chunk offsets take `OFFSET_BITS` bits of a record location.
const OFFSET_BITS: u32 = 18;
const CHUNK_MAX: usize = 1 << OFFSET_BITS;
// The pool gives back the pages of every freed block smaller than a
// full-size chunk (slot pages) and keeps those of chunks (see `pool`).
const _: () = assert!(CHUNK_MAX == super::pool::MAX_POOLED);
/// Record headers: `[klen u8 < LONG_TAG][vlen u8]` when both lengths fit,
/// else `[LONG_TAG][klen u32 LE][vlen u32 LE]`. Typical small entries thus
/// spend 2 bytes on their lengths, not 8.
const SHORT_HEADER: usize = 2;
const LONG_HEADER: usize = 9;
const LONG_TAG: u8 = 0x80;

/// A slot is one word: `frag << LOC_BITS | loc`.
const LOC_BITS: u32 = 36;
const LOC_MASK: u64 = (1 << LOC_BITS) - 1;
/// The top bits of a key's `h1` below the shard bits.
const FRAG_BITS: u32 = 64 - LOC_BITS;
/// Chunks one shard's arena can address (`loc` holds chunk index + 1).
const MAX_CHUNKS: usize = (1 << (LOC_BITS - OFFSET_BITS)) - 1;
/// Fewest chunks at which writes copy the live records into fresh chunks
/// even while snapshots share the old ones (see `ShardData::limit_chunks`).
const CHUNK_REPACK_MIN: usize = if cfg!(test) { 64 } else { 256 };

pub(crate) const MAX_KEY_LEN: usize = 1 << 20;
pub(crate) const MAX_VALUE_LEN: usize = 1 << 30;

/// Bytes per slot, for memory statistics.
pub(crate) const SLOT_BYTES: usize = std::mem::size_of::<Slot>();

/// An occupied slot holds the top `FRAG_BITS` bits of its key's `h1` (after
/// the shard bits) and where its record lives. The fragment orders slots as
/// `h1` does, up to ties that the record's key settles, and it contains the
/// home slot; 8 bytes instead of 16 halve the table's memory and the bytes a
/// lookup, a scan or a shift moves.
#[derive(Clone, Copy, Default, Debug)]
pub struct Slot(u64);

/// `h1`'s fragment, as slots store it.
#[inline]
fn frag_of(h1: u64) -> u64 {
    (h1 << SHARD_BITS) >> LOC_BITS
}

impl Slot {
    const EMPTY: Slot = Slot(0);

    #[inline]
    fn new(h1: u64, loc: u64) -> Slot {
        debug_assert!(loc != 0 && loc <= LOC_MASK);
        Slot(frag_of(h1) << LOC_BITS | loc)
    }

    /// The same key's slot with its record moved to `loc`.
    #[inline]
    fn with_loc(self, loc: u64) -> Slot {
        debug_assert!(loc != 0 && loc <= LOC_MASK);
        Slot(self.0 & !LOC_MASK | loc)
    }

    #[inline]
    fn is_empty(&self) -> bool {
        // An occupied slot's location is never 0.
        self.0 == 0
    }

    #[inline]
    fn frag(self) -> u64 {
        self.0 >> LOC_BITS
    }

    #[inline]
    fn loc(self) -> u64 {
        self.0 & LOC_MASK
    }
}

/// The value behind `a` for writing, if no snapshot shares it.
#[inline(always)]
fn unique_mut<T>(a: &mut TryArc<T>) -> Option<&mut T> {
    TryArc::get_mut(a)
}

/// The out-of-memory error, with a static detail: the error path of a
/// failed allocation must not allocate.
fn oom(what: &'static str) -> Error {
    Error::new(McStatus::MC_ERR_OUT_OF_MEMORY, what)
}

/// A page of slots that snapshots share: the slots' address and count next
/// to the `TryArc` that owns them, so that reading a slot does not first
/// load the `TryArc`'s target (one dependent load less on every get).
#[derive(Clone)]
struct Page {
    slots: NonNull<Slot>,
    len: usize,
    buf: TryArc<Buf<Slot>>,
}

// SAFETY: a `Page` is a `TryArc<Buf<Slot>>`, which is `Send` and `Sync`, plus
// the address of that buffer's elements, which it only reads through
// `&self` (writes go through `buf`, with `&mut` access).
unsafe impl Send for Page {}
// SAFETY: as for `Send`.
unsafe impl Sync for Page {}

impl Page {
    /// Shares `buf` as a page; fails (dropping `buf`) when the count's
    /// memory cannot be had.
    fn new(buf: Buf<Slot>) -> Result<Page> {
        Ok(Page {
            slots: buf.as_non_null(),
            len: buf.len(),
            buf: TryArc::try_new(buf).map_err(|_| oom("cannot allocate a slot page"))?,
        })
    }
}

impl std::ops::Deref for Page {
    type Target = [Slot];
    #[inline(always)]
    fn deref(&self) -> &[Slot] {
        // SAFETY: `slots` and `len` describe the initialised elements of
        // `buf`, which this page keeps alive; a `Buf` never moves or resizes
        // its elements (it grows only into a new buffer), and `Page` is
        // rebuilt whenever `buf` is replaced. Writes through `buf` need
        // `&mut` access to the page, which this shared borrow excludes.
        unsafe { std::slice::from_raw_parts(self.slots.as_ptr(), self.len) }
    }
}

/// Slot array split into pages so that a snapshot shares them and a write
/// copies only the page it changes.
#[derive(Clone)]
pub struct Table {
    pages: Vec<Page>,
    /// Total slots: the nominal capacity plus the overflow slack at the end.
    len: usize,
    /// Slots that homes spread over; any size from `MIN_NOMINAL` to
    /// `MAX_NOMINAL`, so a presized table fits its entries.
    nominal: usize,
    count: usize,
    /// Pages copied because a snapshot shared them (statistics).
    cow_pages: usize,
}

impl Table {
    fn with_nominal(nominal: usize) -> Result<Table> {
        debug_assert!((MIN_NOMINAL..=MAX_NOMINAL).contains(&nominal));
        let slack = (nominal / 16).clamp(8, 4096);
        let mut t = Table {
            pages: Vec::new(),
            len: 0,
            nominal,
            count: 0,
            cow_pages: 0,
        };
        t.extend(nominal + slack)?;
        Ok(t)
    }

    /// Adds `extra` empty slots at the end (more overflow slack).
    fn extend(&mut self, extra: usize) -> Result<()> {
        let new_len = self.len + extra;
        // Whole pages come from the region pool (`pool: true`), so that
        // freeing them gives the memory back (see `pool`); a partial page
        // is not a pooled size. (Pooling only tables of 8+ pages, a 10M map
        // built from Go kept 63.7-64.1 B per entry resident over four runs;
        // all: 63.8.)
        // Fill the last partial page first.
        if let Some(last) = self.pages.last_mut() {
            if last.len() < PAGE_SLOTS {
                let want = PAGE_SLOTS.min(last.len() + (new_len - self.len));
                let mut v = Buf::try_with_capacity(want, true)
                    .ok_or_else(|| oom("cannot allocate a slot page"))?;
                v.extend_from_slice(last);
                v.extend_with(want - last.len(), Slot::EMPTY);
                // The same slots, more empty ones after: a replacement
                // that a failure further on need not undo.
                *last = Page::new(v)?;
            }
        }
        let mut covered: usize = self.pages.iter().map(|p| p.len()).sum();
        self.pages
            .try_reserve((new_len.saturating_sub(covered)).div_ceil(PAGE_SLOTS))
            .map_err(|_| oom("cannot allocate a slot table's page list"))?;
        // Pages are pushed as they are made: on failure, the ones pushed
        // are taken off again, and the table is as it was.
        let pages = self.pages.len();
        while covered < new_len {
            let n = PAGE_SLOTS.min(new_len - covered);
            let page = Buf::try_with_capacity(n, true).and_then(|mut v| {
                v.extend_with(n, Slot::EMPTY);
                Page::new(v).ok()
            });
            let Some(page) = page else {
                self.pages.truncate(pages);
                return Err(oom("cannot allocate a slot page"));
            };
            self.pages.push(page);
            covered += n;
        }
        self.len = new_len;
        Ok(())
    }

    #[inline]
    fn get(&self, i: usize) -> Slot {
        self.pages[i >> PAGE_BITS][i & PAGE_MASK]
    }

    #[inline]
    fn set(&mut self, i: usize, s: Slot) {
        self.page_mut(i >> PAGE_BITS)[i & PAGE_MASK] = s;
    }

    /// Page `p` for writing; a page a snapshot shares is copied first (just
    /// this page). Every write calls `unshare` first, which reports a copy
    /// that cannot be allocated; the copy here is a fallback that aborts
    /// the process, as a failed small allocation does.
    #[inline(always)]
    fn page_mut(&mut self, p: usize) -> &mut [Slot] {
        if self.unshare_page(p).is_err() {
            std::alloc::handle_alloc_error(std::alloc::Layout::new::<[Slot; PAGE_SLOTS]>());
        }
        unique_mut(&mut self.pages[p].buf).expect("just made unique")
    }

    /// Copies the pages among `first..=last` that a snapshot shares, so the
    /// writes to them that follow allocate nothing. On failure, nothing the
    /// table holds has changed (a page already copied holds the same slots).
    #[inline]
    fn unshare(&mut self, first: usize, last: usize) -> Result<()> {
        for p in first..=last {
            self.unshare_page(p)?;
        }
        Ok(())
    }

    /// `unshare` of page `p` alone. Inline, the copy out of line: it runs
    /// for every slot a rebuild places and every page a shift touches (as
    /// an out-of-line call through `unshare`'s loop it took 44 instructions).
    #[inline(always)]
    fn unshare_page(&mut self, p: usize) -> Result<()> {
        if TryArc::strong_count(&self.pages[p].buf) != 1 {
            self.copy_page(p)?;
        }
        Ok(())
    }

    #[cold]
    #[inline(never)]
    fn copy_page(&mut self, p: usize) -> Result<()> {
        let page = &mut self.pages[p];
        let copy = page
            .buf
            .try_clone()
            .ok_or_else(|| oom("cannot copy a slot page a snapshot shares"))?;
        *page = Page::new(copy)?;
        self.cow_pages += 1;
        Ok(())
    }

    /// First empty slot at or after `i`, if any.
    fn empty_from(&self, mut i: usize) -> Option<usize> {
        while let Some(page) = self.pages.get(i >> PAGE_BITS) {
            // `i` may be the table's length, inside the last page's block:
            // only the last page can be partial, so nothing follows it.
            let rest = page.get(i & PAGE_MASK..).filter(|r| !r.is_empty())?;
            if let Some(k) = rest.iter().position(Slot::is_empty) {
                return Some(i + k);
            }
            i += rest.len();
        }
        None
    }

    /// Puts `s` at `pos`, moving slots `pos..end` one slot right; slot `end`
    /// must be empty. Moves whole stretches within each page (one `memmove`
    /// per page instead of a checked read and write per slot).
    fn insert_shifting(&mut self, pos: usize, end: usize, s: Slot) {
        debug_assert!(pos <= end && end < self.len && self.get(end).is_empty());
        let first = pos >> PAGE_BITS;
        for p in (first..=end >> PAGE_BITS).rev() {
            let base = p << PAGE_BITS;
            // Destinations in this page: global max(pos + 1, base)..=min(end, page end).
            let hi = (end - base).min(self.pages[p].len() - 1);
            let lo = (pos + 1).max(base) - base;
            // The slot entering this page's first position comes from the
            // previous page's last one (read before that page is moved).
            let carried = (base > pos).then(|| self.get(base - 1));
            let page = self.page_mut(p);
            if lo.max(1) <= hi {
                page.copy_within(lo.max(1) - 1..hi, lo.max(1));
            }
            if let Some(c) = carried {
                page[0] = c;
            }
        }
        self.set(pos, s);
    }

    /// The home slot of a key with hash fragment `frag`: `frag` scaled to
    /// the nominal capacity (multiply and shift rather than a mask, so the
    /// capacity need not be a power of two). Monotone in `frag`, hence in
    /// `h1`, as the ordered runs need.
    #[inline]
    fn home_of_frag(&self, frag: u64) -> usize {
        // frag < 2^28 and nominal <= 2^28: the product fits in 64 bits.
        ((frag * self.nominal as u64) >> FRAG_BITS) as usize
    }

    #[inline]
    fn home(&self, h1: u64) -> usize {
        self.home_of_frag(frag_of(h1))
    }

    /// The home of the key in occupied slot `s`.
    #[inline]
    fn home_of(&self, s: Slot) -> usize {
        self.home_of_frag(s.frag())
    }

    fn max_count(&self) -> usize {
        self.nominal / 8 * 7
    }
}

/// Where a batch lookup expects a key's record (see `ShardData::candidate`);
/// borrows the shard data it was found in, so it cannot outlive the read
/// access it was found under.
#[derive(Clone, Copy)]
pub struct Candidate<'a>(
    std::num::NonZeroU64,
    std::marker::PhantomData<&'a ShardData>,
);

/// One stored entry, as a scan passes it on.
#[derive(Clone, Copy)]
pub struct Entry<'a> {
    pub key: &'a [u8],
    pub value: &'a [u8],
    /// The key and the value back to back, as stored.
    body: &'a [u8],
    /// The whole record: header, key and value.
    stored: &'a [u8],
}

impl<'a> Entry<'a> {
    /// The key followed by the value in one slice: a batch copies it in one
    /// piece.
    #[inline]
    pub fn body(&self) -> &'a [u8] {
        self.body
    }
}

/// The chunk a record location points into (`usize::MAX` for 0, which no
/// record has).
#[inline]
fn chunk_index(loc: u64) -> usize {
    ((loc >> OFFSET_BITS) as usize).wrapping_sub(1)
}

#[inline]
fn chunk_offset(loc: u64) -> usize {
    (loc as usize) & (CHUNK_MAX - 1)
}

/// Where a record's key starts, and its key and value lengths, from the
/// header at `off` (see `SHORT_HEADER`).
#[inline(always)]
fn parse_header(chunk: &[u8], off: usize) -> (usize, usize, usize) {
    let short: [u8; SHORT_HEADER] = chunk[off..off + SHORT_HEADER].try_into().expect("2 bytes");
    // Lengths travel as u32 from both forms, so the compiler knows their sum
    // cannot overflow and drops that check from every record access.
    let (k, klen, vlen) = if short[0] < LONG_TAG {
        (off + SHORT_HEADER, u32::from(short[0]), u32::from(short[1]))
    } else {
        parse_long_header(chunk, off)
    };
    (k, klen as usize, vlen as usize)
}

#[cold]
#[inline(never)]
fn parse_long_header(chunk: &[u8], off: usize) -> (usize, u32, u32) {
    let h = &chunk[off + 1..off + LONG_HEADER];
    let klen = u32::from_le_bytes([h[0], h[1], h[2], h[3]]);
    let vlen = u32::from_le_bytes([h[4], h[5], h[6], h[7]]);
    (off + LONG_HEADER, klen, vlen)
}

/// Append-only byte chunks holding `[header][key][value]` records.
#[derive(Clone, Default)]
pub struct Arena {
    chunks: Vec<TryArc<Buf<u8>>>,
    live: usize,
    total: usize,
    /// Records appended since the arena was last laid out in table order.
    unsorted: usize,
    /// Records laid out in table order by the last repack.
    sorted: usize,
    /// Capacity for the first chunk (see `with_room`).
    first_chunk: usize,
    /// Empty chunks a prepared batch reserved (see `ShardData::prepare_writes`),
    /// taken in place of opening or growing one; empty outside a batch.
    spares: Vec<TryArc<Buf<u8>>>,
}

impl Arena {
    /// An empty arena whose first chunk starts with room for `bytes` (up to
    /// a whole chunk): a repack knows how much it will copy.
    fn with_room(bytes: usize) -> Arena {
        Arena {
            first_chunk: bytes,
            ..Arena::default()
        }
    }

    fn header_len(klen: usize, vlen: usize) -> usize {
        if klen < LONG_TAG as usize && vlen <= u8::MAX as usize {
            SHORT_HEADER
        } else {
            LONG_HEADER
        }
    }

    fn record_len(klen: usize, vlen: usize) -> usize {
        Self::header_len(klen, vlen) + klen + vlen
    }

    /// Appends a record of `key` and `val`; returns its location. Inline for
    /// the common case, a last chunk of this shard's own with room; opening
    /// or growing a chunk is out of line.
    #[inline(always)]
    fn alloc(&mut self, key: &[u8], val: &[u8]) -> Result<u64> {
        let rec = Self::record_len(key.len(), val.len());
        let idx = self.chunks.len().wrapping_sub(1);
        let last = self.chunks.last_mut().and_then(unique_mut);
        match last {
            Some(chunk)
                if Self::may_append(chunk, rec) && chunk.capacity() - chunk.len() >= rec =>
            {
                let off = Self::write_record(chunk, key, val);
                Ok(self.appended(idx, off, rec))
            }
            _ => self.alloc_making_room(key, val, rec),
        }
    }

    /// Appends a copy of the stored record `e` (from this or another
    /// arena) and returns its location: growth and repacks copy each record
    /// whole, header included, as the one byte string it is (a record's
    /// encoding depends only on its lengths, so the copy is the record
    /// `alloc` would write).
    #[inline(always)]
    fn alloc_copy(&mut self, e: Entry<'_>) -> Result<u64> {
        let rec = e.stored.len();
        let idx = self.chunks.len().wrapping_sub(1);
        match self.chunks.last_mut().and_then(unique_mut) {
            Some(chunk)
                if Self::may_append(chunk, rec) && chunk.capacity() - chunk.len() >= rec =>
            {
                let off = chunk.len();
                chunk.extend_from_bytes(e.stored);
                Ok(self.appended(idx, off, rec))
            }
            _ => self.alloc_making_room(e.key, e.value, rec),
        }
    }

    /// Whether a `rec`-byte record may go into `chunk` (the shard's own
    /// last chunk), growing it if needed: a record over half a chunk gets
    /// a chunk of its own, and offsets must stay below `CHUNK_MAX`.
    #[inline(always)]
    fn may_append(chunk: &Buf<u8>, rec: usize) -> bool {
        rec <= CHUNK_MAX / 2 && chunk.len() + rec <= CHUNK_MAX
    }

    #[inline(never)]
    fn alloc_making_room(&mut self, key: &[u8], val: &[u8], rec: usize) -> Result<u64> {
        let idx = self.make_room(rec)?;
        let chunk = unique_mut(&mut self.chunks[idx]).expect("last chunk is unique");
        let off = Self::write_record(chunk, key, val);
        Ok(self.appended(idx, off, rec))
    }

    /// Makes the last chunk one of this arena's own with room for `rec`
    /// more bytes that `may_append` lets in, opening or growing one; returns
    /// its index. Changes no record. (Also how a batch reserves room for
    /// all its records at once, `rec` being their total.)
    fn make_room(&mut self, rec: usize) -> Result<usize> {
        if let Some(idx) = self.take_spare(rec) {
            return Ok(idx);
        }
        let fits_last = self
            .chunks
            .last_mut()
            .and_then(unique_mut)
            .is_some_and(|c| Self::may_append(c, rec));
        if !fits_last {
            // Chunks start small and double; the first of a repack's fresh
            // arena starts with room for what the repack copies, and once
            // the arena has filled a full-size chunk the next is full-size
            // at once. That one comes from the region pool, where capacity
            // not yet written is not resident; growing it from 1 KiB
            // instead copied every record once more and left the smaller
            // buffers in glibc's per-thread arenas. Only when the last
            // chunk is full, not merely shared with a snapshot: a write
            // after every snapshot opens a chunk of its own, and at full
            // size each would reserve 256 KiB for a few records.
            let filled_full_chunk = self
                .chunks
                .last()
                .is_some_and(|c| TryArc::strong_count(c) == 1 && c.capacity() >= CHUNK_MAX);
            let first_cap = if rec > CHUNK_MAX / 2 {
                rec
            } else if self.chunks.is_empty() {
                rec.max(1024).max(self.first_chunk.min(CHUNK_MAX))
            } else if filled_full_chunk {
                CHUNK_MAX
            } else {
                rec.max(1024)
            };
            if self.chunks.len() >= MAX_CHUNKS {
                return Err(Error::new(
                    McStatus::MC_ERR_TOO_LARGE,
                    "a shard's arena cannot address more chunks",
                ));
            }
            let v = Buf::try_with_capacity(first_cap, first_cap == CHUNK_MAX)
                .ok_or_else(|| oom("cannot allocate an arena chunk"))?;
            alloc::try_reserve(&mut self.chunks, 1)
                .ok_or_else(|| oom("cannot allocate an arena's chunk list"))?;
            let v = TryArc::try_new(v).map_err(|_| oom("cannot allocate an arena chunk"))?;
            self.chunks.push(v);
        }
        let idx = self.chunks.len() - 1;
        let chunk = unique_mut(&mut self.chunks[idx]).expect("last chunk is unique");
        if chunk.capacity() - chunk.len() < rec {
            // Full-size chunks come from the region pool (see `pool`).
            let want = CHUNK_MAX.min((chunk.capacity() * 2).max(chunk.len() + rec));
            chunk
                .try_reserve_exact(want - chunk.len(), want == CHUNK_MAX)
                .ok_or_else(|| oom("cannot allocate an arena chunk"))?;
        }
        Ok(idx)
    }

    /// Makes a reserved spare chunk (see `spares`) the last chunk and
    /// returns its index, if one suits a `rec`-byte record: a full-size
    /// one for a record `may_append` lets share a chunk, else the smallest
    /// that holds it. Allocates nothing (the chunk list has the room).
    #[cold]
    fn take_spare(&mut self, rec: usize) -> Option<usize> {
        let fits = |c: &TryArc<Buf<u8>>| {
            if rec <= CHUNK_MAX / 2 {
                c.capacity() == CHUNK_MAX
            } else {
                c.capacity() >= rec
            }
        };
        let (i, _) = self
            .spares
            .iter()
            .enumerate()
            .filter(|(_, c)| fits(c))
            .min_by_key(|(_, c)| c.capacity())?;
        debug_assert!(self.chunks.capacity() > self.chunks.len());
        let spare = self.spares.swap_remove(i);
        self.chunks.push(spare);
        Some(self.chunks.len() - 1)
    }

    /// Writes the record of `key` and `val` at the end of `chunk`, which
    /// must have room; returns its offset.
    #[inline(always)]
    fn write_record(chunk: &mut Buf<u8>, key: &[u8], val: &[u8]) -> usize {
        let off = chunk.len();
        if Self::header_len(key.len(), val.len()) == SHORT_HEADER {
            chunk.extend_from_slice(&[key.len() as u8, val.len() as u8]);
        } else {
            chunk.extend_from_slice(&[LONG_TAG]);
            chunk.extend_from_slice(&(key.len() as u32).to_le_bytes());
            chunk.extend_from_slice(&(val.len() as u32).to_le_bytes());
        }
        chunk.extend_from_bytes(key);
        chunk.extend_from_bytes(val);
        off
    }

    /// Counts a `rec`-byte record just written at offset `off` of chunk
    /// `idx`; returns its location.
    #[inline(always)]
    fn appended(&mut self, idx: usize, off: usize, rec: usize) -> u64 {
        self.live += rec;
        self.total += rec;
        self.unsorted += 1;
        ((idx as u64 + 1) << OFFSET_BITS) | off as u64
    }

    /// The record at `loc` as an `Entry` (key, value and the stored bytes).
    #[inline(always)]
    fn entry(&self, loc: u64) -> Entry<'_> {
        Self::entry_from(self.record_from(loc))
    }

    /// The record at `loc` and the rest of its chunk after it, for a scan
    /// to prefetch now and read with `entry_from` later.
    #[inline(always)]
    fn record_from(&self, loc: u64) -> &[u8] {
        &self.chunks[chunk_index(loc)][chunk_offset(loc)..]
    }

    /// The entry at the start of `record` (from `record_from`). Written
    /// for the short header a scan nearly always meets: two length checks
    /// per record where `parse_header` took three.
    #[inline(always)]
    fn entry_from(record: &[u8]) -> Entry<'_> {
        if let [klen, vlen, rest @ ..] = record {
            if *klen < LONG_TAG {
                let klen = usize::from(*klen);
                let body = &rest[..klen + usize::from(*vlen)];
                let (key, value) = body.split_at(klen);
                let stored = &record[..SHORT_HEADER + body.len()];
                return Entry {
                    key,
                    value,
                    body,
                    stored,
                };
            }
        }
        Self::long_entry_from(record)
    }

    #[inline(always)]
    fn long_entry_from(record: &[u8]) -> Entry<'_> {
        let (k, klen, vlen) = parse_header(record, 0);
        let body = &record[k..][..klen + vlen];
        let (key, value) = body.split_at(klen);
        let stored = &record[..k + body.len()];
        Entry {
            key,
            value,
            body,
            stored,
        }
    }

    #[inline(always)]
    fn record(&self, loc: u64) -> (&[u8], &[u8]) {
        let e = self.entry(loc);
        (e.key, e.value)
    }

    /// Where the record at `loc` starts, for prefetching: never
    /// dereferenced, so a stale location is harmless.
    #[inline(always)]
    fn record_ptr(&self, loc: u64) -> Option<*const u8> {
        let chunk = self.chunks.get(chunk_index(loc))?;
        Some(chunk.as_ptr().wrapping_add(chunk_offset(loc)))
    }

    /// Starts fetching the record at `loc` into L1: a batch lookup does so
    /// for every key before comparing any, so the record misses overlap.
    #[inline]
    fn prefetch(&self, loc: u64) {
        if let Some(p) = self.record_ptr(loc) {
            prefetch::<INTO_L1>(p);
        }
    }

    /// The `reach` of a scan's second prefetch per record: the last byte of an
    /// average live record, at most a cache line on.
    fn record_reach(&self, records: usize) -> usize {
        (self.live / records.max(1)).clamp(1, 64) - 1
    }

    fn free(&mut self, loc: u64) {
        let (k, v) = self.record(loc);
        self.live -= Self::record_len(k.len(), v.len());
    }

    /// Overwrites a value of the same length in place when no snapshot shares
    /// the chunk. Returns false when the caller must relocate instead.
    fn overwrite_in_place(&mut self, loc: u64, val: &[u8]) -> bool {
        let chunk = &self.chunks[chunk_index(loc)];
        let (k, klen, vlen) = parse_header(chunk, chunk_offset(loc));
        if vlen != val.len() {
            return false;
        }
        let start = k + klen;
        let Some(chunk) = unique_mut(&mut self.chunks[chunk_index(loc)]) else {
            return false;
        };
        copy_small(&mut chunk[start..start + val.len()], val);
        true
    }

    fn is_unshared(&self) -> bool {
        self.chunks.iter().all(|c| TryArc::strong_count(c) == 1)
    }

    fn needs_compaction(&self) -> bool {
        let dead = self.total - self.live;
        self.total >= CHUNK_MAX && dead * 2 > self.total && self.is_unshared()
    }

    pub fn bytes(&self) -> usize {
        self.chunks.iter().map(|c| c.capacity()).sum()
    }
}

/// One shard's table and arena. Cloning is a cheap, shallow snapshot.
#[derive(Clone)]
pub struct ShardData {
    table: Table,
    arena: Arena,
    /// Entries the shard keeps room for (`keep_room`): removals do not
    /// shrink the table below that, so a reservation survives a map emptied
    /// and refilled (`shrink_to_fit` and `clear` drop it).
    reserved: usize,
}

/// Slots `visit_from` takes per block: one bit each in `Block::occupied`.
const BLOCK_SLOTS: usize = 64;

/// Up to this many wanted entries, `visit_from` neither gathers blocks nor
/// prefetches.
const FEW_WANTED: usize = 4;

/// Up to `BLOCK_SLOTS` consecutive slots from slot `base`, with a bit set in
/// `occupied` for each occupied one.
#[derive(Clone, Copy)]
struct Block {
    base: usize,
    occupied: u64,
}

/// A mask with bit `j` set for each occupied `slots[j]` (at most 64 slots).
#[inline(always)]
fn occupancy(slots: &[Slot]) -> u64 {
    #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
    if let Ok(block) = <&[Slot; BLOCK_SLOTS]>::try_from(slots) {
        return occupancy_sse2(block);
    }
    let mut occupied = 0u64;
    for (j, s) in slots.iter().enumerate() {
        occupied |= u64::from(!s.is_empty()) << j;
    }
    occupied
}

/// `occupancy` of a whole block, eight slots per step: compare their 32-bit
/// halves with zero, pack the sixteen results into a byte mask, and keep a
/// bit per slot. About 3 instructions per slot; the compiler's own
/// vectorisation of the scalar loop took 7 (callgrind).
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
#[inline(always)]
fn occupancy_sse2(block: &[Slot; BLOCK_SLOTS]) -> u64 {
    let mut occupied = 0u64;
    for (q, eight) in block.chunks_exact(8).enumerate() {
        let zero_halves = zero_halves_sse2(eight.try_into().expect("8 slots"));
        // Slot i is empty when both of its halves (bits 2i, 2i+1) are zero.
        let empty = zero_halves & (zero_halves >> 1) & 0x5555;
        let mut occ = !empty & 0x5555;
        occ = (occ | occ >> 1) & 0x3333;
        occ = (occ | occ >> 2) & 0x0f0f;
        occ = (occ | occ >> 4) & 0x00ff;
        occupied |= u64::from(occ) << (8 * q);
    }
    occupied
}

/// Bit `2i` set when the low 32 bits of `eight[i]` are zero, bit `2i + 1`
/// when its high 32 bits are.
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
#[inline(always)]
#[allow(unused_unsafe)] // these intrinsics are safe to call since Rust 1.87
fn zero_halves_sse2(eight: &[Slot; 8]) -> u32 {
    use std::arch::x86_64::*;
    let pair = |i: usize| {
        // SAFETY: compiled only where SSE2 is enabled (the x86_64
        // baseline), so these intrinsics exist; they only compute on values.
        unsafe {
            _mm_cmpeq_epi32(
                _mm_set_epi64x(eight[i + 1].0 as i64, eight[i].0 as i64),
                _mm_setzero_si128(),
            )
        }
    };
    let (p0, p1, p2, p3) = (pair(0), pair(2), pair(4), pair(6));
    // SAFETY: as above. Packing keeps 0 and -1 as they are (saturation).
    unsafe {
        let low4 = _mm_packs_epi32(p0, p1);
        let high4 = _mm_packs_epi32(p2, p3);
        _mm_movemask_epi8(_mm_packs_epi16(low4, high4)) as u32
    }
}

/// Order of `key` (at position `(h1, lazily h2)`) against the stored key
/// `stored`, whose slot fragment equals `key`'s: the fragment leaves `h1`
/// undecided, so it is hashed again from the stored key.
fn key_order(
    hasher: &KeyHasher,
    h1: u64,
    key: &[u8],
    key_h2: &mut Option<u64>,
    stored: &[u8],
) -> std::cmp::Ordering {
    h1.cmp(&hasher.h1(stored)).then_with(|| {
        let a = *key_h2.get_or_insert_with(|| hasher.h2(key));
        let b = hasher.h2(stored);
        a.cmp(&b).then_with(|| key.cmp(stored))
    })
}

/// A fresh table being filled in slot order by `rebuild`: each slot goes
/// to its home or just past the one placed before it, whichever is later.
struct Relay {
    t: Table,
    next_free: usize,
}

impl Relay {
    #[inline(always)]
    fn place(&mut self, s: Slot) -> Result<()> {
        let p = self.t.home_of(s).max(self.next_free);
        if p >= self.t.len {
            self.grow()?;
        }
        self.t.set(p, s);
        self.next_free = p + 1;
        Ok(())
    }

    /// More overflow slack, when the slots placed so far reach the end.
    #[cold]
    #[inline(never)]
    fn grow(&mut self) -> Result<()> {
        self.t.extend((self.t.len / 8).max(8))
    }
}

/// A shard's table (and arena) re-laid by `ShardData::relaid`, not yet
/// installed: building it is the part of a re-lay that can fail.
pub struct Relaid {
    table: Table,
    arena: Option<Arena>,
}

/// Room `ShardData::prepare_writes` made for a batch of writes: the
/// re-laid table (if one was needed) to install before them, the spare
/// arena chunks they may take, and under a snapshot the per-page counts
/// `note_write` keeps.
pub struct Prepared {
    relaid: Option<Relaid>,
    spares: Vec<TryArc<Buf<u8>>>,
    arrivals: Option<Vec<u32>>,
}

/// One shard's share of a batch of writes, as `prepare_writes` sizes it.
#[derive(Clone, Copy, Default)]
pub struct BatchShare {
    /// Pairs.
    pub n: usize,
    /// Their records' bytes.
    pub bytes: usize,
    /// The largest record's bytes.
    pub max_rec: usize,
    /// Records over half a chunk ("big": each gets a chunk of its own).
    pub big: usize,
    /// Their bytes.
    pub big_bytes: usize,
}

impl BatchShare {
    /// Counts a pair whose record takes `rec` bytes.
    pub fn add(&mut self, rec: usize) {
        self.n += 1;
        self.bytes = self.bytes.saturating_add(rec);
        self.max_rec = self.max_rec.max(rec);
        if record_is_big(rec) {
            self.big += 1;
            self.big_bytes = self.big_bytes.saturating_add(rec);
        }
    }
}

/// Whether a record of `rec` bytes gets an arena chunk of its own.
fn record_is_big(rec: usize) -> bool {
    rec > CHUNK_MAX / 2
}

/// Bytes the record of a `klen`-byte key and a `vlen`-byte value takes.
pub fn record_bytes(klen: usize, vlen: usize) -> usize {
    Arena::record_len(klen, vlen)
}

impl ShardData {
    /// An empty shard; fails only when its first slot page cannot be had.
    pub fn try_new() -> Result<ShardData> {
        Ok(ShardData {
            table: Table::with_nominal(MIN_NOMINAL)?,
            arena: Arena::default(),
            reserved: 0,
        })
    }

    /// `try_new` for tests, which have the memory.
    #[cfg(test)]
    pub fn new() -> ShardData {
        ShardData::try_new().expect("tiny initial table")
    }

    /// A point-in-time copy that shares every page and chunk (what a
    /// snapshot keeps): only the two lists of pointers are copied, with
    /// fallible allocations.
    pub fn try_clone(&self) -> Result<ShardData> {
        fn list<T: Clone>(v: &[T], what: &'static str) -> Result<Vec<T>> {
            let mut copy = alloc::try_vec(v.len()).ok_or_else(|| oom(what))?;
            copy.extend(v.iter().cloned());
            Ok(copy)
        }
        Ok(ShardData {
            table: Table {
                pages: list(&self.table.pages, "cannot allocate a snapshot's page list")?,
                ..self.table
            },
            arena: Arena {
                chunks: list(
                    &self.arena.chunks,
                    "cannot allocate a snapshot's chunk list",
                )?,
                spares: Vec::new(),
                ..self.arena
            },
            reserved: self.reserved,
        })
    }

    /// Number of entries.
    pub fn entries(&self) -> usize {
        self.table.count
    }

    /// Slot capacity in slots, for statistics.
    pub fn slots(&self) -> usize {
        self.table.len
    }

    pub fn arena_bytes(&self) -> usize {
        self.arena.bytes()
    }

    /// Slot pages copied so far because a snapshot shared them.
    pub fn cow_pages(&self) -> usize {
        self.table.cow_pages
    }

    /// Arena chunks in use (each at most 256 KiB unless one record is bigger).
    pub fn chunks(&self) -> usize {
        self.arena.chunks.len()
    }

    /// `Ok((i, value))`: the key is at slot `i`. `Err(i)`: it belongs at
    /// slot `i`. The value comes from the record read to compare the key.
    /// Past `probe`'s walk to the first slot with the key's fragment, every
    /// slot of the run up to a greater fragment is a tie, settled by the
    /// stored key's position. Ties are rare (see `get`), so slot by slot.
    fn find(
        &self,
        hasher: &KeyHasher,
        h1: u64,
        key: &[u8],
    ) -> std::result::Result<(usize, &[u8]), usize> {
        let mut i = self.probe(h1)?.0;
        let f = frag_of(h1);
        let mut key_h2 = None;
        while i < self.table.len {
            let s = self.table.get(i);
            if s.is_empty() || s.frag() > f {
                return Err(i);
            }
            let (k, v) = self.arena.record(s.loc());
            if bytes_eq(k, key) {
                return Ok((i, v));
            }
            if key_order(hasher, h1, key, &mut key_h2, k) == std::cmp::Ordering::Less {
                return Err(i);
            }
            i += 1;
        }
        Err(i)
    }

    /// `Ok(i)`: the key is at slot `i`. `Err(i)`: it belongs at slot `i`.
    #[inline(always)]
    fn locate(&self, hasher: &KeyHasher, h1: u64, key: &[u8]) -> std::result::Result<usize, usize> {
        self.locate_met(hasher, h1, key).map_err(|(pos, _)| pos)
    }

    /// `locate`, telling of an absent key also whether its walk met a slot
    /// holding its fragment: only then can another key share its position
    /// (equal positions mean equal fragments, and a walk stops at the first
    /// slot whose fragment is not below the key's).
    #[inline(always)]
    fn locate_met(
        &self,
        hasher: &KeyHasher,
        h1: u64,
        key: &[u8],
    ) -> std::result::Result<usize, (usize, bool)> {
        // A present key is almost always in the first slot with its
        // fragment, as a get finds it. A new key's walk ends where it
        // belongs unless it met a slot with its fragment: then only `find`
        // can order the two.
        match self.probe(h1) {
            Ok((i, loc)) if bytes_eq(self.arena.record(loc.get()).0, key) => Ok(i),
            Ok(_) => self
                .find(hasher, h1, key)
                .map(|(i, _)| i)
                .map_err(|pos| (pos, true)),
            Err(end) => Err((end, false)),
        }
    }

    /// The value of `key`: compares it with the record of the first slot
    /// holding its hash fragment (almost always the key's own), and walks
    /// the run in full only on a fragment tie. Ties take `28 - log2(nominal
    /// capacity)` bits to tell apart: about 1 lookup in 500-1,000 at 10M
    /// entries, 1 in several thousand at 1M, but most lookups once a shard
    /// nears its 2^28-slot limit. Single-key gets run this, so it is kept
    /// short: every instruction between one get's cache misses and the
    /// next one's costs latency (bench/README.md, "What limits it").
    #[inline]
    pub fn get(&self, hasher: &KeyHasher, h1: u64, key: &[u8]) -> Option<&[u8]> {
        let (k, v) = self.arena.record(self.first_with_hash(h1)?.1.get());
        if bytes_eq(k, key) {
            Some(v)
        } else {
            self.get_past_tie(hasher, h1, key)
        }
    }

    /// Inserts or overwrites. Returns true if the key was new (a structural change).
    pub fn insert(&mut self, hasher: &KeyHasher, h1: u64, key: &[u8], val: &[u8]) -> Result<bool> {
        self.insert_with(hasher, h1, key, val, true)
    }

    /// `insert`, tidying the arena as it goes when `tidy` is set.
    #[inline(always)]
    fn insert_with(
        &mut self,
        hasher: &KeyHasher,
        h1: u64,
        key: &[u8],
        val: &[u8],
        tidy: bool,
    ) -> Result<bool> {
        // Before any slot is read: it may move every record.
        if tidy {
            self.limit_chunks();
        }
        match self.locate_met(hasher, h1, key) {
            Ok(i) => {
                let s = self.table.get(i);
                if !self.arena.overwrite_in_place(s.loc(), val) {
                    self.table.unshare(i >> PAGE_BITS, i >> PAGE_BITS)?;
                    let loc = self.arena.alloc(key, val)?;
                    self.arena.free(s.loc());
                    self.table.set(i, s.with_loc(loc));
                    // The overwrite is done: tidying up must not report failure.
                    if tidy {
                        let _ = self.maybe_compact();
                    }
                }
                Ok(false)
            }
            Err(mut at) => {
                if self.table.count + 1 > self.table.max_count() {
                    // Double, but a table sized by `reserve` may not double within
                    // the limit: then take the limit (and past it, refuse).
                    let n = self.table.nominal;
                    self.rebuild(if n < MAX_NOMINAL {
                        (n * 2).min(MAX_NOMINAL)
                    } else {
                        n * 2
                    })?;
                    at = self.locate_met(hasher, h1, key).expect_err("key absent");
                }
                let (pos, met_fragment) = at;
                if met_fragment {
                    self.refuse_position_collision(hasher, h1, key, pos)?;
                }
                let loc = self.arena.alloc(key, val)?;
                if let Err(e) = self.place(pos, Slot::new(h1, loc)) {
                    self.arena.free(loc);
                    return Err(e);
                }
                self.table.count += 1;
                // A presized table is never re-laid, so repack on the same
                // doubling schedule growth would follow (amortised O(1)).
                if tidy
                    && self.arena.unsorted > self.arena.sorted.max(4096)
                    && self.arena.is_unshared()
                {
                    let _ = self.repack_arena();
                }
                Ok(true)
            }
        }
    }

    /// Cursors name an entry by its position `(h1, h2)`, so two different
    /// keys must never share one. Equal positions sort next to each other:
    /// only the neighbours of the insertion point can collide.
    fn refuse_position_collision(
        &self,
        hasher: &KeyHasher,
        h1: u64,
        key: &[u8],
        pos: usize,
    ) -> Result<()> {
        let mut key_h2 = None;
        for j in [pos.wrapping_sub(1), pos] {
            if j >= self.table.len {
                continue;
            }
            let s = self.table.get(j);
            if !s.is_empty() && s.frag() == frag_of(h1) {
                let other = self.arena.record(s.loc()).0;
                if hasher.h1(other) == h1
                    && *key_h2.get_or_insert_with(|| hasher.h2(key)) == hasher.h2(other)
                {
                    return Err(Error::new(
                        McStatus::MC_ERR_INVALID_ARGUMENT,
                        "the key collides with another key on both keyed hashes; refused so that iteration stays exactly-once",
                    ));
                }
            }
        }
        Ok(())
    }

    /// Puts `s` at `pos`, shifting the following run one slot right.
    fn place(&mut self, pos: usize, s: Slot) -> Result<()> {
        let end = match self.table.empty_from(pos) {
            Some(end) => end,
            None => {
                let end = self.table.len;
                let extra = (self.table.len / 8).max(8);
                self.table.extend(extra)?;
                end
            }
        };
        self.table.unshare(pos >> PAGE_BITS, end >> PAGE_BITS)?;
        self.table.insert_shifting(pos, end, s);
        Ok(())
    }

    /// Removes `key`; returns whether it was present. Fails, changing
    /// nothing, only when a page a snapshot shares cannot be copied.
    pub fn remove(&mut self, hasher: &KeyHasher, h1: u64, key: &[u8]) -> Result<bool> {
        match self.locate(hasher, h1, key) {
            Ok(i) => {
                self.remove_at(i)?;
                self.settle();
                Ok(true)
            }
            Err(_) => Ok(false),
        }
    }

    /// Copies the pages a snapshot shares that removing `key` would write,
    /// so that the removal allocates nothing: a batch removal prepares all
    /// its keys before removing any. Removing other keys first only moves
    /// this key's run to the left, within the pages prepared here.
    pub fn prepare_remove(&mut self, hasher: &KeyHasher, h1: u64, key: &[u8]) -> Result<()> {
        if let Ok(i) = self.locate(hasher, h1, key) {
            let end = self.shift_end(i);
            self.table.unshare(i >> PAGE_BITS, end >> PAGE_BITS)?;
        }
        Ok(())
    }

    /// Copies the pages a snapshot shares that removing the slots whose
    /// bits are set in `doomed` (bit `i % 64` of word `i / 64` for slot `i`)
    /// would write, so that removing them, from the last one down, allocates
    /// nothing. Removing slot `i` writes `i` through `shift_end(i)`; other
    /// removals only move that run to the left, within those pages (as in
    /// `prepare_remove`). A doomed slot before the previous one's
    /// `shift_end` has that same end: the run walked from it is the same.
    /// On failure the table holds what it held.
    pub fn prepare_removals(&mut self, doomed: &[u64]) -> Result<()> {
        let mut end = 0;
        let mut done = None;
        for (w, &word) in doomed.iter().enumerate() {
            let mut word = word;
            while word != 0 {
                let i = w * 64 + word.trailing_zeros() as usize;
                word &= word - 1;
                if done.is_some() && i < end {
                    continue;
                }
                end = self.shift_end(i);
                let first = (i >> PAGE_BITS).max(done.map_or(0, |d: usize| d + 1));
                let last = end >> PAGE_BITS;
                if first <= last {
                    self.table.unshare(first, last)?;
                }
                done = Some(last);
            }
        }
        Ok(())
    }

    /// Removes slot `i`, shifting the following run back towards home. Slot
    /// indices stay meaningful until `settle` is called. Fails, changing
    /// nothing, only when a page a snapshot shares cannot be copied.
    pub fn remove_at(&mut self, i: usize) -> Result<()> {
        let end = self.shift_end(i);
        self.table.unshare(i >> PAGE_BITS, end >> PAGE_BITS)?;
        let s = self.table.get(i);
        self.arena.free(s.loc());
        self.table.count -= 1;
        for j in i..end {
            let n = self.table.get(j + 1);
            self.table.set(j, n);
        }
        self.table.set(end, Slot::EMPTY);
        Ok(())
    }

    /// The last slot that removing slot `i` writes: the end of the run of
    /// entries after `i` that sit past their home and move back by one.
    fn shift_end(&self, i: usize) -> usize {
        let mut j = i;
        while j + 1 < self.table.len {
            let n = self.table.get(j + 1);
            if n.is_empty() || self.table.home_of(n) > j {
                break;
            }
            j += 1;
        }
        j
    }

    /// After removals: shrinks a mostly empty table and compacts a mostly dead
    /// arena. Both are best-effort; on allocation failure the old layout stays.
    /// Returns whether slots moved (the table shrank).
    pub fn settle(&mut self) -> bool {
        let mut relaid = false;
        if self.table.nominal > MIN_NOMINAL && self.table.count < self.table.nominal / 8 {
            let nominal = (self.table.count * 2).max(capped_nominal_for(self.reserved));
            if nominal < self.table.nominal {
                // Shrinking is best-effort: on allocation failure the bigger table stays.
                relaid = self.rebuild(nominal).is_ok();
            }
        }
        let _ = self.maybe_compact();
        relaid
    }

    /// Re-lays the table with nominal capacity `nominal` (at least
    /// `MIN_NOMINAL`). Order is preserved, so the old run order is placed
    /// left to right, each entry at max(home, previous + 1).
    fn rebuild(&mut self, nominal: usize) -> Result<()> {
        let r = self.relaid(nominal)?;
        self.install(r);
        Ok(())
    }

    /// `rebuild`'s first part, which may fail and changes nothing: the
    /// new table (and arena), built beside the current ones.
    fn relaid(&self, nominal: usize) -> Result<Relaid> {
        if nominal > MAX_NOMINAL {
            return Err(Error::new(
                McStatus::MC_ERR_TOO_LARGE,
                "table would exceed the maximum capacity",
            ));
        }
        let t = Table::with_nominal(nominal.max(MIN_NOMINAL))?;
        // While no snapshot holds the arena, copy records into a fresh one in
        // table order: iteration then reads the arena sequentially instead of
        // in insertion order, and dead space is dropped on the way.
        let mut fresh = self
            .arena
            .is_unshared()
            .then(|| Arena::with_room(self.arena.live));
        let mut relay = Relay { t, next_free: 0 };
        match fresh.as_mut() {
            Some(a) => {
                let mut failed = None;
                self.visit_from(0, usize::MAX, |i, e| {
                    let s = self.table.get(i);
                    match a.alloc_copy(e).and_then(|loc| relay.place(s.with_loc(loc))) {
                        Ok(()) => true,
                        Err(e) => {
                            failed = Some(e);
                            false
                        }
                    }
                });
                if let Some(e) = failed {
                    return Err(e);
                }
            }
            None => {
                for i in 0..self.table.len {
                    let s = self.table.get(i);
                    if !s.is_empty() {
                        relay.place(s)?;
                    }
                }
            }
        }
        let mut t = relay.t;
        t.count = self.table.count;
        t.cow_pages = self.table.cow_pages;
        Ok(Relaid {
            table: t,
            arena: fresh,
        })
    }

    /// `rebuild`'s second part, which cannot fail: puts `r` (built by
    /// `relaid` from this shard as it still is) in place.
    pub fn install(&mut self, r: Relaid) {
        debug_assert_eq!(r.table.count, self.table.count);
        self.table = r.table;
        if let Some(mut a) = r.arena {
            a.unsorted = 0;
            a.sorted = self.table.count;
            self.arena = a;
        }
    }

    /// A write never appends to a chunk a snapshot shares, so writes made
    /// while snapshots come and go (one taken before every write, say)
    /// leave a small chunk each, and nothing else merges them: compaction
    /// looks at dead bytes, not at chunk counts. Unchecked, the count would
    /// reach the `MAX_CHUNKS` a location can address (writes would then
    /// fail), and every snapshot, which clones the chunk list, would get
    /// slower. So when a shard has at least `CHUNK_REPACK_MIN` chunks and
    /// more than twice (plus some slack) what its record bytes fill, a write
    /// first copies the live records into fresh chunks; snapshots keep the
    /// old ones through their own references. Ordinary growth fills each
    /// chunk before opening the next, so it never gets there. Between two
    /// such copies at least as many writes pass as the fresh layout has
    /// chunks (plus the slack), so the copying averages out to at most one
    /// chunk's worth per write, though the write that triggers it pays for
    /// the whole shard. Best-effort: on allocation failure the write goes on
    /// with the old arena.
    #[inline]
    fn limit_chunks(&mut self) {
        let n = self.arena.chunks.len();
        if n >= CHUNK_REPACK_MIN
            && n > 2 * self.arena.total.div_ceil(CHUNK_MAX) + CHUNK_REPACK_MIN / 2
        {
            let _ = self.repack_arena();
        }
    }

    fn maybe_compact(&mut self) -> Result<()> {
        if self.arena.needs_compaction() {
            self.repack_arena()?;
        }
        Ok(())
    }

    /// Copies live records into a fresh arena in table order. Out of line
    /// (it copies the whole arena): inlined, its code cost every write
    /// that might call it a few instructions.
    #[cold]
    #[inline(never)]
    fn repack_arena(&mut self) -> Result<()> {
        let mut fresh = Arena::with_room(self.arena.live);
        let mut moved = Vec::new();
        moved
            .try_reserve_exact(self.table.count)
            .map_err(|_| oom("cannot allocate a compaction's list of moved records"))?;
        let mut failed = Ok(());
        self.visit_from(0, usize::MAX, |i, e| match fresh.alloc_copy(e) {
            Ok(loc) => {
                moved.push((i, loc));
                true
            }
            Err(err) => {
                failed = Err(err);
                false
            }
        });
        failed?;
        // A snapshot may share the table's pages though not the arena's
        // chunks (`limit_chunks` repacks under snapshots).
        self.table
            .unshare(0, self.table.pages.len().saturating_sub(1))?;
        for (i, loc) in moved {
            let s = self.table.get(i);
            self.table.set(i, s.with_loc(loc));
        }
        fresh.unsorted = 0;
        fresh.sorted = self.table.count;
        self.arena = fresh;
        Ok(())
    }

    /// Makes room for `additional` more entries without growing. Returns true if
    /// the table was re-laid.
    pub fn reserve(&mut self, additional: usize) -> Result<bool> {
        match self.reserved_table(additional)? {
            Some(r) => {
                self.install(r);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// Makes room for a batch of writes (inserts or overwrites) of this
    /// shard, sized by `share`, so that `install_prepared` and then
    /// `insert_quiet` of each allocate nothing and cannot fail for lack of
    /// memory: the batch then writes all or nothing. `keys` are the batch's
    /// keys in this shard with their `h1` and record size, walked only to
    /// count new keys and to size big records. `shared`: a snapshot may
    /// share this shard's pages and chunks (the caller knows); then every
    /// key must also be passed to `note_write`, and `unshare_noted` called,
    /// before the writes.
    ///
    /// The room is:
    /// - entries up to the table's load limit (a re-laid table if needed,
    ///   built here, installed later), counting the new keys (a walk over
    ///   `keys`) only when the table might have to grow;
    /// - as many empty slots at the table's end as there may be new keys
    ///   (each insert's shift ends at an empty slot, and takes one);
    /// - arena room for every record: up to one chunk's worth of records
    ///   with none over half a chunk, one chunk of the arena's own with
    ///   room for all; beyond that, spare chunks that the appends take in
    ///   turn (see `spares`): one of each big record's size (over half a
    ///   chunk), and full-size ones for the rest. A chunk of those closes
    ///   only when a record does not fit, that is more than half full, or
    ///   when a big record comes in between, so `small / (CHUNK_MAX / 2) +
    ///   big + 1` full-size ones suffice. Their capacity is at most twice
    ///   the records' bytes plus one chunk; pooled chunks are not resident
    ///   until written, and `tidy` frees the unused ones;
    /// - under a snapshot, the slot pages the writes will change copied
    ///   (see `note_write`).
    ///
    /// Making it changes no entry (a longer table end, empty or larger
    /// chunks, private copies of shared pages); dropping the `Prepared`
    /// frees what it holds.
    pub fn prepare_writes<'k>(
        &mut self,
        hasher: &KeyHasher,
        share: &BatchShare,
        shared: bool,
        keys: impl Iterator<Item = (u64, &'k [u8], usize)> + Clone,
    ) -> Result<Prepared> {
        let BatchShare {
            n,
            bytes,
            max_rec,
            big,
            big_bytes,
        } = *share;
        let mut new = n;
        if self.table.count.saturating_add(n) > self.table.max_count() {
            new = keys
                .clone()
                .filter(|&(h1, k, _)| self.locate(hasher, h1, k).is_err())
                .count();
        }
        let mut relaid = self.reserved_table(new)?;
        let (table, arena) = match &mut relaid {
            Some(r) => (&mut r.table, r.arena.as_mut().unwrap_or(&mut self.arena)),
            None => (&mut self.table, &mut self.arena),
        };
        let trailing = (0..table.len.min(new))
            .take_while(|&j| table.get(table.len - 1 - j).is_empty())
            .count();
        if trailing < new {
            table.extend(new - trailing)?;
        }
        let mut spares = Vec::new();
        if max_rec <= CHUNK_MAX / 2 && bytes <= CHUNK_MAX {
            arena.make_room(bytes)?;
        } else {
            let full = (bytes - big_bytes) / (CHUNK_MAX / 2) + big + 1;
            let all = full + big;
            if arena.chunks.len().saturating_add(all) > MAX_CHUNKS {
                return Err(Error::new(
                    McStatus::MC_ERR_TOO_LARGE,
                    "a shard's arena cannot address more chunks",
                ));
            }
            spares =
                alloc::try_vec(all).ok_or_else(|| oom("cannot allocate a batch's chunk list"))?;
            alloc::try_reserve(&mut arena.chunks, all)
                .ok_or_else(|| oom("cannot allocate an arena's chunk list"))?;
            let sizes = keys
                .filter(|&(_, _, r)| record_is_big(r))
                .map(|(_, _, r)| r)
                .chain(std::iter::repeat(CHUNK_MAX).take(full));
            for cap in sizes {
                let chunk = Buf::try_with_capacity(cap, cap == CHUNK_MAX)
                    .ok_or_else(|| oom("cannot allocate an arena chunk"))?;
                spares.push(
                    TryArc::try_new(chunk).map_err(|_| oom("cannot allocate an arena chunk"))?,
                );
            }
        }
        // A re-laid table has pages of its own.
        let arrivals = if shared && relaid.is_none() {
            let pages = self.table.pages.len();
            let mut a = alloc::try_vec(pages)
                .ok_or_else(|| oom("cannot allocate a batch's page counts"))?;
            a.resize(pages, 0u32);
            Some(a)
        } else {
            None
        };
        Ok(Prepared {
            relaid,
            spares,
            arrivals,
        })
    }

    /// With `unshare_noted`: copies the slot pages a snapshot shares that
    /// the batch's writes may change, so that the writes allocate nothing;
    /// on failure the table holds what it held (a copied page has the same
    /// slots). Needs the batch's empty slots at the table's end already
    /// (`prepare_writes`). Every key of the batch in this shard is passed
    /// to `note_write`, in one walk over the batch for all shards.
    ///
    /// An overwrite writes its key's slot; an insert at `pos` shifts the
    /// slots from `pos` to the first empty one after it. The table's final
    /// layout does not depend on the order of the writes (each run is laid
    /// out at `max(home, previous + 1)`), and the slots an insert writes
    /// are occupied at the end, in the run that holds the slot where the
    /// key would go now. So count, per page, the batch's keys that would go
    /// there now ("arrivals"), and walk the pages carrying how many of them
    /// may still need an empty slot: page `p` takes at least
    /// `min(carried, empty slots of p)` of those carried in (their shifts
    /// fill its first empty slots), and at worst none of its own arrivals
    /// (all after its last empty slot), so at most `carried - empty`
    /// (floored at 0) plus its arrivals go on. Every page that has
    /// arrivals, carries some in, or holds a key being overwritten is
    /// copied: the pages the writes touch, and no more than a page beyond
    /// each stretch they fill. (An overwritten key that earlier inserts
    /// shift lands in a page a shift wrote.) Scratch: 4 bytes per page.
    pub fn note_write(
        &mut self,
        p: &mut Prepared,
        hasher: &KeyHasher,
        h1: u64,
        key: &[u8],
    ) -> Result<()> {
        let Some(arrivals) = p.arrivals.as_mut() else {
            return Ok(());
        };
        match self.locate(hasher, h1, key) {
            Ok(i) => self.table.unshare_page(i >> PAGE_BITS)?,
            Err(pos) => {
                let page = (pos >> PAGE_BITS).min(arrivals.len() - 1);
                arrivals[page] = arrivals[page].saturating_add(1);
            }
        }
        Ok(())
    }

    /// The page walk of `note_write`, once every key was noted.
    pub fn unshare_noted(&mut self, p: &mut Prepared) -> Result<()> {
        let Some(arrivals) = p.arrivals.take() else {
            return Ok(());
        };
        let mut carried = 0usize;
        for (page, &a) in arrivals.iter().enumerate() {
            if carried == 0 && a == 0 {
                continue;
            }
            self.table.unshare_page(page)?;
            let empty = self.table.pages[page]
                .iter()
                .filter(|s| s.is_empty())
                .count();
            carried = carried.saturating_sub(empty) + a as usize;
        }
        Ok(())
    }

    /// Puts in place what `prepare_writes` made: the re-laid table, if it
    /// made one, and the spare chunks. Returns whether it re-laid the table
    /// (a structural change).
    pub fn install_prepared(&mut self, p: Prepared) -> bool {
        let relaid = p.relaid.is_some();
        if let Some(r) = p.relaid {
            self.install(r);
        }
        self.arena.spares = p.spares;
        relaid
    }

    /// `insert` without the tidying (arena compaction and repacking) that
    /// follows a write: a batch prepared by `prepare_writes` must not lose
    /// its room to a repack before its last write. Call `tidy` after.
    pub fn insert_quiet(
        &mut self,
        hasher: &KeyHasher,
        h1: u64,
        key: &[u8],
        val: &[u8],
    ) -> Result<bool> {
        self.insert_with(hasher, h1, key, val, false)
    }

    /// The tidying `insert_quiet` skipped; best-effort, changes no entry.
    pub fn tidy(&mut self) {
        self.arena.spares = Vec::new();
        self.limit_chunks();
        let _ = self.maybe_compact();
        if self.arena.unsorted > self.arena.sorted.max(4096) && self.arena.is_unshared() {
            let _ = self.repack_arena();
        }
    }

    /// `reserve`'s part that may fail, changing nothing: the table to
    /// `install`, or None when the current one has the room.
    pub fn reserved_table(&self, additional: usize) -> Result<Option<Relaid>> {
        let want = self.table.count.saturating_add(additional);
        if want <= self.table.max_count() {
            return Ok(None);
        }
        // Past a 5/8 load the limit still holds up to 7/8.
        let nominal = capped_nominal_for(want);
        if want > nominal / 8 * 7 {
            return Err(Error::new(
                McStatus::MC_ERR_TOO_LARGE,
                "reserve request exceeds a shard's capacity",
            ));
        }
        let r = self.relaid(nominal)?;
        debug_assert!(want <= r.table.max_count());
        Ok(Some(r))
    }

    /// From now on removals leave room for at least `entries` entries
    /// (the most any call asked for), until `shrink_to_fit` or `clear`.
    pub fn keep_room(&mut self, entries: usize) {
        self.reserved = self.reserved.max(entries);
    }

    /// Shrinks table and arena to fit. Returns true if anything was re-laid.
    pub fn shrink_to_fit(&mut self) -> Result<bool> {
        self.reserved = 0;
        let nominal = nominal_for(self.table.count).expect("a stored count fits");
        let mut changed = false;
        if nominal < self.table.nominal {
            self.rebuild(nominal)?;
            changed = true;
        }
        if self.arena.total != self.arena.live && self.arena.is_unshared() {
            self.repack_arena()?;
            changed = true;
        }
        Ok(changed)
    }

    /// Key and value at occupied slot `i`.
    #[inline]
    pub fn entry_at(&self, i: usize) -> (&[u8], &[u8]) {
        self.arena.record(self.table.get(i).loc())
    }

    /// The entry in (occupied) slot `i`, with its stored bytes.
    #[inline]
    pub fn full_entry_at(&self, i: usize) -> Entry<'_> {
        self.arena.entry(self.table.get(i).loc())
    }

    /// Prefetches the home slot of `h1` (batch lookups overlap their misses).
    #[inline]
    pub fn prefetch_home(&self, h1: u64) {
        let i = self.table.home(h1);
        if let Some(page) = self.table.pages.get(i >> PAGE_BITS) {
            prefetch::<INTO_L1>(page.as_ptr().wrapping_add(i & PAGE_MASK).cast());
        }
    }

    /// The first slot holding `h1`'s fragment, and its record location;
    /// `None` proves the key absent (`find` would stop at the same slot).
    /// Walks page slices rather than indexing slot by slot: every get runs
    /// this loop (and, inlined, drops the index when it does not use it).
    #[inline]
    fn first_with_hash(&self, h1: u64) -> Option<(usize, std::num::NonZeroU64)> {
        self.probe(h1).ok()
    }

    /// `first_with_hash`, or where the walk for it ended: the first slot
    /// that is empty or holds a greater fragment, which is where a key with
    /// this hash belongs when no slot holds its fragment.
    #[inline(always)]
    fn probe(&self, h1: u64) -> std::result::Result<(usize, std::num::NonZeroU64), usize> {
        let t = &self.table;
        let mut i = t.home(h1);
        let f = frag_of(h1);
        while let Some(page) = t.pages.get(i >> PAGE_BITS) {
            let Some(rest) = page.get(i & PAGE_MASK..) else {
                break;
            };
            for (j, s) in rest.iter().enumerate() {
                if s.is_empty() || s.frag() > f {
                    return Err(i + j);
                }
                if s.frag() == f {
                    // An occupied slot's location is never 0.
                    return std::num::NonZeroU64::new(s.loc())
                        .map(|l| (i + j, l))
                        .ok_or(i + j);
                }
            }
            // The next page's first slot (past a partial last page, past
            // the table: the walk then ends at its length).
            i = (i | PAGE_MASK) + 1;
        }
        Err(i.min(t.len))
    }

    /// `first_with_hash`, starting to fetch that record: below hundreds of
    /// millions of entries it is the key's record almost always. Batch lookups run this for every
    /// key before comparing any, so the record misses overlap.
    #[inline]
    pub fn candidate(&self, h1: u64) -> Option<Candidate<'_>> {
        let (_, loc) = self.first_with_hash(h1)?;
        self.arena.prefetch(loc.get());
        Some(Candidate(loc, std::marker::PhantomData))
    }

    /// `get` when the first record with the key's fragment holds another
    /// key: the full walk, kept out of line (rare below hundreds of
    /// millions of entries; see `get`).
    #[cold]
    #[inline(never)]
    fn get_past_tie(&self, hasher: &KeyHasher, h1: u64, key: &[u8]) -> Option<&[u8]> {
        self.find(hasher, h1, key).ok().map(|(_, v)| v)
    }

    /// `get` given the key's `candidate`: one key comparison when the
    /// candidate holds the key, the full walk only on a fragment tie.
    #[inline]
    pub fn get_at_candidate(
        &self,
        hasher: &KeyHasher,
        h1: u64,
        key: &[u8],
        candidate: Option<Candidate<'_>>,
    ) -> Option<&[u8]> {
        let (k, v) = self.arena.record(candidate?.0.get());
        if bytes_eq(k, key) {
            Some(v)
        } else {
            self.get_past_tie(hasher, h1, key)
        }
    }

    /// Passes the occupied slots from `start` on, in order, to `f` until it
    /// returns false (then returns false) or the table ends (returns true).
    ///
    /// Slots are gathered a block at a time without a branch per slot (at a
    /// 5/8 load, empty and occupied slots alternate at random, and a branch
    /// on each mispredicted about as often as an entry was visited), and the
    /// next block's records are prefetched while this block's are visited:
    /// records appended since the last repack are scattered in the arena.
    /// The gathering keeps each record's place (its chunk from its offset
    /// on), so the visit does not decode the location a second time.
    ///
    /// `want` is the most entries `f` may accept: for a handful (a single
    /// `next`, a strict token's validity probe) the slots are walked one by
    /// one with no prefetching, which would fetch two blocks' records (some
    /// 80) for one entry.
    #[inline(always)]
    pub fn visit_from(
        &self,
        start: usize,
        want: usize,
        mut f: impl FnMut(usize, Entry<'_>) -> bool,
    ) -> bool {
        if want <= FEW_WANTED {
            let mut i = start;
            while let Some(j) = self.occupied_from(i) {
                if !f(j, self.arena.entry(self.table.get(j).loc())) {
                    return false;
                }
                i = j + 1;
            }
            return true;
        }
        let mut next = start;
        let reach = self.arena.record_reach(self.table.count);
        let mut records: [[&[u8]; BLOCK_SLOTS]; 2] = [[&[]; BLOCK_SLOTS]; 2];
        let [first, second] = &mut records;
        let (mut cur_records, mut ahead_records) = (first, second);
        let mut cur = self.gather(&mut next, reach, cur_records);
        loop {
            let ahead = self.gather(&mut next, reach, ahead_records);
            let mut occupied = cur.occupied;
            while occupied != 0 {
                let j = occupied.trailing_zeros() as usize % BLOCK_SLOTS;
                occupied &= occupied - 1;
                if !f(cur.base + j, Arena::entry_from(cur_records[j])) {
                    return false;
                }
            }
            if ahead.occupied == 0 && next >= self.table.len {
                return true;
            }
            cur = ahead;
            std::mem::swap(&mut cur_records, &mut ahead_records);
        }
    }

    /// The next block of slots from `*next` (never past the end of its
    /// page), with a mask of the occupied ones; advances `*next`. Each
    /// occupied slot's record goes into `records` at the slot's index in
    /// the block, prefetched at its first byte and at `reach` past it (in
    /// the next cache line when a record of the shard's average length
    /// crosses into it). Into L2: a block is more misses than the L1 can
    /// track at once, and waiting for its miss buffers stalled the scan
    /// (measured: 5-10 % slower with L1 hints).
    #[inline(always)]
    fn gather<'s>(
        &'s self,
        next: &mut usize,
        reach: usize,
        records: &mut [&'s [u8]; BLOCK_SLOTS],
    ) -> Block {
        let base = *next;
        let slots = self
            .table
            .pages
            .get(base >> PAGE_BITS)
            .and_then(|page| page.get(base & PAGE_MASK..))
            .unwrap_or(&[]);
        let slots = &slots[..slots.len().min(BLOCK_SLOTS)];
        let occupied = occupancy(slots);
        *next = next.saturating_add(slots.len().max(1));
        let mut m = occupied;
        while m != 0 {
            let j = m.trailing_zeros() as usize % BLOCK_SLOTS;
            m &= m - 1;
            let record = self.arena.record_from(slots[j].loc());
            prefetch::<INTO_L2>(record.as_ptr());
            prefetch::<INTO_L2>(record.as_ptr().wrapping_add(reach));
            records[j] = record;
        }
        Block { base, occupied }
    }

    #[inline]
    pub fn is_occupied(&self, i: usize) -> bool {
        i < self.table.len && !self.table.get(i).is_empty()
    }

    /// First occupied slot at or after `i`.
    pub fn occupied_from(&self, mut i: usize) -> Option<usize> {
        while i < self.table.len {
            if !self.table.get(i).is_empty() {
                return Some(i);
            }
            i += 1;
        }
        None
    }

    /// First occupied slot whose position is greater than `after`
    /// (`None`: the first entry of the shard).
    pub fn seek_after(&self, hasher: &KeyHasher, after: Option<Pos>) -> Option<usize> {
        let Some(p) = after else {
            return self.occupied_from(0);
        };
        let mut i = self.table.home(p.h1);
        let f = frag_of(p.h1);
        while i < self.table.len {
            let s = self.table.get(i);
            if !s.is_empty() {
                if s.frag() > f {
                    return Some(i);
                }
                if s.frag() == f && hasher.pos(self.arena.record(s.loc()).0) > p {
                    return Some(i);
                }
            }
            i += 1;
        }
        None
    }

    /// The slot holding the entry at exactly `p`.
    pub fn find_pos(&self, hasher: &KeyHasher, p: Pos) -> Option<usize> {
        let mut i = self.table.home(p.h1);
        let f = frag_of(p.h1);
        while i < self.table.len {
            let s = self.table.get(i);
            if s.is_empty() || s.frag() > f {
                return None;
            }
            if s.frag() == f && hasher.pos(self.arena.record(s.loc()).0) == p {
                return Some(i);
            }
            i += 1;
        }
        None
    }

    /// Overwrites the value at occupied slot `i` (not structural).
    pub fn set_value_at(&mut self, i: usize, val: &[u8]) -> Result<()> {
        // Before the slot is read: it may move every record.
        self.limit_chunks();
        let s = self.table.get(i);
        if self.arena.overwrite_in_place(s.loc(), val) {
            return Ok(());
        }
        self.table.unshare(i >> PAGE_BITS, i >> PAGE_BITS)?;
        // A copy of the key: making room may move the chunk it is in.
        let stored = self.arena.record(s.loc()).0;
        let mut key = alloc::try_vec(stored.len())
            .ok_or_else(|| oom("cannot allocate a copy of the entry's key"))?;
        key.extend_from_slice(stored);
        let loc = self.arena.alloc(&key, val)?;
        self.arena.free(s.loc());
        self.table.set(i, s.with_loc(loc));
        let _ = self.maybe_compact();
        Ok(())
    }

    /// Checks the table invariants; used by tests.
    pub fn check_invariants(&self, hasher: &KeyHasher) -> std::result::Result<(), String> {
        let t = &self.table;
        let mut count = 0;
        let mut prev: Option<(u64, u64, Vec<u8>)> = None;
        for i in 0..t.len {
            let s = t.get(i);
            if s.is_empty() {
                continue;
            }
            count += 1;
            let home = t.home_of(s);
            if home > i {
                return Err(format!("slot {i} before its home {home}"));
            }
            for j in home..i {
                if t.get(j).is_empty() {
                    return Err(format!("gap at {j} between home {home} and slot {i}"));
                }
            }
            let (k, _) = self.arena.record(s.loc());
            let h1 = hasher.h1(k);
            if frag_of(h1) != s.frag() {
                return Err(format!("slot {i} stores a wrong hash fragment"));
            }
            let cur = (h1, hasher.h2(k), k.to_vec());
            if let Some(p) = &prev {
                if (p.0, p.1) >= (cur.0, cur.1) {
                    return Err(format!("slot {i} out of order"));
                }
            }
            prev = Some(cur);
        }
        if count != t.count {
            return Err(format!("count {} but {} occupied slots", t.count, count));
        }
        let live: usize = (0..t.len)
            .filter(|&i| !t.get(i).is_empty())
            .map(|i| {
                let (k, v) = self.entry_at(i);
                Arena::record_len(k.len(), v.len())
            })
            .sum();
        if live != self.arena.live {
            return Err(format!(
                "arena counts {} live bytes, records hold {live}",
                self.arena.live
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
impl Default for ShardData {
    fn default() -> Self {
        ShardData::new()
    }
}

/// Cache levels `prefetch` fills (the values of `_MM_HINT_T0` and
/// `_MM_HINT_T1`).
const INTO_L1: i32 = 3;
const INTO_L2: i32 = 2;

/// Hints the CPU to fetch the line holding `p` into cache level `LEVEL`.
#[inline(always)]
fn prefetch<const LEVEL: i32>(p: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: prefetching never dereferences the pointer and cannot fault,
    // whatever address it is given; SSE is part of the x86_64 baseline.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<LEVEL>(p.cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// `nominal_for(entries)`, at most `MAX_NOMINAL` (also when it overflows).
fn capped_nominal_for(entries: usize) -> usize {
    nominal_for(entries).map_or(MAX_NOMINAL, |n| n.min(MAX_NOMINAL))
}

/// The nominal capacity a table sized for `entries` gets (`None` on
/// overflow): a load of 5/8 when they are all in, room for 40 % more before
/// it must grow. Sized for the 7/8 maximum load instead, batched lookups
/// got 25-40 % slower per key at 1M entries (longer runs to walk, more
/// misses per key than one prefetch covers); at 5/8 they are within a few
/// percent of a power-of-two table's, while single gets, inserts and scans
/// gain from the denser table (bench/README.md).
fn nominal_for(entries: usize) -> Option<usize> {
    let n = entries.checked_mul(8)? / 5 + 8;
    Some(n.max(MIN_NOMINAL))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::pool;

    /// Keys whose homes crowd the end of the table make their run reach
    /// its last slot, in a last page that is only partly used; each key
    /// inserted in increasing hash order walks the whole run to that end
    /// (an earlier walk bounded by pages instead of the length never left
    /// it), and the table grows its slack to take it.
    #[test]
    fn runs_that_reach_the_end_of_a_partial_last_page_grow_the_slack() {
        let h = KeyHasher::new(7, [8, 9], false);
        let mut d = ShardData::new();
        d.reserve(600).unwrap();
        let (nominal, len) = (d.table.nominal, d.table.len);
        assert!(len % PAGE_SLOTS != 0, "the last page must be partial");
        let mut keys: Vec<[u8; 8]> = (0..u64::MAX)
            .map(u64::to_le_bytes)
            // One shard's keys, as a shard holds.
            .filter(|k| h.h1(k) >> (64 - SHARD_BITS) == 0)
            .filter(|k| d.table.home(h.h1(k)) >= nominal - 8)
            .take(len - nominal + 100)
            .collect();
        keys.sort_by_key(|k| h.h1(k));
        for k in &keys {
            assert!(d.insert(&h, h.h1(k), k, k).unwrap());
        }
        assert!(d.table.len > len, "the run never reached the end");
        assert_eq!(d.table.nominal, nominal, "grew instead of extending");
        for k in &keys {
            assert_eq!(d.get(&h, h.h1(k), k), Some(&k[..]));
        }
        d.check_invariants(&h).unwrap();
    }

    /// Two keys with the same position `(h1, h2)` cannot both be stored
    /// (a cursor could not tell them apart): the second is refused with
    /// INVALID_ARGUMENT and nothing changes. Test hashers keep 3 bits of
    /// each hash, so of a few hundred keys many share a position.
    #[test]
    fn a_key_sharing_another_keys_whole_position_is_refused() {
        let h = KeyHasher::new(7, [8, 9], true).with_h2_mask(0xE000_0000_0000_0000);
        let mut d = ShardData::new();
        let mut stored: Vec<[u8; 8]> = Vec::new();
        let mut refused = 0;
        for i in 0..300u64 {
            let k = i.wrapping_mul(0x9E37_79B9_7F4A_7C15).to_le_bytes();
            let clash = stored.iter().any(|o| h.pos(o) == h.pos(&k));
            match d.insert(&h, h.h1(&k), &k, &k) {
                Ok(new) => {
                    assert!(new && !clash, "key {i} stored beside a key at its position");
                    stored.push(k);
                }
                Err(e) => {
                    assert!(clash, "key {i} refused without a clash");
                    assert_eq!(e.status, McStatus::MC_ERR_INVALID_ARGUMENT);
                    refused += 1;
                }
            }
            assert_eq!(d.entries(), stored.len());
        }
        assert!(refused > 0 && stored.len() > 8, "{refused} refused");
        for k in &stored {
            assert_eq!(d.get(&h, h.h1(k), k), Some(&k[..]));
        }
        d.check_invariants(&h).unwrap();
    }

    /// With the weak test hash every key's home is slot 0, so the table is
    /// one run and each insert shifts it across page boundaries; a snapshot
    /// taken half-way shares the pages being shifted.
    #[test]
    fn shifting_across_pages_keeps_order_and_spares_snapshots() {
        let h = KeyHasher::new(7, [8, 9], true);
        let mut d = ShardData::new();
        let keys: Vec<[u8; 8]> = (0..5000u64)
            .map(|i| (i.wrapping_mul(0x9E37_79B9_7F4A_7C15)).to_le_bytes())
            .collect();
        let mut snap = None;
        for (n, k) in keys.iter().enumerate() {
            if n == 3000 {
                snap = Some(d.clone());
            }
            assert!(d.insert(&h, h.h1(k), k, k).unwrap());
        }
        d.check_invariants(&h).unwrap();
        assert!(d.slots() > 2 * PAGE_SLOTS, "the run spans pages");
        for k in &keys {
            assert_eq!(d.get(&h, h.h1(k), k), Some(&k[..]));
        }
        let snap = snap.unwrap();
        snap.check_invariants(&h).unwrap();
        assert_eq!(snap.entries(), 3000);
        for (n, k) in keys.iter().enumerate() {
            assert_eq!(snap.get(&h, h.h1(k), k).is_some(), n < 3000);
        }
        assert!(d.cow_pages() > 0, "the shifts copied shared pages");
    }

    /// Slots keep only a fragment of `h1`. With the fragment's bits masked
    /// off, every key has fragment 0 (home slot 0) but a distinct `h1`, so
    /// every lookup, insert, removal and seek must settle the order from the
    /// stored keys.
    #[test]
    fn keys_sharing_a_fragment_keep_full_hash_order() {
        let h = KeyHasher::new(11, [12, 13], false).with_h1_mask(0xFFFF_FFFF);
        let key = |i: u64| (i.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 7).to_le_bytes();
        let mut d = ShardData::new();
        for i in 0..3000u64 {
            let k = key(i);
            assert!(d.insert(&h, h.h1(&k), &k, &k[..i as usize % 9]).unwrap());
        }
        d.check_invariants(&h).unwrap();
        for i in 0..3000u64 {
            let k = key(i);
            assert_eq!(d.get(&h, h.h1(&k), &k), Some(&k[..i as usize % 9]));
            let absent = key(i + 1_000_000);
            assert_eq!(d.get(&h, h.h1(&absent), &absent), None);
        }
        for i in (0..3000u64).step_by(2) {
            let k = key(i);
            assert!(d.remove(&h, h.h1(&k), &k).unwrap());
            assert!(!d.remove(&h, h.h1(&k), &k).unwrap());
        }
        d.check_invariants(&h).unwrap();
        // Seeking after each remaining key's position finds the next one.
        let mut sorted: Vec<(Pos, [u8; 8])> = (1..3000u64)
            .step_by(2)
            .map(|i| (h.pos(&key(i)), key(i)))
            .collect();
        sorted.sort();
        for w in sorted.windows(2) {
            let at = d.seek_after(&h, Some(w[0].0)).expect("a next entry");
            assert_eq!(d.entry_at(at).0, &w[1].1[..]);
            let here = d.find_pos(&h, w[1].0).expect("present");
            assert_eq!(here, at);
        }
        let last = sorted.last().unwrap().0;
        assert_eq!(d.seek_after(&h, Some(last)), None);
        for i in (0..3000u64).step_by(2) {
            assert_eq!(d.find_pos(&h, h.pos(&key(i))), None);
        }
    }

    /// Record headers take 2 bytes when the key is shorter than 128 bytes and
    /// the value at most 255, else 9: every length on both sides of those
    /// limits is stored, overwritten (in place and moved, into the other
    /// form), scanned and removed.
    #[test]
    fn short_and_long_record_headers() {
        // One shard holds keys of one shard: clear the shard bits.
        let h = KeyHasher::new(3, [4, 5], false).with_h1_mask(u64::MAX >> SHARD_BITS);
        let mut d = ShardData::new();
        let klens = [1usize, 2, 127, 128, 300];
        let vlens = [0usize, 1, 255, 256, 70_000];
        // Exactly `kl` bytes, distinct for each value length.
        let key = |kl: usize, vl: usize| {
            let mut k = vec![(kl % 251) as u8; kl];
            k[0] = vlens.iter().position(|&x| x == vl).unwrap() as u8;
            k
        };
        let val = |vl: usize, fill: u8| vec![fill; vl];
        for &kl in &klens {
            for &vl in &vlens {
                let k = key(kl, vl);
                assert!(d.insert(&h, h.h1(&k), &k, &val(vl, 1)).unwrap());
            }
        }
        d.check_invariants(&h).unwrap();
        for &kl in &klens {
            for (j, &vl) in vlens.iter().enumerate() {
                let k = key(kl, vl);
                assert_eq!(d.get(&h, h.h1(&k), &k), Some(&val(vl, 1)[..]));
                // Same length: in place. Then a length of the other form.
                assert!(!d.insert(&h, h.h1(&k), &k, &val(vl, 2)).unwrap());
                assert_eq!(d.get(&h, h.h1(&k), &k), Some(&val(vl, 2)[..]));
                let other = vlens[(j + 3) % vlens.len()];
                assert!(!d.insert(&h, h.h1(&k), &k, &val(other, 3)).unwrap());
                assert_eq!(d.get(&h, h.h1(&k), &k), Some(&val(other, 3)[..]));
            }
        }
        d.check_invariants(&h).unwrap();
        let mut seen = 0;
        d.visit_from(0, usize::MAX, |_, e| {
            assert_eq!(e.body(), &[e.key, e.value].concat()[..]);
            assert!(e.value.iter().all(|&b| b == 3));
            seen += 1;
            true
        });
        assert_eq!(seen, klens.len() * vlens.len());
        // The empty key, with a value just past the short form.
        assert!(d.insert(&h, h.h1(b""), b"", &val(256, 3)).unwrap());
        assert_eq!(d.get(&h, h.h1(b""), b""), Some(&val(256, 3)[..]));
        assert!(d.remove(&h, h.h1(b""), b"").unwrap());
        for &kl in &klens {
            for &vl in &vlens {
                let k = key(kl, vl);
                assert!(d.remove(&h, h.h1(&k), &k).unwrap());
            }
        }
        d.check_invariants(&h).unwrap();
        assert_eq!(d.entries(), 0);
    }

    /// Every write that allocates, with the allocation failing at its
    /// first, second or third buffer, with and without a snapshot sharing
    /// the shard: a failed write (removals included, which allocate only to
    /// copy a page a snapshot shares) reports MC_ERR_OUT_OF_MEMORY and
    /// leaves the shard's contents as they were; the invariants hold after
    /// every step, and the snapshot keeps what it saw.
    #[test]
    fn failed_allocations_leave_the_shard_as_it_was() {
        let h = KeyHasher::new(11, [12, 13], false).with_h1_mask(u64::MAX >> SHARD_BITS);
        writes_with_failing_allocations(&h, 2500, 6000, 1);
    }

    /// The same with the weak test hash: thousands of keys share an `h1`,
    /// so the writes that fail shift long runs and settle ties.
    #[test]
    fn failed_allocations_with_shared_hashes() {
        writes_with_failing_allocations(&KeyHasher::new(14, [15, 16], true), 1200, 2500, 50);
    }

    fn writes_with_failing_allocations(h: &KeyHasher, keys: u64, steps: usize, check_every: usize) {
        use std::collections::HashMap;
        let mut d = ShardData::new();
        let mut model: HashMap<u64, Vec<u8>> = HashMap::new();
        let mut rng = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        let mut failed = [0usize; 4]; // insert, remove, reserve, shrink_to_fit
        let mut snap: Option<(ShardData, HashMap<u64, Vec<u8>>)> = None;
        let mut failed_under_snapshot = 0;
        let key_bytes = |key: u64| key.wrapping_mul(0x9E37_79B9_7F4A_7C15).to_le_bytes();
        let same = |d: &ShardData, model: &HashMap<u64, Vec<u8>>, what: &str| {
            assert_eq!(d.entries(), model.len(), "{what}");
            for (&key, v) in model {
                let k = key_bytes(key);
                assert_eq!(d.get(h, h.h1(&k), &k), Some(&v[..]), "{what}, key {key}");
            }
        };
        for step in 0..steps {
            match next() % 400 {
                0 => snap = Some((d.clone(), model.clone())),
                1 => snap = None,
                _ => {}
            }
            let r = next();
            let key = r % keys;
            let k = key_bytes(key);
            let len = match r >> 60 {
                0 => 200,                    // a long record header
                1 if r % 64 == 0 => 140_000, // a chunk of its own
                _ => (r >> 40) as usize % 40,
            };
            let val = vec![(step % 251) as u8; len];
            let op = (r >> 32) % 16;
            if (10..=13).contains(&op) && (r >> 16) % 4 == 0 {
                // A removal allocates only to copy a page a snapshot
                // shares: give a quarter of them a fresh snapshot.
                snap = Some((d.clone(), model.clone()));
            }
            let inject = (r >> 20) % 2 == 0;
            if inject {
                pool::fail_after(Some(((r >> 24) % 3) as usize));
            }
            let result = match op {
                0..=9 => d.insert(h, h.h1(&k), &k, &val).map(|_| ()),
                10..=13 => d.remove(h, h.h1(&k), &k).map(|removed| {
                    assert_eq!(removed, model.remove(&key).is_some(), "step {step}");
                }),
                14 => d
                    .reserve((r >> 8) as usize % (2 * keys as usize))
                    .map(|_| ()),
                _ => d.shrink_to_fit().map(|_| ()),
            };
            pool::fail_after(None);
            match result {
                Ok(()) if op <= 9 => {
                    model.insert(key, val);
                }
                Ok(()) => {}
                Err(e) => {
                    assert!(
                        inject,
                        "step {step}: failed with no injected failure: {e:?}"
                    );
                    assert_eq!(e.status, McStatus::MC_ERR_OUT_OF_MEMORY, "step {step}");
                    failed[match op {
                        0..=9 => 0,
                        10..=13 => 1,
                        14 => 2,
                        _ => 3,
                    }] += 1;
                    failed_under_snapshot += usize::from(snap.is_some());
                }
            }
            if step % check_every == 0 || step + 1 == steps {
                d.check_invariants(h)
                    .unwrap_or_else(|e| panic!("step {step}: {e}"));
            }
            if step % 500 == 499 || step + 1 == steps {
                same(&d, &model, &format!("step {step}"));
                if let Some((sd, sm)) = &snap {
                    same(sd, sm, &format!("snapshot at step {step}"));
                }
            }
        }
        assert!(
            failed_under_snapshot > 0,
            "no write failed under a snapshot"
        );
        // The run must have reached the failure paths it is about.
        assert!(
            failed.iter().all(|&n| n > 0),
            "failed writes by kind: {failed:?}"
        );
    }

    /// Capacities need not be powers of two: a reserved table holds exactly
    /// what was asked for without growing, and shrinking fits the count.
    #[test]
    fn reserve_and_shrink_size_the_table_to_the_entries() {
        let h = KeyHasher::new(5, [6, 7], false).with_h1_mask(u64::MAX >> SHARD_BITS);
        let mut d = ShardData::new();
        assert!(d.reserve(3000).unwrap());
        let nominal = d.table.nominal;
        assert_eq!(Some(nominal), nominal_for(3000));
        assert!(!nominal.is_power_of_two());
        assert!(3000 <= d.table.max_count());
        let slots = d.slots();
        for i in 0..3000u64 {
            let k = i.to_le_bytes();
            assert!(d.insert(&h, h.h1(&k), &k, b"v").unwrap());
        }
        assert_eq!((d.table.nominal, d.slots()), (nominal, slots), "never grew");
        d.check_invariants(&h).unwrap();
        for i in 0..2500u64 {
            let k = i.to_le_bytes();
            assert!(d.remove(&h, h.h1(&k), &k).unwrap());
        }
        assert!(d.shrink_to_fit().unwrap());
        assert_eq!(Some(d.table.nominal), nominal_for(500));
        d.check_invariants(&h).unwrap();
        for i in 0..3000u64 {
            let k = i.to_le_bytes();
            assert_eq!(d.get(&h, h.h1(&k), &k).is_some(), i >= 2500);
        }
    }

    /// The block mask matches a slot-by-slot test for slots that are zero
    /// in only one 32-bit half (a location can be, a whole slot never is),
    /// at every position of the eight-slot steps, for whole and short blocks.
    #[test]
    fn occupancy_marks_exactly_the_nonzero_slots() {
        let one_bit_patterns = [1u64, 1 << 31, 1 << 32, 1 << 63, u64::MAX, 0xFFFF_FFFF];
        let mut rng = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        for round in 0..2000 {
            let len = if round % 4 == 0 {
                (next() % 64) as usize
            } else {
                BLOCK_SLOTS
            };
            let slots: Vec<Slot> = (0..len)
                .map(|_| match next() % 4 {
                    0 => Slot(0),
                    1 => Slot(one_bit_patterns[(next() % 6) as usize]),
                    _ => Slot(next()),
                })
                .collect();
            let want = slots
                .iter()
                .enumerate()
                .fold(0u64, |m, (j, s)| m | u64::from(s.0 != 0) << j);
            assert_eq!(
                occupancy(&slots),
                want,
                "slots {:x?}",
                slots.iter().map(|s| s.0).collect::<Vec<_>>()
            );
        }
        let all = vec![Slot(1 << 40); BLOCK_SLOTS];
        assert_eq!(occupancy(&all), u64::MAX);
        assert_eq!(occupancy(&vec![Slot(0); BLOCK_SLOTS]), 0);
    }

    #[test]
    fn visiting_from_any_slot_sees_exactly_the_occupied_ones() {
        let h = KeyHasher::new(5, [6, 7], false).with_h1_mask(u64::MAX >> SHARD_BITS);
        let mut d = ShardData::new();
        for i in 0..3000u64 {
            let k = i.to_le_bytes();
            assert!(d.insert(&h, h.h1(&k), &k, &k).unwrap());
        }
        // A gap of several empty blocks, across a page boundary.
        let gap = PAGE_SLOTS - 3 * BLOCK_SLOTS..PAGE_SLOTS + 2 * BLOCK_SLOTS;
        while let Some(i) = gap.clone().find(|&i| !d.table.get(i).is_empty()) {
            let k = d.entry_at(i).0.to_vec();
            assert!(d.remove(&h, h.h1(&k), &k).unwrap());
        }
        let len = d.table.len;
        assert!(len > 2 * PAGE_SLOTS, "spans more than two pages");
        let occupied: Vec<usize> = (0..len).filter(|&i| !d.table.get(i).is_empty()).collect();
        let edges = [
            1,
            2,
            BLOCK_SLOTS - 1,
            BLOCK_SLOTS,
            BLOCK_SLOTS + 1,
            PAGE_SLOTS - 1,
        ];
        let mut starts = vec![0, gap.start, gap.end, len - 1, len, len + 3, usize::MAX];
        for p in [0, PAGE_SLOTS, 2 * PAGE_SLOTS] {
            starts.extend(edges.iter().map(|e| p + e));
        }
        // Both ways: block by block with prefetching, and slot by slot for
        // a caller wanting a few entries.
        for (start, wanted) in starts.into_iter().flat_map(|s| [(s, usize::MAX), (s, 1)]) {
            let want: Vec<usize> = occupied.iter().copied().filter(|&i| i >= start).collect();
            let mut seen = Vec::new();
            assert!(d.visit_from(start, wanted, |i, e| {
                assert_eq!(e.key, e.value);
                assert_eq!(e.key, d.entry_at(i).0);
                seen.push(i);
                true
            }));
            assert!(
                seen == want,
                "from slot {start}, wanting {wanted}: {seen:?}"
            );
            // Stopping early stops at once, wherever in a block it happens.
            for stop in [1, 2, 40, 41, 100] {
                let mut n = 0;
                let finished = d.visit_from(start, wanted, |_, _| {
                    n += 1;
                    n < stop
                });
                assert_eq!((finished, n), (want.len() < stop, stop.min(want.len())));
            }
        }
    }

    #[test]
    fn removals_keep_a_reservation_until_shrink_to_fit() {
        let h = KeyHasher::new(5, [6, 7], false).with_h1_mask(u64::MAX >> SHARD_BITS);
        let key = |i: u64| i.to_le_bytes();
        let mut d = ShardData::new();
        assert!(d.reserve(3000).unwrap());
        d.keep_room(3000);
        let reserved = d.table.nominal;
        // One insert and its removal leave an empty table: still reserved.
        let k = key(1);
        d.insert(&h, h.h1(&k), &k, b"v").unwrap();
        assert!(d.remove(&h, h.h1(&k), &k).unwrap());
        assert_eq!(d.table.nominal, reserved);
        // Filled, emptied and filled again without re-laying.
        for round in 0..2 {
            for i in 0..3000 {
                let k = key(i);
                assert!(d.insert(&h, h.h1(&k), &k, b"v").unwrap());
            }
            assert_eq!(d.table.nominal, reserved, "round {round}");
            for i in 0..3000 {
                let k = key(i);
                assert!(d.remove(&h, h.h1(&k), &k).unwrap());
            }
            assert_eq!(d.table.nominal, reserved, "round {round}");
            d.check_invariants(&h).unwrap();
        }
        // shrink_to_fit drops the reservation; removals shrink again.
        assert!(d.shrink_to_fit().unwrap());
        assert_eq!(d.table.nominal, MIN_NOMINAL);
        for i in 0..3000 {
            let k = key(i);
            d.insert(&h, h.h1(&k), &k, b"v").unwrap();
        }
        let grown = d.table.nominal;
        for i in 0..3000 {
            let k = key(i);
            assert!(d.remove(&h, h.h1(&k), &k).unwrap());
        }
        assert!(d.table.nominal < grown / 8);
        // So does clear.
        d.reserve(3000).unwrap();
        d.keep_room(3000);
        d = ShardData::new();
        d.insert(&h, h.h1(&k), &k, b"v").unwrap();
        assert!(d.table.nominal < reserved);
        d.check_invariants(&h).unwrap();
    }

    /// Snapshots taken between writes to a shard past its first full-size
    /// chunk: the chunk each write opens (the last one is shared) is a
    /// small one, so the arena stays near the size of its records.
    #[test]
    fn snapshots_between_writes_do_not_reserve_full_size_chunks() {
        let h = KeyHasher::new(9, [1, 2], false).with_h1_mask(u64::MAX >> SHARD_BITS);
        let mut d = ShardData::new();
        let val = [7u8; 40];
        let mut n = 0u64;
        while d.arena_bytes() < 2 * CHUNK_MAX {
            let k = n.to_le_bytes();
            d.insert(&h, h.h1(&k), &k, &val).unwrap();
            n += 1;
        }
        let live = d.arena_bytes();
        for _ in 0..300 {
            let snap = d.clone();
            for _ in 0..4 {
                let k = n.to_le_bytes();
                d.insert(&h, h.h1(&k), &k, &val).unwrap();
                n += 1;
            }
            drop(snap);
        }
        d.check_invariants(&h).unwrap();
        // 1,200 records of 50 bytes, at most CHUNK_REPACK_MIN small chunks
        // and one full-size chunk being filled.
        let bound = live + 1200 * 50 + CHUNK_REPACK_MIN * 1024 + CHUNK_MAX;
        assert!(
            d.arena_bytes() <= bound,
            "arena {} bytes after the snapshots, bound {bound}",
            d.arena_bytes()
        );
    }

    /// A snapshot before every write: each write opens a chunk of its own,
    /// and the chunk count is held near `CHUNK_REPACK_MIN` instead of
    /// growing to the addressing limit (where writes would fail), while
    /// every snapshot still sees its own state.
    #[test]
    fn snapshot_per_write_keeps_the_chunk_count_bounded() {
        let h = KeyHasher::new(9, [1, 2], false).with_h1_mask(u64::MAX >> SHARD_BITS);
        let mut d = ShardData::new();
        let mut held = Vec::new();
        for i in 0..2000u64 {
            let snap = d.clone();
            let k = i.to_le_bytes();
            assert!(d.insert(&h, h.h1(&k), &k, &k).unwrap());
            // Moved overwrites too (the value's length changes).
            let first = 0u64.to_le_bytes();
            d.insert(&h, h.h1(&first), &first, &k[..(i % 7) as usize])
                .unwrap();
            assert!(d.chunks() <= CHUNK_REPACK_MIN + 2, "{} chunks", d.chunks());
            if i % 500 == 0 {
                held.push((i, snap));
            }
        }
        d.check_invariants(&h).unwrap();
        for (i, snap) in &held {
            snap.check_invariants(&h).unwrap();
            assert_eq!(snap.entries() as u64, *i);
            for j in 1..*i {
                let k = j.to_le_bytes();
                assert_eq!(snap.get(&h, h.h1(&k), &k), Some(&k[..]));
            }
        }
    }

    /// Snapshots taken before every other write: the writes that see the
    /// crowding have nothing shared, and must still lay the chunks out
    /// afresh.
    #[test]
    fn alternating_snapshot_writes_keep_the_chunk_count_bounded() {
        let h = KeyHasher::new(9, [1, 2], false).with_h1_mask(u64::MAX >> SHARD_BITS);
        let mut d = ShardData::new();
        for i in 0..4000u64 {
            let k = i.to_le_bytes();
            let snap = d.clone();
            assert!(d.insert(&h, h.h1(&k), &k, &k).unwrap());
            drop(snap);
            assert!(!d.insert(&h, h.h1(&k), &k, b"x").unwrap());
            assert!(d.chunks() <= CHUNK_REPACK_MIN + 2, "{} chunks", d.chunks());
        }
        d.check_invariants(&h).unwrap();
    }

    /// A snapshot held while the map grows by ordinary inserts: the new
    /// chunks fill up, so nothing is crowded and no write copies the shard.
    #[test]
    fn growth_under_a_held_snapshot_copies_no_records() {
        let h = KeyHasher::new(4, [5, 6], false).with_h1_mask(u64::MAX >> SHARD_BITS);
        let mut d = ShardData::new();
        d.reserve(24_000).unwrap();
        let val = [7u8; 2000];
        for i in 0..12_000u64 {
            let k = i.to_le_bytes();
            d.insert(&h, h.h1(&k), &k, &val).unwrap();
        }
        let k0 = 0u64.to_le_bytes();
        let slot_of_k0 = d.find_pos(&h, h.pos(&k0)).unwrap();
        let loc_before = d.table.get(slot_of_k0).loc();
        let snap = d.clone();
        let chunks_before = d.chunks();
        for i in 12_000..24_000u64 {
            let k = i.to_le_bytes();
            d.insert(&h, h.h1(&k), &k, &val).unwrap();
        }
        assert!(d.chunks() >= 2 * chunks_before, "the arena doubled");
        let slot_of_k0 = d.find_pos(&h, h.pos(&k0)).unwrap();
        assert_eq!(
            d.table.get(slot_of_k0).loc(),
            loc_before,
            "records stayed put"
        );
        assert_eq!(snap.entries(), 12_000);
        d.check_invariants(&h).unwrap();
    }

    #[test]
    fn displacement_stays_small() {
        let h = KeyHasher::new(1, [2, 3], false);
        let mut d = ShardData::new();
        let mut inserted = 0u64;
        let mut i = 0u64;
        // Keys whose h1 falls in shard 0, as the map would route them.
        while inserted < 7000 {
            let k = i.to_le_bytes();
            i += 1;
            let h1 = h.h1(&k);
            if h1 >> (64 - SHARD_BITS) != 0 {
                continue;
            }
            d.insert(&h, h1, &k, b"v").unwrap();
            inserted += 1;
        }
        let (mut total, mut n, mut max) = (0usize, 0usize, 0usize);
        for idx in 0..d.table.len {
            let s = d.table.get(idx);
            if !s.is_empty() {
                let disp = idx - d.table.home_of(s);
                total += disp;
                max = max.max(disp);
                n += 1;
            }
        }
        let load = n as f64 / d.table.nominal as f64;
        let mean = total as f64 / n as f64;
        eprintln!("load {load:.2} mean displacement {mean:.2} max {max}");
        assert!(mean < 4.0, "mean displacement {mean} at load {load}");
    }
}
