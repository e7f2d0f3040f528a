/* What a single get's latency is made of: time mc_map_get over random keys
 * of a 1M map, then the same loop with N independent register-only
 * instructions after each get (no memory access, no dependency on the get).
 * If a get's latency were its cache misses alone, the padding would hide
 * in their shadow and add about its own (tiny) cost; if the out-of-order
 * window is what limits how much of one get's misses overlap the next's,
 * every added instruction pushes the next get's first miss further away
 * and costs far more than it takes to execute. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "mapcore.h"

static double now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e9 + t.tv_nsec;
}

static uint64_t rng = 88172645463325252ull;
static uint64_t next(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

/* 4*n register additions in a counted loop the compiler cannot remove
 * (x86-64 only: elsewhere the program says so and exits). */
#if defined(__x86_64__)
#define PAD(n)                                                                      \
    for (int i_ = 0; i_ < (n) / 4; i_++)                                            \
        __asm__ volatile("add $1,%%r8\n\tadd $1,%%r9\n\tadd $1,%%r10\n\tadd $1,%%r11" \
                         ::: "r8", "r9", "r10", "r11")
#else
#define PAD(n) ((void)0)
#endif

enum { N = 1000000, Q = 500000, KLEN = 16, VLEN = 32 };

int main(void) {
#if !defined(__x86_64__)
    printf("ooo-window: x86-64 only (the padding is x86 assembly)\n");
    return 0;
#endif
    uint8_t *keys = malloc((size_t)N * KLEN), val[VLEN] = { 1 }, out[64];
    uint32_t *idx = malloc(Q * sizeof *idx);
    if (!keys || !idx) return 1;
    for (size_t i = 0; i < (size_t)N * KLEN / 8; i++) ((uint64_t *)keys)[i] = next();
    mc_map m;
    if (mc_map_new(&m) != MC_OK) return 1;
    for (size_t i = 0; i < N; i++)
        if (mc_map_set(m, keys + i * KLEN, KLEN, val, VLEN, NULL) != MC_OK) return 1;
    for (size_t i = 0; i < Q; i++) idx[i] = next() % N;
    size_t len, hits = 0;
    printf("ns per get on a 1M map (random keys), with N register-only instructions after each:\n");
    for (int round = 0; round < 3; round++) {
        double t = now_ns();
        for (size_t j = 0; j < Q; j++) hits += mc_map_get(m, keys + idx[j] * KLEN, KLEN, out, sizeof out, &len) == MC_OK;
        double plain = (now_ns() - t) / Q;
        t = now_ns();
        for (size_t j = 0; j < Q; j++) { hits += mc_map_get(m, keys + idx[j] * KLEN, KLEN, out, sizeof out, &len) == MC_OK; PAD(100); }
        double pad100 = (now_ns() - t) / Q;
        t = now_ns();
        for (size_t j = 0; j < Q; j++) { hits += mc_map_get(m, keys + idx[j] * KLEN, KLEN, out, sizeof out, &len) == MC_OK; PAD(200); }
        double pad200 = (now_ns() - t) / Q;
        t = now_ns();
        for (size_t j = 0; j < Q; j++) { PAD(200); }
        double alone = (now_ns() - t) / Q;
        printf("  get %.0f   + 100 %.0f   + 200 %.0f   (the 200 alone: %.0f)\n", plain, pad100, pad200, alone);
    }
    if (hits != 3 * 3 * (size_t)Q) { fprintf(stderr, "lost keys: %zu hits\n", hits); return 1; }
    mc_map_free(m);
    free(keys);
    free(idx);
    return 0;
}
