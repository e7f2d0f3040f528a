//go:build !mapcore_dynamic

package mapcore

// Static link (the default). The Rust static library is linked into the Go
// binary, so the binary runs without LD_LIBRARY_PATH or an installed
// libmapcore.so. The system libraries are those `rustc --print
// native-static-libs` reports (rust-core/native-static-libs.txt).
//
// A Go binary must not link two Rust static libraries (each carries its own
// copy of the Rust standard library, whose symbols clash): if you need
// mapcore together with another Rust staticlib, build with -tags
// mapcore_dynamic.

// #cgo LDFLAGS: ${SRCDIR}/../target/release/libmapcore.a -lm -ldl -lpthread -lrt -lutil -lgcc_s
import "C"

// LinkMode reports how libmapcore was linked into this binary.
const LinkMode = "static"
