/*
 * oom_sweep.c - out of memory through the C ABI: for each operation, fail
 * each of its allocations in turn and check what the caller gets.
 *
 * Run with the injector preloaded (see README.md in this folder):
 *
 *   LD_PRELOAD=bin/oom/liboominject.so bin/oom/oom_sweep [--report] [--trace]
 *                        [--quick] [--only NAME] [--max-points N] [--jobs J]
 *
 * For every operation below, a child process builds the operation's map
 * (fixed seed, so every child allocates the same way) and records its
 * contents in a model; then, with the injector armed, makes the one call;
 * then disarms and judges:
 *
 *   ok       the call returned its usual status, its outputs are right and
 *            the map holds exactly what the call should have made of it
 *   oom      MC_ERR_OUT_OF_MEMORY, no handle or token written, and the map
 *            (and the snapshot, if any) holds exactly what it held before
 *            the call
 *   other    any other status (MC_ERR_INTERNAL, say)
 *   changed  the map, a snapshot or an output is not what the status says,
 *            or the library does not work normally afterwards
 *   abort    the child died of SIGABRT (Rust's handle_alloc_error, a panic
 *            that cannot unwind out of an extern "C" fn)
 *   crash    the child died of any other signal
 *   hang     the child did not finish in 20 s
 *
 * The failure point N is swept from 0 until the call completes without
 * reaching its N-th allocation, in two modes: "single" fails only the N-th
 * allocation, "sustained" fails it and every later one (so the error path
 * itself cannot allocate). The parent calls the library only after the
 * first operation ("map_new_cold", which sees the library's first-use
 * allocations): one fixed-seed map, made and freed, so that what is drawn
 * once per process (the secret mixed into fixed seeds) is the same in every
 * child, and every child of an operation allocates the same way.
 *
 * Some operations are the first call of a new thread (its registration
 * allocates), and some run while another, unarmed, thread reads the same
 * map: it must never see the map change unless the call succeeds.
 *
 * Default (assertion) mode: exit 1 unless every failure point of every
 * operation ends ok or oom. --report prints the whole table and the first
 * problem of each kind for each operation and exits 0; --trace (implies
 * --report) adds, for each operation, the distinct places where the
 * failure its dead children did not survive was injected (the library's
 * frames, resolved with addr2line).
 */
#define _GNU_SOURCE
#define OOM_INJECTOR_PROGRAM
#include "inject.h"

#include <mapcore.h>

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ---------------------------------------------------------------- model -- */

#define KMAX 32
#define VMAX 256

typedef struct {
    uint8_t k[KMAX];
    uint32_t kl;
    uint8_t v[VMAX];
    uint32_t vl;
} kv;

/* A map's contents: the first `nsorted` entries are sorted by key, the
 * rest (appended since) are not. */
typedef struct {
    kv *e;
    size_t n, cap, nsorted;
} model;

static void die(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(3);
}

static int kv_cmp(const void *a, const void *b) {
    const kv *x = a, *y = b;
    size_t n = x->kl < y->kl ? x->kl : y->kl;
    int c = memcmp(x->k, y->k, n);
    if (c)
        return c;
    return x->kl < y->kl ? -1 : x->kl > y->kl;
}

static void model_sort(model *m) {
    if (m->nsorted != m->n) {
        qsort(m->e, m->n, sizeof(kv), kv_cmp);
        m->nsorted = m->n;
    }
}

/* Binary search of the sorted part, then a scan of the rest (sorted first
 * once that grows past 64 entries). */
static kv *model_find(model *m, const uint8_t *k, size_t kl) {
    kv probe;
    if (kl > KMAX)
        return NULL;
    memcpy(probe.k, k, kl);
    probe.kl = (uint32_t)kl;
    if (m->n - m->nsorted > 64)
        model_sort(m);
    kv *e = bsearch(&probe, m->e, m->nsorted, sizeof(kv), kv_cmp);
    for (size_t i = m->nsorted; !e && i < m->n; i++)
        if (kv_cmp(&probe, &m->e[i]) == 0)
            e = &m->e[i];
    return e;
}

static void model_append(model *m, const uint8_t *k, size_t kl, const uint8_t *v, size_t vl) {
    if (kl > KMAX || vl > VMAX)
        die("model: entry too large");
    if (m->n == m->cap) {
        m->cap = m->cap ? 2 * m->cap : 256;
        m->e = realloc(m->e, m->cap * sizeof(kv));
        if (!m->e)
            die("model: out of memory");
    }
    kv *e = &m->e[m->n++];
    memcpy(e->k, k, kl);
    e->kl = (uint32_t)kl;
    memcpy(e->v, v, vl);
    e->vl = (uint32_t)vl;
}

static void model_put(model *m, const uint8_t *k, size_t kl, const uint8_t *v, size_t vl) {
    kv *e = model_find(m, k, kl);
    if (e) {
        memcpy(e->v, v, vl);
        e->vl = (uint32_t)vl;
    } else {
        model_append(m, k, kl, v, vl);
    }
}

static bool model_del(model *m, const uint8_t *k, size_t kl) {
    kv *e = model_find(m, k, kl);
    if (!e)
        return false;
    size_t i = (size_t)(e - m->e);
    memmove(&m->e[i], &m->e[i + 1], (m->n - i - 1) * sizeof(kv));
    m->n--;
    if (i < m->nsorted)
        m->nsorted--;
    return true;
}

static void model_copy(model *dst, model *src) {
    model_sort(src);
    dst->n = 0;
    for (size_t i = 0; i < src->n; i++)
        model_append(dst, src->e[i].k, src->e[i].kl, src->e[i].v, src->e[i].vl);
    dst->nsorted = dst->n;
}

/* NULL if equal, else a description of the first difference. */
static const char *model_diff(model *got, model *want, char *why, size_t cap) {
    model_sort(got);
    model_sort(want);
    if (got->n != want->n) {
        snprintf(why, cap, "%zu entries, expected %zu", got->n, want->n);
        return why;
    }
    for (size_t i = 0; i < got->n; i++) {
        kv *g = &got->e[i], *w = &want->e[i];
        if (kv_cmp(g, w) != 0) {
            snprintf(why, cap, "entry %zu: key '%.*s', expected '%.*s'", i, (int)g->kl,
                     (const char *)g->k, (int)w->kl, (const char *)w->k);
            return why;
        }
        if (g->vl != w->vl || memcmp(g->v, w->v, g->vl) != 0) {
            snprintf(why, cap, "key '%.*s': value '%.*s', expected '%.*s'", (int)g->kl,
                     (const char *)g->k, (int)g->vl, (const char *)g->v, (int)w->vl,
                     (const char *)w->v);
            return why;
        }
    }
    return NULL;
}

/* --------------------------------------------------------------- keys ---- */

static size_t key_of(long i, uint8_t *out) {
    return (size_t)snprintf((char *)out, KMAX, "key-%07ld", i);
}

static size_t val_of(long i, int gen, uint8_t *out) {
    return (size_t)snprintf((char *)out, VMAX, "val-%07ld-gen%d", i, gen);
}

/* ----------------------------------------------------- operation context -- */

typedef struct {
    mc_map map;        /* the operation's map (0 if none) */
    bool map_gone;     /* the operation freed it */
    mc_snapshot snap;  /* a snapshot of it taken in setup (0 if none) */
    bool snap_gone;    /* the operation freed it */
    model before;      /* the map before the call */
    model expect;      /* what it must hold after a successful call */
    model snap_model;  /* what the snapshot holds */
    long param;        /* a value setup computed once (see set_resize) */

    /* outputs and scratch of the calls */
    mc_map new_map;
    mc_snapshot new_snap;
    mc_iter it, it2;
    uint8_t kbuf[4096], vbuf[4096];
    size_t klen, vlen;
    uint8_t cur_key[KMAX];
    size_t cur_klen;
    char text[256];
    size_t text_len;
    size_t n;
    uint8_t *keys, *vals, *out;
    uint32_t *klens, *vlens;
    size_t out_cap, used, count;
    bool flag;
    const uint64_t *changes, *structural;
    size_t stride;
    char why[512];
} ctx;

static mc_map new_fixed_map(uint64_t capacity) {
    mc_options o;
    memset(&o, 0, sizeof o);
    o.flags = MC_OPT_FIXED_SEED;
    o.seed = 0x5eed;
    o.capacity = capacity;
    mc_map m = {0};
    mc_status st = mc_map_new_with(&o, &m);
    if (st != MC_OK)
        die("setup: mc_map_new_with: %s", mc_status_name(st));
    return m;
}

/* Inserts keys [from, to), which must be absent. */
static void fill(ctx *c, long from, long to) {
    for (long i = from; i < to; i++) {
        uint8_t k[KMAX], v[VMAX];
        size_t kl = key_of(i, k), vl = val_of(i, 0, v);
        bool inserted = false;
        mc_status st = mc_map_set(c->map, k, kl, v, vl, &inserted);
        if (st != MC_OK || !inserted)
            die("setup: mc_map_set: %s", mc_status_name(st));
        model_append(&c->before, k, kl, v, vl);
    }
}

/* Reads every entry of the map (snap == 0) or snapshot into `out`. */
static mc_status dump(mc_map map, mc_snapshot snap, model *out) {
    static uint8_t buf[1 << 20];
    mc_iter it;
    out->n = 0;
    out->nsorted = 0;
    mc_status st = snap.id ? mc_snapshot_iter_init(snap, MC_MODE_CURSOR, &it)
                           : mc_iter_init(map, MC_MODE_CURSOR, &it);
    if (st != MC_OK)
        return st;
    for (;;) {
        size_t count = 0, used = 0;
        st = snap.id ? mc_snapshot_iter_next_batch(snap, &it, buf, sizeof buf, 1 << 16, &count, &used)
                     : mc_iter_next_batch(map, &it, buf, sizeof buf, 1 << 16, &count, &used);
        if (st == MC_DONE)
            return MC_OK;
        if (st != MC_OK)
            return st;
        size_t off = 0;
        const uint8_t *k, *v;
        size_t kl, vl;
        while ((st = mc_batch_entry(buf, used, &off, &k, &kl, &v, &vl)) == MC_OK)
            model_append(out, k, kl, v, vl);
        if (st != MC_DONE)
            return st;
    }
}

