// SPDX-License-Identifier: MIT
// The sliding-window rate limiter: the limits, an open-addressing hash table of windows keyed by
// (limit id, key value), each window a ring of accepted timestamps, and the incremental sweep
// that frees idle ones. Allocates only when a new key value appears or a window's ring grows (up
// to its limit); a check on known keys allocates nothing.
//
// Laid out for many keys (docs/benchmarks.md, "Rate-limit check"): a window's header is one
// 64-byte table entry, aligned to a cache line, holding the hash, the counts, the newest and
// oldest timestamps and the key value (inline up to 16 bytes), so that a check touches one line
// of the table per limit plus the ring line it appends to; the sweep reads entries in table
// order and decides idleness from the entry alone. Linear probing with backward-shift deletion
// (no tombstones). The ring holds the low 32 bits of each timestamp: every timestamp in a ring
// is within window_ms (at most a day) of the newest, which is kept whole, so each is exact.
#include "ga_ratelimit.h"

#include "ga_mem.h"
#include "ga_telemetry.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define RL_SLOTS_MIN 64     // table entries to begin with (power of two)
#define RL_RING_MIN 4       // ring slots a new window starts with
#define RL_SWEEP_STEP 4     // table entries swept per check
#define RL_SWEEP_RESCUE 32  // table entries swept before a new window is refused for max_keys
#define RL_VALUE_INLINE 16  // key values up to this many bytes live in the entry itself
#define RL_LINE 64          // cache line: one table entry
#define RL_HUGE (2u << 20)  // a huge page: tables this big, and ring chunks, are asked to use them
#define RL_CLASS_MIN 4      // smallest ring block: 1 << 4 = 16 bytes (4 timestamps)
#define RL_CLASSES 13       // ring block classes 16 B .. 64 KB; larger rings use ga_malloc

typedef struct {
    bool used;             // the slot holds a limit
    uint32_t id;           // unique for the limiter's life; windows carry it
    char *service;         // NULL: a global limit
    char *request_type;    // with service
    char *key;             // user_id, device_id, ip_address, or an argument name
    const char *arg;       // the argument name when the key is one (points into key), else NULL
    int64_t max_requests;  // requests accepted per window
    int64_t window_ms;     // window length
    uint64_t refused;      // requests this limit refused
} limit_t;

// One window: a table entry of exactly one cache line. hash == 0: the entry is free.
typedef struct {
    uint64_t hash;      // of (limit id, value); never 0 for a window
    int64_t newest;     // the last accepted timestamp (when count > 0)
    uint32_t *ring;     // low 32 bits of the accepted timestamps, oldest first from head
    uint32_t limit_id;  // the limit it counts for (stale once that limit is gone)
    uint32_t count;     // timestamps in the ring
    uint32_t head;      // ring index of the oldest timestamp
    uint32_t cap;       // ring slots (grows by doubling up to the limit's max_requests)
    uint32_t oldest;    // ring[head] when count > 0, kept here so that a check or the sweep
                        // reads the ring only when it changes it
    uint16_t value_len; // bytes in value (at most GA_RL_VALUE_MAX)
    uint8_t slot;       // index of its limit in limits[]
    uint8_t unused;     // padding
    union {
        char in[RL_VALUE_INLINE]; // value_len <= RL_VALUE_INLINE
        char *out;                // longer values, allocated
    } value;
} window_t;
_Static_assert(sizeof(window_t) == RL_LINE, "a window is one cache line");
_Static_assert(GA_RL_VALUE_MAX <= UINT16_MAX && GA_RL_LIMITS_MAX <= 256, "window_t fields");
_Static_assert(GA_RL_WINDOW_MAX_MS < (1ll << 32), "ring timestamps are kept as 32 bits");

// Ring memory: blocks of 2^k bytes carved from 2 MB chunks on huge pages, with a free list per
// size (a freed block's first bytes link it). Random access over many windows' rings then costs
// cache misses but few TLB misses (a page walk is expensive under virtualisation). Chunks go back
// to the system when the limiter is destroyed; until then freed blocks are reused.
typedef struct chunk_t chunk_t;
struct chunk_t {
    chunk_t *next; // chunks, newest first
};
typedef struct {
    chunk_t *chunks;               // every chunk (each RL_HUGE bytes)
    char *bump;                    // free space in the newest chunk
    char *end;                     // its end
    void *free[RL_CLASSES];        // freed blocks per class
} rings_t;

struct ga_ratelimit_t {
    bool enabled;             // checks do anything
    bool fail_open;           // a limiter failure allows the request
    bool fault;               // injected failure (tests)
    int64_t max_keys;         // windows tracked at most
    char scope[16];           // "gateway" or "cluster" (acted on by the caller)
    limit_t limits[GA_RL_LIMITS_MAX]; // the limits; unused slots have used == false
    uint32_t n_slots_used;    // limits[] beyond this index are unused (checks stop there)
    uint32_t next_id;         // last limit id handed out
    window_t *slots;          // hash table (open addressing), RL_LINE-aligned in slots_mem
    void *slots_mem;          // the allocation slots points into
    size_t slots_mapped;      // bytes of slots_mem when mapped (0: from ga_calloc)
    rings_t rings;            // ring memory
    size_t n_slots;           // power of two; windows fill at most 3/4 of it
    size_t cursor;            // next entry the sweep looks at
    ga_rl_stats_t stats;      // counters (stats.keys: windows tracked)
};

// ---------------------------------------------------------------------------------------------
// Hash table

