/* C-side benchmark: mapcore (linked from target/release/libmapcore.a) against
 * GLib's GHashTable with copied byte keys and values, plus floors (an empty
 * call into the library, memcpy of the bytes a full iteration yields).
 *
 * `bench-c` is the driver: for every size and contestant it forks a child that
 * generates the data, runs the contestant and prints JSON result lines
 * (bench/DATA.md) to stdout; progress goes to stderr. RSS per entry is taken
 * in the child, so every contestant is measured in its own process.
 * Sizes: BENCH_QUICK / BENCH_SMOKE / BENCH_N / BENCH_REPS / BENCH_Q / BENCH_ONLY. */
#define _GNU_SOURCE
#include <glib.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "mapcore.h"
#include "data.h"

/* ---------------------------------------------------------------- utilities */

static volatile uint64_t sink_v;
static inline void sink(uint64_t x) { sink_v += x; }

static double now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

static uint64_t rss_bytes(void) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    uint64_t kb = 0;
    if (!f) return 0;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %lu kB", &kb) == 1) break;
    fclose(f);
    return kb * 1024;
}

#define CHECK(cond, what)                                                      \
    do {                                                                       \
        if (!(cond)) {                                                         \
            fprintf(stderr, "CHECK FAILED: %s (%s:%d)\n", what, __FILE__, __LINE__); \
            exit(2);                                                           \
        }                                                                      \
    } while (0)

#define MAXRES 64
#define MAXRUNS 16
typedef struct {
    const char *op, *unit;
    int threads, nruns;
    double runs[MAXRUNS];
} result;
typedef struct {
    const char *contestant;
    size_t n;
    int count;
    result r[MAXRES];
} results;

static void res_add(results *rs, const char *op, int threads, const char *unit, double v) {
    for (int i = 0; i < rs->count; i++) {
        result *r = &rs->r[i];
        if (strcmp(r->op, op) == 0 && r->threads == threads) {
            if (r->nruns < MAXRUNS) r->runs[r->nruns++] = v;
            return;
        }
    }
    CHECK(rs->count < MAXRES, "too many results");
    result *r = &rs->r[rs->count++];
    r->op = op;
    r->unit = unit;
    r->threads = threads;
    r->nruns = 1;
    r->runs[0] = v;
}

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void res_emit(const results *rs) {
    for (int i = 0; i < rs->count; i++) {
        const result *r = &rs->r[i];
        double s[MAXRUNS];
        memcpy(s, r->runs, sizeof(double) * r->nruns);
        qsort(s, r->nruns, sizeof(double), cmp_d);
        double med = r->nruns % 2 ? s[r->nruns / 2] : (s[r->nruns / 2 - 1] + s[r->nruns / 2]) / 2;
        printf("{\"side\":\"c\",\"contestant\":\"%s\",\"op\":\"%s\",\"n\":%zu,\"threads\":%d,"
               "\"unit\":\"%s\",\"median\":%.3f,\"runs\":[",
               rs->contestant, r->op, rs->n, r->threads, r->unit, med);
        for (int k = 0; k < r->nruns; k++) printf("%s%.3f", k ? "," : "", r->runs[k]);
        printf("]}\n");
        if (!getenv("BENCH_SMOKE") || !*getenv("BENCH_SMOKE"))
            fprintf(stderr, "  %-10s %-16s %dT %10.2f %s\n", rs->contestant, r->op, r->threads, med, r->unit);
    }
    fflush(stdout);
}

static void mc_ok(mc_status st, const char *what) {
    if (st != MC_OK) {
        fprintf(stderr, "%s: %s\n", what, mc_status_name(st));
        exit(2);
    }
}

static inline void visit(uint64_t *acc, const uint8_t *k, size_t kl, const uint8_t *v, size_t vl) {
    *acc += kl + vl + k[0] + v[vl - 1];
}

/* ------------------------------------------------------------------ mapcore */

static const uint32_t LENS16[256] = { [0 ... 255] = KLEN };
static const uint32_t LENS32[256] = { [0 ... 255] = VLEN };

