// Package mapcore is a Go binding of libmapcore, a hash map of byte strings
// that lives off the Go heap (no GC scanning of millions of entries) and
// whose iterators are safe under modification: every way of iterating while
// the map changes is defined, and either goes on with a documented guarantee
// or fails with an explicit error.
//
// # Quick start
//
//	m, err := mapcore.New()
//	if err != nil { ... }
//	defer m.Close()
//
//	m.Set([]byte("alice"), []byte("admin"))       // or m.SetString("alice", "admin")
//	v, err := m.Get([]byte("alice"))               // a copy; ErrNotFound if absent
//	for k, v := range m.All() { ... }              // may modify m inside the loop
//
//	it := m.Strict()                               // fail-fast iteration
//	for k, v := range it.All() {
//		if expired(v) {
//			it.Remove()                            // delete while iterating: safe
//		}
//	}
//	if err := it.Err(); err != nil { ... }         // always check after the loop
//
// Keys and values are copied in and out: the map never retains a caller's
// slice, and slices it returns belong to the caller. The empty key is a
// valid key. Limits: MaxKeyLen, MaxValueLen (writes beyond them fail with
// ErrTooLarge; lookups and deletes report a longer key absent).
// Every method of Map and Snapshot is safe for concurrent use.
//
// # Iteration modes
//
//	mode             how                       guarantee
//	---------------  ------------------------  -------------------------------------------------
//	strict           m.Strict()                every entry exactly once; any structural change
//	                                           (new key, delete, Clear, Reserve, ShrinkToFit, a
//	                                           Remove through another iterator) not made through
//	                                           this iterator ends it with ErrIterInvalidated.
//	                                           Value overwrites are not structural: the new
//	                                           value is seen. Remove/SetValue through the
//	                                           iterator keep it valid. It is stamped when
//	                                           m.Strict returns, not at the first Next: a
//	                                           change in between already invalidates it.
//	cursor           m.Cursor(), m.All(),      never invalidated, resumable: keys present from
//	                 m.Keys(), m.Scan()        start to end are returned exactly once; a key
//	                                           removed before the scan reaches it is not
//	                                           returned; a key inserted during the scan at most
//	                                           once; no key twice.
//	snapshot         m.Snapshot() then         a frozen point-in-time view, while writers go on;
//	                 s.Iter(), s.All()         taking one copies no entries. Read-only.
//
// Any iteration can be saved as a Token (Iterator.Token), turned into text
// (MarshalText, safe for untrusted clients: no hash values, tampering
// detected) and resumed later with Map.Resume or Snapshot.Resume, e.g. for
// pagination. The zero Token stands for "from the beginning": it marshals
// to empty text, empty text unmarshals to it, and resuming it starts a new
// cursor iteration, so a last page's empty next-token survives JSON. A
// context can stop an iteration: WithContext, Map.Scan.
//
// # Errors and range loops
//
// A range-over-func loop cannot return an error, so iterators report errors
// like bufio.Scanner: the loop ends early and Err tells why.
//
//	it := m.Strict()
//	for k, v := range it.All() { ... }   // or: for it.Next() { it.Key(), it.Value() }
//	if err := it.Err(); err != nil {     // nil: every entry was returned
//		// ErrIterInvalidated, ErrClosed, ctx.Err() with WithContext, ...
//	}
//
// The shorthands Map.All, Map.Keys, Snapshot.All and Snapshot.Keys have no
// iterator to ask: they use cursor mode, where the only possible errors are
// the map being closed during the loop and an internal library error, and
// such an error simply ends the loop. Use an explicit iterator when you
// need to tell "done" from "failed".
//
// Every failure is an *Error carrying the operation, the library status and
// the library's detail message. Test it with errors.Is against the
// sentinels: ErrNotFound, ErrClosed, ErrIterInvalidated, ErrBadToken,
// ErrWrongMap, ErrTooLarge, ErrInvalidArgument, ErrReentrant, ErrPoisoned,
// ErrInternal, ErrOutOfMemory, ErrNullArgument (ErrBufferTooSmall is never
// returned: the binding grows its buffers itself). Get returns ErrNotFound
// itself for an absent key, without allocating; Lookup is the comma-ok form.
//
// The library keeps the detail message of a failure in a thread-local
// variable, but a goroutine can move to another OS thread between two cgo
// calls; so every call goes through a small C shim that calls the library
// and, on failure, copies the detail within the same C call. The shims
// return their outputs by value, so a successful call allocates only what
// it returns: nothing for Set, Delete, Contains, Len, and for AppendValue
// and AppendMany into buffers with room; the value for Get; the values and
// the slice of them for GetMany.
//
// # Batches, and changes made while iterating
//
// A cgo call costs about as much as a Go map lookup (inside a loop of
// cache-missing lookups, several times what it costs in a tight loop: see
// bench/README.md), so lookups of many keys belong in GetMany or, reusing
// buffers, AppendMany, and iterators fetch
// entries in batches (mc_iter_next_batch: by default up to 64 KiB per
// call) and hand them out one by one; GetMany, SetMany and DeleteMany do
// many keys in one call. Batching must not weaken the guarantees above, so:
//
//   - The library counts the changes to a map in memory this package reads
//     without a call (mc_map_counters), and counts each write before any
//     other call can see it; it counts while some reader is registered, and
//     an iterator registers (mc_map_watch, one call) before its first fetch
//     until it ends or is collected. Before returning a buffered entry,
//     an iterator compares those counts with the ones it noted before the
//     fetch, so it sees every write made since: through this package, by
//     other goroutines, or by C code through Map.Handle. It also checks for
//     writes in progress through this package (a long DeleteFunc, whose
//     callback may itself call Next: that Next fails with ErrReentrant).
//     After a change, a strict iterator asks the library whether it is
//     still valid (so a structural change is reported by the very next
//     Next, not a batch later), and any iterator re-reads the entry from
//     the map (a cursor iterator skips it if it was deleted; values are the
//     current ones). While another goroutine keeps writing, each Next is
//     thus one or two library calls instead of none; without writes it
//     costs one atomic load.
//   - Iterator.Remove deletes the entry the caller is looking at, although
//     the library's token points past the whole batch (mc_iter_remove
//     removes the entry the token returned last). In strict mode the
//     iterator keeps a second token positioned before the first buffered
//     entry not yet passed; Remove re-reads the batch up to the current
//     entry from that token (one call, which verifies the keys match) and
//     removes through it. The library then restamps that token only, so the
//     iteration stays valid; the rest of the batch is still returned from
//     the buffer, and the next batch starts from the re-positioned token.
//     In cursor mode Remove deletes the current key, which a cursor scan
//     tolerates by design. Strict Token and SetValue re-position the same
//     way; in cursor mode they place a token on the current key with
//     mc_iter_seek (a key's place in the order depends on the key alone), so
//     a token taken mid-batch is exact even while other goroutines change
//     the map.
//   - By default keys and values are slices of a fresh allocation per
//     batch that the caller may keep and modify. WithNoCopy yields slices
//     of the iterator's reused buffer, valid only until the next Next (like
//     bufio.Scanner.Bytes): faster, no allocation. Either way the iterator
//     keeps its own copy of each batch's keys, which is what Remove,
//     SetValue, Token and the re-checks act on: writing into a returned
//     slice changes nothing but what that slice shows.
//
// # Bulk deletion and callbacks
//
// DeleteFunc deletes the entries a func selects, without an iterator. The
// func runs inside the library call, under a lock of the map: it must not
// call methods of the same map (they fail with ErrReentrant) nor wait for
// goroutines that do. It gets copies of the entry, valid during the call.
//
// # Lifetime
//
// Close frees a map; it is idempotent and safe while other goroutines use
// the map: their calls finish normally or fail with ErrClosed (the library
// turns a freed handle into MC_ERR_BAD_HANDLE, never undefined behaviour).
// A Map or Snapshot that becomes unreachable without Close is freed by a
// runtime cleanup (runtime.AddCleanup). Iterators and Tokens hold no library
// resource and need no closing; an iterator keeps its map alive.
//
// # Linking
//
// The package links libmapcore statically by default, from
// ../target/release/libmapcore.a relative to this package (build it with
// `make lib` at the repository root): a program importing it builds with
// plain `go build` and runs without LD_LIBRARY_PATH or an installed
// library. The system libraries the Rust static library needs
// (`rustc --print native-static-libs`) are in the #cgo LDFLAGS. One caveat:
// a Go binary cannot link two Rust static libraries (each carries a copy of
// the Rust standard library, and their symbols clash). If your program
// needs another Rust staticlib, build with -tags mapcore_dynamic to link
// libmapcore.so instead (found through an rpath to the build directory).
//
// No Go memory holding Go pointers is ever passed to C: keys and values
// passed to the library are plain byte buffers (batches are packed into one
// buffer), and the DeleteFunc callback reaches its Go func through a
// cgo.Handle. The tests also run under GOEXPERIMENT=cgocheck2
// (scripts/test.sh).
package mapcore
