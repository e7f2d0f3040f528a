/*
 * delete_while_iterating.c - the classic task "walk the map and delete the
 * entries that match a condition", done the naive way and four safe ways.
 *
 * The map holds users "user:0000".."user:NNNN"; the value is "active" for
 * even numbers and "inactive" for odd ones. The task: delete every inactive
 * user. In a C hash table (or Go's range + delete) the naive way is undefined
 * or unspecified; in mapcore it is always defined:
 *
 *   (a) naive: strict iterator + mc_map_delete inside the loop. The next
 *       call fails with an explicit MC_ERR_ITER_INVALIDATED (guaranteed, not
 *       best effort) instead of skipping or repeating entries.
 *   (b) remove through the iterator (mc_iter_remove): the token stays valid
 *       and every other entry is still yielded exactly once.
 *   (c) collect, then delete: one pass collects the keys, then
 *       mc_map_delete_many removes them atomically.
 *   (d) mc_map_retain with a predicate: no iterator at all.
 *   (e) cursor iterator + plain mc_map_delete: cursor mode is never
 *       invalidated, and every key present from start to end of the scan is
 *       returned exactly once, so deleting as you go is fine.
 *
 * After each way the final contents are verified; any difference from the
 * documented behaviour exits 1.
 */
#define _POSIX_C_SOURCE 200809L
#include <mapcore.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

static size_t N; /* number of users */

#define KEY_CAP 32
#define VAL_CAP 32

static size_t make_key(char *buf, size_t i) {
    return (size_t)snprintf(buf, KEY_CAP, "user:%04zu", i);
}

static bool is_inactive(const uint8_t *val, size_t len) {
    return len == 8 && memcmp(val, "inactive", 8) == 0;
}

/* Parses "user:NNNN" back into its number (or returns (size_t)-1). */
static size_t key_index(const uint8_t *key, size_t len) {
    if (len < 6 || memcmp(key, "user:", 5) != 0)
        return (size_t)-1;
    size_t i = 0;
    for (size_t p = 5; p < len; p++) {
        if (key[p] < '0' || key[p] > '9')
            return (size_t)-1;
        i = i * 10 + (size_t)(key[p] - '0');
    }
    return i < N ? i : (size_t)-1;
}

/* A fresh map with N users, half of them inactive. */
static mc_map make_users(void) {
    mc_map m;
    CHECK_OK(mc_map_new(&m));
    char key[KEY_CAP];
    for (size_t i = 0; i < N; i++) {
        size_t kl = make_key(key, i);
        const char *v = (i % 2) ? "inactive" : "active";
        CHECK_OK(mc_map_set(m, U8(key), kl, U8(v), strlen(v), NULL));
    }
    return m;
}

/* The expected result: exactly the active (even) users are left. */
static void verify_only_active_left(mc_map m, const char *way) {
    size_t len = 0;
    CHECK_OK(mc_map_len(m, &len));
    CHECK_MSG(len == (N + 1) / 2, "%s: %zu entries left, expected %zu", way, len, (N + 1) / 2);
    char key[KEY_CAP];
    for (size_t i = 0; i < N; i++) {
        bool present = false;
        CHECK_OK(mc_map_contains(m, U8(key), make_key(key, i), &present));
        CHECK_MSG(present == (i % 2 == 0), "%s: %s present=%d", way, key, present);
    }
    printf("  verified: the %zu active users are left, every inactive one is gone\n", len);
}

/* (a) The naive way: mc_map_delete while a strict iterator is running. */
static void naive_way(void) {
    printf("(a) naive: strict iterator + mc_map_delete inside the loop\n");
    mc_map m = make_users();
    mc_iter it;
    CHECK_OK(mc_iter_init(m, MC_MODE_STRICT, &it));
    uint8_t k[KEY_CAP], v[VAL_CAP];
    size_t kl, vl, deleted = 0, yielded = 0;
    mc_status s;
    while ((s = mc_iter_next(m, &it, k, sizeof k, &kl, v, sizeof v, &vl)) == MC_OK) {
        yielded++;
        if (is_inactive(v, vl)) {
            CHECK_OK(mc_map_delete(m, k, kl)); /* a structural change... */
            deleted++;
        }
    }
    /* ...so the very next call reports it, explicitly. */
    CHECK_ST(s, MC_ERR_ITER_INVALIDATED);
    CHECK(deleted == 1);
    printf("  deleted one entry after %zu yielded; the next call returned %s:\n", yielded,
           mc_status_name(s));
    char msg[256];
    size_t n;
    CHECK_OK(mc_last_error(msg, sizeof msg, &n));
    printf("    \"%s\"\n", msg);
    /* The stale token keeps failing the same way; nothing undefined happens. */
    CHECK_ST(mc_iter_next(m, &it, k, sizeof k, &kl, v, sizeof v, &vl), MC_ERR_ITER_INVALIDATED);
    size_t len = 0;
    CHECK_OK(mc_map_len(m, &len));
    CHECK(len == N - 1);
    printf("  the map is intact (%zu entries); the loop must be restarted or written another way\n",
           len);
    CHECK_OK(mc_map_free(m));
}

