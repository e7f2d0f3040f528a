//! mapcore's concurrency protocols, compiled from the library's own source
//! files: with `RUSTFLAGS="--cfg loom"` (`make loom`) over loom's atomics,
//! which runs the models at the end of each file. A crate of its own so
//! that the check builds neither the rest of the library, whose statics
//! and thread-locals loom cannot run, nor its test dependencies.
//!
//! - `shard_lock_protocol`: short readers against the writer of a shard.
//! - `epoch`: the registry's reclamation of freed maps and snapshots.
// Outside the models nothing here is called.
#![allow(dead_code)]
#![deny(unsafe_op_in_unsafe_fn)]

#[path = "../src/epoch.rs"]
mod epoch;
#[path = "../src/engine/shard_lock_protocol.rs"]
mod shard_lock_protocol;
#[path = "../src/sync.rs"]
mod sync;
