/*
 * test_iteration.c - the iteration guarantees of include/mapcore.h, checked
 * through the C ABI:
 *
 *   - strict mode without changes yields every entry exactly once (next,
 *     next_with, next_batch), also on a MC_OPT_WEAK_HASH_FOR_TESTING map
 *     where thousands of keys share a hash;
 *   - removing random subsets through the iterator yields every entry exactly
 *     once and leaves exactly the kept ones; replacing values through it;
 *   - cursor mode across heavy growth and shrink in the middle of a scan
 *     (insert 10x, then delete 95%, shrink) keeps its guarantees;
 *   - next_batch edge cases (empty map, exact fit, one byte short, entry and
 *     byte limits, 1 MiB values);
 *   - encode/decode round trips resume at the same place (also on another
 *     thread);
 *   - snapshot isolation: get/len/contains/iteration of a snapshot do not
 *     change whatever happens to the map afterwards, also when every write
 *     is made under a fresh snapshot.
 */
#define _POSIX_C_SOURCE 200809L
#include <mapcore.h>

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

/* Keys are "<prefix><7 digits>", values "v<7 digits>" unless noted. */
#define KEYLEN 8

static mc_map new_map(uint32_t flags, uint64_t seed) {
    mc_options o = {0};
    o.flags = flags;
    o.seed = seed;
    mc_map m;
    CHECK_OK(mc_map_new_with(&o, &m));
    return m;
}

static size_t key_of(char *b, char prefix, size_t i) {
    return (size_t)snprintf(b, 16, "%c%07zu", prefix, i);
}

static size_t val_of(char *b, size_t i) {
    return (size_t)snprintf(b, 32, "v%07zu", i);
}

/* Index of a "<prefix><7 digits>" key, or (size_t)-1. */
static size_t index_of(const uint8_t *k, size_t kl, char prefix) {
    if (kl != KEYLEN || k[0] != (uint8_t)prefix)
        return (size_t)-1;
    size_t n = 0;
    for (size_t i = 1; i < kl; i++) {
        if (k[i] < '0' || k[i] > '9')
            return (size_t)-1;
        n = n * 10 + (size_t)(k[i] - '0');
    }
    return n;
}

static void fill(mc_map m, char prefix, size_t from, size_t to) {
    char k[16], v[32];
    for (size_t i = from; i < to; i++) {
        bool ins = false;
        CHECK_OK(mc_map_set(m, U8(k), key_of(k, prefix, i), U8(v), val_of(v, i), &ins));
        CHECK(ins);
    }
}

static size_t map_len(mc_map m) {
    size_t n = 0;
    CHECK_OK(mc_map_len(m, &n));
    return n;
}

static void check_value(size_t i, const uint8_t *v, size_t vl) {
    char want[32];
    size_t wl = val_of(want, i);
    CHECK_MSG(vl == wl && memcmp(v, want, wl) == 0, "value of key %zu is %.*s", i, (int)vl,
              (const char *)v);
}

/* ---------------------------------------------------------------------------
 * Strict mode without changes: exactly once, three ways
 * ------------------------------------------------------------------------- */

struct seen {
    unsigned char *count;
    size_t n, total;
    size_t last; /* index of the entry seen last */
};

static void seen_entry(void *u, const uint8_t *k, size_t kl, const uint8_t *v, size_t vl) {
    struct seen *s = u;
    size_t i = index_of(k, kl, 'k');
    CHECK_MSG(i < s->n, "unexpected key %.*s", (int)kl, (const char *)k);
    check_value(i, v, vl);
    s->count[i]++;
    s->total++;
    s->last = i;
}

static void expect_each_once(struct seen *s, const char *what) {
    CHECK_MSG(s->total == s->n, "%s: %zu entries yielded, expected %zu", what, s->total, s->n);
    for (size_t i = 0; i < s->n; i++)
        CHECK_MSG(s->count[i] == 1, "%s: key %zu yielded %d times", what, i, s->count[i]);
    memset(s->count, 0, s->n);
    s->total = 0;
}

static void exact_passes(mc_map m, size_t n, uint32_t mode, const char *what) {
    struct seen s = {calloc(n, 1), n, 0, 0};
    CHECK(s.count != NULL);
    mc_iter it;
    mc_status st;
    uint8_t k[32], v[32];
    size_t kl, vl;

    CHECK_OK(mc_iter_init(m, mode, &it));
    while ((st = mc_iter_next(m, &it, k, sizeof k, &kl, v, sizeof v, &vl)) == MC_OK)
        seen_entry(&s, k, kl, v, vl);
    CHECK_ST(st, MC_DONE);
    expect_each_once(&s, what);

    CHECK_OK(mc_iter_init(m, mode, &it));
    while ((st = mc_iter_next_with(m, &it, seen_entry, &s)) == MC_OK) {
    }
    CHECK_ST(st, MC_DONE);
    expect_each_once(&s, what);

    /* next_batch with a few different limits */
    const size_t maxes[] = {1, 7, 256, 100000};
    uint8_t page[4096];
    for (size_t x = 0; x < sizeof maxes / sizeof maxes[0]; x++) {
        CHECK_OK(mc_iter_init(m, mode, &it));
        size_t cnt, used;
        while ((st = mc_iter_next_batch(m, &it, page, sizeof page, maxes[x], &cnt, &used)) == MC_OK) {
            CHECK(cnt >= 1 && cnt <= maxes[x] && used <= sizeof page);
            size_t off = 0, walked = 0;
            const uint8_t *kp, *vp;
            while (mc_batch_entry(page, used, &off, &kp, &kl, &vp, &vl) == MC_OK) {
                seen_entry(&s, kp, kl, vp, vl);
                walked++;
            }
            CHECK(walked == cnt && off == used);
        }
        CHECK_ST(st, MC_DONE);
        expect_each_once(&s, what);
    }
    free(s.count);
}