/* Builds the batch arrays for keys [from, to) (values of generation gen). */
static void batch(ctx *c, long from, long to, int gen) {
    size_t n = (size_t)(to - from);
    c->n = n;
    c->keys = malloc(n * KMAX + 1);
    c->vals = malloc(n * VMAX + 1);
    c->klens = malloc(n * sizeof(uint32_t) + 4);
    c->vlens = malloc(n * sizeof(uint32_t) + 4);
    if (!c->keys || !c->vals || !c->klens || !c->vlens)
        die("setup: out of memory");
    size_t ko = 0, vo = 0;
    for (size_t i = 0; i < n; i++) {
        c->klens[i] = (uint32_t)key_of(from + (long)i, c->keys + ko);
        c->vlens[i] = (uint32_t)val_of(from + (long)i, gen, c->vals + vo);
        ko += c->klens[i];
        vo += c->vlens[i];
    }
}

/* batch() with values of VMAX - 1 bytes: 20,000 of them put more than an
 * arena chunk's worth (256 KiB) of records in every shard. (Values over
 * VMAX, which the model cannot hold, are swept by the engine's own tests.) */
static void batch_big(ctx *c, long from, long to) {
    size_t n = (size_t)(to - from);
    c->n = n;
    c->keys = malloc(n * KMAX + 1);
    c->vals = malloc(n * VMAX + 1);
    c->klens = malloc(n * sizeof(uint32_t) + 4);
    c->vlens = malloc(n * sizeof(uint32_t) + 4);
    if (!c->keys || !c->vals || !c->klens || !c->vlens)
        die("setup: out of memory");
    size_t ko = 0, vo = 0;
    for (size_t i = 0; i < n; i++) {
        c->klens[i] = (uint32_t)key_of(from + (long)i, c->keys + ko);
        c->vlens[i] = VMAX - 1;
        memset(c->vals + vo, (int)(i * 7 + 1), VMAX - 1);
        ko += c->klens[i];
        vo += c->vlens[i];
    }
}

static void apply_batch_set(ctx *c) {
    size_t ko = 0, vo = 0;
    for (size_t i = 0; i < c->n; i++) {
        model_put(&c->expect, c->keys + ko, c->klens[i], c->vals + vo, c->vlens[i]);
        ko += c->klens[i];
        vo += c->vlens[i];
    }
}

static void apply_batch_del(ctx *c) {
    size_t ko = 0;
    for (size_t i = 0; i < c->n; i++) {
        model_del(&c->expect, c->keys + ko, c->klens[i]);
        ko += c->klens[i];
    }
}

static void take_snapshot(ctx *c) {
    mc_status st = mc_snapshot_new(c->map, &c->snap);
    if (st != MC_OK)
        die("setup: mc_snapshot_new: %s", mc_status_name(st));
    model_copy(&c->snap_model, &c->before);
}

static void start_iter(ctx *c, uint32_t mode, bool advance) {
    mc_status st = mc_iter_init(c->map, mode, &c->it);
    if (st != MC_OK)
        die("setup: mc_iter_init: %s", mc_status_name(st));
    if (advance) {
        st = mc_iter_next(c->map, &c->it, c->cur_key, KMAX, &c->cur_klen, c->vbuf,
                          sizeof c->vbuf, &c->vlen);
        if (st != MC_OK)
            die("setup: mc_iter_next: %s", mc_status_name(st));
    }
}

/* Checks that the returned entry (k, v) is one of the model's. */
static const char *check_entry(ctx *c, const uint8_t *k, size_t kl, const uint8_t *v, size_t vl) {
    kv *e = model_find(&c->before, k, kl);
    if (!e)
        return "returned a key the map does not hold";
    if (e->vl != vl || memcmp(e->v, v, vl) != 0)
        return "returned a wrong value";
    return NULL;
}

/* ------------------------------------------------------------ operations -- */

#define BASE 200 /* entries of the usual map */

enum {
    F_COLD = 1,    /* no setup at all: the library's first use */
    F_NO_MAP = 2,  /* no map to build */
    F_NO_OOM = 4,  /* MC_ERR_OUT_OF_MEMORY is not an acceptable answer */
    F_SLOW = 8,    /* skipped by --quick */
    F_THREAD = 16, /* the call is the first of a new thread */
    F_READER = 128, /* another thread reads the base entries meanwhile */
    F_CHANGES_BASE = 256, /* ...which only a failed call must leave alone */
};

typedef struct {
    const char *name;
    unsigned flags;
    long base;                     /* entries of the map before setup() */
    void (*setup)(ctx *);          /* more setup, injector disarmed */
    mc_status (*run)(ctx *);       /* the one call, injector armed */
    mc_status want;                /* its status when nothing fails */
    const char *(*done)(ctx *);    /* on `want`: check outputs, set expect */
} op;

/* map creation */
static mc_status run_map_new(ctx *c) { return mc_map_new(&c->new_map); }
static void setup_warm(ctx *c) {
    mc_map m;
    if (mc_map_new(&m) != MC_OK || mc_map_free(m) != MC_OK)
        die("setup: warm-up failed");
    (void)c;
}
static const char *done_new_map(ctx *c) {
    bool ins = false;
    size_t n = 1;
    if (c->new_map.id == 0)
        return "MC_OK but no handle written";
    if (mc_map_set(c->new_map, (const uint8_t *)"a", 1, (const uint8_t *)"b", 1, &ins) != MC_OK ||
        !ins || mc_map_len(c->new_map, &n) != MC_OK || n != 1)
        return "the new map does not work";
    if (mc_map_free(c->new_map) != MC_OK)
        return "the new map cannot be freed";
    return NULL;
}
static mc_status run_map_new_with_cap(ctx *c) {
    mc_options o;
    memset(&o, 0, sizeof o);
    o.flags = MC_OPT_FIXED_SEED;
    o.seed = 7;
    o.capacity = 1000;
    return mc_map_new_with(&o, &c->new_map);
}
static mc_status run_map_new_with_big_cap(ctx *c) {
    mc_options o;
    memset(&o, 0, sizeof o);
    o.capacity = 100000;
    return mc_map_new_with(&o, &c->new_map);
}

/* free */
static mc_status run_map_free(ctx *c) { return mc_map_free(c->map); }
static const char *done_map_free(ctx *c) {
    size_t n;
    c->map_gone = true;
    if (mc_map_len(c->map, &n) != MC_ERR_BAD_HANDLE)
        return "the freed handle still works";
    return NULL;
}

/* single-key writes */
static const uint8_t NEW_KEY[] = "brand-new-key";
static const uint8_t NEW_VAL[] = "brand-new-value";
static mc_status run_set_new(ctx *c) {
    return mc_map_set(c->map, NEW_KEY, sizeof NEW_KEY - 1, NEW_VAL, sizeof NEW_VAL - 1, &c->flag);
}
static const char *done_set_new(ctx *c) {
    model_put(&c->expect, NEW_KEY, sizeof NEW_KEY - 1, NEW_VAL, sizeof NEW_VAL - 1);
    return c->flag ? NULL : "inserted flag false for a new key";
}
static mc_status run_set_overwrite(ctx *c) {
    c->klen = key_of(5, c->kbuf);
    c->vlen = val_of(5, 1, c->vbuf);
    return mc_map_set(c->map, c->kbuf, c->klen, c->vbuf, c->vlen, &c->flag);
}
static mc_status run_set_overwrite_longer(ctx *c) {
    c->klen = key_of(5, c->kbuf);
    c->vlen = 200;
    memset(c->vbuf, 'L', c->vlen);
    return mc_map_set(c->map, c->kbuf, c->klen, c->vbuf, c->vlen, &c->flag);
}
static const char *done_set_kbuf(ctx *c) {
    bool was = model_find(&c->expect, c->kbuf, c->klen) != NULL;
    model_put(&c->expect, c->kbuf, c->klen, c->vbuf, c->vlen);
    return c->flag == !was ? NULL : "wrong inserted flag";
}

/* The insert that allocates most among keys [from, to) of a fresh map of
 * the same seed: a table growth. Found by counting, once per operation. */
static long find_growth(long from, long to) {
    ctx probe;
    memset(&probe, 0, sizeof probe);
    probe.map = new_fixed_map(0);
    long best = from;
    unsigned long most = 0;
    for (long i = 0; i < to; i++) {
        uint8_t k[KMAX], v[VMAX];
        size_t kl = key_of(i, k), vl = val_of(i, 0, v);
        oom_arm(OOM_COUNT, 0);
        mc_status st = mc_map_set(probe.map, k, kl, v, vl, NULL);
        oom_disarm();
        if (st != MC_OK)
            die("setup: probe set: %s", mc_status_name(st));
        if (i >= from && oom_seen() > most) {
            most = oom_seen();
            best = i;
        }
    }
    mc_map_free(probe.map);
    return best;
}
static void setup_resize(ctx *c) {
    if (c->param < 0)
        c->param = find_growth(BASE, 4000);
    fill(c, BASE, c->param);
}
static void setup_big_resize(ctx *c) {
    if (c->param < 0)
        c->param = find_growth(20000, 70000);
    fill(c, BASE, c->param);
}
static mc_status run_set_param(ctx *c) {
    c->klen = key_of(c->param, c->kbuf);
    c->vlen = val_of(c->param, 0, c->vbuf);
    return mc_map_set(c->map, c->kbuf, c->klen, c->vbuf, c->vlen, &c->flag);
}

