package mapcore

// #include "shims.h"
import "C"

import (
	"bytes"
	"math"
	"runtime"
	"runtime/cgo"
)

// pack copies keys back to back into one buffer with a length array: the
// layout of mc_map_get_many and friends. (A [][]byte cannot be passed to C:
// it is Go memory holding Go pointers.)
func pack(op string, keys [][]byte) ([]byte, []C.uint32_t, error) {
	if len(keys) > MaxBatch {
		return nil, nil, goErr(op, StatusTooLarge, "batch of %d exceeds MaxBatch (%d)", len(keys), MaxBatch)
	}
	total := 0
	for _, k := range keys {
		if len(k) > math.MaxUint32 {
			return nil, nil, goErr(op, StatusTooLarge, "element of %d bytes", len(k))
		}
		total += len(k)
	}
	buf := make([]byte, 0, total)
	lens := make([]C.uint32_t, len(keys))
	for i, k := range keys {
		buf = append(buf, k...)
		lens[i] = C.uint32_t(len(k))
	}
	return buf, lens, nil
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
	kb, kl, err := pack(op, keys)
	if err != nil {
		return nil, err
	}
	n := len(keys)
	vlens := make([]C.uint32_t, n)
	buf := make([]byte, min(max(64*n, 256), 1<<20))
	var used C.size_t
	for {
		var e cerr
		st := C.gm_get_many(C.uint64_t(m.id), C.size_t(n), bp(kb), u32p(kl), bp(buf), C.size_t(len(buf)), u32p(vlens), &used, &e)
		if st == C.MC_OK {
			break
		}
		if st == C.MC_ERR_BUFFER_TOO_SMALL {
			buf = make([]byte, int(used))
			continue
		}
		runtime.KeepAlive(m)
		return nil, cerror(op, st, &e)
	}
	runtime.KeepAlive(m)
	if int(used)*2 < len(buf) {
		buf = bytes.Clone(buf[:used]) // do not pin a mostly empty buffer
	}
	vals = make([][]byte, n)
	off := 0
	for i, l := range vlens {
		if uint32(l) == absent {
			continue
		}
		end := off + int(l)
		vals[i] = buf[off:end:end]
		off = end
	}
	return vals, nil
}

// SetMany inserts or overwrites keys[i] = vals[i] for all i, atomically:
// other goroutines see all of the entries or none. It returns how many keys
// were new. len(keys) must equal len(vals).
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
	kb, kl, err := pack(op, keys)
	if err != nil {
		return 0, err
	}
	vb, vl, err := pack(op, vals)
	if err != nil {
		return 0, err
	}
	var ins C.size_t
	var e cerr
	st := C.gm_set_many(C.uint64_t(m.id), C.size_t(len(keys)), bp(kb), u32p(kl), bp(vb), u32p(vl), &ins, &e)
	runtime.KeepAlive(m)
	if st != C.MC_OK {
		return 0, cerror(op, st, &e)
	}
	m.wrote(ins > 0)
	return int(ins), nil
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
	kb, kl, err := pack(op, keys)
	if err != nil {
		return 0, err
	}
	var rem C.size_t
	var e cerr
	st := C.gm_delete_many(C.uint64_t(m.id), C.size_t(len(keys)), bp(kb), u32p(kl), &rem, &e)
	runtime.KeepAlive(m)
	if st != C.MC_OK {
		return 0, cerror(op, st, &e)
	}
	if rem > 0 {
		m.wrote(true)
	}
	return int(rem), nil
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
// (mc_map_retain). Each of the map's internal shards is processed atomically
// (writers to that shard wait); the call as a whole is not atomic.
//
// The key and val slices passed to del are only valid during that call
// (they are reused for the next entry); copy them to keep them.
//
// del runs while the library holds a lock on the map. It must not call any
// method of the same map: such calls fail with ErrReentrant (Close included:
// the map stays open). It must not wait for other goroutines that use this
// map either (that would deadlock). Calls into other maps and snapshots
// work, but two goroutines whose DeleteFunc callbacks call into each
// other's maps can deadlock, like two locks taken in opposite orders. If del panics, no further entries are deleted and
// the panic is re-raised after the library call has returned.
func (m *Map) DeleteFunc(del func(key, val []byte) bool) (removed int, err error) {
	const op = "Map.DeleteFunc"
	if m.closed.Load() {
		return 0, closedErr(op)
	}
	st := &retainState{del: del}
	h := cgo.NewHandle(st)
	defer h.Delete()
	var rem C.size_t
	var e cerr
	status := C.gm_retain(C.uint64_t(m.id), C.uintptr_t(h), &rem, &e)
	runtime.KeepAlive(m)
	if status == C.MC_OK && rem > 0 {
		m.wrote(true)
	}
	if st.panicked {
		panic(st.panicVal)
	}
	if status != C.MC_OK {
		return 0, cerror(op, status, &e)
	}
	return int(rem), nil
}
