//! Per-call cost of mapcore's registry pin/unpin (its real epoch.rs, shaped
//! like `registry::get`) against crossbeam-epoch's pin and guard drop, each
//! around one pointer load. Usage: `epoch-vs-crossbeam ours|crossbeam|none
//! CALLS [THREADS]`. The instructions of one call are a `valgrind
//! --tool=callgrind` run's total minus the `none` run's, over CALLS.
#[path = "../../../../rust-core/src/sync.rs"]
#[allow(dead_code, unused_imports)]
mod sync;
#[path = "../../../../rust-core/src/epoch.rs"]
#[allow(dead_code)]
mod epoch;
use std::cell::Cell;
use std::hint::black_box;
use std::sync::atomic::{AtomicPtr, AtomicU64, Ordering};
use std::time::Instant;

static GLOBAL: AtomicU64 = AtomicU64::new(1);
static SLOT: AtomicPtr<u64> = AtomicPtr::new(std::ptr::null_mut());
#[repr(align(128))]
struct Rec(AtomicU64);
thread_local! {
    static ME: Cell<Option<&'static Rec>> = const { Cell::new(None) };
    static DEPTH: Cell<u32> = const { Cell::new(0) };
}

#[inline(never)]
fn ours() -> u64 {
    // As registry::get: thread-local record and depth, pin, slot load, unpin.
    let me = ME.with(|m| match m.get() {
        Some(r) => r,
        None => {
            let r: &'static Rec = Box::leak(Box::new(Rec(AtomicU64::new(0))));
            m.set(Some(r));
            r
        }
    });
    let d = DEPTH.with(|d| { let v = d.get(); d.set(v + 1); v });
    if d == 0 { epoch::pin(&GLOBAL, &me.0); }
    let p = epoch::load_linked(&SLOT);
    let v = unsafe { p.as_ref() }.copied().unwrap_or(0);
    let outer = DEPTH.with(|d| { let v = d.get() - 1; d.set(v); v == 0 });
    if outer { black_box(epoch::unpin(&me.0)); }
    v
}

#[inline(never)]
fn crossbeam() -> u64 {
    let g = crossbeam_epoch::pin();
    let p = SLOT.load(Ordering::Acquire);
    let v = unsafe { p.as_ref() }.copied().unwrap_or(0);
    drop(g);
    v
}

fn run(f: fn() -> u64, n: u64) -> u64 {
    let mut s = 0;
    for _ in 0..n { s += black_box(f()); }
    s
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let which = args[1].as_str();
    let n: u64 = args[2].parse().unwrap();
    let threads: usize = args.get(3).map(|t| t.parse().unwrap()).unwrap_or(1);
    SLOT.store(Box::leak(Box::new(7u64)), Ordering::Release);
    let f: fn() -> u64 = match which { "ours" => ours, "crossbeam" => crossbeam, _ => || 0 };
    let t = Instant::now();
    let hs: Vec<_> = (0..threads).map(|_| std::thread::spawn(move || run(f, n))).collect();
    let s: u64 = hs.into_iter().map(|h| h.join().unwrap()).sum();
    let e = t.elapsed();
    println!("{which} threads={threads} n={n}: {:.2} ns/call/thread (sum {s})", e.as_nanos() as f64 / n as f64);
}
