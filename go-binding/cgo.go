package mapcore

// The C shims below are the only way this package calls libmapcore. Each shim
// calls one mc_ function and returns a gm_res struct by value: the status,
// the call's output integers (kept in the shim's own frame, not in Go
// memory) and, when the call failed, a malloc'd copy of the thread-local
// detail message (mc_last_error) taken within the same C call: a goroutine
// may run on another OS thread at its next cgo call, so the detail could not
// be fetched reliably by a second call. resErr turns that into an *Error
// and frees the copy; success paths allocate nothing.
//
// `#cgo noescape` tells the compiler that the shims keep no Go pointer after
// they return (true: libmapcore copies everything in and out), so the
// buffers passed to them (keys, a Get's small stack buffer, iterator tokens)
// need not be moved to the heap; it takes effect only together with `#cgo
// nocallback`, which marks the shims that never call back into Go (all but
// gm_retain). TestAllocations checks the result.

/*
#cgo CFLAGS: -I${SRCDIR}/../include -O2
#cgo noescape gm_new
#cgo nocallback gm_new
#cgo noescape gm_free
#cgo nocallback gm_free
#cgo noescape gm_counters
#cgo nocallback gm_counters
#cgo noescape gm_watch
#cgo nocallback gm_watch
#cgo noescape gm_set
#cgo nocallback gm_set
#cgo noescape gm_get
#cgo nocallback gm_get
#cgo noescape gm_contains
#cgo nocallback gm_contains
#cgo noescape gm_delete
#cgo nocallback gm_delete
#cgo noescape gm_len
#cgo nocallback gm_len
#cgo noescape gm_clear
#cgo nocallback gm_clear
#cgo noescape gm_reserve
#cgo nocallback gm_reserve
#cgo noescape gm_shrink
#cgo nocallback gm_shrink
#cgo noescape gm_get_many
#cgo nocallback gm_get_many
#cgo noescape gm_set_many
#cgo nocallback gm_set_many
#cgo noescape gm_delete_many
#cgo nocallback gm_delete_many
#cgo noescape gm_retain
#cgo noescape gm_iter_init
#cgo nocallback gm_iter_init
#cgo noescape gm_next_batch
#cgo nocallback gm_next_batch
#cgo noescape gm_iter_remove
#cgo nocallback gm_iter_remove
#cgo noescape gm_iter_set_value
#cgo nocallback gm_iter_set_value
#cgo noescape gm_encode
#cgo nocallback gm_encode
#cgo noescape gm_decode
#cgo nocallback gm_decode
#cgo noescape gm_snapshot_new
#cgo nocallback gm_snapshot_new
#cgo noescape gm_snapshot_free
#cgo nocallback gm_snapshot_free

#include "shims.h"
*/
import "C"

import (
	"strings"
	"unsafe"
)

// Limits of the C library (include/mapcore.h).
const (
	MaxKeyLen   = 1 << 20 // longest key in bytes (MC_MAX_KEY_LEN)
	MaxValueLen = 1 << 30 // longest value in bytes (MC_MAX_VALUE_LEN)
	MaxBatch    = 1 << 24 // most keys in one GetMany/SetMany/DeleteMany call (MC_MAX_BATCH)
	MaxCapacity = 1 << 31 // most entries WithCapacity or Reserve may ask room for (MC_MAX_CAPACITY)
)

// ABIVersion is the ABI version of the header this package was written
// for (MC_ABI_VERSION); LibraryABIVersion reports the linked library's, and
// New fails if they differ.
const ABIVersion = 1

