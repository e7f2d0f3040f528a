//! Rust-side benchmark: mapcore (through its C ABI) against
//! hashbrown::HashMap<Vec<u8>,Vec<u8>>, hashbrown::HashMap<[u8;16],[u8;32]>
//! and dashmap, plus floors (an empty FFI call, memcpy of the iterated bytes).
//!
//! `mapcore-bench` (no arguments) is the driver: for every size and contestant
//! it runs itself as `mapcore-bench child CONTESTANT N Q REPS` in a fresh
//! process (so RSS per entry is measured per contestant), forwarding the
//! children's JSON result lines to stdout. Progress goes to stderr.
//! Sizes come from BENCH_QUICK / BENCH_SMOKE / BENCH_N / BENCH_REPS / BENCH_Q.

mod contestants;
mod data;
mod mc;

use std::hint::black_box;
use std::process::{Command, Stdio};
use std::time::Instant;

use contestants::{Bench, Dash, HbArr, HbVec, Mapcore};
use data::{Data, KLEN, SET_BIT, VLEN};

const CONTESTANTS: &[&str] = &["floor", "mapcore", "hb_vec", "hb_arr", "dashmap"];

fn env_flag(name: &str) -> bool {
    std::env::var(name)
        .map(|v| !v.is_empty() && v != "0")
        .unwrap_or(false)
}

struct Plan {
    sizes: Vec<usize>,
    /// (queries, reps, heavy reps) for a size.
    q_reps: Box<dyn Fn(usize) -> (usize, usize, usize)>,
}

/// Sizes and repetitions (kept identical in bench/c/bench.c and
/// bench/go/main.go). `reps` runs of every query-type operation (get, miss,
/// batches, iteration, mixed, 2 threads); `heavy` of them also rebuild the map
/// (the insert rows) and run delete-half/re-insert. At 10M a build takes
/// seconds per contestant, so it is done once and the queries three times.
fn plan() -> Plan {
    let smoke = env_flag("BENCH_SMOKE");
    let quick = env_flag("BENCH_QUICK");
    let mut sizes: Vec<usize> = if smoke {
        vec![20_000]
    } else if quick {
        vec![1_000_000]
    } else {
        vec![1_000_000, 10_000_000]
    };
    if let Ok(s) = std::env::var("BENCH_N") {
        if !s.trim().is_empty() {
            sizes = s
                .split(',')
                .map(|x| x.trim().parse().expect("BENCH_N: comma-separated sizes"))
                .collect();
        }
    }
    let num = |name: &str| -> Option<usize> {
        std::env::var(name)
            .ok()
            .and_then(|s| s.parse().ok())
            .filter(|&v| v > 0)
    };
    let (reps_env, heavy_env, q_env) = (num("BENCH_REPS"), num("BENCH_HEAVY_REPS"), num("BENCH_Q"));
    let q_reps = move |n: usize| {
        let (q, reps, heavy) = if smoke {
            (n.min(20_000), 1, 1)
        } else if quick {
            (n.min(250_000), 1, 1)
        } else if n >= 5_000_000 {
            (500_000, 3, 1)
        } else {
            (n.min(500_000), 3, 3)
        };
        let reps = reps_env.unwrap_or(reps);
        (
            q_env.unwrap_or(q),
            reps,
            heavy_env.unwrap_or(heavy).min(reps),
        )
    };
    Plan {
        sizes,
        q_reps: Box::new(q_reps),
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() >= 7 && args[1] == "child" {
        let n: usize = args[3].parse().unwrap();
        let q: usize = args[4].parse().unwrap();
        let reps: usize = args[5].parse().unwrap();
        let heavy: usize = args[6].parse().unwrap();
        child(&args[2], n, q, reps, heavy);
        return;
    }
    let only: Option<Vec<String>> = std::env::var("BENCH_ONLY")
        .ok()
        .filter(|s| !s.is_empty())
        .map(|s| s.split(',').map(String::from).collect());
    let plan = plan();
    let exe = std::env::current_exe().expect("current exe");
    // SAFETY: plain FFI call.
    let abi = unsafe { mc::mc_abi_version() };
    println!(
        r#"{{"meta":true,"side":"rust","rustc":"{}","mapcore_abi":{},"hashbrown":"0.17","dashmap":"6","sizes":{:?}}}"#,
        env!("BENCH_RUSTC_VERSION"),
        abi,
        plan.sizes
    );
    let t0 = Instant::now();
    for &n in &plan.sizes {
        let (q, reps, heavy) = (plan.q_reps)(n);
        for c in CONTESTANTS {
            if let Some(o) = &only {
                if !o.iter().any(|x| x == c) {
                    continue;
                }
            }
            eprintln!("[rust] {c} N={n} Q={q} reps={reps} heavy={heavy}");
            let tc = Instant::now();
            let st = Command::new(&exe)
                .args([
                    "child",
                    c,
                    &n.to_string(),
                    &q.to_string(),
                    &reps.to_string(),
                    &heavy.to_string(),
                ])
                .stdout(Stdio::inherit())
                .stderr(Stdio::inherit())
                .status()
                .expect("spawn child");
            if !st.success() {
                eprintln!("[rust] {c} N={n} FAILED: {st}");
                std::process::exit(1);
            }
            eprintln!("[rust] {c} N={n} took {:.1}s", tc.elapsed().as_secs_f64());
        }
    }
    println!(
        r#"{{"meta":true,"side":"rust","elapsed_s":{:.1}}}"#,
        t0.elapsed().as_secs_f64()
    );
    eprintln!("[rust] done in {:.1}s", t0.elapsed().as_secs_f64());
}

// ---------------------------------------------------------------------------
// Measurement helpers
// ---------------------------------------------------------------------------

fn rss_bytes() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    for line in s.lines() {
        if let Some(rest) = line.strip_prefix("VmRSS:") {
            let kb: u64 = rest
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse()
                .unwrap_or(0);
            return kb * 1024;
        }
    }
    0
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let m = s.len() / 2;
    if s.len() % 2 == 1 {
        s[m]
    } else {
        (s[m - 1] + s[m]) / 2.0
    }
}

