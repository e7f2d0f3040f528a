/*
 * threads.c - one map shared by many threads, with invariants checked all the
 * time. Also the threaded stress program (`make stress`).
 *
 * Part 1, for MAPCORE_STRESS_SECS seconds (default 2):
 *   - readers: "stable:" keys are always readable with their exact value;
 *     "hot:" keys always exist (their values are overwritten all the time, and
 *     always belong to their key); len stays within its possible range;
 *     get_many sees whole values;
 *   - writers: insert/delete "churn:" keys, overwrite "hot:" values, use
 *     set_many/delete_many, retain, reserve and shrink_to_fit;
 *   - a strict iterating thread: restarts whenever it gets
 *     MC_ERR_ITER_INVALIDATED; every pass that completes (MC_DONE) saw every
 *     stable and hot key exactly once. It also deletes some churn entries
 *     through its token (mc_iter_remove);
 *   - a cursor iterating thread: never invalidated; in every scan each stable
 *     and hot key comes exactly once and no key comes twice.
 *
 * Part 2: a map is freed while other threads are inside calls on it. Their
 * calls either succeed or return MC_ERR_BAD_HANDLE (once a thread has seen
 * MC_ERR_BAD_HANDLE, or once mc_map_free has returned, every later call is
 * MC_ERR_BAD_HANDLE); nothing crashes.
 *
 * Part 3: the same for a snapshot freed while threads read it.
 *
 * Any violation exits 1.
 */
#define _POSIX_C_SOURCE 200809L
#include <mapcore.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "check.h"

static size_t STABLE, HOT, CHURN;
static mc_map M;
static atomic_bool stop;

enum kind { STABLE_KEY, HOT_KEY, CHURN_KEY, OTHER_KEY };

static size_t key_of(char *buf, enum kind k, size_t i) {
    static const char *const prefix[] = {"stable:", "hot:", "churn:"};
    return (size_t)snprintf(buf, 32, "%s%05zu", prefix[k], i);
}

/* Classifies a key; *idx receives its number. */
static enum kind classify(const uint8_t *k, size_t kl, size_t *idx) {
    static const char *const prefix[] = {"stable:", "hot:", "churn:"};
    static const size_t *const limit[] = {&STABLE, &HOT, &CHURN};
    for (int p = 0; p < 3; p++) {
        size_t pl = strlen(prefix[p]);
        if (kl != pl + 5 || memcmp(k, prefix[p], pl) != 0)
            continue;
        size_t n = 0;
        for (size_t i = pl; i < kl; i++) {
            if (k[i] < '0' || k[i] > '9')
                return OTHER_KEY;
            n = n * 10 + (size_t)(k[i] - '0');
        }
        *idx = n;
        return n < *limit[p] ? (enum kind)p : OTHER_KEY;
    }
    return OTHER_KEY;
}

/* Values: "<key>=<anything>" so that every reader can check that a value
 * belongs to its key (no torn or misplaced bytes). Stable values are exact. */
static size_t value_of(char *buf, const char *key, size_t kl, uint64_t n) {
    return (size_t)snprintf(buf, 64, "%.*s=%llu", (int)kl, key, (unsigned long long)n);
}

static bool value_matches(const uint8_t *k, size_t kl, const uint8_t *v, size_t vl) {
    return vl > kl && memcmp(v, k, kl) == 0 && v[kl] == '=';
}

static void check_entry(const uint8_t *k, size_t kl, const uint8_t *v, size_t vl) {
    size_t idx;
    enum kind kind = classify(k, kl, &idx);
    CHECK_MSG(kind != OTHER_KEY, "unexpected key %.*s", (int)kl, (const char *)k);
    CHECK_MSG(value_matches(k, kl, v, vl), "value %.*s does not belong to key %.*s", (int)vl,
              (const char *)v, (int)kl, (const char *)k);
    if (kind == STABLE_KEY) {
        char want[64];
        size_t wl = value_of(want, (const char *)k, kl, idx);
        CHECK_MSG(vl == wl && memcmp(v, want, wl) == 0, "stable value changed");
    }
}

