//! Argument checking, error mapping and the panic boundary shared by every
//! exported function. Caller pointers are handled in `raw`, not here.
#![forbid(unsafe_code)]

use std::cell::{Cell, RefCell};
use std::panic::{catch_unwind, AssertUnwindSafe};

use crate::engine::Map;
use crate::registry::{self, Object, Snapshot};
use crate::status::{Error, McStatus, Result};

/// Bytes of a formatted detail kept for `mc_last_error`; longer details are
/// cut at a character boundary and end in "...".
const DETAIL_CAP: usize = 320;

/// Where the last failure's detail is: static for the common errors, else
/// the first `len` bytes of `LAST_DETAIL` (no heap memory either way).
#[derive(Clone, Copy)]
enum Detail {
    Static(&'static str),
    Inline(usize),
}

/// Copies `text` into `buf`, cut at a character boundary and ending in
/// "..." when it does not fit; returns the length used.
fn keep_detail(buf: &mut [u8; DETAIL_CAP], text: &str) -> usize {
    if text.len() <= DETAIL_CAP {
        buf[..text.len()].copy_from_slice(text.as_bytes());
        return text.len();
    }
    const CUT: &str = "...";
    let mut len = DETAIL_CAP - CUT.len();
    while !text.is_char_boundary(len) {
        len -= 1;
    }
    buf[..len].copy_from_slice(&text.as_bytes()[..len]);
    buf[len..len + CUT.len()].copy_from_slice(CUT.as_bytes());
    len + CUT.len()
}

thread_local! {
    /// The last failure on this thread, kept unformatted: a failing call (a
    /// miss, say) only moves a status and a usually static detail here;
    /// the text is built when `mc_last_error` asks for it. Nothing in it
    /// needs dropping, so the thread-local has no destructor: one with a
    /// destructor, first set while the thread exits (a C program may call
    /// the library from pthread-key destructors), leaks its registration.
    static LAST_ERROR: Cell<Option<(McStatus, Detail)>> = const { Cell::new(None) };
    /// The text of a detail that is not static (see `Detail::Inline`).
    static LAST_DETAIL: RefCell<[u8; DETAIL_CAP]> = const { RefCell::new([0; DETAIL_CAP]) };
    /// Maps whose callbacks are running on this thread (re-entry is refused).
    static IN_CALLBACK: RefCell<CallbackMarks> = const {
        RefCell::new(CallbackMarks { ids: [0; MAX_NESTED_CALLBACKS], depth: 0 })
    };
    /// `IN_CALLBACK`'s depth, so that the common no-callback case is one load.
    static CALLBACK_DEPTH: Cell<usize> = const { Cell::new(0) };
}

// None of these thread-locals has a destructor (a C program may call us from
// a pthread-key destructor while the thread exits: a thread-local with one,
// first touched then, would leak its registration). `try_with` is kept so
// that no access can panic.

pub fn set_last_error(e: Error) {
    let detail = match e.detail {
        std::borrow::Cow::Borrowed(text) => Detail::Static(text),
        std::borrow::Cow::Owned(text) => {
            let kept = LAST_DETAIL.try_with(|buf| keep_detail(&mut buf.borrow_mut(), &text));
            match kept {
                Ok(len) => Detail::Inline(len),
                Err(_) => Detail::Static("(detail unavailable)"),
            }
        }
    };
    let _ = LAST_ERROR.try_with(|l| l.set(Some((e.status, detail))));
}

/// Longest status name, with the ": " after it in `with_last_error`.
const NAME_CAP: usize = 32;

/// Runs `f` on the text of this thread's last failure ("" if none), built
/// on the stack: reading the last error must work with no memory left.
pub fn with_last_error<R>(f: impl FnOnce(&str) -> R) -> R {
    let mut text = [0u8; NAME_CAP + DETAIL_CAP];
    let mut len = 0;
    let mut push = |s: &[u8]| {
        let n = s.len().min(text.len() - len);
        text[len..len + n].copy_from_slice(&s[..n]);
        len += n;
    };
    if let Ok(Some((status, detail))) = LAST_ERROR.try_with(Cell::get) {
        push(status.trimmed_name().as_bytes());
        push(b": ");
        match detail {
            Detail::Static(s) => push(s.as_bytes()),
            Detail::Inline(n) => {
                let _ = LAST_DETAIL.try_with(|buf| push(&buf.borrow()[..n]));
            }
        }
    }
    // Whole characters only: the name fits its room, and a detail is cut
    // at a character boundary (`keep_detail`); static details are short.
    f(std::str::from_utf8(&text[..len]).unwrap_or(""))
}

pub fn err(status: McStatus, detail: impl Into<std::borrow::Cow<'static, str>>) -> Error {
    Error::new(status, detail)
}

/// Runs `f` behind the panic boundary and turns its result into a status.
pub fn run(f: impl FnOnce() -> Result<McStatus>) -> McStatus {
    finish(catch_unwind(AssertUnwindSafe(f)))
}

// Inlined into every entry point: a single get runs ~370 instructions, and
// each one between two gets' cache misses delays the next get's (see
// bench/README.md, "What limits it"), so the call and the copies of the
// 32-byte result an out-of-line `finish` cost were worth keeping off the
// path. The panic case stays out of line.
#[inline(always)]
fn finish(r: std::thread::Result<Result<McStatus>>) -> McStatus {
    match r {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            let status = e.status;
            set_last_error(e);
            status
        }
        Err(payload) => panicked(payload),
    }
}

