// SPDX-License-Identifier: MIT
// A hash map from 64-bit ids to borrowed pointers (open addressing, linear probing, backward-
// shift deletion). Used for in-flight request tables on the broker and gateway, where ids are
// assigned sequentially by the owner. Not thread-safe. Never shrinks below its initial size.
#ifndef GA_IDMAP_H
#define GA_IDMAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct ga_idmap_t ga_idmap_t;

ga_idmap_t *ga_idmap_new(void);
// Frees the table, not the values.
void ga_idmap_destroy(ga_idmap_t **self_p);
// Inserts or replaces. `id` must not be 0 (reserved as the empty slot).
void ga_idmap_put(ga_idmap_t *self, uint64_t id, void *value);
// Inserts `value` under `id` (not 0) unless `id` is present, in one probe: returns NULL when it
// inserted, else the value already there (left unchanged; the map is not modified).
void *ga_idmap_put_new(ga_idmap_t *self, uint64_t id, void *value);
// Returns the value, or NULL.
void *ga_idmap_get(const ga_idmap_t *self, uint64_t id);
// Removes and returns the value, or NULL when absent.
void *ga_idmap_take(ga_idmap_t *self, uint64_t id);
size_t ga_idmap_size(const ga_idmap_t *self);
// Calls fn for every entry; fn may not modify the map. Order is unspecified.
void ga_idmap_each(const ga_idmap_t *self, void (*fn)(uint64_t id, void *value, void *arg),
                   void *arg);

#endif