static void pause_us(long us) {
    struct timespec ts = {us / 1000000, (us % 1000000) * 1000};
    nanosleep(&ts, NULL);
}

/* ---------------------------------------------------------------------------
 * Part 1 threads
 * ------------------------------------------------------------------------- */

struct stats {
    size_t ops, passes, restarts, removed, scans;
};

static void *reader(void *arg) {
    struct stats *st = arg;
    uint64_t rng = 0x1234567ull + (uintptr_t)arg;
    char key[32];
    uint8_t val[64];
    while (!atomic_load(&stop)) {
        uint64_t r = rng_next(&rng);
        size_t len = 0, kl;
        switch (r % 4) {
        case 0: /* a stable key: present, exact value */
            kl = key_of(key, STABLE_KEY, (r >> 8) % STABLE);
            CHECK_OK(mc_map_get(M, U8(key), kl, val, sizeof val, &len));
            check_entry(U8(key), kl, val, len);
            break;
        case 1: /* a hot key: present, its value belongs to it */
            kl = key_of(key, HOT_KEY, (r >> 8) % HOT);
            CHECK_OK(mc_map_get(M, U8(key), kl, val, sizeof val, &len));
            check_entry(U8(key), kl, val, len);
            break;
        case 2: { /* a churn key: present or not, never torn */
            kl = key_of(key, CHURN_KEY, (r >> 8) % CHURN);
            mc_status s = mc_map_get(M, U8(key), kl, val, sizeof val, &len);
            CHECK_MSG(s == MC_OK || s == MC_ERR_NOT_FOUND, "get: %s", mc_status_name(s));
            if (s == MC_OK)
                check_entry(U8(key), kl, val, len);
            break;
        }
        default: { /* len within bounds; get_many of some stable keys */
            size_t n = 0;
            CHECK_OK(mc_map_len(M, &n));
            CHECK_MSG(n >= STABLE + HOT && n <= STABLE + HOT + CHURN, "len %zu out of range", n);
            uint8_t keys[8 * 32], vals[8 * 64];
            uint32_t key_lens[8], val_lens[8];
            size_t used = 0, off = 0;
            for (int i = 0; i < 8; i++) {
                key_lens[i] = (uint32_t)key_of((char *)keys + off, STABLE_KEY,
                                               (size_t)(rng_next(&rng) % STABLE));
                off += key_lens[i];
            }
            CHECK_OK(mc_map_get_many(M, 8, keys, key_lens, vals, sizeof vals, val_lens, &used));
            size_t ko = 0, vo = 0;
            for (int i = 0; i < 8; i++) {
                CHECK(val_lens[i] != MC_ABSENT);
                check_entry(keys + ko, key_lens[i], vals + vo, val_lens[i]);
                ko += key_lens[i];
                vo += val_lens[i];
            }
            CHECK(vo == used);
        }
        }
        st->ops++;
    }
    return NULL;
}

static int drop_churn_multiple_of_7(void *user, const uint8_t *k, size_t kl, const uint8_t *v,
                                    size_t vl) {
    (void)user;
    check_entry(k, kl, v, vl);
    size_t idx;
    return !(classify(k, kl, &idx) == CHURN_KEY && idx % 7 == 0); /* 0 = delete */
}

