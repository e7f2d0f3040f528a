package mapcore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// iterate drains it and returns key -> value, failing on duplicates.
func iterate(t testing.TB, it *Iterator) map[string]string {
	t.Helper()
	out := map[string]string{}
	for it.Next() {
		k := string(it.Key())
		if _, dup := out[k]; dup {
			t.Fatalf("key %q returned twice", k)
		}
		out[k] = string(it.Value())
	}
	if err := it.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func checkAll(t testing.TB, got map[string]string, n int) {
	t.Helper()
	if len(got) != n {
		t.Fatalf("got %d entries, want %d", len(got), n)
	}
	for i := range n {
		if got[string(key(i))] != string(val(i)) {
			t.Fatalf("entry %d: %q", i, got[string(key(i))])
		}
	}
}

func TestIterationModesYieldEveryEntryOnce(t *testing.T) {
	const n = 3000
	m := newMap(t)
	fill(t, m, n)
	snap, err := m.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	defer snap.Close()
	for _, bc := range batchConfigs {
		t.Run(bc.name, func(t *testing.T) {
			checkAll(t, iterate(t, m.Strict(bc.opts...)), n)
			checkAll(t, iterate(t, m.Cursor(bc.opts...)), n)
			checkAll(t, iterate(t, snap.Iter(bc.opts...)), n)
		})
	}
	t.Run("range-over-func", func(t *testing.T) {
		got := map[string]string{}
		for k, v := range m.All() {
			got[string(k)] = string(v)
		}
		checkAll(t, got, n)
		got = map[string]string{}
		for k, v := range snap.All() {
			got[string(k)] = string(v)
		}
		checkAll(t, got, n)
		cnt := 0
		for range m.Keys() {
			cnt++
		}
		for range snap.Keys() {
			cnt++
		}
		it := m.Strict()
		for k := range it.Keys() {
			_ = k
			cnt++
		}
		if cnt != 3*n || it.Err() != nil {
			t.Fatalf("keys: %d, %v", cnt, it.Err())
		}
		// Breaking out early and continuing with the same iterator.
		it = m.Strict()
		first := 0
		for range it.All() {
			first++
			if first == 10 {
				break
			}
		}
		rest := 0
		for range it.All() {
			rest++
		}
		if first+rest != n || it.Err() != nil {
			t.Fatalf("break and resume: %d + %d, %v", first, rest, it.Err())
		}
	})
	t.Run("empty map", func(t *testing.T) {
		e := newMap(t)
		for _, it := range []*Iterator{e.Strict(), e.Cursor()} {
			if it.Next() || it.Err() != nil {
				t.Fatal("empty map yielded", it.Err())
			}
			if it.Next() {
				t.Fatal("Next after the end")
			}
		}
	})
}

// Copied keys and values stay valid; no-copy ones are only valid until Next.
func TestCopyAndNoCopy(t *testing.T) {
	m := newMap(t)
	fill(t, m, 500)
	var keys [][]byte
	it := m.Cursor()
	for it.Next() {
		keys = append(keys, it.Key())
	}
	seen := map[string]bool{}
	for _, k := range keys {
		seen[string(k)] = true
	}
	if len(seen) != 500 {
		t.Fatalf("kept keys were overwritten: %d distinct", len(seen))
	}
	// Appending to a yielded key must not clobber the next entry.
	it = m.Cursor()
	it.Next()
	k0 := it.Key()
	_ = append(k0, "XXXXXXXXXXXXXXXXXXXXXXXX"...)
	it.Next()
	if !strings.HasPrefix(string(it.Key()), "key-") {
		t.Fatalf("append clobbered the next key: %q", it.Key())
	}
	// No-copy: values are right at the time they are yielded.
	it = m.Cursor(WithNoCopy())
	cnt := 0
	for it.Next() {
		k := string(it.Key())
		var i int
		fmt.Sscanf(k, "key-%d", &i)
		if string(it.Value()) != string(val(i)) {
			t.Fatalf("no-copy value of %s = %q", k, it.Value())
		}
		cnt++
	}
	if cnt != 500 {
		t.Fatal(cnt)
	}
}

// Entries larger than the batch buffer are fetched alone in a bigger buffer.
func TestLargeEntries(t *testing.T) {
	m := newMap(t)
	want := map[string]string{}
	for i := range 40 {
		v := strings.Repeat(string(rune('a'+i%26)), (i%5)*70_000+1)
		m.SetString(fmt.Sprint("k", i), v)
		want[fmt.Sprint("k", i)] = v
	}
	for _, opts := range [][]IterOption{nil, {WithNoCopy()}, {WithBatchBytes(16)}} {
		got := iterate(t, m.Strict(opts...))
		if len(got) != len(want) {
			t.Fatal(len(got))
		}
		for k, v := range want {
			if got[k] != v {
				t.Fatalf("%s: %d bytes", k, len(got[k]))
			}
		}
	}
	// Strict Remove with large entries (re-reads need a big scratch buffer).
	it := m.Strict(WithBatchBytes(300_000))
	removed := 0
	for it.Next() {
		if removed%2 == 0 {
			if err := it.Remove(); err != nil {
				t.Fatal(err)
			}
		}
		removed++
	}
	if it.Err() != nil || removed != 40 || mustLen(t, m) != 20 {
		t.Fatal(it.Err(), removed, mustLen(t, m))
	}
}

// The heart of the batching design: Remove must delete the entry the caller
// is looking at (not the last one of the batch), keep a strict iterator
// valid, and the iteration must still yield every other entry exactly once.
func TestStrictRemoveThroughIterator(t *testing.T) {
	const n = 2000
	patterns := []struct {
		name string
		del  func(i int, k string, r *rand.Rand) bool
	}{
		{"every other", func(i int, _ string, _ *rand.Rand) bool { return i%2 == 0 }},
		{"all", func(int, string, *rand.Rand) bool { return true }},
		{"none", func(int, string, *rand.Rand) bool { return false }},
		{"first only", func(i int, _ string, _ *rand.Rand) bool { return i == 0 }},
		{"random 30%", func(_ int, _ string, r *rand.Rand) bool { return r.IntN(10) < 3 }},
		{"runs", func(i int, _ string, _ *rand.Rand) bool { return (i/13)%2 == 0 }},
	}
	for _, bc := range batchConfigs {
		for _, p := range patterns {
			t.Run(bc.name+"/"+p.name, func(t *testing.T) {
				m := newMap(t)
				fill(t, m, n)
				r := rand.New(rand.NewPCG(1, 2))
				it := m.Strict(bc.opts...)
				seen := map[string]bool{}
				removed := map[string]bool{}
				i := 0
				for k, v := range it.All() {
					ks := string(k)
					if seen[ks] {
						t.Fatalf("%q returned twice", ks)
					}
					seen[ks] = true
					var idx int
					fmt.Sscanf(ks, "key-%d", &idx)
					if string(v) != string(val(idx)) {
						t.Fatalf("value of %q = %q", ks, v)
					}
					if p.del(i, ks, r) {
						if err := it.Remove(); err != nil {
							t.Fatalf("Remove #%d: %v", i, err)
						}
						removed[ks] = true
						// A second Remove of the same entry reports ErrNotFound.
						if i%97 == 0 {
							wantErr(t, it.Remove(), ErrNotFound)
						}
					}
					i++
				}
				if err := it.Err(); err != nil {
					t.Fatalf("iteration failed after %d entries: %v", i, err)
				}
				if len(seen) != n {
					t.Fatalf("yielded %d entries, want %d", len(seen), n)
				}
				got := contents(t, m)
				if len(got) != n-len(removed) {
					t.Fatalf("map has %d entries, want %d", len(got), n-len(removed))
				}
				for k := range removed {
					if _, ok := got[k]; ok {
						t.Fatalf("removed key %q still present", k)
					}
				}
			})
		}
	}
}

func TestIteratorRemoveSemantics(t *testing.T) {
	m := newMap(t)
	fill(t, m, 100)
	it := m.Strict()
	wantErr(t, it.Remove(), ErrNotFound) // not started
	wantErr(t, it.SetValue(nil), ErrNotFound)
	for it.Next() {
	}
	wantErr(t, it.Remove(), ErrNotFound) // finished

	snap, _ := m.Snapshot()
	defer snap.Close()
	sit := snap.Iter()
	sit.Next()
	wantErr(t, sit.Remove(), ErrInvalidArgument)
	wantErr(t, sit.SetValue(nil), ErrInvalidArgument)

	// Cursor Remove of a key someone else already deleted.
	cit := m.Cursor()
	cit.Next()
	m.Delete(cit.Key())
	wantErr(t, cit.Remove(), ErrNotFound)
}

// A strict Remove invalidates the other strict iterators of the map, and
// the Go side notices it before handing out the rest of a prefetched batch.
func TestStrictRemoveInvalidatesOthers(t *testing.T) {
	m := newMap(t)
	fill(t, m, 1000)
	a, b := m.Strict(), m.Strict()
	a.Next()
	b.Next()
	if err := a.Remove(); err != nil {
		t.Fatal(err)
	}
	if b.Next() {
		t.Fatal("b yielded an entry after another iterator removed one")
	}
	wantErr(t, b.Err(), ErrIterInvalidated)
	// a is still valid and yields the rest.
	cnt := 1
	for a.Next() {
		cnt++
	}
	if a.Err() != nil || cnt != 1000 {
		t.Fatal(a.Err(), cnt)
	}
}

// Every kind of structural change made behind a strict iterator's back is
// reported by the very next Next, even when entries are still buffered.
func TestStrictInvalidation(t *testing.T) {
	changes := []struct {
		name string
		do   func(m *Map) error
	}{
		{"insert", func(m *Map) error { _, err := m.Set([]byte("new"), nil); return err }},
		{"delete", func(m *Map) error { _, err := m.Delete(key(500)); return err }},
		{"clear", func(m *Map) error { return m.Clear() }},
		{"reserve", func(m *Map) error { return m.Reserve(10) }},
		{"shrink", func(m *Map) error { return m.ShrinkToFit() }},
		{"set many (new key)", func(m *Map) error {
			_, err := m.SetMany([][]byte{key(1), []byte("new")}, [][]byte{nil, nil})
			return err
		}},
		{"delete many", func(m *Map) error { _, err := m.DeleteMany([][]byte{key(3)}); return err }},
		{"delete func", func(m *Map) error {
			_, err := m.DeleteFunc(func(k, _ []byte) bool { return bytes.Equal(k, key(7)) })
			return err
		}},
		{"remove through a cursor iterator", func(m *Map) error {
			c := m.Cursor()
			c.Next()
			return c.Remove()
		}},
	}
	for _, bc := range batchConfigs {
		for _, c := range changes {
			t.Run(bc.name+"/"+c.name, func(t *testing.T) {
				m := newMap(t)
				fill(t, m, 1000)
				it := m.Strict(bc.opts...)
				for range 3 {
					if !it.Next() {
						t.Fatal(it.Err())
					}
				}
				if err := c.do(m); err != nil {
					t.Fatal(err)
				}
				if it.Next() {
					t.Fatalf("Next yielded %q after a structural change", it.Key())
				}
				wantErr(t, it.Err(), ErrIterInvalidated)
				wantErr(t, it.Remove(), ErrIterInvalidated)
				if _, err := it.Token(); !errors.Is(err, ErrIterInvalidated) {
					t.Logf("Token after invalidation: %v", err)
				}
			})
		}
	}
}

// Overwriting values is not structural: a strict iteration goes on and sees
// the new values, even for entries already fetched in the current batch.
func TestStrictSeesOverwrites(t *testing.T) {
	for _, bc := range batchConfigs {
		t.Run(bc.name, func(t *testing.T) {
			m := newMap(t)
			fill(t, m, 1000)
			it := m.Strict(bc.opts...)
			n := 0
			for k, v := range it.All() {
				switch {
				case n == 0:
					if strings.HasPrefix(string(v), "new") {
						t.Fatalf("%s: saw a new value before writing", k)
					}
					// Overwrite every key: every later entry must show "new-".
					for i := range 1000 {
						m.Set(key(i), []byte("new-"+string(key(i))))
					}
				case string(v) != "new-"+string(k):
					t.Fatalf("entry %d: %q has stale value %q", n, k, v)
				case n%2 == 0:
					// The iterator's own writes are fine too.
					if err := it.SetValue([]byte("mine")); err != nil {
						t.Fatal(err)
					}
					if string(it.Value()) != "mine" {
						t.Fatal("Value after SetValue")
					}
				}
				n++
			}
			if it.Err() != nil || n != 1000 {
				t.Fatal(it.Err(), n)
			}
			got := contents(t, m)
			mine := 0
			for _, v := range got {
				if v == "mine" {
					mine++
				}
			}
			if mine != 499 {
				t.Fatalf("%d values set through the iterator", mine)
			}
		})
	}
}

// Cursor iteration tolerates any modification: keys removed before the scan
// reaches them are not returned (even if already prefetched), keys present
// throughout are returned exactly once, inserted keys at most once.
func TestCursorUnderModification(t *testing.T) {
	for _, bc := range batchConfigs {
		t.Run(bc.name, func(t *testing.T) {
			const n = 2000
			m := newMap(t)
			fill(t, m, n)
			it := m.Cursor(bc.opts...)
			seen := map[string]int{}
			deletedAhead := map[string]bool{}
			step := 0
			for k := range it.Keys() {
				ks := string(k)
				seen[ks]++
				if deletedAhead[ks] {
					t.Fatalf("%q returned after it was deleted", ks)
				}
				switch step % 4 {
				case 0: // delete the current key
					m.Delete(k)
				case 1: // delete some other key (maybe ahead)
					var i int
					fmt.Sscanf(ks, "key-%d", &i)
					o := key((i*7 + 13) % n)
					if seen[string(o)] == 0 {
						if ok, _ := m.Delete(o); ok {
							deletedAhead[string(o)] = true
						}
					}
				case 2: // insert a new key
					m.Set([]byte(fmt.Sprint("new-", step)), nil)
				case 3: // update the value of another present key
					if ok, _ := m.Contains(key(step % n)); ok {
						m.Set(key(step%n), []byte("updated"))
					}
				}
				step++
			}
			if err := it.Err(); err != nil {
				t.Fatal(err)
			}
			for ks, c := range seen {
				if c > 1 {
					t.Fatalf("%q returned %d times", ks, c)
				}
			}
			for i := range n {
				ks := string(key(i))
				if !deletedAhead[ks] && seen[ks] != 1 {
					t.Fatalf("stable key %q returned %d times", ks, seen[ks])
				}
			}
		})
	}
}

// Cursor iterators see values written after their batch was fetched.
func TestCursorSeesNewValues(t *testing.T) {
	m := newMap(t)
	fill(t, m, 100)
	it := m.Cursor()
	it.Next()
	for i := range 100 {
		m.Set(key(i), []byte("v2"))
	}
	for it.Next() {
		if string(it.Value()) != "v2" {
			t.Fatalf("stale value %q for %q", it.Value(), it.Key())
		}
		if err := it.SetValue([]byte("v3")); err != nil {
			t.Fatal(err)
		}
	}
	if it.Err() != nil {
		t.Fatal(it.Err())
	}
	v3 := 0
	for _, v := range contents(t, m) {
		if v == "v3" {
			v3++
		}
	}
	if v3 != 99 {
		t.Fatalf("%d values set through a cursor iterator", v3)
	}
}

func TestTokenResume(t *testing.T) {
	const n = 1000
	m := newMap(t)
	fill(t, m, n)
	snap, _ := m.Snapshot()
	defer snap.Close()
	type src struct {
		name   string
		iter   func(opts ...IterOption) *Iterator
		resume func(Token, ...IterOption) *Iterator
	}
	srcs := []src{
		{"strict", m.Strict, m.Resume},
		{"cursor", m.Cursor, m.Resume},
		{"snapshot", snap.Iter, snap.Resume},
	}
	for _, s := range srcs {
		for _, bc := range batchConfigs {
			t.Run(s.name+"/"+bc.name, func(t *testing.T) {
				seen := map[string]int{}
				it := s.iter(bc.opts...)
				r := rand.New(rand.NewPCG(3, 4))
				pages := 0
				for {
					page := 1 + r.IntN(150)
					got := 0
					for got < page && it.Next() {
						seen[string(it.Key())]++
						got++
					}
					if err := it.Err(); err != nil {
						t.Fatal(err)
					}
					tok, err := it.Token()
					if err != nil {
						t.Fatal(err)
					}
					text, err := tok.MarshalText()
					if err != nil {
						t.Fatal(err)
					}
					var back Token
					if err := back.UnmarshalText(text); err != nil {
						t.Fatal(err)
					}
					if back != tok || back.Mode() != it.Mode() {
						t.Fatalf("token round trip: %v vs %v", back, tok)
					}
					it = s.resume(back, bc.opts...)
					pages++
					if got < page {
						if it.Next() {
							t.Fatal("resumed a finished iteration and got an entry")
						}
						break
					}
				}
				if len(seen) != n {
					t.Fatalf("%d distinct keys over %d pages", len(seen), pages)
				}
				for k, c := range seen {
					if c != 1 {
						t.Fatalf("%q seen %d times", k, c)
					}
				}
			})
		}
	}

	t.Run("pagination with page-size batches", func(t *testing.T) {
		const page = 64
		var tok Token
		it := m.Cursor(WithBatchEntries(page))
		total := 0
		for {
			got := 0
			for got < page && it.Next() {
				got++
			}
			total += got
			var err error
			if tok, err = it.Token(); err != nil {
				t.Fatal(err)
			}
			if got < page {
				break
			}
			it = m.Resume(tok, WithBatchEntries(page))
		}
		if total != n {
			t.Fatal(total)
		}
	})

	t.Run("strict token resumes invalidated after a change", func(t *testing.T) {
		it := m.Strict()
		it.Next()
		tok, err := it.Token()
		if err != nil {
			t.Fatal(err)
		}
		m.Set([]byte("structural"), nil)
		defer m.Delete([]byte("structural"))
		r := m.Resume(tok)
		if r.Next() {
			t.Fatal("stale strict token yielded")
		}
		wantErr(t, r.Err(), ErrIterInvalidated)
	})

	t.Run("strict token after Remove", func(t *testing.T) {
		m := newMap(t)
		fill(t, m, 300)
		it := m.Strict()
		seen := map[string]bool{}
		for range 50 {
			it.Next()
			seen[string(it.Key())] = true
		}
		if err := it.Remove(); err != nil {
			t.Fatal(err)
		}
		tok, err := it.Token()
		if err != nil {
			t.Fatal(err)
		}
		r := m.Resume(tok)
		for r.Next() {
			if seen[string(r.Key())] {
				t.Fatalf("%q again", r.Key())
			}
			seen[string(r.Key())] = true
		}
		if r.Err() != nil || len(seen) != 300 {
			t.Fatal(r.Err(), len(seen))
		}
	})
}

// Tokens taken in the middle of a cursor batch while other goroutines
// insert and delete keys: stable keys are returned exactly once over all
// the resumed pages, and no key is ever returned twice.
func TestCursorTokensUnderConcurrentChanges(t *testing.T) {
	const stable = 3000
	m := newMap(t)
	fill(t, m, stable)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var churn atomic.Int64
	for g := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(g), 9))
			for {
				select {
				case <-stop:
					return
				default:
				}
				k := []byte(fmt.Sprintf("volatile-%d-%d", g, r.IntN(500)))
				if r.IntN(2) == 0 {
					m.Set(k, []byte("x"))
				} else {
					m.Delete(k)
				}
				churn.Add(1)
			}
		}()
	}
	defer func() { close(stop); wg.Wait() }()
	for round := range 3 {
		seen := map[string]int{}
		r := rand.New(rand.NewPCG(uint64(round), 1))
		it := m.Cursor()
		for done := false; !done; {
			page := 1 + r.IntN(200)
			got := 0
			for got < page && it.Next() {
				seen[string(it.Key())]++
				got++
			}
			if err := it.Err(); err != nil {
				t.Fatal(err)
			}
			done = got < page
			tok, err := it.Token()
			if err != nil {
				t.Fatal(err)
			}
			text, _ := tok.MarshalText()
			var back Token
			if err := back.UnmarshalText(text); err != nil {
				t.Fatal(err)
			}
			it = m.Resume(back)
		}
		for k, c := range seen {
			if c != 1 {
				t.Fatalf("round %d: %q returned %d times", round, k, c)
			}
		}
		for i := range stable {
			if seen[string(key(i))] != 1 {
				t.Fatalf("round %d: stable key %d returned %d times", round, i, seen[string(key(i))])
			}
		}
	}
	t.Logf("%d concurrent changes", churn.Load())
}

