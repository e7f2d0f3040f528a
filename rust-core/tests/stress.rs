//! Multi-threaded stress through the C ABI, checking invariants while
//! writers, readers, strict and cursor iterators, snapshots and batch
//! transfers run at once. `make test` runs a short pass; `make stress` runs
//! the long one (MAPCORE_STRESS_SECS, default 60).
// SAFETY (every unsafe block in this file): it calls the C ABI with pointers
// to live local buffers and their exact lengths, as the header requires.
mod common;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use mapcore::ffi::*;
use mapcore::McStatus::*;

const STABLE: u32 = 2000;
const ACCOUNTS: u32 = 64;
const START_BALANCE: u64 = 1000;
/// How long a test waits for work that cannot take long without a bug (a
/// deadlock, a lost wake-up). Not a speed bound: no test here asserts how
/// much work got done in a given time.
const LIVENESS: Duration = Duration::from_secs(120);

fn stable_key(i: u32) -> Vec<u8> {
    format!("stable-{i}").into_bytes()
}
fn acct(i: u32) -> Vec<u8> {
    format!("acct-{i:03}").into_bytes()
}

fn snapshot_total(s: mc_snapshot) -> (u64, usize) {
    let mut it = mc_iter { opaque: [0; 6] };
    // SAFETY: `it` is a writable mc_iter.
    assert_eq!(
        unsafe { mc_snapshot_iter_init(s, MC_MODE_STRICT, &mut it) },
        MC_OK
    );
    let mut buf = vec![0u8; 1 << 16];
    let (mut total, mut n) = (0u64, 0usize);
    loop {
        let (mut c, mut used) = (0, 0);
        let st = unsafe {
            mc_snapshot_iter_next_batch(
                s,
                &mut it,
                buf.as_mut_ptr(),
                buf.len(),
                512,
                &mut c,
                &mut used,
            )
        };
        if st == MC_DONE {
            return (total, n);
        }
        assert_eq!(st, MC_OK);
        for (key, val) in walk_batch(&buf, used) {
            if key.starts_with(b"acct-") {
                total += u64::from_le_bytes(val[..].try_into().unwrap());
            }
            n += 1;
        }
    }
}

