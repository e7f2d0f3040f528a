package mapcore

// #include "shims.h"
import "C"

import (
	"math/bits"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"unsafe"
)

// Map is a hash map of byte strings held by libmapcore, off the Go heap.
// All methods are safe for concurrent use by multiple goroutines. Keys and
// values are copied in and out: the caller keeps ownership of the slices it
// passes and owns the slices it gets back.
//
// A Map must be created with New and should be closed with Close; a Map that
// becomes unreachable without Close is freed by a runtime cleanup.
type Map struct {
	id      uint64
	closed  atomic.Bool
	closeMu sync.Mutex // serializes Close
	cleanup runtime.Cleanup

	// For iterators holding a prefetched batch: see "Batches and changes
	// made while iterating" in the package doc.
	writing atomic.Int32 // writes in progress (see beginWrite)
	// The library's change counters (mc_map_counters), in C memory that
	// stays readable for the life of the process: every change to the map,
	// and structural changes per shard (one every stride words).
	changeCount  *uint64
	structCounts []uint64
	stride       int

	valHint atomic.Uint32 // see getValue
}

// Live counts, for tests: maps and snapshots created and not yet freed
// (by Close or by their cleanup).
var liveMaps, liveSnapshots atomic.Int64

// Option configures New.
type Option func(*options)

type options struct {
	flags    uint32
	seed     uint64
	capacity int
}

const (
	optFixedSeed = uint32(C.MC_OPT_FIXED_SEED)
	optWeakHash  = uint32(C.MC_OPT_WEAK_HASH_FOR_TESTING)
)

// WithSeed makes the map hash with a fixed seed instead of a random one, for
// reproducible tests: maps of one process built with the same seed lay keys
// out, and iterate them, in the same order. The seed is mixed with a secret
// drawn once per process, so layouts differ between processes and knowing
// the seed does not let anyone craft keys that collide (hash flooding).
func WithSeed(seed uint64) Option {
	return func(o *options) { o.flags |= optFixedSeed; o.seed = seed }
}

// WithCapacity reserves room for n entries up front, as Reserve does. More
// than MaxCapacity is refused with ErrTooLarge.
func WithCapacity(n int) Option {
	return func(o *options) { o.capacity = n }
}

var abiOnce = sync.OnceValue(func() error {
	if got := LibraryABIVersion(); got != ABIVersion {
		return goErr("New", StatusInternal, "libmapcore ABI version %d, this package needs %d", got, ABIVersion)
	}
	return nil
})

// New creates an empty map.
func New(opts ...Option) (*Map, error) {
	if err := abiOnce(); err != nil {
		return nil, err
	}
	var o options
	for _, f := range opts {
		f(&o)
	}
	if o.capacity < 0 {
		return nil, goErr("New", StatusInvalidArgument, "negative capacity %d", o.capacity)
	}
	r := C.gm_new(C.uint32_t(o.flags), C.uint64_t(o.seed), C.uint64_t(o.capacity))
	if r.st != C.MC_OK {
		return nil, resErr("New", r)
	}
	id := uint64(r.n)
	var changes, structural *C.uint64_t
	if r := C.gm_counters(C.uint64_t(id), &changes, &structural); r.st != C.MC_OK {
		dropRes(C.gm_free(C.uint64_t(id)))
		return nil, resErr("New", r)
	} else {
		m := &Map{id: id, stride: int(r.used)}
		m.changeCount = (*uint64)(unsafe.Pointer(changes))
		m.structCounts = unsafe.Slice((*uint64)(unsafe.Pointer(structural)), int(r.n)*m.stride)
		liveMaps.Add(1)
		m.cleanup = runtime.AddCleanup(m, freeMap, id)
		return m, nil
	}
}

// changes reads the library's count of every change to m, whoever made it
// (this package, or C code through Handle). It only grows.
func (m *Map) changes() uint64 { return atomic.LoadUint64(m.changeCount) }

// counts reads the library's counts of structural changes (summed over the
// shards) and of every change to m.
func (m *Map) counts() (structural, all uint64) {
	for i := 0; i < len(m.structCounts); i += m.stride {
		structural += atomic.LoadUint64(&m.structCounts[i])
	}
	return structural, m.changes()
}

// freeMap is the cleanup of a Map that was never closed.
func freeMap(id uint64) {
	dropRes(C.gm_free(C.uint64_t(id)))
	liveMaps.Add(-1)
}