func TestContextCancellation(t *testing.T) {
	m := newMap(t)
	fill(t, m, 1000)
	ctx, cancel := context.WithCancel(context.Background())
	n := 0
	err := m.Scan(ctx, func(k, v []byte) error {
		n++
		if n == 10 {
			cancel()
		}
		return nil
	})
	if !errors.Is(err, context.Canceled) || n != 10 {
		t.Fatalf("Scan = %v after %d entries", err, n)
	}
	// fn's error is returned as is.
	boom := errors.New("boom")
	if err := m.Scan(context.Background(), func(k, v []byte) error { return boom }); err != boom {
		t.Fatal(err)
	}
	// A complete scan returns nil.
	n = 0
	if err := m.Scan(context.Background(), func(k, v []byte) error { n++; return nil }); err != nil || n != 1000 {
		t.Fatal(err, n)
	}
	// Iterator option; the token still resumes where it stopped.
	ctx, cancel = context.WithCancel(context.Background())
	it := m.Strict(WithContext(ctx))
	for range 5 {
		it.Next()
	}
	cancel()
	if it.Next() {
		t.Fatal("Next after cancel")
	}
	wantErr(t, it.Err(), context.Canceled)
	tok, err := it.Token()
	if err != nil {
		t.Fatal(err)
	}
	rest := 0
	for range m.Resume(tok).All() {
		rest++
	}
	if rest != 995 {
		t.Fatal(rest)
	}
	// Snapshot scan.
	snap, _ := m.Snapshot()
	defer snap.Close()
	ctx, cancel = context.WithCancel(context.Background())
	cancel()
	if err := snap.Scan(ctx, func(k, v []byte) error { return nil }); !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
}

