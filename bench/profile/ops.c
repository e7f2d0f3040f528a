/* Instruction counts per mapcore operation, for `make -C bench profile`
 * (valgrind --tool=callgrind). Usage: ops MODE [N] [OPS]
 * MODE: 0 build only, 1 get hit, 2 get miss, 3 full iteration (next-batch),
 * 4 loop overhead only, 5 get_many (batches of 64), 6 overwrite (set),
 * 7 / 8 full iteration with one mc_iter_next call per entry (strict / cursor).
 * Each mode builds the same map of N entries first; the per-operation cost
 * is (Ir(mode) - Ir(baseline)) / OPS, which `make profile` prints. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mapcore.h"
#include "../c/data.h"

int main(int argc, char **argv) {
    int mode = argc > 1 ? atoi(argv[1]) : 0;
    size_t n = argc > 2 ? strtoull(argv[2], NULL, 10) : 2000;
    size_t ops = argc > 3 ? strtoull(argv[3], NULL, 10) : 100000;
    /* A fixed seed: with a random one the table layout, and so the
     * instruction counts, move by a few percent from run to run. */
    mc_options o = { 0 };
    o.flags = MC_OPT_FIXED_SEED;
    o.seed = 42;
    mc_map m;
    if (mc_map_new_with(&o, &m) != MC_OK) return 1;
    uint8_t k[16], v[32], out[64];
    size_t len;
    for (size_t i = 0; i < n; i++) {
        gen_key(i, k);
        gen_value(i, v);
        mc_map_set(m, k, 16, v, 32, NULL);
    }
    unsigned long acc = 0;
    switch (mode) {
    case 1:
        for (size_t r = 0; r < ops; r++) { gen_key(r % n, k); acc += mc_map_get(m, k, 16, out, 64, &len); }
        break;
    case 2:
        for (size_t r = 0; r < ops; r++) { gen_key(n + r % n, k); acc += mc_map_get(m, k, 16, out, 64, &len); }
        break;
    case 3: {
        static uint8_t buf[65536];
        for (size_t done = 0; done < ops;) {
            mc_iter it;
            size_t c, u;
            mc_iter_init(m, MC_MODE_STRICT, &it);
            while (mc_iter_next_batch(m, &it, buf, sizeof buf, 1024, &c, &u) == MC_OK) done += c;
        }
        break;
    }
    case 4:
        for (size_t r = 0; r < ops; r++) { gen_key(r % n, k); acc += k[0]; }
        break;
    case 5: {
        static uint8_t keys[64 * 16], vals[64 * 64];
        static uint32_t klens[64], vlens[64];
        size_t used;
        for (int i = 0; i < 64; i++) klens[i] = 16;
        for (size_t r = 0; r < ops; r += 64) {
            for (int i = 0; i < 64; i++) gen_key((r + i) % n, keys + 16 * i);
            acc += mc_map_get_many(m, 64, keys, klens, vals, sizeof vals, vlens, &used);
        }
        break;
    }
    case 6:
        for (size_t r = 0; r < ops; r++) { gen_key(r % n, k); acc += mc_map_set(m, k, 16, v, 32, NULL); }
        break;
    case 7:
    case 8: {
        /* One mc_iter_next call per entry: strict (7) or cursor (8) tokens. */
        uint8_t kb[64];
        size_t kl, vl;
        for (size_t done = 0; done < ops;) {
            mc_iter it;
            mc_iter_init(m, mode == 7 ? MC_MODE_STRICT : MC_MODE_CURSOR, &it);
            while (done < ops && mc_iter_next(m, &it, kb, sizeof kb, &kl, out, sizeof out, &vl) == MC_OK) done++;
        }
        break;
    }
    }
    printf("%lu\n", acc);
    mc_map_free(m);
    return 0;
}