struct Out {
    contestant: String,
    n: usize,
    results: Vec<(String, usize, String, Vec<f64>)>,
}

impl Out {
    fn add(&mut self, op: &str, threads: usize, unit: &str, v: f64) {
        if let Some(r) = self
            .results
            .iter_mut()
            .find(|r| r.0 == op && r.1 == threads)
        {
            r.3.push(v);
        } else {
            self.results
                .push((op.to_string(), threads, unit.to_string(), vec![v]));
        }
    }

    fn emit(&self) {
        for (op, threads, unit, runs) in &self.results {
            let runs_s: Vec<String> = runs.iter().map(|x| format!("{x:.3}")).collect();
            println!(
                r#"{{"side":"rust","contestant":"{}","op":"{}","n":{},"threads":{},"unit":"{}","median":{:.3},"runs":[{}]}}"#,
                self.contestant,
                op,
                self.n,
                threads,
                unit,
                median(runs),
                runs_s.join(",")
            );
            if !env_flag("BENCH_SMOKE") {
                eprintln!(
                    "  {:<10} {:<16} {}T {:>10.2} {}",
                    self.contestant,
                    op,
                    threads,
                    median(runs),
                    unit
                );
            }
        }
    }
}

fn ns_per(t: Instant, ops: usize) -> f64 {
    t.elapsed().as_nanos() as f64 / ops.max(1) as f64
}

fn child(name: &str, n: usize, q: usize, reps: usize, heavy: usize) {
    let tg = Instant::now();
    let d = Data::generate(n, q);
    eprintln!(
        "  data: N={n} Q={q} generated in {:.2}s, checksum {:016x}",
        tg.elapsed().as_secs_f64(),
        d.checksum()
    );
    println!(
        r#"{{"meta":true,"side":"rust","contestant":"{name}","n":{n},"q":{q},"reps":{reps},"heavy_reps":{heavy},"data_checksum":"{:016x}"}}"#,
        d.checksum()
    );
    let mut out = Out {
        contestant: name.to_string(),
        n,
        results: Vec::new(),
    };
    match name {
        "floor" => floors(&d, reps, &mut out),
        "mapcore" => run::<Mapcore>(&d, reps, heavy, &mut out),
        "hb_vec" => run::<HbVec>(&d, reps, heavy, &mut out),
        "hb_arr" => run::<HbArr>(&d, reps, heavy, &mut out),
        "dashmap" => run::<Dash>(&d, reps, heavy, &mut out),
        _ => panic!("unknown contestant {name}"),
    }
    out.emit();
}

