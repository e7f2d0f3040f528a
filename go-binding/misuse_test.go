package mapcore

import (
	"context"
	"errors"
	"reflect"
	"runtime"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// Every method of a closed Map, Snapshot and Iterator fails with ErrClosed
// (Close itself is idempotent). The reflection check keeps the tables
// complete when methods are added.
func TestUseAfterClose(t *testing.T) {
	k := []byte("k")
	ctx := context.Background()
	mapCalls := map[string]func(m *Map) error{
		"Get":            func(m *Map) error { _, err := m.Get(k); return err },
		"GetString":      func(m *Map) error { _, err := m.GetString("k"); return err },
		"Lookup":         func(m *Map) error { _, _, err := m.Lookup(k); return err },
		"AppendValue":    func(m *Map) error { _, err := m.AppendValue(nil, k); return err },
		"Set":            func(m *Map) error { _, err := m.Set(k, k); return err },
		"SetString":      func(m *Map) error { _, err := m.SetString("k", "v"); return err },
		"Delete":         func(m *Map) error { _, err := m.Delete(k); return err },
		"DeleteString":   func(m *Map) error { _, err := m.DeleteString("k"); return err },
		"Contains":       func(m *Map) error { _, err := m.Contains(k); return err },
		"ContainsString": func(m *Map) error { _, err := m.ContainsString("k"); return err },
		"Len":            func(m *Map) error { _, err := m.Len(); return err },
		"Clear":          func(m *Map) error { return m.Clear() },
		"Reserve":        func(m *Map) error { return m.Reserve(1) },
		"ShrinkToFit":    func(m *Map) error { return m.ShrinkToFit() },
		"GetMany":        func(m *Map) error { _, err := m.GetMany([][]byte{k}); return err },
		"AppendMany":     func(m *Map) error { _, err := m.AppendMany(nil, make([][]byte, 1), [][]byte{k}); return err },
		"SetMany":        func(m *Map) error { _, err := m.SetMany([][]byte{k}, [][]byte{k}); return err },
		"DeleteMany":     func(m *Map) error { _, err := m.DeleteMany([][]byte{k}); return err },
		"DeleteFunc":     func(m *Map) error { _, err := m.DeleteFunc(func(_, _ []byte) bool { return true }); return err },
		"Snapshot":       func(m *Map) error { _, err := m.Snapshot(); return err },
		"Iter":           func(m *Map) error { return m.Iter(ModeStrict).Err() },
		"Strict":         func(m *Map) error { return m.Strict().Err() },
		"Cursor":         func(m *Map) error { return m.Cursor().Err() },
		"Resume": func(m *Map) error {
			return m.Resume(Token{mode: ModeCursor, text: "mc1" + strings.Repeat("A", 64)}).Err()
		},
		"Scan": func(m *Map) error { return m.Scan(ctx, func(_, _ []byte) error { return nil }) },
		"All": func(m *Map) error {
			for range m.All() {
				return errors.New("yielded")
			}
			return ErrClosed // All cannot report errors: it yields nothing
		},
		"Keys": func(m *Map) error {
			for range m.Keys() {
				return errors.New("yielded")
			}
			return ErrClosed
		},
	}
	notApplicable := map[string]bool{"Close": true, "Handle": true}
	checkCovered(t, reflect.TypeOf(&Map{}), mapCalls, notApplicable)

	for name, call := range mapCalls {
		t.Run("Map."+name, func(t *testing.T) {
			m, err := New()
			if err != nil {
				t.Fatal(err)
			}
			m.SetString("k", "v")
			if err := m.Close(); err != nil {
				t.Fatal(err)
			}
			wantErr(t, call(m), ErrClosed)
			// The zero Map behaves as a closed one.
			wantErr(t, call(&Map{}), ErrClosed)
		})
	}

	snapCalls := map[string]func(s *Snapshot) error{
		"Get":         func(s *Snapshot) error { _, err := s.Get(k); return err },
		"GetString":   func(s *Snapshot) error { _, err := s.GetString("k"); return err },
		"AppendValue": func(s *Snapshot) error { _, err := s.AppendValue(nil, k); return err },
		"Contains":    func(s *Snapshot) error { _, err := s.Contains(k); return err },
		"Len":         func(s *Snapshot) error { _, err := s.Len(); return err },
		"Iter":        func(s *Snapshot) error { return s.Iter().Err() },
		"Resume": func(s *Snapshot) error {
			return s.Resume(Token{mode: ModeCursor, text: "mc1" + strings.Repeat("A", 64)}).Err()
		},
		"Scan": func(s *Snapshot) error { return s.Scan(ctx, func(_, _ []byte) error { return nil }) },
		"All": func(s *Snapshot) error {
			for range s.All() {
				return errors.New("yielded")
			}
			return ErrClosed
		},
		"Keys": func(s *Snapshot) error {
			for range s.Keys() {
				return errors.New("yielded")
			}
			return ErrClosed
		},
	}
	checkCovered(t, reflect.TypeOf(&Snapshot{}), snapCalls, map[string]bool{"Close": true})
	for name, call := range snapCalls {
		t.Run("Snapshot."+name, func(t *testing.T) {
			m := newMap(t)
			m.SetString("k", "v")
			s, err := m.Snapshot()
			if err != nil {
				t.Fatal(err)
			}
			s.Close()
			wantErr(t, call(s), ErrClosed)
			wantErr(t, call(&Snapshot{}), ErrClosed)
		})
	}

	// Iterators of a map closed in the middle of the iteration.
	iterCalls := map[string]func(it *Iterator) error{
		"Next": func(it *Iterator) error {
			if it.Next() {
				return errors.New("yielded")
			}
			return it.Err()
		},
		"Err":      func(it *Iterator) error { it.Next(); return it.Err() },
		"Remove":   func(it *Iterator) error { return it.Remove() },
		"SetValue": func(it *Iterator) error { return it.SetValue(nil) },
		"Token":    func(it *Iterator) error { _, err := it.Token(); return err },
		"All": func(it *Iterator) error {
			for range it.All() {
				return errors.New("yielded")
			}
			return it.Err()
		},
		"Keys": func(it *Iterator) error {
			for range it.Keys() {
				return errors.New("yielded")
			}
			return it.Err()
		},
	}
	checkCovered(t, reflect.TypeOf(&Iterator{}), iterCalls, map[string]bool{"Key": true, "Value": true, "Mode": true})
	for name, call := range iterCalls {
		for _, mode := range []Mode{ModeStrict, ModeCursor} {
			t.Run("Iterator."+name+"/"+mode.String(), func(t *testing.T) {
				m, _ := New()
				fill(t, m, 100)
				it := m.Iter(mode)
				it.Next()
				m.Close()
				wantErr(t, call(it), ErrClosed)
			})
		}
		t.Run("Iterator."+name+"/snapshot", func(t *testing.T) {
			m := newMap(t)
			fill(t, m, 100)
			s, _ := m.Snapshot()
			it := s.Iter()
			it.Next()
			s.Close()
			err := call(it)
			if name == "Remove" || name == "SetValue" {
				wantErr(t, err, ErrInvalidArgument) // read-only wins
				return
			}
			wantErr(t, err, ErrClosed)
		})
	}
}

func checkCovered[F any](t *testing.T, typ reflect.Type, calls map[string]F, skip map[string]bool) {
	t.Helper()
	var missing []string
	for i := range typ.NumMethod() {
		name := typ.Method(i).Name
		if _, ok := calls[name]; !ok && !skip[name] {
			missing = append(missing, name)
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("%v: methods without a use-after-close test: %v", typ, missing)
	}
}

func TestCloseIdempotentAndConcurrent(t *testing.T) {
	m, _ := New()
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Fatal("second Close:", err)
	}
	wantErr(t, (&Map{}).Close(), ErrClosed)
	// A nil Map, as a failed New returns, and a nil or zero Snapshot.
	var nilMap *Map
	wantErr(t, nilMap.Close(), ErrClosed)
	var nilSnap *Snapshot
	wantErr(t, nilSnap.Close(), ErrClosed)
	wantErr(t, (&Snapshot{}).Close(), ErrClosed)

	// Close while other goroutines hammer the map: every call either works
	// or fails with ErrClosed; nothing crashes.
	for round := range 5 {
		m, _ := New()
		fill(t, m, 500)
		var wg sync.WaitGroup
		errs := make(chan error, 64)
		start := make(chan struct{})
		for g := range 6 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				for i := 0; ; i++ {
					var err error
					switch (g + i) % 6 {
					case 0:
						_, err = m.Get(key(i % 500))
						if errors.Is(err, ErrNotFound) {
							err = nil
						}
					case 1:
						_, err = m.Set(key(i%700), nil)
					case 2:
						_, err = m.Delete(key(i % 700))
					case 3:
						it := m.Cursor()
						for it.Next() {
						}
						err = it.Err()
					case 4:
						var s *Snapshot
						if s, err = m.Snapshot(); err == nil {
							_, err = s.Len()
							s.Close()
						}
					case 5:
						_, err = m.GetMany([][]byte{key(1), key(2)})
					}
					if err != nil {
						if !errors.Is(err, ErrClosed) {
							errs <- err
						}
						return
					}
				}
			}()
		}
		close(start)
		time.Sleep(time.Duration(round+1) * time.Millisecond)
		var cwg sync.WaitGroup
		for range 3 { // several concurrent Close calls
			cwg.Add(1)
			go func() { defer cwg.Done(); m.Close() }()
		}
		cwg.Wait()
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Errorf("round %d: %v", round, err)
		}
	}
}