fn run_stress(duration: Duration) {
    let m = Arc::new(M::with(77, false));
    for i in 0..STABLE {
        m.set(&stable_key(i), &i.to_le_bytes()).unwrap();
    }
    for i in 0..ACCOUNTS {
        m.set(&acct(i), &START_BALANCE.to_le_bytes()).unwrap();
    }
    let stop = Arc::new(AtomicBool::new(false));
    let quiet = Arc::new(AtomicBool::new(false));
    let counters: Arc<[AtomicU64; 6]> = Arc::new(Default::default());
    let mut threads = Vec::new();

    // Writer: churns transient keys (growth, shrink, compaction) and overwrites stable values.
    {
        let (m, stop, quiet, c) = (m.clone(), stop.clone(), quiet.clone(), counters.clone());
        threads.push(std::thread::spawn(move || {
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                if quiet.load(Ordering::Relaxed) && c[0].load(Ordering::Relaxed) > 0 {
                    std::thread::sleep(Duration::from_millis(5));
                    continue;
                }
                let k = format!("tmp-{}", i % 20_000).into_bytes();
                if (i / 20_000) % 2 == 0 {
                    m.set(&k, &[1u8; 24]).unwrap();
                } else {
                    m.del(&k);
                }
                let s = (i % STABLE as u64) as u32;
                m.set(&stable_key(s), &s.to_le_bytes()).unwrap();
                i += 1;
                c[0].fetch_add(1, Ordering::Relaxed);
                if i % 2000 == 0 {
                    // Quiet windows so strict passes can complete.
                    std::thread::sleep(Duration::from_millis(25));
                }
            }
        }));
    }
    // Transfers: move money between two accounts atomically with set-many.
    {
        let (m, stop, quiet, c) = (m.clone(), stop.clone(), quiet.clone(), counters.clone());
        threads.push(std::thread::spawn(move || {
            let mut x = 12345u64;
            while !stop.load(Ordering::Relaxed) {
                if quiet.load(Ordering::Relaxed) && c[1].load(Ordering::Relaxed) > 0 {
                    std::thread::sleep(Duration::from_millis(5));
                    continue;
                }
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let (a, b) = ((x >> 33) as u32 % ACCOUNTS, (x >> 17) as u32 % ACCOUNTS);
                if a == b {
                    continue;
                }
                // Read both in one consistent state, then write both atomically.
                // Lost updates are impossible because this is the only transfer thread.
                let keys = [acct(a), acct(b)].concat();
                let lens = [acct(a).len() as u32, acct(b).len() as u32];
                let mut vals = [0u8; 16];
                let mut vlens = [0u32; 2];
                let (s, _) = get_many(m.0, &keys, &lens, &mut vals, &mut vlens);
                assert_eq!(s, MC_OK);
                let va = u64::from_le_bytes(vals[..8].try_into().unwrap());
                let vb = u64::from_le_bytes(vals[8..].try_into().unwrap());
                let amount = va.min(7);
                let newv = [(va - amount).to_le_bytes(), (vb + amount).to_le_bytes()].concat();
                let s = unsafe {
                    mc_map_set_many(
                        m.0,
                        2,
                        keys.as_ptr(),
                        lens.as_ptr(),
                        newv.as_ptr(),
                        [8u32, 8].as_ptr(),
                        std::ptr::null_mut(),
                    )
                };
                assert_eq!(s, MC_OK);
                c[1].fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    // Reader: stable keys always present with their value.
    {
        let (m, stop, c) = (m.clone(), stop.clone(), counters.clone());
        threads.push(std::thread::spawn(move || {
            let mut i = 0u32;
            while !stop.load(Ordering::Relaxed) {
                let s = i % STABLE;
                assert_eq!(m.get(&stable_key(s)).unwrap(), s.to_le_bytes());
                i += 1;
                c[2].fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    // Strict iterator: restarts on invalidation; never a duplicate within one pass.
    {
        let (m, stop, c) = (m.clone(), stop.clone(), counters.clone());
        threads.push(std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let mut it = m.iter(MC_MODE_STRICT);
                let mut seen = BTreeSet::new();
                loop {
                    match m.next_batch(&mut it, 1 << 16, 1024) {
                        Ok(b) if b.is_empty() => {
                            c[3].fetch_add(1, Ordering::Relaxed);
                            break;
                        }
                        Ok(b) => {
                            for (k, _) in b {
                                assert!(seen.insert(k), "strict pass returned a key twice");
                            }
                        }
                        Err(MC_ERR_ITER_INVALIDATED) => break,
                        Err(e) => panic!("strict: {e:?}"),
                    }
                }
            }
        }));
    }
    // Cursor scans: every stable key exactly once, nothing twice.
    {
        let (m, stop, c) = (m.clone(), stop.clone(), counters.clone());
        threads.push(std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let mut it = m.iter(MC_MODE_CURSOR);
                let mut seen = BTreeSet::new();
                loop {
                    let b = m.next_batch(&mut it, 4096, 64).unwrap();
                    if b.is_empty() {
                        break;
                    }
                    for (k, _) in b {
                        assert!(seen.insert(k), "cursor returned a key twice");
                    }
                }
                for i in 0..STABLE {
                    assert!(seen.contains(&stable_key(i)), "cursor missed a stable key");
                }
                c[4].fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    // Snapshots: the account total is invariant in every snapshot.
    {
        let (m, stop, c) = (m.clone(), stop.clone(), counters.clone());
        threads.push(std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let mut s = mc_snapshot { id: 0 };
                // SAFETY: `s` is a writable mc_snapshot.
                assert_eq!(unsafe { mc_snapshot_new(m.0, &mut s) }, MC_OK);
                let mut len = 0;
                assert_eq!(unsafe { mc_snapshot_len(s, &mut len) }, MC_OK);
                let (total, n) = snapshot_total(s);
                assert_eq!(
                    total,
                    ACCOUNTS as u64 * START_BALANCE,
                    "snapshot saw a half-done transfer"
                );
                assert_eq!(n, len);
                assert_eq!(mc_snapshot_free(s), MC_OK);
                c[5].fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    // Run for `duration`, then until every kind of thread has completed
    // once. A strict pass needs a window without structural changes, which a
    // loaded machine may not offer while the writers run: past `duration`
    // they pause (`quiet`), so the pass completes however slow the machine
    // is. The test asserts invariants, never how much got done; the only
    // bound is a liveness one, far beyond any scheduling delay.
    let start = Instant::now();
    let idle = || counters.iter().any(|c| c.load(Ordering::Relaxed) == 0);
    while start.elapsed() < duration || idle() {
        if start.elapsed() >= duration {
            quiet.store(true, Ordering::Relaxed);
        }
        assert!(
            start.elapsed() < duration + LIVENESS,
            "a kind of thread never completed, even with the writers paused: {:?}",
            counters
                .iter()
                .map(|c| c.load(Ordering::Relaxed))
                .collect::<Vec<_>>()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().expect("stress thread panicked");
    }
    let names = [
        "writes",
        "transfers",
        "reads",
        "strict passes",
        "cursor scans",
        "snapshots",
    ];
    for (n, c) in names.iter().zip(counters.iter()) {
        eprintln!("{n}: {}", c.load(Ordering::Relaxed));
    }
}

/// The tests here each load both cores; run one at a time so that none is
/// starved into a false "no progress" failure.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner())
}

#[test]
fn stress_short() {
    let _serial = serial();
    run_stress(Duration::from_millis(1500));
}

#[test]
#[ignore]
fn stress_long() {
    let secs = std::env::var("MAPCORE_STRESS_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let _serial = serial();
    run_stress(Duration::from_secs(secs));
}

#[test]
fn free_while_other_threads_are_inside_calls() {
    let _serial = serial();
    for round in 0..20 {
        let m = M::new();
        let h = m.0;
        for i in 0..1000u32 {
            m.set(&i.to_le_bytes(), b"v").unwrap();
        }
        let go = Arc::new(AtomicBool::new(false));
        let workers: Vec<_> = (0..3)
            .map(|t| {
                let go = go.clone();
                std::thread::spawn(move || {
                    while !go.load(Ordering::Acquire) {}
                    let mut ok = 0;
                    for i in 0..20_000u32 {
                        let k = (i % 1000).to_le_bytes();
                        let s = match t {
                            0 => unsafe {
                                mc_map_set(h, k.as_ptr(), 4, k.as_ptr(), 4, std::ptr::null_mut())
                            },
                            1 => {
                                let mut it = mc_iter { opaque: [0; 6] };
                                // SAFETY: `it` is a writable mc_iter.
                                let s = unsafe { mc_iter_init(h, MC_MODE_CURSOR, &mut it) };
                                if s == MC_OK {
                                    let mut buf = [0u8; 4096];
                                    let (mut c, mut u) = (0, 0);
                                    unsafe {
                                        mc_iter_next_batch(
                                            h,
                                            &mut it,
                                            buf.as_mut_ptr(),
                                            4096,
                                            100,
                                            &mut c,
                                            &mut u,
                                        )
                                    }
                                } else {
                                    s
                                }
                            }
                            _ => {
                                let mut n = 0;
                                unsafe { mc_map_len(h, &mut n) }
                            }
                        };
                        match s {
                            MC_OK => ok += 1,
                            MC_ERR_BAD_HANDLE => return ok,
                            e => panic!("round {round}: unexpected {e:?}"),
                        }
                    }
                    ok
                })
            })
            .collect();
        go.store(true, Ordering::Release);
        std::thread::sleep(Duration::from_micros(200 * (round % 5)));
        assert_eq!(mc_map_free(h), MC_OK);
        for w in workers {
            w.join().unwrap();
        }
        assert_eq!(mc_map_clear(h), MC_ERR_BAD_HANDLE);
        std::mem::forget(m);
    }
}

/// Gets racing with bursts of writes that overwrite values in place and grow
/// and shrink tables: every get must return a value its key had, never a
/// torn one (guards any future lock-free read path).
#[test]
fn concurrent_gets_never_see_torn_values() {
    let _serial = serial();
    const HOT: u32 = 8;
    const TRANSIENT: u32 = 4096;
    const VLEN: usize = 2048;
    fn value(key: u32, version: u32) -> Vec<u8> {
        // Same length for every version: overwrites happen in place.
        let mut v = vec![version as u8; VLEN];
        v[..4].copy_from_slice(&key.to_le_bytes());
        v
    }
    let set = |m: mc_map, key: &[u8], val: &[u8]| {
        let st = unsafe {
            mc_map_set(
                m,
                key.as_ptr(),
                key.len(),
                val.as_ptr(),
                val.len(),
                std::ptr::null_mut(),
            )
        };
        assert_eq!(st, MC_OK);
    };
    let mut m = mc_map { id: 0 };
    assert_eq!(unsafe { mc_map_new(&mut m) }, MC_OK);
    for k in 0..HOT {
        set(m, &stable_key(k), &value(k, 0));
    }
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let readers: Vec<_> = (0..2)
        .map(|t| {
            let (stop, done) = (stop.clone(), done.clone());
            std::thread::spawn(move || {
                let (mut buf, mut hits) = (vec![0u8; VLEN], 0u64);
                let keys: Vec<_> = (0..HOT).map(stable_key).collect();
                let mut k = t as u32;
                while !stop.load(Ordering::Relaxed) {
                    k = (k + 1) % HOT;
                    let mut len = 0;
                    let key = &keys[k as usize];
                    let st = unsafe {
                        mc_map_get(
                            m,
                            key.as_ptr(),
                            key.len(),
                            buf.as_mut_ptr(),
                            buf.len(),
                            &mut len,
                        )
                    };
                    assert_eq!(st, MC_OK, "a hot key went missing");
                    assert_eq!(len, VLEN);
                    assert_eq!(&buf[..4], &k.to_le_bytes(), "value of another key");
                    assert!(buf[4..].iter().all(|&b| b == buf[4]), "torn value");
                    hits += 1;
                    if hits % 256 == 0 {
                        done.fetch_add(256, Ordering::Relaxed);
                    }
                }
                hits
            })
        })
        .collect();
    // Bounded by work, not time: enough write rounds, and enough reads
    // racing them, however slow the machine is.
    let start = Instant::now();
    let mut version = 0u32;
    while version < 2_000 || done.load(Ordering::Relaxed) < 20_000 {
        assert!(start.elapsed() < LIVENESS, "readers stalled");
        version += 1;
        // Burst: rewrite the hot keys in place, then now and then add or
        // drop a transient batch (growth and shrink re-lay whole shards).
        for k in 0..HOT {
            set(m, &stable_key(k), &value(k, version));
        }
        if version % 8 == 0 {
            for k in HOT..HOT + TRANSIENT {
                if version % 16 == 0 {
                    set(m, &stable_key(k), b"t");
                } else {
                    let key = stable_key(k);
                    unsafe { mc_map_delete(m, key.as_ptr(), key.len()) };
                }
            }
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    stop.store(true, Ordering::Relaxed);
    let hits: u64 = readers.into_iter().map(|t| t.join().unwrap()).sum();
    eprintln!("{hits} gets raced {version} write rounds");
    assert_eq!(mc_map_free(m), MC_OK);
}

/// get_many reads its shards without their lock words while no writer is
/// active on them: it must still never see half of a set_many. A writer
/// keeps 32 keys (spread over the shards) equal with one set_many each
/// round; two readers fetch all 32 with one get_many and check they agree.
#[test]
fn get_many_never_sees_half_a_set_many() {
    let _serial = serial();
    const KEYS: u32 = 32;
    let mut m = mc_map { id: 0 };
    assert_eq!(unsafe { mc_map_new(&mut m) }, MC_OK);
    let keys: Vec<u8> = (0..KEYS).flat_map(acct).collect();
    let lens: Vec<u32> = (0..KEYS).map(|k| acct(k).len() as u32).collect();
    let write = move |v: u64| {
        let vals: Vec<u8> = (0..KEYS).flat_map(|_| v.to_le_bytes()).collect();
        let st = unsafe {
            mc_map_set_many(
                m,
                KEYS as usize,
                keys.as_ptr(),
                lens.as_ptr(),
                vals.as_ptr(),
                [8u32; KEYS as usize].as_ptr(),
                std::ptr::null_mut(),
            )
        };
        assert_eq!(st, MC_OK);
    };
    write(0);
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let (stop, done) = (stop.clone(), done.clone());
            std::thread::spawn(move || {
                let keys: Vec<u8> = (0..KEYS).flat_map(acct).collect();
                let lens: Vec<u32> = (0..KEYS).map(|k| acct(k).len() as u32).collect();
                let (mut vals, mut vlens) =
                    (vec![0u8; 8 * KEYS as usize], vec![0u32; KEYS as usize]);
                let mut reads = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let (st, _) = get_many(m, &keys, &lens, &mut vals, &mut vlens);
                    assert_eq!(st, MC_OK);
                    assert!(vlens.iter().all(|&l| l == 8));
                    let first = &vals[..8];
                    assert!(
                        vals.chunks(8).all(|v| v == first),
                        "get_many saw half a set_many"
                    );
                    reads += 1;
                    done.fetch_add(1, Ordering::Relaxed);
                }
                reads
            })
        })
        .collect();
    // Bounded by work, not time (see concurrent_gets_never_see_torn_values).
    let start = Instant::now();
    let mut v = 0u64;
    while v < 1_000 || done.load(Ordering::Relaxed) < 1_000 {
        assert!(start.elapsed() < LIVENESS, "readers stalled");
        v += 1;
        write(v);
    }
    stop.store(true, Ordering::Relaxed);
    let reads: u64 = readers.into_iter().map(|t| t.join().unwrap()).sum();
    eprintln!("{reads} get_many calls raced {v} set_many calls");
    assert_eq!(mc_map_free(m), MC_OK);
}