static void *writer(void *arg) {
    struct stats *st = arg;
    uint64_t rng = 0xABCDEF12345ull + (uintptr_t)arg;
    char key[32], val[64];
    while (!atomic_load(&stop)) {
        uint64_t r = rng_next(&rng);
        size_t kl, vl;
        switch (r % 64) {
        default: /* insert or overwrite a churn key */
            kl = key_of(key, CHURN_KEY, (r >> 8) % CHURN);
            vl = value_of(val, key, kl, r);
            CHECK_OK(mc_map_set(M, U8(key), kl, U8(val), vl, NULL));
            break;
        case 20: case 21: case 22: case 23: case 24: case 25: case 26: case 27: case 28:
        case 29: case 30: case 31: case 32: case 33: case 34: case 35: { /* delete one */
            kl = key_of(key, CHURN_KEY, (r >> 8) % CHURN);
            mc_status s = mc_map_delete(M, U8(key), kl);
            CHECK_MSG(s == MC_OK || s == MC_ERR_NOT_FOUND, "delete: %s", mc_status_name(s));
            break;
        }
        case 36: case 37: case 38: case 39: case 40: case 41: case 42: case 43:
        case 44: case 45: case 46: case 47: case 48: case 49: case 50: case 51:
            /* overwrite a hot value (not structural) */
            kl = key_of(key, HOT_KEY, (r >> 8) % HOT);
            vl = value_of(val, key, kl, r);
            CHECK_OK(mc_map_set(M, U8(key), kl, U8(val), vl, NULL));
            break;
        case 52: case 53: { /* set_many / delete_many of 16 churn keys */
            uint8_t keys[16 * 32], vals[16 * 64];
            uint32_t key_lens[16], val_lens[16];
            size_t ko = 0, vo = 0, base = (size_t)(r >> 8) % CHURN;
            for (int i = 0; i < 16; i++) {
                key_lens[i] = (uint32_t)key_of((char *)keys + ko, CHURN_KEY, (base + (size_t)i) % CHURN);
                val_lens[i] = (uint32_t)value_of((char *)vals + vo, (char *)keys + ko, key_lens[i], r);
                ko += key_lens[i];
                vo += val_lens[i];
            }
            if (r % 64 == 52)
                CHECK_OK(mc_map_set_many(M, 16, keys, key_lens, vals, val_lens, NULL));
            else
                CHECK_OK(mc_map_delete_many(M, 16, keys, key_lens, NULL));
            break;
        }
        case 54:
            if ((r >> 20) % 16 == 0)
                CHECK_OK(mc_map_retain(M, drop_churn_multiple_of_7, NULL, NULL));
            break;
        case 55:
            CHECK_OK(mc_map_reserve(M, (size_t)(r >> 8) % 4096));
            break;
        case 56:
            CHECK_OK(mc_map_shrink_to_fit(M));
            break;
        }
        st->ops++;
        /* Short quiet periods, so that strict passes can also complete. */
        if (st->ops % 256 == 0)
            pause_us(st->ops % 4096 == 0 ? 2000 : 50);
    }
    return NULL;
}

/* Strict mode: restart on MC_ERR_ITER_INVALIDATED; completed passes are exact. */
static void *strict_iterator(void *arg) {
    struct stats *st = arg;
    unsigned char *stable_seen = malloc(STABLE), *hot_seen = malloc(HOT);
    CHECK(stable_seen && hot_seen);
    uint8_t k[64], v[64];
    size_t kl, vl;
    while (!atomic_load(&stop)) {
        memset(stable_seen, 0, STABLE);
        memset(hot_seen, 0, HOT);
        mc_iter it;
        CHECK_OK(mc_iter_init(M, MC_MODE_STRICT, &it));
        mc_status s;
        size_t n = 0;
        while ((s = mc_iter_next(M, &it, k, sizeof k, &kl, v, sizeof v, &vl)) == MC_OK) {
            check_entry(k, kl, v, vl);
            size_t idx;
            switch (classify(k, kl, &idx)) {
            case STABLE_KEY: stable_seen[idx]++; break;
            case HOT_KEY: hot_seen[idx]++; break;
            case CHURN_KEY:
                if (idx % 13 == 0) { /* delete it through the token */
                    mc_status r = mc_iter_remove(M, &it);
                    CHECK_MSG(r == MC_OK || r == MC_ERR_ITER_INVALIDATED, "remove: %s",
                              mc_status_name(r));
                    st->removed += r == MC_OK;
                }
                break;
            default: break;
            }
            if (++n % 128 == 0 && atomic_load(&stop))
                break;
        }
        if (s == MC_ERR_ITER_INVALIDATED) {
            st->restarts++; /* someone changed the structure: start over */
            continue;
        }
        if (s != MC_DONE)
            CHECK_MSG(s == MC_OK, "strict next: %s", mc_status_name(s)); /* (stopped) */
        if (s == MC_DONE) {
            /* A pass that completed saw no structural change: exactly once. */
            for (size_t i = 0; i < STABLE; i++)
                CHECK_MSG(stable_seen[i] == 1, "strict pass: stable:%05zu seen %d times", i,
                          stable_seen[i]);
            for (size_t i = 0; i < HOT; i++)
                CHECK_MSG(hot_seen[i] == 1, "strict pass: hot:%05zu seen %d times", i, hot_seen[i]);
            st->passes++;
        }
    }
    free(stable_seen);
    free(hot_seen);
    return NULL;
}

