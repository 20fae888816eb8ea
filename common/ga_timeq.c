// SPDX-License-Identifier: MIT
// Array-backed binary heap ordered by deadline.
#include "ga_timeq.h"

#include "ga_mem.h"

typedef struct {
    int64_t deadline; // monotonic ms
    uint64_t id;      // owner's id
} entry_t;

struct ga_timeq_t {
    entry_t *heap; // heap array
    size_t len;    // entries in use
    size_t cap;    // entries allocated
};

ga_timeq_t *
ga_timeq_new(void)
{
    return ga_calloc(1, sizeof(ga_timeq_t));
}

void
ga_timeq_destroy(ga_timeq_t **self_p)
{
    if (self_p == NULL || *self_p == NULL) {
        return;
    }
    ga_free((*self_p)->heap);
    ga_free(*self_p);
    *self_p = NULL;
}

void
ga_timeq_push(ga_timeq_t *self, int64_t deadline, uint64_t id)
{
    if (self->len == self->cap) {
        self->cap = self->cap ? self->cap * 2 : 64;
        self->heap = ga_realloc(self->heap, self->cap * sizeof(entry_t));
    }
    size_t i = self->len++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (self->heap[parent].deadline <= deadline) {
            break;
        }
        self->heap[i] = self->heap[parent];
        i = parent;
    }
    self->heap[i] = (entry_t){deadline, id};
}

int64_t
ga_timeq_next(const ga_timeq_t *self)
{
    return self->len ? self->heap[0].deadline : INT64_MAX;
}

bool
ga_timeq_pop_due(ga_timeq_t *self, int64_t now, uint64_t *id)
{
    if (self->len == 0 || self->heap[0].deadline > now) {
        return false;
    }
    *id = self->heap[0].id;
    entry_t last = self->heap[--self->len];
    size_t i = 0;
    for (;;) {
        size_t child = 2 * i + 1;
        if (child >= self->len) {
            break;
        }
        if (child + 1 < self->len && self->heap[child + 1].deadline < self->heap[child].deadline) {
            child++;
        }
        if (last.deadline <= self->heap[child].deadline) {
            break;
        }
        self->heap[i] = self->heap[child];
        i = child;
    }
    if (self->len) {
        self->heap[i] = last;
    }
    return true;
}

size_t
ga_timeq_size(const ga_timeq_t *self)
{
    return self->len;
}
