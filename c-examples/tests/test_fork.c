/* The header's fork() rules.
 * 1. A process that forks while no other thread is inside the library can
 *    use its maps in the child, including one big enough for the library's
 *    own memory pool (slot pages and, outside MAPCORE_SMALL, full-size
 *    record chunks), and the parent's map is unaffected by what the child
 *    does.
 * 2. Forks while other threads create and free maps, write, read and sit
 *    in callbacks: every child finishes (the parent kills one that has not
 *    after a deadline, and fails), maps no thread held a lock of at the
 *    fork work fully, and every call on the others returns its usual
 *    status or MC_ERR_POISONED, after which only freeing them works.
 * 3. A fork from inside a callback: the call in progress finishes in the
 *    child, the map is poisoned there, the other maps work. */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"

enum { VAL_LEN = 32 };

static void key_of(uint32_t i, uint8_t k[8]) {
    memcpy(k, "key-", 4);
    memcpy(k + 4, &i, 4);
}

/* Every key 0..n-1 present with value i * 3 (checked by iteration too). */
static void check_contents(mc_map m, uint32_t n) {
    size_t len = 0;
    CHECK_OK(mc_map_len(m, &len));
    CHECK_MSG(len == n, "len %llu, expected %u", (unsigned long long)len, n);
    for (uint32_t i = 0; i < n; i += 97) {
        uint8_t k[8], buf[VAL_LEN];
        size_t got = 0;
        key_of(i, k);
        CHECK_OK(mc_map_get(m, k, sizeof k, buf, sizeof buf, &got));
        uint32_t v;
        memcpy(&v, buf, 4);
        CHECK(got == VAL_LEN && v == i * 3);
    }
}

/* ---- 2 and 3: forks while other threads use the library ---- */

enum { IDLE_N = 2000, BUSY_N = 500 };
/* What a child that passed its checks writes to its pipe before exiting:
 * OK_BASE + one bit per busy map found poisoned. (A pipe, not the exit
 * code: under valgrind a child exits with 1 for the memory of the parent's
 * other threads, which it never frees.) */
enum { OK_BASE = 40, FROM_CALLBACK_OK = 60 };
static int result_fd = -1;

static void child_done(int code) {
    unsigned char c = (unsigned char)code;
    CHECK(write(result_fd, &c, 1) == 1);
    _exit(0);
}

static atomic_bool stop;
static mc_map idle, busy_write, busy_callback;

static void fill(mc_map m, uint32_t n) {
    for (uint32_t i = 0; i < n; i++) {
        uint8_t k[8], val[VAL_LEN] = {0};
        uint32_t v = i * 3;
        memcpy(val, &v, 4);
        key_of(i, k);
        CHECK_OK(mc_map_set(m, k, sizeof k, val, sizeof val, NULL));
    }
}

static void *churn(void *arg) {
    (void)arg;
    while (!atomic_load(&stop)) {
        mc_map m;
        CHECK_OK(mc_map_new(&m));
        fill(m, 300); /* grows, so tables and pool blocks come and go */
        CHECK_OK(mc_map_free(m));
    }
    return NULL;
}

static void *writer(void *arg) {
    (void)arg;
    for (uint32_t i = 0; !atomic_load(&stop); i++) {
        uint8_t k[8], val[VAL_LEN] = {0};
        key_of(BUSY_N + i % 4096, k);
        CHECK_OK(mc_map_set(busy_write, k, sizeof k, val, sizeof val, NULL));
        if (i % 3 == 0) {
            mc_status st = mc_map_delete(busy_write, k, sizeof k);
            CHECK(st == MC_OK || st == MC_ERR_NOT_FOUND);
        }
    }
    return NULL;
}

static void spin_a_while(void) {
    for (volatile int i = 0; i < 20000; i++) {
    }
}

static void slow_value(void *user, const uint8_t *val, size_t len) {
    (void)user, (void)val, (void)len;
    spin_a_while();
}

static int slow_keep(void *user, const uint8_t *key, size_t key_len, const uint8_t *val,
                     size_t val_len) {
    (void)user, (void)key, (void)key_len, (void)val, (void)val_len;
    spin_a_while();
    return 1;
}

/* Sits in callbacks: under a shard's read lock (get_with) and under write
 * locks (retain). */
static void *sitter(void *arg) {
    (void)arg;
    for (uint32_t i = 0; !atomic_load(&stop); i++) {
        uint8_t k[8];
        key_of(i % BUSY_N, k);
        CHECK_OK(mc_map_get_with(busy_callback, k, sizeof k, slow_value, NULL));
        if (i % 64 == 0)
            CHECK_OK(mc_map_retain(busy_callback, slow_keep, NULL, NULL));
    }
    return NULL;
}