/* Cursor mode: never invalidated; stable and hot keys exactly once per scan. */
static void *cursor_iterator(void *arg) {
    struct stats *st = arg;
    unsigned char *stable_seen = malloc(STABLE), *hot_seen = malloc(HOT),
                  *churn_seen = malloc(CHURN);
    uint8_t *buf = malloc(16384);
    CHECK(stable_seen && hot_seen && churn_seen && buf);
    while (!atomic_load(&stop)) {
        memset(stable_seen, 0, STABLE);
        memset(hot_seen, 0, HOT);
        memset(churn_seen, 0, CHURN);
        mc_iter it;
        CHECK_OK(mc_iter_init(M, MC_MODE_CURSOR, &it));
        mc_status s;
        size_t count, used;
        while ((s = mc_iter_next_batch(M, &it, buf, 16384, 100, &count, &used)) == MC_OK) {
            CHECK(count >= 1 && count <= 100);
            size_t off = 0;
            const uint8_t *k, *v;
            size_t kl, vl, idx;
            mc_status e;
            while ((e = mc_batch_entry(buf, used, &off, &k, &kl, &v, &vl)) == MC_OK) {
                check_entry(k, kl, v, vl);
                unsigned char *seen = NULL;
                switch (classify(k, kl, &idx)) {
                case STABLE_KEY: seen = stable_seen; break;
                case HOT_KEY: seen = hot_seen; break;
                case CHURN_KEY: seen = churn_seen; break;
                default: break;
                }
                CHECK_MSG(seen && ++seen[idx] == 1, "cursor scan: %.*s returned twice", (int)kl,
                          (const char *)k);
            }
            CHECK_ST(e, MC_DONE);
            pause_us(20); /* a slow consumer: the map changes between batches */
        }
        CHECK_ST(s, MC_DONE);
        for (size_t i = 0; i < STABLE; i++)
            CHECK_MSG(stable_seen[i] == 1, "cursor scan: stable:%05zu seen %d times", i,
                      stable_seen[i]);
        for (size_t i = 0; i < HOT; i++)
            CHECK_MSG(hot_seen[i] == 1, "cursor scan: hot:%05zu seen %d times", i, hot_seen[i]);
        st->scans++;
    }
    free(stable_seen);
    free(hot_seen);
    free(churn_seen);
    free(buf);
    return NULL;
}

