// Single-key gets from one thread, then from two threads at once, on a
// 1M-entry map: how reads scale when two cores share the shards. Run:
// make -C bench two-readers [TWO_READERS_BATCH=64] (bench/README.md, "What
// the profiles showed"). With a batch size, the readers use mc_map_get_many.
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <time.h>
#include "mapcore.h"
static uint64_t mix(uint64_t z){z=(z^(z>>30))*0xBF58476D1CE4E5B9ULL;z=(z^(z>>27))*0x94D049BB133111EBULL;return z^(z>>31);}
static double now(){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec*1e9+t.tv_nsec;}
#define N 1000000
#define Q 1000000
static mc_map m; static uint8_t *q;
static int batch; // 0: one mc_map_get per key; else mc_map_get_many of `batch` keys

// Each reader gets Q keys starting at its own offset; any failed get aborts.
static void *reader(void *arg) {
    long off = (long)arg;
    uint8_t v[256 * 32];
    uint32_t kl[256], vl[256];
    size_t n;
    int bad = 0;
    if (batch == 0) {
        for (int i = 0; i < Q; i++) bad += mc_map_get(m, q + 16 * ((i + off) % Q), 16, v, 32, &n) != MC_OK;
    } else {
        for (int j = 0; j < batch; j++) kl[j] = 16;
        for (int i = 0; i + batch <= Q; i += batch)
            bad += mc_map_get_many(m, batch, q + 16 * ((i + off) % (Q - batch)), kl, v, sizeof v, vl, &n) != MC_OK;
    }
    if (bad) abort();
    return 0;
}
int main(int argc, char **argv) {
  batch = argc > 1 ? atoi(argv[1]) : 0;
  if (batch < 0 || batch > 256) return 2;
  mc_map_new(&m);
  uint8_t *keys=malloc(N*16); uint8_t v[32]={0};
  for(uint64_t i=0;i<N;i++){uint64_t a=mix(2*i),b=mix(2*i+1);memcpy(keys+16*i,&a,8);memcpy(keys+16*i+8,&b,8);bool ins; mc_map_set(m,keys+16*i,16,v,32,&ins);}
  q=malloc(Q*16); for(int i=0;i<Q;i++){uint64_t j=mix(777+i)%N; memcpy(q+16*i,keys+16*j,16);}
  for(int r=0;r<5;r++){
    double t=now(); reader((void*)0); double one=(now()-t)/Q;
    pthread_t a,b; t=now(); pthread_create(&a,0,reader,(void*)0); pthread_create(&b,0,reader,(void*)(Q/2)); pthread_join(a,0); pthread_join(b,0); double two=(now()-t)/(2.0*Q);
    printf("1T %.0f  2T %.0f  scaling %.2f\n", one, two, one/two);
  }
}