// Close frees the map. It is idempotent: later calls return nil. It is safe
// to call while other goroutines use the map: calls already inside the
// library finish normally, later ones fail with ErrClosed. Snapshots taken
// from the map stay valid until they are closed themselves. Called from a
// DeleteFunc callback of the same map, Close fails with ErrReentrant and the
// map stays open. On a Map that New did not return (nil, as after a failed
// New, or a zero Map) Close returns ErrClosed; other methods on a nil *Map
// panic, as methods of a nil pointer do.
func (m *Map) Close() error {
	if m == nil || m.id == 0 {
		return closedErr("Map.Close")
	}
	m.closeMu.Lock()
	defer m.closeMu.Unlock()
	if m.closed.Load() {
		return nil
	}
	if r := C.gm_free(C.uint64_t(m.id)); r.st != C.MC_OK {
		return resErr("Map.Close", r) // e.g. ErrReentrant: nothing freed
	}
	m.closed.Store(true)
	m.cleanup.Stop()
	liveMaps.Add(-1)
	return nil
}

// Handle returns the library handle (mc_map.id) for passing the map to C
// code in the same process. Go iterators see the changes C code makes
// through it as they see the package's own (see the package doc); the Map
// must stay open while C uses the handle.
func (m *Map) Handle() uint64 { return m.id }

// beginWrite announces a write about to be made through the library; the
// caller must call endWrite once the call has returned. An iterator that
// finds a write in progress checks its buffered entry with the library: the
// library may have applied the write already, and another goroutine may
// have seen it (a Get that misses a key being deleted), so returning the
// entry from the buffer could contradict what that goroutine saw.
func (m *Map) beginWrite() { m.writing.Add(1) }

// endWrite ends a write begun with beginWrite. What the write changed
// iterators learn from the library's change counters (see Map.changes),
// which the library bumps before anyone can see the change.
func (m *Map) endWrite() { m.writing.Add(-1) }

// Get returns a copy of the value of key, or ErrNotFound.
func (m *Map) Get(key []byte) ([]byte, error) {
	v, err := getValue("Map.Get", kindMap, m.id, &m.closed, &m.valHint, bp(key), len(key))
	runtime.KeepAlive(m)
	runtime.KeepAlive(key)
	return v, err
}

// GetString is Get with a string key and value.
func (m *Map) GetString(key string) (string, error) {
	v, err := getValue("Map.GetString", kindMap, m.id, &m.closed, &m.valHint, sp(key), len(key))
	runtime.KeepAlive(m)
	runtime.KeepAlive(key)
	if err != nil || len(v) == 0 {
		return "", err
	}
	return unsafe.String(&v[0], len(v)), nil
}

// Lookup is Get in comma-ok form: ok is false (and err nil) when the key is
// absent; err reports only failures such as ErrClosed.
func (m *Map) Lookup(key []byte) (val []byte, ok bool, err error) {
	v, err := m.Get(key)
	if err == ErrNotFound {
		return nil, false, nil
	}
	return v, err == nil, err
}

// AppendValue appends the value of key to dst and returns the extended
// slice. It allocates only when dst lacks the capacity, so a reused dst
// makes lookups allocation-free. On error dst is returned unchanged.
func (m *Map) AppendValue(dst, key []byte) ([]byte, error) {
	if m.closed.Load() {
		return dst, closedErr("Map.AppendValue")
	}
	v, err := appendValue("Map.AppendValue", kindMap, m.id, bp(key), len(key), dst)
	runtime.KeepAlive(m)
	runtime.KeepAlive(key)
	if err != nil {
		return dst, err
	}
	return v, nil
}

// Sizes for getValue: values up to smallValue bytes are read into a stack
// buffer; a hint above maxValHint is ignored (such a value costs far more to
// copy than the extra probing call).
const (
	smallValue = 128
	maxValHint = 64 << 10
)

