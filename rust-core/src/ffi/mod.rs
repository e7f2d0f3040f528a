//! The C ABI. Every function here only converts and checks arguments, calls
//! the engine, and maps errors to `mc_status`; `support` holds the panic
//! boundary, `raw` every access to memory the caller passed by pointer.
//! Doc comments become `include/mapcore.h` through cbindgen.
//!
//! Every function that reads or writes through a raw pointer argument, or
//! passes one on to a function that does, is `unsafe`, exported or not:
//! this crate is also a Rust library, and such a function left safe would
//! let safe Rust cause undefined behaviour. Each states what it needs in
//! `# Safety`; for the exported ones that is the header's pointer
//! conventions (cbindgen.toml) applied to the pointers it names.
//! tests/ffi_unsafe.rs fails on a safe function taking a raw pointer (bar
//! the few it lists that only compare one with NULL).
#![allow(non_camel_case_types)]

mod raw;
mod support;

use std::ffi::{c_char, c_int, c_void};

use std::mem::MaybeUninit;
use std::ptr::NonNull;

use crate::engine::bytes::copy_small_uninit;
use crate::engine::token::{Mode, Token, TEXT_LEN};
use crate::engine::{self, Entry, Map, Options, Pack, Scan, Sink, Visit};
use crate::registry::{self, Object, Snapshot};
use crate::status::{Error, McStatus, Result};
use raw::*;
use support::*;

pub use crate::status::McStatus as mc_status;

/// ABI version of this header; `mc_abi_version()` returns the library's.
pub const MC_ABI_VERSION: u32 = 1;
/// Strict (fail-fast) iteration: any structural change not made through the
/// token makes the next call return MC_ERR_ITER_INVALIDATED.
pub const MC_MODE_STRICT: u32 = 1;
/// Cursor (resumable, weakly consistent) iteration: never invalidated.
pub const MC_MODE_CURSOR: u32 = 2;
/// `mc_options.flags`: use `mc_options.seed` instead of a random seed. Maps
/// created with the same seed in one process lay out (and iterate) keys in
/// the same order. The seed is mixed with a secret drawn once per process:
/// layouts differ between processes, and knowing the seed does not let
/// anyone compute keys that collide (hash flooding), so a fixed seed is as
/// safe as a random one for untrusted keys.
pub const MC_OPT_FIXED_SEED: u32 = 1;
/// `mc_options.flags`: a deliberately weak hash (3 bits) so that many keys
/// share a hash. For testing tie handling only; O(n) operations result.
/// Refused with MC_ERR_INVALID_ARGUMENT unless the environment variable
/// `MAPCORE_ALLOW_WEAK_HASH` is `1` when the map is created, so production
/// code cannot turn it on through options alone.
pub const MC_OPT_WEAK_HASH_FOR_TESTING: u32 = 2;
/// Longest key in bytes. Writes and `mc_iter_seek` refuse a longer key with
/// MC_ERR_TOO_LARGE; lookups and deletes report it absent (no such key can
/// be stored).
pub const MC_MAX_KEY_LEN: usize = 1 << 20;
/// Longest value in bytes; longer values get MC_ERR_TOO_LARGE.
pub const MC_MAX_VALUE_LEN: usize = 1 << 30;
/// Most keys in one get-many / set-many / delete-many call.
pub const MC_MAX_BATCH: usize = 1 << 24;
/// Length of an encoded iterator token text (excluding the NUL).
pub const MC_ITER_TEXT_LEN: usize = 67;
/// Most entries `mc_options.capacity` or `mc_map_reserve` may ask room for
/// (2^31); more gets MC_ERR_TOO_LARGE.
pub const MC_MAX_CAPACITY: usize = 2_147_483_648;
/// Bytes before each entry in a next-batch buffer: u32 key length, u32 value length (host order).
pub const MC_BATCH_ENTRY_HEADER: usize = 8;
const _: () = assert!(MC_BATCH_ENTRY_HEADER == crate::engine::PACKED_HEADER);
/// `val_lens[i]` of `mc_map_get_many` for a key that is absent.
pub const MC_ABSENT: u32 = u32::MAX;

const _: () =
    assert!(MC_MAX_KEY_LEN == engine::MAX_KEY_LEN && MC_MAX_VALUE_LEN == engine::MAX_VALUE_LEN);
const _: () = assert!(MC_ITER_TEXT_LEN == TEXT_LEN);
const _: () = assert!(MC_MAX_CAPACITY == engine::MAX_RESERVE);

const KNOWN_FLAGS: u32 = MC_OPT_FIXED_SEED | MC_OPT_WEAK_HASH_FOR_TESTING;

/// A map handle: an opaque id, never a pointer. The value 0 is never valid.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct mc_map {
    pub id: u64,
}

/// A snapshot handle: an opaque id, distinct from map handles.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct mc_snapshot {
    pub id: u64,
}

/// An iterator token: plain data owned by the caller. Copy it, store it,
/// pass it to another thread; no allocation, nothing to free. Its contents are
/// private and integrity-checked: a modified token gets MC_ERR_BAD_TOKEN.
/// The raw bytes include the iteration position in the clear: keep them in
/// the process, and hand untrusted holders (a paginated API's clients) the
/// text of `mc_iter_encode`, which hides it and detects tampering.
/// One token must not be advanced by two threads at the same time (copies may).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct mc_iter {
    pub opaque: [u64; 6],
}

/// Options for `mc_map_new_with`. Zero-initialise, then set what you need.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct mc_options {
    /// Bitwise OR of MC_OPT_* flags; unknown bits are MC_ERR_INVALID_ARGUMENT.
    pub flags: u32,
    /// Must be 0.
    pub reserved: u32,
    /// Hash seed, used only with MC_OPT_FIXED_SEED.
    pub seed: u64,
    /// Entries to reserve room for, as mc_map_reserve does.
    pub capacity: u64,
}

/// Receives one value in place. The bytes are valid only during the call.
pub type mc_value_fn =
    Option<unsafe extern "C" fn(user: *mut c_void, val: *const u8, val_len: usize)>;
/// Receives one entry in place. The bytes are valid only during the call.
pub type mc_entry_fn = Option<
    unsafe extern "C" fn(
        user: *mut c_void,
        key: *const u8,
        key_len: usize,
        val: *const u8,
        val_len: usize,
    ),
>;
/// Retain predicate: return non-zero to keep the entry, 0 to delete it.
pub type mc_entry_pred = Option<
    unsafe extern "C" fn(
        user: *mut c_void,
        key: *const u8,
        key_len: usize,
        val: *const u8,
        val_len: usize,
    ) -> c_int,
>;

// ---------------------------------------------------------------------------
// Versions, statuses, errors
// ---------------------------------------------------------------------------

/// The library's ABI version (compare with MC_ABI_VERSION). Thread-safe.
#[no_mangle]
pub extern "C" fn mc_abi_version() -> u32 {
    MC_ABI_VERSION
}

/// Static NUL-terminated name of a status code ("MC_ERR_NOT_FOUND").
/// Any integer is accepted; unknown codes give "MC_UNKNOWN_STATUS". Never NULL.
#[no_mangle]
pub extern "C" fn mc_status_name(code: i32) -> *const c_char {
    McStatus::from_code(code)
        .map_or("MC_UNKNOWN_STATUS\0", McStatus::name)
        .as_ptr()
        .cast()
}

/// Static NUL-terminated one-line description of a status code. Never NULL.
#[no_mangle]
pub extern "C" fn mc_status_describe(code: i32) -> *const c_char {
    McStatus::from_code(code)
        .map_or("unknown status code\0", McStatus::description)
        .as_ptr()
        .cast()
}

/// Copies the detail message of the last failure on the calling thread into
/// `buf` as a NUL-terminated string, and its length (without NUL) into
/// `*out_len`. Does not change the stored message. The message is the
/// status name, ": " and a detail of at most 320 bytes (longer details end
/// in "...").
/// Returns MC_OK; MC_ERR_BUFFER_TOO_SMALL (only `*out_len` written, need
/// `cap >= *out_len + 1`); MC_ERR_NULL_ARGUMENT if `out_len` is NULL, or
/// `buf` is NULL with `cap > 0`; MC_ERR_TOO_LARGE if `cap` is above
/// PTRDIFF_MAX (nothing written).
/// # Safety
/// Per the pointer conventions of mapcore.h: `buf`: `cap` writable bytes (NULL
/// if `cap` is 0); `out_len`: a writable size_t.
#[no_mangle]
pub unsafe extern "C" fn mc_last_error(
    buf: *mut c_char,
    cap: usize,
    out_len: *mut usize,
) -> mc_status {
    let Some(out_len) = NonNull::new(out_len) else {
        return McStatus::MC_ERR_NULL_ARGUMENT;
    };
    if buf.is_null() && cap > 0 {
        return McStatus::MC_ERR_NULL_ARGUMENT;
    }
    // Like every capacity the library takes: no buffer is that large, so
    // the caller passed a wrong one, and writing would trust it.
    if cap > isize::MAX as usize {
        return McStatus::MC_ERR_TOO_LARGE;
    }
    // Not through `run`: reading the message must not replace it.
    let r = std::panic::catch_unwind(|| {
        with_last_error(|msg| {
            // SAFETY: out_len is non-NULL; the caller provides a writable size_t.
            unsafe { put(out_len, msg.len()) };
            if cap < msg.len() + 1 {
                return McStatus::MC_ERR_BUFFER_TOO_SMALL;
            }
            // SAFETY: buf is non-NULL (cap > msg.len() >= 0, checked above) with
            // `cap` writable bytes, of which only the message and its NUL are
            // borrowed (so an absurd `cap` never makes an oversized slice).
            match unsafe { bytes_out(buf.cast(), msg.len() + 1, "buf") } {
                Ok(out) => put_text(out, msg),
                // Unreachable: non-NULL, and msg.len() < cap <= isize::MAX.
                Err(_) => return McStatus::MC_ERR_INTERNAL,
            }
            McStatus::MC_OK
        })
    });
    r.unwrap_or(McStatus::MC_ERR_INTERNAL)
}

