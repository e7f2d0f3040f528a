/*
 * batch.c - the batch forms: many keys per call.
 *
 * A call across a language boundary (cgo, FFI) costs about as much as a hash
 * lookup, so every hot path has a batch form:
 *   mc_map_set_many     insert/overwrite n entries, atomically
 *   mc_map_get_many     look up n keys in one consistent state
 *                       (absent keys -> MC_ABSENT; too-small buffer ->
 *                       MC_ERR_BUFFER_TOO_SMALL and the size needed)
 *   mc_map_delete_many  delete n keys, atomically (absent ones skipped)
 *   mc_iter_next_batch  many entries per iteration step (walk the buffer
 *                       with mc_batch_entry)
 * Keys (and values) are packed back to back in one buffer, with a parallel
 * array of uint32_t lengths.
 *
 * At the end a full pass with mc_iter_next_batch is compared with a pass of
 * single mc_iter_next calls (ns per entry is printed; nothing is asserted
 * about timing). Any behaviour different from the header exits 1.
 */
#define _POSIX_C_SOURCE 200809L
#include <mapcore.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

/* A packed list of byte strings, as the *_many functions take them. */
struct packed {
    uint8_t *bytes;
    uint32_t *lens;
    size_t n, used, cap;
};

static void packed_init(struct packed *p, size_t n_max, size_t bytes_max) {
    p->bytes = malloc(bytes_max);
    p->lens = malloc(n_max * sizeof *p->lens);
    CHECK(p->bytes && p->lens);
    p->n = p->used = 0;
    p->cap = bytes_max;
}

static void packed_add(struct packed *p, const char *s, size_t len) {
    CHECK(p->used + len <= p->cap);
    memcpy(p->bytes + p->used, s, len);
    p->lens[p->n++] = (uint32_t)len;
    p->used += len;
}

static void packed_free(struct packed *p) {
    free(p->bytes);
    free(p->lens);
}

static size_t fmt_key(char *buf, size_t i) {
    return (size_t)snprintf(buf, 32, "key-%07zu", i);
}

static size_t fmt_val(char *buf, size_t i, int version) {
    return (size_t)snprintf(buf, 64, "value %zu, version %d", i, version);
}

