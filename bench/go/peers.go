package main

// Go-side peers. Every contestant copies keys and values in and copies the
// value out into the caller's buffer on Get.

import (
	"context"
	"sync"
	"time"

	"github.com/VictoriaMetrics/fastcache"
	"github.com/allegro/bigcache/v3"
)

// Map is what the harness drives. Iterate returns count -1 when the map
// cannot iterate.
type Map interface {
	Insert(k, v []byte)
	Get(k, out []byte) bool
	// Set overwrites the value of an existing key.
	Set(k, v []byte)
	Delete(k []byte) bool
	Iterate() (int, uint64)
	Len() int
	Close()
}

// Batcher is implemented by maps with a real batch API (mapcore); the
// harness loops single calls for the others.
type Batcher interface {
	GetBatch(keys []byte, n int, out []byte, lens []uint32) int
	InsertBatch(keys, vals []byte, n int)
}

// Concurrent maps can be used by several goroutines at once.
type Concurrent interface {
	CGet(k, out []byte) bool
	CSet(k, v []byte)
}

type contestant struct {
	name    string
	new     func(capacity int) Map // capacity 0: not presized
	presize bool                   // new(n) really presizes
}

func visit(acc *uint64, k, v []byte) {
	*acc += uint64(len(k)+len(v)) + uint64(k[0]) + uint64(v[len(v)-1])
}

// ---------------------------------------------------------------- Go map

// goMap is map[string][]byte. For two goroutines it is guarded by a
// sync.RWMutex (a plain Go map is not safe for concurrent writes).
type goMap struct {
	mu sync.RWMutex
	m  map[string][]byte
}

func newGoMap(capacity int) Map {
	return &goMap{m: make(map[string][]byte, capacity)}
}

func (g *goMap) Insert(k, v []byte) { g.m[string(k)] = append([]byte(nil), v...) }
func (g *goMap) Get(k, out []byte) bool {
	v, ok := g.m[string(k)]
	if ok {
		copy(out, v)
	}
	return ok
}
func (g *goMap) Set(k, v []byte) {
	// Overwrite in place when the length matches, as a careful user would.
	if old, ok := g.m[string(k)]; ok && len(old) == len(v) {
		copy(old, v)
		return
	}
	g.m[string(k)] = append([]byte(nil), v...)
}
func (g *goMap) Delete(k []byte) bool {
	_, ok := g.m[string(k)]
	delete(g.m, string(k))
	return ok
}
func (g *goMap) Iterate() (int, uint64) {
	var acc uint64
	n := 0
	for k, v := range g.m {
		acc += uint64(len(k)+len(v)) + uint64(k[0]) + uint64(v[len(v)-1])
		n++
	}
	return n, acc
}
func (g *goMap) Len() int { return len(g.m) }
func (g *goMap) Close()   { g.m = nil }
func (g *goMap) CGet(k, out []byte) bool {
	g.mu.RLock()
	ok := g.Get(k, out)
	g.mu.RUnlock()
	return ok
}
func (g *goMap) CSet(k, v []byte) {
	g.mu.Lock()
	g.Set(k, v)
	g.mu.Unlock()
}

// --------------------------------------------------------------- sync.Map

type syncMap struct {
	m sync.Map
	n int
}

func newSyncMap(int) Map { return &syncMap{} }

func (s *syncMap) Insert(k, v []byte) {
	if _, loaded := s.m.Swap(string(k), append([]byte(nil), v...)); !loaded {
		s.n++
	}
}
func (s *syncMap) Get(k, out []byte) bool {
	v, ok := s.m.Load(string(k))
	if ok {
		copy(out, v.([]byte))
	}
	return ok
}

