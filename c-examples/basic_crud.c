/*
 * basic_crud.c - the everyday operations of a mapcore map, one by one.
 *
 *   new, set (with the "inserted" flag), get (too-small buffer, then the right
 *   size), get_with (read the value in place through a callback), contains,
 *   delete, len, clear, the last-error message, free.
 *
 * Every call's status is checked against what include/mapcore.h documents;
 * the program exits 1 on the first difference, so it is a test as well.
 */
#define _POSIX_C_SOURCE 200809L
#include <mapcore.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

/* Callback for mc_map_get_with: runs while the value is guaranteed valid. */
struct peek {
    int calls;
    size_t len;
    char first;
};

static void peek_value(void *user, const uint8_t *val, size_t val_len) {
    struct peek *p = user;
    p->calls++;
    p->len = val_len;
    p->first = val_len ? (char)val[0] : 0;
    printf("  get_with: the callback sees \"%.*s\" in place (%zu bytes, no copy)\n",
           (int)val_len, (const char *)val, val_len);
}

/* Prints the detail message of this thread's last failure. */
static void print_last_error(void) {
    size_t need = 0;
    /* Ask for the length first (NULL buffer, capacity 0), like snprintf. */
    CHECK_ST(mc_last_error(NULL, 0, &need), MC_ERR_BUFFER_TOO_SMALL);
    char *msg = malloc(need + 1);
    CHECK(msg != NULL);
    size_t len = 0;
    CHECK_OK(mc_last_error(msg, need + 1, &len));
    CHECK(len == need && strlen(msg) == len);
    printf("  mc_last_error: \"%s\"\n", msg);
    free(msg);
}

int main(void) {
    printf("basic_crud: the everyday operations\n");
    /* The header and the library must agree on the ABI. */
    CHECK(mc_abi_version() == MC_ABI_VERSION);

    mc_map m;
    CHECK_OK(mc_map_new(&m));

    /* set: `inserted` tells a new key (true) from an overwrite (false). */
    bool inserted = false;
    CHECK_OK(mc_map_set(m, U8("apple"), 5, U8("red"), 3, &inserted));
    CHECK(inserted);
    printf("  set apple=red      -> inserted=%s\n", inserted ? "true" : "false");
    CHECK_OK(mc_map_set(m, U8("apple"), 5, U8("green"), 5, &inserted));
    CHECK(!inserted);
    printf("  set apple=green    -> inserted=%s (overwrite)\n", inserted ? "true" : "false");
    CHECK_OK(mc_map_set(m, U8("kiwi"), 4, U8("brown outside, green inside"), 27, NULL));
    /* The empty key is a valid key (NULL is fine when the length is 0). */
    CHECK_OK(mc_map_set(m, NULL, 0, U8("the empty key"), 13, &inserted));
    CHECK(inserted);
    printf("  set \"\"=\"the empty key\" -> inserted=true (the empty key is a valid key)\n");

    /* get into a buffer that is too small: only the required length is
     * written, the buffer is left untouched (snprintf style). */
    char small[3] = {'#', '#', '#'};
    size_t len = 0;
    CHECK_ST(mc_map_get(m, U8("kiwi"), 4, (uint8_t *)small, sizeof small, &len),
             MC_ERR_BUFFER_TOO_SMALL);
    CHECK(len == 27);
    CHECK(memcmp(small, "###", 3) == 0);
    printf("  get kiwi into 3 bytes -> %s, needs %zu bytes, buffer untouched\n",
           mc_status_name(MC_ERR_BUFFER_TOO_SMALL), len);
    /* ...then with the right size. */
    char *val = malloc(len);
    CHECK(val != NULL);
    size_t got = 0;
    CHECK_OK(mc_map_get(m, U8("kiwi"), 4, (uint8_t *)val, len, &got));
    CHECK(got == 27 && memcmp(val, "brown outside, green inside", 27) == 0);
    printf("  get kiwi into %zu bytes -> \"%.*s\"\n", len, (int)got, val);
    free(val);

    /* get_with: read in place, no copy; the bytes are valid only inside the
     * callback (which must not call back into this map). */
    struct peek p = {0};
    CHECK_OK(mc_map_get_with(m, U8("apple"), 5, peek_value, &p));
    CHECK(p.calls == 1 && p.len == 5 && p.first == 'g');

    /* contains */
    bool present = false;
    CHECK_OK(mc_map_contains(m, U8("apple"), 5, &present));
    CHECK(present);
    CHECK_OK(mc_map_contains(m, U8("pear"), 4, &present));
    CHECK(!present);
    printf("  contains apple -> true, contains pear -> false\n");

    size_t n = 0;
    CHECK_OK(mc_map_len(m, &n));
    CHECK(n == 3);
    printf("  len -> %zu\n", n);

    /* delete: the second time there is nothing to delete. */
    CHECK_OK(mc_map_delete(m, U8("apple"), 5));
    CHECK_ST(mc_map_delete(m, U8("apple"), 5), MC_ERR_NOT_FOUND);
    printf("  delete apple -> MC_OK; again -> MC_ERR_NOT_FOUND\n");

    /* A failed call leaves a detail message for this thread; out-parameters
     * are not written on failure. */
    len = 12345;
    CHECK_ST(mc_map_get(m, U8("apple"), 5, NULL, 0, &len), MC_ERR_NOT_FOUND);
    CHECK(len == 12345);
    printf("  get apple -> %s (%s)\n", mc_status_name(MC_ERR_NOT_FOUND),
           mc_status_describe(MC_ERR_NOT_FOUND));
    print_last_error();

    CHECK_OK(mc_map_len(m, &n));
    CHECK(n == 2);
    CHECK_OK(mc_map_clear(m));
    CHECK_OK(mc_map_len(m, &n));
    CHECK(n == 0);
    printf("  clear -> len 0\n");

    /* free: afterwards the handle is just a stale number; every call on it,
     * including a second free, is MC_ERR_BAD_HANDLE, never a crash. */
    CHECK_OK(mc_map_free(m));
    CHECK_ST(mc_map_len(m, &n), MC_ERR_BAD_HANDLE);
    CHECK_ST(mc_map_free(m), MC_ERR_BAD_HANDLE);
    printf("  free -> MC_OK; use after free and double free -> MC_ERR_BAD_HANDLE\n");

    printf("basic_crud: OK (%lu checks)\n", checks_made());
    return 0;
}