// getValue returns a copy of a value, with one library call in the common
// case, allocating only the result (exactly its size) and nothing for an
// absent key. Small values are read into a stack buffer. A larger one would
// need a second call once the first has reported its size, so hint (per Map
// or Snapshot) remembers the rounded size of recent large values: while it
// is set, values are read into a pooled buffer of that size instead. The
// hint is only written when it changes, so readers of similarly sized
// values do not contend on it.
func getValue(op string, kind C.int, id uint64, closed *atomic.Bool, hint *atomic.Uint32, k *C.uint8_t, kl int) ([]byte, error) {
	if closed.Load() {
		return nil, closedErr(op)
	}
	var r cres
	var out []byte
	if h := int(hint.Load()); h > 0 {
		s := getScratch()
		if cap(s.v) < h {
			s.v = make([]byte, h)
		}
		buf := s.v[:cap(s.v)]
		r = C.gm_get(kind, C.uint64_t(id), k, C.size_t(kl), bp(buf), C.size_t(len(buf)))
		if r.st == C.MC_OK {
			v := buf[:r.n]
			out = make([]byte, len(v)) // make+copy of len(v): not zeroed first
			copy(out, v)
		}
		s.put()
		if r.st == C.MC_OK || r.st == C.MC_ERR_BUFFER_TOO_SMALL {
			setHint(hint, h, int(r.n))
		}
	} else {
		var small [smallValue]byte
		r = C.gm_get(kind, C.uint64_t(id), k, C.size_t(kl), (*C.uint8_t)(unsafe.Pointer(&small[0])), C.size_t(len(small)))
		if r.st == C.MC_OK {
			v := small[:r.n]
			out = make([]byte, len(v))
			copy(out, v)
		} else if r.st == C.MC_ERR_BUFFER_TOO_SMALL {
			setHint(hint, 0, int(r.n))
		}
	}
	switch r.st {
	case C.MC_OK:
		return out, nil
	case C.MC_ERR_NOT_FOUND:
		return nil, ErrNotFound
	case C.MC_ERR_BUFFER_TOO_SMALL:
		// Read it again into a slice of the size the library asked for.
		v, err := appendValue(op, kind, id, k, kl, make([]byte, 0, int(r.n)))
		if err != nil {
			return nil, err
		}
		return v[:len(v):len(v)], nil
	}
	return nil, resErr(op, r)
}

// setHint updates a value size hint h after a value of n bytes was read: 0
// for a small or a huge value; h is kept while n is in (h/4, h]; otherwise
// n rounded up to a power of two.
func setHint(hint *atomic.Uint32, h, n int) {
	var nh int
	switch {
	case n <= smallValue || n > maxValHint:
		nh = 0
	case n <= h && 4*n > h:
		nh = h
	default:
		nh = 1 << bits.Len(uint(n-1))
	}
	if nh != h {
		hint.Store(uint32(nh))
	}
}

// appendValue appends the value to dst, growing it as the library asks.
func appendValue(op string, kind C.int, id uint64, k *C.uint8_t, kl int, dst []byte) ([]byte, error) {
	for {
		p, c := spare(dst)
		r := C.gm_get(kind, C.uint64_t(id), k, C.size_t(kl), p, c)
		switch r.st {
		case C.MC_OK:
			return dst[:len(dst)+int(r.n)], nil
		case C.MC_ERR_BUFFER_TOO_SMALL:
			// The value may grow again before the next call: loop.
			dst = slices.Grow(dst, int(r.n))
			continue
		case C.MC_ERR_NOT_FOUND:
			return dst, ErrNotFound
		}
		return dst, resErr(op, r)
	}
}

// Set inserts key or overwrites its value, and reports whether the key was
// inserted (new) rather than overwritten.
func (m *Map) Set(key, val []byte) (inserted bool, err error) {
	ins, err := m.set("Map.Set", bp(key), len(key), bp(val), len(val))
	runtime.KeepAlive(key)
	runtime.KeepAlive(val)
	return ins, err
}

// SetString is Set with a string key and value.
func (m *Map) SetString(key, val string) (inserted bool, err error) {
	ins, err := m.set("Map.SetString", sp(key), len(key), sp(val), len(val))
	runtime.KeepAlive(key)
	runtime.KeepAlive(val)
	return ins, err
}

func (m *Map) set(op string, k *C.uint8_t, kl int, v *C.uint8_t, vl int) (bool, error) {
	if m.closed.Load() {
		return false, closedErr(op)
	}
	m.beginWrite()
	r := C.gm_set(C.uint64_t(m.id), k, C.size_t(kl), v, C.size_t(vl))
	runtime.KeepAlive(m)
	ins := r.n != 0
	m.endWrite()
	if r.st != C.MC_OK {
		return false, resErr(op, r)
	}
	return ins, nil
}

