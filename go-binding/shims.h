// C shims of the Go binding: see cgo.go. Included by every cgo file of the
// package; the functions are static, so each file gets its own copy.
#ifndef MAPCORE_GO_SHIMS_H
#define MAPCORE_GO_SHIMS_H

#include <stdlib.h>
#include <string.h>
#include "mapcore.h"

enum { GM_MAP = 0, GM_SNAP = 1 };

// Result of every shim, returned by value: the status, the call's output
// integers (which live in the shim's own frame, so the Go caller passes no
// pointer to its stack for them), and the detail message of a failure.
//
// detail is NULL unless the call failed with a status the caller reports as
// an error: then it is a malloc'd copy of mc_last_error's text, taken within
// this same C call (the message is thread-local and the goroutine may be on
// another thread at its next cgo call). The Go side copies and frees it.
typedef struct {
	int32_t st;
	uint64_t n;    // main output: length, count, flag, handle id
	uint64_t used; // bytes written (batch calls)
	char *detail;
} gm_res;

// gm_detail returns a malloc'd copy of the calling thread's last detail
// message, or NULL if it is empty or memory is short.
static inline char *gm_detail(void) {
	size_t need = 0;
	char small[256];
	int32_t st = mc_last_error(small, sizeof small, &need);
	if (st == MC_OK) {
		if (need == 0) return NULL;
		char *p = malloc(need + 1);
		if (p != NULL) memcpy(p, small, need + 1);
		return p;
	}
	if (st != MC_ERR_BUFFER_TOO_SMALL) return NULL;
	char *p = malloc(need + 1);
	if (p != NULL && mc_last_error(p, need + 1, &need) != MC_OK) {
		free(p);
		p = NULL;
	}
	return p;
}

// gm_fin records st in r and fetches the detail of a failure. DONE is not a
// failure and BUFFER_TOO_SMALL is handled by the binding (it grows the
// buffer): neither needs a detail. quiet_nf: NOT_FOUND is an expected
// outcome of this call (Get, Delete), reported without a detail.
static inline gm_res gm_fin(gm_res r, int32_t st, int quiet_nf) {
	r.st = st;
	if (st != MC_OK && st != MC_DONE && st != MC_ERR_BUFFER_TOO_SMALL && !(quiet_nf && st == MC_ERR_NOT_FOUND)) {
		r.detail = gm_detail();
	}
	return r;
}

static inline gm_res gm_new(uint32_t flags, uint64_t seed, uint64_t capacity) {
	gm_res r = {0};
	mc_options o;
	memset(&o, 0, sizeof o);
	o.flags = flags;
	o.seed = seed;
	o.capacity = capacity;
	mc_map m = {0};
	int32_t st = mc_map_new_with(&o, &m);
	if (st == MC_OK) r.n = m.id;
	return gm_fin(r, st, 0);
}

// *changes: the map's counter of every change; *structural: n counters of
// structural changes, used words apart (mc_map_counters).
static inline gm_res gm_counters(uint64_t id, const uint64_t **changes, const uint64_t **structural) {
	gm_res r = {0};
	size_t count = 0, stride = 0;
	int32_t st = mc_map_counters((mc_map){id}, changes, structural, &count, &stride);
	r.n = count;
	r.used = stride;
	return gm_fin(r, st, 0);
}

static inline gm_res gm_watch(uint64_t id, uint32_t on) {
	gm_res r = {0};
	return gm_fin(r, mc_map_watch((mc_map){id}, on), 0);
}

static inline gm_res gm_free(uint64_t id) {
	gm_res r = {0};
	return gm_fin(r, mc_map_free((mc_map){id}), 0);
}

static inline gm_res gm_set(uint64_t id, const uint8_t *k, size_t kl, const uint8_t *v, size_t vl) {
	gm_res r = {0};
	bool ins = false;
	int32_t st = mc_map_set((mc_map){id}, k, kl, v, vl, &ins);
	r.n = ins;
	return gm_fin(r, st, 0);
}

// n: the value's length (on BUFFER_TOO_SMALL, the room needed).
static inline gm_res gm_get(int kind, uint64_t id, const uint8_t *k, size_t kl, uint8_t *buf, size_t cap) {
	gm_res r = {0};
	size_t n = 0;
	int32_t st = kind == GM_SNAP ? mc_snapshot_get((mc_snapshot){id}, k, kl, buf, cap, &n)
	                             : mc_map_get((mc_map){id}, k, kl, buf, cap, &n);
	r.n = n;
	return gm_fin(r, st, 1);
}

static inline gm_res gm_contains(int kind, uint64_t id, const uint8_t *k, size_t kl) {
	gm_res r = {0};
	bool out = false;
	int32_t st = kind == GM_SNAP ? mc_snapshot_contains((mc_snapshot){id}, k, kl, &out)
	                             : mc_map_contains((mc_map){id}, k, kl, &out);
	r.n = out;
	return gm_fin(r, st, 0);
}

static inline gm_res gm_delete(uint64_t id, const uint8_t *k, size_t kl) {
	gm_res r = {0};
	return gm_fin(r, mc_map_delete((mc_map){id}, k, kl), 1);
}

static inline gm_res gm_len(int kind, uint64_t id) {
	gm_res r = {0};
	size_t n = 0;
	int32_t st = kind == GM_SNAP ? mc_snapshot_len((mc_snapshot){id}, &n) : mc_map_len((mc_map){id}, &n);
	r.n = n;
	return gm_fin(r, st, 0);
}

static inline gm_res gm_clear(uint64_t id) {
	gm_res r = {0};
	return gm_fin(r, mc_map_clear((mc_map){id}), 0);
}

