package main

// The shared benchmark data (see bench/DATA.md). Must stay in sync with
// bench/rust/src/data.rs and bench/c/data.h.

import (
	"encoding/binary"
	"math"
	"math/bits"
)

const (
	kseed  = 0x6B65790000000000
	vseed  = 0x76616C0000000000
	qseed  = 0x7175650000000000
	mseed  = 0x6D69730000000000
	xseed  = 0x6D69780000000000
	zseed  = 0x7A69700000000000
	klen   = 16
	vlen   = 32
	setBit = 1 << 31
)

func mix(z uint64) uint64 {
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
	z = (z ^ (z >> 27)) * 0x94D049BB133111EB
	return z ^ (z >> 31)
}

func genKey(i uint64, out []byte) {
	binary.LittleEndian.PutUint64(out, mix(kseed+2*i))
	binary.LittleEndian.PutUint64(out[8:], mix(kseed+2*i+1))
}

func genValue(i uint64, out []byte) {
	for w := uint64(0); w < 4; w++ {
		binary.LittleEndian.PutUint64(out[8*w:], mix(vseed+4*i+w))
	}
}

type zipf struct{ n, theta, alpha, zetan, eta float64 }

func newZipf(n uint64) zipf {
	theta := 0.99
	zetan := 0.0
	for i := uint64(1); i <= n; i++ {
		zetan += 1.0 / math.Pow(float64(i), theta)
	}
	zeta2 := 1.0 + 1.0/math.Pow(2, theta)
	nf := float64(n)
	eta := (1.0 - math.Pow(2.0/nf, 1.0-theta)) / (1.0 - zeta2/zetan)
	return zipf{nf, theta, 1.0 / (1.0 - theta), zetan, eta}
}

func (z zipf) rank(u float64) uint64 {
	uz := u * z.zetan
	if uz < 1.0 {
		return 0
	}
	if uz < 1.0+math.Pow(0.5, z.theta) {
		return 1
	}
	r := uint64(z.n * math.Pow(z.eta*u-z.eta+1.0, z.alpha))
	if max := uint64(z.n) - 1; r > max {
		r = max
	}
	return r
}

type benchData struct {
	n, q         int
	keys, vals   []byte // n*klen, n*vlen
	hit, zipf    []byte // q packed query keys
	miss         []byte
	hitIdx, mixd []uint32
}

func generate(n, q int) *benchData {
	d := &benchData{n: n, q: q,
		keys: make([]byte, n*klen), vals: make([]byte, n*vlen),
		hit: make([]byte, q*klen), zipf: make([]byte, q*klen), miss: make([]byte, q*klen),
		hitIdx: make([]uint32, q), mixd: make([]uint32, q)}
	for i := 0; i < n; i++ {
		genKey(uint64(i), d.keys[i*klen:])
		genValue(uint64(i), d.vals[i*vlen:])
	}
	nn := uint64(n)
	z := newZipf(nn)
	for j := 0; j < q; j++ {
		jj := uint64(j)
		idx := mix(qseed+jj) % nn
		d.hitIdx[j] = uint32(idx)
		copy(d.hit[j*klen:(j+1)*klen], d.key(int(idx)))
		genKey(nn+mix(mseed+jj)%nn, d.miss[j*klen:])
		u := float64(mix(zseed+jj)>>11) * (1.0 / 9007199254740992.0)
		r := z.rank(u)
		hi, lo := bits.Mul64(r, 2654435761)
		_, zi := bits.Div64(hi%nn, lo, nn)
		copy(d.zipf[j*klen:(j+1)*klen], d.key(int(zi)))
		x := mix(xseed + jj)
		mi := uint32((x >> 8) % nn)
		if x%10 == 0 {
			mi |= setBit
		}
		d.mixd[j] = mi
	}
	return d
}

func (d *benchData) key(i int) []byte { return d.keys[i*klen : (i+1)*klen : (i+1)*klen] }
func (d *benchData) val(i int) []byte { return d.vals[i*vlen : (i+1)*vlen : (i+1)*vlen] }

func (d *benchData) checksum() uint64 {
	h := uint64(0xcbf29ce484222325)
	feed := func(b []byte) {
		for _, x := range b {
			h ^= uint64(x)
			h *= 0x100000001b3
		}
	}
	for i := 0; i < d.n; i++ {
		feed(d.key(i))
		feed(d.val(i))
	}
	var b [4]byte
	for _, i := range d.hitIdx {
		binary.LittleEndian.PutUint32(b[:], i)
		feed(b[:])
	}
	return h
}
