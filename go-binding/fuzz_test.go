package mapcore

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
)

// Coverage-guided fuzz targets. `go test` runs their seeds (f.Add and
// testdata/fuzz) as ordinary tests; `make fuzz-go` runs each one long:
//
//	go test -run '^$' -fuzz '^FuzzOps$' -fuzztime 5m
//
// A failing input is saved under testdata/fuzz/<target>/ and from then on
// runs with every `go test`: commit it with the fix.

// tokenFixture is a map the token target resumes tokens on, a snapshot of
// it, and a second map (tokens of one given to the other: ErrWrongMap).
// The token key and the library's token secret are per process, so valid
// tokens cannot be seeds: the target derives them from the input instead.
type tokenFixture struct {
	m, other *Map
	s        *Snapshot
	model    map[string]string
	err      error
}

var (
	tokenFixtureOnce sync.Once
	tokenFix         tokenFixture
)

func getTokenFixture(t *testing.T) *tokenFixture {
	tokenFixtureOnce.Do(func() {
		f := &tokenFix
		if f.m, f.err = New(); f.err != nil {
			return
		}
		if f.other, f.err = New(); f.err != nil {
			return
		}
		f.model = map[string]string{}
		for i := range 50 {
			k, v := fmt.Sprint("tk", i), fmt.Sprint("tv", i)
			if _, f.err = f.m.SetString(k, v); f.err != nil {
				return
			}
			f.model[k] = v
		}
		if _, f.err = f.other.SetString("x", "y"); f.err != nil {
			return
		}
		f.s, f.err = f.m.Snapshot()
	})
	if tokenFix.err != nil {
		t.Fatal(tokenFix.err)
	}
	return &tokenFix
}

// rest resumes tok with it and returns the keys it yields, checking that
// each is a key of model with its value and comes once. A resume that
// fails must fail with one of the documented token errors.
func rest(t *testing.T, it *Iterator, model map[string]string) ([]string, error) {
	t.Helper()
	var keys []string
	seen := map[string]bool{}
	for it.Next() {
		k := string(it.Key())
		v, ok := model[k]
		if !ok || seen[k] || string(it.Value()) != v {
			t.Fatalf("resumed iteration yielded %q=%q (in map %v, value %q, already %v)", k, it.Value(), ok, v, seen[k])
		}
		seen[k] = true
		keys = append(keys, k)
	}
	err := it.Err()
	if err != nil && !errors.Is(err, ErrBadToken) && !errors.Is(err, ErrWrongMap) {
		t.Fatalf("resume failed with %v, want nil, ErrBadToken or ErrWrongMap", err)
	}
	return keys, err
}

