package mapcore

// #include "shims.h"
import "C"

import (
	"context"
	"iter"
	"runtime"
	"sync/atomic"
	"unsafe"
)

// Snapshot is a read-only, point-in-time view of a Map: Get, Len and
// iteration see exactly the state at the moment it was taken, while writers
// to the map go on unblocked. Taking one copies no entries; later writes to
// the map copy only the pieces of the table they touch (a write that grows
// one of the map's 16 internal shards, or the first write after many made
// each under a fresh snapshot, copies that shard: amortised over the writes
// that led to it). A write (Set, Delete) that cannot allocate such a copy
// returns ErrOutOfMemory and changes nothing.
//
// A Snapshot is safe for concurrent use. Close it when done (it pins the
// memory of the state it shows); one that becomes unreachable is freed by
// a runtime cleanup. It stays valid after its map is closed.
type Snapshot struct {
	id      uint64
	closed  atomic.Bool
	cleanup runtime.Cleanup
	valHint atomic.Uint32 // see getValue
}

// Snapshot takes a snapshot of the map.
func (m *Map) Snapshot() (*Snapshot, error) {
	const op = "Map.Snapshot"
	if m.closed.Load() {
		return nil, closedErr(op)
	}
	r := C.gm_snapshot_new(C.uint64_t(m.id))
	runtime.KeepAlive(m)
	if r.st != C.MC_OK {
		return nil, resErr(op, r)
	}
	id := uint64(r.n)
	s := &Snapshot{id: id}
	liveSnapshots.Add(1)
	s.cleanup = runtime.AddCleanup(s, freeSnapshot, id)
	return s, nil
}

func freeSnapshot(id uint64) {
	dropRes(C.gm_snapshot_free(C.uint64_t(id)))
	liveSnapshots.Add(-1)
}

// Close releases the snapshot. It is idempotent and safe to call while other
// goroutines use the snapshot (they finish their call or get ErrClosed). On
// a nil or zero Snapshot it returns ErrClosed.
func (s *Snapshot) Close() error {
	if s == nil || s.id == 0 {
		return closedErr("Snapshot.Close")
	}
	if !s.closed.CompareAndSwap(false, true) {
		return nil
	}
	s.cleanup.Stop()
	r := C.gm_snapshot_free(C.uint64_t(s.id))
	liveSnapshots.Add(-1)
	if r.st != C.MC_OK {
		return resErr("Snapshot.Close", r)
	}
	return nil
}

// Get returns a copy of the value of key in the snapshot, or ErrNotFound.
func (s *Snapshot) Get(key []byte) ([]byte, error) {
	v, err := getValue("Snapshot.Get", kindSnap, s.id, &s.closed, &s.valHint, bp(key), len(key))
	runtime.KeepAlive(s)
	runtime.KeepAlive(key)
	return v, err
}

// GetString is Get with a string key and value.
func (s *Snapshot) GetString(key string) (string, error) {
	v, err := getValue("Snapshot.GetString", kindSnap, s.id, &s.closed, &s.valHint, sp(key), len(key))
	runtime.KeepAlive(s)
	runtime.KeepAlive(key)
	if err != nil || len(v) == 0 {
		return "", err
	}
	return unsafe.String(&v[0], len(v)), nil // v is ours alone: no second copy
}

// AppendValue appends the value of key in the snapshot to dst (see Map.AppendValue).
func (s *Snapshot) AppendValue(dst, key []byte) ([]byte, error) {
	if s.closed.Load() {
		return dst, closedErr("Snapshot.AppendValue")
	}
	v, err := appendValue("Snapshot.AppendValue", kindSnap, s.id, bp(key), len(key), dst)
	runtime.KeepAlive(s)
	runtime.KeepAlive(key)
	if err != nil {
		return dst, err
	}
	return v, nil
}

// Contains reports whether key is in the snapshot.
func (s *Snapshot) Contains(key []byte) (bool, error) {
	ok, err := contains("Snapshot.Contains", kindSnap, s.id, &s.closed, bp(key), len(key))
	runtime.KeepAlive(s)
	runtime.KeepAlive(key)
	return ok, err
}

// Len returns the number of entries in the snapshot.
func (s *Snapshot) Len() (int, error) {
	n, err := length("Snapshot.Len", kindSnap, s.id, &s.closed)
	runtime.KeepAlive(s)
	return n, err
}

// Iter returns an iterator over the snapshot. A snapshot never changes, so
// its iterators are never invalidated; they are read-only (Remove and
// SetValue fail with ErrInvalidArgument).
func (s *Snapshot) Iter(opts ...IterOption) *Iterator {
	return newIterator(nil, s, ModeCursor, nil, opts)
}

// Resume continues an iteration of this snapshot from a token. The zero
// Token starts a new iteration (as s.Iter).
func (s *Snapshot) Resume(tok Token, opts ...IterOption) *Iterator {
	return newIterator(nil, s, tok.Mode(), resumeFrom(tok), opts)
}

// All returns a range-over-func iterator over the snapshot's entries, with
// copied keys and values. Errors (only possible if the snapshot is closed
// during the loop) end the loop early; use Iter and Iterator.Err to see them.
func (s *Snapshot) All() iter.Seq2[[]byte, []byte] {
	return func(yield func([]byte, []byte) bool) {
		it := s.Iter()
		defer it.release()
		for it.Next() {
			if !yield(it.Key(), it.Value()) {
				return
			}
		}
	}
}

// Keys returns a range-over-func iterator over the snapshot's keys (see All).
func (s *Snapshot) Keys() iter.Seq[[]byte] {
	return func(yield func([]byte) bool) {
		it := s.Iter()
		defer it.release()
		for it.Next() {
			if !yield(it.Key()) {
				return
			}
		}
	}
}

// Scan calls fn for every entry of the snapshot (see Map.Scan).
func (s *Snapshot) Scan(ctx context.Context, fn func(key, val []byte) error) error {
	return scan(ctx, s.Iter(WithContext(ctx)), fn)
}