func TestBadTokens(t *testing.T) {
	m := newMap(t)
	fill(t, m, 100)
	it := m.Cursor()
	it.Next()
	tok, err := it.Token()
	if err != nil {
		t.Fatal(err)
	}
	good, _ := tok.MarshalText()

	bad := []string{
		"garbage",
		"c.mc1.tag",
		string(good[:len(good)-1]),
		string(good) + "x",
		"s" + string(good[1:]), // mode letter changed: the tag no longer matches
		"x" + string(good[1:]),
		strings.Replace(string(good), ".", "", 1),
	}
	// Every single-character change is detected.
	for i := range good {
		if good[i] == '.' {
			continue
		}
		b := []byte(string(good))
		if b[i] == 'A' {
			b[i] = 'B'
		} else {
			b[i] = 'A'
		}
		bad = append(bad, string(b))
	}
	for _, s := range bad {
		var tk Token
		wantErr(t, tk.UnmarshalText([]byte(s)), ErrBadToken)
		if !tk.IsZero() {
			t.Fatal("failed UnmarshalText changed the token")
		}
	}
	// A failed UnmarshalText leaves a real token unchanged.
	kept := tok
	wantErr(t, kept.UnmarshalText([]byte("garbage")), ErrBadToken)
	if kept != tok {
		t.Fatal("failed UnmarshalText changed the token")
	}
	// A token whose Go wrapper is intact but whose library text is forged
	// (only possible from inside the package) is caught by the library:
	// here the MAC part at the end is changed.
	forged := Token{mode: ModeCursor, text: tok.text[:60] + flip(tok.text[60:61]) + tok.text[61:]}
	wantErr(t, m.Resume(forged).Err(), ErrBadToken)
	wantErr(t, m.Resume(Token{mode: ModeCursor, text: "nonsense"}).Err(), ErrBadToken)
}