static void part1(double secs) {
    printf("part 1: readers, writers, a strict and a cursor iterator on one map for %.1f s\n", secs);
    CHECK_OK(mc_map_new(&M));
    char key[32], val[64];
    for (size_t i = 0; i < STABLE; i++) {
        size_t kl = key_of(key, STABLE_KEY, i);
        CHECK_OK(mc_map_set(M, U8(key), kl, U8(val), value_of(val, key, kl, i), NULL));
    }
    for (size_t i = 0; i < HOT; i++) {
        size_t kl = key_of(key, HOT_KEY, i);
        CHECK_OK(mc_map_set(M, U8(key), kl, U8(val), value_of(val, key, kl, 0), NULL));
    }

    enum { READERS = 2, WRITERS = 2 };
    pthread_t t[READERS + WRITERS + 2];
    struct stats st[READERS + WRITERS + 2];
    memset(st, 0, sizeof st);
    int n = 0;
    for (int i = 0; i < READERS; i++, n++)
        CHECK(pthread_create(&t[n], NULL, reader, &st[n]) == 0);
    for (int i = 0; i < WRITERS; i++, n++)
        CHECK(pthread_create(&t[n], NULL, writer, &st[n]) == 0);
    CHECK(pthread_create(&t[n], NULL, strict_iterator, &st[n]) == 0);
    n++;
    CHECK(pthread_create(&t[n], NULL, cursor_iterator, &st[n]) == 0);
    n++;

    pause_us((long)(secs * 1e6));
    atomic_store(&stop, true);
    for (int i = 0; i < n; i++)
        CHECK(pthread_join(t[i], NULL) == 0);

    size_t reads = 0, writes = 0;
    for (int i = 0; i < READERS; i++)
        reads += st[i].ops;
    for (int i = READERS; i < READERS + WRITERS; i++)
        writes += st[i].ops;
    struct stats *sp = &st[READERS + WRITERS], *cp = &st[READERS + WRITERS + 1];
    printf("  readers: %zu calls, every stable/hot key readable with a value of its own\n", reads);
    printf("  writers: %zu calls (sets, deletes, overwrites, set_many, delete_many, retain, "
           "reserve, shrink)\n", writes);
    printf("  strict iterator: %zu complete exact passes, %zu restarts on "
           "MC_ERR_ITER_INVALIDATED, %zu entries removed through its token\n",
           sp->passes, sp->restarts, sp->removed);
    printf("  cursor iterator: %zu complete scans, each with every stable/hot key exactly once\n",
           cp->scans);

    /* Quiet now: a final strict pass must complete and be exact. */
    size_t len = 0, seen = 0;
    CHECK_OK(mc_map_len(M, &len));
    mc_iter it;
    CHECK_OK(mc_iter_init(M, MC_MODE_STRICT, &it));
    uint8_t k[64], v[64];
    size_t kl, vl;
    mc_status s;
    while ((s = mc_iter_next(M, &it, k, sizeof k, &kl, v, sizeof v, &vl)) == MC_OK) {
        check_entry(k, kl, v, vl);
        seen++;
    }
    CHECK_ST(s, MC_DONE);
    CHECK(seen == len);
    printf("  afterwards: a strict pass yields all %zu entries\n", len);
    CHECK_OK(mc_map_free(M));
}

/* ---------------------------------------------------------------------------
 * Part 2: freeing a map while other threads are inside calls on it.
 * ------------------------------------------------------------------------- */

struct victim {
    mc_map map;
    mc_snapshot snap; /* part 3 */
    atomic_bool freed; /* set once mc_map_free has returned */
    atomic_int started;
};

struct user_stats {
    struct victim *v;
    int id;
    size_t ok, bad_handle, other;
};

static bool allowed(mc_status s) {
    return s == MC_OK || s == MC_ERR_NOT_FOUND || s == MC_DONE || s == MC_ERR_ITER_INVALIDATED ||
           s == MC_ERR_BAD_HANDLE;
}