// Many keys sharing a hash (the library's weak test hash): ties must not
// break exactly-once iteration, strict Remove, or tokens.
func TestWeakHashTies(t *testing.T) {
	m := newMap(t, withWeakHashForTesting())
	const n = 400
	fill(t, m, n)
	for _, bc := range batchConfigs {
		checkAll(t, iterate(t, m.Strict(bc.opts...)), n)
	}
	// Pagination with mid-batch tokens.
	seen := map[string]int{}
	it := m.Cursor()
	for {
		got := 0
		for got < 37 && it.Next() {
			seen[string(it.Key())]++
			got++
		}
		tok, err := it.Token()
		if err != nil {
			t.Fatal(err)
		}
		if got < 37 {
			break
		}
		it = m.Resume(tok)
	}
	if len(seen) != n {
		t.Fatal(len(seen))
	}
	for k, c := range seen {
		if c != 1 {
			t.Fatal(k, c)
		}
	}
	// Strict remove of every third entry.
	it = m.Strict(WithBatchEntries(10))
	i, removed := 0, 0
	for it.Next() {
		if i%3 == 0 {
			if err := it.Remove(); err != nil {
				t.Fatal(err)
			}
			removed++
		}
		i++
	}
	if it.Err() != nil || i != n || mustLen(t, m) != n-removed {
		t.Fatal(it.Err(), i, mustLen(t, m))
	}
}

