package mapcore

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

// A write's effect is visible to other goroutines as soon as the library
// has applied it, before the Go call returns: here a DeleteFunc deletes
// slowly in one goroutine while this one, holding an iterator with the
// whole map in its batch, waits until a Get sees a key gone. From then on
// the iterator must not contradict that Get: a strict one fails at its very
// next Next, a cursor one never returns the key.
func TestIteratorSeesWritesStillInProgress(t *testing.T) {
	for _, mode := range []Mode{ModeStrict, ModeCursor} {
		t.Run(mode.String(), func(t *testing.T) {
			m, err := New()
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			const n = 100 // one batch holds them all
			key := func(i int) string { return fmt.Sprintf("k%03d", i) }
			for i := range n {
				m.SetString(key(i), "v")
			}
			it := m.Iter(mode)
			if !it.Next() {
				t.Fatal("no first entry:", it.Err())
			}
			first := string(it.Key())

			var wg sync.WaitGroup
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := m.DeleteFunc(func(k, v []byte) bool {
					time.Sleep(time.Millisecond)
					return true
				}); err != nil {
					t.Error(err)
				}
			}()
			gone := ""
			for deadline := time.Now().Add(time.Minute); gone == "" && time.Now().Before(deadline); {
				for i := range n {
					if k := key(i); k != first {
						if _, err := m.GetString(k); errors.Is(err, ErrNotFound) {
							gone = k
							break
						}
					}
				}
			}
			if gone == "" {
				t.Fatal("no deletion seen in a minute")
			}
			returned, returnedGone := 0, false
			for it.Next() {
				returned++
				returnedGone = returnedGone || string(it.Key()) == gone
			}
			wg.Wait()
			switch mode {
			case ModeStrict:
				if returned != 0 || !errors.Is(it.Err(), ErrIterInvalidated) {
					t.Errorf("after %s was seen deleted: %d more entries, then %v; want ErrIterInvalidated at once", gone, returned, it.Err())
				}
			case ModeCursor:
				if returnedGone || it.Err() != nil {
					t.Errorf("returned %s (seen deleted before the cursor reached it): %v; error %v", gone, returnedGone, it.Err())
				}
			}
		})
	}
}

// Inside a DeleteFunc callback every call into the same map is refused,
// and so is an iterator's Next that would return an entry from its batch:
// the write in progress may have deleted it already.
func TestBufferedNextInsideDeleteFuncIsReentrant(t *testing.T) {
	m, err := New()
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	for i := range 50 {
		m.SetString(fmt.Sprint("k", i), "v")
	}
	it := m.Strict()
	if !it.Next() {
		t.Fatal(it.Err())
	}
	calls := 0
	if _, err := m.DeleteFunc(func(k, v []byte) bool {
		if calls++; calls == 10 && it.Next() {
			t.Errorf("Next returned %q inside the callback", it.Key())
		}
		return true
	}); err != nil {
		t.Fatal(err)
	}
	if !errors.Is(it.Err(), ErrReentrant) {
		t.Errorf("Err() = %v, want ErrReentrant", it.Err())
	}
}

// An Iterator no constructor made walks nothing and says why; it never
// panics.
func TestZeroIterator(t *testing.T) {
	var it Iterator
	if it.Next() {
		t.Fatal("a zero Iterator returned an entry")
	}
	if !errors.Is(it.Err(), ErrInvalidArgument) {
		t.Errorf("Err() = %v, want ErrInvalidArgument", it.Err())
	}
	var z Iterator
	for range z.All() {
		t.Fatal("All of a zero Iterator yielded")
	}
	var zt Iterator
	if _, err := zt.Token(); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("Token: %v", err)
	}
	for name, f := range map[string]func(*Iterator) error{
		"Remove":   (*Iterator).Remove,
		"SetValue": func(it *Iterator) error { return it.SetValue([]byte("v")) },
	} {
		var it Iterator
		if err := f(&it); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("%s: %v, want ErrInvalidArgument", name, err)
		}
	}
}