static void *map_user(void *arg) {
    struct user_stats *us = arg;
    struct victim *vic = us->v;
    uint64_t rng = 0x5555ull + (uint64_t)us->id * 7919;
    bool seen_bad = false;
    size_t after = 0;
    char key[32], val[64];
    uint8_t buf[4096];
    atomic_fetch_add(&vic->started, 1);
    /* Keep calling until 200 calls after the map is gone. */
    while (after < 200) {
        bool freed_before = atomic_load(&vic->freed);
        uint64_t r = rng_next(&rng);
        size_t kl = key_of(key, CHURN_KEY, (r >> 8) % CHURN), len, count, used;
        mc_status s;
        switch (r % 8) {
        case 0: s = mc_map_get(vic->map, U8(key), kl, buf, sizeof buf, &len); break;
        case 1: s = mc_map_set(vic->map, U8(key), kl, U8(val), value_of(val, key, kl, r), NULL); break;
        case 2: s = mc_map_delete(vic->map, U8(key), kl); break;
        case 3: s = mc_map_len(vic->map, &len); break;
        case 4: { /* iterate a little */
            mc_iter it;
            s = mc_iter_init(vic->map, (r >> 40) % 2 ? MC_MODE_STRICT : MC_MODE_CURSOR, &it);
            for (int i = 0; s == MC_OK && i < 4; i++)
                s = mc_iter_next_batch(vic->map, &it, buf, sizeof buf, 16, &count, &used);
            break;
        }
        case 5: { /* a snapshot outlives the map */
            mc_snapshot snap;
            s = mc_snapshot_new(vic->map, &snap);
            if (s == MC_OK) {
                CHECK_OK(mc_snapshot_len(snap, &len));
                CHECK_OK(mc_snapshot_free(snap));
            }
            break;
        }
        case 6: s = mc_map_retain(vic->map, drop_churn_multiple_of_7, NULL, NULL); break;
        default: {
            bool present;
            s = mc_map_contains(vic->map, U8(key), kl, &present);
        }
        }
        CHECK_MSG(allowed(s), "call on a map being freed returned %s", mc_status_name(s));
        if (s == MC_ERR_BAD_HANDLE) {
            seen_bad = true;
            us->bad_handle++;
        } else {
            /* Once freed (or once seen as freed) it stays freed. */
            CHECK_MSG(!seen_bad && !freed_before,
                      "%s from a call that started after the map was freed", mc_status_name(s));
            us->ok += s == MC_OK;
            us->other += s != MC_OK;
        }
        if (seen_bad)
            after++;
    }
    return NULL;
}

/* Part 3: the same for a snapshot that is freed while threads read it. */
static void *snapshot_user(void *arg) {
    struct user_stats *us = arg;
    struct victim *vic = us->v;
    uint64_t rng = 0x7777ull + (uint64_t)us->id * 104729;
    bool seen_bad = false;
    size_t after = 0;
    char key[32];
    uint8_t buf[4096];
    atomic_fetch_add(&vic->started, 1);
    while (after < 200) {
        bool freed_before = atomic_load(&vic->freed);
        uint64_t r = rng_next(&rng);
        size_t kl = key_of(key, CHURN_KEY, (r >> 8) % CHURN), len, count, used;
        mc_status s;
        switch (r % 4) {
        case 0: s = mc_snapshot_get(vic->snap, U8(key), kl, buf, sizeof buf, &len); break;
        case 1: s = mc_snapshot_len(vic->snap, &len); break;
        case 2: {
            bool present;
            s = mc_snapshot_contains(vic->snap, U8(key), kl, &present);
            break;
        }
        default: {
            mc_iter it;
            s = mc_snapshot_iter_init(vic->snap, MC_MODE_CURSOR, &it);
            for (int i = 0; s == MC_OK && i < 8; i++)
                s = mc_snapshot_iter_next_batch(vic->snap, &it, buf, sizeof buf, 32, &count, &used);
        }
        }
        CHECK_MSG(s == MC_OK || s == MC_ERR_NOT_FOUND || s == MC_DONE || s == MC_ERR_BAD_HANDLE,
                  "call on a snapshot being freed returned %s", mc_status_name(s));
        if (s == MC_ERR_BAD_HANDLE) {
            seen_bad = true;
            us->bad_handle++;
        } else {
            CHECK_MSG(!seen_bad && !freed_before,
                      "%s from a call that started after the snapshot was freed", mc_status_name(s));
            us->ok++;
        }
        if (seen_bad)
            after++;
    }
    return NULL;
}

