package mapcore

// #include "shims.h"
import "C"

import (
	"bytes"
	"context"
	"encoding/binary"
	"iter"
	"runtime"
	"sync/atomic"
	"unsafe"
)

// IterOption configures an Iterator.
//
// An invalid option (WithBatchBytes or WithBatchEntries with n <= 0) is
// rejected by the method given it: the Iterator it returns has already
// failed, so Err reports ErrInvalidArgument right away, before any Next,
// and Next returns false from its first call (Token fails with the same
// error). The constructors return only an *Iterator, so that a loop
// "for it.Next()" stays one line; a failed construction is reported as
// every other iteration failure is, through Err.
type IterOption func(*iterConfig)

type iterConfig struct {
	ctx        context.Context
	noCopy     bool
	maxBytes   int
	maxEntries int
	err        error
}

const (
	defaultBatchBytes = 64 << 10
	firstBatchBytes   = 4 << 10
)

// WithContext makes the iterator stop when ctx is done: Next returns false
// and Err returns ctx.Err().
func WithContext(ctx context.Context) IterOption {
	return func(c *iterConfig) { c.ctx = ctx }
}

// WithNoCopy makes Key and Value return slices of the iterator's reused
// batch buffer instead of slices of a fresh allocation: they are valid only
// until the next call to Next (like bufio.Scanner.Bytes). Faster, with no
// allocation per batch; copy what you keep. Writing into them is allowed
// until then and changes nothing but what they show.
func WithNoCopy() IterOption {
	return func(c *iterConfig) { c.noCopy = true }
}

// WithBatchBytes sets the size of the batch buffer filled by one library
// call (default 64 KiB; batches start at 4 KiB and grow). An entry larger
// than the buffer is fetched alone into a buffer of its size. n <= 0 is
// invalid (see IterOption).
func WithBatchBytes(n int) IterOption {
	return func(c *iterConfig) {
		if n <= 0 && c.err == nil {
			c.err = goErr("WithBatchBytes", StatusInvalidArgument, "batch size %d is not positive", n)
		}
		c.maxBytes = n
	}
}

// WithBatchEntries limits how many entries one library call fetches
// (default: as many as fit in the buffer). WithBatchEntries(1) fetches one
// entry per call; with n = a page size, each page of a paginated scan is one
// call and Token is free. n <= 0 is invalid (see IterOption).
func WithBatchEntries(n int) IterOption {
	return func(c *iterConfig) {
		if n <= 0 && c.err == nil {
			c.err = goErr("WithBatchEntries", StatusInvalidArgument, "batch entries %d is not positive", n)
		}
		c.maxEntries = n
	}
}

// ent locates one entry of a batch buffer.
type ent struct {
	ko, kl, vl uint32 // key offset, key length, value length
	pk         uint32 // offset of the iterator's own copy of the key in keys
}

// Iterator walks a map or a snapshot. It fetches entries in batches (one
// library call per batch, mc_iter_next_batch) and hands them out one by one:
//
//	it := m.Strict()
//	for it.Next() {
//		use(it.Key(), it.Value())
//	}
//	if err := it.Err(); err != nil { ... }
//
// or with range-over-func, checking Err after the loop:
//
//	for k, v := range it.All() { ... }
//	if err := it.Err(); err != nil { ... }
//
// An Iterator is not safe for concurrent use; the map it walks is. It holds
// no library resource and needs no closing.
type Iterator struct {
	m      *Map      // nil for snapshot iterators
	s      *Snapshot // nil for map iterators
	kind   C.int
	id     uint64
	closed *atomic.Bool
	mode   Mode
	cfg    iterConfig
	done   <-chan struct{} // cfg.ctx.Done()

	// Tokens. before is positioned just before batch entry beforeIdx (its
	// last returned entry is beforeIdx-1); after is positioned after the
	// whole batch and is usable while afterOK (a strict Remove through
	// before restamps before only, leaving after stale).
	before, after C.mc_iter
	beforeIdx     int
	afterOK       bool

	buf      []byte // bytes of the current batch, handed out by Key and Value
	ents     []ent
	cur      int // index of the current entry in ents, -1 if none
	key, val []byte
	// keys holds the iterator's own copy of the batch's keys: the caller
	// may write into what Key returned, so what the iterator acts on
	// (re-reads, re-positioning, seeks, cursor Remove) never lives in buf.
	keys []byte

	store   []byte // buffer for the next fetch
	scratch []byte // buffer for re-reads
	vbuf    []byte // re-read values in no-copy mode
	size    int    // size of the next fetch buffer

	watch    *watchState
	sg0, wg0 uint64 // the map's change counts when the batch was fetched
	recheck  bool   // a write happened since the fetch: re-read entries

	finished bool
	err      error
	unplaced bool // construction failed: there is no position for Token
}