typedef mc_map mcb_t;
static mcb_t mcb_new(size_t cap) {
    mc_options o = { 0 };
    o.capacity = cap;
    mc_map m;
    mc_ok(mc_map_new_with(&o, &m), "mc_map_new_with");
    return m;
}
static void mcb_free(mcb_t m) { mc_ok(mc_map_free(m), "mc_map_free"); }
static inline void mcb_insert(mcb_t m, const uint8_t *k, const uint8_t *v) {
    mc_status st = mc_map_set(m, k, KLEN, v, VLEN, NULL);
    if (st != MC_OK) mc_ok(st, "mc_map_set");
}
static inline int mcb_get(mcb_t m, const uint8_t *k, uint8_t *out) {
    size_t len;
    mc_status st = mc_map_get(m, k, KLEN, out, 64, &len);
    if (st == MC_OK) return 1;
    if (st != MC_ERR_NOT_FOUND) mc_ok(st, "mc_map_get");
    return 0;
}
static inline void mcb_set(mcb_t m, const uint8_t *k, const uint8_t *v) { mcb_insert(m, k, v); }
static inline int mcb_remove(mcb_t m, const uint8_t *k) {
    mc_status st = mc_map_delete(m, k, KLEN);
    if (st == MC_OK) return 1;
    if (st != MC_ERR_NOT_FOUND) mc_ok(st, "mc_map_delete");
    return 0;
}
static size_t mcb_len(mcb_t m) {
    size_t n;
    mc_ok(mc_map_len(m, &n), "mc_map_len");
    return n;
}
static void mcb_iterate(mcb_t m, size_t *count, uint64_t *acc) {
    enum { CAP = 64 * 1024 };
    static uint8_t buf[CAP];
    mc_iter it;
    mc_ok(mc_iter_init(m, MC_MODE_STRICT, &it), "mc_iter_init");
    for (;;) {
        size_t cnt, used;
        mc_status st = mc_iter_next_batch(m, &it, buf, CAP, 1024, &cnt, &used);
        if (st == MC_DONE) break;
        mc_ok(st, "mc_iter_next_batch");
        size_t off = 0;
        for (size_t i = 0; i < cnt; i++) { /* documented layout: u32 klen, u32 vlen, key, value */
            uint32_t kl, vl;
            memcpy(&kl, buf + off, 4);
            memcpy(&vl, buf + off + 4, 4);
            visit(acc, buf + off + 8, kl, buf + off + 8 + kl, vl);
            off += 8 + (size_t)kl + vl;
        }
        *count += cnt;
    }
}
/* The simplest loop a C user writes: one mc_iter_next call per entry,
 * copying key and value out (a strict token, checked on every call). */
static void mcb_iterate_one(mcb_t m, size_t *count, uint64_t *acc) {
    uint8_t k[64], v[64];
    size_t kl, vl;
    mc_iter it;
    mc_ok(mc_iter_init(m, MC_MODE_STRICT, &it), "mc_iter_init");
    mc_status st;
    while ((st = mc_iter_next(m, &it, k, sizeof k, &kl, v, sizeof v, &vl)) == MC_OK) {
        visit(acc, k, kl, v, vl);
        (*count)++;
    }
    CHECK(st == MC_DONE, "mc_iter_next");
}
static size_t mcb_get_batch(mcb_t m, const uint8_t *keys, size_t n, uint8_t *out, uint32_t *lens) {
    size_t used, hits = 0;
    mc_ok(mc_map_get_many(m, n, keys, LENS16, out, 256 * VLEN, lens, &used), "mc_map_get_many");
    for (size_t i = 0; i < n; i++) hits += lens[i] != MC_ABSENT;
    return hits;
}
static void mcb_insert_batch(mcb_t m, const uint8_t *keys, const uint8_t *vals, size_t n) {
    mc_ok(mc_map_set_many(m, n, keys, LENS16, vals, LENS32, NULL), "mc_map_set_many");
}
#define mcb_cget mcb_get
#define mcb_cset mcb_set
#define C_HAS_PRESIZE 1
#define C_HAS_BATCH 1
#define C_CONCURRENT 1
#define C_(x) mcb_##x
#include "harness.inc"
#undef C_
#undef C_HAS_PRESIZE
#undef C_HAS_BATCH
#undef C_CONCURRENT