// FuzzTokenUnmarshalText feeds random text to Token.UnmarshalText, and the
// same bytes, signed as the binding signs token texts, as a library token
// (so that they reach mc_iter_decode), and uses them to alter a real
// token. Every text must either be refused with ErrBadToken or give a
// token that resumes to a valid iteration; real tokens round-trip.
func FuzzTokenUnmarshalText(f *testing.F) {
	f.Add([]byte(""))
	f.Add([]byte("c.."))
	f.Add([]byte("s.AAAA.BBBB"))
	f.Add([]byte("x.abc.def"))
	f.Add(bytes.Repeat([]byte("A"), iterTextLen))
	f.Add(append([]byte{3, 0, 0, 1}, bytes.Repeat([]byte{0xff}, 8)...))
	f.Add([]byte("c." + string(bytes.Repeat([]byte("-"), iterTextLen)) + ".AAAAAAAAAAA"))
	f.Fuzz(func(t *testing.T, data []byte) {
		fx := getTokenFixture(t)
		// 1. The text as a client would send it.
		var tok Token
		if err := tok.UnmarshalText(data); err != nil {
			if !errors.Is(err, ErrBadToken) {
				t.Fatalf("UnmarshalText: %v, want ErrBadToken", err)
			}
		} else {
			rest(t, fx.m.Resume(tok), fx.model)
		}
		// 2. The bytes as a library token text, signed, in both modes.
		for _, l := range []byte{'s', 'c'} {
			text := string(l) + "." + string(data) + "." + tokenTag(l, string(data))
			var st Token
			if err := st.UnmarshalText([]byte(text)); err != nil {
				if !errors.Is(err, ErrBadToken) {
					t.Fatalf("UnmarshalText of a signed text: %v, want ErrBadToken", err)
				}
				continue
			}
			rest(t, fx.m.Resume(st), fx.model)
			rest(t, fx.s.Resume(st), fx.model)
			if _, err := rest(t, fx.other.Resume(st), map[string]string{"x": "y"}); err == nil {
				t.Fatalf("a token made from %q resumed on a map that never issued it", data)
			}
		}
		// 3. A real token, taken where the input says, round-trips; changed
		// by the input it is refused or means the same position.
		if len(data) == 0 {
			return
		}
		for _, src := range []struct {
			name  string
			it    *Iterator
			again func(Token, ...IterOption) *Iterator
		}{
			{"strict", fx.m.Strict(WithBatchEntries(1 + int(data[0])%7)), fx.m.Resume},
			{"cursor", fx.m.Cursor(WithBatchEntries(1 + int(data[0])%5)), fx.m.Resume},
			{"snapshot", fx.s.Iter(WithBatchEntries(1 + int(data[0])%3)), fx.s.Resume},
		} {
			for range int(data[0]) % 60 {
				if !src.it.Next() {
					break
				}
			}
			real, err := src.it.Token()
			if err != nil {
				t.Fatalf("%s Token: %v", src.name, err)
			}
			text, err := real.MarshalText()
			if err != nil {
				t.Fatal(err)
			}
			var back Token
			if err := back.UnmarshalText(text); err != nil || back != real {
				t.Fatalf("%s token %q did not round-trip: %v", src.name, text, err)
			}
			want, err := rest(t, src.again(real), fx.model)
			if err != nil {
				t.Fatalf("%s token: resume: %v", src.name, err)
			}
			// XOR the library text with the input (from its second byte),
			// and sign it again: only the library's own check stands.
			inner := []byte(real.text)
			for i, b := range data[1:] {
				inner[i%len(inner)] ^= b
			}
			changed := Token{mode: real.mode, text: string(inner)}
			got, err := rest(t, src.again(changed), fx.model)
			if err != nil && changed == real {
				t.Fatalf("%s token %q refused after a change that changed nothing: %v", src.name, inner, err)
			}
			if err == nil && !slices.Equal(got, want) {
				t.Fatalf("%s token changed to %q was accepted and resumed elsewhere: %d keys, want %d",
					src.name, inner, len(got), len(want))
			}
		}
	})
}

// opReader decodes a fuzz input as a sequence of small choices; once the
// input is used up every choice is 0 and done reports true.
type opReader struct {
	b []byte
	n int // choices read past the end
}

