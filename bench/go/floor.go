package main

/*
static void bench_empty_call(void) {}
*/
import "C"

// emptyCgo is the floor of every mapcore call from Go: one cgo transition
// into a C function that does nothing.
func emptyCgo() { C.bench_empty_call() }