/* --------------------------------------------------------------- GHashTable */
/* Keys and values are copied into one malloc each: a {len, ptr} header
 * followed by the bytes. Lookups use a {len, ptr} on the stack (no copy).
 * The hash is GLib's g_bytes_hash (djb2 over signed bytes). GHashTable has no
 * capacity hint, so there is no presized variant. For two threads the table
 * is guarded by a GRWLock (GHashTable is not thread-safe). */

typedef struct {
    size_t len;
    const uint8_t *p;
} gblob;

static gblob *gblob_new(const uint8_t *b, size_t len) {
    gblob *x = g_malloc(sizeof(gblob) + len);
    x->len = len;
    x->p = (const uint8_t *)(x + 1);
    memcpy(x + 1, b, len);
    return x;
}
static guint gblob_hash(gconstpointer k) {
    const gblob *b = k;
    const signed char *p = (const signed char *)b->p, *e = p + b->len;
    guint32 h = 5381;
    for (; p != e; p++) h = (h << 5) + h + *p;
    return h;
}
static gboolean gblob_equal(gconstpointer a, gconstpointer b) {
    const gblob *x = a, *y = b;
    return x->len == y->len && memcmp(x->p, y->p, x->len) == 0;
}

typedef struct {
    GHashTable *t;
    GRWLock lock;
} gh_map;
typedef gh_map *gh_t;
static gh_t gh_new(size_t cap) {
    (void)cap;
    gh_map *m = g_new0(gh_map, 1);
    m->t = g_hash_table_new_full(gblob_hash, gblob_equal, g_free, g_free);
    g_rw_lock_init(&m->lock);
    return m;
}
static void gh_free(gh_t m) {
    g_hash_table_destroy(m->t);
    g_rw_lock_clear(&m->lock);
    g_free(m);
}
static inline void gh_insert(gh_t m, const uint8_t *k, const uint8_t *v) {
    g_hash_table_insert(m->t, gblob_new(k, KLEN), gblob_new(v, VLEN));
}
static inline int gh_get(gh_t m, const uint8_t *k, uint8_t *out) {
    gblob lk = { KLEN, k };
    const gblob *v = g_hash_table_lookup(m->t, &lk);
    if (!v) return 0;
    memcpy(out, v->p, v->len);
    return 1;
}
static inline void gh_set(gh_t m, const uint8_t *k, const uint8_t *v) {
    /* Overwrite in place when the length matches, as a careful user would. */
    gblob lk = { KLEN, k };
    gblob *old = g_hash_table_lookup(m->t, &lk);
    if (old && old->len == VLEN)
        memcpy((uint8_t *)(old + 1), v, VLEN);
    else
        gh_insert(m, k, v);
}
static inline int gh_remove(gh_t m, const uint8_t *k) {
    gblob lk = { KLEN, k };
    return g_hash_table_remove(m->t, &lk);
}
static size_t gh_len(gh_t m) { return g_hash_table_size(m->t); }
static void gh_iterate(gh_t m, size_t *count, uint64_t *acc) {
    GHashTableIter it;
    gpointer k, v;
    g_hash_table_iter_init(&it, m->t);
    while (g_hash_table_iter_next(&it, &k, &v)) {
        const gblob *kb = k, *vb = v;
        visit(acc, kb->p, kb->len, vb->p, vb->len);
        (*count)++;
    }
}
static size_t gh_get_batch(gh_t m, const uint8_t *keys, size_t n, uint8_t *out, uint32_t *lens) {
    size_t hits = 0, off = 0;
    for (size_t i = 0; i < n; i++) {
        if (gh_get(m, keys + i * KLEN, out + off)) {
            lens[i] = VLEN;
            off += VLEN;
            hits++;
        } else {
            lens[i] = MC_ABSENT;
        }
    }
    return hits;
}
static void gh_insert_batch(gh_t m, const uint8_t *keys, const uint8_t *vals, size_t n) {
    for (size_t i = 0; i < n; i++) gh_insert(m, keys + i * KLEN, vals + i * VLEN);
}
static inline int gh_cget(gh_t m, const uint8_t *k, uint8_t *out) {
    g_rw_lock_reader_lock(&m->lock);
    int r = gh_get(m, k, out);
    g_rw_lock_reader_unlock(&m->lock);
    return r;
}
static inline void gh_cset(gh_t m, const uint8_t *k, const uint8_t *v) {
    g_rw_lock_writer_lock(&m->lock);
    gh_set(m, k, v);
    g_rw_lock_writer_unlock(&m->lock);
}
/* GHashTable's iterator already takes one call per entry. */
#define gh_iterate_one gh_iterate
#define C_HAS_PRESIZE 0
#define C_HAS_BATCH 0
#define C_CONCURRENT 1
#define C_(x) gh_##x
#include "harness.inc"
#undef C_