// watchState registers an iterator holding a batch with the library as a
// reader of its map's change count (mc_map_watch: the count moves only
// while someone watches); a runtime cleanup unregisters an abandoned one.
type watchState struct {
	m  *Map
	on atomic.Bool
}

func unwatchCleanup(w *watchState) { w.stop() }

func (w *watchState) stop() {
	if w.on.Swap(false) {
		// A closed map's registrations ended with it (BAD_HANDLE here).
		dropRes(C.gm_watch(C.uint64_t(w.m.id), 0))
	}
}

// Iter returns an iterator over the map in the given mode.
func (m *Map) Iter(mode Mode, opts ...IterOption) *Iterator {
	return newIterator(m, nil, mode, nil, opts)
}

// Strict returns a strict (fail-fast) iterator: see ModeStrict. It is
// stamped now, not at the first Next: a structural change made before the
// first Next already invalidates it.
func (m *Map) Strict(opts ...IterOption) *Iterator { return m.Iter(ModeStrict, opts...) }

// Cursor returns a cursor (resumable, never invalidated) iterator: see ModeCursor.
func (m *Map) Cursor(opts ...IterOption) *Iterator { return m.Iter(ModeCursor, opts...) }

// Resume continues an iteration of this map from a token saved with
// Iterator.Token, in the token's mode. A token of another map gives
// ErrWrongMap, a forged or corrupted one ErrBadToken (from Err). The zero
// Token starts a new iteration in cursor mode (as m.Cursor).
func (m *Map) Resume(tok Token, opts ...IterOption) *Iterator {
	return newIterator(m, nil, tok.Mode(), resumeFrom(tok), opts)
}

// resumeFrom is the position newIterator starts from: nil (the beginning)
// for the zero Token.
func resumeFrom(tok Token) *Token {
	if tok.IsZero() {
		return nil
	}
	return &tok
}

// All returns a range-over-func iterator over the map's entries, in cursor
// mode (never invalidated; see ModeCursor), with copied keys and values:
//
//	for k, v := range m.All() { ... }
//
// It may be used while the map is being modified, including by the loop
// body. Errors (only possible if the map is closed during the loop, or an
// internal library error) end the loop early; use Cursor or Strict with
// Iterator.Err when you need to see them.
func (m *Map) All() iter.Seq2[[]byte, []byte] {
	return func(yield func([]byte, []byte) bool) {
		it := m.Cursor()
		defer it.release()
		for it.Next() {
			if !yield(it.Key(), it.Value()) {
				return
			}
		}
	}
}

// Keys returns a range-over-func iterator over the map's keys (see All).
func (m *Map) Keys() iter.Seq[[]byte] {
	return func(yield func([]byte) bool) {
		it := m.Cursor()
		defer it.release()
		for it.Next() {
			if !yield(it.Key()) {
				return
			}
		}
	}
}