func TestWrongMapTokens(t *testing.T) {
	m1 := newMap(t)
	m2 := newMap(t)
	fill(t, m1, 10)
	fill(t, m2, 10)
	it := m1.Strict()
	it.Next()
	tok, err := it.Token()
	if err != nil {
		t.Fatal(err)
	}
	wantErr(t, m2.Resume(tok).Err(), ErrWrongMap)
	s, _ := m1.Snapshot()
	defer s.Close()
	wantErr(t, s.Resume(tok).Err(), ErrWrongMap)
	sit := s.Iter()
	sit.Next()
	stok, err := sit.Token()
	if err != nil {
		t.Fatal(err)
	}
	wantErr(t, m1.Resume(stok).Err(), ErrWrongMap)
	// The token of a closed map, resumed on a new map.
	m1.Close()
	m3 := newMap(t)
	wantErr(t, m3.Resume(tok).Err(), ErrWrongMap)
}

func TestTooLargeAndInvalid(t *testing.T) {
	m := newMap(t)
	huge := make([]byte, MaxKeyLen+1)
	_, err := m.Set(huge, nil)
	wantErr(t, err, ErrTooLarge)
	_, err = m.SetString(string(huge), "")
	wantErr(t, err, ErrTooLarge)
	_, err = m.SetMany([][]byte{[]byte("ok"), huge}, [][]byte{nil, nil})
	wantErr(t, err, ErrTooLarge)
	if n := mustLen(t, m); n != 0 {
		t.Fatalf("a failed SetMany stored %d entries", n)
	}
	// A value over the limit is refused before anything is packed (the
	// slice is never touched, so its gigabyte is never resident).
	hugeVal := make([]byte, MaxValueLen+1)
	_, err = m.SetMany([][]byte{[]byte("ok"), []byte("k")}, [][]byte{nil, hugeVal})
	wantErr(t, err, ErrTooLarge)
	if n := mustLen(t, m); n != 0 {
		t.Fatalf("a failed SetMany stored %d entries", n)
	}
	// Lookups of an over-long key simply do not find it.
	if ok, err := m.Contains(huge); ok || err != nil {
		t.Fatal(ok, err)
	}
	wantErr(t, m.Reserve(1<<40), ErrTooLarge)
	_, err = New(WithCapacity(1 << 40))
	wantErr(t, err, ErrTooLarge)
	// Just past the documented limit: refused before anything is allocated.
	wantErr(t, m.Reserve(MaxCapacity+1), ErrTooLarge)
	_, err = New(WithCapacity(MaxCapacity + 1))
	wantErr(t, err, ErrTooLarge)
	// Invalid arguments.
	wantErr(t, m.Iter(Mode(7)).Err(), ErrInvalidArgument)
	wantErr(t, m.Strict(WithBatchEntries(0)).Err(), ErrInvalidArgument)
	wantErr(t, m.Strict(WithBatchBytes(-1)).Err(), ErrInvalidArgument)
	// Mode(7) also shows in the Mode's String.
	if Mode(7).String() != "Mode(7)" || ModeStrict.String() != "strict" {
		t.Fatal(Mode(7).String())
	}
}