/// The floors: an empty call through the C ABI, and a memcpy of exactly the
/// key and value bytes a full iteration yields (reported per entry).
fn floors(d: &Data, reps: usize, out: &mut Out) {
    let calls = d.q.max(1_000_000);
    let src: Vec<u8> = {
        let mut v = Vec::with_capacity(d.n * (KLEN + VLEN));
        v.extend_from_slice(&d.keys);
        v.extend_from_slice(&d.vals);
        v
    };
    let mut dst = vec![1u8; src.len()];
    for _ in 0..reps {
        let t = Instant::now();
        for _ in 0..calls {
            // SAFETY: plain FFI call.
            black_box(unsafe { mc::mc_abi_version() });
        }
        out.add("empty_call", 1, "ns/op", ns_per(t, calls));
        let t = Instant::now();
        dst.copy_from_slice(black_box(&src));
        black_box(&dst);
        out.add("memcpy", 1, "ns/op", ns_per(t, d.n));
    }
}

fn build<C: Bench>(d: &Data, cap: usize) -> C {
    let mut m = C::new(cap);
    for i in 0..d.n {
        m.insert(d.key(i), d.val(i));
    }
    m
}

fn run<C: Bench>(d: &Data, reps: usize, heavy: usize, out: &mut Out) {
    let mut buf = [0u8; 64];
    let mut batch_out = vec![0u8; 256 * VLEN];
    let mut lens = vec![0u32; 256];
    let mut cur: Option<C> = None;
    for rep in 0..reps {
        let rebuild = rep < heavy || cur.is_none();
        if rebuild {
            drop(cur.take());
            cur = Some(builds::<C>(d, rep, out));
        }
        let m = cur.as_mut().expect("built");
        if rep == 0 {
            // Correctness spot check (untimed).
            for j in 0..d.q.min(10_000) {
                assert!(
                    m.get(&d.hit[j * KLEN..(j + 1) * KLEN], &mut buf),
                    "hit query {j} missing"
                );
                assert_eq!(
                    &buf[..VLEN],
                    d.val(d.hit_idx[j] as usize),
                    "value of hit query {j}"
                );
            }
        }
        queries(d, m, out, &mut buf, &mut batch_out, &mut lens);
        if rebuild {
            delete_reinsert(d, m, out);
        }
    }
}

/// The insert rows: a build not presized (RSS/entry taken from the first one
/// in this fresh process), a build through the batch API where there is one,
/// and a presized build, which is returned for the other operations.
fn builds<C: Bench>(d: &Data, rep: usize, out: &mut Out) -> C {
    let n = d.n;
    let before = rss_bytes();
    let t = Instant::now();
    let m = build::<C>(d, 0);
    out.add("insert", 1, "ns/op", ns_per(t, n));
    if rep == 0 {
        let after = rss_bytes();
        out.add(
            "rss_per_entry",
            1,
            "B/entry",
            after.saturating_sub(before) as f64 / n as f64,
        );
        assert_eq!(m.len(), n, "len after build");
    }
    drop(m);
    if C::HAS_BATCH {
        let t = Instant::now();
        let mut m = C::new(0);
        let mut i = 0;
        while i < n {
            let b = (n - i).min(256);
            m.insert_batch(
                &d.keys[i * KLEN..(i + b) * KLEN],
                &d.vals[i * VLEN..(i + b) * VLEN],
                b,
            );
            i += b;
        }
        out.add("insert_batch", 1, "ns/op", ns_per(t, n));
        assert_eq!(m.len(), n);
    }
    let t = Instant::now();
    let m = build::<C>(d, n);
    out.add("insert_presized", 1, "ns/op", ns_per(t, n));
    m
}