#[cold]
#[inline(never)]
fn panicked(payload: Box<dyn std::any::Any + Send>) -> McStatus {
    let msg = payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("unknown panic");
    set_last_error(Error::formatted(
        McStatus::MC_ERR_INTERNAL,
        format_args!("internal error: {msg}"),
    ));
    McStatus::MC_ERR_INTERNAL
}

#[cold]
pub fn bad_handle(what: &str) -> Error {
    Error::formatted(
        McStatus::MC_ERR_BAD_HANDLE,
        format_args!("{what} handle is zero, freed, of the wrong kind, or not a handle"),
    )
}

/// A lookup that failed: on a thread's first call, because its registry
/// record could not be allocated (then the lookup is tried again once the
/// record is had, else MC_ERR_OUT_OF_MEMORY); otherwise a bad handle.
#[cold]
fn lookup_again(id: u64, what: &str) -> Result<registry::Handle> {
    if !registry::thread_registered() {
        return Err(err(
            McStatus::MC_ERR_OUT_OF_MEMORY,
            "cannot allocate this thread's record in the handle registry",
        ));
    }
    registry::get(id).ok_or_else(|| bad_handle(what))
}

#[inline(always)]
fn lookup(id: u64, what: &str) -> Result<registry::Handle> {
    match registry::get(id) {
        Some(h) => Ok(h),
        None => lookup_again(id, what),
    }
}

/// Resolves a map handle and runs `f` on it. A panic inside poisons the map:
/// its invariants may be broken, so later calls get MC_ERR_POISONED.
pub fn on_map(id: u64, f: impl FnOnce(&Map, u64) -> Result<McStatus>) -> McStatus {
    let r = catch_unwind(AssertUnwindSafe(|| {
        let h = lookup(id, "map")?;
        let Object::Map(map) = &h.object else {
            return Err(bad_handle("map"));
        };
        if map.is_poisoned() {
            return Err(err(
                McStatus::MC_ERR_POISONED,
                "the map was poisoned by an earlier internal error, or by a fork() while \
                 one of its locks was held; free it",
            ));
        }
        if in_callback_of(id) {
            return Err(err(
                McStatus::MC_ERR_REENTRANT,
                "a callback called back into the map that is running it; the call was refused",
            ));
        }
        f(map, id)
    }));
    if r.is_err() {
        // Poisoning is best-effort and must not unwind out of this function.
        let _ = catch_unwind(|| {
            if let Some(h) = registry::get(id) {
                if let Object::Map(map) = &h.object {
                    map.poison();
                }
            }
        });
    }
    finish(r)
}

