/*
 * paginate.c - a paginated "list all keys" API over a map that keeps
 * changing, as a web server would implement GET /keys?page_token=...
 *
 * Each request carries the text token of the previous response. The server
 * decodes it (mc_iter_decode), reads one page (mc_iter_next_batch, walked with
 * mc_batch_entry) and returns the page plus a new text token
 * (mc_iter_encode). Nothing is kept on the server between requests: the
 * token text is the whole iteration state, and it can be resumed any time
 * later, by any thread.
 *
 * Meanwhile another thread inserts and deletes keys (and forces the table to
 * grow and shrink). Cursor mode promises, for one scan:
 *   - every key present from the scan's start to its end is returned exactly
 *     once (the "stable:" keys, which the writer never touches);
 *   - no key is ever returned twice (checked for every key);
 *   - a key deleted before the scan started (and never re-added) is never
 *     returned (the "gone:" keys).
 * Any violation exits 1. Finally, a tampered token text is rejected with
 * MC_ERR_BAD_TOKEN and a token of another map with MC_ERR_WRONG_MAP.
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

#define PAGE_ENTRIES 64   /* at most this many keys per page... */
#define PAGE_BYTES 4096   /* ...and at most this many bytes */

static size_t STABLE, GONE, CHURN;

/* ---------------------------------------------------------------------------
 * The server side: one request = one page.
 * ------------------------------------------------------------------------- */

struct page {
    uint8_t buf[PAGE_BYTES]; /* entries as written by mc_iter_next_batch */
    size_t count, used;
    char next_token[MC_ITER_TEXT_LEN + 1]; /* "" when the listing is complete */
};

/* Handles "list keys" with `token` ("" for the first page). Returns MC_OK, or
 * the status a real server would turn into "400 Bad Request". */
static mc_status list_keys(mc_map m, const char *token, struct page *out) {
    mc_iter it;
    mc_status s;
    if (token[0] == '\0')
        s = mc_iter_init(m, MC_MODE_CURSOR, &it); /* a new scan */
    else
        s = mc_iter_decode(m, token, strlen(token), &it); /* resume it */
    if (s != MC_OK)
        return s;

    s = mc_iter_next_batch(m, &it, out->buf, sizeof out->buf, PAGE_ENTRIES, &out->count,
                           &out->used);
    if (s == MC_DONE) {
        out->next_token[0] = '\0';
        return MC_OK;
    }
    if (s != MC_OK)
        return s;
    size_t len = 0;
    s = mc_iter_encode(m, &it, out->next_token, sizeof out->next_token, &len);
    if (s == MC_OK && len != MC_ITER_TEXT_LEN)
        return MC_ERR_INTERNAL;
    return s;
}

/* ---------------------------------------------------------------------------
 * The writer: churns "churn:" keys, never touches "stable:" or "gone:".
 * ------------------------------------------------------------------------- */

static atomic_bool stop_writer;

static size_t churn_key(char *buf, size_t i) {
    return (size_t)snprintf(buf, 32, "churn:%05zu", i);
}

static void *writer(void *arg) {
    mc_map m = *(mc_map *)arg;
    uint64_t rng = 0x9E3779B97F4A7C15ull;
    size_t ops = 0;
    char key[32], val[48];
    while (!atomic_load(&stop_writer)) {
        uint64_t r = rng_next(&rng);
        size_t i = (size_t)(r >> 16) % CHURN;
        size_t kl = churn_key(key, i);
        switch (r % 16) {
        default: /* set */
            mc_map_set(m, U8(key), kl, U8(val), (size_t)snprintf(val, sizeof val, "C%zu", i), NULL);
            break;
        case 8: case 9: case 10: case 11: case 12: case 13: /* delete */
            mc_map_delete(m, U8(key), kl); /* MC_ERR_NOT_FOUND is fine */
            break;
        case 14: /* a burst of inserts: the table grows */
            for (size_t j = 0; j < CHURN / 8; j++) {
                size_t x = (i + j) % CHURN;
                mc_map_set(m, U8(key), churn_key(key, x), U8(val),
                           (size_t)snprintf(val, sizeof val, "C%zu", x), NULL);
            }
            ops += CHURN / 8;
            break;
        case 15: /* a burst of deletes, then give memory back: it shrinks */
            for (size_t j = 0; j < CHURN / 4; j++)
                mc_map_delete(m, U8(key), churn_key(key, (i + j) % CHURN));
            mc_map_shrink_to_fit(m);
            ops += CHURN / 4 + 1;
            break;
        }
        if (++ops % 64 == 0) {
            struct timespec ts = {0, 20000}; /* 20 us */
            nanosleep(&ts, NULL);
        }
    }
    return (void *)ops;
}

