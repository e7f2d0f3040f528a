package mapcore

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func TestSetGetDelete(t *testing.T) {
	cases := []struct {
		name     string
		key, val []byte
	}{
		{"plain", []byte("hello"), []byte("world")},
		{"empty key", []byte{}, []byte("v")},
		{"nil key", nil, []byte("v")},
		{"empty value", []byte("k"), []byte{}},
		{"nil value", []byte("k"), nil},
		{"binary", []byte{0, 1, 2, 0xff}, []byte{0, 0, 0}},
		{"value over the stack buffer", []byte("k"), bytes.Repeat([]byte("v"), 129)},
		{"1 MiB value", []byte("big"), bytes.Repeat([]byte("x"), 1<<20)},
		{"longest key", bytes.Repeat([]byte("k"), MaxKeyLen), []byte("v")},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := newMap(t)
			ins, err := m.Set(c.key, c.val)
			if err != nil || !ins {
				t.Fatalf("Set = %v, %v; want inserted", ins, err)
			}
			got, err := m.Get(c.key)
			if err != nil || !bytes.Equal(got, c.val) || got == nil {
				t.Fatalf("Get = %d bytes (nil=%v), %v", len(got), got == nil, err)
			}
			if ok, err := m.Contains(c.key); !ok || err != nil {
				t.Fatalf("Contains = %v, %v", ok, err)
			}
			v, ok, err := m.Lookup(c.key)
			if !ok || err != nil || !bytes.Equal(v, c.val) {
				t.Fatalf("Lookup = %v, %v", ok, err)
			}
			dst, err := m.AppendValue([]byte("prefix:"), c.key)
			if err != nil || !bytes.Equal(dst, append([]byte("prefix:"), c.val...)) {
				t.Fatalf("AppendValue = %v", err)
			}
			ins, err = m.Set(c.key, []byte("second"))
			if err != nil || ins {
				t.Fatalf("overwrite Set = %v, %v; want not inserted", ins, err)
			}
			if got, _ := m.Get(c.key); string(got) != "second" {
				t.Fatalf("after overwrite Get = %q", got)
			}
			if n := mustLen(t, m); n != 1 {
				t.Fatalf("Len = %d", n)
			}
			del, err := m.Delete(c.key)
			if err != nil || !del {
				t.Fatalf("Delete = %v, %v", del, err)
			}
			_, err = m.Get(c.key)
			wantErr(t, err, ErrNotFound)
			if _, ok, err := m.Lookup(c.key); ok || err != nil {
				t.Fatalf("Lookup after delete = %v, %v", ok, err)
			}
			if del, err := m.Delete(c.key); del || err != nil {
				t.Fatalf("second Delete = %v, %v", del, err)
			}
			if ok, _ := m.Contains(c.key); ok {
				t.Fatal("Contains after delete")
			}
			dst, err = m.AppendValue([]byte("p"), c.key)
			wantErr(t, err, ErrNotFound)
			if string(dst) != "p" {
				t.Fatalf("AppendValue changed dst on error: %q", dst)
			}
		})
	}
}

func TestStringVariants(t *testing.T) {
	m := newMap(t)
	if ins, err := m.SetString("a", "1"); !ins || err != nil {
		t.Fatal(ins, err)
	}
	if ins, err := m.SetString("", ""); !ins || err != nil {
		t.Fatal(ins, err)
	}
	if v, err := m.GetString("a"); v != "1" || err != nil {
		t.Fatal(v, err)
	}
	if v, err := m.GetString(""); v != "" || err != nil {
		t.Fatal(v, err)
	}
	if v, err := m.Get([]byte("a")); string(v) != "1" || err != nil {
		t.Fatal(v, err)
	}
	if ok, err := m.ContainsString("a"); !ok || err != nil {
		t.Fatal(ok, err)
	}
	if ok, err := m.DeleteString("a"); !ok || err != nil {
		t.Fatal(ok, err)
	}
	if _, err := m.GetString("a"); !errors.Is(err, ErrNotFound) {
		t.Fatal(err)
	}
	long := strings.Repeat("v", 1000)
	m.SetString("long", long)
	if v, _ := m.GetString("long"); v != long {
		t.Fatal("long value")
	}
}

func TestOptionsAndMaintenance(t *testing.T) {
	// Fixed seeds give the same iteration order; the order is the hash order.
	order := func(opts ...Option) []string {
		m := newMap(t, opts...)
		fill(t, m, 200)
		var ks []string
		for k := range m.Keys() {
			ks = append(ks, string(k))
		}
		return ks
	}
	a, b := order(WithSeed(42)), order(WithSeed(42), WithCapacity(10000))
	if strings.Join(a, ",") != strings.Join(b, ",") {
		t.Error("same seed, different order")
	}
	if c := order(WithSeed(43)); strings.Join(a, ",") == strings.Join(c, ",") {
		t.Error("different seeds, same order")
	}

	m := newMap(t, WithCapacity(1000))
	fill(t, m, 500)
	if err := m.Reserve(10000); err != nil {
		t.Fatal(err)
	}
	if err := m.ShrinkToFit(); err != nil {
		t.Fatal(err)
	}
	if n := mustLen(t, m); n != 500 {
		t.Fatalf("Len = %d", n)
	}
	if err := m.Clear(); err != nil {
		t.Fatal(err)
	}
	if n := mustLen(t, m); n != 0 {
		t.Fatalf("Len after Clear = %d", n)
	}
	wantErr(t, m.Reserve(-1), ErrInvalidArgument)
	_, err := New(WithCapacity(-1))
	wantErr(t, err, ErrInvalidArgument)
	if LibraryABIVersion() != ABIVersion {
		t.Fatalf("ABI %d vs %d", LibraryABIVersion(), ABIVersion)
	}
}

