// C shims of the Go binding: see cgo.go. Included by every cgo file of the
// package; the functions are static, so each file gets its own copy.
#ifndef MAPCORE_GO_SHIMS_H
#define MAPCORE_GO_SHIMS_H

#include <stdlib.h>
#include <string.h>
#include "mapcore.h"

enum { GM_MAP = 0, GM_SNAP = 1 };

// Detail message of a failed call, copied in the same C call.
typedef struct {
	size_t len;
	char msg[232];
} gm_err;

static inline void gm_fill(gm_err *e) {
	size_t need = 0;
	int32_t st = mc_last_error(e->msg, sizeof e->msg, &need);
	if (st == MC_OK) {
		e->len = need;
		return;
	}
	e->len = 0;
	if (st == MC_ERR_BUFFER_TOO_SMALL) {
		// Longer than our buffer: fetch it whole and keep the beginning.
		char *tmp = malloc(need + 1);
		if (tmp != NULL && mc_last_error(tmp, need + 1, &need) == MC_OK) {
			size_t n = sizeof e->msg - 1;
			memcpy(e->msg, tmp, n);
			e->msg[n] = 0;
			e->len = n;
		}
		free(tmp);
	}
}

// DONE is not a failure and BUFFER_TOO_SMALL is handled by the binding
// itself (it grows the buffer), so neither needs a detail message.
static inline int32_t gm_ret(int32_t st, gm_err *e) {
	if (st != MC_OK && st != MC_DONE && st != MC_ERR_BUFFER_TOO_SMALL) {
		gm_fill(e);
	}
	return st;
}

static inline int32_t gm_new(uint32_t flags, uint64_t seed, uint64_t capacity, uint64_t *out, gm_err *e) {
	mc_options o;
	memset(&o, 0, sizeof o);
	o.flags = flags;
	o.seed = seed;
	o.capacity = capacity;
	mc_map m = {0};
	int32_t st = mc_map_new_with(&o, &m);
	if (st == MC_OK) *out = m.id;
	return gm_ret(st, e);
}

static inline int32_t gm_free(uint64_t id, gm_err *e) {
	return gm_ret(mc_map_free((mc_map){id}), e);
}

static inline int32_t gm_set(uint64_t id, const uint8_t *k, size_t kl, const uint8_t *v, size_t vl, _Bool *ins, gm_err *e) {
	return gm_ret(mc_map_set((mc_map){id}, k, kl, v, vl, ins), e);
}

static inline int32_t gm_get(int kind, uint64_t id, const uint8_t *k, size_t kl, uint8_t *buf, size_t cap, size_t *out_len, gm_err *e) {
	if (kind == GM_SNAP) return gm_ret(mc_snapshot_get((mc_snapshot){id}, k, kl, buf, cap, out_len), e);
	return gm_ret(mc_map_get((mc_map){id}, k, kl, buf, cap, out_len), e);
}

static inline int32_t gm_contains(int kind, uint64_t id, const uint8_t *k, size_t kl, _Bool *out, gm_err *e) {
	if (kind == GM_SNAP) return gm_ret(mc_snapshot_contains((mc_snapshot){id}, k, kl, out), e);
	return gm_ret(mc_map_contains((mc_map){id}, k, kl, out), e);
}

static inline int32_t gm_delete(uint64_t id, const uint8_t *k, size_t kl, gm_err *e) {
	return gm_ret(mc_map_delete((mc_map){id}, k, kl), e);
}

static inline int32_t gm_len(int kind, uint64_t id, size_t *out, gm_err *e) {
	if (kind == GM_SNAP) return gm_ret(mc_snapshot_len((mc_snapshot){id}, out), e);
	return gm_ret(mc_map_len((mc_map){id}, out), e);
}

static inline int32_t gm_clear(uint64_t id, gm_err *e) {
	return gm_ret(mc_map_clear((mc_map){id}), e);
}

static inline int32_t gm_reserve(uint64_t id, size_t n, gm_err *e) {
	return gm_ret(mc_map_reserve((mc_map){id}, n), e);
}

static inline int32_t gm_shrink(uint64_t id, gm_err *e) {
	return gm_ret(mc_map_shrink_to_fit((mc_map){id}), e);
}