// Scan calls fn for every entry of the map in cursor mode (see ModeCursor),
// checking ctx between entries. It returns nil when the scan is complete,
// ctx.Err() when ctx is done, fn's error when fn fails, or the iteration
// error. fn gets copies and may modify the map.
func (m *Map) Scan(ctx context.Context, fn func(key, val []byte) error) error {
	return scan(ctx, m.Cursor(WithContext(ctx)), fn)
}

func scan(ctx context.Context, it *Iterator, fn func(key, val []byte) error) error {
	defer it.release()
	for it.Next() {
		if err := fn(it.Key(), it.Value()); err != nil {
			return err
		}
	}
	if err := it.Err(); err != nil {
		return err
	}
	return ctx.Err()
}

func newIterator(m *Map, s *Snapshot, mode Mode, tok *Token, opts []IterOption) *Iterator {
	it := &Iterator{m: m, s: s, mode: mode, cur: -1, afterOK: true}
	it.cfg.maxBytes = defaultBatchBytes
	for _, o := range opts {
		o(&it.cfg)
	}
	if it.cfg.ctx != nil {
		it.done = it.cfg.ctx.Done()
	}
	it.size = min(firstBatchBytes, it.cfg.maxBytes)
	const op = "Iterator"
	if m != nil {
		it.kind, it.id, it.closed = kindMap, m.id, &m.closed
	} else {
		it.kind, it.id, it.closed = kindSnap, s.id, &s.closed
	}
	switch {
	case it.cfg.err != nil:
		it.err = it.cfg.err
	case it.closed.Load():
		it.err = closedErr(op)
	case tok == nil:
		if r := C.gm_iter_init(it.kind, C.uint64_t(it.id), C.uint32_t(mode), &it.before); r.st != C.MC_OK {
			it.err = resErr(op, r)
		}
	default:
		if r := C.gm_decode(it.kind, C.uint64_t(it.id), (*C.char)(unsafe.Pointer(sp(tok.text))), C.size_t(len(tok.text)), &it.before); r.st != C.MC_OK {
			it.err = resErr(op, r)
		}
		runtime.KeepAlive(tok)
	}
	it.unplaced = it.err != nil
	it.after = it.before
	runtime.KeepAlive(m)
	runtime.KeepAlive(s)
	return it
}

// Mode returns the iteration mode (ModeCursor for snapshot iterators).
func (it *Iterator) Mode() Mode { return it.mode }

// Key returns the key of the current entry. By default it is a copy the
// caller may keep and modify (keys and values of one batch share an
// allocation of up to the batch size, which stays reachable while any of
// them is kept); with WithNoCopy it is valid only until the next Next. The
// iterator keeps its own copy of the key: writing into the slice never
// changes what Remove, SetValue, Token or Next act on.
func (it *Iterator) Key() []byte { return it.key }

// Value returns the value of the current entry (see Key).
func (it *Iterator) Value() []byte { return it.val }

// Err returns the error that ended the iteration, or nil if it ended because
// every entry was returned (or has not ended yet). A strict iterator over a
// map changed behind its back reports ErrIterInvalidated here.
func (it *Iterator) Err() error { return it.err }

// All returns a range-over-func iterator over the remaining entries. The
// loop ends early on an error: check Err after the loop. The body may call
// Remove, SetValue and Token on it.
func (it *Iterator) All() iter.Seq2[[]byte, []byte] {
	return func(yield func([]byte, []byte) bool) {
		for it.Next() {
			if !yield(it.key, it.val) {
				return
			}
		}
	}
}

// Keys returns a range-over-func iterator over the remaining keys (see All).
func (it *Iterator) Keys() iter.Seq[[]byte] {
	return func(yield func([]byte) bool) {
		for it.Next() {
			if !yield(it.key) {
				return
			}
		}
	}
}

// zeroIterator is the error of an Iterator that no constructor made (a zero
// value): it walks nothing.
func zeroIterator(op string) error {
	return goErr(op, StatusInvalidArgument, "zero Iterator: make one with Map.Iter, Map.Strict, Map.Cursor, Map.Resume or the Snapshot methods")
}