func TestAllocations(t *testing.T) {
	m := newMap(t)
	fill(t, m, 100)
	k := key(7)
	dst := make([]byte, 0, 64)
	if n := testing.AllocsPerRun(200, func() {
		var err error
		dst, err = m.AppendValue(dst[:0], k)
		if err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("AppendValue with room: %v allocations", n)
	}
	if n := testing.AllocsPerRun(200, func() { m.Get(k) }); n != 1 {
		t.Errorf("Get: %v allocations, want 1 (the result)", n)
	}
	if n := testing.AllocsPerRun(200, func() { m.Get([]byte("absent")) }); n != 0 {
		t.Errorf("Get of an absent key: %v allocations", n)
	}
	if n := testing.AllocsPerRun(200, func() { m.Set(k, []byte("v")) }); n != 0 {
		t.Errorf("Set: %v allocations", n)
	}
	if n := testing.AllocsPerRun(200, func() { m.Contains(k) }); n != 0 {
		t.Errorf("Contains: %v allocations", n)
	}
}

func TestBatchOps(t *testing.T) {
	m := newMap(t)
	keys := [][]byte{[]byte("a"), []byte("b"), []byte(""), []byte("d")}
	vals := [][]byte{[]byte("1"), []byte{}, []byte("empty key"), bytes.Repeat([]byte("z"), 5000)}
	ins, err := m.SetMany(keys, vals)
	if err != nil || ins != 4 {
		t.Fatalf("SetMany = %d, %v", ins, err)
	}
	ins, err = m.SetMany(keys[:2], [][]byte{[]byte("one"), []byte("two")})
	if err != nil || ins != 0 {
		t.Fatalf("SetMany overwrite = %d, %v", ins, err)
	}
	got, err := m.GetMany([][]byte{[]byte("a"), []byte("missing"), []byte("b"), []byte(""), []byte("d")})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"one", "", "two", "empty key", strings.Repeat("z", 5000)}
	for i, g := range got {
		if i == 1 {
			if g != nil {
				t.Errorf("absent key gave %q", g)
			}
			continue
		}
		if g == nil || string(g) != want[i] {
			t.Errorf("GetMany[%d] = %q", i, g)
		}
	}
	// Values never overlap: appending to one does not change the next.
	_ = append(got[0], "XXXX"...)
	if string(got[2]) != "two" {
		t.Error("GetMany values share capacity")
	}
	if got, err := m.GetMany(nil); err != nil || len(got) != 0 {
		t.Fatal(got, err)
	}
	n, err := m.DeleteMany([][]byte{[]byte("a"), []byte("missing"), []byte("")})
	if err != nil || n != 2 {
		t.Fatalf("DeleteMany = %d, %v", n, err)
	}
	if l := mustLen(t, m); l != 2 {
		t.Fatalf("Len = %d", l)
	}
	_, err = m.SetMany(keys, vals[:1])
	wantErr(t, err, ErrInvalidArgument)

	// Many keys with large values: the value buffer has to grow.
	fill(t, m, 3000)
	var ks [][]byte
	for i := range 3000 {
		ks = append(ks, key(i))
		m.Set(key(i), bytes.Repeat([]byte{byte(i)}, i%300))
	}
	vs, err := m.GetMany(ks)
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range vs {
		if !bytes.Equal(v, bytes.Repeat([]byte{byte(i)}, i%300)) || v == nil {
			t.Fatalf("GetMany[%d] wrong", i)
		}
	}
}

