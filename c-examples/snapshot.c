/*
 * snapshot.c - consistent reports from a map that writers keep changing.
 *
 * The map holds bank accounts "acct:NNNN" whose value is the balance (an
 * int64_t, stored as 8 raw bytes). Writer threads move money between two
 * accounts: each transfer reads both balances (mc_map_get_many, one consistent
 * state) and writes both new balances with ONE mc_map_set_many call, which
 * other threads see entirely or not at all. So the total of all balances
 * never changes.
 *
 * The reporter takes snapshots (mc_snapshot_new) while the writers run and
 * sums the balances from each snapshot, slowly, batch by batch: every
 * snapshot's total must be exactly the invariant total. For comparison it
 * also sums the live map with a cursor scan, which is only weakly consistent
 * (a transfer can land between two batches), and counts how often that total
 * is off: that is what snapshots are for.
 *
 * Finally: a snapshot is isolated from later writes, survives mc_map_free of
 * its map, and is released with mc_snapshot_free. Any violation exits 1.
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

#define WRITERS 3
#define START_BALANCE 1000

static size_t ACCOUNTS;
static mc_map M;
static atomic_bool stop;

static size_t acct_key(char *buf, size_t i) {
    return (size_t)snprintf(buf, 16, "acct:%04zu", i);
}

static int64_t balance_of(const uint8_t *val, size_t len) {
    int64_t b;
    CHECK_MSG(len == sizeof b, "a balance is 8 bytes, got %zu", len);
    memcpy(&b, val, sizeof b);
    return b;
}

static void pause_us(long us) {
    struct timespec ts = {0, us * 1000};
    nanosleep(&ts, NULL);
}

/* A writer owns the accounts i with i % WRITERS == its number, so its
 * read-modify-write transfers never race with another writer's; the atomic
 * mc_map_set_many is what keeps readers and snapshots from seeing half of one. */
static void *writer(void *arg) {
    size_t w = (size_t)(uintptr_t)arg;
    uint64_t rng = 0xC0FFEEull + w;
    size_t mine = (ACCOUNTS - w + WRITERS - 1) / WRITERS, transfers = 0;
    while (!atomic_load(&stop)) {
        size_t a = w + WRITERS * (size_t)(rng_next(&rng) % mine);
        size_t b = w + WRITERS * (size_t)(rng_next(&rng) % mine);
        if (a == b)
            continue;
        /* Both keys packed back to back. */
        uint8_t keys[32];
        uint32_t key_lens[2];
        key_lens[0] = (uint32_t)acct_key((char *)keys, a);
        key_lens[1] = (uint32_t)acct_key((char *)keys + key_lens[0], b);
        uint8_t vals[16];
        uint32_t val_lens[2];
        size_t used = 0;
        CHECK_OK(mc_map_get_many(M, 2, keys, key_lens, vals, sizeof vals, val_lens, &used));
        CHECK(val_lens[0] == 8 && val_lens[1] == 8 && used == 16);
        int64_t from = balance_of(vals, 8), to = balance_of(vals + 8, 8);
        int64_t amount = from > 0 ? (int64_t)(rng_next(&rng) % (uint64_t)(from + 1)) : 0;
        from -= amount;
        to += amount;
        memcpy(vals, &from, 8);
        memcpy(vals + 8, &to, 8);
        uint32_t lens8[2] = {8, 8};
        size_t inserted = 1;
        CHECK_OK(mc_map_set_many(M, 2, keys, key_lens, vals, lens8, &inserted));
        CHECK(inserted == 0); /* both were overwrites */
        transfers++;
    }
    return (void *)transfers;
}

/* Sums all balances with ONE call: mc_map_get_many of every account (one
 * consistent state of the map), or one mc_iter_next_batch that takes the
 * whole map (one call observes one consistent state). */