func (it *Iterator) fail(err error) {
	if it.err == nil {
		it.err = err
	}
	it.unwatch()
}

// release ends the iterator's registration and drops its buffers.
func (it *Iterator) release() {
	it.unwatch()
	it.store, it.scratch, it.vbuf, it.keys = nil, nil, nil, nil
}

// startWatch registers the iterator as a reader of the map's change count
// (once) and notes the counts before a fetch: any write that the fetch does
// not see is counted after them.
func (it *Iterator) startWatch() {
	if it.m == nil {
		return
	}
	if it.watch == nil {
		it.watch = &watchState{m: it.m}
		runtime.AddCleanup(it, unwatchCleanup, it.watch)
	}
	if !it.watch.on.Load() {
		r := C.gm_watch(C.uint64_t(it.m.id), 1)
		if r.st != C.MC_OK {
			// The map is closed or broken: the fetch reports it. Until
			// then, count on nothing: re-check every buffered entry.
			dropRes(r)
			it.recheck = true
			return
		}
		it.watch.on.Store(true)
	}
	it.sg0, it.wg0 = it.m.counts()
	it.recheck = false
}

func (it *Iterator) unwatch() {
	if it.watch != nil {
		it.watch.stop()
	}
}

// Next advances to the next entry and reports whether there is one. It
// returns false at the end of the iteration and on error (see Err).
func (it *Iterator) Next() bool {
	if it.err != nil || it.finished {
		return false
	}
	if it.closed == nil {
		it.fail(zeroIterator("Iterator.Next"))
		return false
	}
	if it.done != nil {
		select {
		case <-it.done:
			it.fail(it.cfg.ctx.Err())
			return false
		default:
		}
	}
	if it.closed.Load() {
		it.fail(closedErr("Iterator.Next"))
		return false
	}
	for {
		if it.cur+1 < len(it.ents) {
			i := it.cur + 1
			e := it.ents[i]
			kEnd := e.ko + e.kl
			vEnd := kEnd + e.vl
			v := it.buf[kEnd:vEnd:vEnd]
			// check only when the map changed since the fetch or a write is
			// in progress: most entries of a batch take this inlined test
			// and no call.
			if m := it.m; m != nil && i > 0 && (it.recheck || m.writing.Load() != 0 ||
				m.changes() != it.wg0) {
				v2, keep, ok := it.check(it.keyAt(i), v)
				if !ok {
					return false
				}
				it.cur = i
				if !keep {
					continue
				}
				v = v2
			}
			it.cur, it.key, it.val = i, it.buf[e.ko:kEnd:kEnd], v
			return true
		}
		if !it.fetch() {
			return false
		}
	}
}

// check handles changes made since the batch was fetched, for the buffered
// entry (k, v) about to be returned. It returns the value to return, whether
// to return the entry (false: skip it), and false in ok to stop.
func (it *Iterator) check(k, v []byte) (val []byte, keep, ok bool) {
	m := it.m
	// A write in progress may already be applied (a long DeleteFunc, this
	// goroutine's own included): check this entry with the library,
	// whatever the counts say.
	busy := m.writing.Load() != 0
	sg, wg := m.counts()
	if it.mode == ModeStrict && (sg != it.sg0 || busy) {
		if err := it.probe(); err != nil {
			it.fail(err)
			return nil, false, false
		}
		it.sg0 = sg
	}
	if wg != it.wg0 {
		it.recheck = true
	}
	if !it.recheck && !busy {
		return v, true, true
	}
	// A write happened since the fetch, or one is in progress: the buffered
	// value may be stale or the entry gone. Re-read it (one call per entry,
	// until the next batch once a write has ended).
	const op = "Iterator.Next"
	var err error
	if it.cfg.noCopy {
		it.vbuf, err = appendValue(op, kindMap, it.id, bp(k), len(k), it.vbuf[:0])
		val = it.vbuf
	} else {
		val, err = getValue(op, kindMap, it.id, it.closed, &it.m.valHint, bp(k), len(k))
	}
	runtime.KeepAlive(k)
	switch {
	case err == nil:
		return val, true, true
	case err != ErrNotFound:
		it.fail(err)
		return nil, false, false
	case it.mode == ModeCursor:
		return nil, false, true // removed before the cursor reached it: skip
	}
	// Strict: an entry vanished, so there was a structural change.
	if err := it.probe(); err != nil {
		it.fail(err)
	} else {
		it.fail(goErr(op, StatusInternal, "library inconsistency: an entry vanished but the strict token was not invalidated"))
	}
	return nil, false, false
}

