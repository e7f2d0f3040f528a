package main

// mapcore through its Go binding (github.com/mapcore/mapcore-go, used from
// ../../go-binding through a replace directive).

import (
	"errors"

	mapcore "github.com/mapcore/mapcore-go"
)

func mapcoreContestants() []contestant {
	return []contestant{{name: "mapcore", new: newMapcore, presize: true}}
}

type mcMap struct {
	m *mapcore.Map
	// Reused key/value views for the batch calls (the binding takes [][]byte).
	kv, vv [][]byte
	vals   [][]byte // AppendMany results
}

func newMapcore(capacity int) Map {
	var opts []mapcore.Option
	if capacity > 0 {
		opts = append(opts, mapcore.WithCapacity(capacity))
	}
	m, err := mapcore.New(opts...)
	if err != nil {
		panic(err)
	}
	return &mcMap{m: m}
}

func must(err error) {
	if err != nil {
		panic(err)
	}
}

func (c *mcMap) Insert(k, v []byte) {
	_, err := c.m.Set(k, v)
	must(err)
}

// Get copies the value into out through AppendValue (no allocation).
func (c *mcMap) Get(k, out []byte) bool {
	_, err := c.m.AppendValue(out[:0], k)
	if err == nil {
		return true
	}
	if errors.Is(err, mapcore.ErrNotFound) {
		return false
	}
	panic(err)
}
func (c *mcMap) Set(k, v []byte) { c.Insert(k, v) }
func (c *mcMap) Delete(k []byte) bool {
	ok, err := c.m.Delete(k)
	must(err)
	return ok
}

// Iterate uses a strict iterator with WithNoCopy: entries are slices of the
// iterator's batch buffer (one library call per 64 KiB batch).
func (c *mcMap) Iterate() (int, uint64) {
	var acc uint64
	n := 0
	it := c.m.Strict(mapcore.WithNoCopy())
	for it.Next() {
		k, v := it.Key(), it.Value()
		acc += uint64(len(k)+len(v)) + uint64(k[0]) + uint64(v[len(v)-1])
		n++
	}
	must(it.Err())
	return n, acc
}

// IterateAll is the default range-over-func form, m.All() (copies per batch).
func (c *mcMap) IterateAll() (int, uint64) {
	var acc uint64
	n := 0
	for k, v := range c.m.All() {
		acc += uint64(len(k)+len(v)) + uint64(k[0]) + uint64(v[len(v)-1])
		n++
	}
	return n, acc
}

func (c *mcMap) Len() int {
	n, err := c.m.Len()
	must(err)
	return n
}
func (c *mcMap) Close()                  { must(c.m.Close()) }
func (c *mcMap) CGet(k, out []byte) bool { return c.Get(k, out) }
func (c *mcMap) CSet(k, v []byte)        { c.Set(k, v) }

func (c *mcMap) views(keys []byte, n int) [][]byte {
	c.kv = c.kv[:0]
	for i := 0; i < n; i++ {
		c.kv = append(c.kv, keys[i*klen:(i+1)*klen:(i+1)*klen])
	}
	return c.kv
}

// GetBatch reads the values straight into out through AppendMany (reused
// buffers: no allocation).
func (c *mcMap) GetBatch(keys []byte, n int, out []byte, lens []uint32) int {
	if cap(c.vals) < n {
		c.vals = make([][]byte, n)
	}
	vals := c.vals[:n]
	got, err := c.m.AppendMany(out[:0], vals, c.views(keys, n))
	must(err)
	check(len(got) == 0 || &got[0] == &out[0], "GetBatch: values did not fit in out")
	hits := 0
	for i, v := range vals {
		if v == nil {
			lens[i] = ^uint32(0)
			continue
		}
		lens[i] = uint32(len(v))
		hits++
	}
	return hits
}

func (c *mcMap) InsertBatch(keys, vals []byte, n int) {
	ks := c.views(keys, n)
	c.vv = c.vv[:0]
	for i := 0; i < n; i++ {
		c.vv = append(c.vv, vals[i*vlen:(i+1)*vlen:(i+1)*vlen])
	}
	_, err := c.m.SetMany(ks, c.vv)
	must(err)
}