// Compile-time checks that the Go constants equal the header's: an array
// type with a negative length does not compile.
type (
	_ [MaxKeyLen - C.MC_MAX_KEY_LEN]struct{}
	_ [C.MC_MAX_KEY_LEN - MaxKeyLen]struct{}
	_ [MaxValueLen - C.MC_MAX_VALUE_LEN]struct{}
	_ [C.MC_MAX_VALUE_LEN - MaxValueLen]struct{}
	_ [MaxBatch - C.MC_MAX_BATCH]struct{}
	_ [C.MC_MAX_BATCH - MaxBatch]struct{}
	_ [MaxCapacity - C.MC_MAX_CAPACITY]struct{}
	_ [C.MC_MAX_CAPACITY - MaxCapacity]struct{}
	_ [ABIVersion - C.MC_ABI_VERSION]struct{}
	_ [C.MC_ABI_VERSION - ABIVersion]struct{}
	_ [ModeStrict - C.MC_MODE_STRICT]struct{}
	_ [C.MC_MODE_STRICT - ModeStrict]struct{}
	_ [ModeCursor - C.MC_MODE_CURSOR]struct{}
	_ [C.MC_MODE_CURSOR - ModeCursor]struct{}
	_ [StatusNotFound - C.MC_ERR_NOT_FOUND]struct{}
	_ [C.MC_ERR_NOT_FOUND - StatusNotFound]struct{}
	_ [StatusBadHandle - C.MC_ERR_BAD_HANDLE]struct{}
	_ [C.MC_ERR_BAD_HANDLE - StatusBadHandle]struct{}
	_ [StatusIterInvalidated - C.MC_ERR_ITER_INVALIDATED]struct{}
	_ [C.MC_ERR_ITER_INVALIDATED - StatusIterInvalidated]struct{}
	_ [StatusBadToken - C.MC_ERR_BAD_TOKEN]struct{}
	_ [C.MC_ERR_BAD_TOKEN - StatusBadToken]struct{}
	_ [StatusWrongMap - C.MC_ERR_WRONG_MAP]struct{}
	_ [C.MC_ERR_WRONG_MAP - StatusWrongMap]struct{}
	_ [StatusBufferTooSmall - C.MC_ERR_BUFFER_TOO_SMALL]struct{}
	_ [C.MC_ERR_BUFFER_TOO_SMALL - StatusBufferTooSmall]struct{}
	_ [StatusNullArgument - C.MC_ERR_NULL_ARGUMENT]struct{}
	_ [C.MC_ERR_NULL_ARGUMENT - StatusNullArgument]struct{}
	_ [StatusTooLarge - C.MC_ERR_TOO_LARGE]struct{}
	_ [C.MC_ERR_TOO_LARGE - StatusTooLarge]struct{}
	_ [StatusOutOfMemory - C.MC_ERR_OUT_OF_MEMORY]struct{}
	_ [C.MC_ERR_OUT_OF_MEMORY - StatusOutOfMemory]struct{}
	_ [StatusInternal - C.MC_ERR_INTERNAL]struct{}
	_ [C.MC_ERR_INTERNAL - StatusInternal]struct{}
	_ [StatusInvalidArgument - C.MC_ERR_INVALID_ARGUMENT]struct{}
	_ [C.MC_ERR_INVALID_ARGUMENT - StatusInvalidArgument]struct{}
	_ [StatusReentrant - C.MC_ERR_REENTRANT]struct{}
	_ [C.MC_ERR_REENTRANT - StatusReentrant]struct{}
	_ [StatusPoisoned - C.MC_ERR_POISONED]struct{}
	_ [C.MC_ERR_POISONED - StatusPoisoned]struct{}
	_ [StatusDone - C.MC_DONE]struct{}
	_ [C.MC_DONE - StatusDone]struct{}
)

// LibraryABIVersion returns the ABI version of the linked libmapcore.
func LibraryABIVersion() uint32 { return uint32(C.mc_abi_version()) }

const (
	kindMap  = C.int(C.GM_MAP)
	kindSnap = C.int(C.GM_SNAP)

	batchHeader = int(C.MC_BATCH_ENTRY_HEADER)
	iterTextLen = int(C.MC_ITER_TEXT_LEN)
	absent      = uint32(C.MC_ABSENT)
)

type cres = C.gm_res

// resErr turns a failed result into an *Error, taking (and freeing) the
// detail message the shim copied.
func resErr(op string, r cres) error {
	detail := ""
	if r.detail != nil {
		detail = C.GoString(r.detail)
		C.free(unsafe.Pointer(r.detail))
		// The library's message may start with the status name: drop it.
		detail = strings.TrimPrefix(detail, Status(r.st).String()+": ")
		if detail == Status(r.st).String() {
			detail = ""
		}
	}
	if Status(r.st) == StatusBadHandle {
		// The binding's handles are only ever bad once closed; the
		// library's wording speaks of C handles.
		return closedErr(op)
	}
	return &Error{Op: op, Status: Status(r.st), Detail: detail}
}

// dropRes frees the detail of a result whose failure is not reported.
func dropRes(r cres) {
	if r.detail != nil {
		C.free(unsafe.Pointer(r.detail))
	}
}

// bp returns a C pointer to the bytes of b, or nil when b is empty.
func bp(b []byte) *C.uint8_t {
	if len(b) == 0 {
		return nil
	}
	return (*C.uint8_t)(unsafe.Pointer(unsafe.SliceData(b)))
}

// sp returns a C pointer to the bytes of s (read-only), or nil when s is empty.
func sp(s string) *C.uint8_t {
	if len(s) == 0 {
		return nil
	}
	return (*C.uint8_t)(unsafe.Pointer(unsafe.StringData(s)))
}

// spare returns a C pointer to the unused capacity of b and its size.
func spare(b []byte) (*C.uint8_t, C.size_t) {
	s := b[len(b):cap(b)]
	if len(s) == 0 {
		return nil, 0
	}
	return (*C.uint8_t)(unsafe.Pointer(unsafe.SliceData(s))), C.size_t(len(s))
}

func u32p(s []C.uint32_t) *C.uint32_t {
	if len(s) == 0 {
		return nil
	}
	return unsafe.SliceData(s)
}

// cStatusName and cStatusDescribe expose mc_status_name/describe (also for tests,
// which cannot use cgo directly).
func cStatusName(code int32) string { return C.GoString(C.mc_status_name(C.int32_t(code))) }

func cStatusDescribe(code int32) string { return C.GoString(C.mc_status_describe(C.int32_t(code))) }

// handleLive reports whether a map handle is still live in the library
// (for tests: it checks that a cleanup really freed the C map).
func handleLive(kind C.int, id uint64) bool {
	r := C.gm_len(kind, C.uint64_t(id))
	dropRes(r)
	return r.st != C.MC_ERR_BAD_HANDLE
}