static void test_strict_exactly_once(void) {
    size_t n = scaled(50000, 3000);
    printf("  strict/cursor without changes: each of %zu entries exactly once\n", n);
    mc_map m = new_map(MC_OPT_FIXED_SEED, 1);
    fill(m, 'k', 0, n);
    exact_passes(m, n, MC_MODE_STRICT, "strict");
    exact_passes(m, n, MC_MODE_CURSOR, "cursor");
    CHECK_OK(mc_map_free(m));

    m = new_map(0, 0); /* random seed */
    fill(m, 'k', 0, n / 10);
    exact_passes(m, n / 10, MC_MODE_STRICT, "strict, random seed");
    CHECK_OK(mc_map_free(m));

    /* Thousands of keys share each hash value. */
    size_t w = scaled(4000, 800);
    printf("  weak-hash map (%zu keys sharing 8 hash values): exactly once\n", w);
    m = new_map(MC_OPT_FIXED_SEED | MC_OPT_WEAK_HASH_FOR_TESTING, 3);
    fill(m, 'k', 0, w);
    exact_passes(m, w, MC_MODE_STRICT, "strict, weak hash");
    exact_passes(m, w, MC_MODE_CURSOR, "cursor, weak hash");
    CHECK_OK(mc_map_free(m));
}

/* ---------------------------------------------------------------------------
 * Remove / replace through the iterator
 * ------------------------------------------------------------------------- */

static void remove_subset(uint32_t flags, size_t n, uint32_t mode, unsigned percent, uint64_t seed,
                          bool use_with) {
    mc_map m = new_map(MC_OPT_FIXED_SEED | flags, seed);
    fill(m, 'k', 0, n);
    unsigned char *count = calloc(n, 1), *removed = calloc(n, 1);
    CHECK(count && removed);
    uint64_t rng = seed * 2654435761u + 1;
    mc_iter it;
    CHECK_OK(mc_iter_init(m, mode, &it));
    uint8_t k[32], v[32];
    size_t kl, vl, nremoved = 0;
    mc_status st;
    struct seen s = {count, n, 0, 0};
    for (;;) {
        if (use_with) {
            size_t before = s.total;
            st = mc_iter_next_with(m, &it, seen_entry, &s);
            if (st != MC_OK)
                break;
            CHECK(s.total == before + 1);
        } else {
            st = mc_iter_next(m, &it, k, sizeof k, &kl, v, sizeof v, &vl);
            if (st != MC_OK)
                break;
            seen_entry(&s, k, kl, v, vl);
        }
        if (rng_next(&rng) % 100 < percent) {
            CHECK_OK(mc_iter_remove(m, &it));
            nremoved++;
            removed[s.last] = 1;
        }
    }
    CHECK_ST(st, MC_DONE);
    char what[96];
    snprintf(what, sizeof what, "remove %u%% (%s, %s%s)", percent,
             mode == MC_MODE_STRICT ? "strict" : "cursor", flags ? "weak hash" : "fixed seed",
             use_with ? ", next_with" : "");
    for (size_t i = 0; i < n; i++)
        CHECK_MSG(count[i] == 1, "%s: key %zu yielded %d times", what, i, count[i]);
    CHECK_MSG(map_len(m) == n - nremoved, "%s: len %zu, expected %zu", what, map_len(m),
              n - nremoved);
    {
        /* Exactly the kept ones are left, with their values. */
        char key[16];
        for (size_t i = 0; i < n; i++) {
            uint8_t val[32];
            size_t len;
            mc_status g = mc_map_get(m, U8(key), key_of(key, 'k', i), val, sizeof val, &len);
            if (removed[i]) {
                CHECK_MSG(g == MC_ERR_NOT_FOUND, "%s: removed key %zu still there", what, i);
            } else {
                CHECK_MSG(g == MC_OK, "%s: kept key %zu is gone", what, i);
                check_value(i, val, len);
            }
        }
    }
    /* A fresh strict pass sees exactly the rest. */
    CHECK_OK(mc_iter_init(m, MC_MODE_STRICT, &it));
    size_t rest = 0;
    while (mc_iter_next(m, &it, k, sizeof k, &kl, v, sizeof v, &vl) == MC_OK) {
        rest++;
        CHECK(!removed[index_of(k, kl, 'k')]);
    }
    CHECK(rest == n - nremoved);
    free(count);
    free(removed);
    CHECK_OK(mc_map_free(m));
}

static void test_remove_through_iterator(void) {
    size_t n = scaled(5000, 800), w = scaled(1500, 300);
    printf("  remove through the iterator: random subsets, %zu entries, both modes\n", n);
    const unsigned percents[] = {0, 1, 10, 50, 90, 100};
    for (uint32_t mode = MC_MODE_STRICT; mode <= MC_MODE_CURSOR; mode++)
        for (size_t p = 0; p < sizeof percents / sizeof percents[0]; p++) {
            remove_subset(0, n, mode, percents[p], 11 + p, false);
            remove_subset(0, n / 4, mode, percents[p], 21 + p, true);
            remove_subset(MC_OPT_WEAK_HASH_FOR_TESTING, w, mode, percents[p], 31 + p, false);
        }
}