// probe asks the library whether the strict token is still valid, without
// advancing it.
func (it *Iterator) probe() error {
	u := it.before
	r := C.gm_next_batch(it.kind, C.uint64_t(it.id), &u, nil, 0, 1)
	switch r.st {
	case C.MC_OK, C.MC_DONE, C.MC_ERR_BUFFER_TOO_SMALL:
		return nil
	}
	return resErr("Iterator.Next", r)
}

// fetch loads the next batch. It returns false at the end and on error.
func (it *Iterator) fetch() bool {
	const op = "Iterator.Next"
	if len(it.ents) > 0 && !it.afterOK {
		// A strict Remove restamped `before` only: walk it to the batch end.
		if err := it.positionAt(len(it.ents) - 1); err != nil {
			it.fail(err)
			return false
		}
		it.after, it.afterOK = it.before, true
	}
	if it.cfg.noCopy && it.buf != nil {
		it.store = it.buf[:cap(it.buf)]
	}
	it.before, it.beforeIdx = it.after, 0
	it.buf, it.ents, it.cur, it.key, it.val = nil, it.ents[:0], -1, nil, nil
	it.startWatch()
	maxEntries := C.size_t(1 << 30)
	if it.cfg.maxEntries > 0 {
		maxEntries = C.size_t(it.cfg.maxEntries)
	}
	for {
		buf := it.fetchBuf(it.size)
		r := C.gm_next_batch(it.kind, C.uint64_t(it.id), &it.after, bp(buf), C.size_t(len(buf)), maxEntries)
		runtime.KeepAlive(it.m)
		runtime.KeepAlive(it.s)
		count, used := int(r.n), int(r.used)
		switch r.st {
		case C.MC_OK:
		case C.MC_DONE:
			it.finished = true
			it.before = it.after
			it.unwatch()
			return false
		case C.MC_ERR_BUFFER_TOO_SMALL:
			// Not even one entry fits: fetch it alone into a buffer of its size.
			it.size = max(used, it.size)
			continue
		default:
			it.fail(resErr(op, r))
			return false
		}
		b := buf[:used]
		ents, ok := parseBatch(b, count, it.ents[:0])
		if !ok {
			it.fail(goErr(op, StatusInternal, "library returned a malformed batch (%d entries, %d bytes)", count, used))
			return false
		}
		it.ents = ents
		it.copyKeys(b)
		if it.cfg.noCopy {
			it.buf = b
		} else if used*4 <= cap(buf) {
			it.buf = bytes.Clone(b) // small batch: keep the big buffer for the next one
		} else {
			it.buf = b[:used:used] // hand the buffer out; allocate a new one next time
			it.store = nil
		}
		if it.size > it.cfg.maxBytes {
			it.size = it.cfg.maxBytes // a huge entry was fetched alone; go back to normal
		} else {
			it.size = min(2*it.size, it.cfg.maxBytes)
		}
		return true
	}
}

// mirrorBytes is the average entry size up to which copyKeys copies the
// whole batch: one memmove of a batch of small entries costs less than one
// call per key (a third, for 16-byte keys and 32-byte values).
const mirrorBytes = 128

