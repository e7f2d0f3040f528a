package mapcore

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
)

// Benchmarks against a plain Go map at 1M entries (16-byte keys, 32-byte
// values). Run:
//
//	go test -run '^$' -bench . -benchtime 2s
//
// Get/* report ns per lookup (random keys), GetMany/* ns per key, Range/*
// ns per entry for a full pass (the ns/op of Range is the whole pass).

const benchN = 1 << 20

type benchData struct {
	keys   [][]byte
	skeys  []string
	order  []int // random permutation of the keys
	m      *Map
	goMap  map[string][]byte
	loaded bool
}

var (
	benchOnce sync.Once
	bench     benchData
)

func benchSetup(b *testing.B) *benchData {
	b.Helper()
	benchOnce.Do(func() {
		d := &bench
		d.keys = make([][]byte, benchN)
		d.skeys = make([]string, benchN)
		vals := make([][]byte, benchN)
		d.goMap = make(map[string][]byte, benchN)
		for i := range benchN {
			d.keys[i] = []byte(fmt.Sprintf("k%015d", i))
			d.skeys[i] = string(d.keys[i])
			vals[i] = []byte(fmt.Sprintf("v%031d", i))
			d.goMap[d.skeys[i]] = vals[i]
		}
		d.order = rand.New(rand.NewPCG(1, 2)).Perm(benchN)
		m, err := New(WithCapacity(benchN))
		if err != nil {
			panic(err)
		}
		for lo := 0; lo < benchN; lo += 1 << 14 {
			if _, err := m.SetMany(d.keys[lo:lo+1<<14], vals[lo:lo+1<<14]); err != nil {
				panic(err)
			}
		}
		d.m = m
		d.loaded = true
	})
	if !bench.loaded {
		b.Fatal("setup failed")
	}
	b.ResetTimer()
	return &bench
}

func BenchmarkGet(b *testing.B) {
	b.Run("mapcore/Get", func(b *testing.B) {
		d := benchSetup(b)
		for i := 0; b.Loop(); i++ {
			if _, err := d.m.Get(d.keys[d.order[i&(benchN-1)]]); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("mapcore/AppendValue", func(b *testing.B) {
		d := benchSetup(b)
		buf := make([]byte, 0, 64)
		var err error
		for i := 0; b.Loop(); i++ {
			if buf, err = d.m.AppendValue(buf[:0], d.keys[d.order[i&(benchN-1)]]); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("mapcore/Get-miss", func(b *testing.B) {
		d := benchSetup(b)
		k := []byte("absent-key-00000")
		for b.Loop() {
			d.m.Get(k)
		}
	})
	b.Run("gomap/Get", func(b *testing.B) {
		d := benchSetup(b)
		var sink []byte
		for i := 0; b.Loop(); i++ {
			sink = d.goMap[string(d.keys[d.order[i&(benchN-1)]])]
		}
		_ = sink
	})
	b.Run("gomap/Get+copy", func(b *testing.B) { // what Get does: hand out a copy
		d := benchSetup(b)
		var sink []byte
		for i := 0; b.Loop(); i++ {
			v := d.goMap[string(d.keys[d.order[i&(benchN-1)]])]
			sink = append([]byte(nil), v...)
		}
		_ = sink
	})
}

func BenchmarkGetMany(b *testing.B) {
	for _, n := range []int{16, 256, 4096} {
		b.Run(fmt.Sprintf("mapcore/batch=%d", n), func(b *testing.B) {
			d := benchSetup(b)
			keys := make([][]byte, n)
			var lookups int
			for i := 0; b.Loop(); i++ {
				for j := range keys {
					keys[j] = d.keys[d.order[(i*n+j)&(benchN-1)]]
				}
				if _, err := d.m.GetMany(keys); err != nil {
					b.Fatal(err)
				}
				lookups += n
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(lookups), "ns/key")
		})
		b.Run(fmt.Sprintf("mapcore/AppendMany/batch=%d", n), func(b *testing.B) {
			d := benchSetup(b)
			keys, vals := make([][]byte, n), make([][]byte, n)
			var buf []byte
			var lookups int
			for i := 0; b.Loop(); i++ {
				for j := range keys {
					keys[j] = d.keys[d.order[(i*n+j)&(benchN-1)]]
				}
				var err error
				if buf, err = d.m.AppendMany(buf[:0], vals, keys); err != nil {
					b.Fatal(err)
				}
				lookups += n
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(lookups), "ns/key")
		})
	}
}

func BenchmarkRange(b *testing.B) {
	perEntry := func(b *testing.B, passes int) {
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(passes*benchN), "ns/entry")
	}
	b.Run("mapcore/All", func(b *testing.B) {
		d := benchSetup(b)
		passes := 0
		for b.Loop() {
			n := 0
			for range d.m.All() {
				n++
			}
			if n != benchN {
				b.Fatal(n)
			}
			passes++
		}
		perEntry(b, passes)
	})
	b.Run("mapcore/Cursor-NoCopy", func(b *testing.B) {
		d := benchSetup(b)
		passes := 0
		for b.Loop() {
			it := d.m.Cursor(WithNoCopy())
			n := 0
			for it.Next() {
				n++
			}
			if n != benchN || it.Err() != nil {
				b.Fatal(n, it.Err())
			}
			passes++
		}
		perEntry(b, passes)
	})
	b.Run("mapcore/Strict-NoCopy", func(b *testing.B) {
		d := benchSetup(b)
		passes := 0
		for b.Loop() {
			it := d.m.Strict(WithNoCopy())
			n := 0
			for range it.All() {
				n++
			}
			if n != benchN || it.Err() != nil {
				b.Fatal(n, it.Err())
			}
			passes++
		}
		perEntry(b, passes)
	})
	// The library's share: mc_iter_next_batch calls only, no per-entry Next.
	b.Run("mapcore/batches-only", func(b *testing.B) {
		d := benchSetup(b)
		passes := 0
		for b.Loop() {
			it := d.m.Cursor(WithNoCopy())
			n := 0
			for it.fetch() {
				n += len(it.ents)
			}
			if n != benchN || it.Err() != nil {
				b.Fatal(n, it.Err())
			}
			passes++
		}
		perEntry(b, passes)
	})
	b.Run("gomap/range", func(b *testing.B) {
		d := benchSetup(b)
		passes := 0
		for b.Loop() {
			n := 0
			for k, v := range d.goMap {
				_, _ = k, v
				n++
			}
			if n != benchN {
				b.Fatal(n)
			}
			passes++
		}
		perEntry(b, passes)
	})
}

func BenchmarkSet(b *testing.B) {
	b.Run("mapcore/Set-overwrite", func(b *testing.B) {
		d := benchSetup(b)
		v := []byte("v0000000000000000000000000000000")
		for i := 0; b.Loop(); i++ {
			if _, err := d.m.Set(d.keys[d.order[i&(benchN-1)]], v); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("gomap/Set-overwrite", func(b *testing.B) {
		d := benchSetup(b)
		v := []byte("v0000000000000000000000000000000")
		for i := 0; b.Loop(); i++ {
			d.goMap[d.skeys[d.order[i&(benchN-1)]]] = v
		}
	})
}