// Delete removes key and reports whether it was present.
func (m *Map) Delete(key []byte) (deleted bool, err error) {
	ok, err := m.del("Map.Delete", bp(key), len(key))
	runtime.KeepAlive(key)
	return ok, err
}

// DeleteString is Delete with a string key.
func (m *Map) DeleteString(key string) (deleted bool, err error) {
	ok, err := m.del("Map.DeleteString", sp(key), len(key))
	runtime.KeepAlive(key)
	return ok, err
}

func (m *Map) del(op string, k *C.uint8_t, kl int) (bool, error) {
	if m.closed.Load() {
		return false, closedErr(op)
	}
	m.beginWrite()
	r := C.gm_delete(C.uint64_t(m.id), k, C.size_t(kl))
	runtime.KeepAlive(m)
	m.endWrite()
	switch r.st {
	case C.MC_OK:
		return true, nil
	case C.MC_ERR_NOT_FOUND:
		return false, nil
	}
	return false, resErr(op, r)
}

// Contains reports whether key is present.
func (m *Map) Contains(key []byte) (bool, error) {
	ok, err := contains("Map.Contains", kindMap, m.id, &m.closed, bp(key), len(key))
	runtime.KeepAlive(m)
	runtime.KeepAlive(key)
	return ok, err
}

// ContainsString is Contains with a string key.
func (m *Map) ContainsString(key string) (bool, error) {
	ok, err := contains("Map.ContainsString", kindMap, m.id, &m.closed, sp(key), len(key))
	runtime.KeepAlive(m)
	runtime.KeepAlive(key)
	return ok, err
}

func contains(op string, kind C.int, id uint64, closed *atomic.Bool, k *C.uint8_t, kl int) (bool, error) {
	if closed.Load() {
		return false, closedErr(op)
	}
	r := C.gm_contains(kind, C.uint64_t(id), k, C.size_t(kl))
	if r.st != C.MC_OK {
		return false, resErr(op, r)
	}
	return r.n != 0, nil
}

// Len returns the number of entries.
func (m *Map) Len() (int, error) {
	n, err := length("Map.Len", kindMap, m.id, &m.closed)
	runtime.KeepAlive(m)
	return n, err
}

func length(op string, kind C.int, id uint64, closed *atomic.Bool) (int, error) {
	if closed.Load() {
		return 0, closedErr(op)
	}
	r := C.gm_len(kind, C.uint64_t(id))
	if r.st != C.MC_OK {
		return 0, resErr(op, r)
	}
	return int(r.n), nil
}

// Clear removes every entry (a structural change) and releases their memory,
// including room kept by Reserve.
func (m *Map) Clear() error {
	return m.structural("Map.Clear", func() C.gm_res { return C.gm_clear(C.uint64_t(m.id)) })
}

// Reserve makes room for n more entries (more than MaxCapacity is refused
// with ErrTooLarge). The room stays reserved while entries come and go:
// deletions do not shrink the map below room for n entries (the most any
// successful call asked for) until ShrinkToFit or Clear. It is always a
// structural change: strict iterators over the map are invalidated. Room
// whose slot tables alone need more memory than the system reports
// available is refused with ErrOutOfMemory, nothing allocated.
func (m *Map) Reserve(n int) error {
	if n < 0 {
		return goErr("Map.Reserve", StatusInvalidArgument, "negative count %d", n)
	}
	return m.structural("Map.Reserve", func() C.gm_res { return C.gm_reserve(C.uint64_t(m.id), C.size_t(n)) })
}

// ShrinkToFit releases unused memory and ends a reservation made by Reserve
// or WithCapacity. It is always a structural change: strict iterators over
// the map are invalidated.
func (m *Map) ShrinkToFit() error {
	return m.structural("Map.ShrinkToFit", func() C.gm_res { return C.gm_shrink(C.uint64_t(m.id)) })
}

// structural runs a whole-map structural change and tells iterators holding
// a prefetched batch about it.
func (m *Map) structural(op string, call func() C.gm_res) error {
	if m.closed.Load() {
		return closedErr(op)
	}
	m.beginWrite()
	r := call()
	runtime.KeepAlive(m)
	m.endWrite()
	if r.st != C.MC_OK {
		return resErr(op, r)
	}
	return nil
}