func (r *opReader) byte() byte {
	if len(r.b) == 0 {
		r.n++
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

func (r *opReader) intn(n int) int { return int(r.byte()) % n }
func (r *opReader) done() bool     { return len(r.b) == 0 }

// opsRun applies an operation sequence to a Map and to a Go map model.
type opsRun struct {
	t     *testing.T
	r     *opReader
	m     *Map
	model map[string]string
	step  int
	fresh int // counter for keys never used before
}

func (o *opsRun) fatalf(format string, args ...any) {
	o.t.Helper()
	o.t.Fatalf("op %d: "+format, append([]any{o.step}, args...)...)
}

func (o *opsRun) ok(err error) {
	o.t.Helper()
	if err != nil {
		o.fatalf("%v", err)
	}
}

func (o *opsRun) key() string {
	c := o.r.byte()
	if c == 255 {
		return ""
	}
	return fmt.Sprint("k", c%24)
}

func (o *opsRun) value() string {
	c := o.r.byte()
	switch {
	case c == 255:
		return string(bytes.Repeat([]byte{'L'}, 70_000)) // more than a batch
	case c >= 250:
		return string(bytes.Repeat([]byte{'m'}, 5000)) // more than some batches
	case c >= 240:
		return ""
	}
	return fmt.Sprint("v", c, string(bytes.Repeat([]byte{'.'}, int(c%40))))
}

func (o *opsRun) iterOpts() []IterOption {
	c := o.r.byte()
	var opts []IterOption
	if c&1 != 0 {
		opts = append(opts, WithNoCopy())
	}
	if n := []int{0, 1, 3, 16}[c>>1&3]; n > 0 {
		opts = append(opts, WithBatchEntries(n))
	}
	if n := []int{0, 64, 300, 4096}[c>>3&3]; n > 0 {
		opts = append(opts, WithBatchBytes(n))
	}
	return opts
}

func (o *opsRun) set(k, v string) {
	o.t.Helper()
	ins, err := o.m.SetString(k, v)
	o.ok(err)
	if _, had := o.model[k]; ins == had {
		o.fatalf("Set(%q) inserted=%v, model had it: %v", k, ins, had)
	}
	o.model[k] = v
}

func (o *opsRun) del(k string) {
	o.t.Helper()
	ok, err := o.m.DeleteString(k)
	o.ok(err)
	if _, had := o.model[k]; ok != had {
		o.fatalf("Delete(%q)=%v, model had it: %v", k, ok, had)
	}
	delete(o.model, k)
}

func (o *opsRun) get(k string) {
	o.t.Helper()
	v, err := o.m.GetString(k)
	mv, had := o.model[k]
	if had && (err != nil || v != mv) || !had && !errors.Is(err, ErrNotFound) {
		o.fatalf("Get(%q)=%d bytes, %v; model %d bytes, present %v", k, len(v), err, len(mv), had)
	}
}

// FuzzOps decodes its input as operations on a Map and checks each result
// against a Go map: writes, reads, batches, Clear, DeleteFunc, strict and
// cursor iterations with Remove, SetValue, tokens and writes behind the
// iterator, snapshots. The caller-side writes into returned slices of
// TestIteratorIgnoresWritesToReturnedSlices happen here too.
func FuzzOps(f *testing.F) {
	f.Add([]byte{0, 1, 2, 0, 2, 3, 9, 0, 1, 0, 1, 0})
	f.Add([]byte{0, 1, 1, 0, 2, 2, 0, 3, 3, 10, 0, 1, 2, 3, 4, 5, 6, 7, 8})
	f.Add([]byte{0, 5, 255, 0, 6, 250, 0, 7, 1, 11, 1, 0, 1, 3, 1, 2, 2, 2})
	f.Add([]byte{7, 3, 1, 2, 3, 1, 2, 3, 8, 2, 1, 4, 12, 3})
	f.Add([]byte{0, 1, 1, 0, 2, 2, 13, 9, 0, 5, 0, 0, 0, 6, 0})
	rng := rand.New(rand.NewPCG(19, 7))
	for range 16 {
		b := make([]byte, 64+rng.IntN(400))
		for i := range b {
			b[i] = byte(rng.UintN(256))
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 4096 {
			return // long inputs only make each run slower
		}
		m, err := New()
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		o := &opsRun{t: t, r: &opReader{b: data}, m: m, model: map[string]string{}}
		for ; !o.r.done(); o.step++ {
			o.op()
		}
		o.compareAll()
	})
}

func (o *opsRun) op() {
	switch o.r.intn(14) {
	case 0:
		o.set(o.key(), o.value())
	case 1:
		o.get(o.key())
	case 2:
		o.del(o.key())
	case 3:
		k := o.key()
		ok, err := o.m.ContainsString(k)
		o.ok(err)
		if _, had := o.model[k]; ok != had {
			o.fatalf("Contains(%q)=%v, model %v", k, ok, had)
		}
	case 4:
		n, err := o.m.Len()
		o.ok(err)
		if n != len(o.model) {
			o.fatalf("Len=%d, model %d", n, len(o.model))
		}
	case 5:
		if o.r.intn(4) == 0 { // rarer: it empties the map
			o.ok(o.m.Clear())
			clear(o.model)
		}
	case 6:
		o.getMany()
	case 7:
		o.setDeleteMany()
	case 8:
		o.strict()
	case 9:
		o.cursor()
	case 10:
		o.snapshot()
	case 11:
		o.deleteFunc()
	case 12:
		switch o.r.intn(2) {
		case 0:
			o.ok(o.m.Reserve(o.r.intn(200)))
		case 1:
			o.ok(o.m.ShrinkToFit())
		}
	case 13:
		o.compareAll()
	}
}

func (o *opsRun) getMany() {
	n := o.r.intn(8)
	keys := make([][]byte, n)
	for i := range keys {
		keys[i] = []byte(o.key())
	}
	vals, err := o.m.GetMany(keys)
	o.ok(err)
	buf := []byte("prefix")
	avals := make([][]byte, n)
	buf, err = o.m.AppendMany(buf, avals, keys)
	o.ok(err)
	if !bytes.HasPrefix(buf, []byte("prefix")) {
		o.fatalf("AppendMany changed dst's prefix")
	}
	for i, k := range keys {
		mv, had := o.model[string(k)]
		for _, got := range [][]byte{vals[i], avals[i]} {
			if had && (got == nil || string(got) != mv) || !had && got != nil {
				o.fatalf("GetMany/AppendMany[%d] (%q) = %d bytes (nil %v), model %d bytes, present %v",
					i, k, len(got), got == nil, len(mv), had)
			}
		}
	}
}

func (o *opsRun) setDeleteMany() {
	n := o.r.intn(6)
	keys := make([][]byte, n)
	vals := make([][]byte, n)
	for i := range keys {
		keys[i], vals[i] = []byte(o.key()), []byte(o.value())
	}
	if o.r.intn(2) == 0 {
		ins, err := o.m.SetMany(keys, vals)
		o.ok(err)
		want := 0
		for i, k := range keys {
			if _, had := o.model[string(k)]; !had {
				want++
			}
			o.model[string(k)] = string(vals[i])
		}
		if ins != want {
			o.fatalf("SetMany inserted %d, model %d", ins, want)
		}
		return
	}
	del, err := o.m.DeleteMany(keys)
	o.ok(err)
	want := 0
	for _, k := range keys {
		if _, had := o.model[string(k)]; had {
			want++
			delete(o.model, string(k))
		}
	}
	if del != want {
		o.fatalf("DeleteMany removed %d, model %d", del, want)
	}
}

func (o *opsRun) deleteFunc() {
	sel := o.r.byte()
	want := 0
	n, err := o.m.DeleteFunc(func(k, v []byte) bool {
		if string(v) != o.model[string(k)] {
			o.t.Errorf("DeleteFunc got %q with %d bytes, model %d", k, len(v), len(o.model[string(k)]))
		}
		return (len(k)+len(v))%4 == int(sel%4)
	})
	o.ok(err)
	for k, v := range o.model {
		if (len(k)+len(v))%4 == int(sel%4) {
			delete(o.model, k)
			want++
		}
	}
	if n != want {
		o.fatalf("DeleteFunc removed %d, model %d", n, want)
	}
}

// strict: the iteration yields exactly the entries present at its start,
// once each, with their current values, unless a structural change behind
// its back ends it with ErrIterInvalidated at the very next Next.
func (o *opsRun) strict() {
	it := o.m.Strict(o.iterOpts()...)
	want := map[string]bool{}
	for k := range o.model {
		want[k] = true
	}
	yielded := map[string]bool{}
	var sc scribbler
	for it.Next() {
		k := string(it.Key())
		if !want[k] || yielded[k] {
			o.fatalf("strict iteration yielded %q (expected %v, already %v)", k, want[k], yielded[k])
		}
		yielded[k] = true
		if string(it.Value()) != o.model[k] {
			o.fatalf("strict value of %q: %d bytes, model %d", k, len(it.Value()), len(o.model[k]))
		}
		sc.keepFrom(it)
		if o.r.intn(3) == 0 {
			sc.scribble([]byte(o.key()))
		}
		switch o.r.intn(9) {
		case 0:
			o.ok(it.Remove())
			delete(o.model, k)
			if o.r.intn(2) == 0 {
				if err := it.Remove(); !errors.Is(err, ErrNotFound) {
					o.fatalf("second Remove: %v, want ErrNotFound", err)
				}
			}
		case 1:
			v := o.value()
			o.ok(it.SetValue([]byte(v)))
			o.model[k] = v
		case 2: // overwrite an existing key: not structural
			for _, other := range sortedKeys(o.model) {
				o.set(other, o.value())
				break
			}
		case 3: // a token, through text, resumed: the same iteration goes on
			tok, err := it.Token()
			o.ok(err)
			text, err := tok.MarshalText()
			o.ok(err)
			var back Token
			o.ok(back.UnmarshalText(text))
			it = o.m.Resume(back, o.iterOpts()...)
		case 4: // structural change behind its back
			if o.r.intn(2) == 0 || len(o.model) == 0 {
				o.fresh++
				o.set(fmt.Sprint("new-", o.fresh), "x")
			} else {
				o.del(sortedKeys(o.model)[o.r.intn(len(o.model))])
			}
			if it.Next() {
				o.fatalf("strict iterator yielded %q after a structural change", it.Key())
			}
			if err := it.Err(); !errors.Is(err, ErrIterInvalidated) {
				o.fatalf("strict iterator after a structural change: %v, want ErrIterInvalidated", err)
			}
			return
		case 5:
			return // abandon
		}
	}
	o.ok(it.Err())
	if len(yielded) != len(want) {
		o.fatalf("strict iteration yielded %d of %d entries", len(yielded), len(want))
	}
}

// cursor: with changes through and behind it, keys present throughout are
// returned exactly once, no key twice, with current values; removed keys
// never.
func (o *opsRun) cursor() {
	it := o.m.Cursor(o.iterOpts()...)
	start := map[string]bool{}
	for k := range o.model {
		start[k] = true
	}
	touched := map[string]bool{}
	yielded := map[string]bool{}
	var sc scribbler
	for it.Next() {
		k := string(it.Key())
		mv, ok := o.model[k]
		if yielded[k] || !ok || string(it.Value()) != mv {
			o.fatalf("cursor returned %q (twice %v, in map %v, value %d bytes, model %d)",
				k, yielded[k], ok, len(it.Value()), len(mv))
		}
		yielded[k] = true
		sc.keepFrom(it)
		if o.r.intn(3) == 0 {
			sc.scribble([]byte(o.key()))
		}
		switch o.r.intn(9) {
		case 0:
			o.ok(it.Remove())
			delete(o.model, k)
			touched[k] = true
		case 1:
			v := o.value()
			o.ok(it.SetValue([]byte(v)))
			o.model[k] = v
		case 2:
			k2 := o.key()
			if _, ok := o.model[k2]; ok {
				touched[k2] = true
			}
			o.del(k2)
		case 3:
			k2 := o.key()
			if _, ok := o.model[k2]; !ok {
				touched[k2] = true
			}
			o.set(k2, o.value())
		case 4:
			tok, err := it.Token()
			o.ok(err)
			it = o.m.Resume(tok, o.iterOpts()...)
		case 5:
			return
		}
	}
	o.ok(it.Err())
	for k := range start {
		if !touched[k] && !yielded[k] {
			o.fatalf("cursor scan missed %q, present throughout", k)
		}
	}
}

// snapshot: a snapshot shows the state of its moment while the map changes.
func (o *opsRun) snapshot() {
	s, err := o.m.Snapshot()
	o.ok(err)
	defer s.Close()
	frozen := maps.Clone(o.model)
	for range o.r.intn(6) {
		if o.r.intn(2) == 0 {
			o.set(o.key(), o.value())
		} else {
			o.del(o.key())
		}
	}
	n, err := s.Len()
	o.ok(err)
	if n != len(frozen) {
		o.fatalf("snapshot Len %d, frozen model %d", n, len(frozen))
	}
	got := map[string]string{}
	it := s.Iter(o.iterOpts()...)
	stop := o.r.intn(8)
	for i := 0; it.Next(); i++ {
		k := string(it.Key())
		if _, dup := got[k]; dup {
			o.fatalf("snapshot returned %q twice", k)
		}
		got[k] = string(it.Value())
		if i == stop { // continue through a token
			tok, err := it.Token()
			o.ok(err)
			it = s.Resume(tok, o.iterOpts()...)
		}
	}
	o.ok(it.Err())
	if len(got) != len(frozen) {
		o.fatalf("snapshot iteration: %d entries, want %d", len(got), len(frozen))
	}
	for k, v := range frozen {
		if got[k] != v {
			o.fatalf("snapshot entry %q differs", k)
		}
	}
	k := o.key()
	sv, err := s.GetString(k)
	if fv, had := frozen[k]; had && (err != nil || sv != fv) || !had && !errors.Is(err, ErrNotFound) {
		o.fatalf("snapshot Get(%q): %v", k, err)
	}
}

func (o *opsRun) compareAll() {
	o.t.Helper()
	got := contents(o.t, o.m)
	if len(got) != len(o.model) {
		o.fatalf("map has %d entries, model %d", len(got), len(o.model))
	}
	for k, v := range o.model {
		if gv, ok := got[k]; !ok || gv != v {
			o.fatalf("entry %q: present=%v", k, ok)
		}
	}
}
