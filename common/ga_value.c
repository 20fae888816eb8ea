// SPDX-License-Identifier: MIT
// Constructors, lookups and comparisons for ga_value_t. No I/O, no globals.
#include "ga_value.h"

#include "ga_mem.h"

#include <string.h>

ga_value_t
ga_nil(void)
{
    return (ga_value_t){.type = GA_NIL};
}

ga_value_t
ga_bool(bool b)
{
    return (ga_value_t){.type = GA_BOOL, .u.b = b};
}

ga_value_t
ga_int(int64_t i)
{
    return (ga_value_t){.type = GA_INT, .u.i = i};
}

ga_value_t
ga_float(double f)
{
    return (ga_value_t){.type = GA_FLOAT, .u.f = f};
}

ga_value_t
ga_str(const char *s)
{
    return ga_strn(s, strlen(s));
}

ga_value_t
ga_strn(const char *s, size_t len)
{
    ga_assert(len <= UINT32_MAX);
    return (ga_value_t){.type = GA_STR, .len = (uint32_t) len, .u.s = s};
}

ga_value_t
ga_str_dup(ga_arena_t *arena, const char *s, size_t len)
{
    return ga_strn(ga_arena_strndup(arena, s, len), len);
}

ga_value_t
ga_array(ga_arena_t *arena, uint32_t cap)
{
    ga_value_t v = {.type = GA_ARRAY, .cap = cap};
    v.u.items = cap ? ga_arena_alloc(arena, sizeof(ga_value_t) * cap) : NULL;
    return v;
}

ga_value_t
ga_map(ga_arena_t *arena, uint32_t cap)
{
    ga_value_t v = {.type = GA_MAP, .cap = cap};
    v.u.pairs = cap ? ga_arena_alloc(arena, sizeof(ga_pair_t) * cap) : NULL;
    return v;
}

static void *
s_grow(ga_arena_t *arena, void *old, uint32_t *cap, uint32_t len, size_t item)
{
    uint32_t ncap = *cap ? *cap * 2 : 4;
    void *p = ga_arena_alloc(arena, item * ncap);
    if (len) {
        memcpy(p, old, item * len);
    }
    *cap = ncap;
    return p;
}

void
ga_array_push(ga_value_t *self, ga_arena_t *arena, ga_value_t item)
{
    ga_assert(self->type == GA_ARRAY);
    if (self->len == self->cap) {
        self->u.items = s_grow(arena, self->u.items, &self->cap, self->len, sizeof(ga_value_t));
    }
    self->u.items[self->len++] = item;
}

void
ga_map_put(ga_value_t *self, ga_arena_t *arena, const char *key, ga_value_t value)
{
    ga_assert(self->type == GA_MAP);
    if (self->len == self->cap) {
        self->u.pairs = s_grow(arena, self->u.pairs, &self->cap, self->len, sizeof(ga_pair_t));
    }
    size_t klen = strlen(key);
    ga_assert(klen <= UINT32_MAX);
    self->u.pairs[self->len++] = (ga_pair_t){.key = key, .key_len = (uint32_t) klen, .value = value};
}

const ga_value_t *
ga_map_get(const ga_value_t *self, const char *key)
{
    if (self == NULL || self->type != GA_MAP) {
        return NULL;
    }
    // No strlen of `key`: most pairs differ in their first byte, and the bytes of `key` are
    // read no further than its NUL (a pair's key with a NUL inside matches no C string, as
    // with a length compare).
    for (uint32_t i = 0; i < self->len; i++) {
        const ga_pair_t *p = &self->u.pairs[i];
        if (p->key[0] != key[0]) {
            continue;
        }
        uint32_t j = 0;
        while (j < p->key_len && key[j] != '\0' && key[j] == p->key[j]) {
            j++;
        }
        if (j == p->key_len && key[j] == '\0') {
            return &p->value;
        }
    }
    return NULL;
}

const char *
ga_map_get_str(const ga_value_t *self, const char *key)
{
    const ga_value_t *v = ga_map_get(self, key);
    return (v && v->type == GA_STR) ? v->u.s : NULL;
}

int64_t
ga_map_get_int(const ga_value_t *self, const char *key, int64_t dflt)
{
    const ga_value_t *v = ga_map_get(self, key);
    if (v && v->type == GA_INT) {
        return v->u.i;
    }
    // Only a double in [-2^63, 2^63) may be converted (NaN fails both comparisons).
    if (v && v->type == GA_FLOAT && v->u.f >= -0x1p63 && v->u.f < 0x1p63 &&
        v->u.f == (double) (int64_t) v->u.f) {
        return (int64_t) v->u.f;
    }
    return dflt;
}

ga_value_t
ga_value_copy(ga_arena_t *arena, const ga_value_t *v)
{
    switch (v->type) {
    case GA_STR:
        return ga_str_dup(arena, v->u.s, v->len);
    case GA_ARRAY: {
        ga_value_t a = ga_array(arena, v->len);
        for (uint32_t i = 0; i < v->len; i++) {
            a.u.items[i] = ga_value_copy(arena, &v->u.items[i]);
        }
        a.len = v->len;
        return a;
    }
    case GA_MAP: {
        ga_value_t m = ga_map(arena, v->len);
        for (uint32_t i = 0; i < v->len; i++) {
            const ga_pair_t *p = &v->u.pairs[i];
            m.u.pairs[i] = (ga_pair_t){.key = ga_arena_strndup(arena, p->key, p->key_len),
                                       .key_len = p->key_len,
                                       .value = ga_value_copy(arena, &p->value)};
        }
        m.len = v->len;
        return m;
    }
    default:
        return *v;
    }
}

bool
ga_value_equal(const ga_value_t *a, const ga_value_t *b)
{
    if (a->type != b->type) {
        return false;
    }
    switch (a->type) {
    case GA_NIL:
        return true;
    case GA_BOOL:
        return a->u.b == b->u.b;
    case GA_INT:
        return a->u.i == b->u.i;
    case GA_FLOAT:
        return a->u.f == b->u.f;
    case GA_STR:
        return a->len == b->len && memcmp(a->u.s, b->u.s, a->len) == 0;
    case GA_ARRAY:
        if (a->len != b->len) {
            return false;
        }
        for (uint32_t i = 0; i < a->len; i++) {
            if (!ga_value_equal(&a->u.items[i], &b->u.items[i])) {
                return false;
            }
        }
        return true;
    case GA_MAP:
        if (a->len != b->len) {
            return false;
        }
        for (uint32_t i = 0; i < a->len; i++) {
            const ga_value_t *other = ga_map_get(b, a->u.pairs[i].key);
            if (other == NULL || !ga_value_equal(&a->u.pairs[i].value, other)) {
                return false;
            }
        }
        return true;
    }
    return false;
}

const char *
ga_type_name(ga_type_t type)
{
    static const char *const names[] = {"nil", "boolean", "integer", "float",
                                        "string", "list", "map"};
    return (unsigned) type < sizeof names / sizeof names[0] ? names[type] : "unknown";
}
