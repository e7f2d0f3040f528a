/*
 * inject.c - an allocation-failure injector, loaded with LD_PRELOAD
 * (bin/oom/liboominject.so) in front of libc.
 *
 * It replaces malloc, calloc, realloc, memalign, posix_memalign,
 * aligned_alloc, valloc, pvalloc and mmap/mmap64 (anonymous mappings only:
 * the library maps its own 2 MiB regions). Each one forwards to glibc
 * (__libc_malloc & co., and the mmap system call), so no dlsym is needed and
 * nothing here can recurse; free is glibc's own. The test program drives it
 * through the functions declared in inject.h, which it looks up with dlsym:
 *
 *   oom_arm(OOM_COUNT, 0)   count the allocations the calling thread makes
 *   oom_arm(OOM_ONCE, n)    fail the n-th of them (0-based), only that one
 *   oom_arm(OOM_FROM, n)    fail the n-th and every later one (sustained)
 *   oom_disarm()            stop; oom_seen()/oom_failed() keep the counts
 *
 * Only the thread that armed the injector is affected (a thread-local flag):
 * allocations of other threads, and of the arming thread outside the armed
 * window (stdio, thread creation, the test's own model), always succeed.
 * Between arm and disarm the test makes one library call, so what is counted
 * is what that call allocates, glibc's allocations on its behalf included
 * (pthread_setspecific's key pages, say).
 *
 * oom_trace_fd(fd) makes every injected failure write a record to fd: the
 * failure's index and the return addresses of its stack (glibc backtrace),
 * so that a process that aborts afterwards leaves behind where the failure
 * it did not survive came from (oom_sweep --report resolves them).
 *
 * Thread-locals use the initial-exec model: a preloaded object gets static
 * TLS, and its accesses then never call __tls_get_addr (which may allocate).
 */
#define _GNU_SOURCE
#include "inject.h"

#include <errno.h>
#include <execinfo.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);
extern void *__libc_valloc(size_t);

#define TLS __thread __attribute__((tls_model("initial-exec")))

/* Armed on this thread (the only one whose allocations count). */
static TLS int armed_here;
/* Inside the injector's own bookkeeping (backtrace may allocate). */
static TLS int in_hook;

/* The armed window's settings and counts (one arming thread at a time). */
static int mode = OOM_COUNT;
static unsigned long fail_at;
static unsigned long seen;
static unsigned long failed;
static unsigned long seen_maps; /* of `seen`, anonymous mmaps */
static int trace_fd = -1;

/* Writes one trace record: "F <index>" then the stack's addresses. */
static void trace_failure(unsigned long index) {
    void *frames[48];
    in_hook = 1;
    int n = backtrace(frames, 48);
    in_hook = 0;
    struct oom_trace_rec rec;
    memset(&rec, 0, sizeof rec);
    rec.magic = OOM_TRACE_MAGIC;
    rec.index = index;
    rec.depth = (uint32_t)n;
    for (int i = 0; i < n; i++)
        rec.frames[i] = (uintptr_t)frames[i];
    ssize_t w = write(trace_fd, &rec, sizeof rec);
    (void)w;
}

/* Counts an allocation of the arming thread; true if it must fail. */
static int should_fail(void) {
    if (!armed_here || in_hook)
        return 0;
    unsigned long i = seen++;
    int fail = (mode == OOM_ONCE && i == fail_at) || (mode == OOM_FROM && i >= fail_at);
    if (fail) {
        failed++;
        if (trace_fd >= 0)
            trace_failure(i);
    }
    return fail;
}

void oom_arm(int m, unsigned long n) {
    mode = m;
    fail_at = n;
    seen = 0;
    failed = 0;
    seen_maps = 0;
    armed_here = 1;
}

void oom_disarm(void) { armed_here = 0; }

unsigned long oom_seen(void) { return seen; }

unsigned long oom_failed(void) { return failed; }

unsigned long oom_seen_mmap(void) { return seen_maps; }

void oom_trace_fd(int fd) {
    /* backtrace() loads libgcc_s (allocating) on its first call: do it now. */
    void *warm[2];
    in_hook = 1;
    backtrace(warm, 2);
    in_hook = 0;
    trace_fd = fd;
}

void *malloc(size_t size) {
    if (should_fail()) {
        errno = ENOMEM;
        return NULL;
    }
    return __libc_malloc(size);
}

void *calloc(size_t n, size_t size) {
    if (should_fail()) {
        errno = ENOMEM;
        return NULL;
    }
    return __libc_calloc(n, size);
}

void *realloc(void *p, size_t size) {
    /* realloc(p, 0) frees: not an allocation that can fail. */
    if ((p == NULL || size != 0) && should_fail()) {
        errno = ENOMEM;
        return NULL;
    }
    return __libc_realloc(p, size);
}

void *memalign(size_t align, size_t size) {
    if (should_fail()) {
        errno = ENOMEM;
        return NULL;
    }
    return __libc_memalign(align, size);
}

void *aligned_alloc(size_t align, size_t size) { return memalign(align, size); }

int posix_memalign(void **out, size_t align, size_t size) {
    if (align < sizeof(void *) || (align & (align - 1)) != 0)
        return EINVAL;
    if (should_fail())
        return ENOMEM;
    void *p = __libc_memalign(align, size);
    if (p == NULL)
        return ENOMEM;
    *out = p;
    return 0;
}

void *valloc(size_t size) {
    if (should_fail()) {
        errno = ENOMEM;
        return NULL;
    }
    return __libc_valloc(size);
}

void *pvalloc(size_t size) {
    long page = sysconf(_SC_PAGESIZE);
    size_t rounded = (size + (size_t)page - 1) & ~((size_t)page - 1);
    return valloc(rounded ? rounded : (size_t)page);
}

/* Anonymous mappings count as allocations; file mappings pass through. */
void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off) {
    if ((flags & MAP_ANONYMOUS) && armed_here && !in_hook)
        seen_maps++;
    if ((flags & MAP_ANONYMOUS) && should_fail()) {
        errno = ENOMEM;
        return MAP_FAILED;
    }
    long r = syscall(SYS_mmap, addr, len, prot, flags, fd, off);
    return (void *)r; /* MAP_FAILED with errno set on failure */
}

void *mmap64(void *addr, size_t len, int prot, int flags, int fd, off_t off)
    __attribute__((alias("mmap")));
