package mapcore

import (
	"bytes"
	"fmt"
	"testing"
)

// Allocations per call of the hot paths. Every shim returns its outputs in
// a struct by value, so a successful call allocates only what it returns:
// nothing for AppendValue into a buffer with room, Set, Contains, Delete,
// Len; the result for Get; the values and their slice headers for GetMany.
// A failure with a detail message allocates the *Error (not tested here).
func TestAllocationsHotPaths(t *testing.T) {
	m := newMap(t)
	fill(t, m, 100)
	k, absentKey := key(7), []byte("absent")
	ks, v := string(k), val(7)
	dst := make([]byte, 0, 64)
	fresh := make([][]byte, 400) // keys inserted then deleted, one per run
	for i := range fresh {
		fresh[i] = []byte(fmt.Sprintf("fresh-%d", i))
	}
	nIns, nDel := 0, 0
	batchKeys := [][]byte{key(1), key(2), absentKey, key(3)}
	manyBuf, manyVals := make([]byte, 0, 256), make([][]byte, len(batchKeys))
	batchVals := [][]byte{val(1), val(2), []byte("x"), val(3)}
	snap, err := m.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	defer snap.Close()

	cases := []struct {
		name   string
		want   float64
		pooled bool // uses the sync.Pool of batch buffers (not exact under -race)
		f      func() error
	}{
		{"Map.AppendValue", 0, false, func() (err error) { dst, err = m.AppendValue(dst[:0], k); return }},
		{"Map.AppendValue/absent", 0, false, func() error { _, err := m.AppendValue(dst[:0], absentKey); return notFoundOK(err) }},
		{"Map.Get", 1, false, func() error { _, err := m.Get(k); return err }},
		{"Map.Get/absent", 0, false, func() error { _, err := m.Get(absentKey); return notFoundOK(err) }},
		{"Map.GetString", 1, false, func() error { _, err := m.GetString(ks); return err }},
		{"Map.Lookup", 1, false, func() error { _, _, err := m.Lookup(k); return err }},
		{"Map.Lookup/absent", 0, false, func() error { _, _, err := m.Lookup(absentKey); return err }},
		{"Map.Set/overwrite", 0, false, func() error { _, err := m.Set(k, v); return err }},
		{"Map.SetString/overwrite", 0, false, func() error { _, err := m.SetString(ks, string(v)); return err }},
		{"Map.Set/insert", 0, false, func() error { _, err := m.Set(fresh[nIns], v); nIns++; return err }},
		{"Map.Delete", 0, false, func() error { _, err := m.Delete(fresh[nDel]); nDel++; return err }},
		{"Map.Delete/absent", 0, false, func() error { _, err := m.Delete(absentKey); return err }},
		{"Map.DeleteString/absent", 0, false, func() error { _, err := m.DeleteString("absent"); return err }},
		{"Map.Contains", 0, false, func() error { _, err := m.Contains(k); return err }},
		{"Map.ContainsString", 0, false, func() error { _, err := m.ContainsString(ks); return err }},
		{"Map.Len", 0, false, func() error { _, err := m.Len(); return err }},
		{"Map.GetMany", 2, true, func() error { _, err := m.GetMany(batchKeys); return err }},
		{"Map.AppendMany", 0, true, func() (err error) { manyBuf, err = m.AppendMany(manyBuf[:0], manyVals, batchKeys); return }},
		{"Map.SetMany", 0, true, func() error { _, err := m.SetMany(batchKeys[:2], batchVals[:2]); return err }},
		{"Map.DeleteMany/absent", 0, true, func() error { _, err := m.DeleteMany(batchKeys[2:3]); return err }},
		{"Snapshot.Get", 1, false, func() error { _, err := snap.Get(k); return err }},
		{"Snapshot.GetString", 1, false, func() error { _, err := snap.GetString(ks); return err }},
		{"Snapshot.AppendValue", 0, false, func() (err error) { dst, err = snap.AppendValue(dst[:0], k); return }},
		{"Snapshot.Contains", 0, false, func() error { _, err := snap.Contains(k); return err }},
		{"Snapshot.Len", 0, false, func() error { _, err := snap.Len(); return err }},
	}
	for _, c := range cases {
		var err error
		got := testing.AllocsPerRun(200, func() {
			if e := c.f(); e != nil && err == nil {
				err = e
			}
		})
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if c.pooled && raceEnabled {
			if got > c.want+3 {
				t.Errorf("%s: %v allocations per call, want about %v (race detector on)", c.name, got, c.want)
			}
			continue
		}
		if got != c.want {
			t.Errorf("%s: %v allocations per call, want %v", c.name, got, c.want)
		}
	}
}

func notFoundOK(err error) error {
	if err == ErrNotFound {
		return nil
	}
	return err
}

// Values above the stack buffer size are read with one library call once
// the size hint is set; the hint follows the sizes read and never makes Get
// return a wrong value or pin much more than the value.
func TestGetValueSizeHint(t *testing.T) {
	m := newMap(t)
	sizes := []int{0, 5, smallValue, smallValue + 1, 1000, 600, 300, 200, 100, 1000, 0, maxValHint, maxValHint + 1, 5000, 9000, 9000, 70}
	for i, n := range sizes {
		if _, err := m.Set(key(i), bytes.Repeat([]byte{byte('a' + i)}, n)); err != nil {
			t.Fatal(err)
		}
	}
	// hint after reading sizes[i]
	wantHint := []uint32{0, 0, 0, 256, 1024, 1024, 1024, 256, 0, 1024, 0, maxValHint, 0, 8192, 16384, 16384, 0}
	snap, err := m.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	defer snap.Close()
	for _, r := range []struct {
		name string
		get  func([]byte) ([]byte, error)
		hint func() uint32
	}{
		{"Map", m.Get, m.valHint.Load},
		{"Snapshot", snap.Get, snap.valHint.Load},
	} {
		for i, n := range sizes {
			got, err := r.get(key(i))
			if err != nil {
				t.Fatalf("%s.Get(%d bytes): %v", r.name, n, err)
			}
			if !bytes.Equal(got, bytes.Repeat([]byte{byte('a' + i)}, n)) || got == nil {
				t.Fatalf("%s.Get(%d bytes): wrong value (%d bytes)", r.name, n, len(got))
			}
			if cap(got) != len(got) {
				t.Errorf("%s.Get(%d bytes): cap %d", r.name, n, cap(got))
			}
			if h := r.hint(); h != wantHint[i] {
				t.Errorf("%s: hint after a %d-byte value = %d, want %d", r.name, n, h, wantHint[i])
			}
		}
	}
	// With the hint set, a large Get is one exact allocation (its result:
	// the read goes through a pooled buffer) and a miss allocates nothing.
	k := key(4) // 1000 bytes: hint 1024 (the loop ended with a small value: hint 0)
	if _, err := m.Get(k); err != nil {
		t.Fatal(err)
	}
	absentKey := []byte("absent")
	for _, c := range []struct {
		name string
		want float64
		f    func()
	}{
		{"Get of a 1000-byte value", 1, func() { m.Get(k) }},
		{"Get of an absent key after large values", 0, func() { m.Get(absentKey) }},
	} {
		n := testing.AllocsPerRun(100, c.f)
		if raceEnabled && n <= c.want+2 {
			continue // the race detector makes sync.Pool drop buffers
		}
		if n != c.want {
			t.Errorf("%s: %v allocations, want %v", c.name, n, c.want)
		}
	}
	if h := m.valHint.Load(); h != 1024 {
		t.Errorf("hint %d after 1000-byte values and misses, want 1024", h)
	}
}
