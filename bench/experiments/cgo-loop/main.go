// Command cgo-loop measures what a cgo transition costs inside a loop of
// cache-missing lookups on a 1M-entry map, against a Go map and against the
// same library calls made from C: see "What the profiles showed" in
// bench/README.md. Run: make -C bench cgo-loop
package main

/*
#cgo CFLAGS: -I${SRCDIR}/../../../include
#include "mapcore.h"
#include <stdlib.h>
static void empty(void) {}
// Each helper returns how many calls did not return MC_OK (the caller
// checks it is 0, so an error path is never timed by mistake).
static int get1(uint64_t id, const uint8_t *k, uint8_t *v) { size_t n; return mc_map_get((mc_map){id}, k, 16, v, 32, &n) != MC_OK; }
static int getloop(uint64_t id, const uint8_t *q, int nq, uint8_t *v) { size_t n; int bad = 0; for (int i = 0; i < nq; i++) bad += mc_map_get((mc_map){id}, q + 16 * i, 16, v, 32, &n) != MC_OK; return bad; }
static int many(uint64_t id, const uint8_t *q, int per, const uint32_t *kl, uint8_t *vals, uint32_t *vl) { size_t used; return mc_map_get_many((mc_map){id}, per, q, kl, vals, 32 * per, vl, &used) != MC_OK || used != 32 * (size_t)per; }
*/
import "C"
import (
	"encoding/binary"
	"fmt"
	"time"
	"unsafe"

	mapcore "github.com/mapcore/mapcore-go"
)

func must(err error) {
	if err != nil {
		panic(err)
	}
}

func ok(bad C.int) {
	if bad != 0 {
		panic(fmt.Sprintf("%d library calls failed", int(bad)))
	}
}

func mix(z uint64) uint64 {
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
	z = (z ^ (z >> 27)) * 0x94D049BB133111EB
	return z ^ (z >> 31)
}

const N = 1000000
const Q = 500000

func main() {
	m, err := mapcore.New()
	must(err)
	keys := make([]byte, N*16)
	v := make([]byte, 32)
	for i := uint64(0); i < N; i++ {
		binary.LittleEndian.PutUint64(keys[16*i:], mix(2*i))
		binary.LittleEndian.PutUint64(keys[16*i+8:], mix(2*i+1))
		binary.LittleEndian.PutUint64(v, i)
		_, err := m.Set(keys[16*i:16*i+16], v)
		must(err)
	}
	// The raw C calls need the library handle, which the binding keeps
	// unexported as the first field of Map; check it names this map.
	id := *(*uint64)(unsafe.Pointer(m))
	probe := (*C.uint8_t)(C.malloc(32))
	for _, i := range []int{0, N / 2, N - 1} {
		if C.get1(C.uint64_t(id), (*C.uint8_t)(&keys[16*i]), probe) != 0 ||
			binary.LittleEndian.Uint64(unsafe.Slice((*byte)(unsafe.Pointer(probe)), 8)) != uint64(i) {
			panic("the handle read from mapcore.Map does not name this map")
		}
	}
	q := make([]byte, Q*16)
	for i := 0; i < Q; i++ {
		j := mix(777+uint64(i)) % N
		copy(q[16*i:], keys[16*j:16*j+16])
	}
	kl := (*C.uint32_t)(C.malloc(4 * 256))
	for i := 0; i < 256; i++ {
		unsafe.Slice((*uint32)(unsafe.Pointer(kl)), 256)[i] = 16
	}
	vals := (*C.uint8_t)(C.malloc(32 * 256))
	vl := (*C.uint32_t)(C.malloc(4 * 256))
	views := make([][]byte, 256)
	out := make([]byte, 32*256)
	gm := make(map[string][]byte, N)
	for i := 0; i < N; i++ {
		gm[string(keys[16*i:16*i+16])] = make([]byte, 32)
	}
	cv := (*C.uint8_t)(C.malloc(32))
	var one [32]byte
	per := func(t time.Time) float64 { return float64(time.Since(t).Nanoseconds()) / Q }
	for r := 0; r < 3; r++ {
		t := time.Now()
		for i := 0; i < Q; i++ {
			copy(one[:], gm[string(q[16*i:16*i+16])])
		}
		a := per(t)
		t = time.Now()
		for i := 0; i < Q; i++ {
			C.empty()
			copy(one[:], gm[string(q[16*i:16*i+16])])
		}
		b := per(t)
		t = time.Now()
		ok(C.getloop(C.uint64_t(id), (*C.uint8_t)(&q[0]), Q, cv))
		c := per(t)
		t = time.Now()
		bad := C.int(0)
		for i := 0; i < Q; i++ {
			bad += C.get1(C.uint64_t(id), (*C.uint8_t)(&q[16*i]), cv)
		}
		ok(bad)
		d := per(t)
		t = time.Now()
		bad = 0
		for i := 0; i < Q; i++ {
			bad += C.get1(C.uint64_t(id), (*C.uint8_t)(&q[0]), cv)
		}
		ok(bad)
		e := per(t)
		fmt.Printf("ns per lookup: Go map %.1f; Go map + empty cgo call %.1f; mc_map_get all in one C call %.1f; one cgo call per key %.1f; same cached key per call %.1f\n", a, b, c, d, e)
	}
	for r := 0; r < 4; r++ {
		for _, per := range []int{64, 256} {
			t := time.Now()
			bad := C.int(0)
			for i := 0; i+per <= Q; i += per {
				bad += C.many(C.uint64_t(id), (*C.uint8_t)(&q[16*i]), C.int(per), kl, vals, vl)
			}
			ok(bad)
			a := time.Since(t)
			t = time.Now()
			for i := 0; i+per <= Q; i += per {
				for j := 0; j < per; j++ {
					views[j] = q[16*(i+j) : 16*(i+j+1)]
				}
				vs, err := m.GetMany(views[:per])
				must(err)
				if len(vs[per-1]) != 32 {
					panic("GetMany: missing value")
				}
			}
			b := time.Since(t)
			vals := make([][]byte, per)
			t = time.Now()
			for i := 0; i+per <= Q; i += per {
				for j := 0; j < per; j++ {
					views[j] = q[16*(i+j) : 16*(i+j+1)]
				}
				var err error
				out, err = m.AppendMany(out[:0], vals, views[:per])
				must(err)
				if len(vals[per-1]) != 32 {
					panic("AppendMany: missing value")
				}
			}
			c := time.Since(t)
			fmt.Printf("batch %d: raw cgo %.1f ns/key; binding GetMany %.1f ns/key; AppendMany %.1f ns/key\n", per, float64(a.Nanoseconds())/Q, float64(b.Nanoseconds())/Q, float64(c.Nanoseconds())/Q)
		}
	}
}
