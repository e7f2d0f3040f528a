package mapcore

// #include "shims.h"
import "C"

import (
	"math"
	"runtime"
	"runtime/cgo"
	"slices"
	"sync"
)

// scratch holds the packed form of a batch for the duration of one call:
// elements back to back in b with a length array in l, the layout of
// mc_map_get_many and friends (a [][]byte cannot be passed to C: it is Go
// memory holding Go pointers), and v, room for the values GetMany reads.
// The library only reads and writes these during the call, so they are
// pooled and reused: a batch call allocates only what it returns.
type scratch struct {
	b []byte
	l []C.uint32_t
	v []byte
}

var scratchPool = sync.Pool{New: func() any { return new(scratch) }}

// maxPooled is the largest buffer (in bytes) a pooled scratch keeps.
const maxPooled = 1 << 20

func getScratch() *scratch {
	s := scratchPool.Get().(*scratch)
	s.b, s.l = s.b[:0], s.l[:0]
	return s
}

func (s *scratch) put() {
	if cap(s.b) > maxPooled {
		s.b = nil
	}
	if cap(s.l)*4 > maxPooled {
		s.l = nil
	}
	if cap(s.v) > maxPooled {
		s.v = nil
	}
	scratchPool.Put(s)
}

// pack appends elems to s.b back to back and their lengths to s.l.
func (s *scratch) pack(op string, elems [][]byte) error {
	if len(elems) > MaxBatch {
		return goErr(op, StatusTooLarge, "batch of %d exceeds MaxBatch (%d)", len(elems), MaxBatch)
	}
	total := 0
	for _, e := range elems {
		if len(e) > math.MaxUint32 {
			return goErr(op, StatusTooLarge, "element of %d bytes", len(e))
		}
		total += len(e)
	}
	s.b = slices.Grow(s.b, total)
	s.l = slices.Grow(s.l, len(elems))
	for _, e := range elems {
		s.b = append(s.b, e...)
		s.l = append(s.l, C.uint32_t(len(e)))
	}
	return nil
}

// within reports the first element of elems longer than limit bytes.
func within(op string, elems [][]byte, what string, limit int) error {
	for i, e := range elems {
		if len(e) > limit {
			return goErr(op, StatusTooLarge, "%s %d is %d bytes; the limit is %d", what, i, len(e), limit)
		}
	}
	return nil
}

// lens appends n zeroed lengths to s.l (an output array for the library)
// and returns them.
func (s *scratch) lens(n int) []C.uint32_t {
	i := len(s.l)
	s.l = slices.Grow(s.l, n)[:i+n]
	out := s.l[i:]
	clear(out)
	return out
}

// GetMany looks up all keys in one call that observes one consistent state
// of the map. vals[i] is nil when keys[i] is absent; a present empty value
// is a non-nil empty slice. The values share one allocation.
func (m *Map) GetMany(keys [][]byte) (vals [][]byte, err error) {
	const op = "Map.GetMany"
	if m.closed.Load() {
		return nil, closedErr(op)
	}
	if len(keys) == 0 {
		return [][]byte{}, nil
	}
	s := getScratch()
	defer s.put()
	// Read into the pooled buffer (first guess: 64 bytes a value) and copy
	// out exactly what was used; values that do not fit are read straight
	// into the larger buffer readMany grows, which is handed out as is.
	if want := min(max(64*len(keys), 256), maxPooled); cap(s.v) < want {
		s.v = make([]byte, want)
	}
	pooled := s.v[:0]
	buf, lens, err := m.readMany(op, s, pooled, keys)
	if err != nil {
		return nil, err
	}
	out := buf[:len(buf):len(buf)]
	if len(buf) > 0 && &buf[0] == &pooled[:1][0] {
		out = make([]byte, len(buf)) // make+copy of len(buf): not zeroed first
		copy(out, buf)
	}
	vals = make([][]byte, len(keys))
	sliceValues(vals, out, lens)
	return vals, nil
}

