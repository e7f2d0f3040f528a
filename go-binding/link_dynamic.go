//go:build mapcore_dynamic

package mapcore

// Dynamic link (build tag mapcore_dynamic): libmapcore.so from the build tree,
// found at run time through an rpath to that directory (or LD_LIBRARY_PATH).

// #cgo LDFLAGS: -L${SRCDIR}/../target/release -lmapcore -Wl,-rpath,${SRCDIR}/../target/release
import "C"

// LinkMode reports how libmapcore was linked into this binary.
const LinkMode = "dynamic"