static void test_set_value_through_iterator(void) {
    size_t n = scaled(5000, 800);
    printf("  replace values through the iterator (%zu entries, both modes)\n", n);
    for (uint32_t mode = MC_MODE_STRICT; mode <= MC_MODE_CURSOR; mode++) {
        mc_map m = new_map(MC_OPT_FIXED_SEED, 5);
        fill(m, 'k', 0, n);
        mc_iter it, other;
        CHECK_OK(mc_iter_init(m, mode, &it));
        CHECK_OK(mc_iter_init(m, MC_MODE_STRICT, &other)); /* must stay valid */
        struct seen s = {calloc(n, 1), n, 0, 0};
        CHECK(s.count != NULL);
        uint8_t k[32], v[32];
        size_t kl, vl;
        mc_status st;
        while ((st = mc_iter_next(m, &it, k, sizeof k, &kl, v, sizeof v, &vl)) == MC_OK) {
            seen_entry(&s, k, kl, v, vl);
            /* a longer value, then a shorter one: never structural */
            char nv[64];
            size_t i = index_of(k, kl, 'k');
            int nl = snprintf(nv, sizeof nv, "replaced value number %zu, much longer", i);
            CHECK_OK(mc_iter_set_value(m, &it, U8(nv), (size_t)nl));
            if (i % 2)
                CHECK_OK(mc_iter_set_value(m, &it, U8("x"), 1));
        }
        CHECK_ST(st, MC_DONE);
        expect_each_once(&s, "set_value");
        uint8_t v64[64];
        CHECK_OK(mc_iter_next(m, &other, k, sizeof k, &kl, v64, sizeof v64, &vl)); /* still valid */
        char key[16];
        for (size_t i = 0; i < n; i++) {
            uint8_t val[64];
            size_t len;
            CHECK_OK(mc_map_get(m, U8(key), key_of(key, 'k', i), val, sizeof val, &len));
            char want[64];
            int wl = i % 2 ? snprintf(want, sizeof want, "x")
                           : snprintf(want, sizeof want, "replaced value number %zu, much longer", i);
            CHECK(len == (size_t)wl && memcmp(val, want, len) == 0);
        }
        CHECK(map_len(m) == n);
        free(s.count);
        CHECK_OK(mc_map_free(m));
    }
}

/* ---------------------------------------------------------------------------
 * Cursor mode across heavy growth and shrink in the middle of a scan
 * ------------------------------------------------------------------------- */

enum { ABSENT_NEVER, PRESENT, DELETED };

struct tracked {
    size_t n;               /* keys 'a' 0..n0-1 (initial), 'b' 0..n-1 (added) */
    size_t n0, nb;
    unsigned char *state_a, *state_b; /* PRESENT / DELETED / ABSENT_NEVER */
    unsigned char *ret_a, *ret_b;     /* times returned */
    unsigned char *deleted_a;         /* deleted at some point during the scan */
};

static void track_return(struct tracked *t, const uint8_t *k, size_t kl, const uint8_t *v,
                         size_t vl) {
    size_t i;
    if ((i = index_of(k, kl, 'a')) < t->n0) {
        CHECK_MSG(t->state_a[i] == PRESENT, "a%07zu returned while deleted", i);
        CHECK_MSG(++t->ret_a[i] == 1, "a%07zu returned twice", i);
        check_value(i, v, vl);
    } else if ((i = index_of(k, kl, 'b')) < t->nb) {
        CHECK_MSG(t->state_b[i] == PRESENT, "b%07zu returned while absent (state %d)", i,
                  t->state_b[i]);
        CHECK_MSG(++t->ret_b[i] == 1, "b%07zu returned twice", i);
        check_value(i, v, vl);
    } else {
        CHECK_MSG(false, "unexpected key %.*s", (int)kl, (const char *)k);
    }
}

/* Reads up to `count` entries (single next or next_batch). Returns false at the end. */
static bool scan_some(mc_map m, mc_iter *it, struct tracked *t, size_t count, bool batch) {
    uint8_t page[2048], k[32], v[32];
    size_t kl, vl, got = 0;
    while (got < count) {
        mc_status st;
        if (batch) {
            size_t cnt, used, want = count - got < 50 ? count - got : 50;
            st = mc_iter_next_batch(m, it, page, sizeof page, want, &cnt, &used);
            if (st == MC_DONE)
                return false;
            CHECK_OK(st);
            CHECK(cnt <= want);
            size_t off = 0;
            const uint8_t *kp, *vp;
            while (mc_batch_entry(page, used, &off, &kp, &kl, &vp, &vl) == MC_OK)
                track_return(t, kp, kl, vp, vl);
            got += cnt;
        } else {
            st = mc_iter_next(m, it, k, sizeof k, &kl, v, sizeof v, &vl);
            if (st == MC_DONE)
                return false;
            CHECK_OK(st);
            track_return(t, k, kl, v, vl);
            got++;
        }
    }
    return true;
}