// Hash of (limit id, value), 8 bytes at a time; never 0 (0 marks a free entry).
static uint64_t
s_hash(uint32_t limit_id, const char *value, size_t len)
{
    uint64_t h = ((uint64_t) limit_id + 1) * 0x9e3779b97f4a7c15ull ^ len;
    size_t i = 0;
    for (; i + 8 <= len; i += 8) {
        uint64_t k;
        memcpy(&k, value + i, 8);
        h = (h ^ k) * 0xbf58476d1ce4e5b9ull;
        h ^= h >> 31;
    }
    // The last 0..7 bytes, from loads of fixed size (overlapping bytes already mixed in are
    // harmless: equal values hash equal, and windows compare the values themselves).
    uint64_t k = 0;
    if (len >= 8) {
        memcpy(&k, value + len - 8, 8);
    } else if (len >= 4) {
        uint32_t lo, hi;
        memcpy(&lo, value, 4);
        memcpy(&hi, value + len - 4, 4);
        k = lo | (uint64_t) hi << 32;
    } else if (len > 0) {
        k = (uint8_t) value[0] | (uint64_t) (uint8_t) value[len / 2] << 8 |
            (uint64_t) (uint8_t) value[len - 1] << 16;
    }
    h = (h ^ k) * 0x94d049bb133111ebull;
    h ^= h >> 29;
    h *= 0xbf58476d1ce4e5b9ull;
    h ^= h >> 32;
    return h ? h : 1;
}

static const char *
s_value(const window_t *w)
{
    return w->value_len <= RL_VALUE_INLINE ? w->value.in : w->value.out;
}

// The whole timestamp of a ring entry (its low 32 bits): within 2^32 ms before newest.
static int64_t
s_stamp(const window_t *w, uint32_t low)
{
    return w->newest - (int64_t) (uint32_t) ((uint32_t) w->newest - low);
}

