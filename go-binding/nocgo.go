//go:build !cgo

package mapcore

// The package wraps a C library, so it needs cgo: with CGO_ENABLED=0 the
// build would otherwise fail on cgo-only names with no word of why. This
// undefined name puts the reason in the compiler's message instead.
var _ = mapcore_needs_cgo__set_CGO_ENABLED_1_and_install_a_C_compiler
