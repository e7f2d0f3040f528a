//! Helpers shared by the fuzz targets in `fuzz_targets/`: the tests' thin
//! wrapper over the C ABI (`common`), a snapshot wrapper, a guard-paged
//! buffer that turns any out-of-bounds read of a caller buffer into a
//! SIGSEGV, and status checks that name the call that broke its contract.
//!
//! Everything here goes through the exported `mc_*` functions, the way C and
//! Go call them, so the targets check the ABI's contract, not engine internals.
// The ffi functions that take pointers are becoming `unsafe fn`; those that
// are still safe on this branch are called inside `unsafe {}` all the same.
#![allow(unused_unsafe)]

// Written for the integration tests, where these lints of a public API do not apply.
#[allow(clippy::new_without_default, clippy::len_without_is_empty)]
#[path = "../../tests/common/mod.rs"]
pub mod common;
pub mod guarded;
pub mod snap;

use mapcore::McStatus;

/// Panics (a crash to libFuzzer) unless `s` is one of `allowed`.
#[track_caller]
pub fn expect_one_of(call: &str, s: McStatus, allowed: &[McStatus]) {
    assert!(
        allowed.contains(&s),
        "{call} returned {s:?}, not one of its documented statuses {allowed:?}"
    );
}

/// Key `i` of a small key space, with lengths 0 to 6 so that keys of
/// different lengths share shards and the empty key is used.
pub fn key(i: u8) -> Vec<u8> {
    let i = i % 64;
    if i == 0 {
        return Vec::new();
    }
    let mut k = vec![b'k'; (i % 6) as usize];
    k.push(i);
    k
}

/// A value of `len` bytes derived from `seed`: different seeds give
/// different values, and lengths past 64 exercise the buffer-too-small path
/// of the wrapper's `next`.
pub fn value(seed: u8, len: u8) -> Vec<u8> {
    (0..len as usize + 1)
        .map(|i| seed.wrapping_add(i as u8))
        .collect()
}

/// Reads a fuzz input front to back; past its end every read gives zeros,
/// so that any input is a complete program.
pub struct Input<'a>(pub &'a [u8]);

impl Input<'_> {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn u8(&mut self) -> u8 {
        match self.0.split_first() {
            Some((&b, rest)) => {
                self.0 = rest;
                b
            }
            None => 0,
        }
    }

    pub fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }

    /// Up to `n` bytes (fewer at the end of the input).
    pub fn bytes(&mut self, n: usize) -> &[u8] {
        let (head, rest) = self.0.split_at(n.min(self.0.len()));
        self.0 = rest;
        head
    }
}
