// SPDX-License-Identifier: MIT
// A chain of blocks; allocation bumps a pointer in the newest block. Large requests get a block
// of their own so that one big string does not waste a whole standard block.
#include "ga_arena.h"

#include "ga_mem.h"

#include <stdalign.h>
#include <stdint.h>
#include <string.h>

typedef struct block_t block_t;
struct block_t {
    block_t *next; // older block, or NULL
    size_t size;   // usable bytes in data
    size_t used;   // bytes handed out
    alignas(max_align_t) unsigned char data[];
};

struct ga_arena_t {
    block_t *head;     // newest block; the chain ends with the first (kept) block
    size_t block_size; // standard block size
    size_t used;       // bytes handed out since reset
};

static block_t *
s_block_new(size_t size, block_t *next)
{
    block_t *b = ga_malloc(sizeof(block_t) + size);
    b->next = next;
    b->size = size;
    b->used = 0;
    return b;
}

ga_arena_t *
ga_arena_new(size_t block_size)
{
    ga_arena_t *self = ga_calloc(1, sizeof *self);
    self->block_size = block_size < 256 ? 256 : block_size;
    self->head = s_block_new(self->block_size, NULL);
    return self;
}

void
ga_arena_destroy(ga_arena_t **self_p)
{
    if (self_p == NULL || *self_p == NULL) {
        return;
    }
    ga_arena_t *self = *self_p;
    block_t *b = self->head;
    while (b) {
        block_t *next = b->next;
        ga_free(b);
        b = next;
    }
    ga_free(self);
    *self_p = NULL;
}

void *
ga_arena_alloc(ga_arena_t *self, size_t size)
{
    const size_t align = alignof(max_align_t);
    size = (size + align - 1) & ~(align - 1);
    if (size == 0) {
        size = align;
    }
    block_t *b = self->head;
    if (b->size - b->used < size) {
        size_t want = size > self->block_size ? size : self->block_size;
        b = s_block_new(want, self->head);
        self->head = b;
    }
    void *p = b->data + b->used;
    b->used += size;
    self->used += size;
    return p;
}

char *
ga_arena_strndup(ga_arena_t *self, const char *s, size_t len)
{
    char *copy = ga_arena_alloc(self, len + 1);
    if (len) {
        memcpy(copy, s, len);
    }
    copy[len] = '\0';
    return copy;
}

char *
ga_arena_strdup(ga_arena_t *self, const char *s)
{
    return ga_arena_strndup(self, s, strlen(s));
}

void
ga_arena_reset(ga_arena_t *self)
{
    block_t *b = self->head;
    while (b->next) {
        block_t *next = b->next;
        ga_free(b);
        b = next;
    }
    b->used = 0;
    self->head = b;
    self->used = 0;
}

size_t
ga_arena_used(const ga_arena_t *self)
{
    return self->used;
}
