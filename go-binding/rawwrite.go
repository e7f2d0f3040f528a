package mapcore

// #include "shims.h"
import "C"

import "runtime"

// rawSet and rawDelete write through the C ABI with a map's handle, as C
// code given Map.Handle would: none of this package's bookkeeping runs.
// Tests use them to check that iterators see such writes too.
func rawSet(id uint64, k, v []byte) Status {
	r := C.gm_set(C.uint64_t(id), bp(k), C.size_t(len(k)), bp(v), C.size_t(len(v)))
	runtime.KeepAlive(k)
	runtime.KeepAlive(v)
	dropRes(r)
	return Status(r.st)
}

func rawDelete(id uint64, k []byte) Status {
	r := C.gm_delete(C.uint64_t(id), bp(k), C.size_t(len(k)))
	runtime.KeepAlive(k)
	dropRes(r)
	return Status(r.st)
}
