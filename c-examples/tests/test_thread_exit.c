/* Calls into mapcore from a pthread key destructor, which glibc runs while
 * the thread exits, in no particular order with the library's own per-thread
 * clean-up: every call must still work (or fail with a status), never abort
 * the process, and leave nothing behind. */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "check.h"

static pthread_key_t key;
static mc_map map;
static int destructor_ran;

static void count_value(void *user, const uint8_t *val, size_t len) {
    (void)val;
    *(size_t *)user += len;
}

static void at_thread_exit(void *unused) {
    (void)unused;
    uint8_t buf[16];
    size_t n = 0;
    CHECK_ST(mc_map_get(map, (const uint8_t *)"absent", 6, buf, sizeof buf, &n), MC_ERR_NOT_FOUND);
    CHECK_OK(mc_map_set(map, (const uint8_t *)"late", 4, (const uint8_t *)"v", 1, NULL));
    CHECK_OK(mc_map_get(map, (const uint8_t *)"late", 4, buf, sizeof buf, &n));
    CHECK(n == 1 && buf[0] == 'v');
    size_t seen = 0; /* a callback scope, entered and left during thread exit */
    CHECK_OK(mc_map_get_with(map, (const uint8_t *)"late", 4, count_value, &seen));
    CHECK(seen == 1);
    char msg[128];
    size_t len = 0;
    mc_status s = mc_last_error(msg, sizeof msg, &len);
    CHECK(s == MC_OK || s == MC_ERR_BUFFER_TOO_SMALL);
    destructor_ran = 1;
}

static void *worker(void *unused) {
    (void)unused;
    pthread_setspecific(key, (void *)1);
    uint8_t buf[16];
    size_t n = 0;
    /* Initialises the library's thread-locals on this thread. */
    CHECK_ST(mc_map_get(map, (const uint8_t *)"absent", 6, buf, sizeof buf, &n), MC_ERR_NOT_FOUND);
    return NULL;
}

/* A thread whose first call into the library comes from its exit
 * destructor: the per-thread state the call sets up must still be given
 * back (valgrind's leak check in `make test` fails the run otherwise, and
 * enough such threads would exhaust the per-thread records). */
static void *idle_worker(void *unused) {
    (void)unused;
    pthread_setspecific(key, (void *)1);
    return NULL;
}

/* Runs `rounds` threads of `body` one after another; each must have run
 * the exit destructor. */
static void run_threads(int rounds, void *(*body)(void *)) {
    for (int round = 0; round < rounds; round++) {
        destructor_ran = 0;
        pthread_t t;
        CHECK(pthread_create(&t, NULL, body, NULL) == 0);
        CHECK(pthread_join(t, NULL) == 0);
        CHECK(destructor_ran);
    }
}

int main(void) {
    CHECK(pthread_key_create(&key, at_thread_exit) == 0);
    CHECK_OK(mc_map_new(&map));
    run_threads(300, idle_worker);
    run_threads(4, worker);
    size_t len = 0;
    CHECK_OK(mc_map_len(map, &len));
    CHECK(len == 1);
    CHECK_OK(mc_map_free(map));
    printf("test_thread_exit: OK (calls from thread-exit destructors work)\n");
    return 0;
}