func TestAppendMany(t *testing.T) {
	m := newMap(t)
	m.Set([]byte("a"), []byte("1"))
	m.Set([]byte("b"), []byte{})
	m.Set([]byte(""), []byte("empty key"))
	keys := [][]byte{[]byte("a"), []byte("missing"), []byte("b"), []byte("")}
	want := []string{"1", "", "", "empty key"}
	check := func(vals [][]byte) {
		t.Helper()
		for i, v := range vals {
			if i == 1 {
				if v != nil {
					t.Errorf("absent key gave %q", v)
				}
				continue
			}
			if v == nil || string(v) != want[i] {
				t.Errorf("AppendMany[%d] = %q, want %q", i, v, want[i])
			}
		}
	}
	// From nil: grows, and the present empty value is still non-nil.
	vals := make([][]byte, len(keys))
	buf, err := m.AppendMany(nil, vals, keys)
	if err != nil || string(buf) != "1empty key" {
		t.Fatalf("AppendMany(nil) = %q, %v", buf, err)
	}
	check(vals)
	// Appends after what dst holds; stale vals entries are overwritten.
	vals[1] = []byte("stale")
	buf, err = m.AppendMany([]byte("prefix"), vals, keys)
	if err != nil || string(buf) != "prefix1empty key" {
		t.Fatalf("AppendMany(prefix) = %q, %v", buf, err)
	}
	check(vals)
	// All absent with a nil dst.
	none := make([][]byte, 2)
	if buf, err := m.AppendMany(nil, none, [][]byte{[]byte("x"), []byte("y")}); err != nil || len(buf) != 0 || none[0] != nil || none[1] != nil {
		t.Fatalf("AppendMany(absent) = %q, %q, %v", buf, none, err)
	}
	// Values larger than the spare capacity: the buffer grows until they fit.
	var ks [][]byte
	for i := range 500 {
		ks = append(ks, key(i))
		m.Set(key(i), bytes.Repeat([]byte{byte(i)}, i%300))
	}
	vs := make([][]byte, len(ks))
	small := make([]byte, 1, 16)
	buf, err = m.AppendMany(small, vs, ks)
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range vs {
		if v == nil || !bytes.Equal(v, bytes.Repeat([]byte{byte(i)}, i%300)) {
			t.Fatalf("AppendMany[%d] wrong", i)
		}
	}
	if cap(buf) <= 16 || &buf[0] == &small[0] || small[:2][1] != 0 {
		t.Fatalf("dst not grown into a new array, or its spare room written: cap %d", cap(buf))
	}
	// Misuse: vals of the wrong length leaves dst and vals alone.
	vals[0] = []byte("kept")
	got, err := m.AppendMany([]byte("d"), vals[:2], keys)
	wantErr(t, err, ErrInvalidArgument)
	if string(got) != "d" || string(vals[0]) != "kept" {
		t.Fatalf("failed AppendMany changed its arguments: %q %q", got, vals[0])
	}
	if got, err := m.AppendMany([]byte("d"), nil, nil); err != nil || string(got) != "d" {
		t.Fatal(got, err)
	}
	// A failure inside the library (here a handle the library never made)
	// also leaves dst, its spare room and vals alone.
	dst := make([]byte, 1, 64)
	dst[0] = 'd'
	vals[0] = []byte("kept")
	bad := &Map{id: 12345}
	got, err = bad.AppendMany(dst, vals, keys)
	var e *Error
	if !errors.As(err, &e) || e.Status != StatusBadHandle {
		t.Fatalf("AppendMany on a bad handle: %v", err)
	}
	if &got[0] != &dst[0] || len(got) != 1 || dst[:2][1] != 0 || string(vals[0]) != "kept" {
		t.Fatalf("failed AppendMany changed its arguments: %q %q", got, vals[0])
	}
}

func TestDeleteFunc(t *testing.T) {
	m := newMap(t)
	fill(t, m, 1000)
	seen := 0
	n, err := m.DeleteFunc(func(k, v []byte) bool {
		seen++
		return bytes.HasSuffix(k, []byte("0")) // every 10th key
	})
	if err != nil || n != 100 || seen != 1000 {
		t.Fatalf("DeleteFunc = %d, %v (seen %d)", n, err, seen)
	}
	if l := mustLen(t, m); l != 900 {
		t.Fatalf("Len = %d", l)
	}
	if ok, _ := m.Contains(key(10)); ok {
		t.Fatal("key 10 survived")
	}

	t.Run("reentrant call fails with ErrReentrant", func(t *testing.T) {
		other := newMap(t)
		var inner, otherErr error
		_, err := m.DeleteFunc(func(k, v []byte) bool {
			if inner == nil {
				_, inner = m.Get(k)
				_, otherErr = other.Set(k, v) // another map is fine
			}
			return false
		})
		if err != nil {
			t.Fatal(err)
		}
		wantErr(t, inner, ErrReentrant)
		if otherErr != nil {
			t.Fatal(otherErr)
		}
		if _, err := m.Get(key(1)); err != nil {
			t.Fatal("map unusable after reentrant call:", err)
		}
	})

	t.Run("panic propagates and stops deleting", func(t *testing.T) {
		before := mustLen(t, m)
		calls := 0
		func() {
			defer func() {
				if r := recover(); r != "boom" {
					t.Fatalf("recovered %v", r)
				}
			}()
			m.DeleteFunc(func(k, v []byte) bool {
				calls++
				if calls == 5 {
					panic("boom")
				}
				return true
			})
			t.Fatal("no panic")
		}()
		if after := mustLen(t, m); after != before-4 {
			t.Fatalf("Len %d -> %d after panic at the 5th entry", before, after)
		}
		if _, err := m.Set([]byte("still"), []byte("works")); err != nil {
			t.Fatal(err)
		}
	})
}
