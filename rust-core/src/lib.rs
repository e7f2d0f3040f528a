//! mapcore: a concurrent hash map whose iterators are plain, resumable values
//! that either continue with a documented guarantee or fail explicitly.
//!
//! - `engine`: the safe map (tables, shards, snapshots, tokens); knows nothing of C.
//! - `registry`: opaque generational handles for maps and snapshots.
//! - `ffi`: the C ABI (`include/mapcore.h` is generated from it).
#![deny(unsafe_op_in_unsafe_fn)]

pub mod engine;
mod epoch;
pub mod ffi;
mod fork;
pub(crate) mod registry;
pub mod status;
mod sync;
#[cfg(test)]
mod test_support;

pub use status::{Error, McStatus, Result};
