/* The header's fork() rule: a process that forks while no other thread is
 * inside the library can use its maps in the child, including one big
 * enough for the library's own memory pool (slot pages and, outside
 * MAPCORE_SMALL, full-size record chunks), and the parent's map is
 * unaffected by what the child does. */
#define _POSIX_C_SOURCE 200809L
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
    printf("test_fork: OK (%lu checks)\n", (unsigned long)check_count);
    return 0;
}
