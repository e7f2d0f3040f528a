/* The shared benchmark data (see bench/DATA.md). Must stay in sync with
 * bench/rust/src/data.rs and bench/go/data.go. */
#ifndef BENCH_DATA_H
#define BENCH_DATA_H

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define KSEED 0x6B65790000000000ULL
#define VSEED 0x76616C0000000000ULL
#define QSEED 0x7175650000000000ULL
#define MSEED 0x6D69730000000000ULL
#define XSEED 0x6D69780000000000ULL
#define ZSEED 0x7A69700000000000ULL
#define KLEN 16
#define VLEN 32
#define SET_BIT 0x80000000u

static inline uint64_t mix(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static inline void put_le64(uint8_t *p, uint64_t x) {
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(x >> (8 * i));
}

static inline void gen_key(uint64_t i, uint8_t *out) {
    put_le64(out, mix(KSEED + 2 * i));
    put_le64(out + 8, mix(KSEED + 2 * i + 1));
}

static inline void gen_value(uint64_t i, uint8_t *out) {
    for (uint64_t w = 0; w < 4; w++) put_le64(out + 8 * w, mix(VSEED + 4 * i + w));
}

typedef struct {
    double n, theta, alpha, zetan, eta;
} zipf_t;

static void zipf_init(zipf_t *z, uint64_t n) {
    double theta = 0.99, zetan = 0.0;
    for (uint64_t i = 1; i <= n; i++) zetan += 1.0 / pow((double)i, theta);
    double zeta2 = 1.0 + 1.0 / pow(2.0, theta);
    z->n = (double)n;
    z->theta = theta;
    z->alpha = 1.0 / (1.0 - theta);
    z->zetan = zetan;
    z->eta = (1.0 - pow(2.0 / z->n, 1.0 - theta)) / (1.0 - zeta2 / zetan);
}

static uint64_t zipf_rank(const zipf_t *z, double u) {
    double uz = u * z->zetan;
    if (uz < 1.0) return 0;
    if (uz < 1.0 + pow(0.5, z->theta)) return 1;
    uint64_t r = (uint64_t)(z->n * pow(z->eta * u - z->eta + 1.0, z->alpha));
    uint64_t max = (uint64_t)z->n - 1;
    return r < max ? r : max;
}

typedef struct {
    size_t n, q;
    uint8_t *keys, *vals;          /* n * KLEN, n * VLEN */
    uint8_t *hit, *zipf, *miss;    /* q * KLEN packed query keys */
    uint32_t *hit_idx, *mixed;     /* q entries; mixed: index | SET_BIT */
} bench_data;

static void data_generate(bench_data *d, size_t n, size_t q) {
    d->n = n;
    d->q = q;
    d->keys = malloc(n * KLEN);
    d->vals = malloc(n * VLEN);
    d->hit = malloc(q * KLEN);
    d->zipf = malloc(q * KLEN);
    d->miss = malloc(q * KLEN);
    d->hit_idx = malloc(q * sizeof(uint32_t));
    d->mixed = malloc(q * sizeof(uint32_t));
    if (!d->keys || !d->vals || !d->hit || !d->zipf || !d->miss || !d->hit_idx || !d->mixed) abort();
    for (size_t i = 0; i < n; i++) {
        gen_key(i, d->keys + i * KLEN);
        gen_value(i, d->vals + i * VLEN);
    }
    zipf_t z;
    zipf_init(&z, n);
    uint64_t nn = n;
    for (size_t j = 0; j < q; j++) {
        uint64_t idx = mix(QSEED + j) % nn;
        d->hit_idx[j] = (uint32_t)idx;
        memcpy(d->hit + j * KLEN, d->keys + idx * KLEN, KLEN);
        gen_key(nn + mix(MSEED + j) % nn, d->miss + j * KLEN);
        double u = (double)(mix(ZSEED + j) >> 11) * (1.0 / 9007199254740992.0);
        uint64_t r = zipf_rank(&z, u);
        uint64_t zi = (uint64_t)(((unsigned __int128)r * 2654435761u) % nn);
        memcpy(d->zipf + j * KLEN, d->keys + zi * KLEN, KLEN);
        uint64_t x = mix(XSEED + j);
        uint32_t mi = (uint32_t)((x >> 8) % nn);
        d->mixed[j] = (x % 10 == 0) ? (mi | SET_BIT) : mi;
    }
}

static uint64_t data_checksum(const bench_data *d) {
    uint64_t h = 0xcbf29ce484222325ULL;
#define FEED(p, len) do { for (size_t _i = 0; _i < (len); _i++) { h ^= (p)[_i]; h *= 0x100000001b3ULL; } } while (0)
    for (size_t i = 0; i < d->n; i++) {
        FEED(d->keys + i * KLEN, KLEN);
        FEED(d->vals + i * VLEN, VLEN);
    }
    for (size_t j = 0; j < d->q; j++) {
        uint8_t b[4];
        for (int k = 0; k < 4; k++) b[k] = (uint8_t)(d->hit_idx[j] >> (8 * k));
        FEED(b, 4);
    }
#undef FEED
    return h;
}

#endif
