package mapcore

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
)

// The slices the package returns belong to the caller: writing into them
// (as append(k[:0], ...) on a kept key does) must never change what the
// package does next. These tests write other keys' bytes and garbage into
// every slice they were ever handed, then check that Next, Remove,
// SetValue and Token act on the right entries.

// scribbler remembers every slice a test was handed and overwrites them.
type scribbler struct{ kept [][]byte }

func (s *scribbler) keep(bs ...[]byte) { s.kept = append(s.kept, bs...) }

// keepFrom keeps the current entry of it. With WithNoCopy the batch buffer
// is reused for the next batch, as documented: slices of an earlier batch
// then show the entries of this one, so the caller may no longer write
// into them (it would change what the next Key and Value show, though
// never what the iterator does). They are forgotten at each new batch.
func (s *scribbler) keepFrom(it *Iterator) {
	if it.cfg.noCopy && it.cur == 0 {
		s.kept = s.kept[:0]
	}
	s.keep(it.Key(), it.Value())
}

// scribble writes victim's bytes into every kept slice of its length (keys
// all have the same length here) and garbage into the others.
func (s *scribbler) scribble(victim []byte) {
	for _, b := range s.kept {
		if len(b) == len(victim) {
			copy(b, victim)
		} else {
			for i := range b {
				b[i] = '#'
			}
		}
	}
}

// victimFor returns a key of model other than cur, preferably one the
// iteration has not returned yet (the worst one to act on by mistake).
func victimFor(model map[string]string, seen map[string]int, cur string) []byte {
	var other string
	for _, k := range sortedKeys(model) {
		if k == cur {
			continue
		}
		if seen[k] == 0 {
			return []byte(k)
		}
		other = k
	}
	return []byte(other)
}

var scribbleConfigs = append(batchConfigs[:len(batchConfigs):len(batchConfigs)],
	struct {
		name string
		opts []IterOption
	}{"nocopy+bytes=64", []IterOption{WithNoCopy(), WithBatchBytes(64)}})

func TestIteratorIgnoresWritesToReturnedSlices(t *testing.T) {
	const n = 40
	kinds := []struct {
		name string
		mode Mode
		snap bool
	}{
		{"strict", ModeStrict, false},
		{"cursor", ModeCursor, false},
		{"snapshot", ModeCursor, true},
	}
	for _, kind := range kinds {
		for _, bc := range scribbleConfigs {
			t.Run(kind.name+"/"+bc.name, func(t *testing.T) {
				m := newMap(t)
				fill(t, m, n)
				for i := 0; i < n; i += 3 { // batches of large and of small entries
					if _, err := m.Set(key(i), bytes.Repeat(val(i), 40)); err != nil {
						t.Fatal(err)
					}
				}
				model := contents(t, m)
				var s *Snapshot
				open := func(tok *Token) *Iterator {
					switch {
					case kind.snap && tok != nil:
						return s.Resume(*tok, bc.opts...)
					case kind.snap:
						return s.Iter(bc.opts...)
					case tok != nil:
						return m.Resume(*tok, bc.opts...)
					}
					return m.Iter(kind.mode, bc.opts...)
				}
				if kind.snap {
					var err error
					if s, err = m.Snapshot(); err != nil {
						t.Fatal(err)
					}
					defer s.Close()
				}
				frozen := contents(t, m) // what a snapshot shows
				seen := map[string]int{}
				var sc scribbler
				it := open(nil)
				for step := 0; it.Next(); step++ {
					k := string(it.Key())
					want := model[k]
					if kind.snap {
						want = frozen[k]
					}
					if _, ok := frozen[k]; !ok {
						t.Fatalf("step %d: iteration returned %q, not a key of the map", step, k)
					}
					if got := string(it.Value()); got != want {
						t.Fatalf("step %d: value of %q is %q, want %q", step, k, got, want)
					}
					seen[k]++
					victim := victimFor(model, seen, k)
					sc.keepFrom(it)
					sc.scribble(victim)
					switch step % 4 {
					case 1: // Remove
						err := it.Remove()
						if kind.snap {
							wantErr(t, err, ErrInvalidArgument)
							break
						}
						if err != nil {
							t.Fatalf("step %d: Remove of %q: %v", step, k, err)
						}
						delete(model, k)
						sc.scribble(victim)
						if err := it.Remove(); !errors.Is(err, ErrNotFound) {
							t.Fatalf("step %d: second Remove of %q: %v, want ErrNotFound", step, k, err)
						}
					case 2: // SetValue
						nv := fmt.Sprintf("new-%d", step)
						err := it.SetValue([]byte(nv))
						if kind.snap {
							wantErr(t, err, ErrInvalidArgument)
							break
						}
						if err != nil {
							t.Fatalf("step %d: SetValue of %q: %v", step, k, err)
						}
						model[k] = nv
						sc.keep(it.Value())
						sc.scribble(victim)
					case 3: // Token, resumed
						tok, err := it.Token()
						if err != nil {
							t.Fatalf("step %d: Token: %v", step, err)
						}
						text, err := tok.MarshalText()
						if err != nil {
							t.Fatal(err)
						}
						sc.keep(text)
						sc.scribble(victim)
						it = open(&tok)
					}
					// The map itself agrees with the model after every step.
					for _, vk := range []string{k, string(victim)} {
						mv, ok := model[vk]
						got, err := m.GetString(vk)
						if ok && (err != nil || got != mv) || !ok && !errors.Is(err, ErrNotFound) {
							t.Fatalf("step %d (current %q): map has %q=%q (%v), model %q (present %v)",
								step, k, vk, got, err, mv, ok)
						}
					}
				}
				if err := it.Err(); err != nil {
					t.Fatalf("iteration failed: %v", err)
				}
				for k := range frozen {
					if seen[k] != 1 {
						t.Errorf("key %q returned %d times, want once", k, seen[k])
					}
				}
				got := contents(t, m)
				if fmt.Sprint(got) != fmt.Sprint(model) {
					t.Fatalf("map after the iteration:\n%v\nmodel:\n%v", got, model)
				}
			})
		}
	}
}

