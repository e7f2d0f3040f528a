/*
 * oom_ulimit.c - real memory exhaustion: the library under an address-space
 * limit (RLIMIT_AS, what `ulimit -v` sets), no injector needed.
 *
 *   bin/oom/oom_ulimit [--report]
 *
 * Each scenario runs in a child that sets the limit to its own current
 * address-space size plus a headroom, so that the figure does not depend on
 * how big the program and its libraries are:
 *
 *   get_many    one mc_map_get_many of MC_MAX_BATCH keys (the caller's
 *               arrays are allocated before the limit), headroom 192 MiB:
 *               the call must return MC_OK or MC_ERR_OUT_OF_MEMORY
 *   reserve     mc_map_reserve(MC_MAX_CAPACITY), headroom 64 MiB: a status,
 *               MC_ERR_OUT_OF_MEMORY or MC_ERR_TOO_LARGE
 *   big_value   mc_map_set of a 512 MiB value, headroom 64 MiB:
 *               MC_ERR_OUT_OF_MEMORY, nothing stored, the map still works
 *   exhaust     maps, sets, snapshots (whose first writes copy pages) and
 *               get_many calls in a loop until the memory is used up
 *               (headroom 256 MiB), then one get_many of MC_MAX_BATCH
 *               keys: every call returns MC_OK or MC_ERR_OUT_OF_MEMORY,
 *               some return the latter; then everything is freed and a
 *               new map, sets, gets and a snapshot all work again under
 *               the same limit
 *
 * A child that dies (SIGABRT from an allocation failure, say) fails the
 * run; --report prints the same lines and exits 0.
 */
#define _GNU_SOURCE
#include <mapcore.h>

#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#define MIB (1024ul * 1024ul)

/* What a scenario reports to the parent. */
typedef struct {
    bool pass;
    char text[400];
} outcome;

/* The process's current address-space size (VmSize). */
static unsigned long vm_size(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long pages = 0;
    if (!f || fscanf(f, "%lu", &pages) != 1)
        pages = 0;
    if (f)
        fclose(f);
    return pages * (unsigned long)sysconf(_SC_PAGESIZE);
}

static void limit_to(unsigned long headroom) {
    struct rlimit r;
    r.rlim_cur = r.rlim_max = vm_size() + headroom;
    if (setrlimit(RLIMIT_AS, &r) != 0) {
        perror("setrlimit");
        _exit(3);
    }
}

static void get_many(outcome *o) {
    size_t n = MC_MAX_BATCH;
    mc_map m;
    if (mc_map_new(&m) != MC_OK) {
        snprintf(o->text, sizeof o->text, "setup: mc_map_new failed");
        return;
    }
    for (int i = 0; i < 1000; i++) {
        char k[16];
        int kl = snprintf(k, sizeof k, "k%d", i);
        mc_map_set(m, (const uint8_t *)k, (size_t)kl, (const uint8_t *)"v", 1, NULL);
    }
    /* n empty keys (none stored): 64 MiB of key lengths, 64 MiB of results. */
    uint32_t *klens = calloc(n, sizeof *klens);
    uint32_t *vlens = calloc(n, sizeof *vlens);
    static const uint8_t keys[1];
    if (!klens || !vlens) {
        snprintf(o->text, sizeof o->text, "setup: out of memory");
        return;
    }
    memset(klens, 0, n * sizeof *klens);
    memset(vlens, 0, n * sizeof *vlens);
    limit_to(192 * MIB);
    size_t used = 1;
    mc_status st = mc_map_get_many(m, n, keys, klens, NULL, 0, vlens, &used);
    bool absent = true;
    if (st == MC_OK)
        for (size_t i = 0; i < n; i++)
            absent &= vlens[i] == MC_ABSENT;
    o->pass = (st == MC_OK && absent && used == 0) || st == MC_ERR_OUT_OF_MEMORY;
    snprintf(o->text, sizeof o->text, "get_many of %zu keys under +192 MiB: %s%s", n, mc_status_name(st),
             st == MC_OK && !(absent && used == 0) ? " with wrong results" : "");
    mc_map_free(m);
}

static void reserve(outcome *o) {
    mc_map m;
    if (mc_map_new(&m) != MC_OK) {
        snprintf(o->text, sizeof o->text, "setup: mc_map_new failed");
        return;
    }
    limit_to(64 * MIB);
    mc_status st = mc_map_reserve(m, MC_MAX_CAPACITY);
    size_t len = 1;
    mc_status after = mc_map_set(m, (const uint8_t *)"k", 1, (const uint8_t *)"v", 1, NULL);
    mc_status lst = mc_map_len(m, &len);
    o->pass = (st == MC_ERR_OUT_OF_MEMORY || st == MC_ERR_TOO_LARGE) && after == MC_OK && lst == MC_OK && len == 1;
    snprintf(o->text, sizeof o->text, "reserve(MC_MAX_CAPACITY) under +64 MiB: %s; then set %s, len %s (%zu)",
             mc_status_name(st), mc_status_name(after), mc_status_name(lst), len);
    mc_map_free(m);
}