int main(void) {
    const size_t N = scaled(200000, 5000);
    printf("batch: the *_many functions and mc_iter_next_batch on %zu entries\n", N);
    mc_map m;
    CHECK_OK(mc_map_new(&m));
    char buf[64];

    /* set_many: N new entries in one call. */
    struct packed keys, vals;
    packed_init(&keys, N, N * 16);
    packed_init(&vals, N, N * 32);
    for (size_t i = 0; i < N; i++) {
        packed_add(&keys, buf, fmt_key(buf, i));
        packed_add(&vals, buf, fmt_val(buf, i, 1));
    }
    size_t inserted = 0;
    CHECK_OK(mc_map_set_many(m, N, keys.bytes, keys.lens, vals.bytes, vals.lens, &inserted));
    CHECK(inserted == N);
    printf("  set_many: %zu entries in one call, %zu new\n", N, inserted);

    /* set_many again over the first 10: all overwrites. */
    struct packed v2;
    packed_init(&v2, 10, 10 * 32);
    for (size_t i = 0; i < 10; i++)
        packed_add(&v2, buf, fmt_val(buf, i, 2));
    CHECK_OK(mc_map_set_many(m, 10, keys.bytes, keys.lens, v2.bytes, v2.lens, &inserted));
    CHECK(inserted == 0);
    printf("  set_many over 10 existing keys: %zu new (all overwritten)\n", inserted);

    /* get_many: three keys, the middle one absent. */
    struct packed q;
    packed_init(&q, 3, 64);
    packed_add(&q, buf, fmt_key(buf, 3));
    packed_add(&q, "no such key", 11);
    packed_add(&q, buf, fmt_key(buf, 42));
    uint32_t val_lens[3] = {7, 7, 7};
    size_t used = 0;
    /* A too-small buffer: only the size needed is written. */
    uint8_t tiny[8];
    memset(tiny, '#', sizeof tiny);
    CHECK_ST(mc_map_get_many(m, 3, q.bytes, q.lens, tiny, sizeof tiny, val_lens, &used),
             MC_ERR_BUFFER_TOO_SMALL);
    char v3[64], v42[64];
    size_t l3 = fmt_val(v3, 3, 2), l42 = fmt_val(v42, 42, 1);
    CHECK(used == l3 + l42);
    CHECK(val_lens[0] == 7 && val_lens[1] == 7 && tiny[0] == '#' && tiny[7] == '#');
    printf("  get_many into 8 bytes -> %s, needs %zu bytes\n",
           mc_status_name(MC_ERR_BUFFER_TOO_SMALL), used);
    uint8_t *out = malloc(used);
    CHECK(out != NULL);
    size_t need = used;
    CHECK_OK(mc_map_get_many(m, 3, q.bytes, q.lens, out, need, val_lens, &used));
    CHECK(used == need);
    CHECK(val_lens[0] == l3 && memcmp(out, v3, l3) == 0);
    CHECK(val_lens[1] == MC_ABSENT);
    CHECK(val_lens[2] == l42 && memcmp(out + l3, v42, l42) == 0);
    printf("  get_many -> \"%.*s\", MC_ABSENT, \"%.*s\"\n", (int)l3, (const char *)out, (int)l42,
           (const char *)out + l3);
    free(out);

    /* delete_many: the first 100 keys plus one that does not exist. */
    struct packed d;
    packed_init(&d, 101, 101 * 16);
    for (size_t i = 0; i < 100; i++)
        packed_add(&d, buf, fmt_key(buf, i));
    packed_add(&d, "no such key", 11);
    size_t removed = 0, len = 0;
    CHECK_OK(mc_map_delete_many(m, d.n, d.bytes, d.lens, &removed));
    CHECK(removed == 100);
    CHECK_OK(mc_map_len(m, &len));
    CHECK(len == N - 100);
    printf("  delete_many of 101 keys (one absent) -> %zu removed, len %zu\n", removed, len);

    /* A full pass with next_batch vs one with single next calls. */
    size_t cap = 64 * 1024, max = 1024;
    uint8_t *page = malloc(cap);
    CHECK(page != NULL);
    mc_iter it;
    CHECK_OK(mc_iter_init(m, MC_MODE_STRICT, &it));
    size_t seen_batch = 0, bytes_batch = 0, calls_batch = 0, count;
    uint64_t t0 = now_ns();
    mc_status s;
    while ((s = mc_iter_next_batch(m, &it, page, cap, max, &count, &used)) == MC_OK) {
        CHECK(count >= 1 && count <= max && used <= cap);
        calls_batch++;
        size_t off = 0;
        const uint8_t *k, *v;
        size_t kl, vl;
        mc_status e;
        while ((e = mc_batch_entry(page, used, &off, &k, &kl, &v, &vl)) == MC_OK) {
            seen_batch++;
            bytes_batch += kl + vl;
        }
        CHECK_ST(e, MC_DONE);
    }
    uint64_t t_batch = now_ns() - t0;
    CHECK_ST(s, MC_DONE);
    CHECK(seen_batch == len);

    CHECK_OK(mc_iter_init(m, MC_MODE_STRICT, &it));
    uint8_t k[32], v[64];
    size_t kl, vl, seen_single = 0, bytes_single = 0;
    t0 = now_ns();
    while ((s = mc_iter_next(m, &it, k, sizeof k, &kl, v, sizeof v, &vl)) == MC_OK) {
        seen_single++;
        bytes_single += kl + vl;
    }
    uint64_t t_single = now_ns() - t0;
    CHECK_ST(s, MC_DONE);
    CHECK(seen_single == len && bytes_single == bytes_batch);
    printf("  full pass, mc_iter_next:       %zu calls, %6.1f ns/entry\n", seen_single,
           (double)t_single / (double)seen_single);
    printf("  full pass, mc_iter_next_batch: %zu calls, %6.1f ns/entry (up to %zu entries or "
           "%zu KiB per call)\n", calls_batch, (double)t_batch / (double)seen_batch, max, cap / 1024);

    free(page);
    packed_free(&keys);
    packed_free(&vals);
    packed_free(&v2);
    packed_free(&q);
    packed_free(&d);
    CHECK_OK(mc_map_free(m));
    printf("batch: OK (%lu checks)\n", checks_made());
    return 0;
}