/* ------------------------------------------------------------------- floors */

static void floors(const bench_data *d, int reps, results *out) {
    size_t calls = d->q > 1000000 ? d->q : 1000000;
    size_t bytes = d->n * (KLEN + VLEN);
    uint8_t *src = malloc(bytes), *dst = malloc(bytes);
    CHECK(src && dst, "alloc");
    memcpy(src, d->keys, d->n * KLEN);
    memcpy(src + d->n * KLEN, d->vals, d->n * VLEN);
    memset(dst, 1, bytes);
    for (int r = 0; r < reps; r++) {
        double t = now_ns();
        for (size_t i = 0; i < calls; i++) sink(mc_abi_version());
        res_add(out, "empty_call", 1, "ns/op", (now_ns() - t) / calls);
        t = now_ns();
        memcpy(dst, src, bytes);
        sink(dst[bytes / 2]);
        res_add(out, "memcpy", 1, "ns/op", (now_ns() - t) / d->n);
    }
    free(src);
    free(dst);
}

/* ------------------------------------------------------------------- driver */

static int env_flag(const char *name) {
    const char *v = getenv(name);
    return v && *v && strcmp(v, "0") != 0;
}

static void child(const char *name, size_t n, size_t q, int reps, int heavy) {
    double t = now_ns();
    bench_data d;
    data_generate(&d, n, q);
    uint64_t sum = data_checksum(&d);
    fprintf(stderr, "  data: N=%zu Q=%zu generated in %.2fs, checksum %016lx\n", n, q, (now_ns() - t) / 1e9, sum);
    printf("{\"meta\":true,\"side\":\"c\",\"contestant\":\"%s\",\"n\":%zu,\"q\":%zu,\"reps\":%d,\"heavy_reps\":%d,"
           "\"data_checksum\":\"%016lx\"}\n",
           name, n, q, reps, heavy, sum);
    fflush(stdout);
    results rs = { .contestant = name, .n = n };
    if (strcmp(name, "floor") == 0)
        floors(&d, reps, &rs);
    else if (strcmp(name, "mapcore") == 0) {
        /* The default configuration, whatever the caller's environment. */
        unsetenv("MAPCORE_HUGEPAGES");
        mcb_run(&d, reps, heavy, &rs);
    } else if (strcmp(name, "mapcore_hp") == 0) {
        /* Read by the library at its first big allocation, which this
         * child has not made yet (the driver makes none). */
        setenv("MAPCORE_HUGEPAGES", "1", 1);
        mcb_run(&d, reps, heavy, &rs);
    }
    else if (strcmp(name, "ghash") == 0)
        gh_run(&d, reps, heavy, &rs);
    else
        CHECK(0, "unknown contestant");
    res_emit(&rs);
}