static void cursor_growth_and_shrink(size_t n0, int cycles, bool batch, uint64_t seed,
                                     uint32_t flags) {
    struct tracked t = {0};
    t.n0 = n0;
    t.nb = n0 * 10 * (size_t)cycles;
    t.state_a = malloc(n0);
    t.ret_a = calloc(n0, 1);
    t.deleted_a = calloc(n0, 1);
    t.state_b = calloc(t.nb, 1);
    t.ret_b = calloc(t.nb, 1);
    CHECK(t.state_a && t.ret_a && t.deleted_a && t.state_b && t.ret_b);
    memset(t.state_a, PRESENT, n0);

    mc_map m = new_map(MC_OPT_FIXED_SEED | flags, seed);
    fill(m, 'a', 0, n0);
    mc_iter it;
    CHECK_OK(mc_iter_init(m, MC_MODE_CURSOR, &it));
    uint64_t rng = seed | 1;
    size_t nb_used = 0;
    char k[16];
    bool more = true;
    for (int c = 0; c < cycles && more; c++) {
        more = scan_some(m, &it, &t, n0 / (3 * (size_t)cycles) + 1, batch);
        /* grow: insert 10x the initial size */
        for (size_t j = 0; j < n0 * 10; j++, nb_used++) {
            fill(m, 'b', nb_used, nb_used + 1);
            t.state_b[nb_used] = PRESENT;
        }
        CHECK_OK(mc_map_reserve(m, n0 * 5)); /* and a reserve, for good measure */
        if (more)
            more = scan_some(m, &it, &t, n0 / (3 * (size_t)cycles) + 1, batch);
        /* shrink: delete 95% of everything present (but for every 50th initial
         * key, so that some keys stay from start to end), then shrink_to_fit */
        for (size_t i = 0; i < n0; i++)
            if (t.state_a[i] == PRESENT && i % 50 != 7 && rng_next(&rng) % 100 < 95) {
                CHECK_OK(mc_map_delete(m, U8(k), key_of(k, 'a', i)));
                t.state_a[i] = DELETED;
                t.deleted_a[i] = 1;
            }
        for (size_t i = 0; i < nb_used; i++)
            if (t.state_b[i] == PRESENT && rng_next(&rng) % 100 < 95) {
                CHECK_OK(mc_map_delete(m, U8(k), key_of(k, 'b', i)));
                t.state_b[i] = DELETED;
            }
        CHECK_OK(mc_map_shrink_to_fit(m));
        /* re-insert a few deleted 'a' keys: returned at most once, if at all */
        for (size_t i = 0; i < n0; i += 97)
            if (t.state_a[i] == DELETED) {
                fill(m, 'a', i, i + 1);
                t.state_a[i] = PRESENT;
            }
    }
    while (more)
        more = scan_some(m, &it, &t, 1000, batch);
    /* finished: stays finished */
    uint8_t kb[32], vb[32];
    size_t kl, vl;
    CHECK_ST(mc_iter_next(m, &it, kb, sizeof kb, &kl, vb, sizeof vb, &vl), MC_DONE);

    size_t stayed = 0, returned_b = 0;
    for (size_t i = 0; i < n0; i++)
        if (!t.deleted_a[i]) { /* present from the scan's start to its end */
            stayed++;
            CHECK_MSG(t.ret_a[i] == 1, "a%07zu (never deleted) returned %d times", i, t.ret_a[i]);
        }
    for (size_t i = 0; i < nb_used; i++)
        returned_b += t.ret_b[i];
    CHECK(stayed > 0);
    if (seed == 1)
        printf("    (%s: %zu of %zu initial keys stayed, all returned once; %zu of %zu inserted "
               "keys returned; final len %zu)\n",
               batch ? "next_batch" : "next", stayed, n0, returned_b, nb_used, map_len(m));
    free(t.state_a);
    free(t.ret_a);
    free(t.deleted_a);
    free(t.state_b);
    free(t.ret_b);
    CHECK_OK(mc_map_free(m));
}

static void test_cursor_growth_and_shrink(void) {
    size_t n0 = scaled(3000, 400);
    printf("  cursor scan across 10x growth and 95%% deletion + shrink mid-scan (%zu keys)\n", n0);
    for (uint64_t seed = 1; seed <= 3; seed++) {
        cursor_growth_and_shrink(n0, 1, false, seed, 0);
        cursor_growth_and_shrink(n0, 1, true, seed, 0);
        cursor_growth_and_shrink(n0 / 2, 3, seed % 2 == 0, seed + 10, 0);
    }
    /* The same on a weak-hash map, where keys tie on the hash the table is ordered by. */
    size_t w = scaled(300, 100);
    printf("  ... and on a weak-hash map (%zu keys, growing to %zu)\n", w, 11 * w);
    for (uint64_t seed = 1; seed <= 2; seed++) {
        cursor_growth_and_shrink(w, 1, seed == 2, seed + 20, MC_OPT_WEAK_HASH_FOR_TESTING);
        cursor_growth_and_shrink(w, 2, seed == 1, seed + 30, MC_OPT_WEAK_HASH_FOR_TESTING);
    }
}

/* ---------------------------------------------------------------------------
 * next_batch edge cases
 * ------------------------------------------------------------------------- */

