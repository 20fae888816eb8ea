// SPDX-License-Identifier: MIT
// A queue of deadlines: a binary min-heap of (deadline, id). Cancelling is lazy: the owner
// keeps the authoritative table (a ga_idmap_t) and ignores popped ids it no longer holds, so a
// request answered in time costs nothing here. Not thread-safe.
#ifndef GA_TIMEQ_H
#define GA_TIMEQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct ga_timeq_t ga_timeq_t;

ga_timeq_t *ga_timeq_new(void);
void ga_timeq_destroy(ga_timeq_t **self_p);
void ga_timeq_push(ga_timeq_t *self, int64_t deadline, uint64_t id);
// The earliest deadline, or INT64_MAX when empty.
int64_t ga_timeq_next(const ga_timeq_t *self);
// Pops one entry whose deadline is <= now into *id; false when none is due.
bool ga_timeq_pop_due(ga_timeq_t *self, int64_t now, uint64_t *id);
size_t ga_timeq_size(const ga_timeq_t *self);

#endif