/// Storage statistics of a live map, for Rust tools and benchmarks (not part
/// of the C ABI). None for a bad handle.
pub fn map_stats(map: mc_map) -> Option<engine::Stats> {
    let h = registry::get(map.id)?;
    match &h.object {
        Object::Map(m) => Some(m.stats()),
        Object::Snapshot(_) => None,
    }
}

// ---------------------------------------------------------------------------
// Map lifetime
// ---------------------------------------------------------------------------

fn register(object: Object) -> Result<u64> {
    registry::insert(object).map_err(|refused| match refused {
        registry::Refused::Full => Error::formatted(
            McStatus::MC_ERR_OUT_OF_MEMORY,
            format_args!(
                "too many live maps and snapshots (limit {})",
                registry::MAX_LIVE
            ),
        ),
        registry::Refused::OutOfMemory => err(
            McStatus::MC_ERR_OUT_OF_MEMORY,
            "cannot allocate the handle's record",
        ),
    })
}

/// Creates an empty map with a random hash seed and writes its handle to `*out`.
/// Free it with `mc_map_free`. Thread-safe.
/// Returns MC_OK, MC_ERR_NULL_ARGUMENT, MC_ERR_OUT_OF_MEMORY.
/// # Safety
/// Per the pointer conventions of mapcore.h: `out`: a writable mc_map.
#[no_mangle]
pub unsafe extern "C" fn mc_map_new(out: *mut mc_map) -> mc_status {
    run(|| {
        let out = out_ptr(out, "out")?;
        let id = register(Object::Map(Map::new(&Options::default())?))?;
        // SAFETY: out checked non-NULL; caller provides a writable mc_map.
        unsafe { put(out, mc_map { id }) };
        Ok(McStatus::MC_OK)
    })
}

/// Creates a map with options (fixed seed, capacity). `opts` is only read.
/// Returns MC_OK, MC_ERR_NULL_ARGUMENT, MC_ERR_INVALID_ARGUMENT (unknown flag
/// bits, non-zero `reserved`, or MC_OPT_WEAK_HASH_FOR_TESTING without its
/// environment opt-in), MC_ERR_TOO_LARGE (capacity above MC_MAX_CAPACITY),
/// MC_ERR_OUT_OF_MEMORY (as mc_map_reserve for the capacity).
/// # Safety
/// Per the pointer conventions of mapcore.h: `opts`: a readable mc_options;
/// `out`: a writable mc_map.
#[no_mangle]
pub unsafe extern "C" fn mc_map_new_with(opts: *const mc_options, out: *mut mc_map) -> mc_status {
    run(|| {
        let opts = in_ptr(opts, "opts")?;
        let out = out_ptr(out, "out")?;
        // SAFETY: opts is non-NULL and points to a readable mc_options (caller's contract).
        let o = unsafe { read_in(opts) };
        if o.flags & !KNOWN_FLAGS != 0 || o.reserved != 0 {
            return Err(Error::formatted(
                McStatus::MC_ERR_INVALID_ARGUMENT,
                format_args!(
                    "unknown option flags {:#x} or non-zero reserved field",
                    o.flags & !KNOWN_FLAGS
                ),
            ));
        }
        // The engine refuses more than MC_MAX_CAPACITY; this only keeps a
        // 32-bit `usize` from truncating the request.
        let capacity = usize::try_from(o.capacity).map_err(|_| {
            err(
                McStatus::MC_ERR_TOO_LARGE,
                "capacity exceeds MC_MAX_CAPACITY",
            )
        })?;
        let options = Options {
            seed: (o.flags & MC_OPT_FIXED_SEED != 0).then_some(o.seed),
            weak_hash_for_testing: o.flags & MC_OPT_WEAK_HASH_FOR_TESTING != 0,
            capacity,
        };
        let id = register(Object::Map(Map::new(&options)?))?;
        // SAFETY: out checked non-NULL.
        unsafe { put(out, mc_map { id }) };
        Ok(McStatus::MC_OK)
    })
}

/// Frees a map. Calls already running on it on other threads finish safely;
/// calls that start afterwards get MC_ERR_BAD_HANDLE. Snapshots taken from it
/// stay valid until freed themselves. Thread-safe.
/// Returns MC_OK; MC_ERR_BAD_HANDLE for 0, garbage, a snapshot handle, or a
/// handle already freed (double free is harmless); MC_ERR_REENTRANT when
/// called from a callback of this same map (nothing freed).
#[no_mangle]
pub extern "C" fn mc_map_free(map: mc_map) -> mc_status {
    run(|| {
        if in_callback_of(map.id) {
            return Err(err(
                McStatus::MC_ERR_REENTRANT,
                "a callback tried to free the map that is running it; the call was refused",
            ));
        }
        if registry::is_snapshot_id(map.id) || !registry::remove(map.id) {
            return Err(bad_handle("map"));
        }
        Ok(McStatus::MC_OK)
    })
}

// ---------------------------------------------------------------------------
// Single-key operations. All are thread-safe and linearizable. Key and value
// pointers may be NULL only when their length is 0; bytes are copied in/out.
// Every function below also returns MC_ERR_BAD_HANDLE (bad map handle),
// MC_ERR_POISONED (map poisoned by an earlier panic or a fork), MC_ERR_REENTRANT (called
// from a callback of the same map) and MC_ERR_INTERNAL (caught panic).
// ---------------------------------------------------------------------------

/// Inserts `key` or overwrites its value. `*out_inserted` (may be NULL) is
/// set to true if the key was new (a structural change), false if overwritten.
/// Returns MC_OK, MC_ERR_NULL_ARGUMENT, MC_ERR_TOO_LARGE (key > MC_MAX_KEY_LEN
/// or value > MC_MAX_VALUE_LEN, or the map's storage limit reached: about
/// 3.7 billion entries or 1 TiB of entry bytes, over 16 internal shards
/// that each hold 1/16 of it; nothing stored), MC_ERR_OUT_OF_MEMORY,
/// MC_ERR_INVALID_ARGUMENT (the key's two keyed hashes both equal another
/// key's — a SipHash collision under a secret key; refused, nothing stored).
/// # Safety
/// Per the pointer conventions of mapcore.h: `key`, `val`: `key_len`, `val_len`
/// readable bytes; `out_inserted`: NULL or a writable bool.
#[no_mangle]
pub unsafe extern "C" fn mc_map_set(
    map: mc_map,
    key: *const u8,
    key_len: usize,
    val: *const u8,
    val_len: usize,
    out_inserted: *mut bool,
) -> mc_status {
    on_map(map.id, |m, _| {
        // SAFETY: pointer/length pairs are the caller's readable buffers.
        let (k, v) = unsafe {
            (
                bytes_in(key, key_len, "key")?,
                bytes_in(val, val_len, "val")?,
            )
        };
        let inserted = m.insert(k, v)?;
        // SAFETY: optional out-pointer, writable if non-NULL.
        unsafe { put_opt(out_inserted, inserted) };
        Ok(McStatus::MC_OK)
    })
}

/// Copies the value of `key` into `buf` (capacity `cap`) and its length into
/// `*out_len`. Returns MC_OK; MC_ERR_NOT_FOUND; MC_ERR_BUFFER_TOO_SMALL (only
/// `*out_len` written: the required length; call again with a bigger buffer;
/// `buf` may be NULL with `cap` 0 to ask the length); MC_ERR_NULL_ARGUMENT.
/// # Safety
/// Per the pointer conventions of mapcore.h: `key`: `key_len` readable bytes;
/// `buf`: `cap` writable bytes; `out_len`: a writable size_t.
#[no_mangle]
pub unsafe extern "C" fn mc_map_get(
    map: mc_map,
    key: *const u8,
    key_len: usize,
    buf: *mut u8,
    cap: usize,
    out_len: *mut usize,
) -> mc_status {
    on_map(map.id, |m, _| {
        // SAFETY: caller's readable key and writable buffer.
        let (k, out) = unsafe { (bytes_in(key, key_len, "key")?, bytes_out(buf, cap, "buf")?) };
        let out_len = out_ptr(out_len, "out_len")?;
        // A short read: `fill` only copies into the caller's buffer.
        let r = m.get_short(k, |v| fill(out, v));
        // SAFETY: out_len is non-NULL, and the caller's writable size_t.
        unsafe { copy_value(r, out_len) }
    })
}

fn fill(out: &mut [MaybeUninit<u8>], v: &[u8]) -> std::result::Result<usize, usize> {
    if v.len() > out.len() {
        return Err(v.len());
    }
    copy_small_uninit(&mut out[..v.len()], v);
    Ok(v.len())
}