/* batches */
static void setup_batch_mixed(ctx *c) { batch(c, BASE - 50, BASE + 50, 1); }
static void setup_batch_grow(ctx *c) { batch(c, BASE, BASE + 1000, 0); }
static void setup_batch_big(ctx *c) { batch_big(c, BASE - 100, BASE + 19900); }
static mc_status run_set_many(ctx *c) {
    return mc_map_set_many(c->map, c->n, c->keys, c->klens, c->vals, c->vlens, &c->count);
}
static const char *done_set_many(ctx *c) {
    size_t before = c->expect.n;
    apply_batch_set(c);
    return c->count == c->expect.n - before ? NULL : "wrong inserted count";
}
static void setup_get_many_small(ctx *c) {
    batch(c, BASE - 10, BASE + 10, 0);
    c->out_cap = c->n * VMAX;
    c->out = malloc(c->out_cap);
}
static void setup_get_many_large(ctx *c) {
    batch(c, -50000, 50000, 0); /* key-00000xx present, negatives absent */
    c->out_cap = c->n * 32;
    c->out = malloc(c->out_cap);
}
static mc_status run_get_many(ctx *c) {
    return mc_map_get_many(c->map, c->n, c->keys, c->klens, c->out, c->out_cap, c->vlens, &c->used);
}
static const char *done_get_many(ctx *c) {
    size_t ko = 0, vo = 0;
    for (size_t i = 0; i < c->n; i++) {
        kv *e = model_find(&c->before, c->keys + ko, c->klens[i]);
        ko += c->klens[i];
        if (!e) {
            if (c->vlens[i] != MC_ABSENT)
                return "a value for an absent key";
            continue;
        }
        if (c->vlens[i] != e->vl || memcmp(c->out + vo, e->v, e->vl) != 0)
            return "a wrong value";
        vo += e->vl;
    }
    return vo == c->used ? NULL : "wrong bytes used";
}
static void setup_delete_many(ctx *c) { batch(c, BASE - 50, BASE + 10, 0); }
static mc_status run_delete_many(ctx *c) {
    return mc_map_delete_many(c->map, c->n, c->keys, c->klens, &c->count);
}
static const char *done_delete_many(ctx *c) {
    size_t before = c->expect.n;
    apply_batch_del(c);
    return c->count == before - c->expect.n ? NULL : "wrong removed count";
}

/* single-key reads and deletes */
static mc_status run_get(ctx *c) {
    c->klen = key_of(7, c->kbuf);
    return mc_map_get(c->map, c->kbuf, c->klen, c->vbuf, sizeof c->vbuf, &c->vlen);
}
static const char *done_get(ctx *c) { return check_entry(c, c->kbuf, c->klen, c->vbuf, c->vlen); }
static mc_status run_get_absent(ctx *c) {
    return mc_map_get(c->map, NEW_KEY, sizeof NEW_KEY - 1, c->vbuf, sizeof c->vbuf, &c->vlen);
}
static const char *done_nothing(ctx *c) {
    (void)c;
    return NULL;
}
static void value_cb(void *user, const uint8_t *v, size_t vl) {
    ctx *c = user;
    memcpy(c->vbuf, v, vl < sizeof c->vbuf ? vl : sizeof c->vbuf);
    c->vlen = vl;
}
static mc_status run_get_with(ctx *c) {
    c->klen = key_of(9, c->kbuf);
    return mc_map_get_with(c->map, c->kbuf, c->klen, value_cb, c);
}
static mc_status run_contains(ctx *c) {
    c->klen = key_of(11, c->kbuf);
    return mc_map_contains(c->map, c->kbuf, c->klen, &c->flag);
}
static const char *done_contains(ctx *c) { return c->flag ? NULL : "a present key reported absent"; }
static mc_status run_len(ctx *c) { return mc_map_len(c->map, &c->count); }
static const char *done_len(ctx *c) { return c->count == c->before.n ? NULL : "wrong length"; }
static mc_status run_delete(ctx *c) {
    c->klen = key_of(13, c->kbuf);
    return mc_map_delete(c->map, c->kbuf, c->klen);
}
static const char *done_delete_kbuf(ctx *c) {
    return model_del(&c->expect, c->kbuf, c->klen) ? NULL : "(harness) key was absent";
}
static mc_status run_delete_absent(ctx *c) { return mc_map_delete(c->map, NEW_KEY, sizeof NEW_KEY - 1); }

/* whole-map operations */
static mc_status run_clear(ctx *c) { return mc_map_clear(c->map); }
static const char *done_clear(ctx *c) {
    c->expect.n = 0;
    return NULL;
}
static mc_status run_reserve_small(ctx *c) { return mc_map_reserve(c->map, 1000); }
static mc_status run_reserve_large(ctx *c) { return mc_map_reserve(c->map, 200000); }
/* Grows the map by 3000 entries and deletes them again (the model, which
 * never holds them, stays as it was). */
static void setup_shrink(ctx *c) {
    for (long i = BASE; i < BASE + 3000; i++) {
        uint8_t k[KMAX], v[VMAX];
        size_t kl = key_of(i, k), vl = val_of(i, 0, v);
        if (mc_map_set(c->map, k, kl, v, vl, NULL) != MC_OK)
            die("setup: set");
    }
    for (long i = BASE; i < BASE + 3000; i++) {
        uint8_t k[KMAX];
        size_t kl = key_of(i, k);
        if (mc_map_delete(c->map, k, kl) != MC_OK)
            die("setup: delete");
    }
}
static mc_status run_shrink(ctx *c) { return mc_map_shrink_to_fit(c->map); }
static int keep_even(void *user, const uint8_t *k, size_t kl, const uint8_t *v, size_t vl) {
    (void)user, (void)v, (void)vl;
    return kl > 0 && (k[kl - 1] - '0') % 2 == 0;
}
static mc_status run_retain(ctx *c) {
    c->count = SIZE_MAX; /* must stay so on failure */
    return mc_map_retain(c->map, keep_even, NULL, &c->count);
}
static const char *done_retain(ctx *c) {
    model *m = &c->expect;
    size_t removed = 0, j = 0;
    for (size_t i = 0; i < m->n; i++) {
        if (keep_even(NULL, m->e[i].k, m->e[i].kl, NULL, 0))
            m->e[j++] = m->e[i];
        else
            removed++;
    }
    m->n = j;
    m->nsorted = 0;
    return removed == c->count ? NULL : "wrong removed count";
}

/* iteration */
static mc_status run_iter_init_strict(ctx *c) { return mc_iter_init(c->map, MC_MODE_STRICT, &c->it); }
static mc_status run_iter_init_cursor(ctx *c) { return mc_iter_init(c->map, MC_MODE_CURSOR, &c->it); }
static const char *done_iter_init(ctx *c) {
    mc_status st = mc_iter_next(c->map, &c->it, c->kbuf, sizeof c->kbuf, &c->klen, c->vbuf,
                                sizeof c->vbuf, &c->vlen);
    if (st != MC_OK)
        return "the new token does not iterate";
    return check_entry(c, c->kbuf, c->klen, c->vbuf, c->vlen);
}
static void setup_iter_strict(ctx *c) { start_iter(c, MC_MODE_STRICT, false); }
static void setup_iter_cursor(ctx *c) { start_iter(c, MC_MODE_CURSOR, false); }
static void setup_iter_cursor_at(ctx *c) { start_iter(c, MC_MODE_CURSOR, true); }
static void setup_iter_strict_at(ctx *c) { start_iter(c, MC_MODE_STRICT, true); }
static mc_status run_iter_next(ctx *c) {
    return mc_iter_next(c->map, &c->it, c->kbuf, sizeof c->kbuf, &c->klen, c->vbuf,
                        sizeof c->vbuf, &c->vlen);
}
static const char *done_iter_next(ctx *c) { return check_entry(c, c->kbuf, c->klen, c->vbuf, c->vlen); }
static void entry_cb(void *user, const uint8_t *k, size_t kl, const uint8_t *v, size_t vl) {
    ctx *c = user;
    memcpy(c->kbuf, k, kl < sizeof c->kbuf ? kl : sizeof c->kbuf);
    c->klen = kl;
    memcpy(c->vbuf, v, vl < sizeof c->vbuf ? vl : sizeof c->vbuf);
    c->vlen = vl;
}
static mc_status run_iter_next_with(ctx *c) { return mc_iter_next_with(c->map, &c->it, entry_cb, c); }
static void setup_iter_batch_strict(ctx *c) {
    start_iter(c, MC_MODE_STRICT, false);
    c->out_cap = 1 << 16;
    c->out = malloc(c->out_cap);
}
static void setup_iter_batch_cursor(ctx *c) {
    start_iter(c, MC_MODE_CURSOR, false);
    c->out_cap = 1 << 16;
    c->out = malloc(c->out_cap);
}
static mc_status run_iter_next_batch(ctx *c) {
    return mc_iter_next_batch(c->map, &c->it, c->out, c->out_cap, 64, &c->count, &c->used);
}
static const char *check_batch(ctx *c, size_t want_count) {
    size_t off = 0, seen = 0;
    const uint8_t *k, *v;
    size_t kl, vl;
    mc_status st;
    while ((st = mc_batch_entry(c->out, c->used, &off, &k, &kl, &v, &vl)) == MC_OK) {
        const char *why = check_entry(c, k, kl, v, vl);
        if (why)
            return why;
        seen++;
    }
    if (st != MC_DONE)
        return "a malformed batch buffer";
    if (seen != c->count || (want_count && seen != want_count))
        return "wrong entry count";
    return NULL;
}
static const char *done_iter_next_batch(ctx *c) { return check_batch(c, 64); }
static mc_status run_iter_seek(ctx *c) {
    c->klen = key_of(17, c->kbuf);
    return mc_iter_seek(c->map, &c->it, c->kbuf, c->klen);
}
static const char *done_iter_seek(ctx *c) {
    /* The token now stands on key 17: removing through it removes key 17. */
    if (mc_iter_remove(c->map, &c->it) != MC_OK)
        return "remove after seek failed";
    model_del(&c->expect, c->kbuf, c->klen);
    return NULL;
}
static mc_status run_iter_remove(ctx *c) { return mc_iter_remove(c->map, &c->it); }
static const char *done_iter_remove(ctx *c) {
    return model_del(&c->expect, c->cur_key, c->cur_klen) ? NULL : "(harness) current key absent";
}
static mc_status run_iter_set_value(ctx *c) {
    return mc_iter_set_value(c->map, &c->it, (const uint8_t *)"replaced", 8);
}
static const char *done_iter_set_value(ctx *c) {
    model_put(&c->expect, c->cur_key, c->cur_klen, (const uint8_t *)"replaced", 8);
    return NULL;
}
static mc_status run_iter_encode(ctx *c) {
    return mc_iter_encode(c->map, &c->it, c->text, sizeof c->text, &c->text_len);
}
static const char *done_iter_encode(ctx *c) {
    if (c->text_len != MC_ITER_TEXT_LEN)
        return "wrong text length";
    if (mc_iter_decode(c->map, c->text, c->text_len, &c->it2) != MC_OK)
        return "the text does not decode";
    return NULL;
}
static void setup_iter_decode(ctx *c) {
    start_iter(c, MC_MODE_CURSOR, true);
    if (mc_iter_encode(c->map, &c->it, c->text, sizeof c->text, &c->text_len) != MC_OK)
        die("setup: encode");
}
static mc_status run_iter_decode(ctx *c) { return mc_iter_decode(c->map, c->text, c->text_len, &c->it2); }
static const char *done_iter_decode(ctx *c) {
    /* The decoded token continues after the entry the encoded one stood on. */
    mc_status a = mc_iter_next(c->map, &c->it, c->kbuf, sizeof c->kbuf, &c->klen, c->vbuf,
                               sizeof c->vbuf, &c->vlen);
    uint8_t k2[KMAX + 8], v2[VMAX];
    size_t k2l = 0, v2l = 0;
    mc_status b = mc_iter_next(c->map, &c->it2, k2, sizeof k2, &k2l, v2, sizeof v2, &v2l);
    if (a != MC_OK || b != MC_OK || c->klen != k2l || memcmp(c->kbuf, k2, k2l) != 0)
        return "the decoded token does not continue where the encoded one was";
    return NULL;
}

