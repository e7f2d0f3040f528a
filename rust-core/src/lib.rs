//! mapcore: a concurrent hash map whose iterators are plain, resumable values
//! that either continue with a documented guarantee or fail explicitly.
//!
//! - `engine`: the safe map (tables, shards, snapshots, tokens); knows nothing of C.
//! - `registry`: opaque generational handles for maps and snapshots.
//! - `ffi`: the C ABI (`include/mapcore.h` is generated from it).
//!
//! Caller memory is touched only in `ffi::raw` (the exported functions are
//! `unsafe fn`s whose blocks call it); the engine's other `unsafe` is in
//! `alloc` (fallible boxes and shared pointers), `pool`, `shard_lock`,
//! `table`, `bytes`, `env` and `memcheck`, and the registry's in
//! `registry`. Each `unsafe fn` has a `# Safety` section and
//! each block a `// SAFETY:` comment: the lints below make a missing one a
//! `make lint` error, and a public function that dereferences a raw pointer
//! argument without being `unsafe` one too. Modules without `unsafe` forbid
//! it.
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(
    clippy::not_unsafe_ptr_arg_deref,
    clippy::missing_safety_doc,
    clippy::undocumented_unsafe_blocks
)]

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