// C code holding the map's handle writes without this package knowing:
// iterators holding a batch must see those writes as they see the
// package's own (the library counts every change where Go can read it).
func TestIteratorsSeeWritesMadeThroughTheHandle(t *testing.T) {
	const n = 100
	m := newMap(t)
	fill(t, m, n)
	raw := func(st Status) {
		t.Helper()
		if st != StatusOK {
			t.Fatalf("write through the handle: %v", st)
		}
	}

	// Strict: an insert from C invalidates the iterator at its next Next.
	it := m.Strict()
	if !it.Next() {
		t.Fatal(it.Err())
	}
	raw(rawSet(m.Handle(), []byte("from C"), []byte("v")))
	if it.Next() {
		t.Fatalf("strict iterator returned %q after an insert made through the handle", it.Key())
	}
	if !errors.Is(it.Err(), ErrIterInvalidated) {
		t.Fatalf("err = %v, want ErrIterInvalidated", it.Err())
	}

	// Values replaced from C are the ones Next returns.
	it = m.Strict()
	if !it.Next() {
		t.Fatal(it.Err())
	}
	for i := range n {
		raw(rawSet(m.Handle(), key(i), []byte("new")))
	}
	for it.Next() {
		if string(it.Key()) != "from C" && string(it.Value()) != "new" {
			t.Fatalf("%q = %q, replaced through the handle by %q", it.Key(), it.Value(), "new")
		}
	}
	if it.Err() != nil {
		t.Fatal(it.Err())
	}

	// Cursor: keys deleted from C before the cursor reached them are not returned.
	it = m.Cursor()
	if !it.Next() {
		t.Fatal(it.Err())
	}
	first := string(it.Key())
	for i := range n {
		if string(key(i)) != first {
			raw(rawDelete(m.Handle(), key(i)))
		}
	}
	for it.Next() {
		if k := string(it.Key()); k != "from C" {
			t.Fatalf("cursor returned %q, deleted through the handle before it got there", k)
		}
	}
	if it.Err() != nil {
		t.Fatal(it.Err())
	}
}

// C code writes through the handle while Go iterators scan: cursor scans
// still return every key present throughout exactly once and never a key
// twice, and a strict scan either completes or fails with
// ErrIterInvalidated. Run under -race.
func TestIteratorsUnderConcurrentWritesThroughTheHandle(t *testing.T) {
	const stable, churn = 2000, 500
	m := newMap(t)
	for i := range stable {
		if _, err := m.Set(key(i), val(i)); err != nil {
			t.Fatal(err)
		}
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // the "C side": raw writes, invisible to the package's bookkeeping
		defer wg.Done()
		for r := 0; ; r++ {
			select {
			case <-stop:
				return
			default:
			}
			k := []byte(fmt.Sprintf("churn-%d", r%churn))
			if r%3 == 2 {
				rawDelete(m.Handle(), k)
			} else if st := rawSet(m.Handle(), k, []byte("c")); st != StatusOK {
				t.Errorf("raw set: %v", st)
				return
			}
			if st := rawSet(m.Handle(), key(r%stable), val(r%stable)); st != StatusOK {
				t.Errorf("raw overwrite: %v", st)
				return
			}
		}
	}()
	deadline := time.Now().Add(700 * time.Millisecond)
	scans, strictDone := 0, 0
	for time.Now().Before(deadline) {
		seen := map[string]bool{}
		it := m.Cursor(WithBatchEntries(64))
		for it.Next() {
			k := string(it.Key())
			if seen[k] {
				t.Fatalf("cursor returned %q twice", k)
			}
			seen[k] = true
		}
		if it.Err() != nil {
			t.Fatal(it.Err())
		}
		for i := range stable {
			if !seen[string(key(i))] {
				t.Fatalf("cursor missed %q, present throughout", key(i))
			}
		}
		scans++
		st := m.Strict(WithBatchEntries(64))
		for st.Next() {
		}
		switch err := st.Err(); {
		case err == nil:
			strictDone++
		case !errors.Is(err, ErrIterInvalidated):
			t.Fatal(err)
		}
	}
	close(stop)
	wg.Wait()
	t.Logf("%d cursor scans, %d of as many strict scans completed", scans, strictDone)
}