/* snapshots */
static mc_status run_snapshot_new(ctx *c) { return mc_snapshot_new(c->map, &c->new_snap); }
static const char *done_snapshot_new(ctx *c) {
    model got = {0};
    if (c->new_snap.id == 0)
        return "MC_OK but no handle written";
    if (dump(c->map, c->new_snap, &got) != MC_OK)
        return "the new snapshot does not iterate";
    const char *why = model_diff(&got, &c->before, c->why, sizeof c->why);
    free(got.e);
    if (why)
        return why;
    if (mc_snapshot_free(c->new_snap) != MC_OK)
        return "the new snapshot cannot be freed";
    return NULL;
}
static void setup_snapshot(ctx *c) { take_snapshot(c); }
static mc_status run_snapshot_free(ctx *c) { return mc_snapshot_free(c->snap); }
static const char *done_snapshot_free(ctx *c) {
    size_t n;
    c->snap_gone = true;
    return mc_snapshot_len(c->snap, &n) == MC_ERR_BAD_HANDLE ? NULL : "the freed snapshot still works";
}
static mc_status run_snapshot_get(ctx *c) {
    c->klen = key_of(19, c->kbuf);
    return mc_snapshot_get(c->snap, c->kbuf, c->klen, c->vbuf, sizeof c->vbuf, &c->vlen);
}
static void setup_snapshot_iter(ctx *c) {
    take_snapshot(c);
    c->out_cap = 1 << 16;
    c->out = malloc(c->out_cap);
    if (mc_snapshot_iter_init(c->snap, MC_MODE_STRICT, &c->it) != MC_OK)
        die("setup: snapshot iter init");
}
static mc_status run_snapshot_iter_init(ctx *c) {
    return mc_snapshot_iter_init(c->snap, MC_MODE_CURSOR, &c->it2);
}
static mc_status run_snapshot_iter_next_batch(ctx *c) {
    return mc_snapshot_iter_next_batch(c->snap, &c->it, c->out, c->out_cap, 64, &c->count, &c->used);
}
static mc_status run_snapshot_iter_next(ctx *c) {
    return mc_snapshot_iter_next(c->snap, &c->it, c->kbuf, sizeof c->kbuf, &c->klen, c->vbuf,
                                 sizeof c->vbuf, &c->vlen);
}
static mc_status run_snapshot_iter_encode(ctx *c) {
    return mc_snapshot_iter_encode(c->snap, &c->it, c->text, sizeof c->text, &c->text_len);
}
static const char *done_snapshot_iter_encode(ctx *c) {
    return c->text_len == MC_ITER_TEXT_LEN &&
                   mc_snapshot_iter_decode(c->snap, c->text, c->text_len, &c->it2) == MC_OK
               ? NULL
               : "the text does not decode";
}
static void setup_snapshot_decode(ctx *c) {
    setup_snapshot_iter(c);
    if (mc_snapshot_iter_encode(c->snap, &c->it, c->text, sizeof c->text, &c->text_len) != MC_OK)
        die("setup: snapshot encode");
}
static mc_status run_snapshot_iter_decode(ctx *c) {
    return mc_snapshot_iter_decode(c->snap, c->text, c->text_len, &c->it2);
}
/* writes while a snapshot shares the map's pages (copy on write) */
static void setup_snap_batch_mixed(ctx *c) {
    take_snapshot(c);
    setup_batch_mixed(c);
}
static void setup_snap_batch_grow(ctx *c) {
    take_snapshot(c);
    setup_batch_grow(c);
}
static void setup_snap_batch_big(ctx *c) {
    take_snapshot(c);
    setup_batch_big(c);
}
static void setup_snap_delete_many(ctx *c) {
    take_snapshot(c);
    setup_delete_many(c);
}
static void setup_snap_iter_at(ctx *c) {
    take_snapshot(c);
    start_iter(c, MC_MODE_CURSOR, true);
}

/* errors, counters, watch */
static void setup_last_error_static(ctx *c) {
    if (mc_map_get(c->map, NEW_KEY, sizeof NEW_KEY - 1, NULL, 0, &c->vlen) != MC_ERR_NOT_FOUND)
        die("setup: expected NOT_FOUND");
}
static void setup_last_error_formatted(ctx *c) {
    mc_map bad = {0x123456789abcdefull};
    (void)c;
    if (mc_map_len(bad, &c->count) != MC_ERR_BAD_HANDLE)
        die("setup: expected BAD_HANDLE");
}
static mc_status run_last_error(ctx *c) { return mc_last_error(c->text, sizeof c->text, &c->text_len); }
static const char *done_last_error(ctx *c) {
    return c->text_len > 0 && strncmp(c->text, "MC_", 3) == 0 ? NULL : "an empty or malformed message";
}
static mc_status run_bad_handle(ctx *c) {
    mc_map bad = {0x123456789abcdefull};
    return mc_map_get(bad, NEW_KEY, sizeof NEW_KEY - 1, c->vbuf, sizeof c->vbuf, &c->vlen);
}
static void setup_too_large(ctx *c) {
    c->n = MC_MAX_KEY_LEN + 1;
    c->keys = calloc(1, c->n);
}
static mc_status run_too_large(ctx *c) { return mc_map_set(c->map, c->keys, c->n, NULL, 0, NULL); }
static mc_status run_get_small_buffer(ctx *c) {
    c->klen = key_of(7, c->kbuf);
    return mc_map_get(c->map, c->kbuf, c->klen, c->vbuf, 2, &c->vlen);
}
static const char *done_small_buffer(ctx *c) {
    kv *e = model_find(&c->before, c->kbuf, c->klen);
    return e && c->vlen == e->vl ? NULL : "wrong required length";
}
static mc_status run_get_many_small_buffer(ctx *c) {
    return mc_map_get_many(c->map, c->n, c->keys, c->klens, c->out, 4, c->vlens, &c->used);
}
static void setup_iter_stale(ctx *c) {
    start_iter(c, MC_MODE_STRICT, true);
    if (mc_map_delete(c->map, c->cur_key, c->cur_klen) != MC_OK)
        die("setup: delete");
    model_del(&c->before, c->cur_key, c->cur_klen);
}
static void setup_iter_tampered(ctx *c) {
    setup_iter_decode(c);
    c->text[10] = c->text[10] == 'A' ? 'B' : 'A';
}
static mc_status run_snapshot_get_with(ctx *c) {
    c->klen = key_of(21, c->kbuf);
    return mc_snapshot_get_with(c->snap, c->kbuf, c->klen, value_cb, c);
}
static mc_status run_snapshot_contains(ctx *c) {
    c->klen = key_of(11, c->kbuf);
    return mc_snapshot_contains(c->snap, c->kbuf, c->klen, &c->flag);
}
static mc_status run_snapshot_len(ctx *c) { return mc_snapshot_len(c->snap, &c->count); }
static mc_status run_snapshot_iter_next_with(ctx *c) {
    return mc_snapshot_iter_next_with(c->snap, &c->it, entry_cb, c);
}
static mc_status run_counters(ctx *c) {
    return mc_map_counters(c->map, &c->changes, &c->structural, &c->count, &c->stride);
}
static const char *done_counters(ctx *c) {
    return c->changes && c->structural && c->count > 0 ? NULL : "no counters";
}
static mc_status run_watch(ctx *c) { return mc_map_watch(c->map, 1); }

