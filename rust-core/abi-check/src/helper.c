/* C-side helpers for the ABI check: what a C compiler believes about the
 * header's types, and C callbacks handed to the library. */
#include <string.h>
#include "mapcore.h"

size_t abi_sizeof_iter(void) { return sizeof(mc_iter); }
size_t abi_sizeof_options(void) { return sizeof(mc_options); }
size_t abi_sizeof_map(void) { return sizeof(mc_map); }
size_t abi_offsetof_capacity(void) { return offsetof(mc_options, capacity); }

/* Keeps entries whose value starts with 'k'. */
int abi_keep_k(void *user, const uint8_t *key, size_t key_len, const uint8_t *val, size_t val_len) {
    (void)key; (void)key_len;
    size_t *calls = user;
    (*calls)++;
    return val_len > 0 && val[0] == 'k';
}

/* Copies the value into user (a 64-byte buffer) and NUL-terminates it. */
void abi_copy_value(void *user, const uint8_t *val, size_t val_len) {
    char *out = user;
    size_t n = val_len < 63 ? val_len : 63;
    memcpy(out, val, n);
    out[n] = 0;
}
