/* A misuse that memcheck must catch inside the library's own memory pool.
 *
 * Big maps keep their records in 256 KiB blocks carved from 2 MiB regions
 * the library maps itself, not from malloc. This program keeps the value
 * pointer mc_map_get_with lends its callback past the callback (the
 * documented lifetime), frees the map, then reads through the pointer. The
 * block is freed but its region stays mapped (a second map holds the next
 * block), so natively the read returns stale bytes without a fault: only
 * the library's valgrind client requests can make memcheck report it.
 *
 * `make valgrind` runs it under memcheck and passes only if memcheck
 * reports the invalid read in the freed block, and one in a block of the
 * same region that was never handed out. Outside valgrind it does
 * nothing: the read it exists to make is undefined behaviour. */
#include <valgrind/valgrind.h>

#include "check.h"

/* One record of exactly 256 KiB: the long record header (9 bytes), the
 * key, the value. A record that big gets a block of its own. */
enum { HEADER = 9, KEY_LEN = 3, VAL_LEN = (256 << 10) - HEADER - KEY_LEN };

static void keep_pointer(void *user, const uint8_t *val, size_t len) {
    CHECK(len == VAL_LEN);
    *(const uint8_t **)user = val; /* the misuse: kept past the callback */
}

static mc_map map_with_big_value(uint8_t fill) {
    mc_map m;
    CHECK_OK(mc_map_new(&m));
    uint8_t *val = malloc(VAL_LEN);
    CHECK(val != NULL);
    memset(val, fill, VAL_LEN);
    CHECK_OK(mc_map_set(m, (const uint8_t *)"big", KEY_LEN, val, VAL_LEN, NULL));
    free(val);
    return m;
}

int main(void) {
    if (!RUNNING_ON_VALGRIND) {
        printf("memcheck_pool: only meaningful under valgrind (make valgrind); skipped\n");
        return 0;
    }
    mc_map doomed = map_with_big_value(0xAB);
    mc_map neighbour = map_with_big_value(0xCD); /* keeps the region mapped */
    const uint8_t *kept = NULL;
    CHECK_OK(mc_map_get_with(doomed, (const uint8_t *)"big", KEY_LEN, keep_pointer, &kept));
    CHECK(kept != NULL && kept[0] == 0xAB);
    /* The region's first two blocks hold the two records (lowest free
     * block first); its third was never handed out, and memcheck must
     * report a read of it too (the region starts inaccessible). */
    const uint8_t *unused_block = kept - HEADER - KEY_LEN + 2 * (256 << 10);
    volatile uint8_t never = unused_block[100];
    CHECK_OK(mc_map_free(doomed));
    /* Memcheck must report this read: the block was freed with the map. */
    volatile uint8_t stale = kept[VAL_LEN / 2];
    printf("memcheck_pool: read %#x in a block never handed out, %#x through a pointer into a freed block\n",
           (unsigned)never, (unsigned)stale);
    CHECK_OK(mc_map_free(neighbour));
    return 0;
}