static void test_next_batch_edges(void) {
    printf("  next_batch edge cases (empty, exact fit, one byte short, limits, 1 MiB values)\n");
    uint8_t page[256];
    size_t cnt, used;
    mc_iter it, before;
    for (uint32_t mode = MC_MODE_STRICT; mode <= MC_MODE_CURSOR; mode++) {
        /* Empty map. */
        mc_map m = new_map(MC_OPT_FIXED_SEED, 8);
        CHECK_OK(mc_iter_init(m, mode, &it));
        cnt = used = 99;
        CHECK_ST(mc_iter_next_batch(m, &it, page, sizeof page, 10, &cnt, &used), MC_DONE);
        CHECK(cnt == 0 && used == 0);
        CHECK_ST(mc_iter_next_batch(m, &it, page, sizeof page, 10, &cnt, &used), MC_DONE);

        /* One entry: exact fit, and one byte short. */
        CHECK_OK(mc_map_set(m, U8("abc"), 3, U8("defgh"), 5, NULL));
        const size_t need = MC_BATCH_ENTRY_HEADER + 3 + 5;
        CHECK_OK(mc_iter_init(m, mode, &it));
        before = it;
        memset(page, 0xEE, sizeof page);
        cnt = 99;
        CHECK_ST(mc_iter_next_batch(m, &it, page, need - 1, 10, &cnt, &used), MC_ERR_BUFFER_TOO_SMALL);
        CHECK(used == need && cnt == 99 && memcmp(&it, &before, sizeof it) == 0);
        for (size_t i = 0; i < sizeof page; i++)
            CHECK(page[i] == 0xEE);
        CHECK_OK(mc_iter_next_batch(m, &it, page, need, 10, &cnt, &used));
        CHECK(cnt == 1 && used == need && page[need] == 0xEE);
        uint32_t hk, hv;
        memcpy(&hk, page, 4);
        memcpy(&hv, page + 4, 4);
        CHECK(hk == 3 && hv == 5 && memcmp(page + 8, "abcdefgh", 8) == 0);
        const uint8_t *kp, *vp;
        size_t kl, vl, off = 0;
        CHECK_OK(mc_batch_entry(page, used, &off, &kp, &kl, &vp, &vl));
        CHECK(kp == page + 8 && kl == 3 && vp == page + 11 && vl == 5 && off == need);
        CHECK_ST(mc_batch_entry(page, used, &off, &kp, &kl, &vp, &vl), MC_DONE);
        CHECK_ST(mc_iter_next_batch(m, &it, page, need, 10, &cnt, &used), MC_DONE);

        /* Entry limit and byte limit. 100 entries of 8 + 8 + 8 bytes each. */
        fill(m, 'k', 0, 100);
        CHECK_OK(mc_map_delete(m, U8("abc"), 3));
        const size_t rec = MC_BATCH_ENTRY_HEADER + KEYLEN + 8;
        CHECK_OK(mc_iter_init(m, mode, &it));
        size_t total = 0;
        mc_status st;
        while ((st = mc_iter_next_batch(m, &it, page, sizeof page, 7, &cnt, &used)) == MC_OK) {
            CHECK(cnt >= 1 && cnt <= 7 && used == cnt * rec);
            total += cnt;
        }
        CHECK_ST(st, MC_DONE);
        CHECK(total == 100);
        CHECK_OK(mc_iter_init(m, mode, &it));
        total = 0;
        while ((st = mc_iter_next_batch(m, &it, page, 3 * rec + rec / 2, 1000, &cnt, &used)) == MC_OK) {
            CHECK(cnt >= 1 && cnt <= 3 && used == cnt * rec); /* never more than fits */
            total += cnt;
        }
        CHECK_ST(st, MC_DONE);
        CHECK(total == 100);
        /* After a batch, mc_iter_remove deletes the last entry of the batch
         * (the one the token returned last); the rest still comes once. */
        CHECK_OK(mc_iter_init(m, mode, &it));
        CHECK_OK(mc_iter_next_batch(m, &it, page, sizeof page, 3, &cnt, &used));
        CHECK(cnt == 3);
        off = 0;
        const uint8_t *lastk = NULL;
        size_t lastkl = 0;
        while (mc_batch_entry(page, used, &off, &kp, &kl, &vp, &vl) == MC_OK) {
            lastk = kp;
            lastkl = kl;
        }
        char removed_key[KEYLEN];
        memcpy(removed_key, lastk, KEYLEN);
        CHECK(lastkl == KEYLEN);
        CHECK_OK(mc_iter_remove(m, &it));
        bool present = true;
        CHECK_OK(mc_map_contains(m, U8(removed_key), KEYLEN, &present));
        CHECK(!present && map_len(m) == 99);
        total = 3;
        while ((st = mc_iter_next_batch(m, &it, page, sizeof page, 10, &cnt, &used)) == MC_OK) {
            off = 0;
            while (mc_batch_entry(page, used, &off, &kp, &kl, &vp, &vl) == MC_OK)
                CHECK(memcmp(kp, removed_key, KEYLEN) != 0);
            total += cnt;
        }
        CHECK_ST(st, MC_DONE);
        CHECK(total == 100);
        CHECK_OK(mc_map_free(m));

        /* Huge entries: four 1 MiB values. */
        m = new_map(MC_OPT_FIXED_SEED, 9);
        const size_t big = 1u << 20;
        uint8_t *val = malloc(big), *buf = malloc(2 * big + 64);
        CHECK(val && buf);
        for (size_t i = 0; i < 4; i++) {
            memset(val, 'A' + (int)i, big);
            char key[16];
            CHECK_OK(mc_map_set(m, U8(key), key_of(key, 'h', i), val, big, NULL));
        }
        const size_t bigrec = MC_BATCH_ENTRY_HEADER + KEYLEN + big;
        CHECK_OK(mc_iter_init(m, mode, &it));
        before = it;
        CHECK_ST(mc_iter_next_batch(m, &it, buf, bigrec - 1, 10, &cnt, &used), MC_ERR_BUFFER_TOO_SMALL);
        CHECK(used == bigrec && memcmp(&it, &before, sizeof it) == 0);
        total = 0;
        unsigned seen_mask = 0;
        while ((st = mc_iter_next_batch(m, &it, buf, 2 * bigrec - 1, 10, &cnt, &used)) == MC_OK) {
            CHECK(cnt == 1 && used == bigrec); /* a second one never fits */
            off = 0;
            CHECK_OK(mc_batch_entry(buf, used, &off, &kp, &kl, &vp, &vl));
            size_t i = index_of(kp, kl, 'h');
            CHECK(i < 4 && vl == big && vp[0] == 'A' + i && vp[big - 1] == 'A' + i);
            seen_mask |= 1u << i;
            total++;
        }
        CHECK_ST(st, MC_DONE);
        CHECK(total == 4 && seen_mask == 0xF);
        CHECK_OK(mc_iter_init(m, mode, &it));
        CHECK_OK(mc_iter_next_batch(m, &it, buf, 2 * bigrec, 10, &cnt, &used));
        CHECK(cnt == 2 && used == 2 * bigrec);
        free(val);
        free(buf);
        CHECK_OK(mc_map_free(m));
    }
}

/* ---------------------------------------------------------------------------
 * Encode / decode round trips
 * ------------------------------------------------------------------------- */

struct trail {
    char keys[128][KEYLEN];
    size_t n;
};

static void read_rest(mc_map m, mc_iter *it, struct trail *t) {
    uint8_t k[32], v[32];
    size_t kl, vl;
    mc_status st;
    t->n = 0;
    while ((st = mc_iter_next(m, it, k, sizeof k, &kl, v, sizeof v, &vl)) == MC_OK) {
        CHECK(kl == KEYLEN && t->n < 128);
        memcpy(t->keys[t->n++], k, KEYLEN);
    }
    CHECK_ST(st, MC_DONE);
}

struct resume_job {
    mc_map m;
    char text[MC_ITER_TEXT_LEN + 1];
    struct trail trail;
    mc_status decode;
};

static void *resume_on_thread(void *arg) {
    struct resume_job *j = arg;
    mc_iter it;
    j->decode = mc_iter_decode(j->m, j->text, strlen(j->text), &it);
    if (j->decode == MC_OK)
        read_rest(j->m, &it, &j->trail);
    return NULL;
}

