//! The engine: safe Rust, no knowledge of C.
pub(crate) mod alloc;
pub(crate) mod bytes;
pub mod counters;
mod env;
pub mod hash;
pub mod map;
mod memcheck;
pub(crate) mod pool;
pub(crate) mod shard_lock;
pub(crate) mod shard_lock_protocol;
pub mod table;
pub mod token;

pub use hash::Pos;
pub(crate) use map::MAX_RESERVE;
pub use map::{Cursor, Map, Options, Scan, SnapshotData, Stats};
pub(crate) use map::{Pack, Sink, Visit, PACKED_HEADER};
pub use table::Entry;
pub(crate) use table::{MAX_KEY_LEN, MAX_VALUE_LEN};
