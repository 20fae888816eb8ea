// SPDX-License-Identifier: MIT
// The value model every codec converts to and from: nil, boolean, integer, float, string,
// array and string-keyed map. Values are plain structs; containers and strings point into a
// ga_arena_t (or, for constants, static storage) and never own their children. Codecs:
// ga_wire (MessagePack) and ga_json (JSON).
#ifndef GA_VALUE_H
#define GA_VALUE_H

#include "ga_arena.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum {
    GA_NIL = 0,
    GA_BOOL,
    GA_INT,
    GA_FLOAT,
    GA_STR,
    GA_ARRAY,
    GA_MAP,
} ga_type_t;

typedef struct ga_value_t ga_value_t;
typedef struct ga_pair_t ga_pair_t;

struct ga_value_t {
    ga_type_t type; // which member of u is set
    uint32_t len;   // GA_STR: bytes (excluding the NUL); GA_ARRAY: items; GA_MAP: pairs
    uint32_t cap;   // GA_ARRAY/GA_MAP: slots allocated (for appends)
    union {
        bool b;            // GA_BOOL
        int64_t i;         // GA_INT
        double f;          // GA_FLOAT
        const char *s;     // GA_STR: NUL-terminated, may contain NULs before len
        ga_value_t *items; // GA_ARRAY
        ga_pair_t *pairs;  // GA_MAP
    } u;
};

struct ga_pair_t {
    const char *key;  // NUL-terminated
    uint32_t key_len; // bytes in key
    ga_value_t value; // the value
};

// Scalars: no allocation; a string constructor borrows `s` (it must outlive the value).
ga_value_t ga_nil(void);
ga_value_t ga_bool(bool b);
ga_value_t ga_int(int64_t i);
ga_value_t ga_float(double f);
ga_value_t ga_str(const char *s);
ga_value_t ga_strn(const char *s, size_t len);
// Copies `s` into the arena.
ga_value_t ga_str_dup(ga_arena_t *arena, const char *s, size_t len);

// Containers with room for `cap` items; they grow on append (copying within the arena).
ga_value_t ga_array(ga_arena_t *arena, uint32_t cap);
ga_value_t ga_map(ga_arena_t *arena, uint32_t cap);
void ga_array_push(ga_value_t *self, ga_arena_t *arena, ga_value_t item);
// Appends a pair; `key` is borrowed. Does not check for duplicates (callers own that rule).
void ga_map_put(ga_value_t *self, ga_arena_t *arena, const char *key, ga_value_t value);

// Returns the value for `key`, or NULL if self is not a map or has no such key. Borrowed.
const ga_value_t *ga_map_get(const ga_value_t *self, const char *key);
// Typed lookups: the string (or NULL when absent or not a string).
const char *ga_map_get_str(const ga_value_t *self, const char *key);
// The integer, or `dflt` when absent or not an integer (floats with no fraction count).
int64_t ga_map_get_int(const ga_value_t *self, const char *key, int64_t dflt);

// Deep copy into another arena.
ga_value_t ga_value_copy(ga_arena_t *arena, const ga_value_t *v);
// Structural equality (map pairs compared in order-insensitive fashion).
bool ga_value_equal(const ga_value_t *a, const ga_value_t *b);
// A short name for the type ("string", "map", ...).
const char *ga_type_name(ga_type_t type);

#endif
