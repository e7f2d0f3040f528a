//! Every access to memory a caller passed by pointer: borrowing its input
//! and output buffers, writing its out-parameters, reading and writing its
//! iterator tokens. The rest of the C ABI reaches caller memory only through
//! these functions, so this file and the `unsafe` blocks that call it are the
//! whole of what must be reviewed for soundness at the boundary.
//!
//! What they rely on is the caller's side of the header's conventions: a
//! (pointer, length) pair describes memory valid for the whole call, output
//! memory overlaps nothing else the call reads or writes, and pointers to
//! scalars and structs are aligned. Output memory is taken to be
//! uninitialised: a C caller owes us writable bytes, not initialised ones,
//! so output buffers are borrowed as `MaybeUninit` (only written, never
//! read) and out-parameters are written with `ptr::write`, never through a
//! reference (two out-parameters a caller points at one variable alias
//! harmlessly as raw pointers, not as `&mut`). The two values both read and
//! written, a token and `mc_batch_entry`'s offset, hold what an earlier call
//! wrote and are treated as untrusted (`Token::open` verifies a token; the
//! offset is bounds-checked).

use std::mem::MaybeUninit;
use std::ptr::NonNull;

use super::mc_iter;
use super::support::null;
use crate::engine::bytes::copy_small_uninit;
use crate::engine::token::{Token, TOKEN_WORDS};
use crate::status::{Error, McStatus, Result};

/// Borrows `len` `T`s at `ptr`; NULL is accepted only when `len` is 0.
///
/// # Safety
/// If `ptr` is non-NULL it must be aligned and valid for reads of `len`
/// initialised `T`s that nothing writes while `'a` lasts (the C caller's
/// contract, stated in the header).
pub unsafe fn slice_in<'a, T>(ptr: *const T, len: usize, what: &str) -> Result<&'a [T]> {
    if ptr.is_null() {
        return if len == 0 { Ok(&[]) } else { Err(null(what)) };
    }
    if len > isize::MAX as usize / std::mem::size_of::<T>().max(1) {
        return Err(Error::formatted(
            McStatus::MC_ERR_TOO_LARGE,
            format_args!("{what} length is impossibly large"),
        ));
    }
    // SAFETY: non-NULL, at most isize::MAX bytes, and the caller guarantees
    // `len` aligned, readable, initialised `T`s unchanged for 'a.
    Ok(unsafe { std::slice::from_raw_parts(ptr, len) })
}

/// Borrows `len` bytes at `ptr`, as `slice_in`.
///
/// # Safety
/// As for `slice_in`.
pub unsafe fn bytes_in<'a>(ptr: *const u8, len: usize, what: &str) -> Result<&'a [u8]> {
    // SAFETY: this function's contract is `slice_in`'s.
    unsafe { slice_in(ptr, len, what) }
}

/// Borrows a writable buffer of `cap` `T`s, which need not be initialised;
/// NULL is accepted only when `cap` is 0.
///
/// # Safety
/// If `ptr` is non-NULL it must be aligned for `T` and valid for writes of
/// `cap` `T`s that nothing else reads or writes while `'a` lasts.
pub unsafe fn slice_out<'a, T>(
    ptr: *mut T,
    cap: usize,
    what: &str,
) -> Result<&'a mut [MaybeUninit<T>]> {
    if ptr.is_null() {
        return if cap == 0 {
            Ok(&mut [])
        } else {
            Err(null(what))
        };
    }
    if cap > isize::MAX as usize / std::mem::size_of::<T>().max(1) {
        return Err(Error::formatted(
            McStatus::MC_ERR_TOO_LARGE,
            format_args!("{what} capacity is impossibly large"),
        ));
    }
    // SAFETY: non-NULL, at most isize::MAX bytes, and the caller guarantees
    // `cap` aligned, writable `T`s used by nothing else for 'a. As
    // `MaybeUninit` the slice makes no claim that they are initialised.
    Ok(unsafe { std::slice::from_raw_parts_mut(ptr.cast::<MaybeUninit<T>>(), cap) })
}

/// Borrows a writable byte buffer, as `slice_out`.
///
/// # Safety
/// As for `slice_out`.
pub unsafe fn bytes_out<'a>(
    ptr: *mut u8,
    cap: usize,
    what: &str,
) -> Result<&'a mut [MaybeUninit<u8>]> {
    // SAFETY: this function's contract is `slice_out`'s.
    unsafe { slice_out(ptr, cap, what) }
}

/// Checks that an out-pointer is non-NULL. Only a checked pointer can be
/// written through (`put`, `write_token`).
pub fn out_ptr<T>(ptr: *mut T, what: &str) -> Result<NonNull<T>> {
    NonNull::new(ptr).ok_or_else(|| null(what))
}

/// Checks that an in-pointer (one only read) is non-NULL.
pub fn in_ptr<T>(ptr: *const T, what: &str) -> Result<NonNull<T>> {
    out_ptr(ptr.cast_mut(), what)
}

/// Reads the value at a checked in-pointer.
///
/// # Safety
/// `ptr` must be aligned and valid for reads of an initialised `T`.
pub unsafe fn read_in<T: Copy>(ptr: NonNull<T>) -> T {
    // SAFETY: guaranteed by the caller as documented above.
    unsafe { ptr.as_ptr().read() }
}

/// Writes `v` through a checked out-pointer, without reading or dropping
/// what was there (the memory may be uninitialised).
///
/// # Safety
/// `ptr` must be aligned and valid for writes of a `T`.
pub unsafe fn put<T: Copy>(ptr: NonNull<T>, v: T) {
    // SAFETY: guaranteed by the caller as documented above.
    unsafe { ptr.as_ptr().write(v) }
}

/// Writes through a pointer the caller may leave NULL.
///
/// # Safety
/// If non-NULL, `ptr` must be aligned and valid for writes of a `T`.
pub unsafe fn put_opt<T: Copy>(ptr: *mut T, v: T) {
    if let Some(ptr) = NonNull::new(ptr) {
        // SAFETY: non-NULL; alignment and writability are the caller's contract.
        unsafe { put(ptr, v) }
    }
}

/// Writes `text` and a NUL into `out`, which must have room for both.
pub fn put_text(out: &mut [MaybeUninit<u8>], text: &str) {
    copy_small_uninit(&mut out[..text.len()], text.as_bytes());
    out[text.len()].write(0);
}

/// Reads the token at `it` and verifies it belongs to `source` (map or
/// snapshot id). Its words are untrusted: anything but what a call wrote for
/// `source` gives MC_ERR_BAD_TOKEN or MC_ERR_WRONG_MAP.
///
/// # Safety
/// `it` must be aligned and valid for reads of an `mc_iter` whose words are
/// initialised (any values: a token is caller-initialised by `mc_iter_init`
/// or `mc_iter_decode` and then kept by the caller).
pub unsafe fn read_token(it: NonNull<mc_iter>, source: u64) -> Result<Token> {
    // SAFETY: the caller's contract above; `u64`s have no invalid values.
    let words: [u64; TOKEN_WORDS] = unsafe { it.as_ptr().read().opaque };
    Token::open(&words, source)
}

/// Seals `t` into the token at `it`, without reading what was there.
///
/// # Safety
/// `it` must be aligned and valid for writes of an `mc_iter` (it may be
/// uninitialised).
pub unsafe fn write_token(it: NonNull<mc_iter>, t: &Token) {
    // SAFETY: the caller's contract above; non-NULL by type.
    unsafe { put(it, mc_iter { opaque: t.seal() }) }
}
