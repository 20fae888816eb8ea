// SPDX-License-Identifier: MIT
// Per-message bump allocator. Everything decoded from one message lives here and is freed at
// once by ga_arena_reset; the first block is kept, so a steady stream of small messages
// allocates nothing. Not thread-safe: an arena belongs to one thread.
#ifndef GA_ARENA_H
#define GA_ARENA_H

#include <stddef.h>

typedef struct ga_arena_t ga_arena_t;

// Creates an arena whose blocks are at least `block_size` bytes. Caller owns the result.
ga_arena_t *ga_arena_new(size_t block_size);
void ga_arena_destroy(ga_arena_t **self_p);
// Returns `size` bytes aligned for any scalar, valid until the next reset or destroy.
void *ga_arena_alloc(ga_arena_t *self, size_t size);
// Copies `len` bytes of `s` and a terminating NUL into the arena.
char *ga_arena_strndup(ga_arena_t *self, const char *s, size_t len);
char *ga_arena_strdup(ga_arena_t *self, const char *s);
// Frees everything allocated since creation, keeping the first block.
void ga_arena_reset(ga_arena_t *self);
// Bytes handed out since the last reset (for limits and tests).
size_t ga_arena_used(const ga_arena_t *self);

#endif