static int64_t one_call_total(bool use_get_many) {
    static uint8_t keys[10000 * 16], vals[10000 * 8 + 64], page[10000 * 32];
    static uint32_t key_lens[10000], val_lens[10000];
    CHECK(ACCOUNTS <= 10000);
    int64_t total = 0;
    if (use_get_many) {
        size_t off = 0, used = 0;
        for (size_t i = 0; i < ACCOUNTS; i++) {
            key_lens[i] = (uint32_t)acct_key((char *)keys + off, i);
            off += key_lens[i];
        }
        CHECK_OK(mc_map_get_many(M, ACCOUNTS, keys, key_lens, vals, sizeof vals, val_lens, &used));
        CHECK(used == ACCOUNTS * 8);
        for (size_t i = 0; i < ACCOUNTS; i++)
            total += balance_of(vals + 8 * i, val_lens[i]);
    } else {
        mc_iter it;
        size_t count = 0, used = 0, off = 0, kl, vl;
        const uint8_t *k, *v;
        CHECK_OK(mc_iter_init(M, MC_MODE_CURSOR, &it));
        CHECK_OK(mc_iter_next_batch(M, &it, page, sizeof page, ACCOUNTS + 1, &count, &used));
        CHECK(count == ACCOUNTS);
        while (mc_batch_entry(page, used, &off, &k, &kl, &v, &vl) == MC_OK)
            total += balance_of(v, vl);
    }
    return total;
}

/* Sums balances batch by batch with a pause between batches (a slow report),
 * from a snapshot (`snap.id` != 0) or from the live map in cursor mode. */
static int64_t slow_total(mc_snapshot snap, size_t *entries) {
    uint8_t buf[2048];
    mc_iter it;
    if (snap.id)
        CHECK_OK(mc_snapshot_iter_init(snap, MC_MODE_CURSOR, &it));
    else
        CHECK_OK(mc_iter_init(M, MC_MODE_CURSOR, &it));
    int64_t total = 0;
    size_t count, used;
    *entries = 0;
    for (;;) {
        mc_status s = snap.id ? mc_snapshot_iter_next_batch(snap, &it, buf, sizeof buf, 32, &count, &used)
                              : mc_iter_next_batch(M, &it, buf, sizeof buf, 32, &count, &used);
        if (s == MC_DONE)
            break;
        CHECK_OK(s);
        size_t off = 0;
        const uint8_t *k, *v;
        size_t kl, vl;
        while (mc_batch_entry(buf, used, &off, &k, &kl, &v, &vl) == MC_OK) {
            total += balance_of(v, vl);
            (*entries)++;
        }
        pause_us(20);
    }
    return total;
}

static void report_while_writing(int reports) {
    const int64_t invariant = (int64_t)ACCOUNTS * START_BALANCE;
    pthread_t t[WRITERS];
    for (size_t w = 0; w < WRITERS; w++)
        CHECK(pthread_create(&t[w], NULL, writer, (void *)(uintptr_t)w) == 0);

    int live_off = 0;
    uint64_t snap_ns = 0;
    for (int r = 0; r < reports; r++) {
        /* The consistent way: a snapshot. */
        mc_snapshot snap;
        uint64_t t0 = now_ns();
        CHECK_OK(mc_snapshot_new(M, &snap));
        snap_ns += now_ns() - t0;
        size_t len = 0, entries = 0;
        CHECK_OK(mc_snapshot_len(snap, &len));
        CHECK(len == ACCOUNTS);
        int64_t total = slow_total(snap, &entries);
        CHECK(entries == ACCOUNTS);
        CHECK_MSG(total == invariant, "report %d: snapshot total %lld, expected %lld", r,
                  (long long)total, (long long)invariant);
        CHECK_OK(mc_snapshot_free(snap));

        /* One call is one consistent state, too. */
        int64_t t1 = one_call_total(true), t2 = one_call_total(false);
        CHECK_MSG(t1 == invariant, "report %d: get_many total %lld", r, (long long)t1);
        CHECK_MSG(t2 == invariant, "report %d: whole-map next_batch total %lld", r, (long long)t2);

        /* The weakly consistent way, for comparison (not an error). */
        int64_t live = slow_total((mc_snapshot){0}, &entries);
        CHECK(entries == ACCOUNTS); /* every account exists throughout: exactly once */
        live_off += live != invariant;
    }
    atomic_store(&stop, true);
    size_t transfers = 0;
    for (size_t w = 0; w < WRITERS; w++) {
        void *n;
        CHECK(pthread_join(t[w], &n) == 0);
        transfers += (size_t)n;
    }
    printf("  %d snapshot reports while %d writers made %zu transfers: every total was %lld\n",
           reports, WRITERS, transfers, (long long)invariant);
    printf("  (mc_snapshot_new took %.1f us on average)\n", (double)snap_ns / reports / 1e3);
    printf("  one mc_map_get_many of all accounts, and one mc_iter_next_batch of the whole map,\n"
           "  also always saw the invariant total (one call = one consistent state)\n");
    printf("  the same report over the live map (cursor scan) was off in %d of %d runs: "
           "a transfer landed mid-scan\n", live_off, reports);
}