static void test_encode_decode(void) {
    printf("  encode/decode round trips resume at the same place (also on another thread)\n");
    for (uint32_t mode = MC_MODE_STRICT; mode <= MC_MODE_CURSOR; mode++) {
        mc_map m = new_map(MC_OPT_FIXED_SEED, 12);
        fill(m, 'k', 0, 100);
        for (size_t stop = 0; stop <= 100; stop += 20) {
            mc_iter a;
            CHECK_OK(mc_iter_init(m, mode, &a));
            uint8_t k[32], v[32];
            size_t kl, vl;
            for (size_t i = 0; i < stop; i++)
                CHECK_OK(mc_iter_next(m, &a, k, sizeof k, &kl, v, sizeof v, &vl));
            struct resume_job *job = calloc(1, sizeof *job);
            CHECK(job != NULL);
            job->m = m;
            size_t tl;
            CHECK_OK(mc_iter_encode(m, &a, job->text, sizeof job->text, &tl));
            CHECK(tl == MC_ITER_TEXT_LEN);
            mc_iter b, copy = a;
            CHECK_OK(mc_iter_decode(m, job->text, tl, &b));
            /* Encoding the decoded token gives the same text. */
            char again[MC_ITER_TEXT_LEN + 1];
            CHECK_OK(mc_iter_encode(m, &b, again, sizeof again, &tl));
            CHECK(strcmp(again, job->text) == 0);
            pthread_t th;
            CHECK(pthread_create(&th, NULL, resume_on_thread, job) == 0);
            CHECK(pthread_join(th, NULL) == 0);
            CHECK_OK(job->decode);
            struct trail *ta = malloc(sizeof *ta), *tb = malloc(sizeof *tb), *tc = malloc(sizeof *tc);
            CHECK(ta && tb && tc);
            read_rest(m, &a, ta);
            read_rest(m, &b, tb);
            read_rest(m, &copy, tc); /* a plain copy of the token is just as good */
            CHECK(ta->n == 100 - stop);
            CHECK(ta->n == tb->n && ta->n == tc->n && ta->n == job->trail.n);
            CHECK(memcmp(ta->keys, tb->keys, ta->n * KEYLEN) == 0);
            CHECK(memcmp(ta->keys, tc->keys, ta->n * KEYLEN) == 0);
            CHECK(memcmp(ta->keys, job->trail.keys, ta->n * KEYLEN) == 0);
            free(ta);
            free(tb);
            free(tc);
            free(job);
        }
        /* The current entry survives the text form: remove through a decoded token. */
        mc_iter a;
        CHECK_OK(mc_iter_init(m, mode, &a));
        uint8_t k[32], v[32];
        size_t kl, vl, tl;
        CHECK_OK(mc_iter_next(m, &a, k, sizeof k, &kl, v, sizeof v, &vl));
        char text[MC_ITER_TEXT_LEN + 1];
        CHECK_OK(mc_iter_encode(m, &a, text, sizeof text, &tl));
        mc_iter b;
        CHECK_OK(mc_iter_decode(m, text, tl, &b));
        CHECK_OK(mc_iter_remove(m, &b));
        bool present = true;
        CHECK_OK(mc_map_contains(m, k, kl, &present));
        CHECK(!present && map_len(m) == 99);
        CHECK_OK(mc_map_free(m));
    }
    /* Snapshot tokens round-trip too. */
    mc_map m = new_map(MC_OPT_FIXED_SEED, 13);
    fill(m, 'k', 0, 50);
    mc_snapshot s;
    CHECK_OK(mc_snapshot_new(m, &s));
    mc_iter a;
    CHECK_OK(mc_snapshot_iter_init(s, MC_MODE_CURSOR, &a));
    uint8_t k[32], v[32];
    size_t kl, vl, tl;
    for (int i = 0; i < 20; i++)
        CHECK_OK(mc_snapshot_iter_next(s, &a, k, sizeof k, &kl, v, sizeof v, &vl));
    char text[MC_ITER_TEXT_LEN + 1];
    CHECK_OK(mc_snapshot_iter_encode(s, &a, text, sizeof text, &tl));
    mc_iter b;
    CHECK_OK(mc_snapshot_iter_decode(s, text, tl, &b));
    size_t na = 0, nb = 0;
    mc_status sa, sb;
    while ((sa = mc_snapshot_iter_next(s, &a, k, sizeof k, &kl, v, sizeof v, &vl)) == MC_OK) {
        uint8_t k2[32], v2[32];
        size_t kl2, vl2;
        sb = mc_snapshot_iter_next(s, &b, k2, sizeof k2, &kl2, v2, sizeof v2, &vl2);
        CHECK_OK(sb);
        CHECK(kl == kl2 && memcmp(k, k2, kl) == 0);
        na++;
        nb++;
    }
    CHECK_ST(sa, MC_DONE);
    CHECK_ST(mc_snapshot_iter_next(s, &b, k, sizeof k, &kl, v, sizeof v, &vl), MC_DONE);
    CHECK(na == 30 && nb == 30);
    CHECK_OK(mc_snapshot_free(s));
    CHECK_OK(mc_map_free(m));
}

/* ---------------------------------------------------------------------------
 * Snapshot isolation
 * ------------------------------------------------------------------------- */

/* Everything a snapshot of keys k0..n-1 with original values must show. */
static void expect_snapshot_original(mc_snapshot s, size_t n, const char *when) {
    size_t len = 0;
    CHECK_OK(mc_snapshot_len(s, &len));
    CHECK_MSG(len == n, "%s: snapshot len %zu, expected %zu", when, len, n);
    char key[16];
    for (size_t i = 0; i < n; i++) {
        uint8_t v[32];
        size_t vl;
        size_t kl = key_of(key, 'k', i);
        CHECK_OK(mc_snapshot_get(s, U8(key), kl, v, sizeof v, &vl));
        check_value(i, v, vl);
    }
    bool present = true;
    CHECK_OK(mc_snapshot_contains(s, U8(key), key_of(key, 'n', 0), &present));
    CHECK(!present);
    struct seen seen = {calloc(n, 1), n, 0, 0};
    CHECK(seen.count != NULL);
    for (uint32_t mode = MC_MODE_STRICT; mode <= MC_MODE_CURSOR; mode++) {
        mc_iter it;
        CHECK_OK(mc_snapshot_iter_init(s, mode, &it));
        mc_status st;
        while ((st = mc_snapshot_iter_next_with(s, &it, seen_entry, &seen)) == MC_OK) {
        }
        CHECK_ST(st, MC_DONE);
        expect_each_once(&seen, when);
        uint8_t page[1024];
        size_t cnt, used;
        CHECK_OK(mc_snapshot_iter_init(s, mode, &it));
        while ((st = mc_snapshot_iter_next_batch(s, &it, page, sizeof page, 33, &cnt, &used)) == MC_OK) {
            size_t off = 0, kl, vl;
            const uint8_t *kp, *vp;
            while (mc_batch_entry(page, used, &off, &kp, &kl, &vp, &vl) == MC_OK)
                seen_entry(&seen, kp, kl, vp, vl);
        }
        CHECK_ST(st, MC_DONE);
        expect_each_once(&seen, when);
    }
    free(seen.count);
}

