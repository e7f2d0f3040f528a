//! What one iterator token may and must return, for the model-based tests
//! (`tests/model.rs`) and the API-sequence fuzz target (`fuzz/`), which
//! keep the map's contents in a `HashMap` and a structural generation that
//! counts every insert of a new key, delete, clear, reserve and shrink.
//!
//! - Strict: while the generation equals the token's stamp, every entry
//!   exactly once; from the first call after it moved (by a change not made
//!   through this token), MC_ERR_ITER_INVALIDATED and nothing else.
//! - Cursor: never a key twice, only entries as they are now, and at the end
//!   every key that was present when the scan started and was never removed
//!   or re-inserted since (`stable`).

use std::collections::{HashMap, HashSet};

use mapcore::McStatus::{self, *};

pub type Model = HashMap<Vec<u8>, Vec<u8>>;

pub struct Scan {
    pub strict: bool,
    /// Generation a strict token is valid for.
    pub stamp: u64,
    pub invalid: bool,
    pub done: bool,
    pub returned: HashSet<Vec<u8>>,
    /// Last returned key, if not removed through this token.
    pub current: Option<Vec<u8>>,
    /// Keys present at the start and never removed or re-added since.
    pub stable: HashSet<Vec<u8>>,
}

impl Scan {
    pub fn new(strict: bool, generation: u64, model: &Model) -> Scan {
        Scan {
            strict,
            stamp: generation,
            invalid: false,
            done: false,
            returned: HashSet::new(),
            current: None,
            stable: model.keys().cloned().collect(),
        }
    }

    /// Records a structural change of `key`, or of every key (clear).
    pub fn changed(&mut self, key: Option<&[u8]>) {
        match key {
            Some(k) => {
                self.stable.remove(k);
            }
            None => self.stable.clear(),
        }
    }

    fn stale(&self, generation: u64) -> bool {
        self.strict && (self.invalid || self.stamp != generation)
    }

    /// Checks one result of next / next_batch against the model.
    pub fn step(
        &mut self,
        model: &Model,
        generation: u64,
        r: Result<(Vec<u8>, Vec<u8>), McStatus>,
    ) -> Result<(), String> {
        if self.stale(generation) {
            self.invalid = true;
            return match r {
                Err(MC_ERR_ITER_INVALIDATED) => Ok(()),
                r => Err(format!("stale strict token returned {r:?}")),
            };
        }
        match r {
            Ok((key, val)) => {
                if self.done {
                    return Err(format!("{key:?} after MC_DONE"));
                }
                if model.get(&key) != Some(&val) {
                    return Err(format!("{key:?} = {val:?} is not a current entry"));
                }
                if !self.returned.insert(key.clone()) {
                    return Err(format!("{key:?} returned twice"));
                }
                self.current = Some(key);
            }
            Err(MC_DONE) => {
                if !self.done {
                    let must: Box<dyn Iterator<Item = &Vec<u8>>> = if self.strict {
                        Box::new(model.keys())
                    } else {
                        Box::new(self.stable.iter())
                    };
                    if let Some(k) = must.into_iter().find(|k| !self.returned.contains(*k)) {
                        return Err(format!("{k:?} never returned"));
                    }
                }
                self.done = true;
                self.current = None;
            }
            Err(e) => return Err(format!("iterator step returned {e:?}")),
        }
        Ok(())
    }

    /// What removing or replacing the current entry through the token must return.
    pub fn through_token(&self, model: &Model, generation: u64) -> McStatus {
        if self.stale(generation) {
            MC_ERR_ITER_INVALIDATED
        } else if self.current.as_ref().is_some_and(|c| model.contains_key(c)) {
            MC_OK
        } else {
            MC_ERR_NOT_FOUND
        }
    }
}