// A map that is never closed is freed by its cleanup once unreachable; so is
// a snapshot; an iterator keeps its map alive.
func TestCleanupFreesForgottenMaps(t *testing.T) {
	waitFor := func(cond func() bool) bool {
		for range 200 {
			if cond() {
				return true
			}
			runtime.GC()
			time.Sleep(5 * time.Millisecond)
		}
		return false
	}
	ids := func() (uint64, uint64) {
		m, err := New()
		if err != nil {
			t.Fatal(err)
		}
		m.SetString("k", "v")
		s, err := m.Snapshot()
		if err != nil {
			t.Fatal(err)
		}
		return m.Handle(), s.id
	}
	mid, sid := ids()
	if !waitFor(func() bool { return !handleLive(kindMap, mid) && !handleLive(kindSnap, sid) }) {
		t.Fatalf("forgotten map (live=%v) or snapshot (live=%v) not freed", handleLive(kindMap, mid), handleLive(kindSnap, sid))
	}

	// Counters: create many, forget them, they all go.
	before := liveMaps.Load()
	for range 50 {
		m, _ := New()
		m.SetString("x", "y")
	}
	if !waitFor(func() bool { return liveMaps.Load() <= before }) {
		t.Fatalf("live maps %d, was %d", liveMaps.Load(), before)
	}

	// An iterator keeps its map alive.
	it := func() *Iterator {
		m, _ := New()
		fill(t, m, 300)
		return m.Strict(WithBatchEntries(10))
	}()
	for range 3 {
		runtime.GC()
	}
	n := 0
	for it.Next() {
		n++
	}
	if it.Err() != nil || n != 300 {
		t.Fatal(it.Err(), n)
	}
	// An iterator holding a batch makes the library count changes (it
	// registers with mc_map_watch); abandoned, its cleanup unregisters it,
	// and writes no longer move the count.
	m := newMap(t)
	fill(t, m, 100)
	counted := func() bool {
		before := m.changes()
		if _, err := m.SetString("k", "v"); err != nil {
			t.Fatal(err)
		}
		return m.changes() != before
	}
	func() {
		it := m.Cursor()
		it.Next()
		if !counted() {
			t.Fatal("a write was not counted while an iterator holds a batch")
		}
	}()
	if !waitFor(func() bool { return !counted() }) {
		t.Fatal("abandoned iterator still registered")
	}
	// Range loops unregister when they end, including by break.
	for range m.All() {
		break
	}
	if counted() {
		t.Fatal("range loop left a registration")
	}
}