pub fn on_snapshot(id: u64, f: impl FnOnce(&Snapshot, u64) -> Result<McStatus>) -> McStatus {
    run(|| {
        let h = lookup(id, "snapshot")?;
        let Object::Snapshot(snap) = &h.object else {
            return Err(bad_handle("snapshot"));
        };
        f(snap, id)
    })
}

/// Callback scopes (of different maps) one thread can have open at once;
/// opening one more is refused, before anything is locked.
const MAX_NESTED_CALLBACKS: usize = 32;

/// The maps whose callbacks run on a thread, innermost last. A fixed array,
/// not a list through the scopes' stack frames: a caller that leaves a
/// callback without returning (a Go callback calling `runtime.Goexit`
/// skips the library's frames) leaves a stale mark here, never a pointer
/// into a dead frame.
struct CallbackMarks {
    ids: [u64; MAX_NESTED_CALLBACKS],
    depth: usize,
}

/// True if a callback of `map_id` is running on this thread.
#[inline]
pub fn in_callback_of(map_id: u64) -> bool {
    // The common case, no callback running, is one load.
    CALLBACK_DEPTH.try_with(Cell::get).unwrap_or(0) > 0
        && IN_CALLBACK
            .try_with(|m| {
                let m = m.borrow();
                m.ids[..m.depth].contains(&map_id)
            })
            .unwrap_or(false)
}

/// Runs `f` (which calls user callbacks) with `map_id` marked as running a
/// callback on this thread, so that calls back into that map are refused.
/// Fails with MC_ERR_REENTRANT, without running `f`, when this thread
/// already has `MAX_NESTED_CALLBACKS` scopes open.
pub fn in_callback_scope<R>(map_id: u64, f: impl FnOnce() -> R) -> Result<R> {
    let set_depth = |m: &mut CallbackMarks, d: usize| {
        m.depth = d;
        let _ = CALLBACK_DEPTH.try_with(|c| c.set(d));
    };
    let opened = IN_CALLBACK.try_with(|m| {
        let mut m = m.borrow_mut();
        let d = m.depth;
        let slot = m.ids.get_mut(d)?;
        *slot = map_id;
        set_depth(&mut m, d + 1);
        Some(d)
    });
    let outer = match opened {
        Ok(Some(d)) => d,
        Ok(None) => {
            return Err(err(
                McStatus::MC_ERR_REENTRANT,
                "too many callbacks nested on this thread (32 maps' callbacks calling into further maps)",
            ))
        }
        // Thread-locals without destructors are never gone; unreachable.
        Err(_) => return Ok(f()),
    };
    /// Removes the mark when `f` returns or unwinds.
    struct Unmark<F: Fn(&mut CallbackMarks, usize)>(usize, F);
    impl<F: Fn(&mut CallbackMarks, usize)> Drop for Unmark<F> {
        fn drop(&mut self) {
            let _ = IN_CALLBACK.try_with(|m| (self.1)(&mut m.borrow_mut(), self.0));
        }
    }
    let _unmark = Unmark(outer, set_depth);
    Ok(f())
}

