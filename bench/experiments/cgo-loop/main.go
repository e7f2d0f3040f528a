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
static void get1(uint64_t id, const uint8_t *k, uint8_t *v) { size_t n; mc_map_get((mc_map){id}, k, 16, v, 32, &n); }
static void getloop(uint64_t id, const uint8_t *q, int nq, uint8_t *v) { size_t n; for (int i = 0; i < nq; i++) mc_map_get((mc_map){id}, q + 16 * i, 16, v, 32, &n); }
static uint64_t many(uint64_t id, const uint8_t *q, int per, const uint32_t *kl, uint8_t *vals, uint32_t *vl) { size_t used; mc_map_get_many((mc_map){id}, per, q, kl, vals, 32*per, vl, &used); return used; }
*/
import "C"
import (
	"encoding/binary"
	"fmt"
	"time"
	"unsafe"

	mapcore "github.com/mapcore/mapcore-go"
)

func mix(z uint64) uint64 {
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
	z = (z ^ (z >> 27)) * 0x94D049BB133111EB
	return z ^ (z >> 31)
}

const N = 1000000
const Q = 500000

func main() {
	m, _ := mapcore.New()
	id := *(*uint64)(unsafe.Pointer(m))
	keys := make([]byte, N*16)
	v := make([]byte, 32)
	for i := uint64(0); i < N; i++ {
		binary.LittleEndian.PutUint64(keys[16*i:], mix(2*i))
		binary.LittleEndian.PutUint64(keys[16*i+8:], mix(2*i+1))
		m.Set(keys[16*i:16*i+16], v)
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
		C.getloop(C.uint64_t(id), (*C.uint8_t)(&q[0]), Q, cv)
		c := per(t)
		t = time.Now()
		for i := 0; i < Q; i++ {
			C.get1(C.uint64_t(id), (*C.uint8_t)(&q[16*i]), cv)
		}
		d := per(t)
		t = time.Now()
		for i := 0; i < Q; i++ {
			C.get1(C.uint64_t(id), (*C.uint8_t)(&q[0]), cv)
		}
		e := per(t)
		fmt.Printf("ns per lookup: Go map %.1f; Go map + empty cgo call %.1f; mc_map_get all in one C call %.1f; one cgo call per key %.1f; same cached key per call %.1f\n", a, b, c, d, e)
	}
	for r := 0; r < 4; r++ {
		for _, per := range []int{64, 256} {
			t := time.Now()
			for i := 0; i+per <= Q; i += per {
				C.many(C.uint64_t(id), (*C.uint8_t)(&q[16*i]), C.int(per), kl, vals, vl)
			}
			a := time.Since(t)
			t = time.Now()
			for i := 0; i+per <= Q; i += per {
				for j := 0; j < per; j++ {
					views[j] = q[16*(i+j) : 16*(i+j+1)]
				}
				vs, _ := m.GetMany(views[:per])
				off := 0
				for _, v := range vs {
					off += copy(out[off:], v)
				}
			}
			b := time.Since(t)
			vals := make([][]byte, per)
			t = time.Now()
			for i := 0; i+per <= Q; i += per {
				for j := 0; j < per; j++ {
					views[j] = q[16*(i+j) : 16*(i+j+1)]
				}
				out, _ = m.AppendMany(out[:0], vals, views[:per])
			}
			c := time.Since(t)
			fmt.Printf("batch %d: raw cgo %.1f ns/key; binding GetMany %.1f ns/key; AppendMany %.1f ns/key\n", per, float64(a.Nanoseconds())/Q, float64(b.Nanoseconds())/Q, float64(c.Nanoseconds())/Q)
		}
	}
}