static inline gm_res gm_reserve(uint64_t id, size_t n) {
	gm_res r = {0};
	return gm_fin(r, mc_map_reserve((mc_map){id}, n), 0);
}

static inline gm_res gm_shrink(uint64_t id) {
	gm_res r = {0};
	return gm_fin(r, mc_map_shrink_to_fit((mc_map){id}), 0);
}

// used: bytes of vals written (on BUFFER_TOO_SMALL, the room needed).
static inline gm_res gm_get_many(uint64_t id, size_t n, const uint8_t *keys, const uint32_t *klens,
                                 uint8_t *vals, size_t cap, uint32_t *vlens) {
	gm_res r = {0};
	size_t used = 0;
	int32_t st = mc_map_get_many((mc_map){id}, n, keys, klens, vals, cap, vlens, &used);
	r.used = used;
	return gm_fin(r, st, 0);
}

// n: how many keys were new.
static inline gm_res gm_set_many(uint64_t id, size_t n, const uint8_t *keys, const uint32_t *klens,
                                 const uint8_t *vals, const uint32_t *vlens) {
	gm_res r = {0};
	size_t ins = 0;
	int32_t st = mc_map_set_many((mc_map){id}, n, keys, klens, vals, vlens, &ins);
	r.n = ins;
	return gm_fin(r, st, 0);
}

// n: how many keys were present.
static inline gm_res gm_delete_many(uint64_t id, size_t n, const uint8_t *keys, const uint32_t *klens) {
	gm_res r = {0};
	size_t rem = 0;
	int32_t st = mc_map_delete_many((mc_map){id}, n, keys, klens, &rem);
	r.n = rem;
	return gm_fin(r, st, 0);
}

// Implemented in Go (retain.go, //export mapcoreRetainPred).
extern int mapcoreRetainPred(uintptr_t h, uint8_t *k, size_t kl, uint8_t *v, size_t vl);

static inline int gm_pred_tramp(void *user, const uint8_t *k, size_t kl, const uint8_t *v, size_t vl) {
	return mapcoreRetainPred((uintptr_t)user, (uint8_t *)k, kl, (uint8_t *)v, vl);
}

// n: how many entries were deleted. The predicate runs Go code (through
// cgo callbacks) inside this call; the detail is read after it returns,
// still on the same thread.
static inline gm_res gm_retain(uint64_t id, uintptr_t h) {
	gm_res r = {0};
	size_t rem = 0;
	int32_t st = mc_map_retain((mc_map){id}, gm_pred_tramp, (void *)h, &rem);
	r.n = rem;
	return gm_fin(r, st, 0);
}

static inline gm_res gm_iter_init(int kind, uint64_t id, uint32_t mode, mc_iter *out) {
	gm_res r = {0};
	int32_t st = kind == GM_SNAP ? mc_snapshot_iter_init((mc_snapshot){id}, mode, out)
	                             : mc_iter_init((mc_map){id}, mode, out);
	return gm_fin(r, st, 0);
}

// n: entries in the batch; used: bytes of buf written (on
// BUFFER_TOO_SMALL, the room the next entry needs).
static inline gm_res gm_next_batch(int kind, uint64_t id, mc_iter *it, uint8_t *buf, size_t cap, size_t max) {
	gm_res r = {0};
	size_t count = 0, used = 0;
	int32_t st = kind == GM_SNAP ? mc_snapshot_iter_next_batch((mc_snapshot){id}, it, buf, cap, max, &count, &used)
	                             : mc_iter_next_batch((mc_map){id}, it, buf, cap, max, &count, &used);
	r.n = count;
	r.used = used;
	return gm_fin(r, st, 0);
}

static inline gm_res gm_iter_remove(uint64_t id, mc_iter *it) {
	gm_res r = {0};
	return gm_fin(r, mc_iter_remove((mc_map){id}, it), 0);
}

static inline gm_res gm_iter_seek(uint64_t id, mc_iter *it, const uint8_t *k, size_t kl) {
	gm_res r = {0};
	return gm_fin(r, mc_iter_seek((mc_map){id}, it, k, kl), 0);
}

static inline gm_res gm_iter_set_value(uint64_t id, const mc_iter *it, const uint8_t *v, size_t vl) {
	gm_res r = {0};
	return gm_fin(r, mc_iter_set_value((mc_map){id}, it, v, vl), 0);
}

// n: the length of the token text.
static inline gm_res gm_encode(int kind, uint64_t id, const mc_iter *it, char *buf, size_t cap) {
	gm_res r = {0};
	size_t n = 0;
	int32_t st = kind == GM_SNAP ? mc_snapshot_iter_encode((mc_snapshot){id}, it, buf, cap, &n)
	                             : mc_iter_encode((mc_map){id}, it, buf, cap, &n);
	r.n = n;
	return gm_fin(r, st, 0);
}

static inline gm_res gm_decode(int kind, uint64_t id, const char *text, size_t len, mc_iter *out) {
	gm_res r = {0};
	int32_t st = kind == GM_SNAP ? mc_snapshot_iter_decode((mc_snapshot){id}, text, len, out)
	                             : mc_iter_decode((mc_map){id}, text, len, out);
	return gm_fin(r, st, 0);
}

// n: the snapshot's handle id.
static inline gm_res gm_snapshot_new(uint64_t id) {
	gm_res r = {0};
	mc_snapshot s = {0};
	int32_t st = mc_snapshot_new((mc_map){id}, &s);
	if (st == MC_OK) r.n = s.id;
	return gm_fin(r, st, 0);
}

static inline gm_res gm_snapshot_free(uint64_t id) {
	gm_res r = {0};
	return gm_fin(r, mc_snapshot_free((mc_snapshot){id}), 0);
}

#endif