static void test_snapshot_isolation(void) {
    size_t n = scaled(20000, 1500);
    printf("  snapshot isolation (%zu entries; overwrite, delete, insert, resize, clear, free)\n", n);
    mc_map m = new_map(MC_OPT_FIXED_SEED, 21);
    fill(m, 'k', 0, n);
    mc_snapshot s1;
    CHECK_OK(mc_snapshot_new(m, &s1));
    expect_snapshot_original(s1, n, "fresh snapshot");

    /* A snapshot iteration in progress, while the map changes underneath. */
    mc_iter live_scan;
    CHECK_OK(mc_snapshot_iter_init(s1, MC_MODE_STRICT, &live_scan));
    struct seen during = {calloc(n, 1), n, 0, 0};
    CHECK(during.count != NULL);
    for (size_t i = 0; i < n / 3; i++)
        CHECK_OK(mc_snapshot_iter_next_with(s1, &live_scan, seen_entry, &during));

    /* Overwrite every value. */
    char key[16];
    for (size_t i = 0; i < n; i++)
        CHECK_OK(mc_map_set(m, U8(key), key_of(key, 'k', i), U8("overwritten"), 11, NULL));
    expect_snapshot_original(s1, n, "after overwriting every value");
    for (size_t i = n / 3; i < n / 2; i++)
        CHECK_OK(mc_snapshot_iter_next_with(s1, &live_scan, seen_entry, &during));

    /* Delete half, insert as many new keys, shrink, reserve. */
    for (size_t i = 0; i < n; i += 2)
        CHECK_OK(mc_map_delete(m, U8(key), key_of(key, 'k', i)));
    for (size_t i = 0; i < n; i++)
        CHECK_OK(mc_map_set(m, U8(key), key_of(key, 'n', i), U8("new"), 3, NULL));
    CHECK_OK(mc_map_shrink_to_fit(m));
    CHECK_OK(mc_map_reserve(m, n * 4));
    expect_snapshot_original(s1, n, "after delete/insert/shrink/reserve");

    /* A second snapshot, then clear the map. */
    mc_snapshot s2;
    CHECK_OK(mc_snapshot_new(m, &s2));
    CHECK_OK(mc_map_clear(m));
    CHECK(map_len(m) == 0);
    size_t len2 = 0;
    CHECK_OK(mc_snapshot_len(s2, &len2));
    CHECK(len2 == n / 2 + n);
    uint8_t v[32];
    size_t vl;
    CHECK_OK(mc_snapshot_get(s2, U8(key), key_of(key, 'k', 1), v, sizeof v, &vl));
    CHECK(vl == 11 && memcmp(v, "overwritten", 11) == 0);
    CHECK_ST(mc_snapshot_get(s2, U8(key), key_of(key, 'k', 0), v, sizeof v, &vl), MC_ERR_NOT_FOUND);
    expect_snapshot_original(s1, n, "after clear");

    /* The map is freed: the snapshots live on. */
    CHECK_OK(mc_map_free(m));
    expect_snapshot_original(s1, n, "after mc_map_free");
    mc_status st;
    while ((st = mc_snapshot_iter_next_with(s1, &live_scan, seen_entry, &during)) == MC_OK) {
    }
    CHECK_ST(st, MC_DONE); /* never ITER_INVALIDATED */
    expect_each_once(&during, "snapshot scan across all the changes");
    free(during.count);
    CHECK_OK(mc_snapshot_len(s2, &len2));
    CHECK(len2 == n / 2 + n);
    CHECK_OK(mc_snapshot_free(s1));
    CHECK_OK(mc_snapshot_free(s2));
}

/* Writes made while snapshots come and go (a snapshot before every write,
 * and writes with none alive in between) each open a small storage chunk;
 * the library lays a crowded shard out afresh under the snapshots. Every
 * snapshot must keep showing its own state throughout. */