/* A value of 512 MiB (MC_MAX_VALUE_LEN is 1 GiB): the caller's buffer is
 * mapped before the limit (never written: reading it maps the zero page). */
static void big_value(outcome *o) {
    size_t vl = 512 * MIB;
    uint8_t *v = malloc(vl);
    mc_map m;
    if (!v || mc_map_new(&m) != MC_OK || mc_map_set(m, (const uint8_t *)"small", 5, (const uint8_t *)"v", 1, NULL) != MC_OK) {
        snprintf(o->text, sizeof o->text, "setup failed");
        return;
    }
    limit_to(64 * MIB);
    mc_status st = mc_map_set(m, (const uint8_t *)"big", 3, v, vl, NULL);
    size_t len = 0;
    bool present = true;
    mc_status lst = mc_map_len(m, &len);
    mc_status cst = mc_map_contains(m, (const uint8_t *)"big", 3, &present);
    mc_status after = mc_map_set(m, (const uint8_t *)"k", 1, (const uint8_t *)"v", 1, NULL);
    o->pass = st == MC_ERR_OUT_OF_MEMORY && lst == MC_OK && len == 1 && cst == MC_OK && !present && after == MC_OK;
    snprintf(o->text, sizeof o->text, "set of a 512 MiB value under +64 MiB: %s; then len %zu, \"big\" %s, set %s",
             mc_status_name(st), len, present ? "present" : "absent", mc_status_name(after));
    mc_map_free(m);
}

#define MAX_MAPS 20000
#define ENTRIES 1000

/* Counts one call's status: true if the loop must stop (an unexpected one). */
typedef struct {
    unsigned long ok, oom, other;
    mc_status first_other;
    const char *other_call;
} counts;

static bool count(counts *c, mc_status st, const char *call) {
    if (st == MC_OK) {
        c->ok++;
    } else if (st == MC_ERR_OUT_OF_MEMORY) {
        c->oom++;
    } else {
        if (!c->other++) {
            c->first_other = st;
            c->other_call = call;
        }
        return true;
    }
    return false;
}

static void exhaust(outcome *o) {
    mc_map *maps = calloc(MAX_MAPS, sizeof *maps);
    mc_snapshot *snaps = calloc(MAX_MAPS, sizeof *snaps);
    uint8_t *keys = malloc(ENTRIES * 16);
    uint32_t *klens = malloc(ENTRIES * sizeof *klens);
    uint32_t *vlens = malloc(ENTRIES * sizeof *vlens);
    uint8_t *vals = malloc(ENTRIES * 128);
    uint8_t val[100];
    /* For one get_many of MC_MAX_BATCH empty keys once memory is used up. */
    uint32_t *big_klens = calloc(MC_MAX_BATCH, sizeof *big_klens);
    uint32_t *big_vlens = calloc(MC_MAX_BATCH, sizeof *big_vlens);
    if (!maps || !snaps || !keys || !klens || !vlens || !vals || !big_klens || !big_vlens) {
        snprintf(o->text, sizeof o->text, "setup: out of memory");
        return;
    }
    memset(val, 'v', sizeof val);
    size_t off = 0;
    for (int i = 0; i < ENTRIES; i++) {
        klens[i] = (uint32_t)snprintf((char *)keys + off, 16, "key-%06d", i);
        off += klens[i];
    }
    limit_to(256 * MIB);
    counts c = {0};
    size_t nmaps = 0;
    unsigned long rounds = 0;
    /* Stop after 50 refusals in a row: memory is used up. */
    unsigned long refused_in_a_row = 0;
    while (nmaps < MAX_MAPS && refused_in_a_row < 50 && !c.other) {
        rounds++;
        mc_map m;
        mc_status st = mc_map_new(&m);
        if (count(&c, st, "mc_map_new"))
            break;
        if (st != MC_OK) {
            refused_in_a_row++;
            continue;
        }
        maps[nmaps++] = m;
        bool refused = false;
        size_t ko = 0;
        for (int i = 0; i < ENTRIES; i++) {
            st = mc_map_set(m, keys + ko, klens[i], val, sizeof val, NULL);
            ko += klens[i];
            if (count(&c, st, "mc_map_set"))
                break;
            refused |= st != MC_OK;
        }
        st = mc_map_get_many(m, ENTRIES, keys, klens, vals, ENTRIES * 128, vlens, &off);
        if (count(&c, st, "mc_map_get_many"))
            break;
        refused |= st != MC_OK;
        st = mc_snapshot_new(m, &snaps[nmaps - 1]);
        if (count(&c, st, "mc_snapshot_new"))
            break;
        refused |= st != MC_OK;
        /* Writes under the snapshot copy the pages they touch. */
        for (int i = 0; i < ENTRIES; i += 10) {
            /* Every key is 10 bytes ("key-%06d"). */
            st = mc_map_set(m, keys + (size_t)i * 10, klens[i], val, sizeof val / 2, NULL);
            if (count(&c, st, "mc_map_set (under a snapshot)"))
                break;
            refused |= st != MC_OK;
        }
        refused_in_a_row = refused ? refused_in_a_row + 1 : 0;
    }
    /* With memory used up (every map still alive): the biggest batch. */
    mc_status big = MC_OK;
    if (nmaps && !c.other) {
        size_t used = 0;
        big = mc_map_get_many(maps[0], MC_MAX_BATCH, keys, big_klens, NULL, 0, big_vlens, &used);
        count(&c, big, "mc_map_get_many(MC_MAX_BATCH)");
    }
    /* Everything freed, the library works again under the same limit. */
    bool freed = true;
    for (size_t i = 0; i < nmaps; i++) {
        if (snaps[i].id)
            freed &= mc_snapshot_free(snaps[i]) == MC_OK;
        freed &= mc_map_free(maps[i]) == MC_OK;
    }
    bool works = false;
    mc_map m;
    if (mc_map_new(&m) == MC_OK) {
        works = true;
        size_t ko = 0;
        for (int i = 0; i < ENTRIES; i++) {
            works &= mc_map_set(m, keys + ko, klens[i], val, sizeof val, NULL) == MC_OK;
            ko += klens[i];
        }
        works &= mc_map_get_many(m, ENTRIES, keys, klens, vals, ENTRIES * 128, vlens, &off) == MC_OK &&
                 off == ENTRIES * sizeof val;
        mc_snapshot s;
        works &= mc_snapshot_new(m, &s) == MC_OK && mc_snapshot_free(s) == MC_OK;
        works &= mc_map_free(m) == MC_OK;
    }
    o->pass = c.other == 0 && c.oom > 0 && freed && works;
    int len = snprintf(o->text, sizeof o->text,
                       "exhaust under +256 MiB: %lu rounds, %zu maps; %lu calls MC_OK, %lu MC_ERR_OUT_OF_MEMORY, "
                       "%lu other; then get_many of MC_MAX_BATCH keys: %s; all freed: %s; works afterwards: %s",
                       rounds, nmaps, c.ok, c.oom, c.other, mc_status_name(big), freed ? "yes" : "NO",
                       works ? "yes" : "NO");
    if (c.other)
        snprintf(o->text + len, sizeof o->text - (size_t)len, " (first other: %s from %s)",
                 mc_status_name(c.first_other), c.other_call);
}