/// Maps the outcome of a `fill` to a status, writing the value's length
/// (copied or needed) to `*out_len`.
///
/// # Safety
/// `out_len` must be aligned and valid for writes of a `usize`.
unsafe fn copy_value(
    r: Option<std::result::Result<usize, usize>>,
    out_len: NonNull<usize>,
) -> Result<McStatus> {
    match r {
        None => Err(err(McStatus::MC_ERR_NOT_FOUND, "key not found")),
        Some(Ok(n)) => {
            // SAFETY: this function's contract.
            unsafe { put(out_len, n) };
            Ok(McStatus::MC_OK)
        }
        Some(Err(need)) => {
            // SAFETY: this function's contract.
            unsafe { put(out_len, need) };
            Err(err(
                McStatus::MC_ERR_BUFFER_TOO_SMALL,
                "the value does not fit; *out_len holds the length it needs",
            ))
        }
    }
}

/// Calls `cb(user, val, val_len)` with the value of `key` in place, under the
/// map's read lock: the bytes are valid only during the callback. The callback
/// must return normally and must not call into this map (such calls get
/// MC_ERR_REENTRANT). Returns MC_OK, MC_ERR_NOT_FOUND, MC_ERR_NULL_ARGUMENT.
/// # Safety
/// Per the pointer conventions of mapcore.h: `key`: `key_len` readable bytes;
/// `cb`: NULL or a function that may be called with `user` (which the library
/// only passes on) and the value.
#[no_mangle]
pub unsafe extern "C" fn mc_map_get_with(
    map: mc_map,
    key: *const u8,
    key_len: usize,
    cb: mc_value_fn,
    user: *mut c_void,
) -> mc_status {
    on_map(map.id, |m, id| {
        // SAFETY: caller's readable key.
        let k = unsafe { bytes_in(key, key_len, "key")? };
        let cb = cb.ok_or_else(|| null("cb"))?;
        in_callback_scope(id, || {
            // SAFETY: cb is a non-NULL C function; the value slice is valid for the call.
            m.get_with(k, |v| unsafe { cb(user, v.as_ptr(), v.len()) })
        })?
        .map(|_| McStatus::MC_OK)
        .ok_or_else(|| err(McStatus::MC_ERR_NOT_FOUND, "key not found"))
    })
}

/// Writes whether `key` is present to `*out`.
/// Returns MC_OK, MC_ERR_NULL_ARGUMENT.
/// # Safety
/// Per the pointer conventions of mapcore.h: `key`: `key_len` readable bytes;
/// `out`: a writable bool.
#[no_mangle]
pub unsafe extern "C" fn mc_map_contains(
    map: mc_map,
    key: *const u8,
    key_len: usize,
    out: *mut bool,
) -> mc_status {
    on_map(map.id, |m, _| {
        // SAFETY: caller's readable key.
        let k = unsafe { bytes_in(key, key_len, "key")? };
        let out = out_ptr(out, "out")?;
        // SAFETY: out checked non-NULL.
        unsafe { put(out, m.contains(k)) };
        Ok(McStatus::MC_OK)
    })
}

/// Deletes `key` (a structural change). Returns MC_OK, MC_ERR_NOT_FOUND (nothing
/// changed), MC_ERR_NULL_ARGUMENT, MC_ERR_OUT_OF_MEMORY (only while a snapshot
/// shares the slot page the delete writes, which must then be copied;
/// nothing changed).
/// # Safety
/// Per the pointer conventions of mapcore.h: `key`: `key_len` readable bytes.
#[no_mangle]
pub unsafe extern "C" fn mc_map_delete(map: mc_map, key: *const u8, key_len: usize) -> mc_status {
    on_map(map.id, |m, _| {
        // SAFETY: caller's readable key.
        let k = unsafe { bytes_in(key, key_len, "key")? };
        if m.remove(k)? {
            Ok(McStatus::MC_OK)
        } else {
            Err(err(McStatus::MC_ERR_NOT_FOUND, "key not found"))
        }
    })
}

/// Writes the number of entries to `*out`. Returns MC_OK, MC_ERR_NULL_ARGUMENT.
/// # Safety
/// Per the pointer conventions of mapcore.h: `out`: a writable size_t.
#[no_mangle]
pub unsafe extern "C" fn mc_map_len(map: mc_map, out: *mut usize) -> mc_status {
    on_map(map.id, |m, _| {
        let out = out_ptr(out, "out")?;
        // SAFETY: out checked non-NULL.
        unsafe { put(out, m.len()) };
        Ok(McStatus::MC_OK)
    })
}

/// The map's change counters, for code that buffers entries (as the Go
/// binding's iterators do) and must learn of every later write, including
/// writes made through this handle by other code, without a call per entry.
/// `*out_changes` receives one counter of every change to the map
/// (structural or not: a value replaced counts too) made while some reader
/// is registered with mc_map_watch; `*out_structural`
/// receives `*out_count` counters, `*out_stride` uint64_t apart, whose sum
/// counts the structural changes (see MC_MODE_STRICT). An unchanged value
/// of the first means no change at all; an unchanged sum of the others, no
/// structural change. Counters only grow, and a write counts itself before
/// any other call can see its effect. Read them with atomic 64-bit loads
/// (`__atomic_load_n(p, __ATOMIC_ACQUIRE)`), never write them. The memory
/// stays readable for the life of the process, also after mc_map_free; a map
/// created later may then reuse it (its counters go on growing from where
/// they stand).
/// Returns MC_OK, MC_ERR_NULL_ARGUMENT; the out-parameters are written only
/// on success.
/// # Safety
/// Per the pointer conventions of mapcore.h: `out_changes`, `out_structural`:
/// writable pointers; `out_count`, `out_stride`: writable size_t.
#[no_mangle]
pub unsafe extern "C" fn mc_map_counters(
    map: mc_map,
    out_changes: *mut *const u64,
    out_structural: *mut *const u64,
    out_count: *mut usize,
    out_stride: *mut usize,
) -> mc_status {
    on_map(map.id, |m, _| {
        let out_changes = out_ptr(out_changes, "out_changes")?;
        let out_structural = out_ptr(out_structural, "out_structural")?;
        let out_count = out_ptr(out_count, "out_count")?;
        let out_stride = out_ptr(out_stride, "out_stride")?;
        let c = m.counters();
        // SAFETY: all four checked non-NULL above; the caller provides
        // them writable, as the header requires of out-parameters.
        unsafe {
            put(out_changes, c.changes_word());
            put(out_structural, c.structural_words());
            put(out_count, c.structural.len());
            put(out_stride, engine::counters::STRIDE_WORDS);
        }
        Ok(McStatus::MC_OK)
    })
}

/// Registers (`watch` 1) or unregisters (0) a reader of the map's
/// change count (`*out_changes` of mc_map_counters). The count moves only
/// while some reader is registered, so that writers of different parts of
/// the map do not share a cache line while nobody watches. Register before
/// reading the count you will compare with later, and before reading the
/// entries the comparison protects; unregister when done. Freeing the map
/// ends every registration. Thread-safe.
/// Returns MC_OK; MC_ERR_INVALID_ARGUMENT (`watch` neither 0 nor 1, or
/// unregistering with no reader registered).
#[no_mangle]
pub extern "C" fn mc_map_watch(map: mc_map, watch: u32) -> mc_status {
    on_map(map.id, |m, _| {
        let on = match watch {
            0 => false,
            1 => true,
            _ => {
                return Err(Error::formatted(
                    McStatus::MC_ERR_INVALID_ARGUMENT,
                    format_args!("mc_map_watch: watch is {watch}, not 0 or 1"),
                ))
            }
        };
        if m.counters().watch(on) {
            Ok(McStatus::MC_OK)
        } else {
            Err(err(
                McStatus::MC_ERR_INVALID_ARGUMENT,
                "mc_map_watch(0) without a registered reader",
            ))
        }
    })
}

/// Removes every entry (structural) and releases their memory, including
/// room kept by mc_map_reserve. Returns MC_OK; MC_ERR_OUT_OF_MEMORY when
/// the empty tables cannot be allocated (they are made before anything is
/// removed: the map is unchanged).
#[no_mangle]
pub extern "C" fn mc_map_clear(map: mc_map) -> mc_status {
    on_map(map.id, |m, _| {
        m.clear()?;
        Ok(McStatus::MC_OK)
    })
}

/// Makes room for `additional` more entries. The room stays reserved while
/// entries come and go: deletions do not shrink the map below room for
/// `additional` entries (the most any successful call asked for) until
/// mc_map_shrink_to_fit or mc_map_clear. A successful call is always a
/// structural change (strict iterators are invalidated), whether or not a
/// table was re-laid. All or nothing: every shard's new table is built
/// before any is put in place, so a failed call changes nothing, not even
/// the structural generation (at its peak it holds the old and the new
/// tables of every shard that grows).
/// Returns MC_OK, MC_ERR_TOO_LARGE (`additional` above MC_MAX_CAPACITY, or the entries
/// already stored plus `additional` beyond the storage limit),
/// MC_ERR_OUT_OF_MEMORY (also, nothing allocated, when the room's slot
/// tables alone would take more memory than the system reports available:
/// they are filled at once, and where memory is overcommitted the kernel
/// would kill the process instead of failing the allocation).
#[no_mangle]
pub extern "C" fn mc_map_reserve(map: mc_map, additional: usize) -> mc_status {
    on_map(map.id, |m, _| {
        m.reserve(additional)?;
        Ok(McStatus::MC_OK)
    })
}

/// Releases unused table and arena space, and ends a reservation made by
/// mc_map_reserve or `mc_options.capacity`. Always a structural change (strict
/// iterators are invalidated). Returns MC_OK, MC_ERR_OUT_OF_MEMORY.
#[no_mangle]
pub extern "C" fn mc_map_shrink_to_fit(map: mc_map) -> mc_status {
    on_map(map.id, |m, _| {
        m.shrink_to_fit()?;
        Ok(McStatus::MC_OK)
    })
}

