package mapcore

import "testing"

// BenchmarkCall measures the binding's own cost per call: one hot key in a
// small map, so the library's work is cache-resident and what remains is the
// cgo transition plus the shim and the Go wrapper. "cgo-floor" is an empty
// library call (mc_abi_version) for comparison. The 1M-entry benchmarks in
// bench_test.go are dominated by cache misses inside the library instead.
func BenchmarkCall(b *testing.B) {
	m := newMap(b)
	fill(b, m, 100)
	k := key(7)
	v := val(7)
	absentKey := []byte("absent")
	bigKey := []byte("big")
	if _, err := m.Set(bigKey, make([]byte, 1000)); err != nil {
		b.Fatal(err)
	}
	b.Run("cgo-floor", func(b *testing.B) {
		for b.Loop() {
			LibraryABIVersion()
		}
	})
	b.Run("Get", func(b *testing.B) {
		for b.Loop() {
			if _, err := m.Get(k); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Get-1000B", func(b *testing.B) { // larger than Get's stack buffer
		for b.Loop() {
			if _, err := m.Get(bigKey); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Get-miss", func(b *testing.B) {
		for b.Loop() {
			m.Get(absentKey)
		}
	})
	b.Run("AppendValue", func(b *testing.B) {
		buf := make([]byte, 0, 64)
		var err error
		for b.Loop() {
			if buf, err = m.AppendValue(buf[:0], k); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Contains", func(b *testing.B) {
		for b.Loop() {
			m.Contains(k)
		}
	})
	b.Run("Set", func(b *testing.B) {
		for b.Loop() {
			if _, err := m.Set(k, v); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Delete-miss", func(b *testing.B) {
		for b.Loop() {
			m.Delete(absentKey)
		}
	})
	b.Run("Len", func(b *testing.B) {
		for b.Loop() {
			m.Len()
		}
	})
}
