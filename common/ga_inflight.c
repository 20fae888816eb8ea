// SPDX-License-Identifier: MIT
// The in-flight table: an id map of records, one id map per owner index (owner key -> the head
// of a doubly linked list of its records), a list of every record, and a deadline heap with
// lazy cancellation. Owner heads are recycled through a free list, so a steady load allocates
// nothing per call. Each record points to its owners' heads, and each index remembers the last
// head it looked up, so a call routed between the same gateway and worker as the one before
// costs one id-map probe when added (its id) and one when removed.
#include "ga_inflight.h"

#include "ga_idmap.h"
#include "ga_mem.h"
#include "ga_timeq.h"

typedef struct head_t head_t;
struct head_t {
    ga_inflight_rec_t *first; // first record of the owner
    size_t count;             // records of the owner
    head_t *next_free;        // free-list link
};

struct ga_inflight_t {
    ga_idmap_t *records;                     // id -> ga_inflight_rec_t
    ga_idmap_t *owners[GA_INFLIGHT_OWNERS];  // owner key -> head_t
    head_t *free_heads;                      // recycled heads
    uint64_t last_owner[GA_INFLIGHT_OWNERS]; // owner key of last_head (0: none)
    head_t *last_head[GA_INFLIGHT_OWNERS];   // the head of last_owner, while it is in the map
    ga_inflight_rec_t *all;                  // every record
    ga_timeq_t *deadlines;                   // (deadline, id), stale entries skipped
};

ga_inflight_t *
ga_inflight_new(void)
{
    ga_inflight_t *self = ga_calloc(1, sizeof *self);
    self->records = ga_idmap_new();
    for (int i = 0; i < GA_INFLIGHT_OWNERS; i++) {
        self->owners[i] = ga_idmap_new();
    }
    self->deadlines = ga_timeq_new();
    return self;
}

static void
s_free_head(uint64_t id, void *value, void *arg)
{
    (void) id;
    (void) arg;
    ga_free(value);
}

void
ga_inflight_destroy(ga_inflight_t **self_p)
{
    if (self_p == NULL || *self_p == NULL) {
        return;
    }
    ga_inflight_t *self = *self_p;
    for (int i = 0; i < GA_INFLIGHT_OWNERS; i++) {
        ga_idmap_each(self->owners[i], s_free_head, NULL);
        ga_idmap_destroy(&self->owners[i]);
    }
    while (self->free_heads) {
        head_t *h = self->free_heads;
        self->free_heads = h->next_free;
        ga_free(h);
    }
    ga_idmap_destroy(&self->records);
    ga_timeq_destroy(&self->deadlines);
    ga_free(self);
    *self_p = NULL;
}

static void
s_link_owner(ga_inflight_t *self, ga_inflight_rec_t *rec, int slot, uint64_t owner)
{
    rec->owner[slot] = owner;
    rec->prev[slot] = rec->next[slot] = NULL;
    rec->head[slot] = NULL;
    if (owner == 0) {
        return;
    }
    head_t *h;
    if (owner == self->last_owner[slot]) {
        h = self->last_head[slot];
    } else {
        // One probe finds the owner's head or inserts a fresh one, taken from the free list
        // only when it is used.
        if (self->free_heads == NULL) {
            self->free_heads = ga_malloc(sizeof(head_t));
            self->free_heads->next_free = NULL;
        }
        h = ga_idmap_put_new(self->owners[slot], owner, self->free_heads);
        if (h == NULL) {
            h = self->free_heads;
            self->free_heads = h->next_free;
            *h = (head_t){0};
        }
        self->last_owner[slot] = owner;
        self->last_head[slot] = h;
    }
    rec->head[slot] = h;
    rec->next[slot] = h->first;
    if (h->first) {
        h->first->prev[slot] = rec;
    }
    h->first = rec;
    h->count++;
}

static void
s_unlink_owner(ga_inflight_t *self, ga_inflight_rec_t *rec, int slot)
{
    uint64_t owner = rec->owner[slot];
    if (owner == 0) {
        return;
    }
    head_t *h = rec->head[slot];
    ga_assert(h != NULL);
    if (rec->prev[slot]) {
        rec->prev[slot]->next[slot] = rec->next[slot];
    } else {
        h->first = rec->next[slot];
    }
    if (rec->next[slot]) {
        rec->next[slot]->prev[slot] = rec->prev[slot];
    }
    rec->prev[slot] = rec->next[slot] = NULL;
    rec->head[slot] = NULL;
    rec->owner[slot] = 0;
    if (--h->count == 0) {
        ga_idmap_take(self->owners[slot], owner);
        if (self->last_head[slot] == h) {
            self->last_owner[slot] = 0;
            self->last_head[slot] = NULL;
        }
        h->next_free = self->free_heads;
        self->free_heads = h;
    }
}

// The owner index `slot`'s head for `owner` (not 0), or NULL.
static head_t *
s_head_of(const ga_inflight_t *self, int slot, uint64_t owner)
{
    if (owner == self->last_owner[slot]) {
        return self->last_head[slot];
    }
    return ga_idmap_get(self->owners[slot], owner);
}

