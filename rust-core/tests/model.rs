//! Property test: random operation sequences, including iteration steps and
//! remove/set through iterators, run through the C ABI against a HashMap
//! model; `common::scan` says exactly when a strict token must be
//! invalidated and what a cursor scan may and must return. `make fuzz` runs
//! many more cases (and the coverage-guided `fuzz/` targets, whose
//! api_model covers more of the API with the same scan model).
// SAFETY (every unsafe block in this file): it calls the C ABI with pointers
// to live local buffers and their exact lengths, as the header requires.
mod common;

use std::collections::HashMap;

use common::scan::{self, Scan};
use common::*;
use mapcore::ffi::*;
use mapcore::McStatus::{self, *};
use proptest::prelude::*;

#[derive(Clone, Debug)]
enum Op {
    Set(u8, u8),
    Del(u8),
    Clear,
    Reserve(u16),
    Shrink,
    Start(usize, bool),
    Next(usize),
    Batch(usize, u8),
    RemoveCur(usize),
    SetCur(usize, u8),
    Reencode(usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => (any::<u8>(), any::<u8>()).prop_map(|(k, v)| Op::Set(k % 64, v)),
        4 => any::<u8>().prop_map(|k| Op::Del(k % 64)),
        1 => Just(Op::Clear),
        1 => any::<u16>().prop_map(|n| Op::Reserve(n % 3000)),
        1 => Just(Op::Shrink),
        2 => (0..3usize, any::<bool>()).prop_map(|(s, strict)| Op::Start(s, strict)),
        10 => (0..3usize).prop_map(Op::Next),
        2 => (0..3usize, 1..20u8).prop_map(|(s, n)| Op::Batch(s, n)),
        3 => (0..3usize).prop_map(Op::RemoveCur),
        2 => (0..3usize, any::<u8>()).prop_map(|(s, v)| Op::SetCur(s, v)),
        1 => (0..3usize).prop_map(Op::Reencode),
    ]
}

fn k(i: u8) -> Vec<u8> {
    // Varying lengths, including the empty key.
    vec![b'k'; (i % 5) as usize]
        .into_iter()
        .chain(std::iter::once(i))
        .skip(if i == 0 { 1 } else { 0 })
        .collect()
}

struct Tok {
    it: mc_iter,
    scan: Scan,
}

struct Model {
    map: scan::Model,
    generation: u64,
}

impl Model {
    fn structural(&mut self, toks: &mut [Option<Tok>], changed: Option<&Vec<u8>>) {
        self.generation += 1;
        for t in toks.iter_mut().flatten() {
            t.scan.changed(changed.map(Vec::as_slice));
        }
    }
}

fn check_step(
    t: &mut Tok,
    m: &Model,
    r: Result<(Vec<u8>, Vec<u8>), McStatus>,
) -> Result<(), TestCaseError> {
    t.scan
        .step(&m.map, m.generation, r)
        .map_err(TestCaseError::fail)
}

fn run(ops: Vec<Op>, weak: bool) -> Result<(), TestCaseError> {
    let m = M::with(42, weak);
    let mut model = Model {
        map: HashMap::new(),
        generation: 0,
    };
    let mut toks: Vec<Option<Tok>> = vec![None, None, None];
    for op in ops {
        match op {
            Op::Set(key, v) => {
                let key = k(key);
                let new = !model.map.contains_key(&key);
                prop_assert_eq!(m.set(&key, &[v]), Ok(new));
                model.map.insert(key.clone(), vec![v]);
                if new {
                    model.structural(&mut toks, Some(&key));
                }
            }
            Op::Del(key) => {
                let key = k(key);
                let had = model.map.remove(&key).is_some();
                prop_assert_eq!(m.del(&key), if had { MC_OK } else { MC_ERR_NOT_FOUND });
                if had {
                    model.structural(&mut toks, Some(&key));
                }
            }
            Op::Clear => {
                prop_assert_eq!(mc_map_clear(m.0), MC_OK);
                model.map.clear();
                model.structural(&mut toks, None);
            }
            Op::Reserve(n) => {
                prop_assert_eq!(mc_map_reserve(m.0, n as usize), MC_OK);
                model.generation += 1;
            }
            Op::Shrink => {
                prop_assert_eq!(mc_map_shrink_to_fit(m.0), MC_OK);
                model.generation += 1;
            }
            Op::Start(slot, strict) => {
                let it = m.iter(if strict {
                    MC_MODE_STRICT
                } else {
                    MC_MODE_CURSOR
                });
                toks[slot] = Some(Tok {
                    it,
                    scan: Scan::new(strict, model.generation, &model.map),
                });
            }
            Op::Next(slot) => {
                if let Some(t) = toks[slot].as_mut() {
                    let r = m.next(&mut t.it);
                    check_step(t, &model, r)?;
                }
            }
            Op::Batch(slot, n) => {
                if let Some(t) = toks[slot].as_mut() {
                    match m.next_batch(&mut t.it, 4096, n as usize) {
                        Ok(entries) if entries.is_empty() => check_step(t, &model, Err(MC_DONE))?,
                        Ok(entries) => {
                            prop_assert!(entries.len() <= n as usize);
                            for e in entries {
                                check_step(t, &model, Ok(e))?;
                            }
                        }
                        Err(e) => check_step(t, &model, Err(e))?,
                    }
                }
            }
            Op::RemoveCur(slot) => {
                let Some(t) = toks[slot].as_mut() else {
                    continue;
                };
                let s = m.remove_cur(&mut t.it);
                prop_assert_eq!(s, t.scan.through_token(&model.map, model.generation));
                if s == MC_OK {
                    let key = t.scan.current.take().unwrap();
                    model.map.remove(&key);
                    model.structural(&mut toks, Some(&key));
                    let t = toks[slot].as_mut().unwrap();
                    t.scan.stamp = model.generation;
                }
            }
            Op::SetCur(slot, v) => {
                let Some(t) = toks[slot].as_mut() else {
                    continue;
                };
                let s = m.set_cur(&t.it, &[v]);
                prop_assert_eq!(s, t.scan.through_token(&model.map, model.generation));
                if s == MC_OK {
                    model.map.insert(t.scan.current.clone().unwrap(), vec![v]);
                }
            }
            Op::Reencode(slot) => {
                if let Some(t) = toks[slot].as_mut() {
                    let text = m.encode(&t.it).unwrap();
                    let back = m.decode(&text).unwrap();
                    t.it = back;
                }
            }
        }
    }
    prop_assert_eq!(m.len(), model.map.len());
    let got: HashMap<_, _> = m.entries().into_iter().collect();
    prop_assert_eq!(got, model.map);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: std::env::var("PROPTEST_CASES").ok().and_then(|s| s.parse().ok()).unwrap_or(300), ..ProptestConfig::default() })]

    #[test]
    fn random_ops_match_model(ops in proptest::collection::vec(op(), 1..300)) {
        run(ops, false)?;
    }

    #[test]
    fn random_ops_match_model_with_weak_hash(ops in proptest::collection::vec(op(), 1..300)) {
        run(ops, true)?;
    }
}