func TestSnapshots(t *testing.T) {
	m := newMap(t)
	fill(t, m, 1000)
	snap, err := m.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	defer snap.Close()
	// Change the map a lot.
	for i := range 500 {
		m.Delete(key(i))
		m.Set(key(i+1000), val(i+1000))
		m.Set(key(999), []byte("changed"))
	}
	if n, _ := snap.Len(); n != 1000 {
		t.Fatal(n)
	}
	if v, err := snap.Get(key(0)); err != nil || string(v) != string(val(0)) {
		t.Fatal(v, err)
	}
	if v, err := snap.GetString(string(key(999))); err != nil || v != string(val(999)) {
		t.Fatal(v, err)
	}
	if v, err := snap.AppendValue(nil, key(5)); err != nil || string(v) != string(val(5)) {
		t.Fatal(v, err)
	}
	if ok, _ := snap.Contains(key(1200)); ok {
		t.Fatal("snapshot sees a later insert")
	}
	_, err = snap.Get(key(1200))
	wantErr(t, err, ErrNotFound)
	checkAll(t, iterate(t, snap.Iter()), 1000)
	// Iterating the snapshot while writers go on.
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 2000 {
			m.Set(key(i), []byte("w"))
		}
	}()
	checkAll(t, iterate(t, snap.Iter(WithBatchEntries(3))), 1000)
	<-done
	// The snapshot outlives its map.
	m.Close()
	checkAll(t, iterate(t, snap.Iter()), 1000)
	if err := snap.Close(); err != nil {
		t.Fatal(err)
	}
	if err := snap.Close(); err != nil {
		t.Fatal("second Close:", err)
	}
}

