// SPDX-License-Identifier: MIT
// Open-addressing id map. Load factor stays under 1/2, so probes are short; deletion shifts
// later entries back instead of leaving tombstones, so lookups never slow down over time.
#include "ga_idmap.h"

#include "ga_mem.h"

#include <stdbool.h>

typedef struct {
    uint64_t id; // 0 when empty
    void *value; // borrowed
} slot_t;

struct ga_idmap_t {
    slot_t *slots; // 2^k slots
    size_t mask;   // slot count - 1
    size_t size;   // entries in use
};

static size_t
s_hash(uint64_t id)
{
    id ^= id >> 33;
    id *= 0xff51afd7ed558ccdULL;
    id ^= id >> 33;
    return (size_t) id;
}

ga_idmap_t *
ga_idmap_new(void)
{
    ga_idmap_t *self = ga_calloc(1, sizeof *self);
    self->mask = 63;
    self->slots = ga_calloc(self->mask + 1, sizeof(slot_t));
    return self;
}

void
ga_idmap_destroy(ga_idmap_t **self_p)
{
    if (self_p == NULL || *self_p == NULL) {
        return;
    }
    ga_free((*self_p)->slots);
    ga_free(*self_p);
    *self_p = NULL;
}

static void
s_grow(ga_idmap_t *self)
{
    slot_t *old = self->slots;
    size_t n = self->mask + 1;
    self->mask = n * 2 - 1;
    self->slots = ga_calloc(n * 2, sizeof(slot_t));
    self->size = 0;
    for (size_t i = 0; i < n; i++) {
        if (old[i].id) {
            ga_idmap_put(self, old[i].id, old[i].value);
        }
    }
    ga_free(old);
}

void
ga_idmap_put(ga_idmap_t *self, uint64_t id, void *value)
{
    ga_assert(id != 0);
    if ((self->size + 1) * 2 > self->mask + 1) {
        s_grow(self);
    }
    size_t i = s_hash(id) & self->mask;
    while (self->slots[i].id && self->slots[i].id != id) {
        i = (i + 1) & self->mask;
    }
    if (self->slots[i].id == 0) {
        self->size++;
    }
    self->slots[i].id = id;
    self->slots[i].value = value;
}

void *
ga_idmap_put_new(ga_idmap_t *self, uint64_t id, void *value)
{
    ga_assert(id != 0);
    size_t i = s_hash(id) & self->mask;
    while (self->slots[i].id) {
        if (self->slots[i].id == id) {
            return self->slots[i].value; // present: nothing changes, not even the capacity
        }
        i = (i + 1) & self->mask;
    }
    if ((self->size + 1) * 2 > self->mask + 1) {
        s_grow(self); // the free slot found above moves with the growth: probe again
        i = s_hash(id) & self->mask;
        while (self->slots[i].id) {
            i = (i + 1) & self->mask;
        }
    }
    self->size++;
    self->slots[i].id = id;
    self->slots[i].value = value;
    return NULL;
}

static size_t
s_find(const ga_idmap_t *self, uint64_t id)
{
    size_t i = s_hash(id) & self->mask;
    while (self->slots[i].id) {
        if (self->slots[i].id == id) {
            return i;
        }
        i = (i + 1) & self->mask;
    }
    return SIZE_MAX;
}

void *
ga_idmap_get(const ga_idmap_t *self, uint64_t id)
{
    if (id == 0) {
        return NULL;
    }
    size_t i = s_find(self, id);
    return i == SIZE_MAX ? NULL : self->slots[i].value;
}

void *
ga_idmap_take(ga_idmap_t *self, uint64_t id)
{
    if (id == 0) {
        return NULL;
    }
    size_t i = s_find(self, id);
    if (i == SIZE_MAX) {
        return NULL;
    }
    void *value = self->slots[i].value;
    self->slots[i].id = 0;
    self->size--;
    // Backward-shift: move later entries of the same probe run into the hole.
    size_t hole = i;
    size_t j = (i + 1) & self->mask;
    while (self->slots[j].id) {
        size_t home = s_hash(self->slots[j].id) & self->mask;
        // Entry j may move to the hole if its home is not in (hole, j] cyclically.
        bool movable = hole <= j ? (home <= hole || home > j) : (home <= hole && home > j);
        if (movable) {
            self->slots[hole] = self->slots[j];
            self->slots[j].id = 0;
            hole = j;
        }
        j = (j + 1) & self->mask;
    }
    return value;
}

size_t
ga_idmap_size(const ga_idmap_t *self)
{
    return self->size;
}

void
ga_idmap_each(const ga_idmap_t *self, void (*fn)(uint64_t id, void *value, void *arg), void *arg)
{
    for (size_t i = 0; i <= self->mask; i++) {
        if (self->slots[i].id) {
            fn(self->slots[i].id, self->slots[i].value, arg);
        }
    }
}
