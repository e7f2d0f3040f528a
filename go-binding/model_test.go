package mapcore

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
)

// Differential test: random operation sequences, including every iteration
// mode with removes and writes through and behind iterators, applied both
// to a Map and to a plain Go map model; every result must agree.
func TestDifferentialAgainstGoMap(t *testing.T) {
	seeds, steps := 12, 1500
	if testing.Short() {
		seeds, steps = 4, 500
	}
	for seed := range seeds {
		weak := seed%4 == 3 // some runs with many equal hashes
		t.Run(fmt.Sprintf("seed=%d/weak=%v", seed, weak), func(t *testing.T) {
			var opts []Option
			if weak {
				opts = append(opts, withWeakHashForTesting())
			}
			d := &diff{t: t, r: rand.New(rand.NewPCG(uint64(seed), 1234)), m: newMap(t, opts...), model: map[string]string{}}
			for step := range steps {
				d.step = step
				d.randomOp()
				if step%100 == 99 {
					d.compareAll()
				}
			}
			d.compareAll()
		})
	}
}

type diff struct {
	t     *testing.T
	r     *rand.Rand
	m     *Map
	model map[string]string
	step  int
}

func (d *diff) fatalf(format string, args ...any) {
	d.t.Helper()
	d.t.Fatalf("step %d: "+format, append([]any{d.step}, args...)...)
}

func (d *diff) key() string {
	switch d.r.IntN(20) {
	case 0:
		return ""
	default:
		return fmt.Sprint("k", d.r.IntN(300))
	}
}

func (d *diff) value() string {
	switch d.r.IntN(50) {
	case 0:
		return ""
	case 1:
		return string(bytes.Repeat([]byte{byte('a' + d.r.IntN(26))}, 70_000)) // bigger than a batch
	default:
		return fmt.Sprint("v", d.r.IntN(1_000_000), string(bytes.Repeat([]byte("."), d.r.IntN(200))))
	}
}

func (d *diff) iterOpts() []IterOption {
	var o []IterOption
	if d.r.IntN(2) == 0 {
		o = append(o, WithBatchEntries(1+d.r.IntN(40)))
	}
	if d.r.IntN(3) == 0 {
		o = append(o, WithBatchBytes(64+d.r.IntN(4000)))
	}
	if d.r.IntN(3) == 0 {
		o = append(o, WithNoCopy())
	}
	return o
}

func (d *diff) check(err error) {
	d.t.Helper()
	if err != nil {
		d.fatalf("%v", err)
	}
}

func (d *diff) set(k, v string) {
	d.t.Helper()
	ins, err := d.m.SetString(k, v)
	d.check(err)
	_, had := d.model[k]
	if ins == had {
		d.fatalf("Set(%q) inserted=%v, model had=%v", k, ins, had)
	}
	d.model[k] = v
}

func (d *diff) del(k string) {
	d.t.Helper()
	ok, err := d.m.DeleteString(k)
	d.check(err)
	_, had := d.model[k]
	if ok != had {
		d.fatalf("Delete(%q)=%v, model had=%v", k, ok, had)
	}
	delete(d.model, k)
}