// copyKeys makes the iterator's own copy of the keys of batch b, whose
// entries it.ents locates (their pk are their offsets in b, as parseBatch
// sets them): a copy of the whole batch, or for large entries each key
// packed back to back, with pk set to its offset.
func (it *Iterator) copyKeys(b []byte) {
	if len(b) <= mirrorBytes*len(it.ents) {
		it.keys = append(it.keys[:0], b...)
		return
	}
	keys := it.keys[:0]
	for j := range it.ents {
		e := &it.ents[j]
		e.pk = uint32(len(keys))
		keys = append(keys, b[e.ko:e.ko+e.kl]...)
	}
	it.keys = keys
}

// fetchBuf returns a buffer of n bytes for C to fill.
func (it *Iterator) fetchBuf(n int) []byte {
	if cap(it.store) < n || cap(it.store) > 4*max(n, it.cfg.maxBytes) {
		it.store = make([]byte, n)
	}
	return it.store[:n]
}

// parseBatch walks the documented next-batch layout: u32 key length, u32
// value length (host order), key bytes, value bytes; no padding.
func parseBatch(b []byte, count int, ents []ent) ([]ent, bool) {
	off := 0
	for off < len(b) {
		if len(b)-off < batchHeader {
			return ents, false
		}
		kl := binary.NativeEndian.Uint32(b[off:])
		vl := binary.NativeEndian.Uint32(b[off+4:])
		ko := off + batchHeader
		end := ko + int(kl) + int(vl)
		if end > len(b) || end < ko {
			return ents, false
		}
		ents = append(ents, ent{ko: uint32(ko), kl: kl, vl: vl, pk: uint32(ko)})
		off = end
	}
	return ents, len(ents) == count
}

// keyAt returns the iterator's own copy of the key of batch entry i.
func (it *Iterator) keyAt(i int) []byte {
	e := it.ents[i]
	return it.keys[e.pk : e.pk+e.kl]
}

// span returns the bytes entries i..j take in a batch buffer.
func (it *Iterator) span(i, j int) int {
	a, b := it.ents[i], it.ents[j]
	return int(b.ko+b.kl+b.vl) - (int(a.ko) - batchHeader)
}

// readAhead advances *t by up to max entries, reading them into the scratch
// buffer, and returns their keys (valid until the next readAhead). hint is
// the expected byte size. It returns the status MC_OK or MC_DONE.
func (it *Iterator) readAhead(t *C.mc_iter, maxN, hint int) ([][]byte, C.int32_t, error) {
	need := max(hint, 4096)
	for range 64 {
		if cap(it.scratch) < need {
			it.scratch = make([]byte, need)
		}
		sc := it.scratch[:cap(it.scratch)]
		r := C.gm_next_batch(it.kind, C.uint64_t(it.id), t, bp(sc), C.size_t(len(sc)), C.size_t(maxN))
		st := r.st
		switch st {
		case C.MC_OK:
			ents, ok := parseBatch(sc[:r.used], int(r.n), nil)
			if !ok {
				return nil, st, goErr("Iterator", StatusInternal, "library returned a malformed batch")
			}
			keys := make([][]byte, len(ents))
			for i, en := range ents {
				keys[i] = sc[en.ko : en.ko+en.kl]
			}
			return keys, st, nil
		case C.MC_DONE:
			return nil, st, nil
		case C.MC_ERR_BUFFER_TOO_SMALL:
			need = max(2*need, int(r.used))
			continue
		}
		return nil, st, resErr("Iterator", r)
	}
	return nil, C.MC_ERR_INTERNAL, goErr("Iterator", StatusInternal, "entries keep growing")
}