/// Deletes every entry for which `pred(user, key, key_len, val, val_len)`
/// returns 0. Safe bulk delete: no iterator is involved. `pred` is called
/// exactly once per entry (fewer times only on MC_ERR_OUT_OF_MEMORY).
/// The predicate must return normally and must not call into this map (such
/// calls get MC_ERR_REENTRANT; other maps are fine).
/// Locking: with no snapshot of the map alive, the shards are filtered one
/// at a time (each is write-locked while its entries are judged; calls on
/// other shards go on), so other threads may see some shards filtered and
/// others not yet. With a snapshot alive (its slot pages must be copied
/// before a delete writes them) the call is one atomic step: every shard is
/// write-locked for its whole duration, `pred` runs over every entry first,
/// the entries to delete are recorded in one bit per table slot (slots / 8
/// bytes, an eighth of the slot tables' size), the pages the deletes will
/// write are copied, and only then is anything deleted.
/// `*out_removed` (may be NULL) receives the number deleted.
/// Returns MC_OK, MC_ERR_NULL_ARGUMENT (pred), MC_ERR_OUT_OF_MEMORY (only
/// while a snapshot is alive: the map and the snapshot are as they were,
/// `pred` may have been called, and `*out_removed` is not written).
/// # Safety
/// Per the pointer conventions of mapcore.h: `pred`: NULL or a function that
/// may be called with `user` (which the library only passes on) and an entry;
/// `out_removed`: NULL or a writable size_t.
#[no_mangle]
pub unsafe extern "C" fn mc_map_retain(
    map: mc_map,
    pred: mc_entry_pred,
    user: *mut c_void,
    out_removed: *mut usize,
) -> mc_status {
    on_map(map.id, |m, id| {
        let pred = pred.ok_or_else(|| null("pred"))?;
        let removed = in_callback_scope(id, || {
            // SAFETY: pred is a non-NULL C function; slices are valid for the call.
            m.retain(|k, v| unsafe { pred(user, k.as_ptr(), k.len(), v.as_ptr(), v.len()) } != 0)
        })??;
        // SAFETY: optional out-pointer.
        unsafe { put_opt(out_removed, removed) };
        Ok(McStatus::MC_OK)
    })
}

// ---------------------------------------------------------------------------
// Batches. Keys are passed packed: `keys` holds the n keys back to back and
// `key_lens[i]` is the length of key i. n may be 0. At most MC_MAX_BATCH keys.
// ---------------------------------------------------------------------------

/// Checks a packed key (or value) buffer: `n` lengths at `lens` and their
/// sum of bytes at `data`. Returns the bytes and the lengths.
///
/// # Safety
/// `data` must hold the sum of `lens[..n]` readable bytes and `lens` n u32s.
unsafe fn packed<'a>(
    n: usize,
    data: *const u8,
    lens: *const u32,
    what: &str,
) -> Result<(&'a [u8], &'a [u32])> {
    if n > MC_MAX_BATCH {
        return Err(Error::formatted(
            McStatus::MC_ERR_TOO_LARGE,
            format_args!("batch of {n} exceeds MC_MAX_BATCH"),
        ));
    }
    if n == 0 {
        return Ok((&[], &[]));
    }
    if lens.is_null() {
        return Err(null(format_args!("{what}_lens")));
    }
    // SAFETY: non-NULL; caller provides n aligned lengths.
    let lens = unsafe { slice_in(lens, n, what)? };
    let total: usize = lens.iter().map(|&l| l as usize).sum();
    // SAFETY: caller provides `total` readable bytes at data.
    let all = unsafe { bytes_in(data, total, what)? };
    Ok((all, lens))
}

/// The items of a checked packed buffer, in order.
fn items<'a>(all: &'a [u8], lens: &'a [u32]) -> impl Iterator<Item = &'a [u8]> + Clone + 'a {
    let mut rest = all;
    lens.iter().map(move |&l| {
        let (item, tail) = rest.split_at(l as usize);
        rest = tail;
        item
    })
}

/// Keys `mc_map_get_many` looks up per step: its scratch memory is a fixed
/// 8 KiB on the stack (a hash, a candidate and a result per key), whatever
/// the batch's size; batches of up to `MANY_SMALL` keys use a quarter.
const MANY_CHUNK: usize = 256;
const MANY_SMALL: usize = 64;

/// `mc_map_get_many`'s lookups, `C` keys at a time: the `n` values of
/// `keys` are written back to back into `out` and their lengths into
/// `lens` (MC_ABSENT for a missing key), all in one consistent state of
/// the map, and nothing is written unless everything fits. Returns the
/// bytes written, or the bytes needed when they do not fit. A batch of one
/// chunk is looked up once and copied from what was found; a longer one
/// is looked up twice (sizes, then copies), under the same read access.
fn get_many_chunked<'k, const C: usize>(
    m: &Map,
    n: usize,
    keys: impl Iterator<Item = &'k [u8]> + Clone,
    out: &mut [MaybeUninit<u8>],
    lens: &mut [MaybeUninit<u32>],
) -> std::result::Result<usize, usize> {
    // The first chunk's hashes come from the pass that finds the shards to
    // read, so a batch of one chunk hashes each key once.
    let mut hashes = [0u64; C];
    let mut mask = 0u32;
    for (i, k) in keys.clone().enumerate() {
        let h = m.hasher().h1(k);
        if let Some(slot) = hashes.get_mut(i) {
            *slot = h;
        }
        mask |= engine::map::shard_bit(h);
    }
    m.read_many(mask, |view| {
        let mut found: [Option<&[u8]>; C] = [None; C];
        let mut need = 0;
        let mut rest = keys.clone();
        for start in (0..n).step_by(C) {
            let len = C.min(n - start);
            need += look_up_chunk::<C>(view, &mut rest, start > 0, &mut hashes[..len], &mut found);
        }
        if need > out.len() {
            return Err(need);
        }
        let mut off = 0;
        let mut rest = keys;
        for start in (0..n).step_by(C) {
            let len = C.min(n - start);
            if n > C {
                let _ = look_up_chunk::<C>(view, &mut rest, true, &mut hashes[..len], &mut found);
            }
            for (v, l) in found[..len].iter().zip(&mut lens[start..start + len]) {
                l.write(match v {
                    Some(v) => {
                        copy_small_uninit(&mut out[off..off + v.len()], v);
                        off += v.len();
                        v.len() as u32
                    }
                    None => MC_ABSENT,
                });
            }
        }
        Ok(off)
    })
}

