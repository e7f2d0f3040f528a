package mapcore

// This file holds the //export, so its preamble may only declare.

// #include <stddef.h>
// #include <stdint.h>
import "C"

import (
	"runtime/cgo"
	"unsafe"
)

// mapcoreRetainPred is the mc_map_retain predicate (via gm_pred_tramp):
// returns 1 to keep the entry, 0 to delete it. It copies the entry into Go
// memory before calling the user's func, and never lets a panic unwind
// through the C (Rust) frames: it records it and keeps every later entry.
//
//export mapcoreRetainPred
func mapcoreRetainPred(h C.uintptr_t, k *C.uint8_t, kl C.size_t, v *C.uint8_t, vl C.size_t) C.int {
	st := cgo.Handle(h).Value().(*retainState)
	if st.panicked {
		return 1
	}
	n := int(kl) + int(vl)
	if cap(st.buf) < n {
		st.buf = make([]byte, n)
	}
	buf := st.buf[:n]
	if kl > 0 {
		copy(buf, unsafe.Slice((*byte)(unsafe.Pointer(k)), int(kl)))
	}
	if vl > 0 {
		copy(buf[kl:], unsafe.Slice((*byte)(unsafe.Pointer(v)), int(vl)))
	}
	keep := C.int(1)
	func() {
		defer func() {
			if r := recover(); r != nil {
				st.panicked = true
				st.panicVal = r
			}
		}()
		if st.del(buf[:kl:kl], buf[kl:n:n]) {
			keep = 0
		}
	}()
	return keep
}