// positionAt moves `before` so that its last returned entry is batch entry
// i (strict and snapshot iterators, where re-reading from `before` yields
// exactly the batch again: any structural change would invalidate the
// token instead). This is what lets Remove, SetValue and Token act on the
// entry the caller is looking at rather than on the last one of the batch.
func (it *Iterator) positionAt(i int) error {
	const op = "Iterator"
	if i < it.beforeIdx-1 || i >= len(it.ents) {
		return goErr(op, StatusInternal, "binding bug: position %d outside [%d, %d)", i, it.beforeIdx-1, len(it.ents))
	}
	if i == it.beforeIdx-1 {
		return nil
	}
	if it.afterOK && i == len(it.ents)-1 {
		it.before, it.beforeIdx = it.after, i+1
		return nil
	}
	k := i - it.beforeIdx + 1
	need := it.span(it.beforeIdx, i)
	for range 64 {
		u := it.before
		keys, st, err := it.readAhead(&u, k, need)
		if err != nil {
			return err
		}
		if st == C.MC_DONE {
			return goErr(op, StatusInternal, "library inconsistency: entries vanished but the token was not invalidated")
		}
		if len(keys) < k {
			need *= 2 // values grew since the batch was read: more room
			continue
		}
		for j, key := range keys {
			if !bytes.Equal(key, it.keyAt(it.beforeIdx+j)) {
				return goErr(op, StatusInternal, "library inconsistency: re-reading a strict token gave another entry sequence")
			}
		}
		it.before, it.beforeIdx = u, i+1
		return nil
	}
	return goErr(op, StatusInternal, "entries keep growing")
}

// ownWrite brackets a write made by the iterator itself (Remove, SetValue),
// so that it does not make the iterator re-check its own batch.
type ownWrite struct {
	sg, wg uint64
	clean  bool
}

func (it *Iterator) beginOwn() ownWrite {
	sg, wg := it.m.counts()
	return ownWrite{sg, wg, sg == it.sg0 && wg == it.wg0 && !it.recheck}
}

func (it *Iterator) endOwn(o ownWrite, structural bool) {
	if !o.clean {
		return
	}
	ds := uint64(0)
	if structural {
		ds = 1
	}
	sg, wg := it.m.counts()
	if sg == o.sg+ds && wg == o.wg+1 { // nobody else wrote in between
		it.sg0, it.wg0 = sg, wg
	}
}

func noCurrent(op string) error {
	return goErr(op, StatusNotFound, "no current entry")
}

// writable reports why the current entry cannot be changed through it, if
// it cannot.
func (it *Iterator) writable(op string) error {
	if it.err != nil {
		return it.err
	}
	if it.closed == nil {
		return zeroIterator(op)
	}
	if it.cur < 0 {
		return noCurrent(op)
	}
	if it.m == nil {
		return goErr(op, StatusInvalidArgument, "snapshot iterators are read-only")
	}
	if it.closed.Load() {
		return closedErr(op)
	}
	return nil
}

// Remove deletes the current entry (the one Key returns). The iteration
// goes on and still returns every other entry exactly once; in strict mode
// the iterator stays valid while other strict iterators of the map are
// invalidated. It returns ErrNotFound if there is no current entry or it was
// already removed, ErrInvalidArgument on a snapshot iterator, and the
// iteration's error (Err) once Next has failed.
//
// Strict mode: Remove re-positions a copy of the library token on the
// current entry (one extra call that re-reads the part of the batch before
// it) and removes through it (mc_iter_remove), since the batch token points
// past the whole batch. Cursor mode: Remove deletes the current key, which a
// cursor scan tolerates by design.
func (it *Iterator) Remove() error {
	const op = "Iterator.Remove"
	if err := it.writable(op); err != nil {
		return err
	}
	if it.mode == ModeCursor {
		k := it.keyAt(it.cur)
		o := it.beginOwn()
		ok, err := it.m.del(op, bp(k), len(k))
		runtime.KeepAlive(k)
		if err != nil {
			return err
		}
		if !ok {
			return goErr(op, StatusNotFound, "the current entry was already removed")
		}
		it.endOwn(o, true)
		return nil
	}
	if err := it.positionAt(it.cur); err != nil {
		return err
	}
	o := it.beginOwn()
	it.m.beginWrite()
	r := C.gm_iter_remove(C.uint64_t(it.id), &it.before)
	runtime.KeepAlive(it.m)
	it.m.endWrite()
	if r.st != C.MC_OK {
		return resErr(op, r)
	}
	it.afterOK = false
	it.endOwn(o, true)
	return nil
}