/* ---------------------------------------------------------------------------
 * The client: lists every key, page by page, and checks the guarantees.
 * ------------------------------------------------------------------------- */

/* Parses "<prefix><digits>" into the number; -1 if `key` is not of that form. */
static long parse_key(const uint8_t *key, size_t len, const char *prefix) {
    size_t pl = strlen(prefix);
    if (len <= pl || memcmp(key, prefix, pl) != 0)
        return -1;
    long n = 0;
    for (size_t i = pl; i < len; i++) {
        if (key[i] < '0' || key[i] > '9')
            return -1;
        n = n * 10 + (key[i] - '0');
    }
    return n;
}

static bool token_chars_ok(const char *t) {
    for (; *t; t++)
        if (!((*t >= 'A' && *t <= 'Z') || (*t >= 'a' && *t <= 'z') || (*t >= '0' && *t <= '9') ||
              *t == '_' || *t == '-'))
            return false;
    return true;
}

/* One full listing. Returns the number of pages. */
static size_t full_scan(mc_map m, int scan_no, char *saved_token) {
    unsigned char *stable_seen = calloc(STABLE, 1);
    unsigned char *churn_seen = calloc(CHURN, 1);
    CHECK(stable_seen && churn_seen);
    struct page *pg = malloc(sizeof *pg);
    CHECK(pg != NULL);
    char token[MC_ITER_TEXT_LEN + 1] = ""; /* the first request has no token */
    size_t pages = 0, entries = 0, churned = 0;
    do {
        CHECK_OK(list_keys(m, token, pg));
        pages++;
        CHECK(pg->count <= PAGE_ENTRIES && pg->used <= PAGE_BYTES);
        /* Walk the page. */
        size_t off = 0, walked = 0;
        const uint8_t *k, *v;
        size_t kl, vl;
        mc_status s;
        while ((s = mc_batch_entry(pg->buf, pg->used, &off, &k, &kl, &v, &vl)) == MC_OK) {
            walked++;
            long i;
            if ((i = parse_key(k, kl, "stable:")) >= 0 && (size_t)i < STABLE) {
                stable_seen[i]++;
                CHECK_MSG(stable_seen[i] == 1, "scan %d: stable:%05ld returned twice", scan_no, i);
                char want[32];
                int wl = snprintf(want, sizeof want, "S%ld", i);
                CHECK_MSG(vl == (size_t)wl && memcmp(v, want, vl) == 0, "stable value torn");
            } else if ((i = parse_key(k, kl, "churn:")) >= 0 && (size_t)i < CHURN) {
                churn_seen[i]++;
                churned++;
                CHECK_MSG(churn_seen[i] == 1, "scan %d: churn:%05ld returned twice", scan_no, i);
                char want[32];
                int wl = snprintf(want, sizeof want, "C%ld", i);
                CHECK_MSG(vl == (size_t)wl && memcmp(v, want, vl) == 0, "churn value torn");
            } else if ((i = parse_key(k, kl, "gone:")) >= 0) {
                CHECK_MSG(false, "scan %d: gone:%05ld was deleted before the scan, yet returned",
                          scan_no, i);
            } else {
                CHECK_MSG(false, "scan %d: unexpected key %.*s", scan_no, (int)kl, (const char *)k);
            }
        }
        CHECK_ST(s, MC_DONE);
        CHECK(walked == pg->count);
        entries += walked;
        if (pg->next_token[0]) {
            CHECK(strlen(pg->next_token) == MC_ITER_TEXT_LEN && token_chars_ok(pg->next_token));
            if (pages == 3 && saved_token)
                memcpy(saved_token, pg->next_token, sizeof pg->next_token);
        }
        memcpy(token, pg->next_token, sizeof token); /* the client's next request */
        struct timespec think = {0, 100000}; /* the client takes 0.1 ms per page */
        nanosleep(&think, NULL);
    } while (token[0] != '\0');

    for (size_t i = 0; i < STABLE; i++)
        CHECK_MSG(stable_seen[i] == 1, "scan %d: stable:%05zu returned %d times (expected once)",
                  scan_no, i, stable_seen[i]);
    printf("  scan %d: %zu pages, %zu keys: all %zu stable keys exactly once, %zu churning keys "
           "at most once, no deleted key\n",
           scan_no, pages, entries, STABLE, churned);
    free(stable_seen);
    free(churn_seen);
    free(pg);
    return pages;
}