// Set stores a fresh copy: readers may hold the old slice, so overwriting
// it in place would be a data race.
func (s *syncMap) Set(k, v []byte) { s.m.Store(string(k), append([]byte(nil), v...)) }
func (s *syncMap) Delete(k []byte) bool {
	_, ok := s.m.LoadAndDelete(string(k))
	if ok {
		s.n--
	}
	return ok
}
func (s *syncMap) Iterate() (int, uint64) {
	var acc uint64
	n := 0
	s.m.Range(func(k, v any) bool {
		ks, vb := k.(string), v.([]byte)
		acc += uint64(len(ks)+len(vb)) + uint64(ks[0]) + uint64(vb[len(vb)-1])
		n++
		return true
	})
	return n, acc
}
func (s *syncMap) Len() int                { return s.n }
func (s *syncMap) Close()                  { s.m.Clear() }
func (s *syncMap) CGet(k, out []byte) bool { return s.Get(k, out) }
func (s *syncMap) CSet(k, v []byte)        { s.Set(k, v) }

// -------------------------------------------------------------- fastcache

// fastCache sizes fastcache so nothing is evicted: every write (the build,
// re-inserts, overwrites) appends 4+16+32 bytes to a per-bucket ring, so the
// budget is three times the entries' bytes plus slack for bucket skew.
type fastCache struct {
	c *fastcache.Cache
}

func newFastcache(n int) func(int) Map {
	return func(int) Map {
		return &fastCache{c: fastcache.New(3*n*(4+klen+vlen) + 256<<20)}
	}
}

func (f *fastCache) Insert(k, v []byte) { f.c.Set(k, v) }
func (f *fastCache) Get(k, out []byte) bool {
	_, ok := f.c.HasGet(out[:0], k)
	return ok
}
func (f *fastCache) Set(k, v []byte) { f.c.Set(k, v) }
func (f *fastCache) Delete(k []byte) bool {
	// fastcache's Del does not say whether the key was there.
	ok := f.c.Has(k)
	f.c.Del(k)
	return ok
}
func (f *fastCache) Iterate() (int, uint64) { return -1, 0 }
func (f *fastCache) Len() int {
	var s fastcache.Stats
	f.c.UpdateStats(&s)
	return int(s.EntriesCount)
}
func (f *fastCache) Close()                  { f.c.Reset() }
func (f *fastCache) CGet(k, out []byte) bool { return f.Get(k, out) }
func (f *fastCache) CSet(k, v []byte)        { f.Set(k, v) }

// --------------------------------------------------------------- bigcache

// bigCache never expires (a one-year life window, no cleaner) and has no
// size cap, so nothing is evicted. Presizing sets MaxEntriesInWindow to n.
type bigCache struct {
	c *bigcache.BigCache
}

func newBigcache(capacity int) Map {
	cfg := bigcache.Config{
		Shards:             1024,
		LifeWindow:         365 * 24 * time.Hour,
		CleanWindow:        0,
		MaxEntriesInWindow: 1024,
		MaxEntrySize:       96,
		HardMaxCacheSize:   0,
	}
	if capacity > 0 {
		cfg.MaxEntriesInWindow = capacity
	}
	c, err := bigcache.New(context.Background(), cfg)
	if err != nil {
		panic(err)
	}
	return &bigCache{c: c}
}

func (b *bigCache) Insert(k, v []byte) {
	if err := b.c.Set(string(k), v); err != nil {
		panic(err)
	}
}
func (b *bigCache) Get(k, out []byte) bool {
	v, err := b.c.Get(string(k))
	if err != nil {
		return false
	}
	copy(out, v)
	return true
}
func (b *bigCache) Set(k, v []byte) { b.Insert(k, v) }
func (b *bigCache) Delete(k []byte) bool {
	return b.c.Delete(string(k)) == nil
}
func (b *bigCache) Iterate() (int, uint64) {
	var acc uint64
	n := 0
	it := b.c.Iterator()
	for it.SetNext() {
		e, err := it.Value()
		if err != nil {
			continue
		}
		k, v := e.Key(), e.Value()
		acc += uint64(len(k)+len(v)) + uint64(k[0]) + uint64(v[len(v)-1])
		n++
	}
	return n, acc
}
func (b *bigCache) Len() int                { return b.c.Len() }
func (b *bigCache) Close()                  { _ = b.c.Close() }
func (b *bigCache) CGet(k, out []byte) bool { return b.Get(k, out) }
func (b *bigCache) CSet(k, v []byte)        { b.Set(k, v) }