func (d *diff) randomOp() {
	switch op := d.r.IntN(100); {
	case op < 25:
		d.set(d.key(), d.value())
	case op < 35:
		d.del(d.key())
	case op < 50:
		k := d.key()
		v, err := d.m.GetString(k)
		mv, ok := d.model[k]
		if ok != (err == nil) || v != mv || (err != nil && !errors.Is(err, ErrNotFound)) {
			d.fatalf("Get(%q) = %d bytes, %v; model %v", k, len(v), err, ok)
		}
		c, err := d.m.ContainsString(k)
		d.check(err)
		if c != ok {
			d.fatalf("Contains(%q)", k)
		}
	case op < 55:
		n, err := d.m.Len()
		d.check(err)
		if n != len(d.model) {
			d.fatalf("Len %d, model %d", n, len(d.model))
		}
	case op < 60:
		d.batchOps()
	case op < 62:
		mod := 2 + d.r.IntN(5)
		want := 0
		for k := range d.model {
			if len(k)%mod == 0 {
				want++
				delete(d.model, k)
			}
		}
		n, err := d.m.DeleteFunc(func(k, _ []byte) bool { return len(k)%mod == 0 })
		d.check(err)
		if n != want {
			d.fatalf("DeleteFunc removed %d, model %d", n, want)
		}
	case op < 63:
		if d.r.IntN(4) == 0 {
			d.check(d.m.Clear())
			clear(d.model)
		} else {
			d.check(d.m.Reserve(d.r.IntN(500)))
		}
	case op < 75:
		d.strictIteration()
	case op < 87:
		d.cursorIteration()
	case op < 95:
		d.snapshot()
	default:
		d.check(d.m.ShrinkToFit())
	}
}

func (d *diff) batchOps() {
	n := d.r.IntN(20)
	var ks, vs [][]byte
	seen := map[string]bool{}
	for range n {
		k := d.key()
		if seen[k] { // duplicates in one SetMany have no specified order
			continue
		}
		seen[k] = true
		ks = append(ks, []byte(k))
		vs = append(vs, []byte(d.value()))
	}
	switch d.r.IntN(3) {
	case 0:
		want := 0
		for i, k := range ks {
			if _, ok := d.model[string(k)]; !ok {
				want++
			}
			d.model[string(k)] = string(vs[i])
		}
		ins, err := d.m.SetMany(ks, vs)
		d.check(err)
		if ins != want {
			d.fatalf("SetMany inserted %d, model %d", ins, want)
		}
	case 1:
		want := 0
		for _, k := range ks {
			if _, ok := d.model[string(k)]; ok {
				want++
				delete(d.model, string(k))
			}
		}
		rem, err := d.m.DeleteMany(ks)
		d.check(err)
		if rem != want {
			d.fatalf("DeleteMany removed %d, model %d", rem, want)
		}
	default:
		got, err := d.m.GetMany(ks)
		d.check(err)
		for i, k := range ks {
			mv, ok := d.model[string(k)]
			if (got[i] != nil) != ok || string(got[i]) != mv {
				d.fatalf("GetMany[%q] mismatch", k)
			}
		}
	}
}

// A strict iteration: the iteration yields exactly the entries present at
// its start, with their current values, unless something changes the map
// structurally behind its back, which must end it with ErrIterInvalidated
// at the very next Next.
func (d *diff) strictIteration() {
	it := d.m.Strict(d.iterOpts()...)
	want := map[string]bool{}
	for k := range d.model {
		want[k] = true
	}
	yielded := map[string]bool{}
	for it.Next() {
		k := string(it.Key())
		if !want[k] || yielded[k] {
			d.fatalf("strict iteration yielded %q (expected %v, already %v)", k, want[k], yielded[k])
		}
		yielded[k] = true
		if string(it.Value()) != d.model[k] {
			d.fatalf("strict value of %q: %d bytes, model %d", k, len(it.Value()), len(d.model[k]))
		}
		switch a := d.r.IntN(100); {
		case a < 30:
			d.check(it.Remove())
			delete(d.model, k)
			if d.r.IntN(5) == 0 {
				wantErr(d.t, it.Remove(), ErrNotFound)
			}
		case a < 40:
			v := d.value()
			d.check(it.SetValue([]byte(v)))
			d.model[k] = v
		case a < 45: // overwrite another existing key: not structural
			for other := range d.model {
				d.set(other, d.value())
				break
			}
		case a < 47: // a token, resumed: same iteration goes on
			tok, err := it.Token()
			d.check(err)
			text, _ := tok.MarshalText()
			var back Token
			d.check(back.UnmarshalText(text))
			it = d.m.Resume(back, d.iterOpts()...)
		case a < 49: // structural change behind its back
			k2 := fmt.Sprint("behind-", d.step)
			d.set(k2, "x")
			if it.Next() {
				d.fatalf("strict iterator yielded %q after a structural change", it.Key())
			}
			wantErr(d.t, it.Err(), ErrIterInvalidated)
			return
		case a < 50:
			return // abandon
		}
	}
	d.check(it.Err())
	if len(yielded) != len(want) {
		d.fatalf("strict iteration yielded %d of %d entries", len(yielded), len(want))
	}
}