// The range-over-func forms hand out the same memory.
func TestSeqsIgnoreWritesToReturnedSlices(t *testing.T) {
	const n = 40
	m := newMap(t)
	fill(t, m, n)
	model := contents(t, m)
	s, err := m.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	check := func(t *testing.T, name string, it *Iterator, seq func(yield func(k, v []byte) bool)) {
		t.Run(name, func(t *testing.T) {
			seen := map[string]int{}
			var sc scribbler
			for k, v := range seq {
				ks := string(k)
				if v != nil && string(v) != model[ks] {
					t.Fatalf("value of %q is %q, want %q", ks, v, model[ks])
				}
				seen[ks]++
				if it != nil && it.cfg.noCopy && it.cur == 0 {
					sc.kept = sc.kept[:0] // see keepFrom
				}
				sc.keep(k)
				if v != nil {
					sc.keep(v)
				}
				sc.scribble(victimFor(model, seen, ks))
			}
			for k := range model {
				if seen[k] != 1 {
					t.Errorf("key %q returned %d times, want once", k, seen[k])
				}
			}
			if len(seen) != len(model) {
				t.Errorf("returned %d keys, want %d", len(seen), len(model))
			}
		})
	}
	keysOnly := func(seq func(func([]byte) bool)) func(func(k, v []byte) bool) {
		return func(yield func(k, v []byte) bool) {
			seq(func(k []byte) bool { return yield(k, nil) })
		}
	}
	for _, bc := range scribbleConfigs {
		it := m.Strict(bc.opts...)
		check(t, "Iterator.All/strict/"+bc.name, it, it.All())
		it = m.Cursor(bc.opts...)
		check(t, "Iterator.Keys/cursor/"+bc.name, it, keysOnly(it.Keys()))
		it = s.Iter(bc.opts...)
		check(t, "Iterator.All/snapshot/"+bc.name, it, it.All())
	}
	check(t, "Map.All", nil, m.All())
	check(t, "Map.Keys", nil, keysOnly(m.Keys()))
	check(t, "Snapshot.All", nil, s.All())
	check(t, "Snapshot.Keys", nil, keysOnly(s.Keys()))
}