static const struct {
    const char *name;
    void (*run)(outcome *);
} SCENARIOS[] = {{"get_many", get_many}, {"reserve", reserve}, {"big_value", big_value}, {"exhaust", exhaust}};

int main(int argc, char **argv) {
    bool report = argc > 1 && strcmp(argv[1], "--report") == 0;
    /* An abort's message from Rust, without a backtrace (it would need memory). */
    setenv("RUST_BACKTRACE", "0", 1);
    int failed = 0;
    for (size_t i = 0; i < sizeof SCENARIOS / sizeof SCENARIOS[0]; i++) {
        int fds[2];
        if (pipe(fds) != 0)
            return 3;
        FILE *err = tmpfile(); /* the child's stderr: an abort's message */
        if (!err)
            return 3;
        fflush(stdout);
        fflush(stderr);
        pid_t pid = fork();
        if (pid == 0) {
            close(fds[0]);
            dup2(fileno(err), 2);
            alarm(120);
            outcome o = {0};
            SCENARIOS[i].run(&o);
            ssize_t w = write(fds[1], &o, sizeof o);
            _exit(w == (ssize_t)sizeof o ? 0 : 4);
        }
        close(fds[1]);
        int status = 0;
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
        }
        outcome o = {0};
        ssize_t got = read(fds[0], &o, sizeof o);
        close(fds[0]);
        if (WIFSIGNALED(status)) {
            char line[200] = "";
            rewind(err);
            if (!fgets(line, sizeof line, err))
                line[0] = 0;
            line[strcspn(line, "\n")] = 0;
            snprintf(o.text, sizeof o.text, "died of signal %d (%s)%s%s", WTERMSIG(status),
                     strsignal(WTERMSIG(status)), line[0] ? ": " : "", line);
            o.pass = false;
        } else if (got != (ssize_t)sizeof o) {
            snprintf(o.text, sizeof o.text, "exited %d without a result", WEXITSTATUS(status));
            o.pass = false;
        }
        fclose(err);
        printf("%-9s %s: %s\n", SCENARIOS[i].name, o.pass ? "pass" : "FAIL", o.text);
        failed += !o.pass;
    }
    if (failed && !report) {
        fprintf(stderr, "FAILED: %d of the address-space-limit scenarios\n", failed);
        return 1;
    }
    if (!failed)
        printf("== address-space limit: no abort, out of memory reported as a status, all freed memory reusable ==\n");
    return 0;
}