// A cursor iteration with changes through and behind it: keys present
// throughout are returned exactly once, no key twice, values current,
// and removed keys never.
func (d *diff) cursorIteration() {
	it := d.m.Cursor(d.iterOpts()...)
	start := map[string]bool{}
	for k := range d.model {
		start[k] = true
	}
	touched := map[string]bool{} // deleted (or re-inserted) during the scan
	yielded := map[string]bool{}
	for it.Next() {
		k := string(it.Key())
		if yielded[k] {
			d.fatalf("cursor returned %q twice", k)
		}
		yielded[k] = true
		mv, ok := d.model[k]
		if !ok {
			d.fatalf("cursor returned %q, which is not in the map", k)
		}
		if string(it.Value()) != mv {
			d.fatalf("cursor value of %q is stale", k)
		}
		switch a := d.r.IntN(100); {
		case a < 20:
			d.check(it.Remove())
			delete(d.model, k)
			touched[k] = true
		case a < 30:
			v := d.value()
			d.check(it.SetValue([]byte(v)))
			d.model[k] = v
		case a < 40:
			k2 := d.key()
			if _, ok := d.model[k2]; ok {
				touched[k2] = true
			}
			d.del(k2)
		case a < 50:
			k2 := d.key()
			if _, ok := d.model[k2]; !ok {
				touched[k2] = true
			}
			d.set(k2, d.value())
		case a < 52:
			tok, err := it.Token()
			d.check(err)
			it = d.m.Resume(tok, d.iterOpts()...)
		case a < 53:
			return
		}
	}
	d.check(it.Err())
	for k := range start {
		if !touched[k] && !yielded[k] {
			d.fatalf("cursor scan missed %q, present throughout", k)
		}
	}
}

// A snapshot shows the state of its moment while the map changes.
func (d *diff) snapshot() {
	s, err := d.m.Snapshot()
	d.check(err)
	defer s.Close()
	frozen := map[string]string{}
	for k, v := range d.model {
		frozen[k] = v
	}
	for range d.r.IntN(20) {
		if d.r.IntN(2) == 0 {
			d.set(d.key(), d.value())
		} else {
			d.del(d.key())
		}
	}
	n, err := s.Len()
	d.check(err)
	if n != len(frozen) {
		d.fatalf("snapshot Len %d, frozen model %d", n, len(frozen))
	}
	got := map[string]string{}
	it := s.Iter(d.iterOpts()...)
	for it.Next() {
		got[string(it.Key())] = string(it.Value())
	}
	d.check(it.Err())
	if len(got) != len(frozen) {
		d.fatalf("snapshot iteration: %d entries, want %d", len(got), len(frozen))
	}
	for k, v := range frozen {
		if got[k] != v {
			d.fatalf("snapshot entry %q differs", k)
		}
		sv, err := s.GetString(k)
		if err != nil || sv != v {
			d.fatalf("snapshot Get(%q): %v", k, err)
		}
	}
}

func (d *diff) compareAll() {
	d.t.Helper()
	got := contents(d.t, d.m)
	if len(got) != len(d.model) {
		d.fatalf("map has %d entries, model %d", len(got), len(d.model))
	}
	for k, v := range d.model {
		if gv, ok := got[k]; !ok || gv != v {
			d.fatalf("entry %q: present=%v", k, ok)
		}
	}
}