/* Short reads and batch reads of the idle map: they take no lock, so the
 * idle map must stay fully usable in every child. */
static void *reader(void *arg) {
    (void)arg;
    for (uint32_t i = 0; !atomic_load(&stop); i++) {
        uint8_t buf[VAL_LEN];
        size_t got = 0;
        uint8_t keys[4 * 8];
        uint32_t key_lens[4] = {8, 8, 8, 8};
        key_of(i % IDLE_N, keys);
        CHECK_OK(mc_map_get(idle, keys, 8, buf, sizeof buf, &got));
        for (uint32_t j = 0; j < 4; j++)
            key_of((i + j * 7) % IDLE_N, keys + 8 * j);
        uint8_t vals[4 * VAL_LEN];
        uint32_t val_lens[4];
        size_t used = 0;
        CHECK_OK(mc_map_get_many(idle, 4, keys, key_lens, vals, sizeof vals, val_lens, &used));
    }
    return NULL;
}

/* In a child: the idle map and a new one work fully. */
static void check_usable(void) {
    check_contents(idle, IDLE_N);
    uint8_t k[8], v[VAL_LEN] = {0};
    key_of(IDLE_N + 1, k);
    CHECK_OK(mc_map_set(idle, k, sizeof k, v, sizeof v, NULL));
    CHECK_OK(mc_map_delete(idle, k, sizeof k));
    mc_map m;
    CHECK_OK(mc_map_new(&m));
    fill(m, 3000);
    check_contents(m, 3000);
    CHECK_OK(mc_map_free(m));
}

/* In a child: a map other threads were using either works or is poisoned,
 * consistently; freeing it works either way. Returns 1 if poisoned. */
static int check_busy(mc_map m) {
    uint8_t k[8], v[VAL_LEN] = {0};
    key_of(7, k);
    mc_status st = mc_map_set(m, k, sizeof k, v, sizeof v, NULL);
    CHECK(st == MC_OK || st == MC_ERR_POISONED);
    int poisoned = st == MC_ERR_POISONED;
    size_t len = 0;
    CHECK_ST(mc_map_len(m, &len), poisoned ? MC_ERR_POISONED : MC_OK);
    CHECK_ST(mc_map_get_with(m, k, sizeof k, slow_value, NULL),
             poisoned ? MC_ERR_POISONED : MC_OK);
    CHECK_ST(mc_map_delete(m, k, sizeof k), poisoned ? MC_ERR_POISONED : MC_OK);
    if (!poisoned)
        fill(m, BUSY_N);
    CHECK_OK(mc_map_free(m));
    return poisoned;
}

static void child_under_load(void) {
    check_usable();
    child_done(OK_BASE + check_busy(busy_write) + 2 * check_busy(busy_callback));
}

static void sleep_us(long us) {
    struct timespec ts = {us / 1000000, (us % 1000000) * 1000};
    nanosleep(&ts, NULL);
}

/* Waits for `pid` up to `secs`; kills it and fails the test if it is still
 * running then. Returns what it wrote to `fd` (-1 if nothing). */
static int wait_with_deadline(pid_t pid, int fd, double secs) {
    uint64_t until = now_ns() + (uint64_t)(secs * 1e9);
    for (;;) {
        int status = 0;
        pid_t r = waitpid(pid, &status, WNOHANG);
        CHECK(r == 0 || r == pid);
        if (r == pid) {
            CHECK_MSG(WIFEXITED(status), "child %d ended by signal %d", (int)pid,
                      WIFSIGNALED(status) ? WTERMSIG(status) : 0);
            unsigned char c;
            int code = read(fd, &c, 1) == 1 ? c : -1;
            close(fd);
            return code;
        }
        if (now_ns() > until) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            CHECK_MSG(0, "child %d still running after %.0f s: it hangs", (int)pid, secs);
        }
        sleep_us(2000);
    }
}

static pid_t forked_in_callback;

static void fork_here(void *user, const uint8_t *val, size_t len) {
    (void)val, (void)len;
    fflush(stdout);
    pid_t pid = fork();
    CHECK(pid >= 0);
    *(int *)user = pid == 0;
    if (pid > 0)
        forked_in_callback = pid;
}

/* Forks from inside a callback of busy_callback (which the sitter thread
 * also uses). In the child the call finishes, then the map is poisoned. */