// `len` bytes mapped at an address aligned to `align` (a power of two, at least a page), asked
// to use huge pages; *base and *mapped say what to unmap. Aborts when out of memory, as
// ga_malloc does.
static void *
s_map(size_t len, size_t align, void **base, size_t *mapped)
{
    *mapped = len + align;
    *base = mmap(NULL, *mapped, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (*base == MAP_FAILED) {
        fprintf(stderr, "genapi: out of memory (rate limiter, %zu bytes)\n", len);
        abort();
    }
    void *p = (void *) (((uintptr_t) *base + align - 1) & ~(uintptr_t) (align - 1));
    (void) madvise(p, len, MADV_HUGEPAGE); // advice only: without it the pages are small
    return p;
}

// The size class of a ring of `cap` timestamps (block of 1 << class bytes), or -1: ga_malloc.
static int
s_ring_class(uint32_t cap)
{
    size_t bytes = (size_t) cap * sizeof(uint32_t);
    for (int c = 0; c < RL_CLASSES; c++) {
        if (bytes <= (size_t) 1 << (RL_CLASS_MIN + c)) {
            return c;
        }
    }
    return -1;
}

static uint32_t *
s_ring_alloc(rings_t *r, uint32_t cap)
{
    int c = s_ring_class(cap);
    if (c < 0) {
        return ga_malloc((size_t) cap * sizeof(uint32_t));
    }
    if (r->free[c]) {
        void *b = r->free[c];
        memcpy(&r->free[c], b, sizeof(void *));
        return b;
    }
    size_t size = (size_t) 1 << (RL_CLASS_MIN + c);
    size_t align = size < RL_LINE ? size : RL_LINE; // a small ring never straddles two lines
    char *b = (char *) (((uintptr_t) r->bump + align - 1) & ~(uintptr_t) (align - 1));
    if (r->bump == NULL || b + size > r->end) {
        void *base;
        size_t mapped;
        chunk_t *chunk = s_map(RL_HUGE, RL_HUGE, &base, &mapped);
        // Keep only the aligned chunk: unmap what the alignment left on either side.
        if ((char *) chunk > (char *) base) {
            munmap(base, (size_t) ((char *) chunk - (char *) base));
        }
        size_t after = (size_t) ((char *) base + mapped - ((char *) chunk + RL_HUGE));
        if (after > 0) {
            munmap((char *) chunk + RL_HUGE, after);
        }
        chunk->next = r->chunks;
        r->chunks = chunk;
        r->bump = (char *) chunk + RL_LINE;
        r->end = (char *) chunk + RL_HUGE;
        b = r->bump;
    }
    r->bump = b + size;
    return (uint32_t *) b;
}

static void
s_ring_free(rings_t *r, uint32_t *ring, uint32_t cap)
{
    int c = s_ring_class(cap);
    if (ring == NULL) {
        return;
    }
    if (c < 0) {
        ga_free(ring);
        return;
    }
    memcpy(ring, &r->free[c], sizeof(void *));
    r->free[c] = ring;
}

static void
s_rings_fini(rings_t *r)
{
    while (r->chunks) {
        chunk_t *next = r->chunks->next;
        munmap(r->chunks, RL_HUGE);
        r->chunks = next;
    }
    memset(r, 0, sizeof *r);
}

static void
s_window_free(ga_ratelimit_t *self, window_t *w)
{
    s_ring_free(&self->rings, w->ring, w->cap);
    if (w->value_len > RL_VALUE_INLINE) {
        ga_free(w->value.out);
    }
    memset(w, 0, sizeof *w);
}

// A zeroed table of n entries, aligned to a cache line; from 2 MB up, on huge pages.
static window_t *
s_table_new(size_t n, void **mem, size_t *mapped)
{
    if (n * sizeof(window_t) >= RL_HUGE) {
        return s_map(n * sizeof(window_t), RL_HUGE, mem, mapped);
    }
    *mapped = 0;
    *mem = ga_calloc(n + 1, sizeof(window_t));
    return (window_t *) (((uintptr_t) *mem + RL_LINE - 1) & ~(uintptr_t) (RL_LINE - 1));
}

static void
s_table_free(void *mem, size_t mapped)
{
    if (mapped) {
        munmap(mem, mapped);
    } else {
        ga_free(mem);
    }
}

static void
s_grow_table(ga_ratelimit_t *self)
{
    size_t n = self->n_slots * 2;
    void *mem;
    size_t mapped;
    window_t *slots = s_table_new(n, &mem, &mapped);
    for (size_t i = 0; i < self->n_slots; i++) {
        const window_t *w = &self->slots[i];
        if (w->hash != 0) {
            size_t k = (size_t) (w->hash & (n - 1));
            while (slots[k].hash != 0) {
                k = (k + 1) & (n - 1);
            }
            slots[k] = *w;
        }
    }
    s_table_free(self->slots_mem, self->slots_mapped);
    self->slots = slots;
    self->slots_mem = mem;
    self->slots_mapped = mapped;
    self->n_slots = n;
    self->cursor = 0;
}

// The index of the window of (limit id, value), or of the free entry where it would go; *found
// says which.
static size_t
s_probe(const ga_ratelimit_t *self, uint32_t limit_id, const char *value, size_t len,
        uint64_t hash, bool *found)
{
    size_t mask = self->n_slots - 1;
    for (size_t i = (size_t) (hash & mask);; i = (i + 1) & mask) {
        const window_t *w = &self->slots[i];
        if (w->hash == 0) {
            *found = false;
            return i;
        }
        if (w->hash == hash && w->limit_id == limit_id && w->value_len == len &&
            memcmp(s_value(w), value, len) == 0) {
            *found = true;
            return i;
        }
    }
}

// The window of (limit, value), or NULL.
static window_t *
s_find(const ga_ratelimit_t *self, const limit_t *limit, const char *value, size_t len,
       uint64_t hash)
{
    bool found;
    size_t i = s_probe(self, limit->id, value, len, hash, &found);
    return found ? &self->slots[i] : NULL;
}

// Frees the window at entry i and closes the gap (backward shift): each later entry of the
// probe run moves back unless that would put it before its home entry.
static void
s_erase(ga_ratelimit_t *self, size_t i)
{
    size_t mask = self->n_slots - 1;
    s_window_free(self, &self->slots[i]);
    self->stats.keys--;
    for (size_t j = (i + 1) & mask; self->slots[j].hash != 0; j = (j + 1) & mask) {
        size_t home = (size_t) (self->slots[j].hash & mask);
        // Stays when home lies cyclically in (i, j].
        bool stays = i <= j ? (i < home && home <= j) : (i < home || home <= j);
        if (!stays) {
            self->slots[i] = self->slots[j];
            memset(&self->slots[j], 0, sizeof self->slots[j]);
            i = j;
        }
    }
}

// Drops the timestamps that have left the window at `now`.
static void
s_expire(window_t *w, int64_t window_ms, int64_t now)
{
    if (w->count == 0 || s_stamp(w, w->oldest) + window_ms > now) {
        return; // the common case: nothing has left, and the ring is not touched
    }
    if (w->newest + window_ms <= now) {
        w->count = 0; // everything has left
        return;
    }
    while (w->count > 0 && s_stamp(w, w->ring[w->head]) + window_ms <= now) {
        w->head = w->head + 1 == w->cap ? 0 : w->head + 1;
        w->count--;
    }
    w->oldest = w->ring[w->head]; // count > 0: newest has not left
}

// Whether `w` counts for nothing any more: its limit is gone, or its newest timestamp has left
// the window (so has every other). Reads the entry only, never the ring. A window a check is
// using has a newest within the window (ga_ratelimit_check sets it), so a sweep for room made
// by that check does not free it.
static bool
s_is_idle(const ga_ratelimit_t *self, const window_t *w, int64_t now)
{
    const limit_t *l = &self->limits[w->slot];
    if (!l->used || l->id != w->limit_id) {
        return true;
    }
    return w->newest + l->window_ms <= now;
}

size_t
ga_ratelimit_sweep(ga_ratelimit_t *self, int64_t now_ms, size_t slots)
{
    size_t freed = 0;
    for (size_t i = 0; i < slots && self->stats.keys > 0; i++) {
        window_t *w = &self->slots[self->cursor];
        if (w->hash != 0 && s_is_idle(self, w, now_ms)) {
            s_erase(self, self->cursor); // a later entry may move here: looked at next
            freed++;
        } else {
            self->cursor = (self->cursor + 1) & (self->n_slots - 1);
        }
    }
    self->stats.reclaimed += freed;
    if (freed > 0) {
        GA_EMIT(GA_EV_RATE_LIMITER_CLEANUP, .scope = self->scope, .count = (int64_t) freed);
    }
    return freed;
}

// ---------------------------------------------------------------------------------------------
// Lifecycle and configuration

ga_ratelimit_t *
ga_ratelimit_new(void)
{
    ga_ratelimit_t *self = ga_calloc(1, sizeof *self);
    self->fail_open = true;
    self->max_keys = GA_RL_MAX_KEYS_DEFAULT;
    snprintf(self->scope, sizeof self->scope, "gateway");
    self->n_slots = RL_SLOTS_MIN;
    self->slots = s_table_new(self->n_slots, &self->slots_mem, &self->slots_mapped);
    return self;
}

static void
s_limit_fini(limit_t *l)
{
    ga_free(l->service);
    ga_free(l->request_type);
    ga_free(l->key);
    memset(l, 0, sizeof *l);
}

void
ga_ratelimit_destroy(ga_ratelimit_t **self_p)
{
    if (self_p == NULL || *self_p == NULL) {
        return;
    }
    ga_ratelimit_t *self = *self_p;
    for (size_t i = 0; i < self->n_slots; i++) {
        if (self->slots[i].hash != 0) {
            s_window_free(self, &self->slots[i]);
        }
    }
    s_table_free(self->slots_mem, self->slots_mapped);
    s_rings_fini(&self->rings);
    for (size_t i = 0; i < GA_RL_LIMITS_MAX; i++) {
        s_limit_fini(&self->limits[i]);
    }
    ga_free(self);
    *self_p = NULL;
}

// A limit as parsed, before it takes a slot.
typedef struct {
    const char *service;      // NULL: global
    const char *request_type; // with service
    const char *key;          // key name
    int64_t max_requests;     // see limit_t
    int64_t window_ms;        // see limit_t
} spec_t;

static bool
s_name_ok(const ga_value_t *v)
{
    return v && v->type == GA_STR && v->len > 0 && v->len <= GA_RL_NAME_MAX &&
           strlen(v->u.s) == v->len;
}

// Parses one limit. `api`: the limit must name service and request_type (else must not);
// -1: either. `where` names it in errors ("rate_limits.api_limits[2]").
static bool
s_parse_limit(const ga_value_t *v, int api, const char *where, spec_t *out, char *why,
              size_t len)
{
    memset(out, 0, sizeof *out);
    if (v == NULL || v->type != GA_MAP) {
        snprintf(why, len, "%s: must be an object", where);
        return false;
    }
    static const char *const fields[] = {"key", "max_requests", "window_ms", "service",
                                         "request_type"};
    for (uint32_t i = 0; i < v->len; i++) {
        bool known = false;
        for (size_t f = 0; f < 5; f++) {
            known = known || strcmp(v->u.pairs[i].key, fields[f]) == 0;
        }
        if (!known || (api == 0 && (strcmp(v->u.pairs[i].key, "service") == 0 ||
                                    strcmp(v->u.pairs[i].key, "request_type") == 0))) {
            snprintf(why, len, "%s.%s: unknown field", where, v->u.pairs[i].key);
            return false;
        }
    }
    const ga_value_t *key = ga_map_get(v, "key");
    if (!s_name_ok(key) || strcmp(key->u.s, "arg:") == 0) {
        snprintf(why, len,
                 "%s.key: must be user_id, device_id, ip_address or an argument name (a "
                 "non-empty string of at most %d bytes)",
                 where, GA_RL_NAME_MAX);
        return false;
    }
    out->key = key->u.s;
    const ga_value_t *service = ga_map_get(v, "service");
    const ga_value_t *request_type = ga_map_get(v, "request_type");
    bool has_fn = service != NULL || request_type != NULL;
    if (api == 1 || (api == -1 && has_fn)) {
        if (!s_name_ok(service)) {
            snprintf(why, len, "%s.service: required, a non-empty string", where);
            return false;
        }
        if (!s_name_ok(request_type)) {
            snprintf(why, len, "%s.request_type: required, a non-empty string", where);
            return false;
        }
        out->service = service->u.s;
        out->request_type = request_type->u.s;
    }
    const ga_value_t *max = ga_map_get(v, "max_requests");
    if (max == NULL || max->type != GA_INT || max->u.i < 1 || max->u.i > GA_RL_MAX_REQUESTS) {
        snprintf(why, len, "%s.max_requests: required, an integer in 1..%d", where,
                 GA_RL_MAX_REQUESTS);
        return false;
    }
    const ga_value_t *window = ga_map_get(v, "window_ms");
    if (window == NULL || window->type != GA_INT || window->u.i < 1 ||
        window->u.i > GA_RL_WINDOW_MAX_MS) {
        snprintf(why, len, "%s.window_ms: required, an integer in 1..%d", where,
                 GA_RL_WINDOW_MAX_MS);
        return false;
    }
    out->max_requests = max->u.i;
    out->window_ms = window->u.i;
    return true;
}

static bool
s_str_eq(const char *a, const char *b)
{
    return (a == NULL && b == NULL) || (a && b && strcmp(a, b) == 0);
}

// Same scope and key.
static bool
s_same_target(const limit_t *l, const char *service, const char *request_type, const char *key)
{
    return l->used && s_str_eq(l->service, service) && s_str_eq(l->request_type, request_type) &&
           strcmp(l->key, key) == 0;
}

// Recomputes n_slots_used after limits[] changed.
static void
s_limits_changed(ga_ratelimit_t *self)
{
    self->n_slots_used = 0;
    for (uint32_t i = 0; i < GA_RL_LIMITS_MAX; i++) {
        if (self->limits[i].used) {
            self->n_slots_used = i + 1;
        }
    }
}

static void
s_limit_set(ga_ratelimit_t *self, limit_t *l, const spec_t *s, uint32_t keep_id)
{
    s_limit_fini(l);
    l->used = true;
    l->id = keep_id ? keep_id : ++self->next_id;
    l->service = s->service ? ga_strdup(s->service) : NULL;
    l->request_type = s->request_type ? ga_strdup(s->request_type) : NULL;
    l->key = ga_strdup(s->key);
    if (strncmp(l->key, "arg:", 4) == 0) {
        l->arg = l->key + 4;
    } else if (strcmp(l->key, "user_id") != 0 && strcmp(l->key, "device_id") != 0 &&
               strcmp(l->key, "ip_address") != 0) {
        l->arg = l->key;
    }
    l->max_requests = s->max_requests;
    l->window_ms = s->window_ms;
    s_limits_changed(self);
}

// Parses a list of limits into `specs` (appending at *n). False with a reason.
static bool
s_parse_list(const ga_value_t *list, bool api, const char *where, spec_t *specs, size_t *n,
             char *why, size_t len)
{
    if (list == NULL || list->type == GA_NIL) {
        return true;
    }
    if (list->type != GA_ARRAY) {
        snprintf(why, len, "%s: must be an array", where);
        return false;
    }
    for (uint32_t i = 0; i < list->len; i++) {
        char at[96];
        snprintf(at, sizeof at, "%s[%u]", where, i);
        if (*n == GA_RL_LIMITS_MAX) {
            snprintf(why, len, "%s: more than %d limits in all", at, GA_RL_LIMITS_MAX);
            return false;
        }
        spec_t *s = &specs[*n];
        if (!s_parse_limit(&list->u.items[i], api ? 1 : 0, at, s, why, len)) {
            return false;
        }
        for (size_t k = 0; k < *n; k++) {
            if (s_str_eq(specs[k].service, s->service) &&
                s_str_eq(specs[k].request_type, s->request_type) &&
                strcmp(specs[k].key, s->key) == 0) {
                snprintf(why, len, "%s: a second limit on key %s for the same scope", at, s->key);
                return false;
            }
        }
        (*n)++;
    }
    return true;
}

ga_err_t
ga_ratelimit_configure(ga_ratelimit_t *self, const ga_value_t *cfg, const char *where, char *why,
                       size_t why_len)
{
    where = where ? where : "rate_limits";
    if (cfg == NULL || cfg->type != GA_MAP) {
        snprintf(why, why_len, "%s: must be an object", where);
        return GA_ECONFIG;
    }
    static const char *const fields[] = {"enabled", "fail_open", "max_keys", "scope",
                                         "global_limits", "api_limits"};
    for (uint32_t i = 0; i < cfg->len; i++) {
        bool known = false;
        for (size_t f = 0; f < sizeof fields / sizeof fields[0]; f++) {
            known = known || strcmp(cfg->u.pairs[i].key, fields[f]) == 0;
        }
        if (!known) {
            snprintf(why, why_len, "%s.%s: unknown field (enabled, fail_open, max_keys, scope, "
                                   "global_limits, api_limits)", where, cfg->u.pairs[i].key);
            return GA_ECONFIG;
        }
    }
    bool flags[2] = {false, true};
    static const char *const flag_names[] = {"enabled", "fail_open"};
    for (size_t f = 0; f < 2; f++) {
        const ga_value_t *v = ga_map_get(cfg, flag_names[f]);
        if (v && v->type != GA_BOOL) {
            snprintf(why, why_len, "%s.%s: must be true or false", where, flag_names[f]);
            return GA_ECONFIG;
        }
        flags[f] = v ? v->u.b : flags[f];
    }
    const ga_value_t *max_keys = ga_map_get(cfg, "max_keys");
    if (max_keys && (max_keys->type != GA_INT || max_keys->u.i < 1 ||
                     max_keys->u.i > GA_RL_MAX_KEYS_MAX)) {
        snprintf(why, why_len, "%s.max_keys: must be an integer in 1..%d", where,
                 GA_RL_MAX_KEYS_MAX);
        return GA_ECONFIG;
    }
    const ga_value_t *scope = ga_map_get(cfg, "scope");
    if (scope && (scope->type != GA_STR ||
                  (strcmp(scope->u.s, "gateway") != 0 && strcmp(scope->u.s, "cluster") != 0))) {
        snprintf(why, why_len, "%s.scope: must be \"gateway\" or \"cluster\"", where);
        return GA_ECONFIG;
    }
    spec_t specs[GA_RL_LIMITS_MAX];
    size_t n = 0;
    char at[64];
    snprintf(at, sizeof at, "%s.global_limits", where);
    if (!s_parse_list(ga_map_get(cfg, "global_limits"), false, at, specs, &n, why, why_len)) {
        return GA_ECONFIG;
    }
    snprintf(at, sizeof at, "%s.api_limits", where);
    if (!s_parse_list(ga_map_get(cfg, "api_limits"), true, at, specs, &n, why, why_len)) {
        return GA_ECONFIG;
    }
    // Valid: apply. A limit identical to an old one keeps its id, hence its windows.
    uint32_t keep[GA_RL_LIMITS_MAX] = {0};
    for (size_t k = 0; k < n; k++) {
        for (size_t i = 0; i < GA_RL_LIMITS_MAX; i++) {
            const limit_t *l = &self->limits[i];
            if (s_same_target(l, specs[k].service, specs[k].request_type, specs[k].key) &&
                l->max_requests == specs[k].max_requests && l->window_ms == specs[k].window_ms) {
                keep[k] = l->id;
            }
        }
    }
    limit_t old[GA_RL_LIMITS_MAX];
    memcpy(old, self->limits, sizeof old);
    memset(self->limits, 0, sizeof self->limits);
    s_limits_changed(self);
    for (size_t k = 0; k < n; k++) {
        s_limit_set(self, &self->limits[k], &specs[k], keep[k]);
        for (size_t i = 0; i < GA_RL_LIMITS_MAX; i++) {
            if (keep[k] && old[i].used && old[i].id == keep[k]) {
                self->limits[k].refused = old[i].refused;
            }
        }
    }
    for (size_t i = 0; i < GA_RL_LIMITS_MAX; i++) {
        s_limit_fini(&old[i]);
    }
    // Windows whose limit kept its id but moved to another slot: repoint them now (a limit
    // that went away leaves stale windows, reclaimed by the sweep).
    for (size_t s = 0; s < self->n_slots; s++) {
        window_t *w = &self->slots[s];
        for (uint32_t k = 0; w->hash != 0 && k < n; k++) {
            if (self->limits[k].id == w->limit_id) {
                w->slot = (uint8_t) k;
            }
        }
    }
    self->enabled = flags[0];
    self->fail_open = flags[1];
    self->max_keys = max_keys ? max_keys->u.i : GA_RL_MAX_KEYS_DEFAULT;
    snprintf(self->scope, sizeof self->scope, "%s", scope ? scope->u.s : "gateway");
    return GA_OK;
}

ga_err_t
ga_ratelimit_put(ga_ratelimit_t *self, const ga_value_t *limit, char *why, size_t why_len)
{
    spec_t s;
    if (!s_parse_limit(limit, -1, "limit", &s, why, why_len)) {
        return GA_ECONFIG;
    }
    limit_t *free_slot = NULL;
    for (size_t i = 0; i < GA_RL_LIMITS_MAX; i++) {
        limit_t *l = &self->limits[i];
        if (s_same_target(l, s.service, s.request_type, s.key)) {
            s_limit_set(self, l, &s, 0); // replaced: its windows start afresh
            return GA_OK;
        }
        if (!l->used && free_slot == NULL) {
            free_slot = l;
        }
    }
    if (free_slot == NULL) {
        snprintf(why, why_len, "limit: %d limits exist already", GA_RL_LIMITS_MAX);
        return GA_ETOOBIG;
    }
    s_limit_set(self, free_slot, &s, 0);
    return GA_OK;
}

ga_err_t
ga_ratelimit_remove(ga_ratelimit_t *self, const ga_value_t *limit, char *why, size_t why_len)
{
    const ga_value_t *key = limit && limit->type == GA_MAP ? ga_map_get(limit, "key") : NULL;
    if (!s_name_ok(key)) {
        snprintf(why, why_len, "limit.key: required, a non-empty string");
        return GA_ECONFIG;
    }
    const char *service = ga_map_get_str(limit, "service");
    const char *request_type = ga_map_get_str(limit, "request_type");
    for (size_t i = 0; i < GA_RL_LIMITS_MAX; i++) {
        if (s_same_target(&self->limits[i], service, request_type, key->u.s)) {
            s_limit_fini(&self->limits[i]); // its windows are stale now: the sweep frees them
            s_limits_changed(self);
            return GA_OK;
        }
    }
    snprintf(why, why_len, "no such limit");
    return GA_ENOTFOUND;
}

static ga_value_t
s_limit_value(const limit_t *l, ga_arena_t *a, bool stats)
{
    ga_value_t m = ga_map(a, 6);
    if (l->service) {
        ga_map_put(&m, a, "service", ga_str_dup(a, l->service, strlen(l->service)));
        ga_map_put(&m, a, "request_type",
                   ga_str_dup(a, l->request_type, strlen(l->request_type)));
    }
    ga_map_put(&m, a, "key", ga_str_dup(a, l->key, strlen(l->key)));
    ga_map_put(&m, a, "max_requests", ga_int(l->max_requests));
    ga_map_put(&m, a, "window_ms", ga_int(l->window_ms));
    if (stats) {
        ga_map_put(&m, a, "refused", ga_int((int64_t) l->refused));
    }
    return m;
}

ga_value_t
ga_ratelimit_config(const ga_ratelimit_t *self, ga_arena_t *arena)
{
    ga_arena_t *a = arena;
    ga_value_t global = ga_array(a, 4);
    ga_value_t api = ga_array(a, 4);
    for (size_t i = 0; i < GA_RL_LIMITS_MAX; i++) {
        const limit_t *l = &self->limits[i];
        if (l->used) {
            ga_array_push(l->service ? &api : &global, a, s_limit_value(l, a, true));
        }
    }
    ga_value_t stats = ga_map(a, 5);
    ga_map_put(&stats, a, "checks", ga_int((int64_t) self->stats.checks));
    ga_map_put(&stats, a, "refused", ga_int((int64_t) self->stats.refused));
    ga_map_put(&stats, a, "failures", ga_int((int64_t) self->stats.failures));
    ga_map_put(&stats, a, "reclaimed", ga_int((int64_t) self->stats.reclaimed));
    ga_map_put(&stats, a, "keys", ga_int((int64_t) self->stats.keys));
    ga_value_t m = ga_map(a, 7);
    ga_map_put(&m, a, "enabled", ga_bool(self->enabled));
    ga_map_put(&m, a, "fail_open", ga_bool(self->fail_open));
    ga_map_put(&m, a, "max_keys", ga_int(self->max_keys));
    ga_map_put(&m, a, "scope", ga_str_dup(a, self->scope, strlen(self->scope)));
    ga_map_put(&m, a, "global_limits", global);
    ga_map_put(&m, a, "api_limits", api);
    ga_map_put(&m, a, "stats", stats);
    return m;
}

const char *
ga_ratelimit_scope(const ga_ratelimit_t *self)
{
    return self->scope;
}

bool
ga_ratelimit_is_enabled(const ga_ratelimit_t *self)
{
    return self->enabled;
}

// ---------------------------------------------------------------------------------------------
// Checks

// The key value of `l` for `who` into (*value, *len), using `num` for numbers. False when the
// request has none (the limit does not apply).
static bool
s_key_value(const limit_t *l, const ga_rl_subject_t *who, char *num, size_t num_len,
            const char **value, size_t *len)
{
    const char *s = NULL;
    if (l->arg == NULL) {
        s = l->key[0] == 'u' ? who->user_id : l->key[0] == 'd' ? who->device_id : who->ip_address;
        if (s == NULL || s[0] == '\0') {
            return false;
        }
        *value = s;
        *len = strlen(s);
    } else {
        const ga_value_t *v = who->args ? ga_map_get(who->args, l->arg) : NULL;
        if (v == NULL) {
            return false;
        }
        switch (v->type) {
        case GA_STR:
            *value = v->u.s;
            *len = v->len;
            break;
        case GA_INT:
            *len = (size_t) snprintf(num, num_len, "%" PRId64, v->u.i);
            *value = num;
            break;
        case GA_FLOAT:
            *len = (size_t) snprintf(num, num_len, "%.17g", v->u.f);
            *value = num;
            break;
        case GA_BOOL:
            *value = v->u.b ? "true" : "false";
            *len = strlen(*value);
            break;
        default:
            return false; // null, arrays and maps key nothing
        }
    }
    if (*len > GA_RL_VALUE_MAX) {
        *len = GA_RL_VALUE_MAX; // longer values share the window of their first bytes
    }
    return true;
}

static bool
s_applies(const limit_t *l, const char *service, const char *request_type)
{
    return l->used && (l->service == NULL || (service && request_type &&
                                              strcmp(l->service, service) == 0 &&
                                              strcmp(l->request_type, request_type) == 0));
}

// The window of (l, value) with hash `hash`, created when missing (*created then true: entries
// may have moved, so window pointers taken before are stale). NULL when max_keys windows exist
// already.
static window_t *
s_get(ga_ratelimit_t *self, const limit_t *l, uint32_t slot, const char *value, size_t len,
      uint64_t hash, int64_t now, bool *created)
{
    bool found;
    size_t i = s_probe(self, l->id, value, len, hash, &found);
    if (found) {
        return &self->slots[i];
    }
    *created = true;
    if ((int64_t) self->stats.keys >= self->max_keys) {
        ga_ratelimit_sweep(self, now, RL_SWEEP_RESCUE);
        if ((int64_t) self->stats.keys >= self->max_keys) {
            return NULL;
        }
    }
    if ((self->stats.keys + 1) * 4 > self->n_slots * 3) {
        s_grow_table(self);
    }
    i = s_probe(self, l->id, value, len, hash, &found); // the sweep or the growth moved it
    window_t *w = &self->slots[i];
    w->hash = hash;
    w->limit_id = l->id;
    w->slot = (uint8_t) slot;
    w->cap = l->max_requests < RL_RING_MIN ? (uint32_t) l->max_requests : RL_RING_MIN;
    w->ring = s_ring_alloc(&self->rings, w->cap);
    w->value_len = (uint16_t) len;
    if (len > RL_VALUE_INLINE) {
        w->value.out = ga_malloc(len);
    }
    memcpy(len > RL_VALUE_INLINE ? w->value.out : w->value.in, value, len);
    self->stats.keys++;
    return w;
}

static void
s_push(ga_ratelimit_t *self, window_t *w, int64_t max_requests, int64_t now)
{
    if (w->count == w->cap) {
        // Full ring below the limit: grow it (amortized; never past max_requests).
        uint32_t cap = w->cap * 2 > (uint64_t) max_requests ? (uint32_t) max_requests : w->cap * 2;
        uint32_t *ring = s_ring_alloc(&self->rings, cap);
        for (uint32_t i = 0; i < w->count; i++) {
            ring[i] = w->ring[(w->head + i) % w->cap];
        }
        s_ring_free(&self->rings, w->ring, w->cap);
        w->ring = ring;
        w->head = 0;
        w->cap = cap;
    }
    uint32_t tail = w->head + w->count;
    w->ring[tail >= w->cap ? tail - w->cap : tail] = (uint32_t) now;
    if (w->count++ == 0) {
        w->oldest = (uint32_t) now;
    }
    w->newest = now;
}

// One applicable limit of a check: its key value and hash, then its window.
typedef struct {
    limit_t *limit;    // the limit
    uint32_t slot;     // its index in limits[]
    const char *value; // the key value (into num for numbers)
    size_t len;        // bytes of value
    uint64_t hash;     // of (limit id, value)
    window_t *w;       // its window, once found
    char num[40];      // a number argument's text
} probe_t;

ga_rl_verdict_t
ga_ratelimit_check(ga_ratelimit_t *self, const char *service, const char *request_type,
                   const ga_rl_subject_t *who, int64_t now_ms, int64_t *retry_after_ms)
{
    *retry_after_ms = 0;
    if (!self->enabled) {
        return GA_RL_ALLOW;
    }
    self->stats.checks++;
    ga_ratelimit_sweep(self, now_ms, RL_SWEEP_STEP);
    probe_t p[GA_RL_LIMITS_MAX];
    size_t n = 0;
    bool failed = self->fault;
    bool limited = false;
    bool created = false;
    int64_t retry = 0;
    // The applicable limits and their hashes first, each table line fetched ahead, so that the
    // memory latency of the windows' lines overlaps instead of adding up.
    for (uint32_t i = 0; i < self->n_slots_used && !failed; i++) {
        limit_t *l = &self->limits[i];
        probe_t *q = &p[n];
        if (!s_applies(l, service, request_type) ||
            !s_key_value(l, who, q->num, sizeof q->num, &q->value, &q->len)) {
            continue;
        }
        q->limit = l;
        q->slot = i;
        q->hash = s_hash(l->id, q->value, q->len);
        __builtin_prefetch(&self->slots[q->hash & (self->n_slots - 1)], 1);
        n++;
    }
    for (size_t k = 0; k < n && !failed; k++) {
        probe_t *q = &p[k];
        q->w = s_get(self, q->limit, q->slot, q->value, q->len, q->hash, now_ms, &created);
        if (q->w == NULL) {
            failed = true;
            break;
        }
        s_expire(q->w, q->limit->window_ms, now_ms);
        if (q->w->count == 0) {
            // Empty (new, or everything left): marked as in use now, so that a sweep for room
            // made by this check's next limits cannot free it (it holds no timestamps).
            q->w->newest = now_ms;
        } else {
            // The line the next timestamp goes to.
            window_t *w = q->w;
            uint32_t tail = w->head + w->count;
            __builtin_prefetch(&w->ring[tail >= w->cap ? tail - w->cap : tail], 1);
        }
    }
    for (size_t k = 0; k < n && !failed; k++) {
        probe_t *q = &p[k];
        limit_t *l = q->limit;
        window_t *w = created ? s_find(self, l, q->value, q->len, q->hash) : q->w;
        q->w = w; // found again when entries moved: none was freed (see s_is_idle)
        if (w->count >= (uint64_t) l->max_requests) {
            int64_t wait = s_stamp(w, w->oldest) + l->window_ms - now_ms;
            l->refused++;
            limited = true;
            GA_EMIT(GA_EV_RATE_LIMITER_EXCEEDED, .service = service, .request_type = request_type, .key = l->key, .scope = self->scope, .count = (int64_t) w->count);
            retry = wait > retry ? wait : retry;
        }
    }
    GA_EMIT(GA_EV_RATE_LIMITER_CHECK, .service = service, .request_type = request_type, .scope = self->scope, .success = limited || failed ? GA_TM_FALSE : GA_TM_TRUE);
    if (failed) {
        self->stats.failures++;
        return self->fail_open ? GA_RL_ALLOW : GA_RL_FAILED;
    }
    if (limited) {
        self->stats.refused++;
        *retry_after_ms = retry;
        return GA_RL_LIMITED;
    }
    for (size_t k = 0; k < n; k++) {
        s_push(self, p[k].w, p[k].limit->max_requests, now_ms);
    }
    return GA_RL_ALLOW;
}

// ---------------------------------------------------------------------------------------------
// Operator views

// Whether `l` is selected by (key, service, request_type) as ga_ratelimit_status describes.
static bool
s_selected(const limit_t *l, const char *key, const char *service, const char *request_type)
{
    if (!l->used || (key && strcmp(l->key, key) != 0)) {
        return false;
    }
    return service == NULL || s_applies(l, service, request_type);
}

ga_value_t
ga_ratelimit_status(ga_ratelimit_t *self, const char *value, const char *key, const char *service,
                    const char *request_type, int64_t now_ms, ga_arena_t *arena)
{
    ga_arena_t *a = arena;
    ga_value_t list = ga_array(a, 4);
    size_t len = strlen(value);
    len = len > GA_RL_VALUE_MAX ? GA_RL_VALUE_MAX : len;
    for (size_t i = 0; i < GA_RL_LIMITS_MAX; i++) {
        limit_t *l = &self->limits[i];
        if (!s_selected(l, key, service, request_type)) {
            continue;
        }
        window_t *w = s_find(self, l, value, len, s_hash(l->id, value, len));
        int64_t current = 0;
        int64_t retry = 0;
        if (w) {
            s_expire(w, l->window_ms, now_ms);
            current = w->count;
            if (current >= l->max_requests) {
                retry = s_stamp(w, w->oldest) + l->window_ms - now_ms;
            }
        }
        ga_value_t m = s_limit_value(l, a, false);
        ga_map_put(&m, a, "scope", ga_str(l->service ? "api" : "global"));
        ga_map_put(&m, a, "current", ga_int(current));
        ga_map_put(&m, a, "max", ga_int(l->max_requests));
        ga_map_put(&m, a, "remaining", ga_int(l->max_requests - current));
        ga_map_put(&m, a, "retry_after_ms", ga_int(retry));
        ga_array_push(&list, a, m);
    }
    return list;
}

size_t
ga_ratelimit_reset(ga_ratelimit_t *self, const char *value, const char *key, const char *service,
                   const char *request_type)
{
    size_t len = strlen(value);
    len = len > GA_RL_VALUE_MAX ? GA_RL_VALUE_MAX : len;
    size_t cleared = 0;
    for (size_t i = 0; i < GA_RL_LIMITS_MAX; i++) {
        limit_t *l = &self->limits[i];
        if (!s_selected(l, key, service, request_type)) {
            continue;
        }
        bool found;
        size_t at = s_probe(self, l->id, value, len, s_hash(l->id, value, len), &found);
        if (found) {
            s_erase(self, at);
            cleared++;
        }
    }
    GA_EMIT(GA_EV_RATE_LIMITER_RESET, .service = service, .request_type = request_type, .key = key, .scope = self->scope, .count = (int64_t) cleared);
    return cleared;
}

ga_rl_stats_t
ga_ratelimit_stats(const ga_ratelimit_t *self)
{
    return self->stats;
}

void
ga_ratelimit_inject_fault(ga_ratelimit_t *self, bool on)
{
    self->fault = on;
}

// ---------------------------------------------------------------------------------------------
// Operator requests

static const char *const s_ops[] = {"rate_limit_config", "rate_limit_status", "rate_limit_reset",
                                    "rate_limit_add",    "rate_limit_remove", "rate_limit_set"};

bool
ga_ratelimit_admin_op_known(const char *op)
{
    for (size_t i = 0; op && i < sizeof s_ops / sizeof s_ops[0]; i++) {
        if (strcmp(op, s_ops[i]) == 0) {
            return true;
        }
    }
    return false;
}

// An optional string field: NULL when absent or null; false when present but not a string.
static bool
s_opt_str(const ga_value_t *req, const char *name, const char **out)
{
    const ga_value_t *v = ga_map_get(req, name);
    *out = v && v->type == GA_STR ? v->u.s : NULL;
    return v == NULL || v->type == GA_NIL || v->type == GA_STR;
}

ga_value_t
ga_ratelimit_admin(ga_ratelimit_t *self, const ga_value_t *req, int64_t now_ms, ga_arena_t *arena)
{
    ga_arena_t *a = arena;
    ga_value_t reply = ga_map(a, 4);
    const char *op = ga_map_get_str(req, "op");
    char why[256] = "";
    const char *value = NULL, *key = NULL, *service = NULL, *request_type = NULL;
    bool strs = s_opt_str(req, "value", &value) && s_opt_str(req, "key", &key) &&
                s_opt_str(req, "service", &service) &&
                s_opt_str(req, "request_type", &request_type);
    if (!ga_ratelimit_admin_op_known(op)) {
        snprintf(why, sizeof why, "unknown op (rate_limit_config, rate_limit_status, "
                                  "rate_limit_reset, rate_limit_add, rate_limit_remove, "
                                  "rate_limit_set)");
    } else if (strcmp(op, "rate_limit_config") == 0) {
        ga_map_put(&reply, a, "config", ga_ratelimit_config(self, a));
    } else if (strcmp(op, "rate_limit_status") == 0 || strcmp(op, "rate_limit_reset") == 0) {
        if (!strs || value == NULL || (service == NULL) != (request_type == NULL)) {
            snprintf(why, sizeof why, "value (a string) is required; key, and service with "
                                      "request_type, are optional strings");
        } else if (strcmp(op, "rate_limit_status") == 0) {
            ga_map_put(&reply, a, "limits",
                       ga_ratelimit_status(self, value, key, service, request_type, now_ms, a));
        } else {
            size_t n = ga_ratelimit_reset(self, value, key, service, request_type);
            ga_map_put(&reply, a, "cleared", ga_int((int64_t) n));
        }
    } else if (strcmp(op, "rate_limit_add") == 0) {
        GA_IGNORE(ga_ratelimit_put(self, ga_map_get(req, "limit"), why, sizeof why)); // in why
    } else if (strcmp(op, "rate_limit_remove") == 0) {
        GA_IGNORE(ga_ratelimit_remove(self, ga_map_get(req, "limit"), why, sizeof why)); // why
    } else {
        GA_IGNORE(ga_ratelimit_configure(self, ga_map_get(req, "config"), "config", why,
                                         sizeof why)); // the reason is in why
    }
    ga_map_put(&reply, a, "ok", ga_bool(why[0] == '\0'));
    if (why[0]) {
        ga_map_put(&reply, a, "error", ga_str_dup(a, why, strlen(why)));
    }
    return reply;
}