// readMany packs keys into s and reads their values back to back after
// dst's length, growing dst as the library asks (values may grow between
// two calls, so it loops). It returns the extended slice and the value
// lengths (MC_ABSENT for an absent key), which live in s.
func (m *Map) readMany(op string, s *scratch, dst []byte, keys [][]byte) ([]byte, []C.uint32_t, error) {
	if err := s.pack(op, keys); err != nil {
		return nil, nil, err
	}
	n := len(keys)
	kb, kl := s.b, s.l[:n]
	lens := s.lens(n)
	for {
		p, c := spare(dst)
		r := C.gm_get_many(C.uint64_t(m.id), C.size_t(n), bp(kb), u32p(kl), p, c, u32p(lens))
		switch r.st {
		case C.MC_OK:
			runtime.KeepAlive(m)
			return dst[:len(dst)+int(r.used)], lens, nil
		case C.MC_ERR_BUFFER_TOO_SMALL:
			dst = slices.Grow(dst, int(r.used))
			continue
		}
		runtime.KeepAlive(m)
		return nil, nil, resErr(op, r)
	}
}

// sliceValues points vals[i] at value i of buf, where the library stored the
// values back to back with their lengths in lens; absent values are nil.
func sliceValues(vals [][]byte, buf []byte, lens []C.uint32_t) {
	off := 0
	for i, l := range lens {
		if uint32(l) == absent {
			vals[i] = nil
			continue
		}
		end := off + int(l)
		vals[i] = buf[off:end:end]
		off = end
	}
}

// AppendMany is GetMany for loops that must not allocate: it appends the
// values of keys back to back to dst and returns the extended slice, and
// sets vals[i] to the value of keys[i] (a slice of the result; a present
// empty value is non-nil and empty) or to nil when keys[i] is absent.
// len(vals) must equal len(keys). The values alias the returned slice's
// array: reusing it (as buf[:0]) for the next call overwrites them. Reusing
// the buffer and vals makes batched lookups allocation-free once the buffer
// has grown to fit (the keys are packed into pooled scratch memory, which is
// allocated only after a garbage collection emptied the pool or for batches
// of keys above 1 MiB). Like GetMany it observes one consistent state of
// the map. On error dst is returned unchanged and vals is left as it was.
func (m *Map) AppendMany(dst []byte, vals, keys [][]byte) ([]byte, error) {
	const op = "Map.AppendMany"
	if m.closed.Load() {
		return dst, closedErr(op)
	}
	if len(vals) != len(keys) {
		return dst, goErr(op, StatusInvalidArgument, "%d keys but room for %d values", len(keys), len(vals))
	}
	if len(keys) == 0 {
		return dst, nil
	}
	s := getScratch()
	defer s.put()
	out, lens, err := m.readMany(op, s, dst, keys)
	if err != nil {
		return dst, err
	}
	if out == nil {
		out = []byte{} // so that present empty values are non-nil
	}
	sliceValues(vals, out[len(dst):], lens)
	return out, nil
}

// SetMany inserts or overwrites keys[i] = vals[i] for all i, atomically:
// other goroutines see all of the entries or none. It returns how many keys
// were new. len(keys) must equal len(vals). Lengths are checked first
// (ErrTooLarge: nothing stored). ErrOutOfMemory and ErrTooLarge for the
// storage limit leave the map and its snapshots as they were; only
// ErrInvalidArgument for a key whose two keyed hashes both equal another
// key's (see mc_map_set; astronomically rare) can leave the batch partly
// applied, as with mc_map_set_many.
func (m *Map) SetMany(keys, vals [][]byte) (inserted int, err error) {
	const op = "Map.SetMany"
	if m.closed.Load() {
		return 0, closedErr(op)
	}
	if len(keys) != len(vals) {
		return 0, goErr(op, StatusInvalidArgument, "%d keys but %d values", len(keys), len(vals))
	}
	if len(keys) == 0 {
		return 0, nil
	}
	// Lengths first: an entry over its limit would otherwise be copied into
	// the packing buffer (a value up to 4 GiB) only for the library to
	// refuse it.
	if err := within(op, keys, "key", MaxKeyLen); err != nil {
		return 0, err
	}
	if err := within(op, vals, "value", MaxValueLen); err != nil {
		return 0, err
	}
	s := getScratch()
	defer s.put()
	if err := s.pack(op, keys); err != nil {
		return 0, err
	}
	kTotal := len(s.b)
	if err := s.pack(op, vals); err != nil {
		return 0, err
	}
	n := len(keys)
	kb, vb := s.b[:kTotal], s.b[kTotal:]
	kl, vl := s.l[:n], s.l[n:]
	m.beginWrite()
	r := C.gm_set_many(C.uint64_t(m.id), C.size_t(n), bp(kb), u32p(kl), bp(vb), u32p(vl))
	runtime.KeepAlive(m)
	m.endWrite()
	if r.st != C.MC_OK {
		return 0, resErr(op, r)
	}
	return int(r.n), nil
}

