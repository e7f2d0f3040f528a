//! `mc_batch_entry` on arbitrary caller buffers, lengths and offsets.
//!
//! The buffer sits flush against a guard page (before or after it), so any
//! read outside `[buf, buf + used)` faults. Each call's result is compared
//! with a reference reading of the header's layout (u32 key length, u32
//! value length, key, value): the same status, the same pointers and the new
//! offset; out-parameters untouched on every status but MC_OK; and a walk
//! from offset 0 ends in MC_DONE exactly at `used` or in MC_ERR_INVALID_ARGUMENT.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mapcore::ffi::{mc_batch_entry, MC_BATCH_ENTRY_HEADER};
use mapcore::McStatus::{self, *};
use mapcore_fuzz::guarded;

/// What `mc_batch_entry` must do at `off` of `used` bytes of `b`: the
/// status and, for MC_OK, (key start, key length, value length, new offset).
fn reference(b: &[u8], off: usize) -> (McStatus, Option<(usize, usize, usize, usize)>) {
    if off == b.len() {
        return (MC_DONE, None);
    }
    if off > b.len() || b.len() - off < MC_BATCH_ENTRY_HEADER {
        return (MC_ERR_INVALID_ARGUMENT, None);
    }
    let kl = u32::from_ne_bytes(b[off..off + 4].try_into().unwrap()) as usize;
    let vl = u32::from_ne_bytes(b[off + 4..off + 8].try_into().unwrap()) as usize;
    let k0 = off + MC_BATCH_ENTRY_HEADER;
    if kl + vl > b.len() - k0 {
        return (MC_ERR_INVALID_ARGUMENT, None);
    }
    (MC_OK, Some((k0, kl, vl, k0 + kl + vl)))
}

const SENTINEL: usize = 0x5EED_5EED;

/// One call at `off`, checked against `reference`; returns the status and
/// the offset after it.
fn step(buf: *const u8, bytes: &[u8], off: usize) -> (McStatus, usize) {
    let mut o = off;
    let (mut k, mut kl, mut v, mut vl) = (
        SENTINEL as *const u8,
        SENTINEL,
        SENTINEL as *const u8,
        SENTINEL,
    );
    // SAFETY: `buf` points to `bytes.len()` readable bytes (the guarded
    // copy of `bytes`); every out-pointer is a live local.
    let s = unsafe { mc_batch_entry(buf, bytes.len(), &mut o, &mut k, &mut kl, &mut v, &mut vl) };
    let (want, parts) = reference(bytes, off);
    assert_eq!(s, want, "status at offset {off} of {}", bytes.len());
    match parts {
        Some((k0, klen, vlen, end)) => {
            assert_eq!(k, buf.wrapping_add(k0), "key pointer");
            assert_eq!(kl, klen, "key length");
            assert_eq!(v, buf.wrapping_add(k0 + klen), "value pointer");
            assert_eq!(vl, vlen, "value length");
            assert_eq!(o, end, "new offset");
            // SAFETY: the reference says these ranges lie inside the buffer;
            // reading them proves it (the guard page would fault otherwise).
            let (ks, vs) = unsafe {
                (
                    std::slice::from_raw_parts(k, kl),
                    std::slice::from_raw_parts(v, vl),
                )
            };
            assert_eq!(ks, &bytes[k0..k0 + klen]);
            assert_eq!(vs, &bytes[k0 + klen..end]);
        }
        None => {
            assert_eq!(o, off, "offset written on {s:?}");
            assert!(
                k as usize == SENTINEL
                    && kl == SENTINEL
                    && v as usize == SENTINEL
                    && vl == SENTINEL,
                "out-parameters written on {s:?}"
            );
        }
    }
    (s, o)
}

/// NULL and impossibly large arguments: documented statuses, nothing read.
fn edge_cases(buf: *const u8, used: usize) {
    let mut o = 0usize;
    let (mut k, mut kl, mut v, mut vl) = (std::ptr::null(), 0, std::ptr::null(), 0);
    // SAFETY: NULL with length 0 is allowed; out-pointers are live locals.
    let s = unsafe {
        mc_batch_entry(
            std::ptr::null(),
            0,
            &mut o,
            &mut k,
            &mut kl,
            &mut v,
            &mut vl,
        )
    };
    assert_eq!(s, MC_DONE, "empty NULL buffer");
    if used > 0 {
        // SAFETY: as above; the library must refuse NULL with a length.
        let s = unsafe {
            mc_batch_entry(
                std::ptr::null(),
                used,
                &mut o,
                &mut k,
                &mut kl,
                &mut v,
                &mut vl,
            )
        };
        assert_eq!(s, MC_ERR_NULL_ARGUMENT, "NULL buffer with a length");
    }
    // SAFETY: a length above PTRDIFF_MAX must be refused before anything is read.
    let s = unsafe {
        mc_batch_entry(
            buf,
            usize::MAX - used,
            &mut o,
            &mut k,
            &mut kl,
            &mut v,
            &mut vl,
        )
    };
    assert_eq!(s, MC_ERR_TOO_LARGE, "impossible length");
    // SAFETY: valid buffer; one NULL out-pointer at a time.
    let nulls = unsafe {
        [
            mc_batch_entry(
                buf,
                used,
                std::ptr::null_mut(),
                &mut k,
                &mut kl,
                &mut v,
                &mut vl,
            ),
            mc_batch_entry(
                buf,
                used,
                &mut o,
                std::ptr::null_mut(),
                &mut kl,
                &mut v,
                &mut vl,
            ),
            mc_batch_entry(
                buf,
                used,
                &mut o,
                &mut k,
                std::ptr::null_mut(),
                &mut v,
                &mut vl,
            ),
            mc_batch_entry(
                buf,
                used,
                &mut o,
                &mut k,
                &mut kl,
                std::ptr::null_mut(),
                &mut vl,
            ),
            mc_batch_entry(
                buf,
                used,
                &mut o,
                &mut k,
                &mut kl,
                &mut v,
                std::ptr::null_mut(),
            ),
        ]
    };
    assert_eq!(nulls, [MC_ERR_NULL_ARGUMENT; 5], "NULL out-pointers");
}

fn run(data: &[u8]) {
    let Some((&flags, bytes)) = data.split_first() else {
        return;
    };
    let at_end = flags & 1 != 0;
    if bytes.len() > guarded::CAPACITY {
        return;
    }
    let buf = guarded::place(bytes, at_end);
    if flags & 2 != 0 {
        edge_cases(buf, bytes.len());
    }
    // An arbitrary starting offset, taken from the buffer's own first
    // bytes, including ones past the end and near usize::MAX.
    if bytes.len() >= 8 {
        let raw = usize::from_ne_bytes(bytes[..8].try_into().unwrap());
        let off = if flags & 4 != 0 {
            raw
        } else {
            raw % (bytes.len() + 2)
        };
        step(buf, bytes, off);
    }
    // The walk a reader makes: from 0, entry after entry, each offset
    // strictly larger, until MC_DONE at `used` or a malformed entry.
    let mut off = 0usize;
    loop {
        let (s, next) = step(buf, bytes, off);
        match s {
            MC_OK => {
                assert!(next > off, "no progress at offset {off}");
                off = next;
            }
            MC_DONE => {
                assert_eq!(off, bytes.len());
                break;
            }
            _ => break,
        }
    }
}

fuzz_target!(|data: &[u8]| run(data));