void
ga_inflight_add(ga_inflight_t *self, ga_inflight_rec_t *rec, uint64_t id, int64_t deadline,
                const uint64_t *owners)
{
    ga_assert(id != 0 && !rec->linked);
    // Inserts unless the id is present (a programmer error), in one probe.
    ga_inflight_rec_t *present = ga_idmap_put_new(self->records, id, rec);
    ga_assert(present == NULL);
    rec->id = id;
    rec->linked = true;
    rec->all_prev = NULL;
    rec->all_next = self->all;
    if (self->all) {
        self->all->all_prev = rec;
    }
    self->all = rec;
    for (int i = 0; i < GA_INFLIGHT_OWNERS; i++) {
        s_link_owner(self, rec, i, owners ? owners[i] : 0);
    }
    rec->deadline = GA_INFLIGHT_NONE;
    rec->queued = GA_INFLIGHT_NONE;
    ga_inflight_set_deadline(self, rec, deadline);
}

ga_inflight_rec_t *
ga_inflight_get(const ga_inflight_t *self, uint64_t id)
{
    return ga_idmap_get(self->records, id);
}

// Unlinks `rec`, already taken out of the id map, from the owner indexes and the list.
static void
s_unlink(ga_inflight_t *self, ga_inflight_rec_t *rec)
{
    for (int i = 0; i < GA_INFLIGHT_OWNERS; i++) {
        s_unlink_owner(self, rec, i);
    }
    if (rec->all_prev) {
        rec->all_prev->all_next = rec->all_next;
    } else {
        self->all = rec->all_next;
    }
    if (rec->all_next) {
        rec->all_next->all_prev = rec->all_prev;
    }
    rec->all_prev = rec->all_next = NULL;
    rec->linked = false;
    // Its queue entries stay: they are skipped when due (the id is never added again).
}

void
ga_inflight_remove(ga_inflight_t *self, ga_inflight_rec_t *rec)
{
    ga_assert(rec->linked);
    ga_idmap_take(self->records, rec->id);
    s_unlink(self, rec);
}

ga_inflight_rec_t *
ga_inflight_take(ga_inflight_t *self, uint64_t id)
{
    ga_inflight_rec_t *rec = ga_idmap_take(self->records, id);
    if (rec) {
        s_unlink(self, rec);
    }
    return rec;
}

void
ga_inflight_set_owner(ga_inflight_t *self, ga_inflight_rec_t *rec, int slot, uint64_t owner)
{
    ga_assert(rec->linked && slot >= 0 && slot < GA_INFLIGHT_OWNERS);
    if (rec->owner[slot] == owner) {
        return;
    }
    s_unlink_owner(self, rec, slot);
    s_link_owner(self, rec, slot, owner);
}

void
ga_inflight_set_deadline(ga_inflight_t *self, ga_inflight_rec_t *rec, int64_t deadline)
{
    rec->deadline = deadline;
    if (deadline < rec->queued) {
        // The entry already queued (if any) becomes stale: it no longer equals rec->queued.
        rec->queued = deadline;
        ga_timeq_push(self->deadlines, deadline, rec->id);
    }
}

ga_inflight_rec_t *
ga_inflight_expire(ga_inflight_t *self, int64_t now)
{
    uint64_t id;
    int64_t at;
    while ((at = ga_timeq_next(self->deadlines)) <= now &&
           ga_timeq_pop_due(self->deadlines, now, &id)) {
        ga_inflight_rec_t *rec = ga_idmap_get(self->records, id);
        if (rec == NULL || at != rec->queued) {
            continue; // answered already, or superseded by an earlier entry
        }
        rec->queued = GA_INFLIGHT_NONE;
        if (rec->deadline > now) {
            // Its deadline moved on meanwhile: one entry per record stays queued.
            rec->queued = rec->deadline;
            if (rec->deadline != GA_INFLIGHT_NONE) {
                ga_timeq_push(self->deadlines, rec->deadline, id);
            }
            continue;
        }
        ga_inflight_remove(self, rec);
        return rec;
    }
    return NULL;
}

int64_t
ga_inflight_next_deadline(const ga_inflight_t *self)
{
    return ga_timeq_next(self->deadlines);
}

ga_inflight_rec_t *
ga_inflight_owned(const ga_inflight_t *self, int slot, uint64_t owner)
{
    if (owner == 0) {
        return NULL;
    }
    head_t *h = s_head_of(self, slot, owner);
    return h ? h->first : NULL;
}

ga_inflight_rec_t *
ga_inflight_take_owned(ga_inflight_t *self, int slot, uint64_t owner)
{
    ga_inflight_rec_t *rec = ga_inflight_owned(self, slot, owner);
    if (rec) {
        ga_inflight_remove(self, rec);
    }
    return rec;
}

ga_inflight_rec_t *
ga_inflight_first(const ga_inflight_t *self)
{
    return self->all;
}

size_t
ga_inflight_size(const ga_inflight_t *self)
{
    return ga_idmap_size(self->records);
}

size_t
ga_inflight_owned_count(const ga_inflight_t *self, int slot, uint64_t owner)
{
    head_t *h = owner ? s_head_of(self, slot, owner) : NULL;
    return h ? h->count : 0;
}