fn queries<C: Bench>(
    d: &Data,
    m: &mut C,
    out: &mut Out,
    buf: &mut [u8; 64],
    batch_out: &mut [u8],
    lens: &mut [u32],
) {
    let (n, q) = (d.n, d.q);
    for (op, keys) in [
        ("get_hit", &d.hit),
        ("get_zipf", &d.zipf),
        ("get_miss", &d.miss),
    ] {
        let t = Instant::now();
        let mut hits = 0usize;
        for j in 0..q {
            hits += m.get(&keys[j * KLEN..(j + 1) * KLEN], buf) as usize;
        }
        let ns = ns_per(t, q);
        black_box(&buf);
        let want = if op == "get_miss" { 0 } else { q };
        assert_eq!(hits, want, "{op}: hits");
        out.add(op, 1, "ns/op", ns);
    }

    for (op, b) in [("get_batch64", 64usize), ("get_batch256", 256)] {
        let t = Instant::now();
        let mut hits = 0;
        let mut j = 0;
        while j < q {
            let c = (q - j).min(b);
            hits += m.get_batch(&d.hit[j * KLEN..(j + c) * KLEN], c, batch_out, lens);
            j += c;
        }
        out.add(op, 1, "ns/op", ns_per(t, q));
        assert_eq!(hits, q, "{op}: hits");
    }

    let t = Instant::now();
    let (count, acc) = m.iterate();
    out.add("iterate", 1, "ns/op", ns_per(t, n));
    black_box(acc);
    assert_eq!(count, n, "iterate count");

    let t = Instant::now();
    for &op in &d.mixed {
        let idx = (op & !SET_BIT) as usize;
        if op & SET_BIT != 0 {
            m.set(d.key(idx), d.val((idx + 1) % n));
        } else {
            black_box(m.get(d.key(idx), buf));
        }
    }
    out.add("mixed", 1, "ns/op", ns_per(t, q));

    if C::CONCURRENT {
        let m = &*m;
        out.add(
            "get_hit",
            2,
            "ns/op",
            two_threads(m, q, |m, j, buf| {
                black_box(m.cget(&d.hit[j * KLEN..(j + 1) * KLEN], buf));
            }),
        );
        out.add(
            "mixed",
            2,
            "ns/op",
            two_threads(m, q, |m, j, buf| {
                let op = d.mixed[j];
                let idx = (op & !SET_BIT) as usize;
                if op & SET_BIT != 0 {
                    m.cset(d.key(idx), d.val((idx + 1) % n));
                } else {
                    black_box(m.cget(d.key(idx), buf));
                }
            }),
        );
    }
}

fn delete_reinsert<C: Bench>(d: &Data, m: &mut C, out: &mut Out) {
    let n = d.n;
    let t = Instant::now();
    let mut removed = 0;
    for i in (0..n).step_by(2) {
        removed += m.remove(d.key(i)) as usize;
    }
    out.add("delete_half", 1, "ns/op", ns_per(t, removed));
    assert_eq!(removed, n.div_ceil(2));
    let t = Instant::now();
    for i in (0..n).step_by(2) {
        m.insert(d.key(i), d.val(i));
    }
    out.add("reinsert_half", 1, "ns/op", ns_per(t, removed));
    assert_eq!(m.len(), n);
}

/// Two threads split the q operations (even / odd indices); returns wall
/// time per operation over both (aggregate throughput), from the first
/// thread's start to the last one's end as the threads see them (on 2 cores
/// the main thread may not even run when the barrier opens).
fn two_threads<C: Bench>(m: &C, q: usize, f: impl Fn(&C, usize, &mut [u8; 64]) + Sync) -> f64 {
    let barrier = std::sync::Barrier::new(2);
    let f = &f;
    let barrier = &barrier;
    let spans: Vec<(Instant, Instant)> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..2)
            .map(|th| {
                s.spawn(move || {
                    let mut buf = [0u8; 64];
                    barrier.wait();
                    let t0 = Instant::now();
                    let mut j = th;
                    while j < q {
                        f(m, j, &mut buf);
                        j += 2;
                    }
                    (t0, Instant::now())
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let t0 = spans.iter().map(|s| s.0).min().unwrap();
    let t1 = spans.iter().map(|s| s.1).max().unwrap();
    (t1 - t0).as_nanos() as f64 / q.max(1) as f64
}
