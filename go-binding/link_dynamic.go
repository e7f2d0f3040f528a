//go:build mapcore_dynamic

package mapcore

// Dynamic link (build tag mapcore_dynamic): libmapcore.so from the staged
// install that `make stage` (part of `make all`) creates in build/stage, with
// an rpath to it. The library's soname is libmapcore.so.1, which only the
// installed layout provides (target/release has no .so.1 link). For a library
// installed elsewhere, build with CGO_LDFLAGS from `pkg-config --libs mapcore`
// and point LD_LIBRARY_PATH or an rpath at it.

// #cgo LDFLAGS: -L${SRCDIR}/../build/stage/lib -lmapcore -Wl,-rpath,${SRCDIR}/../build/stage/lib
import "C"

// LinkMode reports how libmapcore was linked into this binary.
const LinkMode = "dynamic"