// Each branch of the cursor re-positioning behind Token (seekCursor), made
// deterministic by changing the map between a batch fetch and Token.
func TestCursorTokenSeekBranches(t *testing.T) {
	cases := []struct {
		name   string
		change func(m *Map, it *Iterator, i int) // i: index of the current entry in the batch
	}{
		{"nothing changed", func(*Map, *Iterator, int) {}},
		{"current key deleted", func(m *Map, it *Iterator, i int) { m.Delete(it.keyAt(i)) }},
		{"current and all later batch keys deleted", func(m *Map, it *Iterator, i int) {
			for j := i; j < len(it.ents); j++ {
				m.Delete(it.keyAt(j))
			}
		}},
		{"first batch keys deleted", func(m *Map, it *Iterator, i int) {
			for j := range i {
				m.Delete(it.keyAt(j))
			}
		}},
		{"many keys inserted", func(m *Map, it *Iterator, i int) {
			for j := range 3000 {
				m.Set([]byte(fmt.Sprint("inserted-", j)), nil)
			}
		}},
		{"inserted and current deleted", func(m *Map, it *Iterator, i int) {
			for j := range 3000 {
				m.Set([]byte(fmt.Sprint("inserted-", j)), nil)
			}
			m.Delete(it.keyAt(i))
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			const n = 2000
			m := newMap(t)
			fill(t, m, n)
			it := m.Cursor(WithBatchEntries(100))
			yielded := map[string]bool{}
			for range 130 { // the second batch, entry 30
				it.Next()
				yielded[string(it.Key())] = true
			}
			i := it.cur
			if i != 29 || len(it.ents) != 100 {
				t.Fatalf("cur %d, batch of %d", i, len(it.ents))
			}
			c.change(m, it, i)
			tok, err := it.Token()
			if err != nil {
				t.Fatal(err)
			}
			for k := range m.Resume(tok).Keys() {
				ks := string(k)
				if yielded[ks] {
					t.Fatalf("%q returned again after resuming", ks)
				}
				yielded[ks] = true
			}
			for j := range n {
				ks := string(key(j))
				if ok, _ := m.Contains(key(j)); ok && !yielded[ks] {
					t.Fatalf("%q, present throughout, never returned", ks)
				}
			}
		})
	}
}

// A strict iterator is stamped when it is created, not at its first Next:
// a structural change in between invalidates it; a cursor made at the
// same time is unaffected.
func TestStrictStampedAtCreation(t *testing.T) {
	m := newMap(t)
	fill(t, m, 10)
	strict, cursor := m.Strict(), m.Cursor()
	if _, err := m.Set([]byte("new"), []byte("v")); err != nil {
		t.Fatal(err)
	}
	if strict.Next() {
		t.Fatal("strict iterator created before an insert yielded an entry")
	}
	wantErr(t, strict.Err(), ErrIterInvalidated)
	n := 0
	for ; cursor.Next(); n++ {
	}
	if cursor.Err() != nil || n < 10 {
		t.Fatalf("cursor: %d entries, %v", n, cursor.Err())
	}
}
