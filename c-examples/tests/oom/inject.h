/*
 * inject.h - the control interface of the allocation-failure injector
 * (inject.c, preloaded as bin/oom/liboominject.so). See inject.c for what
 * counts as an allocation and which thread is affected.
 *
 * A test program includes this header and calls oom_load() once: it looks
 * the control functions up with dlsym (they exist only when the injector is
 * preloaded) and returns 0 if they are missing.
 */
#ifndef MAPCORE_OOM_INJECT_H
#define MAPCORE_OOM_INJECT_H

#include <stdint.h>

/* oom_arm modes. */
#define OOM_COUNT 0 /* count only, fail nothing */
#define OOM_ONCE 1  /* fail the n-th allocation (0-based) only */
#define OOM_FROM 2  /* fail the n-th and every later allocation (sustained) */

/* A record written to the trace fd for each injected failure. */
#define OOM_TRACE_MAGIC 0x4f4f4d54u /* "OOMT" */
#define OOM_TRACE_DEPTH 48
struct oom_trace_rec {
    uint32_t magic;
    uint32_t depth;
    uint64_t index;
    uint64_t frames[OOM_TRACE_DEPTH];
};

#ifdef OOM_INJECTOR_PROGRAM
#include <dlfcn.h>

/* The injector's functions, filled by oom_load(). */
static void (*oom_arm)(int mode, unsigned long n);
static void (*oom_disarm)(void);
static unsigned long (*oom_seen)(void);
static unsigned long (*oom_failed)(void);
static unsigned long (*oom_seen_mmap)(void);
static void (*oom_trace_fd)(int fd);

static inline int oom_load(void) {
    *(void **)&oom_arm = dlsym(RTLD_DEFAULT, "oom_arm");
    *(void **)&oom_disarm = dlsym(RTLD_DEFAULT, "oom_disarm");
    *(void **)&oom_seen = dlsym(RTLD_DEFAULT, "oom_seen");
    *(void **)&oom_failed = dlsym(RTLD_DEFAULT, "oom_failed");
    *(void **)&oom_seen_mmap = dlsym(RTLD_DEFAULT, "oom_seen_mmap");
    *(void **)&oom_trace_fd = dlsym(RTLD_DEFAULT, "oom_trace_fd");
    return oom_arm && oom_disarm && oom_seen && oom_failed && oom_seen_mmap && oom_trace_fd;
}
#else
/* Arms the injector on the calling thread (resets both counts). */
void oom_arm(int mode, unsigned long n);
/* Disarms it; the counts stay readable. */
void oom_disarm(void);
/* Allocations the arming thread made while armed. */
unsigned long oom_seen(void);
/* Of those, how many were made to fail. */
unsigned long oom_failed(void);
/* Of those, how many were anonymous mmaps. */
unsigned long oom_seen_mmap(void);
/* Writes a struct oom_trace_rec to fd for each injected failure (-1: off). */
void oom_trace_fd(int fd);
#endif

#endif /* MAPCORE_OOM_INJECT_H */