int main(void) {
    static const char *contestants[] = { "floor", "mapcore", "ghash", "mapcore_hp" };
    int smoke = env_flag("BENCH_SMOKE"), quick = env_flag("BENCH_QUICK");
    size_t sizes[8];
    int nsizes = 0;
    const char *ns = getenv("BENCH_N");
    if (ns && *ns) {
        char *copy = strdup(ns), *save = NULL;
        for (char *tok = strtok_r(copy, ",", &save); tok && nsizes < 8; tok = strtok_r(NULL, ",", &save))
            sizes[nsizes++] = strtoull(tok, NULL, 10);
        free(copy);
    } else if (smoke) {
        sizes[nsizes++] = 20000;
    } else if (quick) {
        sizes[nsizes++] = 1000000;
    } else {
        sizes[nsizes++] = 1000000;
        sizes[nsizes++] = 10000000;
    }
    const char *only = getenv("BENCH_ONLY");
    printf("{\"meta\":true,\"side\":\"c\",\"glib\":\"%d.%d.%d\",\"mapcore_abi\":%u,\"cc\":\"%s\"}\n", glib_major_version,
           glib_minor_version, glib_micro_version, mc_abi_version(), __VERSION__);
    fflush(stdout);
    double t0 = now_ns();
    for (int s = 0; s < nsizes; s++) {
        /* Same plan as bench/rust/src/main.rs: `reps` runs of the query-type
         * operations, `heavy` of them with a rebuild and delete/re-insert. */
        size_t n = sizes[s], q;
        int reps, heavy;
        if (smoke) {
            q = n < 20000 ? n : 20000;
            reps = 1, heavy = 1;
        } else if (quick) {
            q = n < 250000 ? n : 250000;
            reps = 1, heavy = 1;
        } else if (n >= 5000000) {
            q = 500000;
            reps = 3, heavy = 1;
        } else {
            q = n < 500000 ? n : 500000;
            reps = 3, heavy = 3;
        }
        if (getenv("BENCH_Q") && atoll(getenv("BENCH_Q")) > 0) q = strtoull(getenv("BENCH_Q"), NULL, 10);
        if (getenv("BENCH_REPS") && atoi(getenv("BENCH_REPS")) > 0) reps = atoi(getenv("BENCH_REPS"));
        if (getenv("BENCH_HEAVY_REPS") && atoi(getenv("BENCH_HEAVY_REPS")) > 0) heavy = atoi(getenv("BENCH_HEAVY_REPS"));
        if (reps > MAXRUNS) reps = MAXRUNS;
        if (heavy > reps) heavy = reps;
        for (size_t c = 0; c < sizeof contestants / sizeof *contestants; c++) {
            const char *name = contestants[c];
            if (only && *only) {
                char pat[64];
                snprintf(pat, sizeof pat, ",%s,", name);
                char list[512];
                snprintf(list, sizeof list, ",%s,", only);
                if (!strstr(list, pat)) continue;
            }
            fprintf(stderr, "[c] %s N=%zu Q=%zu reps=%d heavy=%d\n", name, n, q, reps, heavy);
            fflush(stdout);
            double tc = now_ns();
            pid_t pid = fork();
            CHECK(pid >= 0, "fork");
            if (pid == 0) {
                child(name, n, q, reps, heavy);
                fflush(stdout);
                _exit(0);
            }
            int status;
            waitpid(pid, &status, 0);
            if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
                fprintf(stderr, "[c] %s N=%zu FAILED (status %d)\n", name, n, status);
                return 1;
            }
            fprintf(stderr, "[c] %s N=%zu took %.1fs\n", name, n, (now_ns() - tc) / 1e9);
        }
    }
    printf("{\"meta\":true,\"side\":\"c\",\"elapsed_s\":%.1f}\n", (now_ns() - t0) / 1e9);
    fprintf(stderr, "[c] done in %.1fs\n", (now_ns() - t0) / 1e9);
    return 0;
}