/// Looks up the next `hashes.len()` keys of `keys` in `view` into `found`;
/// `hash` says whether their hashes are still to be computed into
/// `hashes`. Records first (their slots are already on the way), then one
/// key comparison per key. Returns the bytes of the values found.
fn look_up_chunk<'v, 'k, const C: usize>(
    view: &'v engine::map::ManyView<'_>,
    keys: &mut (impl Iterator<Item = &'k [u8]> + Clone),
    hash: bool,
    hashes: &mut [u64],
    found: &mut [Option<&'v [u8]>; C],
) -> usize {
    if hash {
        for (h, k) in hashes.iter_mut().zip(keys.clone()) {
            *h = view.hasher().h1(k);
        }
    }
    for &h in hashes.iter() {
        view.prefetch_home(h);
    }
    let mut candidates = [None; C];
    for (c, &h) in candidates.iter_mut().zip(hashes.iter()) {
        *c = Some(view.candidate(h));
    }
    let mut bytes = 0;
    let looked_up = found.iter_mut().zip(hashes.iter().zip(&candidates));
    for ((f, (&h, c)), k) in looked_up.zip(keys.take(hashes.len())) {
        *f = c.and_then(|c| view.get(h, k, c));
        bytes += f.map_or(0, <[u8]>::len);
    }
    bytes
}

/// Looks up n keys in one consistent state of the map (all involved shards
/// are read-locked together). Scratch memory is constant (a few KiB on the
/// stack: the keys are looked up 256 at a time); a batch of more than 256
/// keys is looked up twice, first for the sizes, so that nothing is written
/// unless everything fits. Values are written back to back into `vals`
/// (capacity `vals_cap`), `val_lens[i]` gets the length of value i or
/// MC_ABSENT, and `*out_used` the bytes used.
/// Returns MC_OK; MC_ERR_BUFFER_TOO_SMALL (only `*out_used` written: the bytes
/// all found values need); MC_ERR_NULL_ARGUMENT; MC_ERR_TOO_LARGE.
/// # Safety
/// Per the pointer conventions of mapcore.h: `key_lens`: `n` readable uint32_t;
/// `keys`: their sum of readable bytes; `vals`: `vals_cap` writable bytes;
/// `val_lens`: `n` writable uint32_t; `out_used`: a writable size_t.
#[no_mangle]
pub unsafe extern "C" fn mc_map_get_many(
    map: mc_map,
    n: usize,
    keys: *const u8,
    key_lens: *const u32,
    vals: *mut u8,
    vals_cap: usize,
    val_lens: *mut u32,
    out_used: *mut usize,
) -> mc_status {
    on_map(map.id, |m, _| {
        // SAFETY: caller's packed keys and writable outputs.
        let ((key_bytes, key_lens), out) = unsafe {
            (
                packed(n, keys, key_lens, "keys")?,
                bytes_out(vals, vals_cap, "vals")?,
            )
        };
        let out_used = out_ptr(out_used, "out_used")?;
        // SAFETY: the caller provides n writable u32s at val_lens, aligned
        // and overlapping no other argument (the header's pointer conventions).
        // Written only once everything fits.
        let lens = unsafe { slice_out(val_lens, n, "val_lens")? };
        // Small batches get small scratch arrays (they are zeroed per call).
        let used = if n <= MANY_SMALL {
            get_many_chunked::<MANY_SMALL>(m, n, items(key_bytes, key_lens), out, lens)
        } else {
            get_many_chunked::<MANY_CHUNK>(m, n, items(key_bytes, key_lens), out, lens)
        };
        match used {
            Ok(used) => {
                // SAFETY: out_used checked non-NULL.
                unsafe { put(out_used, used) };
                Ok(McStatus::MC_OK)
            }
            Err(need) => {
                // SAFETY: out_used checked non-NULL.
                unsafe { put(out_used, need) };
                Err(err(
                    McStatus::MC_ERR_BUFFER_TOO_SMALL,
                    "the values do not fit; *out_used holds the bytes they need",
                ))
            }
        }
    })
}

/// Inserts or overwrites n entries (values packed like keys) with all involved
/// shards write-locked together: other threads see all of them or none.
/// Sizes are checked first (MC_ERR_TOO_LARGE for a key or value: nothing
/// stored). MC_ERR_OUT_OF_MEMORY, and MC_ERR_TOO_LARGE for the storage
/// limit (see `mc_map_set`), leave the map (and every snapshot) as it was,
/// whatever the batch's size and whether or not a snapshot is alive: the
/// room every pair needs is made before the first is stored (a larger
/// table, empty slots, arena space for every record, private copies of the
/// slot pages a snapshot shares that the writes will change; none of it
/// changes an entry), and storing then needs no memory. Arena space is
/// reserved in chunks: for a batch of over 256 KiB of records in one of the
/// 16 shards, or a record over 128 KiB, up to about twice the records'
/// bytes plus 256 KiB per shard is reserved (mostly not resident until
/// written); what the batch does not fill is freed before the call
/// returns. Scratch memory is otherwise constant (under a snapshot, 4 bytes
/// per 2,048 table slots): the pairs are read from the caller's buffers
/// (for sizes and shards; per involved shard when its table must grow or
/// it gets a record over 128 KiB; once more under a snapshot; for the
/// writes), nothing is copied.
/// `*out_inserted` (may be NULL) receives the number of new keys.
/// Returns MC_OK, MC_ERR_NULL_ARGUMENT, MC_ERR_TOO_LARGE, MC_ERR_OUT_OF_MEMORY,
/// MC_ERR_INVALID_ARGUMENT (a position collision, see `mc_map_set`,
/// astronomically rare; it stops the batch part-way: the pairs before the
/// refused one are stored).
/// # Safety
/// Per the pointer conventions of mapcore.h: `key_lens`, `val_lens`: `n`
/// readable uint32_t each; `keys`, `vals`: their sums of readable bytes;
/// `out_inserted`: NULL or a writable size_t.
#[no_mangle]
pub unsafe extern "C" fn mc_map_set_many(
    map: mc_map,
    n: usize,
    keys: *const u8,
    key_lens: *const u32,
    vals: *const u8,
    val_lens: *const u32,
    out_inserted: *mut usize,
) -> mc_status {
    on_map(map.id, |m, _| {
        // SAFETY: caller's packed keys and values.
        let ((kb, kl), (vb, vl)) = unsafe {
            (
                packed(n, keys, key_lens, "keys")?,
                packed(n, vals, val_lens, "vals")?,
            )
        };
        let inserted = m.insert_many(items(kb, kl).zip(items(vb, vl)))?;
        // SAFETY: optional out-pointer.
        unsafe { put_opt(out_inserted, inserted) };
        Ok(McStatus::MC_OK)
    })
}

/// Deletes n keys atomically (all involved shards write-locked together),
/// with constant scratch memory.
/// Absent keys are skipped. `*out_removed` (may be NULL) receives how many
/// were present. Returns MC_OK, MC_ERR_NULL_ARGUMENT, MC_ERR_TOO_LARGE,
/// MC_ERR_OUT_OF_MEMORY (only while a snapshot shares slot pages the deletes
/// write; nothing deleted).
/// # Safety
/// Per the pointer conventions of mapcore.h: `key_lens`: `n` readable uint32_t;
/// `keys`: their sum of readable bytes; `out_removed`: NULL or a writable
/// size_t.
#[no_mangle]
pub unsafe extern "C" fn mc_map_delete_many(
    map: mc_map,
    n: usize,
    keys: *const u8,
    key_lens: *const u32,
    out_removed: *mut usize,
) -> mc_status {
    on_map(map.id, |m, _| {
        // SAFETY: caller's packed keys.
        let (kb, kl) = unsafe { packed(n, keys, key_lens, "keys")? };
        let removed = m.remove_many(items(kb, kl))?;
        // SAFETY: optional out-pointer.
        unsafe { put_opt(out_removed, removed) };
        Ok(McStatus::MC_OK)
    })
}

// ---------------------------------------------------------------------------
// Iteration (shared by maps and snapshots)
// ---------------------------------------------------------------------------

#[derive(Clone, Copy)]
enum Source<'a> {
    Map(&'a Map),
    Snapshot(&'a Snapshot),
}

impl Source<'_> {
    fn secret(&self) -> [u64; 2] {
        match self {
            Source::Map(m) => m.secret(),
            Source::Snapshot(s) => s.secret,
        }
    }

    fn scan<F: FnMut(&Entry<'_>) -> bool>(
        &self,
        t: &mut Token,
        max: usize,
        f: &mut F,
    ) -> Result<Scan> {
        self.scan_into(t, &mut Visit::new(max, f))
    }

    fn scan_into(&self, t: &mut Token, sink: &mut impl Sink) -> Result<Scan> {
        match self {
            Source::Map(m) => m.scan_into(
                &mut t.cursor,
                (t.mode == Mode::Strict).then_some(t.stamp),
                sink,
            ),
            Source::Snapshot(s) => s
                .data
                .scan_into(&mut t.cursor, t.mode == Mode::Strict, sink),
        }
    }
}

/// Writes a fresh token for `src` (handle `id`) in `mode` to `*out`.
///
/// # Safety
/// `out` must be NULL or aligned and valid for writes of an `mc_iter`.
unsafe fn init_token(src: Source, id: u64, mode: u32, out: *mut mc_iter) -> Result<McStatus> {
    let mode = Mode::from_u32(mode).ok_or_else(|| {
        Error::formatted(
            McStatus::MC_ERR_INVALID_ARGUMENT,
            format_args!("unknown iteration mode {mode}"),
        )
    })?;
    let out = out_ptr(out, "out")?;
    let stamp = match src {
        Source::Map(m) => m.generation(),
        Source::Snapshot(_) => 0,
    };
    // SAFETY: non-NULL (out_ptr); writable by this function's contract.
    unsafe { write_token(out, &Token::new(id, mode, stamp)) };
    Ok(McStatus::MC_OK)
}

/// `mc_iter_next` on `src`.
///
/// # Safety
/// As for `mc_iter_next`: each pointer NULL or valid as the header says.
#[allow(clippy::too_many_arguments)]
unsafe fn next_impl(
    src: Source,
    id: u64,
    it: *mut mc_iter,
    kbuf: *mut u8,
    kcap: usize,
    out_klen: *mut usize,
    vbuf: *mut u8,
    vcap: usize,
    out_vlen: *mut usize,
) -> Result<McStatus> {
    let it = out_ptr(it, "it")?;
    // SAFETY: non-NULL; a readable token by this function's contract.
    let mut t = unsafe { read_token(it, id)? };
    // SAFETY: the caller's writable key and value buffers.
    let (kout, vout) = unsafe {
        (
            bytes_out(kbuf, kcap, "key_buf")?,
            bytes_out(vbuf, vcap, "val_buf")?,
        )
    };
    let (out_klen, out_vlen) = (
        out_ptr(out_klen, "out_key_len")?,
        out_ptr(out_vlen, "out_val_len")?,
    );
    let mut lens = (0, 0);
    let mut fits = true;
    let r = src.scan(&mut t, 1, &mut |e| {
        let (k, v) = (e.key, e.value);
        lens = (k.len(), v.len());
        fits = k.len() <= kout.len() && v.len() <= vout.len();
        if fits {
            copy_small_uninit(&mut kout[..k.len()], k);
            copy_small_uninit(&mut vout[..v.len()], v);
        }
        fits
    })?;
    if r == Scan::Done {
        // SAFETY: `it` was read above; writable by this function's contract.
        unsafe { write_token(it, &t) };
        return Ok(McStatus::MC_DONE);
    }
    // SAFETY: both out-pointers checked non-NULL above.
    unsafe {
        put(out_klen, lens.0);
        put(out_vlen, lens.1);
    }
    if !fits {
        return Err(err(
            McStatus::MC_ERR_BUFFER_TOO_SMALL,
            "the next entry does not fit; *out_key_len and *out_val_len hold the lengths it needs",
        ));
    }
    // SAFETY: as above.
    unsafe { write_token(it, &t) };
    Ok(McStatus::MC_OK)
}

/// `mc_iter_next_with` on `src`.
///
/// # Safety
/// As for `mc_iter_next_with`: `it` NULL or a readable, writable token;
/// `cb` NULL or safe to call with `user` and an entry.
unsafe fn next_with_impl(
    src: Source,
    id: u64,
    it: *mut mc_iter,
    cb: mc_entry_fn,
    user: *mut c_void,
) -> Result<McStatus> {
    let it = out_ptr(it, "it")?;
    // SAFETY: non-NULL; a readable token by this function's contract.
    let mut t = unsafe { read_token(it, id)? };
    let cb = cb.ok_or_else(|| null("cb"))?;
    let mut scan = || {
        src.scan(&mut t, 1, &mut |e| {
            let (k, v) = (e.key, e.value);
            // SAFETY: cb is a non-NULL C function; the slices are valid during the call.
            unsafe { cb(user, k.as_ptr(), k.len(), v.as_ptr(), v.len()) };
            true
        })
    };
    // Snapshots take no locks, so only a map needs re-entry protection.
    let r = match src {
        Source::Map(_) => in_callback_scope(id, scan)??,
        _ => scan()?,
    };
    // SAFETY: `it` was read above; writable by this function's contract.
    unsafe { write_token(it, &t) };
    Ok(if r == Scan::Done {
        McStatus::MC_DONE
    } else {
        McStatus::MC_OK
    })
}

/// `mc_iter_next_batch` on `src`.
///
/// # Safety
/// As for `mc_iter_next_batch`: each pointer NULL or valid as the header
/// says.
#[allow(clippy::too_many_arguments)]
unsafe fn next_batch_impl(
    src: Source,
    id: u64,
    it: *mut mc_iter,
    buf: *mut u8,
    cap: usize,
    max_entries: usize,
    out_count: *mut usize,
    out_used: *mut usize,
) -> Result<McStatus> {
    let it = out_ptr(it, "it")?;
    // SAFETY: non-NULL; a readable token by this function's contract.
    let mut t = unsafe { read_token(it, id)? };
    // SAFETY: the caller's writable batch buffer.
    let out = unsafe { bytes_out(buf, cap, "buf")? };
    let (out_count, out_used) = (
        out_ptr(out_count, "out_count")?,
        out_ptr(out_used, "out_used")?,
    );
    if max_entries == 0 {
        return Err(err(
            McStatus::MC_ERR_INVALID_ARGUMENT,
            "max_entries must be at least 1",
        ));
    }
    let mut pack = Pack::new(out, max_entries);
    let r = src.scan_into(&mut t, &mut pack)?;
    let count = match r {
        Scan::Done => {
            // SAFETY: `it` was read above; writable by this function's contract.
            unsafe { write_token(it, &t) };
            // SAFETY: out-pointers checked non-NULL above.
            unsafe {
                put(out_count, 0);
                put(out_used, 0);
            }
            return Ok(McStatus::MC_DONE);
        }
        Scan::Entries(n) => n,
    };
    if count == 0 {
        // SAFETY: checked non-NULL above.
        unsafe { put(out_used, pack.first_need()) };
        return Err(err(
            McStatus::MC_ERR_BUFFER_TOO_SMALL,
            "not even one entry fits; *out_used holds the bytes the next entry needs",
        ));
    }
    // SAFETY: as above.
    unsafe { write_token(it, &t) };
    // SAFETY: checked non-NULL above.
    unsafe {
        put(out_count, count);
        put(out_used, pack.used());
    }
    Ok(McStatus::MC_OK)
}

/// `mc_iter_encode` on `src`.
///
/// # Safety
/// As for `mc_iter_encode`: each pointer NULL or valid as the header says.
unsafe fn encode_impl(
    src: Source,
    id: u64,
    it: *const mc_iter,
    buf: *mut c_char,
    cap: usize,
    out_len: *mut usize,
) -> Result<McStatus> {
    let it = in_ptr(it, "it")?;
    // SAFETY: non-NULL; a readable token by this function's contract.
    let t = unsafe { read_token(it, id)? };
    let out_len = out_ptr(out_len, "out_len")?;
    // SAFETY: the caller's writable text buffer.
    let out = unsafe { bytes_out(buf.cast(), cap, "buf")? };
    let text = t.encode(src.secret());
    // SAFETY: checked non-NULL above.
    unsafe { put(out_len, text.len()) };
    if out.len() < text.len() + 1 {
        return Err(Error::formatted(
            McStatus::MC_ERR_BUFFER_TOO_SMALL,
            format_args!("token text needs {} bytes with its NUL", text.len() + 1),
        ));
    }
    put_text(out, &text);
    Ok(McStatus::MC_OK)
}

/// `mc_iter_decode` on `src`.
///
/// # Safety
/// As for `mc_iter_decode`: each pointer NULL or valid as the header says.
unsafe fn decode_impl(
    src: Source,
    id: u64,
    text: *const c_char,
    len: usize,
    out: *mut mc_iter,
) -> Result<McStatus> {
    // SAFETY: the caller's readable text of `len` bytes.
    let text = unsafe { bytes_in(text.cast(), len, "text")? };
    let out = out_ptr(out, "out")?;
    let t = Token::decode(text, id, src.secret())?;
    // SAFETY: non-NULL (out_ptr); writable by this function's contract.
    unsafe { write_token(out, &t) };
    Ok(McStatus::MC_OK)
}

/// Starts an iteration over `map` in `mode` (MC_MODE_STRICT or MC_MODE_CURSOR)
/// and writes the token to `*out`. A strict token is stamped with the map's
/// current structural generation. Returns MC_OK, MC_ERR_INVALID_ARGUMENT
/// (unknown mode), MC_ERR_NULL_ARGUMENT, and the common map errors.
/// # Safety
/// Per the pointer conventions of mapcore.h: `out`: a writable mc_iter.
#[no_mangle]
pub unsafe extern "C" fn mc_iter_init(map: mc_map, mode: u32, out: *mut mc_iter) -> mc_status {
    // SAFETY: forwards the caller's out-pointer with its documented contract.
    on_map(map.id, |m, id| unsafe {
        init_token(Source::Map(m), id, mode, out)
    })
}

/// Copies the next entry into `key_buf`/`val_buf` and advances `*it`.
/// Returns MC_OK (lengths in `*out_key_len`, `*out_val_len`); MC_DONE (the
/// iteration is complete; nothing written but `*it`); MC_ERR_BUFFER_TOO_SMALL
/// (only the two required lengths written; `*it` unchanged, call again);
/// MC_ERR_ITER_INVALIDATED (strict token, the map changed structurally other
/// than through this token; `*it` unchanged); MC_ERR_BAD_TOKEN (corrupted,
/// forged, uninitialised); MC_ERR_WRONG_MAP (token of another or freed map);
/// MC_ERR_NULL_ARGUMENT; and the common map errors. One call observes one
/// consistent state. Buffers may be NULL when their capacity is 0.
/// # Safety
/// Per the pointer conventions of mapcore.h: `it`: a readable, writable
/// mc_iter; `key_buf`, `val_buf`: `key_cap`, `val_cap` writable bytes;
/// `out_key_len`, `out_val_len`: writable size_t.
#[no_mangle]
pub unsafe extern "C" fn mc_iter_next(
    map: mc_map,
    it: *mut mc_iter,
    key_buf: *mut u8,
    key_cap: usize,
    out_key_len: *mut usize,
    val_buf: *mut u8,
    val_cap: usize,
    out_val_len: *mut usize,
) -> mc_status {
    on_map(map.id, |m, id| {
        // SAFETY: forwards the caller's buffers with their documented contract.
        unsafe {
            next_impl(
                Source::Map(m),
                id,
                it,
                key_buf,
                key_cap,
                out_key_len,
                val_buf,
                val_cap,
                out_val_len,
            )
        }
    })
}

/// Like `mc_iter_next`, but passes the entry in place to `cb` under the
/// shard's read lock (bytes valid only during the call; the callback must not
/// call into this map: MC_ERR_REENTRANT). Returns MC_OK, MC_DONE and the
/// errors of `mc_iter_next` except MC_ERR_BUFFER_TOO_SMALL.
/// # Safety
/// Per the pointer conventions of mapcore.h: `it`: a readable, writable
/// mc_iter; `cb`: NULL or a function that may be called with `user` (which the
/// library only passes on) and an entry.
#[no_mangle]
pub unsafe extern "C" fn mc_iter_next_with(
    map: mc_map,
    it: *mut mc_iter,
    cb: mc_entry_fn,
    user: *mut c_void,
) -> mc_status {
    // SAFETY: forwards the caller's callback and token.
    on_map(map.id, |m, id| unsafe {
        next_with_impl(Source::Map(m), id, it, cb, user)
    })
}

/// Copies up to `max_entries` whole entries into `buf` and advances `*it` past
/// them. Layout, entry after entry with no padding: u32 key length, u32 value
/// length (host byte order), key bytes, value bytes (see `mc_batch_entry`).
/// Never more than `max_entries` entries or `cap` bytes. One call observes one
/// consistent state (shards are locked together for its duration).
/// Returns MC_OK (`*out_count` >= 1 entries in `*out_used` bytes); MC_DONE
/// (complete; `*out_count` = `*out_used` = 0); MC_ERR_BUFFER_TOO_SMALL (not
/// even one entry fits; `*out_used` = bytes the next entry needs, `*it`
/// unchanged); MC_ERR_INVALID_ARGUMENT (`max_entries` = 0); and the errors of
/// `mc_iter_next`.
/// # Safety
/// Per the pointer conventions of mapcore.h: `it`: a readable, writable
/// mc_iter; `buf`: `cap` writable bytes; `out_count`, `out_used`: writable
/// size_t.
#[no_mangle]
pub unsafe extern "C" fn mc_iter_next_batch(
    map: mc_map,
    it: *mut mc_iter,
    buf: *mut u8,
    cap: usize,
    max_entries: usize,
    out_count: *mut usize,
    out_used: *mut usize,
) -> mc_status {
    on_map(map.id, |m, id| {
        // SAFETY: forwards the caller's buffer with its documented contract.
        unsafe {
            next_batch_impl(
                Source::Map(m),
                id,
                it,
                buf,
                cap,
                max_entries,
                out_count,
                out_used,
            )
        }
    })
}

/// Moves `*it` to `key`'s place in the map's iteration order, as if `key` had
/// just been returned: the next call continues with the entries after that
/// place, and mc_iter_remove / mc_iter_set_value act on `key` (failing with
/// MC_ERR_NOT_FOUND if it is absent by then). `key` need not be present: a
/// key's place depends on the key alone, so this is how a binding that reads
/// batches re-creates the token of an entry in the middle of a batch, even
/// after other threads changed the map. Mode and strict stamp are kept (a
/// stale strict token stays stale).
/// Returns MC_OK; MC_ERR_TOO_LARGE (key over MC_MAX_KEY_LEN); the token
/// errors; the common map errors.
/// # Safety
/// Per the pointer conventions of mapcore.h: `it`: a readable, writable
/// mc_iter; `key`: `key_len` readable bytes.
#[no_mangle]
pub unsafe extern "C" fn mc_iter_seek(
    map: mc_map,
    it: *mut mc_iter,
    key: *const u8,
    key_len: usize,
) -> mc_status {
    on_map(map.id, |m, id| {
        let it = out_ptr(it, "it")?;
        // SAFETY: non-NULL; the caller's readable token.
        let mut t = unsafe { read_token(it, id)? };
        // SAFETY: the caller's readable key.
        let k = unsafe { bytes_in(key, key_len, "key")? };
        engine::map::check_key(k)?;
        t.cursor = m.cursor_at(k);
        // SAFETY: the caller's writable token, read above.
        unsafe { write_token(it, &t) };
        Ok(McStatus::MC_OK)
    })
}

/// Deletes the entry `*it` returned last. The token stays valid and the
/// iteration still yields every other entry exactly once; other strict tokens
/// of the map are invalidated (it is a structural change).
/// Returns MC_OK; MC_ERR_NOT_FOUND (no current entry: not started, finished,
/// already removed, or removed by someone else); MC_ERR_ITER_INVALIDATED
/// (strict token already stale; nothing deleted); MC_ERR_OUT_OF_MEMORY (only
/// while a snapshot shares the slot page the delete writes; nothing deleted);
/// the token errors; the common map errors.
/// # Safety
/// Per the pointer conventions of mapcore.h: `it`: a readable, writable
/// mc_iter.
#[no_mangle]
pub unsafe extern "C" fn mc_iter_remove(map: mc_map, it: *mut mc_iter) -> mc_status {
    on_map(map.id, |m, id| {
        let it = out_ptr(it, "it")?;
        // SAFETY: non-NULL; the caller's readable token.
        let mut t = unsafe { read_token(it, id)? };
        let strict = t.mode == Mode::Strict;
        let mut stamp = t.stamp;
        m.remove_current(&mut t.cursor, strict.then_some(&mut stamp))?;
        t.stamp = stamp;
        // SAFETY: the caller's writable token, read above.
        unsafe { write_token(it, &t) };
        Ok(McStatus::MC_OK)
    })
}

/// Replaces the value of the entry `*it` returned last (not structural: no
/// token is invalidated). Returns MC_OK, MC_ERR_NOT_FOUND (no current entry),
/// MC_ERR_TOO_LARGE, MC_ERR_OUT_OF_MEMORY, MC_ERR_ITER_INVALIDATED, the token
/// errors and the common map errors.
/// # Safety
/// Per the pointer conventions of mapcore.h: `it`: a readable mc_iter; `val`:
/// `val_len` readable bytes.
#[no_mangle]
pub unsafe extern "C" fn mc_iter_set_value(
    map: mc_map,
    it: *const mc_iter,
    val: *const u8,
    val_len: usize,
) -> mc_status {
    on_map(map.id, |m, id| {
        let it = in_ptr(it, "it")?;
        // SAFETY: non-NULL; the caller's readable token.
        let t = unsafe { read_token(it, id)? };
        // SAFETY: the caller's readable value.
        let v = unsafe { bytes_in(val, val_len, "val")? };
        m.set_current_value(&t.cursor, (t.mode == Mode::Strict).then_some(t.stamp), v)?;
        Ok(McStatus::MC_OK)
    })
}

/// Encodes `*it` as text ("mc1" and 64 characters of [A-Za-z0-9_-]:
/// MC_ITER_TEXT_LEN in all, plus a NUL) to hand to untrusted holders, e.g.
/// in a pagination URL. The text reveals no hash values and any tampering is
/// detected by `mc_iter_decode`. Like the map handle it names, it is valid
/// within this process while the map lives. `*out_len` receives the length.
/// Returns MC_OK; MC_ERR_BUFFER_TOO_SMALL (need `cap` >= MC_ITER_TEXT_LEN + 1;
/// only `*out_len` written); the token errors; MC_ERR_NULL_ARGUMENT.
/// # Safety
/// Per the pointer conventions of mapcore.h: `it`: a readable mc_iter; `buf`:
/// `cap` writable bytes; `out_len`: a writable size_t.
#[no_mangle]
pub unsafe extern "C" fn mc_iter_encode(
    map: mc_map,
    it: *const mc_iter,
    buf: *mut c_char,
    cap: usize,
    out_len: *mut usize,
) -> mc_status {
    // SAFETY: forwards the caller's pointers with their documented contract.
    on_map(map.id, |m, id| unsafe {
        encode_impl(Source::Map(m), id, it, buf, cap, out_len)
    })
}

/// Decodes text from `mc_iter_encode` (length `len`, NUL not needed) into a
/// token for `map`. Returns MC_OK; MC_ERR_BAD_TOKEN (malformed or tampered);
/// MC_ERR_WRONG_MAP (encoded for another map); MC_ERR_NULL_ARGUMENT.
/// # Safety
/// Per the pointer conventions of mapcore.h: `text`: `len` readable bytes;
/// `out`: a writable mc_iter.
#[no_mangle]
pub unsafe extern "C" fn mc_iter_decode(
    map: mc_map,
    text: *const c_char,
    len: usize,
    out: *mut mc_iter,
) -> mc_status {
    // SAFETY: forwards the caller's pointers with their documented contract.
    on_map(map.id, |m, id| unsafe {
        decode_impl(Source::Map(m), id, text, len, out)
    })
}

/// Walks a next-batch buffer: reads the entry at `*offset` of the `used` bytes
/// in `buf`, points `*key`/`*val` into `buf` and advances `*offset`.
/// Returns MC_OK; MC_DONE when `*offset == used`; MC_ERR_INVALID_ARGUMENT if
/// the bytes at `*offset` are not a whole entry; MC_ERR_NULL_ARGUMENT. Pure
/// function of its arguments; thread-safe.
/// # Safety
/// Per the pointer conventions of mapcore.h: `buf`: `used` readable bytes;
/// `offset`: a readable, writable size_t; `key`, `val`: writable pointers;
/// `key_len`, `val_len`: writable size_t.
#[no_mangle]
pub unsafe extern "C" fn mc_batch_entry(
    buf: *const u8,
    used: usize,
    offset: *mut usize,
    key: *mut *const u8,
    key_len: *mut usize,
    val: *mut *const u8,
    val_len: *mut usize,
) -> mc_status {
    run(|| {
        // SAFETY: the caller's batch buffer of `used` readable bytes.
        let all = unsafe { bytes_in(buf, used, "buf")? };
        let (offset, key, key_len, val, val_len) = (
            out_ptr(offset, "offset")?,
            out_ptr(key, "key")?,
            out_ptr(key_len, "key_len")?,
            out_ptr(val, "val")?,
            out_ptr(val_len, "val_len")?,
        );
        // SAFETY: offset checked non-NULL; the caller's readable size_t.
        let off = unsafe { read_in(offset) };
        if off == all.len() {
            return Ok(McStatus::MC_DONE);
        }
        let malformed = || {
            Error::formatted(
                McStatus::MC_ERR_INVALID_ARGUMENT,
                format_args!("no whole batch entry at offset {off}"),
            )
        };
        let head = all
            .get(
                off..off
                    .checked_add(MC_BATCH_ENTRY_HEADER)
                    .ok_or_else(malformed)?,
            )
            .ok_or_else(malformed)?;
        let kl = u32::from_ne_bytes(head[..4].try_into().expect("4 bytes")) as usize;
        let vl = u32::from_ne_bytes(head[4..].try_into().expect("4 bytes")) as usize;
        let k0 = off + MC_BATCH_ENTRY_HEADER;
        let end = k0
            .checked_add(kl)
            .and_then(|x| x.checked_add(vl))
            .ok_or_else(malformed)?;
        if end > all.len() {
            return Err(malformed());
        }
        // SAFETY: all out-pointers checked non-NULL above.
        unsafe {
            put(key, all[k0..].as_ptr());
            put(key_len, kl);
            put(val, all[k0 + kl..].as_ptr());
            put(val_len, vl);
            put(offset, end);
        }
        Ok(McStatus::MC_OK)
    })
}

// ---------------------------------------------------------------------------
// Snapshots: read-only point-in-time views. Taking one copies no entries;
// the live map keeps going unblocked and copies only pages it touches later.
// (Never the whole map: a write that grows one of the 16 internal shards
// re-lays that shard, and after many writes each made under a fresh
// snapshot, one write copies that shard's entries into fresh storage; both
// are amortised over the writes that led to them.)
// Snapshot functions are thread-safe and never block on the map's writers.
// They return MC_ERR_BAD_HANDLE for a bad snapshot handle (including a map
// handle) and MC_ERR_INTERNAL for a caught panic.
// ---------------------------------------------------------------------------

/// Takes a snapshot of `map` (all shards at one instant) into `*out`. Free it
/// with `mc_snapshot_free`; it stays valid after the map is freed.
/// While it lives, the first write to a 16 KiB page of slots copies that
/// page: a write (insert, overwrite or delete) that cannot allocate the copy
/// returns MC_ERR_OUT_OF_MEMORY and changes nothing.
/// Returns MC_OK, MC_ERR_NULL_ARGUMENT, MC_ERR_OUT_OF_MEMORY, the common map errors.
/// # Safety
/// Per the pointer conventions of mapcore.h: `out`: a writable mc_snapshot.
#[no_mangle]
pub unsafe extern "C" fn mc_snapshot_new(map: mc_map, out: *mut mc_snapshot) -> mc_status {
    on_map(map.id, |m, _| {
        let out = out_ptr(out, "out")?;
        let id = register(Object::Snapshot(Snapshot {
            data: m.snapshot()?,
            secret: m.secret(),
        }))?;
        // SAFETY: out checked non-NULL.
        unsafe { put(out, mc_snapshot { id }) };
        Ok(McStatus::MC_OK)
    })
}

/// Frees a snapshot; its memory is reclaimed once no call is using it.
/// Returns MC_OK; MC_ERR_BAD_HANDLE (0, garbage, a map handle, already freed).
#[no_mangle]
pub extern "C" fn mc_snapshot_free(snap: mc_snapshot) -> mc_status {
    run(|| {
        if !registry::is_snapshot_id(snap.id) || !registry::remove(snap.id) {
            return Err(bad_handle("snapshot"));
        }
        Ok(McStatus::MC_OK)
    })
}

/// `mc_map_get` on the snapshot. Same statuses.
/// # Safety
/// As for `mc_map_get`.
#[no_mangle]
pub unsafe extern "C" fn mc_snapshot_get(
    snap: mc_snapshot,
    key: *const u8,
    key_len: usize,
    buf: *mut u8,
    cap: usize,
    out_len: *mut usize,
) -> mc_status {
    on_snapshot(snap.id, |s, _| {
        // SAFETY: caller's readable key and writable buffer.
        let (k, out) = unsafe { (bytes_in(key, key_len, "key")?, bytes_out(buf, cap, "buf")?) };
        let out_len = out_ptr(out_len, "out_len")?;
        let r = s.data.get_with(k, |v| fill(out, v));
        // SAFETY: out_len is non-NULL, and the caller's writable size_t.
        unsafe { copy_value(r, out_len) }
    })
}

/// `mc_map_get_with` on the snapshot (the callback may call anything).
/// Returns MC_OK, MC_ERR_NOT_FOUND, MC_ERR_NULL_ARGUMENT (key or cb).
/// # Safety
/// As for `mc_map_get_with`.
#[no_mangle]
pub unsafe extern "C" fn mc_snapshot_get_with(
    snap: mc_snapshot,
    key: *const u8,
    key_len: usize,
    cb: mc_value_fn,
    user: *mut c_void,
) -> mc_status {
    on_snapshot(snap.id, |s, _| {
        // SAFETY: caller's readable key.
        let k = unsafe { bytes_in(key, key_len, "key")? };
        let cb = cb.ok_or_else(|| null("cb"))?;
        // SAFETY: cb is a non-NULL C function; the value slice is valid for the call.
        s.data
            .get_with(k, |v| unsafe { cb(user, v.as_ptr(), v.len()) })
            .map(|_| McStatus::MC_OK)
            .ok_or_else(|| err(McStatus::MC_ERR_NOT_FOUND, "key not found"))
    })
}

/// `mc_map_contains` on the snapshot. Returns MC_OK, MC_ERR_NULL_ARGUMENT.
/// # Safety
/// As for `mc_map_contains`.
#[no_mangle]
pub unsafe extern "C" fn mc_snapshot_contains(
    snap: mc_snapshot,
    key: *const u8,
    key_len: usize,
    out: *mut bool,
) -> mc_status {
    on_snapshot(snap.id, |s, _| {
        // SAFETY: caller's readable key.
        let k = unsafe { bytes_in(key, key_len, "key")? };
        let out = out_ptr(out, "out")?;
        // SAFETY: out checked non-NULL.
        unsafe { put(out, s.data.get_with(k, |_| ()).is_some()) };
        Ok(McStatus::MC_OK)
    })
}

/// Writes the number of entries in the snapshot to `*out`.
/// Returns MC_OK, MC_ERR_NULL_ARGUMENT.
/// # Safety
/// As for `mc_map_len`.
#[no_mangle]
pub unsafe extern "C" fn mc_snapshot_len(snap: mc_snapshot, out: *mut usize) -> mc_status {
    on_snapshot(snap.id, |s, _| {
        let out = out_ptr(out, "out")?;
        // SAFETY: out checked non-NULL.
        unsafe { put(out, s.data.len()) };
        Ok(McStatus::MC_OK)
    })
}

/// Starts an iteration over the snapshot. Both modes behave the same (a
/// snapshot never changes, so nothing is ever invalidated).
/// Returns MC_OK, MC_ERR_INVALID_ARGUMENT (unknown mode), MC_ERR_NULL_ARGUMENT.
/// # Safety
/// As for `mc_iter_init`.
#[no_mangle]
pub unsafe extern "C" fn mc_snapshot_iter_init(
    snap: mc_snapshot,
    mode: u32,
    out: *mut mc_iter,
) -> mc_status {
    // SAFETY: forwards the caller's out-pointer with its documented contract.
    on_snapshot(snap.id, |s, id| unsafe {
        init_token(Source::Snapshot(s), id, mode, out)
    })
}

/// `mc_iter_next` on the snapshot. Same statuses (never ITER_INVALIDATED).
/// # Safety
/// As for `mc_iter_next`.
#[no_mangle]
pub unsafe extern "C" fn mc_snapshot_iter_next(
    snap: mc_snapshot,
    it: *mut mc_iter,
    key_buf: *mut u8,
    key_cap: usize,
    out_key_len: *mut usize,
    val_buf: *mut u8,
    val_cap: usize,
    out_val_len: *mut usize,
) -> mc_status {
    on_snapshot(snap.id, |s, id| {
        // SAFETY: forwards the caller's buffers with their documented contract.
        unsafe {
            next_impl(
                Source::Snapshot(s),
                id,
                it,
                key_buf,
                key_cap,
                out_key_len,
                val_buf,
                val_cap,
                out_val_len,
            )
        }
    })
}

/// `mc_iter_next_with` on the snapshot. Same statuses (never
/// ITER_INVALIDATED).
/// # Safety
/// As for `mc_iter_next_with`.
#[no_mangle]
pub unsafe extern "C" fn mc_snapshot_iter_next_with(
    snap: mc_snapshot,
    it: *mut mc_iter,
    cb: mc_entry_fn,
    user: *mut c_void,
) -> mc_status {
    // SAFETY: forwards the caller's callback and token.
    on_snapshot(snap.id, |s, id| unsafe {
        next_with_impl(Source::Snapshot(s), id, it, cb, user)
    })
}

/// `mc_iter_next_batch` on the snapshot. Same statuses (never
/// ITER_INVALIDATED).
/// # Safety
/// As for `mc_iter_next_batch`.
#[no_mangle]
pub unsafe extern "C" fn mc_snapshot_iter_next_batch(
    snap: mc_snapshot,
    it: *mut mc_iter,
    buf: *mut u8,
    cap: usize,
    max_entries: usize,
    out_count: *mut usize,
    out_used: *mut usize,
) -> mc_status {
    on_snapshot(snap.id, |s, id| {
        // SAFETY: forwards the caller's buffer with its documented contract.
        unsafe {
            next_batch_impl(
                Source::Snapshot(s),
                id,
                it,
                buf,
                cap,
                max_entries,
                out_count,
                out_used,
            )
        }
    })
}

/// `mc_iter_encode` on the snapshot.
/// # Safety
/// As for `mc_iter_encode`.
#[no_mangle]
pub unsafe extern "C" fn mc_snapshot_iter_encode(
    snap: mc_snapshot,
    it: *const mc_iter,
    buf: *mut c_char,
    cap: usize,
    out_len: *mut usize,
) -> mc_status {
    // SAFETY: forwards the caller's pointers with their documented contract.
    on_snapshot(snap.id, |s, id| unsafe {
        encode_impl(Source::Snapshot(s), id, it, buf, cap, out_len)
    })
}

/// `mc_iter_decode` on the snapshot.
/// # Safety
/// As for `mc_iter_decode`.
#[no_mangle]
pub unsafe extern "C" fn mc_snapshot_iter_decode(
    snap: mc_snapshot,
    text: *const c_char,
    len: usize,
    out: *mut mc_iter,
) -> mc_status {
    // SAFETY: forwards the caller's pointers with their documented contract.
    on_snapshot(snap.id, |s, id| unsafe {
        decode_impl(Source::Snapshot(s), id, text, len, out)
    })
}