#define OP(name, flags, base, setup, run, want, done) {name, flags, base, setup, run, want, done}
static const op OPS[] = {
    OP("map_new_cold", F_COLD | F_NO_MAP, 0, NULL, run_map_new, MC_OK, done_new_map),
    OP("map_new", F_NO_MAP, 0, setup_warm, run_map_new, MC_OK, done_new_map),
    OP("map_new_with(capacity 1000)", F_NO_MAP, 0, setup_warm, run_map_new_with_cap, MC_OK, done_new_map),
    OP("map_new_with(capacity 100000)", F_NO_MAP, 0, setup_warm, run_map_new_with_big_cap, MC_OK, done_new_map),
    OP("map_free", F_NO_OOM, BASE, NULL, run_map_free, MC_OK, done_map_free),
    OP("set(new key)", 0, BASE, NULL, run_set_new, MC_OK, done_set_new),
    OP("set(overwrite)", 0, BASE, NULL, run_set_overwrite, MC_OK, done_set_kbuf),
    OP("set(overwrite, longer value)", 0, BASE, NULL, run_set_overwrite_longer, MC_OK, done_set_kbuf),
    OP("set(growth)", 0, BASE, setup_resize, run_set_param, MC_OK, done_set_kbuf),
    OP("set(growth of a big map)", F_SLOW, BASE, setup_big_resize, run_set_param, MC_OK, done_set_kbuf),
    OP("set_many(50 new, 50 overwrites)", 0, BASE, setup_batch_mixed, run_set_many, MC_OK, done_set_many),
    OP("set_many(1000 new: growth)", 0, BASE, setup_batch_grow, run_set_many, MC_OK, done_set_many),
    OP("set_many(20000 x 255 B: over a chunk/shard)", 0, BASE, setup_batch_big, run_set_many, MC_OK, done_set_many),
    OP("get", 0, BASE, NULL, run_get, MC_OK, done_get),
    OP("get(absent)", 0, BASE, NULL, run_get_absent, MC_ERR_NOT_FOUND, done_nothing),
    OP("get (a new thread's first call)", F_THREAD, BASE, NULL, run_get, MC_OK, done_get),
    OP("set(new key) (a new thread's first call)", F_THREAD, BASE, NULL, run_set_new, MC_OK, done_set_new),
    OP("get_with", 0, BASE, NULL, run_get_with, MC_OK, done_get),
    OP("contains", 0, BASE, NULL, run_contains, MC_OK, done_contains),
    OP("len", 0, BASE, NULL, run_len, MC_OK, done_len),
    OP("get_many(20)", 0, BASE, setup_get_many_small, run_get_many, MC_OK, done_get_many),
    OP("get_many(100000)", 0, BASE, setup_get_many_large, run_get_many, MC_OK, done_get_many),
    OP("delete", 0, BASE, NULL, run_delete, MC_OK, done_delete_kbuf),
    OP("delete(absent)", 0, BASE, NULL, run_delete_absent, MC_ERR_NOT_FOUND, done_nothing),
    OP("delete_many(60)", 0, BASE, setup_delete_many, run_delete_many, MC_OK, done_delete_many),
    OP("clear", 0, BASE, NULL, run_clear, MC_OK, done_clear),
    OP("reserve(1000)", 0, BASE, NULL, run_reserve_small, MC_OK, done_nothing),
    OP("reserve(200000)", 0, BASE, NULL, run_reserve_large, MC_OK, done_nothing),
    OP("shrink_to_fit", 0, BASE, setup_shrink, run_shrink, MC_OK, done_nothing),
    OP("retain", 0, BASE, NULL, run_retain, MC_OK, done_retain),
    OP("iter_init(strict)", 0, BASE, NULL, run_iter_init_strict, MC_OK, done_iter_init),
    OP("iter_init(cursor)", 0, BASE, NULL, run_iter_init_cursor, MC_OK, done_iter_init),
    OP("iter_next(strict)", 0, BASE, setup_iter_strict, run_iter_next, MC_OK, done_iter_next),
    OP("iter_next(cursor)", 0, BASE, setup_iter_cursor, run_iter_next, MC_OK, done_iter_next),
    OP("iter_next_with", 0, BASE, setup_iter_cursor, run_iter_next_with, MC_OK, done_iter_next),
    OP("iter_next_batch(strict)", 0, BASE, setup_iter_batch_strict, run_iter_next_batch, MC_OK, done_iter_next_batch),
    OP("iter_next_batch(cursor)", 0, BASE, setup_iter_batch_cursor, run_iter_next_batch, MC_OK, done_iter_next_batch),
    OP("iter_seek", 0, BASE, setup_iter_cursor, run_iter_seek, MC_OK, done_iter_seek),
    OP("iter_remove(strict)", 0, BASE, setup_iter_strict_at, run_iter_remove, MC_OK, done_iter_remove),
    OP("iter_remove(cursor)", 0, BASE, setup_iter_cursor_at, run_iter_remove, MC_OK, done_iter_remove),
    OP("iter_set_value", 0, BASE, setup_iter_cursor_at, run_iter_set_value, MC_OK, done_iter_set_value),
    OP("iter_encode", 0, BASE, setup_iter_cursor_at, run_iter_encode, MC_OK, done_iter_encode),
    OP("iter_decode", 0, BASE, setup_iter_decode, run_iter_decode, MC_OK, done_iter_decode),
    OP("snapshot_new", 0, BASE, NULL, run_snapshot_new, MC_OK, done_snapshot_new),
    OP("snapshot_free", F_NO_OOM, BASE, setup_snapshot, run_snapshot_free, MC_OK, done_snapshot_free),
    OP("snapshot_get", 0, BASE, setup_snapshot, run_snapshot_get, MC_OK, done_get),
    OP("snapshot_iter_init", 0, BASE, setup_snapshot, run_snapshot_iter_init, MC_OK, done_nothing),
    OP("snapshot_iter_next", 0, BASE, setup_snapshot_iter, run_snapshot_iter_next, MC_OK, done_iter_next),
    OP("snapshot_iter_next_batch", 0, BASE, setup_snapshot_iter, run_snapshot_iter_next_batch, MC_OK, done_iter_next_batch),
    OP("snapshot_iter_encode", 0, BASE, setup_snapshot_iter, run_snapshot_iter_encode, MC_OK, done_snapshot_iter_encode),
    OP("snapshot_iter_decode", 0, BASE, setup_snapshot_decode, run_snapshot_iter_decode, MC_OK, done_nothing),
    OP("set(new key) under a snapshot", 0, BASE, setup_snapshot, run_set_new, MC_OK, done_set_new),
    OP("set(overwrite) under a snapshot", 0, BASE, setup_snapshot, run_set_overwrite, MC_OK, done_set_kbuf),
    OP("delete under a snapshot", 0, BASE, setup_snapshot, run_delete, MC_OK, done_delete_kbuf),
    OP("set_many under a snapshot", 0, BASE, setup_snap_batch_mixed, run_set_many, MC_OK, done_set_many),
    OP("set_many(growth) under a snapshot", 0, BASE, setup_snap_batch_grow, run_set_many, MC_OK, done_set_many),
    OP("set_many(over a chunk/shard) under a snapshot", 0, BASE, setup_snap_batch_big, run_set_many, MC_OK, done_set_many),
    OP("delete_many under a snapshot", 0, BASE, setup_snap_delete_many, run_delete_many, MC_OK, done_delete_many),
    OP("clear under a snapshot", 0, BASE, setup_snapshot, run_clear, MC_OK, done_clear),
    OP("retain under a snapshot", 0, BASE, setup_snapshot, run_retain, MC_OK, done_retain),
    OP("iter_remove under a snapshot", 0, BASE, setup_snap_iter_at, run_iter_remove, MC_OK, done_iter_remove),
    OP("map_free under a snapshot", F_NO_OOM, BASE, setup_snapshot, run_map_free, MC_OK, done_map_free),
    OP("last_error(static detail)", 0, BASE, setup_last_error_static, run_last_error, MC_OK, done_last_error),
    OP("last_error(formatted detail)", 0, BASE, setup_last_error_formatted, run_last_error, MC_OK, done_last_error),
    OP("get(bad handle): error path", 0, BASE, NULL, run_bad_handle, MC_ERR_BAD_HANDLE, done_nothing),
    OP("set(key too large): error path", 0, BASE, setup_too_large, run_too_large, MC_ERR_TOO_LARGE, done_nothing),
    OP("get(buffer too small): error path", 0, BASE, NULL, run_get_small_buffer, MC_ERR_BUFFER_TOO_SMALL, done_small_buffer),
    OP("get_many(buffer too small): error path", 0, BASE, setup_get_many_small, run_get_many_small_buffer, MC_ERR_BUFFER_TOO_SMALL, done_nothing),
    OP("iter_next(stale strict token): error path", 0, BASE, setup_iter_stale, run_iter_next, MC_ERR_ITER_INVALIDATED, done_nothing),
    OP("iter_decode(tampered text): error path", 0, BASE, setup_iter_tampered, run_iter_decode, MC_ERR_BAD_TOKEN, done_nothing),
    OP("snapshot_get_with", 0, BASE, setup_snapshot, run_snapshot_get_with, MC_OK, done_get),
    OP("snapshot_contains", 0, BASE, setup_snapshot, run_snapshot_contains, MC_OK, done_contains),
    OP("snapshot_len", 0, BASE, setup_snapshot, run_snapshot_len, MC_OK, done_len),
    OP("snapshot_iter_next_with", 0, BASE, setup_snapshot_iter, run_snapshot_iter_next_with, MC_OK, done_iter_next),
    OP("set(growth) with a reader", F_READER, BASE, setup_resize, run_set_param, MC_OK, done_set_kbuf),
    OP("reserve(1000) with a reader", F_READER, BASE, NULL, run_reserve_small, MC_OK, done_nothing),
    OP("clear with a reader", F_READER | F_CHANGES_BASE, BASE, NULL, run_clear, MC_OK, done_clear),
    OP("snapshot_new with a reader", F_READER, BASE, NULL, run_snapshot_new, MC_OK, done_snapshot_new),
    OP("set(new key) under a snapshot, with a reader", F_READER, BASE, setup_snapshot, run_set_new, MC_OK, done_set_new),
    OP("counters", 0, BASE, NULL, run_counters, MC_OK, done_counters),
    OP("watch", 0, BASE, NULL, run_watch, MC_OK, done_nothing),
};
#define NOPS (sizeof OPS / sizeof OPS[0])

