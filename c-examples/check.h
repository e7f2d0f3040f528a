/*
 * check.h - the tiny assertion helpers shared by the mapcore C examples and
 * C tests. Every check that fails prints file:line, the expression, the
 * status names (via mc_status_name) and the thread's mc_last_error() detail,
 * then exits with status 1. Checks are counted so each program can report
 * how many it made.
 *
 * Also: a tiny xorshift PRNG, a monotonic clock and the MAPCORE_SMALL switch
 * (set by `make valgrind` to keep runs short).
 */
#ifndef MAPCORE_CHECK_H
#define MAPCORE_CHECK_H

#include <mapcore.h>

#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Number of checks made so far (atomic: threads check too). */
static atomic_ulong check_count;

/* Prints the calling thread's last-error detail (best effort). */
static inline void check_print_detail(void) {
    char msg[512];
    size_t n = 0;
    if (mc_last_error(msg, sizeof msg, &n) == MC_OK && n > 0)
        fprintf(stderr, "    last error: %s\n", msg);
}

static inline void check_fail_status(const char *file, int line, const char *expr,
                                     mc_status got, mc_status want) {
    fprintf(stderr, "%s:%d: CHECK FAILED: %s\n    got %s (%d), expected %s (%d)\n",
            file, line, expr, mc_status_name(got), (int)got, mc_status_name(want), (int)want);
    check_print_detail();
    exit(1);
}

static inline void check_fail_cond(const char *file, int line, const char *expr,
                                   const char *why) {
    fprintf(stderr, "%s:%d: CHECK FAILED: %s%s%s\n", file, line, expr,
            why && *why ? "\n    " : "", why ? why : "");
    exit(1);
}

/* CHECK_ST(call, want): `call` must return the status `want`. */
#define CHECK_ST(call, want)                                                    \
    do {                                                                        \
        mc_status got_ = (call);                                                \
        mc_status want_ = (want);                                               \
        atomic_fetch_add_explicit(&check_count, 1, memory_order_relaxed);       \
        if (got_ != want_)                                                      \
            check_fail_status(__FILE__, __LINE__, #call, got_, want_);          \
    } while (0)

/* CHECK_OK(call): `call` must return MC_OK. */
#define CHECK_OK(call) CHECK_ST(call, MC_OK)

/* CHECK(cond): a plain condition. */
#define CHECK(cond)                                                             \
    do {                                                                        \
        atomic_fetch_add_explicit(&check_count, 1, memory_order_relaxed);       \
        if (!(cond))                                                            \
            check_fail_cond(__FILE__, __LINE__, #cond, NULL);                   \
    } while (0)

/* CHECK_MSG(cond, fmt, ...): a condition with a formatted explanation. */
#define CHECK_MSG(cond, ...)                                                    \
    do {                                                                        \
        atomic_fetch_add_explicit(&check_count, 1, memory_order_relaxed);       \
        if (!(cond)) {                                                          \
            char why_[512];                                                     \
            snprintf(why_, sizeof why_, __VA_ARGS__);                           \
            check_fail_cond(__FILE__, __LINE__, #cond, why_);                   \
        }                                                                       \
    } while (0)

/* Non-fatal variants: print the failure, count it, go on. A program that
 * uses them ends with `return checks_failed() ? 1 : 0;`. */
static atomic_ulong check_failures;

#define EXPECT_ST(call, want)                                                   \
    do {                                                                        \
        mc_status got_ = (call);                                                \
        mc_status want_ = (want);                                               \
        atomic_fetch_add_explicit(&check_count, 1, memory_order_relaxed);       \
        if (got_ != want_) {                                                    \
            atomic_fetch_add(&check_failures, 1);                               \
            fprintf(stderr, "%s:%d: CHECK FAILED: %s\n    got %s (%d), expected %s (%d)\n", \
                    __FILE__, __LINE__, #call, mc_status_name(got_), (int)got_,   \
                    mc_status_name(want_), (int)want_);                         \
        }                                                                       \
    } while (0)

#define EXPECT_MSG(cond, ...)                                                   \
    do {                                                                        \
        atomic_fetch_add_explicit(&check_count, 1, memory_order_relaxed);       \
        if (!(cond)) {                                                          \
            atomic_fetch_add(&check_failures, 1);                               \
            fprintf(stderr, "%s:%d: CHECK FAILED: %s\n    ", __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                                       \
            fputc('\n', stderr);                                                \
        }                                                                       \
    } while (0)

static inline unsigned long checks_failed(void) {
    return atomic_load(&check_failures);
}

static inline unsigned long checks_made(void) {
    return atomic_load(&check_count);
}

/* Casts for the byte-string API. */
#define U8(s) ((const uint8_t *)(s))

/* MAPCORE_SMALL=1 (used under valgrind) asks for smaller sizes. */
static inline int small_mode(void) {
    const char *s = getenv("MAPCORE_SMALL");
    return s && *s && strcmp(s, "0") != 0;
}

/* Picks `big` normally and `small` under MAPCORE_SMALL. */
static inline size_t scaled(size_t big, size_t small) {
    return small_mode() ? small : big;
}

/* xorshift64*: a small deterministic PRNG (state must be non-zero). */
static inline uint64_t rng_next(uint64_t *s) {
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1DULL;
}

static inline uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

#endif /* MAPCORE_CHECK_H */