pub fn null(what: impl std::fmt::Display) -> Error {
    Error::formatted(
        McStatus::MC_ERR_NULL_ARGUMENT,
        format_args!("{what} is NULL"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::Options;

    #[test]
    fn panic_becomes_internal_error_and_poisons_the_map() {
        let id = registry::insert(Object::Map(Map::new(&Options::default()).unwrap())).unwrap();
        let s = on_map(id, |_, _| panic!("injected failure"));
        assert_eq!(s, McStatus::MC_ERR_INTERNAL);
        with_last_error(|m| assert!(m.contains("injected failure"), "{m}"));
        assert_eq!(
            on_map(id, |_, _| Ok(McStatus::MC_OK)),
            McStatus::MC_ERR_POISONED
        );
        // A poisoned map can still be freed, and is then a bad handle.
        assert!(registry::remove(id));
        assert_eq!(
            on_map(id, |_, _| Ok(McStatus::MC_OK)),
            McStatus::MC_ERR_BAD_HANDLE
        );
    }

    #[test]
    fn callback_scope_marks_only_its_map() {
        let a = registry::insert(Object::Map(Map::new(&Options::default()).unwrap())).unwrap();
        let b = registry::insert(Object::Map(Map::new(&Options::default()).unwrap())).unwrap();
        in_callback_scope(a, || {
            assert_eq!(
                on_map(a, |_, _| Ok(McStatus::MC_OK)),
                McStatus::MC_ERR_REENTRANT
            );
            assert_eq!(on_map(b, |_, _| Ok(McStatus::MC_OK)), McStatus::MC_OK);
            // Nested: both marked inside, only `a` once the inner one ends.
            in_callback_scope(b, || {
                assert_eq!(
                    on_map(b, |_, _| Ok(McStatus::MC_OK)),
                    McStatus::MC_ERR_REENTRANT
                );
                assert!(in_callback_of(a));
            })
            .unwrap();
            assert!(!in_callback_of(b));
            // A panicking callback removes its mark too.
            let r = std::panic::catch_unwind(|| in_callback_scope(b, || panic!("in a callback")));
            assert!(r.is_err());
            assert!(!in_callback_of(b) && in_callback_of(a));
        })
        .unwrap();
        assert!(!in_callback_of(a));
        // Scopes nest up to the limit, all marked; one more is refused
        // without running its callback, and every level is removed after.
        fn nest(level: u64) {
            if level == MAX_NESTED_CALLBACKS as u64 {
                assert!((0..level).all(in_callback_of));
                let refused = in_callback_scope(level, || panic!("must not run"));
                assert_eq!(refused.unwrap_err().status, McStatus::MC_ERR_REENTRANT);
                return;
            }
            in_callback_scope(level, || nest(level + 1)).unwrap();
            assert!(!in_callback_of(level));
        }
        nest(0);
        assert!(!in_callback_of(0));
        assert_eq!(on_map(a, |_, _| Ok(McStatus::MC_OK)), McStatus::MC_OK);
        assert!(registry::remove(a) && registry::remove(b));
    }

    /// A thread's first call registers it, which may run out of memory:
    /// the call then reports MC_ERR_OUT_OF_MEMORY, or, when only that one
    /// allocation failed, looks the handle up again and succeeds (never
    /// MC_ERR_BAD_HANDLE for a good handle). Only checked when the record
    /// had to be allocated (a record given back by an exited thread is
    /// reused without allocating).
    #[test]
    fn a_first_call_without_memory_is_out_of_memory_not_a_bad_handle() {
        use crate::engine::alloc;
        let id = registry::insert(Object::Map(Map::new(&Options::default()).unwrap())).unwrap();
        for sustained in [false, true] {
            let (status, fired) = std::thread::spawn(move || {
                if sustained {
                    alloc::fail_after(Some(0));
                } else {
                    alloc::fail_once_after(0);
                }
                let s = on_map(id, |_, _| Ok(McStatus::MC_OK));
                alloc::fail_after(None);
                (s, alloc::injected_failures() > 0)
            })
            .join()
            .unwrap();
            let want = if !fired || !sustained {
                McStatus::MC_OK
            } else {
                McStatus::MC_ERR_OUT_OF_MEMORY
            };
            assert_eq!(
                status, want,
                "sustained: {sustained}, failure injected: {fired}"
            );
        }
        assert!(registry::remove(id));
    }

    #[test]
    fn long_details_are_cut_at_a_character_boundary() {
        let long = "é".repeat(DETAIL_CAP); // two bytes each
        set_last_error(err(McStatus::MC_ERR_INVALID_ARGUMENT, long));
        with_last_error(|m| {
            assert!(m.starts_with("MC_ERR_INVALID_ARGUMENT: éé"), "{m}");
            assert!(m.ends_with("é..."), "{m}");
            assert!(
                m.len() <= "MC_ERR_INVALID_ARGUMENT: ".len() + DETAIL_CAP,
                "{}",
                m.len()
            );
        });
        set_last_error(Error::formatted(
            McStatus::MC_ERR_NOT_FOUND,
            format_args!("key of {} bytes", 3),
        ));
        with_last_error(|m| assert_eq!(m, "MC_ERR_NOT_FOUND: key of 3 bytes"));
    }
}