func flip(c string) string {
	if c == "A" {
		return "B"
	}
	return "A"
}

// Invalid iterator options fail the iterator where they are given: Err
// reports them before any Next, Next never yields, Token fails alike.
func TestInvalidIterOptions(t *testing.T) {
	m := newMap(t)
	fill(t, m, 10)
	s, err := m.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// Tokens after the first entry of the map and of the snapshot.
	var toks [2]Token
	for i, it := range []*Iterator{m.Cursor(), s.Iter()} {
		it.Next()
		if toks[i], err = it.Token(); err != nil {
			t.Fatal(err)
		}
	}
	for _, opt := range []struct {
		name string
		o    IterOption
	}{
		{"WithBatchEntries(0)", WithBatchEntries(0)},
		{"WithBatchEntries(-1)", WithBatchEntries(-1)},
		{"WithBatchBytes(0)", WithBatchBytes(0)},
		{"WithBatchBytes(-5)", WithBatchBytes(-5)},
	} {
		for name, mk := range map[string]func(...IterOption) *Iterator{
			"Map.Strict":      m.Strict,
			"Map.Cursor":      m.Cursor,
			"Map.Iter":        func(o ...IterOption) *Iterator { return m.Iter(ModeStrict, o...) },
			"Map.Resume":      func(o ...IterOption) *Iterator { return m.Resume(toks[0], o...) },
			"Snapshot.Iter":   s.Iter,
			"Snapshot.Resume": func(o ...IterOption) *Iterator { return s.Resume(toks[1], o...) },
		} {
			it := mk(WithNoCopy(), opt.o)
			if err := it.Err(); !errors.Is(err, ErrInvalidArgument) {
				t.Fatalf("%s(%s).Err() before Next = %v, want ErrInvalidArgument", name, opt.name, err)
			}
			if it.Next() || it.Next() {
				t.Fatalf("%s(%s).Next() = true", name, opt.name)
			}
			wantErr(t, it.Err(), ErrInvalidArgument)
			_, err := it.Token()
			wantErr(t, err, ErrInvalidArgument)
			// The same constructor with valid options walks everything.
			n := 0
			for it := mk(WithBatchEntries(1), WithBatchBytes(1)); it.Next(); n++ {
			}
			want := 10
			if strings.HasSuffix(name, "Resume") {
				want = 9
			}
			if n != want {
				t.Fatalf("%s with valid options: %d entries, want %d", name, n, want)
			}
		}
	}
}