// Removing through Iterator.All while scribbling removes exactly the
// current entry.
func TestIteratorAllRemoveAfterWrites(t *testing.T) {
	for _, mode := range []Mode{ModeStrict, ModeCursor} {
		for _, bc := range scribbleConfigs {
			t.Run(mode.String()+"/"+bc.name, func(t *testing.T) {
				const n = 30
				m := newMap(t)
				fill(t, m, n)
				model := contents(t, m)
				seen := map[string]int{}
				var sc scribbler
				it := m.Iter(mode, bc.opts...)
				i := 0
				for k := range it.Keys() {
					ks := string(k)
					seen[ks]++
					if it.cfg.noCopy && it.cur == 0 {
						sc.kept = sc.kept[:0] // see keepFrom
					}
					sc.keep(k)
					sc.scribble(victimFor(model, seen, ks))
					if i%2 == 0 {
						if err := it.Remove(); err != nil {
							t.Fatalf("Remove of %q: %v", ks, err)
						}
						delete(model, ks)
					}
					i++
				}
				if err := it.Err(); err != nil {
					t.Fatal(err)
				}
				if len(seen) != n {
					t.Fatalf("returned %d keys, want %d", len(seen), n)
				}
				if got := contents(t, m); fmt.Sprint(got) != fmt.Sprint(model) {
					t.Fatalf("map after the iteration:\n%v\nmodel:\n%v", got, model)
				}
			})
		}
	}
}

// Values from Get, Lookup, AppendValue, GetMany and a snapshot's Get are
// the caller's: writing into one changes neither the map nor another
// returned value.
func TestReturnedValuesAreTheCallers(t *testing.T) {
	m := newMap(t)
	fill(t, m, 4)
	s, err := m.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	garble := func(b []byte) {
		for i := range b {
			b[i] ^= 0xff
		}
	}
	get := map[string]func([]byte) ([]byte, error){
		"Map.Get":      m.Get,
		"Snapshot.Get": s.Get,
		"Map.Lookup": func(k []byte) ([]byte, error) {
			v, _, err := m.Lookup(k)
			return v, err
		},
		"Map.AppendValue":      func(k []byte) ([]byte, error) { return m.AppendValue(nil, k) },
		"Snapshot.AppendValue": func(k []byte) ([]byte, error) { return s.AppendValue(nil, k) },
	}
	for name, f := range get {
		v, err := f(key(1))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		garble(v)
		v2, err := f(key(1))
		if err != nil || !bytes.Equal(v2, val(1)) {
			t.Fatalf("%s after writing into its last result: %q, %v; want %q", name, v2, err, val(1))
		}
	}
	keys := [][]byte{key(0), key(1), key(9), key(2)}
	vals, err := m.GetMany(keys)
	if err != nil {
		t.Fatal(err)
	}
	garble(vals[0])
	vals[1] = append(vals[1], "overflow"...) // must not run into vals[3]
	if !bytes.Equal(vals[3], val(2)) {
		t.Fatalf("GetMany: writing into vals[0] and appending to vals[1] changed vals[3] to %q", vals[3])
	}
	again, err := m.GetMany(keys)
	if err != nil || !bytes.Equal(again[0], val(0)) || !bytes.Equal(again[1], val(1)) {
		t.Fatalf("GetMany after writing into its results: %q, %v", again, err)
	}
	// Token text: the Token is a value; its text is a fresh copy.
	it := m.Cursor()
	it.Next()
	first := string(it.Key())
	tok, err := it.Token()
	if err != nil {
		t.Fatal(err)
	}
	text, _ := tok.MarshalText()
	garble(text)
	text2, _ := tok.MarshalText()
	var back Token
	if err := back.UnmarshalText(text2); err != nil {
		t.Fatalf("token text after writing into an earlier copy: %v", err)
	}
	it2 := m.Resume(back)
	for it2.Next() {
		if string(it2.Key()) == first {
			t.Fatalf("resumed token returned %q again", first)
		}
	}
	if err := it2.Err(); err != nil {
		t.Fatal(err)
	}
}