int main(void) {
    STABLE = scaled(3000, 300);
    GONE = scaled(500, 50);
    CHURN = scaled(20000, 2000);
    int scans = small_mode() ? 2 : 4;
    printf("paginate: listing a changing map page by page (%d keys per page, cursor tokens)\n",
           PAGE_ENTRIES);

    mc_map m;
    CHECK_OK(mc_map_new(&m));
    char key[32], val[32];
    for (size_t i = 0; i < STABLE; i++)
        CHECK_OK(mc_map_set(m, U8(key), (size_t)snprintf(key, sizeof key, "stable:%05zu", i),
                            U8(val), (size_t)snprintf(val, sizeof val, "S%zu", i), NULL));
    for (size_t i = 0; i < CHURN; i += 2)
        CHECK_OK(mc_map_set(m, U8(key), churn_key(key, i), U8(val),
                            (size_t)snprintf(val, sizeof val, "C%zu", i), NULL));
    /* "gone:" keys existed once, and were deleted before any scan started. */
    for (size_t i = 0; i < GONE; i++) {
        size_t kl = (size_t)snprintf(key, sizeof key, "gone:%05zu", i);
        CHECK_OK(mc_map_set(m, U8(key), kl, U8("G"), 1, NULL));
        CHECK_OK(mc_map_delete(m, U8(key), kl));
    }

    pthread_t w;
    CHECK(pthread_create(&w, NULL, writer, &m) == 0);
    char saved[MC_ITER_TEXT_LEN + 1] = "";
    for (int scan = 1; scan <= scans; scan++)
        full_scan(m, scan, saved);
    atomic_store(&stop_writer, true);
    void *ops;
    CHECK(pthread_join(w, &ops) == 0);
    printf("  meanwhile the writer thread made %zu calls (sets, deletes, bursts, shrinks)\n",
           (size_t)ops);

    /* A client that tampers with its token is refused, not misled. */
    printf("tokens from untrusted clients:\n");
    CHECK(strlen(saved) == MC_ITER_TEXT_LEN);
    mc_iter it;
    CHECK_OK(mc_iter_decode(m, saved, strlen(saved), &it)); /* the genuine text works */
    char forged[MC_ITER_TEXT_LEN + 1];
    memcpy(forged, saved, sizeof forged);
    forged[40] = forged[40] == 'A' ? 'B' : 'A'; /* one character changed */
    CHECK_ST(mc_iter_decode(m, forged, strlen(forged), &it), MC_ERR_BAD_TOKEN);
    printf("  one character changed -> %s\n", mc_status_name(MC_ERR_BAD_TOKEN));
    memcpy(forged, saved, sizeof forged);
    forged[MC_ITER_TEXT_LEN - 1] = forged[MC_ITER_TEXT_LEN - 1] == 'A' ? 'B' : 'A';
    CHECK_ST(mc_iter_decode(m, forged, strlen(forged), &it), MC_ERR_BAD_TOKEN);
    CHECK_ST(mc_iter_decode(m, saved, 20, &it), MC_ERR_BAD_TOKEN); /* truncated */
    CHECK_ST(mc_iter_decode(m, "page=2", 6, &it), MC_ERR_BAD_TOKEN); /* made up */
    printf("  truncated or made-up text -> %s\n", mc_status_name(MC_ERR_BAD_TOKEN));
    struct page *pg = malloc(sizeof *pg);
    CHECK(pg != NULL);
    CHECK_ST(list_keys(m, forged, pg), MC_ERR_BAD_TOKEN); /* what the handler answers */

    /* A token of another map (say, another tenant's) is refused too. */
    mc_map other;
    CHECK_OK(mc_map_new(&other));
    CHECK_OK(mc_map_set(other, U8("x"), 1, U8("y"), 1, NULL));
    CHECK_OK(list_keys(other, "", pg));
    CHECK(pg->next_token[0] != '\0');
    CHECK_ST(mc_iter_decode(m, pg->next_token, strlen(pg->next_token), &it), MC_ERR_WRONG_MAP);
    printf("  token of another map -> %s\n", mc_status_name(MC_ERR_WRONG_MAP));
    free(pg);

    CHECK_OK(mc_map_free(other));
    CHECK_OK(mc_map_free(m));
    printf("paginate: OK (%lu checks)\n", checks_made());
    return 0;
}
