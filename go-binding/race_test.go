package mapcore

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Many goroutines doing every kind of operation at once, with iterations in
// all modes, snapshots, tokens, and a Close at the end while the others are
// still running. Run under -race. "stable" keys are never written after the
// fill, so every complete cursor scan must return each of them exactly once
// and every snapshot must hold them with their values.
func TestConcurrentMixedOperations(t *testing.T) {
	dur := 1500 * time.Millisecond
	if testing.Short() {
		dur = 300 * time.Millisecond
	}
	const stable, volatile = 1000, 1000
	m, err := New()
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	for i := range stable {
		m.SetString(fmt.Sprint("stable-", i), fmt.Sprint("sv-", i))
	}
	vkey := func(r *rand.Rand) []byte { return []byte(fmt.Sprint("vol-", r.IntN(volatile))) }
	var closed atomic.Bool
	var ops, scans, invalidated atomic.Int64
	errs := make(chan error, 100)
	report := func(err error) {
		if err == nil {
			return
		}
		if closed.Load() && errors.Is(err, ErrClosed) {
			return
		}
		select {
		case errs <- err:
		default:
		}
	}
	checkStable := func(what string, seen map[string]int) {
		for i := range stable {
			if c := seen[fmt.Sprint("stable-", i)]; c != 1 {
				report(fmt.Errorf("%s: stable-%d returned %d times", what, i, c))
				return
			}
		}
	}
	deadline := time.Now().Add(dur)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(g), 77))
			for time.Now().Before(deadline) || (g == 0 && !closed.Load()) {
				ops.Add(1)
				switch op := r.IntN(100); {
				case op < 25:
					_, err := m.Set(vkey(r), []byte(fmt.Sprint("x", r.IntN(1000))))
					report(err)
				case op < 45:
					_, err := m.Get(vkey(r))
					if !errors.Is(err, ErrNotFound) {
						report(err)
					}
					v, err := m.GetString(fmt.Sprint("stable-", r.IntN(stable)))
					report(err)
					if err == nil && v[:3] != "sv-" {
						report(fmt.Errorf("stable value %q", v))
					}
				case op < 55:
					_, err := m.Delete(vkey(r))
					report(err)
				case op < 60:
					ks := [][]byte{vkey(r), vkey(r), vkey(r)}
					_, err := m.SetMany(ks, [][]byte{nil, []byte("a"), []byte("bb")})
					report(err)
					_, err = m.GetMany(ks)
					report(err)
					_, err = m.DeleteMany(ks[:1])
					report(err)
				case op < 62:
					_, err := m.DeleteFunc(func(k, _ []byte) bool { return len(k) > 4 && k[0] == 'v' && k[len(k)-1] == '7' })
					report(err)
				case op < 70: // strict iteration with removes of volatile keys
					it := m.Strict(WithBatchEntries(1 + r.IntN(300)))
					seen := map[string]int{}
					for it.Next() {
						seen[string(it.Key())]++
						if it.Key()[0] == 'v' && r.IntN(4) == 0 {
							if err := it.Remove(); err != nil && !errors.Is(err, ErrIterInvalidated) {
								report(err)
							}
						}
					}
					switch err := it.Err(); {
					case err == nil:
						checkStable("strict", seen)
					case errors.Is(err, ErrIterInvalidated):
						invalidated.Add(1)
					default:
						report(err)
					}
					scans.Add(1)
				case op < 80: // cursor scan, paginated through tokens
					seen := map[string]int{}
					it := m.Cursor()
					for {
						n := 0
						for n < 500 && it.Next() {
							seen[string(it.Key())]++
							n++
						}
						if it.Err() != nil {
							report(it.Err())
							break
						}
						if n < 500 {
							checkStable("cursor", seen)
							break
						}
						tok, err := it.Token()
						if err != nil {
							report(err)
							break
						}
						it = m.Resume(tok)
					}
					for k, c := range seen {
						if c > 1 {
							report(fmt.Errorf("cursor returned %q %d times", k, c))
						}
					}
					scans.Add(1)
				case op < 88: // snapshot: consistent and complete
					s, err := m.Snapshot()
					if err != nil {
						report(err)
						continue
					}
					n, err := s.Len()
					report(err)
					seen := map[string]int{}
					for k, v := range s.All() {
						seen[string(k)]++
						if k[0] == 's' && string(v) != "sv-"+string(k[7:]) {
							report(fmt.Errorf("snapshot value %q=%q", k, v))
						}
					}
					if err == nil && len(seen) != n {
						report(fmt.Errorf("snapshot Len %d but iteration gave %d", n, len(seen)))
					}
					checkStable("snapshot", seen)
					report(s.Close())
				case op < 90:
					_, err := m.Len()
					report(err)
				default:
					it := m.Cursor(WithNoCopy())
					for it.Next() {
						if it.Key()[0] == 'v' && r.IntN(3) == 0 {
							if err := it.SetValue([]byte("sv")); !errors.Is(err, ErrNotFound) {
								report(err) // NotFound: removed concurrently
							}
						}
					}
					report(it.Err())
				}
				if g == 0 && time.Now().After(deadline) {
					closed.Store(true)
					report(m.Close())
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	t.Logf("%d operations, %d scans (%d strict ones invalidated)", ops.Load(), scans.Load(), invalidated.Load())
}