// SetValue replaces the value of the current entry (not a structural change:
// no iterator is invalidated). It returns ErrNotFound if the entry is gone.
// Afterwards Value returns a copy of val.
func (it *Iterator) SetValue(val []byte) error {
	const op = "Iterator.SetValue"
	if err := it.writable(op); err != nil {
		return err
	}
	var tok *C.mc_iter
	if it.mode == ModeCursor {
		t, err := it.seekCursor(it.cur)
		if err != nil {
			return err
		}
		tok = &t
	} else {
		if err := it.positionAt(it.cur); err != nil {
			return err
		}
		tok = &it.before
	}
	o := it.beginOwn()
	it.m.beginWrite()
	r := C.gm_iter_set_value(C.uint64_t(it.id), tok, bp(val), C.size_t(len(val)))
	runtime.KeepAlive(it.m)
	runtime.KeepAlive(val)
	it.m.endWrite()
	if r.st != C.MC_OK {
		return resErr(op, r)
	}
	it.endOwn(o, false)
	it.val = bytes.Clone(val)
	if it.val == nil {
		it.val = []byte{}
	}
	return nil
}

// Token returns a token positioned after the current entry (or where the
// iteration stands if there is none yet): resuming it with Map.Resume or
// Snapshot.Resume continues with the entry after the current one. After
// the end of the iteration it resumes to an empty iteration.
//
// Tip: for pagination use WithBatchEntries(pageSize) and take the token
// after the page's last entry: it is then the library's own batch token.
func (it *Iterator) Token() (Token, error) {
	const op = "Iterator.Token"
	if it.closed == nil {
		return Token{}, zeroIterator(op)
	}
	if it.unplaced {
		return Token{}, it.err
	}
	if it.closed.Load() {
		return Token{}, closedErr(op)
	}
	tok := it.before
	if it.cur >= 0 {
		if it.m != nil && it.mode == ModeCursor {
			t, err := it.seekCursor(it.cur)
			if err != nil {
				return Token{}, err
			}
			tok = t
		} else {
			if err := it.positionAt(it.cur); err != nil {
				return Token{}, err
			}
			tok = it.before
		}
	}
	var buf [iterTextBuf]C.char
	r := C.gm_encode(it.kind, C.uint64_t(it.id), &tok, &buf[0], C.size_t(len(buf)))
	runtime.KeepAlive(it.m)
	runtime.KeepAlive(it.s)
	if r.st != C.MC_OK {
		return Token{}, resErr(op, r)
	}
	return Token{mode: it.mode, text: string(unsafe.Slice((*byte)(unsafe.Pointer(&buf[0])), int(r.n)))}, nil
}

const iterTextBuf = 128

// seekCursor returns a cursor token positioned on batch entry i (K): the
// library places it from K's key alone (mc_iter_seek), so it is exact even
// when other goroutines inserted or removed entries since the batch was
// read. Resuming it continues after K; SetValue through it acts on K (or
// fails with ErrNotFound if K is gone).
func (it *Iterator) seekCursor(i int) (C.mc_iter, error) {
	const op = "Iterator"
	if i == len(it.ents)-1 {
		return it.after, nil
	}
	t := it.before
	k := it.keyAt(i)
	r := C.gm_iter_seek(C.uint64_t(it.id), &t, bp(k), C.size_t(len(k)))
	runtime.KeepAlive(it.m)
	runtime.KeepAlive(k)
	if r.st != C.MC_OK {
		return t, resErr(op, r)
	}
	return t, nil
}