static void part2(int rounds) {
    printf("part 2: mc_map_free while %d threads are inside calls on the map (%d rounds)\n", 3,
           rounds);
    size_t ok = 0, bad = 0, other = 0;
    for (int round = 0; round < rounds; round++) {
        struct victim vic = {.started = 0};
        atomic_init(&vic.freed, false);
        CHECK_OK(mc_map_new(&vic.map));
        char key[32], val[64];
        for (size_t i = 0; i < CHURN; i += 2) {
            size_t kl = key_of(key, CHURN_KEY, i);
            CHECK_OK(mc_map_set(vic.map, U8(key), kl, U8(val), value_of(val, key, kl, i), NULL));
        }
        pthread_t t[3];
        struct user_stats us[3];
        for (int i = 0; i < 3; i++) {
            us[i] = (struct user_stats){.v = &vic, .id = round * 3 + i};
            CHECK(pthread_create(&t[i], NULL, map_user, &us[i]) == 0);
        }
        while (atomic_load(&vic.started) < 3)
            pause_us(10);
        pause_us(100 + (round % 7) * 300); /* let them get busy */
        CHECK_OK(mc_map_free(vic.map));
        atomic_store(&vic.freed, true);
        CHECK_ST(mc_map_free(vic.map), MC_ERR_BAD_HANDLE); /* a second free is harmless */
        for (int i = 0; i < 3; i++) {
            CHECK(pthread_join(t[i], NULL) == 0);
            ok += us[i].ok;
            bad += us[i].bad_handle;
            other += us[i].other;
        }
    }
    printf("  %zu calls succeeded, %zu got NOT_FOUND/DONE/ITER_INVALIDATED before the free, "
           "%zu got MC_ERR_BAD_HANDLE after it; no crash\n", ok, other, bad);
}

static void part3(int rounds) {
    printf("part 3: mc_snapshot_free while 3 threads read the snapshot (%d rounds)\n", rounds);
    size_t ok = 0, bad = 0;
    for (int round = 0; round < rounds; round++) {
        struct victim vic = {.started = 0};
        atomic_init(&vic.freed, false);
        CHECK_OK(mc_map_new(&vic.map));
        char key[32], val[64];
        for (size_t i = 0; i < CHURN; i += 2) {
            size_t kl = key_of(key, CHURN_KEY, i);
            CHECK_OK(mc_map_set(vic.map, U8(key), kl, U8(val), value_of(val, key, kl, i), NULL));
        }
        CHECK_OK(mc_snapshot_new(vic.map, &vic.snap));
        CHECK_OK(mc_map_free(vic.map)); /* the snapshot does not need its map */
        pthread_t t[3];
        struct user_stats us[3];
        for (int i = 0; i < 3; i++) {
            us[i] = (struct user_stats){.v = &vic, .id = round * 3 + i};
            CHECK(pthread_create(&t[i], NULL, snapshot_user, &us[i]) == 0);
        }
        while (atomic_load(&vic.started) < 3)
            pause_us(10);
        pause_us(100 + (round % 7) * 300);
        CHECK_OK(mc_snapshot_free(vic.snap));
        atomic_store(&vic.freed, true);
        CHECK_ST(mc_snapshot_free(vic.snap), MC_ERR_BAD_HANDLE);
        for (int i = 0; i < 3; i++) {
            CHECK(pthread_join(t[i], NULL) == 0);
            ok += us[i].ok;
            bad += us[i].bad_handle;
        }
    }
    printf("  %zu calls before the free succeeded, %zu after it got MC_ERR_BAD_HANDLE; no crash\n",
           ok, bad);
}

int main(void) {
    STABLE = scaled(2000, 200);
    HOT = scaled(200, 20);
    CHURN = scaled(4000, 400);
    double secs = small_mode() ? 1.0 : 2.0;
    const char *e = getenv("MAPCORE_STRESS_SECS");
    if (e && *e)
        secs = atof(e);
    printf("threads: concurrent readers, writers and iterators on one map\n");
    part1(secs);
    /* 20 rounds normally; a long stress run (make stress) also does more rounds. */
    int rounds = small_mode() ? 4 : 20;
    if (e && *e && secs * 10 > rounds)
        rounds = (int)(secs * 10);
    part2(rounds);
    part3(rounds);
    printf("threads: OK (%lu checks)\n", checks_made());
    return 0;
}