static int fork_from_callback(void) {
    int fds[2];
    CHECK(pipe(fds) == 0);
    int read_fd = fds[0];
    result_fd = fds[1];
    uint8_t k[8];
    key_of(3, k);
    int in_child = 0;
    mc_status st = mc_map_get_with(busy_callback, k, sizeof k, fork_here, &in_child);
    if (in_child) {
        CHECK_OK(st);
        size_t len = 0;
        CHECK_ST(mc_map_len(busy_callback, &len), MC_ERR_POISONED);
        check_usable();
        CHECK_OK(mc_map_free(busy_callback));
        child_done(FROM_CALLBACK_OK);
    }
    CHECK_OK(st);
    close(result_fd);
    return wait_with_deadline(forked_in_callback, read_fd, 60);
}

static void forks_under_load(void) {
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
    /* The sanitizers' own allocators keep locks that a fork can catch held
     * by another thread: the child then hangs inside malloc. */
    printf("test_fork: forks under load skipped under a sanitizer\n");
    return;
#endif
    const int children = getenv("MAPCORE_SMALL") ? 12 : 60;
    CHECK_OK(mc_map_new(&idle));
    CHECK_OK(mc_map_new(&busy_write));
    CHECK_OK(mc_map_new(&busy_callback));
    fill(idle, IDLE_N);
    fill(busy_write, BUSY_N);
    fill(busy_callback, BUSY_N);
    void *(*fns[])(void *) = {churn, writer, sitter, reader};
    pthread_t th[4];
    for (int i = 0; i < 4; i++)
        CHECK(pthread_create(&th[i], NULL, fns[i], NULL) == 0);
    int outcomes[4] = {0};
    uint32_t rng = 12345;
    for (int c = 0; c < children; c++) {
        sleep_us(200 + (rng = rng * 1103515245 + 12345) % 3000);
        fflush(stdout);
        int fds[2];
        CHECK(pipe(fds) == 0);
        result_fd = fds[1];
        pid_t pid = fork();
        CHECK(pid >= 0);
        if (pid == 0)
            child_under_load();
        close(fds[1]);
        int code = wait_with_deadline(pid, fds[0], 60);
        CHECK_MSG(code >= OK_BASE && code < OK_BASE + 4, "child result %d", code);
        outcomes[code - OK_BASE]++;
    }
    int from_cb = 0;
    for (int c = 0; c < 5; c++) {
        CHECK(fork_from_callback() == FROM_CALLBACK_OK);
        from_cb++;
    }
    atomic_store(&stop, true);
    for (int i = 0; i < 4; i++)
        CHECK(pthread_join(th[i], NULL) == 0);
    /* The parent's maps are untouched by the children. */
    check_contents(idle, IDLE_N);
    CHECK_OK(mc_map_free(idle));
    CHECK_OK(mc_map_free(busy_write));
    CHECK_OK(mc_map_free(busy_callback));
    printf("test_fork: %d children forked under load, none hung; busy maps poisoned in the "
           "child: none %d, written one %d, callback one %d, both %d; %d forks from a "
           "callback\n",
           children, outcomes[0], outcomes[1], outcomes[2], outcomes[3], from_cb);
}

int main(void) {
    const uint32_t n = getenv("MAPCORE_SMALL") ? 40000 : 200000;
    mc_map m;
    CHECK_OK(mc_map_new(&m));
    for (uint32_t i = 0; i < n; i++) {
        uint8_t k[8], val[VAL_LEN] = {0};
        uint32_t v = i * 3;
        memcpy(val, &v, 4);
        key_of(i, k);
        CHECK_OK(mc_map_set(m, k, sizeof k, val, sizeof val, NULL));
    }
    fflush(stdout);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        /* The child: read, then change the map and a new one. */
        check_contents(m, n);
        for (uint32_t i = 0; i < n; i += 2) {
            uint8_t k[8];
            key_of(i, k);
            CHECK_OK(mc_map_delete(m, k, sizeof k));
        }
        size_t len = 0;
        CHECK_OK(mc_map_len(m, &len));
        CHECK(len == n / 2);
        mc_map other;
        CHECK_OK(mc_map_new(&other));
        CHECK_OK(mc_map_set(other, (const uint8_t *)"k", 1, (const uint8_t *)"v", 1, NULL));
        CHECK_OK(mc_map_free(other));
        CHECK_OK(mc_map_free(m));
        printf("test_fork: child used the map (%u entries, half deleted) and freed it\n", n);
        fflush(stdout);
        _exit(0);
    }
    int status = 0;
    CHECK(waitpid(pid, &status, 0) == pid);
    CHECK_MSG(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status %#x", status);
    check_contents(m, n); /* the child's deletes stayed in the child */
    CHECK_OK(mc_map_free(m));
    forks_under_load();
    printf("test_fork: OK (%lu checks)\n", (unsigned long)check_count);
    return 0;
}