/* ------------------------------------------------------------- one case -- */

enum { OUT_OK, OUT_OOM, OUT_OTHER, OUT_CHANGED, OUT_ABORT, OUT_CRASH, OUT_HANG, OUT_SETUP, OUT_KINDS };
static const char *const OUT_NAME[OUT_KINDS] = {"ok", "oom", "other", "changed", "abort", "crash",
                                                "hang", "setup"};

typedef struct {
    int outcome;
    int status;
    unsigned long seen, failed, seen_mmap;
    long param;
    char why[256];
} result;

/* After the call (disarmed): the map and the snapshot hold what they must,
 * and the library still works. NULL if so. */
static const char *check_state(ctx *c, model *want) {
    model got = {0};
    const char *why = NULL;
    if (c->map.id && !c->map_gone) {
        mc_status st = dump(c->map, (mc_snapshot){0}, &got);
        if (st != MC_OK) {
            snprintf(c->why, sizeof c->why, "the map cannot be read afterwards: %s", mc_status_name(st));
            why = c->why;
        } else {
            why = model_diff(&got, want, c->why, sizeof c->why);
        }
        if (!why) {
            static const uint8_t pk[] = "probe-key";
            uint8_t v[8];
            size_t vl = 0;
            if (mc_map_set(c->map, pk, sizeof pk - 1, pk, 5, NULL) != MC_OK ||
                mc_map_get(c->map, pk, sizeof pk - 1, v, sizeof v, &vl) != MC_OK || vl != 5 ||
                mc_map_delete(c->map, pk, sizeof pk - 1) != MC_OK)
                why = "the map does not work normally afterwards";
        }
    }
    if (!why && c->snap.id && !c->snap_gone) {
        mc_status st = dump(c->map, c->snap, &got);
        if (st != MC_OK)
            why = "the snapshot cannot be read afterwards";
        else if (model_diff(&got, &c->snap_model, c->why, sizeof c->why))
            why = "the snapshot changed";
    }
    if (!why) {
        mc_map m;
        if (mc_map_new(&m) != MC_OK || mc_map_free(m) != MC_OK)
            why = "mc_map_new does not work afterwards";
    }
    free(got.e);
    return why;
}

/* F_READER: a thread (unarmed) that reads the base entries (keys below
 * BASE) with get for as long as the armed call lasts. It must always see
 * them as they were, unless the operation changes them (F_CHANGES_BASE)
 * and succeeds. */
typedef struct {
    ctx *c;
    atomic_bool started, stop;
    unsigned long rounds;
    char what[160];
    int wrong;
} reader;

static void *read_along(void *arg) {
    reader *rd = arg;
    ctx *c = rd->c;
    uint8_t k[KMAX], v[VMAX];
    size_t vl = 0;
    do {
        for (long i = 0; i < BASE && !rd->wrong; i++) {
            size_t kl = key_of(i, k);
            mc_status st = mc_map_get(c->map, k, kl, v, sizeof v, &vl);
            kv *e = model_find(&c->before, k, kl); /* the model is only read */
            if (st != MC_OK || !e || e->vl != vl || memcmp(e->v, v, vl) != 0) {
                snprintf(rd->what, sizeof rd->what, "a concurrent reader's get of key %ld: %s%s", i,
                         mc_status_name(st), st == MC_OK ? " with a wrong value" : "");
                rd->wrong = 1;
            }
            atomic_store(&rd->started, true);
        }
        rd->rounds++;
    } while (!atomic_load(&rd->stop) && !rd->wrong);
    return NULL;
}

/* The armed call, made on the calling thread or, for F_THREAD, as the
 * first call of a new thread (arming there: only its allocations count). */
typedef struct {
    const op *o;
    ctx *c;
    int mode;
    unsigned long n;
    mc_status st;
} armed_call;

static void *armed_thread(void *arg) {
    armed_call *a = arg;
    oom_arm(a->mode, a->n);
    a->st = a->o->run(a->c);
    oom_disarm();
    return NULL;
}

static void run_case(const op *o, int mode, unsigned long n, long param, int trace_fd, result *r) {
    ctx *c = calloc(1, sizeof *c);
    c->param = param;
    if (!(o->flags & F_COLD)) {
        if (!(o->flags & F_NO_MAP)) {
            c->map = new_fixed_map(0);
            fill(c, 0, o->base);
        }
        if (o->setup)
            o->setup(c);
    }
    model_copy(&c->expect, &c->before);
    r->param = c->param;
    if (trace_fd >= 0)
        oom_trace_fd(trace_fd);
    mc_iter it_before = c->it, it2_before = c->it2;
    armed_call call = {o, c, mode, n, 0};
    reader rd = {c, ATOMIC_VAR_INIT(false), ATOMIC_VAR_INIT(false), 0, "", 0};
    pthread_t rt;
    if (o->flags & F_READER) {
        if (pthread_create(&rt, NULL, read_along, &rd) != 0)
            die("setup: pthread_create");
        while (!atomic_load(&rd.started)) /* its first call registers it */
            sched_yield();
    }
    if (o->flags & F_THREAD) {
        pthread_t t;
        if (pthread_create(&t, NULL, armed_thread, &call) != 0 || pthread_join(t, NULL) != 0)
            die("setup: pthread_create");
    } else {
        armed_thread(&call);
    }
    oom_trace_fd(-1);
    if (o->flags & F_READER) {
        atomic_store(&rd.stop, true);
        pthread_join(rt, NULL);
    }
    mc_status st = call.st;
    r->status = st;
    r->seen = oom_seen();
    r->failed = oom_failed();
    r->seen_mmap = oom_seen_mmap();
    const char *why = NULL;
    if (st == o->want) {
        why = o->done(c);
        if (!why)
            why = check_state(c, &c->expect);
        r->outcome = why ? OUT_CHANGED : OUT_OK;
    } else if (st == MC_ERR_OUT_OF_MEMORY && !(o->flags & F_NO_OOM)) {
        if (c->new_map.id || c->new_snap.id)
            why = "MC_ERR_OUT_OF_MEMORY but a handle was written";
        else if (memcmp(&it_before, &c->it, sizeof c->it) != 0 || memcmp(&it2_before, &c->it2, sizeof c->it2) != 0)
            why = "MC_ERR_OUT_OF_MEMORY but the iterator token was written";
        else if (o->run == run_retain && c->count != SIZE_MAX)
            why = "MC_ERR_OUT_OF_MEMORY but *out_removed written";
        else
            why = check_state(c, &c->before);
        r->outcome = why ? OUT_CHANGED : OUT_OOM;
    } else {
        r->outcome = OUT_OTHER;
        snprintf(r->why, sizeof r->why, "returned %s", mc_status_name(st));
    }
    if (!why && rd.wrong && r->outcome != OUT_OTHER && (r->outcome != OUT_OK || !(o->flags & F_CHANGES_BASE))) {
        r->outcome = OUT_CHANGED;
        why = rd.what;
    }
    if (why)
        snprintf(r->why, sizeof r->why, "after %s: %s", mc_status_name(st), why);
}

/* ------------------------------------------------------------ the sweep -- */

/* Children run JOBS at a time, each in a slot with its own files, read
 * back with pread (a stdio stream could serve a stale buffer): its stderr,
 * and the injector's failure records. */
#define MAX_JOBS 8
static int jobs = 2;
static int errfd[MAX_JOBS], tracefd[MAX_JOBS];

typedef struct {
    pid_t pid;
    int fd; /* read end of the child's result pipe */
} running;

/* The first line of a slot's last child's stderr. */
static void first_err_line(int slot, char *line, size_t cap) {
    ssize_t n = pread(errfd[slot], line, cap - 1, 0);
    line[n > 0 ? n : 0] = 0;
    line[strcspn(line, "\n")] = 0;
}

