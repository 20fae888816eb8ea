// SPDX-License-Identifier: MIT
// A table of calls in flight, used by the gateway (its calls to the broker) and the broker (its
// calls to workers): records keyed by a 64-bit id, each with a deadline, and up to
// GA_INFLIGHT_OWNERS secondary indexes by owner (a connection at the gateway; a gateway and a
// worker at the broker). Removing everything an owner holds costs time proportional to what is
// removed, never a scan of the table. Deadlines live in a lazy timer queue: moving a deadline
// later costs nothing, an answered call costs nothing there, and stale queue entries are
// skipped when they come due (docs/architecture.md, "Calls in flight").
//
// Records are intrusive: the caller embeds a ga_inflight_rec_t as the first member of its own
// call record and owns the memory; the table only links records. Not thread-safe.
#ifndef GA_INFLIGHT_H
#define GA_INFLIGHT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GA_INFLIGHT_OWNERS 2       // owner indexes per table
#define GA_INFLIGHT_NONE   INT64_MAX // "no deadline"

typedef struct ga_inflight_rec_t ga_inflight_rec_t;
struct ga_inflight_rec_t {
    uint64_t id;                                 // key (never 0); set by ga_inflight_add
    int64_t deadline;                            // monotonic ms, or GA_INFLIGHT_NONE
    int64_t queued;                              // earliest queued entry for it (private)
    uint64_t owner[GA_INFLIGHT_OWNERS];          // owner keys (0: none); set through the API
    ga_inflight_rec_t *prev[GA_INFLIGHT_OWNERS]; // owner lists (private)
    ga_inflight_rec_t *next[GA_INFLIGHT_OWNERS]; // owner lists: next record of the same owner
    void *head[GA_INFLIGHT_OWNERS];              // owner lists' heads (private)
    ga_inflight_rec_t *all_prev;                 // every record (private)
    ga_inflight_rec_t *all_next;                 // every record: the next one
    bool linked;                                 // in a table (private)
};

typedef struct ga_inflight_t ga_inflight_t;

ga_inflight_t *ga_inflight_new(void);
// Frees the table, not the records.
void ga_inflight_destroy(ga_inflight_t **self_p);

// Adds `rec` (not in any table) under `id` (not 0, not present) with `deadline`
// (GA_INFLIGHT_NONE: none) and owners `owners[0..GA_INFLIGHT_OWNERS)` (0: none; NULL: none).
void ga_inflight_add(ga_inflight_t *self, ga_inflight_rec_t *rec, uint64_t id, int64_t deadline,
                     const uint64_t *owners);
// The record with `id`, or NULL.
ga_inflight_rec_t *ga_inflight_get(const ga_inflight_t *self, uint64_t id);
// Removes and returns the record with `id`, or NULL when absent.
ga_inflight_rec_t *ga_inflight_take(ga_inflight_t *self, uint64_t id);
// Removes `rec` (which is in the table).
void ga_inflight_remove(ga_inflight_t *self, ga_inflight_rec_t *rec);
// Moves `rec` (in the table) from its owner in index `slot` to `owner` (0: none).
void ga_inflight_set_owner(ga_inflight_t *self, ga_inflight_rec_t *rec, int slot, uint64_t owner);
// Sets the deadline of `rec` (in the table). Later than before: nothing is queued; earlier: one
// entry is.
void ga_inflight_set_deadline(ga_inflight_t *self, ga_inflight_rec_t *rec, int64_t deadline);

// Removes and returns one record whose deadline is <= now, or NULL when none is due.
ga_inflight_rec_t *ga_inflight_expire(ga_inflight_t *self, int64_t now);
// The earliest queued deadline (possibly a stale one, never later than the real earliest), or
// GA_INFLIGHT_NONE.
int64_t ga_inflight_next_deadline(const ga_inflight_t *self);

// The first record owned by `owner` in index `slot`, or NULL; follow rec->next[slot]. Saving
// next before removing the current record makes removal during the walk safe.
ga_inflight_rec_t *ga_inflight_owned(const ga_inflight_t *self, int slot, uint64_t owner);
// Removes and returns one record owned by `owner` in index `slot`, or NULL when none is left.
ga_inflight_rec_t *ga_inflight_take_owned(ga_inflight_t *self, int slot, uint64_t owner);
// The first record of the whole table, or NULL; follow rec->all_next (same rule for removal).
ga_inflight_rec_t *ga_inflight_first(const ga_inflight_t *self);

size_t ga_inflight_size(const ga_inflight_t *self);
// Records owned by `owner` in index `slot`.
size_t ga_inflight_owned_count(const ga_inflight_t *self, int slot, uint64_t owner);

#endif