static void test_snapshot_per_write(void) {
    size_t n = scaled(2000, 500), rounds = scaled(12000, 2500);
    printf("  a snapshot before every write (%zu rounds over %zu entries)\n", rounds, n);
    mc_map m = new_map(MC_OPT_FIXED_SEED, 33);
    fill(m, 'k', 0, n);
    mc_snapshot s0, kept = {0};
    CHECK_OK(mc_snapshot_new(m, &s0));
    size_t kept_at = rounds / 2;
    char key[16];
    for (size_t r = 0; r < rounds; r++) {
        mc_snapshot s;
        CHECK_OK(mc_snapshot_new(m, &s));
        bool ins = false;
        CHECK_OK(mc_map_set(m, U8(key), key_of(key, 'n', r), U8("new"), 3, &ins));
        CHECK(ins);
        if (r == kept_at)
            kept = s;
        else
            CHECK_OK(mc_snapshot_free(s));
        /* No fresh snapshot for this one; a value of another length. */
        CHECK_OK(mc_map_set(m, U8(key), key_of(key, 'k', r % n), U8("rewritten"), 9, NULL));
    }
    expect_snapshot_original(s0, n, "after writes under snapshots");
    size_t len = 0;
    CHECK_OK(mc_snapshot_len(kept, &len));
    CHECK(len == n + kept_at); /* taken before round kept_at's insert */
    uint8_t v[32];
    size_t vl;
    for (size_t r = 0; r < rounds; r++) {
        mc_status st = mc_snapshot_get(kept, U8(key), key_of(key, 'n', r), v, sizeof v, &vl);
        CHECK_ST(st, r < kept_at ? MC_OK : MC_ERR_NOT_FOUND);
        CHECK_OK(mc_map_get(m, U8(key), key_of(key, 'n', r), v, sizeof v, &vl));
        CHECK(vl == 3 && memcmp(v, "new", 3) == 0);
    }
    for (size_t i = 0; i < n; i++) {
        CHECK_OK(mc_map_get(m, U8(key), key_of(key, 'k', i), v, sizeof v, &vl));
        CHECK(vl == 9 && memcmp(v, "rewritten", 9) == 0);
    }
    CHECK(map_len(m) == n + rounds);
    CHECK_OK(mc_snapshot_free(kept));
    CHECK_OK(mc_snapshot_free(s0));
    CHECK_OK(mc_map_free(m));
}

/* mc_iter_seek: a token placed on a key continues exactly after it, in
 * every mode, whether or not the key is present, and remove/set_value act
 * on that key. */
static void test_seek(void) {
    const size_t n = 3000;
    mc_map m = new_map(0, 0);
    fill(m, 'k', 0, n);
    const uint32_t modes[2] = {MC_MODE_STRICT, MC_MODE_CURSOR};
    for (int x = 0; x < 2; x++) {
        /* The full order, one entry at a time. */
        char (*order)[KEYLEN + 1] = calloc(n, sizeof *order);
        CHECK(order != NULL);
        mc_iter it;
        CHECK_OK(mc_iter_init(m, modes[x], &it));
        uint8_t k[64], v[64];
        size_t kl, vl, got = 0;
        while (mc_iter_next(m, &it, k, sizeof k, &kl, v, sizeof v, &vl) == MC_OK) {
            CHECK(kl == KEYLEN && got < n);
            memcpy(order[got++], k, kl);
        }
        CHECK(got == n);
        /* Seeking to entry i yields entry i+1 next (or MC_DONE after the last). */
        for (size_t i = 0; i < n; i += 37) {
            mc_iter t;
            CHECK_OK(mc_iter_init(m, modes[x], &t));
            CHECK_OK(mc_iter_seek(m, &t, (const uint8_t *)order[i], KEYLEN));
            mc_status st = mc_iter_next(m, &t, k, sizeof k, &kl, v, sizeof v, &vl);
            if (i + 1 == n) {
                CHECK_ST(st, MC_DONE);
            } else {
                CHECK_OK(st);
                CHECK(kl == KEYLEN && memcmp(k, order[i + 1], KEYLEN) == 0);
            }
        }
        /* An absent key: the scan continues with the first present key after
         * its place, and the token has no entry to remove. */
        mc_iter t;
        CHECK_OK(mc_iter_init(m, modes[x], &t));
        CHECK_OK(mc_iter_seek(m, &t, (const uint8_t *)"absent-key", 10));
        CHECK_ST(mc_iter_remove(m, &t), MC_ERR_NOT_FOUND);
        size_t after = 0;
        while (mc_iter_next(m, &t, k, sizeof k, &kl, v, sizeof v, &vl) == MC_OK) after++;
        CHECK(after <= n);
        /* remove and set_value act on the sought key. */
        CHECK_OK(mc_iter_init(m, modes[x], &t));
        CHECK_OK(mc_iter_seek(m, &t, (const uint8_t *)order[10], KEYLEN));
        CHECK_OK(mc_iter_set_value(m, &t, (const uint8_t *)"new", 3));
        size_t len = 0;
        CHECK_OK(mc_map_get(m, (const uint8_t *)order[10], KEYLEN, v, sizeof v, &len));
        CHECK(len == 3 && memcmp(v, "new", 3) == 0);
        CHECK_OK(mc_iter_remove(m, &t));
        bool present = true;
        CHECK_OK(mc_map_contains(m, (const uint8_t *)order[10], KEYLEN, &present));
        CHECK(!present);
        CHECK_OK(mc_iter_next(m, &t, k, sizeof k, &kl, v, sizeof v, &vl));
        CHECK(memcmp(k, order[11], KEYLEN) == 0);
        bool ins = false;
        CHECK_OK(mc_map_set(m, (const uint8_t *)order[10], KEYLEN, (const uint8_t *)"v", 1, &ins));
        CHECK(ins);
        free(order);
    }
    /* A key over the size limit is refused and the token is untouched. */
    mc_iter t, saved;
    CHECK_OK(mc_iter_init(m, MC_MODE_CURSOR, &t));
    saved = t;
    size_t big = MC_MAX_KEY_LEN + 1;
    uint8_t *huge = calloc(big, 1);
    CHECK(huge != NULL);
    CHECK_ST(mc_iter_seek(m, &t, huge, big), MC_ERR_TOO_LARGE);
    CHECK(memcmp(&t, &saved, sizeof t) == 0);
    free(huge);
    CHECK_OK(mc_map_free(m));
    printf("  mc_iter_seek places a token exactly after a key (present or not) in both modes\n");
}

int main(void) {
    printf("test_iteration: iteration guarantees\n");
    /* Some tests use MC_OPT_WEAK_HASH_FOR_TESTING, which needs this opt-in. */
    setenv("MAPCORE_ALLOW_WEAK_HASH", "1", 1);
    test_strict_exactly_once();
    test_remove_through_iterator();
    test_set_value_through_iterator();
    test_cursor_growth_and_shrink();
    test_next_batch_edges();
    test_encode_decode();
    test_snapshot_isolation();
    test_snapshot_per_write();
    test_seek();
    printf("test_iteration: OK (%lu checks)\n", checks_made());
    return 0;
}