/* Starts one case in a child, in `slot`. */
static running spawn_case(int slot, const op *o, int mode, unsigned long n, long param, bool trace) {
    int fds[2];
    if (pipe(fds) != 0)
        die("pipe: %s", strerror(errno));
    fflush(stdout);
    fflush(stderr);
    if (ftruncate(errfd[slot], 0) != 0 || ftruncate(tracefd[slot], 0) != 0 ||
        lseek(errfd[slot], 0, SEEK_SET) != 0 || lseek(tracefd[slot], 0, SEEK_SET) != 0)
        die("truncating the children's files: %s", strerror(errno));
    pid_t pid = fork();
    if (pid < 0)
        die("fork: %s", strerror(errno));
    if (pid == 0) {
        result r;
        memset(&r, 0, sizeof r);
        close(fds[0]);
        dup2(errfd[slot], 2);
        alarm(20);
        run_case(o, mode, n, param, trace ? tracefd[slot] : -1, &r);
        ssize_t w = write(fds[1], &r, sizeof r);
        _exit(w == (ssize_t)sizeof r ? 0 : 4);
    }
    close(fds[1]);
    return (running){pid, fds[0]};
}

/* Waits for a slot's child; its result (outcome abort/crash/hang when it
 * died). */
static result collect_case(int slot, running run) {
    result r;
    memset(&r, 0, sizeof r);
    int status = 0;
    ssize_t got = read(run.fd, &r, sizeof r); /* EOF when it dies */
    close(run.fd);
    while (waitpid(run.pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (WIFSIGNALED(status)) {
        int sig = WTERMSIG(status);
        r.outcome = sig == SIGABRT ? OUT_ABORT : sig == SIGALRM ? OUT_HANG : OUT_CRASH;
        char line[200];
        first_err_line(slot, line, sizeof line);
        snprintf(r.why, sizeof r.why, "signal %d (%s)%s%s", sig, strsignal(sig), line[0] ? ": " : "", line);
        r.failed = 1;
    } else if (got != (ssize_t)sizeof r || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        char line[200];
        first_err_line(slot, line, sizeof line);
        r.outcome = OUT_SETUP;
        snprintf(r.why, sizeof r.why, "child exited %d: %s", WEXITSTATUS(status), line);
        r.failed = 1;
    }
    return r;
}

/* ------------------------------------------- where an abort came from -- */

/* One addr2line process answers for libmapcore's addresses (-a prints each
 * address first, which delimits the answers); answers are cached. */
static FILE *a2l_in, *a2l_out;
#define A2L_CACHE 4096
static struct {
    uint64_t off;
    char *text;
} a2l_cache[A2L_CACHE];
static size_t a2l_cached;

static bool a2l_start(const char *lib) {
    int to[2], from[2];
    if (pipe(to) != 0 || pipe(from) != 0)
        return false;
    pid_t pid = fork();
    if (pid < 0)
        return false;
    if (pid == 0) {
        dup2(to[0], 0);
        dup2(from[1], 1);
        close(to[1]);
        close(from[0]);
        execlp("addr2line", "addr2line", "-a", "-f", "-C", "-i", "-p", "-e", lib, (char *)NULL);
        _exit(127);
    }
    close(to[0]);
    close(from[1]);
    a2l_in = fdopen(to[1], "w");
    a2l_out = fdopen(from[0], "r");
    return a2l_in && a2l_out;
}

/* The source lines of one code address of the library (inlined frames
 * included), one per line, directories dropped; NULL if unavailable. */
static const char *a2l_resolve(uint64_t off) {
    for (size_t i = 0; i < a2l_cached; i++)
        if (a2l_cache[i].off == off)
            return a2l_cache[i].text;
    /* The address, then a sentinel whose answer ends this one's. */
    fprintf(a2l_in, "0x%lx\n0xffffffffffff\n", (unsigned long)off);
    fflush(a2l_in);
    char line[1024], *text = calloc(1, 1);
    size_t len = 0;
    bool first = true;
    while (fgets(line, sizeof line, a2l_out)) {
        if (strncmp(line, "0x0000ffffffffffff:", 19) == 0)
            break; /* the sentinel's answer: "0x0000ffffffffffff: ?? ??:0" */
        char *body = line;
        if (first) { /* "0x...: func at file:line" */
            body = strstr(line, ": ");
            body = body ? body + 2 : line;
            first = false;
        }
        if (strncmp(body, " (inlined by) ", 14) == 0)
            body += 14;
        char *at = strstr(body, " at ");
        char *slash = at ? strrchr(at, '/') : NULL;
        char piece[1100];
        if (slash)
            snprintf(piece, sizeof piece, "%.*s at %s", (int)(at - body), body, slash + 1);
        else
            snprintf(piece, sizeof piece, "%s", body);
        text = realloc(text, len + strlen(piece) + 1);
        memcpy(text + len, piece, strlen(piece) + 1);
        len += strlen(piece);
    }
    if (a2l_cached < A2L_CACHE) {
        a2l_cache[a2l_cached].off = off;
        a2l_cache[a2l_cached++].text = text;
    }
    return text;
}

/* The library's frames of one failure record, innermost first. */
static char *record_text(const struct oom_trace_rec *rec) {
    char *text = calloc(1, 1);
    size_t len = 0;
    for (uint32_t i = 0; i < rec->depth && i < OOM_TRACE_DEPTH; i++) {
        Dl_info info;
        if (!dladdr((void *)(uintptr_t)rec->frames[i], &info) || !info.dli_fname ||
            !strstr(info.dli_fname, "libmapcore"))
            continue;
        if (!a2l_in && !a2l_start(info.dli_fname))
            break;
        const char *t = a2l_resolve(rec->frames[i] - (uintptr_t)info.dli_fbase - 1);
        text = realloc(text, len + strlen(t) + 1);
        memcpy(text + len, t, strlen(t) + 1);
        len += strlen(t);
    }
    return text;
}

/* Frames that are the failure's consequence, not its site. */
static bool in_failure_handling(const char *text) {
    static const char *const marks[] = {"handle_alloc_error", "rust_oom", "rust_panic", "begin_panic",
                                        "panic_fmt", "default_hook", "panic_count"};
    for (size_t i = 0; i < sizeof marks / sizeof marks[0]; i++)
        if (strstr(text, marks[i]))
            return true;
    return false;
}

/* Where the failure that a dead child did not survive was injected: the
 * last recorded failure outside the abort/panic machinery (which allocates
 * too, and fails again under sustained failure), reduced to the frame that
 * allocated and the library's own frames (at most 10). Caller frees. */
static char *death_site(int slot) {
    struct oom_trace_rec *recs = NULL;
    size_t n = 0;
    struct oom_trace_rec rec;
    off_t at = 0;
    while (pread(tracefd[slot], &rec, sizeof rec, at) == (ssize_t)sizeof rec) {
        at += (off_t)sizeof rec;
        if (rec.magic != OOM_TRACE_MAGIC)
            continue;
        recs = realloc(recs, (n + 1) * sizeof rec);
        recs[n++] = rec;
    }
    char *full = NULL;
    for (size_t i = n; i-- > 0 && n - i <= 16;) {
        free(full);
        full = record_text(&recs[i]);
        if (!in_failure_handling(full))
            break;
    }
    free(recs);
    if (!full)
        return strdup("(no injected failure recorded)\n");
    /* Keep what allocated: the frame just above the library's first own
     * frame, and above it up to 3 frames of other crates (parking_lot...)
     * but not of alloc/core/std; then the library's own frames. */
    char *out = calloc(1, strlen(full) + 64), *lines[256];
    int nl = 0, first = -1, kept = 0;
    for (char *line = strtok(full, "\n"); line && nl < 256; line = strtok(NULL, "\n")) {
        bool ours = strstr(line, "mapcore::") || strstr(line, " mc_") || strncmp(line, "mc_", 3) == 0;
        if (ours && first < 0)
            first = nl;
        lines[nl++] = line;
    }
    if (first > 0) {
        int picked[4], np = 0;
        picked[np++] = first - 1;
        for (int i = first - 2; i >= 0 && np < 4; i--) {
            const char *l = lines[i];
            if (l[0] == '<')
                l++;
            if (strncmp(l, "alloc::", 7) && strncmp(l, "core::", 6) && strncmp(l, "std::", 5))
                picked[np++] = i;
        }
        while (np-- > 0) {
            strcat(out, lines[picked[np]]);
            strcat(out, "\n");
        }
    }
    for (int i = first; first >= 0 && i < nl && kept < 10; i++) {
        bool ours = strstr(lines[i], "mapcore::") || strstr(lines[i], " mc_") || strncmp(lines[i], "mc_", 3) == 0;
        if (ours) {
            strcat(out, lines[i]);
            strcat(out, "\n");
            kept++;
        }
    }
    if (!kept)
        strcat(out, "(no mapcore frame)\n");
    free(full);
    return out;
}

/* Distinct death sites of one operation. */
#define MAX_SITES 12
typedef struct {
    char *text;
    unsigned long count;
    char first[64];
} site;

static void add_site(site *sites, size_t *nsites, char *text, const char *where) {
    for (size_t i = 0; i < *nsites; i++)
        if (!strcmp(sites[i].text, text)) {
            sites[i].count++;
            free(text);
            return;
        }
    if (*nsites == MAX_SITES) {
        free(text);
        return;
    }
    sites[*nsites].text = text;
    sites[*nsites].count = 1;
    snprintf(sites[*nsites].first, sizeof sites[*nsites].first, "%s", where);
    (*nsites)++;
}

/* ------------------------------------------------- the injector itself -- */

static void *volatile sink; /* keeps the compiler from eliding allocations */

/* Waits for a byte on go[0], allocates, answers on done[1]. */
static int go[2], done[2];
static void *other_thread_malloc(void *arg) {
    char b;
    (void)arg;
    if (read(go[0], &b, 1) != 1)
        return NULL;
    void *p = malloc(64);
    if (write(done[1], &b, 1) != 1)
        return NULL;
    return p;
}

/* Checks that the injector fails what it must and nothing else: each kind
 * of allocation, the N-th only or from the N-th on, the arming thread only.
 * NULL if it does. */
static const char *injector_self_test(void) {
    void *p = NULL;
    oom_arm(OOM_ONCE, 0);
    sink = malloc(16);
    bool malloc_failed = sink == NULL;
    sink = malloc(16);
    bool next_ok = sink != NULL;
    oom_disarm();
    free(sink);
    if (!malloc_failed || !next_ok || oom_seen() != 2 || oom_failed() != 1)
        return "OOM_ONCE 0: malloc did not fail exactly once";
    oom_arm(OOM_FROM, 1);
    sink = calloc(1, 16);
    bool first_ok = sink != NULL;
    void *keep = sink;
    void *grown = realloc(sink, 4096); /* (through the volatile: a failed realloc keeps `keep`) */
    bool realloc_failed = grown == NULL;
    int pm = posix_memalign(&p, 64, 64);
    sink = aligned_alloc(64, 64);
    bool aligned_failed = sink == NULL;
    void *m = mmap(NULL, 1 << 16, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    unsigned long seen_from = oom_seen(), failed_from = oom_failed(), maps_from = oom_seen_mmap();
    /* Another thread (started before arming: its stack is an mmap) allocates
     * freely while this one is armed. */
    oom_disarm();
    pthread_t t;
    void *theirs = NULL;
    char b = 1;
    bool thread_ok = pipe(go) == 0 && pipe(done) == 0 &&
                     pthread_create(&t, NULL, other_thread_malloc, NULL) == 0;
    oom_arm(OOM_FROM, 0);
    thread_ok = thread_ok && write(go[1], &b, 1) == 1 && read(done[0], &b, 1) == 1;
    unsigned long failed_here = oom_failed();
    oom_disarm();
    thread_ok = thread_ok && pthread_join(t, &theirs) == 0 && theirs != NULL && failed_here == 0;
    oom_disarm();
    free(grown ? grown : keep);
    free(theirs);
    if (!first_ok || !realloc_failed || pm != ENOMEM || !aligned_failed || m != MAP_FAILED)
        return "OOM_FROM 1: calloc, then realloc/posix_memalign/aligned_alloc/mmap did not fail";
    if (seen_from != 5 || failed_from != 4 || maps_from != 1)
        return "wrong counts under OOM_FROM";
    if (!thread_ok)
        return "an allocation of a thread that did not arm the injector failed";
    return NULL;
}

typedef struct {
    unsigned long points;
    unsigned long kinds[OUT_KINDS];
} tally;

int main(int argc, char **argv) {
    bool report = false, trace = false, quick = false;
    const char *only = NULL;
    unsigned long max_points = 5000;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--report"))
            report = true;
        else if (!strcmp(argv[i], "--trace"))
            trace = report = true;
        else if (!strcmp(argv[i], "--quick"))
            quick = true;
        else if (!strcmp(argv[i], "--only") && i + 1 < argc)
            only = argv[++i];
        else if (!strcmp(argv[i], "--jobs") && i + 1 < argc)
            jobs = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--max-points") && i + 1 < argc)
            max_points = strtoul(argv[++i], NULL, 10);
        else
            die("usage: %s [--report] [--trace] [--quick] [--only NAME] [--max-points N] [--jobs J]", argv[0]);
    }
    if (jobs < 1 || jobs > MAX_JOBS)
        die("--jobs: 1 to %d", MAX_JOBS);
    if (!oom_load())
        die("the allocation-failure injector is not loaded: run with "
            "LD_PRELOAD=<path>/liboominject.so (see tests/oom/README.md)");
    /* Rust's allocation-failure message would add a symbolised backtrace
     * (slow: it reads the library's debug info); --trace gives ours. */
    setenv("RUST_BACKTRACE", "0", 1);
    for (int j = 0; j < jobs; j++) {
        FILE *errf = tmpfile(), *tracef = tmpfile();
        if (!errf || !tracef)
            die("tmpfile: %s", strerror(errno));
        errfd[j] = fileno(errf);
        tracefd[j] = fileno(tracef);
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    oom_trace_fd(-1); /* loads what backtrace() needs, once, here */
    const char *broken = injector_self_test();
    if (broken)
        die("the injector does not work: %s", broken);

    unsigned long bad_total = 0, points_total = 0, maps_total = 0;
    bool warm = false; /* the parent has called the library */
    int ops_run = 0;
    uint64_t t0 = 0;
    {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        t0 = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
    }
    printf("%-42s %6s | %-36s | %-36s\n", "operation", "allocs", "single failure: points ok/oom/other/chg/abort/crash",
           "sustained failure: points ok/oom/other/chg/abort/crash");
    for (size_t oi = 0; oi < NOPS; oi++) {
        const op *o = &OPS[oi];
        if (only && !strstr(o->name, only))
            continue;
        if (quick && (o->flags & F_SLOW))
            continue;
        if (!(o->flags & F_COLD) && !warm) {
            mc_map m = new_fixed_map(0);
            mc_map_free(m);
            warm = true;
        }
        ops_run++;
        /* Unarmed run: the call must work, and says how much it allocates. */
        result base = collect_case(0, spawn_case(0, o, OOM_COUNT, 0, -1, false));
        if (base.outcome != OUT_OK) {
            printf("%-42s  BASELINE FAILED: %s %s\n", o->name, OUT_NAME[base.outcome], base.why);
            bad_total++;
            continue;
        }
        long param = base.param;
        maps_total += base.seen_mmap;
        tally t[2];
        memset(t, 0, sizeof t);
        char first[2][OUT_KINDS][256];
        memset(first, 0, sizeof first);
        site sites[MAX_SITES];
        size_t nsites = 0;
        for (int mi = 0; mi < 2; mi++) {
            int mode = mi == 0 ? OOM_ONCE : OOM_FROM;
            /* Failure points n, n+1, ... run `jobs` at a time; results are
             * taken in order, and those past the first that did not reach
             * its failure point are dropped. */
            bool finished = false;
            for (unsigned long n0 = 0; n0 < max_points && !finished; n0 += (unsigned long)jobs) {
                running run[MAX_JOBS];
                int started = 0;
                for (int j = 0; j < jobs && n0 + (unsigned long)j < max_points; j++, started++)
                    run[j] = spawn_case(j, o, mode, n0 + (unsigned long)j, param, true);
                for (int j = 0; j < started; j++) {
                    unsigned long n = n0 + (unsigned long)j;
                    result r = collect_case(j, run[j]);
                    if (finished)
                        continue;
                    if (r.failed == 0) {
                        /* Ran past its last allocation without a failure. */
                        if (r.outcome != OUT_OK) {
                            t[mi].kinds[r.outcome]++;
                            t[mi].points++;
                        }
                        finished = true;
                        continue;
                    }
                    if (r.outcome >= OUT_ABORT && r.outcome <= OUT_HANG) {
                        char *where_from = death_site(j);
                        if (trace) {
                            char where[64];
                            snprintf(where, sizeof where, "%s N=%lu", mi ? "sustained" : "single", n);
                            add_site(sites, &nsites, where_from, where);
                        } else {
                            free(where_from);
                        }
                    }
                    t[mi].points++;
                    t[mi].kinds[r.outcome]++;
                    if (!first[mi][r.outcome][0])
                        snprintf(first[mi][r.outcome], sizeof first[mi][r.outcome], "N=%lu: %.200s", n,
                                 r.why[0] ? r.why : OUT_NAME[r.outcome]);
                    if (r.outcome >= OUT_ABORT && r.outcome != OUT_SETUP && n > base.seen + 64)
                        finished = true; /* died past every allocation the call makes */
                }
            }
        }
        char cols[2][80];
        for (int mi = 0; mi < 2; mi++) {
            unsigned long *k = t[mi].kinds;
            snprintf(cols[mi], sizeof cols[mi], "%6lu  %lu/%lu/%lu/%lu/%lu/%lu", t[mi].points, k[OUT_OK],
                     k[OUT_OOM], k[OUT_OTHER], k[OUT_CHANGED], k[OUT_ABORT],
                     k[OUT_CRASH] + k[OUT_HANG] + k[OUT_SETUP]);
            points_total += t[mi].points;
            bad_total += t[mi].points - k[OUT_OK] - k[OUT_OOM];
        }
        printf("%-42s %6lu | %-36s | %-36s\n", o->name, base.seen, cols[0], cols[1]);
        for (int mi = 0; mi < 2; mi++)
            for (int k = OUT_OTHER; k < OUT_KINDS; k++)
                if (first[mi][k][0])
                    printf("    %-9s %-7s first at %s\n", mi ? "sustained" : "single", OUT_NAME[k], first[mi][k]);
        for (size_t i = 0; i < nsites; i++) {
            printf("    died at %lu failure point%s (first: %s), failure injected at:\n", sites[i].count,
                   sites[i].count == 1 ? "" : "s", sites[i].first);
            for (char *line = strtok(sites[i].text, "\n"); line; line = strtok(NULL, "\n"))
                printf("        %s\n", line);
            free(sites[i].text);
        }
    }
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    double secs = ((uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec - t0) / 1e9;
    printf("%d operations, %lu failure points (%lu of the allocations are mmaps), %lu not ok/oom, %.1f s\n",
           ops_run, points_total, maps_total, bad_total, secs);
    if (!only && !maps_total) {
        fprintf(stderr, "FAILED: no call mapped memory while armed: the injector does not see the library's mmap\n");
        bad_total++;
    }
    if (report)
        return 0;
    if (bad_total) {
        fprintf(stderr, "FAILED: %lu failure points ended in something other than the call's usual "
                        "status or MC_ERR_OUT_OF_MEMORY with the map unchanged\n", bad_total);
        return 1;
    }
    printf("== out of memory: every failure point gave the usual status or MC_ERR_OUT_OF_MEMORY, map unchanged ==\n");
    return 0;
}