static inline int32_t gm_get_many(uint64_t id, size_t n, const uint8_t *keys, const uint32_t *klens,
                           uint8_t *vals, size_t cap, uint32_t *vlens, size_t *used, gm_err *e) {
	return gm_ret(mc_map_get_many((mc_map){id}, n, keys, klens, vals, cap, vlens, used), e);
}

static inline int32_t gm_set_many(uint64_t id, size_t n, const uint8_t *keys, const uint32_t *klens,
                           const uint8_t *vals, const uint32_t *vlens, size_t *inserted, gm_err *e) {
	return gm_ret(mc_map_set_many((mc_map){id}, n, keys, klens, vals, vlens, inserted), e);
}

static inline int32_t gm_delete_many(uint64_t id, size_t n, const uint8_t *keys, const uint32_t *klens, size_t *removed, gm_err *e) {
	return gm_ret(mc_map_delete_many((mc_map){id}, n, keys, klens, removed), e);
}

// Implemented in Go (retain.go, //export mapcoreRetainPred).
extern int mapcoreRetainPred(uintptr_t h, uint8_t *k, size_t kl, uint8_t *v, size_t vl);

static inline int gm_pred_tramp(void *user, const uint8_t *k, size_t kl, const uint8_t *v, size_t vl) {
	return mapcoreRetainPred((uintptr_t)user, (uint8_t *)k, kl, (uint8_t *)v, vl);
}

static inline int32_t gm_retain(uint64_t id, uintptr_t h, size_t *removed, gm_err *e) {
	return gm_ret(mc_map_retain((mc_map){id}, gm_pred_tramp, (void *)h, removed), e);
}

static inline int32_t gm_iter_init(int kind, uint64_t id, uint32_t mode, mc_iter *out, gm_err *e) {
	if (kind == GM_SNAP) return gm_ret(mc_snapshot_iter_init((mc_snapshot){id}, mode, out), e);
	return gm_ret(mc_iter_init((mc_map){id}, mode, out), e);
}

static inline int32_t gm_next_batch(int kind, uint64_t id, mc_iter *it, uint8_t *buf, size_t cap, size_t max,
                             size_t *count, size_t *used, gm_err *e) {
	if (kind == GM_SNAP) return gm_ret(mc_snapshot_iter_next_batch((mc_snapshot){id}, it, buf, cap, max, count, used), e);
	return gm_ret(mc_iter_next_batch((mc_map){id}, it, buf, cap, max, count, used), e);
}

static inline int32_t gm_iter_remove(uint64_t id, mc_iter *it, gm_err *e) {
	return gm_ret(mc_iter_remove((mc_map){id}, it), e);
}

static inline int32_t gm_iter_set_value(uint64_t id, const mc_iter *it, const uint8_t *v, size_t vl, gm_err *e) {
	return gm_ret(mc_iter_set_value((mc_map){id}, it, v, vl), e);
}

static inline int32_t gm_encode(int kind, uint64_t id, const mc_iter *it, char *buf, size_t cap, size_t *out_len, gm_err *e) {
	if (kind == GM_SNAP) return gm_ret(mc_snapshot_iter_encode((mc_snapshot){id}, it, buf, cap, out_len), e);
	return gm_ret(mc_iter_encode((mc_map){id}, it, buf, cap, out_len), e);
}

static inline int32_t gm_decode(int kind, uint64_t id, const char *text, size_t len, mc_iter *out, gm_err *e) {
	if (kind == GM_SNAP) return gm_ret(mc_snapshot_iter_decode((mc_snapshot){id}, text, len, out), e);
	return gm_ret(mc_iter_decode((mc_map){id}, text, len, out), e);
}

static inline int32_t gm_snapshot_new(uint64_t id, uint64_t *out, gm_err *e) {
	mc_snapshot s = {0};
	int32_t st = mc_snapshot_new((mc_map){id}, &s);
	if (st == MC_OK) *out = s.id;
	return gm_ret(st, e);
}

static inline int32_t gm_snapshot_free(uint64_t id, gm_err *e) {
	return gm_ret(mc_snapshot_free((mc_snapshot){id}), e);
}

#endif
