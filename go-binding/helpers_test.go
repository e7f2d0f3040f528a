package mapcore

import (
	"errors"
	"fmt"
	"os"
	"sort"
	"testing"
)

func newMap(t testing.TB, opts ...Option) *Map {
	t.Helper()
	m, err := New(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

func key(i int) []byte { return []byte(fmt.Sprintf("key-%06d", i)) }
func val(i int) []byte { return []byte(fmt.Sprintf("value-%d", i)) }

// fill inserts key(i) = val(i) for i in [0, n).
func fill(t testing.TB, m *Map, n int) {
	t.Helper()
	const chunk = 4096
	for lo := 0; lo < n; lo += chunk {
		hi := min(lo+chunk, n)
		ks := make([][]byte, 0, hi-lo)
		vs := make([][]byte, 0, hi-lo)
		for i := lo; i < hi; i++ {
			ks = append(ks, key(i))
			vs = append(vs, val(i))
		}
		if _, err := m.SetMany(ks, vs); err != nil {
			t.Fatal(err)
		}
	}
}

func mustLen(t testing.TB, m *Map) int {
	t.Helper()
	n, err := m.Len()
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// contents returns the map's entries through a snapshot.
func contents(t testing.TB, m *Map) map[string]string {
	t.Helper()
	s, err := m.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	out := map[string]string{}
	it := s.Iter()
	for it.Next() {
		if _, dup := out[string(it.Key())]; dup {
			t.Fatalf("snapshot iteration returned %q twice", it.Key())
		}
		out[string(it.Key())] = string(it.Value())
	}
	if err := it.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

func wantErr(t testing.TB, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("got error %v, want %v", err, target)
	}
}

// batchConfigs are the iterator configurations every iteration test runs with.
var batchConfigs = []struct {
	name string
	opts []IterOption
}{
	{"default", nil},
	{"entries=1", []IterOption{WithBatchEntries(1)}},
	{"entries=7", []IterOption{WithBatchEntries(7)}},
	{"bytes=100", []IterOption{WithBatchBytes(100)}},
	{"nocopy", []IterOption{WithNoCopy()}},
	{"nocopy+entries=5", []IterOption{WithNoCopy(), WithBatchEntries(5)}},
}

// withWeakHashForTesting makes many keys share a hash (tie handling tests).
// The library grants it only to a process whose environment has
// MAPCORE_ALLOW_WEAK_HASH=1, which this sets.
func withWeakHashForTesting() Option {
	return func(o *options) {
		os.Setenv("MAPCORE_ALLOW_WEAK_HASH", "1")
		o.flags |= optWeakHash
	}
}