// DeleteMany removes all keys atomically and returns how many were present.
func (m *Map) DeleteMany(keys [][]byte) (removed int, err error) {
	const op = "Map.DeleteMany"
	if m.closed.Load() {
		return 0, closedErr(op)
	}
	if len(keys) == 0 {
		return 0, nil
	}
	s := getScratch()
	defer s.put()
	if err := s.pack(op, keys); err != nil {
		return 0, err
	}
	m.beginWrite()
	r := C.gm_delete_many(C.uint64_t(m.id), C.size_t(len(keys)), bp(s.b), u32p(s.l))
	runtime.KeepAlive(m)
	m.endWrite()
	if r.st != C.MC_OK {
		return 0, resErr(op, r)
	}
	return int(r.n), nil
}

// retainState is what the C predicate trampoline reaches through a cgo.Handle.
type retainState struct {
	del      func(key, val []byte) bool
	buf      []byte // scratch: the callback gets copies, never C memory
	panicked bool
	panicVal any
}

// DeleteFunc deletes every entry for which del returns true and returns how
// many were deleted: safe bulk deletion with no iterator involved
// (mc_map_retain). del is called once per entry. The map's shards are
// filtered one at a time (each locked while del judges its entries; calls
// on other shards go on), so other goroutines may see part of the deletion
// before it ends; while a snapshot of the map is open, the whole map is
// locked instead (see below).
//
// The key and val slices passed to del are only valid during that call
// (they are reused for the next entry); copy them to keep them.
//
// del runs while the library holds a lock on the map. It must not call any
// method of the same map: such calls fail with ErrReentrant (Close included:
// the map stays open), and so does the Next of an iterator of the map
// holding a batch, which must check its entry with the library while the
// deletion is in progress. It must not wait for other goroutines that use this
// map either (that would deadlock). Calls into other maps and snapshots
// work, but two goroutines whose DeleteFunc callbacks call into each
// other's maps can deadlock, like two locks taken in opposite orders. If
// del panics, no further entries are deleted and the panic is re-raised
// after the library call has returned. del must return or panic:
// runtime.Goexit inside it (t.Fatal, t.FailNow, t.Skip in a test) skips
// the library's frames without letting them clean up. Treat that as fatal
// to the process's use of the library: the map stays locked (later calls
// on it block), the map refuses further calls
// from that OS thread with ErrReentrant, and memory freed afterwards by any
// map is no longer reclaimed. Record failures in del and assert after
// DeleteFunc returns.
//
// While a snapshot of the map is open, the deletes have to copy the pieces
// of the table they write: DeleteFunc then locks the whole map for the
// call (other goroutines' calls on the map wait), calls del on every entry
// first and copies those pieces before deleting anything. If the memory cannot
// be had it returns ErrOutOfMemory with the map (and the snapshot) as it
// was; del may have been called.
func (m *Map) DeleteFunc(del func(key, val []byte) bool) (removed int, err error) {
	const op = "Map.DeleteFunc"
	if m.closed.Load() {
		return 0, closedErr(op)
	}
	st := &retainState{del: del}
	h := cgo.NewHandle(st)
	defer h.Delete()
	m.beginWrite()
	// Deferred: a runtime.Goexit in del still ends the write (see above).
	defer m.endWrite()
	r := C.gm_retain(C.uint64_t(m.id), C.uintptr_t(h))
	runtime.KeepAlive(m)
	if st.panicked {
		dropRes(r)
		panic(st.panicVal)
	}
	if r.st != C.MC_OK {
		return 0, resErr(op, r)
	}
	return int(r.n), nil
}
