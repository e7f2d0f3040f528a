//! Byte-slice helpers for the short keys and values that dominate: inline
//! word compares and fixed-size moves instead of a library call per entry.

use std::mem::MaybeUninit;

/// `a == b`, without a library call for the short keys that dominate.
#[inline]
pub(crate) fn bytes_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let n = a.len();
    if (8..=16).contains(&n) {
        // Two possibly overlapping 8-byte words cover the whole key.
        let w =
            |x: &[u8], at: usize| u64::from_ne_bytes(x[at..at + 8].try_into().expect("8 bytes"));
        return w(a, 0) == w(b, 0) && w(a, n - 8) == w(b, n - 8);
    }
    a == b
}

/// `dst.copy_from_slice(src)`, inlined for the common record sizes: up to
/// four overlapping 16-byte moves instead of a `memcpy` call per entry.
#[inline(always)]
pub(crate) fn copy_small(dst: &mut [u8], src: &[u8]) {
    assert_eq!(dst.len(), src.len(), "copy_small lengths");
    // SAFETY: `dst` is a unique borrow of `src.len()` bytes, so it is
    // writable and cannot overlap the shared borrow `src`.
    unsafe { copy_small_to(dst.as_mut_ptr(), src) }
}

/// `copy_small` into memory that need not be initialised (a caller's output
/// buffer): afterwards `dst` holds `src`'s bytes.
#[inline(always)]
pub(crate) fn copy_small_uninit(dst: &mut [MaybeUninit<u8>], src: &[u8]) {
    assert_eq!(dst.len(), src.len(), "copy_small lengths");
    // SAFETY: `dst` is a unique borrow of `src.len()` bytes, so it is
    // writable and cannot overlap the shared borrow `src`; any byte may be
    // written into a `MaybeUninit<u8>`.
    unsafe { copy_small_to(dst.as_mut_ptr().cast(), src) }
}

/// Copies `src` to `dst` as `copy_small` does, into memory that need not be
/// initialised yet (a buffer's spare capacity). Written as 16-byte integer
/// loads and stores: as `memcpy`s of constant length, LLVM merged the
/// branches' tails into one `memcpy` call, and as byte arrays it spilled
/// them to the stack.
///
/// # Safety
/// `dst` must be valid for writes of `src.len()` bytes, and they must not
/// overlap `src`.
#[inline(always)]
pub(crate) unsafe fn copy_small_to(dst: *mut u8, src: &[u8]) {
    #[inline(always)]
    fn load(src: &[u8], at: usize) -> u128 {
        u128::from_ne_bytes(src[at..at + 16].try_into().expect("16 bytes"))
    }
    let n = src.len();
    // SAFETY: every write below is inside `dst[..n]`, which the caller
    // guarantees writable and apart from `src`; unaligned writes need no
    // alignment.
    unsafe {
        let put = |at: usize, v: u128| dst.add(at).cast::<u128>().write_unaligned(v);
        if (16..=32).contains(&n) {
            let (head, tail) = (load(src, 0), load(src, n - 16));
            put(0, head);
            put(n - 16, tail);
        } else if (32..=64).contains(&n) {
            let (a, b) = (load(src, 0), load(src, 16));
            let (c, d) = (load(src, n - 32), load(src, n - 16));
            put(0, a);
            put(16, b);
            put(n - 32, c);
            put(n - 16, d);
        } else {
            std::ptr::copy_nonoverlapping(src.as_ptr(), dst, n);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_small_copies_every_length_exactly() {
        let src: Vec<u8> = (1..=200).collect();
        for n in 0..=130 {
            let mut dst = vec![0u8; n + 8];
            copy_small(&mut dst[4..4 + n], &src[..n]);
            assert_eq!(&dst[4..4 + n], &src[..n], "length {n}");
            assert_eq!(
                (&dst[..4], &dst[4 + n..]),
                (&[0u8; 4][..], &[0u8; 4][..]),
                "length {n}"
            );
        }
    }
}