/* (b) Remove through the iterator. */
static void remove_through_iterator(void) {
    printf("(b) strict iterator + mc_iter_remove (remove through the token)\n");
    mc_map m = make_users();
    unsigned char *seen = calloc(N, 1);
    CHECK(seen != NULL);
    mc_iter it;
    CHECK_OK(mc_iter_init(m, MC_MODE_STRICT, &it));
    uint8_t k[KEY_CAP], v[VAL_CAP];
    size_t kl, vl, removed = 0;
    mc_status s;
    while ((s = mc_iter_next(m, &it, k, sizeof k, &kl, v, sizeof v, &vl)) == MC_OK) {
        size_t i = key_index(k, kl);
        CHECK_MSG(i != (size_t)-1, "unexpected key %.*s", (int)kl, (const char *)k);
        seen[i]++;
        if (is_inactive(v, vl)) {
            /* Deletes the entry the token returned last; the token stays valid. */
            CHECK_OK(mc_iter_remove(m, &it));
            removed++;
        }
    }
    CHECK_ST(s, MC_DONE);
    for (size_t i = 0; i < N; i++)
        CHECK_MSG(seen[i] == 1, "user:%04zu yielded %d times", i, seen[i]);
    printf("  every entry yielded exactly once, %zu removed on the way\n", removed);
    CHECK(removed == N / 2);
    verify_only_active_left(m, "(b)");
    free(seen);
    CHECK_OK(mc_map_free(m));
}

/* (c) Collect the keys in one pass, then delete them in one call. */
static void collect_then_delete(void) {
    printf("(c) collect the keys (one pass), then mc_map_delete_many\n");
    mc_map m = make_users();
    /* Keys are packed back to back; key_lens[i] is the length of key i. */
    uint8_t *keys = malloc(N * KEY_CAP);
    uint32_t *key_lens = malloc(N * sizeof *key_lens);
    CHECK(keys != NULL && key_lens != NULL);
    size_t n = 0, used = 0;
    mc_iter it;
    CHECK_OK(mc_iter_init(m, MC_MODE_STRICT, &it));
    uint8_t k[KEY_CAP], v[VAL_CAP];
    size_t kl, vl;
    mc_status s;
    while ((s = mc_iter_next(m, &it, k, sizeof k, &kl, v, sizeof v, &vl)) == MC_OK) {
        if (is_inactive(v, vl)) {
            memcpy(keys + used, k, kl);
            key_lens[n++] = (uint32_t)kl;
            used += kl;
        }
    }
    CHECK_ST(s, MC_DONE); /* nothing changed during the read-only pass */
    size_t removed = 0;
    CHECK_OK(mc_map_delete_many(m, n, keys, key_lens, &removed));
    CHECK(n == N / 2 && removed == n);
    printf("  collected %zu keys, mc_map_delete_many removed %zu (atomically)\n", n, removed);
    verify_only_active_left(m, "(c)");
    free(keys);
    free(key_lens);
    CHECK_OK(mc_map_free(m));
}

/* (d) mc_map_retain: keep what the predicate accepts. */
static int keep_active(void *user, const uint8_t *key, size_t key_len, const uint8_t *val,
                       size_t val_len) {
    (void)key;
    (void)key_len;
    (*(size_t *)user)++;
    return !is_inactive(val, val_len); /* non-zero = keep */
}

static void retain_way(void) {
    printf("(d) mc_map_retain with a predicate (no iterator at all)\n");
    mc_map m = make_users();
    size_t calls = 0, removed = 0;
    CHECK_OK(mc_map_retain(m, keep_active, &calls, &removed));
    CHECK(calls == N && removed == N / 2);
    printf("  the predicate ran %zu times, %zu entries removed\n", calls, removed);
    verify_only_active_left(m, "(d)");
    CHECK_OK(mc_map_free(m));
}

/* (e) Cursor mode: plain mc_map_delete during the scan is fine. */
static void cursor_way(void) {
    printf("(e) cursor iterator + plain mc_map_delete (cursor mode is never invalidated)\n");
    mc_map m = make_users();
    unsigned char *seen = calloc(N, 1);
    CHECK(seen != NULL);
    mc_iter it;
    CHECK_OK(mc_iter_init(m, MC_MODE_CURSOR, &it));
    uint8_t k[KEY_CAP], v[VAL_CAP];
    size_t kl, vl, deleted = 0;
    mc_status s;
    while ((s = mc_iter_next(m, &it, k, sizeof k, &kl, v, sizeof v, &vl)) == MC_OK) {
        size_t i = key_index(k, kl);
        CHECK(i != (size_t)-1);
        seen[i]++;
        if (is_inactive(v, vl)) {
            CHECK_OK(mc_map_delete(m, k, kl));
            deleted++;
        }
    }
    CHECK_ST(s, MC_DONE);
    /* Nothing else changed the map, so every key was present from start to
     * end of the scan (or until we deleted it after seeing it): exactly once. */
    for (size_t i = 0; i < N; i++)
        CHECK_MSG(seen[i] == 1, "user:%04zu yielded %d times", i, seen[i]);
    printf("  every entry yielded exactly once, %zu deleted on the way\n", deleted);
    verify_only_active_left(m, "(e)");
    free(seen);
    CHECK_OK(mc_map_free(m));
}

int main(void) {
    N = scaled(2000, 300);
    printf("delete_while_iterating: delete the %zu inactive users out of %zu\n", N / 2, N);
    naive_way();
    remove_through_iterator();
    collect_then_delete();
    retain_way();
    cursor_way();
    printf("delete_while_iterating: OK (%lu checks)\n", checks_made());
    return 0;
}