static void snapshot_outlives_map(void) {
    const int64_t invariant = (int64_t)ACCOUNTS * START_BALANCE;
    mc_snapshot snap;
    CHECK_OK(mc_snapshot_new(M, &snap));

    /* Writes after the snapshot are not seen by it. */
    char key[16];
    size_t kl = acct_key(key, 0);
    uint8_t old[8];
    size_t len = 0;
    CHECK_OK(mc_map_get(M, U8(key), kl, old, sizeof old, &len));
    int64_t rich = 1000000000;
    CHECK_OK(mc_map_set(M, U8(key), kl, (const uint8_t *)&rich, 8, NULL));
    CHECK_OK(mc_map_set(M, U8("acct:new"), 8, (const uint8_t *)&rich, 8, NULL));
    uint8_t got[8];
    CHECK_OK(mc_snapshot_get(snap, U8(key), kl, got, sizeof got, &len));
    CHECK(len == 8 && memcmp(got, old, 8) == 0);
    bool present = true;
    CHECK_OK(mc_snapshot_contains(snap, U8("acct:new"), 8, &present));
    CHECK(!present);
    printf("  writes after the snapshot (acct:0000 overwritten, acct:new added) are not in it\n");

    /* The map goes away; the snapshot stays readable. */
    CHECK_OK(mc_map_free(M));
    CHECK_ST(mc_map_len(M, &len), MC_ERR_BAD_HANDLE);
    size_t entries = 0;
    CHECK_OK(mc_snapshot_len(snap, &len));
    CHECK(len == ACCOUNTS);
    CHECK(slow_total(snap, &entries) == invariant && entries == ACCOUNTS);
    printf("  after mc_map_free: the map handle is MC_ERR_BAD_HANDLE, the snapshot still holds "
           "%zu accounts totalling %lld\n", len, (long long)invariant);

    CHECK_OK(mc_snapshot_free(snap));
    CHECK_ST(mc_snapshot_len(snap, &len), MC_ERR_BAD_HANDLE);
    CHECK_ST(mc_snapshot_free(snap), MC_ERR_BAD_HANDLE);
    printf("  mc_snapshot_free -> MC_OK; afterwards the snapshot handle is MC_ERR_BAD_HANDLE\n");
}

int main(void) {
    ACCOUNTS = scaled(1000, 100);
    int reports = small_mode() ? 10 : 40;
    printf("snapshot: consistent reports while %d writers move money between %zu accounts\n",
           WRITERS, ACCOUNTS);
    CHECK_OK(mc_map_new(&M));
    char key[16];
    for (size_t i = 0; i < ACCOUNTS; i++) {
        int64_t b = START_BALANCE;
        CHECK_OK(mc_map_set(M, U8(key), acct_key(key, i), (const uint8_t *)&b, sizeof b, NULL));
    }
    report_while_writing(reports);
    snapshot_outlives_map();
    printf("snapshot: OK (%lu checks)\n", checks_made());
    return 0;
}
